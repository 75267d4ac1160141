//! A real, recording HTTP/1.1 upstream for integration tests.
//!
//! Place: the proxy's integration tests start ringgate on 127.0.0.1, point a service at
//! [`Upstream::addr`], send requests downstream, and then assert what the upstream
//! actually RECEIVED ([`Upstream::received`]): method, target, headers in order and as
//! spelled, the de-chunked body, trailers, and which TCP connection carried it.
//!
//! It is deliberately independent of the code under test: std threads and sockets,
//! `httparse` for request heads, and its own small chunked decoder (not
//! `ringgate::http::chunked`), so a bug in the proxy's codec cannot hide itself.
//!
//! Behaviour:
//! - One thread accepts on `127.0.0.1:0`; one thread per connection serves requests
//!   in order with keep-alive, so pipelined requests are answered in order.
//! - Request bodies are framed by `Transfer-Encoding: chunked` (strictly: CRLF line
//!   ends, hex size, data followed by CRLF; extensions are skipped) or `Content-Length`.
//!   A request carrying both, an unknown transfer coding, a bad length, a malformed
//!   head or chunked body, or EOF inside a request is recorded in [`Upstream::errors`]
//!   (not in `received`), answered `400` and the connection closed.
//! - `Expect: 100-continue` on a request with a body gets `100 Continue` first.
//! - A request is recorded once its body is complete, before the response is written.
//! - The connection is closed after the response if the request said
//!   `Connection: close`, or was HTTP/1.0 without `Connection: keep-alive`.
//! - Responses are always `HTTP/1.1`, whatever the request version; the knobs apply
//!   to HTTP/1.0 requests too (a test may ask for a chunked response to one).
//! - Every response carries `x-upstream-conn: <conn_id>` and `x-upstream-seq: <n>`
//!   (0-based index of the request on its connection).
//!
//! Knobs: request headers the test sets and the proxy forwards. Only the first value
//! of each counts, except `x-test-header`.
//! - `x-test-status: N` — response status N (default 200). For 1xx, an interim
//!   response N is sent and then the final response with status 200. 204 and 304
//!   responses have no body and no framing headers.
//! - `x-test-body: <text>` — response body is the header value.
//! - `x-test-body-len: N` — response body is N bytes of `a`.
//! - `x-test-echo: 1` — response body is the (decoded) request body.
//!   Default body: `ok`. Precedence: echo, then body, then body-len.
//! - `x-test-chunked: K` — the body is sent chunked, as K chunks of near-equal size
//!   (fewer if the body has fewer than K bytes; K = 0 sends only the last chunk), then
//!   the trailer `x-test-trailer: done`.
//! - `x-test-close-delimited: 1` — no Content-Length or Transfer-Encoding; the body
//!   ends when the upstream closes the connection (`connection: close` is sent).
//! - `x-test-delay-ms: N` — wait N ms before responding.
//! - `x-test-close: 1` — record the request, then close without any response.
//! - `x-test-header: name: value` — add this response header; may be repeated.
//! - `x-test-bad-framing: 1` — send both `Content-Length` (the body length) and
//!   `Transfer-Encoding: chunked`, body chunked, then close the connection.
//! - `x-test-head-bytes: N` — add a header `x-test-filler` whose value is N bytes of
//!   `b`, making the response head larger than N bytes.
//! - A `HEAD` request gets the same headers (including Content-Length or
//!   Transfer-Encoding) and no body.
//!
//! Shutdown: dropping the [`Upstream`] sets a stop flag, connects to itself to wake the
//! acceptor, shuts down every accepted socket, and joins all threads. Reads use a short
//! timeout and re-check the flag, and delays sleep in short steps, so no thread is left
//! blocked. Cost: a thread per connection; fine for tests, not for load.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often a blocked read or a delay re-checks the stop flag.
const POLL: Duration = Duration::from_millis(50);
/// A write that makes no progress this long fails (the peer stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head or chunk line accepted.
const MAX_HEAD: usize = 1 << 20;
/// Most request header fields parsed.
const MAX_HEADERS: usize = 256;

/// One complete request as the upstream received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    /// The request-target exactly as sent.
    pub target: String,
    /// The HTTP minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Header fields in order, names as sent (case preserved).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, de-chunked if it was chunked.
    pub body: Vec<u8>,
    /// Whether the body came with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// Trailer fields of a chunked body, in order, names as sent.
    pub trailers: Vec<(String, Vec<u8>)>,
    /// 0-based index of the TCP connection (in accept order) that carried it.
    pub conn_id: usize,
    /// The exact bytes of the request on the wire: head and framed body.
    pub raw: Vec<u8>,
}

impl Received {
    /// The first value of the header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// Every value of the header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&[u8]> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice()).collect()
    }

    /// The first value of the header `name` as text (lossy), for easy assertions.
    pub fn header_str(&self, name: &str) -> Option<String> {
        self.header(name).map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

#[derive(Default)]
struct Log {
    received: Vec<Received>,
    errors: Vec<String>,
}

struct Shared {
    stop: AtomicBool,
    connections: AtomicUsize,
    log: Mutex<Log>,
    arrived: Condvar,
    /// Clones of accepted sockets, shut down on drop to unblock their threads.
    sockets: Mutex<Vec<TcpStream>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// Locks, ignoring poisoning: a panicking test thread must not hide what was recorded.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn record(&self, r: Received) {
        lock(&self.log).received.push(r);
        self.arrived.notify_all();
    }

    fn error(&self, conn_id: usize, msg: String) {
        lock(&self.log).errors.push(format!("conn {conn_id}: {msg}"));
        self.arrived.notify_all();
    }
}

/// A running recording upstream; stops when dropped.
pub struct Upstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Upstream {
    /// Binds `127.0.0.1:0` and starts serving. Panics only if the test machine cannot
    /// bind a loopback port, which no test could survive anyway.
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            log: Mutex::new(Log::default()),
            arrived: Condvar::new(),
            sockets: Mutex::new(Vec::new()),
            workers: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("upstream-accept".into())
                .spawn(move || accept_loop(listener, shared))
                .expect("spawn acceptor")
        };
        Upstream { addr, shared, acceptor: Some(acceptor) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every complete request so far, in the order they completed.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.log).received.clone()
    }

    /// Blocks until at least `n` requests were received or `timeout` passed; returns
    /// all received so far either way (check the length).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        let mut log = lock(&self.shared.log);
        while log.received.len() < n {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            log = self.shared.arrived.wait_timeout(log, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        log.received.clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Protocol errors seen (malformed or ambiguous requests), one line each. A test of
    /// the proxy normally asserts this is empty.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.shared.log).errors.clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor out of accept(); it sees the flag and returns.
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok();
        if let Some(acceptor) = self.acceptor.take() {
            if woke {
                let _ = acceptor.join();
            }
        }
        for s in lock(&self.shared.sockets).iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let workers = std::mem::take(&mut *lock(&self.shared.workers));
        for w in workers {
            let _ = w.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopped() {
            return;
        }
        let Ok(stream) = stream else { continue };
        let conn_id = shared.connections.fetch_add(1, Ordering::SeqCst);
        let _ = stream.set_nodelay(true);
        if stream.set_read_timeout(Some(POLL)).is_err() || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err() {
            continue;
        }
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.sockets).push(clone);
        }
        let worker = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("upstream-conn-{conn_id}"))
                .spawn(move || serve(Conn::new(stream, conn_id, shared)))
        };
        if let Ok(w) = worker {
            lock(&shared.workers).push(w);
        }
    }
}

/// Why a connection stops being served.
enum End {
    /// The peer closed between requests.
    Eof,
    /// The upstream is shutting down.
    Stopped,
    /// The request was malformed: record, answer 400, close.
    Protocol(String),
    /// The socket failed (reset, write timeout, EOF inside a request).
    Io(String),
}

struct Conn {
    stream: TcpStream,
    conn_id: usize,
    shared: Arc<Shared>,
    /// Bytes read but not yet consumed.
    buf: Vec<u8>,
    /// Bytes consumed for the current request.
    raw: Vec<u8>,
}

impl Conn {
    fn new(stream: TcpStream, conn_id: usize, shared: Arc<Shared>) -> Self {
        Conn { stream, conn_id, shared, buf: Vec::new(), raw: Vec::new() }
    }

    /// Reads more bytes into `buf`; Ok(false) on EOF.
    fn fill(&mut self) -> Result<bool, End> {
        let mut tmp = [0u8; 16 * 1024];
        loop {
            if self.shared.stopped() {
                return Err(End::Stopped);
            }
            match self.stream.read(&mut tmp) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&tmp[..n]);
                    return Ok(true);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(End::Io(e.to_string())),
            }
        }
    }

    fn fill_or_eof(&mut self, what: &str) -> Result<(), End> {
        if self.fill()? {
            Ok(())
        } else {
            Err(End::Io(format!("EOF inside {what}")))
        }
    }

    /// Consumes exactly `n` bytes.
    fn take(&mut self, n: usize) -> Result<Vec<u8>, End> {
        while self.buf.len() < n {
            self.fill_or_eof("body")?;
        }
        let out: Vec<u8> = self.buf.drain(..n).collect();
        self.raw.extend_from_slice(&out);
        Ok(out)
    }

    /// Consumes one line that must end in CRLF; returns it without the CRLF.
    fn line(&mut self) -> Result<Vec<u8>, End> {
        loop {
            if let Some(lf) = self.buf.iter().position(|&b| b == b'\n') {
                if lf == 0 || self.buf[lf - 1] != b'\r' {
                    return Err(End::Protocol("bare LF in chunked body".into()));
                }
                let mut line = self.take(lf + 1)?;
                line.truncate(lf - 1);
                if line.contains(&b'\r') {
                    return Err(End::Protocol("bare CR in chunked body".into()));
                }
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(End::Protocol("chunked line too long".into()));
            }
            self.fill_or_eof("chunked body")?;
        }
    }

    /// Closes gracefully: FIN first, then drains what the peer still sends (briefly),
    /// so unread request bytes do not turn the close into a RST that could destroy a
    /// response still in flight.
    fn linger_close(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            self.buf.clear();
            if !matches!(self.fill(), Ok(true)) {
                break;
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), End> {
        self.stream.write_all(bytes).map_err(|e| End::Io(format!("write: {e}")))
    }
}

/// A request head, owned, before its body is read.
struct Head {
    method: String,
    target: String,
    version: u8,
    headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    fn first(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// Comma-separated list elements of every `name` field, trimmed, lower-cased.
    fn list(&self, name: &str) -> Vec<String> {
        self.all(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .map(|e| String::from_utf8_lossy(e).trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect()
    }

    fn knob(&self, name: &str) -> Option<String> {
        self.first(name).map(|v| String::from_utf8_lossy(v).trim().to_string())
    }

    fn knob_num(&self, name: &str) -> Result<Option<u64>, End> {
        match self.knob(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| End::Protocol(format!("{name}: not a number: {v:?}"))),
        }
    }

    fn knob_on(&self, name: &str) -> bool {
        self.knob(name).is_some_and(|v| v == "1")
    }
}

fn serve(mut conn: Conn) {
    let mut seq = 0usize;
    loop {
        let end = match serve_one(&mut conn, seq) {
            Ok(true) => {
                seq += 1;
                continue;
            }
            Ok(false) => return,
            Err(end) => end,
        };
        match end {
            End::Eof | End::Stopped => {}
            End::Protocol(msg) => {
                conn.shared.error(conn.conn_id, msg);
                let _ = conn.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
            End::Io(msg) => conn.shared.error(conn.conn_id, msg),
        }
        conn.linger_close();
        return;
    }
}

/// Reads, records and answers one request. Ok(true): keep the connection; Ok(false):
/// it was closed on purpose.
fn serve_one(conn: &mut Conn, seq: usize) -> Result<bool, End> {
    conn.raw.clear();
    let Some(head) = read_head(conn)? else {
        return Err(End::Eof);
    };

    // Body framing (RFC 9112 §6.3), strict: both headers at once is an error here,
    // because a proxy must never forward that.
    let te = head.list("transfer-encoding");
    let cls: Vec<&[u8]> = head.all("content-length").collect();
    if !te.is_empty() && !cls.is_empty() {
        return Err(End::Protocol("request has both Transfer-Encoding and Content-Length".into()));
    }
    let chunked = !te.is_empty();
    if chunked && te.iter().any(|c| c != "chunked") {
        return Err(End::Protocol(format!("unsupported transfer coding: {te:?}")));
    }
    let content_length = match cls.as_slice() {
        [] => 0,
        [v] => parse_decimal(v).ok_or_else(|| End::Protocol(format!("bad Content-Length {:?}", lossy(v))))?,
        _ => return Err(End::Protocol("more than one Content-Length".into())),
    };
    let has_body = chunked || content_length > 0;
    if has_body && head.list("expect").iter().any(|e| e == "100-continue") {
        conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let (body, trailers) = if chunked {
        read_chunked(conn)?
    } else {
        let n = usize::try_from(content_length).map_err(|_| End::Protocol("Content-Length too large".into()))?;
        (conn.take(n)?, Vec::new())
    };

    let received = Received {
        method: head.method.clone(),
        target: head.target.clone(),
        version: head.version,
        headers: head.headers.clone(),
        body,
        chunked,
        trailers,
        conn_id: conn.conn_id,
        raw: std::mem::take(&mut conn.raw),
    };
    let echo = received.body.clone();
    conn.shared.record(received);
    respond(conn, &head, seq, echo)
}

/// Reads one request head; Ok(None) if the peer closed cleanly before any byte of it.
fn read_head(conn: &mut Conn) -> Result<Option<Head>, End> {
    loop {
        let parsed = {
            let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut fields);
            match req.parse(&conn.buf) {
                Ok(httparse::Status::Complete(n)) => Some((
                    n,
                    Head {
                        method: req.method.unwrap_or_default().to_string(),
                        target: req.path.unwrap_or_default().to_string(),
                        version: req.version.unwrap_or_default(),
                        headers: req.headers.iter().map(|h| (h.name.to_string(), h.value.to_vec())).collect(),
                    },
                )),
                Ok(httparse::Status::Partial) => None,
                Err(e) => return Err(End::Protocol(format!("bad request head: {e}"))),
            }
        };
        if let Some((n, head)) = parsed {
            conn.raw.extend(conn.buf.drain(..n));
            return Ok(Some(head));
        }
        if conn.buf.len() > MAX_HEAD {
            return Err(End::Protocol("request head too large".into()));
        }
        if !conn.fill()? {
            return if conn.buf.is_empty() { Ok(None) } else { Err(End::Io("EOF inside request head".into())) };
        }
    }
}

type Fields = Vec<(String, Vec<u8>)>;

/// The upstream's own chunked decoder (RFC 9112 §7.1), independent of the proxy's.
fn read_chunked(conn: &mut Conn) -> Result<(Vec<u8>, Fields), End> {
    let mut body = Vec::new();
    loop {
        let line = conn.line()?;
        let size_end = line.iter().position(|&b| b == b';').unwrap_or(line.len());
        let size = &line[..size_end];
        if size.is_empty() || !size.iter().all(u8::is_ascii_hexdigit) {
            return Err(End::Protocol(format!("bad chunk size line {:?}", lossy(&line))));
        }
        let size = u64::from_str_radix(&lossy(size), 16).map_err(|_| End::Protocol("chunk size overflows".into()))?;
        if size == 0 {
            break;
        }
        let size = usize::try_from(size).map_err(|_| End::Protocol("chunk size too large".into()))?;
        body.extend_from_slice(&conn.take(size)?);
        if conn.take(2)? != b"\r\n" {
            return Err(End::Protocol("chunk data not followed by CRLF".into()));
        }
    }
    let mut trailers = Vec::new();
    loop {
        let line = conn.line()?;
        if line.is_empty() {
            return Ok((body, trailers));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(End::Protocol(format!("trailer without colon {:?}", lossy(&line))));
        };
        let name = &line[..colon];
        if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
            return Err(End::Protocol(format!("bad trailer name {:?}", lossy(name))));
        }
        let value = lossy(&line[colon + 1..]).trim_matches([' ', '\t']).as_bytes().to_vec();
        trailers.push((lossy(name), value));
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    lossy(v).parse().ok()
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Writes the response the knobs ask for. Ok(true) keeps the connection open.
fn respond(conn: &mut Conn, head: &Head, seq: usize, request_body: Vec<u8>) -> Result<bool, End> {
    if let Some(ms) = head.knob_num("x-test-delay-ms")? {
        let until = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < until {
            if conn.shared.stopped() {
                return Err(End::Stopped);
            }
            thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
        }
    }
    if head.knob_on("x-test-close") {
        conn.linger_close();
        return Ok(false);
    }

    let mut status = match head.knob_num("x-test-status")? {
        None => 200,
        Some(s) if (100..=999).contains(&s) => s as u16,
        Some(s) => return Err(End::Protocol(format!("x-test-status out of range: {s}"))),
    };
    if (100..200).contains(&status) {
        conn.write(format!("HTTP/1.1 {status} {}\r\n\r\n", reason(status)).as_bytes())?;
        status = 200;
    }

    let body: Vec<u8> = if head.knob_on("x-test-echo") {
        request_body
    } else if let Some(text) = head.first("x-test-body") {
        text.to_vec()
    } else if let Some(n) = head.knob_num("x-test-body-len")? {
        vec![b'a'; n as usize]
    } else {
        b"ok".to_vec()
    };
    let chunks = head.knob_num("x-test-chunked")?;
    let close_delimited = head.knob_on("x-test-close-delimited");
    let bad_framing = head.knob_on("x-test-bad-framing");
    let connection = head.list("connection");
    let close_after = close_delimited
        || bad_framing
        || connection.iter().any(|c| c == "close")
        || (head.version == 0 && !connection.iter().any(|c| c == "keep-alive"));
    let bodyless_status = status == 204 || status == 304;
    let is_head = head.method == "HEAD";

    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
    let mut push = |name: &str, value: &[u8]| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    push("x-upstream-conn", conn.conn_id.to_string().as_bytes());
    push("x-upstream-seq", seq.to_string().as_bytes());
    for extra in head.all("x-test-header") {
        let text = lossy(extra);
        match text.split_once(':') {
            Some((n, v)) => push(n.trim(), v.trim().as_bytes()),
            None => return Err(End::Protocol(format!("x-test-header without colon: {text:?}"))),
        }
    }
    if let Some(n) = head.knob_num("x-test-head-bytes")? {
        push("x-test-filler", &vec![b'b'; n as usize]);
    }
    let send_chunked = !bodyless_status && (chunks.is_some() || bad_framing);
    if !bodyless_status {
        if send_chunked {
            push("transfer-encoding", b"chunked");
        }
        if bad_framing || (!send_chunked && !close_delimited) {
            push("content-length", body.len().to_string().as_bytes());
        }
    }
    if close_after {
        push("connection", b"close");
    }
    out.extend_from_slice(b"\r\n");

    if !bodyless_status && !is_head {
        if send_chunked {
            let k = chunks.unwrap_or(1).min(body.len() as u64) as usize;
            for piece in split_even(&body, k) {
                out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\nx-test-trailer: done\r\n\r\n");
        } else {
            out.extend_from_slice(&body);
        }
    }
    conn.write(&out)?;
    if close_after {
        conn.linger_close();
        return Ok(false);
    }
    Ok(true)
}

/// `body` in `k` non-empty pieces of near-equal size (`k <= body.len()`).
fn split_even(body: &[u8], k: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(k);
    let mut start = 0;
    for i in 0..k {
        let end = body.len() * (i + 1) / k;
        pieces.push(&body[start..end]);
        start = end;
    }
    pieces
}
