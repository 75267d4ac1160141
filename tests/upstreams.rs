//! Kong upstreams end to end: a service whose host names an upstream is balanced over
//! the upstream's targets, each a real recording upstream on 127.0.0.1. Requests of a
//! test go over one keep-alive connection, so one worker serves them and the
//! round-robin order is exact. Every test runs on both monoio drivers.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use ringgate::server::Limits;
use support::client::{Client, Proxy};
use support::upstream::Upstream;

const WAIT: Duration = Duration::from_secs(5);

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: api.example.com\r\n\r\n").into_bytes()
}

/// Sends `n` GETs of `path` on one connection; every answer must be 200.
fn send_all(c: &mut Client, path: &str, n: usize) {
    for i in 0..n {
        c.write(&get(path));
        let r = c.response().unwrap_or_else(|| panic!("request {i}: no response"));
        assert_eq!(r.status, 200, "request {i}: {}", r.body_str());
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

on_both_drivers!(requests_go_round_robin_over_the_targets_by_weight, |d| {
    let (a, b) = (Upstream::start(), Upstream::start());
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: orders.internal\n  targets:\n  - target: {}\n    weight: 300\n  \
         - target: {}\n    weight: 100\nservices:\n- name: orders\n  host: orders.internal\n  routes: [{{paths: [/]}}]\n",
        a.addr(),
        b.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    send_all(&mut p.connect(), "/x", 40);
    let (got_a, got_b) = (a.wait_for(30, WAIT), b.wait_for(10, WAIT));
    assert_eq!((got_a.len(), got_b.len()), (30, 10));
    // Without `host_header`, each target gets its own address as Host (Kong's rule).
    assert!(got_a.iter().all(|r| r.header_str("host") == Some(a.addr().to_string())));
    assert!(got_b.iter().all(|r| r.header_str("host") == Some(b.addr().to_string())));
    assert!(a.errors().is_empty() && b.errors().is_empty());
});

on_both_drivers!(the_upstreams_host_header_goes_with_the_targets_port, |d| {
    let up = Upstream::start();
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: u\n  host_header: api.internal\n  targets: [{{target: '{}'}}]\n\
         services:\n- host: u\n  routes:\n  - paths: [/p]\n  - paths: [/keep]\n    preserve_host: true\n",
        up.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let mut c = p.connect();
    send_all(&mut c, "/p", 1);
    send_all(&mut c, "/keep", 1);
    let got = up.wait_for(2, WAIT);
    assert_eq!(got[0].header_str("host"), Some(format!("api.internal:{}", up.addr().port())));
    assert_eq!(got[1].header_str("host").as_deref(), Some("api.example.com"));
});

on_both_drivers!(a_target_that_refuses_connections_is_passed_over_with_the_next_ones_host, |d| {
    let up = Upstream::start();
    let down = closed_port();
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: u\n  targets: [{{target: '{down}'}}, {{target: '{}'}}]\n\
         services:\n- host: u\n  retries: 2\n  routes: [{{paths: [/]}}]\n",
        up.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    send_all(&mut p.connect(), "/r", 6);
    let got = up.wait_for(6, WAIT);
    assert_eq!(got.len(), 6);
    // The head was written for the refused target first: its Host was replaced.
    for r in &got {
        assert_eq!(r.header_str("host"), Some(up.addr().to_string()));
        assert_eq!(r.header_all("host").len(), 1);
        assert_eq!(r.target, "/r");
    }
    assert!(up.errors().is_empty(), "{:?}", up.errors());
});

on_both_drivers!(services_taking_turns_each_keep_their_own_rotation, |d| {
    let (a1, a2, b1, b2) = (Upstream::start(), Upstream::start(), Upstream::start(), Upstream::start());
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: a\n  targets: [{{target: '{}'}}, {{target: '{}'}}]\n\
         - name: b\n  targets: [{{target: '{}'}}, {{target: '{}'}}]\n\
         services:\n- host: a\n  routes: [{{paths: [/a]}}]\n- host: b\n  routes: [{{paths: [/b]}}]\n",
        a1.addr(),
        a2.addr(),
        b1.addr(),
        b2.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let mut c = p.connect();
    for _ in 0..8 {
        send_all(&mut c, "/a", 1);
        send_all(&mut c, "/b", 1);
    }
    let counts: Vec<usize> = [&a1, &a2, &b1, &b2].iter().map(|u| u.wait_for(4, WAIT).len()).collect();
    assert_eq!(counts, vec![4, 4, 4, 4]);
});

on_both_drivers!(an_upstream_with_no_target_to_send_to_answers_503, |d| {
    let yaml = "_format_version: \"3.0\"\nupstreams:\n- name: empty\n- name: idle\n  targets: [{target: '127.0.0.1:1', weight: 0}]\n\
                services:\n- host: empty\n  routes: [{paths: [/e]}]\n- host: idle\n  routes: [{paths: [/i]}]\n";
    let p = Proxy::start(yaml, d, Limits::default());
    for path in ["/e", "/i"] {
        let r = p.send(&get(path));
        assert_eq!(r.status, 503, "{path}");
        assert_eq!(r.body_str(), r#"{"message":"failure to get a peer from the ring-balancer"}"#, "{path}");
    }
});

// ----- health checks -----

/// A bare HTTP/1.1 server answering every request with one status, keep-alive, counting
/// what it answered; stopped (listener and connections closed) on `stop` or drop. A
/// stand-in for a target that fails in a chosen way, where the recording upstream
/// answers 200.
struct Fixed {
    addr: SocketAddr,
    answered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Fixed {
    fn start(status: u16) -> Fixed {
        Fixed::on("127.0.0.1:0".parse().unwrap(), status)
    }

    /// Listens on `addr` (a port a stopped `Fixed` had: std sets SO_REUSEADDR).
    fn on(addr: SocketAddr, status: u16) -> Fixed {
        Fixed::slow(addr, status, Duration::ZERO)
    }

    /// [`Fixed::on`], answering each request `delay` after it arrived.
    fn slow(addr: SocketAddr, status: u16, delay: Duration) -> Fixed {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind(addr).expect("bind");
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let answered = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (answered.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let (a, s) = (a.clone(), s.clone());
                std::thread::spawn(move || {
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !s.load(Ordering::SeqCst) {
                        match conn.read(&mut chunk) {
                            Ok(0) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            Err(e)
                                if e.kind() == std::io::ErrorKind::WouldBlock
                                    || e.kind() == std::io::ErrorKind::TimedOut =>
                            {
                                continue
                            }
                            Err(_) => return,
                        }
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            std::thread::sleep(delay);
                            a.fetch_add(1, Ordering::SeqCst);
                            let r = format!("HTTP/1.1 {status} Fixed\r\nContent-Length: 2\r\n\r\nok");
                            if conn.write_all(r.as_bytes()).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        Fixed { addr, answered, stop }
    }

    fn answered(&self) -> usize {
        self.answered.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Fixed {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Let the accept loop and the connections see it, so the port is free again.
        std::thread::sleep(Duration::from_millis(60));
    }
}

/// Sends GETs on `c` until `n` were answered; returns how many of them were 200.
fn count_ok(c: &mut Client, n: usize) -> usize {
    (0..n)
        .filter(|_| {
            c.write(&get("/h"));
            c.response().expect("a response").status == 200
        })
        .count()
}

on_both_drivers!(passive_checks_take_a_target_that_keeps_failing_out_of_rotation, |d| {
    let bad = Fixed::start(500);
    let good = Upstream::start();
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: u\n  healthchecks:\n    passive:\n      \
         unhealthy: {{http_failures: 2}}\n  targets: [{{target: '{}'}}, {{target: '{}'}}]\n\
         services:\n- host: u\n  routes: [{{paths: [/]}}]\n",
        bad.addr,
        good.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let mut c = p.connect();
    // Turns alternate until the second 500; from then on only the good target answers.
    assert_eq!(count_ok(&mut c, 20), 18);
    assert_eq!(bad.answered(), 2);
    assert_eq!(good.wait_for(18, WAIT).len(), 18);
    assert!(!p.shared.load().health.iter().find(|h| h.peer.addr == bad.addr).unwrap().peer.is_healthy());
});

on_both_drivers!(active_checks_take_a_down_target_out_and_bring_it_back, |d| {
    let flaky = Fixed::start(200);
    let steady = Upstream::start();
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: u\n  healthchecks:\n    active:\n      http_path: /health\n      \
         timeout: 0.5\n      healthy: {{interval: 0.05, successes: 1}}\n      \
         unhealthy: {{interval: 0.05, tcp_failures: 1, http_failures: 1}}\n  \
         targets: [{{target: '{}'}}, {{target: '{}'}}]\nservices:\n- host: u\n  routes: [{{paths: [/]}}]\n",
        flaky.addr,
        steady.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let addr = flaky.addr;
    let health = || p.shared.load().health.iter().find(|h| h.peer.addr == addr).unwrap().peer.is_healthy();
    let wait_until = |want: bool| {
        let deadline = std::time::Instant::now() + WAIT;
        while health() != want {
            assert!(std::time::Instant::now() < deadline, "the flaky target never became healthy={want}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // Probes reach the flaky target on /health while it answers.
    std::thread::sleep(Duration::from_millis(300));
    assert!(health());
    assert!(flaky.answered() > 0, "probes reached it");
    drop(flaky);
    wait_until(false);
    let mut c = p.connect();
    assert_eq!(count_ok(&mut c, 10), 10, "every request goes to the steady target");
    // The steady target also gets the probes; the requests are the ones on `/h`.
    let proxied = steady.wait_for(10, WAIT).iter().filter(|r| r.target == "/h").count();
    assert_eq!(proxied, 10);
    assert!(steady.received().iter().any(|r| r.target == "/health" && r.header_str("user-agent").is_some()));
    let back = Fixed::on(addr, 200);
    wait_until(true);
    let before = back.answered();
    assert_eq!(count_ok(&mut c, 10), 10);
    assert!(back.answered() >= before + 5, "the target is back in rotation");
    // A probe that gets an unhealthy status takes the target out again.
    drop(back);
    let _erroring = Fixed::on(addr, 503);
    wait_until(false);
});

on_both_drivers!(with_every_target_unhealthy_the_upstream_answers_503_until_one_is_back, |d| {
    let up = Upstream::start();
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: u\n  healthchecks:\n    passive:\n      unhealthy: {{tcp_failures: 1}}\n  \
         targets: [{{target: '{}'}}]\nservices:\n- host: u\n  routes: [{{paths: [/]}}]\n",
        up.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let snap = p.shared.load();
    let h = &snap.health[0].peer;
    assert!(h.set(false, "test"));
    let metrics = p.server.as_ref().unwrap().metrics().render_with(&p.shared.load());
    let series = |state: &str| {
        format!(
            "ringgate_upstream_target_health{{upstream=\"u\",target=\"{0}\",address=\"{0}\",state=\"{state}\"}}",
            up.addr()
        )
    };
    assert!(metrics.contains(&format!("{} 1\n", series("unhealthy"))), "{metrics}");
    assert!(metrics.contains(&format!("{} 0\n", series("healthy"))), "{metrics}");
    let r = p.send(&get("/x"));
    assert_eq!((r.status, r.body_str()), (503, r#"{"message":"failure to get a peer from the ring-balancer"}"#.into()));
    assert!(h.set(true, "test"));
    assert_eq!(p.send(&get("/x")).status, 200);
});

on_both_drivers!(a_reload_without_the_checks_stops_the_probes, |d| {
    let target = Fixed::start(200);
    let with = |checks: &str| {
        format!(
            "_format_version: \"3.0\"\nupstreams:\n- name: u\n{checks}  targets: [{{target: '{}'}}]\n\
             services:\n- host: u\n  routes: [{{paths: [/]}}]\n",
            target.addr
        )
    };
    let p = Proxy::start(
        &with("  healthchecks:\n    active:\n      healthy: {interval: 0.05}\n      unhealthy: {tcp_failures: 1}\n"),
        d,
        Limits::default(),
    );
    std::thread::sleep(Duration::from_millis(400));
    assert!(target.answered() >= 2, "probed every 50 ms");
    p.reload(&with(""));
    // The checker looks for a new snapshot every 250 ms.
    std::thread::sleep(Duration::from_millis(400));
    let after = target.answered();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(target.answered(), after, "no probe after the reload");
});

on_both_drivers!(least_connections_sends_to_the_target_with_fewer_requests_in_flight, |d| {
    let (a, b) = (Upstream::start(), Upstream::start());
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: u\n  algorithm: least-connections\n  \
         targets: [{{target: '{}'}}, {{target: '{}'}}]\nservices:\n- host: u\n  routes: [{{paths: [/]}}]\n",
        a.addr(),
        b.addr()
    );
    // One worker: both connections share its counts.
    let p = Proxy::start_workers(support::client::snapshot(&yaml), d, Limits::default(), 1);
    let mut slow = p.connect();
    slow.write(b"GET /slow HTTP/1.1\r\nHost: x\r\nx-test-delay-ms: 700\r\n\r\n");
    // The slow request reached one target; while it is in flight, every quick request
    // goes to the other (round-robin would alternate).
    let busy = loop {
        if !a.received().is_empty() {
            break &a;
        }
        if !b.received().is_empty() {
            break &b;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let idle = if std::ptr::eq(busy, &a) { &b } else { &a };
    send_all(&mut p.connect(), "/quick", 6);
    assert_eq!(idle.wait_for(6, WAIT).iter().filter(|r| r.target == "/quick").count(), 6);
    assert_eq!(busy.received().len(), 1);
    assert_eq!(slow.response().expect("the slow response").status, 200);
    // Nothing in flight: both take turns again.
    send_all(&mut p.connect(), "/after", 4);
    assert_eq!(busy.wait_for(3, WAIT).iter().filter(|r| r.target == "/after").count(), 2);
});

on_both_drivers!(consistent_hashing_sends_each_caller_to_its_own_target, |d| {
    let (a, b) = (Upstream::start(), Upstream::start());
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: u\n  algorithm: consistent-hashing\n  hash_on: header\n  \
         hash_on_header: X-User\n  hash_fallback: query_arg\n  hash_fallback_query_arg: user\n  \
         targets: [{{target: '{}'}}, {{target: '{}'}}]\nservices:\n- host: u\n  routes: [{{paths: [/]}}]\n",
        a.addr(),
        b.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let mut c = p.connect();
    // Each of 32 callers, four requests each, by header and by the fallback query
    // argument: all of one caller's requests reach one target. (The ring follows the
    // targets' random ports, so all callers on one target is a 2 × 2^-N chance: 32 make
    // it negligible.)
    for user in 0..32 {
        for round in 0..4 {
            let req = if round % 2 == 0 {
                format!("GET /u{user} HTTP/1.1\r\nHost: x\r\nX-User: caller-{user}\r\n\r\n")
            } else {
                format!("GET /u{user}?user=caller-{user}&x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            };
            c.write(req.as_bytes());
            assert_eq!(c.response().expect("a response").status, 200);
        }
    }
    let got: Vec<_> = a.wait_for(1, WAIT).into_iter().chain(b.wait_for(1, WAIT)).collect();
    assert_eq!(got.len(), 128);
    let path = |r: &support::upstream::Received| r.target.split('?').next().unwrap().to_string();
    for user in 0..32 {
        let p = format!("/u{user}");
        let (on_a, on_b) = (
            a.received().iter().filter(|r| path(r) == p).count(),
            b.received().iter().filter(|r| path(r) == p).count(),
        );
        assert!(on_a == 4 && on_b == 0 || on_a == 0 && on_b == 4, "caller {user}: {on_a} on a, {on_b} on b");
    }
    assert!(!a.received().is_empty() && !b.received().is_empty(), "32 callers use both targets");
});

on_both_drivers!(cookie_hashing_sets_a_cookie_once_and_keeps_its_holder_on_one_target, |d| {
    let (a, b, c) = (Upstream::start(), Upstream::start(), Upstream::start());
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: u\n  algorithm: consistent-hashing\n  hash_on: cookie\n  \
         hash_on_cookie: affinity\n  hash_on_cookie_path: /shop\n  \
         targets: [{{target: '{}'}}, {{target: '{}'}}, {{target: '{}'}}]\nservices:\n- host: u\n  routes: [{{paths: [/]}}]\n",
        a.addr(),
        b.addr(),
        c.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let mut conn = p.connect();
    // A target records a request before it answers, so after a response the counts
    // are final.
    let counts = || [a.received().len(), b.received().len(), c.received().len()];
    let mut send = |cookie: &str| {
        conn.write(format!("GET /shop/x HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n").as_bytes());
        let r = conn.response().expect("a response");
        assert_eq!(r.status, 200);
        r.header("set-cookie").map(str::to_string)
    };
    // Each new caller gets a cookie; with it, its later requests reach the same target
    // (the cookie alone or among others, quoted or not), and no new cookie is set.
    let mut used = [0usize; 3];
    for caller in 0..12 {
        let before = counts();
        let set = send("theme=dark").unwrap_or_else(|| panic!("caller {caller}: no cookie set"));
        let value = set.strip_prefix("affinity=").and_then(|v| v.split(';').next()).expect("the configured name");
        assert_eq!(value.len(), 36, "a UUID: {set}");
        assert!(set.ends_with("; Path=/shop; SameSite=Lax; HttpOnly"), "{set}");
        let first = (0..3).find(|&i| counts()[i] == before[i] + 1).expect("one target got it");
        used[first] += 1;
        for round in 0..4 {
            let cookie =
                if round % 2 == 0 { format!("affinity={value}") } else { format!("theme=dark; affinity=\"{value}\"") };
            assert_eq!(send(&cookie), None, "caller {caller} sent the cookie");
        }
        let expected: Vec<usize> = (0..3).map(|i| before[i] + if i == first { 5 } else { 0 }).collect();
        assert_eq!(counts().to_vec(), expected, "caller {caller}");
    }
    assert!(used.iter().filter(|&&n| n > 0).count() >= 2, "12 callers spread over the targets: {used:?}");
});

on_both_drivers!(sticky_sessions_keep_a_caller_on_its_address_and_move_it_when_that_one_fails, |d| {
    let (a, b, c) = (Upstream::start(), Upstream::start(), Upstream::start());
    let gone = closed_port();
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: u\n  algorithm: sticky-sessions\n  sticky_sessions_cookie: srv\n  \
         targets: [{{target: '{}'}}, {{target: '{}'}}, {{target: '{}'}}, {{target: '{gone}'}}]\n\
         services:\n- host: u\n  retries: 3\n  routes: [{{paths: [/]}}]\n",
        a.addr(),
        b.addr(),
        c.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let mut conn = p.connect();
    let targets = [&a, &b, &c];
    let counts = || targets.map(|t| t.received().len());
    let mut send = |cookie: Option<&str>| {
        let line = cookie.map(|c| format!("Cookie: {c}\r\n")).unwrap_or_default();
        conn.write(format!("GET /s HTTP/1.1\r\nHost: x\r\n{line}\r\n").as_bytes());
        let r = conn.response().expect("a response");
        assert_eq!(r.status, 200, "{}", r.body_str());
        r.header("set-cookie").map(str::to_string)
    };
    let id_of = |addr| format!("srv={:016x}", ringgate::snapshot::sticky_id("u", addr));
    // New callers get the cookie of the address that answered; with it they stay there.
    let mut used = [0usize; 3];
    for caller in 0..9 {
        let before = counts();
        let set = send(None).unwrap_or_else(|| panic!("caller {caller}: no cookie"));
        let answered = (0..3).find(|&i| counts()[i] == before[i] + 1).expect("a live target answered");
        used[answered] += 1;
        assert_eq!(set, format!("{}; Path=/; SameSite=Lax; HttpOnly", id_of(targets[answered].addr())));
        let cookie = set.split(';').next().unwrap().to_string();
        for _ in 0..3 {
            assert_eq!(send(Some(&cookie)), None, "caller {caller}: the cookie stands");
        }
        assert_eq!(counts()[answered], before[answered] + 4, "caller {caller}");
    }
    assert!(used.iter().all(|&n| n > 0), "the round-robin turn spreads new callers: {used:?}");

    // A cookie naming no address, or a malformed one, is replaced.
    for stale in ["srv=0123456789abcdef", "srv=zz", "srv="] {
        let before = counts();
        let set = send(Some(stale)).expect("a new cookie");
        let answered = (0..3).find(|&i| counts()[i] == before[i] + 1).expect("a live target answered");
        assert!(set.starts_with(&id_of(targets[answered].addr())), "{stale}: {set}");
    }

    // The address a cookie names refuses connections: the request is retried elsewhere
    // and the cookie moves to the address that answered.
    let before = counts();
    let set = send(Some(&id_of(gone))).expect("a new cookie");
    let answered = (0..3).find(|&i| counts()[i] == before[i] + 1).expect("a live target answered");
    assert!(set.starts_with(&id_of(targets[answered].addr())), "{set}");
});

on_both_drivers!(https_active_checks_probe_over_tls_and_verify_the_certificate_unless_told_not_to, |d| {
    use support::tls::{server_config, TestCa, TlsFront};
    let ca = TestCa::new("probe-ca");
    let cert = ca.issue(&["localhost"]);
    // Two https targets serving a certificate of a CA no system store has: one
    // relaying to a recording upstream (200s), one to a target answering 503.
    let (ok_backend, failing_backend) = (Upstream::start(), Fixed::start(503));
    let ok_front = TlsFront::start(ok_backend.addr(), server_config(&cert, None));
    let failing_front = TlsFront::start(failing_backend.addr, server_config(&cert, None));
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n\
         - name: lax\n  healthchecks:\n    active:\n      type: https\n      https_sni: localhost\n      \
         https_verify_certificate: false\n      http_path: /health\n      timeout: 0.5\n      \
         healthy: {{interval: 0.05, successes: 1}}\n      unhealthy: {{interval: 0.05, tcp_failures: 1, http_failures: 1}}\n  \
         targets: [{{target: '{ok}'}}, {{target: '{failing}'}}]\n\
         - name: strict\n  healthchecks:\n    active:\n      type: https\n      https_sni: localhost\n      \
         timeout: 0.5\n      healthy: {{interval: 0.05, successes: 1}}\n      unhealthy: {{interval: 0.05, tcp_failures: 1}}\n  \
         targets: [{{target: '{ok}'}}]\n",
        ok = ok_front.addr,
        failing = failing_front.addr,
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let healthy = |upstream: &str, addr: SocketAddr| {
        let snap = p.shared.load();
        snap.health.iter().find(|h| h.peer.upstream == upstream && h.peer.addr == addr).unwrap().peer.is_healthy()
    };
    let wait_until = |upstream: &str, addr: SocketAddr, want: bool| {
        let deadline = std::time::Instant::now() + WAIT;
        while healthy(upstream, addr) != want {
            assert!(std::time::Instant::now() < deadline, "{upstream} {addr} never became healthy={want}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // Without verification: the 503 target goes out, the other stays in and its
    // backend sees the probes, in plain text after the TLS front.
    wait_until("lax", failing_front.addr, false);
    assert!(failing_backend.answered() > 0, "probes reached the failing target through TLS");
    std::thread::sleep(Duration::from_millis(300));
    assert!(healthy("lax", ok_front.addr));
    let probes = ok_backend.received();
    let probe = probes.iter().find(|r| r.target == "/health").expect("a probe through TLS");
    assert_eq!(probe.header_str("host"), Some(ok_front.addr.to_string()));
    assert!(ok_front.handshakes() > 0);
    // With verification (Kong's default), a certificate no trusted CA signed fails the
    // handshake: a TCP failure.
    wait_until("strict", ok_front.addr, false);
});

on_both_drivers!(latency_balancing_sends_requests_to_the_faster_target, |d| {
    let fast = Upstream::start();
    let slow = Fixed::slow("127.0.0.1:0".parse().unwrap(), 200, Duration::from_millis(30));
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: u\n  algorithm: latency\n  \
         targets: [{{target: '{}'}}, {{target: '{}'}}]\nservices:\n- host: u\n  routes: [{{paths: [/]}}]\n",
        slow.addr,
        fast.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    // Each target is tried once (the one not measured yet counts as the fastest so
    // far); from then on the 30 ms one loses every time.
    assert_eq!(count_ok(&mut p.connect(), 40), 40);
    assert_eq!(slow.answered(), 1);
    assert_eq!(fast.wait_for(39, WAIT).len(), 39);
});

on_both_drivers!(uri_capture_hashing_sends_each_captured_value_to_its_own_target, |d| {
    let (a, b) = (Upstream::start(), Upstream::start());
    let yaml = format!(
        "_format_version: \"3.0\"\nupstreams:\n- name: u\n  algorithm: consistent-hashing\n  hash_on: uri_capture\n  \
         hash_on_uri_capture: tenant\n  targets: [{{target: '{}'}}, {{target: '{}'}}]\nservices:\n- host: u\n  \
         routes: [{{paths: ['~/t/(?<tenant>[a-z0-9]+)/'], strip_path: false}}]\n",
        a.addr(),
        b.addr()
    );
    let p = Proxy::start(&yaml, d, Limits::default());
    let mut c = p.connect();
    // 32 tenants, three requests each on different paths: a tenant's requests all
    // reach one target (32, so that all of them on one target is no real chance).
    for tenant in 0..32 {
        for item in 0..3 {
            c.write(format!("GET /t/tenant{tenant}/item{item} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
            assert_eq!(c.response().expect("a response").status, 200);
        }
    }
    assert_eq!(a.wait_for(1, WAIT).len() + b.wait_for(1, WAIT).len(), 96);
    let of = |t: &Upstream, tenant: usize| {
        t.received().iter().filter(|r| r.target.starts_with(&format!("/t/tenant{tenant}/"))).count()
    };
    for tenant in 0..32 {
        let (on_a, on_b) = (of(&a, tenant), of(&b, tenant));
        assert!(on_a == 3 && on_b == 0 || on_a == 0 && on_b == 3, "tenant {tenant}: {on_a} on a, {on_b} on b");
    }
    assert!(!a.received().is_empty() && !b.received().is_empty(), "32 tenants use both targets");
});
