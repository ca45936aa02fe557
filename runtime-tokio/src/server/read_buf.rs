//! A connection's read buffer, drawn from a small per-thread pool of equal chunks.
//!
//! Why: the frames the core routes are views of the read buffer (`Bytes` split off it), so the buffer
//! cannot be reused while they wait in a destination's queue. Allocating a fresh buffer per read made
//! `recv` copy into cold memory: with 16 KiB messages page faults and glibc trimming its arena cost
//! ~13 % of the gateway's time. Here a buffer whose views are still queued is parked in the pool
//! instead of freed; the next read takes the longest-parked chunk whose views have all been dropped
//! (`BytesMut::try_reclaim`), so the kernel writes into memory that is already mapped.
//! The chunks are larger than a client's configured read size, so one read takes whole large frames
//! (several at once when the client has sent them) instead of a header first and the rest later.
//!
//! Idle connections still hold no buffer: an empty buffer goes back to the pool, and the pool is
//! bounded ([`POOL_MAX`] chunks per thread), whatever the number of connections.

use bytes::BytesMut;
use fastway_core::frame::FrameDecoder;
use std::cell::RefCell;
use std::collections::VecDeque;

/// Size of a pooled chunk: the largest read a connection makes while its frames fit. A read buffer
/// configured larger than this (or a frame that does not fit) bypasses the pool.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Most chunks a thread keeps parked (2 MiB): enough for the views in flight between two reads of
/// a busy gateway; beyond it buffers are freed as before.
pub(crate) const POOL_MAX: usize = 32;

thread_local! {
    /// Parked chunks, oldest first. Some may still be shared with queued frames.
    static POOL: RefCell<VecDeque<BytesMut>> = const { RefCell::new(VecDeque::new()) };
}

/// One connection's read buffer: appended to by reads, consumed from the front by the core.
///
/// Kept as small as a bare `BytesMut` plus a `usize`: it lives in every connection's task, and
/// tokio rounds tasks up to 128 bytes, so a few more bytes can cost every idle connection 128.
#[derive(Debug)]
pub(crate) struct ReadBuf {
    buf: BytesMut,
    /// The configured read size (`ClientBufferSize` / `ServerBufferSize`).
    read_buffer: u32,
    /// `buf` views a pooled chunk (its allocation is exactly [`CHUNK`] bytes): it may be parked.
    pooled: bool,
}

impl ReadBuf {
    /// An empty buffer that allocates nothing until [`ReadBuf::prepare`]; `read_buffer` is the
    /// configured read size (sizes past `u32::MAX` are treated as `u32::MAX`).
    pub(crate) fn new(read_buffer: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            read_buffer: u32::try_from(read_buffer).unwrap_or(u32::MAX),
            pooled: false,
        }
    }

    /// The bytes read and not yet consumed, for the core.
    pub(crate) fn bytes(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Whether no bytes are waiting for the core.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Makes room for the next read: all of a frame whose length field is in, and at least a
    /// quarter chunk (or, past the pool, a quarter of `read_buffer`).
    pub(crate) fn prepare(&mut self, decoder: &FrameDecoder) {
        let read_buffer = self.read_buffer as usize;
        let len = self.buf.len();
        let missing = decoder
            .frame_len_hint(&self.buf)
            .map_or(0, |total| total.saturating_sub(len));
        let wanted = missing.max(CHUNK / 4);
        if read_buffer > CHUNK || len + wanted > CHUNK {
            self.grow_private(missing, read_buffer);
            return;
        }
        if self.buf.capacity() - len >= wanted {
            return;
        }
        // Reclaiming the buffer itself (its views are gone) moves the pending bytes to the front.
        if self.pooled && self.buf.try_reclaim(CHUNK - len) {
            return;
        }
        let mut chunk = take();
        chunk.extend_from_slice(&self.buf);
        let old = std::mem::replace(&mut self.buf, chunk);
        if std::mem::replace(&mut self.pooled, true) {
            park(old);
        }
    }

    /// Gives the buffer up (call it when empty): a pooled chunk is parked for the next read of any
    /// connection on this thread.
    pub(crate) fn release(&mut self) {
        let old = std::mem::take(&mut self.buf);
        if std::mem::replace(&mut self.pooled, false) {
            park(old);
        }
    }

    /// Room outside the pool, for a frame larger than a chunk or a configured read size larger
    /// than one: the allocation grows with the frame (`BytesMut::reserve`), as it did before the
    /// pool. A chunk grown this way leaves the pool for good; it is freed with its last view.
    fn grow_private(&mut self, missing: usize, read_buffer: usize) {
        let spare = self.buf.capacity() - self.buf.len();
        if spare < missing {
            self.pooled = false;
            self.buf.reserve(missing.max(read_buffer));
        } else if spare < (read_buffer / 4).max(1) {
            self.pooled = false;
            self.buf.reserve(read_buffer);
        }
    }
}

/// The longest-parked chunk that nothing else references any more (reset to empty, full room), or
/// a new one. Oldest first: the chunks parked last are the likeliest to still have frames queued,
/// so the search usually ends at the first one.
fn take() -> BytesMut {
    POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        let free = pool.iter_mut().position(|chunk| chunk.try_reclaim(CHUNK));
        free.and_then(|index| pool.remove(index))
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| BytesMut::with_capacity(CHUNK))
}

/// Parks a chunk (its frames may still be queued elsewhere) unless the pool is full; then it is
/// dropped and freed with its last view.
fn park(mut chunk: BytesMut) {
    chunk.clear();
    let _ = POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOL_MAX {
            pool.push_back(chunk);
        }
    });
}

#[cfg(test)]
mod tests;
