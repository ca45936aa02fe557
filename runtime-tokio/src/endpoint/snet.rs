//! The snet link driver: one task that owns the socket of the moment and the core's
//! [`SnetClient`], and moves bytes between the socket, the snet machine and the endpoint core.
//!
//! The adapter holds no protocol logic: it opens a socket when the client asks ([`SocketRequest`]),
//! closes it when told or when it fails, and otherwise only moves bytes:
//!
//! * socket bytes → [`SnetClient::handle_input`] → decrypted stream bytes → the core's
//!   `handle_input`;
//! * the core's `poll_transmit` → [`SnetClient::encrypt`] → the socket, but only while the link is up:
//!   while it is down the bytes stay queued in the core (so `VConn::send`'s back-pressure still
//!   applies); a batch already taken from the core stays held, in order, until the link is up again;
//! * [`SnetClient::poll_transmit`] (handshake, proof) is written before any stream byte on each socket.
//!
//! Bytes encrypted for a socket that dies before they are written are dropped with it: the snet
//! session counted them, keeps them for retransmission and resends what the gateway missed after the
//! reconnect. To keep that amount small, at most [`MAX_OUT`] bytes (and at most half the
//! retransmission buffer) are encrypted ahead of the socket.

use super::driver::{LINGER, Shared, sleep_until};
use super::error::ConnectError;
use bytes::{Buf, Bytes, BytesMut};
use fastway_core::endpoint::LinkError;
use fastway_core::snet::{SnetClient, SnetConfig, SocketRequest};
use getrandom::SysRng;
use rand_core::UnwrapErr;
use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;
/// Most stream bytes encrypted ahead of the socket.
const MAX_OUT: usize = 64 * 1024;
/// Most buffers passed to one vectored write.
const MAX_IOV: usize = 64;

/// A link whose first snet handshake succeeded, handed from `connect` to [`drive`].
pub(crate) struct SnetStart {
    /// The client, up.
    pub(crate) client: SnetClient,
    /// Its first socket.
    pub(crate) stream: TcpStream,
    /// Stream bytes that arrived together with the handshake's answer.
    pub(crate) plain: BytesMut,
    /// Where reconnects go: the address the first socket connected to.
    pub(crate) addr: SocketAddr,
    /// Bound on each reconnect's TCP connect (the snet handshake timeout bounds it too).
    pub(crate) connect_timeout: Option<Duration>,
    /// Most stream bytes encrypted ahead of the socket.
    pub(crate) out_limit: usize,
}

/// Runs the first snet handshake on `stream` (new connection, SNET.md §4). On success the client is
/// up; its proof is still in [`SnetClient::poll_transmit`], for the driver to write first. Returns
/// the stream bytes that came with the answer too. Bounded by `config.handshake_timeout` (if not
/// zero).
pub(crate) async fn handshake(
    stream: &mut TcpStream,
    config: SnetConfig,
) -> Result<(SnetClient, BytesMut), ConnectError> {
    // The key pair needs a CSPRNG; this runs before any lock exists.
    let mut client = SnetClient::new(config, Instant::now(), &mut UnwrapErr(SysRng));
    let mut raw = BytesMut::with_capacity(256);
    let mut plain = BytesMut::new();
    while let Some(bytes) = client.poll_transmit() {
        stream.write_all(&bytes).await?;
    }
    loop {
        if client.is_up() {
            return Ok((client, plain));
        }
        if let Some(reason) = client.close_reason() {
            return Err(ConnectError::Snet(reason));
        }
        let deadline = client.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            ready = stream.readable() => {
                ready?;
                raw.reserve(256);
                match stream.try_read_buf(&mut raw) {
                    Ok(0) => {
                        return Err(ConnectError::Io(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the gateway closed the connection during the snet handshake \
                             (is snet enabled on this port?)",
                        )));
                    }
                    Ok(_) => {
                        // An error closes the client: reported at the top of the loop.
                        let _ = client.handle_input(&mut raw, &mut plain, Instant::now());
                    }
                    Err(error) if is_transient(&error) => {}
                    Err(error) => return Err(ConnectError::Io(error)),
                }
            }
            () = sleep_until(deadline) => {
                // The only request possible here is Abandon (timeout); returning drops the socket.
                let _ = client.handle_timeout(Instant::now());
            }
        }
    }
}

/// A reconnect's TCP connect under way.
type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// The socket side of the driver: the current socket (or the connect of the next one), what is
/// owed to it, and what it delivered but the snet client has not consumed.
struct Socket {
    stream: Option<TcpStream>,
    connecting: Option<Connecting>,
    /// Bytes for the current socket, in order: snet control bytes, then encrypted stream bytes.
    out: VecDeque<Bytes>,
    /// Stream bytes among `out` (encrypted, not yet written).
    out_stream: usize,
    raw: BytesMut,
}

impl Socket {
    /// Forgets the current socket (closing it) or connect, and everything owed to it.
    fn drop_socket(&mut self) {
        self.stream = None;
        self.connecting = None;
        self.out.clear();
        self.out_stream = 0;
        self.raw.clear();
    }

    /// Queues what the snet client wants written before any stream byte.
    fn queue_control(&mut self, client: &mut SnetClient) {
        while let Some(bytes) = client.poll_transmit() {
            if !bytes.is_empty() {
                self.out.push_back(bytes);
            }
        }
    }

    /// Writes as much of `out` as the socket takes now. `Ok(true)` if everything was written.
    fn try_flush(&mut self) -> io::Result<bool> {
        let Some(stream) = &self.stream else {
            return Ok(self.out.is_empty());
        };
        while !self.out.is_empty() {
            let slices: Vec<IoSlice<'_>> = self
                .out
                .iter()
                .take(MAX_IOV)
                .map(|bytes| IoSlice::new(bytes))
                .collect();
            match stream.try_write_vectored(&slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(mut written) => {
                    while written > 0 {
                        let Some(head) = self.out.front_mut() else {
                            break;
                        };
                        if written >= head.len() {
                            written -= head.len();
                            self.out.pop_front();
                        } else {
                            head.advance(written);
                            written = 0;
                        }
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.out_stream = 0;
        Ok(true)
    }
}

/// What woke the driver.
enum Wake {
    Readable(io::Result<()>),
    Writable(io::Result<()>),
    Connected(io::Result<TcpStream>),
    Timeout,
    Core,
}

/// Drives an snet link until the endpoint's link ends (locally, by a protocol error, or because the
/// snet session gave up).
pub(crate) async fn drive(shared: Arc<Shared>, start: SnetStart) {
    let SnetStart {
        mut client,
        stream,
        mut plain,
        addr,
        connect_timeout,
        out_limit,
    } = start;
    let mut socket = Socket {
        stream: Some(stream),
        connecting: None,
        out: VecDeque::new(),
        out_stream: 0,
        raw: BytesMut::with_capacity(READ_CHUNK),
    };
    socket.queue_control(&mut client);
    // Plain bytes taken from the core, not yet encrypted (only while the link was up).
    let mut held: VecDeque<Bytes> = VecDeque::new();
    // Stream bytes encrypted since the last report to the shared state.
    let mut committed: u64 = 0;
    let reason = loop {
        let (closed, reconnect, took) = {
            let mut st = shared.lock();
            st.written += committed;
            if !plain.is_empty() {
                if let Err(error) = st.core.handle_input(&mut plain, Instant::now()) {
                    log::warn!("closing the link to the gateway: {error}");
                }
            }
            let reconnect = std::mem::take(&mut st.snet_reconnect);
            st.snet_reconnects = client.reconnects();
            let mut took = false;
            if client.is_up() && held.is_empty() && st.link_error.is_none() {
                while let Some(bytes) = st.core.poll_transmit() {
                    if !bytes.is_empty() {
                        held.push_back(bytes);
                        took = true;
                    }
                }
            }
            shared.settle(&mut st);
            (st.link_error, reconnect, took)
        };
        if took || committed > 0 {
            shared.drained.notify_waiters();
        }
        committed = 0;
        if let Some(reason) = closed {
            break reason;
        }
        if reconnect && client.force_reconnect(Instant::now()) {
            log::info!("snet: dropping the connection to the gateway and reconnecting");
            socket.drop_socket();
        }
        if let Some(error) = client.close_reason() {
            log::warn!("snet link to the gateway ended: {error}");
            socket.drop_socket();
            let mut st = shared.lock();
            st.snet_error = Some(error);
            st.core.handle_link_closed();
            shared.settle(&mut st);
            continue;
        }
        committed += encrypt_held(&mut client, &mut socket, &mut held, out_limit);
        let wake = {
            let stream = socket.stream.as_ref();
            let want_write = !socket.out.is_empty();
            let connecting = socket.connecting.as_mut();
            let deadline = client.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                ready = readable(stream) => Wake::Readable(ready),
                ready = writable(stream, want_write) => Wake::Writable(ready),
                result = connected(connecting) => Wake::Connected(result),
                () = sleep_until(deadline) => Wake::Timeout,
                // The core's bytes only matter when they can be taken: while the link is down (or a
                // batch is still held) the core keeps them and `settle` keeps waking the writer.
                () = notified(&shared.writer, client.is_up() && held.is_empty()) => Wake::Core,
                () = shared.snet_wake.notified() => Wake::Core,
            }
        };
        match wake {
            Wake::Readable(Err(error)) | Wake::Writable(Err(error)) => {
                lost(&mut client, &mut socket, &error);
            }
            Wake::Readable(Ok(())) => {
                read(&mut client, &mut socket, &mut plain);
            }
            Wake::Writable(Ok(())) => {
                if let Err(error) = socket.try_flush() {
                    lost(&mut client, &mut socket, &error);
                }
            }
            Wake::Connected(Ok(stream)) => {
                socket.connecting = None;
                if let Err(error) = stream.set_nodelay(true) {
                    log::debug!("snet: could not set TCP_NODELAY: {error}");
                }
                log::debug!("snet: reconnected to {addr}, resuming the session");
                socket.stream = Some(stream);
                socket.queue_control(&mut client);
            }
            Wake::Connected(Err(error)) => {
                log::debug!("snet: reconnect to {addr} failed: {error}");
                socket.drop_socket();
                client.socket_closed(Instant::now());
            }
            Wake::Timeout => match client.handle_timeout(Instant::now()) {
                SocketRequest::Open => {
                    socket.drop_socket();
                    socket.connecting = Some(connect(addr, connect_timeout));
                    socket.queue_control(&mut client);
                }
                SocketRequest::Abandon => {
                    log::debug!("snet: a reconnect attempt took too long, abandoning it");
                    socket.drop_socket();
                }
                SocketRequest::None => {}
            },
            Wake::Core => {}
        }
    };
    finish(&shared, client, socket, held, reason).await;
}

/// Encrypts held stream bytes into the socket's queue while the link is up, until `limit` bytes wait
/// there. Returns how many stream bytes were committed to the snet stream.
fn encrypt_held(
    client: &mut SnetClient,
    socket: &mut Socket,
    held: &mut VecDeque<Bytes>,
    limit: usize,
) -> u64 {
    let mut committed = 0;
    while client.is_up() && socket.out_stream < limit {
        let Some(mut chunk) = held.pop_front() else {
            break;
        };
        let room = limit - socket.out_stream;
        if chunk.len() > room {
            held.push_front(chunk.split_off(room));
        }
        let mut data = BytesMut::from(&chunk[..]);
        if let Err(error) = client.encrypt(&mut data) {
            // Only possible if the link is not up, which was checked: keep the bytes.
            log::debug!("snet: could not encrypt: {error}");
            held.push_front(chunk);
            break;
        }
        socket.out_stream += data.len();
        committed += data.len() as u64;
        socket.out.push_back(data.freeze());
    }
    committed
}

/// Reads what the socket has and feeds it to the snet client.
fn read(client: &mut SnetClient, socket: &mut Socket, plain: &mut BytesMut) {
    let Some(stream) = &socket.stream else {
        return;
    };
    if socket.raw.capacity() - socket.raw.len() < READ_CHUNK / 16 {
        socket.raw.reserve(READ_CHUNK);
    }
    match stream.try_read_buf(&mut socket.raw) {
        Ok(0) => {
            let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "closed by the peer");
            lost(client, socket, &eof);
        }
        Ok(_) => {
            if let Err(error) = client.handle_input(&mut socket.raw, plain, Instant::now()) {
                // Reported (and the link ended) at the top of the driver's loop.
                log::debug!("snet: {error}");
            }
            socket.queue_control(client);
        }
        Err(error) if is_transient(&error) => {}
        Err(error) => lost(client, socket, &error),
    }
}

/// The current socket failed: the client waits and reconnects (or gives up).
fn lost(client: &mut SnetClient, socket: &mut Socket, error: &io::Error) {
    log::debug!("snet: the connection to the gateway failed ({error}); reconnecting");
    socket.drop_socket();
    client.socket_closed(Instant::now());
}

/// After the endpoint's link ended: a shutdown flushes its last frames (if the snet link is up) for
/// up to [`LINGER`], then the socket is closed and the snet session with it.
async fn finish(
    shared: &Shared,
    mut client: SnetClient,
    mut socket: Socket,
    mut held: VecDeque<Bytes>,
    reason: LinkError,
) {
    if reason == LinkError::Shutdown && client.is_up() && socket.stream.is_some() {
        {
            let mut st = shared.lock();
            while let Some(bytes) = st.core.poll_transmit() {
                if !bytes.is_empty() {
                    held.push_back(bytes);
                }
            }
        }
        let deadline = tokio::time::Instant::now() + LINGER;
        let flushed = tokio::time::timeout_at(deadline, async {
            loop {
                encrypt_held(&mut client, &mut socket, &mut held, MAX_OUT);
                if socket.try_flush()? && held.is_empty() {
                    return Ok::<(), io::Error>(());
                }
                if let Some(stream) = &socket.stream {
                    stream.writable().await?;
                }
            }
        })
        .await;
        if let Ok(Ok(())) = flushed {
            if let Some(stream) = socket.stream.as_mut() {
                let _ = stream.shutdown().await;
                linger(stream, deadline).await;
            }
        }
    }
    client.close();
    socket.drop_socket();
}

/// Reads and discards until EOF or `deadline`, so the socket closes with a FIN after the gateway
/// answered ours rather than with a reset that could discard our last frames.
async fn linger(stream: &TcpStream, deadline: tokio::time::Instant) {
    let mut scratch = vec![0u8; 4096];
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return,
            ready = stream.readable() => if ready.is_err() { return },
        }
        match stream.try_read(&mut scratch) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if is_transient(&error) => {}
            Err(_) => return,
        }
    }
}

/// Starts a reconnect's TCP connect.
fn connect(addr: SocketAddr, limit: Option<Duration>) -> Connecting {
    Box::pin(async move {
        match limit {
            Some(limit) => tokio::time::timeout(limit, TcpStream::connect(addr))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?,
            None => TcpStream::connect(addr).await,
        }
    })
}

async fn readable(stream: Option<&TcpStream>) -> io::Result<()> {
    match stream {
        Some(stream) => stream.readable().await,
        None => std::future::pending().await,
    }
}

async fn writable(stream: Option<&TcpStream>, wanted: bool) -> io::Result<()> {
    match stream {
        Some(stream) if wanted => stream.writable().await,
        _ => std::future::pending().await,
    }
}

async fn notified(notify: &Notify, wanted: bool) {
    if wanted {
        notify.notified().await;
    } else {
        std::future::pending::<()>().await;
    }
}

async fn connected(connecting: Option<&mut Connecting>) -> io::Result<TcpStream> {
    match connecting {
        Some(connecting) => connecting.await,
        None => std::future::pending().await,
    }
}

fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
