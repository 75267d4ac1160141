//! The access log: one JSON object per line and request, buffered per worker.
//!
//! Place: after a request is finished (the response written, or the connection given
//! up), the worker appends a line to its own buffer; the buffer is handed to the log's
//! writer thread when it passes [`FLUSH_AT`], on the worker's ~100 ms tick, and at
//! shutdown. Off by default (`--access-log off`): then nothing is copied or formatted,
//! and the cost per request is one branch.
//!
//! Invariants:
//! - Never logged: the query string (it may carry `client_secret` or `access_token`),
//!   header values, bodies, secrets, tokens. The caller's `client_id` is logged; its
//!   secret never reaches this module.
//! - Every string is valid JSON: quotes, backslashes and control characters escaped,
//!   bytes that are not UTF-8 replaced by U+FFFD.
//! - Lines are never interleaved: each worker writes whole lines in one `write`; a
//!   regular file is opened `O_APPEND`, and writes to a pipe or terminal are cut at line
//!   boundaries into pieces of at most `PIPE_BUF` bytes, which the kernel keeps whole.
//! - A worker never waits for the log. One writer thread does the writes; each worker
//!   owns two buffers, one filling while the writer has the other. When the writer is
//!   behind (a stalled pipe reader, a slow disk) a worker keeps up to [`MAX_PENDING`]
//!   bytes of lines, then drops them, counted in
//!   `ringgate_access_log_lines_dropped_total` and logged once per worker. A failed
//!   write loses its lines, counts `ringgate_access_log_write_errors_total` and is
//!   logged once per worker.
//! - At shutdown a worker waits (a bounded time) for the writer to finish its lines.
//!
//! Cost when on: about 300 bytes of formatting into a buffer that is reused, no
//! allocation once the buffers exist; one hand-over to the writer per ~32 KiB, one
//! `write` there. No clock read of its
//! own: a line's `time` is the request's end (the monotonic reading its latency comes
//! from) placed on the wall clock by an anchor pair taken at each flush, so a step of
//! the wall clock shows in the log within a tick.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::metrics::{route_label, service_label, AuthOutcome, Exchange};
use crate::snapshot::Snapshot;

/// A worker flushes its buffer once it holds this much.
pub const FLUSH_AT: usize = 32 * 1024;
/// Lines a worker keeps while the writer still has its other buffer; past this, they
/// are dropped rather than the worker waiting.
pub const MAX_PENDING: usize = 2 * FLUSH_AT;
/// Atomic write size of a pipe (POSIX guarantees at least 512; Linux's is 4096).
const PIPE_BUF: usize = 4096;
/// A buffer's room: [`MAX_PENDING`] and one more line (a line stays under
/// [`PIPE_BUF`]), so a buffer never grows.
const BUFFER_CAP: usize = MAX_PENDING + PIPE_BUF;
/// Buffers handed over and not yet written, all workers together; a worker has at most
/// one out, so this covers 256 workers before one is told the writer is behind.
const QUEUE: usize = 256;
/// Bytes logged of each string the client chose (method, path, client id). Escaped, a
/// byte takes at most 6: the three stay under 3 KiB, and with the rest of the line under
/// [`PIPE_BUF`], which a pipe keeps whole (route and service names, from the
/// configuration, are the only other strings of any length).
const MAX_CLIENT_STRING: usize = 160;

/// Where the access log goes (`--access-log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Off,
    Stdout,
    File(PathBuf),
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        match s {
            "" => Err("expected off, stdout or a file path".into()),
            "off" => Ok(Target::Off),
            "stdout" | "-" => Ok(Target::Stdout),
            path => Ok(Target::File(PathBuf::from(path))),
        }
    }
}

/// An open access log: the writer thread's queue, shared by the workers. The thread
/// ends when the last [`Sink`] and [`WorkerLog`] are gone.
#[derive(Debug)]
pub struct Sink {
    queue: SyncSender<Batch>,
}

/// A worker's lines on their way to the writer, and where the emptied buffer goes back.
struct Batch {
    lines: Vec<u8>,
    back: SyncSender<Written>,
}

/// A buffer back from the writer, emptied, and whether its lines were written.
struct Written {
    lines: Vec<u8>,
    failed: Option<io::Error>,
}

/// Where the writer writes (each `write` whole lines).
#[derive(Debug)]
struct Output {
    file: File,
    /// `Some(PIPE_BUF)` when the target is not a regular file.
    piece: Option<usize>,
}

impl Output {
    /// Writes whole lines: in one `write` for a file, in line-aligned pieces of at most
    /// `PIPE_BUF` bytes otherwise (a longer line goes alone).
    fn write_lines(&self, buf: &[u8]) -> io::Result<()> {
        match self.piece {
            None => (&self.file).write_all(buf),
            Some(max) => line_pieces(buf, max).try_for_each(|p| (&self.file).write_all(p)),
        }
    }
}

impl Sink {
    /// Opens `target` and starts its writer thread; `None` when it is [`Target::Off`].
    pub fn open(target: &Target) -> io::Result<Option<Arc<Sink>>> {
        let file = match target {
            Target::Off => return Ok(None),
            Target::Stdout => {
                use std::os::fd::AsFd;
                File::from(io::stdout().as_fd().try_clone_to_owned()?)
            }
            Target::File(path) => std::fs::OpenOptions::new().create(true).append(true).open(path)?,
        };
        let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
        Sink::start(Output { file, piece: (!regular).then_some(PIPE_BUF) }).map(|s| Some(Arc::new(s)))
    }

    fn start(out: Output) -> io::Result<Sink> {
        let (queue, batches) = sync_channel::<Batch>(QUEUE);
        std::thread::Builder::new().name("ringgate-log".into()).spawn(move || {
            for Batch { mut lines, back } in batches {
                let failed = out.write_lines(&lines).err();
                lines.clear();
                // The worker has room for every buffer it owns; gone, it needs none.
                let _ = back.try_send(Written { lines, failed });
            }
        })?;
        Ok(Sink { queue })
    }
}

/// What a flush found: writes the writer reported failed since the last flush, and
/// lines dropped because the writer was behind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    pub failed_writes: u64,
    pub dropped_lines: u64,
}

impl Flushed {
    fn add(&mut self, other: Flushed) {
        self.failed_writes += other.failed_writes;
        self.dropped_lines += other.dropped_lines;
    }
}

/// `buf` cut after newlines into pieces of at most `max` bytes; a line longer than `max`
/// is a piece of its own.
fn line_pieces(mut buf: &[u8], max: usize) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if buf.is_empty() {
            return None;
        }
        let end = if buf.len() <= max {
            buf.len()
        } else {
            match memchr::memrchr(b'\n', &buf[..max]) {
                Some(i) => i + 1,
                None => memchr::memchr(b'\n', buf).map_or(buf.len(), |i| i + 1),
            }
        };
        let (piece, rest) = buf.split_at(end);
        buf = rest;
        Some(piece)
    })
}

/// A worker's access log: the buffer it fills, its spare, and the writer's queue.
pub struct WorkerLog {
    sink: Option<Arc<Sink>>,
    buf: RefCell<Vec<u8>>,
    /// This worker's buffers not with the writer, besides `buf` (the others are).
    spare: RefCell<Vec<Vec<u8>>>,
    /// Where the writer returns this worker's buffers.
    back: (SyncSender<Written>, Receiver<Written>),
    warned_write: Cell<bool>,
    warned_drop: Cell<bool>,
    /// The same moment on both clocks, taken at the last flush.
    anchor: Cell<(Instant, SystemTime)>,
}

/// Buffers each worker owns: one filling, one with the writer.
const BUFFERS: usize = 2;

impl WorkerLog {
    pub fn new(sink: Option<Arc<Sink>>) -> WorkerLog {
        let buffer = || Vec::with_capacity(if sink.is_some() { BUFFER_CAP } else { 0 });
        let spare = if sink.is_some() { (1..BUFFERS).map(|_| buffer()).collect() } else { Vec::new() };
        WorkerLog {
            buf: RefCell::new(buffer()),
            spare: RefCell::new(spare),
            back: sync_channel(BUFFERS),
            sink,
            warned_write: Cell::new(false),
            warned_drop: Cell::new(false),
            anchor: Cell::new((Instant::now(), SystemTime::now())),
        }
    }

    /// The wall-clock time of `at`, by the anchor.
    fn wall_clock(&self, at: Instant) -> SystemTime {
        let (mono, wall) = self.anchor.get();
        let t = match at.checked_duration_since(mono) {
            Some(after) => wall.checked_add(after),
            None => wall.checked_sub(mono.duration_since(at)),
        };
        t.unwrap_or(wall)
    }

    #[inline]
    pub fn is_on(&self) -> bool {
        self.sink.is_some()
    }

    /// Appends the line for a finished request. Returns whether the buffer should be
    /// flushed now.
    pub fn record(&self, ex: &Exchange, snap: &Snapshot, peer: SocketAddr, worker: usize, end: Instant) -> bool {
        if self.sink.is_none() {
            return false;
        }
        let mut buf = self.buf.borrow_mut();
        write_line(&mut buf, ex, snap, peer, worker, end, self.wall_clock(end));
        buf.len() >= FLUSH_AT
    }

    /// Hands what is buffered to the writer, and re-takes the clock anchor (the worker
    /// calls it every ~100 ms). Never waits: with the writer still busy with this
    /// worker's other buffer, the lines stay, up to [`MAX_PENDING`] bytes, and are
    /// dropped past that. Reports failed writes and dropped lines, for counting; the
    /// first of each kind is logged.
    pub fn flush(&self) -> Flushed {
        let mut report = Flushed::default();
        let Some(sink) = &self.sink else { return report };
        self.anchor.set((Instant::now(), SystemTime::now()));
        while let Ok(w) = self.back.1.try_recv() {
            report.add(self.returned(w));
        }
        let mut buf = self.buf.borrow_mut();
        if buf.is_empty() {
            return report;
        }
        if let Some(next) = self.spare.borrow_mut().pop() {
            let lines = std::mem::replace(&mut *buf, next);
            match sink.queue.try_send(Batch { lines, back: self.back.0.clone() }) {
                Ok(()) => return report,
                Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) => {
                    let next = std::mem::replace(&mut *buf, b.lines);
                    self.spare.borrow_mut().push(next);
                }
            }
        }
        if buf.len() > MAX_PENDING {
            report.dropped_lines = memchr::memchr_iter(b'\n', &buf).count() as u64;
            buf.clear();
            if !self.warned_drop.replace(true) {
                tracing::warn!("the access log writer is behind; lines are dropped until it catches up");
            }
        }
        report
    }

    /// This worker's buffers the writer has.
    fn with_writer(&self) -> usize {
        if self.sink.is_none() {
            return 0;
        }
        BUFFERS - 1 - self.spare.borrow().len()
    }

    /// Takes back a buffer from the writer.
    fn returned(&self, w: Written) -> Flushed {
        self.spare.borrow_mut().push(w.lines);
        let Some(e) = w.failed else { return Flushed::default() };
        if !self.warned_write.replace(true) {
            tracing::warn!(error = %e, "access log write failed; lines are lost until it works again");
        }
        Flushed { failed_writes: 1, dropped_lines: 0 }
    }

    /// Flushes, then waits up to `limit` for the writer to have written every line this
    /// worker gave it (shutdown; tests). Whatever is still pending after `limit` is left.
    /// Polls every 200 µs rather than blocking on the channel, which would allocate the
    /// first time.
    pub fn finish(&self, limit: Duration) -> Flushed {
        let until = Instant::now() + limit;
        let mut report = Flushed::default();
        loop {
            report.add(self.flush());
            if (self.with_writer() == 0 && self.buf.borrow().is_empty()) || Instant::now() >= until {
                return report;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Formats one access log line (with its newline) into `out`.
pub fn write_line(
    out: &mut Vec<u8>,
    ex: &Exchange,
    snap: &Snapshot,
    peer: SocketAddr,
    worker: usize,
    end: Instant,
    now: SystemTime,
) {
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b"{\"time\":\"");
    push_rfc3339_ms(out, now);
    out.extend_from_slice(b"\",\"worker\":");
    out.extend_from_slice(n.format(worker).as_bytes());
    out.extend_from_slice(b",\"client\":\"");
    let _ = write!(out, "{}", SocketAddr::new(peer.ip().to_canonical(), peer.port()));
    fn capped(v: &[u8]) -> &[u8] {
        &v[..v.len().min(MAX_CLIENT_STRING)]
    }
    let consumer = ex.consumer.and_then(|i| snap.config.consumers.get(i));
    // The consumer by the name an operator gave it: username, else custom id, else id.
    let consumer_name = consumer.map(|c| c.username.as_deref().or(c.custom_id.as_deref()).unwrap_or(&c.id).as_bytes());
    let cut = [&ex.method[..], &ex.path, &ex.auth.client_id, consumer_name.unwrap_or_default()]
        .iter()
        .any(|v| v.len() > MAX_CLIENT_STRING);
    let (method, path, client_id) = (capped(&ex.method), capped(&ex.path), capped(&ex.auth.client_id));
    out.extend_from_slice(b"\",\"method\":");
    push_json_str(out, method);
    out.extend_from_slice(b",\"path\":");
    push_json_str(out, path);
    out.extend_from_slice(b",\"route\":");
    match ex.route {
        Some(r) => push_json_display(out, &route_label(&snap.config, r)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"service\":");
    match ex.service {
        Some(_) => push_json_display(out, &service_label(&snap.config, ex.service)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"status\":");
    out.extend_from_slice(n.format(ex.status).as_bytes());
    out.extend_from_slice(b",\"bytes_received\":");
    out.extend_from_slice(n.format(ex.bytes_received).as_bytes());
    out.extend_from_slice(b",\"bytes_sent\":");
    out.extend_from_slice(n.format(ex.bytes_sent).as_bytes());
    let total = end.saturating_duration_since(ex.start);
    out.extend_from_slice(b",\"latency_ms\":");
    push_ms(out, total.as_micros());
    out.extend_from_slice(b",\"upstream_latency_ms\":");
    match ex.upstream {
        Some(u) => push_ms(out, u.as_micros()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"gateway_latency_ms\":");
    push_ms(out, total.saturating_sub(ex.upstream.unwrap_or_default()).as_micros());
    out.extend_from_slice(b",\"auth\":\"");
    match ex.auth_outcome() {
        AuthOutcome::None => out.extend_from_slice(b"none"),
        AuthOutcome::CacheHit => out.extend_from_slice(b"cache_hit"),
        AuthOutcome::Fetched => out.extend_from_slice(b"fetched"),
        AuthOutcome::Bearer => out.extend_from_slice(b"bearer"),
        AuthOutcome::Denied(r) => {
            out.extend_from_slice(b"denied:");
            out.extend_from_slice(r.label().as_bytes());
        }
        AuthOutcome::Anonymous(r) => {
            out.extend_from_slice(b"anonymous:");
            out.extend_from_slice(r.label().as_bytes());
        }
    }
    out.extend_from_slice(b"\",\"client_id\":");
    if client_id.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        push_json_str(out, client_id);
    }
    out.extend_from_slice(b",\"consumer\":");
    match consumer_name {
        Some(name) => push_json_str(out, capped(name)),
        None => out.extend_from_slice(b"null"),
    }
    if cut {
        out.extend_from_slice(b",\"truncated\":true");
    }
    out.extend_from_slice(b"}\n");
}

/// Milliseconds with three decimals, from microseconds.
fn push_ms(out: &mut Vec<u8>, micros: u128) {
    let micros = u64::try_from(micros).unwrap_or(u64::MAX);
    out.extend_from_slice(itoa::Buffer::new().format(micros / 1000).as_bytes());
    let frac = micros % 1000;
    out.extend_from_slice(&[b'.', b'0' + (frac / 100) as u8, b'0' + (frac / 10 % 10) as u8, b'0' + (frac % 10) as u8]);
}

/// A JSON string literal of `bytes`: `"` and `\` escaped, control characters as
/// `\n`/`\r`/`\t` or `\u00XX`, DEL as `\u007f`, and every byte sequence that is not
/// UTF-8 as one U+FFFD escape.
pub fn push_json_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        push_escaped(out, chunk.valid());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// A JSON string literal of what `value` displays, escaped as it is written (no
/// intermediate `String`).
fn push_json_display(out: &mut Vec<u8>, value: &impl std::fmt::Display) {
    struct Escaping<'a>(&'a mut Vec<u8>);
    impl std::fmt::Write for Escaping<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            push_escaped(self.0, s);
            Ok(())
        }
    }
    out.push(b'"');
    let _ = std::fmt::Write::write_fmt(&mut Escaping(out), format_args!("{value}"));
    out.push(b'"');
}

/// The inside of a JSON string literal of `s` (see [`push_json_str`]).
fn push_escaped(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = crate::http::HEX_LOWER;
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC, milliseconds).
pub fn push_rfc3339_ms(out: &mut Vec<u8>, t: SystemTime) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let two = |out: &mut Vec<u8>, v: u64| out.extend_from_slice(&[b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8]);
    let year = year.min(9999);
    out.extend_from_slice(&[
        b'0' + (year / 1000) as u8,
        b'0' + (year / 100 % 10) as u8,
        b'0' + (year / 10 % 10) as u8,
        b'0' + (year % 10) as u8,
        b'-',
    ]);
    two(out, month);
    out.push(b'-');
    two(out, day);
    out.push(b'T');
    two(out, rem / 3600);
    out.push(b':');
    two(out, rem / 60 % 60);
    out.push(b':');
    two(out, rem % 60);
    let ms = u64::from(since.subsec_millis());
    out.extend_from_slice(&[b'.', b'0' + (ms / 100) as u8, b'0' + (ms / 10 % 10) as u8, b'0' + (ms % 10) as u8, b'Z']);
}

/// (year, month, day) of a count of days since 1970-01-01, in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn json(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        push_json_str(&mut out, bytes);
        String::from_utf8(out).expect("escaped output is UTF-8")
    }

    #[test]
    fn json_strings_escape_quotes_controls_and_invalid_utf8() {
        assert_eq!(json(b"plain /a-b_c.d~"), r#""plain /a-b_c.d~""#);
        assert_eq!(json(b"q\"b\\s"), r#""q\"b\\s""#);
        assert_eq!(json(b"\n\r\t\x00\x1f\x7f"), r#""\n\r\t\u0000\u001f\u007f""#);
        assert_eq!(json("é→😀".as_bytes()), "\"é→😀\"");
        // A lone continuation byte, a truncated sequence, an overlong encoding.
        assert_eq!(json(b"a\x80b\xe2\x82c\xc0\xafd"), r#""a\ufffdb\ufffdc\ufffd\ufffdd""#);
        // Whatever the input, the output parses as one JSON string.
        let all: Vec<u8> = (0..=255u8).collect();
        let text = json(&all);
        let mut bytes = text.clone().into_bytes();
        let parsed: String = simd_json::serde::from_slice(&mut bytes).expect("valid JSON");
        assert!(parsed.starts_with("\u{0}\u{1}"), "{parsed:?}");
        // A displayed value is escaped the same way.
        let mut out = Vec::new();
        push_json_display(&mut out, &format_args!("{}:{}", "h\"o\\st\n", 80));
        assert_eq!(out, br#""h\"o\\st\n:80""#);
    }

    #[test]
    fn rfc3339_timestamps_are_utc_with_milliseconds() {
        let at = |secs: u64, ms: u64| {
            let mut out = Vec::new();
            push_rfc3339_ms(&mut out, UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms));
            String::from_utf8(out).unwrap()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.007Z");
        assert_eq!(at(1_796_083_199, 999), "2026-11-30T23:59:59.999Z");
        assert_eq!(at(4_102_444_800, 120), "2100-01-01T00:00:00.120Z");
    }

    #[test]
    fn a_lines_time_is_its_end_on_the_wall_clock_by_the_anchor() {
        let log = WorkerLog::new(None);
        let mono = Instant::now() + Duration::from_secs(1);
        let wall = UNIX_EPOCH + Duration::from_secs(1_000);
        log.anchor.set((mono, wall));
        assert_eq!(log.wall_clock(mono + Duration::from_millis(5)), wall + Duration::from_millis(5));
        assert_eq!(log.wall_clock(mono - Duration::from_millis(5)), wall - Duration::from_millis(5));
        let before = SystemTime::now();
        log.anchor.set((Instant::now(), SystemTime::now()));
        let at = log.wall_clock(Instant::now());
        assert!(at >= before && at <= SystemTime::now());
    }

    #[test]
    fn a_line_stays_within_one_atomic_pipe_write_whatever_the_client_sent() {
        let cfg = crate::config::load_str("_format_version: \"3.0\"\n", "t.yaml", &|_| None).unwrap();
        let snap = Snapshot::build(cfg, &mut crate::snapshot::Resolved::new()).unwrap();
        let mut ex = Exchange::default();
        ex.begin(Instant::now(), true);
        ex.method.extend_from_slice(&[b'\x01'; 300]);
        ex.path.extend_from_slice(&[0x80; 32 * 1024]);
        ex.auth.client_id.extend_from_slice(&[b'\x02'; 4096]);
        let mut out = Vec::new();
        let peer = "[2001:db8::1]:65535".parse().unwrap();
        write_line(&mut out, &ex, &snap, peer, 7, Instant::now(), SystemTime::now());
        assert!(out.len() <= PIPE_BUF, "{} bytes", out.len());
        assert!(out.ends_with(b",\"truncated\":true}\n"));
        let v: serde_json::Value = serde_json::from_slice(&out).expect("one JSON object");
        assert_eq!(v["path"].as_str().unwrap().chars().count(), MAX_CLIENT_STRING);
        // Short strings are whole and unmarked.
        let mut ex = Exchange::default();
        ex.begin(Instant::now(), true);
        ex.path.extend_from_slice(b"/a");
        let mut out = Vec::new();
        write_line(&mut out, &ex, &snap, peer, 7, Instant::now(), SystemTime::now());
        assert!(!out.windows(9).any(|w| w == b"truncated"), "{}", String::from_utf8_lossy(&out));
    }

    #[test]
    fn a_stalled_log_never_holds_the_worker_and_what_it_drops_is_counted() {
        let (reader, writer) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
        let out = Output { file: File::from(std::os::fd::OwnedFd::from(writer)), piece: Some(PIPE_BUF) };
        let sink = Arc::new(Sink::start(out).unwrap());
        // A worker on its own thread, so a flush that waited would show as a timeout
        // here rather than a hung test.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            let cfg = crate::config::load_str("_format_version: \"3.0\"\n", "t.yaml", &|_| None).unwrap();
            let snap = Snapshot::build(cfg, &mut crate::snapshot::Resolved::new()).unwrap();
            let peer = "192.0.2.1:1000".parse().unwrap();
            let mut ex = Exchange::default();
            ex.begin(Instant::now(), true);
            ex.path.extend_from_slice(b"/stalled");
            let log = WorkerLog::new(Some(sink));
            let (mut recorded, mut dropped) = (0u64, 0u64);
            // Nobody reads: the writer blocks once the socket's buffer is full; the
            // worker goes on, and past MAX_PENDING drops lines.
            while dropped == 0 {
                for _ in 0..100 {
                    log.record(&ex, &snap, peer, 0, Instant::now());
                    recorded += 1;
                }
                let f = log.flush();
                assert_eq!(f.failed_writes, 0);
                dropped += f.dropped_lines;
            }
            done_tx.send(()).unwrap();
            // Once the reader reads, the writer catches up and the rest is written.
            go_rx.recv().unwrap();
            for _ in 0..100 {
                log.record(&ex, &snap, peer, 0, Instant::now());
                recorded += 1;
            }
            let f = log.finish(Duration::from_secs(30));
            assert_eq!(f, Flushed::default(), "nothing lost once the reader reads");
            (recorded, dropped)
        });
        done_rx.recv_timeout(Duration::from_secs(60)).expect("the worker waited for a stalled log");
        let reading = std::thread::spawn(move || {
            let mut got = Vec::new();
            std::io::Read::read_to_end(&mut { reader }, &mut got).unwrap();
            got
        });
        go_tx.send(()).unwrap();
        let (recorded, dropped) = worker.join().unwrap();
        // The worker's log (and with it the sink) is gone: the writer ends, the reader
        // sees the end.
        let got = String::from_utf8(reading.join().unwrap()).unwrap();
        assert!(got.ends_with('\n'));
        for line in got.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("whole lines only");
            assert_eq!(v["path"], "/stalled");
        }
        assert!(dropped > 0);
        assert_eq!(got.lines().count() as u64 + dropped, recorded, "every line written or counted as dropped");
    }

    #[test]
    fn milliseconds_have_three_decimals() {
        let ms = |us: u128| {
            let mut out = Vec::new();
            push_ms(&mut out, us);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(ms(0), "0.000");
        assert_eq!(ms(1_234), "1.234");
        assert_eq!(ms(50), "0.050");
        assert_eq!(ms(12_000_001), "12000.001");
    }

    #[test]
    fn targets_parse_off_stdout_and_paths() {
        assert_eq!("off".parse::<Target>(), Ok(Target::Off));
        assert_eq!("stdout".parse::<Target>(), Ok(Target::Stdout));
        assert_eq!("logs/access.log".parse::<Target>(), Ok(Target::File("logs/access.log".into())));
        assert!("".parse::<Target>().is_err());
    }

    #[test]
    fn pipe_writes_are_cut_at_line_boundaries() {
        let lines: Vec<u8> = (0..10).flat_map(|i| format!("{{\"line\":{i},\"pad\":\"xx\"}}\n").into_bytes()).collect();
        let long = format!("{{\"long\":\"{}\"}}\n", "y".repeat(100));
        let mut buf = lines.clone();
        buf.extend_from_slice(long.as_bytes());
        buf.extend_from_slice(&lines);
        let pieces: Vec<&[u8]> = line_pieces(&buf, 64).collect();
        assert_eq!(pieces.concat(), buf, "nothing lost or reordered");
        for p in &pieces {
            assert!(p.ends_with(b"\n"), "a piece ends a line: {:?}", String::from_utf8_lossy(p));
            assert!(p.len() <= 64 || p == &long.as_bytes(), "only an over-long line exceeds the limit");
        }
        assert!(pieces.contains(&long.as_bytes()));
        // 22-byte lines: two fit in 64 bytes, so each group of ten is five pieces.
        assert_eq!(pieces.len(), 11);
        // Written through a socket (not a regular file): the same bytes arrive.
        let (reader, writer) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
        let out = Output { file: File::from(std::os::fd::OwnedFd::from(writer)), piece: Some(64) };
        let reading = std::thread::spawn(move || {
            let mut got = Vec::new();
            std::io::Read::read_to_end(&mut { reader }, &mut got).unwrap();
            got
        });
        out.write_lines(&buf).unwrap();
        drop(out);
        assert_eq!(reading.join().unwrap(), buf);
    }
}
