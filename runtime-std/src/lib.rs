//! fastway over std.

pub mod endpoint;

pub use endpoint::{
    ConnectError, DialError, Endpoint, EndpointOptions, RecvError, SendError, VConn, VConnSender,
};
