//! One physical connection: its control block and its reader thread (its writer thread is in
//! [`super::writer`]).
//!
//! The threads share one `TcpStream` through an `Arc` (`&TcpStream` implements `Read` and `Write`),
//! so a connection costs one file descriptor. The reader runs for the whole connection; the writer
//! is started on demand (when a send would block, for a server socket's batches, for a close's
//! flush) and ends after idling, so an idle connection costs one thread. The control block
//! [`ConnCtl`] holds the doorbells the dispatcher rings (`Mutex` flags + `Condvar`s, so a wake-up is
//! never lost: a flag set before the thread waits is seen when it checks) and says who owns the
//! socket for writing. Closing uses `TcpStream::shutdown(Both)`, which makes a reader blocked in
//! `read` return and a writer blocked in `write` fail.

use super::rng::{PreDrawn, SNET_POOL};
use super::send;
use super::shared::Inner;
use super::sync::{lock, wait, wait_timeout};
use bytes::{Bytes, BytesMut};
use fastway_core::auth::{CHALLENGE_LEN, Challenge};
use fastway_core::frame::FrameDecoder;
use fastway_core::gateway::{AcceptError, Side};
use fastway_core::switchboard::SocketId;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Stack size of reader and writer threads. They only run small loops; a small stack keeps thousands
/// of idle connections cheap (only touched pages are committed anyway).
const CONN_STACK_SIZE: usize = 64 * 1024;

/// The control block of one connection, shared by its two threads and the dispatcher.
#[derive(Debug)]
pub(crate) struct ConnCtl {
    /// The core's handle.
    pub(crate) socket: SocketId,
    /// Which listener it came from.
    pub(crate) side: Side,
    /// The remote address, for logs.
    pub(crate) addr: SocketAddr,
    /// The game server id it registered under, once authenticated: the close line names it.
    pub(crate) server_id: OnceLock<u32>,
    /// The socket, read by the reader and written by whoever owns it for writing.
    pub(super) stream: TcpStream,
    state: Mutex<ConnState>,
    writer_bell: Condvar,
    reader_bell: Condvar,
}

#[derive(Debug, Default)]
struct ConnState {
    /// The core has bytes for this socket (`Action::Transmit`) that nobody has taken yet.
    transmit: bool,
    /// Reading is paused by backpressure.
    paused: bool,
    /// Reading was paused since the reader last looked: it must feed its buffered bytes first.
    was_paused: bool,
    /// The core forgot this socket (`Action::Close`).
    closed: bool,
    /// The writer sleeps on its bell (so a ring must notify it; otherwise it sees the flag anyway).
    writer_waiting: bool,
    /// Some thread owns the socket for writing: the writer thread, or a routing thread sending
    /// directly (see [`ConnCtl::on_transmit`]). Only the owner takes from the core and writes, so
    /// two threads never write at once and bytes stay in order.
    sending: bool,
    /// Bytes a routing thread took from the core but could not send without blocking: the writer
    /// writes them before anything else (before taking more, and before a close's flush).
    pending: Vec<Bytes>,
    /// What to write before closing; taken by the writer.
    flush: Option<Vec<Bytes>>,
    /// A writer thread runs or is being started. It is started when there is work for it (see
    /// [`ConnState::writer_needed`]) and ends after [`WRITER_IDLE`] without work.
    writer_running: bool,
    /// Threads of this connection running or being started; the last one out removes the
    /// connection from the live set, after which no thread is started for it any more.
    threads: usize,
}

/// How long a writer thread waits for work before it ends.
const WRITER_IDLE: Duration = Duration::from_secs(2);

impl ConnState {
    /// Whether a writer thread has something to do: write what the core has or what a direct send
    /// left over, or a graceful close's flush.
    fn writer_has_work(&self) -> bool {
        if self.closed {
            self.flush.as_ref().is_some_and(|flush| !flush.is_empty())
        } else {
            self.transmit || !self.pending.is_empty()
        }
    }

    /// Hands the socket on, from a thread that owned it or from a close when nobody did: a
    /// graceful close's flush goes to that thread if no writer runs and nothing is left over;
    /// anything else to the writer.
    fn hand_over(&mut self) -> Release {
        let flush_here = self.closed
            && !self.writer_running
            && self.pending.is_empty()
            && self.flush.as_ref().is_some_and(|flush| !flush.is_empty());
        if flush_here {
            self.sending = true;
            Release::SendFlush(self.flush.replace(Vec::new()).unwrap_or_default())
        } else {
            self.sending = false;
            Release::Ring(self.writer_needed())
        }
    }

    /// Work may have arrived for the writer: says whether to wake it, start one (reserved here,
    /// so the connection stays live until it runs) or do nothing (no work, a router owns the
    /// socket and will call this again when it gives it up, or the connection is gone).
    fn writer_needed(&mut self) -> Ring {
        if self.sending {
            Ring::Nothing
        } else if self.writer_running {
            if self.writer_waiting && (self.closed || self.writer_has_work()) {
                Ring::Wake
            } else {
                Ring::Nothing
            }
        } else if self.threads > 0 && self.writer_has_work() {
            self.writer_running = true;
            self.threads += 1;
            Ring::Spawn
        } else {
            Ring::Nothing
        }
    }
}

/// What the writer should do next. It owns the socket for writing until
/// [`ConnCtl::end_writing`] (or until it returns, on a close).
pub(super) enum WriterWake {
    /// Write `pending` (left over from a direct send), then take from the core until it is empty.
    Transmit { pending: Vec<Bytes> },
    /// Write `pending` and `flush` if the close is graceful (`flush` not empty), then shut the socket.
    Close {
        pending: Vec<Bytes>,
        flush: Vec<Bytes>,
    },
    /// No work for [`WRITER_IDLE`]: the thread ends (a new one starts when work arrives).
    Idle,
}

/// What the caller must do after telling a connection about work for its writer (see
/// [`ConnCtl::on_transmit`]), once it has released the core lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ring {
    /// The calling thread now owns the socket for writing: it takes the batch and sends it itself.
    Claimed,
    /// The writer sleeps and must be woken with [`ConnCtl::wake_writer`].
    Wake,
    /// No writer thread runs: start one with [`super::writer::start`] (already counted).
    Spawn,
    /// Whoever owns the socket, or the writer that is awake, sees the flag.
    Nothing,
}

/// What a thread that closes a socket or gives it up must do next (see [`ConnCtl::close`],
/// [`ConnCtl::release`]).
#[derive(Debug)]
pub(crate) enum Release {
    /// The socket is closing gracefully and no writer runs: the caller keeps the socket and sends
    /// the flush itself with [`ConnCtl::send_flush`] once the core lock is released, so closing
    /// thousands of idle clients starts no thread.
    SendFlush(Vec<Bytes>),
    /// Do what the [`Ring`] says for the writer.
    Ring(Ring),
}

/// What the reader should do next.
enum ReaderWake {
    /// Go on; `feed` says the buffered bytes must be fed to the core before reading more.
    Go {
        feed: bool,
    },
    Closed,
}

impl ConnCtl {
    fn new(socket: SocketId, side: Side, addr: SocketAddr, stream: TcpStream) -> Self {
        Self {
            socket,
            side,
            addr,
            server_id: OnceLock::new(),
            stream,
            // The reader, started right after registration.
            state: Mutex::new(ConnState {
                threads: 1,
                ..ConnState::default()
            }),
            writer_bell: Condvar::new(),
            reader_bell: Condvar::new(),
        }
    }

    /// `Action::Transmit`: there is work for this socket.
    ///
    /// With `direct`, if nobody is writing to the socket and nothing is left over, the calling
    /// (routing) thread claims it and will send the batch itself with a non-blocking send: that
    /// saves waking the writer thread (a `futex` wake-up and two context switches per batch). Else
    /// the writer is woken or started — by the caller, after releasing the core lock (both are
    /// syscalls). A writer that is awake or another owner sees the flag anyway.
    pub(crate) fn on_transmit(&self, direct: bool) -> Ring {
        let mut state = lock(&self.state);
        if direct && !state.sending && state.pending.is_empty() && !state.closed {
            state.sending = true;
            state.transmit = false;
            Ring::Claimed
        } else {
            state.transmit = true;
            state.writer_needed()
        }
    }

    /// A routing thread is done sending directly and the core had nothing more: it gives up the
    /// socket, or keeps it to send a close's flush. Says what to do next (work may have arrived
    /// meanwhile, or a close).
    pub(crate) fn release(&self) -> Release {
        lock(&self.state).hand_over()
    }

    /// A routing thread could not send `rest` without blocking: the writer writes it (blocking),
    /// then takes from the core. Says what the writer needs.
    pub(crate) fn hand_off(&self, rest: Vec<Bytes>) -> Ring {
        let mut state = lock(&self.state);
        state.sending = false;
        state.pending = rest;
        state.transmit = true;
        state.writer_needed()
    }

    /// Wakes a writer that was found asleep ([`Ring::Wake`]).
    pub(crate) fn wake_writer(&self) {
        self.writer_bell.notify_one();
    }

    /// Sends as much of `batch` as the socket takes right now (see [`send::send_nonblocking`]).
    pub(crate) fn send_nonblocking(&self, batch: &mut Vec<Bytes>) -> io::Result<bool> {
        send::send_nonblocking(&self.stream, batch)
    }

    /// `Action::PauseReading` / `Action::ResumeReading`.
    pub(crate) fn set_paused(&self, paused: bool) {
        let mut state = lock(&self.state);
        state.paused = paused;
        if paused {
            state.was_paused = true;
        } else {
            drop(state);
            self.reader_bell.notify_one();
        }
    }

    /// `Action::Close`: the reader stops. A non-empty `flush` (graceful shutdown) is written before
    /// the socket is shut: by the caller if nobody writes to the socket and no writer runs
    /// ([`Release::SendFlush`]), else by the writer or by the router that owns the socket when it
    /// gives it up, after what they are writing.
    pub(crate) fn close(&self, flush: Vec<Bytes>) -> Release {
        let release = {
            let mut state = lock(&self.state);
            state.closed = true;
            state.flush = Some(flush);
            if state.sending {
                Release::Ring(Ring::Nothing)
            } else {
                state.hand_over()
            }
        };
        self.reader_bell.notify_one();
        release
    }

    /// Sends the flush [`ConnCtl::close`] handed to the caller, without blocking, and shuts the
    /// socket; what does not fit goes to a writer thread (which gives it [`FLUSH_TIMEOUT`]). Says
    /// what that writer needs.
    ///
    /// [`FLUSH_TIMEOUT`]: super::shared::FLUSH_TIMEOUT
    pub(crate) fn send_flush(&self, mut flush: Vec<Bytes>) -> Ring {
        match send::send_nonblocking(&self.stream, &mut flush) {
            Ok(true) => {
                self.shutdown_socket();
                Ring::Nothing
            }
            Ok(false) => {
                let mut state = lock(&self.state);
                state.sending = false;
                state.flush = Some(flush);
                state.writer_needed()
            }
            Err(err) => {
                log::debug!("final flush to {} {} failed: {err}", self.side, self.socket);
                self.shutdown_socket();
                Ring::Nothing
            }
        }
    }

    /// Shuts the socket down both ways (a syscall: never call it with the core lock held).
    pub(crate) fn shutdown_socket(&self) {
        if let Err(err) = self.stream.shutdown(Shutdown::Both) {
            if err.kind() != io::ErrorKind::NotConnected {
                log::debug!("shutdown of {} {} failed: {err}", self.side, self.socket);
            }
        }
    }

    /// The writer thread is done with the work [`ConnCtl::wait_writer`] gave it: it gives up the
    /// socket.
    pub(super) fn end_writing(&self) {
        lock(&self.state).sending = false;
    }

    /// The writer thread waits until there is work and nobody else is writing, and claims the
    /// socket; or, after [`WRITER_IDLE`] without work, leaves.
    pub(super) fn wait_writer(&self) -> WriterWake {
        let idle_until = Instant::now() + WRITER_IDLE;
        let mut state = lock(&self.state);
        loop {
            if !state.sending {
                if state.closed {
                    state.sending = true;
                    return WriterWake::Close {
                        pending: std::mem::take(&mut state.pending),
                        flush: state.flush.take().unwrap_or_default(),
                    };
                }
                if state.transmit || !state.pending.is_empty() {
                    state.transmit = false;
                    state.sending = true;
                    return WriterWake::Transmit {
                        pending: std::mem::take(&mut state.pending),
                    };
                }
            }
            let now = Instant::now();
            if now >= idle_until {
                state.writer_running = false;
                return WriterWake::Idle;
            }
            state.writer_waiting = true;
            state = wait_timeout(&self.writer_bell, state, idle_until - now);
            state.writer_waiting = false;
        }
    }

    /// A writer thread could not be started: the next work starts another try.
    pub(super) fn writer_not_started(&self) {
        lock(&self.state).writer_running = false;
    }

    /// One of the connection's threads returned (or never started); returns whether it was the last.
    fn thread_done(&self) -> bool {
        let mut state = lock(&self.state);
        state.threads = state.threads.saturating_sub(1);
        state.threads == 0
    }

    fn wait_reader(&self) -> ReaderWake {
        let mut state = lock(&self.state);
        loop {
            if state.closed {
                return ReaderWake::Closed;
            }
            if !state.paused {
                let feed = std::mem::take(&mut state.was_paused);
                return ReaderWake::Go { feed };
            }
            state = wait(&self.reader_bell, state);
        }
    }
}

/// Counts one of a connection's threads out when dropped (also when its spawn failed, since the
/// closure owning the guard is dropped then).
struct ThreadGuard {
    inner: Arc<Inner>,
    conn: Arc<ConnCtl>,
}

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        if self.conn.thread_done() {
            self.inner.remove_live(self.conn.socket);
        }
    }
}

/// Registers a freshly accepted socket with the core and starts its reader (its writer starts when
/// there is work for it).
pub(crate) fn open(inner: &Arc<Inner>, stream: TcpStream, addr: SocketAddr, side: Side) {
    if let Err(err) = stream.set_nodelay(true) {
        log::warn!("cannot set TCP_NODELAY on {side} from {addr}: {err}");
    }
    // Randomness the core will want, drawn before the lock: an snet port's handshake draws from the
    // pool the reader carries; a plain server port's auth challenge is taken out of it right here.
    let snet = inner.settings.is_snet(side);
    let wanted = match (snet, side) {
        (true, _) => SNET_POOL,
        (false, Side::Server) => CHALLENGE_LEN,
        (false, Side::Client) => 0,
    };
    let mut pool = match PreDrawn::draw(wanted) {
        Ok(pool) => pool,
        Err(err) => {
            match side {
                Side::Server => log::error!(
                    "error happends when accept server from {addr}: OS random source failed: {err}"
                ),
                Side::Client => {
                    log::error!("refuse client from {addr}: OS random source failed: {err}");
                }
            }
            return;
        }
    };
    let challenge = match (snet, side) {
        (false, Side::Server) => Challenge::random(&mut pool),
        // Ignored by the switchboard: clients have none, and on snet ports it draws its own later.
        _ => Challenge([0; CHALLENGE_LEN]),
    };
    let now = Instant::now();
    let registered = inner.with_core(|shared| {
        let socket = match shared
            .switchboard
            .accept_with_challenge(side, now, challenge)
        {
            Ok(socket) => socket,
            Err(err) => return Err((err, stream)),
        };
        let conn = Arc::new(ConnCtl::new(socket, side, addr, stream));
        shared.conns.insert(socket, Arc::clone(&conn));
        // Live before any of its threads can start (a server's challenge starts its writer).
        inner.add_live(Arc::clone(&conn));
        Ok(conn)
    });
    let conn = match registered {
        Ok(conn) => conn,
        Err((AcceptError::TooManyClients { max }, stream)) => {
            log::warn!("refuse client from {addr}: client limit of {max} connections reached");
            drop(stream);
            return;
        }
    };
    log::debug!("{side} {} connected from {addr}", conn.socket);
    let id = conn.socket.as_u64();
    let spawned = spawn(inner, &conn, format!("fw-r-{id}"), move |inner, conn| {
        reader_loop(inner, conn, pool);
    });
    if let Err(err) = spawned {
        log::error!("cannot start a thread for {side} from {addr}: {err}");
        // The core forgets the socket; its Close shuts it, and a writer that did start returns.
        inner.with_core(|shared| {
            shared
                .switchboard
                .handle_closed(conn.socket, Instant::now());
        });
    }
}

/// Spawns one connection thread running `body` (counted in the connection's threads already).
pub(super) fn spawn(
    inner: &Arc<Inner>,
    conn: &Arc<ConnCtl>,
    name: String,
    body: impl FnOnce(&Inner, &ConnCtl) + Send + 'static,
) -> io::Result<()> {
    let guard = ThreadGuard {
        inner: Arc::clone(inner),
        conn: Arc::clone(conn),
    };
    thread::Builder::new()
        .name(name)
        .stack_size(CONN_STACK_SIZE)
        .spawn(move || {
            body(&guard.inner, &guard.conn);
            drop(guard);
        })
        .map(drop)
}

/// Reader thread: read, feed the core, repeat; stop while paused; report EOF or errors.
///
/// The read buffer is only ever appended to between core calls (the switchboard remembers how much of
/// it is decrypted already): `make_room` and `read_into` keep its contents, and it is never replaced
/// while it holds bytes. `rng` feeds the snet handshake of this socket, if any.
fn reader_loop(inner: &Inner, conn: &ConnCtl, mut rng: PreDrawn) {
    let size = inner.settings.read_buffer(conn.side);
    let decoder = FrameDecoder::new(inner.settings.max_packet);
    // Allocated only once data has actually arrived: idle connections cost no buffer.
    let mut slot: Option<BytesMut> = None;
    loop {
        let feed = match conn.wait_reader() {
            ReaderWake::Closed => return,
            ReaderWake::Go { feed } => feed,
        };
        if feed {
            if let Some(buf) = slot.as_mut().filter(|buf| !buf.is_empty()) {
                feed_core(inner, conn, buf, &mut rng);
                continue;
            }
        }
        let buf = match slot.as_mut() {
            Some(buf) => buf,
            None => match wait_for_data(&conn.stream) {
                Ok(true) => slot.insert(BytesMut::with_capacity(size)),
                Ok(false) => return report_closed(inner, conn, None),
                Err(err) => return report_closed(inner, conn, Some(err)),
            },
        };
        make_room(buf, &decoder, size);
        match read_into(&conn.stream, buf) {
            Ok(0) => return report_closed(inner, conn, None),
            Ok(_) => feed_core(inner, conn, buf, &mut rng),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return report_closed(inner, conn, Some(err)),
        }
    }
}

/// Blocks until the socket has data (true) or reached EOF (false), without allocating a buffer.
fn wait_for_data(stream: &TcpStream) -> io::Result<bool> {
    let mut probe = [0u8; 1];
    loop {
        match stream.peek(&mut probe) {
            Ok(n) => return Ok(n > 0),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// Makes sure `buf` has room for the rest of the frame at its front (so a large frame arrives in
/// as few reads as possible) and, failing that, for a useful read. `reserve` reclaims the
/// allocation in place once the routed frames that still view it have been written and dropped.
fn make_room(buf: &mut BytesMut, decoder: &FrameDecoder, size: usize) {
    let need = decoder
        .frame_len_hint(buf)
        .map_or(0, |total| total.saturating_sub(buf.len()));
    let spare = buf.capacity() - buf.len();
    if spare < need || spare < (size / 4).max(64) {
        buf.reserve(need.max(size));
    }
}

/// One `read` into the spare capacity of `buf`.
///
/// Safe Rust cannot read into uninitialised memory, so the spare capacity is zeroed first; that
/// costs a memset of at most the buffer size per read.
fn read_into(mut stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let start = buf.len();
    buf.resize(buf.capacity(), 0);
    let result = stream.read(&mut buf[start..]);
    let read = *result.as_ref().unwrap_or(&0);
    buf.truncate(start + read);
    result
}

/// Hands the buffered bytes to the core.
fn feed_core(inner: &Inner, conn: &ConnCtl, buf: &mut BytesMut, rng: &mut PreDrawn) {
    let now = Instant::now();
    inner.with_core(|shared| {
        shared.switchboard.handle_input(conn.socket, buf, now, rng);
    });
}

/// Tells the core the socket is gone (a no-op if the core already closed it).
fn report_closed(inner: &Inner, conn: &ConnCtl, err: Option<io::Error>) {
    if let Some(err) = err {
        log::debug!(
            "read from {} {} ({}) failed: {err}",
            conn.side,
            conn.socket,
            conn.addr
        );
    }
    inner.with_core(|shared| {
        shared
            .switchboard
            .handle_closed(conn.socket, Instant::now());
    });
}
