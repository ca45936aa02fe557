//! The driver over snet: the link is an [`SnetClient`] stream that survives TCP reconnects.
//!
//! The threads keep their roles; only the reader and the writer loops differ from plain TCP:
//!
//! * **reader**: reads the current socket, feeds it to [`SnetClient::handle_input`] and the
//!   decrypted stream to the core. When the socket fails it reports it
//!   ([`SnetClient::socket_closed`]) and runs the reconnect loop itself: it sleeps until
//!   [`SnetClient::poll_timeout`], calls [`SnetClient::handle_timeout`], opens a new socket when told
//!   and reads it. Handshake deadlines are read timeouts. When the client gives up (wait timeout,
//!   refused reconnect…) it ends the core's link.
//! * **writer**: writes the client's own bytes (handshake, proof, retransmission) first, then, only
//!   while the link is up, takes the core's bytes, encrypts them under the lock (in stream order) and
//!   writes them. While the link is down it takes nothing: the core keeps the bytes queued, so
//!   back-pressure and ordering stay the core's. A write error reports the socket lost; the reader
//!   then reconnects.
//!
//! Each socket has a generation; bytes taken for one socket are never written to another. Bytes
//! encrypted for a socket that died before they were written are not lost: the client keeps them
//! and retransmits what the gateway did not receive after the reconnect.
//!
//! A ping timeout (core [`Event::PingTimeout`](fastway_core::endpoint::Event::PingTimeout), with
//! [`PingTimeoutPolicy::KeepOpen`](fastway_core::endpoint::PingTimeoutPolicy::KeepOpen)) drops the
//! current socket through [`SnetClient::force_reconnect`]: a silent link is treated as broken.

use super::{READ_CHUNK, Shared, State, write_all_vectored};
use bytes::{Bytes, BytesMut};
use fastway_core::snet::{SnetClient, SnetClientError, SocketRequest};
use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The snet side of the shared state: the client machine and its current socket.
pub(crate) struct SnetLink {
    client: SnetClient,
    /// Where reconnects go: the address of the first connection.
    addr: SocketAddr,
    /// Timeout of a reconnect's TCP connect.
    connect_timeout: Option<Duration>,
    /// Generation of the current socket, raised by every reconnect.
    generation: u64,
    /// The current socket (the shared handle used for `shutdown` and cloned by the writer); `None`
    /// while the link has no socket, whose loss was then already reported to the client.
    socket: Option<TcpStream>,
    /// The client's own bytes for the current socket, to write before any stream byte.
    control: VecDeque<Bytes>,
    /// Stream bytes taken from the core whose encryption failed (cannot happen while the link is up;
    /// kept rather than lost).
    held: VecDeque<Bytes>,
    /// Most stream bytes the writer encrypts for one batch: the client's retransmission buffer, so
    /// that one batch lost with its socket can always be resent.
    batch_limit: usize,
}

impl SnetLink {
    /// The stream of `client` (its handshake done) on `socket`, connected to `addr`.
    pub(crate) fn new(
        client: SnetClient,
        socket: TcpStream,
        addr: SocketAddr,
        connect_timeout: Option<Duration>,
        batch_limit: usize,
    ) -> Self {
        let mut link = Self {
            client,
            addr,
            connect_timeout,
            generation: 0,
            socket: Some(socket),
            control: VecDeque::new(),
            held: VecDeque::new(),
            batch_limit: batch_limit.max(1),
        };
        link.pull_control();
        link
    }

    /// Why the snet stream ended for good, once it has; `link_over` (the core's link has ended)
    /// counts as a local close while the writer still flushes.
    pub(crate) fn close_reason(&self, link_over: bool) -> Option<SnetClientError> {
        self.client
            .close_reason()
            .or(link_over.then_some(SnetClientError::Closed(
                fastway_core::snet::CloseReason::Local,
            )))
    }

    /// How many reconnects have brought the stream back up.
    pub(crate) fn reconnects(&self) -> u64 {
        self.client.reconnects()
    }

    /// Whether the writer has something to do on the current socket.
    pub(super) fn wants_write(&self, core_queued: usize) -> bool {
        self.socket.is_some()
            && (!self.control.is_empty()
                || (self.client.is_up() && (core_queued > 0 || !self.held.is_empty())))
    }

    /// The core's pings went unanswered: drop the socket and reconnect.
    pub(super) fn ping_timeout(&mut self, now: Instant) {
        if self.client.force_reconnect(now) {
            log::warn!(
                "fastway endpoint: the gateway did not answer a Ping; reconnecting the snet link"
            );
            self.drop_socket();
        }
    }

    /// The link is over: no more reconnects, the socket is shut.
    pub(super) fn end(&mut self) {
        self.client.close();
        self.drop_socket();
    }

    /// After a graceful close: ends the stream now if there is no link to flush the last frames
    /// through.
    pub(super) fn end_unless_up(&mut self) {
        if !self.client.is_up() || self.socket.is_none() {
            self.end();
        }
    }

    /// The socket of `generation` failed: tells the client (once) and shuts it.
    fn socket_failed(&mut self, generation: u64, now: Instant) {
        if self.generation == generation && self.socket.is_some() {
            self.client.socket_closed(now);
            self.drop_socket();
        }
    }

    /// Whether `generation`'s socket is still the live one.
    fn is_current(&self, generation: u64) -> bool {
        self.generation == generation && self.socket.is_some()
    }

    fn drop_socket(&mut self) {
        self.control.clear();
        if let Some(socket) = self.socket.take() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Moves the client's pending bytes for the current socket into `control`.
    fn pull_control(&mut self) {
        while let Some(bytes) = self.client.poll_transmit() {
            if self.socket.is_some() {
                self.control.push_back(bytes);
            }
        }
    }
}

/// What the reader does after its socket ended.
enum Next {
    /// Reconnect.
    Reconnect,
    /// The link is over: the thread ends.
    Stop,
}

impl Shared {
    // ----- reader ------------------------------------------------------------------------------

    /// The reader over snet: reads `first`, then every socket the reconnects open, until the link
    /// ends. `plain` holds stream bytes decrypted during the handshake.
    pub(super) fn snet_reader_loop(&self, first: TcpStream, mut plain: BytesMut) {
        if !plain.is_empty() && !self.feed(&mut plain) {
            return;
        }
        let mut scratch = vec![0u8; READ_CHUNK];
        let mut current = Some((first, 0));
        loop {
            let (stream, generation) = match current.take() {
                Some(socket) => socket,
                None => match self.snet_reconnect() {
                    Some(socket) => socket,
                    None => return,
                },
            };
            match self.snet_read(&stream, generation, &mut scratch, &mut plain) {
                Next::Reconnect => {}
                Next::Stop => return,
            }
        }
    }

    /// Reads one socket until it ends.
    fn snet_read(
        &self,
        mut stream: &TcpStream,
        generation: u64,
        scratch: &mut [u8],
        plain: &mut BytesMut,
    ) -> Next {
        let mut raw = BytesMut::new();
        let mut timeout = Some(Duration::ZERO); // forces the first set_read_timeout
        let mut deadline = self
            .lock()
            .snet
            .as_ref()
            .and_then(|s| s.client.poll_timeout());
        loop {
            let wanted = deadline.map(|at| {
                at.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1))
            });
            if wanted != timeout {
                if stream.set_read_timeout(wanted).is_err() {
                    return self.snet_socket_failed(generation);
                }
                timeout = wanted;
            }
            let read = stream.read(scratch);
            let mut st = self.lock();
            if st.link_error.is_some() {
                return Next::Stop;
            }
            let Some(snet) = st.snet.as_mut() else {
                return Next::Stop;
            };
            if !snet.is_current(generation) {
                // Another thread reported this socket lost (write error, ping timeout).
                return Next::Reconnect;
            }
            let now = Instant::now();
            match read {
                Ok(n) if n > 0 => {
                    raw.extend_from_slice(&scratch[..n]);
                    let result = snet.client.handle_input(&mut raw, plain, now);
                    snet.pull_control();
                    if let Err(error) = result {
                        return self.snet_gave_up(&mut st, error);
                    }
                    if !plain.is_empty() {
                        if let Err(error) = st.core.handle_input(plain, now) {
                            log::debug!("fastway endpoint: {error}");
                            self.after(&mut st);
                            return Next::Stop;
                        }
                    }
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    if snet.client.poll_timeout().is_some_and(|at| at <= now) {
                        let request = snet.client.handle_timeout(now);
                        snet.pull_control();
                        if let Some(error) = snet.client.close_reason() {
                            return self.snet_gave_up(&mut st, error);
                        }
                        if request == SocketRequest::Abandon {
                            log::debug!("fastway endpoint: snet reconnect attempt timed out");
                            snet.drop_socket();
                            self.after(&mut st);
                            return Next::Reconnect;
                        }
                    }
                }
                other => {
                    match other {
                        Err(error) => log::debug!("fastway endpoint: snet read failed: {error}"),
                        Ok(_) => log::debug!("fastway endpoint: the snet socket was closed"),
                    }
                    snet.socket_failed(generation, now);
                    if let Some(error) = snet.client.close_reason() {
                        return self.snet_gave_up(&mut st, error);
                    }
                    self.after(&mut st);
                    return Next::Reconnect;
                }
            }
            deadline = st.snet.as_ref().and_then(|s| s.client.poll_timeout());
            self.after(&mut st);
        }
    }

    /// The socket of `generation` cannot be used (a socket option failed).
    fn snet_socket_failed(&self, generation: u64) -> Next {
        let mut st = self.lock();
        if st.link_error.is_some() {
            return Next::Stop;
        }
        let Some(snet) = st.snet.as_mut() else {
            return Next::Stop;
        };
        snet.socket_failed(generation, Instant::now());
        self.after(&mut st);
        Next::Reconnect
    }

    /// The snet stream ended for good: the core's link is over.
    fn snet_gave_up(&self, st: &mut State, error: SnetClientError) -> Next {
        log::warn!("fastway endpoint: snet gave up: {error}");
        st.core.handle_link_closed();
        self.after(st);
        Next::Stop
    }

    /// Waits for the next reconnect attempt and opens its socket; `None` once the link is over.
    fn snet_reconnect(&self) -> Option<(TcpStream, u64)> {
        let mut st = self.lock();
        loop {
            if st.link_error.is_some() {
                return None;
            }
            let snet = st.snet.as_mut()?;
            if let Some(error) = snet.client.close_reason() {
                self.snet_gave_up(&mut st, error);
                return None;
            }
            let now = Instant::now();
            match snet.client.poll_timeout() {
                Some(at) if at > now => {
                    st = self.wait_for(&self.snet_cv, st, at - now);
                    continue;
                }
                Some(_) => {}
                None => {
                    st = self.wait(&self.snet_cv, st);
                    continue;
                }
            }
            if snet.client.handle_timeout(now) != SocketRequest::Open {
                if snet.client.poll_timeout().is_some_and(|at| at <= now) {
                    // Nothing was due after all: never spin on a deadline that does not move.
                    st = self.wait_for(&self.snet_cv, st, Duration::from_millis(1));
                }
                continue;
            }
            let (addr, timeout) = (snet.addr, snet.connect_timeout);
            drop(st);
            log::debug!("fastway endpoint: snet reconnecting to {addr}");
            let connected = connect(addr, timeout);
            st = self.lock();
            if st.link_error.is_some() {
                return None;
            }
            let snet = st.snet.as_mut()?;
            match connected {
                Ok((stream, handle)) => {
                    snet.generation += 1;
                    snet.socket = Some(handle);
                    snet.pull_control();
                    let generation = snet.generation;
                    self.after(&mut st);
                    return Some((stream, generation));
                }
                Err(error) => {
                    log::debug!("fastway endpoint: snet reconnect to {addr} failed: {error}");
                    snet.client.socket_closed(Instant::now());
                }
            }
        }
    }

    // ----- writer ------------------------------------------------------------------------------

    /// The writer over snet (see the module docs).
    pub(super) fn snet_writer_loop(&self) {
        let mut batch: Vec<Bytes> = Vec::new();
        let mut stream: Option<(u64, TcpStream)> = None;
        loop {
            let generation = {
                let mut st = self.lock();
                st.in_flight = 0;
                if st.send_waiters > 0 {
                    self.drained_cv.notify_all();
                }
                let generation = loop {
                    if let Some(generation) = Self::snet_gather(&mut st, &mut batch) {
                        break generation;
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
                };
                st.writer_idle = false;
                st.in_flight = batch.iter().map(Bytes::len).sum();
                if stream.as_ref().is_none_or(|(g, _)| *g != generation) {
                    stream = st
                        .snet
                        .as_ref()
                        .and_then(|s| s.socket.as_ref())
                        .and_then(|socket| socket.try_clone().ok())
                        .map(|socket| (generation, socket));
                }
                generation
            };
            let written = match &mut stream {
                Some((_, socket)) => write_all_vectored(socket, &batch),
                None => Err(io::Error::other("could not clone the snet socket")),
            };
            batch.clear();
            if let Err(error) = written {
                let mut st = self.lock();
                st.in_flight = 0;
                if let Some(snet) = st.snet.as_mut() {
                    if snet.is_current(generation) {
                        log::debug!("fastway endpoint: snet write failed: {error}");
                        snet.socket_failed(generation, Instant::now());
                        self.after(&mut st);
                    }
                }
                stream = None;
            }
        }
    }

    /// Fills `batch` with what the current socket should get next (under the lock): the client's own
    /// bytes, then, while the link is up, the core's bytes encrypted. Returns the socket's generation,
    /// or `None` when there is nothing to write.
    fn snet_gather(st: &mut State, batch: &mut Vec<Bytes>) -> Option<u64> {
        let State { core, snet, .. } = st;
        let snet = snet.as_mut()?;
        snet.socket.as_ref()?;
        batch.extend(snet.control.drain(..));
        if snet.client.is_up() {
            let mut taken = 0;
            while taken < snet.batch_limit {
                let Some(bytes) = snet.held.pop_front().or_else(|| core.poll_transmit()) else {
                    break;
                };
                let mut data = bytes
                    .try_into_mut()
                    .unwrap_or_else(|bytes| BytesMut::from(&bytes[..]));
                if let Err(error) = snet.client.encrypt(&mut data) {
                    log::debug!("fastway endpoint: snet cannot take stream bytes yet: {error}");
                    snet.held.push_front(data.freeze());
                    break;
                }
                taken += data.len();
                batch.push(data.freeze());
            }
        }
        (!batch.is_empty()).then_some(snet.generation)
    }
}

/// Connects a reconnect's socket (TCP_NODELAY on); returns it and a handle on it for the shared
/// state.
fn connect(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<(TcpStream, TcpStream)> {
    let stream = match timeout {
        Some(timeout) => TcpStream::connect_timeout(&addr, timeout)?,
        None => TcpStream::connect(addr)?,
    };
    stream.set_nodelay(true)?;
    let handle = stream.try_clone()?;
    Ok((stream, handle))
}
