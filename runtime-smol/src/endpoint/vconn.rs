//! Virtual connections: message-oriented sessions multiplexed over one link.

use super::driver::{Shared, VConnParts};
use super::error::{RecvError, SendError};
use bytes::Bytes;
use smol::channel::{Receiver, TryRecvError};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// One virtual connection to a remote (a game server for a client endpoint, a client for a server
/// endpoint). Messages keep their boundaries and arrive in order; an empty message is a message.
///
/// Obtained from [`Endpoint::dial`](super::Endpoint::dial) or [`Endpoint::accept`](super::Endpoint::accept).
/// Dropping it closes it (the remote then sees end of stream). To send from one task while another
/// receives, take a [`VConnSender`] with [`sender`](Self::sender).
pub struct VConn {
    sender: VConnSender,
    rx: Receiver<Bytes>,
    end: Arc<OnceLock<RecvError>>,
}

impl VConn {
    pub(crate) fn new(shared: Arc<Shared>, parts: VConnParts) -> Self {
        Self {
            sender: VConnSender {
                shared,
                conn: parts.conn,
                remote: parts.remote,
                local_closed: Arc::new(AtomicBool::new(false)),
            },
            rx: parts.rx,
            end: parts.end,
        }
    }

    /// The vconn id the gateway assigned (the wire's ConnID); both members see the same id.
    pub fn id(&self) -> u32 {
        self.sender.conn
    }

    /// The other member: the server id for a client endpoint, the client's id for a server endpoint
    /// (a server dials that id to open another vconn to the same client).
    pub fn remote_id(&self) -> u32 {
        self.sender.remote
    }

    /// Queues one message for the remote. See [`VConnSender::send`].
    pub async fn send(&self, msg: impl Into<Bytes>) -> Result<(), SendError> {
        self.sender.send(msg).await
    }

    /// The next message, in order. Empty messages are delivered as empty `Bytes`, never as end of
    /// stream. When the remote closed the vconn, every message that arrived before its Close is
    /// delivered first, then [`RecvError::Closed`]; after the link ends, the queued messages and then
    /// [`RecvError::Link`]; after the receive queue overflowed, the queued messages and then
    /// [`RecvError::Overflow`]. After a local [`close`](Self::close), [`RecvError::Closed`] at once
    /// (messages not yet received are discarded).
    ///
    /// Cancel-safe: a message is never lost if the future is dropped before it completes.
    pub async fn recv(&mut self) -> Result<Bytes, RecvError> {
        if self.closed_locally() {
            return Err(RecvError::Closed);
        }
        match self.rx.recv().await {
            // A close through a `VConnSender` while this waited wins over a message.
            Ok(_) if self.closed_locally() => Err(RecvError::Closed),
            Ok(msg) => Ok(msg),
            Err(_) => Err(self.end_reason()),
        }
    }

    /// The next message if one has arrived, `Ok(None)` if none has yet; never waits. Handy in a game
    /// loop that polls once per frame. Errors as for [`recv`](Self::recv).
    pub fn try_recv(&mut self) -> Result<Option<Bytes>, RecvError> {
        if self.closed_locally() {
            return Err(RecvError::Closed);
        }
        match self.rx.try_recv() {
            Ok(msg) => Ok(Some(msg)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Closed) => Err(self.end_reason()),
        }
    }

    /// Whether the vconn was closed locally; if so, drops whatever is still queued.
    fn closed_locally(&self) -> bool {
        if !self.sender.local_closed.load(Ordering::Acquire) {
            return false;
        }
        while self.rx.try_recv().is_ok() {}
        true
    }

    fn end_reason(&self) -> RecvError {
        self.end.get().copied().unwrap_or(RecvError::Closed)
    }

    /// Closes the vconn: sends Close to the gateway (once; calling again does nothing), discards the
    /// messages that had arrived and were not received yet, and makes `recv` return
    /// [`RecvError::Closed`] at once. Sends fail with [`SendError::Closed`] from now on. Also done on
    /// drop.
    pub fn close(&self) {
        self.sender.close();
        while self.rx.try_recv().is_ok() {}
    }

    /// A cloneable send half, so one task can send while another receives. It does not keep the vconn
    /// open: dropping the `VConn` closes it, and sends through the sender then fail.
    pub fn sender(&self) -> VConnSender {
        self.sender.clone()
    }
}

impl Drop for VConn {
    fn drop(&mut self) {
        self.sender.close();
    }
}

impl fmt::Debug for VConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VConn")
            .field("id", &self.sender.conn)
            .field("remote_id", &self.sender.remote)
            .field("queued", &self.rx.len())
            .finish()
    }
}

/// The send half of a [`VConn`]: cheap to clone, usable from any task.
#[derive(Clone)]
pub struct VConnSender {
    shared: Arc<Shared>,
    conn: u32,
    remote: u32,
    /// Set by a local close (through the `VConn` or any sender); the `VConn`'s `recv` then discards.
    local_closed: Arc<AtomicBool>,
}

impl VConnSender {
    /// The vconn id (see [`VConn::id`]).
    pub fn id(&self) -> u32 {
        self.conn
    }

    /// The other member's id (see [`VConn::remote_id`]).
    pub fn remote_id(&self) -> u32 {
        self.remote
    }

    /// Queues one message for the remote; the driver writes it. `Bytes` and `Vec<u8>` are taken
    /// without a copy when large.
    ///
    /// **Back-pressure**: when more than 4 MiB is already waiting for the socket, this waits until the
    /// writer has taken it, so a sender can never outrun the network by more than that.
    ///
    /// Errors: [`SendError::TooLarge`] for a payload above `max_packet - 4` (nothing is sent and the
    /// vconn stays usable: the gateway would drop the whole link for such a frame);
    /// [`SendError::Closed`] once the vconn is closed (either side);
    /// [`SendError::Link`] once the link has ended.
    pub async fn send(&self, msg: impl Into<Bytes>) -> Result<(), SendError> {
        let msg: Bytes = msg.into();
        loop {
            let waiter = {
                let mut state = self.shared.lock();
                if let Some(reason) = state.core.close_reason() {
                    return Err(SendError::Link(reason));
                }
                if state.core.remote(self.conn).is_none() {
                    return Err(SendError::Closed);
                }
                let max = state.core.config().max_payload();
                if msg.len() > max {
                    return Err(SendError::TooLarge {
                        len: msg.len(),
                        max,
                    });
                }
                match Shared::send_waiter(&mut state) {
                    Some(waiter) => waiter,
                    None => {
                        state.core.send_bytes(self.conn, msg)?;
                        self.shared.after_call(&mut state);
                        return Ok(());
                    }
                }
            };
            // Woken (the sender is dropped) when the writer takes the queue or the link ends.
            let _ = waiter.recv().await;
        }
    }

    /// Closes the vconn (see [`VConn::close`]); the `VConn`'s `recv` then returns
    /// [`RecvError::Closed`] at once, discarding what was queued.
    pub fn close(&self) {
        self.local_closed.store(true, Ordering::Release);
        self.shared.close_vconn(self.conn);
    }
}

impl fmt::Debug for VConnSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VConnSender")
            .field("id", &self.conn)
            .field("remote_id", &self.remote)
            .finish()
    }
}
