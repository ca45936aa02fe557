//! The state every task shares: the core behind one lock, the per-connection signals, and the
//! dispatch of the core's actions.
//!
//! Rule: the lock is held for core work and flag flips only. Everything that may enter the kernel
//! (waking a task on another worker thread, logging) is collected into [`Effects`] while the lock is
//! held and carried out after it is released.

use bytes::Bytes;
use fastway_core::abuse::{AuthFailures, RepeatedAuthFailures};
use fastway_core::gateway::{CloseReason, Side};
use fastway_core::switchboard::{Action, SocketCloseReason, SocketId, Switchboard};
use log::{info, warn};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;
use tokio::sync::Notify;

/// What the tasks of one connection share with the dispatcher.
#[derive(Debug)]
pub(crate) struct Conn {
    /// The core's handle for this socket.
    pub(crate) socket: SocketId,
    /// Which port it came in on.
    pub(crate) side: Side,
    /// The remote address, for logs.
    pub(crate) addr: SocketAddr,
    /// The game server id it registered under, once authenticated: the close line names it.
    pub(crate) server_id: OnceLock<u32>,
    /// Wakes the writer: bytes to take, or the connection is closing.
    pub(crate) write: Notify,
    /// Wakes the reader: reading may resume, or the connection is closing.
    pub(crate) read: Notify,
    paused: AtomicBool,
    /// The core sent `ResumeReading` since the reader last looked: it must see the bytes the read
    /// buffer holds before reading more.
    resumed: AtomicBool,
    closed: AtomicBool,
    /// The bytes to write before closing (a shutdown's last frames, an snet refusal).
    flush: Mutex<Vec<Bytes>>,
}

impl Conn {
    pub(crate) fn new(socket: SocketId, side: Side, addr: SocketAddr) -> Self {
        Self {
            socket,
            side,
            addr,
            server_id: OnceLock::new(),
            write: Notify::new(),
            read: Notify::new(),
            paused: AtomicBool::new(false),
            resumed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            flush: Mutex::new(Vec::new()),
        }
    }

    /// The core paused reading from this connection (backpressure).
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Whether the core resumed reading since the last call (clears the flag).
    pub(crate) fn take_resumed(&self) -> bool {
        self.resumed.swap(false, Ordering::AcqRel)
    }

    /// The core has forgotten this connection: the reader stops, the writer flushes and stops.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closed with nothing to flush: the writer may drop whatever it is still writing.
    pub(crate) fn abandon_writes(&self) -> bool {
        self.is_closed() && lock(&self.flush).is_empty()
    }

    /// Takes the bytes the core wants written before the socket closes.
    pub(crate) fn take_flush(&self) -> Vec<Bytes> {
        std::mem::take(&mut *lock(&self.flush))
    }
}

/// A side effect of dispatch, carried out once the lock is released.
#[derive(Debug)]
enum Effect {
    WakeWriter(Arc<Conn>),
    WakeReader(Arc<Conn>),
    Closed(Arc<Conn>, SocketCloseReason),
    Authenticated(Arc<Conn>, u32),
    SessionEnded(Side, SocketCloseReason),
    RepeatedAuthFailures(RepeatedAuthFailures),
}

/// Side effects gathered under the lock. Each task keeps one and reuses its allocation.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    effects: Vec<Effect>,
    wake_timer: bool,
}

impl Effects {
    /// Carries out (and forgets) every gathered effect. Call it with the lock released.
    pub(crate) fn apply(&mut self, state: &State) {
        if std::mem::take(&mut self.wake_timer) {
            state.timer.notify_one();
        }
        for effect in self.effects.drain(..) {
            match effect {
                Effect::WakeWriter(conn) => conn.write.notify_one(),
                Effect::WakeReader(conn) => conn.read.notify_one(),
                Effect::Closed(conn, reason) => {
                    conn.write.notify_one();
                    conn.read.notify_one();
                    log_close(&conn, reason);
                }
                Effect::Authenticated(conn, id) => {
                    let _ = conn.server_id.set(id);
                    info!("accept server {id} from {}", conn.addr);
                }
                Effect::SessionEnded(side, reason) => {
                    warn!("drop {side} snet session while it was reconnecting: {reason}");
                }
                Effect::RepeatedAuthFailures(report) => warn!("{report}"),
            }
        }
    }
}

/// One line per closed socket, naming a registered game server by its id ("server 7 offline"):
/// `info` for routine ends (it left, an snet reconnect replaced it, the
/// gateway stops), `warn` when it broke the protocol, was too slow, timed out, failed auth or an snet
/// handshake, or was refused.
fn log_close(conn: &Conn, reason: SocketCloseReason) {
    let (socket, side, addr) = (conn.socket, conn.side, conn.addr);
    match reason {
        SocketCloseReason::Peer(CloseReason::Auth(err)) => {
            warn!("error happends when accept server from {addr}: {err}");
        }
        SocketCloseReason::Refused(err) => warn!("refuse client from {addr}: {err}"),
        _ => match conn.server_id.get() {
            Some(id) if reason.is_routine() => {
                info!("server {id} offline ({socket} from {addr} closed): {reason}");
            }
            Some(id) => warn!("server {id} offline ({socket} from {addr} dropped): {reason}"),
            None if reason.is_routine() => info!("{side} {socket} from {addr} closed: {reason}"),
            None => warn!("{side} {socket} from {addr} dropped: {reason}"),
        },
    }
}

/// The core and the sockets it knows, under one lock.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The sans-IO switchboard (gateway plus snet).
    pub(crate) switchboard: Switchboard,
    conns: HashMap<SocketId, Arc<Conn>>,
    /// The deadline the timer task currently sleeps for.
    timer_at: Option<Instant>,
    /// Server auth failures per address, for the repeated-failure warning.
    auth_failures: AuthFailures,
}

impl Shared {
    /// Registers the signals of a socket the core just accepted, before its actions are
    /// dispatched.
    pub(crate) fn insert(&mut self, conn: Arc<Conn>) {
        self.conns.insert(conn.socket, conn);
    }

    /// Drains the core's actions: flips flags now, queues wake-ups and logs in `fx`.
    pub(crate) fn dispatch(&mut self, fx: &mut Effects) {
        while let Some(action) = self.switchboard.poll_action() {
            match action {
                Action::Transmit(socket) => {
                    if let Some(conn) = self.conns.get(&socket) {
                        fx.effects.push(Effect::WakeWriter(Arc::clone(conn)));
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
                        conn.resumed.store(true, Ordering::Release);
                        fx.effects.push(Effect::WakeReader(Arc::clone(conn)));
                    }
                }
                Action::ServerAuthenticated { socket, server_id } => {
                    if let Some(conn) = self.conns.get(&socket) {
                        fx.effects
                            .push(Effect::Authenticated(Arc::clone(conn), server_id));
                    }
                }
                Action::SessionEnded { side, reason } => {
                    fx.effects.push(Effect::SessionEnded(side, reason));
                }
                Action::Close {
                    socket,
                    reason,
                    flush,
                } => {
                    if let Some(conn) = self.conns.remove(&socket) {
                        *lock(&conn.flush) = flush;
                        conn.closed.store(true, Ordering::Release);
                        let repeated = match reason {
                            SocketCloseReason::Peer(CloseReason::Auth(_)) => {
                                self.auth_failures.record(conn.addr.ip(), Instant::now())
                            }
                            _ => None,
                        };
                        fx.effects.push(Effect::Closed(conn, reason));
                        if let Some(report) = repeated {
                            fx.effects.push(Effect::RepeatedAuthFailures(report));
                        }
                    }
                }
            }
        }
        if let Some(next) = self.switchboard.poll_timeout() {
            if self.timer_at.is_none_or(|at| next < at) {
                self.timer_at = Some(next);
                fx.wake_timer = true;
            }
        }
    }

    /// The timer task is about to sleep until the core's next deadline; returns it.
    pub(crate) fn arm_timer(&mut self) -> Option<Instant> {
        self.timer_at = self.switchboard.poll_timeout();
        self.timer_at
    }
}

/// Everything the server's tasks share.
#[derive(Debug)]
pub(crate) struct State {
    shared: Mutex<Shared>,
    /// Wakes the timer task when a deadline earlier than the one it sleeps for appears.
    pub(crate) timer: Notify,
    /// Wakes `run` when a shutdown is requested.
    pub(crate) shutdown: Notify,
    shutdown_requested: AtomicBool,
}

impl State {
    pub(crate) fn new(switchboard: Switchboard) -> Self {
        Self {
            shared: Mutex::new(Shared {
                switchboard,
                conns: HashMap::new(),
                timer_at: None,
                auth_failures: AuthFailures::default(),
            }),
            timer: Notify::new(),
            shutdown: Notify::new(),
            shutdown_requested: AtomicBool::new(false),
        }
    }

    /// Locks the shared part. A poisoned lock is taken over: the core's state stays consistent
    /// between calls, and refusing service forever would be worse.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    /// Runs one core call under the lock, dispatches its actions, releases the lock and carries out
    /// the effects.
    pub(crate) fn call<R>(&self, fx: &mut Effects, f: impl FnOnce(&mut Switchboard) -> R) -> R {
        let result = {
            let mut shared = self.lock();
            let result = f(&mut shared.switchboard);
            shared.dispatch(fx);
            result
        };
        fx.apply(self);
        result
    }

    /// Asks `run` to shut down; idempotent and safe before `run` starts.
    pub(crate) fn request_shutdown(&self) {
        self.shutdown_requested.store(true, Ordering::Release);
        self.shutdown.notify_one();
    }

    pub(crate) fn shutdown_requested(&self) -> bool {
        self.shutdown_requested.load(Ordering::Acquire)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
