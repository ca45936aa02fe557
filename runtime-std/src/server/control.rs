//! What the event loop shares with [`GatewayHandle`](super::GatewayHandle)s on other threads.
//!
//! The loop owns every socket; the core sits behind a `Mutex` so that a handle can read its counters
//! and peers. Only the loop thread ever calls into the core: it takes the lock once per wake-up
//! (uncontended unless a handle is reading right then) and releases it before it blocks in `poll`,
//! so a `stats` or `conns` request waits at most one round of work. A stop request is a flag plus a
//! [`mio::Waker`] that interrupts `poll`.

use super::sync::lock;
use fastway_core::switchboard::Switchboard;
use mio::Waker;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The state shared between the loop and the handles.
#[derive(Debug)]
pub(crate) struct Control {
    /// The sans-IO gateway, socket by socket (snet included).
    core: Mutex<Switchboard>,
    /// Set by `GatewayHandle::shutdown`.
    stop: AtomicBool,
    /// Wakes the loop from `poll`.
    waker: Waker,
}

impl Control {
    /// Shares `core` with the loop that `waker` wakes.
    pub(crate) fn new(core: Switchboard, waker: Waker) -> Self {
        Self {
            core: Mutex::new(core),
            stop: AtomicBool::new(false),
            waker,
        }
    }

    /// The core, locked (poisoning ignored: the core stays consistent between calls).
    pub(crate) fn core(&self) -> MutexGuard<'_, Switchboard> {
        lock(&self.core)
    }

    /// Asks the loop to shut the gateway down, and wakes it.
    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Err(err) = self.waker.wake() {
            log::error!("cannot wake the gateway loop to stop it: {err}");
        }
    }

    /// Whether a stop was requested.
    pub(crate) fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}
