//! The clients: each one TCP connection speaking the raw protocol, with its vconns dialed (fastway)
//! or fixed (relay: the bytes reach an echo server untouched, so any vconn id comes back).
//!
//! A client keeps `inflight` messages in flight per vconn: it sends them all at start, and sends a
//! new one for each echo that comes back (closed loop). Every message carries its send time, so the
//! round-trip time of each echo is exact. Per wake-up a client makes one read and at most one write.

use super::measure::Histogram;
use super::wire::{self, Item};
use bytes::{Buf, BytesMut};
use fastway_core::frame::{Command, CommandType};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a client retries a refused Dial (the echo servers may still be authenticating).
const DIAL_PATIENCE: Duration = Duration::from_secs(5);
/// Pause between two tries of a refused Dial.
const DIAL_RETRY: Duration = Duration::from_millis(20);

/// Phases of a run, as all clients see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// Connected, not sending yet.
    Ready = 0,
    /// Sending; echoes are not counted.
    Warmup = 1,
    /// Sending; echoes are counted.
    Measure = 2,
    /// No new messages; clients finish when their in-flight ones are back.
    Done = 3,
}

/// What the controller and all clients share.
#[derive(Debug)]
pub struct RunState {
    phase: AtomicU8,
    /// Every echo received so far, any phase (for live progress).
    pub echoes: AtomicU64,
    /// Send times are nanoseconds since this instant.
    pub base: Instant,
    start: tokio::sync::Notify,
}

impl Default for RunState {
    fn default() -> Self {
        Self {
            phase: AtomicU8::new(Phase::Ready as u8),
            echoes: AtomicU64::new(0),
            base: Instant::now(),
            start: tokio::sync::Notify::new(),
        }
    }
}

impl RunState {
    /// The phase now.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Ready,
            1 => Phase::Warmup,
            2 => Phase::Measure,
            _ => Phase::Done,
        }
    }

    /// Moves every client to `phase`; leaving `Ready` starts them.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
        self.start.notify_waiters();
    }

    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_nanos() as u64
    }

    async fn started(&self) {
        loop {
            let notified = self.start.notified();
            if self.phase() != Phase::Ready {
                return;
            }
            notified.await;
        }
    }
}

/// How one client connects.
#[derive(Debug, Clone)]
pub struct ClientPlan {
    /// The gateway's (or relay's) client address.
    pub addr: SocketAddr,
    /// The client's number (0-based), to spread vconns over servers.
    pub index: u32,
    /// Virtual connections to open.
    pub vconns: u32,
    /// Echo servers behind the gateway (ids 1 ..= servers).
    pub servers: u32,
    /// Dial the vconns (fastway) or use fixed ids 1 ..= vconns (relay).
    pub dial: bool,
    /// Largest acceptable frame `Length`.
    pub max_len: u32,
}

/// Why a client failed.
#[derive(Debug)]
pub enum LoadError {
    /// Connecting, reading or writing failed.
    Io(io::Error),
    /// The gateway sent something unexpected (a refused dial after the patience ran out, a Close,
    /// a bad frame, an echo for an unknown vconn).
    Protocol(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(err) => write!(f, "client socket: {err}"),
            LoadError::Protocol(what) => write!(f, "client protocol: {what}"),
        }
    }
}

impl std::error::Error for LoadError {}

impl From<io::Error> for LoadError {
    fn from(err: io::Error) -> Self {
        LoadError::Io(err)
    }
}

/// A connected client with its vconns open.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    conns: Vec<u32>,
    buf: BytesMut,
    max_len: u32,
}

/// Connects and opens the vconns.
pub async fn connect(plan: &ClientPlan) -> Result<Client, LoadError> {
    let mut stream = TcpStream::connect(plan.addr).await?;
    stream.set_nodelay(true)?;
    let mut buf = BytesMut::new();
    let conns = if plan.dial {
        dial_all(&mut stream, &mut buf, plan).await?
    } else {
        (1..=plan.vconns).collect()
    };
    Ok(Client {
        stream,
        conns,
        buf,
        max_len: plan.max_len,
    })
}

/// Dials `plan.vconns` vconns, server `(index * vconns + v) mod servers + 1` for vconn `v`;
/// retries refused dials until [`DIAL_PATIENCE`] runs out.
async fn dial_all(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    plan: &ClientPlan,
) -> Result<Vec<u32>, LoadError> {
    let target = |v: u32| (plan.index.wrapping_mul(plan.vconns).wrapping_add(v)) % plan.servers + 1;
    let mut pending = plan.vconns;
    let mut out = BytesMut::new();
    for v in 0..plan.vconns {
        Command::Dial { remote: target(v) }.encode(&mut out);
    }
    stream.write_all(&out).await?;
    let deadline = Instant::now() + DIAL_PATIENCE;
    let mut conns = Vec::with_capacity(plan.vconns as usize);
    while pending > 0 {
        if stream.read_buf(buf).await? == 0 {
            return Err(LoadError::Protocol("gateway closed while dialing".into()));
        }
        let mut refused = Vec::new();
        let mut unexpected = None;
        let used = wire::scan(buf, plan.max_len, |item| match item {
            Item::Command([kind, rest @ ..]) if *kind == CommandType::Accept as u8 => {
                if let Some(conn) = rest.get(..4) {
                    conns.push(u32::from_le_bytes([conn[0], conn[1], conn[2], conn[3]]));
                }
            }
            Item::Command([kind, rest @ ..]) if *kind == CommandType::Refuse as u8 => {
                if let Some(remote) = rest.get(..4) {
                    refused.push(u32::from_le_bytes([
                        remote[0], remote[1], remote[2], remote[3],
                    ]));
                }
            }
            other => unexpected = Some(format!("{other:?} while dialing")),
        })
        .map_err(|err| LoadError::Protocol(err.to_string()))?;
        buf.advance(used);
        if let Some(what) = unexpected {
            return Err(LoadError::Protocol(what));
        }
        pending = plan.vconns - conns.len() as u32;
        if !refused.is_empty() {
            if Instant::now() > deadline {
                return Err(LoadError::Protocol(format!(
                    "dial to server {} refused for {DIAL_PATIENCE:?}",
                    refused[0]
                )));
            }
            tokio::time::sleep(DIAL_RETRY).await;
            out.clear();
            for remote in refused {
                Command::Dial { remote }.encode(&mut out);
            }
            stream.write_all(&out).await?;
        }
    }
    Ok(conns)
}

/// What one client measured.
#[derive(Debug, Default)]
pub struct ClientResult {
    /// Round-trip times (ns) of the echoes received while measuring.
    pub rtt: Histogram,
    /// Payload bytes echoed while measuring.
    pub bytes: u64,
}

impl Client {
    /// Waits for the start, then runs the closed loop until the phase is `Done` and every message
    /// in flight is back.
    pub async fn run(
        mut self,
        state: Arc<RunState>,
        size: u32,
        inflight: u32,
    ) -> Result<ClientResult, LoadError> {
        let mut result = ClientResult::default();
        let templates: Vec<(u32, Vec<u8>)> = self
            .conns
            .iter()
            .map(|&conn| (conn, wire::message_template(conn, size as usize)))
            .collect();
        let index_of = |conn: u32| templates.iter().position(|(c, _)| *c == conn);
        let mut out = BytesMut::new();
        state.started().await;
        let now = state.nanos(Instant::now());
        for (_, template) in &templates {
            for _ in 0..inflight {
                push_stamped(&mut out, template, now);
            }
        }
        let mut in_flight = templates.len() as u64 * u64::from(inflight);
        self.stream.write_all(&out).await?;
        out.clear();
        let read_buffer = (64 * 1024).max(2 * (size as usize + 8));
        let mut failure = None;
        loop {
            if self.buf.capacity() - self.buf.len() < read_buffer / 2 {
                self.buf.reserve(read_buffer);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(LoadError::Protocol(format!(
                    "closed by the gateway with {in_flight} messages in flight"
                )));
            }
            let received = Instant::now();
            let now = state.nanos(received);
            let phase = state.phase();
            let mut echoes = 0u64;
            let used = wire::scan(&self.buf, self.max_len, |item| match item {
                Item::Data { conn, payload } => {
                    let (Some(index), Some(sent)) = (index_of(conn), wire::stamp_of(payload))
                    else {
                        failure = Some(format!("echo for unknown vconn {conn}"));
                        return;
                    };
                    echoes += 1;
                    in_flight = in_flight.saturating_sub(1);
                    if phase == Phase::Measure {
                        result.rtt.record(now.saturating_sub(sent));
                        result.bytes += payload.len() as u64;
                    }
                    if phase != Phase::Done {
                        push_stamped(&mut out, &templates[index].1, now);
                        in_flight += 1;
                    }
                }
                Item::Command(message) => {
                    failure = Some(format!("unexpected command {message:?}"));
                }
            })
            .map_err(|err| LoadError::Protocol(err.to_string()))?;
            self.buf.advance(used);
            if let Some(what) = failure.take() {
                return Err(LoadError::Protocol(what));
            }
            state.echoes.fetch_add(echoes, Ordering::Relaxed);
            if !out.is_empty() {
                self.stream.write_all(&out).await?;
                out.clear();
            }
            if phase == Phase::Done && in_flight == 0 {
                return Ok(result);
            }
        }
    }
}

fn push_stamped(out: &mut BytesMut, template: &[u8], nanos: u64) {
    let start = out.len();
    out.extend_from_slice(template);
    wire::stamp(&mut out[start..], nanos);
}
