//! Wake-ups between tasks that cannot be lost.
//!
//! Both primitives keep their state in a channel, so a signal given while nobody waits is still seen by
//! the next wait: there is no window between "check" and "sleep" in which a wake-up could vanish.

use smol::channel::{self, Receiver, Sender};
use std::sync::{Mutex, PoisonError};
use std::task::{Poll, Waker};

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

    /// Waits until the latch is fired (returns at once if it already is).
    pub(crate) async fn wait(&self) {
        // Nothing is ever sent, so `recv` only returns once the channel is closed.
        let _ = self.rx.recv().await;
    }
}

/// One of the two tasks of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Task {
    /// The task that reads the socket.
    Reader = 0,
    /// The task that writes the socket.
    Writer = 1,
}

/// The wake-ups of one connection: a doorbell for each of its two tasks and a shared "closed" latch,
/// in one small allocation-free struct (an idle connection should cost almost nothing; a channel per
/// signal cost several allocations each).
#[derive(Debug, Default)]
pub(crate) struct ConnSignals {
    state: Mutex<SignalState>,
}

#[derive(Debug, Default)]
struct SignalState {
    closed: bool,
    rung: [bool; 2],
    wakers: [Option<Waker>; 2],
}

impl ConnSignals {
    fn state(&self) -> std::sync::MutexGuard<'_, SignalState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Rings `task`'s doorbell; a ring while it does not wait stays pending (rings collapse).
    pub(crate) fn ring(&self, task: Task) {
        let waker = {
            let mut state = self.state();
            state.rung[task as usize] = true;
            state.wakers[task as usize].take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Fires the closed latch and wakes both tasks; idempotent.
    pub(crate) fn close(&self) {
        let wakers = {
            let mut state = self.state();
            state.closed = true;
            [state.wakers[0].take(), state.wakers[1].take()]
        };
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }

    /// Whether [`ConnSignals::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// Takes a pending ring of `task` without waiting. Returns whether there was one.
    pub(crate) fn take(&self, task: Task) -> bool {
        std::mem::take(&mut self.state().rung[task as usize])
    }

    /// Waits for a ring of `task` and consumes it: `true`, or `false` once the connection is closed.
    pub(crate) async fn wait(&self, task: Task) -> bool {
        std::future::poll_fn(|cx| {
            let mut state = self.state();
            if state.closed {
                return Poll::Ready(false);
            }
            if std::mem::take(&mut state.rung[task as usize]) {
                return Poll::Ready(true);
            }
            register(&mut state.wakers[task as usize], cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Runs `work` unless the connection is closed first (`None`). Only `task` may call this.
    pub(crate) async fn or_closed<T>(
        &self,
        task: Task,
        work: impl Future<Output = T>,
    ) -> Option<T> {
        let closed = std::future::poll_fn(|cx| {
            let mut state = self.state();
            if state.closed {
                return Poll::Ready(None);
            }
            register(&mut state.wakers[task as usize], cx.waker());
            Poll::Pending
        });
        smol::future::or(closed, async { Some(work.await) }).await
    }
}

/// Stores `waker` in `slot` unless an equivalent one is already there.
fn register(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(old) if old.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
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
        let second = smol::future::or(
            async {
                bell.wait().await;
                true
            },
            async { false },
        );
        assert!(!smol::block_on(second), "two rings collapse into one");
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
    fn conn_signals_keep_rings_per_task_and_close_wakes_both() {
        let signals = std::sync::Arc::new(ConnSignals::default());
        signals.ring(Task::Writer);
        assert!(!signals.take(Task::Reader));
        assert!(smol::block_on(signals.wait(Task::Writer)));
        assert!(!signals.take(Task::Writer));
        assert_eq!(
            smol::block_on(signals.or_closed(Task::Reader, async { 1 })),
            Some(1)
        );
        let remote = std::sync::Arc::clone(&signals);
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            remote.ring(Task::Reader);
        });
        assert!(smol::block_on(signals.wait(Task::Reader)));
        assert!(thread.join().is_ok());
        let remote = std::sync::Arc::clone(&signals);
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            remote.close();
        });
        let pending = std::future::pending::<()>();
        assert_eq!(
            smol::block_on(signals.or_closed(Task::Writer, pending)),
            None
        );
        assert!(thread.join().is_ok());
        assert!(signals.is_closed());
        assert!(!smol::block_on(signals.wait(Task::Reader)));
    }

    #[test]
    fn a_fired_latch_releases_every_waiter() {
        let latch = Latch::new();
        let early = smol::future::or(
            async {
                latch.wait().await;
                true
            },
            async { false },
        );
        assert!(!smol::block_on(early));
        latch.fire();
        latch.fire();
        smol::block_on(latch.wait());
        smol::block_on(latch.clone().wait());
    }
}
