//! The one timer task: sleeps until the core's next deadline (gateway, snet handshakes, snet wait
//! timeouts), then fires it.

use super::shared::{Effects, State};
use std::sync::Arc;
use std::time::Instant;
use tokio::time::sleep_until;

/// Runs until aborted. Dispatch wakes it (through [`State::timer`]) whenever a core call produces a
/// deadline earlier than the one it sleeps for, e.g. right after an accept.
pub(crate) async fn run(state: Arc<State>) {
    let mut fx = Effects::default();
    loop {
        let next = state.lock().arm_timer();
        let sleep = async {
            match next {
                Some(at) => sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => state.call(&mut fx, |sb| sb.handle_timeout(Instant::now())),
            () = state.timer.notified() => {}
        }
    }
}
