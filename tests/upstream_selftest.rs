//! Self-test of the recording upstream in `tests/support/upstream.rs`, driven directly
//! over std `TcpStream` with hand-written requests, so the proxy's integration tests
//! can rely on it. Chunked responses are read with `ringgate::http::chunked` — two
//! independent implementations checking each other.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ringgate::http::chunked::{ChunkedDecoder, ChunkedLimits};
use support::upstream::Upstream;

const WAIT: Duration = Duration::from_secs(5);

struct Response {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// The framed body bytes as sent (chunk lines and trailers included).
    raw_body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    fn header_all(&self, name: &str) -> Vec<&[u8]> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice()).collect()
    }
}

struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(up: &Upstream) -> Client {
        let stream = TcpStream::connect(up.addr()).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        Client { stream, buf: Vec::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads more; false on EOF.
    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 8192];
        let n = self.stream.read(&mut tmp).expect("read (timed out?)");
        self.buf.extend_from_slice(&tmp[..n]);
        n > 0
    }

    /// True if the upstream closed the connection with nothing more to read.
    fn at_eof(&mut self) -> bool {
        self.buf.is_empty() && !self.fill()
    }

    fn response(&mut self, to_head: bool) -> Response {
        let (n, status, headers) = loop {
            let mut fields = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut fields);
            if let httparse::Status::Complete(n) = resp.parse(&self.buf).expect("valid head") {
                let headers = resp.headers.iter().map(|h| (h.name.to_string(), h.value.to_vec())).collect();
                break (n, resp.code.expect("status"), headers);
            }
            assert!(self.fill(), "EOF inside response head");
        };
        self.buf.drain(..n);
        let mut r = Response { status, headers, body: Vec::new(), raw_body: Vec::new() };
        if to_head || status < 200 || status == 204 || status == 304 {
            return r;
        }
        if r.header("transfer-encoding") == Some(b"chunked") {
            let mut dec = ChunkedDecoder::new(ChunkedLimits::default());
            loop {
                let mut ranges = Vec::new();
                let used = dec
                    .feed(&self.buf, &mut |range: std::ops::Range<usize>| ranges.push(range))
                    .expect("valid chunked response");
                for range in ranges {
                    r.body.extend_from_slice(&self.buf[range]);
                }
                r.raw_body.extend(self.buf.drain(..used));
                if dec.is_done() {
                    return r;
                }
                assert!(self.fill(), "EOF inside chunked response");
            }
        }
        if let Some(cl) = r.header("content-length") {
            let cl: usize = String::from_utf8_lossy(cl).parse().expect("numeric CL");
            while self.buf.len() < cl {
                assert!(self.fill(), "EOF inside response body");
            }
            r.body = self.buf.drain(..cl).collect();
        } else {
            while self.fill() {}
            r.body = std::mem::take(&mut self.buf);
        }
        r.raw_body = r.body.clone();
        r
    }
}

fn get(extra: &str) -> String {
    format!("GET / HTTP/1.1\r\nHost: up\r\n{extra}\r\n")
}

#[test]
fn default_request_answered_ok_and_recorded_as_sent() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    let req = b"GET /a/b?q=1 HTTP/1.1\r\nHost: up.test\r\nX-Mixed-Case: One\r\nx-dup: 1\r\nx-dup: 2\r\n\r\n";
    c.send(req);
    let r = c.response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok");
    assert_eq!(r.header("content-length"), Some(&b"2"[..]));
    assert_eq!(r.header("x-upstream-conn"), Some(&b"0"[..]));

    let got = up.wait_for(1, WAIT);
    assert_eq!(got.len(), 1);
    let g = &got[0];
    assert_eq!(g.method, "GET");
    assert_eq!(g.target, "/a/b?q=1");
    assert_eq!(g.version, 1);
    let names: Vec<&str> = g.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Host", "X-Mixed-Case", "x-dup", "x-dup"]);
    assert_eq!(g.header("x-mixed-case"), Some(&b"One"[..]));
    assert_eq!(g.header_all("X-DUP"), [&b"1"[..], &b"2"[..]]);
    assert_eq!(g.header_str("host").as_deref(), Some("up.test"));
    assert!(g.body.is_empty());
    assert!(!g.chunked);
    assert_eq!(g.conn_id, 0);
    assert_eq!(g.raw, req);
    assert!(up.errors().is_empty());
}

#[test]
fn keep_alive_sequential_requests_share_one_connection() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    for i in 0..3 {
        c.send(get("").as_bytes());
        let r = c.response(false);
        assert_eq!(r.header("x-upstream-seq"), Some(i.to_string().as_bytes()));
    }
    let got = up.wait_for(3, WAIT);
    assert!(got.iter().all(|g| g.conn_id == 0));
    assert_eq!(up.connections(), 1);

    let mut c2 = Client::connect(&up);
    c2.send(get("").as_bytes());
    assert_eq!(c2.response(false).header("x-upstream-conn"), Some(&b"1"[..]));
    assert_eq!(up.connections(), 2);
}

#[test]
fn pipelined_requests_answered_in_order() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    let mut batch = get("x-test-body: first\r\nx-test-delay-ms: 50\r\n");
    batch.push_str("POST /p HTTP/1.1\r\nHost: up\r\nContent-Length: 5\r\nx-test-echo: 1\r\n\r\nhello");
    batch.push_str(&get("x-test-body: third\r\n"));
    c.send(batch.as_bytes());
    assert_eq!(c.response(false).body, b"first");
    assert_eq!(c.response(false).body, b"hello");
    assert_eq!(c.response(false).body, b"third");
    let got = up.wait_for(3, WAIT);
    assert_eq!(got[1].body, b"hello");
    assert_eq!(got[1].method, "POST");
    assert_eq!(up.connections(), 1);
}

#[test]
fn chunked_request_body_decoded_with_trailers_and_raw_kept() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    let req: &[u8] = b"POST /up HTTP/1.1\r\nHost: up\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;ext=\"v\"\r\nhello\r\n0006\r\n world\r\n0\r\nX-Sum: abc \r\nOther:x\r\n\r\n";
    // Byte by byte, so the upstream's decoder sees every split.
    for b in req {
        c.send(std::slice::from_ref(b));
    }
    assert_eq!(c.response(false).status, 200);
    let got = up.wait_for(1, WAIT);
    let g = &got[0];
    assert!(g.chunked);
    assert_eq!(g.body, b"hello world");
    assert_eq!(g.trailers, [("X-Sum".to_string(), b"abc".to_vec()), ("Other".to_string(), b"x".to_vec())]);
    assert_eq!(g.raw, req);
}

#[test]
fn malformed_chunked_request_is_error_400_and_close() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    c.send(b"POST / HTTP/1.1\r\nHost: up\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.status, 400);
    assert!(c.at_eof());
    assert!(up.received().is_empty());
    assert_eq!(up.errors().len(), 1, "{:?}", up.errors());
}

#[test]
fn request_with_both_length_headers_is_error() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    c.send(b"POST / HTTP/1.1\r\nHost: up\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_eq!(c.response(false).status, 400);
    assert!(up.received().is_empty());
    assert!(up.errors()[0].contains("both"), "{:?}", up.errors());
}

#[test]
fn status_knob_sets_status_and_bodyless_statuses_have_no_body() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    c.send(get("x-test-status: 404\r\n").as_bytes());
    let r = c.response(false);
    assert_eq!((r.status, r.body.as_slice()), (404, &b"ok"[..]));

    c.send(get("x-test-status: 204\r\n").as_bytes());
    let r = c.response(false);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("transfer-encoding"), None);

    c.send(get("x-test-status: 103\r\n").as_bytes());
    let interim = c.response(false);
    assert_eq!(interim.status, 103);
    let r = c.response(false);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));

    // Nothing extra was sent after the 204: the connection is still in step.
    c.send(get("x-test-body: after\r\n").as_bytes());
    assert_eq!(c.response(false).body, b"after");
}

#[test]
fn body_knobs_set_response_body() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    c.send(get("x-test-body: hello there\r\n").as_bytes());
    assert_eq!(c.response(false).body, b"hello there");

    c.send(get("x-test-body-len: 100000\r\n").as_bytes());
    let r = c.response(false);
    assert_eq!(r.body, vec![b'a'; 100_000]);
    assert_eq!(r.header("content-length"), Some(&b"100000"[..]));

    c.send(b"PUT / HTTP/1.1\r\nHost: up\r\nx-test-echo: 1\r\nContent-Length: 4\r\n\r\necho");
    assert_eq!(c.response(false).body, b"echo");
}

#[test]
fn chunked_knob_sends_k_chunks_and_trailer() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    c.send(get("x-test-chunked: 3\r\nx-test-body: abcdefghi\r\n").as_bytes());
    let r = c.response(false);
    assert_eq!(r.header("transfer-encoding"), Some(&b"chunked"[..]));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.body, b"abcdefghi");
    assert_eq!(r.raw_body, b"3\r\nabc\r\n3\r\ndef\r\n3\r\nghi\r\n0\r\nx-test-trailer: done\r\n\r\n");

    c.send(get("x-test-chunked: 0\r\n").as_bytes());
    let r = c.response(false);
    assert_eq!(r.raw_body, b"0\r\nx-test-trailer: done\r\n\r\n");
}

#[test]
fn close_delimited_knob_has_no_length_and_closes() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    c.send(get("x-test-close-delimited: 1\r\nx-test-body: until close\r\n").as_bytes());
    let r = c.response(false);
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.header("connection"), Some(&b"close"[..]));
    assert_eq!(r.body, b"until close");
}

#[test]
fn delay_knob_delays_response() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    let start = Instant::now();
    c.send(get("x-test-delay-ms: 200\r\n").as_bytes());
    assert_eq!(c.response(false).status, 200);
    assert!(start.elapsed() >= Duration::from_millis(200));
}

#[test]
fn close_knob_records_request_then_closes_without_response() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    c.send(get("x-test-close: 1\r\n").as_bytes());
    assert!(c.at_eof());
    assert_eq!(up.wait_for(1, WAIT).len(), 1);
    assert!(up.errors().is_empty());
}

#[test]
fn header_knob_adds_each_response_header() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    c.send(get("x-test-header: X-One: 1\r\nx-test-header: set-cookie: a=b; Path=/\r\n").as_bytes());
    let r = c.response(false);
    assert_eq!(r.header("x-one"), Some(&b"1"[..]));
    assert_eq!(r.header_all("set-cookie"), [&b"a=b; Path=/"[..]]);
}

#[test]
fn bad_framing_knob_sends_both_length_headers() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    c.send(get("x-test-bad-framing: 1\r\n").as_bytes());
    let r = c.response(false);
    assert_eq!(r.header("content-length"), Some(&b"2"[..]));
    assert_eq!(r.header("transfer-encoding"), Some(&b"chunked"[..]));
    assert_eq!(r.body, b"ok");
    assert!(c.at_eof());
}

#[test]
fn head_bytes_knob_makes_large_response_head() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    c.send(get("x-test-head-bytes: 70000\r\n").as_bytes());
    let r = c.response(false);
    assert_eq!(r.header("x-test-filler").map(<[u8]>::len), Some(70_000));
    assert_eq!(r.body, b"ok");
}

#[test]
fn head_request_gets_headers_without_body() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    c.send(b"HEAD / HTTP/1.1\r\nHost: up\r\nx-test-body-len: 10\r\n\r\n");
    let r = c.response(true);
    assert_eq!(r.header("content-length"), Some(&b"10"[..]));
    c.send(b"HEAD / HTTP/1.1\r\nHost: up\r\nx-test-chunked: 2\r\n\r\n");
    let r = c.response(true);
    assert_eq!(r.header("transfer-encoding"), Some(&b"chunked"[..]));
    // Had any body bytes been sent, this response would be out of step.
    c.send(get("x-test-body: next\r\n").as_bytes());
    assert_eq!(c.response(false).body, b"next");
}

#[test]
fn connection_close_and_http10_close_after_response() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    c.send(get("Connection: close\r\n").as_bytes());
    assert_eq!(c.response(false).header("connection"), Some(&b"close"[..]));
    assert!(c.at_eof());

    let mut c = Client::connect(&up);
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(c.response(false).body, b"ok");
    assert!(c.at_eof());
    assert_eq!(up.wait_for(2, WAIT)[1].version, 0);

    let mut c = Client::connect(&up);
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c.response(false).header("connection"), None);
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c.response(false).body, b"ok");
}

#[test]
fn expect_continue_gets_interim_response_before_body() {
    let up = Upstream::start();
    let mut c = Client::connect(&up);
    c.send(b"POST / HTTP/1.1\r\nHost: up\r\nExpect: 100-continue\r\nContent-Length: 2\r\nx-test-echo: 1\r\n\r\n");
    assert_eq!(c.response(false).status, 100);
    c.send(b"hi");
    assert_eq!(c.response(false).body, b"hi");
}

#[test]
fn wait_for_times_out_with_what_arrived() {
    let up = Upstream::start();
    let start = Instant::now();
    assert!(up.wait_for(1, Duration::from_millis(100)).is_empty());
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[test]
fn drop_with_idle_and_busy_connections_returns_promptly() {
    let up = Upstream::start();
    let mut idle = Client::connect(&up);
    idle.send(get("").as_bytes());
    idle.response(false);
    let mut busy = Client::connect(&up);
    busy.send(get("x-test-delay-ms: 60000\r\n").as_bytes());
    let mut partial = Client::connect(&up);
    partial.send(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    up.wait_for(2, WAIT);
    let start = Instant::now();
    drop(up);
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    assert!(idle.at_eof());
    assert!(busy.at_eof());
}
