//! Guards the router's hot-path promise: `Router::find` makes no heap allocation.
//!
//! A counting global allocator (this test binary only) counts allocations made by the
//! current thread while a measurement is on. Regex matching is warmed up once first:
//! the regex crate creates its per-thread scratch space on first use, which is the
//! documented start-up cost, not a per-request one.

mod support;

use support::alloc::{allocations_during, Counting};

use ringgate::config::{Config, Mark, Route, RoutePath, Service};
use ringgate::router::{RequestHeaders, RouteRequest, Router};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct Hdrs(&'static [(&'static str, &'static str)]);

impl RequestHeaders for Hdrs {
    fn any_value(&self, lower_name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.0.iter().filter(|(n, _)| *n == lower_name).any(|(_, v)| f(v.as_bytes()))
    }
}

fn route(hosts: &[&str], paths: &[&str], headers: &[(&str, &[&str])]) -> Route {
    Route {
        methods: vec!["GET".into()],
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        paths: paths
            .iter()
            .map(|p| match p.strip_prefix('~') {
                Some(re) => RoutePath::Regex(re.into()),
                None => RoutePath::Prefix(p.to_string()),
            })
            .collect(),
        headers: headers.iter().map(|(n, vs)| (n.to_string(), vs.iter().map(|v| v.to_string()).collect())).collect(),
        ..Route::new(Some(0), Mark::default())
    }
}

/// (Host, path, headers, expected route index)
type Probe = (&'static str, &'static str, &'static [(&'static str, &'static str)], Option<usize>);

#[test]
fn find_does_not_allocate() {
    let service = Service { path: Some("/base".into()), ..Service::new("upstream.test", 80, Mark::default()) };
    let config = Config {
        services: vec![service],
        routes: vec![
            route(&["api.example.com"], &["/orders", "/orders/archive"], &[]),
            route(&["*.example.com"], &["~/users/\\d+"], &[]),
            route(&[], &["/tenant"], &[("x-tenant", &["acme", "~*^beta-\\d+$"])]),
            route(&["example.*"], &[], &[]),
        ],
        plugins: Vec::new(),
        warnings: Vec::new(),
        ..Config::default()
    };
    let router = Router::new(&config).unwrap();
    let requests: &[Probe] = &[
        ("api.example.com:8000", "/orders/archive/2024", &[], Some(0)),
        ("WWW.example.com", "/users/42/profile", &[], Some(1)),
        ("any.test", "/tenant/x", &[("x-tenant", "BETA-7")], Some(2)),
        ("example.org", "/public/../%61dmin", &[], Some(3)),
        ("nomatch.test", "/nothing", &[], None),
    ];
    let run = |check: bool| {
        for &(host, path, headers, expected) in requests {
            let headers = Hdrs(headers);
            let req = RouteRequest {
                method: b"GET",
                host: host.as_bytes(),
                port: 8000,
                path: path.as_bytes(),
                headers: &headers,
            };
            let got = router.find(&req).map(|m| m.route);
            if check {
                assert_eq!(got, expected, "{host} {path}");
            }
        }
    };
    run(true); // warm-up: regex scratch space is created on first use
    assert_eq!(allocations_during(|| run(false)), 0);
}

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1u8; 16]))) > 0);
}
