//! fastway over tokio.
//!
//! * [`endpoint`]: the library a game client or game server embeds to talk to a fastway gateway
//!   ([`Endpoint`], [`VConn`]).

pub mod endpoint;

pub use endpoint::{
    ConnectError, DialError, Endpoint, EndpointOptions, RecvError, SendError, VConn, VConnSender,
};
