//! The driver: the shared state of one link and the three threads that move bytes and time.
//!
//! * **reader** (`fastway-ep-read`): blocks in `read`, feeds the core with `handle_input`, dispatches
//!   the events.
//! * **writer** (`fastway-ep-write`): sleeps on a doorbell condvar until the core has bytes, takes them
//!   all with `poll_transmit` and writes them with one (vectored) write call. It is the only thread
//!   that writes, so a slow gateway blocks nobody but it and the senders held by back-pressure.
//! * **timer** (`fastway-ep-timer`): sleeps until `poll_timeout`, calls `handle_timeout`. It is apart
//!   from the writer so that a ping timeout still fires while a write is stuck on a dead gateway.
//!
//! With snet ([`EndpointOptions::snet`]) the reader and writer run the loops of the `snet` submodule
//! instead: the reader also reconnects when the link breaks, and the writer encrypts and waits while
//! the link is down.
//!
//! Every core call is made under the one state mutex and is followed by [`Shared::after`], which
//! drains every event before the lock is released; so a thread that finds no answer for its dial
//! after taking the lock knows that none is coming from an event still in flight. The lock is never
//! held across a blocking read or write.

mod snet;

use super::EndpointOptions;
use super::error::DialError;
use super::vconn::{End, Inbox};
use bytes::{Bytes, BytesMut};
use fastway_core::endpoint::{CloseReason, DialId, Endpoint as CoreEndpoint, Event, LinkError};
use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) use snet::SnetLink;

/// Stack size of the driver threads: they run short loops with no deep recursion and keep their
/// buffers on the heap, so the default 2 MiB would only waste address space per endpoint.
const STACK_SIZE: usize = 64 * 1024;
/// How much the reader asks the kernel for at once.
const READ_CHUNK: usize = 64 * 1024;
/// Above this many bytes waiting for the socket (queued in the core plus being written), `send`
/// blocks until the writer has drained below it.
pub(crate) const SEND_HIGH_WATER: usize = 4 << 20;
/// How long a graceful close waits for its Close frames to be written before cutting the socket.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// Most buffers handed to one vectored write.
const MAX_IOV: usize = 64;

/// A dial's answer as the dispatcher hands it to the waiting `dial` call.
pub(crate) type DialOutcome = Result<(u32, u32, Arc<Inbox>), DialError>;

/// Everything the threads and the user handles share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// The writer's doorbell: bytes are queued, or the link ended.
    writer_cv: Condvar,
    /// Wakes the timer: an earlier deadline, or the link ended.
    timer_cv: Condvar,
    /// Wakes senders held by back-pressure.
    drained_cv: Condvar,
    /// Wakes `accept` callers.
    accept_cv: Condvar,
    /// Wakes `closed` callers.
    closed_cv: Condvar,
    /// Wakes the snet reader while it waits for its next reconnect attempt (the link ended).
    snet_cv: Condvar,
    /// A handle on the (first) socket used only for `shutdown`, which unblocks the reader and the
    /// writer. With snet, the current socket is in [`SnetLink`].
    socket: TcpStream,
    /// Per-vconn inbound queue length.
    pub(crate) recv_queue: usize,
    /// How long `dial` waits for its answer.
    pub(crate) dial_timeout: Option<Duration>,
    /// The largest message `send` accepts (`max_packet - 4`).
    pub(crate) max_payload: usize,
    pub(crate) local_addr: SocketAddr,
    pub(crate) peer_addr: SocketAddr,
}

/// The part behind the mutex.
pub(crate) struct State {
    pub(crate) core: CoreEndpoint,
    /// Bytes the writer took from the core and has not finished writing.
    in_flight: usize,
    /// The writer is waiting on its doorbell.
    writer_idle: bool,
    /// The writer has exited.
    writer_done: bool,
    /// The deadline the timer sleeps until (`None`: it sleeps until woken).
    timer_at: Option<Instant>,
    /// The timer is asleep.
    timer_waiting: bool,
    /// Senders blocked by back-pressure.
    send_waiters: usize,
    /// Where each pending dial's answer goes.
    pub(crate) dials: HashMap<DialId, SyncSender<DialOutcome>>,
    /// Inbound queues of the open vconns (accepted or not yet).
    pub(crate) conns: HashMap<u32, Arc<Inbox>>,
    /// Incoming vconns not yet taken by `accept`: (conn, remote, queue).
    pub(crate) incoming: VecDeque<(u32, u32, Arc<Inbox>)>,
    /// Why the link ended, once it has.
    pub(crate) link_error: Option<LinkError>,
    /// After a graceful close: when the timer cuts the socket if the writer has not flushed yet.
    close_deadline: Option<Instant>,
    /// The snet stream under the core endpoint, when the link runs over snet.
    pub(crate) snet: Option<SnetLink>,
}

impl Shared {
    /// Starts the three driver threads over `stream`; `buf` holds stream bytes already read (after a
    /// server or snet handshake; decrypted with snet). With `snet`, the stream is that client's
    /// (handshake done) and the link reconnects by itself. On error every thread already started ends
    /// by itself.
    pub(crate) fn start(
        stream: TcpStream,
        core: CoreEndpoint,
        buf: BytesMut,
        snet: Option<fastway_core::snet::SnetClient>,
        options: &EndpointOptions,
    ) -> io::Result<Arc<Self>> {
        let local_addr = stream.local_addr()?;
        let peer_addr = stream.peer_addr()?;
        let reader = stream.try_clone()?;
        let writer = stream.try_clone()?;
        let max_payload = core.config().max_payload();
        let snet = match snet {
            Some(client) => Some(SnetLink::new(
                client,
                stream.try_clone()?,
                peer_addr,
                options.connect_timeout,
                options.snet.map_or(0, |config| config.rewriter_buffer_size),
            )),
            None => None,
        };
        let snet_mode = snet.is_some();
        let shared = Arc::new(Self {
            state: Mutex::new(State {
                core,
                in_flight: 0,
                writer_idle: false,
                writer_done: false,
                timer_at: None,
                timer_waiting: false,
                send_waiters: 0,
                dials: HashMap::new(),
                conns: HashMap::new(),
                incoming: VecDeque::new(),
                link_error: None,
                close_deadline: None,
                snet,
            }),
            writer_cv: Condvar::new(),
            timer_cv: Condvar::new(),
            drained_cv: Condvar::new(),
            accept_cv: Condvar::new(),
            closed_cv: Condvar::new(),
            snet_cv: Condvar::new(),
            socket: stream,
            recv_queue: options.recv_queue.max(1),
            dial_timeout: options.dial_timeout,
            max_payload,
            local_addr,
            peer_addr,
        });
        let started = Self::spawn("fastway-ep-write", &shared, move |s| {
            if snet_mode {
                drop(writer);
                s.snet_writer_loop();
            } else {
                s.writer_loop(writer);
            }
        })
        .and_then(|()| Self::spawn("fastway-ep-timer", &shared, Self::timer_loop))
        .and_then(|()| {
            Self::spawn("fastway-ep-read", &shared, move |s| {
                if snet_mode {
                    s.snet_reader_loop(reader, buf);
                } else {
                    s.reader_loop(reader, buf);
                }
            })
        });
        if let Err(error) = started {
            shared.shutdown_now();
            return Err(error);
        }
        Ok(shared)
    }

    fn spawn(
        name: &str,
        shared: &Arc<Self>,
        run: impl FnOnce(&Self) + Send + 'static,
    ) -> io::Result<()> {
        let shared = Arc::clone(shared);
        thread::Builder::new()
            .name(name.to_owned())
            .stack_size(STACK_SIZE)
            .spawn(move || run(&shared))
            .map(drop)
    }

    /// Locks the state. A panic elsewhere while holding the lock leaves the core consistent enough to
    /// shut down (its methods do not panic midway on our inputs), so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, cv: &Condvar, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        cv.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    fn wait_for<'a>(
        &self,
        cv: &Condvar,
        guard: MutexGuard<'a, State>,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        cv.wait_timeout(guard, timeout)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }

    /// Ends the link now (no flush) and wakes everyone: used when start-up fails.
    fn shutdown_now(&self) {
        let mut st = self.lock();
        st.core.handle_link_closed();
        self.after(&mut st);
        drop(st);
        self.cut_socket();
    }

    /// Shuts the socket in both directions: the reader sees EOF, a blocked write fails, the gateway
    /// sees FIN. Non-blocking; errors (already shut) do not matter. With snet, also ends the snet
    /// stream (no more reconnects) and shuts its current socket.
    fn cut_socket(&self) {
        let mut st = self.lock();
        self.cut_locked(&mut st);
    }

    /// [`cut_socket`](Self::cut_socket) with the lock held.
    fn cut_locked(&self, st: &mut State) {
        let _ = self.socket.shutdown(Shutdown::Both);
        if let Some(snet) = &mut st.snet {
            snet.end();
        }
    }

    /// To call after every core call, with the lock still held: dispatches every event, rings the
    /// writer if the core has bytes, and wakes the timer if its deadline moved earlier.
    pub(crate) fn after(&self, st: &mut State) {
        self.dispatch(st);
        let wants_write = match &st.snet {
            None => st.core.transmit_len() > 0,
            Some(snet) => snet.wants_write(st.core.transmit_len()),
        };
        if st.writer_idle && (wants_write || st.link_error.is_some()) {
            st.writer_idle = false;
            self.writer_cv.notify_one();
        }
        if st.timer_waiting {
            let earlier = match (st.core.poll_timeout(), st.timer_at) {
                (Some(next), Some(at)) => next < at,
                (Some(_), None) => true,
                (None, _) => st.link_error.is_some(),
            };
            if earlier {
                st.timer_waiting = false;
                self.timer_cv.notify_one();
            }
        }
    }

    /// Hands every pending core event to whoever waits for it.
    fn dispatch(&self, st: &mut State) {
        while let Some(event) = st.core.poll_event() {
            match event {
                Event::Ready => {}
                Event::PingTimeout => match &mut st.snet {
                    Some(snet) => snet.ping_timeout(Instant::now()),
                    None => log::warn!("fastway endpoint: the gateway did not answer a Ping"),
                },
                Event::Dialed { dial, conn, remote } => {
                    let inbox = Arc::new(Inbox::default());
                    let delivered = st.dials.remove(&dial).is_some_and(|answer| {
                        answer
                            .try_send(Ok((conn, remote, Arc::clone(&inbox))))
                            .is_ok()
                    });
                    if delivered {
                        st.conns.insert(conn, inbox);
                    } else {
                        // Nobody waits any more (cannot happen while dials cancel under the lock).
                        st.core.close(conn);
                    }
                }
                Event::DialRefused { dial, remote } => {
                    Self::answer(st, dial, Err(DialError::Refused { remote }));
                }
                Event::DialFailed { dial, reason, .. } => {
                    Self::answer(st, dial, Err(DialError::Closed(reason)));
                }
                Event::Incoming { conn, remote } => {
                    let inbox = Arc::new(Inbox::default());
                    st.conns.insert(conn, Arc::clone(&inbox));
                    st.incoming.push_back((conn, remote, inbox));
                    self.accept_cv.notify_one();
                }
                Event::Data { conn, payload } => self.deliver(st, conn, payload),
                Event::Closed { conn, reason } => {
                    if let Some(inbox) = st.conns.remove(&conn) {
                        inbox.end(match reason {
                            CloseReason::Remote => End::Closed,
                            CloseReason::Link(reason) => End::Link(reason),
                        });
                    }
                }
                Event::LinkClosed { reason } => self.link_closed(st, reason),
            }
        }
    }

    fn answer(st: &mut State, dial: DialId, outcome: DialOutcome) {
        if let Some(answer) = st.dials.remove(&dial) {
            let _ = answer.try_send(outcome);
        }
    }

    /// Queues one message on its vconn; a full queue closes the vconn (ENDPOINT.md §2.4).
    fn deliver(&self, st: &mut State, conn: u32, payload: Bytes) {
        let Some(inbox) = st.conns.get(&conn) else {
            return;
        };
        if inbox.push(payload, self.recv_queue) {
            return;
        }
        log::debug!("fastway endpoint: vconn {conn} receive queue overflowed; closing it");
        if let Some(inbox) = st.conns.remove(&conn) {
            inbox.end(End::Overflow);
        }
        st.core.close(conn);
    }

    fn link_closed(&self, st: &mut State, reason: LinkError) {
        log::debug!("fastway endpoint: link closed: {reason}");
        st.link_error = Some(reason);
        st.incoming.clear();
        st.conns.clear();
        st.dials.clear();
        if reason == LinkError::Shutdown {
            // The writer flushes the queued Close frames, then cuts the socket; the timer bounds it.
            st.close_deadline = Some(Instant::now() + FLUSH_TIMEOUT);
            if let Some(snet) = &mut st.snet {
                // Nothing to flush through a link that is down: stop reconnecting now.
                snet.end_unless_up();
            }
        } else {
            self.cut_locked(st);
        }
        self.accept_cv.notify_all();
        self.closed_cv.notify_all();
        self.drained_cv.notify_all();
        self.writer_cv.notify_all();
        self.timer_cv.notify_all();
        self.snet_cv.notify_all();
    }

    // ----- user-facing waits ------------------------------------------------------------------

    /// Blocks until an incoming vconn is queued, the link ends, or `deadline` passes (`Ok(None)`).
    pub(crate) fn next_incoming(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<(u32, u32, Arc<Inbox>)>, LinkError> {
        let mut st = self.lock();
        loop {
            if let Some(incoming) = st.incoming.pop_front() {
                return Ok(Some(incoming));
            }
            if let Some(reason) = st.link_error {
                return Err(reason);
            }
            st = match deadline {
                None => self.wait(&self.accept_cv, st),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(None);
                    }
                    self.wait_for(&self.accept_cv, st, deadline - now)
                }
            };
        }
    }

    /// Blocks until the link ends or `deadline` passes (`None`).
    pub(crate) fn wait_closed(&self, deadline: Option<Instant>) -> Option<LinkError> {
        let mut st = self.lock();
        loop {
            if let Some(reason) = st.link_error {
                return Some(reason);
            }
            st = match deadline {
                None => self.wait(&self.closed_cv, st),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return None;
                    }
                    self.wait_for(&self.closed_cv, st, deadline - now)
                }
            };
        }
    }

    /// Blocks while more than [`SEND_HIGH_WATER`] bytes wait for the socket and `conn` is still open;
    /// returns the locked state to send with.
    pub(crate) fn lock_for_send(&self, conn: u32) -> MutexGuard<'_, State> {
        let mut st = self.lock();
        while st.link_error.is_none()
            && st.core.transmit_len() + st.in_flight > SEND_HIGH_WATER
            && st.conns.contains_key(&conn)
        {
            st.send_waiters += 1;
            st = self.wait(&self.drained_cv, st);
            st.send_waiters -= 1;
        }
        st
    }

    // ----- threads ------------------------------------------------------------------------------

    fn reader_loop(&self, mut stream: TcpStream, mut buf: BytesMut) {
        if !buf.is_empty() && !self.feed(&mut buf) {
            return;
        }
        // The kernel writes into `scratch`; only what arrived is copied into `buf`, whose frozen views
        // become the messages (and whose memory `BytesMut` reuses once they are dropped). Reading
        // straight into `buf` would need zero-filling its spare room before every read.
        let mut scratch = vec![0u8; READ_CHUNK];
        loop {
            match stream.read(&mut scratch) {
                Ok(n) if n > 0 => {
                    buf.extend_from_slice(&scratch[..n]);
                    if !self.feed(&mut buf) {
                        return;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                other => {
                    if let Err(error) = other {
                        log::debug!("fastway endpoint: read failed: {error}");
                    }
                    let mut st = self.lock();
                    st.core.handle_link_closed();
                    self.after(&mut st);
                    return;
                }
            }
        }
    }

    /// Feeds read bytes to the core; `false` once the link is closed.
    fn feed(&self, buf: &mut BytesMut) -> bool {
        let mut st = self.lock();
        let result = st.core.handle_input(buf, Instant::now());
        if let Err(error) = result {
            log::debug!("fastway endpoint: {error}");
        }
        self.after(&mut st);
        result.is_ok()
    }

    fn writer_loop(&self, mut stream: TcpStream) {
        let mut batch: Vec<Bytes> = Vec::new();
        loop {
            {
                let mut st = self.lock();
                st.in_flight = 0;
                if st.send_waiters > 0 {
                    self.drained_cv.notify_all();
                }
                loop {
                    while let Some(bytes) = st.core.poll_transmit() {
                        batch.push(bytes);
                    }
                    if !batch.is_empty() {
                        break;
                    }
                    if st.link_error.is_some() {
                        st.writer_done = true;
                        self.timer_cv.notify_all();
                        drop(st);
                        self.cut_socket();
                        return;
                    }
                    st.writer_idle = true;
                    st = self.wait(&self.writer_cv, st);
                }
                st.writer_idle = false;
                st.in_flight = batch.iter().map(Bytes::len).sum();
            }
            if let Err(error) = write_all_vectored(&mut stream, &batch) {
                log::debug!("fastway endpoint: write failed: {error}");
                let mut st = self.lock();
                st.in_flight = 0;
                st.core.handle_link_closed();
                self.after(&mut st);
                st.writer_done = true;
                self.timer_cv.notify_all();
                drop(st);
                self.cut_socket();
                return;
            }
            batch.clear();
        }
    }

    fn timer_loop(&self) {
        let mut st = self.lock();
        loop {
            let now = Instant::now();
            if st.link_error.is_some() {
                match st.close_deadline {
                    Some(deadline) if !st.writer_done && now < deadline => {
                        st = self.wait_for(&self.timer_cv, st, deadline - now);
                        continue;
                    }
                    _ => break,
                }
            }
            match st.core.poll_timeout() {
                Some(at) if at <= now => {
                    st.core.handle_timeout(now);
                    self.after(&mut st);
                }
                Some(at) => {
                    st.timer_at = Some(at);
                    st.timer_waiting = true;
                    st = self.wait_for(&self.timer_cv, st, at - now);
                    st.timer_waiting = false;
                }
                None => {
                    st.timer_at = None;
                    st.timer_waiting = true;
                    st = self.wait(&self.timer_cv, st);
                    st.timer_waiting = false;
                }
            }
        }
        drop(st);
        self.cut_socket();
    }
}

/// Writes every buffer, in order, with as few (vectored) write calls as the kernel allows.
fn write_all_vectored(stream: &mut TcpStream, bufs: &[Bytes]) -> io::Result<()> {
    let (mut index, mut offset) = (0, 0);
    while index < bufs.len() {
        let written = if bufs.len() - index == 1 {
            stream.write(&bufs[index][offset..])
        } else {
            let mut slices = Vec::with_capacity((bufs.len() - index).min(MAX_IOV));
            slices.push(IoSlice::new(&bufs[index][offset..]));
            for buf in bufs[index + 1..].iter().take(MAX_IOV - 1) {
                slices.push(IoSlice::new(buf));
            }
            stream.write_vectored(&slices)
        };
        let mut written = match written {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        while written > 0 && index < bufs.len() {
            let left = bufs[index].len() - offset;
            if written >= left {
                written -= left;
                index += 1;
                offset = 0;
            } else {
                offset += written;
                written = 0;
            }
        }
        // Skip empty buffers so that a trailing empty one cannot trigger WriteZero.
        while index < bufs.len() && bufs[index].len() == offset {
            index += 1;
            offset = 0;
        }
    }
    Ok(())
}
