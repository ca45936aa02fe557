//! What the bench measures besides counting: a process's CPU time and memory from `/proc`, and a
//! latency histogram with percentiles.
//!
//! CPU time is `utime + stime` of `/proc/<pid>/stat` (all threads of the process), in clock ticks of
//! `USER_HZ`, which is 100 on every Linux build we know of (the value `getconf CLK_TCK` prints); the
//! resolution is therefore 10 ms, about 0.1 % of a 10-second run. Memory is `VmRSS` (resident now)
//! and `VmHWM` (peak resident) of `/proc/<pid>/status`, in KiB.

use std::fmt;
use std::io;
use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat`'s times (Linux's `USER_HZ`).
pub const USER_HZ: u64 = 100;

/// Why a `/proc` file could not be read.
#[derive(Debug)]
pub enum ProcError {
    /// The file could not be read (no such process, not Linux, …).
    Io(u32, io::Error),
    /// The file did not have the expected shape.
    Parse(u32, &'static str),
}

impl fmt::Display for ProcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcError::Io(pid, err) => write!(f, "cannot read /proc/{pid}: {err}"),
            ProcError::Parse(pid, what) => write!(f, "unexpected /proc/{pid} format: {what}"),
        }
    }
}

impl std::error::Error for ProcError {}

/// CPU time a process has used so far, user plus system, over all its threads.
pub fn cpu_time(pid: u32) -> Result<Duration, ProcError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|err| ProcError::Io(pid, err))?;
    // The command name (field 2) may contain spaces and parentheses: start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or(ProcError::Parse(pid, "no ')' in stat"))?;
    // After ')' come field 3 (state) onwards; utime is field 14, stime field 15.
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let mut next = || -> Result<u64, ProcError> {
        fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or(ProcError::Parse(pid, "utime/stime"))
    };
    let ticks = next()? + next()?;
    Ok(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// Resident memory of a process, in KiB: now (`VmRSS`) and its peak (`VmHWM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// Resident set size now.
    pub rss_kib: u64,
    /// Highest resident set size so far.
    pub peak_kib: u64,
}

/// Reads a process's resident memory.
pub fn memory(pid: u32) -> Result<Memory, ProcError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|err| ProcError::Io(pid, err))?;
    let field = |name: &str| -> Result<u64, ProcError> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or(ProcError::Parse(pid, "VmRSS/VmHWM"))
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// Values below this are counted exactly, one bucket each.
const LINEAR: u64 = 128;
/// Sub-buckets per power of two above [`LINEAR`]: 64 gives a relative error under 1.6 %.
const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
/// Enough buckets for any `u64`.
const BUCKETS: usize = LINEAR as usize + (64 - 7) * SUB;

/// A log-linear histogram of `u64` values (nanoseconds here): exact below 128, within 1.6 % above,
/// a fixed 30 KiB per histogram and O(1) recording. Histograms of different clients merge.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }
}

fn bucket_of(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let exp = 63 - value.leading_zeros(); // ≥ 7
    let sub = (value >> (exp - SUB_BITS)) as usize & (SUB - 1);
    LINEAR as usize + (exp as usize - 7) * SUB + sub
}

/// The largest value that lands in `bucket` (so percentiles never under-report).
fn bucket_high(bucket: usize) -> u64 {
    if bucket < LINEAR as usize {
        return bucket as u64;
    }
    let exp = (bucket - LINEAR as usize) / SUB + 7;
    let sub = ((bucket - LINEAR as usize) % SUB) as u64;
    let step = 1u64 << (exp as u32 - SUB_BITS);
    ((1u64 << exp) + sub * step).saturating_add(step - 1)
}

impl Histogram {
    /// Counts one value.
    pub fn record(&mut self, value: u64) {
        self.counts[bucket_of(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value recorded (exact), 0 if none.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value below or at which `quantile` (0.0 ..= 1.0) of the recorded values lie, rounded up
    /// to its bucket's upper edge (never above the maximum); 0 if nothing was recorded.
    pub fn quantile(&self, quantile: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((quantile.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_high(bucket).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for value in (0..200_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let bucket = bucket_of(value);
            assert!(bucket >= last && bucket < BUCKETS);
            last = bucket;
            let high = bucket_high(bucket);
            assert!(high >= value, "{value} in bucket up to {high}");
            assert!(high - value <= value / 60, "{value} vs {high}");
        }
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut histogram = Histogram::default();
        for value in 1..=10_000u64 {
            histogram.record(value * 1000);
        }
        let p50 = histogram.quantile(0.5) as f64;
        assert!((p50 / 5_000_000.0 - 1.0).abs() < 0.02, "{p50}");
        let p99 = histogram.quantile(0.99) as f64;
        assert!((p99 / 9_900_000.0 - 1.0).abs() < 0.02, "{p99}");
        assert_eq!(histogram.quantile(1.0), 10_000_000);
        assert_eq!(histogram.max(), 10_000_000);
        let mut other = Histogram::default();
        other.record(20_000_000);
        histogram.merge(&other);
        assert_eq!(histogram.count(), 10_001);
        assert_eq!(histogram.quantile(1.0), 20_000_000);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        cpu_time(pid).unwrap();
        let memory = memory(pid).unwrap();
        assert!(memory.rss_kib > 0 && memory.peak_kib >= memory.rss_kib);
        assert!(matches!(cpu_time(u32::MAX), Err(ProcError::Io(..))));
    }
}
