//! Decoding + routing in the core alone: frames per second and allocations per routed frame.
//!
//! Run with `cargo bench -p fastway-core --bench routing`. `route_batch`: each iteration feeds one
//! read batch of `FRAMES` data frames from a client, routes them to a server, and takes the server's
//! output batch, exactly as a runtime does per wake-up (divan's `items/s` is frames per second; its
//! alloc count is per batch of `FRAMES`). `route_one`: the same with one frame per wake-up, so its
//! alloc count is allocations per routed frame in the worst case (no batching).
#![allow(missing_docs, clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use divan::{AllocProfiler, Bencher, counter::ItemsCount};
use fastway_core::auth::{Challenge, server_response};
use fastway_core::frame::{Command, encode_data};
use fastway_core::gateway::{Gateway, GatewayConfig, PeerId};
use std::time::Instant;

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

const FRAMES: usize = 256;

fn main() {
    divan::main();
}

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

/// A gateway with one client, one server and a vconn between them.
fn setup() -> (Gateway, PeerId, PeerId, u32, Instant) {
    let now = Instant::now();
    let mut gw = Gateway::new(GatewayConfig {
        client_queue: fastway_core::gateway::QueueLimits {
            max_frames: 1 << 20,
            max_bytes: 1 << 30,
        },
        server_queue: fastway_core::gateway::QueueLimits {
            max_frames: 1 << 20,
            max_bytes: 1 << 30,
        },
        ..GatewayConfig::default()
    });
    let server = gw.accept_server(now, &mut FixedRng);
    let mut out = Vec::new();
    gw.poll_transmit(server, now, &mut out);
    let challenge = Challenge(out.concat().try_into().unwrap());
    let mut answer = BytesMut::from(&server_response(&challenge, b"", 1)[..]);
    gw.handle_input(server, &mut answer, now);
    let client = gw.accept_client(now).unwrap();
    let mut dial = BytesMut::from(&Command::Dial { remote: 1 }.to_bytes()[..]);
    gw.handle_input(client, &mut dial, now);
    for peer in [client, server] {
        out.clear();
        gw.poll_transmit(peer, now, &mut out);
        gw.poll_transmit(peer, now, &mut Vec::new());
    }
    while gw.poll_action().is_some() {}
    (gw, client, server, 1, now)
}

fn batch(conn: u32, payload: usize) -> Bytes {
    let mut buf = BytesMut::new();
    for _ in 0..FRAMES {
        encode_data(conn, &vec![7u8; payload], &mut buf);
    }
    buf.freeze()
}

#[divan::bench(args = [64, 4096])]
fn route_batch(bencher: Bencher, payload: usize) {
    let (mut gw, client, server, conn, now) = setup();
    let wire = batch(conn, payload);
    let mut read_buf = BytesMut::with_capacity(wire.len());
    let mut out: Vec<Bytes> = Vec::new();
    bencher.counter(ItemsCount::new(FRAMES)).bench_local(|| {
        read_buf.extend_from_slice(&wire);
        gw.handle_input(client, &mut read_buf, now);
        out.clear();
        gw.poll_transmit(server, now, &mut out);
        gw.poll_transmit(server, now, &mut Vec::new());
        while gw.poll_action().is_some() {}
        divan::black_box(&out);
    });
}

#[divan::bench(args = [64, 4096])]
fn route_one(bencher: Bencher, payload: usize) {
    let (mut gw, client, server, conn, now) = setup();
    let mut wire = BytesMut::new();
    encode_data(conn, &vec![7u8; payload], &mut wire);
    let wire = wire.freeze();
    let mut read_buf = BytesMut::with_capacity(wire.len());
    let mut out: Vec<Bytes> = Vec::new();
    bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
        read_buf.extend_from_slice(&wire);
        gw.handle_input(client, &mut read_buf, now);
        out.clear();
        gw.poll_transmit(server, now, &mut out);
        gw.poll_transmit(server, now, &mut Vec::new());
        while gw.poll_action().is_some() {}
        divan::black_box(&out);
    });
}
