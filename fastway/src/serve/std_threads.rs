//! The std runtime: one readiness-loop thread serves every connection; `run` blocks this thread until
//! shutdown.

use super::{
    Bound, Control, RunningGateway, ServeOptions, impl_control, report_bind, server_config,
    spawn_serving,
};
use crate::config::RuntimeKind;
use fastway_std::{GatewayHandle, GatewayServer, ServerConfig};
use std::io;
use std::sync::mpsc::Sender;

impl_control!(GatewayHandle);

pub(super) fn start(options: ServeOptions) -> io::Result<RunningGateway> {
    spawn_serving(RuntimeKind::Std, move |bound: Sender<Bound>| {
        let bind = GatewayServer::bind(server_config!(ServerConfig, options));
        report_bind(&bound, bind, handle)?.run()
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
