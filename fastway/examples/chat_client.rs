//! An interactive game client: it connects to the gateway's **client port** with the tokio endpoint
//! library, opens a vconn to a game server, sends every line typed on stdin as one message and prints
//! every message the server sends back.
//!
//! ```text
//! Usage: cargo run -p fastway --example chat_client -- [OPTIONS]
//!
//!   --gateway <ADDR>     the gateway's client port   [env FASTWAY_CLIENT_ADDR; default 127.0.0.1:8000]
//!   --server <N>         the game server id to dial  [env FASTWAY_SERVER_ID;   default 1]
//!   --max-packet <N>     the gateway's MaxPacket     [default 524288]
//!   -h, --help           print this help
//! ```
//!
//! Each reply is printed as `< text` (invalid UTF-8 is shown with replacement characters). At the end
//! of stdin (Ctrl-D, or the end of a pipe) it waits until the server has been quiet for a second, then
//! closes. With the `echo_server` example running:
//!
//! ```text
//! printf 'hello\nworld\n' | cargo run -p fastway --example chat_client
//! < hello
//! < world
//! ```

use clap::Parser;
use fastway_tokio::endpoint::{Endpoint, EndpointConfig, EndpointOptions, RecvError};
use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::mpsc;

/// A fastway game client that chats with one game server over one vconn.
#[derive(Debug, Parser)]
#[command(name = "chat_client")]
struct Args {
    /// The gateway's client port [env FASTWAY_CLIENT_ADDR]
    #[arg(long, value_name = "ADDR", default_value_t = env_or("FASTWAY_CLIENT_ADDR", "127.0.0.1:8000"))]
    gateway: String,
    /// The id of the game server to talk to [env FASTWAY_SERVER_ID]
    #[arg(long, value_name = "N", default_value_t = env_or("FASTWAY_SERVER_ID", "1").parse().unwrap_or(1))]
    server: u32,
    /// The gateway's MaxPacket
    #[arg(long, value_name = "N", default_value_t = EndpointConfig::default().max_packet)]
    max_packet: u32,
}

/// The environment variable `name`, or `default` when unset.
fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// How long the server must stay quiet after the end of stdin before the client closes.
const QUIET: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    let options = EndpointOptions {
        core: EndpointConfig {
            max_packet: args.max_packet,
            ..EndpointConfig::default()
        },
        ..EndpointOptions::default()
    };
    let endpoint = match Endpoint::connect_client(args.gateway.as_str(), options).await {
        Ok(endpoint) => endpoint,
        Err(err) => {
            eprintln!("cannot connect to the gateway at {}: {err}", args.gateway);
            return ExitCode::FAILURE;
        }
    };
    let mut vconn = match endpoint.dial(args.server).await {
        Ok(vconn) => vconn,
        Err(err) => {
            eprintln!("cannot reach game server {}: {err}", args.server);
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "connected to game server {} through {} (vconn {}); type lines, Ctrl-D to quit",
        args.server,
        endpoint.peer_addr(),
        vconn.id()
    );

    let sender = vconn.sender();
    // Stdin is read on a plain thread (blocking reads), one line at a time, ended by `None`.
    let (line_tx, mut lines) = mpsc::channel::<Option<String>>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(line) => {
                    if line_tx.blocking_send(Some(line)).is_err() {
                        return; // the client is closing
                    }
                }
                Err(err) => {
                    eprintln!("cannot read stdin: {err}");
                    break;
                }
            }
        }
        let _ = line_tx.blocking_send(None);
    });
    let mut stdin_open = true;
    let code = loop {
        tokio::select! {
            line = lines.recv(), if stdin_open => match line.flatten() {
                Some(line) => {
                    if let Err(err) = sender.send(line.into_bytes()).await {
                        eprintln!("send failed: {err}");
                        break ExitCode::FAILURE;
                    }
                }
                None => stdin_open = false,
            },
            reply = vconn.recv() => match reply {
                Ok(msg) => println!("< {}", String::from_utf8_lossy(&msg)),
                Err(RecvError::Closed) => {
                    eprintln!("the server closed the conversation");
                    break ExitCode::SUCCESS;
                }
                Err(err) => {
                    eprintln!("connection lost: {err}");
                    break ExitCode::FAILURE;
                }
            },
            () = tokio::time::sleep(QUIET), if !stdin_open => break ExitCode::SUCCESS,
        }
    };
    vconn.close();
    endpoint.close();
    code
}
