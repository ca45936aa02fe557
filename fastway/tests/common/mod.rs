//! Shared test support: start a gateway of any compiled runtime, and raw-socket peers.
#![allow(dead_code)]

pub mod endpoints;
pub mod load;
pub mod process;
pub mod proxy;
pub mod raw;
pub mod scrape;

pub use fastway::config::RuntimeKind;
use fastway::serve::{RunningGateway, ServeOptions};
use fastway_core::gateway::{GatewayConfig, GatewayStats};
use std::net::SocketAddr;
use std::time::Duration;

/// Instantiates each listed test once per compiled runtime: every `fn test(kind: RuntimeKind)` of the
/// calling file becomes `tokio_rt::test`, `smol_rt::test` and `std_rt::test`, each behind its feature.
#[allow(unused_macros)]
macro_rules! per_runtime {
    ($($test:ident),* $(,)?) => {
        #[cfg(feature = "rt-tokio")]
        mod tokio_rt {
            $( #[test] fn $test() { super::$test(super::RuntimeKind::Tokio) } )*
        }
        #[cfg(feature = "rt-smol")]
        mod smol_rt {
            $( #[test] fn $test() { super::$test(super::RuntimeKind::Smol) } )*
        }
        #[cfg(feature = "rt-std")]
        mod std_rt {
            $( #[test] fn $test() { super::$test(super::RuntimeKind::Std) } )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use per_runtime;

/// Gateway settings for tests: generous queues, no idle timeouts unless a test sets them.
pub fn test_config() -> GatewayConfig {
    GatewayConfig {
        client_idle_timeout: None,
        server_idle_timeout: None,
        handshake_timeout: Duration::from_secs(5),
        ..GatewayConfig::default()
    }
}

/// A gateway running on 127.0.0.1 ephemeral ports, shut down when dropped.
pub struct Gw {
    pub client: SocketAddr,
    pub server: SocketAddr,
    running: Option<RunningGateway>,
}

impl Gw {
    pub fn start(kind: RuntimeKind, gateway: GatewayConfig) -> Self {
        let options = ServeOptions::loopback(gateway);
        let running = fastway::serve::start(kind, options).expect("gateway starts");
        Self {
            client: running.client_addr(),
            server: running.server_addr(),
            running: Some(running),
        }
    }

    /// The running gateway, for what the tests start next to it (the metrics endpoint).
    pub fn running(&self) -> &RunningGateway {
        self.running.as_ref().expect("gateway still running")
    }

    pub fn stats(&self) -> GatewayStats {
        self.running
            .as_ref()
            .map(RunningGateway::stats)
            .unwrap_or_default()
    }

    pub fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().expect("clean shutdown");
        }
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.shutdown();
        }
    }
}
