//! `Router::find` over a 50-route table shaped like a real decK file: plain-host
//! routes with prefix paths, wildcard hosts, a few regex and header routes.
//!
//! Run: `cargo bench --bench router` (add `-- --quick` on a shared machine).
//! Record results in a dated file under `perf/` with the machine they came from.
//!
//! The `large/` cases route on a 4 000-route table (2 000 by host, 2 000 by path prefix).
//!
//! 2026-11-28, `--quick`, 2 shared cores, dev box (indicative only): plain host + prefix
//! (last of 40 such routes) ~177 ns, wildcard host ~240 ns, regex path ~450 ns, no match
//! ~340 ns, path needing normalisation ~550 ns.
//!
//! 2026-12-06, `--quick`, same kind of machine, this bench run on both trees one after the
//! other: before → after the host map and prefix trie (`router/index.rs`, used from 16
//! candidates on; this 50-route table has more): plain host + prefix 150 → 100 ns,
//! wildcard host 193 → 81 ns, regex path 302 → 203 ns, no match 200 → 105 ns, normalised
//! path 399 → 232 ns; large/host_last 6.75 µs → 108 ns, large/prefix_last 8.33 µs →
//! 111 ns, large/no_match 12.4 µs → 51 ns.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ringgate::config::{Config, Mark, Route, RoutePath, Service};
use ringgate::router::{RequestHeaders, RouteRequest, Router};

struct Hdrs(&'static [(&'static str, &'static str)]);

impl RequestHeaders for Hdrs {
    fn any_value(&self, lower_name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.0.iter().filter(|(n, _)| *n == lower_name).any(|(_, v)| f(v.as_bytes()))
    }
}

fn route(hosts: Vec<String>, paths: Vec<RoutePath>, headers: Vec<(String, Vec<String>)>) -> Route {
    Route { hosts, paths, headers, ..Route::new(Some(0), Mark::default()) }
}

fn config() -> Config {
    let service = Service { path: Some("/api".into()), ..Service::new("upstream.test", 80, Mark::default()) };
    let mut routes = Vec::new();
    for i in 0..40 {
        routes.push(route(
            vec![format!("svc{}.example.com", i % 8)],
            vec![RoutePath::Prefix(format!("/v1/resource{i}")), RoutePath::Prefix(format!("/v2/resource{i}/items"))],
            Vec::new(),
        ));
    }
    for i in 0..5 {
        routes.push(route(vec![format!("*.tenant{i}.example.com")], vec![RoutePath::Prefix("/".into())], Vec::new()));
    }
    for i in 0..3 {
        routes.push(route(Vec::new(), vec![RoutePath::Regex(format!("/orders/{i}\\d+/items"))], Vec::new()));
    }
    for i in 0..2 {
        routes.push(route(
            Vec::new(),
            Vec::new(),
            vec![("x-tenant".into(), vec![format!("t{i}"), "~*^beta-\\d+$".into()])],
        ));
    }
    Config { services: vec![service], routes, plugins: Vec::new(), warnings: Vec::new(), ..Config::default() }
}

fn bench(c: &mut Criterion) {
    let router = Router::new(&config()).expect("valid config");
    let no_headers = Hdrs(&[]);
    find_each(
        c,
        &router,
        &[
            ("plain_host_prefix_last", b"svc7.example.com:8000", b"/v2/resource39/items/7"),
            ("wildcard_host", b"a.tenant3.example.com", b"/anything"),
            ("regex_path", b"other.test", b"/orders/2123/items/9"),
            ("no_match", b"nowhere.test", b"/nothing/here"),
        ],
    );
    c.bench_function("find/normalised_path", |b| {
        b.iter(|| {
            router.find(black_box(&RouteRequest {
                method: b"GET",
                host: b"svc1.example.com",
                port: 8000,
                path: b"/v1/x/../resource1/%61",
                headers: &no_headers,
            }))
        })
    });

    // A large decK file: 2 000 routes by host (500 hosts, 4 paths each) and 2 000
    // host-less routes by path prefix; the request matches the last of each kind.
    let large = Router::new(&large_config()).expect("valid config");
    find_each(
        c,
        &large,
        &[
            ("large/host_last", b"tenant499.example.com", b"/svc3/items/1"),
            ("large/prefix_last", b"other.test", b"/team1999/orders/7"),
            ("large/no_match", b"nowhere.test", b"/nothing/here"),
        ],
    );
}

/// One `find/<name>` bench per (name, host, path), a GET without headers.
fn find_each(c: &mut Criterion, router: &Router, cases: &[(&str, &[u8], &[u8])]) {
    let no_headers = Hdrs(&[]);
    for &(name, host, path) in cases {
        c.bench_function(&format!("find/{name}"), |b| {
            b.iter(|| {
                router.find(black_box(&RouteRequest { method: b"GET", host, port: 8000, path, headers: &no_headers }))
            })
        });
    }
}

fn large_config() -> Config {
    let service = Service::new("upstream.test", 80, Mark::default());
    let mut routes = Vec::new();
    for h in 0..500 {
        for p in 0..4 {
            routes.push(route(
                vec![format!("tenant{h}.example.com")],
                vec![RoutePath::Prefix(format!("/svc{p}"))],
                Vec::new(),
            ));
        }
    }
    for t in 0..2000 {
        routes.push(route(Vec::new(), vec![RoutePath::Prefix(format!("/team{t}/"))], Vec::new()));
    }
    Config { services: vec![service], routes, plugins: Vec::new(), warnings: Vec::new(), ..Config::default() }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
