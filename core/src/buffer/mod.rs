//! Byte buffers that take their memory back once the frames split off them have been written.
//!
//! `BytesMut` hands out frames as `Bytes` views of its own allocation (`split_to().freeze()`), so
//! routing a frame never copies it. [`BytesMut::reserve`] reuses that allocation only when no view
//! of it is alive any more. In a busy connection that is never the case at the right moment: the
//! writer still holds the batch it took while the next bytes already arrive, so every batch costs a
//! fresh allocation, plus the shared header `bytes` allocates the first time a buffer is split (it
//! turns the `Vec` into a reference-counted one).
//!
//! [`RecyclingBuf`] keeps a second allocation and uses the two in turn: while the writer holds
//! one, the other, whose batch has been written and dropped meanwhile, is reclaimed. In the steady
//! state nothing is allocated. The gateway's outboxes coalesce small frames in one; a runtime's read
//! loop can use one as its read buffer so large frames, which the gateway forwards as views of it,
//! do not cost a new buffer per read either.

use bytes::BytesMut;
use std::ops::{Deref, DerefMut};

#[cfg(test)]
mod tests;

/// A `BytesMut` backed by at most two allocations that it reuses in turn.
///
/// It dereferences to the `BytesMut` currently in use, so everything `BytesMut` offers works on it
/// (`split_to`, `extend_from_slice`, passing `&mut buf` where a `&mut BytesMut` is expected).
/// Call [`RecyclingBuf::reserve`] (rather than writing past the capacity) before adding bytes:
/// that is where the allocations are recycled. Writing without it is still correct, it merely
/// allocates as a plain `BytesMut` would.
///
/// Memory: it keeps at most two allocations, each about as large as the most it has held at once
/// (a whole batch for an outbox, a read window plus a partial frame for a read buffer); they never
/// shrink. The second comes with a small box (the spare's handle and size), made once. An empty,
/// never reserved one owns no allocation.
#[derive(Debug, Default)]
pub struct RecyclingBuf {
    /// The buffer bytes are written to.
    current: BytesMut,
    /// Size of the allocation behind `current`, as this type allocated it.
    current_size: usize,
    /// The other allocation, once there has been one. Boxed because every connection's outbox holds
    /// a `RecyclingBuf` and the gateway keeps its connections by value in one hash map: inline, the
    /// spare would make every entry (and so every idle client, times the table's spare slots) 32
    /// bytes larger, while only a connection that has needed two allocations at once uses it. The
    /// box is made once, with the second allocation, so recycling stays free of allocations.
    spare: Option<Box<Spare>>,
}

/// The allocation of a [`RecyclingBuf`] that is not in use.
#[derive(Debug)]
struct Spare {
    /// Empty, waiting for the views split off it to be dropped.
    buf: BytesMut,
    /// Size of the allocation behind `buf`.
    size: usize,
}

impl RecyclingBuf {
    /// An empty buffer without any allocation: the first [`RecyclingBuf::reserve`] makes one, so an
    /// idle connection costs nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes room for at least `additional` more bytes, keeping the current contents.
    ///
    /// In order of preference: room left in the current allocation; the current allocation taken
    /// back whole (all views of it dropped); the spare one taken back, the current contents (a
    /// partial frame, or the frames queued so far) copied to it; a new allocation as large as the
    /// largest so far (growing geometrically when that is not enough), the larger of the two old
    /// ones staying as the spare.
    ///
    /// # Panics
    ///
    /// Like [`BytesMut::reserve`], if the new capacity overflows `usize` or cannot be allocated.
    pub fn reserve(&mut self, additional: usize) {
        if self.current.try_reclaim(additional) {
            return;
        }
        let needed = self.current.len().saturating_add(additional);
        if let Some(spare) = self.spare.as_deref_mut() {
            if spare.buf.try_reclaim(needed) {
                spare.buf.extend_from_slice(&self.current);
                std::mem::swap(&mut self.current, &mut spare.buf);
                std::mem::swap(&mut self.current_size, &mut spare.size);
                spare.buf.clear();
                return;
            }
        }
        self.replace_current(needed);
    }

    /// Size of the spare allocation; 0 while there is none.
    fn spare_size(&self) -> usize {
        self.spare.as_ref().map_or(0, |spare| spare.size)
    }

    /// Moves the current contents to a new allocation of at least `needed` bytes. Of the old current
    /// and spare allocations the larger is kept as the spare, so the pair settles at the largest
    /// size in use instead of trading a large buffer for a small one.
    fn replace_current(&mut self, needed: usize) {
        let spare_size = self.spare_size();
        let largest = self.current_size.max(spare_size);
        let size = if needed <= largest {
            largest
        } else {
            needed.max(self.current.len().saturating_mul(2))
        };
        let mut fresh = BytesMut::with_capacity(size);
        fresh.extend_from_slice(&self.current);
        let fresh_size = fresh.capacity();
        let old = std::mem::replace(&mut self.current, fresh);
        let old_size = std::mem::replace(&mut self.current_size, fresh_size);
        if old_size > 0 && old_size >= spare_size {
            self.keep_as_spare(old, old_size);
        }
    }

    /// Makes `buf` (an allocation of `size` bytes) the spare, emptied; the old spare is dropped.
    fn keep_as_spare(&mut self, mut buf: BytesMut, size: usize) {
        buf.clear();
        match self.spare.as_deref_mut() {
            Some(spare) => *spare = Spare { buf, size },
            None => self.spare = Some(Box::new(Spare { buf, size })),
        }
    }
}

impl Deref for RecyclingBuf {
    type Target = BytesMut;

    fn deref(&self) -> &BytesMut {
        &self.current
    }
}

impl DerefMut for RecyclingBuf {
    fn deref_mut(&mut self) -> &mut BytesMut {
        &mut self.current
    }
}
