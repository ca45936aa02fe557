//! The smol runtime: the server drives its own executor inside `run`, blocked on by this thread.

use super::{
    Bound, Control, RunningGateway, ServeOptions, impl_control, report_bind, server_config,
    spawn_serving,
};
use crate::config::RuntimeKind;
use fastway_smol::{GatewayHandle, GatewayServer, ServerConfig};
use std::io;
use std::sync::mpsc::Sender;

impl_control!(GatewayHandle);

pub(super) fn start(options: ServeOptions) -> io::Result<RunningGateway> {
    spawn_serving(RuntimeKind::Smol, move |bound: Sender<Bound>| {
        futures_lite::future::block_on(async move {
            let bind = GatewayServer::bind(server_config!(ServerConfig, options)).await;
            report_bind(&bound, bind, handle)?.run().await
        })
    })
}

/// What `start` learns of a bound server.
fn handle(
    server: &GatewayServer,
) -> (std::net::SocketAddr, std::net::SocketAddr, Box<dyn Control>) {
    (
        server.client_addr(),
        server.server_addr(),
        Box::new(server.handle()),
    )
}
