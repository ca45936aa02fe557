//! fastway over smol: the gateway server and the endpoint library as async code on `async-io` sockets.
//!
//! * [`GatewayServer`]: the protocol lives in [`fastway_core`]'s
//!   [`Switchboard`](fastway_core::switchboard::Switchboard) (the gateway's routing plus snet —
//!   reconnectable, optionally encrypted streams — on the ports configured for it, see
//!   [`ServerConfig::client_snet`]); the server only moves bytes, time and closes between sockets and
//!   the core. It does not depend on a particular executor:
//!   [`GatewayServer::run`] drives its own connection tasks on an executor that lives inside the
//!   returned future, so it can be awaited from `smol::block_on`, from async-std
//!   (`async_std::task::block_on` or `spawn`), or from any other executor. Sockets are registered with
//!   `async-io`'s reactor, which every one of those shares.
//! * [`endpoint`]: the library game clients and game servers embed to talk to a fastway gateway
//!   ([`Endpoint`], [`VConn`]). Its futures work under any executor (smol, async-std, ...).

pub mod endpoint;
mod server;

pub use endpoint::{
    ConnectError, DialError, Endpoint, EndpointOptions, RecvError, SendError, VConn, VConnSender,
};
pub use fastway_core::gateway::{GatewayConfig, GatewayStats, PeerInfo};
pub use fastway_core::snet::SnetConfig;
pub use server::{GatewayHandle, GatewayServer, ServerConfig};
