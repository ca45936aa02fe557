//! fastway over smol.
//!
//! * [`endpoint`]: the library game clients and game servers embed to talk to a fastway gateway
//!   ([`Endpoint`], [`VConn`]). Its futures work under any executor (smol, async-std, ...).

pub mod endpoint;

pub use endpoint::{
    ConnectError, DialError, Endpoint, EndpointOptions, RecvError, VConn, VConnSender,
};
