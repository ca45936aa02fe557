//! fastway over tokio: the gateway server and the endpoint library.
//!
//! * [`GatewayServer`] drives [`fastway_core::switchboard::Switchboard`] (the gateway's routing plus
//!   snet on either port) with tokio sockets, tasks and timers. It makes no protocol decisions: it
//!   moves bytes from sockets into the core, time into the core, and the core's actions (wake a
//!   writer, pause or resume a reader, close a socket) back out to sockets. The caller builds the tokio
//!   runtime (current-thread or multi-thread, any worker count); the server works on both.
//! * [`endpoint`]: the library a game client or game server embeds to talk to a fastway gateway
//!   ([`Endpoint`], [`VConn`]).

pub mod endpoint;
pub mod server;

pub use endpoint::{
    ConnectError, DialError, Endpoint, EndpointOptions, RecvError, SendError, VConn, VConnSender,
};
pub use server::{GatewayHandle, GatewayServer, ServerConfig};

/// The core's types that appear in this crate's API, re-exported so users need not depend on
/// `fastway-core` directly for them.
pub use fastway_core::gateway::{GatewayConfig, GatewayStats, PeerInfo};
pub use fastway_core::snet::SnetConfig;
