//! The readiness loop: one thread blocking in [`mio::Poll::poll`] over every socket, driving the core.
//!
//! One round: wait for readiness (no longer than the next deadline), lock the core, then
//!
//! 1. accept on ready listeners; read ready sockets and feed each chunk to the core, applying its
//!    actions after every chunk (so a `PauseReading` stops the very next read);
//! 2. fire the core's deadlines, accept retries after a failed `accept`, expired close flushes;
//! 3. settle: apply actions until none is left — `Transmit` only marks the socket, and every marked
//!    socket gets its batch taken and written with one vectored `send` at the end, so frames routed
//!    to one socket during a round leave together.
//!
//! Sockets are edge-triggered: a read that does not fill the buffer, or a write that stops short,
//! proves the socket drained or full, and the next edge brings the loop back. A socket read
//! [`READS_PER_WAKE`] times in one round is read again in the next one, so one busy peer cannot
//! starve the others.

use super::conn::{Conn, ReadOutcome, Settings};
use super::control::Control;
use super::listener::Acceptor;
use super::log::log_close;
use super::open::open;
use bytes::Bytes;
use fastway_core::abuse::AuthFailures;
use fastway_core::frame::FrameDecoder;
use fastway_core::gateway::{CloseReason, Side};
use fastway_core::switchboard::{Action, SocketCloseReason, SocketId, Switchboard};
use mio::event::Event;
use mio::{Events, Poll, Token};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Poll token of the client listener.
const CLIENT_LISTENER: Token = Token(0);
/// Poll token of the server listener.
const SERVER_LISTENER: Token = Token(1);
/// Poll token of the handles' waker.
pub(crate) const WAKER: Token = Token(2);
/// Reads of one socket in one round before it waits for the next round.
const READS_PER_WAKE: usize = 8;
/// Readiness events taken per `poll`.
const EVENTS: usize = 1024;
/// How long a closing socket may take to write its last bytes (graceful shutdown's Close frames)
/// before it is closed anyway.
pub(crate) const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// The poll token of a socket the core knows as `id` (tokens below 3 are the listeners and the
/// waker). Socket ids are never reused, so neither are tokens.
pub(crate) fn token(id: SocketId) -> Token {
    Token((id.as_u64() as usize).wrapping_add(3))
}

/// The loop's state: the poll, the listeners and every socket. Lives on the loop thread only.
pub(crate) struct EventLoop {
    poll: Poll,
    /// The client and the server listener, while the gateway accepts.
    acceptors: Vec<Acceptor>,
    conns: HashMap<Token, Conn>,
    settings: Settings,
    decoder: FrameDecoder,
    control: Arc<Control>,
    /// Sockets with something to write this round (each once: see [`Conn::dirty`]).
    dirty: Vec<Token>,
    /// Sockets whose reading the core resumed: feed what they hold, then read.
    resumed: Vec<Token>,
    /// Sockets that hit [`READS_PER_WAKE`]: read again next round.
    busy: Vec<Token>,
    /// When each closing socket's flush gives up (earliest first).
    flush_deadlines: BinaryHeap<Reverse<(Instant, Token)>>,
    /// Server auth failures per address, for the repeated-failure warning.
    auth_failures: AuthFailures,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("acceptors", &self.acceptors)
            .field("conns", &self.conns.len())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl EventLoop {
    /// A loop over the two bound listeners (registered here). `control` must hold a waker made
    /// from `poll`'s registry with the token [`WAKER`].
    pub(crate) fn new(
        poll: Poll,
        mut acceptors: Vec<Acceptor>,
        settings: Settings,
        control: Arc<Control>,
    ) -> io::Result<Self> {
        for acceptor in &mut acceptors {
            let token = listener_token(acceptor.side);
            poll.registry()
                .register(&mut acceptor.listener, token, mio::Interest::READABLE)?;
        }
        Ok(Self {
            poll,
            acceptors,
            conns: HashMap::new(),
            settings,
            decoder: FrameDecoder::new(settings.max_packet),
            control,
            dirty: Vec::new(),
            resumed: Vec::new(),
            busy: Vec::new(),
            flush_deadlines: BinaryHeap::new(),
            auth_failures: AuthFailures::default(),
        })
    }

    /// Serves until a stop is requested, then shuts down gracefully. Fails only if `poll` fails (the
    /// gateway still shuts down first).
    pub(crate) fn run(mut self) -> io::Result<()> {
        let control = Arc::clone(&self.control);
        let mut events = Events::with_capacity(EVENTS);
        let mut wake_at = control.core().poll_timeout();
        let mut result = Ok(());
        while !control.stop_requested() {
            if let Err(err) = self.wait(&mut events, wake_at) {
                log::error!("the gateway loop cannot wait for its sockets: {err}");
                result = Err(err);
                break;
            }
            let mut core = control.core();
            let again = std::mem::take(&mut self.busy);
            for event in events.iter() {
                self.handle_event(&mut core, event);
            }
            for token in again {
                self.read(&mut core, token);
            }
            wake_at = self.after_events(&mut core);
        }
        self.shut_down(&control, &mut events);
        result
    }

    /// Blocks until readiness or `until` (a deadline of the core, a retry, a flush).
    fn wait(&mut self, events: &mut Events, until: Option<Instant>) -> io::Result<()> {
        let timeout = until.map(|at| at.saturating_duration_since(Instant::now()));
        match self.poll.poll(events, timeout) {
            Err(err) if err.kind() != io::ErrorKind::Interrupted => Err(err),
            _ => Ok(()),
        }
    }

    fn handle_event(&mut self, core: &mut Switchboard, event: &Event) {
        match event.token() {
            CLIENT_LISTENER => self.accept(core, Side::Client),
            SERVER_LISTENER => self.accept(core, Side::Server),
            WAKER => {}
            token => {
                let writable = event.is_writable() || event.is_write_closed() || event.is_error();
                if writable {
                    self.on_writable(token);
                }
                if event.is_read_closed() || event.is_error() {
                    if let Some(conn) = self.conns.get_mut(&token) {
                        conn.read_closed = true;
                    }
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.read(core, token);
                }
            }
        }
    }

    /// Deadlines, retries and the settling of everything the round produced; returns when the loop
    /// must wake up next at the latest.
    fn after_events(&mut self, core: &mut Switchboard) -> Option<Instant> {
        let now = Instant::now();
        if core.poll_timeout().is_some_and(|at| at <= now) {
            core.handle_timeout(now);
        }
        for side in [Side::Client, Side::Server] {
            let due = self
                .acceptor(side)
                .and_then(|acceptor| acceptor.retry_at())
                .is_some_and(|at| at <= now);
            if due {
                self.accept(core, side);
            }
        }
        self.expire_flushes(now);
        self.settle(core);
        if !self.busy.is_empty() {
            return Some(now);
        }
        let retries = self.acceptors.iter().filter_map(Acceptor::retry_at);
        let flush = self.flush_deadlines.peek().map(|Reverse((at, _))| *at);
        retries.chain(flush).chain(core.poll_timeout()).min()
    }

    fn acceptor(&mut self, side: Side) -> Option<&mut Acceptor> {
        self.acceptors
            .iter_mut()
            .find(|acceptor| acceptor.side == side)
    }

    /// Accepts every pending socket on `side`'s port.
    fn accept(&mut self, core: &mut Switchboard, side: Side) {
        let now = Instant::now();
        let Self {
            acceptors,
            poll,
            conns,
            settings,
            ..
        } = self;
        let Some(acceptor) = acceptors.iter_mut().find(|acceptor| acceptor.side == side) else {
            return;
        };
        acceptor.accept_all(now, |stream, addr, side| {
            if let Some(conn) = open(core, poll.registry(), settings, stream, addr, side) {
                conns.insert(token(conn.id), conn);
            }
        });
    }

    /// A writable edge: a socket whose last write stopped short may be written again.
    fn on_writable(&mut self, token: Token) {
        if let Some(conn) = self.conns.get_mut(&token) {
            if !conn.writable {
                conn.writable = true;
                mark_dirty(&mut self.dirty, token, conn);
            }
        }
    }

    /// Reads `token`'s socket until it is drained (at most [`READS_PER_WAKE`] times), feeding the
    /// core after every read.
    fn read(&mut self, core: &mut Switchboard, token: Token) {
        for _ in 0..READS_PER_WAKE {
            let Some(conn) = self.conns.get_mut(&token) else {
                return;
            };
            if conn.paused || conn.closing {
                return;
            }
            let size = self.settings.read_buffer(conn.side);
            match conn.read(size, &self.decoder) {
                ReadOutcome::Data { drained } => {
                    if let Some(buf) = conn.read_buf.as_mut() {
                        core.handle_input(conn.id, buf, Instant::now(), &mut conn.rng);
                    }
                    if drained {
                        conn.release_drained_buffer();
                    }
                    self.apply_actions(core);
                    if drained {
                        return;
                    }
                }
                ReadOutcome::Empty => return conn.release_drained_buffer(),
                ReadOutcome::Eof => return self.report_closed(core, token, None),
                ReadOutcome::Failed(err) => return self.report_closed(core, token, Some(err)),
            }
        }
        self.busy.push(token);
    }

    /// Tells the core a socket is gone (its Close follows among the actions).
    fn report_closed(&mut self, core: &mut Switchboard, token: Token, err: Option<io::Error>) {
        let Some(conn) = self.conns.get(&token) else {
            return;
        };
        if let Some(err) = err {
            let (side, id, addr) = (conn.side, conn.id, conn.addr);
            log::debug!("read from {side} {id} ({addr}) failed: {err}");
        }
        core.handle_closed(conn.id, Instant::now());
        self.apply_actions(core);
    }

    /// Applies actions, feeds resumed sockets and writes marked ones until nothing is left to do.
    fn settle(&mut self, core: &mut Switchboard) {
        loop {
            self.apply_actions(core);
            if let Some(token) = self.resumed.pop() {
                self.feed_resumed(core, token);
                continue;
            }
            if self.dirty.is_empty() {
                return;
            }
            for token in std::mem::take(&mut self.dirty) {
                self.flush(core, token);
            }
        }
    }

    /// Does what the core asks (writes are only marked: [`EventLoop::settle`] does them).
    fn apply_actions(&mut self, core: &mut Switchboard) {
        while let Some(action) = core.poll_action() {
            match action {
                Action::Transmit(socket) => {
                    let token = token(socket);
                    if let Some(conn) = self.conns.get_mut(&token) {
                        mark_dirty(&mut self.dirty, token, conn);
                    }
                }
                Action::PauseReading(socket) => {
                    if let Some(conn) = self.conns.get_mut(&token(socket)) {
                        conn.paused = true;
                    }
                }
                Action::ResumeReading(socket) => {
                    if let Some(conn) = self.conns.get_mut(&token(socket)) {
                        conn.paused = false;
                        self.resumed.push(token(socket));
                    }
                }
                Action::ServerAuthenticated { socket, server_id } => {
                    if let Some(conn) = self.conns.get_mut(&token(socket)) {
                        conn.server_id = Some(server_id);
                        log::info!("accept server {server_id} from {}", conn.addr);
                    }
                }
                Action::SessionEnded { side, reason } => {
                    log::warn!("drop {side} snet session while it was reconnecting: {reason}");
                }
                Action::Close {
                    socket,
                    reason,
                    flush,
                } => self.close(token(socket), reason, flush),
            }
        }
    }

    /// `Action::Close`: log it, count auth failures, then drop the socket, or (graceful shutdown)
    /// write its last bytes first.
    fn close(&mut self, token: Token, reason: SocketCloseReason, flush: Vec<Bytes>) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let now = Instant::now();
        conn.closing = true;
        conn.read_buf = None;
        log_close(conn, reason);
        if let SocketCloseReason::Peer(CloseReason::Auth(_)) = reason {
            if let Some(report) = self.auth_failures.record(conn.addr.ip(), now) {
                log::warn!("{report}");
            }
        }
        if flush.is_empty() {
            self.drop_conn(token);
        } else {
            conn.queue.extend(flush);
            mark_dirty(&mut self.dirty, token, conn);
            self.flush_deadlines
                .push(Reverse((now + FLUSH_TIMEOUT, token)));
        }
    }

    /// Reading resumed: the bytes read before the pause go to the core first, then the socket is read.
    fn feed_resumed(&mut self, core: &mut Switchboard, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if conn.paused || conn.closing {
            return;
        }
        if let Some(buf) = conn.read_buf.as_mut().filter(|buf| !buf.is_empty()) {
            core.handle_input(conn.id, buf, Instant::now(), &mut conn.rng);
            self.apply_actions(core);
        }
        self.read(core, token);
    }

    /// Writes what the socket has queued and what the core has for it, until both are empty or the
    /// socket is full. Taking a batch also tells the core the previous one was written. A closing
    /// socket is dropped once its queue is out; a failed write is reported to the core.
    fn flush(&mut self, core: &mut Switchboard, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        conn.dirty = false;
        if !conn.writable {
            return;
        }
        let now = Instant::now();
        loop {
            if conn.queue.is_empty() {
                if conn.closing {
                    return self.drop_conn(token);
                }
                if core.poll_transmit(conn.id, now, &mut conn.queue) == 0 {
                    conn.queue.clear();
                    return;
                }
            }
            match conn.send_queue() {
                Ok(true) => {}
                Ok(false) => return,
                Err(err) => {
                    let (side, id, addr) = (conn.side, conn.id, conn.addr);
                    log::debug!("write to {side} {id} ({addr}) failed: {err}");
                    if conn.closing {
                        return self.drop_conn(token);
                    }
                    conn.queue.clear();
                    return core.handle_closed(id, now);
                }
            }
        }
    }

    /// Closes the sockets whose final flush took longer than [`FLUSH_TIMEOUT`].
    fn expire_flushes(&mut self, now: Instant) {
        while let Some(&Reverse((at, token))) = self.flush_deadlines.peek() {
            if at > now {
                return;
            }
            self.flush_deadlines.pop();
            if let Some(conn) = self.conns.get(&token) {
                let (side, id) = (conn.side, conn.id);
                log::debug!("final flush to {side} {id} timed out; closing it");
                self.drop_conn(token);
            }
        }
    }

    /// Forgets a socket: deregisters, shuts and closes it.
    fn drop_conn(&mut self, token: Token) {
        if let Some(mut conn) = self.conns.remove(&token) {
            if let Err(err) = self.poll.registry().deregister(&mut conn.stream) {
                log::debug!("cannot unwatch {} {}: {err}", conn.side, conn.id);
            }
            conn.shutdown();
        }
    }

    /// Graceful shutdown: stop accepting, let the core close every socket (each peer gets the Close
    /// frames of its vconns), give the flushes up to [`FLUSH_TIMEOUT`], close what is left.
    fn shut_down(&mut self, control: &Control, events: &mut Events) {
        log::info!("gateway shutting down");
        // Dropping the listeners closes the ports: connections still in the backlog are refused.
        for mut acceptor in self.acceptors.drain(..) {
            let _ = self.poll.registry().deregister(&mut acceptor.listener);
        }
        {
            let mut core = control.core();
            core.shutdown(Instant::now());
            self.settle(&mut core);
        }
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        while !self.conns.is_empty() && Instant::now() < deadline {
            if let Err(err) = self.wait(events, Some(deadline)) {
                log::warn!("the gateway loop cannot wait for its last writes: {err}");
                break;
            }
            let mut core = control.core();
            for event in events.iter() {
                if event.is_writable() || event.is_write_closed() || event.is_error() {
                    self.on_writable(event.token());
                }
            }
            self.settle(&mut core);
        }
        if !self.conns.is_empty() {
            let left = self.conns.len();
            log::warn!("{left} connections did not finish flushing; closing them");
            let tokens: Vec<Token> = self.conns.keys().copied().collect();
            for token in tokens {
                self.drop_conn(token);
            }
        }
        log::info!("gateway stopped");
    }
}

/// Puts a socket on the list of sockets to write this round (once).
fn mark_dirty(dirty: &mut Vec<Token>, token: Token, conn: &mut Conn) {
    if !conn.dirty {
        conn.dirty = true;
        dirty.push(token);
    }
}

/// The poll token of `side`'s listener.
fn listener_token(side: Side) -> Token {
    match side {
        Side::Client => CLIENT_LISTENER,
        Side::Server => SERVER_LISTENER,
    }
}
