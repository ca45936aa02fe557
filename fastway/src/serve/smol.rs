//! The smol runtime: the server drives its own executor inside `run`, blocked on by this thread.

use super::{Bound, Control, RunningGateway, ServeOptions, spawn_serving};
use crate::config::RuntimeKind;
use fastway_core::gateway::{GatewayStats, PeerInfo};
use fastway_smol::{GatewayHandle, GatewayServer, ServerConfig};
use std::io;

impl Control for GatewayHandle {
    fn stats(&self) -> GatewayStats {
        GatewayHandle::stats(self)
    }
    fn peers(&self) -> Vec<PeerInfo> {
        GatewayHandle::peers(self)
    }
    fn shutdown(&self) {
        GatewayHandle::shutdown(self)
    }
}

pub(super) fn start(options: ServeOptions) -> io::Result<RunningGateway> {
    spawn_serving(
        RuntimeKind::Smol,
        move |bound: std::sync::mpsc::Sender<Bound>| {
            futures_lite::future::block_on(async move {
                let config = ServerConfig {
                    gateway: options.gateway,
                    client_snet: options.client_snet,
                    server_snet: options.server_snet,
                    client_addr: options.client_addr,
                    server_addr: options.server_addr,
                    reuse_port: options.reuse_port,
                    client_read_buffer: options.client_read_buffer,
                    server_read_buffer: options.server_read_buffer,
                };
                let server = match GatewayServer::bind(config).await {
                    Ok(server) => server,
                    Err(err) => {
                        let _ = bound.send(Err(io::Error::new(err.kind(), err.to_string())));
                        return Err(err);
                    }
                };
                let control: Box<dyn Control> = Box::new(server.handle());
                let _ = bound.send(Ok((server.client_addr(), server.server_addr(), control)));
                server.run().await
            })
        },
    )
}
