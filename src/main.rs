//! The `ringgate` command: `run`, `check`, `--version`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use clap::{Args, Parser, Subcommand, ValueEnum};

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
    Run(RunArgs),
    /// Load, expand and validate a decK file; print every problem and exit 0 or 1.
    Check {
        /// The decK file (`${{ env "DECK_X" }}` is expanded from the environment).
        #[arg(value_name = "FILE", long, short, env = "RINGGATE_CONFIG")]
        config: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DriverArg {
    Auto,
    IoUring,
    Legacy,
}

#[derive(Args)]
struct RunArgs {
    /// The decK file (`${{ env "DECK_X" }}` is expanded from the environment).
    #[arg(value_name = "FILE", long, short, env = "RINGGATE_CONFIG")]
    config: PathBuf,
    /// Address to accept plain HTTP on; repeat for several.
    #[arg(value_name = "ADDR", long, env = "RINGGATE_LISTEN", value_delimiter = ',', default_value = "0.0.0.0:8000")]
    listen: Vec<SocketAddr>,
    /// Worker threads, one per core by default.
    #[arg(value_name = "N", long, env = "RINGGATE_WORKERS")]
    workers: Option<usize>,
    /// Address of the Admin API (arrives with the Admin API work; accepted now so
    /// service files need not change later).
    #[arg(value_name = "ADDR", long, env = "RINGGATE_ADMIN_LISTEN", default_value = "127.0.0.1:8001")]
    admin_listen: SocketAddr,
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
                println!("{}: configuration is valid", config.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors.0 {
                    eprintln!("{e}");
                }
                eprintln!("{}: {} problem(s) found", config.display(), errors.0.len());
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => match run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ringgate: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Everything `run` would refuse, without resolving host names.
fn check(path: &std::path::Path) -> Result<(), config::ConfigErrors> {
    let named = |mut errors: Vec<config::ConfigError>| {
        for e in errors.iter_mut() {
            if e.file.is_empty() {
                e.file = path.display().to_string();
            }
        }
        errors
    };
    let cfg = config::load_file(path)?;
    let compiled = ringgate::snapshot::compile(&cfg).map_err(|e| config::ConfigErrors(named(e.0)))?;
    let plugin_warnings = compiled.warnings;
    for w in cfg.warnings.iter().cloned().chain(named(plugin_warnings)) {
        eprintln!("warning: {w}");
    }
    Ok(())
}

fn load(path: &std::path::Path, resolved: &mut Resolved) -> Result<Snapshot, config::ConfigErrors> {
    let file = path.display().to_string();
    let name = |e: &mut config::ConfigError| {
        if e.file.is_empty() {
            e.file.clone_from(&file);
        }
    };
    let loaded = config::load_file(path).and_then(|cfg| Snapshot::build(cfg, resolved));
    match loaded {
        Ok(mut snap) => {
            for w in snap.config.warnings.iter_mut() {
                name(w);
                tracing::warn!("{w}");
            }
            Ok(snap)
        }
        Err(mut errors) => {
            errors.0.iter_mut().for_each(name);
            Err(errors)
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let limits = Limits {
        head: HeadLimits { max_head_bytes: args.max_head_bytes, max_headers: usize::from(args.max_headers) },
        max_body_bytes: args.max_body_bytes,
        header_timeout: secs(args.header_timeout, "header-timeout")?,
        idle_timeout: secs(args.idle_timeout, "idle-timeout")?,
        body_timeout: secs(args.body_timeout, "body-timeout")?,
        max_connections: args.max_connections.max(1),
        upstream_keepalive: args.upstream_keepalive,
        upstream_idle_timeout: secs(args.upstream_idle_timeout, "upstream-idle-timeout")?,
    };
    let drain = secs(args.drain_timeout, "drain-timeout")?;
    let access_log = ringgate::access_log::Sink::open(&args.access_log)
        .with_context(|| format!("cannot open the access log {:?}", args.access_log))?;
    let mut resolved = Resolved::new();
    let snapshot = load(&args.config, &mut resolved).map_err(|e| anyhow::anyhow!("{e}"))?;
    let shared = Arc::new(ArcSwap::from_pointee(snapshot));
    let workers = args.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let driver = match args.io_driver {
        DriverArg::Auto => IoDriver::Auto,
        DriverArg::IoUring => IoDriver::IoUring,
        DriverArg::Legacy => IoDriver::Legacy,
    };
    ringgate::snapshot::spawn_resolver(shared.clone(), secs(args.dns_refresh, "dns-refresh")?)
        .context("cannot start the resolver thread")?;
    let control = ringgate::control::ControlPlane::start(ringgate::oidc::cache::SystemClock::new())
        .context("cannot start the control plane")?;
    let server = Server::start(
        ServerOptions { listen: args.listen, workers, driver, limits, control: Some(control.clone()), access_log },
        shared.clone(),
    )
    .context("cannot start listeners")?;
    for a in &server.local_addrs {
        tracing::info!(listen = %a, workers, "ringgate is serving");
    }
    // Wired by the admin listener: `GET /metrics` on `args.admin_listen` answers with
    // `render_metrics()`, content type `ringgate::metrics::CONTENT_TYPE` (Prometheus text
    // format 0.0.4). The closure is Send + Sync and cheap to call from any thread.
    let render_metrics = {
        let metrics = server.metrics();
        move || metrics.render()
    };
    let _ = (&args.admin_listen, &render_metrics);

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
            match load(&args.config, &mut Resolved::new()) {
                Ok(s) => {
                    let instances = s.instances();
                    shared.store(Arc::new(s));
                    control.watch(instances);
                    reloads.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(file = %args.config.display(), "configuration reloaded");
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
