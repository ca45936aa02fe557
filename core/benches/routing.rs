//! Decoding + routing in the core alone: frames per second and allocations per routed frame.
//!
//! Run with `cargo bench -p fastway-core --bench routing`. `route_batch`: each iteration feeds one
//! read batch of `FRAMES` data frames from a client, routes them to a server, and takes the server's
//! output batch, exactly as a runtime does per wake-up (divan's `items/s` is frames per second; its
//! alloc count is per batch of `FRAMES`). `route_one`: the same with one frame per wake-up, so its
//! alloc count is allocations per routed frame in the worst case (no batching).
//!
//! The plain variants read into one `BytesMut`, as the runtimes do today; the `_recycled_read` ones
//! read into a [`RecyclingBuf`], which also takes the read buffer back while the writer still holds
//! the large frames the gateway forwarded as views of it. `tests/allocations.rs` asserts the zero
//! allocations these report, with the same routing code (`tests/support`).
#![allow(missing_docs, clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use bytes::{Bytes, BytesMut};
use divan::{AllocProfiler, Bencher, counter::ItemsCount};
use fastway_core::buffer::RecyclingBuf;
use support::Route;

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

const FRAMES: usize = 256;

fn main() {
    divan::main();
}

/// `frames` frames of `payload` bytes per wake-up, read into a plain `BytesMut`.
fn plain_read(bencher: Bencher, frames: usize, payload: usize) {
    let mut route = Route::new();
    let wire = route.wire(frames, payload);
    let mut read_buf = BytesMut::with_capacity(wire.len());
    let mut out: Vec<Bytes> = Vec::new();
    bencher.counter(ItemsCount::new(frames)).bench_local(|| {
        read_buf.extend_from_slice(&wire);
        route.route(&mut read_buf, &mut out);
        divan::black_box(&out);
    });
}

/// `frames` frames of `payload` bytes per wake-up, read into a [`RecyclingBuf`].
fn recycled_read(bencher: Bencher, frames: usize, payload: usize) {
    let mut route = Route::new();
    let wire = route.wire(frames, payload);
    let mut read_buf = RecyclingBuf::new();
    let mut out: Vec<Bytes> = Vec::new();
    bencher.counter(ItemsCount::new(frames)).bench_local(|| {
        read_buf.reserve(wire.len());
        read_buf.extend_from_slice(&wire);
        route.route(&mut read_buf, &mut out);
        divan::black_box(&out);
    });
}

#[divan::bench(args = [64, 4096])]
fn route_batch(bencher: Bencher, payload: usize) {
    plain_read(bencher, FRAMES, payload);
}

#[divan::bench(args = [64, 4096])]
fn route_one(bencher: Bencher, payload: usize) {
    plain_read(bencher, 1, payload);
}

#[divan::bench(args = [64, 4096])]
fn route_batch_recycled_read(bencher: Bencher, payload: usize) {
    recycled_read(bencher, FRAMES, payload);
}

#[divan::bench(args = [64, 4096])]
fn route_one_recycled_read(bencher: Bencher, payload: usize) {
    recycled_read(bencher, 1, payload);
}
