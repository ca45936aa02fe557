//! The outbound byte queue: frames are appended as they are produced and pulled by the adapter.
//!
//! Small frames are copied into one contiguous buffer, so that a burst of them costs the adapter one
//! write (DESIGN.md §5). A large payload handed over as [`Bytes`] is not copied: the buffer so far is
//! cut off as one chunk, the payload follows as its own chunk, and the adapter writes them with a
//! vectored write.

use crate::frame::{Command, data_header, encode_data};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

/// Payloads at least this large, given as `Bytes`, are queued without copying. Below it a copy is
/// cheaper than an extra slice in a vectored write.
pub(super) const ZERO_COPY_MIN: usize = 8 * 1024;

/// Bytes waiting to be written to the socket, in order.
#[derive(Debug, Default)]
pub(super) struct TransmitQueue {
    /// Finished chunks; they all come before `tail`.
    chunks: VecDeque<Bytes>,
    /// Small frames copied since the last chunk was cut.
    tail: BytesMut,
    /// Total bytes queued.
    len: usize,
    /// While set, nothing is released: a server endpoint holds frames until its auth answer is queued
    /// in front of them.
    held: bool,
}

impl TransmitQueue {
    /// A queue that releases bytes only after [`release`](Self::release) (server role).
    pub(super) fn held() -> Self {
        Self {
            held: true,
            ..Self::default()
        }
    }

    /// Queues `bytes` in front of everything else and starts releasing (the server's auth answer).
    pub(super) fn release_after(&mut self, bytes: &[u8]) {
        if self.chunks.is_empty() {
            let mut tail = BytesMut::with_capacity(bytes.len() + self.tail.len());
            tail.extend_from_slice(bytes);
            tail.extend_from_slice(&self.tail);
            self.tail = tail;
        } else {
            self.chunks.push_front(Bytes::copy_from_slice(bytes));
        }
        self.len += bytes.len();
        self.held = false;
    }

    /// Queues a command frame.
    pub(super) fn push_command(&mut self, command: Command) {
        self.len += command.encoded_len();
        command.encode(&mut self.tail);
    }

    /// Queues a data frame, copying the payload.
    pub(super) fn push_data(&mut self, conn: u32, payload: &[u8]) {
        self.len += crate::frame::HEADER_LEN + payload.len();
        encode_data(conn, payload, &mut self.tail);
    }

    /// Queues a data frame, keeping a large payload as its own chunk.
    pub(super) fn push_data_bytes(&mut self, conn: u32, payload: Bytes) {
        if payload.len() < ZERO_COPY_MIN {
            self.push_data(conn, &payload);
            return;
        }
        self.len += crate::frame::HEADER_LEN + payload.len();
        self.tail
            .extend_from_slice(&data_header(conn, payload.len()));
        self.chunks.push_back(self.tail.split().freeze());
        self.chunks.push_back(payload);
    }

    /// The next bytes to write, if any are released.
    pub(super) fn pop(&mut self) -> Option<Bytes> {
        if self.held {
            return None;
        }
        let next = match self.chunks.pop_front() {
            Some(chunk) => chunk,
            None if !self.tail.is_empty() => self.tail.split().freeze(),
            None => return None,
        };
        self.len = self.len.saturating_sub(next.len());
        Some(next)
    }

    /// Bytes queued and not yet pulled (held bytes included).
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Drops everything: the link is dead, nothing will be written.
    pub(super) fn clear(&mut self) {
        self.chunks.clear();
        self.tail.clear();
        self.len = 0;
    }
}
