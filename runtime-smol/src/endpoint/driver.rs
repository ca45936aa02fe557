//! The driver: the shared state of one link and the three tasks that move bytes and time through the
//! core endpoint.
//!
//! * **reader**: reads the socket into a `BytesMut`, calls `handle_input`, dispatches events;
//! * **writer**: woken when `poll_transmit` has bytes, writes each batch with one (vectored) write, and
//!   after the link ends flushes what is left (best effort, bounded) and shuts the socket;
//! * **timer**: sleeps until `poll_timeout`, calls `handle_timeout`, dispatches events.
//!
//! They run on smol's global executor (`smol::spawn`), which has its own thread, so the endpoint works
//! whichever executor awaits the user's futures (smol, async-std, or a plain `block_on`).
//!
//! Over snet the socket changes on every reconnect: `snet.rs` has its own reader (one per socket) and
//! writer (one per link); the timer and the event dispatch here are shared and call into `snet.rs`
//! when [`State::snet`] is set.
//!
//! Every user call and every task locks [`Shared::state`] for core work only: the lock is never held
//! across IO or an `.await`. Wake-ups go through `smol::channel` (a one-slot channel keeps a pending
//! wake-up until it is taken, so none is lost).

use super::error::{DialError, RecvError};
use super::snet::{self, SnetLink};
use bytes::{Bytes, BytesMut};
use fastway_core::endpoint::{CloseReason, DialId, Endpoint as Core, Event, LinkError};
use smol::channel::{self, Receiver, Sender, TrySendError};
use smol::{Async, Timer};
use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Above this many bytes waiting for the writer, [`VConn::send`](super::VConn::send) waits for the
/// writer to take them (back-pressure), so a fast sender cannot grow memory without bound.
pub(crate) const SEND_HIGH_WATER: usize = 4 << 20;

/// How long the writer keeps trying to flush Close frames after the link ended, before it shuts the
/// socket anyway.
pub(super) const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Size of the reader's scratch buffer: the most one read syscall takes.
pub(super) const READ_CHUNK: usize = 64 * 1024;

/// What a vconn's receiver needs: its message queue and, once it ended, why.
pub(crate) struct VConnParts {
    pub(crate) conn: u32,
    pub(crate) remote: u32,
    pub(crate) rx: Receiver<Bytes>,
    pub(crate) end: Arc<OnceLock<RecvError>>,
}

/// The driver's side of one open vconn.
struct Slot {
    tx: Sender<Bytes>,
    end: Arc<OnceLock<RecvError>>,
}

/// The answer a dial waits for.
pub(crate) type DialAnswer = Result<VConnParts, DialError>;

/// Everything behind the lock.
pub(crate) struct State {
    pub(crate) core: Core,
    /// Open vconns, by id.
    slots: HashMap<u32, Slot>,
    /// Dials waiting for their answer.
    dials: HashMap<DialId, Sender<DialAnswer>>,
    /// Senders blocked by back-pressure; dropping them wakes them.
    send_waiters: Vec<Sender<()>>,
    /// The deadline the timer task sleeps until, so others know when to re-arm it.
    timer_armed: Option<Instant>,
    /// Dropped when the link ends: lets the writer stop waiting on a socket that takes no bytes.
    link_closed_tx: Option<Sender<()>>,
    /// Dropped when the socket is closed: wakes every [`Shared::closed`] waiter.
    pub(super) closed_tx: Option<Sender<()>>,
    /// The snet stream under the core endpoint, if the link runs over snet.
    pub(crate) snet: Option<SnetLink>,
}

impl State {
    /// Takes everything the core has queued for the socket, as one buffer, and releases the senders
    /// waiting for room.
    pub(super) fn take_transmit(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.core.transmit_len());
        while let Some(bytes) = self.core.poll_transmit() {
            out.extend_from_slice(&bytes);
        }
        self.send_waiters.clear();
        out
    }

    /// When the timer must next run: the core's deadline, or snet's (reconnect policy) if earlier.
    fn next_deadline(&self) -> Option<Instant> {
        let core = self.core.poll_timeout();
        match self.snet.as_ref().and_then(SnetLink::poll_timeout) {
            Some(snet) => Some(core.map_or(snet, |core| core.min(snet))),
            None => core,
        }
    }
}

/// One link: shared by the user handles and the driver tasks.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) local_addr: SocketAddr,
    pub(crate) peer_addr: SocketAddr,
    recv_queue: usize,
    writer_wake: Sender<()>,
    timer_wake: Sender<()>,
    accept_tx: Sender<VConnParts>,
    pub(crate) accept_rx: Receiver<VConnParts>,
    pub(super) link_closed_rx: Receiver<()>,
    closed_rx: Receiver<()>,
}

/// The receiving ends of the tasks' wake-up channels.
pub(crate) struct Wakes {
    pub(super) writer: Receiver<()>,
    pub(super) timer: Receiver<()>,
}

impl Shared {
    /// Wraps a core endpoint whose handshake, if any, is done (and the snet stream under it, if any).
    pub(crate) fn new(
        core: Core,
        snet: Option<SnetLink>,
        local_addr: SocketAddr,
        peer_addr: SocketAddr,
        recv_queue: usize,
    ) -> (Arc<Self>, Wakes) {
        let (writer_wake, writer_rx) = channel::bounded(1);
        let (timer_wake, timer_rx) = channel::bounded(1);
        let (accept_tx, accept_rx) = channel::unbounded();
        let (closed_tx, closed_rx) = channel::bounded(1);
        let (link_closed_tx, link_closed_rx) = channel::bounded(1);
        let shared = Arc::new(Self {
            state: Mutex::new(State {
                core,
                slots: HashMap::new(),
                dials: HashMap::new(),
                send_waiters: Vec::new(),
                timer_armed: None,
                link_closed_tx: Some(link_closed_tx),
                closed_tx: Some(closed_tx),
                snet,
            }),
            local_addr,
            peer_addr,
            recv_queue: recv_queue.max(1),
            writer_wake,
            timer_wake,
            accept_tx,
            accept_rx,
            link_closed_rx,
            closed_rx,
        });
        let wakes = Wakes {
            writer: writer_rx,
            timer: timer_rx,
        };
        (shared, wakes)
    }

    /// Starts the reader, writer and timer of a plain TCP link on smol's global executor. They hold
    /// the shared state until the link ends and the socket is closed.
    pub(crate) fn spawn_driver(
        self: &Arc<Self>,
        wakes: Wakes,
        socket: Async<TcpStream>,
        read_buf: BytesMut,
    ) {
        let socket = Arc::new(socket);
        smol::spawn(reader(self.clone(), socket.clone(), read_buf)).detach();
        smol::spawn(writer(self.clone(), socket, wakes.writer)).detach();
        smol::spawn(timer(self.clone(), wakes.timer)).detach();
        // Anything queued before the driver ran (a server's auth answer) goes out now.
        self.wake_writer();
    }

    /// Locks the state. A panic in another holder cannot leave the core half-updated in a way that
    /// matters more than losing the link, so a poisoned lock is used as it is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn wake_writer(&self) {
        let _ = self.writer_wake.try_send(());
    }

    pub(super) fn wake_timer(&self) {
        let _ = self.timer_wake.try_send(());
    }

    /// After a user call changed the core: wake whoever has work now.
    pub(crate) fn after_call(&self, state: &mut State) {
        self.dispatch(state);
        if state.core.transmit_len() > 0 || state.core.is_closed() {
            self.wake_writer();
        }
        if state.next_deadline() != state.timer_armed {
            self.wake_timer();
        }
    }

    /// Starts a dial; the answer arrives on the returned receiver.
    pub(crate) fn start_dial(
        &self,
        remote: u32,
    ) -> Result<(DialId, Receiver<DialAnswer>), DialError> {
        let mut state = self.lock();
        let dial = state
            .core
            .dial(remote)
            .map_err(|error| DialError::Closed(reason_of(error)))?;
        let (tx, rx) = channel::bounded(1);
        state.dials.insert(dial, tx);
        self.after_call(&mut state);
        Ok((dial, rx))
    }

    /// Gives up on a dial. Returns `true` if it was still unanswered (and is now cancelled in the core);
    /// `false` if its answer is already in its channel.
    pub(crate) fn cancel_dial(&self, dial: DialId) -> bool {
        let mut state = self.lock();
        if state.dials.remove(&dial).is_some() {
            state.core.cancel_dial(dial);
            true
        } else {
            false
        }
    }

    /// Closes vconn `conn` locally (sends Close once). Its receiver sees [`RecvError::Closed`].
    pub(crate) fn close_vconn(&self, conn: u32) {
        let slot = {
            let mut state = self.lock();
            let slot = state.slots.remove(&conn);
            if state.core.close(conn) {
                self.after_call(&mut state);
            }
            slot
        };
        if let Some(slot) = slot {
            let _ = slot.end.set(RecvError::Closed);
        }
    }

    /// Ends the link on purpose (idempotent): Close frames for open vconns are flushed best effort, then
    /// the socket is closed and everything waiting fails with [`LinkError::Shutdown`].
    pub(crate) fn shutdown(&self) {
        let mut state = self.lock();
        state.core.shutdown();
        self.after_call(&mut state);
    }

    /// Waits until there is room in the outbound queue, or returns at once if there is.
    pub(crate) fn send_waiter(state: &mut State) -> Option<Receiver<()>> {
        // (Over snet this also holds senders while the link is down: the core's queue cannot drain.)
        if state.core.transmit_len() < SEND_HIGH_WATER || state.core.is_closed() {
            return None;
        }
        let (tx, rx) = channel::bounded(1);
        state.send_waiters.push(tx);
        Some(rx)
    }

    /// Resolves once the link has ended and the socket is closed, with the first reason.
    pub(crate) async fn closed(&self) -> LinkError {
        let _ = self.closed_rx.recv().await;
        self.lock()
            .core
            .close_reason()
            .unwrap_or(LinkError::SocketClosed)
    }

    /// Acts on every event the core has queued. Runs under the lock; only non-blocking channel
    /// operations happen here, and nothing that could re-enter the lock is dropped.
    pub(super) fn dispatch(&self, state: &mut State) {
        while let Some(event) = state.core.poll_event() {
            match event {
                Event::Ready => {}
                Event::Dialed { dial, conn, remote } => {
                    let parts = self.open_slot(state, conn, remote);
                    let delivered = match state.dials.remove(&dial) {
                        Some(tx) => tx.try_send(Ok(parts)).is_ok(),
                        None => false,
                    };
                    if !delivered {
                        state.slots.remove(&conn);
                        state.core.close(conn);
                    }
                }
                Event::DialRefused { dial, remote } => {
                    if let Some(tx) = state.dials.remove(&dial) {
                        let _ = tx.try_send(Err(DialError::Refused { remote }));
                    }
                }
                Event::DialFailed { dial, reason, .. } => {
                    if let Some(tx) = state.dials.remove(&dial) {
                        let _ = tx.try_send(Err(DialError::Closed(reason)));
                    }
                }
                Event::Incoming { conn, remote } => {
                    let parts = self.open_slot(state, conn, remote);
                    if self.accept_tx.try_send(parts).is_err() {
                        state.slots.remove(&conn);
                        state.core.close(conn);
                    }
                }
                Event::Data { conn, payload } => {
                    let Some(slot) = state.slots.get(&conn) else {
                        continue;
                    };
                    match slot.tx.try_send(payload) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            log::warn!(
                                "fastway endpoint: vconn {conn} closed: more than {} messages unread",
                                self.recv_queue
                            );
                            let _ = slot.end.set(RecvError::Overflow);
                            state.slots.remove(&conn);
                            state.core.close(conn);
                        }
                        Err(TrySendError::Closed(_)) => {
                            state.slots.remove(&conn);
                            state.core.close(conn);
                        }
                    }
                }
                Event::Closed { conn, reason } => {
                    if let Some(slot) = state.slots.remove(&conn) {
                        let _ = slot.end.set(match reason {
                            CloseReason::Remote => RecvError::Closed,
                            CloseReason::Link(reason) => RecvError::Link(reason),
                        });
                    }
                }
                Event::PingTimeout => {
                    log::warn!("fastway endpoint: the gateway did not answer a Ping in time");
                    if let Some(link) = state.snet.as_mut() {
                        link.force_reconnect(self);
                    }
                }
                Event::LinkClosed { reason } => {
                    match reason {
                        LinkError::Shutdown => log::debug!("fastway endpoint: link shut down"),
                        reason => {
                            log::warn!("fastway endpoint: link to the gateway ended: {reason}")
                        }
                    }
                    for (_, slot) in state.slots.drain() {
                        let _ = slot.end.set(RecvError::Link(reason));
                    }
                    for (_, tx) in state.dials.drain() {
                        let _ = tx.try_send(Err(DialError::Closed(reason)));
                    }
                    state.send_waiters.clear();
                    state.link_closed_tx = None;
                    // Vconns nobody accepted yet are dead: accept() fails rather than hand them out.
                    self.accept_tx.close();
                    while self.accept_rx.try_recv().is_ok() {}
                }
            }
        }
    }

    /// Registers a new vconn's queue.
    fn open_slot(&self, state: &mut State, conn: u32, remote: u32) -> VConnParts {
        let (tx, rx) = channel::bounded(self.recv_queue);
        let end = Arc::new(OnceLock::new());
        state.slots.insert(
            conn,
            Slot {
                tx,
                end: end.clone(),
            },
        );
        VConnParts {
            conn,
            remote,
            rx,
            end,
        }
    }

    /// The core's inputs from a plain socket: bytes, then EOF or an error (snet: see `snet.rs`).
    fn handle_read(&self, buf: &mut BytesMut) -> bool {
        let mut state = self.lock();
        if let Err(error) = state.core.handle_input(buf, Instant::now()) {
            log::debug!("fastway endpoint: input rejected: {error}");
        }
        self.after_call(&mut state);
        !state.core.is_closed()
    }

    fn handle_socket_closed(&self) {
        let mut state = self.lock();
        state.core.handle_link_closed();
        self.after_call(&mut state);
    }
}

/// The reason carried by a core error.
fn reason_of(error: fastway_core::endpoint::EndpointError) -> LinkError {
    match error {
        fastway_core::endpoint::EndpointError::Closed(reason) => reason,
        fastway_core::endpoint::EndpointError::Protocol(error) => LinkError::Protocol(error),
    }
}

/// Reads until EOF, a socket error or the end of the link.
async fn reader(shared: Arc<Shared>, socket: Arc<Async<TcpStream>>, mut buf: BytesMut) {
    let mut scratch = vec![0u8; READ_CHUNK];
    loop {
        let read = socket.read_with(|s| (&*s).read(&mut scratch)).await;
        match read {
            Ok(0) | Err(_) => {
                if let Err(error) = read {
                    log::debug!("fastway endpoint: read failed: {error}");
                }
                shared.handle_socket_closed();
                return;
            }
            Ok(n) => {
                buf.extend_from_slice(&scratch[..n]);
                if !shared.handle_read(&mut buf) {
                    return;
                }
            }
        }
    }
}

/// Writes what the core queues; after the link ends, flushes the rest (bounded) and closes the socket.
async fn writer(shared: Arc<Shared>, socket: Arc<Async<TcpStream>>, wake: Receiver<()>) {
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let closed = {
            let mut state = shared.lock();
            while let Some(bytes) = state.core.poll_transmit() {
                batch.push(bytes);
            }
            state.send_waiters.clear();
            state.core.is_closed()
        };
        if !batch.is_empty() {
            // Once the link has ended, a write gets at most CLOSE_FLUSH_TIMEOUT more: a gateway that
            // stopped reading must not keep the socket open forever.
            let written = smol::future::or(write_all(&socket, &batch), async {
                let _ = shared.link_closed_rx.recv().await;
                Timer::after(CLOSE_FLUSH_TIMEOUT).await;
                Err(io::ErrorKind::TimedOut.into())
            })
            .await;
            batch.clear();
            if let Err(error) = written {
                log::debug!("fastway endpoint: write failed: {error}");
                shared.handle_socket_closed();
                break;
            }
            continue;
        }
        if closed {
            break;
        }
        if wake.recv().await.is_err() {
            break;
        }
    }
    let _ = socket.get_ref().shutdown(Shutdown::Both);
    let mut state = shared.lock();
    // The core may still think the link is open if the channel broke; make sure it does not.
    state.core.handle_link_closed();
    shared.dispatch(&mut state);
    state.closed_tx = None;
    drop(state);
    shared.wake_timer();
}

/// Writes every buffer of `batch`, in order, with as few (vectored) write calls as the kernel allows.
pub(super) async fn write_all(socket: &Async<TcpStream>, batch: &[Bytes]) -> io::Result<()> {
    let mut storage: Vec<IoSlice<'_>> = batch
        .iter()
        .filter(|bytes| !bytes.is_empty())
        .map(|bytes| IoSlice::new(bytes))
        .collect();
    let mut slices: &mut [IoSlice<'_>] = &mut storage;
    while !slices.is_empty() {
        let n = socket.write_with(|s| (&*s).write_vectored(slices)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// Calls `handle_timeout` at each `poll_timeout`, re-arming when woken.
pub(super) async fn timer(shared: Arc<Shared>, wake: Receiver<()>) {
    loop {
        let deadline = {
            let mut state = shared.lock();
            if state.core.is_closed() {
                return;
            }
            let deadline = state.next_deadline();
            state.timer_armed = deadline;
            deadline
        };
        let fired = match deadline {
            Some(deadline) => {
                smol::future::or(
                    async {
                        Timer::at(deadline).await;
                        true
                    },
                    async {
                        let _ = wake.recv().await;
                        false
                    },
                )
                .await
            }
            None => {
                let _ = wake.recv().await;
                false
            }
        };
        if fired {
            let mut state = shared.lock();
            let now = Instant::now();
            state.core.handle_timeout(now);
            snet::handle_timeout(&shared, &mut state, now);
            shared.after_call(&mut state);
        }
    }
}
