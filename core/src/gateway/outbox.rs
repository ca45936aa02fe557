//! A connection's outbound queue: frames waiting for its writer.
//!
//! Small frames are copied into one contiguous buffer so the writer sends many of them with one
//! syscall; large frames stay the `Bytes` views they arrived as, so their payload is never copied
//! (DESIGN.md §5).
//!
//! The contiguous buffer is a [`RecyclingBuf`]: while the writer holds the batch it took last, new
//! frames go to the other of its two allocations, and each is taken back once its batch has been
//! written and dropped, so a busy connection settles at no allocation per batch.

use crate::buffer::RecyclingBuf;
use crate::frame::Command;
use bytes::Bytes;
use std::collections::VecDeque;

/// Frames up to this size are copied into the contiguous tail; larger ones are queued as they are.
pub(crate) const COPY_THRESHOLD: usize = 2048;

/// Outbound bytes of one connection.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Finished segments, oldest first.
    segments: VecDeque<Bytes>,
    /// Small frames being gathered after the last segment.
    tail: RecyclingBuf,
    /// Frames queued and not yet taken by the writer.
    frames: usize,
    /// Bytes queued and not yet taken by the writer.
    queued_bytes: usize,
    /// Bytes the writer took and is still writing.
    in_flight_bytes: usize,
}

impl Outbox {
    /// Queues one whole frame.
    pub(crate) fn push(&mut self, frame: Bytes) {
        self.frames += 1;
        self.queued_bytes += frame.len();
        if frame.len() <= COPY_THRESHOLD {
            self.tail.reserve(frame.len());
            self.tail.extend_from_slice(&frame);
        } else {
            self.seal_tail();
            self.segments.push_back(frame);
        }
    }

    /// Queues a command frame built by the gateway, encoding it straight into the tail.
    pub(crate) fn push_command(&mut self, command: &Command) {
        self.frames += 1;
        self.queued_bytes += command.encoded_len();
        self.tail.reserve(command.encoded_len());
        command.encode(&mut self.tail);
    }

    /// Queues raw bytes that are not a frame (the auth challenge).
    pub(crate) fn push_raw(&mut self, bytes: &[u8]) {
        self.queued_bytes += bytes.len();
        self.frames += 1;
        self.tail.reserve(bytes.len());
        self.tail.extend_from_slice(bytes);
    }

    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.segments.push_back(self.tail.split().freeze());
        }
    }

    /// Hands everything queued to the writer, appending it to `out`. The previous batch counts as
    /// written. Returns the number of bytes taken.
    pub(crate) fn take(&mut self, out: &mut Vec<Bytes>) -> usize {
        self.seal_tail();
        out.extend(self.segments.drain(..));
        let taken = self.queued_bytes;
        self.in_flight_bytes = taken;
        self.queued_bytes = 0;
        self.frames = 0;
        taken
    }

    /// Everything still queued, for a last flush before closing.
    pub(crate) fn drain_all(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        self.take(&mut out);
        out
    }

    /// Frames queued and not yet taken.
    pub(crate) fn frames(&self) -> usize {
        self.frames
    }

    /// The writer's socket is gone: its batch no longer counts as being written.
    pub(crate) fn writer_lost(&mut self) {
        self.in_flight_bytes = 0;
    }

    /// True while the writer is still writing the batch it took last.
    pub(crate) fn writer_busy(&self) -> bool {
        self.in_flight_bytes > 0
    }

    /// Bytes queued plus bytes being written.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.queued_bytes + self.in_flight_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_frames_are_coalesced_into_one_segment() {
        let mut outbox = Outbox::default();
        outbox.push(Bytes::from_static(b"abc"));
        outbox.push_raw(b"de");
        outbox.push(Bytes::from_static(b"f"));
        let mut out = Vec::new();
        assert_eq!(outbox.take(&mut out), 6);
        assert_eq!(out, vec![Bytes::from_static(b"abcdef")]);
        assert_eq!(outbox.frames(), 0);
        assert_eq!(outbox.pending_bytes(), 6);
        out.clear();
        assert_eq!(outbox.take(&mut out), 0);
        assert!(out.is_empty());
        assert_eq!(outbox.pending_bytes(), 0);
    }

    #[test]
    fn large_frames_are_queued_without_copying_and_in_order() {
        let big = Bytes::from(vec![7u8; COPY_THRESHOLD + 1]);
        let mut outbox = Outbox::default();
        outbox.push(Bytes::from_static(b"a"));
        outbox.push(big.clone());
        outbox.push(Bytes::from_static(b"b"));
        let mut out = Vec::new();
        outbox.take(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], Bytes::from_static(b"a"));
        assert_eq!(out[1].as_ptr(), big.as_ptr());
        assert_eq!(out[2], Bytes::from_static(b"b"));
    }
}
