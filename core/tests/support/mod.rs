//! A gateway with one client, one server and a vconn between them, routing the client's bytes to
//! the server the way a runtime does per wake-up. Shared by `tests/allocations.rs` and
//! `benches/routing.rs` so that the test guards exactly what the benchmark measures.

use bytes::{Bytes, BytesMut};
use fastway_core::auth::{Challenge, server_response};
use fastway_core::frame::{Command, encode_data};
use fastway_core::gateway::{Gateway, GatewayConfig, PeerId, QueueLimits};
use std::time::Instant;

/// Always the same "random" bytes: the challenge does not matter here.
struct FixedRng;

impl rand_core::TryRng for FixedRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(4)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(4)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(4);
        Ok(())
    }
}

/// The gateway and the ids of its one route.
pub struct Route {
    gw: Gateway,
    client: PeerId,
    server: PeerId,
    conn: u32,
    now: Instant,
}

impl Route {
    /// Authenticates server 1, connects a client and opens a vconn from it to the server. Queue
    /// limits are far above anything a benchmark queues, so backpressure never pauses the client.
    pub fn new() -> Self {
        let now = Instant::now();
        let unlimited = QueueLimits {
            max_frames: 1 << 20,
            max_bytes: 1 << 30,
        };
        let mut gw = Gateway::new(GatewayConfig {
            client_queue: unlimited,
            server_queue: unlimited,
            ..GatewayConfig::default()
        });
        let server = gw.accept_server(now, &mut FixedRng);
        let mut out = Vec::new();
        gw.poll_transmit(server, now, &mut out);
        let challenge = Challenge(out.concat().try_into().expect("a whole challenge"));
        let mut answer = BytesMut::from(&server_response(&challenge, b"", 1)[..]);
        gw.handle_input(server, &mut answer, now);
        let client = gw.accept_client(now).expect("room for a client");
        let mut dial = BytesMut::from(&Command::Dial { remote: 1 }.to_bytes()[..]);
        gw.handle_input(client, &mut dial, now);
        for peer in [client, server] {
            out.clear();
            gw.poll_transmit(peer, now, &mut out);
            gw.poll_transmit(peer, now, &mut Vec::new());
        }
        while gw.poll_action().is_some() {}
        Self {
            gw,
            client,
            server,
            conn: 1,
            now,
        }
    }

    /// `frames` data frames of `payload` bytes each on the route's vconn, as the client sends them.
    pub fn wire(&self, frames: usize, payload: usize) -> Bytes {
        let mut buf = BytesMut::new();
        for _ in 0..frames {
            encode_data(self.conn, &vec![7u8; payload], &mut buf);
        }
        buf.freeze()
    }

    /// One wake-up: the gateway handles what the client's read put in `read_buf`, then the
    /// server's writer drops the batch it wrote last (`out`), takes the next one into `out` and
    /// finds nothing more. Returns the bytes taken.
    pub fn route(&mut self, read_buf: &mut BytesMut, out: &mut Vec<Bytes>) -> usize {
        self.gw.handle_input(self.client, read_buf, self.now);
        out.clear();
        let taken = self.gw.poll_transmit(self.server, self.now, out);
        self.gw
            .poll_transmit(self.server, self.now, &mut Vec::new());
        while self.gw.poll_action().is_some() {}
        taken
    }
}
