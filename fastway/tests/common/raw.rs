//! Raw-socket peers for conformance tests: they speak bytes, not a library, so every test sees exactly
//! what the gateway puts on the wire.
#![allow(dead_code)]

use bytes::BytesMut;
use fastway_core::auth::{Challenge, server_response};
use fastway_core::frame::{Command, encode_data};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long any single expectation may wait before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// A raw TCP peer of the gateway.
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    /// Connects to a gateway port. No handshake.
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect to gateway");
        stream.set_nodelay(true).expect("nodelay");
        stream.set_read_timeout(Some(WAIT)).expect("read timeout");
        Self { stream }
    }

    /// Connects to the server port and answers the challenge with `key` as server `id`.
    pub fn server(addr: SocketAddr, id: u32, key: &str) -> Self {
        let mut raw = Self::connect(addr);
        let challenge = raw.read_exact_n(8);
        let challenge = Challenge(challenge.try_into().expect("8 bytes"));
        raw.send(&server_response(&challenge, key.as_bytes(), id));
        raw
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to gateway");
    }

    pub fn send_command(&mut self, command: Command) {
        self.send(&command.to_bytes());
    }

    pub fn send_data(&mut self, conn: u32, payload: &[u8]) {
        let mut buf = BytesMut::new();
        encode_data(conn, payload, &mut buf);
        self.send(&buf);
    }

    pub fn read_exact_n(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        self.stream.read_exact(&mut buf).expect("read from gateway");
        buf
    }

    /// Reads exactly `expected.len()` bytes and compares them.
    pub fn expect(&mut self, expected: &[u8]) {
        let got = self.read_exact_n(expected.len());
        assert_eq!(got, expected, "bytes from gateway");
    }

    pub fn expect_command(&mut self, command: Command) {
        self.expect(&command.to_bytes());
    }

    pub fn expect_data(&mut self, conn: u32, payload: &[u8]) {
        let mut buf = BytesMut::new();
        encode_data(conn, payload, &mut buf);
        self.expect(&buf);
    }

    /// Dials `remote` and returns the vconn id from the Accept.
    pub fn dial(&mut self, remote: u32) -> u32 {
        self.send_command(Command::Dial { remote });
        let accept = self.read_exact_n(17);
        assert_eq!(&accept[..9], &[13, 0, 0, 0, 0, 0, 0, 0, 1], "Accept header");
        assert_eq!(&accept[13..17], &remote.to_le_bytes(), "Accept remote");
        u32::from_le_bytes(accept[9..13].try_into().expect("4 bytes"))
    }

    /// Reads a Connect and returns (conn, remote).
    pub fn expect_connect(&mut self) -> (u32, u32) {
        let connect = self.read_exact_n(17);
        assert_eq!(
            &connect[..9],
            &[13, 0, 0, 0, 0, 0, 0, 0, 2],
            "Connect header"
        );
        (
            u32::from_le_bytes(connect[9..13].try_into().expect("4 bytes")),
            u32::from_le_bytes(connect[13..17].try_into().expect("4 bytes")),
        )
    }

    /// Waits until the gateway closes the socket, failing if it sends anything first.
    pub fn expect_closed(&mut self) {
        let deadline = Instant::now() + WAIT;
        let mut buf = [0u8; 64];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => panic!("expected close, got {:?}", &buf[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    assert!(
                        Instant::now() < deadline,
                        "gateway did not close the socket"
                    );
                }
                Err(e) => panic!("read error {e}"),
            }
        }
    }

    /// Asserts nothing arrives within `quiet`.
    pub fn expect_silence(&mut self, quiet: Duration) {
        self.stream.set_read_timeout(Some(quiet)).expect("timeout");
        let mut buf = [0u8; 64];
        match self.stream.read(&mut buf) {
            Ok(0) => panic!("gateway closed the socket"),
            Ok(n) => panic!("expected silence, got {:?}", &buf[..n]),
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                "{e}"
            ),
        }
        self.stream.set_read_timeout(Some(WAIT)).expect("timeout");
    }

    /// Round-trips a Ping: proves the gateway still serves this connection.
    pub fn ping(&mut self) {
        self.send_command(Command::Ping);
        self.expect_command(Command::Ping);
    }
}

/// Polls `check` until it holds or `WAIT` passes.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Raw {
    /// Reads one whole frame (length field included).
    pub fn read_frame(&mut self) -> Vec<u8> {
        let mut frame = self.read_exact_n(4);
        let len = u32::from_le_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
        frame.extend(self.read_exact_n(len));
        frame
    }

    /// Reads frames until a data frame arrives and checks it is `payload` on `conn`; gateway commands
    /// in between (Connect and Close of other peers' vconns, Ping replies) are skipped.
    pub fn expect_data_among_commands(&mut self, conn: u32, payload: &[u8]) {
        let mut expected = BytesMut::new();
        encode_data(conn, payload, &mut expected);
        loop {
            let frame = self.read_frame();
            if frame.len() >= 8 && frame[4..8] == [0, 0, 0, 0] {
                continue;
            }
            assert_eq!(frame, expected.to_vec(), "data frame from gateway");
            return;
        }
    }

    /// Pings and skips whatever gateway commands arrive before the reply.
    pub fn ping_among_commands(&mut self) {
        self.send_command(Command::Ping);
        let ping = Command::Ping.to_bytes().to_vec();
        loop {
            let frame = self.read_frame();
            assert_eq!(
                &frame[4..8],
                &[0, 0, 0, 0],
                "unexpected data frame {frame:?}"
            );
            if frame == ping {
                return;
            }
        }
    }
}
