//! The fastway gateway binary's library part: command-line configuration ([`config`]), process
//! control ([`control`]), shell completions and the man page ([`generate`]), resource limits
//! ([`limits`]), logging setup ([`logging`]) and the Prometheus endpoint ([`metrics`]), kept apart
//! from `main.rs` so integration tests can use them.

#[cfg(feature = "rt-tokio")]
pub mod bench;
pub mod config;
pub mod control;
pub mod generate;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod serve;
