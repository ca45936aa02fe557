//! Process resource limits. The gateway holds one file descriptor per connection, and the usual
//! default soft limit (1024) is far below `--max-clients`; the binary raises it at start.

use std::io;

/// The open-files limit before and after [`raise_nofile_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit the process started with.
    pub old: u64,
    /// The soft limit now (the hard limit, if raising worked).
    pub new: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (on macOS to what the kernel allows). Fails if
/// the limit cannot be read or set; the process then keeps the limit it had.
pub fn raise_nofile_limit() -> io::Result<NofileLimit> {
    let (old, _hard) = rlimit::Resource::NOFILE.get()?;
    let new = rlimit::increase_nofile_limit(u64::MAX)?;
    Ok(NofileLimit { old, new })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_leaves_the_soft_limit_at_the_hard_limit() {
        let limit = raise_nofile_limit().expect("raise");
        assert!(limit.new >= limit.old);
        let (soft, hard) = rlimit::Resource::NOFILE.get().expect("get");
        assert_eq!(soft, limit.new);
        assert!(soft <= hard);
    }
}
