//! The Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` once per
//! family, then its samples together; label values escaped (`\\`, `\"`, `\n`).
//!
//! Families are process-wide sums, without a `worker` label, so `sum(...)` over them
//! never counts twice. The per-worker view (is `SO_REUSEPORT` spreading the load?) has
//! its own families, `ringgate_worker_*`, with a `worker` label and no route labels.
//! Route series appear once a route has served a request (like Kong's Prometheus
//! plugin); plugin, IdP and reason series are written from zero.
//!
//! Cost: runs on the scraping thread; reads every cell once, allocates freely.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::{Acquire, Relaxed};

use super::{HistogramValues, IdpEndpoint, IdpOutcome, JwksRefresh, Metrics, TokenSource, BOUNDS_LE, CODES};
use crate::error::AuthReason;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One route's counters summed over workers.
#[derive(Default)]
struct RouteSum {
    /// (code, requests), in order of code.
    codes: Vec<(u16, u64)>,
    other_codes: u64,
    bytes_received: u64,
    bytes_sent: u64,
    total: HistogramValues,
    upstream: HistogramValues,
    gateway: HistogramValues,
}

impl RouteSum {
    fn requests(&self) -> u64 {
        self.codes.iter().map(|(_, n)| n).sum::<u64>() + self.other_codes
    }
}

#[derive(Default)]
struct PluginSum {
    hits: u64,
    misses: u64,
    refreshes: u64,
    negative_hits: u64,
    bearer_cache_hits: u64,
    bearer_verified: u64,
    failures: [u64; AuthReason::ALL.len()],
}

/// A per-worker family: name, type, help, and how to read it from a worker.
type WorkerFamily = (&'static str, &'static str, &'static str, fn(&super::WorkerScalars) -> u64);
/// A per-plugin counter family: name, help, and how to read it from the sums.
type PluginFamily = (&'static str, &'static str, fn(&PluginSum) -> u64);

/// A label value, escaped for the text format.
pub fn push_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

struct Text {
    out: String,
}

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn labels(&mut self, labels: &[(&str, &str)]) {
        if labels.is_empty() {
            return;
        }
        self.out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(k);
            self.out.push_str("=\"");
            push_label_value(&mut self.out, v);
            self.out.push('"');
        }
        self.out.push('}');
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.out.push_str(name);
        self.labels(labels);
        self.out.push(' ');
        self.out.push_str(itoa::Buffer::new().format(value));
        self.out.push('\n');
    }

    fn sample_f64(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.labels(labels);
        let _ = writeln!(self.out, " {value}");
    }

    /// `_bucket` (cumulative, `le` last), `_sum` in seconds and `_count`.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramValues) {
        let bucket = format!("{name}_bucket");
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        with_le.push(("le", ""));
        let mut cumulative = 0;
        for (i, n) in h.buckets.iter().enumerate() {
            cumulative += n;
            let last = with_le.len() - 1;
            with_le[last].1 = BOUNDS_LE.get(i).copied().unwrap_or("+Inf");
            self.sample(&bucket, &with_le, cumulative);
        }
        self.sample_f64(&format!("{name}_sum"), labels, h.sum_ns as f64 / 1e9);
        self.sample(&format!("{name}_count"), labels, cumulative);
    }
}

impl Metrics {
    /// The metrics in the Prometheus text format (serve with [`CONTENT_TYPE`]). Sums the
    /// workers' blocks as they are at the moment each is read.
    pub fn render(&self) -> String {
        let (route_labels, plugin_labels) = {
            let l = self.labels();
            (l.routes.clone(), l.plugins.clone())
        };
        let mut t = Text { out: String::with_capacity(16 * 1024) };

        t.family("ringgate_build_info", "gauge", "Always 1; the version of the running binary.");
        t.sample("ringgate_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);
        t.family("ringgate_workers", "gauge", "Worker threads.");
        t.sample("ringgate_workers", &[], self.workers.len() as u64);

        self.render_routes(&mut t, &route_labels);
        self.render_connections(&mut t);
        self.render_plugins(&mut t, &plugin_labels);
        if let Some(c) = &self.control {
            render_control(&mut t, c);
        }
        t.out
    }

    /// [`Metrics::render`], plus what `snap` knows that the counters do not: the health
    /// of each checked upstream address (`ringgate_upstream_target_health`, one series
    /// per state, 1 on the current one, as Kong's `kong_upstream_target_health`).
    pub fn render_with(&self, snap: &crate::snapshot::Snapshot) -> String {
        let mut t = Text { out: self.render() };
        if !snap.health.is_empty() {
            t.family(
                "ringgate_upstream_target_health",
                "gauge",
                "Health of each address of an upstream with health checks: 1 on its current state.",
            );
            for h in &snap.health {
                let address = h.peer.addr.to_string();
                let healthy = h.peer.is_healthy();
                for (state, on) in [("healthy", healthy), ("unhealthy", !healthy)] {
                    let labels = [
                        ("upstream", h.peer.upstream.as_str()),
                        ("target", &h.peer.target),
                        ("address", &address),
                        ("state", state),
                    ];
                    t.sample("ringgate_upstream_target_health", &labels, u64::from(on));
                }
            }
        }
        t.out
    }

    fn render_routes(&self, t: &mut Text, labels: &[(String, String)]) {
        let sums: Vec<RouteSum> = (0..labels.len() as u32)
            .map(|slot| {
                let mut s = RouteSum::default();
                for w in self.workers.iter() {
                    let Some(c) = w.routes.get(slot) else { continue };
                    for i in 0..CODES {
                        let code = c.codes[i].load(Acquire);
                        if code == 0 {
                            break;
                        }
                        let n = c.counts[i].load(Relaxed);
                        match s.codes.iter_mut().find(|(k, _)| *k == code) {
                            Some((_, v)) => *v += n,
                            None => s.codes.push((code, n)),
                        }
                    }
                    s.other_codes += c.other_codes.load(Relaxed);
                    s.bytes_received += c.bytes_received.load(Relaxed);
                    s.bytes_sent += c.bytes_sent.load(Relaxed);
                    s.total.add(&c.total);
                    s.upstream.add(&c.upstream);
                    s.gateway.add(&c.gateway);
                }
                s.codes.sort_unstable();
                s
            })
            .collect();
        let seen = || {
            labels
                .iter()
                .zip(&sums)
                .filter(|(_, s)| s.requests() > 0)
                .map(|((r, svc), s)| ([("route", r.as_str()), ("service", svc.as_str())], s))
        };

        t.family(
            "ringgate_http_requests_total",
            "counter",
            "Requests answered, by route (`_none`: no route matched), service and status code.",
        );
        for (l, s) in seen() {
            let mut code_text = itoa::Buffer::new();
            for &(code, n) in &s.codes {
                t.sample("ringgate_http_requests_total", &[l[0], l[1], ("code", code_text.format(code))], n);
            }
            if s.other_codes > 0 {
                t.sample("ringgate_http_requests_total", &[l[0], l[1], ("code", "other")], s.other_codes);
            }
        }
        t.family(
            "ringgate_http_bytes_total",
            "counter",
            "Bytes read from (received) and written to (sent) downstreams.",
        );
        for (l, s) in seen() {
            t.sample("ringgate_http_bytes_total", &[l[0], l[1], ("direction", "received")], s.bytes_received);
            t.sample("ringgate_http_bytes_total", &[l[0], l[1], ("direction", "sent")], s.bytes_sent);
        }
        t.family(
            "ringgate_http_request_duration_seconds",
            "histogram",
            "Whole request: from the complete request head to the last response byte written.",
        );
        for (l, s) in seen() {
            t.histogram("ringgate_http_request_duration_seconds", &l, &s.total);
        }
        t.family(
            "ringgate_http_upstream_duration_seconds",
            "histogram",
            "From the upstream phase (after routing and authentication) to the upstream's response head.",
        );
        for (l, s) in seen().filter(|(_, s)| s.upstream.count() > 0) {
            t.histogram("ringgate_http_upstream_duration_seconds", &l, &s.upstream);
        }
        t.family(
            "ringgate_http_gateway_duration_seconds",
            "histogram",
            "ringgate's own time: the whole request minus the upstream's share (includes IdP waits).",
        );
        for (l, s) in seen() {
            t.histogram("ringgate_http_gateway_duration_seconds", &l, &s.gateway);
        }
    }

    fn render_connections(&self, t: &mut Text) {
        let sum = |f: &dyn Fn(&super::WorkerScalars) -> u64| self.workers.iter().map(|w| f(&w.scalars)).sum::<u64>();
        t.family("ringgate_connections_open", "gauge", "Open downstream connections.");
        t.sample("ringgate_connections_open", &[], sum(&|s| s.connections_open.load(Relaxed)));
        t.family("ringgate_connections_accepted_total", "counter", "Downstream connections accepted.");
        t.sample("ringgate_connections_accepted_total", &[], sum(&|s| s.connections_accepted.load(Relaxed)));
        t.family(
            "ringgate_connections_refused_total",
            "counter",
            "Downstream connections closed at once because the worker was at --max-connections.",
        );
        t.sample("ringgate_connections_refused_total", &[], sum(&|s| s.connections_refused.load(Relaxed)));
        t.family("ringgate_access_log_write_errors_total", "counter", "Access log writes that failed (lines lost).");
        t.sample("ringgate_access_log_write_errors_total", &[], sum(&|s| s.access_log_write_errors.load(Relaxed)));
        t.family(
            "ringgate_access_log_lines_dropped_total",
            "counter",
            "Access log lines dropped because the log's writer was behind.",
        );
        t.sample("ringgate_access_log_lines_dropped_total", &[], sum(&|s| s.access_log_lines_dropped.load(Relaxed)));

        let per_worker: [WorkerFamily; 3] = [
            ("ringgate_worker_requests_total", "counter", "Requests answered, per worker.", |s| {
                s.requests.load(Relaxed)
            }),
            ("ringgate_worker_connections_open", "gauge", "Open downstream connections, per worker.", |s| {
                s.connections_open.load(Relaxed)
            }),
            (
                "ringgate_worker_connections_accepted_total",
                "counter",
                "Downstream connections accepted, per worker.",
                |s| s.connections_accepted.load(Relaxed),
            ),
        ];
        let mut id = itoa::Buffer::new();
        for (name, kind, help, read) in per_worker {
            t.family(name, kind, help);
            for (i, w) in self.workers.iter().enumerate() {
                t.sample(name, &[("worker", id.format(i))], read(&w.scalars));
            }
        }
    }

    fn render_plugins(&self, t: &mut Text, labels: &[String]) {
        let sums: Vec<PluginSum> = (0..labels.len() as u32)
            .map(|slot| {
                let mut s = PluginSum::default();
                for w in self.workers.iter() {
                    let Some(c) = w.plugins.get(slot) else { continue };
                    s.hits += c.cache_hits.load(Relaxed);
                    s.misses += c.cache_misses.load(Relaxed);
                    s.refreshes += c.cache_refreshes.load(Relaxed);
                    s.negative_hits += c.cache_negative_hits.load(Relaxed);
                    s.bearer_cache_hits += c.bearer_cache_hits.load(Relaxed);
                    s.bearer_verified += c.bearer_verified.load(Relaxed);
                    for (v, f) in s.failures.iter_mut().zip(&c.failures) {
                        *v += f.load(Relaxed);
                    }
                }
                s
            })
            .collect();
        // Slot 0 is the overflow label; it is shown only when something landed there.
        let shown = || {
            labels.iter().zip(&sums).enumerate().filter(|(i, (_, s))| {
                *i != super::PLUGIN_OTHER as usize
                    || s.hits + s.misses + s.negative_hits + s.bearer_cache_hits + s.bearer_verified > 0
                    || s.failures.iter().any(|&f| f > 0)
            })
        };
        let counters: [PluginFamily; 6] = [
            ("ringgate_token_cache_hits_total", "Token cache hits in a worker's cache, per plugin instance.", |s| {
                s.hits
            }),
            (
                "ringgate_token_cache_misses_total",
                "Token cache misses (the control plane was asked), per plugin instance.",
                |s| s.misses,
            ),
            (
                "ringgate_token_cache_refreshes_total",
                "Refreshes started ahead of expiry (the valid token kept serving), per plugin instance.",
                |s| s.refreshes,
            ),
            (
                "ringgate_token_cache_negative_hits_total",
                "Requests refused from a worker's cache (credentials the IdP refused within cache_ttl_neg, or a 403 verdict on their token), per plugin instance.",
                |s| s.negative_hits,
            ),
            (
                "ringgate_bearer_cache_hits_total",
                "Bearer tokens found in a worker's verified-token cache, per plugin instance.",
                |s| s.bearer_cache_hits,
            ),
            (
                "ringgate_bearer_verifications_total",
                "Bearer tokens verified (not in the cache), per plugin instance.",
                |s| s.bearer_verified,
            ),
        ];
        for (name, help, read) in counters {
            t.family(name, "counter", help);
            for (_, (label, s)) in shown() {
                t.sample(name, &[("plugin", label)], read(s));
            }
        }
        t.family(
            "ringgate_auth_failures_total",
            "counter",
            "Requests the openid-connect plugin refused, per plugin instance, status code and reason.",
        );
        let mut code = itoa::Buffer::new();
        for (_, (label, s)) in shown() {
            for r in AuthReason::ALL {
                let labels = [("plugin", label.as_str()), ("code", code.format(r.status())), ("reason", r.label())];
                t.sample("ringgate_auth_failures_total", &labels, s.failures[r.index()]);
            }
        }
    }
}

fn render_control(t: &mut Text, c: &super::ControlMetrics) {
    t.family(
        "ringgate_idp_requests_total",
        "counter",
        "Calls from the control plane to the IdP, by endpoint and outcome.",
    );
    for e in IdpEndpoint::ALL {
        for o in IdpOutcome::ALL {
            let n = c.idp_calls[e as usize][o as usize].load(Relaxed);
            t.sample("ringgate_idp_requests_total", &[("endpoint", e.label()), ("outcome", o.label())], n);
        }
    }
    t.family("ringgate_idp_request_duration_seconds", "histogram", "IdP call latency, by endpoint.");
    for e in IdpEndpoint::ALL {
        let mut h = HistogramValues::default();
        h.add(&c.idp_latency[e as usize]);
        t.histogram("ringgate_idp_request_duration_seconds", &[("endpoint", e.label())], &h);
    }
    t.family("ringgate_jwks_refreshes_total", "counter", "Key refetches for an unknown kid, by outcome.");
    for r in JwksRefresh::ALL {
        t.sample(
            "ringgate_jwks_refreshes_total",
            &[("outcome", r.label())],
            c.jwks_refreshes[r as usize].load(Relaxed),
        );
    }
    t.family(
        "ringgate_control_token_requests_total",
        "counter",
        "Workers' token requests at the control plane: answered from its cache, joined a fetch in flight, fetched, or shed (too many IdP calls in flight).",
    );
    for s in TokenSource::ALL {
        let n = c.token_requests[s as usize].load(Relaxed);
        t.sample("ringgate_control_token_requests_total", &[("result", s.label())], n);
    }
}
