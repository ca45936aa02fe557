//! fastway over tokio: the gateway server that drives [`fastway_core::switchboard::Switchboard`]
//! (the gateway's routing plus snet on either port) with tokio sockets, tasks and timers.
//!
//! The adapter makes no protocol decisions. It moves bytes from sockets into the core, time into the
//! core, and the core's actions (wake a writer, pause or resume a reader, close a socket) back out
//! to sockets. See [`GatewayServer`] for how to run one.
//!
//! The caller builds the tokio runtime (current-thread or multi-thread, any worker count); the server
//! works on both.

pub mod server;

pub use server::{GatewayHandle, GatewayServer, ServerConfig};
