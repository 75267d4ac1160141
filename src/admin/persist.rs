//! The state file: the running configuration, saved after every accepted change so
//! that `ringgate run --resume` starts from it after a restart or a crash.
//!
//! The file is `<data dir>/state.json`, a decK document in JSON with every entity's id
//! and timestamps ([`super::store::Store::render`]); `ringgate check --config` and the
//! decK loader read it like any decK file, and `--resume` loads it through them.
//!
//! A save is atomic and durable (the rename(2) idiom): write a temporary file in the
//! same directory with mode 0600, fsync it, rename it over `state.json`, fsync the
//! directory. A crash at any point leaves either the old file or the new one, whole;
//! once [`DataDir::save`] returns, the new one survives a power cut on file systems that
//! honour fsync. The directory is created with mode 0700 when it does not exist. The
//! file holds secrets in clear (client secrets are needed to run), hence the modes.
//!
//! Cost: one write and two fsyncs per change; never on the request path.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why the state could not be saved or read.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The data directory could not be created or opened.
    #[error("data directory {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    /// Writing, syncing or renaming the state file failed; the previous file is intact.
    #[error("cannot save {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    /// The state file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
}

/// The `--data-dir` directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    dir: PathBuf,
}

const STATE_FILE: &str = "state.json";

impl DataDir {
    /// Opens (creating, mode 0700) the data directory.
    pub fn open(dir: &Path) -> Result<DataDir, PersistError> {
        let err = |source| PersistError::Dir { path: dir.to_path_buf(), source };
        if !dir.is_dir() {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(err)?;
        }
        File::open(dir).map_err(err)?;
        Ok(DataDir { dir: dir.to_path_buf() })
    }

    /// Where the state is saved.
    pub fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// The saved state, if there is one.
    pub fn load(&self) -> Result<Option<String>, PersistError> {
        let path = self.state_path();
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(PersistError::Read { path, source }),
        }
    }

    /// Replaces the state with `text`, atomically and durably (see the module doc).
    pub fn save(&self, text: &str) -> Result<(), PersistError> {
        let path = self.state_path();
        let tmp = self.dir.join(format!(".{STATE_FILE}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        })();
        written.map_err(|source| {
            let _ = fs::remove_file(&tmp);
            PersistError::Write { path, source }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ringgate-persist-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn save_replaces_the_state_with_private_modes_and_leaves_no_temp_file() {
        let dir = temp_dir("save");
        let data = DataDir::open(&dir.join("nested")).unwrap();
        assert_eq!(data.load().unwrap(), None);
        data.save("one").unwrap();
        data.save("two").unwrap();
        assert_eq!(data.load().unwrap().as_deref(), Some("two"));
        let mode = fs::metadata(data.state_path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(dir.join("nested")).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let names: Vec<_> = fs::read_dir(dir.join("nested")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_save_keeps_the_previous_state() {
        let dir = temp_dir("fail");
        let data = DataDir::open(&dir).unwrap();
        data.save("good").unwrap();
        // A directory where the temporary file would go makes the write fail.
        fs::create_dir(dir.join(format!(".state.json.{}.tmp", std::process::id()))).unwrap();
        assert!(matches!(data.save("bad"), Err(PersistError::Write { .. })));
        assert_eq!(data.load().unwrap().as_deref(), Some("good"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_data_dir_that_is_a_file_is_refused() {
        let dir = temp_dir("file");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("f"), "x").unwrap();
        assert!(matches!(DataDir::open(&dir.join("f")), Err(PersistError::Dir { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }
}
