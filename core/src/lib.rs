//! fastway-core: the fastway game-gateway protocol as sans-IO state machines.
//!
//! Nothing here touches a socket, a thread, an async runtime or the clock: inputs are method calls
//! (bytes arrived, a connection closed, the time is now `T`), outputs are pulled (bytes to write,
//! actions, events). Time and randomness are passed in. The runtime crates (`fastway-tokio`,
//! `fastway-smol`, `fastway-std`) drive these machines over real sockets; you can drive them from your
//! own event loop the same way.
//!
//! * [`frame`]: the incremental frame decoder and the command encoders (PROTOCOL.md §3–4).
//! * [`auth`]: the game server's challenge/response, both sides (PROTOCOL.md §5).
//! * [`buffer`]: a `BytesMut` that recycles its allocations, so routing settles at no allocation.
//! * [`abuse`]: per-address counting of repeated server auth failures, bounded in memory.
//! * [`gateway`]: the gateway: registries, vconn routing, limits, timeouts (PROTOCOL.md §6).
//! * [`endpoint`]: a game client's or game server's side of a link to the gateway (ENDPOINT.md).
//! * [`snet`]: the reconnectable, optionally RC4-encrypted stream under either (SNET.md).
//! * [`rng`]: a pool of randomness drawn ahead of time, so that runtimes never ask the OS under a lock.
//!
//! # Example: a gateway and two endpoints, entirely in memory
//!
//! A game server (id 7) authenticates, a game client dials it, they exchange a message, the client
//! closes. The `pump` function plays the part of the sockets.
//!
//! ```
//! use bytes::BytesMut;
//! use fastway_core::endpoint::{Endpoint, EndpointConfig, Event, Role};
//! use fastway_core::gateway::{Gateway, GatewayConfig, PeerId};
//! use std::time::Instant;
//!
//! # struct Rng(u64);
//! # impl rand_core::TryRng for Rng {
//! #     type Error = core::convert::Infallible;
//! #     fn try_next_u32(&mut self) -> Result<u32, Self::Error> { Ok(self.try_next_u64()? as u32) }
//! #     fn try_next_u64(&mut self) -> Result<u64, Self::Error> { self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1); Ok(self.0) }
//! #     fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> { for b in dst { *b = self.try_next_u64()? as u8; } Ok(()) }
//! # }
//! # let mut os_rng = Rng(1); // a real gateway passes the OS's CSPRNG here
//! let now = Instant::now();
//! let mut gateway = Gateway::new(GatewayConfig { auth_key: b"secret".to_vec(), ..GatewayConfig::default() });
//!
//! let server_role = Role::Server { id: 7, auth_key: b"secret".to_vec() };
//! let mut server = Endpoint::new(server_role, EndpointConfig::default(), now).unwrap();
//! let server_peer = gateway.accept_server(now, &mut os_rng);
//! let mut client = Endpoint::new(Role::Client, EndpointConfig::default(), now).unwrap();
//! let client_peer = gateway.accept_client(now).unwrap();
//!
//! /// Moves bytes both ways until nobody has anything left to say.
//! fn pump(gw: &mut Gateway, links: &mut [(&mut Endpoint, PeerId)], now: Instant) {
//!     loop {
//!         let mut moved = false;
//!         for (endpoint, peer) in links.iter_mut() {
//!             while let Some(bytes) = endpoint.poll_transmit() {
//!                 gw.handle_input(*peer, &mut BytesMut::from(&bytes[..]), now);
//!                 moved = true;
//!             }
//!             let mut batch = Vec::new();
//!             gw.poll_transmit(*peer, now, &mut batch);
//!             for bytes in batch {
//!                 endpoint.handle_input(&mut BytesMut::from(&bytes[..]), now).unwrap();
//!                 moved = true;
//!             }
//!         }
//!         while gw.poll_action().is_some() {} // a runtime would wake writers, close sockets, ...
//!         if !moved {
//!             return;
//!         }
//!     }
//! }
//!
//! pump(&mut gateway, &mut [(&mut server, server_peer), (&mut client, client_peer)], now);
//! assert_eq!(server.poll_event(), Some(Event::Ready)); // challenge answered
//!
//! client.dial(7).unwrap();
//! pump(&mut gateway, &mut [(&mut server, server_peer), (&mut client, client_peer)], now);
//! let Some(Event::Dialed { conn, remote: 7, .. }) = client.poll_event() else { panic!() };
//! let Some(Event::Incoming { conn: incoming, remote: client_id }) = server.poll_event() else { panic!() };
//! assert_eq!((incoming, client_id), (conn, 1));
//!
//! client.send(conn, b"hello").unwrap();
//! pump(&mut gateway, &mut [(&mut server, server_peer), (&mut client, client_peer)], now);
//! let Some(Event::Data { payload, .. }) = server.poll_event() else { panic!() };
//! assert_eq!(&payload[..], b"hello");
//! server.send(conn, b"welcome").unwrap();
//!
//! client.close(conn);
//! pump(&mut gateway, &mut [(&mut server, server_peer), (&mut client, client_peer)], now);
//! assert!(matches!(server.poll_event(), Some(Event::Closed { conn: c, .. }) if c == conn));
//! assert_eq!(gateway.stats().vconns, 0);
//! ```

pub mod abuse;
pub mod auth;
pub mod buffer;
pub mod endpoint;
pub mod frame;
#[cfg(any(test, feature = "fuzz"))]
pub mod fuzz;
pub mod gateway;
mod idmap;
pub mod rng;
pub mod snet;
pub mod switchboard;
#[cfg(test)]
mod test_support;
