//! The timer thread: calls
//! [`Switchboard::handle_timeout`](fastway_core::switchboard::Switchboard::handle_timeout) when the
//! core's next deadline comes (the gateway's, and on snet ports the handshakes' and wait timeouts).
//!
//! The thread sleeps on a `Condvar` until the deadline it was last given. Every core call checks
//! `poll_timeout` afterwards (see [`Shared::rearm`](super::shared::Shared)) and rings this bell only
//! when the deadline moved earlier, so the common case costs one comparison.

use super::shared::Inner;
use super::sync::{lock, wait, wait_timeout};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

/// What the timer thread sleeps on.
#[derive(Debug, Default)]
pub(crate) struct TimerBell {
    state: Mutex<TimerState>,
    bell: Condvar,
}

#[derive(Debug, Default)]
struct TimerState {
    /// When to call `handle_timeout` next; `None` = no deadline.
    next: Option<Instant>,
    /// The gateway is shutting down: the thread must return.
    stop: bool,
}

impl TimerBell {
    /// Sets the next deadline and wakes the thread so it re-arms. Called with the core lock held
    /// (lock order: core, then timer), so it only stores and notifies.
    pub(crate) fn set(&self, next: Option<Instant>) {
        lock(&self.state).next = next;
        self.bell.notify_one();
    }

    /// Makes the thread return.
    pub(crate) fn stop(&self) {
        lock(&self.state).stop = true;
        self.bell.notify_one();
    }

    /// Blocks until the deadline has passed (true) or the timer is stopped (false).
    fn wait_due(&self) -> bool {
        let mut state = lock(&self.state);
        loop {
            if state.stop {
                return false;
            }
            match state.next {
                None => state = wait(&self.bell, state),
                Some(at) => {
                    let now = Instant::now();
                    if at <= now {
                        return true;
                    }
                    state = wait_timeout(&self.bell, state, at - now);
                }
            }
        }
    }
}

/// Body of the timer thread. The core lock is never taken while the timer lock is held.
pub(crate) fn run(inner: &Inner) {
    while inner.timer.wait_due() {
        inner.with_core_rearm(true, |shared| {
            shared.switchboard.handle_timeout(Instant::now());
        });
    }
}
