//! A complete fastway gateway on a hand-written event loop: `fastway-core` and `mio`, nothing else.
//!
//! The core decides everything (framing, server auth, routing, limits, idle timeouts, backpressure,
//! snet); this loop only moves bytes between sockets and the core and obeys the core's [`Action`]s:
//!
//! * a socket is accepted → [`Switchboard::accept`]; bytes arrive → append them to the socket's read
//!   buffer and call [`Switchboard::handle_input`]; EOF or an error → [`Switchboard::handle_closed`];
//! * `Transmit` → take batches with [`Switchboard::poll_transmit`] and write them, until it has none;
//! * `PauseReading` / `ResumeReading` → stop / restart reading that socket (feed what it holds first);
//! * `Close` → write its last bytes, then close the socket;
//! * timers → sleep in `poll` no longer than [`Switchboard::poll_timeout`], then
//!   [`Switchboard::handle_timeout`].
//!
//! Run it with `cargo run -p fastway-core --example event_loop [CLIENT_ADDR [SERVER_ADDR [AUTH_KEY]]]`
//! (default `127.0.0.1:8000 127.0.0.1:9000` and an empty key), then start the `echo_server` and
//! `chat_client` examples of the `fastway` crate against it. `core/tests/event_loop.rs` drives it with
//! a game server and a game client.

use bytes::{Buf, Bytes, BytesMut};
use fastway_core::gateway::{GatewayConfig, GatewayStats, Side};
use fastway_core::switchboard::{Action, SocketId, Switchboard, SwitchboardConfig};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use rand_core::UnwrapErr;
use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const CLIENTS: Token = Token(0);
const SERVERS: Token = Token(1);
const WAKER: Token = Token(2);

/// The poll token of a socket the core knows as `id` (tokens below 3 are the listeners and the waker).
fn token(id: SocketId) -> Token {
    Token(id.as_u64() as usize + 3)
}

/// One accepted socket.
struct Conn {
    id: SocketId,
    stream: TcpStream,
    /// Bytes read and not consumed yet: we only append, the core consumes from the front.
    read_buf: BytesMut,
    /// The batch taken from the core and not fully written yet.
    write_queue: VecDeque<Bytes>,
    /// The core asked us to stop reading (a server this client feeds is behind).
    paused: bool,
    /// The core forgot this socket: write `write_queue`, then drop it.
    closing: bool,
}

/// Stops a running [`EventLoop`] from another thread.
#[derive(Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl StopHandle {
    /// Asks the loop to shut the gateway down gracefully and return.
    pub fn stop(&self) -> io::Result<()> {
        self.flag.store(true, Ordering::Release);
        self.waker.wake()
    }
}

/// The gateway: two listeners, the accepted sockets and the core.
pub struct EventLoop {
    poll: Poll,
    clients: TcpListener,
    servers: TcpListener,
    conns: HashMap<Token, Conn>,
    /// Sockets the core let us read again, fed after the current round of actions.
    resumed: Vec<Token>,
    core: Switchboard,
    /// The OS's CSPRNG (server challenges, snet keys). `UnwrapErr` panics if the OS cannot give
    /// randomness; the runtime crates draw ahead with `fastway_core::rng::PreDrawn` instead.
    rng: UnwrapErr<getrandom::SysRng>,
    /// Scratch space for [`Switchboard::poll_transmit`].
    batch: Vec<Bytes>,
    stop: StopHandle,
}

impl EventLoop {
    /// Binds both ports and builds the core from `config`.
    pub fn bind(
        clients: SocketAddr,
        servers: SocketAddr,
        config: SwitchboardConfig,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut clients = TcpListener::bind(clients)?;
        let mut servers = TcpListener::bind(servers)?;
        poll.registry()
            .register(&mut clients, CLIENTS, Interest::READABLE)?;
        poll.registry()
            .register(&mut servers, SERVERS, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = StopHandle {
            flag: Arc::default(),
            waker,
        };
        let (conns, resumed, batch) = (HashMap::new(), Vec::new(), Vec::new());
        let (core, rng) = (Switchboard::new(config), UnwrapErr(getrandom::SysRng));
        Ok(Self {
            poll,
            clients,
            servers,
            conns,
            resumed,
            core,
            rng,
            batch,
            stop,
        })
    }

    /// Where game clients and game servers connect (useful after binding port 0).
    pub fn local_addrs(&self) -> io::Result<(SocketAddr, SocketAddr)> {
        Ok((self.clients.local_addr()?, self.servers.local_addr()?))
    }

    /// A handle that stops [`run`](Self::run).
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// The core's counters.
    pub fn stats(&self) -> GatewayStats {
        self.core.stats()
    }

    /// Serves until stopped, then shuts down gracefully: every peer gets what it is owed, then EOF.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        while !self.stop.flag.load(Ordering::Acquire) {
            let timeout = self
                .core
                .poll_timeout()
                .map(|at| at.saturating_duration_since(Instant::now()));
            self.wait(&mut events, timeout)?;
            for event in events.iter() {
                match event.token() {
                    CLIENTS => self.accept(Side::Client),
                    SERVERS => self.accept(Side::Server),
                    WAKER => {}
                    token => {
                        if event.is_writable() || event.is_write_closed() {
                            self.write(token);
                        }
                        if event.is_readable() || event.is_read_closed() {
                            self.read(token);
                        }
                    }
                }
            }
            let now = Instant::now();
            if self.core.poll_timeout().is_some_and(|at| at <= now) {
                self.core.handle_timeout(now);
            }
            self.apply_actions();
        }
        self.core.shutdown(Instant::now());
        self.apply_actions();
        // Let the last bytes leave (a peer that reads nothing for a second loses them).
        while !self.conns.is_empty() {
            self.wait(&mut events, Some(Duration::from_secs(1)))?;
            if events.is_empty() {
                break;
            }
            events.iter().for_each(|event| self.write(event.token()));
        }
        Ok(())
    }

    fn wait(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        match self.poll.poll(events, timeout) {
            Err(err) if err.kind() != ErrorKind::Interrupted => Err(err),
            _ => Ok(()),
        }
    }

    /// Accepts every pending socket of one port (mio is edge-triggered: drain until `WouldBlock`).
    fn accept(&mut self, side: Side) {
        loop {
            let listener = if side == Side::Client {
                &self.clients
            } else {
                &self.servers
            };
            let (mut stream, addr) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(err) if err.kind() == ErrorKind::WouldBlock => return,
                Err(err) => return eprintln!("accept on the {side} port failed: {err}"),
            };
            let now = Instant::now();
            let id = match self.core.accept(side, now, &mut self.rng) {
                Ok(id) => id,
                Err(err) => {
                    eprintln!("refused {side} {addr}: {err}"); // dropping `stream` closes it
                    continue;
                }
            };
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(err) = self
                .poll
                .registry()
                .register(&mut stream, token(id), interest)
            {
                eprintln!("cannot watch {addr}: {err}");
                self.core.handle_closed(id, now);
                continue;
            }
            eprintln!("{side} {addr} connected as {id}");
            let (read_buf, write_queue) = (BytesMut::with_capacity(4096), VecDeque::new());
            let conn = Conn {
                id,
                stream,
                read_buf,
                write_queue,
                paused: false,
                closing: false,
            };
            self.conns.insert(token(id), conn);
        }
    }

    /// Reads until `WouldBlock`, EOF or a pause, feeding every chunk to the core.
    fn read(&mut self, token: Token) {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let Some(conn) = self.conns.get_mut(&token) else {
                return;
            };
            if conn.paused || conn.closing {
                return;
            }
            let now = Instant::now();
            match conn.stream.read(&mut chunk) {
                Ok(0) => return self.core.handle_closed(conn.id, now),
                Ok(n) => {
                    conn.read_buf.extend_from_slice(&chunk[..n]);
                    self.core
                        .handle_input(conn.id, &mut conn.read_buf, now, &mut self.rng);
                    self.apply_actions(); // may pause this very socket
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.core.handle_closed(conn.id, now),
            }
        }
    }

    /// Writes the pending batch, then asks the core for the next, until it has none or the socket is
    /// full (a writable event brings us back). A closing socket is dropped once its bytes are out.
    fn write(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let now = Instant::now();
        // Leaves the loop when the socket is done: everything written while closing, or it failed.
        loop {
            let Some(front) = conn.write_queue.front_mut() else {
                if conn.closing {
                    break;
                }
                // Taking a batch also tells the core the previous one was written.
                if self.core.poll_transmit(conn.id, now, &mut self.batch) == 0 {
                    return;
                }
                conn.write_queue.extend(self.batch.drain(..));
                continue;
            };
            match conn.stream.write(front) {
                Ok(0) => break,
                Ok(n) if n == front.len() => drop(conn.write_queue.pop_front()),
                Ok(n) => front.advance(n),
                Err(err) if err.kind() == ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if !conn.closing {
            self.core.handle_closed(conn.id, now); // the core answers with Close
        } else if let Some(mut conn) = self.conns.remove(&token) {
            let _ = self.poll.registry().deregister(&mut conn.stream); // dropping it closes it
        }
    }

    /// Does what the core asks, until it asks nothing more; then feeds the sockets it resumed.
    fn apply_actions(&mut self) {
        loop {
            while let Some(action) = self.core.poll_action() {
                match action {
                    Action::Transmit(socket) => self.write(token(socket)),
                    Action::PauseReading(socket) => self.set_paused(socket, true),
                    Action::ResumeReading(socket) => self.set_paused(socket, false),
                    Action::ServerAuthenticated { socket, server_id } => {
                        eprintln!("{socket} is game server {server_id}")
                    }
                    Action::SessionEnded { side, reason } => {
                        eprintln!("{side} session ended: {reason}")
                    }
                    Action::Close {
                        socket,
                        reason,
                        flush,
                    } => {
                        let Some(conn) = self.conns.get_mut(&token(socket)) else {
                            continue;
                        };
                        eprintln!("closing {socket}: {reason}");
                        conn.closing = true;
                        conn.write_queue.extend(flush);
                        self.write(token(socket));
                    }
                }
            }
            let Some(token) = self.resumed.pop() else {
                return;
            };
            // Bytes read before the pause come first, then whatever the kernel holds.
            if let Some(conn) = self.conns.get_mut(&token) {
                let now = Instant::now();
                self.core
                    .handle_input(conn.id, &mut conn.read_buf, now, &mut self.rng);
            }
            self.read(token);
        }
    }

    fn set_paused(&mut self, socket: SocketId, paused: bool) {
        if let Some(conn) = self.conns.get_mut(&token(socket)) {
            conn.paused = paused;
            if !paused {
                self.resumed.push(token(socket));
            }
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let clients = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:8000".into())
        .parse()?;
    let servers = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:9000".into())
        .parse()?;
    let auth_key = args.next().unwrap_or_default().into_bytes();
    let gateway = GatewayConfig {
        auth_key,
        ..GatewayConfig::default()
    };
    let config = SwitchboardConfig {
        gateway,
        ..SwitchboardConfig::default()
    };
    let mut event_loop = EventLoop::bind(clients, servers, config)?;
    let (clients, servers) = event_loop.local_addrs()?;
    eprintln!("game clients connect to {clients}, game servers to {servers} (Ctrl-C stops)");
    event_loop.run()?;
    Ok(())
}
