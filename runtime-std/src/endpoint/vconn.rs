//! Virtual connections: the per-vconn inbound queue and the user handles.

use super::driver::Shared;
use super::error::{RecvError, SendError};
use bytes::Bytes;
use fastway_core::endpoint::LinkError;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How a vconn's inbound stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Closed by the remote or locally.
    Closed,
    /// Closed because the queue overflowed.
    Overflow,
    /// The link ended.
    Link(LinkError),
}

impl From<End> for RecvError {
    fn from(end: End) -> Self {
        match end {
            End::Closed => Self::Closed,
            End::Overflow => Self::Overflow,
            End::Link(reason) => Self::Link(reason),
        }
    }
}

/// One vconn's inbound messages. Filled by the reader thread (which holds the endpoint lock and then
/// this one, never the other way round), drained by [`VConn::recv`] (which takes only this one).
#[derive(Default)]
pub(crate) struct Inbox {
    queue: Mutex<InboxState>,
    ready: Condvar,
}

#[derive(Default)]
struct InboxState {
    messages: VecDeque<Bytes>,
    end: Option<End>,
    waiting: bool,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, InboxState> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a message; `false` (nothing queued) if `limit` messages are already waiting.
    pub(crate) fn push(&self, message: Bytes, limit: usize) -> bool {
        let mut queue = self.lock();
        if queue.end.is_some() {
            return true;
        }
        if queue.messages.len() >= limit {
            return false;
        }
        queue.messages.push_back(message);
        if queue.waiting {
            self.ready.notify_one();
        }
        true
    }

    /// Ends the stream after the queued messages; the first end wins.
    pub(crate) fn end(&self, end: End) {
        let mut queue = self.lock();
        if queue.end.is_none() {
            queue.end = Some(end);
        }
        self.ready.notify_all();
    }

    /// Local close: the user is done, so queued messages are dropped and every later `recv` reports
    /// [`RecvError::Closed`], whatever ended the stream before.
    fn close_local(&self) {
        let mut queue = self.lock();
        queue.messages.clear();
        queue.end = Some(End::Closed);
        self.ready.notify_all();
    }

    /// The next message; `Ok(None)` if `deadline` passed first.
    fn recv(&self, deadline: Option<Instant>) -> Result<Option<Bytes>, RecvError> {
        let mut queue = self.lock();
        loop {
            if let Some(message) = queue.messages.pop_front() {
                return Ok(Some(message));
            }
            if let Some(end) = queue.end {
                return Err(end.into());
            }
            queue.waiting = true;
            queue = match deadline {
                None => self
                    .ready
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        queue.waiting = false;
                        return Ok(None);
                    }
                    self.ready
                        .wait_timeout(queue, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            queue.waiting = false;
        }
    }
}

/// One virtual connection through the gateway: an ordered, message-oriented, bidirectional session
/// with one remote (a game server for a client endpoint, a client for a server endpoint).
///
/// Messages keep their boundaries and arrive in order; an empty message is a message, never end of
/// stream. Receiving needs `&mut self`; to send from another thread meanwhile, take a
/// [`sender`](Self::sender). Dropping the `VConn` closes it (see [`close`](Self::close)).
pub struct VConn {
    shared: Arc<Shared>,
    inbox: Arc<Inbox>,
    id: u32,
    remote: u32,
}

impl VConn {
    pub(crate) fn new(shared: Arc<Shared>, id: u32, remote: u32, inbox: Arc<Inbox>) -> Self {
        Self {
            shared,
            inbox,
            id,
            remote,
        }
    }

    /// The vconn id the gateway assigned; both members see the same id, handy to match logs.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Who is at the other end: the server id for a client endpoint, the client's id for a server
    /// endpoint (what a server passes to [`Endpoint::dial`](super::Endpoint::dial) to reach that client
    /// again).
    pub fn remote_id(&self) -> u32 {
        self.remote
    }

    /// Queues one message for the remote and returns; the writer thread sends it.
    ///
    /// **Back-pressure**: if more than 4 MiB are already waiting for the socket (for the whole
    /// endpoint), this blocks until the writer has drained below that, so a fast sender cannot grow
    /// memory without bound when the gateway or network is slower. It returns early with an error if
    /// the vconn or the link closes meanwhile.
    ///
    /// A message above `max_packet - 4` bytes fails with [`SendError::TooLarge`] and the vconn stays
    /// usable. Passing a `Bytes` (or `Vec<u8>`) of 8 KiB or more avoids copying it.
    pub fn send(&self, message: impl Into<Bytes>) -> Result<(), SendError> {
        send(&self.shared, self.id, message.into())
    }

    /// Blocks until the next message. After the remote closes, every message it sent first is still
    /// delivered, then [`RecvError::Closed`]; see [`RecvError`] for the other ends.
    pub fn recv(&mut self) -> Result<Bytes, RecvError> {
        match self.inbox.recv(None) {
            Ok(Some(message)) => Ok(message),
            Ok(None) => Err(RecvError::Closed), // unreachable without a deadline
            Err(error) => Err(error),
        }
    }

    /// Like [`recv`](Self::recv) but gives up after `timeout`, returning `Ok(None)`; the vconn is
    /// unaffected. Handy in a game loop (`Duration::ZERO` polls).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Bytes>, RecvError> {
        self.inbox.recv(Some(Instant::now() + timeout))
    }

    /// The next message if one has arrived, `Ok(None)` if none has yet; never blocks. Errors as for
    /// [`recv`](Self::recv).
    pub fn try_recv(&mut self) -> Result<Option<Bytes>, RecvError> {
        self.inbox.recv(Some(Instant::now()))
    }

    /// Closes the vconn: queues `Close` to the gateway (which tells the remote), **discards** messages
    /// received and not yet read, and makes later `send` fail with [`SendError::Closed`] and `recv`
    /// with [`RecvError::Closed`] at once. Idempotent; also done on drop.
    pub fn close(&self) {
        close_local(&self.shared, self.id, &self.inbox);
    }

    /// A cloneable handle that can only send, so that one thread sends while another receives. It does
    /// not keep the vconn open: once the `VConn` is closed or dropped its sends fail with `Closed`.
    pub fn sender(&self) -> VConnSender {
        VConnSender {
            shared: Arc::clone(&self.shared),
            inbox: Arc::clone(&self.inbox),
            id: self.id,
            remote: self.remote,
        }
    }
}

/// A local close (from a [`VConn`] or a [`VConnSender`]): Close to the gateway once, queued messages
/// dropped.
fn close_local(shared: &Shared, id: u32, inbox: &Inbox) {
    {
        let mut st = shared.lock();
        if st.conns.remove(&id).is_some() {
            st.core.close(id);
            shared.after(&mut st);
        }
    }
    inbox.close_local();
}

impl Drop for VConn {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for VConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VConn")
            .field("id", &self.id)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

/// The send half of a [`VConn`], from [`VConn::sender`]. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct VConnSender {
    shared: Arc<Shared>,
    inbox: Arc<Inbox>,
    id: u32,
    remote: u32,
}

impl VConnSender {
    /// The vconn id this sender writes to.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The other end's id (see [`VConn::remote_id`]).
    pub fn remote_id(&self) -> u32 {
        self.remote
    }

    /// Same as [`VConn::send`], back-pressure included.
    pub fn send(&self, message: impl Into<Bytes>) -> Result<(), SendError> {
        send(&self.shared, self.id, message.into())
    }

    /// Closes the vconn, as [`VConn::close`] (its `recv` then fails with [`RecvError::Closed`] at
    /// once).
    pub fn close(&self) {
        close_local(&self.shared, self.id, &self.inbox);
    }
}

impl fmt::Debug for VConnSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VConnSender")
            .field("id", &self.id)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

fn send(shared: &Shared, conn: u32, message: Bytes) -> Result<(), SendError> {
    // Fail fast on size, before waiting for back-pressure.
    if message.len() > shared.max_payload {
        return Err(SendError::TooLarge {
            len: message.len(),
            max: shared.max_payload,
        });
    }
    let mut st = shared.lock_for_send(conn);
    let result = st.core.send_bytes(conn, message).map_err(SendError::from);
    shared.after(&mut st);
    result
}
