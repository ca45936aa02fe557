//! fastway-core: the sans-IO fastway protocol.

pub mod auth;
pub mod endpoint;
pub mod frame;
