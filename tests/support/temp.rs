//! A directory of files for one test, removed when dropped.

use std::path::PathBuf;

/// `ringgate-test-<pid>-<name>` in the system's temp directory: the process id keeps test
/// binaries apart, `name` the tests of one binary.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory (a stale one of the same name is removed first).
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("ringgate-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The path of `name` in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `text` to `name` in the directory; its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
