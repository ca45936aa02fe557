//! The baseline: a plain TCP relay. Each accepted client gets its own connection to a backend (round
//! robin) and bytes are copied both ways 1:1, with no parsing and no routing. It is what a forwarder
//! costs at least on this machine, so fastway's figures are shown as ratios of it.
//!
//! It runs as a child process (`fastway-bench relay-server`) so its CPU time and memory are measured
//! the same way as the gateway's.

use super::cli::RelayArgs;
use std::io::{self, BufRead};
use std::net::SocketAddr;
use std::process::ExitCode;
use tokio::net::{TcpListener, TcpStream};

/// Copy buffer per direction (tokio's default is 8 KiB; a large one keeps 16 KiB messages to one
/// read each).
const COPY_BUFFER: usize = 64 * 1024;

/// The line the relay logs on stderr once it listens; the parent reads the address from it.
pub const LISTENING: &str = "relay listening at - ";

/// Runs the relay until its standard input closes (the parent exits or drops its handle).
pub fn main(args: &RelayArgs) -> ExitCode {
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("relay: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Ends the process when the parent goes away, whatever the runtime is doing.
    std::thread::spawn(|| {
        let mut line = String::new();
        while matches!(io::stdin().lock().read_line(&mut line), Ok(n) if n > 0) {
            line.clear();
        }
        std::process::exit(0);
    });
    let result = runtime.block_on(async {
        let listener = TcpListener::bind(args.listen).await?;
        eprintln!("{LISTENING}{}", listener.local_addr()?);
        serve(listener, args.backend.clone()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("relay: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Accepts clients forever; client `i` is relayed to `backends[i % len]`.
pub async fn serve(listener: TcpListener, backends: Vec<SocketAddr>) -> io::Result<()> {
    if backends.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no backend"));
    }
    let mut next = 0usize;
    loop {
        let (client, _) = listener.accept().await?;
        let backend = backends[next % backends.len()];
        next = next.wrapping_add(1);
        tokio::spawn(async move {
            if let Err(err) = relay(client, backend).await {
                if err.kind() != io::ErrorKind::ConnectionReset {
                    eprintln!("relay: {err}");
                }
            }
        });
    }
}

async fn relay(mut client: TcpStream, backend: SocketAddr) -> io::Result<()> {
    client.set_nodelay(true)?;
    let mut server = TcpStream::connect(backend).await?;
    server.set_nodelay(true)?;
    tokio::io::copy_bidirectional_with_sizes(&mut client, &mut server, COPY_BUFFER, COPY_BUFFER)
        .await
        .map(|_| ())
}
