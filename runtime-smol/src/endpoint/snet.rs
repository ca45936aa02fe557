//! The endpoint over snet (SNET.md): the core's [`SnetClient`] under the core endpoint, and the
//! sockets it asks for.
//!
//! The adapter holds no protocol logic: [`SnetClient`] decides when to reconnect, what to resend and
//! when to give up; this module opens and closes sockets when told and moves bytes.
//!
//! * **connect** ([`handshake`]): the first socket runs the snet handshake, then (game server) the
//!   gateway's auth challenge inside the snet stream. Any failure here is a [`ConnectError`]; the first
//!   connection is not retried.
//! * **reader** (one task per socket): socket bytes go through [`SnetClient::handle_input`]; the
//!   decrypted stream goes to the core endpoint. EOF or an error calls [`SnetClient::socket_closed`].
//! * **writer** (one task per link, so no wake-up is lost across sockets): first whatever
//!   [`SnetClient::poll_transmit`] yields (handshake, proof, retransmission), then, only while
//!   [`SnetClient::is_up`], the core endpoint's bytes through [`SnetClient::encrypt`]. While the link is
//!   down the core's bytes stay in the core (its queue is what back-pressure watches), so nothing is
//!   lost or reordered.
//! * **timer** (shared with plain links, `driver.rs`): also runs [`SnetClient::handle_timeout`] and acts
//!   on its [`SocketRequest`]: `Open` dials the same address again, `Abandon` closes the attempt.
//!
//! Every socket belongs to a *generation*; a task whose generation is no longer current does nothing
//! but exit, so a late EOF on a replaced socket can never disturb the one that replaced it.
//!
//! When the snet session gives up (wait timeout, refused reconnect, ...), the core endpoint's link ends
//! with `LinkError::SocketClosed` and [`Endpoint::snet_close_reason`](super::Endpoint::snet_close_reason)
//! says why.

use super::ConnectError;
use super::driver::{self, CLOSE_FLUSH_TIMEOUT, READ_CHUNK, Shared, State, Wakes, write_all};
use bytes::{Bytes, BytesMut};
use fastway_core::endpoint::{Endpoint as Core, EndpointConfig, Role};
use fastway_core::snet::{HandshakeError, SnetClient, SnetClientError, SnetConfig, SocketRequest};
use getrandom::SysRng;
use rand_core::UnwrapErr;
use smol::channel::Receiver;
use smol::{Async, Timer};
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The snet stream of one endpoint link: the client machine and its current socket. Lives in the
/// driver's [`State`], behind the same lock as the core endpoint.
pub(crate) struct SnetLink {
    client: SnetClient,
    /// Decrypted stream bytes the core has not consumed yet (a partial frame); survives reconnects.
    plain: BytesMut,
    /// The current socket's generation; bumped whenever the socket is dropped or an attempt starts.
    generation: u64,
    /// The current socket, once connected (none while down or while an attempt connects).
    socket: Option<Arc<Async<TcpStream>>>,
    /// Where reconnect attempts go: the address the first connection reached.
    peer_addr: SocketAddr,
    /// Bound on one reconnect attempt's TCP connect.
    connect_timeout: Option<Duration>,
    /// The link is over and its socket closed: nothing runs any more.
    finished: bool,
}

impl SnetLink {
    fn new(
        client: SnetClient,
        plain: BytesMut,
        peer_addr: SocketAddr,
        config: &SnetConfig,
        connect_timeout: Option<Duration>,
    ) -> Self {
        let handshake = (!config.handshake_timeout.is_zero()).then_some(config.handshake_timeout);
        let connect_timeout = match (connect_timeout, handshake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Self {
            client,
            plain,
            generation: 0,
            socket: None,
            peer_addr,
            connect_timeout,
            finished: false,
        }
    }

    /// When the reconnect policy next needs the timer.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        if self.finished {
            None
        } else {
            self.client.poll_timeout()
        }
    }

    /// Why the snet session ended, once it has.
    pub(crate) fn close_reason(&self) -> Option<SnetClientError> {
        self.client.close_reason()
    }

    /// Successful reconnects so far.
    pub(crate) fn reconnects(&self) -> u64 {
        self.client.reconnects()
    }

    /// Closes the current socket (if any) and retires its generation.
    fn drop_socket(&mut self) {
        if let Some(socket) = self.socket.take() {
            let _ = socket.get_ref().shutdown(Shutdown::Both);
        }
        self.generation += 1;
    }

    /// The core endpoint's pings went unanswered (`PingTimeoutPolicy::KeepOpen`): the socket is
    /// presumed dead although it reported nothing, so drop it and let snet reconnect.
    pub(super) fn force_reconnect(&mut self, shared: &Shared) {
        if self.finished {
            return;
        }
        if self.client.force_reconnect(Instant::now()) {
            log::info!("fastway endpoint: snet: no Ping answer, reconnecting on a new socket");
            self.drop_socket();
            shared.wake_timer();
        }
    }
}

/// Connect phase on the first socket: the snet handshake, then (game server) the gateway's auth
/// challenge and answer inside the stream. Returns the link, with any stream bytes already received.
///
/// The snet part is bounded by the snet `handshake_timeout`, the auth part by the core's 5 s
/// challenge deadline (which starts once the snet stream is up).
pub(super) async fn handshake(
    socket: &Async<TcpStream>,
    role: Role,
    core_config: EndpointConfig,
    config: SnetConfig,
    connect_timeout: Option<Duration>,
    peer_addr: SocketAddr,
) -> Result<(Core, SnetLink), ConnectError> {
    let mut client = SnetClient::new(config, Instant::now(), &mut UnwrapErr(SysRng));
    let mut core: Option<Core> = None;
    let mut raw = BytesMut::new();
    let mut plain = BytesMut::new();
    let mut scratch = vec![0u8; 4096];
    loop {
        let mut out = Vec::new();
        while let Some(bytes) = client.poll_transmit() {
            out.extend_from_slice(&bytes);
        }
        if client.is_up() && core.is_none() {
            core = Some(Core::new(
                role.clone(),
                core_config.clone(),
                Instant::now(),
            )?);
        }
        let ready = core.as_mut().filter(|core| core.is_ready());
        let done = match ready {
            Some(core) => {
                // The auth answer (game server) goes out through the stream.
                let mut stream = Vec::new();
                while let Some(bytes) = core.poll_transmit() {
                    stream.extend_from_slice(&bytes);
                }
                if !stream.is_empty() {
                    client
                        .encrypt(&mut stream)
                        .map_err(|error| ConnectError::Handshake(io::Error::other(error)))?;
                    out.extend_from_slice(&stream);
                }
                true
            }
            None => false,
        };
        if !out.is_empty() {
            write_all(socket, &[Bytes::from(out)])
                .await
                .map_err(ConnectError::Handshake)?;
        }
        if done {
            break;
        }
        // Waiting for the snet answer, or (game server) for the auth challenge.
        let deadline = match &core {
            None => client.poll_timeout(),
            Some(core) => core.poll_timeout(),
        };
        let read = async { socket.read_with(|s| (&*s).read(&mut scratch)).await };
        let read = match deadline {
            None => read.await.map(Some),
            Some(deadline) => {
                smol::future::or(async { read.await.map(Some) }, async {
                    Timer::at(deadline).await;
                    Ok(None)
                })
                .await
            }
        };
        let n = match read {
            Ok(Some(0)) => {
                return Err(ConnectError::Handshake(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the gateway closed the connection during the snet handshake",
                )));
            }
            Ok(Some(n)) => n,
            Ok(None) if core.is_none() => {
                return Err(ConnectError::Snet(SnetClientError::Handshake(
                    HandshakeError::Timeout,
                )));
            }
            Ok(None) => return Err(ConnectError::HandshakeTimeout),
            Err(error) => return Err(ConnectError::Handshake(error)),
        };
        raw.extend_from_slice(&scratch[..n]);
        let now = Instant::now();
        client
            .handle_input(&mut raw, &mut plain, now)
            .map_err(ConnectError::Snet)?;
        if let Some(core) = core.as_mut().filter(|core| !core.is_ready()) {
            core.handle_input(&mut plain, now)
                .map_err(|error| ConnectError::Handshake(io::Error::other(error.to_string())))?;
        }
    }
    let core = match core {
        Some(core) => core,
        // Unreachable: the loop only ends once the core exists.
        None => Core::new(role, core_config, Instant::now())?,
    };
    let link = SnetLink::new(client, plain, peer_addr, &config, connect_timeout);
    Ok((core, link))
}

/// Starts the tasks of an snet link whose first socket is `socket` (after [`handshake`]).
pub(super) fn spawn_driver(shared: &Arc<Shared>, wakes: Wakes, socket: Async<TcpStream>) {
    let socket = Arc::new(socket);
    let generation = {
        let mut state = shared.lock();
        let State { core, snet, .. } = &mut *state;
        let Some(link) = snet.as_mut() else {
            return;
        };
        link.socket = Some(socket.clone());
        // Stream bytes that came with the handshake.
        if !link.plain.is_empty()
            && let Err(error) = core.handle_input(&mut link.plain, Instant::now())
        {
            log::debug!("fastway endpoint: input rejected: {error}");
        }
        let generation = link.generation;
        shared.after_call(&mut state);
        generation
    };
    smol::spawn(reader(shared.clone(), generation, socket)).detach();
    smol::spawn(writer(shared.clone(), wakes.writer)).detach();
    smol::spawn(driver::timer(shared.clone(), wakes.timer)).detach();
    shared.wake_writer();
}

/// The current link if `generation` is still its socket's.
fn current(state: &mut State, generation: u64) -> Option<&mut SnetLink> {
    state
        .snet
        .as_mut()
        .filter(|link| !link.finished && link.generation == generation)
}

/// If the snet session has ended for good, ends the core endpoint's link too (its vconns close, dials
/// fail, `LinkClosed`); the writer then closes the socket.
fn end_if_closed(state: &mut State) {
    let Some(reason) = state.snet.as_ref().and_then(SnetLink::close_reason) else {
        return;
    };
    if !state.core.is_closed() {
        log::warn!("fastway endpoint: link to the gateway ended: {reason}");
        state.core.handle_link_closed();
    }
}

/// The socket of `generation` failed or closed (read EOF/error, write error, failed connect).
fn socket_failed(shared: &Shared, state: &mut State, generation: u64, error: &io::Error) {
    let Some(link) = current(state, generation) else {
        return;
    };
    log::debug!("fastway endpoint: snet socket lost ({error}), reconnecting");
    link.client.socket_closed(Instant::now());
    link.drop_socket();
    end_if_closed(state);
    shared.after_call(state);
    shared.wake_writer();
}

/// Runs snet's reconnect policy at the timer (called by the shared timer task; no-op on plain links).
pub(super) fn handle_timeout(shared: &Arc<Shared>, state: &mut State, now: Instant) {
    let Some(link) = state.snet.as_mut().filter(|link| !link.finished) else {
        return;
    };
    match link.client.handle_timeout(now) {
        SocketRequest::None => {}
        SocketRequest::Abandon => {
            log::debug!("fastway endpoint: snet reconnect attempt timed out");
            link.drop_socket();
        }
        SocketRequest::Open => {
            link.drop_socket();
            let attempt = open_socket(
                shared.clone(),
                link.generation,
                link.peer_addr,
                link.connect_timeout,
            );
            smol::spawn(attempt).detach();
        }
    }
    end_if_closed(state);
    shared.wake_writer();
}

/// One reconnect attempt's TCP connect; on success the socket becomes the current one (if the attempt
/// is still current) and the writer sends snet's reconnect request.
async fn open_socket(
    shared: Arc<Shared>,
    generation: u64,
    addr: SocketAddr,
    timeout: Option<Duration>,
) {
    let connect = async { Async::<TcpStream>::connect(addr).await };
    let result = match timeout {
        None => connect.await,
        Some(timeout) => {
            smol::future::or(connect, async {
                Timer::after(timeout).await;
                Err(io::ErrorKind::TimedOut.into())
            })
            .await
        }
    };
    let mut state = shared.lock();
    let Some(link) = current(&mut state, generation) else {
        return;
    };
    match result {
        Ok(socket) => {
            let _ = socket.get_ref().set_nodelay(true);
            let socket = Arc::new(socket);
            link.socket = Some(socket.clone());
            smol::spawn(reader(shared.clone(), generation, socket)).detach();
            shared.wake_writer();
        }
        Err(error) => socket_failed(&shared, &mut state, generation, &error),
    }
}

/// Reads one socket until it fails or is replaced.
async fn reader(shared: Arc<Shared>, generation: u64, socket: Arc<Async<TcpStream>>) {
    let mut raw = BytesMut::new();
    let mut scratch = vec![0u8; READ_CHUNK];
    loop {
        let read = socket.read_with(|s| (&*s).read(&mut scratch)).await;
        let mut state = shared.lock();
        let n = match read {
            Ok(0) => {
                let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
                socket_failed(&shared, &mut state, generation, &eof);
                return;
            }
            Err(error) => {
                socket_failed(&shared, &mut state, generation, &error);
                return;
            }
            Ok(n) => n,
        };
        if !stream_input(&mut state, generation, &mut raw, &scratch[..n]) {
            end_if_closed(&mut state);
            shared.after_call(&mut state);
            shared.wake_writer();
            return;
        }
        shared.after_call(&mut state);
        // snet may have bytes to write now (a reconnect's proof and retransmission).
        shared.wake_writer();
    }
}

/// Feeds bytes of the socket of `generation` through snet into the core. Returns whether the reader
/// should go on.
fn stream_input(state: &mut State, generation: u64, raw: &mut BytesMut, bytes: &[u8]) -> bool {
    let now = Instant::now();
    let State { core, snet, .. } = state;
    let Some(link) = snet
        .as_mut()
        .filter(|link| !link.finished && link.generation == generation)
    else {
        return false;
    };
    raw.extend_from_slice(bytes);
    let was_up = link.client.is_up();
    if let Err(error) = link.client.handle_input(raw, &mut link.plain, now) {
        log::debug!("fastway endpoint: snet stream ended: {error}");
        link.drop_socket();
        return false;
    }
    if !was_up && link.client.is_up() {
        log::info!(
            "fastway endpoint: snet reconnected (session {:?}, reconnect #{})",
            link.client.conn_id(),
            link.client.reconnects()
        );
    }
    if !link.plain.is_empty()
        && !core.is_closed()
        && let Err(error) = core.handle_input(&mut link.plain, now)
    {
        log::debug!("fastway endpoint: input rejected: {error}");
    }
    !core.is_closed()
}

/// What the writer does next.
enum Step {
    /// Write the batch to this socket (of this generation).
    Write(u64, Arc<Async<TcpStream>>),
    /// Nothing to write: wait for a wake-up.
    Wait,
    /// The link is over: close everything.
    Finish,
}

/// Collects the next batch under the lock: snet's own bytes first, then (only while the link is up)
/// the core's bytes, encrypted.
fn next_batch(state: &mut State, batch: &mut Vec<Bytes>) -> Step {
    let core_closed = state.core.is_closed();
    let Some(link) = state.snet.as_ref() else {
        return Step::Finish;
    };
    let up = link.client.is_up();
    if link.finished || (core_closed && !up) {
        // Nothing more can reach the gateway (Close frames of a shutdown during an outage are lost).
        return Step::Finish;
    }
    let Some(socket) = link.socket.clone() else {
        return Step::Wait;
    };
    let generation = link.generation;
    let mut stream = if up {
        state.take_transmit()
    } else {
        Vec::new()
    };
    let Some(link) = state.snet.as_mut() else {
        return Step::Finish;
    };
    while let Some(bytes) = link.client.poll_transmit() {
        batch.push(bytes);
    }
    if !stream.is_empty() {
        if let Err(error) = link.client.encrypt(&mut stream) {
            // Cannot happen while the link is up; if it does, end the link rather than lose bytes.
            log::error!("fastway endpoint: snet refused outbound bytes: {error}");
            return Step::Finish;
        }
        batch.push(Bytes::from(stream));
    }
    if !batch.is_empty() {
        Step::Write(generation, socket)
    } else if core_closed {
        Step::Finish
    } else {
        Step::Wait
    }
}

/// The link's writer: one task for all its sockets.
async fn writer(shared: Arc<Shared>, wake: Receiver<()>) {
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let step = next_batch(&mut shared.lock(), &mut batch);
        match step {
            Step::Write(generation, socket) => {
                // Once the link has ended, a write gets at most CLOSE_FLUSH_TIMEOUT more.
                let written = smol::future::or(write_all(&socket, &batch), async {
                    let _ = shared.link_closed_rx.recv().await;
                    Timer::after(CLOSE_FLUSH_TIMEOUT).await;
                    Err(io::ErrorKind::TimedOut.into())
                })
                .await;
                batch.clear();
                if let Err(error) = written {
                    let mut state = shared.lock();
                    if state.core.is_closed() {
                        break;
                    }
                    // The bytes are in snet's retransmission buffer: a reconnect resends them.
                    socket_failed(&shared, &mut state, generation, &error);
                }
            }
            Step::Wait => {
                if wake.recv().await.is_err() {
                    break;
                }
            }
            Step::Finish => break,
        }
    }
    let mut state = shared.lock();
    if let Some(link) = state.snet.as_mut() {
        link.finished = true;
        link.client.close();
        link.drop_socket();
    }
    state.core.handle_link_closed();
    shared.dispatch(&mut state);
    state.closed_tx = None;
    drop(state);
    shared.wake_timer();
}
