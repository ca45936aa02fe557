//! Shared test helpers: a raw, blocking snet client over a std `TcpStream` (SNET.md), driven by the
//! core's client-side state machines.
//!
//! Every read has a timeout (set by the caller's `connect`), so no test can hang on it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use bytes::BytesMut;
use fastway_core::snet::{
    ClientHandshake, ClientReconnect, HandshakeError, LinkId, Session, SnetConfig,
};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A blocking std socket with 2 s read/write timeouts and `TCP_NODELAY`.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// A deterministic RNG for the client's DH64 key pair (tests use fixed seeds).
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
}

impl rand_core::TryRng for TestRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        Ok(self.0.wrapping_mul(0x2545_F491_4F6C_DD1D))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let word = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

/// The client end of an snet stream: its session, the socket carrying it now, and the decrypted
/// bytes received but not yet taken.
pub struct SnetStream {
    pub stream: TcpStream,
    pub session: Session,
    link: LinkId,
    inbox: BytesMut,
}

impl SnetStream {
    /// Dials `addr` and runs the new-connection handshake (SNET.md §4).
    pub fn connect(addr: SocketAddr, config: SnetConfig, seed: u64) -> Self {
        let mut stream = connect(addr);
        let mut handshake = ClientHandshake::new(config, &mut TestRng::new(seed));
        stream.write_all(&handshake.request()).unwrap();
        let mut buf = BytesMut::new();
        let connected = loop {
            if let Some(connected) = handshake.handle_input(&mut buf).unwrap() {
                break connected;
            }
            read_some(&mut stream, &mut buf).unwrap();
        };
        stream.write_all(&connected.proof).unwrap();
        let mut this = Self {
            stream,
            session: connected.session,
            link: connected.link,
            inbox: BytesMut::new(),
        };
        this.take_stream_bytes(buf);
        this
    }

    /// Which snet session this is (the server's ConnID).
    pub fn conn_id(&self) -> u64 {
        self.session.conn_id()
    }

    /// Sends `plain` through the stream (encrypted if the session encrypts).
    pub fn send(&mut self, plain: &[u8]) {
        self.try_send(plain).unwrap();
    }

    /// Like [`send`](Self::send), but a socket error is returned (the bytes are in the session's
    /// retransmission buffer either way, as with a real snet client).
    pub fn try_send(&mut self, plain: &[u8]) -> io::Result<()> {
        let mut bytes = plain.to_vec();
        self.session
            .encrypt_outbound(self.link, &mut bytes)
            .map_err(io::Error::other)?;
        self.stream.write_all(&bytes)
    }

    /// Reads exactly `n` decrypted bytes.
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        while self.inbox.len() < n {
            self.fill().unwrap();
        }
        self.inbox.split_to(n).to_vec()
    }

    /// Reads `expected.len()` decrypted bytes and compares them.
    pub fn expect(&mut self, expected: &[u8]) {
        assert_eq!(self.read_exact(expected.len()), expected);
    }

    /// Reads one whole frame (length field included).
    pub fn read_frame(&mut self) -> Vec<u8> {
        self.try_read_frame().unwrap()
    }

    /// Like [`read_frame`](Self::read_frame), but a socket error or EOF is returned.
    pub fn try_read_frame(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if self.inbox.len() >= 4 {
                let len = u32::from_le_bytes(self.inbox[..4].try_into().unwrap()) as usize;
                if self.inbox.len() >= 4 + len {
                    return Ok(self.inbox.split_to(4 + len).to_vec());
                }
            }
            self.fill()?;
        }
    }

    /// The socket dies under the session (SNET.md §5: the client then reconnects). Whatever the
    /// kernel had received but we had not read is lost with it.
    pub fn kill(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        self.session.link_down(self.link, Instant::now()).unwrap();
    }

    /// The client gives up on its socket (as after a read deadline) but leaves it open, so the
    /// gateway still sees it alive when the reconnect comes.
    pub fn abandon(&mut self) {
        self.session.link_down(self.link, Instant::now()).unwrap();
    }

    /// Reconnects the session on a new socket to `addr` (SNET.md §5): both sides retransmit what the
    /// other missed. Bytes received up to here stay in the inbox, followed by the retransmission.
    /// Returns the previous socket.
    pub fn reconnect(&mut self, addr: SocketAddr) -> Result<TcpStream, HandshakeError> {
        let mut stream = connect(addr);
        let mut attempt = ClientReconnect::new(&self.session)?;
        stream.write_all(&attempt.request()).unwrap();
        let mut buf = BytesMut::new();
        let link = loop {
            let result = attempt.handle_input(&mut self.session, &mut buf)?;
            while let Some(bytes) = attempt.poll_transmit() {
                stream.write_all(&bytes).unwrap();
            }
            if let Some(link) = result {
                break link;
            }
            let n = read_some(&mut stream, &mut buf).unwrap();
            assert!(n > 0, "EOF during the reconnect handshake");
        };
        let old = std::mem::replace(&mut self.stream, stream);
        self.link = link;
        self.take_stream_bytes(buf);
        Ok(old)
    }

    /// Reads once from the socket and decrypts what came.
    fn fill(&mut self) -> io::Result<()> {
        let mut buf = BytesMut::new();
        if read_some(&mut self.stream, &mut buf)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.take_stream_bytes(buf);
        Ok(())
    }

    fn take_stream_bytes(&mut self, mut buf: BytesMut) {
        self.session
            .decrypt_inbound(self.link, &mut buf[..])
            .unwrap();
        self.inbox.extend_from_slice(&buf);
    }
}

/// One `read` into `buf`; returns how many bytes came (0 = EOF).
pub fn read_some(stream: &mut TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk)?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

// ---- gateway harness -----------------------------------------------------------------------------

/// The tokio runtime a test gateway runs on.
#[derive(Clone, Copy, Debug)]
pub enum Flavor {
    CurrentThread,
    MultiThread,
}

/// A gateway running on its own thread and runtime; shut down when dropped.
pub struct Gw {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub handle: fastway_tokio::GatewayHandle,
    done: std::sync::mpsc::Receiver<io::Result<()>>,
}

impl Gw {
    /// Binds `config` (its addresses should be `127.0.0.1:0`) and serves it on a new thread.
    pub fn start(flavor: Flavor, config: fastway_tokio::ServerConfig) -> Gw {
        init_logs();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = match flavor {
                Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
                Flavor::MultiThread => {
                    let mut b = tokio::runtime::Builder::new_multi_thread();
                    b.worker_threads(2);
                    b
                }
            }
            .enable_all()
            .build()
            .unwrap();
            runtime.block_on(async move {
                let server = fastway_tokio::GatewayServer::bind(config).await.unwrap();
                ready_tx
                    .send((server.client_addr(), server.server_addr(), server.handle()))
                    .unwrap();
                let _ = done_tx.send(server.run().await);
            });
        });
        let (client, server, handle) = ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        Gw {
            client,
            server,
            handle,
            done,
        }
    }

    /// Shuts down and checks that `run` returned `Ok` in time.
    pub fn stop(&self) {
        self.handle.shutdown();
        let result = self.done.recv_timeout(Duration::from_secs(4));
        assert!(
            matches!(result, Ok(Ok(()))),
            "run did not return Ok: {result:?}"
        );
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Polls `f` every 5 ms for up to 3 s.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The gateway closed the socket: EOF or a reset, never a timeout, and no bytes first.
pub fn expect_closed(s: &mut TcpStream) {
    let mut byte = [0u8; 1];
    match s.read(&mut byte) {
        Ok(0) => {}
        Ok(_) => panic!("expected the socket to be closed, got a byte {byte:?}"),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("expected the socket to be closed, got {e}"),
    }
}

/// Reads (and discards) until the gateway closes the socket.
pub fn drain_until_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("expected the socket to be closed, got {e}"),
        }
    }
}

/// Reads one whole plain frame (length field included).
pub fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut frame = len.to_vec();
    frame.resize(4 + u32::from_le_bytes(len) as usize, 0);
    s.read_exact(&mut frame[4..]).unwrap();
    frame
}

/// Reads `expected.len()` plain bytes and compares them.
pub fn expect(s: &mut TcpStream, expected: &[u8]) {
    let mut got = vec![0u8; expected.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, expected);
}

// ---- log capture -------------------------------------------------------------------------------

struct Capture(std::sync::Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}", record.level(), record.args());
        if std::env::var_os("FASTWAY_TEST_LOG").is_some() {
            eprintln!("{line}");
        }
        self.0.lock().unwrap().push(line);
    }
    fn flush(&self) {}
}

static LOGS: std::sync::OnceLock<&'static Capture> = std::sync::OnceLock::new();

/// Captures the gateway's log lines (printed too when `FASTWAY_TEST_LOG` is set). Idempotent.
pub fn init_logs() {
    LOGS.get_or_init(|| {
        let capture: &'static Capture =
            Box::leak(Box::new(Capture(std::sync::Mutex::new(Vec::new()))));
        log::set_logger(capture).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
        capture
    });
}

/// Waits (up to 3 s) until a captured log line contains `needle`; returns that line.
pub fn wait_log(needle: &str) -> String {
    let mut found = None;
    wait_until(&format!("a log line containing {needle:?}"), || {
        found = LOGS.get().and_then(|c| {
            c.0.lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
                .cloned()
        });
        found.is_some()
    });
    found.unwrap_or_default()
}
