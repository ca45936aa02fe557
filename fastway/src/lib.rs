//! The fastway gateway binary's library part: command-line configuration ([`config`]) and process
//! control ([`control`]), kept apart from `main.rs` so integration tests can use them.

pub mod config;
pub mod control;
