//! Poison-tolerant locking.
//!
//! A panic while the core is locked (a bug) must not turn every later `stats` call into a
//! "poisoned lock" panic: the core stays consistent between calls, so we simply keep using it.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, ignoring poisoning.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
