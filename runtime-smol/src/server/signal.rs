//! Wake-ups between tasks that cannot be lost.
//!
//! Both primitives keep their state in a channel, so a signal given while nobody waits is still seen by
//! the next wait: there is no window between "check" and "sleep" in which a wake-up could vanish.

use smol::channel::{self, Receiver, Sender};

/// A doorbell for one waiter: a ring while nobody waits stays pending (at most one), so the next
/// [`Doorbell::wait`] returns at once. Extra rings collapse into one, which is what a "there is work,
/// go and look" signal needs.
#[derive(Debug, Clone)]
pub(crate) struct Doorbell {
    tx: Sender<()>,
    rx: Receiver<()>,
}

impl Doorbell {
    pub(crate) fn new() -> Self {
        let (tx, rx) = channel::bounded(1);
        Self { tx, rx }
    }

    /// Leaves a ring; a full channel means one is already pending, which is just as good.
    pub(crate) fn ring(&self) {
        let _ = self.tx.try_send(());
    }

    /// Takes a pending ring without waiting. Returns whether there was one.
    pub(crate) fn take(&self) -> bool {
        self.rx.try_recv().is_ok()
    }

    /// Waits for a ring and consumes it.
    pub(crate) async fn wait(&self) {
        // We hold a sender ourselves, so the channel never closes and `recv` only returns on a ring.
        let _ = self.rx.recv().await;
    }
}

/// A one-way switch that every waiter sees, present or future: used for "this connection is closed"
/// and "the gateway is shutting down".
#[derive(Debug, Clone)]
pub(crate) struct Latch {
    tx: Sender<()>,
    rx: Receiver<()>,
}

impl Latch {
    pub(crate) fn new() -> Self {
        let (tx, rx) = channel::bounded(1);
        Self { tx, rx }
    }

    /// Fires the latch; idempotent.
    pub(crate) fn fire(&self) {
        self.tx.close();
    }

    /// Whether [`Latch::fire`] was called.
    pub(crate) fn is_fired(&self) -> bool {
        self.tx.is_closed()
    }

    /// Waits until the latch is fired (returns at once if it already is).
    pub(crate) async fn wait(&self) {
        // Nothing is ever sent, so `recv` only returns once the channel is closed.
        let _ = self.rx.recv().await;
    }

    /// Runs `work` unless the latch fires first: `None` means it fired. When both are ready the latch
    /// wins, so a closed connection does no further work.
    pub(crate) async fn or_fired<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        smol::future::or(
            async {
                self.wait().await;
                None
            },
            async { Some(work.await) },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_ring_before_the_wait_is_not_lost_and_rings_collapse() {
        let bell = Doorbell::new();
        bell.ring();
        bell.ring();
        smol::block_on(bell.wait());
        assert!(!bell.take());
        bell.ring();
        assert!(bell.take());
    }

    #[test]
    fn a_ring_from_another_thread_wakes_the_waiter() {
        let bell = Doorbell::new();
        let remote = bell.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            remote.ring();
        });
        smol::block_on(bell.wait());
        assert!(thread.join().is_ok());
    }

    #[test]
    fn a_fired_latch_releases_every_waiter_and_wins_races() {
        let latch = Latch::new();
        assert!(!latch.is_fired());
        assert_eq!(smol::block_on(latch.or_fired(async { 5 })), Some(5));
        latch.fire();
        latch.fire();
        assert!(latch.is_fired());
        smol::block_on(latch.wait());
        smol::block_on(latch.clone().wait());
        assert_eq!(smol::block_on(latch.or_fired(async { 5 })), None);
    }
}
