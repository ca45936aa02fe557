//! The PID file (CONFIG.md §4): the decimal process id, no newline, written while the gateway runs
//! and removed when it stops. Nothing is written when the process is pid 1 (e.g. in a container).

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The PID file could not be written.
#[derive(Debug)]
pub struct PidFileError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub source: io::Error,
}

impl fmt::Display for PidFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot write pid file {}: {}",
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for PidFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Owns the PID file: removes it when dropped, or earlier with [`remove`](Self::remove).
#[derive(Debug)]
#[must_use = "the pid file is removed as soon as the guard is dropped"]
pub struct PidFile {
    path: Option<PathBuf>,
}

impl PidFile {
    /// Writes this process's id to `path` (replacing an older file), unless the process is pid 1.
    pub fn create(path: impl AsRef<Path>) -> Result<PidFile, PidFileError> {
        Self::create_for(path, std::process::id())
    }

    /// Writes `pid` to `path` with mode 0644 (on Unix), unless `pid` is 1, in which case nothing is
    /// written and the guard holds no file.
    pub fn create_for(path: impl AsRef<Path>, pid: u32) -> Result<PidFile, PidFileError> {
        let path = path.as_ref();
        if pid == 1 {
            return Ok(PidFile { path: None });
        }
        let err = |source| PidFileError {
            path: path.to_owned(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
        let mut file = options.open(path).map_err(err)?;
        file.write_all(pid.to_string().as_bytes()).map_err(err)?;
        Ok(PidFile {
            path: Some(path.to_owned()),
        })
    }

    /// The file this guard owns; `None` when running as pid 1 or after [`remove`](Self::remove).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Removes the file now (e.g. before `std::process::exit`, which skips destructors). A file that is
    /// already gone is not an error; calling this again does nothing.
    pub fn remove(&mut self) -> io::Result<()> {
        match self.path.take() {
            None => Ok(()),
            Some(path) => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let path = self.path.clone().unwrap_or_default();
        if let Err(e) = self.remove() {
            log::warn!("cannot remove pid file {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed at the end of the test.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("fastway-pidfile-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn writes_decimal_pid_without_newline_and_removes_on_drop() {
        let dir = TempDir::new("write");
        let path = dir.0.join("fastway.pid");
        std::fs::write(&path, "stale contents that are longer").expect("stale file");
        let guard = PidFile::create_for(&path, 4242).expect("pid file");
        assert_eq!(guard.path(), Some(path.as_path()));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "4242");
        drop(guard);
        assert!(!path.exists());
    }

    #[cfg(unix)]
    #[test]
    fn new_file_has_mode_0644_at_most() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("mode");
        let path = dir.0.join("fastway.pid");
        let _guard = PidFile::create_for(&path, 7).expect("pid file");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode & !0o644, 0, "mode {mode:o}");
        assert_ne!(mode & 0o600, 0, "owner can read and write, mode {mode:o}");
    }

    #[test]
    fn pid_1_writes_nothing() {
        let dir = TempDir::new("pid1");
        let path = dir.0.join("fastway.pid");
        let guard = PidFile::create_for(&path, 1).expect("no-op");
        assert_eq!(guard.path(), None);
        assert!(!path.exists());
    }

    #[test]
    fn explicit_remove_is_idempotent_and_tolerates_a_missing_file() {
        let dir = TempDir::new("remove");
        let path = dir.0.join("fastway.pid");
        let mut guard = PidFile::create(&path).expect("pid file");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            std::process::id().to_string()
        );
        std::fs::remove_file(&path).expect("someone else removed it");
        guard.remove().expect("missing file is fine");
        guard.remove().expect("second call is a no-op");
        assert_eq!(guard.path(), None);
    }

    #[test]
    fn unwritable_path_is_a_clear_error() {
        let dir = TempDir::new("error");
        let path = dir.0.join("no-such-dir").join("fastway.pid");
        let err = PidFile::create_for(&path, 5).expect_err("missing directory");
        assert!(
            err.to_string().starts_with("cannot write pid file "),
            "{err}"
        );
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }
}
