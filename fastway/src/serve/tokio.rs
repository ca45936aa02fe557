//! The tokio runtime: a current-thread runtime for one worker, a multi-thread one otherwise.

use super::{
    Bound, Control, RunningGateway, ServeOptions, impl_control, report_bind, server_config,
    spawn_serving,
};
use crate::config::RuntimeKind;
use fastway_tokio::{GatewayHandle, GatewayServer, ServerConfig};
use std::io;
use std::sync::mpsc::Sender;

impl_control!(GatewayHandle);

pub(super) fn start(options: ServeOptions) -> io::Result<RunningGateway> {
    let runtime = if options.worker_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.worker_threads)
            .enable_all()
            .build()?
    };
    spawn_serving(RuntimeKind::Tokio, move |bound: Sender<Bound>| {
        runtime.block_on(async move {
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
