//! One blocking facade over the three endpoint libraries, so that an endpoint test is written once and
//! run with each runtime's `Endpoint` (and so that endpoints of different runtimes can be mixed).
//!
//! * std: the blocking API as it is;
//! * tokio: every call runs through `block_on` of one shared multi-thread runtime built here (the
//!   link's tasks live on it, so they progress while a test thread waits);
//! * smol: every call runs through `smol::block_on` (the link's tasks run on smol's global executor).
//!
//! Every wait is bounded by [`WAIT`] (or by the timeout passed in).
#![allow(dead_code)]

use bytes::Bytes;
pub use fastway_core::endpoint::LinkError;
use std::net::SocketAddr;
use std::time::Duration;

/// The longest any single endpoint call may wait in a test.
pub const WAIT: Duration = Duration::from_secs(5);

/// Why a dial failed, the same for every runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialE {
    Refused,
    Timeout,
    Closed(LinkError),
}

/// Why a send failed, the same for every runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendE {
    TooLarge { len: usize, max: usize },
    Closed,
    Link(LinkError),
}

/// Why a recv returned no message, the same for every runtime; `Timeout` means [`WAIT`] passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvE {
    Closed,
    Overflow,
    Link(LinkError),
    Timeout,
}

/// Endpoint settings a test chooses; the rest are the libraries' defaults.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Must match the gateway's.
    pub max_packet: u32,
    /// `None`: no keepalive.
    pub ping_interval: Option<Duration>,
    pub ping_timeout: Duration,
    pub recv_queue: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            max_packet: fastway_core::gateway::GatewayConfig::default().max_packet,
            ping_interval: None,
            ping_timeout: Duration::from_secs(1),
            recv_queue: 6000,
        }
    }
}

/// A link to the gateway, whichever runtime drives it.
pub trait Ep: Clone + Send + Sync + 'static {
    /// Its vconn type.
    type V: Vc;
    /// For messages.
    const NAME: &'static str;
    fn client(addr: SocketAddr, opts: &Opts) -> Result<Self, String>;
    fn server(addr: SocketAddr, id: u32, key: &[u8], opts: &Opts) -> Result<Self, String>;
    fn dial(&self, remote: u32) -> Result<Self::V, DialE>;
    /// The next incoming vconn; `None` if `within` passed first or the link ended.
    fn accept_within(&self, within: Duration) -> Option<Self::V>;
    fn accept(&self) -> Self::V {
        self.accept_within(WAIT)
            .unwrap_or_else(|| panic!("{}: no incoming vconn within {WAIT:?}", Self::NAME))
    }
    fn close(&self);
    /// Why the link ended, waiting at most `within`; `None` if it is still up.
    fn closed_within(&self, within: Duration) -> Option<LinkError>;
    fn close_reason(&self) -> Option<LinkError>;
    fn conn_count(&self) -> usize;
}

/// A vconn, whichever runtime drives it.
pub trait Vc: Send + 'static {
    fn id(&self) -> u32;
    fn remote_id(&self) -> u32;
    fn send(&self, msg: Bytes) -> Result<(), SendE>;
    /// The next message, waiting at most [`WAIT`].
    fn recv(&mut self) -> Result<Bytes, RecvE>;
    /// The next message if one is there; never waits.
    fn try_recv(&mut self) -> Result<Option<Bytes>, RecvE>;
    fn close(&self);
    /// A handle that sends from another thread.
    fn sender(&self) -> Box<dyn Fn(Bytes) -> Result<(), SendE> + Send + Sync>;
}

/// Maps one runtime's error enums (all three have the same shape) onto the facade's.
macro_rules! error_maps {
    ($m:path) => {
        use $m as lib;

        fn dial_e(error: lib::DialError) -> super::DialE {
            match error {
                lib::DialError::Refused { .. } => super::DialE::Refused,
                lib::DialError::Timeout => super::DialE::Timeout,
                lib::DialError::Closed(reason) => super::DialE::Closed(reason),
            }
        }

        fn send_e(error: lib::SendError) -> super::SendE {
            match error {
                lib::SendError::TooLarge { len, max } => super::SendE::TooLarge { len, max },
                lib::SendError::Closed => super::SendE::Closed,
                lib::SendError::Link(reason) => super::SendE::Link(reason),
            }
        }

        fn recv_e(error: lib::RecvError) -> super::RecvE {
            match error {
                lib::RecvError::Closed => super::RecvE::Closed,
                lib::RecvError::Overflow => super::RecvE::Overflow,
                lib::RecvError::Link(reason) => super::RecvE::Link(reason),
            }
        }

        fn options(opts: &super::Opts) -> lib::EndpointOptions {
            lib::EndpointOptions {
                core: lib::EndpointConfig {
                    max_packet: opts.max_packet,
                    ping_interval: opts.ping_interval,
                    ping_timeout: opts.ping_timeout,
                    ..lib::EndpointConfig::default()
                },
                dial_timeout: Some(super::WAIT),
                recv_queue: opts.recv_queue,
                connect_timeout: Some(super::WAIT),
                snet: None,
            }
        }
    };
}

#[cfg(feature = "rt-std")]
pub mod std_ep {
    use super::{DialE, Ep, LinkError, Opts, RecvE, SendE, Vc, WAIT};
    use bytes::Bytes;
    use std::net::SocketAddr;
    use std::time::Duration;

    error_maps!(fastway_std::endpoint);

    /// The std endpoint as it is.
    #[derive(Clone, Debug)]
    pub struct StdEp(pub lib::Endpoint);

    /// A std vconn.
    #[derive(Debug)]
    pub struct StdVc(pub lib::VConn);

    impl Ep for StdEp {
        type V = StdVc;
        const NAME: &'static str = "std endpoint";

        fn client(addr: SocketAddr, opts: &Opts) -> Result<Self, String> {
            lib::Endpoint::connect_client(addr, options(opts))
                .map(Self)
                .map_err(|e| e.to_string())
        }

        fn server(addr: SocketAddr, id: u32, key: &[u8], opts: &Opts) -> Result<Self, String> {
            lib::Endpoint::connect_server(addr, id, key, options(opts))
                .map(Self)
                .map_err(|e| e.to_string())
        }

        fn dial(&self, remote: u32) -> Result<StdVc, DialE> {
            self.0.dial(remote).map(StdVc).map_err(dial_e)
        }

        fn accept_within(&self, within: Duration) -> Option<StdVc> {
            self.0.accept_timeout(within).ok().flatten().map(StdVc)
        }

        fn close(&self) {
            self.0.close();
        }

        fn closed_within(&self, within: Duration) -> Option<LinkError> {
            self.0.closed_timeout(within)
        }

        fn close_reason(&self) -> Option<LinkError> {
            self.0.close_reason()
        }

        fn conn_count(&self) -> usize {
            self.0.conn_count()
        }
    }

    impl Vc for StdVc {
        fn id(&self) -> u32 {
            self.0.id()
        }

        fn remote_id(&self) -> u32 {
            self.0.remote_id()
        }

        fn send(&self, msg: Bytes) -> Result<(), SendE> {
            self.0.send(msg).map_err(send_e)
        }

        fn recv(&mut self) -> Result<Bytes, RecvE> {
            match self.0.recv_timeout(WAIT) {
                Ok(Some(msg)) => Ok(msg),
                Ok(None) => Err(RecvE::Timeout),
                Err(error) => Err(recv_e(error)),
            }
        }

        fn try_recv(&mut self) -> Result<Option<Bytes>, RecvE> {
            self.0.try_recv().map_err(recv_e)
        }

        fn close(&self) {
            self.0.close();
        }

        fn sender(&self) -> Box<dyn Fn(Bytes) -> Result<(), SendE> + Send + Sync> {
            let sender = self.0.sender();
            Box::new(move |msg| sender.send(msg).map_err(send_e))
        }
    }
}

#[cfg(feature = "rt-tokio")]
pub mod tokio_ep {
    use super::{DialE, Ep, LinkError, Opts, RecvE, SendE, Vc, WAIT};
    use bytes::Bytes;
    use std::future::Future;
    use std::net::SocketAddr;
    use std::sync::OnceLock;
    use std::time::Duration;
    use tokio::time::timeout;

    error_maps!(fastway_tokio::endpoint);

    /// Runs `fut` to completion on the tests' shared tokio runtime (two workers), from a plain thread.
    pub fn block_on<T>(fut: impl Future<Output = T>) -> T {
        static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        RT.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime")
        })
        .block_on(fut)
    }

    /// The tokio endpoint, driven through [`block_on`].
    #[derive(Clone, Debug)]
    pub struct TokioEp(pub lib::Endpoint);

    /// A tokio vconn.
    #[derive(Debug)]
    pub struct TokioVc(pub lib::VConn);

    impl Ep for TokioEp {
        type V = TokioVc;
        const NAME: &'static str = "tokio endpoint";

        fn client(addr: SocketAddr, opts: &Opts) -> Result<Self, String> {
            block_on(lib::Endpoint::connect_client(addr, options(opts)))
                .map(Self)
                .map_err(|e| e.to_string())
        }

        fn server(addr: SocketAddr, id: u32, key: &[u8], opts: &Opts) -> Result<Self, String> {
            block_on(async {
                timeout(
                    WAIT,
                    lib::Endpoint::connect_server(addr, id, key, options(opts)),
                )
                .await
            })
            .map_err(|_| "connect_server timed out".to_owned())?
            .map(Self)
            .map_err(|e| e.to_string())
        }

        fn dial(&self, remote: u32) -> Result<TokioVc, DialE> {
            block_on(self.0.dial(remote)).map(TokioVc).map_err(dial_e)
        }

        fn accept_within(&self, within: Duration) -> Option<TokioVc> {
            block_on(async { timeout(within, self.0.accept()).await })
                .ok()?
                .ok()
                .map(TokioVc)
        }

        fn close(&self) {
            self.0.close();
        }

        fn closed_within(&self, within: Duration) -> Option<LinkError> {
            block_on(async { timeout(within, self.0.closed()).await }).ok()
        }

        fn close_reason(&self) -> Option<LinkError> {
            self.0.close_reason()
        }

        fn conn_count(&self) -> usize {
            self.0.conn_count()
        }
    }

    impl Vc for TokioVc {
        fn id(&self) -> u32 {
            self.0.id()
        }

        fn remote_id(&self) -> u32 {
            self.0.remote_id()
        }

        fn send(&self, msg: Bytes) -> Result<(), SendE> {
            block_on(async { timeout(WAIT, self.0.send(msg)).await })
                .unwrap_or_else(|_| panic!("send blocked for {WAIT:?}"))
                .map_err(send_e)
        }

        fn recv(&mut self) -> Result<Bytes, RecvE> {
            block_on(async { timeout(WAIT, self.0.recv()).await })
                .map_err(|_| RecvE::Timeout)?
                .map_err(recv_e)
        }

        fn try_recv(&mut self) -> Result<Option<Bytes>, RecvE> {
            self.0.try_recv().map_err(recv_e)
        }

        fn close(&self) {
            self.0.close();
        }

        fn sender(&self) -> Box<dyn Fn(Bytes) -> Result<(), SendE> + Send + Sync> {
            let sender = self.0.sender();
            Box::new(move |msg| {
                block_on(async { timeout(WAIT, sender.send(msg)).await })
                    .unwrap_or_else(|_| panic!("send blocked for {WAIT:?}"))
                    .map_err(send_e)
            })
        }
    }
}

#[cfg(feature = "rt-smol")]
pub mod smol_ep {
    use super::{DialE, Ep, LinkError, Opts, RecvE, SendE, Vc, WAIT};
    use bytes::Bytes;
    use std::future::Future;
    use std::net::SocketAddr;
    use std::time::Duration;

    error_maps!(fastway_smol::endpoint);

    /// Runs `fut` with `smol::block_on`, giving up after `within`.
    fn within<T>(within: Duration, fut: impl Future<Output = T>) -> Option<T> {
        smol::block_on(smol::future::or(async { Some(fut.await) }, async {
            smol::Timer::after(within).await;
            None
        }))
    }

    /// The smol endpoint, driven through `smol::block_on`.
    #[derive(Clone, Debug)]
    pub struct SmolEp(pub lib::Endpoint);

    /// A smol vconn.
    #[derive(Debug)]
    pub struct SmolVc(pub lib::VConn);

    impl Ep for SmolEp {
        type V = SmolVc;
        const NAME: &'static str = "smol endpoint";

        fn client(addr: SocketAddr, opts: &Opts) -> Result<Self, String> {
            smol::block_on(lib::Endpoint::connect_client(addr, options(opts)))
                .map(Self)
                .map_err(|e| e.to_string())
        }

        fn server(addr: SocketAddr, id: u32, key: &[u8], opts: &Opts) -> Result<Self, String> {
            within(
                WAIT,
                lib::Endpoint::connect_server(addr, id, key, options(opts)),
            )
            .ok_or_else(|| "connect_server timed out".to_owned())?
            .map(Self)
            .map_err(|e| e.to_string())
        }

        fn dial(&self, remote: u32) -> Result<SmolVc, DialE> {
            smol::block_on(self.0.dial(remote))
                .map(SmolVc)
                .map_err(dial_e)
        }

        fn accept_within(&self, limit: Duration) -> Option<SmolVc> {
            within(limit, self.0.accept())?.ok().map(SmolVc)
        }

        fn close(&self) {
            self.0.close();
        }

        fn closed_within(&self, limit: Duration) -> Option<LinkError> {
            within(limit, self.0.closed())
        }

        fn close_reason(&self) -> Option<LinkError> {
            self.0.close_reason()
        }

        fn conn_count(&self) -> usize {
            self.0.conn_count()
        }
    }

    impl Vc for SmolVc {
        fn id(&self) -> u32 {
            self.0.id()
        }

        fn remote_id(&self) -> u32 {
            self.0.remote_id()
        }

        fn send(&self, msg: Bytes) -> Result<(), SendE> {
            within(WAIT, self.0.send(msg))
                .unwrap_or_else(|| panic!("send blocked for {WAIT:?}"))
                .map_err(send_e)
        }

        fn recv(&mut self) -> Result<Bytes, RecvE> {
            within(WAIT, self.0.recv())
                .ok_or(RecvE::Timeout)?
                .map_err(recv_e)
        }

        fn try_recv(&mut self) -> Result<Option<Bytes>, RecvE> {
            self.0.try_recv().map_err(recv_e)
        }

        fn close(&self) {
            self.0.close();
        }

        fn sender(&self) -> Box<dyn Fn(Bytes) -> Result<(), SendE> + Send + Sync> {
            let sender = self.0.sender();
            Box::new(move |msg| {
                within(WAIT, sender.send(msg))
                    .unwrap_or_else(|| panic!("send blocked for {WAIT:?}"))
                    .map_err(send_e)
            })
        }
    }
}

/// A tiny xorshift64* generator: reproducible randomness without a crate.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn bytes(&mut self, len: usize) -> Bytes {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        Bytes::from(out)
    }
}
