//! The state every task shares: the core's switchboard behind one lock, the connection handles (one per
//! accepted socket), and the dispatch of the switchboard's actions.
//!
//! Rule: the lock is held for core work and for flipping flags or ringing doorbells only, never across
//! a syscall or an `.await`. Every core call is followed by [`Shared::dispatch`] under the same lock, so
//! an action is never seen by one task and acted on by another.

use super::signal::{ConnSignals, Doorbell, Latch, Task};
use bytes::Bytes;
use fastway_core::abuse::AuthFailures;
use fastway_core::frame::FrameDecoder;
use fastway_core::gateway::{CloseReason, Side};
use fastway_core::switchboard::{Action, SocketCloseReason, SocketId, Switchboard};
use log::{info, warn};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

/// What the rest of the gateway knows about one socket's tasks, and how to reach them.
#[derive(Debug)]
pub(crate) struct Conn {
    /// The switchboard's handle for this socket, for logs.
    pub(crate) socket: SocketId,
    /// The remote address, for logs.
    pub(crate) addr: SocketAddr,
    /// The game server id it registered under, once authenticated: the close line names it.
    pub(crate) server_id: OnceLock<u32>,
    /// Which port it came in on.
    pub(crate) side: Side,
    /// Backpressure: the reader must not read (nor feed the core) while set.
    pub(crate) paused: AtomicBool,
    /// The writer's bell is rung on [`Action::Transmit`] (drain the core's queue), the reader's on
    /// [`Action::ResumeReading`] (feed what it holds, then read on); closed on [`Action::Close`]: both
    /// tasks stop, the writer flushes and shuts the socket.
    pub(crate) signals: ConnSignals,
    /// The last bytes owed to the peer (an snet refusal, a graceful shutdown's last frames), handed over
    /// with the close.
    flush: Mutex<Vec<Bytes>>,
}

impl Conn {
    pub(crate) fn new(socket: SocketId, addr: SocketAddr, side: Side) -> Self {
        Self {
            socket,
            addr,
            server_id: OnceLock::new(),
            side,
            paused: AtomicBool::new(false),
            signals: ConnSignals::default(),
            flush: Mutex::new(Vec::new()),
        }
    }

    /// Takes the bytes to write before closing (often empty).
    pub(crate) fn take_flush(&self) -> Vec<Bytes> {
        std::mem::take(&mut *self.flush.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The core and the sockets it knows, guarded together by [`Inner`]'s lock.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The protocol state machines: the gateway and, per snet port, the snet sessions.
    pub(crate) switchboard: Switchboard,
    conns: HashMap<SocketId, Arc<Conn>>,
    /// The deadline the timer task sleeps until, if any.
    timer_armed: Option<Instant>,
    timer_bell: Doorbell,
    /// Server auth failures per address, for the repeated-failure warning.
    auth_failures: AuthFailures,
}

impl Shared {
    /// Makes `conn` reachable under its socket id. Call before dispatching the actions of the accept.
    pub(crate) fn register(&mut self, conn: Arc<Conn>) {
        self.conns.insert(conn.socket, conn);
    }

    /// Drains every pending action and carries it out, then wakes the timer if the core's next
    /// deadline is earlier than the one it sleeps until.
    pub(crate) fn dispatch(&mut self) {
        while let Some(action) = self.switchboard.poll_action() {
            match action {
                Action::Transmit(socket) => {
                    if let Some(conn) = self.conns.get(&socket) {
                        conn.signals.ring(Task::Writer);
                    }
                }
                Action::PauseReading(socket) => {
                    if let Some(conn) = self.conns.get(&socket) {
                        conn.paused.store(true, Ordering::Release);
                    }
                }
                Action::ResumeReading(socket) => {
                    if let Some(conn) = self.conns.get(&socket) {
                        conn.paused.store(false, Ordering::Release);
                        conn.signals.ring(Task::Reader);
                    }
                }
                Action::ServerAuthenticated { socket, server_id } => {
                    if let Some(conn) = self.conns.get(&socket) {
                        let _ = conn.server_id.set(server_id);
                        info!("accept server {server_id} from {}", conn.addr);
                    }
                }
                Action::SessionEnded { side, reason } => {
                    log_session_ended(side, reason);
                }
                Action::Close {
                    socket,
                    reason,
                    flush,
                } => {
                    if let Some(conn) = self.conns.remove(&socket) {
                        log_close(&conn, reason);
                        if let SocketCloseReason::Peer(CloseReason::Auth(_)) = reason {
                            let now = Instant::now();
                            if let Some(report) = self.auth_failures.record(conn.addr.ip(), now) {
                                warn!("{report}");
                            }
                        }
                        *conn.flush.lock().unwrap_or_else(PoisonError::into_inner) = flush;
                        conn.signals.close();
                    }
                }
            }
        }
        if let Some(next) = self.switchboard.poll_timeout() {
            if self.timer_armed.is_none_or(|armed| next < armed) {
                self.timer_armed = Some(next);
                self.timer_bell.ring();
            }
        }
    }

    /// Records that the timer task now sleeps until the core's next deadline, and returns it.
    pub(crate) fn arm_timer(&mut self) -> Option<Instant> {
        self.timer_armed = self.switchboard.poll_timeout();
        self.timer_armed
    }
}

/// One log line per closed socket, naming a registered game server by its id ("server 7
/// offline"): `info` for routine ends (it left, an snet reconnect replaced it,
/// the gateway stops), `warn` when it broke the protocol, was too slow, timed out, failed auth or an
/// snet handshake, or was refused.
fn log_close(conn: &Conn, reason: SocketCloseReason) {
    let (socket, side, addr) = (conn.socket, conn.side, conn.addr);
    match reason {
        // The original's text, kept so existing log scrapers still match (PROTOCOL.md §5).
        SocketCloseReason::Peer(CloseReason::Auth(err)) => {
            warn!("error happends when accept server from {addr}: {err}");
        }
        _ => match conn.server_id.get() {
            Some(id) if reason.is_routine() => {
                info!("server {id} offline ({socket} from {addr} closed): {reason}");
            }
            Some(id) => warn!("server {id} offline (drop {socket} from {addr}): {reason}"),
            None if reason.is_routine() => info!("{side} {socket} from {addr} closed: {reason}"),
            None => warn!("drop {side} {socket} from {addr}: {reason}"),
        },
    }
}

/// An snet session ended while its client was away (no socket to close): say why.
fn log_session_ended(side: Side, reason: SocketCloseReason) {
    if reason.is_routine() {
        info!("{side} snet session ended while it was reconnecting: {reason}");
    } else {
        warn!("drop {side} snet session while it was reconnecting: {reason}");
    }
}

/// Everything the gateway's tasks share; one per [`GatewayServer`](super::GatewayServer), kept alive by
/// its handles.
#[derive(Debug)]
pub(crate) struct Inner {
    shared: Mutex<Shared>,
    /// Fired by [`GatewayHandle::shutdown`](super::GatewayHandle::shutdown).
    pub(crate) shutdown: Latch,
    /// Rung when the core's next deadline moved earlier.
    pub(crate) timer_bell: Doorbell,
    /// Connection tasks still running, so shutdown can wait for their last flush.
    live_tasks: AtomicUsize,
    /// Rung when `live_tasks` drops to zero.
    tasks_done: Doorbell,
    /// Initial read-buffer capacity of a client connection.
    pub(crate) client_read_buffer: usize,
    /// Initial read-buffer capacity of a server connection.
    pub(crate) server_read_buffer: usize,
    /// Whether the client port speaks snet (known without the lock, to pre-draw randomness).
    pub(crate) client_snet: bool,
    /// Whether the server port speaks snet.
    pub(crate) server_snet: bool,
    /// Used only to size the read buffer for a large frame; the core does the decoding.
    pub(crate) decoder: FrameDecoder,
}

impl Inner {
    pub(crate) fn new(
        switchboard: Switchboard,
        client_read_buffer: usize,
        server_read_buffer: usize,
    ) -> Self {
        let timer_bell = Doorbell::new();
        let decoder = FrameDecoder::new(switchboard.gateway().config().max_packet);
        let client_snet = switchboard.is_snet(Side::Client);
        let server_snet = switchboard.is_snet(Side::Server);
        Self {
            shared: Mutex::new(Shared {
                switchboard,
                conns: HashMap::new(),
                timer_armed: None,
                timer_bell: timer_bell.clone(),
                auth_failures: AuthFailures::default(),
            }),
            shutdown: Latch::new(),
            timer_bell,
            live_tasks: AtomicUsize::new(0),
            tasks_done: Doorbell::new(),
            client_read_buffer,
            server_read_buffer,
            client_snet,
            server_snet,
            decoder,
        }
    }

    /// Whether `side`'s port speaks snet.
    pub(crate) fn is_snet(&self, side: Side) -> bool {
        match side {
            Side::Client => self.client_snet,
            Side::Server => self.server_snet,
        }
    }

    /// Locks the shared state. A panic elsewhere while holding it cannot leave the core half-updated in
    /// a way that matters more than stopping would, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a connection task as running until the returned guard is dropped.
    pub(crate) fn task_guard(self: &Arc<Self>) -> TaskGuard {
        self.live_tasks.fetch_add(1, Ordering::AcqRel);
        TaskGuard(Arc::clone(self))
    }

    /// Waits until no connection task is left or `deadline` passes. Returns whether all finished.
    pub(crate) async fn wait_tasks(&self, deadline: Instant) -> bool {
        loop {
            if self.live_tasks.load(Ordering::Acquire) == 0 {
                return true;
            }
            let timed_out = smol::future::or(
                async {
                    self.tasks_done.wait().await;
                    false
                },
                async {
                    smol::Timer::at(deadline).await;
                    true
                },
            )
            .await;
            if timed_out {
                return self.live_tasks.load(Ordering::Acquire) == 0;
            }
        }
    }
}

/// Held by each connection task; dropping it (the task ended or was cancelled) updates the count.
#[derive(Debug)]
pub(crate) struct TaskGuard(Arc<Inner>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.live_tasks.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.tasks_done.ring();
        }
    }
}
