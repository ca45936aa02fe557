//! The timer task: sleeps until the core's next deadline, then lets it expire idle peers, stalled
//! handshakes (gateway auth and snet) and snet sessions whose client did not come back in time.

use super::shared::Inner;
use smol::Timer;
use std::sync::Arc;
use std::time::Instant;

/// Runs until cancelled. Woken early through `inner.timer_bell` whenever a core call makes the next
/// deadline earlier than the one it sleeps for (see `Shared::dispatch`).
pub(crate) async fn run(inner: Arc<Inner>) {
    loop {
        let next = inner.lock().arm_timer();
        let expired = match next {
            Some(at) => {
                smol::future::or(
                    async {
                        Timer::at(at).await;
                        true
                    },
                    async {
                        inner.timer_bell.wait().await;
                        false
                    },
                )
                .await
            }
            None => {
                inner.timer_bell.wait().await;
                false
            }
        };
        if expired {
            let now = Instant::now();
            let mut shared = inner.lock();
            shared.switchboard.handle_timeout(now);
            shared.dispatch();
        }
    }
}
