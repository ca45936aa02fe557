//! Endpoint tests, one per rule: ENDPOINT.md §5, our §6 decisions, and the inbound error rules.
#![allow(clippy::unwrap_used)]

use super::*;
use std::time::Duration;

mod data;
mod dial;
mod errors;
mod handshake;
mod keepalive;
mod props;
mod wire;

/// Hex with any whitespace, as the specs write it.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// A config without keepalive, so that tests not about keepalive see no Pings.
fn quiet() -> EndpointConfig {
    EndpointConfig {
        ping_interval: None,
        ..EndpointConfig::default()
    }
}

fn client_with(config: EndpointConfig) -> (Endpoint, Instant) {
    let now = Instant::now();
    (Endpoint::new(Role::Client, config, now).unwrap(), now)
}

fn client() -> (Endpoint, Instant) {
    client_with(quiet())
}

fn server_with(config: EndpointConfig) -> (Endpoint, Instant) {
    let now = Instant::now();
    let role = Role::Server {
        id: 123,
        auth_key: b"123".to_vec(),
    };
    (Endpoint::new(role, config, now).unwrap(), now)
}

/// Feeds `bytes` as one read; everything complete must be consumed.
fn feed(ep: &mut Endpoint, bytes: &[u8], now: Instant) -> Result<(), EndpointError> {
    let mut buf = BytesMut::from(bytes);
    ep.handle_input(&mut buf, now)
}

/// Everything the endpoint wants written, concatenated.
fn sent(ep: &mut Endpoint) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(bytes) = ep.poll_transmit() {
        out.extend_from_slice(&bytes);
    }
    out
}

fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

fn cmd(command: Command) -> Vec<u8> {
    command.to_bytes().to_vec()
}

fn data(conn: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    crate::frame::encode_data(conn, payload, &mut buf);
    buf.to_vec()
}

fn close_frame(conn: u32) -> Vec<u8> {
    cmd(Command::Close { conn })
}

/// Opens vconn `conn` from the remote side and drains the `Incoming` event.
fn incoming(ep: &mut Endpoint, conn: u32, remote: u32, now: Instant) {
    feed(ep, &cmd(Command::Connect { conn, remote }), now).unwrap();
    assert_eq!(events(ep), vec![Event::Incoming { conn, remote }]);
}

/// Every internal table is empty: nothing leaked.
fn assert_no_leaks(ep: &Endpoint) {
    assert!(ep.conns.is_empty(), "conns: {:?}", ep.conns);
    assert!(ep.closing.is_empty(), "closing: {:?}", ep.closing);
    assert!(ep.pending.is_empty(), "pending: {:?}", ep.pending);
    assert!(ep.live_dials.is_empty(), "live dials: {:?}", ep.live_dials);
}
