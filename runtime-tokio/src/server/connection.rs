//! One socket: a reader and a writer running side by side in one task.
//!
//! The reader appends bytes to the socket's one read buffer and feeds it to the core (which runs the
//! snet handshake, decrypts, frames and routes); the writer takes what the core queued (encrypted on
//! snet ports) and writes it with as few syscalls as possible. Both borrow the same `TcpStream` (its readiness API works on `&self`),
//! so the socket closes exactly when both have finished.

use super::read_buf::ReadBuf;
use super::rng::PreDrawn;
use super::shared::{Conn, Effects, State};
use bytes::{Bytes, BytesMut};
use fastway_core::frame::FrameDecoder;
use fastway_core::gateway::Side;
use log::debug;
use std::future::Future;
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};

/// Most slices handed to one vectored write (Linux accepts 1024; more gains nothing).
const MAX_IO_SLICES: usize = 64;

/// Serves one accepted socket until the core forgets it or the socket fails. `rng` is the socket's
/// pre-drawn randomness for an snet handshake (empty on plain ports).
pub(crate) async fn serve(
    state: Arc<State>,
    conn: Arc<Conn>,
    mut stream: TcpStream,
    read_buffer: usize,
    decoder: FrameDecoder,
    rng: PreDrawn,
) {
    let _guard = ForgetOnDrop {
        state: &state,
        conn: &conn,
    };
    let (mut read_half, write_half) = stream.split();
    let reader = read_loop(&state, &conn, &mut read_half, read_buffer, decoder, rng);
    let writer = write_loop(&state, &conn, &write_half);
    tokio::join!(reader, writer);
}

/// Tells the core the connection is gone when its task ends for any reason (normally it already
/// knows; this covers an aborted task at the end of a shutdown).
struct ForgetOnDrop<'a> {
    state: &'a State,
    conn: &'a Conn,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        let mut fx = Effects::default();
        let socket = self.conn.socket;
        self.state
            .call(&mut fx, |sb| sb.handle_closed(socket, Instant::now()));
    }
}

/// Reads until EOF, an error, or the core closing the socket.
///
/// Between core calls bytes are only appended to the read buffer (the core remembers how much of it
/// is already decrypted), never dropped; moving them to another chunk keeps them as they are.
async fn read_loop(
    state: &State,
    conn: &Conn,
    stream: &mut ReadHalf<'_>,
    read_buffer: usize,
    decoder: FrameDecoder,
    mut rng: PreDrawn,
) {
    let socket = conn.socket;
    // No buffer until bytes have really arrived: idle connections cost none.
    let mut buf = ReadBuf::new(read_buffer);
    let mut fx = Effects::default();
    loop {
        if conn.is_closed() {
            return;
        }
        if conn.is_paused() {
            // Backpressure: leave the bytes in the kernel until the core resumes us.
            conn.read.notified().await;
            continue;
        }
        if conn.take_resumed() && !buf.is_empty() {
            // Resumed (whether or not we saw the pause): the core must see what we already hold
            // before we read more.
            state.call(&mut fx, |sb| {
                sb.handle_input(socket, buf.bytes(), Instant::now(), &mut rng)
            });
            continue;
        }
        tokio::select! {
            ready = stream.readable() => {
                if let Err(err) = ready {
                    debug!("{} {socket} from {}: readiness failed: {err}", conn.side, conn.addr);
                    state.call(&mut fx, |sb| sb.handle_closed(socket, Instant::now()));
                    return;
                }
            }
            () = conn.read.notified() => continue,
        }
        buf.prepare(&decoder);
        match read_once(stream, buf.bytes()).await {
            Some(Ok(0)) => {
                state.call(&mut fx, |sb| sb.handle_closed(socket, Instant::now()));
                return;
            }
            Some(Ok(_)) => {
                state.call(&mut fx, |sb| {
                    sb.handle_input(socket, buf.bytes(), Instant::now(), &mut rng)
                });
                // A client that has sent all it had may go quiet for long: an idle connection
                // keeps no buffer (DESIGN.md §5). Its chunk goes back to the thread's pool, where
                // the next read of any connection finds it (hot, once its frames are written).
                // Servers are few and busy: they keep theirs.
                if conn.side == Side::Client && buf.is_empty() {
                    buf.release();
                    fx = Effects::default();
                }
            }
            None => {
                // Spurious readiness (a fresh socket is reported readable before any byte): give
                // the (still empty) buffer back so an idle connection keeps costing nothing. (No
                // flag remembers whether the buffer was just taken: tokio rounds a task up to 128
                // bytes, and one more byte of state costs every idle connection 128.)
                if buf.is_empty() {
                    buf.release();
                }
            }
            Some(Err(err)) if err.kind() == io::ErrorKind::Interrupted => {}
            Some(Err(err)) => {
                debug!(
                    "{} {socket} from {}: read failed: {err}",
                    conn.side, conn.addr
                );
                state.call(&mut fx, |sb| sb.handle_closed(socket, Instant::now()));
                return;
            }
        }
    }
}

/// One read into `buf`, or `None` if the socket has nothing after all (it would block).
///
/// Goes through tokio's `AsyncRead`, which treats a read that did not fill the buffer as proof that
/// the socket is drained and clears its readiness: the next wait goes straight to the reactor
/// instead of costing one more `read` that fails with `EAGAIN` (as `try_read` would, every wake-up).
async fn read_once(stream: &mut ReadHalf<'_>, buf: &mut BytesMut) -> Option<io::Result<usize>> {
    let mut read = std::pin::pin!(stream.read_buf(buf));
    std::future::poll_fn(|cx| {
        Poll::Ready(match read.as_mut().poll(cx) {
            Poll::Ready(result) => Some(result),
            Poll::Pending => None,
        })
    })
    .await
}

/// Why a write stopped early.
enum WriteEnd {
    /// The core closed the connection with nothing to flush: drop the rest.
    Abandoned,
    /// The socket failed.
    Failed(io::Error),
}

/// Writes what the core queues, one vectored write per wake-up, until the core closes the
/// connection or the socket fails.
async fn write_loop(state: &State, conn: &Conn, stream: &WriteHalf<'_>) {
    let socket = conn.socket;
    let mut batch: Vec<Bytes> = Vec::new();
    let mut fx = Effects::default();
    loop {
        conn.write.notified().await;
        loop {
            if conn.is_closed() {
                let flush = conn.take_flush();
                if !flush.is_empty() {
                    if let Err(WriteEnd::Failed(err)) = write_all(stream, conn, &flush, false).await
                    {
                        debug!(
                            "{} {socket} from {}: final flush failed: {err}",
                            conn.side, conn.addr
                        );
                    }
                }
                return;
            }
            batch.clear();
            let taken = state.call(&mut fx, |sb| {
                sb.poll_transmit(socket, Instant::now(), &mut batch)
            });
            if taken == 0 {
                break;
            }
            match write_all(stream, conn, &batch, true).await {
                Ok(()) => {}
                Err(WriteEnd::Abandoned) => return,
                Err(WriteEnd::Failed(err)) => {
                    debug!(
                        "{} {socket} from {}: write failed: {err}",
                        conn.side, conn.addr
                    );
                    state.call(&mut fx, |sb| sb.handle_closed(socket, Instant::now()));
                    return;
                }
            }
        }
        if conn.side == Side::Client {
            // Drained: an idle client keeps no batch or effect storage (DESIGN.md §5).
            batch = Vec::new();
            fx = Effects::default();
        } else {
            batch.clear();
        }
    }
}

/// Writes every byte of `bufs` with vectored writes of at most [`MAX_IO_SLICES`] slices, handling
/// partial writes. With `abandonable`, gives up as soon as the core closes the connection without
/// anything to flush (a dropped peer that stopped reading must not keep its socket open).
async fn write_all(
    stream: &WriteHalf<'_>,
    conn: &Conn,
    bufs: &[Bytes],
    abandonable: bool,
) -> Result<(), WriteEnd> {
    let (mut index, mut offset) = (0usize, 0usize);
    loop {
        while index < bufs.len() && bufs[index].len() == offset {
            index += 1;
            offset = 0;
        }
        if index == bufs.len() {
            return Ok(());
        }
        let result = {
            let mut slices = [IoSlice::new(&[]); MAX_IO_SLICES];
            let mut count = 0;
            for (i, buf) in bufs[index..].iter().take(MAX_IO_SLICES).enumerate() {
                let start = if i == 0 { offset } else { 0 };
                slices[i] = IoSlice::new(&buf[start..]);
                count += 1;
            }
            stream.try_write_vectored(&slices[..count])
        };
        match result {
            Ok(0) => {
                let err = io::Error::new(io::ErrorKind::WriteZero, "socket accepted no bytes");
                return Err(WriteEnd::Failed(err));
            }
            Ok(mut written) => {
                while written > 0 && index < bufs.len() {
                    let left = bufs[index].len() - offset;
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
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                // Boxed: a full socket is the rare case, and the wait would otherwise make every
                // idle connection's task bigger.
                Box::pin(wait_writable(stream, conn, abandonable)).await?;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(WriteEnd::Failed(err)),
        }
    }
}

/// Waits until the socket takes bytes again, or (with `abandonable`) the core closes the connection
/// with nothing to flush.
async fn wait_writable(
    stream: &WriteHalf<'_>,
    conn: &Conn,
    abandonable: bool,
) -> Result<(), WriteEnd> {
    if !abandonable {
        return stream.writable().await.map_err(WriteEnd::Failed);
    }
    tokio::select! {
        ready = stream.writable() => ready.map_err(WriteEnd::Failed),
        () = conn.write.notified() => {
            if conn.abandon_writes() {
                Err(WriteEnd::Abandoned)
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use fastway_core::switchboard::{Switchboard, SwitchboardConfig};

    /// Idle connections must cost little: the whole per-connection task state stays small (816 bytes
    /// in release builds with tokio 1.54, a little more in debug builds).
    #[tokio::test]
    async fn a_connection_task_is_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut switchboard = Switchboard::new(SwitchboardConfig::default());
        let socket = switchboard
            .accept(Side::Client, Instant::now(), &mut PreDrawn::empty())
            .unwrap();
        let state = Arc::new(State::new(switchboard));
        let conn = Arc::new(Conn::new(socket, Side::Client, addr));
        let task = serve(
            state,
            conn,
            stream,
            2048,
            FrameDecoder::default(),
            PreDrawn::empty(),
        );
        let size = std::mem::size_of_val(&task);
        assert!(size <= 1024, "connection future is {size} bytes");
    }
}
