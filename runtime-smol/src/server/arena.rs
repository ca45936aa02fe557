//! Reads for sockets that hold no pending bytes, carved from one shared, zeroed 64 KiB chunk per
//! thread, with a small pool of chunks waiting to be reused.
//!
//! Why: a socket whose bytes the core has all consumed holds no buffer (idle connections cost no
//! memory, DESIGN.md §5), so each of its reads used to allocate a fresh `ClientBufferSize` buffer
//! (2 KiB), zero it (safe code can only read into initialised memory), and was capped at that size:
//! a client that had sent more took two reads, the first one ending mid-frame. Here such a read lands
//! in the spare room of the thread's current chunk, as much as the socket has, up to [`MIN_READ`] or
//! more; the bytes read are split off as a `BytesMut` view for the core, whose frames stay views of
//! the chunk. The chunk is zeroed once per use, not once per read. When its room runs low it is
//! parked, and the next chunk is the longest-parked one whose frames have all been written
//! (`BytesMut::try_reclaim` shows no other handle), so reads go to memory that is mapped and warm.
//!
//! What a read leaves over (part of a frame) is copied by the caller into the socket's own buffer;
//! a chunk is therefore never held by an idle connection, only by frames queued for a writer. The
//! pool is bounded ([`POOL_MAX`] chunks per thread); beyond it a chunk is freed with its last frame.

use bytes::BytesMut;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::TcpStream;

/// Size of a chunk. Sockets configured with a larger read buffer do not use the arena.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Room below which the current chunk is replaced before a read: every read may take at least this.
pub(crate) const MIN_READ: usize = 16 * 1024;

/// Most chunks a thread keeps parked (2 MiB), enough for the frames in flight between two writes of
/// a busy gateway.
const POOL_MAX: usize = 32;

thread_local! {
    /// This thread's arena (the smol gateway serves from one thread; any other gets its own).
    static ARENA: RefCell<Arena> = RefCell::new(Arena::default());
}

/// One non-blocking read from `stream` into the thread's current chunk. Returns the bytes read (empty
/// at EOF), a view of the chunk that the core may split frames off.
pub(crate) fn read(stream: &TcpStream) -> io::Result<BytesMut> {
    ARENA
        .try_with(|arena| arena.borrow_mut().read(stream))
        .unwrap_or_else(|_| Err(io::Error::other("thread is exiting: read arena is gone")))
}

/// The current chunk's room and the parked chunks.
#[derive(Debug, Default)]
struct Arena {
    /// Zeroed room at the end of the current chunk (empty before the first read).
    room: BytesMut,
    /// Whether `room` views a real chunk (the initial empty `BytesMut` is not worth parking).
    started: bool,
    /// Replaced chunks, oldest first; some still have frames queued.
    parked: VecDeque<BytesMut>,
}

impl Arena {
    fn read(&mut self, mut stream: &TcpStream) -> io::Result<BytesMut> {
        if self.room.len() < MIN_READ {
            self.refill();
        }
        let read = stream.read(&mut self.room)?;
        Ok(self.room.split_to(read))
    }

    /// Parks the current chunk and takes the oldest parked one that is free again, or a new one,
    /// zeroed to its full size.
    fn refill(&mut self) {
        let mut old = std::mem::take(&mut self.room);
        let free = self
            .parked
            .iter_mut()
            .position(|chunk| chunk.try_reclaim(CHUNK))
            .and_then(|index| self.parked.remove(index));
        if std::mem::replace(&mut self.started, true) && self.parked.len() < POOL_MAX {
            old.clear();
            self.parked.push_back(old);
        }
        let mut chunk = free.unwrap_or_else(|| BytesMut::with_capacity(CHUNK));
        chunk.clear();
        chunk.resize(CHUNK, 0);
        self.room = chunk;
    }
}

#[cfg(test)]
mod tests;
