//! The real `ringgate` binary, run by a test: `ringgate run` with the test's arguments,
//! its log lines kept for assertions, the addresses it bound read from its log.
//!
//! Every instance binds port 0 for everything (proxy, TLS, Admin API unless the test
//! says otherwise), so tests run in parallel without colliding.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::client::Client;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ringgate")
}

/// A running `ringgate run`.
pub struct Ringgate {
    pub child: Child,
    /// The first plain listener.
    pub proxy: SocketAddr,
    /// The first TLS listener, when `--tls-listen` was given.
    pub tls: Option<SocketAddr>,
    /// The Admin API, unless it is off.
    pub admin: Option<SocketAddr>,
    lines: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<u8>>>,
    /// The threads reading stderr and stdout; they end when the process closes them.
    readers: Vec<JoinHandle<()>>,
    /// Lines before this index were consumed by [`Ringgate::start`] (up to the serving
    /// line) and [`Ringgate::wait_line`].
    cursor: usize,
}

fn field_after(line: &str, key: &str) -> SocketAddr {
    let at = line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len();
    line[at..].split_whitespace().next().unwrap().parse().unwrap()
}

impl Ringgate {
    /// Starts `ringgate run` with `args` after the listeners (`--listen 127.0.0.1:0`,
    /// `--admin-listen 127.0.0.1:0` unless `args` sets it, two workers) and `envs`, and
    /// waits until it serves. The log up to the line saying so counts as consumed.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Ringgate {
        let mut cmd = Command::new(bin());
        cmd.args(["run", "--listen", "127.0.0.1:0", "--workers", "2"]);
        if !args.contains(&"--admin-listen") {
            cmd.args(["--admin-listen", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .args(args)
            .env("RINGGATE_LOG", "info")
            .env_remove("RINGGATE_ACCESS_LOG")
            .envs(envs.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("ringgate starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (err, sink) = (child.stderr.take().unwrap(), lines.clone());
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                super::record::record("ringgate-log", &line);
                sink.lock().unwrap().push(line);
            }
        });
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (mut out, sink) = (child.stdout.take().unwrap(), stdout.clone());
        let out_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                super::record::record_raw("ringgate-stdout", &String::from_utf8_lossy(&buf[..n]));
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let mut r = Ringgate {
            child,
            proxy: "127.0.0.1:1".parse().unwrap(),
            tls: None,
            admin: None,
            lines,
            stdout,
            readers: vec![err_reader, out_reader],
            cursor: 0,
        };
        r.proxy = field_after(&r.wait_line("ringgate is serving", Duration::from_secs(15)), "listen=");
        if args.contains(&"--tls-listen") {
            r.tls = Some(field_after(&r.find_line("ringgate is serving TLS", Duration::from_secs(1)), "tls_listen="));
        }
        if !args.windows(2).any(|w| w == ["--admin-listen", "off"]) {
            r.admin = Some(field_after(&r.find_line("Admin API listening", Duration::from_secs(1)), "admin_listen="));
        }
        r
    }

    /// The first line so far containing `needle`, waiting up to `within` for it.
    pub fn find_line(&mut self, needle: &str, within: Duration) -> String {
        self.wait_for(needle, within, 0).1
    }

    /// The next line after those already consumed containing `needle`, waiting up to
    /// `within`; consumes it and every line before it.
    pub fn wait_line(&mut self, needle: &str, within: Duration) -> String {
        let (at, line) = self.wait_for(needle, within, self.cursor);
        self.cursor = at + 1;
        line
    }

    fn wait_for(&mut self, needle: &str, within: Duration, from: usize) -> (usize, String) {
        let until = Instant::now() + within;
        loop {
            {
                let lines = self.lines.lock().unwrap();
                if let Some((i, l)) = lines.iter().enumerate().skip(from).find(|(_, l)| l.contains(needle)) {
                    return (i, l.clone());
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("ringgate exited ({status}) before logging {needle:?}:\n{}", self.log());
            }
            assert!(Instant::now() < until, "no log line containing {needle:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every log line so far.
    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// What it wrote to stdout so far.
    pub fn stdout(&self) -> Vec<u8> {
        self.stdout.lock().unwrap().clone()
    }

    /// Sends a signal by name (`HUP`, `TERM`, `KILL`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(ok.success(), "kill -{sig} failed");
    }

    /// Waits up to `within` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGTERM; asserts it exits 0 within 10 s, waits for its output to be read to the
    /// end, and returns the log lines after those consumed.
    pub fn stop(&mut self) -> Vec<String> {
        self.signal("TERM");
        assert_eq!(self.wait_exit(Duration::from_secs(10)), Some(0), "exit after SIGTERM:\n{}", self.log());
        let until = Instant::now() + Duration::from_secs(5);
        while !self.readers.iter().all(JoinHandle::is_finished) {
            assert!(Instant::now() < until, "stderr or stdout still open after the exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        self.lines.lock().unwrap()[self.cursor..].to_vec()
    }

    /// `GET path` through the plain listener on a fresh connection; the status.
    pub fn get(&self, path: &str) -> u16 {
        let mut c = Client::connect(self.proxy);
        c.write(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        c.response().expect("a response from the proxy").status
    }
}

impl Drop for Ringgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
