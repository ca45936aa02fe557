//! fastway-core: the sans-IO fastway protocol.

pub mod auth;
pub mod endpoint;
pub mod frame;
pub mod gateway;
mod idmap;
#[cfg(test)]
mod test_support;
