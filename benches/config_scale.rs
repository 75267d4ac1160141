//! Configuration work at the sizes where each step was once quadratic. Every case here
//! had a bug that made a large decK file or `POST /config` body take seconds to hours;
//! each has a regression test for its result, and this is where its time is measured.
//!
//! - YAML: a map's duplicate-key check compared each key with every earlier one.
//! - Template: a position's column was counted from the start of its line, so a one-line
//!   JSON document (what `curl -d @kong.json` sends) cost time quadratic in its length.
//! - Validation: each reference (a route's service, a plugin's route) scanned every
//!   entity of its kind.
//! - Admin API: each error walked the document from its start to find its place.
//! - Snapshot: each route scanned every plugin for the ones that apply to it.
//! - openid-connect: each claim-header name was compared with every earlier one.
//!
//! Run: `cargo bench --bench config_scale` (add `-- --quick` on a shared machine). The
//! test step runs each case once, unmeasured.
//!
//! 2026-12-06, `--quick`, 2 shared cores, dev box (indicative only): 80 000 keys 143 ms,
//! 0.95 MB of one-line JSON 114 ms, 40 000 references 297 ms, 20 000 errors placed 51 ms,
//! the plugins of 40 000 routes 18 ms, 60 000 claim headers 54 ms. With the YAML check
//! put back to a scan of the earlier keys, its case took 8.2 s. Before the fixes, in a
//! debug build: 50 000 keys 12 s, 1.3 MB of one-line JSON 3.4 s, 20 000 references
//! 4.5 s, 20 000 errors placed 47 s, 20 000 routes' plugins 9 s, 40 000 claim headers 7 s.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ringgate::admin::apply::locate;
use ringgate::config::load_str;

/// A top-level map of `n` keys whose last key repeats an earlier one.
fn many_keys(n: usize) -> String {
    let mut doc: String = (0..n).map(|i| format!("k{i}: 1\n")).collect();
    doc.push_str("k7: 2\n");
    doc
}

/// A decK file on one line, as JSON: `n` services, each with a route.
fn one_line_json(n: usize) -> String {
    let services: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"name":"s{i}","host":"127.0.0.1","port":8080,"routes":[{{"name":"r{i}","paths":["/p{i}"]}}]}}"#
            )
        })
        .collect();
    format!(r#"{{"_format_version":"3.0","services":[{}]}}"#, services.join(","))
}

/// `n` services, and `n` top-level routes that each name their service.
fn references(n: usize) -> String {
    let mut y = String::from("_format_version: \"3.0\"\nservices:\n");
    for i in 0..n {
        y.push_str(&format!("- name: s{i}\n  host: 127.0.0.1\n"));
    }
    y.push_str("routes:\n");
    for i in 0..n {
        y.push_str(&format!("- service: s{i}\n  paths: [/p{i}]\n"));
    }
    y
}

/// `n` services, each with a port the validation refuses: one error per service.
fn many_errors(n: usize) -> String {
    let mut y = String::from("_format_version: \"3.0\"\nservices:\n");
    for i in 0..n {
        y.push_str(&format!("- host: 127.0.0.1\n  port: -{i}\n"));
    }
    y
}

/// `n` routes, each with its own plugin.
fn plugin_per_route(n: usize) -> String {
    let mut y = String::from("_format_version: \"3.0\"\nservices:\n- name: s\n  host: 127.0.0.1\n  routes:\n");
    for i in 0..n {
        y.push_str(&format!(
            "  - name: r{i}\n    paths: [/p{i}]\n    plugins:\n    - name: openid-connect\n      config:\n        \
             issuer: http://127.0.0.1:9/\n        auth_methods: [bearer]\n"
        ));
    }
    y
}

/// One openid-connect plugin with `n` claim headers, the last name a repeat.
fn claim_headers(n: usize) -> String {
    let list = |f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>().join(", ");
    format!(
        "_format_version: \"3.0\"\nplugins:\n- name: openid-connect\n  config:\n    issuer: http://127.0.0.1:9/\n    \
         auth_methods: [bearer]\n    upstream_headers_claims: [{}, c7]\n    upstream_headers_names: [{}, x-c7]\n",
        list(&|k| format!("c{k}")),
        list(&|k| format!("x-c{k}")),
    )
}

fn bench(c: &mut Criterion) {
    let none = |_: &str| None;
    let mut g = c.benchmark_group("config_scale");
    g.sample_size(10);

    let doc = many_keys(80_000);
    g.bench_function("yaml_80000_keys_one_duplicate", |b| {
        b.iter(|| assert_eq!(load_str(black_box(&doc), "k", &none).unwrap_err().0.len(), 1));
    });

    let doc = one_line_json(10_000);
    g.bench_function(format!("template_one_line_json_{}_bytes", doc.len()), |b| {
        b.iter(|| assert_eq!(load_str(black_box(&doc), "k", &none).unwrap().routes.len(), 10_000));
    });

    let doc = references(40_000);
    g.bench_function("validate_40000_route_references", |b| {
        b.iter(|| assert_eq!(load_str(black_box(&doc), "k", &none).unwrap().routes.len(), 40_000));
    });

    let doc = many_errors(20_000);
    let errors = load_str(&doc, "k", &none).unwrap_err();
    assert_eq!(errors.0.len(), 20_000);
    g.bench_function("admin_locate_20000_errors", |b| {
        b.iter(|| assert_eq!(locate(black_box(&doc), &errors).len(), 20_000));
    });

    let config = load_str(&plugin_per_route(40_000), "k", &none).unwrap();
    g.bench_function("snapshot_plugins_of_40000_routes", |b| {
        b.iter(|| assert_eq!(black_box(&config).plugins_by_route().len(), 40_000));
    });

    let config = load_str(&claim_headers(60_000), "k", &none).unwrap();
    g.bench_function("oidc_60000_claim_headers_one_repeat", |b| {
        b.iter(|| {
            let errors = ringgate::oidc::config::compile(black_box(&config.plugins[0]), "k").unwrap_err();
            assert_eq!(errors.len(), 1);
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
