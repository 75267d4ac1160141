//! The real `ringgate` binary: `check`, `run`, signals.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ringgate::affinity::{allowed_cpus, CpuList};
use support::binary::{bin, Ringgate};
use support::client::Client;
use support::temp::TempDir;
use support::upstream::Upstream;

/// A decK file `kong.yaml` in a directory of its own, removed with it when dropped.
struct TempFile {
    _dir: TempDir,
    path: PathBuf,
}

impl std::ops::Deref for TempFile {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

fn temp_file(name: &str, text: &str) -> TempFile {
    let dir = TempDir::new(name);
    let path = dir.write("kong.yaml", text);
    TempFile { _dir: dir, path }
}

fn config(upstream: SocketAddr, path: &str) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{upstream}\n  routes:\n  - name: r\n    paths: [{path}]\n"
    )
}

/// `ringgate run --config <config>` with `extra` arguments.
fn run(config: &Path, extra: &[&str]) -> Ringgate {
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    Ringgate::start(&args, &[])
}

#[test]
fn version_and_help_print_and_exit_zero() {
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ringgate "));
    let out = Command::new(bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("run") && help.contains("check"), "{help}");
}

#[test]
fn check_accepts_a_valid_file_and_lists_every_problem_of_a_bad_one() {
    let good = temp_file("good", &config("127.0.0.1:9".parse().unwrap(), "/"));
    let out = Command::new(bin()).args(["check", "--config"]).arg(&*good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let bad = temp_file(
        "bad",
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://127.0.0.1:9\n  colour: blue\n  routes:\n  - name: r\n    paths: [/]\n    strip_pth: true\n",
    );
    let out = Command::new(bin()).args(["check", "--config"]).arg(&*bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = bad.display().to_string();
    assert!(err.contains(&format!("{file}:5:3:")), "{err}");
    assert!(err.contains(&format!("{file}:9:5:")), "{err}");
    assert!(err.contains("2 problem(s)"), "{err}");
}

#[test]
fn check_reports_router_problems_with_their_position() {
    let bad = temp_file("regex", &config("127.0.0.1:9".parse().unwrap(), "\"~/a([\""));
    let out = Command::new(bin()).args(["check", "--config"]).arg(&*bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:6:5: route `r`: invalid regex", bad.display())), "{err}");
}

#[test]
fn check_reports_plugin_config_problems_with_their_position() {
    let bad = temp_file(
        "plugin",
        "_format_version: \"3.0\"\nplugins:\n- name: openid-connect\n  config:\n    issuer: http://127.0.0.1:9/\n    auth_methods: [client_credentials]\n    client_credentails_param_type: [header]\n",
    );
    let out = Command::new(bin()).args(["check", "--config"]).arg(&*bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:7:5:", bad.display())), "{err}");
    assert!(err.contains("client_credentials_param_type"), "a did-you-mean hint: {err}");
}

#[test]
fn run_refuses_to_start_on_a_bad_file() {
    let bad = temp_file("refuse", "_format_version: \"3.0\"\nservices: 5\n");
    let out = Command::new(bin()).args(["run", "--listen", "127.0.0.1:0", "--config"]).arg(&*bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":2:"));
}

#[test]
fn run_serves_reloads_on_sighup_and_drains_on_sigterm() {
    let up = Upstream::start();
    let path = temp_file("run", &config(up.addr(), "/old"));
    let mut r = run(&path, &[]);
    assert_eq!(r.get("/old"), 200);
    assert_eq!(r.get("/new"), 404);

    // A valid file is swapped in on SIGHUP.
    std::fs::write(&*path, config(up.addr(), "/new")).unwrap();
    r.signal("HUP");
    r.wait_line("configuration reloaded", Duration::from_secs(5));
    assert_eq!(r.get("/new"), 200);

    // An invalid one is refused and the running configuration stays.
    std::fs::write(&*path, "_format_version: \"3.0\"\nservices: [oops\n").unwrap();
    r.signal("HUP");
    r.wait_line("reload refused", Duration::from_secs(5));
    assert_eq!(r.get("/new"), 200);

    // SIGTERM with a request in flight: it completes, then the process exits 0.
    let addr = r.proxy;
    let slow = std::thread::spawn(move || {
        let mut c = Client::connect(addr);
        c.write(b"GET /new HTTP/1.1\r\nHost: a\r\nx-test-delay-ms: 500\r\n\r\n");
        c.response().map(|resp| resp.status)
    });
    std::thread::sleep(Duration::from_millis(150));
    r.signal("TERM");
    assert_eq!(slow.join().unwrap(), Some(200));
    assert_eq!(r.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn forced_io_uring_and_legacy_drivers_both_serve() {
    let up = Upstream::start();
    let path = temp_file("drivers", &config(up.addr(), "/"));
    for driver in ["io-uring", "legacy"] {
        let r = run(&path, &["--io-driver", driver]);
        assert_eq!(r.get("/x"), 200, "{driver}");
    }
}

/// The CPUs each worker thread of process `pid` may run on, by worker id, in the
/// kernel's list notation (the threads are named `ringgate-w<id>`).
fn worker_cpus(pid: u32) -> BTreeMap<usize, String> {
    let mut workers = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else { continue };
        let Some(id) = comm.trim().strip_prefix("ringgate-w").and_then(|n| n.parse().ok()) else { continue };
        let status = std::fs::read_to_string(dir.join("status")).unwrap();
        let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap();
        workers.insert(id, list.trim().to_owned());
    }
    workers
}

#[test]
fn cpu_affinity_pins_each_worker_and_off_leaves_them_the_whole_set() {
    let allowed = allowed_cpus().unwrap();
    let whole = CpuList(allowed.clone()).to_string();
    let up = Upstream::start();
    let path = temp_file("affinity", &config(up.addr(), "/"));

    let mut r = run(&path, &[]);
    assert_eq!(worker_cpus(r.child.id()), BTreeMap::from([(0, whole.clone()), (1, whole.clone())]));
    r.stop();

    // The harness runs two workers: each on the next CPU of the set, wrapping around.
    let mut r = run(&path, &["--cpu-affinity", "auto"]);
    let expected = |cpus: &[usize]| (0..2).map(|w| (w, cpus[w % cpus.len()].to_string())).collect::<BTreeMap<_, _>>();
    assert_eq!(worker_cpus(r.child.id()), expected(&allowed));
    let logged = if allowed.len() >= 2 { "workers pinned to CPUs" } else { "some workers share a CPU" };
    assert!(r.find_line(logged, Duration::from_secs(1)).contains("worker_cpu=0:"), "{}", r.log());
    assert_eq!(r.get("/x"), 200);
    r.stop();

    // A list: both workers on the last CPU there is.
    let last = *allowed.last().unwrap();
    let mut r = run(&path, &["--cpu-affinity", &last.to_string()]);
    assert_eq!(worker_cpus(r.child.id()), expected(&[last]));
    assert_eq!(r.get("/x"), 200);
    r.stop();
}

#[test]
fn cpu_affinity_refuses_a_cpu_the_process_may_not_use_and_a_malformed_list() {
    let allowed = allowed_cpus().unwrap();
    let outside = (0..ringgate::affinity::MAX_CPUS).find(|c| !allowed.contains(c)).expect("a CPU outside the set");
    let up = Upstream::start();
    let path = temp_file("affinity-refused", &config(up.addr(), "/"));
    let refused = |value: &str| {
        let mut child = Command::new(bin())
            .args(["run", "--listen", "127.0.0.1:0", "--admin-listen", "off", "--cpu-affinity", value, "--config"])
            .arg(&*path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > until {
                child.kill().unwrap();
                panic!("ringgate started with --cpu-affinity {value}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        (status.code(), stderr)
    };
    let (code, stderr) = refused(&format!("{},{outside}", allowed[0]));
    assert_eq!(code, Some(1), "{stderr}");
    let said =
        format!("--cpu-affinity: CPU {outside} is not one this process may run on (allowed: {})", CpuList(allowed));
    assert!(stderr.contains(&said), "{stderr}");
    let (code, stderr) = refused("3-1");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("the range 3-1 goes down"), "{stderr}");
}

/// A decK file with one service, the routes `paths`, and a global openid-connect plugin
/// taking Basic caller credentials, plus `extra` plugin settings.
fn oidc_config(upstream: SocketAddr, issuer: &str, paths: &[&str], extra: &str) -> String {
    let mut routes = String::new();
    for (i, p) in paths.iter().enumerate() {
        routes.push_str(&format!("  - name: r{i}\n    paths: [{p}]\n"));
    }
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: svc\n  url: http://{upstream}\n  routes:\n{routes}plugins:\n- name: openid-connect\n  config:\n    issuer: {issuer}\n    auth_methods: [client_credentials]\n    client_auth: [client_secret_post]\n{extra}"
    )
}

#[test]
fn reloads_under_load_lose_no_request_and_keep_the_token_cache_of_unchanged_plugins() {
    const CLIENT: (&str, &str) = ("post-client", "post-client-secret-0123456789abcdef");
    let idp = support::idp::TestIdp::start(0);
    let up = Upstream::start();
    let path = temp_file("reload-load", &oidc_config(up.addr(), &idp.issuer, &["/a"], ""));
    let mut r = run(&path, &[]);
    let auth = format!("Basic {}", STANDARD.encode(format!("{}:{}", CLIENT.0, CLIENT.1)));
    let request = format!("GET /a HTTP/1.1\r\nHost: a\r\nAuthorization: {auth}\r\n\r\n");
    let mut c = Client::connect(r.proxy);
    c.write(request.as_bytes());
    assert_eq!(c.response().expect("response").status, 200);
    assert_eq!(idp.token_requests(CLIENT.0), 1);

    // Load: 8 keep-alive connections sending as fast as they can while the file is
    // reloaded ten times (routes added, the plugin unchanged).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let addr = r.proxy;
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (stop, request) = (stop.clone(), request.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let (mut ok, mut failed) = (0u64, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    c.write(request.as_bytes());
                    match c.response() {
                        Some(resp) if resp.status == 200 => ok += 1,
                        Some(resp) => failed.push(format!("status {}", resp.status)),
                        None => {
                            failed.push("connection closed".to_string());
                            c = Client::connect(addr);
                        }
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let mut paths = vec!["/a"];
    let extra_paths = ["/b", "/c", "/d", "/e", "/f", "/g", "/h", "/i", "/j", "/k"];
    for p in extra_paths {
        std::thread::sleep(Duration::from_millis(150));
        paths.push(p);
        std::fs::write(&*path, oidc_config(up.addr(), &idp.issuer, &paths, "")).unwrap();
        r.signal("HUP");
        let line = r.wait_line("configuration installed", Duration::from_secs(5));
        assert!(line.contains("plugins_kept=1"), "{line}");
        r.wait_line("configuration reloaded", Duration::from_secs(5));
    }
    std::thread::sleep(Duration::from_millis(150));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        let (ok, failed) = w.join().unwrap();
        assert!(failed.is_empty(), "failed requests across reloads: {failed:?}");
        total += ok;
    }
    assert!(total >= 1000, "only {total} requests ran across the reloads");
    assert_eq!(r.get("/k"), 401, "the last reload is live (a route without credentials)");
    assert_eq!(idp.token_requests(CLIENT.0), 1, "the unchanged plugin kept its cached token across {total} requests");

    // A reload that changes the plugin starts it afresh: one new token.
    let changed = oidc_config(up.addr(), &idp.issuer, &paths, "    scopes: [openid, read]\n");
    std::fs::write(&*path, changed).unwrap();
    r.signal("HUP");
    r.wait_line("configuration reloaded", Duration::from_secs(5));
    let mut c = Client::connect(r.proxy);
    for _ in 0..3 {
        c.write(request.as_bytes());
        assert_eq!(c.response().expect("response").status, 200);
    }
    assert_eq!(idp.token_requests(CLIENT.0), 2, "the changed plugin fetched its own token once");
}

#[test]
fn a_kong_cluster_plugin_manifest_beside_the_deck_file_authenticates_traffic() {
    const CLIENT: (&str, &str) = ("post-client", "post-client-secret-0123456789abcdef");
    let idp = support::idp::TestIdp::start(0);
    let up = Upstream::start();
    let deck = temp_file("manifest-deck", &config(up.addr(), "/m"));
    let manifest = temp_file(
        "manifest-plugin",
        &format!(
            "apiVersion: configuration.konghq.com/v1\nkind: KongClusterPlugin\nmetadata:\n  name: oidc\n  labels:\n    global: \"true\"\nplugin: openid-connect\nconfig:\n  issuer: {}\n  auth_methods: [client_credentials]\n  client_auth: [client_secret_post]\n",
            idp.issuer
        ),
    );
    let r = run(&deck, &["--config", manifest.to_str().unwrap()]);
    assert_eq!(r.get("/m"), 401, "the manifest's plugin guards the decK file's route");
    let mut c = Client::connect(r.proxy);
    let auth = format!("Basic {}", STANDARD.encode(format!("{}:{}", CLIENT.0, CLIENT.1)));
    c.write(format!("GET /m HTTP/1.1\r\nHost: a\r\nAuthorization: {auth}\r\n\r\n").as_bytes());
    assert_eq!(c.response().expect("response").status, 200);
    let got = up.received();
    assert_eq!(got.len(), 1);
    let forwarded = String::from_utf8_lossy(got[0].header("authorization").expect("a token upstream")).to_string();
    assert!(forwarded.starts_with("Bearer ey"), "{forwarded}");
    assert_eq!(idp.token_requests(CLIENT.0), 1);
}

#[test]
fn wrk_across_sighup_and_admin_api_changes_sees_only_200s() {
    const CLIENT: (&str, &str) = ("post-client", "post-client-secret-0123456789abcdef");
    let idp = support::idp::TestIdp::start(0);
    let up = Upstream::start();
    let path = temp_file("reload-wrk", &oidc_config(up.addr(), &idp.issuer, &["/a"], ""));
    let mut r = run(&path, &[]);
    let admin = r.admin.expect("the Admin API");
    let auth = format!("Authorization: Basic {}", STANDARD.encode(format!("{}:{}", CLIENT.0, CLIENT.1)));
    let wrk = std::process::Command::new("wrk")
        .args(["-t", "1", "-c", "16", "-d", "5s", "-H", &auth])
        .arg(format!("http://{}/a", r.proxy))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("wrk runs (apt-get install wrk; scripts/test.sh does)");
    // While wrk runs: decK file reloads (routes added) and Admin API changes (a route
    // posted), each swapped in under the load.
    let mut paths = vec!["/a"];
    for (i, p) in ["/b", "/c", "/d"].into_iter().enumerate() {
        std::thread::sleep(Duration::from_millis(600));
        paths.push(p);
        std::fs::write(&*path, oidc_config(up.addr(), &idp.issuer, &paths, "")).unwrap();
        r.signal("HUP");
        r.wait_line("configuration reloaded", Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(400));
        let body = format!(r#"{{"name":"extra{i}","paths":["/extra{i}"]}}"#);
        let posted = std::process::Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json"])
            .args(["-d", &body, &format!("http://{admin}/services/svc/routes")])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&posted.stdout), "201", "route {i} posted");
    }
    let out = wrk.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("Non-2xx"), "a request failed across the reloads:\n{text}");
    assert!(!text.contains("Socket errors"), "a connection failed across the reloads:\n{text}");
    let requests: u64 = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").map(|(n, _)| n.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
    assert!(requests >= 1000, "only {requests} requests across the reloads:\n{text}");
    assert_eq!(idp.token_requests(CLIENT.0), 1, "one token for the whole run, across every reload");
}
