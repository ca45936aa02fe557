//! Routing settles at zero allocations per batch (issue 5): after a few warm-up wake-ups the gateway
//! reuses its outbox buffers, and a read buffer reclaims its allocation, so neither decoding nor
//! routing a frame allocates. Counted with a counting global allocator; all scenarios run in one
//! test so that no other test's allocations land in the counts.

mod support;

use bytes::{Bytes, BytesMut};
use fastway_core::buffer::RecyclingBuf;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use support::Route;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Wake-ups before counting: the buffers grow to their working size and are shared once.
const WARM_UP: usize = 8;
/// Wake-ups counted.
const COUNTED: usize = 64;

/// One wake-up of a runtime: the read puts `wire` into its buffer, then the gateway routes it.
type WakeUp<'a> = dyn FnMut(&mut Route, &Bytes, &mut Vec<Bytes>) -> usize + 'a;

/// Allocations (new blocks plus reallocations) made by `COUNTED` wake-ups that each route `frames`
/// frames of `payload` bytes, after `WARM_UP` uncounted ones.
fn steady_state_allocations(frames: usize, payload: usize, wake_up: &mut WakeUp<'_>) -> usize {
    let mut route = Route::new();
    let wire = route.wire(frames, payload);
    let mut out: Vec<Bytes> = Vec::new();
    for _ in 0..WARM_UP {
        assert_eq!(wake_up(&mut route, &wire, &mut out), wire.len());
    }
    let region = Region::new(GLOBAL);
    let mut routed = 0;
    for _ in 0..COUNTED {
        routed += wake_up(&mut route, &wire, &mut out);
    }
    let change = region.change();
    assert_eq!(routed, COUNTED * wire.len(), "every frame is routed");
    change.allocations + change.reallocations
}

/// A plain `BytesMut` read buffer, reserved once as a runtime's read window is.
fn plain_read(capacity: usize) -> impl FnMut(&mut Route, &Bytes, &mut Vec<Bytes>) -> usize {
    let mut read_buf = BytesMut::with_capacity(capacity);
    move |route, wire, out| {
        read_buf.extend_from_slice(wire);
        route.route(&mut read_buf, out)
    }
}

/// A [`RecyclingBuf`] read buffer, reserved before each read.
fn recycled_read() -> impl FnMut(&mut Route, &Bytes, &mut Vec<Bytes>) -> usize {
    let mut read_buf = RecyclingBuf::new();
    move |route, wire, out| {
        read_buf.reserve(wire.len());
        read_buf.extend_from_slice(wire);
        route.route(&mut read_buf, out)
    }
}

#[test]
fn routing_settles_at_zero_allocations() {
    let batch = 256;
    let small = 64;
    let large = 4096;
    let small_wire = batch * (8 + small);
    let counts = [
        (
            "256 × 64 B per wake-up, plain read buffer",
            steady_state_allocations(batch, small, &mut plain_read(small_wire)),
        ),
        (
            "1 × 64 B per wake-up, plain read buffer",
            steady_state_allocations(1, small, &mut plain_read(8 + small)),
        ),
        (
            "256 × 64 B per wake-up, recycling read buffer",
            steady_state_allocations(batch, small, &mut recycled_read()),
        ),
        (
            "256 × 4 KiB per wake-up, recycling read buffer",
            steady_state_allocations(batch, large, &mut recycled_read()),
        ),
        (
            "1 × 4 KiB per wake-up, recycling read buffer",
            steady_state_allocations(1, large, &mut recycled_read()),
        ),
    ];
    let failing: Vec<_> = counts.iter().filter(|(_, count)| *count != 0).collect();
    assert!(
        failing.is_empty(),
        "allocations in {COUNTED} steady-state wake-ups: {failing:?}"
    );
}
