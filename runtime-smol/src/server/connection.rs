//! One socket: registration with the core, then a reader task and a writer task.
//!
//! The reader feeds bytes to the core and obeys pause/resume; the writer drains the core's queue for
//! this socket with vectored writes, one syscall per batch, and on close writes the last flush and
//! shuts the socket. Neither decides anything about the protocol: snet handshakes, decryption,
//! encryption and reconnects all happen inside the switchboard.

use super::arena;
use super::rng::{PreDrawn, SNET_POOL};
use super::shared::{Conn, Inner, TaskGuard};
use super::signal::Task;
use bytes::{Buf, Bytes, BytesMut};
use fastway_core::auth::{CHALLENGE_LEN, Challenge};
use fastway_core::frame::FrameDecoder;
use fastway_core::gateway::Side;
use fastway_core::switchboard::SocketId;
use log::{debug, warn};
use smol::{Async, Executor, Timer};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Most slices handed to one `writev`.
const MAX_IOV: usize = 64;
/// How long a closing connection may take to write its last bytes (graceful shutdown, snet refusal).
pub(crate) const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Registers a freshly accepted socket with the core and starts its tasks on `executor`. A plain
/// client over the `max_clients` cap, or a socket for which the OS RNG fails, is closed at once (the
/// socket is dropped) with a log line.
///
/// Randomness is drawn here, before the lock: a plain server port's 8-byte challenge, and on an snet
/// port a small pool the reader hands to the switchboard for the snet handshake.
pub(crate) fn start(
    executor: &Executor<'static>,
    inner: &Arc<Inner>,
    stream: Async<TcpStream>,
    addr: SocketAddr,
    side: Side,
) {
    let snet = inner.is_snet(side);
    let wanted = match (snet, side) {
        (true, _) => SNET_POOL,
        (false, Side::Server) => CHALLENGE_LEN,
        (false, Side::Client) => 0,
    };
    let mut pool = match PreDrawn::draw(wanted) {
        Ok(pool) => pool,
        Err(err) => {
            warn!("refuse {side} from {addr}: OS random number generator failed: {err}");
            return;
        }
    };
    // Ignored by the core on snet ports (the server's peer, and its challenge, come after the snet
    // handshake, from the pool) and for clients.
    let challenge = if !snet && side == Side::Server {
        Challenge::random(&mut pool)
    } else {
        Challenge([0; CHALLENGE_LEN])
    };
    let rng = snet.then(|| Box::new(pool));
    let now = Instant::now();
    let conn = {
        let mut shared = inner.lock();
        let socket = match shared
            .switchboard
            .accept_with_challenge(side, now, challenge)
        {
            Ok(socket) => socket,
            Err(err) => {
                drop(shared);
                warn!("refuse {side} from {addr}: {err}");
                return;
            }
        };
        let conn = Arc::new(Conn::new(socket, addr, side));
        shared.register(Arc::clone(&conn));
        shared.dispatch();
        conn
    };
    debug!("{side} {} connected from {addr}", conn.socket);
    let socket = conn.socket;
    let stream = Arc::new(stream);
    let reader = Reader {
        _guard: inner.task_guard(),
        inner: Arc::clone(inner),
        conn: Arc::clone(&conn),
        socket,
        stream: Arc::clone(&stream),
        rng,
    };
    let writer = Writer {
        _guard: inner.task_guard(),
        inner: Arc::clone(inner),
        conn,
        socket,
        stream,
    };
    executor.spawn(reader.run()).detach();
    executor.spawn(writer.run()).detach();
}

/// The reading half of a connection.
struct Reader {
    /// Keeps the task counted until it ends.
    _guard: TaskGuard,
    inner: Arc<Inner>,
    conn: Arc<Conn>,
    socket: SocketId,
    stream: Arc<Async<TcpStream>>,
    /// Pre-drawn randomness for the snet handshake (snet ports only; boxed so that a plain
    /// connection's task stays small).
    rng: Option<Box<PreDrawn>>,
}

impl Reader {
    async fn run(mut self) {
        let buffer_size = match self.conn.side {
            Side::Client => self.inner.client_read_buffer,
            Side::Server => self.inner.server_read_buffer,
        };
        // A buffer of the socket's own exists only while the core has left bytes in it (part of a
        // frame), and is only ever appended to between core calls (the switchboard's rule). Without
        // one, reads go to the thread's shared chunk (`arena`), so an idle socket holds no buffer. A
        // socket configured to read more than a chunk always uses (and a server keeps) its own.
        let mut buf: Option<ReadBuf> = None;
        // A resume came in: the bytes we hold must reach the core before we read more.
        let mut resumed = false;
        // The last read returned data, so the socket may well have more: while we hold a buffer
        // (a server always, a client with part of a frame), read again after letting the other
        // tasks run, before paying for a readiness wait, which re-arms the socket's registration in
        // the reactor (an `epoll_ctl`) every time. A client whose buffer was released waits: most
        // often it has sent all it had, and a read would only find nothing.
        let mut try_first = false;
        loop {
            if self.conn.signals.is_closed() {
                return;
            }
            if self.conn.paused.load(Ordering::Acquire) {
                if !self.conn.signals.wait(Task::Reader).await {
                    return;
                }
                resumed = true;
                continue;
            }
            if resumed || self.conn.signals.take(Task::Reader) {
                resumed = false;
                if let Some(held) = buf.as_mut().filter(|held| !held.is_empty()) {
                    self.feed(&mut held.data);
                    if held.is_empty() && self.conn.side == Side::Client {
                        buf = None;
                    }
                }
                continue;
            }
            if try_first && buf.is_some() {
                try_first = false;
                // A cooperative executor: give the writers (and the other readers) their turn
                // first, which also lets more bytes arrive for this read.
                smol::future::yield_now().await;
            } else {
                match self
                    .conn
                    .signals
                    .or_closed(Task::Reader, self.stream.readable())
                    .await
                {
                    None => return,
                    Some(Err(err)) => return self.lost(&err),
                    Some(Ok(())) => {}
                }
            }
            let read = if buf.is_none() && buffer_size <= arena::CHUNK {
                self.read_shared(&mut buf, buffer_size)
            } else {
                let held = buf.get_or_insert_with(ReadBuf::default);
                let read = held.read_from(&self.stream, self.inner.decoder, buffer_size);
                if read.as_ref().is_ok_and(|&read| read > 0) {
                    self.feed(&mut held.data);
                }
                read
            };
            match read {
                Ok(0) => return self.lost(&io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => try_first = true,
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(err) => return self.lost(&err),
            }
            if buf.as_ref().is_some_and(ReadBuf::is_empty)
                && (self.conn.side == Side::Client || buffer_size <= arena::CHUNK)
            {
                buf = None;
            }
        }
    }

    /// One read for a socket that holds no pending bytes, into the thread's shared chunk (see
    /// [`arena`]): the bytes go to the core at once, and only what it leaves (part of a frame) is
    /// copied into a buffer of the socket's own, with room for the rest of that frame. Returns the
    /// number of bytes read (0 at EOF).
    fn read_shared(&mut self, buf: &mut Option<ReadBuf>, buffer_size: usize) -> io::Result<usize> {
        let mut bytes = arena::read(self.stream.get_ref())?;
        let read = bytes.len();
        if read > 0 {
            self.feed(&mut bytes);
        }
        if !bytes.is_empty() {
            let missing = self
                .inner
                .decoder
                .frame_len_hint(&bytes)
                .map_or(0, |total| total.saturating_sub(bytes.len()));
            *buf = Some(ReadBuf::with_pending(&bytes, missing.max(buffer_size)));
        }
        Ok(read)
    }

    /// Hands the buffered bytes to the core, which consumes every whole frame from the front (on an
    /// snet port: runs the handshake, or decrypts and takes everything).
    fn feed(&mut self, buf: &mut BytesMut) {
        let mut no_pool = PreDrawn::empty();
        let rng = self.rng.as_deref_mut().unwrap_or(&mut no_pool);
        let now = Instant::now();
        let mut shared = self.inner.lock();
        shared.switchboard.handle_input(self.socket, buf, now, rng);
        shared.dispatch();
    }

    /// The socket reached EOF or failed: tell the core, which emits the Close that stops the writer
    /// (on an snet port the session then waits for its client to reconnect).
    fn lost(&self, err: &io::Error) {
        debug!(
            "{} {} from {}: read ended: {err}",
            self.conn.side, self.socket, self.conn.addr
        );
        let now = Instant::now();
        let mut shared = self.inner.lock();
        shared.switchboard.handle_closed(self.socket, now);
        shared.dispatch();
    }
}

/// A socket's read buffer: the bytes the core has not consumed yet (`data`), followed in the same
/// allocation by zeroed room to read into (`spare`).
///
/// Safe code cannot read into a `BytesMut`'s uninitialised capacity, so the room must be zeroed
/// before a read; it is zeroed once, when the allocation is made (or reclaimed), and then filled by
/// as many reads as it takes: each read lands in `spare[..]` and the bytes read are moved onto the
/// end of `data` by `unsplit`, which is O(1) because the two are contiguous. Zeroing the whole
/// window before every read instead cost a `memset` of up to the buffer size per read.
#[derive(Debug, Default)]
struct ReadBuf {
    /// Bytes read and not yet consumed by the core (it splits whole frames off the front).
    data: BytesMut,
    /// Zeroed room right after `data`.
    spare: BytesMut,
}

impl ReadBuf {
    /// Whether the core has consumed everything read.
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// A buffer holding a copy of `pending` (bytes the core left, part of a frame) with capacity for
    /// `room` more; the room is zeroed by the first read.
    fn with_pending(pending: &[u8], room: usize) -> Self {
        let mut data = BytesMut::with_capacity(pending.len() + room);
        data.extend_from_slice(pending);
        Self {
            data,
            spare: BytesMut::new(),
        }
    }

    /// One non-blocking read appended to `data`. Makes room first: the whole rest of a large frame
    /// whose length is known (so it arrives in few reads), otherwise another `buffer_size` when less
    /// than a quarter of that is left.
    fn read_from(
        &mut self,
        socket: &Async<TcpStream>,
        decoder: FrameDecoder,
        buffer_size: usize,
    ) -> io::Result<usize> {
        let missing = decoder
            .frame_len_hint(&self.data)
            .map_or(0, |total| total.saturating_sub(self.data.len()));
        let room = self.spare.len();
        if room < missing || room < (buffer_size / 4).max(1) {
            self.make_room(missing.max(buffer_size));
        }
        let mut stream = socket.get_ref();
        let read = stream.read(&mut self.spare)?;
        self.data.unsplit(self.spare.split_to(read));
        Ok(read)
    }

    /// Replaces `spare` by at least `wanted` bytes of zeroed room after `data`. `reserve` reuses the
    /// allocation (moving the pending bytes to its front) once the frames split off it are gone, and
    /// otherwise allocates a new one and copies the pending bytes over.
    fn make_room(&mut self, wanted: usize) {
        // Drop our handle on the old room first so that `reserve` may find the allocation unshared.
        self.spare = BytesMut::new();
        self.data.reserve(wanted);
        let start = self.data.len();
        self.data.resize(self.data.capacity(), 0);
        self.spare = self.data.split_off(start);
    }
}

/// The writing half of a connection.
struct Writer {
    /// Keeps the task counted until it ends.
    _guard: TaskGuard,
    inner: Arc<Inner>,
    conn: Arc<Conn>,
    socket: SocketId,
    stream: Arc<Async<TcpStream>>,
}

impl Writer {
    async fn run(self) {
        let mut unwritten = self.serve().await;
        // Closed by the core: write what it still owed (an snet refusal, a graceful shutdown's last
        // frames), then shut the socket so the peer sees EOF even while the reader still holds it.
        // Bytes that follow the stream must not leave a gap in it: the rest of a batch whose write the
        // close interrupted goes first (the core counted it as sent; on an snet port it is encrypted
        // and counted in the stream). Without a flush the interrupted batch is simply cut off.
        let flush = self.conn.take_flush();
        if !flush.is_empty() {
            unwritten.extend(flush);
            Box::pin(flush_before_close(&self.stream, unwritten)).await;
        }
        let _ = self.stream.get_ref().shutdown(Shutdown::Both);
    }

    /// Drains the core's queue for this socket on every wake-up until the connection is closed.
    /// Returns what a close left unwritten of the batch in flight.
    async fn serve(&self) -> Vec<Bytes> {
        let mut batch: Vec<Bytes> = Vec::new();
        loop {
            if !self.conn.signals.wait(Task::Writer).await {
                return Vec::new();
            }
            // Let the tasks already scheduled run first (the executor queue is FIFO): the readers
            // woken by the same reactor turn feed the core before we take, so one `writev` carries
            // what would otherwise take several (64 B × 32 in flight: 2.7 → 3.4 M msg/s).
            smol::future::yield_now().await;
            loop {
                batch.clear();
                let taken = {
                    let now = Instant::now();
                    let mut shared = self.inner.lock();
                    let taken = shared
                        .switchboard
                        .poll_transmit(self.socket, now, &mut batch);
                    // Taking bytes may release clients paused on this server.
                    shared.dispatch();
                    taken
                };
                if taken == 0 {
                    break;
                }
                // Boxed: the write future is large and exists only while bytes are in flight, so an
                // idle connection's writer task stays small.
                let write = Box::pin(write_all(&self.stream, &mut batch));
                match self.conn.signals.or_closed(Task::Writer, write).await {
                    // `write_all` keeps exactly the unwritten bytes in `batch`.
                    None => return batch,
                    Some(Ok(())) => {}
                    Some(Err(err)) => {
                        debug!(
                            "{} {} from {}: write failed: {err}",
                            self.conn.side, self.socket, self.conn.addr
                        );
                        let now = Instant::now();
                        let mut shared = self.inner.lock();
                        shared.switchboard.handle_closed(self.socket, now);
                        shared.dispatch();
                        return Vec::new();
                    }
                }
            }
        }
    }
}

/// Writes the last bytes of a closing connection, giving up after [`FLUSH_TIMEOUT`].
async fn flush_before_close(socket: &Async<TcpStream>, mut flush: Vec<Bytes>) {
    let written = smol::future::or(write_all(socket, &mut flush), async {
        Timer::after(FLUSH_TIMEOUT).await;
        Err(io::ErrorKind::TimedOut.into())
    })
    .await;
    if let Err(err) = written {
        debug!("final flush failed: {err}");
    }
}

/// Writes every byte of `batch` with vectored writes (at most [`MAX_IOV`] slices per call), handling
/// partial writes. Leaves `batch` empty on success; between writes (so also when the future is dropped
/// or fails) `batch` holds exactly the bytes not written yet.
pub(crate) async fn write_all(socket: &Async<TcpStream>, batch: &mut Vec<Bytes>) -> io::Result<()> {
    loop {
        let empty = batch.iter().take_while(|bytes| bytes.is_empty()).count();
        batch.drain(..empty);
        if batch.is_empty() {
            return Ok(());
        }
        let pending = &batch[..];
        let written = socket
            .write_with(|stream| {
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                let count = pending.len().min(MAX_IOV);
                for (slot, bytes) in slices.iter_mut().zip(pending) {
                    *slot = IoSlice::new(bytes);
                }
                let mut stream = stream;
                stream.write_vectored(&slices[..count])
            })
            .await?;
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "socket accepted no bytes",
            ));
        }
        let mut done = 0;
        advance(batch, &mut done, written);
        batch.drain(..done);
    }
}

/// Marks `written` bytes from `batch[*next..]` as sent.
fn advance(batch: &mut [Bytes], next: &mut usize, mut written: usize) {
    while written > 0 {
        let Some(front) = batch.get_mut(*next) else {
            return;
        };
        if written >= front.len() {
            written -= front.len();
            *next += 1;
        } else {
            front.advance(written);
            written = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn advance_skips_whole_slices_and_trims_a_partial_one() {
        let mut batch = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b""),
            Bytes::from_static(b"defg"),
        ];
        let mut next = 0;
        advance(&mut batch, &mut next, 5);
        assert_eq!(next, 2);
        assert_eq!(batch[2], Bytes::from_static(b"fg"));
        advance(&mut batch, &mut next, 2);
        assert_eq!(next, 3);
    }

    /// Reads land in the zeroed room and are appended to the pending bytes in place; the room is
    /// remade (keeping the pending bytes) once it runs low.
    #[test]
    fn read_buf_appends_reads_and_keeps_pending_bytes_across_new_room() {
        use std::io::Write as _;
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (socket, _) = listener.accept().unwrap();
        let socket = Async::new(socket).unwrap();
        let decoder = FrameDecoder::new(1 << 20);
        let mut buf = ReadBuf::default();
        let mut expected = Vec::new();
        for round in 0..20u8 {
            let chunk = vec![round; 50];
            peer.write_all(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
            let mut got = 0;
            while got < chunk.len() {
                match buf.read_from(&socket, decoder, 64) {
                    Ok(read) => got += read,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(err) => panic!("read failed: {err}"),
                }
            }
            assert_eq!(&buf.data[..], &expected[..]);
            if round % 3 == 2 {
                // What the core does with whole frames: split them off the front.
                let consumed = buf.data.split_to(buf.data.len() / 2);
                expected.drain(..consumed.len());
            }
        }
    }

    /// Idle connections must cost almost nothing (DESIGN.md §5): the two task futures stay small
    /// because the rarely used write and flush futures (and the snet rng pool) are boxed.
    #[test]
    fn idle_connection_tasks_stay_small() {
        use fastway_core::switchboard::{Switchboard, SwitchboardConfig};
        let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
        let inner = Arc::new(Inner::new(
            Switchboard::new(SwitchboardConfig::default()),
            2048,
            65536,
        ));
        let listener = std::net::TcpListener::bind(localhost).unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let stream = Arc::new(Async::new(stream).unwrap());
        let socket = inner
            .lock()
            .switchboard
            .accept_with_challenge(Side::Client, Instant::now(), Challenge([0; CHALLENGE_LEN]))
            .unwrap();
        let conn = Arc::new(Conn::new(socket, localhost, Side::Client));
        let reader = Reader {
            _guard: inner.task_guard(),
            inner: Arc::clone(&inner),
            conn: Arc::clone(&conn),
            socket,
            stream: Arc::clone(&stream),
            rng: None,
        };
        let writer = Writer {
            _guard: inner.task_guard(),
            inner: Arc::clone(&inner),
            conn,
            socket,
            stream,
        };
        let (reader, writer) = (reader.run(), writer.run());
        let sizes = (
            std::mem::size_of_val(&reader),
            std::mem::size_of_val(&writer),
        );
        assert!(sizes.0 + sizes.1 <= 768, "task futures grew: {sizes:?}");
    }
}
