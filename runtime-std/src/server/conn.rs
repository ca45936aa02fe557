//! One accepted socket as the event loop sees it, and the adapter settings its reads follow.
//!
//! A connection is plain data owned by the loop thread (no lock, no thread of its own): the
//! non-blocking socket, a read buffer that exists only while bytes are in flight, the batch taken
//! from the core and not fully written yet, and the flags the core's actions set.

use super::rng::PreDrawn;
use super::send;
use bytes::{Bytes, BytesMut};
use fastway_core::frame::FrameDecoder;
use fastway_core::gateway::Side;
use fastway_core::switchboard::SocketId;
use mio::net::TcpStream;
use socket2::SockRef;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};

/// Adapter settings the loop reads with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Initial read-buffer capacity of a client connection.
    pub(crate) client_read_buffer: usize,
    /// Initial read-buffer capacity of a server connection.
    pub(crate) server_read_buffer: usize,
    /// `MaxPacket`, for sizing the read buffer ahead of a large frame.
    pub(crate) max_packet: u32,
    /// Whether the client port speaks snet (its sockets need randomness for the handshake).
    pub(crate) client_snet: bool,
    /// Whether the server port speaks snet.
    pub(crate) server_snet: bool,
}

impl Settings {
    /// The read-buffer size for connections on `side` (at least 64 bytes, so a read always makes progress).
    pub(crate) fn read_buffer(&self, side: Side) -> usize {
        match side {
            Side::Client => self.client_read_buffer,
            Side::Server => self.server_read_buffer,
        }
        .max(64)
    }

    /// Whether `side`'s port speaks snet.
    pub(crate) fn is_snet(&self, side: Side) -> bool {
        match side {
            Side::Client => self.client_snet,
            Side::Server => self.server_snet,
        }
    }
}

/// One accepted socket.
pub(crate) struct Conn {
    /// The core's handle.
    pub(crate) id: SocketId,
    /// Which listener it came from.
    pub(crate) side: Side,
    /// The remote address, for logs and the per-address auth failure count.
    pub(crate) addr: SocketAddr,
    /// The game server id it registered under, once authenticated: the close line names it.
    pub(crate) server_id: Option<u32>,
    /// The non-blocking socket, registered for readable and writable edges.
    pub(crate) stream: TcpStream,
    /// Bytes read and not consumed by the core yet. Allocated when data arrives and released once
    /// the socket is drained and the core consumed everything, so an idle connection holds none.
    pub(crate) read_buf: Option<BytesMut>,
    /// Bytes taken from the core (or a close's flush) and not written yet, in order.
    pub(crate) queue: Vec<Bytes>,
    /// The socket took every byte offered last time: a write may be tried. Cleared when a write
    /// stops short; the next writable edge sets it again.
    pub(crate) writable: bool,
    /// Reading is paused by backpressure (`PauseReading`).
    pub(crate) paused: bool,
    /// The core forgot this socket (`Close`): write `queue`, then drop the socket.
    pub(crate) closing: bool,
    /// The socket is in the loop's list of sockets to write this wake-up.
    pub(crate) dirty: bool,
    /// The peer shut its side (a read-closed edge came): read until EOF, since a short read no
    /// longer proves the socket drained (the EOF edge came with the last bytes and will not repeat).
    pub(crate) read_closed: bool,
    /// Randomness for the core's draws on this socket (snet handshake), drawn at accept.
    pub(crate) rng: PreDrawn,
}

/// How a read round on a socket ended.
pub(crate) enum ReadOutcome {
    /// Bytes arrived and are in the read buffer; `drained` says the socket has no more right now.
    Data { drained: bool },
    /// Nothing to read now.
    Empty,
    /// The peer closed its side.
    Eof,
    /// The socket failed.
    Failed(io::Error),
}

impl Conn {
    /// A freshly accepted, registered socket.
    pub(crate) fn new(
        id: SocketId,
        side: Side,
        addr: SocketAddr,
        stream: TcpStream,
        rng: PreDrawn,
    ) -> Self {
        Self {
            id,
            side,
            addr,
            server_id: None,
            stream,
            read_buf: None,
            queue: Vec::new(),
            writable: true,
            paused: false,
            closing: false,
            dirty: false,
            read_closed: false,
            rng,
        }
    }

    /// One read into the read buffer (allocated now if the connection had none), sized for the
    /// frame at its front.
    pub(crate) fn read(&mut self, size: usize, decoder: &FrameDecoder) -> ReadOutcome {
        let buf = self
            .read_buf
            .get_or_insert_with(|| BytesMut::with_capacity(size));
        make_room(buf, decoder, size);
        let spare = buf.capacity() - buf.len();
        loop {
            match read_into(&self.stream, buf) {
                Ok(0) => return ReadOutcome::Eof,
                // A read that did not fill the room proves the socket drained: the next bytes
                // bring a new readable edge, so no extra `read` that fails with `EAGAIN` is needed.
                Ok(n) => {
                    return ReadOutcome::Data {
                        drained: n < spare && !self.read_closed,
                    };
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::Empty,
                Err(err) => return ReadOutcome::Failed(err),
            }
        }
    }

    /// Drops the read buffer if the core consumed all of it (frames routed from it keep their
    /// bytes alive on their own until they are written).
    pub(crate) fn release_drained_buffer(&mut self) {
        if self.read_buf.as_ref().is_some_and(BytesMut::is_empty) {
            self.read_buf = None;
        }
    }

    /// Writes as much of the queue as the socket takes now; `Ok(true)` once the queue is empty.
    pub(crate) fn send_queue(&mut self) -> io::Result<bool> {
        let done = send::send_nonblocking(SockRef::from(&self.stream), &mut self.queue)?;
        self.writable = done;
        Ok(done)
    }

    /// Shuts the socket down both ways before it is dropped (the peer sees EOF at once).
    pub(crate) fn shutdown(&self) {
        if let Err(err) = self.stream.shutdown(Shutdown::Both) {
            if err.kind() != io::ErrorKind::NotConnected {
                log::debug!("shutdown of {} {} failed: {err}", self.side, self.id);
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    /// A connection over a loopback socket, and the peer's end.
    fn conn() -> (Conn, std::net::TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let peer =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (ours, addr) = listener.accept().expect("accept");
        ours.set_nonblocking(true).expect("non-blocking");
        let rng = PreDrawn::draw(0).expect("no randomness needed");
        let id = fastway_core::switchboard::Switchboard::new(Default::default())
            .accept_with_challenge(
                Side::Client,
                Instant::now(),
                fastway_core::auth::Challenge([0; fastway_core::auth::CHALLENGE_LEN]),
            )
            .expect("a client slot");
        let conn = Conn::new(id, Side::Client, addr, TcpStream::from_std(ours), rng);
        (conn, peer)
    }

    /// Reads until something other than "nothing yet" comes (the bytes cross loopback at once, but
    /// not synchronously).
    fn read_some(conn: &mut Conn, decoder: &FrameDecoder) -> ReadOutcome {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match conn.read(64, decoder) {
                ReadOutcome::Empty if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                outcome => return outcome,
            }
        }
    }

    #[test]
    fn a_short_read_counts_as_drained_until_the_peer_closed() {
        let decoder = FrameDecoder::new(1024);
        let (mut conn, mut peer) = conn();
        peer.write_all(b"abc").expect("write");
        assert!(matches!(
            read_some(&mut conn, &decoder),
            ReadOutcome::Data { drained: true }
        ));
        // Bytes and EOF arrive together: the short read must not end the round, or the EOF
        // (whose edge came with the bytes) would never be seen.
        conn.read_closed = true;
        peer.write_all(b"def").expect("write");
        drop(peer);
        assert!(matches!(
            read_some(&mut conn, &decoder),
            ReadOutcome::Data { drained: false }
        ));
        assert!(matches!(read_some(&mut conn, &decoder), ReadOutcome::Eof));
        assert_eq!(conn.read_buf.as_deref(), Some(&b"abcdef"[..]));
    }

    #[test]
    fn an_empty_read_buffer_is_released_and_a_partial_frame_is_kept() {
        let decoder = FrameDecoder::new(1024);
        let (mut conn, mut peer) = conn();
        peer.write_all(b"xy").expect("write");
        assert!(matches!(
            read_some(&mut conn, &decoder),
            ReadOutcome::Data { .. }
        ));
        conn.release_drained_buffer();
        assert_eq!(
            conn.read_buf.as_deref(),
            Some(&b"xy"[..]),
            "unconsumed bytes dropped"
        );
        if let Some(buf) = conn.read_buf.as_mut() {
            buf.clear();
        }
        conn.release_drained_buffer();
        assert!(
            conn.read_buf.is_none(),
            "a drained connection keeps its buffer"
        );
    }
}
