//! A large decK file through the steps every reload and every Admin API change takes:
//! loading it (template, YAML, validation), carrying the running openid-connect
//! instances over to the new snapshot, and `Store::from_config`, which matches each
//! entity to the running store's (by id, else by name, `instance_name`, scope or
//! certificate) to keep its id and timestamps.
//!
//! Run: `cargo bench --bench admin_store` (add `-- --quick` on a shared machine).
//!
//! 2026-11-28, `--quick`, 2 shared cores, dev box (indicative only), 2 000 services,
//! routes and plugins (each plugin with its own client): loading 23 ms, carrying over
//! 9 ms, matching 32 ms without ids and 34 ms with them. Before, each was quadratic:
//! loading took about 6.9 s (the template's source map walked from the start of the file
//! for every position; duplicate checks scanned every earlier entity), carrying over
//! 66 ms (every pair of instances compared), matching 401 ms without ids and 58 ms with
//! them (every entity scanned the running store).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ringgate::admin::store::{new_id, Store};
use ringgate::snapshot::{Resolved, Snapshot};

/// A decK file with `n` services, each with a route and a route-scoped plugin; with
/// or without ids.
fn deck(n: usize, ids: bool) -> String {
    let mut y = String::from("_format_version: \"3.0\"\nservices:\n");
    for i in 0..n {
        let id = |kind: u32| if ids { format!("    id: {kind:08x}-0000-4000-8000-{i:012x}\n") } else { String::new() };
        y.push_str(&format!("- name: svc{i}\n  url: http://10.0.{}.{}:8080/api\n", i / 250, i % 250));
        y.push_str(&id(1).replacen("    ", "  ", 1));
        y.push_str(&format!("  routes:\n  - name: route{i}\n    paths: [/r{i}]\n"));
        y.push_str(&id(2));
        y.push_str("    plugins:\n    - name: openid-connect\n      config:\n");
        // Each plugin its own settings, as route-scoped plugins with their own clients are.
        y.push_str(&format!("        issuer: http://127.0.0.1:9/\n        auth_methods: [client_credentials]\n        client_id: [client{i}]\n"));
        y.push_str(&id(3).replacen("    ", "      ", 1));
    }
    y
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("load_deck");
    g.sample_size(10);
    let text = deck(2000, false);
    g.bench_function("2000_services_routes_plugins", |b| {
        b.iter(|| ringgate::config::load_str(black_box(&text), "kong.yaml", &|_| None).expect("the file loads"));
    });
    g.finish();

    // A reload keeps each unchanged openid-connect instance (and its caches).
    let mut g = c.benchmark_group("snapshot_carry_over");
    g.sample_size(10);
    let cfg = ringgate::config::load_str(&deck(2000, false), "kong.yaml", &|_| None).expect("the file loads");
    let build = || Snapshot::build(cfg.clone(), &mut Resolved::new()).expect("compiles");
    let running = build();
    g.bench_function("2000_unchanged_plugins", |b| {
        b.iter_batched(build, |mut next| assert_eq!(next.carry_over(&running), 2000), BatchSize::LargeInput);
    });
    g.finish();

    let mut g = c.benchmark_group("store_from_config");
    g.sample_size(10);
    for (n, ids) in [(2000, false), (2000, true)] {
        let cfg = ringgate::config::load_str(&deck(n, ids), "kong.yaml", &|_| None).expect("the file loads");
        let mut fresh = || new_id();
        let running = Store::from_config(&cfg, &Store::default(), 1, &mut fresh).unwrap();
        let name = format!("{n}_services_routes_plugins_{}", if ids { "with_ids" } else { "without_ids" });
        g.bench_function(name, |b| {
            b.iter(|| Store::from_config(black_box(&cfg), &running, 2, &mut fresh).unwrap());
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
