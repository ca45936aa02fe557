//! fastway-core: the sans-IO fastway protocol.

pub mod auth;
pub mod frame;
pub mod snet;
