//! Everything ringgate said during a test run, kept for the redaction check.
//!
//! Each line a `ringgate` child logs (stderr, and stdout: the access log) and each Admin
//! API response body a test reads is appended to a file under `target/tmp/record/`
//! (`$RINGGATE_TEST_RECORD`, when set). After the whole run, `scripts/test.sh` searches
//! every recorded file for the test secrets, private keys and tokens
//! (`scripts/redaction.py`): a secret anywhere in what ringgate said fails the run.

use std::io::Write;
use std::path::PathBuf;

fn dir() -> PathBuf {
    std::env::var_os("RINGGATE_TEST_RECORD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("record"))
}

/// Appends `text` plus a newline to the record `kind` of this test process.
pub fn record(kind: &str, text: &str) {
    record_raw(kind, &format!("{text}\n"));
}

/// Appends `text` as it is (a piece of a stream) to the record `kind`.
pub fn record_raw(kind: &str, text: &str) {
    let dir = dir();
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let path = dir.join(format!("{kind}-{}.txt", std::process::id()));
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(text.as_bytes());
    }
}
