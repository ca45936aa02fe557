//! Test helpers shared by the integration tests: raw frames and a raw snet client over a std
//! `TcpStream` (SNET.md), driven by the core's client-side state machines.
//!
//! Every socket has read and write timeouts, so no helper can hang.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use bytes::BytesMut;
use fastway_core::snet::{
    ClientHandshake, ClientReconnect, HandshakeError, LinkId, Session, SnetConfig,
};
use getrandom::SysRng;
use rand_core::UnwrapErr;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

/// Read/write timeout of every test socket.
pub const IO_TIMEOUT: Duration = Duration::from_secs(3);

// ---- log capture ----------------------------------------------------------------------------------

struct Capture(Mutex<Vec<String>>);

static LOGS: Capture = Capture(Mutex::new(Vec::new()));

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}", record.level(), record.args());
        self.0.lock().unwrap().push(line);
    }
    fn flush(&self) {}
}

/// Captures every log line of this test binary (call before starting a gateway).
pub fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&LOGS).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
    });
}

/// Waits until a captured log line contains `needle`; returns that line.
pub fn wait_for_log(needle: &str) -> String {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        if let Some(line) = LOGS.0.lock().unwrap().iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        assert!(Instant::now() < deadline, "no log line contains {needle:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

// ---- raw frames (PROTOCOL.md) ---------------------------------------------------------------------

/// A command frame of `kind` with u32 arguments.
pub fn command(kind: u8, args: &[u32]) -> Vec<u8> {
    let length = 5 + 4 * args.len() as u32;
    let mut frame = length.to_le_bytes().to_vec();
    frame.extend_from_slice(&[0, 0, 0, 0, kind]);
    for arg in args {
        frame.extend_from_slice(&arg.to_le_bytes());
    }
    frame
}

pub fn dial(remote: u32) -> Vec<u8> {
    command(0, &[remote])
}
pub fn accept(conn: u32, remote: u32) -> Vec<u8> {
    command(1, &[conn, remote])
}
pub fn connect_cmd(conn: u32, remote: u32) -> Vec<u8> {
    command(2, &[conn, remote])
}
pub fn close(conn: u32) -> Vec<u8> {
    command(4, &[conn])
}
pub const PING: [u8; 9] = [5, 0, 0, 0, 0, 0, 0, 0, 5];

/// A data frame.
pub fn data(conn: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = (4 + payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&conn.to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

pub fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// A loopback connection with timeouts and no Nagle.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

pub fn recv(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    stream.read_exact(&mut bytes).unwrap();
    bytes
}

/// Reads one whole frame from a plain stream.
pub fn recv_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut frame = recv(stream, 4);
    let length = u32_at(&frame, 0) as usize;
    frame.extend(recv(stream, length));
    frame
}

/// The socket is closed by the peer (EOF or reset) with no byte before it, within the timeout.
pub fn expect_closed(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => {}
        Ok(_) => panic!("expected the socket closed, got byte {:#x}", byte[0]),
        Err(err) if err.kind() == ErrorKind::ConnectionReset => {}
        Err(err) => panic!("expected the socket closed, got {err}"),
    }
}

/// Splits one whole frame off the front of `buf`, if it holds one.
pub fn split_frame(buf: &mut BytesMut) -> Option<Vec<u8>> {
    if buf.len() < 4 {
        return None;
    }
    let total = 4 + u32_at(buf, 0) as usize;
    (buf.len() >= total).then(|| buf.split_to(total).to_vec())
}

// ---- raw snet client ------------------------------------------------------------------------------

/// An snet config for tests: `encrypt` on or off, a retransmission buffer large enough for anything a
/// test has in flight, and the given reconnect wait timeout.
pub fn snet_config(encrypt: bool, wait: Duration) -> SnetConfig {
    SnetConfig {
        enable_crypt: encrypt,
        rewriter_buffer_size: 1 << 20,
        handshake_timeout: Duration::from_secs(5),
        reconn_wait_timeout: wait,
    }
}

/// The dialing side of an snet stream over a std `TcpStream`: the new-connection handshake, sending
/// through [`Session::encrypt_outbound`], decrypting what it reads, killing its socket and
/// reconnecting with [`ClientReconnect`].
pub struct SnetClient {
    pub stream: TcpStream,
    pub session: Session,
    pub link: LinkId,
    /// Decrypted bytes read and not yet taken.
    pub received: BytesMut,
}

impl SnetClient {
    /// Dials `addr` and runs the snet new-connection handshake.
    pub fn connect(addr: SocketAddr, config: SnetConfig) -> Self {
        let mut stream = connect(addr);
        let mut handshake = ClientHandshake::new(config, &mut UnwrapErr(SysRng));
        stream.write_all(&handshake.request()).unwrap();
        let mut buf = BytesMut::new();
        let connected = loop {
            read_some(&mut stream, &mut buf);
            if let Some(connected) = handshake.handle_input(&mut buf).unwrap() {
                break connected;
            }
        };
        stream.write_all(&connected.proof).unwrap();
        let mut client = Self {
            stream,
            session: connected.session,
            link: connected.link,
            received: BytesMut::new(),
        };
        client.take_stream_bytes(buf);
        client
    }

    /// Writes `plain` through the session.
    pub fn send(&mut self, plain: &[u8]) {
        let mut bytes = plain.to_vec();
        self.session
            .encrypt_outbound(self.link, &mut bytes)
            .unwrap();
        self.stream.write_all(&bytes).unwrap();
    }

    /// Reads (and decrypts) once from the socket.
    pub fn read_once(&mut self) {
        let mut buf = BytesMut::new();
        read_some(&mut self.stream, &mut buf);
        self.take_stream_bytes(buf);
    }

    /// Reads until one whole frame has arrived; returns it.
    pub fn recv_frame(&mut self) -> Vec<u8> {
        loop {
            if let Some(frame) = split_frame(&mut self.received) {
                return frame;
            }
            self.read_once();
        }
    }

    /// Reads until exactly `n` stream bytes have arrived; returns them.
    pub fn recv(&mut self, n: usize) -> Vec<u8> {
        while self.received.len() < n {
            self.read_once();
        }
        self.received.split_to(n).to_vec()
    }

    /// The socket dies under the session (no FIN courtesy: shut down both ways); the session's link
    /// goes down and it waits for [`reconnect`](Self::reconnect).
    pub fn kill(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        self.session.link_down(self.link, Instant::now()).unwrap();
    }

    /// The client gives up on its socket without closing it (as after a silent network failure): the
    /// session's link goes down, the old socket stays open at the gateway until a reconnect replaces
    /// it. Returns the old socket.
    pub fn abandon(&mut self) -> TcpStream {
        self.session.link_down(self.link, Instant::now()).unwrap();
        self.stream.try_clone().unwrap()
    }

    /// Reconnects on a new socket to `addr`: the server retransmits what this client missed and this
    /// client what the server missed; the stream then goes on where it was.
    pub fn reconnect(&mut self, addr: SocketAddr) -> Result<(), HandshakeError> {
        let mut attempt = ClientReconnect::new(&self.session)?;
        let mut stream = connect(addr);
        stream.write_all(&attempt.request()).unwrap();
        let mut buf = BytesMut::new();
        loop {
            read_some(&mut stream, &mut buf);
            let result = attempt.handle_input(&mut self.session, &mut buf);
            while let Some(bytes) = attempt.poll_transmit() {
                stream.write_all(&bytes).unwrap();
            }
            if let Some(link) = result? {
                self.stream = stream;
                self.link = link;
                self.take_stream_bytes(buf);
                return Ok(());
            }
        }
    }

    fn take_stream_bytes(&mut self, mut bytes: BytesMut) {
        self.session
            .decrypt_inbound(self.link, &mut bytes[..])
            .unwrap();
        self.received.extend_from_slice(&bytes);
    }
}

/// One `read` appended to `buf`; panics on EOF, errors and timeouts.
fn read_some(stream: &mut TcpStream, buf: &mut BytesMut) {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).unwrap();
    assert!(n > 0, "unexpected EOF");
    buf.extend_from_slice(&chunk[..n]);
}
