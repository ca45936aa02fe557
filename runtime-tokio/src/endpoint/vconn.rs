//! Virtual connections: message-oriented sessions multiplexed over the endpoint's link.

use super::driver::{Item, NewConn, SEND_HIGH_WATER, Shared};
use super::error::{RecvError, SendError};
use bytes::Bytes;
use std::fmt;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc::{self, error::TryRecvError};

/// One virtual connection (vconn) to a game server (from a client) or to a game client (from a
/// server), obtained from [`Endpoint::dial`](super::Endpoint::dial) or
/// [`Endpoint::accept`](super::Endpoint::accept).
///
/// Messages keep their boundaries: each [`send`](Self::send) arrives as one [`recv`](Self::recv) on
/// the other side, in order. An empty message is a message, never end of stream.
///
/// Dropping a `VConn` closes it (a Close goes to the gateway). To send from one task while another
/// receives, take a [`VConnSender`] with [`sender`](Self::sender).
pub struct VConn {
    sender: VConnSender,
    rx: mpsc::Receiver<Item>,
    /// Set once the end of stream was received; returned again by every later call.
    end: Option<RecvError>,
}

impl fmt::Debug for VConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VConn")
            .field("id", &self.sender.conn)
            .field("remote_id", &self.sender.remote)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl VConn {
    pub(crate) fn new(shared: Arc<Shared>, new: NewConn) -> Self {
        Self {
            sender: VConnSender {
                shared,
                conn: new.conn,
                remote: new.remote,
                local_closed: Arc::new(AtomicBool::new(false)),
            },
            rx: new.rx,
            end: None,
        }
    }

    /// The vconn id the gateway assigned (`ConnID` on the wire). Both ends of a vconn see the same id.
    pub fn id(&self) -> u32 {
        self.sender.conn
    }

    /// The other end: a server id (on a client endpoint) or the client's physical id (on a server
    /// endpoint; a server can [`dial`](super::Endpoint::dial) that id to open another vconn to the
    /// same client).
    pub fn remote_id(&self) -> u32 {
        self.sender.remote
    }

    /// Queues one message. See [`VConnSender::send`].
    pub async fn send(&self, msg: impl Into<Bytes>) -> Result<(), SendError> {
        self.sender.send(msg).await
    }

    /// Waits for the next message.
    ///
    /// When the remote closes the vconn or the link ends, every message that had arrived is returned
    /// first, then the reason: [`RecvError::Closed`] (closed by the remote),
    /// [`RecvError::Overflow`] (this side did not receive fast enough; see
    /// [`EndpointOptions::recv_queue`](super::EndpointOptions::recv_queue)) or [`RecvError::Link`]
    /// (the whole link ended). After a local [`close`](Self::close) it returns
    /// [`RecvError::Closed`] at once: messages not yet received are discarded. Cancel-safe: dropping
    /// the future loses nothing.
    pub async fn recv(&mut self) -> Result<Bytes, RecvError> {
        if let Some(end) = self.ended() {
            return Err(end);
        }
        let item = self.rx.recv().await;
        self.take(item)
    }

    /// The next message if one has arrived, `Ok(None)` if none has yet; never waits. Handy in a game
    /// loop that polls once per frame. Errors as for [`recv`](Self::recv).
    pub fn try_recv(&mut self) -> Result<Option<Bytes>, RecvError> {
        if let Some(end) = self.ended() {
            return Err(end);
        }
        match self.rx.try_recv() {
            Ok(item) => self.take(Some(item)).map(Some),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => self.take(None).map(Some),
        }
    }

    /// The end already reached, if any; a local close discards what is queued.
    fn ended(&mut self) -> Option<RecvError> {
        if self.sender.local_closed.load(Ordering::Acquire) {
            return Some(self.discard());
        }
        self.end
    }

    /// After a local close: drops the queued messages, ends the stream with `Closed`.
    fn discard(&mut self) -> RecvError {
        if self.end != Some(RecvError::Closed) {
            self.rx.close();
            while self.rx.try_recv().is_ok() {}
            self.end = Some(RecvError::Closed);
        }
        RecvError::Closed
    }

    fn take(&mut self, item: Option<Item>) -> Result<Bytes, RecvError> {
        // A close through a `VConnSender` while this waited: its `End` item woke us, or a message
        // came first; either way the local close wins.
        if self.sender.local_closed.load(Ordering::Acquire) {
            return Err(self.discard());
        }
        let end = match item {
            Some(Item::Msg(bytes)) => return Ok(bytes),
            Some(Item::End(end)) => end,
            // Every path that drops the queue's sender pushes an `End` first; this is a fallback.
            None => self
                .sender
                .shared
                .link_error()
                .map_or(RecvError::Closed, RecvError::Link),
        };
        self.end = Some(end);
        Err(end)
    }

    /// Closes the vconn: a Close goes to the gateway (which tells the other side), later sends fail
    /// with [`SendError::Closed`], and [`recv`](Self::recv) returns [`RecvError::Closed`] at once
    /// (messages that had arrived and were not received yet are discarded). Idempotent; also done
    /// on drop.
    pub fn close(&self) {
        self.sender.close();
    }

    /// A cloneable send half, so one task can send while another receives. It does not keep the vconn
    /// open: once this `VConn` is dropped (or closed), sends through it fail with
    /// [`SendError::Closed`].
    pub fn sender(&self) -> VConnSender {
        self.sender.clone()
    }
}

impl Drop for VConn {
    fn drop(&mut self) {
        self.sender.close();
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

impl fmt::Debug for VConnSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VConnSender")
            .field("id", &self.conn)
            .field("remote_id", &self.remote)
            .finish_non_exhaustive()
    }
}

impl VConnSender {
    /// The vconn id (see [`VConn::id`]).
    pub fn id(&self) -> u32 {
        self.conn
    }

    /// The other end's id (see [`VConn::remote_id`]).
    pub fn remote_id(&self) -> u32 {
        self.remote
    }

    /// Queues one message for the other end of the vconn; it is written to the socket in the
    /// background. `Bytes` and `Vec<u8>` are taken without a copy of the payload for large messages.
    ///
    /// **Back-pressure**: while more than about 4 MiB wait to be written to the gateway (a slow
    /// network or gateway), `send` waits until the writer has taken them. Nothing is ever dropped
    /// for a full queue.
    ///
    /// Errors: [`SendError::TooLarge`] above `max_packet - 4` bytes (the vconn stays open),
    /// [`SendError::Closed`] once the vconn is closed, [`SendError::Link`] once the link ended.
    pub async fn send(&self, msg: impl Into<Bytes>) -> Result<(), SendError> {
        let msg = msg.into();
        loop {
            let mut drained = pin!(self.shared.drained.notified());
            drained.as_mut().enable();
            {
                let mut st = self.shared.lock();
                if let Some(reason) = st.link_error {
                    return Err(SendError::Link(reason));
                }
                if st.core.transmit_len() <= SEND_HIGH_WATER {
                    st.core.send_bytes(self.conn, msg)?;
                    self.shared.settle(&mut st);
                    return Ok(());
                }
            }
            drained.await;
        }
    }

    /// Closes the vconn, as [`VConn::close`] (its `recv` returns [`RecvError::Closed`] at once).
    pub fn close(&self) {
        self.local_closed.store(true, Ordering::Release);
        let mut st = self.shared.lock();
        st.close_conn(self.conn, RecvError::Closed);
        self.shared.settle(&mut st);
    }
}
