//! The optional Prometheus endpoint (`--metrics-addr`): `GET /metrics` on a plain `std::net`
//! listener thread.
//!
//! * [`collector`]: each scrape takes one snapshot of the core's counters and encodes every
//!   `fastway_*` metric from it with `prometheus-client` (see README "Metrics" for the list);
//! * [`http`]: the few lines of HTTP/1.1 a scrape needs, with a size limit on the request;
//! * this module: [`MetricsServer`], the listener thread and its shutdown.
//!
//! The endpoint depends on no async runtime: the snapshot comes through
//! [`StatsHandle`](crate::serve::StatsHandle), which every runtime provides, so it works the same
//! whichever runtime serves the gateway. Requests are answered one at a time on the listener's
//! thread (a scrape is one small request every few seconds); a client that sends nothing is cut off
//! after [`IO_TIMEOUT`].

pub mod collector;
pub mod http;

use crate::serve::RunningGateway;
use prometheus_client::registry::Registry;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a scrape connection may take to send its request or to read the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the metrics endpoint could not start.
#[derive(Debug)]
pub enum MetricsError {
    /// The listen address could not be bound (in use, not local, no permission).
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// The listener thread could not be started.
    Spawn(io::Error),
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bind { addr, source } => {
                write!(f, "cannot listen for metrics on {addr}: {source}")
            }
            Self::Spawn(err) => write!(f, "cannot start the metrics thread: {err}"),
        }
    }
}

impl std::error::Error for MetricsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bind { source, .. } => Some(source),
            Self::Spawn(err) => Some(err),
        }
    }
}

/// The metrics listener and its thread. Stopped by [`stop`](Self::stop) or when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Serves `running`'s counters on `addr` (port 0 picks a free port; see
    /// [`local_addr`](Self::local_addr)).
    pub fn for_gateway(addr: SocketAddr, running: &RunningGateway) -> Result<Self, MetricsError> {
        let stats = running.stats_handle();
        let registry =
            collector::registry(running.runtime().name(), Box::new(move || stats.stats()));
        Self::start(addr, registry)
    }

    /// Binds `addr` and serves `registry` on `GET /metrics` from a thread of its own.
    pub fn start(addr: SocketAddr, registry: Registry) -> Result<Self, MetricsError> {
        let listener =
            TcpListener::bind(addr).map_err(|source| MetricsError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("fastway-metrics".to_owned())
            .spawn({
                let stop = Arc::clone(&stop);
                move || accept_loop(&listener, &registry, &stop)
            })
            .map_err(MetricsError::Spawn)?;
        Ok(Self {
            addr: bound,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and waits for the thread (at most one request in progress, bounded by
    /// [`IO_TIMEOUT`]).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // The thread sleeps in accept(): a connection of our own wakes it to see the flag.
        match TcpStream::connect_timeout(&wake_addr(self.addr), IO_TIMEOUT) {
            Ok(_) => {
                if thread.join().is_err() {
                    log::warn!("the metrics thread panicked");
                }
            }
            Err(err) => log::warn!("could not wake the metrics thread to stop it: {err}"),
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Where to connect to reach a listener bound to `addr` (a wildcard address is reached on loopback).
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// Answers connections one by one until `stop` is set.
fn accept_loop(listener: &TcpListener, registry: &Registry, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match stream {
            Ok(stream) => serve_one(stream, registry),
            Err(err) => {
                // Out of file descriptors and the like: say so, and do not spin.
                log::warn!("metrics: accept failed: {err}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Reads one request from `stream`, answers it and closes.
fn serve_one(mut stream: TcpStream, registry: &Registry) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "unknown".to_owned(), |a| a.to_string());
    if let Err(err) = stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
    {
        log::debug!("metrics: {peer}: cannot set timeouts: {err}");
        return;
    }
    let request = http::read_head(&mut stream, http::MAX_REQUEST_HEAD)
        .and_then(|head| http::parse_request(&head));
    if let Err(err) = &request {
        log::debug!("metrics: {peer}: {err}");
    }
    let Some(response) = http::respond(request, || collector::render(registry)) else {
        return;
    };
    if let Err(err) = response.write_to(&mut stream) {
        log::debug!("metrics: {peer}: writing the answer failed: {err}");
    }
}
