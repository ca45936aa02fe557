//! What the process can honestly report about itself: memory and threads, read from `/proc` on Linux.

use std::fmt;

/// Memory and thread figures of this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessStatus {
    /// Resident set size now, KiB.
    pub rss_kib: u64,
    /// Peak resident set size since start, KiB.
    pub peak_rss_kib: u64,
    /// Virtual memory size, KiB.
    pub virtual_kib: u64,
    /// OS threads.
    pub threads: u64,
}

impl ProcessStatus {
    /// Reads `/proc/self/status`; `None` where there is no such file (not Linux).
    pub fn read() -> Option<Self> {
        let text = std::fs::read_to_string("/proc/self/status").ok()?;
        Some(Self::parse(&text))
    }

    /// Parses the text of a `/proc/<pid>/status` file; missing fields are 0.
    pub fn parse(text: &str) -> Self {
        let mut status = Self::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let number = value
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            match key {
                "VmRSS" => status.rss_kib = number,
                "VmHWM" => status.peak_rss_kib = number,
                "VmSize" => status.virtual_kib = number,
                "Threads" => status.threads = number,
                _ => {}
            }
        }
        status
    }
}

impl fmt::Display for ProcessStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rss {} KiB, peak rss {} KiB, virtual {} KiB, threads {}",
            self.rss_kib, self.peak_rss_kib, self.virtual_kib, self.threads
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_fields_of_proc_status() {
        let text = "Name:\tfastway\nVmHWM:\t   2048 kB\nVmRSS:\t   1024 kB\nVmSize:\t 9999 kB\nThreads:\t3\n";
        assert_eq!(
            ProcessStatus::parse(text),
            ProcessStatus {
                rss_kib: 1024,
                peak_rss_kib: 2048,
                virtual_kib: 9999,
                threads: 3
            }
        );
    }

    #[test]
    fn reads_this_process_on_linux() {
        if cfg!(target_os = "linux") {
            let status = ProcessStatus::read().expect("/proc/self/status");
            assert!(status.rss_kib > 0 && status.threads > 0);
        }
    }
}
