//! The `ringgate` command: `run`, `check`, `--version`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use clap::{Args, Parser, Subcommand, ValueEnum};

use ringgate::admin::{
    self, apply::ApplyError, apply::TlsInputs, persist::DataDir, Admin, AdminToken, Hooks, NodeInfo,
};
use ringgate::config;
use ringgate::http::head::{HeadLimits, MAX_HEADERS_CAP};
use ringgate::server::{IoDriver, Limits, Server, ServerOptions};
use ringgate::snapshot::{Resolved, Snapshot};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An edge proxy that exchanges OAuth2 client credentials for tokens at the identity
/// provider, verifies and caches them, and forwards requests with a bearer token. It
/// reads Kong decK files.
#[derive(Parser)]
#[command(name = "ringgate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve traffic with the given decK configuration.
    Run(Box<RunArgs>),
    /// Load, expand and validate a decK file; print every problem and exit 0 or 1.
    Check {
        /// The decK file (`${{ env "DECK_X" }}` is expanded from the environment);
        /// repeat for files of KongPlugin / KongClusterPlugin manifests.
        #[arg(value_name = "FILE", long, short, env = "RINGGATE_CONFIG", value_delimiter = ',', required = true)]
        config: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DriverArg {
    Auto,
    IoUring,
    Legacy,
}

/// `--admin-listen`: an address, or `off` (as Kong's `admin_listen = off`).
#[derive(Clone, Copy)]
enum AdminListen {
    Off,
    At(SocketAddr),
}

fn admin_listen(s: &str) -> Result<AdminListen, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(AdminListen::Off);
    }
    s.parse().map(AdminListen::At).map_err(|e| format!("expected ADDR:PORT or off: {e}"))
}

#[derive(Args)]
struct RunArgs {
    /// The decK file (`${{ env "DECK_X" }}` is expanded from the environment); repeat
    /// for files of KongPlugin / KongClusterPlugin manifests. Optional with `--resume`
    /// when a saved state exists.
    #[arg(
        value_name = "FILE",
        long,
        short,
        env = "RINGGATE_CONFIG",
        value_delimiter = ',',
        required_unless_present = "resume"
    )]
    config: Vec<PathBuf>,
    /// Address to accept plain HTTP on; repeat for several.
    #[arg(value_name = "ADDR", long, env = "RINGGATE_LISTEN", value_delimiter = ',', default_value = "0.0.0.0:8000")]
    listen: Vec<SocketAddr>,
    /// Address to accept TLS on; repeat for several. Certificates come from the decK
    /// file's `certificates` (by SNI) and `--tls-cert`/`--tls-key` (the default).
    #[arg(value_name = "ADDR", long, env = "RINGGATE_TLS_LISTEN", value_delimiter = ',')]
    tls_listen: Vec<SocketAddr>,
    /// PEM certificate chain served when no `certificates` entry names the SNI (or none
    /// is sent). Re-read on every reload.
    #[arg(value_name = "FILE", long, env = "RINGGATE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(value_name = "FILE", long, env = "RINGGATE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM file of CA certificates trusted for connections to the IdP besides the system
    /// roots (a private IdP's CA; Kong's `lua_ssl_trusted_certificate`).
    #[arg(value_name = "FILE", long, env = "RINGGATE_IDP_CA_FILE")]
    idp_ca_file: Option<PathBuf>,
    /// Token and introspection calls that may wait on one issuer at once; a cache miss
    /// past this is answered 503 at once instead of adding to an IdP that is behind.
    #[arg(value_name = "N", long, env = "RINGGATE_IDP_MAX_IN_FLIGHT", default_value_t = ringgate::control::ControlOptions::DEFAULT_MAX_IN_FLIGHT as u32, value_parser = clap::value_parser!(u32).range(1..))]
    idp_max_in_flight: u32,
    /// Longest a TLS handshake may take, in seconds.
    #[arg(value_name = "SECONDS", long, env = "RINGGATE_TLS_HANDSHAKE_TIMEOUT", default_value_t = 10.0)]
    tls_handshake_timeout: f64,
    /// Worker threads, one per core by default.
    #[arg(value_name = "N", long, env = "RINGGATE_WORKERS")]
    workers: Option<usize>,
    /// Pin workers to CPUs: off, auto (worker i on the i-th CPU this process may use),
    /// or a CPU list such as 0-3,8 (worker i on the i-th CPU listed).
    #[arg(value_name = "off|auto|LIST", long, env = "RINGGATE_CPU_AFFINITY", default_value = "off")]
    cpu_affinity: ringgate::affinity::CpuAffinity,
    /// Address of the Kong-compatible Admin API, or `off`. A non-loopback address needs
    /// an admin token.
    #[arg(value_name = "ADDR", long, env = "RINGGATE_ADMIN_LISTEN", default_value = "127.0.0.1:8001", value_parser = admin_listen)]
    admin_listen: AdminListen,
    /// Token every Admin API request must carry (`Kong-Admin-Token` header or
    /// `Authorization: Bearer`). Prefer the environment variable: arguments are visible
    /// to other users of the machine.
    #[arg(value_name = "TOKEN", long, env = "RINGGATE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The control plane id Konnect-style Admin API paths must name
    /// (`/v2/control-planes/{id}/core-entities/...`); without it, any id is taken.
    #[arg(value_name = "UUID", long, env = "RINGGATE_CONTROL_PLANE_ID", value_parser = admin::control_plane_id)]
    control_plane_id: Option<String>,
    /// Directory where every accepted configuration change is saved (`state.json`), for
    /// `--resume`. Without it, Admin API changes last until the process exits.
    #[arg(value_name = "DIR", long, env = "RINGGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Start from the state saved in `--data-dir` instead of `--config` (which is used
    /// when no state has been saved yet).
    #[arg(long)]
    resume: bool,
    /// I/O driver: io_uring where available (auto), or force one.
    #[arg(value_name = "DRIVER", long, env = "RINGGATE_IO_DRIVER", value_enum, default_value = "auto")]
    io_driver: DriverArg,
    /// Largest request head (request line and headers), in bytes; 431 past it.
    #[arg(value_name = "BYTES", long, env = "RINGGATE_MAX_HEAD_BYTES", default_value_t = 32 * 1024)]
    max_head_bytes: usize,
    /// Most header lines in a request; 431 past it.
    #[arg(value_name = "N", long, env = "RINGGATE_MAX_HEADERS", default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=MAX_HEADERS_CAP as i64))]
    max_headers: u16,
    /// Largest request body in bytes (0 = no limit); 413 past it.
    #[arg(value_name = "BYTES", long, env = "RINGGATE_MAX_BODY_BYTES", default_value_t = 100 * 1024 * 1024)]
    max_body_bytes: u64,
    /// Seconds from a request head's first byte to its last (slow-loris guard); 408.
    #[arg(value_name = "SECONDS", long, env = "RINGGATE_HEADER_TIMEOUT", default_value_t = 10.0)]
    header_timeout: f64,
    /// Seconds a keep-alive connection may sit idle between requests.
    #[arg(value_name = "SECONDS", long, env = "RINGGATE_IDLE_TIMEOUT", default_value_t = 60.0)]
    idle_timeout: f64,
    /// Seconds to wait for the next piece of a request body (408), or for the
    /// downstream to accept the next piece of a response.
    #[arg(value_name = "SECONDS", long, env = "RINGGATE_BODY_TIMEOUT", default_value_t = 60.0)]
    body_timeout: f64,
    /// Open downstream connections per worker; new ones past it are closed.
    #[arg(value_name = "N", long, env = "RINGGATE_MAX_CONNECTIONS", default_value_t = 16384)]
    max_connections: usize,
    /// Idle upstream connections kept per upstream address and worker.
    #[arg(value_name = "N", long, env = "RINGGATE_UPSTREAM_KEEPALIVE", default_value_t = 512)]
    upstream_keepalive: usize,
    /// Seconds an idle upstream connection is kept.
    #[arg(value_name = "SECONDS", long, env = "RINGGATE_UPSTREAM_IDLE_TIMEOUT", default_value_t = 30.0)]
    upstream_idle_timeout: f64,
    /// Seconds between re-resolutions of upstream host names (five while one fails).
    #[arg(value_name = "SECONDS", long, env = "RINGGATE_DNS_REFRESH", default_value_t = 30.0)]
    dns_refresh: f64,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(value_name = "SECONDS", long, env = "RINGGATE_DRAIN_TIMEOUT", default_value_t = 30.0)]
    drain_timeout: f64,
    /// Access log, one JSON line per request: off, stdout, or a file (appended to).
    #[arg(value_name = "off|stdout|PATH", long, env = "RINGGATE_ACCESS_LOG", default_value = "off")]
    access_log: ringgate::access_log::Target,
}

/// The CPU of each worker under `--cpu-affinity`, logged; refused before anything starts
/// when a listed CPU is not one this process may use.
fn worker_cpus(affinity: &ringgate::affinity::CpuAffinity, workers: usize) -> anyhow::Result<Option<Vec<usize>>> {
    use ringgate::affinity::{allowed_cpus, plan, CpuAffinity, CpuList};
    if *affinity == CpuAffinity::Off {
        return Ok(None);
    }
    let allowed = allowed_cpus().context("--cpu-affinity: cannot read the CPUs this process may use")?;
    let Some(cpus) = plan(affinity, workers, &allowed).map_err(|e| anyhow::anyhow!("--cpu-affinity: {e}"))? else {
        return Ok(None);
    };
    let mut distinct = cpus.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let shared = workers > distinct.len();
    let map: Vec<String> = cpus.iter().enumerate().map(|(w, c)| format!("{w}:{c}")).collect();
    let (distinct, map) = (CpuList(distinct), map.join(","));
    if shared {
        tracing::warn!(workers, cpus = %distinct, worker_cpu = %map, "more workers than CPUs: some workers share a CPU");
    } else {
        tracing::info!(cpus = %distinct, worker_cpu = %map, "workers pinned to CPUs");
    }
    Ok(Some(cpus))
}

fn secs(v: f64, name: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("--{name} must be a positive number of seconds"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RINGGATE_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match check(&config) {
            Ok(()) => {
                println!("{}: configuration is valid", shown(&config));
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors.0 {
                    eprintln!("{e}");
                }
                eprintln!("{}: {} problem(s) found", shown(&config), errors.0.len());
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => match run(*args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ringgate: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The `--config` files, for messages.
fn shown(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Everything `run` would refuse, without resolving host names.
fn check(paths: &[PathBuf]) -> Result<(), config::ConfigErrors> {
    let mut cfg = config::load_files(paths)?;
    // Problems without a file of their own are the decK file's (the first).
    for w in ringgate::snapshot::check(&mut cfg, &paths[0].display().to_string())? {
        eprintln!("warning: {w}");
    }
    Ok(())
}

/// The machine's host name, for `GET /`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map_or_else(|_| "localhost".into(), |h| h.trim().to_string())
}

/// Loads what the process starts from: the saved state with `--resume` when there is
/// one, else the decK file.
fn initial_load(admin: &mut Admin, args: &RunArgs) -> anyhow::Result<()> {
    let invalid = |e: ApplyError| anyhow::anyhow!("{e}");
    if args.resume {
        let data =
            admin.data_dir().context("--resume needs --data-dir (or RINGGATE_DATA_DIR): the state is saved there")?;
        let path = data.state_path();
        if let Some(text) = data.load()? {
            admin.load_state(&text, &path.display().to_string()).map_err(invalid)?;
            tracing::info!(state = %path.display(), "resumed from the saved state");
            return Ok(());
        }
        tracing::warn!(state = %path.display(), "no saved state yet; starting from --config");
    }
    anyhow::ensure!(!args.config.is_empty(), "nothing to start from: give --config (or --resume with a saved state)");
    admin.load_deck(&args.config).map_err(invalid)
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let limits = Limits {
        head: HeadLimits { max_head_bytes: args.max_head_bytes, max_headers: usize::from(args.max_headers) },
        max_body_bytes: args.max_body_bytes,
        header_timeout: secs(args.header_timeout, "header-timeout")?,
        tls_handshake_timeout: secs(args.tls_handshake_timeout, "tls-handshake-timeout")?,
        idle_timeout: secs(args.idle_timeout, "idle-timeout")?,
        body_timeout: secs(args.body_timeout, "body-timeout")?,
        max_connections: args.max_connections.max(1),
        upstream_keepalive: args.upstream_keepalive,
        upstream_idle_timeout: secs(args.upstream_idle_timeout, "upstream-idle-timeout")?,
    };
    let drain = secs(args.drain_timeout, "drain-timeout")?;
    let access_log = ringgate::access_log::Sink::open(&args.access_log)
        .with_context(|| format!("cannot open the access log {:?}", args.access_log))?;
    let workers = args.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let cpus = worker_cpus(&args.cpu_affinity, workers.max(1))?;
    let token = args.admin_token.as_deref().map(AdminToken::new).transpose()?;
    if let (AdminListen::At(addr), None) = (args.admin_listen, &token) {
        if !admin::is_loopback(addr.ip()) {
            anyhow::bail!("{}", admin::AdminError::Exposed(addr));
        }
    }
    let data = args.data_dir.as_deref().map(DataDir::open).transpose()?;
    if data.is_none() {
        tracing::info!("no --data-dir: Admin API changes are kept in memory only");
    }

    // The configuration lives in the Admin API's store; every change, the first load
    // included, goes through it and is swapped into `shared` for the workers.
    let empty = Snapshot::build(config::Config::default(), &mut Resolved::new()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let shared = Arc::new(ArcSwap::from_pointee(empty));
    let idp_ca = match &args.idp_ca_file {
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("cannot read --idp-ca-file {}", path.display()))?;
            ringgate::tls::certificates(&pem).map_err(|e| anyhow::anyhow!("--idp-ca-file {}: {e}", path.display()))?;
            Some(pem)
        }
        None => None,
    };
    let options =
        ringgate::control::ControlOptions { extra_ca_pem: idp_ca, max_in_flight: args.idp_max_in_flight as usize };
    let control = ringgate::control::ControlPlane::start_with(ringgate::oidc::cache::SystemClock::new(), options)
        .context("cannot start the control plane")?;
    let node = NodeInfo {
        node_id: admin::store::new_id()?,
        hostname: hostname(),
        workers,
        configuration: serde_json::json!({
            "database": "off",
            "role": "traditional",
            "proxy_listen": args.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "admin_listen": [],
            "workers": workers,
            "plugins": config::KNOWN_PLUGINS,
            "data_dir": args.data_dir.as_ref().map(|d| d.display().to_string()),
        }),
    };
    // `Hooks::metrics` (GET /metrics) and `Hooks::connections` (GET /status) are set
    // once the workers (and their metrics) are up.
    let hooks = Arc::new(Hooks::default());
    let mut state = Admin::new(shared.clone(), Some(control.clone()), data, node, hooks);
    state.control_plane_id = args.control_plane_id.clone();
    if !args.tls_listen.is_empty() {
        let default_cert = args.tls_cert.clone().zip(args.tls_key.clone());
        state.set_tls(TlsInputs {
            default_cert,
            resumption: ringgate::tls::Resumption::new().map_err(anyhow::Error::msg)?,
        });
    }
    initial_load(&mut state, &args)?;
    let admin = Arc::new(Mutex::new(state));
    if let AdminListen::At(addr) = args.admin_listen {
        let bound = admin::serve(addr, token, admin.clone())?;
        admin::lock(&admin).node.configuration["admin_listen"] = serde_json::json!([bound.to_string()]);
        tracing::info!(admin_listen = %bound, "Admin API listening");
    }
    let driver = match args.io_driver {
        DriverArg::Auto => IoDriver::Auto,
        DriverArg::IoUring => IoDriver::IoUring,
        DriverArg::Legacy => IoDriver::Legacy,
    };
    ringgate::snapshot::spawn_resolver(shared.clone(), secs(args.dns_refresh, "dns-refresh")?)
        .context("cannot start the resolver thread")?;
    let server = Server::start(
        ServerOptions {
            listen: args.listen,
            tls_listen: args.tls_listen.clone(),
            workers,
            driver,
            limits,
            control: Some(control.clone()),
            access_log,
            cpus,
        },
        shared.clone(),
    )
    .context("cannot start listeners")?;
    for a in &server.local_addrs {
        tracing::info!(listen = %a, workers, "ringgate is serving");
    }
    for a in &server.tls_addrs {
        tracing::info!(tls_listen = %a, workers, "ringgate is serving TLS");
    }
    // The Admin API's `/metrics` and `/status` read the workers' counters from now on.
    let metrics = server.metrics();
    let hooks = admin::lock(&admin).hooks.clone();
    let m = metrics.clone();
    let snap = shared.clone();
    let _ = hooks.metrics.set(Box::new(move || m.render_with(&snap.load())));
    let _ = hooks.connections.set(Box::new(move || {
        let (open, accepted, requests) = metrics.connection_totals();
        admin::ConnectionCounts {
            active: open,
            accepted,
            handled: accepted,
            total_requests: requests,
            ..Default::default()
        }
    }));

    // Signals: SIGHUP reloads, SIGTERM/SIGINT drain and exit.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("cannot install signal handlers")?;
    let reloads = AtomicUsize::new(0);
    for sig in signals.forever() {
        if sig == signal_hook::consts::SIGHUP {
            // SIGHUP re-reads the decK file: it replaces everything, Admin API changes
            // included, as a DB-less Kong does when given a new declarative file.
            if args.config.is_empty() {
                tracing::warn!("SIGHUP ignored: no --config to re-read");
                continue;
            }
            match admin::lock(&admin).load_deck(&args.config) {
                Ok(()) => {
                    reloads.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(files = %shown(&args.config), "configuration reloaded");
                }
                Err(e) => tracing::error!("reload refused, the running configuration stays:\n{e}"),
            }
            continue;
        }
        tracing::info!(deadline_s = drain.as_secs_f64(), "shutting down: draining connections");
        break;
    }
    if server.stop(drain) {
        tracing::info!("all connections drained");
    } else {
        tracing::warn!("drain deadline passed with requests still in flight; exiting");
    }
    Ok(())
}
