//! Guards the metrics' hot-path promise: counting a finished request (route, status,
//! latencies, the plugin's cache outcome or refusal) and the connection gauges allocate
//! nothing; with the access log off, logging costs nothing either; with it on, a line
//! goes into the worker's reused buffer without allocating once the buffer has grown.
//!
//! A counting global allocator (this test binary only) counts allocations made by the
//! current thread while a measurement is on. Snapshot and recorder set-up happen before:
//! they are reload-time work.

mod support;

use support::alloc::{allocations_during, Counting};

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ringgate::access_log::{Flushed, Sink, Target, WorkerLog};
use ringgate::error::AuthReason;
use ringgate::metrics::{ControlMetrics, Exchange, Metrics, Recorder};
use ringgate::oidc::access::CacheUse;
use ringgate::snapshot::{Resolved, Snapshot};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const YAML: &str = "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://127.0.0.1:9\n  routes:\n  - name: open\n    paths: [/open]\n  - name: guarded\n    paths: [/guarded]\n    plugins:\n    - name: openid-connect\n      config:\n        issuer: http://127.0.0.1:9/\n        auth_methods: [client_credentials]\n";

fn snapshot() -> Snapshot {
    let cfg = ringgate::config::load_str(YAML, "test.yaml", &|_| None).expect("loads");
    Snapshot::build(cfg, &mut Resolved::new()).expect("compiles")
}

/// One request as the connection loop fills and finishes it.
fn serve(r: &Recorder, ex: &mut Exchange, i: u64, keep_text: bool) -> Instant {
    ex.begin(Instant::now(), keep_text);
    if keep_text {
        ex.method.extend_from_slice(b"GET");
        ex.path.extend_from_slice(b"/guarded/orders/17");
    }
    let guarded = i % 2 == 0;
    ex.route = Some(usize::from(guarded));
    ex.service = Some(0);
    ex.route_slot = r.route_slot(usize::from(guarded));
    ex.bytes_received = 80 + i % 7;
    if guarded {
        ex.plugin_slot = Some(r.plugin_slot(0));
        match i % 6 {
            0 => ex.auth.cache = Some(CacheUse::Hit),
            2 => ex.auth.cache = Some(CacheUse::HitRefreshing),
            _ => {
                ex.auth.cache = Some(CacheUse::Miss);
                ex.denied = Some(AuthReason::CredentialsRejected);
            }
        }
        if keep_text {
            ex.auth.client_id.extend_from_slice(b"my-client-id");
        }
    }
    ex.status = if ex.denied.is_some() { 401 } else { [200, 201, 404, 502][(i % 4) as usize] };
    if ex.denied.is_none() {
        ex.upstream_start = Some(Instant::now());
        ex.upstream_done(Instant::now());
    }
    ex.bytes_sent = 120 + i % 13;
    let end = Instant::now();
    r.finish(ex, end);
    end
}

#[test]
fn counting_a_request_and_connections_does_not_allocate() {
    let metrics = Metrics::new(1, Some(std::sync::Arc::new(ControlMetrics::default())));
    let r = metrics.recorder(0);
    let snap = snapshot();
    r.on_snapshot(&snap);
    let mut ex = Exchange::default();
    let n = allocations_during(|| {
        for i in 0..5000 {
            r.connection_opened(1);
            serve(&r, &mut ex, i, false);
            r.connection_closed(0);
        }
    });
    assert_eq!(n, 0);
    // And the counts are there (the measurement measured the real thing): i % 6 == 4 is
    // the refused one, 833 times below 5000.
    let text = metrics.render();
    assert!(text.contains(r#"ringgate_worker_requests_total{worker="0"} 5000"#), "{text}");
    assert!(text.contains(r#"reason="credentials_rejected"} 833"#), "{text}");
}

/// Long enough for any writer to catch up; `finish` returns as soon as it has.
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn access_log_off_costs_no_allocation() {
    let metrics = Metrics::new(1, None);
    let r = metrics.recorder(0);
    let snap = snapshot();
    r.on_snapshot(&snap);
    let log = WorkerLog::new(None);
    let peer: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    let mut ex = Exchange::default();
    let n = allocations_during(|| {
        for i in 0..1000 {
            let end = serve(&r, &mut ex, i, log.is_on());
            assert!(!log.record(&ex, &snap, peer, 0, end));
            assert_eq!(log.flush(), Flushed::default());
        }
    });
    assert_eq!(n, 0);
    assert!(ex.path.is_empty() && ex.auth.client_id.is_empty(), "nothing copied while the log is off");
}

#[test]
fn access_log_lines_go_into_the_reused_buffer_without_allocating() {
    let dir = std::env::temp_dir().join(format!("ringgate-metrics-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.log");
    let sink = Sink::open(&Target::File(path.clone())).unwrap();
    let log = WorkerLog::new(sink);
    let metrics = Metrics::new(1, None);
    let r = metrics.recorder(0);
    let snap = snapshot();
    r.on_snapshot(&snap);
    let peer: SocketAddr = "[2001:db8::7]:40000".parse().unwrap();
    let mut ex = Exchange::default();
    // Warm-up: the exchange's text buffers grow once per connection.
    let end = serve(&r, &mut ex, 0, true);
    log.record(&ex, &snap, peer, 0, end);
    assert_eq!(log.finish(WAIT), Flushed::default());
    let mut lines = 1;
    let n = allocations_during(|| {
        for i in 0..1000 {
            let end = serve(&r, &mut ex, i, true);
            if log.record(black_box(&ex), &snap, peer, 0, end + Duration::from_micros(i)) {
                // Waits for the writer, so no line is dropped however slow it is here.
                assert_eq!(log.finish(WAIT), Flushed::default());
            }
            lines += 1;
        }
        assert_eq!(log.finish(WAIT), Flushed::default());
    });
    assert_eq!(n, 0);
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(text.lines().count(), lines);
    assert!(text.lines().all(|l| l.starts_with("{\"time\":\"") && l.ends_with('}')));
    assert!(text.contains(r#""client":"[2001:db8::7]:40000""#));
}

#[test]
fn access_log_lines_for_unnamed_routes_and_services_do_not_allocate() {
    // Without a name or an id the labels are made up (`_route1`, `host:port`): written
    // into the line, not formatted into a String of their own.
    let yaml = "_format_version: \"3.0\"\nservices:\n- url: http://127.0.0.1:9\n  routes:\n  - paths: [/a]\n";
    let cfg = ringgate::config::load_str(yaml, "test.yaml", &|_| None).expect("loads");
    let snap = Snapshot::build(cfg, &mut Resolved::new()).expect("compiles");
    let dir = std::env::temp_dir().join(format!("ringgate-metrics-alloc-unnamed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.log");
    let log = WorkerLog::new(Sink::open(&Target::File(path.clone())).unwrap());
    let peer: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    let mut ex = Exchange::default();
    ex.begin(Instant::now(), true);
    ex.method.extend_from_slice(b"GET");
    ex.path.extend_from_slice(b"/a");
    ex.route = Some(0);
    ex.service = Some(0);
    ex.status = 200;
    log.record(&ex, &snap, peer, 0, Instant::now());
    assert_eq!(log.finish(WAIT), Flushed::default());
    let n = allocations_during(|| {
        for _ in 0..100 {
            log.record(black_box(&ex), &snap, peer, 0, Instant::now());
        }
        assert_eq!(log.finish(WAIT), Flushed::default());
    });
    assert_eq!(n, 0);
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(text.lines().count(), 101);
    assert!(text.lines().all(|l| l.contains(r#""route":"_route1","service":"127.0.0.1:9""#)), "{text}");
}

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations_during(|| drop(black_box(vec![1u8; 16]))) > 0);
}
