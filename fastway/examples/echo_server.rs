//! A game server that echoes: it connects to the gateway's **server port** with the tokio endpoint
//! library, accepts every vconn a game client opens to it, and sends every message back unchanged.
//!
//! ```text
//! Usage: cargo run -p fastway --example echo_server -- [OPTIONS]
//!
//!   --gateway <ADDR>     the gateway's server port      [env FASTWAY_SERVER_ADDR; default 127.0.0.1:9000]
//!   --id <N>             this game server's id          [env FASTWAY_SERVER_ID;   default 1]
//!   --key <KEY>          the gateway's ServerAuthKey    [env FASTWAY_SERVER_AUTH_KEY; default empty]
//!   --max-packet <N>     the gateway's MaxPacket        [default 524288]
//!   -h, --help           print this help
//! ```
//!
//! Logs go to stderr (`RUST_LOG=debug` for more). Stop it with Ctrl-C. Try it with a gateway and the
//! `chat_client` example:
//!
//! ```text
//! cargo run -p fastway                                   # gateway on 127.0.0.1:8000 / 127.0.0.1:9000
//! cargo run -p fastway --example echo_server             # server 1
//! cargo run -p fastway --example chat_client             # type lines, see them echoed
//! ```

use clap::Parser;
use fastway_tokio::endpoint::{Endpoint, EndpointConfig, EndpointOptions, LinkError, VConn};
use log::{error, info, warn};
use std::process::ExitCode;

/// A fastway game server that echoes every message of every client.
#[derive(Debug, Parser)]
#[command(name = "echo_server")]
struct Args {
    /// The gateway's server port [env FASTWAY_SERVER_ADDR]
    #[arg(long, value_name = "ADDR", default_value_t = env_or("FASTWAY_SERVER_ADDR", "127.0.0.1:9000"))]
    gateway: String,
    /// This game server's id: clients dial it [env FASTWAY_SERVER_ID]
    #[arg(long, value_name = "N", default_value_t = env_or("FASTWAY_SERVER_ID", "1").parse().unwrap_or(1))]
    id: u32,
    /// The gateway's ServerAuthKey [env FASTWAY_SERVER_AUTH_KEY, the gateway's own variable]
    #[arg(long, value_name = "KEY", default_value_t = env_or("FASTWAY_SERVER_AUTH_KEY", ""), hide_default_value = true)]
    key: String,
    /// The gateway's MaxPacket
    #[arg(long, value_name = "N", default_value_t = EndpointConfig::default().max_packet)]
    max_packet: u32,
}

/// The environment variable `name`, or `default` when unset.
fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Echoes one vconn until it closes.
async fn echo(mut vconn: VConn) {
    let (id, client) = (vconn.id(), vconn.remote_id());
    info!("vconn {id}: client {client} connected");
    let mut messages = 0u64;
    let end = loop {
        match vconn.recv().await {
            Ok(msg) => {
                messages += 1;
                if let Err(err) = vconn.send(msg).await {
                    break err.to_string();
                }
            }
            Err(err) => break err.to_string(),
        }
    };
    info!("vconn {id}: client {client} gone after {messages} messages ({end})");
}

/// Accepts and echoes until the link ends; returns why it ended.
async fn serve(endpoint: &Endpoint) -> LinkError {
    loop {
        match endpoint.accept().await {
            Ok(vconn) => {
                tokio::spawn(echo(vconn));
            }
            Err(reason) => return reason,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let options = EndpointOptions {
        core: EndpointConfig {
            max_packet: args.max_packet,
            ..EndpointConfig::default()
        },
        ..EndpointOptions::default()
    };
    let endpoint = match Endpoint::connect_server(
        args.gateway.as_str(),
        args.id,
        args.key.as_bytes(),
        options,
    )
    .await
    {
        Ok(endpoint) => endpoint,
        Err(err) => {
            error!("cannot connect to the gateway at {}: {err}", args.gateway);
            return ExitCode::FAILURE;
        }
    };
    info!(
        "echo server {} connected to the gateway at {} (a wrong key shows as the link closing)",
        args.id,
        endpoint.peer_addr()
    );
    tokio::select! {
        reason = serve(&endpoint) => {
            warn!("the link to the gateway ended: {reason}");
            ExitCode::FAILURE
        }
        _ = tokio::signal::ctrl_c() => {
            info!("interrupted, closing");
            endpoint.close();
            ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastway::config::RuntimeKind;
    use fastway::serve::ServeOptions;
    use fastway_core::gateway::GatewayConfig;
    use std::time::Duration;

    /// The echo loop above, behind a real gateway on loopback.
    #[test]
    fn echoes_through_a_gateway() {
        let gateway = GatewayConfig {
            auth_key: b"k".to_vec(),
            ..GatewayConfig::default()
        };
        let running = fastway::serve::start(RuntimeKind::Tokio, ServeOptions::loopback(gateway))
            .expect("gateway starts");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), async {
                let server = Endpoint::connect_server(
                    running.server_addr(),
                    1,
                    b"k",
                    EndpointOptions::default(),
                )
                .await
                .expect("server connects");
                let serving = tokio::spawn({
                    let server = server.clone();
                    async move { serve(&server).await }
                });
                let client =
                    Endpoint::connect_client(running.client_addr(), EndpointOptions::default())
                        .await
                        .expect("client connects");
                // The server may not be registered yet: retry the dial briefly.
                let mut vconn = loop {
                    match client.dial(1).await {
                        Ok(vconn) => break vconn,
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                };
                for msg in [&b"hello"[..], b"", b"world"] {
                    vconn.send(msg).await.expect("send");
                    assert_eq!(vconn.recv().await.expect("echo"), msg);
                }
                server.close();
                assert_eq!(serving.await.expect("serve task"), LinkError::Shutdown);
            })
            .await
            .expect("bounded");
        });
        running.shutdown().expect("gateway stops");
    }
}
