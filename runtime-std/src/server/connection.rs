//! One physical connection: its control block, its reader thread and its writer thread.
//!
//! Both threads share one `TcpStream` through an `Arc` (`&TcpStream` implements `Read` and `Write`),
//! so a connection costs one file descriptor. The control block [`ConnCtl`] holds the doorbells the
//! dispatcher rings (`Mutex` flags + `Condvar`s, so a wake-up is never lost: a flag set before the
//! thread waits is seen when it checks). Closing uses `TcpStream::shutdown(Both)`, which makes a
//! reader blocked in `read` return and a writer blocked in `write` fail.

use super::rng::{PreDrawn, SNET_POOL};
use super::shared::{FLUSH_TIMEOUT, Inner};
use super::sync::{lock, wait};
use bytes::{Bytes, BytesMut};
use fastway_core::auth::{CHALLENGE_LEN, Challenge};
use fastway_core::frame::FrameDecoder;
use fastway_core::gateway::{AcceptError, Side};
use fastway_core::switchboard::SocketId;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::Instant;

/// Stack size of reader and writer threads. They only run small loops; a small stack keeps thousands
/// of idle connections cheap (only touched pages are committed anyway).
const CONN_STACK_SIZE: usize = 64 * 1024;

/// Most slices handed to one `write_vectored` call (well under every platform's `IOV_MAX`).
const MAX_SLICES: usize = 64;

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
    /// The socket, read by the reader and written by the writer.
    stream: TcpStream,
    state: Mutex<ConnState>,
    writer_bell: Condvar,
    reader_bell: Condvar,
    /// Threads of this connection still running; the last one out removes it from the live set.
    threads_left: AtomicUsize,
}

#[derive(Debug, Default)]
struct ConnState {
    /// The core has bytes for this socket (`Action::Transmit`).
    transmit: bool,
    /// Reading is paused by backpressure.
    paused: bool,
    /// Reading was paused since the reader last looked: it must feed its buffered bytes first.
    was_paused: bool,
    /// The core forgot this socket (`Action::Close`).
    closed: bool,
    /// The writer sleeps on its bell (so a ring must notify it; otherwise it sees the flag anyway).
    writer_waiting: bool,
    /// What to write before closing; taken by the writer.
    flush: Option<Vec<Bytes>>,
}

/// What woke the writer.
enum WriterWake {
    Transmit,
    Close(Vec<Bytes>),
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
            state: Mutex::new(ConnState::default()),
            writer_bell: Condvar::new(),
            reader_bell: Condvar::new(),
            threads_left: AtomicUsize::new(2),
        }
    }

    /// `Action::Transmit`: tells the writer there is work. Returns whether it sleeps and must be
    /// woken with [`ConnCtl::wake_writer`], which the caller does after releasing the core lock (a
    /// wake-up is a syscall). A writer that is awake sees the flag before it waits again, so it
    /// costs nothing then.
    pub(crate) fn ring_writer(&self) -> bool {
        let mut state = lock(&self.state);
        state.transmit = true;
        state.writer_waiting
    }

    /// Wakes a writer that [`ConnCtl::ring_writer`] found asleep.
    pub(crate) fn wake_writer(&self) {
        self.writer_bell.notify_one();
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

    /// `Action::Close`: the writer writes `flush` and closes; the reader stops.
    pub(crate) fn close(&self, flush: Vec<Bytes>) {
        {
            let mut state = lock(&self.state);
            state.closed = true;
            state.flush = Some(flush);
        }
        self.writer_bell.notify_one();
        self.reader_bell.notify_one();
    }

    /// Shuts the socket down both ways (a syscall: never call it with the core lock held).
    pub(crate) fn shutdown_socket(&self) {
        if let Err(err) = self.stream.shutdown(Shutdown::Both) {
            if err.kind() != io::ErrorKind::NotConnected {
                log::debug!("shutdown of {} {} failed: {err}", self.side, self.socket);
            }
        }
    }

    fn wait_writer(&self) -> WriterWake {
        let mut state = lock(&self.state);
        loop {
            if let Some(flush) = state.flush.take() {
                return WriterWake::Close(flush);
            }
            if state.closed {
                return WriterWake::Close(Vec::new());
            }
            if state.transmit {
                state.transmit = false;
                return WriterWake::Transmit;
            }
            state.writer_waiting = true;
            state = wait(&self.writer_bell, state);
            state.writer_waiting = false;
        }
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
        if self.conn.threads_left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.remove_live(self.conn.socket);
        }
    }
}

/// Registers a freshly accepted socket with the core and starts its reader and writer.
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
    inner.add_live(Arc::clone(&conn));
    let id = conn.socket.as_u64();
    let spawned = spawn(inner, &conn, format!("fw-w-{id}"), writer_loop).and_then(|()| {
        spawn(inner, &conn, format!("fw-r-{id}"), move |inner, conn| {
            reader_loop(inner, conn, pool);
        })
    });
    if let Err(err) = spawned {
        log::error!("cannot start threads for {side} from {addr}: {err}");
        // The core forgets the socket; its Close shuts it, and a writer that did start returns.
        inner.with_core(|shared| {
            shared
                .switchboard
                .handle_closed(conn.socket, Instant::now());
        });
    }
}

/// Spawns one connection thread running `body`.
fn spawn(
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

/// Writer thread: on each wake-up take everything queued and write it as one vectored batch, until the
/// core has nothing more; on close write the flush and shut the socket.
fn writer_loop(inner: &Inner, conn: &ConnCtl) {
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        match conn.wait_writer() {
            WriterWake::Close(flush) => {
                if !flush.is_empty() {
                    // Bounded: graceful shutdown must not hang on a peer that stopped reading.
                    let flushed = conn
                        .stream
                        .set_write_timeout(Some(FLUSH_TIMEOUT))
                        .and_then(|()| write_batch(&conn.stream, &flush));
                    if let Err(err) = flushed {
                        log::debug!("final flush to {} {} failed: {err}", conn.side, conn.socket);
                    }
                }
                conn.shutdown_socket();
                return;
            }
            WriterWake::Transmit => loop {
                // Let the threads that are ready to run go first (the readers that were woken with
                // us feed the core), so that one `writev` carries what would otherwise take several:
                // 64 B × 32 in flight went from 1.8 to 2.1 M msg/s, 0.75 to 0.63 µs CPU per message.
                thread::yield_now();
                let now = Instant::now();
                let taken = inner.with_core(|shared| {
                    shared
                        .switchboard
                        .poll_transmit(conn.socket, now, &mut batch)
                });
                if taken == 0 {
                    break;
                }
                let written = write_batch(&conn.stream, &batch);
                // Drop the frames now so readers can reclaim their buffers.
                batch.clear();
                if let Err(err) = written {
                    log::debug!(
                        "write to {} {} ({}) failed: {err}",
                        conn.side,
                        conn.socket,
                        conn.addr
                    );
                    // The Close this produces wakes us (wait_writer) and we return.
                    inner.with_core(|shared| {
                        shared
                            .switchboard
                            .handle_closed(conn.socket, Instant::now());
                    });
                    break;
                }
            },
        }
    }
}

/// Writes every byte of `batch` with vectored writes (at most [`MAX_SLICES`] slices per call),
/// continuing after partial writes.
pub(crate) fn write_batch(mut stream: &TcpStream, batch: &[Bytes]) -> io::Result<()> {
    let mut index = 0;
    let mut offset = 0;
    loop {
        // Skip what is fully written (and empty chunks, which would make a write return 0).
        while batch.get(index).is_some_and(|chunk| offset >= chunk.len()) {
            index += 1;
            offset = 0;
        }
        let Some(rest) = batch.get(index..).filter(|rest| !rest.is_empty()) else {
            return Ok(());
        };
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        for (slot, chunk) in slices.iter_mut().zip(rest) {
            let start = if count == 0 { offset } else { 0 };
            *slot = IoSlice::new(chunk.get(start..).unwrap_or_default());
            count += 1;
        }
        let mut written = match stream.write_vectored(&slices[..count]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "socket accepted no bytes",
                ));
            }
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        while written > 0 {
            let Some(chunk) = batch.get(index) else { break };
            let left = chunk.len() - offset;
            if written >= left {
                written -= left;
                index += 1;
                offset = 0;
            } else {
                offset += written;
                written = 0;
            }
        }
    }
}
