//! The state every thread shares: the core behind one lock, and the dispatch of its actions.
//!
//! Every core call goes through [`Inner::with_core`]: take the lock, call the core, drain
//! `poll_action` while still holding the lock (so no action is ever lost or reordered), turn each
//! action into a flag flip + `Condvar` notify on the connection it concerns, re-arm the timer if the
//! core's next deadline moved earlier, release the lock, and only then perform the syscalls and logging
//! the actions asked for ([`Effects`]). The lock is held for core work and flag flips only, never
//! across a syscall.
//!
//! Direct sends: when the core has bytes for a client socket that nobody is writing to, the thread
//! that called the core claims that socket ([`ConnCtl::on_transmit`]), takes its batch under the same
//! lock and, after unlocking, sends it itself with a non-blocking send ([`Inner::send_direct`]).
//! Waking the writer instead costs a `futex` wake-up and two context switches per routed batch, which
//! made most of this runtime's time. Whatever does not fit in the socket right now goes to the writer
//! thread (started if none runs), which writes it (blocking) before anything else.

use super::connection::{ConnCtl, Release, Ring};
use super::sync::{lock, wait_timeout};
use super::timer::TimerBell;
use super::writer;
use bytes::Bytes;
use fastway_core::abuse::{AuthFailures, RepeatedAuthFailures};
use fastway_core::gateway::{CloseReason, Side};
use fastway_core::switchboard::{Action, SocketCloseReason, SocketId, Switchboard};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// Adapter settings the connection threads read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Initial read-buffer capacity of a client connection.
    pub(crate) client_read_buffer: usize,
    /// Initial read-buffer capacity of a server connection.
    pub(crate) server_read_buffer: usize,
    /// `MaxPacket`, for sizing the read buffer ahead of a large frame.
    pub(crate) max_packet: u32,
    /// Whether the client port speaks snet (its sockets need randomness for the handshake).
    pub(crate) client_snet: bool,
    /// Whether the server port speaks snet.
    pub(crate) server_snet: bool,
}

impl Settings {
    /// The read-buffer size for connections on `side` (at least 64 bytes, so a read always makes progress).
    pub(crate) fn read_buffer(&self, side: Side) -> usize {
        match side {
            Side::Client => self.client_read_buffer,
            Side::Server => self.server_read_buffer,
        }
        .max(64)
    }

    /// Whether `side`'s port speaks snet.
    pub(crate) fn is_snet(&self, side: Side) -> bool {
        match side {
            Side::Client => self.client_snet,
            Side::Server => self.server_snet,
        }
    }
}

/// Everything the threads of one gateway share.
#[derive(Debug)]
pub(crate) struct Inner {
    /// The core and the connections it knows.
    shared: Mutex<Shared>,
    /// The timer thread's doorbell.
    pub(crate) timer: TimerBell,
    /// Every connection whose threads are still running (including ones the core already forgot), so
    /// shutdown can wait for them and force-close the stragglers.
    live: Mutex<HashMap<SocketId, Arc<ConnCtl>>>,
    live_changed: Condvar,
    /// Set by `GatewayHandle::shutdown`; `run` waits on it.
    stop_requested: Mutex<bool>,
    stop_bell: Condvar,
    /// Set once `run` begins shutting down: accept threads return instead of accepting.
    stopping: AtomicBool,
    pub(crate) settings: Settings,
    /// This `Inner` itself, for the writer threads started while performing effects.
    me: Weak<Inner>,
}

/// The state behind the core lock.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The sans-IO gateway, socket by socket (snet included).
    pub(crate) switchboard: Switchboard,
    /// The connection behind every socket the core knows. Removed on its `Close` action.
    pub(crate) conns: HashMap<SocketId, Arc<ConnCtl>>,
    /// The deadline the timer thread was last given.
    timer_next: Option<Instant>,
    /// Server auth failures per address, for the repeated-failure warning.
    auth_failures: AuthFailures,
}

impl Inner {
    pub(crate) fn new(switchboard: Switchboard, settings: Settings) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            shared: Mutex::new(Shared {
                switchboard,
                conns: HashMap::new(),
                timer_next: None,
                auth_failures: AuthFailures::default(),
            }),
            timer: TimerBell::default(),
            live: Mutex::new(HashMap::new()),
            live_changed: Condvar::new(),
            stop_requested: Mutex::new(false),
            stop_bell: Condvar::new(),
            stopping: AtomicBool::new(false),
            settings,
            me: me.clone(),
        })
    }

    /// Runs `f` on the core under the lock, dispatches the actions it produced, then performs their
    /// side effects after unlocking. Returns what `f` returned.
    pub(crate) fn with_core<R>(&self, f: impl FnOnce(&mut Shared) -> R) -> R {
        self.with_core_rearm(false, f)
    }

    /// [`Inner::with_core`]; with `force` the timer is re-armed to the core's next deadline even if that
    /// is later than before (the timer thread does this after `handle_timeout`).
    pub(crate) fn with_core_rearm<R>(&self, force: bool, f: impl FnOnce(&mut Shared) -> R) -> R {
        let (result, effects) = self.locked(true, force, |shared, _| f(shared));
        effects.apply(self);
        result
    }

    /// Runs `f` and the dispatch under the core lock; returns what `f` returned and the effects to
    /// perform once unlocked. With `direct`, sockets whose writer is idle are claimed and their
    /// batches taken, for [`Inner::send_direct`].
    fn locked<R>(
        &self,
        direct: bool,
        force: bool,
        f: impl FnOnce(&mut Shared, &mut Effects) -> R,
    ) -> (R, Effects) {
        let mut effects = Effects::new(direct);
        let mut shared = lock(&self.shared);
        let result = f(&mut shared, &mut effects);
        shared.dispatch(&mut effects);
        shared.take_claimed(&mut effects);
        shared.rearm(&self.timer, force);
        (result, effects)
    }

    /// Sends the batches taken for claimed sockets from this thread, without blocking.
    ///
    /// A socket whose batch went out completely is confirmed with the core (`poll_transmit`, which
    /// also says the last batch was written): if more arrived meanwhile it is sent in the next round,
    /// else the socket is released. After [`DIRECT_ROUNDS`] rounds, or when the socket is full, the
    /// rest goes to the writer thread. A failed send is reported to the core like a failed write.
    fn send_direct(&self, mut sends: Vec<DirectSend>) {
        for round in 1..=DIRECT_ROUNDS {
            let mut sent = Vec::new();
            let mut failed = Vec::new();
            for DirectSend { conn, mut batch } in sends.drain(..) {
                match conn.send_nonblocking(&mut batch) {
                    Ok(true) => sent.push(DirectSend { conn, batch }),
                    Ok(false) => {
                        let ring = conn.hand_off(batch);
                        self.ring(&conn, ring);
                    }
                    Err(err) => {
                        log::debug!(
                            "write to {} {} ({}) failed: {err}",
                            conn.side,
                            conn.socket,
                            conn.addr
                        );
                        failed.push(conn);
                    }
                }
            }
            if sent.is_empty() && failed.is_empty() {
                return;
            }
            let last = round == DIRECT_ROUNDS;
            let ((), mut effects) = self.locked(!last, false, |shared, effects| {
                shared.confirm_sent(sent, last, effects);
                shared.report_failed(failed, effects);
            });
            sends.append(&mut effects.sends);
            effects.apply_local(self);
        }
    }

    /// Does what a [`Ring`] asks for, right away (no core lock held).
    fn ring(&self, conn: &Arc<ConnCtl>, ring: Ring) {
        match ring {
            Ring::Wake => conn.wake_writer(),
            Ring::Spawn => match self.me.upgrade() {
                Some(me) => writer::start(&me, conn),
                // Unreachable while a thread runs on behalf of this `Inner`; nothing to start then.
                None => conn.writer_not_started(),
            },
            Ring::Claimed | Ring::Nothing => {}
        }
    }

    /// Reads something from the core without calling into it (stats, peers).
    pub(crate) fn inspect<R>(&self, f: impl FnOnce(&Switchboard) -> R) -> R {
        f(&lock(&self.shared).switchboard)
    }

    /// Asks `run` to shut the gateway down.
    pub(crate) fn request_stop(&self) {
        *lock(&self.stop_requested) = true;
        self.stop_bell.notify_all();
    }

    /// Blocks until [`Inner::request_stop`] was called.
    pub(crate) fn wait_stop_requested(&self) {
        let mut requested = lock(&self.stop_requested);
        while !*requested {
            requested = super::sync::wait(&self.stop_bell, requested);
        }
    }

    /// Marks the gateway as stopping: accept threads return.
    pub(crate) fn begin_stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether accept threads must return.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Records a connection whose threads are about to start.
    pub(crate) fn add_live(&self, ctl: Arc<ConnCtl>) {
        lock(&self.live).insert(ctl.socket, ctl);
    }

    /// Forgets a connection whose threads have all returned.
    pub(crate) fn remove_live(&self, socket: SocketId) {
        lock(&self.live).remove(&socket);
        self.live_changed.notify_all();
    }

    /// Waits until no connection thread is running, or `deadline`. Returns how many connections
    /// still have threads running.
    pub(crate) fn wait_live_empty(&self, deadline: Instant) -> usize {
        let mut live = lock(&self.live);
        loop {
            let now = Instant::now();
            if live.is_empty() || now >= deadline {
                return live.len();
            }
            live = wait_timeout(&self.live_changed, live, deadline - now);
        }
    }

    /// The connections whose threads are still running.
    pub(crate) fn live_conns(&self) -> Vec<Arc<ConnCtl>> {
        lock(&self.live).values().cloned().collect()
    }
}

impl Shared {
    /// Drains the core's actions. Only flag flips and notifies happen here; the rest goes to `effects`.
    fn dispatch(&mut self, effects: &mut Effects) {
        while let Some(action) = self.switchboard.poll_action() {
            match action {
                Action::Transmit(socket) => {
                    if let Some(conn) = self.conns.get(&socket) {
                        // Only client sockets are sent to directly: a client's bytes come from its
                        // server's reader, one batch per server read, and waking its writer for each
                        // was most of this runtime's cost. A server socket gets frames from many
                        // client readers; its writer (which yields before taking) sends them all in
                        // one `writev`. Measured (64 B × 32, CPU µs per message): no direct sends
                        // 0.89–0.96, direct to servers only 0.87–0.91, to both 0.60–0.74, to clients
                        // only 0.60–0.66.
                        let direct = effects.direct && conn.side == Side::Client;
                        let ring = conn.on_transmit(direct);
                        effects.ring(conn, ring);
                    }
                }
                Action::PauseReading(socket) => {
                    if let Some(conn) = self.conns.get(&socket) {
                        conn.set_paused(true);
                    }
                }
                Action::ResumeReading(socket) => {
                    if let Some(conn) = self.conns.get(&socket) {
                        conn.set_paused(false);
                    }
                }
                Action::ServerAuthenticated { socket, server_id } => {
                    if let Some(conn) = self.conns.get(&socket) {
                        let _ = conn.server_id.set(server_id);
                        effects.events.push(Event::Authenticated {
                            server_id,
                            addr: conn.addr,
                        });
                    }
                }
                Action::SessionEnded { side, reason } => {
                    effects.events.push(Event::SessionEnded { side, reason });
                }
                Action::Close {
                    socket,
                    reason,
                    flush,
                } => {
                    if let Some(conn) = self.conns.remove(&socket) {
                        let flushing = !flush.is_empty();
                        let release = conn.close(flush);
                        effects.release(&conn, release);
                        let repeated = match reason {
                            SocketCloseReason::Peer(CloseReason::Auth(_)) => {
                                self.auth_failures.record(conn.addr.ip(), Instant::now())
                            }
                            _ => None,
                        };
                        effects.events.push(Event::Closed {
                            conn,
                            reason,
                            flushing,
                        });
                        if let Some(report) = repeated {
                            effects.events.push(Event::RepeatedAuthFailures(report));
                        }
                    }
                }
            }
        }
    }

    /// Takes the batch of every socket claimed for a direct send (dispatching what that produces,
    /// which may claim more). A claimed socket with nothing to take is released at once.
    fn take_claimed(&mut self, effects: &mut Effects) {
        if effects.claimed.is_empty() {
            return;
        }
        let now = Instant::now();
        while let Some(conn) = effects.claimed.pop() {
            let mut batch = Vec::new();
            self.switchboard.poll_transmit(conn.socket, now, &mut batch);
            self.dispatch(effects);
            if batch.is_empty() {
                let release = conn.release();
                effects.release(&conn, release);
            } else {
                effects.sends.push(DirectSend { conn, batch });
            }
        }
    }

    /// Tells the core that the batches in `sent` were written (`poll_transmit`) and takes what
    /// arrived for those sockets meanwhile: into `effects.sends` for another direct round, or, if
    /// this was the `last` round, to the writer thread. A socket with nothing more is released.
    fn confirm_sent(&mut self, sent: Vec<DirectSend>, last: bool, effects: &mut Effects) {
        let now = Instant::now();
        for DirectSend { conn, mut batch } in sent {
            batch.clear();
            self.switchboard.poll_transmit(conn.socket, now, &mut batch);
            if batch.is_empty() {
                let release = conn.release();
                effects.release(&conn, release);
            } else if last {
                let ring = conn.hand_off(batch);
                effects.ring(&conn, ring);
            } else {
                effects.sends.push(DirectSend { conn, batch });
            }
        }
    }

    /// Tells the core that the sockets whose direct send failed are gone (a no-op for one it
    /// already closed), then releases them; their Close stops their threads.
    fn report_failed(&mut self, failed: Vec<Arc<ConnCtl>>, effects: &mut Effects) {
        let now = Instant::now();
        for conn in failed {
            self.switchboard.handle_closed(conn.socket, now);
            let release = conn.release();
            effects.release(&conn, release);
        }
    }

    /// Tells the timer thread about an earlier deadline (or any deadline, with `force`).
    fn rearm(&mut self, timer: &TimerBell, force: bool) {
        let next = self.switchboard.poll_timeout();
        let earlier = match (next, self.timer_next) {
            (Some(next), Some(armed)) => next < armed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if force || earlier {
            self.timer_next = next;
            timer.set(next);
        }
    }
}

/// How many times in a row a thread sends to the sockets it claimed before it hands what keeps
/// arriving to their writer threads (so a reader does not stay another socket's writer for long).
const DIRECT_ROUNDS: usize = 4;

/// A batch taken for a claimed socket, to send from the claiming thread.
#[derive(Debug)]
struct DirectSend {
    conn: Arc<ConnCtl>,
    batch: Vec<Bytes>,
}

/// Side effects of dispatched actions, performed after the core lock is released.
#[derive(Debug)]
pub(crate) struct Effects {
    /// Whether sockets with idle writers may be claimed for a direct send.
    direct: bool,
    /// Sockets claimed during dispatch, whose batches are still to be taken.
    claimed: Vec<Arc<ConnCtl>>,
    /// Batches taken for claimed sockets: sent after the lock is released.
    sends: Vec<DirectSend>,
    /// Writers asleep that have work: woken after the lock is released, so that the core lock is
    /// not held across a `futex` wake-up (which made other threads wait for it).
    wake_writers: Vec<Arc<ConnCtl>>,
    /// Connections whose writer thread must be started (not running, work arrived).
    start_writers: Vec<Arc<ConnCtl>>,
    /// Graceful closes' flushes to send from this thread (the socket was claimed for it).
    flushes: Vec<DirectSend>,
    events: Vec<Event>,
}

#[derive(Debug)]
enum Event {
    Authenticated {
        server_id: u32,
        addr: SocketAddr,
    },
    Closed {
        conn: Arc<ConnCtl>,
        reason: SocketCloseReason,
        flushing: bool,
    },
    SessionEnded {
        side: Side,
        reason: SocketCloseReason,
    },
    RepeatedAuthFailures(RepeatedAuthFailures),
}

impl Effects {
    fn new(direct: bool) -> Self {
        Self {
            direct,
            claimed: Vec::new(),
            sends: Vec::new(),
            wake_writers: Vec::new(),
            start_writers: Vec::new(),
            flushes: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Records what a [`Release`] asks for, to do once the lock is released.
    fn release(&mut self, conn: &Arc<ConnCtl>, release: Release) {
        match release {
            Release::SendFlush(flush) => self.flushes.push(DirectSend {
                conn: Arc::clone(conn),
                batch: flush,
            }),
            Release::Ring(ring) => self.ring(conn, ring),
        }
    }

    /// Records what a [`Ring`] asks for, to do once the lock is released.
    fn ring(&mut self, conn: &Arc<ConnCtl>, ring: Ring) {
        let list = match ring {
            Ring::Claimed => &mut self.claimed,
            Ring::Wake => &mut self.wake_writers,
            Ring::Spawn => &mut self.start_writers,
            Ring::Nothing => return,
        };
        list.push(Arc::clone(conn));
    }

    /// Wakes writers, sends the direct batches, starts writers, logs and closes sockets.
    fn apply(mut self, inner: &Inner) {
        let sends = std::mem::take(&mut self.sends);
        for conn in std::mem::take(&mut self.wake_writers) {
            conn.wake_writer();
        }
        if !sends.is_empty() {
            inner.send_direct(sends);
        }
        self.apply_local(inner);
    }

    /// Everything but the direct sends: wakes and starts writers, logs and closes sockets.
    fn apply_local(self, inner: &Inner) {
        for conn in self.wake_writers {
            conn.wake_writer();
        }
        for conn in self.start_writers {
            inner.ring(&conn, Ring::Spawn);
        }
        for DirectSend { conn, batch } in self.flushes {
            let ring = conn.send_flush(batch);
            inner.ring(&conn, ring);
        }
        for event in self.events {
            match event {
                Event::Authenticated { server_id, addr } => {
                    log::info!("accept server {server_id} from {addr}");
                }
                Event::SessionEnded { side, reason } => {
                    log::warn!("drop {side} snet session while it was reconnecting: {reason}");
                }
                Event::RepeatedAuthFailures(report) => log::warn!("{report}"),
                Event::Closed {
                    conn,
                    reason,
                    flushing,
                } => {
                    log_close(&conn, reason);
                    // With something to flush the writer closes the socket once it is written; otherwise
                    // close now, which also unblocks a reader stuck in `read` or a writer stuck in `write`.
                    if !flushing {
                        conn.shutdown_socket();
                    }
                }
            }
        }
    }
}

/// One log line per closed socket, naming a registered game server by its id ("server 7 offline"):
/// `info` for routine ends, `warn` for everything the peer did wrong or that went wrong for it.
fn log_close(conn: &ConnCtl, reason: SocketCloseReason) {
    let (side, socket, addr) = (conn.side, conn.socket, conn.addr);
    let disconnected = matches!(
        reason,
        SocketCloseReason::Disconnected | SocketCloseReason::Peer(CloseReason::Disconnected)
    );
    match (reason, conn.server_id.get()) {
        // The original's exact text ("server auth failed" for a bad digest), kept for log scrapers.
        (SocketCloseReason::Peer(CloseReason::Auth(err)), _) => {
            log::warn!("error happends when accept server from {addr}: {err}");
        }
        (_, Some(id)) if disconnected => {
            log::info!("server {id} offline ({socket} from {addr} disconnected)");
        }
        (_, None) if disconnected => log::info!("{side} {socket} from {addr} disconnected"),
        (_, Some(id)) if reason.is_routine() => {
            log::info!("server {id} offline ({socket} from {addr} closed): {reason}");
        }
        (_, Some(id)) => log::warn!("server {id} offline (drop {socket} from {addr}): {reason}"),
        _ if reason.is_routine() => log::info!("{side} {socket} from {addr} closed: {reason}"),
        _ => log::warn!("drop {side} {socket} from {addr}: {reason}"),
    }
}

/// How long graceful shutdown lets writers flush before it force-closes sockets.
pub(crate) const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);
