//! Opening a link: resolve, TCP connect (with `connect_timeout`), TCP_NODELAY, the snet handshake if
//! configured (`snet.rs`), and for a game server the auth handshake, before the driver starts.

use super::driver::Shared;
use super::snet;
use super::{ConnectError, EndpointOptions};
use bytes::BytesMut;
use fastway_core::auth::CHALLENGE_LEN;
use fastway_core::endpoint::{Endpoint as Core, Role};
use smol::net::AsyncToSocketAddrs;
use smol::{Async, Timer};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

/// Connects, runs the handshake if the role has one, and starts the driver.
pub(super) async fn connect(
    addr: impl AsyncToSocketAddrs,
    role: Role,
    options: &EndpointOptions,
) -> Result<Arc<Shared>, ConnectError> {
    let socket = match options.connect_timeout {
        None => tcp_connect(addr).await?,
        Some(timeout) => {
            smol::future::or(tcp_connect(addr), async {
                Timer::after(timeout).await;
                Err(ConnectError::Timeout)
            })
            .await?
        }
    };
    let stream = socket.get_ref();
    stream.set_nodelay(true).map_err(ConnectError::Connect)?;
    let local_addr = stream.local_addr().map_err(ConnectError::Connect)?;
    let peer_addr = stream.peer_addr().map_err(ConnectError::Connect)?;

    if let Some(config) = options.snet {
        let (core, link) = snet::handshake(
            &socket,
            role,
            options.core.clone(),
            config,
            options.connect_timeout,
            peer_addr,
        )
        .await?;
        let (shared, wakes) =
            Shared::new(core, Some(link), local_addr, peer_addr, options.recv_queue);
        snet::spawn_driver(&shared, wakes, socket);
        return Ok(shared);
    }

    let is_server = matches!(role, Role::Server { .. });
    let mut core = Core::new(role, options.core.clone(), Instant::now())?;
    if is_server {
        handshake(&socket, &mut core).await?;
    }
    let (shared, wakes) = Shared::new(core, None, local_addr, peer_addr, options.recv_queue);
    shared.spawn_driver(wakes, socket, BytesMut::new());
    Ok(shared)
}

/// Resolves `addr` and tries each address in turn.
async fn tcp_connect(addr: impl AsyncToSocketAddrs) -> Result<Async<TcpStream>, ConnectError> {
    let addrs = smol::net::resolve(addr)
        .await
        .map_err(ConnectError::Resolve)?;
    let mut last_error = None;
    for addr in addrs {
        match Async::<TcpStream>::connect(addr).await {
            Ok(socket) => return Ok(socket),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.map_or(ConnectError::NoAddress, ConnectError::Connect))
}

/// Server role: reads exactly the 8-byte challenge (nothing after it, so no frame is consumed before
/// the driver runs), lets the core compute the answer, and writes it. Bounded by the core's handshake
/// deadline.
async fn handshake(socket: &Async<TcpStream>, core: &mut Core) -> Result<(), ConnectError> {
    let Some(deadline) = core.poll_timeout() else {
        return Err(ConnectError::HandshakeTimeout);
    };
    let exchange = async {
        let mut challenge = [0u8; CHALLENGE_LEN];
        let mut filled = 0;
        while filled < CHALLENGE_LEN {
            let n = socket
                .read_with(|s| (&*s).read(&mut challenge[filled..]))
                .await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the gateway closed the connection before sending its challenge",
                ));
            }
            filled += n;
        }
        let mut buf = BytesMut::from(&challenge[..]);
        core.handle_input(&mut buf, Instant::now())
            .map_err(|error| io::Error::other(error.to_string()))?;
        let mut answer = Vec::new();
        while let Some(bytes) = core.poll_transmit() {
            answer.extend_from_slice(&bytes);
        }
        let mut written = 0;
        while written < answer.len() {
            let n = socket
                .write_with(|s| (&*s).write(&answer[written..]))
                .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            written += n;
        }
        Ok(())
    };
    smol::future::or(
        async { exchange.await.map_err(ConnectError::Handshake) },
        async {
            Timer::at(deadline).await;
            Err(ConnectError::HandshakeTimeout)
        },
    )
    .await
}
