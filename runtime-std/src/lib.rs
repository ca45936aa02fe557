//! fastway over blocking `std` threads: the gateway server and the endpoint library.
//!
//! * [`GatewayServer`] drives the sans-IO [`fastway_core`] gateway with non-blocking sockets on one
//!   OS thread: the thread that calls [`GatewayServer::run`] waits in a readiness loop (`mio`, i.e.
//!   `epoll`/`kqueue`) for both listeners and every connection, reads what arrived, feeds the core and
//!   writes each socket's batch with one vectored send per wake-up. No thread per connection and no
//!   async runtime: a connection costs a file descriptor and a small control block (a read buffer
//!   only while bytes are in flight). It makes no protocol decisions: it only moves bytes, time and
//!   closes between the sockets and the core's
//!   [`Switchboard`](fastway_core::switchboard::Switchboard), which also runs snet (reconnectable,
//!   optionally encrypted streams) on the ports configured for it. Pick it for simple deployments
//!   that want no async runtime at all.
//! * [`Endpoint`] is what a game client or game server embeds: connect to the gateway, dial or accept
//!   virtual connections, send and receive messages on them, with blocking calls.

pub mod endpoint;
mod server;

pub use endpoint::{
    ConnectError, DialError, Endpoint, EndpointOptions, RecvError, SendError, VConn, VConnSender,
};
pub use server::{GatewayHandle, GatewayServer, ServerConfig};

/// The core's types that appear in this crate's API, re-exported so users need not depend on
/// `fastway-core` directly for them.
pub use fastway_core::gateway::{GatewayConfig, GatewayStats, PeerInfo};
pub use fastway_core::snet::SnetConfig;
