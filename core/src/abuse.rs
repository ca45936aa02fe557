//! Per-address bookkeeping of misbehaviour worth a louder log line: repeated server auth failures.
//!
//! Each failed server authentication is already logged on its own (`error happends when accept server
//! from <addr>: server auth failed`). Someone guessing the key from one address produces a stream of
//! those; [`AuthFailures`] counts them per IP address in a fixed window and says when one address
//! reaches the threshold, so the runtime can log one warning that names it:
//! `5 server auth failures from 192.0.2.7 in the last 60 s`.
//!
//! Memory is bounded: at most [`AuthFailures::capacity`] addresses are tracked; when the table is full
//! expired windows are purged first, then the address whose window is oldest is forgotten. An attacker
//! spraying from many addresses can only make the tracker forget, never grow.
//!
//! Like the rest of the core it does no IO and reads no clock: the runtime passes the time in and
//! keeps the tracker behind whatever lock it already has.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures from one address within the window that trigger a warning.
pub const DEFAULT_THRESHOLD: u32 = 5;
/// The counting window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// Most addresses tracked at once.
pub const DEFAULT_CAPACITY: usize = 4096;

/// One address's failures in its current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

/// Counts server auth failures per IP address; see the module docs.
#[derive(Debug)]
pub struct AuthFailures {
    threshold: u32,
    window: Duration,
    capacity: usize,
    by_addr: HashMap<IpAddr, Window>,
}

impl Default for AuthFailures {
    fn default() -> Self {
        Self::new(DEFAULT_THRESHOLD, DEFAULT_WINDOW, DEFAULT_CAPACITY)
    }
}

/// One address failed authentication `count` times within `window`: log it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepeatedAuthFailures {
    /// The offending address.
    pub addr: IpAddr,
    /// Failures counted in the window (the threshold).
    pub count: u32,
    /// The window they fell in.
    pub window: Duration,
}

impl fmt::Display for RepeatedAuthFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} server auth failures from {} in the last {} s",
            self.count,
            self.addr,
            self.window.as_secs()
        )
    }
}

impl AuthFailures {
    /// A tracker that reports `threshold` failures from one address within `window`, remembering at
    /// most `capacity` addresses (each at least 1).
    pub fn new(threshold: u32, window: Duration, capacity: usize) -> Self {
        Self {
            threshold: threshold.max(1),
            window,
            capacity: capacity.max(1),
            by_addr: HashMap::new(),
        }
    }

    /// Most addresses tracked at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Addresses tracked now.
    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    /// Whether no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }

    /// Records one failure from `addr` at `now`. Returns a report each time the address reaches the
    /// threshold within its window; its count then starts over, so a steady attacker is reported
    /// once per `threshold` failures, not on every one.
    pub fn record(&mut self, addr: IpAddr, now: Instant) -> Option<RepeatedAuthFailures> {
        if !self.by_addr.contains_key(&addr) && self.by_addr.len() >= self.capacity {
            self.make_room(now);
        }
        let window = self.window;
        let entry = self.by_addr.entry(addr).or_insert(Window {
            start: now,
            count: 0,
        });
        if now.saturating_duration_since(entry.start) >= window {
            *entry = Window {
                start: now,
                count: 0,
            };
        }
        entry.count += 1;
        if entry.count < self.threshold {
            return None;
        }
        let count = entry.count;
        self.by_addr.remove(&addr);
        Some(RepeatedAuthFailures {
            addr,
            count,
            window,
        })
    }

    /// Frees at least one slot: expired windows first, else the oldest window.
    fn make_room(&mut self, now: Instant) {
        let window = self.window;
        self.by_addr
            .retain(|_, w| now.saturating_duration_since(w.start) < window);
        if self.by_addr.len() < self.capacity {
            return;
        }
        let oldest = self
            .by_addr
            .iter()
            .min_by_key(|(_, w)| w.start)
            .map(|(addr, _)| *addr);
        if let Some(addr) = oldest {
            self.by_addr.remove(&addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn the_fifth_failure_in_a_minute_is_reported_with_the_address() {
        let now = Instant::now();
        let mut failures = AuthFailures::default();
        for i in 0..4 {
            assert_eq!(failures.record(ip(7), now + Duration::from_secs(i)), None);
        }
        let report = failures
            .record(ip(7), now + Duration::from_secs(10))
            .expect("reported");
        assert_eq!(
            report.to_string(),
            "5 server auth failures from 192.0.2.7 in the last 60 s"
        );
        // The count starts over: the next report needs five more.
        for i in 0..4 {
            assert_eq!(
                failures.record(ip(7), now + Duration::from_secs(11 + i)),
                None
            );
        }
        assert!(
            failures
                .record(ip(7), now + Duration::from_secs(20))
                .is_some()
        );
    }

    #[test]
    fn failures_spread_beyond_the_window_are_not_reported() {
        let now = Instant::now();
        let mut failures = AuthFailures::default();
        for i in 0..20 {
            let at = now + Duration::from_secs(i * 20);
            assert_eq!(failures.record(ip(1), at), None, "failure {i}");
        }
    }

    #[test]
    fn addresses_are_counted_separately() {
        let now = Instant::now();
        let mut failures = AuthFailures::default();
        for last in 0..4u8 {
            for _ in 0..4 {
                assert_eq!(failures.record(ip(last), now), None);
            }
        }
        assert_eq!(failures.record(ip(2), now).map(|r| r.addr), Some(ip(2)));
    }

    #[test]
    fn memory_is_bounded_by_the_capacity_whatever_the_spray() {
        let now = Instant::now();
        let mut failures = AuthFailures::new(3, DEFAULT_WINDOW, 16);
        for i in 0..10_000u32 {
            let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            let _ = failures.record(addr, now + Duration::from_millis(u64::from(i)));
            assert!(failures.len() <= 16);
        }
        // A repeat offender is still caught while the spray goes on around it.
        let base = now + Duration::from_secs(20);
        let mut reported = false;
        for i in 0..3u32 {
            reported |= failures.record(ip(9), base).is_some();
            let noise = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i));
            let _ = failures.record(noise, base);
        }
        assert!(reported);
    }
}
