//! The driver: the state shared by every handle of one link, and the three tasks that move bytes and
//! time between the socket and the sans-IO core.
//!
//! * The **reader** reads into a `BytesMut`, feeds [`handle_input`](CoreEndpoint::handle_input) and
//!   dispatches the events that follow.
//! * The **writer** takes everything [`poll_transmit`](CoreEndpoint::poll_transmit) has, writes it with
//!   one (vectored) write call per try, and sleeps until woken.
//! * The **timer** sleeps until [`poll_timeout`](CoreEndpoint::poll_timeout) and calls
//!   [`handle_timeout`](CoreEndpoint::handle_timeout).
//!
//! With snet, one snet driver task (`super::snet`) replaces the reader and the writer: the socket
//! changes across reconnects, so one task owns it and the snet client.
//!
//! Every touch of the core happens under one `std::sync::Mutex`, never held across an await or IO;
//! after each touch [`Shared::settle`] drains the core's events and wakes whoever must act.

use super::error::{DialError, RecvError};
use super::snet::SnetStart;
use bytes::{Buf, Bytes, BytesMut};
use fastway_core::endpoint::{CloseReason, DialId, Endpoint as CoreEndpoint, Event, LinkError};
use fastway_core::frame::FrameDecoder;
use fastway_core::snet::SnetClientError;
use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc, oneshot};

/// `send` waits while more than this many bytes wait in the core for the writer (back-pressure).
pub(crate) const SEND_HIGH_WATER: usize = 4 << 20;
/// How long a shut-down link may spend flushing its last frames (and reading the gateway's answer to
/// them) before the socket is closed regardless.
pub(super) const LINGER: Duration = Duration::from_secs(2);
/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;
/// Most buffers passed to one vectored write.
const MAX_IOV: usize = 64;

/// One entry of a vconn's inbound queue.
#[derive(Debug)]
pub(crate) enum Item {
    /// A message.
    Msg(Bytes),
    /// The end of the stream; nothing follows.
    End(RecvError),
}

/// A vconn the core just opened, on its way to the user (through a dial's reply or the accept queue).
#[derive(Debug)]
pub(crate) struct NewConn {
    pub(crate) conn: u32,
    pub(crate) remote: u32,
    pub(crate) rx: mpsc::Receiver<Item>,
}

/// What a waiting `dial` gets.
pub(crate) type DialReply = Result<NewConn, DialError>;

/// Everything behind the lock.
pub(crate) struct State {
    pub(crate) core: CoreEndpoint,
    /// Inbound queue of every open vconn. The channel holds `recv_queue + 1` items: the last slot is
    /// kept for the `End` item so that the end of a stream always fits.
    conns: HashMap<u32, mpsc::Sender<Item>>,
    /// Dials waiting for the gateway's answer.
    pub(crate) dials: HashMap<DialId, oneshot::Sender<DialReply>>,
    /// Incoming vconns not yet taken by `accept`.
    pub(crate) accept: VecDeque<NewConn>,
    /// Set once, when the core reports `LinkClosed`.
    pub(crate) link_error: Option<LinkError>,
    /// Server role: the challenge was answered. Client role: always true.
    pub(crate) ready: bool,
    /// Bytes written to the socket so far.
    pub(crate) written: u64,
    /// What the timer task sleeps until (`None`: until woken).
    timer_at: Option<Instant>,
    /// The link runs over snet (the snet driver replaces the reader and the writer).
    snet: bool,
    /// snet: a ping timeout asked the snet driver to drop the current socket and reconnect.
    pub(super) snet_reconnect: bool,
    /// snet: why the snet session gave up, when that is what ended the link.
    pub(super) snet_error: Option<SnetClientError>,
    /// snet: how many reconnects have brought the link back up (copied from the client).
    pub(super) snet_reconnects: u64,
}

impl State {
    /// Opens the inbound queue of a vconn the core just announced.
    fn open(&mut self, conn: u32, remote: u32, recv_queue: usize) -> NewConn {
        let (tx, rx) = mpsc::channel(recv_queue.max(1) + 1);
        self.conns.insert(conn, tx);
        NewConn { conn, remote, rx }
    }

    /// Closes vconn `conn` locally: Close to the gateway, and `end` after its queued messages.
    pub(crate) fn close_conn(&mut self, conn: u32, end: RecvError) {
        if let Some(tx) = self.conns.remove(&conn) {
            // The reserved slot guarantees room; an error means the receiver is gone, which is fine.
            let _ = tx.try_send(Item::End(end));
        }
        self.core.close(conn);
    }
}

/// The state of one link, shared by the user's handles and the driver tasks.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Per-vconn inbound queue length, in messages.
    recv_queue: usize,
    /// Wakes the writer (one waiter; a permit is kept if it is busy). With snet, wakes the snet
    /// driver: the core has bytes, a reconnect was asked for, or the link ended.
    pub(super) writer: Notify,
    /// Wakes the timer to recompute its deadline.
    timer: Notify,
    /// Something `accept`/`closed` wait for happened: an incoming vconn, the link ended.
    pub(crate) changed: Notify,
    /// The writer took or finished a batch, or the link ended: `send` under back-pressure and
    /// `connect_server` re-check.
    pub(crate) drained: Notify,
    /// Fired once when the link ends: the reader and the timer stop.
    shutdown: Notify,
    /// snet: wakes the snet driver (one waiter, a permit is kept) when the link ended or a
    /// reconnect was asked for.
    pub(super) snet_wake: Notify,
}

impl Shared {
    /// Builds the shared state and starts the reader, writer and timer tasks on the current runtime.
    pub(crate) fn start(
        core: CoreEndpoint,
        recv_queue: usize,
        read: OwnedReadHalf,
        write: OwnedWriteHalf,
    ) -> Arc<Self> {
        let max_packet = core.config().max_packet;
        let shared = Self::new(core, recv_queue, false);
        tokio::spawn(reader(Arc::clone(&shared), read, max_packet));
        tokio::spawn(writer(Arc::clone(&shared), write));
        tokio::spawn(timer(Arc::clone(&shared)));
        shared
    }

    /// Builds the shared state of an snet link whose first handshake is done, and starts the snet
    /// driver (socket, reconnects) and the timer task on the current runtime.
    pub(crate) fn start_snet(core: CoreEndpoint, recv_queue: usize, link: SnetStart) -> Arc<Self> {
        let shared = Self::new(core, recv_queue, true);
        tokio::spawn(super::snet::drive(Arc::clone(&shared), link));
        tokio::spawn(timer(Arc::clone(&shared)));
        shared
    }

    fn new(core: CoreEndpoint, recv_queue: usize, snet: bool) -> Arc<Self> {
        let ready = core.is_ready();
        Arc::new(Self {
            state: Mutex::new(State {
                core,
                conns: HashMap::new(),
                dials: HashMap::new(),
                accept: VecDeque::new(),
                link_error: None,
                ready,
                written: 0,
                timer_at: None,
                snet,
                snet_reconnect: false,
                snet_error: None,
                snet_reconnects: 0,
            }),
            recv_queue,
            writer: Notify::new(),
            timer: Notify::new(),
            changed: Notify::new(),
            drained: Notify::new(),
            shutdown: Notify::new(),
            snet_wake: Notify::new(),
        })
    }

    /// Locks the state. A panic elsewhere while holding the lock cannot leave the core half-updated in
    /// a way that matters more than losing the link, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The link's end reason, if it has ended.
    pub(crate) fn link_error(&self) -> Option<LinkError> {
        self.lock().link_error
    }

    /// To call after every core call, still under the lock: dispatches the core's events, wakes the
    /// writer if bytes wait and the timer if its deadline moved earlier.
    pub(crate) fn settle(&self, st: &mut State) {
        while let Some(event) = st.core.poll_event() {
            self.dispatch(st, event);
        }
        if st.core.transmit_len() > 0 {
            self.writer.notify_one();
        }
        if let Some(next) = st.core.poll_timeout() {
            if st.timer_at.is_none_or(|at| next < at) {
                self.timer.notify_one();
            }
        }
    }

    fn dispatch(&self, st: &mut State, event: Event) {
        match event {
            Event::Ready => {
                st.ready = true;
                self.drained.notify_waiters();
            }
            Event::Dialed { dial, conn, remote } => {
                let new = st.open(conn, remote, self.recv_queue);
                let delivered = match st.dials.remove(&dial) {
                    Some(tx) => tx.send(Ok(new)).is_ok(),
                    None => false,
                };
                if !delivered {
                    // The dialer gave up (timeout raced with the answer, or its future was dropped).
                    st.close_conn(conn, RecvError::Closed);
                }
            }
            Event::DialRefused { dial, remote } => {
                if let Some(tx) = st.dials.remove(&dial) {
                    let _ = tx.send(Err(DialError::Refused { remote }));
                }
            }
            Event::DialFailed { dial, reason, .. } => {
                if let Some(tx) = st.dials.remove(&dial) {
                    let _ = tx.send(Err(DialError::Closed(reason)));
                }
            }
            Event::Incoming { conn, remote } => {
                let new = st.open(conn, remote, self.recv_queue);
                st.accept.push_back(new);
                self.changed.notify_waiters();
            }
            Event::Data { conn, payload } => {
                let Some(tx) = st.conns.get(&conn) else {
                    return;
                };
                if tx.capacity() > 1 {
                    let _ = tx.try_send(Item::Msg(payload));
                } else {
                    log::warn!(
                        "vconn {conn}: receive queue full ({} messages), closing it",
                        self.recv_queue.max(1)
                    );
                    st.close_conn(conn, RecvError::Overflow);
                }
            }
            Event::Closed { conn, reason } => {
                if let Some(tx) = st.conns.remove(&conn) {
                    let end = match reason {
                        CloseReason::Remote => RecvError::Closed,
                        CloseReason::Link(reason) => RecvError::Link(reason),
                    };
                    let _ = tx.try_send(Item::End(end));
                }
            }
            Event::PingTimeout if st.snet => {
                log::warn!("the gateway did not answer a Ping in time; reconnecting the snet link");
                st.snet_reconnect = true;
                self.snet_wake.notify_one();
            }
            Event::PingTimeout => {
                log::warn!("the gateway did not answer a Ping in time; keeping the link open");
            }
            Event::LinkClosed { reason } => {
                log::debug!("link to the gateway closed: {reason}");
                st.link_error = Some(reason);
                for (_, tx) in st.dials.drain() {
                    let _ = tx.send(Err(DialError::Closed(reason)));
                }
                for (_, tx) in st.conns.drain() {
                    let _ = tx.try_send(Item::End(RecvError::Link(reason)));
                }
                st.accept.clear();
                self.shutdown.notify_waiters();
                self.changed.notify_waiters();
                self.drained.notify_waiters();
                self.writer.notify_one();
                self.timer.notify_one();
                self.snet_wake.notify_one();
            }
        }
    }

    /// Shuts the link down: Close for every vconn (flushed best effort), every waiter woken.
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.core.shutdown();
        self.settle(&mut st);
    }
}

/// Reads until EOF, an error, or the link's end; feeds the core.
async fn reader(shared: Arc<Shared>, read: OwnedReadHalf, max_packet: u32) {
    let hint = FrameDecoder::new(max_packet);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut shutdown = pin!(shared.shutdown.notified());
    shutdown.as_mut().enable();
    if shared.link_error().is_none() {
        loop {
            if let Some(want) = hint.frame_len_hint(&buf) {
                buf.reserve(want.saturating_sub(buf.len()));
            }
            if buf.capacity() - buf.len() < READ_CHUNK / 16 {
                buf.reserve(READ_CHUNK);
            }
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                ready = read.readable() => {
                    if let Err(error) = ready {
                        socket_failed(&shared, "read", &error);
                        return;
                    }
                }
            }
            match read.try_read_buf(&mut buf) {
                Ok(0) => {
                    log::debug!("the gateway closed the connection");
                    let mut st = shared.lock();
                    st.core.handle_link_closed();
                    shared.settle(&mut st);
                    return;
                }
                Ok(_) => {
                    let mut st = shared.lock();
                    let result = st.core.handle_input(&mut buf, Instant::now());
                    shared.settle(&mut st);
                    drop(st);
                    if let Err(error) = result {
                        log::warn!("closing the link to the gateway: {error}");
                        break;
                    }
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(error) => {
                    socket_failed(&shared, "read", &error);
                    return;
                }
            }
        }
    }
    // The link ended on our side. Keep reading (and discarding) for a while so the socket closes with
    // a FIN once the gateway answers ours, rather than with a reset that could discard our last frames.
    let deadline = tokio::time::Instant::now() + LINGER;
    let mut scratch = vec![0u8; 4096];
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return,
            ready = read.readable() => if ready.is_err() { return },
        }
        match read.try_read(&mut scratch) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// The socket failed: tell the core, which ends the link.
fn socket_failed(shared: &Shared, what: &str, error: &io::Error) {
    log::debug!("{what} on the gateway connection failed: {error}");
    let mut st = shared.lock();
    st.core.handle_link_closed();
    shared.settle(&mut st);
}

/// Writes whatever the core has queued, until the link has ended and everything owed is flushed.
/// Dropping the write half at the end sends FIN.
async fn writer(shared: Arc<Shared>, write: OwnedWriteHalf) {
    let mut batch: Vec<Bytes> = Vec::new();
    // Bytes of the batch written last round, not yet counted in `State::written`.
    let mut wrote = 0;
    loop {
        let closed = {
            let mut st = shared.lock();
            st.written += wrote as u64;
            while let Some(bytes) = st.core.poll_transmit() {
                if !bytes.is_empty() {
                    batch.push(bytes);
                }
            }
            st.link_error
        };
        if wrote > 0 {
            shared.drained.notify_waiters();
        }
        if batch.is_empty() {
            if closed.is_some() {
                return;
            }
            shared.writer.notified().await;
            wrote = 0;
            continue;
        }
        wrote = batch.iter().map(Bytes::len).sum();
        if let Err(error) = write_batch(&shared, &write, &mut batch, closed).await {
            socket_failed(&shared, "write", &error);
            return;
        }
    }
}

/// When a link that ended for `reason` stops trying to write: a shutdown flushes its Close frames
/// for a while, any other end has nothing worth writing.
fn give_up_at(reason: LinkError) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    if reason == LinkError::Shutdown {
        now + LINGER
    } else {
        now
    }
}

/// Writes `batch` completely (one vectored write per try), or fails. Once the link has ended the
/// write is bounded by [`give_up_at`].
async fn write_batch(
    shared: &Shared,
    write: &OwnedWriteHalf,
    batch: &mut Vec<Bytes>,
    closed: Option<LinkError>,
) -> io::Result<()> {
    let mut give_up = closed.map(give_up_at);
    let mut first = 0;
    while first < batch.len() {
        let slices: Vec<IoSlice<'_>> = batch[first..]
            .iter()
            .take(MAX_IOV)
            .map(|bytes| IoSlice::new(bytes))
            .collect();
        match write.try_write_vectored(&slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(mut written) => {
                while written > 0 && first < batch.len() {
                    let head = &mut batch[first];
                    if written >= head.len() {
                        written -= head.len();
                        first += 1;
                    } else {
                        head.advance(written);
                        written = 0;
                    }
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                tokio::select! {
                    ready = write.writable() => ready?,
                    () = shared.writer.notified() => {
                        if give_up.is_none() {
                            give_up = shared.link_error().map(give_up_at);
                        }
                    }
                    () = sleep_until(give_up) => {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "gave up flushing to the gateway after the link closed",
                        ));
                    }
                }
            }
            Err(error) => return Err(error),
        }
    }
    batch.clear();
    Ok(())
}

/// Sleeps until `at`, or forever.
pub(super) async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Calls `handle_timeout` whenever the core's deadline comes.
async fn timer(shared: Arc<Shared>) {
    let mut shutdown = pin!(shared.shutdown.notified());
    shutdown.as_mut().enable();
    loop {
        let at = {
            let mut st = shared.lock();
            if st.link_error.is_some() {
                return;
            }
            let at = st.core.poll_timeout();
            st.timer_at = at;
            at
        };
        tokio::select! {
            biased;
            () = &mut shutdown => return,
            () = shared.timer.notified() => {}
            () = sleep_until(at.map(tokio::time::Instant::from_std)) => {
                let mut st = shared.lock();
                st.core.handle_timeout(Instant::now());
                shared.settle(&mut st);
            }
        }
    }
}
