//! Echo game servers: every data frame that arrives goes back verbatim (same vconn), commands are
//! dropped. One read and at most one write per wake-up.
//!
//! Behind fastway a server dials the gateway's server port and authenticates (PROTOCOL.md §5);
//! behind the relay it listens and the relay dials it once per client. The echo loop is the same,
//! so the load costs the same in both modes.

use super::wire::{self, Item};
use bytes::{Buf, BytesMut};
use fastway_core::auth::{CHALLENGE_LEN, Challenge, server_response};
use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Read buffer of an echo connection.
const READ_BUFFER: usize = 64 * 1024;

/// Connects to a gateway's server port as game server `id`, authenticates with `key`, then echoes
/// until the gateway closes the connection.
pub async fn serve_gateway(
    addr: SocketAddr,
    id: u32,
    key: Vec<u8>,
    max_len: u32,
) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut challenge = [0u8; CHALLENGE_LEN];
    stream.read_exact(&mut challenge).await?;
    stream
        .write_all(&server_response(&Challenge(challenge), &key, id))
        .await?;
    echo(stream, max_len).await
}

/// Binds an echo server for the relay on 127.0.0.1 (ephemeral port).
pub async fn bind_raw() -> io::Result<TcpListener> {
    TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await
}

/// Accepts connections forever, echoing each on its own task.
pub async fn serve_raw(listener: TcpListener, max_len: u32) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(echo(stream, max_len));
    }
}

/// Echoes data frames until EOF.
async fn echo(mut stream: TcpStream, max_len: u32) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    let mut out = BytesMut::new();
    loop {
        if buf.capacity() - buf.len() < READ_BUFFER / 4 {
            buf.reserve(READ_BUFFER);
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        let mut commands = false;
        let used = wire::scan(&buf, max_len, |item| {
            commands |= matches!(item, Item::Command(_))
        })
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
        if used == 0 {
            continue;
        }
        if commands {
            // Rare (Connect / Close): copy the data frames only.
            let mut at = 0;
            wire::scan(&buf[..used], max_len, |item| {
                let len = match item {
                    Item::Data { payload, .. } => payload.len(),
                    Item::Command(message) => message.len(),
                } + fastway_core::frame::HEADER_LEN;
                if let Item::Data { .. } = item {
                    out.extend_from_slice(&buf[at..at + len]);
                }
                at += len;
            })
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
            stream.write_all(&out).await?;
            out.clear();
        } else {
            stream.write_all(&buf[..used]).await?;
        }
        buf.advance(used);
    }
}
