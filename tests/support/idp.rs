//! The real test OpenID Provider (`tests/idp/server.mjs`, oidc-provider), started per
//! test binary or per test as a child process on a free port and stopped on drop.
//!
//! It needs `tests/idp/node_modules`, which the test command installs
//! (`scripts/idp.sh install`); without it the start fails loudly, never skips.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct TestIdp {
    child: Child,
    /// The issuer, e.g. `http://127.0.0.1:41234`.
    pub issuer: String,
    /// The control API base, `<issuer>/_control`.
    pub control: String,
}

impl TestIdp {
    /// Starts an IdP with `extra_clients` load clients (`load-<i>` / `load-secret-<i>`).
    pub fn start(extra_clients: usize) -> TestIdp {
        TestIdp::start_with(extra_clients, &[])
    }

    /// Starts an IdP served over https with the PEM files `cert` and `key`; its control
    /// API is on https too (so [`TestIdp::control`] does not reach it).
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> TestIdp {
        let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
        TestIdp::start_with(0, &["--tls-cert", cert, "--tls-key", key])
    }

    fn start_with(extra_clients: usize, args: &[&str]) -> TestIdp {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/idp");
        assert!(
            std::path::Path::new(dir).join("node_modules").is_dir(),
            "tests/idp/node_modules is missing: run scripts/idp.sh install (scripts/test.sh does)"
        );
        let mut child = Command::new("node")
            .arg("server.mjs")
            .args(["--port", "0", "--extra-clients", &extra_clients.to_string()])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts the test IdP");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("IdP prints its address");
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("IDP_READY"), "unexpected first line from the IdP: {line:?}");
        let issuer = parts.next().expect("issuer").to_string();
        let control = parts.next().expect("control url").to_string();
        TestIdp { child, issuer, control }
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// Sends a control request; returns the status and the body.
    pub fn control(&self, method: &str, path: &str, json: &str) -> (u16, String) {
        let authority = self.control.trim_start_matches("http://").split('/').next().unwrap();
        let headers = [("Content-Type", "application/json")];
        let (status, body) =
            super::client::request_once(authority, method, &format!("/_control{path}"), &headers, json);
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Sets a fault: target `token` / `jwks` / `discovery` / `all`; mode `none` / `slow` /
    /// `500` / `drop`.
    pub fn fault(&self, target: &str, mode: &str, delay_ms: u64) {
        let (status, body) = self.control(
            "POST",
            "/fault",
            &format!(r#"{{"target":"{target}","mode":"{mode}","delay_ms":{delay_ms}}}"#),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// Token requests the IdP counted for `client_id` (answered or faulted).
    pub fn token_requests(&self, client_id: &str) -> u64 {
        let (_, body) = self.control("GET", "/counters", "");
        // {"token_total":N,"token":{"<client>":N,...},...}
        let Some(at) = body.find("\"token\":{") else { return 0 };
        let section = &body[at + 9..];
        let section = &section[..section.find('}').unwrap_or(section.len())];
        let needle = format!("\"{client_id}\":");
        let Some(c) = section.find(&needle) else { return 0 };
        section[c + needle.len()..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap_or(0)
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
