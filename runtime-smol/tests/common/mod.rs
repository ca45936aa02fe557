//! A raw snet client for the end-to-end tests (SNET.md): a std `TcpStream` driven by the core's
//! client-side machines — [`ClientHandshake`] for the first connection, [`Session::encrypt_outbound`] /
//! [`Session::decrypt_inbound`] for the stream, [`ClientReconnect`] after the socket is killed.
//!
//! Every socket has read and write timeouts, so nothing here can hang.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use bytes::BytesMut;
use fastway_core::snet::{
    ClientHandshake, ClientReconnect, HandshakeError, LinkId, Session, SnetConfig,
};
use getrandom::SysRng;
use rand_core::UnwrapErr;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Read/write timeout of every socket the helper opens.
pub const IO_TIMEOUT: Duration = Duration::from_secs(3);

/// An snet config for tests: encryption on or off, a retransmission buffer larger than anything a
/// test has in flight, a 5 s handshake deadline and the given reconnect wait timeout.
pub fn snet_config(encrypt: bool, wait: Duration) -> SnetConfig {
    SnetConfig {
        enable_crypt: encrypt,
        rewriter_buffer_size: 1 << 20,
        handshake_timeout: Duration::from_secs(5),
        reconn_wait_timeout: wait,
    }
}

/// Connects with timeouts and TCP_NODELAY.
fn dial(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// One `read` appended to `buf`. EOF and errors (timeouts included) are returned as errors.
fn read_into(stream: &mut TcpStream, buf: &mut BytesMut) -> io::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk)?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// The dialing end of an snet stream.
pub struct SnetClient {
    /// The current socket.
    pub stream: TcpStream,
    /// The stream state that survives reconnects.
    pub session: Session,
    /// The session's link on `stream`.
    pub link: LinkId,
    /// Decrypted stream bytes read and not taken yet.
    pub received: BytesMut,
}

impl SnetClient {
    /// Dials `addr` and runs the new-connection handshake (SNET.md §4).
    pub fn connect(addr: SocketAddr, config: SnetConfig) -> Self {
        Self::handshake(dial(addr), config)
    }

    /// Runs the new-connection handshake on a connected `stream` (which should have timeouts).
    pub fn handshake(mut stream: TcpStream, config: SnetConfig) -> Self {
        let mut handshake = ClientHandshake::new(config, &mut UnwrapErr(SysRng));
        stream.write_all(&handshake.request()).unwrap();
        let mut buf = BytesMut::new();
        let connected = loop {
            read_into(&mut stream, &mut buf).expect("snet handshake reply");
            if let Some(connected) = handshake.handle_input(&mut buf).expect("snet handshake") {
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
        client.take(buf);
        client
    }

    /// Encrypts `plain` through the session and writes it.
    pub fn send(&mut self, plain: &[u8]) {
        let mut bytes = plain.to_vec();
        self.session
            .encrypt_outbound(self.link, &mut bytes)
            .unwrap();
        self.stream.write_all(&bytes).unwrap();
    }

    /// One read from the socket, decrypted into `received`.
    pub fn read_once(&mut self) -> io::Result<()> {
        let mut buf = BytesMut::new();
        read_into(&mut self.stream, &mut buf)?;
        self.take(buf);
        Ok(())
    }

    /// Reads until a whole frame (length field included) has arrived, and returns it.
    pub fn recv_frame(&mut self) -> Vec<u8> {
        loop {
            if let Some(frame) = split_frame(&mut self.received) {
                return frame;
            }
            self.read_once().expect("snet read");
        }
    }

    /// Reads until `n` stream bytes have arrived, and returns them.
    pub fn recv(&mut self, n: usize) -> Vec<u8> {
        while self.received.len() < n {
            self.read_once().expect("snet read");
        }
        self.received.split_to(n).to_vec()
    }

    /// The client's socket dies (shut down both ways, as a network failure would look to the
    /// gateway); the session's link goes down and waits for [`reconnect`](Self::reconnect).
    pub fn kill(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        self.session.link_down(self.link, Instant::now()).unwrap();
    }

    /// The client gives up on its socket without closing it (a silent network failure): the session's
    /// link goes down while the gateway still thinks the socket healthy. Returns the old socket, which
    /// the gateway should close once a reconnect replaced it.
    pub fn abandon(&mut self) -> TcpStream {
        self.session.link_down(self.link, Instant::now()).unwrap();
        self.stream.try_clone().unwrap()
    }

    /// Reconnects on a new socket to `addr` (SNET.md §5): both sides retransmit what the other
    /// missed, then the stream goes on where it was. A refusal closes the session.
    pub fn reconnect(&mut self, addr: SocketAddr) -> Result<(), HandshakeError> {
        let mut attempt = ClientReconnect::new(&self.session)?;
        let mut stream = dial(addr);
        stream.write_all(&attempt.request()).unwrap();
        let mut buf = BytesMut::new();
        loop {
            read_into(&mut stream, &mut buf).expect("snet reconnect reply");
            let result = attempt.handle_input(&mut self.session, &mut buf);
            while let Some(bytes) = attempt.poll_transmit() {
                stream.write_all(&bytes).unwrap();
            }
            if let Some(link) = result? {
                self.stream = stream;
                self.link = link;
                self.take(buf);
                return Ok(());
            }
        }
    }

    /// Decrypts stream bytes of the current link into `received`.
    fn take(&mut self, mut bytes: BytesMut) {
        self.session
            .decrypt_inbound(self.link, &mut bytes[..])
            .unwrap();
        self.received.extend_from_slice(&bytes);
    }
}

/// Splits one whole frame off the front of `buf`, if it holds one.
pub fn split_frame(buf: &mut BytesMut) -> Option<Vec<u8>> {
    let length = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    (buf.len() >= 4 + length).then(|| buf.split_to(4 + length).to_vec())
}
