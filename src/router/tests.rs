//! Router unit tests. Each precedence rule has a case that picks a different route if
//! the rule is wrong (typically: the route that should lose is declared first).

use super::*;
use crate::config::{Mark, Service};
use crate::testing::Rng;

/// Headers for tests: (lower-case name, value) pairs, repeated names allowed.
struct Hdrs(Vec<(&'static str, &'static str)>);

impl RequestHeaders for Hdrs {
    fn any_value(&self, lower_name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.0.iter().filter(|(n, _)| *n == lower_name).any(|(_, v)| f(v.as_bytes()))
    }
}

fn service(path: Option<&str>) -> Service {
    Service { path: path.map(Into::into), ..Service::new("upstream.test", 80, Mark::default()) }
}

/// A route on service 0 with Kong's defaults and nothing to match on yet.
fn route(name: &str) -> Route {
    Route { name: Some(name.into()), ..Route::new(Some(0), Mark { line: 1, column: 1 }) }
}

trait RouteExt {
    fn paths(self, p: &[&str]) -> Self;
    fn hosts(self, h: &[&str]) -> Self;
    fn methods(self, m: &[&str]) -> Self;
    fn header(self, name: &str, values: &[&str]) -> Self;
    fn regex_priority(self, p: i64) -> Self;
}

impl RouteExt for Route {
    fn paths(mut self, p: &[&str]) -> Self {
        self.paths = p
            .iter()
            .map(|p| match p.strip_prefix('~') {
                Some(re) => RoutePath::Regex(re.into()),
                None => RoutePath::Prefix((*p).into()),
            })
            .collect();
        self
    }
    fn hosts(mut self, h: &[&str]) -> Self {
        self.hosts = h.iter().map(|h| h.to_string()).collect();
        self
    }
    fn methods(mut self, m: &[&str]) -> Self {
        self.methods = m.iter().map(|m| m.to_string()).collect();
        self
    }
    fn header(mut self, name: &str, values: &[&str]) -> Self {
        self.headers.push((name.into(), values.iter().map(|v| v.to_string()).collect()));
        self
    }
    fn regex_priority(mut self, p: i64) -> Self {
        self.regex_priority = p;
        self
    }
}

fn router(routes: Vec<Route>) -> Router {
    Router::new(&Config {
        services: vec![service(None)],
        routes,
        plugins: Vec::new(),
        warnings: Vec::new(),
        ..Config::default()
    })
    .expect("valid config")
}

struct Req {
    method: &'static str,
    host: &'static str,
    port: u16,
    path: &'static str,
    headers: Hdrs,
}

fn get(host: &'static str, path: &'static str) -> Req {
    Req { method: "GET", host, port: 8000, path, headers: Hdrs(Vec::new()) }
}

impl Req {
    fn method(mut self, m: &'static str) -> Self {
        self.method = m;
        self
    }
    fn port(mut self, p: u16) -> Self {
        self.port = p;
        self
    }
    fn header(mut self, n: &'static str, v: &'static str) -> Self {
        self.headers.0.push((n, v));
        self
    }
}

fn find(r: &Router, req: &Req) -> Option<RouteMatch> {
    r.find(&RouteRequest {
        method: req.method.as_bytes(),
        host: req.host.as_bytes(),
        port: req.port,
        path: req.path.as_bytes(),
        headers: &req.headers,
    })
}

/// Index of the matched route, or None.
fn which(r: &Router, req: Req) -> Option<usize> {
    find(r, &req).map(|m| m.route)
}

// ---- precedence ----------------------------------------------------------------------

#[test]
fn more_constraint_kinds_win_over_a_longer_prefix() {
    let r = router(vec![route("long").paths(&["/a/b/c/long"]), route("get").methods(&["GET"]).paths(&["/a"])]);
    assert_eq!(which(&r, get("x", "/a/b/c/long")), Some(1));
    // The weightier route does not match a POST, so the other one is next.
    assert_eq!(which(&r, get("x", "/a/b/c/long").method("POST")), Some(0));
}

#[test]
fn paths_count_as_a_constraint_kind() {
    // Kong's code counts paths (its prose does not): methods+paths beats methods alone.
    let r = router(vec![route("m").methods(&["GET"]), route("mp").methods(&["GET"]).paths(&["/"])]);
    assert_eq!(which(&r, get("x", "/z")), Some(1));
}

#[test]
fn plain_hosts_win_over_wildcard_hosts() {
    let r = router(vec![
        route("wild").hosts(&["*.example.com"]).paths(&["/longer/path"]),
        route("plain").hosts(&["api.example.com"]).paths(&["/"]),
    ]);
    assert_eq!(which(&r, get("api.example.com", "/longer/path")), Some(1));
    assert_eq!(which(&r, get("www.example.com", "/longer/path")), Some(0));
}

#[test]
fn a_route_mixing_plain_and_wildcard_hosts_ranks_as_wildcard() {
    let r = router(vec![
        route("mixed").hosts(&["api.example.com", "*.example.org"]).paths(&["/long/path"]),
        route("plain").hosts(&["api.example.com"]).paths(&["/"]),
    ]);
    assert_eq!(which(&r, get("api.example.com", "/long/path")), Some(1));
}

#[test]
fn more_header_names_win() {
    let r = router(vec![route("one").header("x-a", &["1"]), route("two").header("x-a", &["1"]).header("x-b", &["2"])]);
    assert_eq!(which(&r, get("x", "/").header("x-a", "1").header("x-b", "2")), Some(1));
    assert_eq!(which(&r, get("x", "/").header("x-a", "1")), Some(0));
}

#[test]
fn regex_paths_win_over_prefix_paths() {
    let r = router(vec![route("prefix").paths(&["/api/users"]), route("regex").paths(&["~/api/.*"])]);
    assert_eq!(which(&r, get("x", "/api/users")), Some(1));
}

#[test]
fn higher_regex_priority_wins_and_ties_keep_config_order() {
    let r = router(vec![
        route("first").paths(&["~/api/.*"]),
        route("urgent").paths(&["~/api/u.*"]).regex_priority(5),
        route("third").paths(&["~/api/u.*"]),
    ]);
    assert_eq!(which(&r, get("x", "/api/users")), Some(1));
    assert_eq!(which(&r, get("x", "/api/other")), Some(0));

    let r = router(vec![route("a").paths(&["~/api/.*"]), route("b").paths(&["~/api/u.*"])]);
    assert_eq!(which(&r, get("x", "/api/users")), Some(0));
}

#[test]
fn negative_regex_priority_ranks_below_zero() {
    let r = router(vec![route("low").paths(&["~/api"]).regex_priority(-1), route("zero").paths(&["~/api"])]);
    assert_eq!(which(&r, get("x", "/api")), Some(1));
}

#[test]
fn regex_priority_is_ignored_for_prefix_paths() {
    // Kong issue #7687: a regex_priority on a prefix route must not beat a longer prefix.
    let r = router(vec![route("root").paths(&["/"]).regex_priority(10), route("v1").paths(&["/v1"])]);
    assert_eq!(which(&r, get("x", "/v1/x")), Some(1));
}

#[test]
fn longest_prefix_wins() {
    let r = router(vec![route("short").paths(&["/api"]), route("long").paths(&["/api/users"])]);
    assert_eq!(which(&r, get("x", "/api/users/1")), Some(1));
    assert_eq!(which(&r, get("x", "/api/orders")), Some(0));
}

#[test]
fn equal_priority_keeps_config_order() {
    let r = router(vec![route("a").paths(&["/api"]), route("b").paths(&["/api"])]);
    assert_eq!(which(&r, get("x", "/api")), Some(0));
    let r = router(vec![route("b").paths(&["/api"]), route("a").paths(&["/api"])]);
    assert_eq!(find(&r, &get("x", "/api")).unwrap().route, 0);
}

#[test]
fn each_prefix_length_of_a_route_ranks_on_its_own() {
    let r = router(vec![route("a").paths(&["/a", "/a/b/c"]), route("b").paths(&["/a/b"])]);
    assert_eq!(which(&r, get("x", "/a/b/c/d")), Some(0));
    assert_eq!(which(&r, get("x", "/a/b/x")), Some(1));
    assert_eq!(which(&r, get("x", "/a/x")), Some(0));
}

#[test]
fn regex_and_prefix_paths_of_one_route_rank_separately() {
    let r = router(vec![route("mixed").paths(&["/p", "~/r/\\d+"]), route("long").paths(&["/p/long"])]);
    assert_eq!(which(&r, get("x", "/p/long")), Some(1));
    assert_eq!(which(&r, get("x", "/r/1")), Some(0));
}

// ---- hosts ---------------------------------------------------------------------------

#[test]
fn hosts_compare_case_insensitively_without_port() {
    let r = router(vec![route("h").hosts(&["example.com"])]);
    assert_eq!(which(&r, get("EXAMPLE.com", "/")), Some(0));
    assert_eq!(which(&r, get("example.com:1234", "/")), Some(0));
    assert_eq!(which(&r, get("example.org", "/")), None);
    assert_eq!(which(&r, get("", "/")), None);
}

#[test]
fn leading_wildcard_matches_one_or_more_labels() {
    let r = router(vec![route("w").hosts(&["*.example.com"])]);
    assert_eq!(which(&r, get("a.example.com", "/")), Some(0));
    assert_eq!(which(&r, get("a.b.Example.COM:80", "/")), Some(0));
    assert_eq!(which(&r, get("example.com", "/")), None);
    assert_eq!(which(&r, get("aexample.com", "/")), None);
}

#[test]
fn trailing_wildcard_matches_any_tail() {
    let r = router(vec![route("w").hosts(&["example.*"])]);
    assert_eq!(which(&r, get("example.org", "/")), Some(0));
    assert_eq!(which(&r, get("Example.co.uk", "/")), Some(0));
    assert_eq!(which(&r, get("example", "/")), None);
    assert_eq!(which(&r, get("www.example.org", "/")), None);
}

#[test]
fn route_host_port_uses_host_header_port_else_local_port() {
    let r = router(vec![route("p").hosts(&["example.com:8080"])]);
    assert_eq!(which(&r, get("example.com:8080", "/").port(80)), Some(0));
    assert_eq!(which(&r, get("example.com", "/").port(8080)), Some(0));
    assert_eq!(which(&r, get("example.com:9090", "/").port(8080)), None);
    assert_eq!(which(&r, get("example.com", "/").port(80)), None);
}

#[test]
fn wildcard_hosts_can_carry_a_port() {
    let r = router(vec![route("p").hosts(&["*.example.com:8443"])]);
    assert_eq!(which(&r, get("a.example.com:8443", "/")), Some(0));
    assert_eq!(which(&r, get("a.example.com:443", "/")), None);
}

#[test]
fn ipv6_literals_are_split_from_their_port() {
    let r = router(vec![route("p").hosts(&["[::1]:8000"]), route("any").hosts(&["[fe80::1]"])]);
    assert_eq!(which(&r, get("[::1]:8000", "/")), Some(0));
    assert_eq!(which(&r, get("[::1]", "/").port(8000)), Some(0));
    assert_eq!(which(&r, get("[::1]:9000", "/")), None);
    assert_eq!(which(&r, get("[FE80::1]:1234", "/")), Some(1));
}

// ---- methods and headers -------------------------------------------------------------

#[test]
fn methods_match_exactly() {
    let r = router(vec![route("m").methods(&["GET", "HEAD"])]);
    assert_eq!(which(&r, get("x", "/")), Some(0));
    assert_eq!(which(&r, get("x", "/").method("HEAD")), Some(0));
    assert_eq!(which(&r, get("x", "/").method("POST")), None);
    assert_eq!(which(&r, get("x", "/").method("get")), None);
}

#[test]
fn header_values_match_case_insensitively_any_of_them() {
    let r = router(vec![route("h").header("x-version", &["v1", "V2"])]);
    assert_eq!(which(&r, get("x", "/").header("x-version", "V1")), Some(0));
    assert_eq!(which(&r, get("x", "/").header("x-version", "v2")), Some(0));
    assert_eq!(which(&r, get("x", "/").header("x-version", "v3").header("x-version", "v2")), Some(0));
    assert_eq!(which(&r, get("x", "/").header("x-version", "v3")), None);
    assert_eq!(which(&r, get("x", "/")), None);
}

#[test]
fn every_header_name_must_match() {
    let r = router(vec![route("h").header("x-a", &["1"]).header("x-b", &["2"])]);
    assert_eq!(which(&r, get("x", "/").header("x-a", "1")), None);
    assert_eq!(which(&r, get("x", "/").header("x-a", "1").header("x-b", "2")), Some(0));
}

#[test]
fn tilde_star_header_values_are_case_insensitive_regexes() {
    let r = router(vec![route("h").header("x-tenant", &["~*^acme-\\d+$", "exact"])]);
    assert_eq!(which(&r, get("x", "/").header("x-tenant", "ACME-42")), Some(0));
    assert_eq!(which(&r, get("x", "/").header("x-tenant", "EXACT")), Some(0));
    assert_eq!(which(&r, get("x", "/").header("x-tenant", "acme-x")), None);
}

#[test]
fn header_regexes_search_anywhere_in_the_value() {
    let r = router(vec![route("h").header("user-agent", &["~*curl"])]);
    assert_eq!(which(&r, get("x", "/").header("user-agent", "Mozilla Curl/8")), Some(0));
}

// ---- paths ---------------------------------------------------------------------------

#[test]
fn prefix_paths_match_bytes_and_report_matched_len() {
    let r = router(vec![route("p").paths(&["/route"])]);
    assert_eq!(find(&r, &get("x", "/routereq")).map(|m| m.matched_len), Some(6));
    assert_eq!(which(&r, get("x", "/Route")), None);
    assert_eq!(which(&r, get("x", "/rout")), None);
}

#[test]
fn regex_paths_are_anchored_at_the_start() {
    let r = router(vec![route("r").paths(&["~/users/\\d+"])]);
    assert_eq!(find(&r, &get("x", "/users/42/profile")).map(|m| m.matched_len), Some(9));
    assert_eq!(which(&r, get("x", "/v1/users/42")), None);
}

#[test]
fn regex_alternation_is_anchored_as_a_whole() {
    let r = router(vec![route("r").paths(&["~/a|/b"])]);
    assert_eq!(which(&r, get("x", "/b")), Some(0));
    assert_eq!(which(&r, get("x", "/x/b")), None);
}

#[test]
fn dot_segments_cannot_escape_a_prefix_route() {
    let r = router(vec![route("public").paths(&["/public"]), route("admin").paths(&["/admin"])]);
    assert_eq!(which(&r, get("x", "/public/../admin")), Some(1));
    assert_eq!(which(&r, get("x", "/public/%2e%2E/admin")), Some(1));
    assert_eq!(which(&r, get("x", "/public/./x")), Some(0));

    let only_public = router(vec![route("public").paths(&["/public"])]);
    assert_eq!(which(&only_public, get("x", "/public/../admin")), None);
    assert_eq!(which(&only_public, get("x", "/public/..")), None);
}

#[test]
fn upstream_gets_the_normalised_path_that_was_matched() {
    let r = router(vec![route("public").paths(&["/public"])]);
    let path = "/public//a/./b/../%63%20d";
    let m = find(&r, &get("x", path)).unwrap();
    let mut out = Vec::new();
    r.upstream_path(&m, path.as_bytes(), &mut out);
    assert_eq!(String::from_utf8(out).unwrap(), "/a/c%20d");
}

#[test]
fn encoded_slash_is_not_a_separator() {
    let r = router(vec![route("a").paths(&["/a/b"]), route("root").paths(&["/"])]);
    assert_eq!(which(&r, get("x", "/a%2Fb")), Some(1));
    assert_eq!(which(&r, get("x", "/a%2fb")), Some(1));
}

#[test]
fn configured_prefixes_are_normalised_like_requests() {
    let r = router(vec![route("sp").paths(&["/a%20b"])]);
    assert_eq!(which(&r, get("x", "/a%20b/c")), Some(0));
    assert_eq!(which(&r, get("x", "/a%20%62")), Some(0));
}

#[test]
fn paths_not_starting_with_a_slash_match_nothing() {
    let r = router(vec![route("h").hosts(&["x"])]);
    assert_eq!(which(&r, get("x", "*")), None);
    assert_eq!(which(&r, get("x", "")), None);
}

#[test]
fn overlong_paths_needing_normalisation_match_nothing() {
    let r = router(vec![route("root").paths(&["/"])]);
    let long: &'static str = Box::leak(format!("/a/../{}", "x".repeat(NORMALISE_BUF)).into_boxed_str());
    assert_eq!(which(&r, get("x", long)), None);
    let long_normal: &'static str = Box::leak(format!("/{}", "x".repeat(NORMALISE_BUF)).into_boxed_str());
    assert_eq!(which(&r, get("x", long_normal)), Some(0));
}

// ---- services, no match, errors --------------------------------------------------------

#[test]
fn routes_of_a_disabled_service_never_match() {
    let mut disabled = service(None);
    disabled.enabled = false;
    let mut dead = route("dead").paths(&["/api/long"]);
    dead.service = Some(1);
    let config = Config {
        services: vec![service(None), disabled],
        routes: vec![dead, route("live").paths(&["/api"])],
        plugins: Vec::new(),
        warnings: Vec::new(),
        ..Config::default()
    };
    let r = Router::new(&config).unwrap();
    assert_eq!(which(&r, get("x", "/api/long")), Some(1));
    assert_eq!(which(&r, get("x", "/other")), None);
}

#[test]
fn routes_without_a_service_still_match() {
    let mut r0 = route("orphan").paths(&["/o"]);
    r0.service = None;
    let r = router(vec![r0]);
    assert_eq!(find(&r, &get("x", "/o")), Some(RouteMatch { route: 0, service: None, matched_len: 2 }));
}

#[test]
fn nothing_matches_gives_none() {
    let r = router(vec![route("a").paths(&["/a"]).hosts(&["a.test"])]);
    assert_eq!(which(&r, get("b.test", "/a")), None);
    assert_eq!(which(&r, get("a.test", "/b")), None);
    assert_eq!(which(&router(Vec::new()), get("a.test", "/")), None);
}

#[test]
fn every_bad_regex_is_reported_with_its_route_mark() {
    let mut a = route("a").paths(&["~/ok", "~/bad("]);
    a.mark = Mark { line: 3, column: 5 };
    let mut b = route("b").header("x-h", &["~*[z-a]"]);
    b.mark = Mark { line: 9, column: 5 };
    let config = Config {
        services: vec![service(None)],
        routes: vec![a, b],
        plugins: Vec::new(),
        warnings: Vec::new(),
        ..Config::default()
    };
    let errs = Router::new(&config).unwrap_err().0;
    assert_eq!(errs.len(), 2);
    assert_eq!(errs[0].mark, Some(Mark { line: 3, column: 5 }));
    assert!(errs[0].message.starts_with("route `a`: invalid regex in path `~/bad(`"), "{}", errs[0].message);
    assert_eq!(errs[1].mark, Some(Mark { line: 9, column: 5 }));
    assert!(errs[1].message.contains("header `x-h`"), "{}", errs[1].message);
    assert!(errs.iter().all(|e| e.file.is_empty()));
}

#[test]
fn routes_with_nothing_to_match_on_are_rejected() {
    let config = Config {
        services: vec![service(None)],
        routes: vec![route("empty")],
        plugins: Vec::new(),
        warnings: Vec::new(),
        ..Config::default()
    };
    let errs = Router::new(&config).unwrap_err().0;
    assert_eq!(errs.len(), 1);
    assert!(errs[0].message.contains("at least one of"));
}

#[test]
fn bad_route_hosts_are_rejected() {
    let config = Config {
        services: vec![service(None)],
        routes: vec![route("h").hosts(&["a.*.com", "x:port"])],
        plugins: Vec::new(),
        warnings: Vec::new(),
        ..Config::default()
    };
    assert_eq!(Router::new(&config).unwrap_err().0.len(), 2);
}

#[test]
fn clones_route_the_same_way() {
    let r = router(vec![route("a").paths(&["~/a/\\d+"]), route("b").paths(&["/"])]);
    let c = r.clone();
    std::thread::spawn(move || assert_eq!(which(&c, get("x", "/a/1")), Some(0))).join().unwrap();
    assert_eq!(which(&r, get("x", "/a/x")), Some(1));
}

// ---- the index -----------------------------------------------------------------------

/// `router`, with the index however few the routes (`Router::new` scans small tables).
fn indexed(routes: Vec<Route>) -> Router {
    Router::build(&Config { services: vec![service(None)], routes, ..Config::default() }, 0).expect("valid config")
}

#[test]
fn small_tables_are_scanned_and_large_ones_indexed() {
    let small: Vec<Route> = (0..3).map(|i| route(&format!("r{i}")).paths(&[&format!("/p{i}")])).collect();
    assert!(router(small).tables.index.is_none());
    let large: Vec<Route> = (0..INDEX_FROM).map(|i| route(&format!("r{i}")).paths(&[&format!("/p{i}")])).collect();
    let r = router(large);
    assert!(r.tables.index.is_some());
    assert_eq!(which(&r, get("x", "/p15/a")), Some(15));
}

#[test]
fn a_clone_shares_the_tables_and_owns_its_regexes() {
    let r = indexed(vec![route("a").paths(&["~/a/\\d+"]).header("x-t", &["~*^b"]), route("b").paths(&["/"])]);
    let c = r.clone();
    assert!(Arc::ptr_eq(&r.tables, &c.tables));
    assert_eq!((r.regexes.len(), c.regexes.len()), (2, 2));
}

#[test]
fn indexed_hosts_match_in_any_case_and_keep_their_port() {
    let r = indexed(vec![
        route("port").hosts(&["API.example.com:8443"]).paths(&["/"]),
        route("any").hosts(&["api.example.com"]).paths(&["/"]),
    ]);
    assert_eq!(which(&r, get("Api.Example.COM:8443", "/x")), Some(0));
    assert_eq!(which(&r, get("api.example.com", "/x").port(8443)), Some(0));
    assert_eq!(which(&r, get("API.EXAMPLE.COM", "/x")), Some(1));
    assert_eq!(which(&r, get("api.example.com.", "/x")), None);
}

#[test]
fn an_indexed_route_loses_to_a_higher_one_in_another_group() {
    // Host-less prefix (trie), plain host (map), wildcard (always tried): whichever
    // group a candidate is in, precedence decides.
    let r = indexed(vec![
        route("trie").methods(&["GET"]).paths(&["/a"]),
        route("host").hosts(&["h.test"]).paths(&["/a"]),
        route("wild").hosts(&["*.test"]).methods(&["GET"]).paths(&["/a/b"]),
    ]);
    // wild: methods+hosts+paths (3) beats trie's methods+paths and host's hosts+paths.
    assert_eq!(which(&r, get("h.test", "/a/b")), Some(2));
    // Among the two with two kinds, plain hosts (host) beat the host-less route.
    assert_eq!(which(&r, get("h.test", "/a")), Some(1));
    assert_eq!(which(&r, get("other.example", "/a")), Some(0));
}

#[test]
fn longer_prefixes_on_the_way_down_the_trie_win() {
    let r = indexed(vec![route("root").paths(&["/"]), route("api").paths(&["/api"]), route("v1").paths(&["/api/v1/"])]);
    assert_eq!(which(&r, get("x", "/api/v1/users")), Some(2));
    assert_eq!(which(&r, get("x", "/api/v2")), Some(1));
    assert_eq!(which(&r, get("x", "/apis")), Some(1));
    assert_eq!(which(&r, get("x", "/ap")), Some(0));
    assert_eq!(find(&r, &get("x", "/api/v1/users")).map(|m| m.matched_len), Some(8));
}

#[test]
fn a_host_longer_than_the_index_takes_is_still_matched() {
    let long = format!("{}.example", "a".repeat(300));
    let r = indexed(vec![route("long").hosts(&[long.as_str()]), route("root").paths(&["/"])]);
    let host: &'static str = Box::leak(long.to_uppercase().into_boxed_str());
    assert_eq!(which(&r, get(host, "/")), Some(0));
    assert_eq!(which(&r, get("b.example", "/")), Some(1));
}

const HOSTS: [&str; 8] = ["a.test", "b.test", "A.TEST:8443", "*.test", "c.b.test", "x.*", "b.test:80", "[::1]"];
const PATHS: [&str; 10] = ["/", "/a", "/a/", "/ab", "/a/b", "/b/c", "~/a/\\d+", "~/b", "/%61/b", "/c/./d"];
const REQ_HOSTS: [&str; 9] =
    ["a.test", "A.Test", "b.test:80", "a.test:8443", "c.b.test", "x.y", "zz.test", "[::1]:8000", ""];
const REQ_PATHS: [&str; 10] = ["/", "/a", "/a/", "/ab/x", "/a/b/c", "/a/12", "/b/c", "/a/./b", "/c/d", "x"];

#[test]
fn the_index_answers_what_a_scan_of_every_route_answers() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut compared = 0;
    for _ in 0..300 {
        let mut routes = Vec::new();
        for i in 0..rng.below(12) + 1 {
            let mut r = route(&format!("r{i}"));
            for _ in 0..rng.below(3) {
                r.hosts.push(rng.pick(&HOSTS).into());
            }
            let paths: Vec<&str> = (0..rng.below(3)).map(|_| rng.pick(&PATHS)).collect();
            r = r.paths(&paths);
            if rng.below(4) == 0 {
                r = r.methods(&[rng.pick(&["GET", "POST"])]);
            }
            if rng.below(6) == 0 {
                r = r.header("x-t", &[rng.pick(&["one", "~*^t"])]);
            }
            if rng.below(3) == 0 {
                r.regex_priority = rng.below(3) as i64;
            }
            if r.methods.is_empty() && r.hosts.is_empty() && r.headers.is_empty() && r.paths.is_empty() {
                r = r.paths(&["/"]);
            }
            routes.push(r);
        }
        let r = indexed(routes);
        for _ in 0..40 {
            let mut req = get(rng.pick(&REQ_HOSTS), rng.pick(&REQ_PATHS)).method(rng.pick(&["GET", "POST"]));
            if rng.below(3) == 0 {
                req = req.header("x-t", rng.pick(&["one", "two", "T9"]));
            }
            let rr = RouteRequest {
                method: req.method.as_bytes(),
                host: req.host.as_bytes(),
                port: req.port,
                path: req.path.as_bytes(),
                headers: &req.headers,
            };
            assert_eq!(r.find(&rr), r.find_by_scan(&rr), "{} {}{} in {:?}", req.method, req.host, req.path, r.tables);
            compared += usize::from(r.find(&rr).is_some());
        }
    }
    // The generator must reach matches, not only misses, for the comparison to mean anything.
    assert!(compared > 3000, "only {compared} requests matched");
}

#[test]
fn uri_captures_come_from_the_routes_regex_path_that_matches() {
    let r = router(vec![
        route("users").paths(&["~/users/(?<user>[^/]+)/orders/(\\d+)$", "~/u/(?<user>[^/]+)$"]),
        route("plain").paths(&["/plain"]),
    ]);
    let cap =
        |route, path: &str, name| r.uri_capture(route, path.as_bytes(), name).map(|v| String::from_utf8(v).unwrap());
    assert_eq!(cap(0, "/users/ada/orders/42", "user").as_deref(), Some("ada"));
    assert_eq!(cap(0, "/users/ada/orders/42", "2").as_deref(), Some("42"), "groups by number too");
    assert_eq!(cap(0, "/users/ada/orders/42", "0").as_deref(), Some("/users/ada/orders/42"));
    assert_eq!(cap(0, "/u/bob", "user").as_deref(), Some("bob"), "the second path, tried in order");
    // Captured from the path as routing sees it: escapes decoded, dot segments gone.
    assert_eq!(cap(0, "/users/./c%61rl/orders/7", "user").as_deref(), Some("carl"));
    assert_eq!(cap(0, "/users/ada/orders/42", "nope"), None);
    assert_eq!(cap(0, "/u/bob", "2"), None, "a group that took no part");
    assert_eq!(cap(0, "/elsewhere", "user"), None);
    assert_eq!(cap(1, "/plain", "user"), None, "a route without regex paths");
}
