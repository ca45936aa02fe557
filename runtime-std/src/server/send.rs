//! Writing a batch of frames to a non-blocking socket: one vectored `send` per call as long as the
//! socket takes everything (so a socket gets one `writev` per event-loop wake-up), continuing after
//! partial writes until the socket is full.
//!
//! The batch is walked with a [`Cursor`] that hands at most [`MAX_SLICES`] slices to one vectored
//! call.

use bytes::{Buf, Bytes};
use socket2::SockRef;
use std::io::{self, IoSlice};

/// Most slices handed to one vectored write (well under every platform's `IOV_MAX`).
const MAX_SLICES: usize = 64;

/// How far into a batch the bytes written so far reach.
#[derive(Debug, Default, Clone, Copy)]
struct Cursor {
    /// The first chunk not fully written.
    index: usize,
    /// Bytes of that chunk already written.
    offset: usize,
}

impl Cursor {
    /// Skips fully written (and empty) chunks; returns the unwritten chunks, `None` once all are.
    fn rest<'a>(&mut self, batch: &'a [Bytes]) -> Option<&'a [Bytes]> {
        while batch
            .get(self.index)
            .is_some_and(|chunk| self.offset >= chunk.len())
        {
            self.index += 1;
            self.offset = 0;
        }
        batch.get(self.index..).filter(|rest| !rest.is_empty())
    }

    /// Fills `slices` with the unwritten bytes of `rest` (as returned by [`Cursor::rest`]); returns
    /// how many slices it filled.
    fn fill<'a>(&self, rest: &'a [Bytes], slices: &mut [IoSlice<'a>; MAX_SLICES]) -> usize {
        let mut count = 0;
        for (slot, chunk) in slices.iter_mut().zip(rest) {
            let start = if count == 0 { self.offset } else { 0 };
            *slot = IoSlice::new(chunk.get(start..).unwrap_or_default());
            count += 1;
        }
        count
    }

    /// Moves past `written` bytes.
    fn advance(&mut self, batch: &[Bytes], mut written: usize) {
        while written > 0 {
            let Some(chunk) = batch.get(self.index) else {
                return;
            };
            let left = chunk.len() - self.offset;
            if written >= left {
                written -= left;
                self.index += 1;
                self.offset = 0;
            } else {
                self.offset += written;
                written = 0;
            }
        }
    }
}

/// Runs `write` (one vectored write of the slices given) until all of `batch` is written, `write`
/// fails or it would block. Returns where it got; `WouldBlock` is not an error here.
fn write_with(
    batch: &[Bytes],
    mut write: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
) -> io::Result<Cursor> {
    let mut cursor = Cursor::default();
    loop {
        let Some(rest) = cursor.rest(batch) else {
            return Ok(cursor);
        };
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let count = cursor.fill(rest, &mut slices);
        match write(&slices[..count]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "socket accepted no bytes",
                ));
            }
            Ok(n) => cursor.advance(batch, n),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(cursor),
            Err(err) => return Err(err),
        }
    }
}

/// Writes as much of `batch` as the socket takes without blocking and removes it from `batch`:
/// returns `true` if nothing is left, `false` if the rest (left in `batch`) must wait for room.
///
/// The call is non-blocking through `MSG_DONTWAIT` whatever the socket's mode, and never raises
/// `SIGPIPE` on Linux (`MSG_NOSIGNAL`).
pub(crate) fn send_nonblocking(socket: SockRef<'_>, batch: &mut Vec<Bytes>) -> io::Result<bool> {
    let mut cursor = write_with(batch, |slices| {
        socket.send_vectored_with_flags(slices, SEND_FLAGS)
    })?;
    if cursor.rest(batch).is_none() {
        batch.clear();
        return Ok(true);
    }
    batch.drain(..cursor.index);
    if let Some(first) = batch.first_mut() {
        first.advance(cursor.offset);
    }
    Ok(false)
}

/// `MSG_DONTWAIT`, and on Linux `MSG_NOSIGNAL` (a closed peer must give `EPIPE`, not `SIGPIPE`, even
/// in a program that did not ignore the signal the way Rust's `main` does).
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: libc::c_int = libc::MSG_DONTWAIT;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = TcpStream::connect(addr).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (client, server)
    }

    #[test]
    fn cursor_advances_across_chunks_and_skips_empty_ones() {
        let batch = vec![
            Bytes::from_static(b"abc"),
            Bytes::new(),
            Bytes::from_static(b"defg"),
        ];
        let mut cursor = Cursor::default();
        cursor.advance(&batch, 4);
        assert_eq!((cursor.index, cursor.offset), (2, 1));
        let rest = cursor.rest(&batch).expect("bytes left");
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let count = cursor.fill(rest, &mut slices);
        assert_eq!(count, 1);
        assert_eq!(&*slices[0], b"efg");
        cursor.advance(&batch, 3);
        assert!(cursor.rest(&batch).is_none());
    }

    #[test]
    fn nonblocking_send_delivers_everything_that_fits() {
        let (client, mut server) = pair();
        let mut batch = vec![Bytes::from_static(b"hello "), Bytes::from_static(b"world")];
        assert!(send_nonblocking(SockRef::from(&client), &mut batch).expect("send"));
        assert!(batch.is_empty());
        let mut got = [0u8; 11];
        server.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"hello world");
    }

    #[test]
    fn nonblocking_send_keeps_the_rest_in_order_when_the_socket_is_full() {
        let (client, mut server) = pair();
        // Far more than loopback socket buffers hold while nobody reads.
        let chunk = Bytes::from((0..=255u8).cycle().take(1 << 20).collect::<Vec<u8>>());
        let mut batch: Vec<Bytes> = (0..64).map(|_| chunk.clone()).collect();
        let total: usize = batch.iter().map(Bytes::len).sum();
        let done = send_nonblocking(SockRef::from(&client), &mut batch).expect("send");
        assert!(!done, "64 MiB fitted into the socket buffers");
        let left: usize = batch.iter().map(Bytes::len).sum();
        assert!(left > 0 && left < total);
        let sent = total - left;
        let reader = std::thread::spawn(move || {
            let mut all = Vec::with_capacity(total);
            server.read_to_end(&mut all).map(|_| all)
        });
        // The rest goes out as the reader makes room, in order.
        while !send_nonblocking(SockRef::from(&client), &mut batch).expect("send the rest") {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        drop(client);
        let all = reader.join().expect("reader thread").expect("read");
        assert_eq!(all.len(), total);
        let expected: Vec<u8> = (0..64).flat_map(|_| chunk.iter().copied()).collect();
        assert!(
            all == expected,
            "bytes reordered or lost (sent {sent} first)"
        );
    }
}
