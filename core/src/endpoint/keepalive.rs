//! Keepalive timing: when to send a Ping and when an unanswered Ping counts as timed out.
//!
//! One Ping is in flight at a time, as in both originals: wait `interval`, send a Ping, wait up to
//! `timeout` for the reply; a reply (or a timeout the endpoint survives) starts the next interval.
//! Pings carry no sequence number, so a late reply is taken as the answer to whatever Ping is
//! outstanding; one that arrives while none is outstanding is ignored.

use std::time::{Duration, Instant};

/// What a due keepalive deadline asks the endpoint to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeepaliveAction {
    /// Queue a Ping.
    SendPing,
    /// The outstanding Ping was not answered in time.
    TimedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Keepalive disabled, not started yet, or stopped.
    Off,
    /// Next Ping due at `next_ping` (`None`: the interval overflows `Instant`, i.e. never).
    Idle { next_ping: Option<Instant> },
    /// A Ping is outstanding; it times out at `deadline`.
    Waiting { deadline: Option<Instant> },
}

/// The keepalive timer state of one endpoint.
#[derive(Debug, Clone)]
pub(super) struct Keepalive {
    interval: Option<Duration>,
    timeout: Duration,
    phase: Phase,
}

impl Keepalive {
    /// A stopped keepalive; `interval == None` keeps it off for good.
    pub(super) fn new(interval: Option<Duration>, timeout: Duration) -> Self {
        Self {
            interval,
            timeout,
            phase: Phase::Off,
        }
    }

    /// Starts the first interval (when the link becomes usable).
    pub(super) fn start(&mut self, now: Instant) {
        self.phase = self.idle_from(now);
    }

    /// Stops for good (the link ended).
    pub(super) fn stop(&mut self) {
        self.phase = Phase::Off;
    }

    fn idle_from(&self, now: Instant) -> Phase {
        match self.interval {
            Some(interval) => Phase::Idle {
                next_ping: now.checked_add(interval),
            },
            None => Phase::Off,
        }
    }

    /// The next instant at which [`on_timeout`](Self::on_timeout) has something to do.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Off => None,
            Phase::Idle { next_ping } => next_ping,
            Phase::Waiting { deadline } => deadline,
        }
    }

    /// Advances the timer to `now`; at most one action per call.
    pub(super) fn on_timeout(&mut self, now: Instant) -> Option<KeepaliveAction> {
        match self.phase {
            Phase::Idle {
                next_ping: Some(due),
            } if now >= due => {
                self.phase = Phase::Waiting {
                    deadline: now.checked_add(self.timeout),
                };
                Some(KeepaliveAction::SendPing)
            }
            Phase::Waiting {
                deadline: Some(due),
            } if now >= due => {
                self.phase = self.idle_from(now);
                Some(KeepaliveAction::TimedOut)
            }
            _ => None,
        }
    }

    /// A Ping reply arrived. Returns whether it answered an outstanding Ping.
    pub(super) fn on_pong(&mut self, now: Instant) -> bool {
        if matches!(self.phase, Phase::Waiting { .. }) {
            self.phase = self.idle_from(now);
            true
        } else {
            false
        }
    }
}
