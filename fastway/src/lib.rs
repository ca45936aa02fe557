//! The fastway gateway binary's library part: command-line configuration ([`config`]), kept apart
//! from `main.rs` so integration tests can use it.

pub mod config;
