//! fastway over smol: the gateway server as an async library on `async-io` sockets.
//!
//! The protocol lives in [`fastway_core`]; this crate only moves bytes, time and closes between
//! sockets and the core's [`Gateway`](fastway_core::gateway::Gateway). It does not depend on a
//! particular executor: [`GatewayServer::run`] drives its own connection tasks on an executor that
//! lives inside the returned future, so it can be awaited from `smol::block_on`, from async-std
//! (`async_std::task::block_on` or `spawn`), or from any other executor. Sockets are registered with
//! `async-io`'s reactor, which every one of those shares.
//!
//! See [`GatewayServer`] for an example.

mod server;

pub use fastway_core::gateway::{GatewayConfig, GatewayStats, PeerInfo};
pub use server::{GatewayHandle, GatewayServer, ServerConfig};
