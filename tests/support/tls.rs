//! TLS fixtures made by the tests themselves: a CA issuing certificates (good, expired,
//! for other names), and [`TlsFront`], a TLS server that terminates connections and
//! relays the bytes to a plain backend (the recording upstream), so the recording
//! upstream can sit behind `https`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A test certificate authority.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Issued {
    pub cert: String,
    pub key: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa { pem, issuer: Issuer::new(params, key) }
    }

    /// A certificate for `names` (DNS names or IP literals), valid now.
    pub fn issue(&self, names: &[&str]) -> Issued {
        self.issue_with(names, |_| {})
    }

    /// A certificate for `names` that expired a year ago.
    pub fn issue_expired(&self, names: &[&str]) -> Issued {
        self.issue_with(names, |p| {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        })
    }

    fn issue_with(&self, names: &[&str], edit: impl FnOnce(&mut CertificateParams)) -> Issued {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("client"));
        edit(&mut params);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued { cert: cert.pem(), key: key.serialize_pem() }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.pem.as_bytes()).unwrap()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls server config serving `issued`; with `client_ca`, clients must present a
/// certificate that CA issued.
pub fn server_config(issued: &Issued, client_ca: Option<&TestCa>) -> Arc<rustls::ServerConfig> {
    let certs = CertificateDer::pem_slice_iter(issued.cert.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(issued.key.as_bytes()).unwrap();
    let builder =
        rustls::ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.der()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(builder.with_single_cert(certs, key).unwrap())
}

/// A TLS server on 127.0.0.1 relaying each connection's plaintext to `backend`.
pub struct TlsFront {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    handshakes_ok: Arc<AtomicUsize>,
}

impl TlsFront {
    pub fn start(backend: SocketAddr, config: Arc<rustls::ServerConfig>) -> TlsFront {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let handshakes_ok = Arc::new(AtomicUsize::new(0));
        let (stop2, accepted2, ok2) = (stop.clone(), accepted.clone(), handshakes_ok.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                accepted2.fetch_add(1, Ordering::SeqCst);
                let (config, stop, ok) = (config.clone(), stop2.clone(), ok2.clone());
                thread::spawn(move || relay(conn, backend, config, &stop, &ok));
            }
        });
        TlsFront { addr, stop, accepted, handshakes_ok }
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Handshakes that completed.
    pub fn handshakes(&self) -> usize {
        self.handshakes_ok.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Moves bytes both ways until either side closes, polling each socket briefly.
fn relay(
    mut client: TcpStream,
    backend: SocketAddr,
    config: Arc<rustls::ServerConfig>,
    stop: &AtomicBool,
    ok: &AtomicUsize,
) {
    let Ok(mut tls) = rustls::ServerConnection::new(config) else { return };
    let poll = Some(Duration::from_millis(2));
    let _ = client.set_read_timeout(poll);
    let mut back: Option<TcpStream> = None;
    let mut buf = [0u8; 16 * 1024];
    let mut counted = false;
    while !stop.load(Ordering::SeqCst) {
        // Downstream TLS bytes in.
        match tls.read_tls(&mut client) {
            Ok(0) => return,
            Ok(_) => {
                if tls.process_new_packets().is_err() {
                    let _ = tls.write_tls(&mut client);
                    return;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        if !tls.is_handshaking() && !counted {
            counted = true;
            ok.fetch_add(1, Ordering::SeqCst);
        }
        // Plaintext to the backend.
        loop {
            match tls.reader().read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if back.is_none() {
                        let Ok(b) = TcpStream::connect(backend) else { return };
                        let _ = b.set_read_timeout(poll);
                        back = Some(b);
                    }
                    if back.as_mut().unwrap().write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
        // Backend bytes back out.
        if let Some(b) = back.as_mut() {
            match b.read(&mut buf) {
                Ok(0) => {
                    tls.send_close_notify();
                    let _ = tls.write_tls(&mut client);
                    return;
                }
                Ok(n) => {
                    if tls.writer().write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
        }
        while tls.wants_write() {
            if tls.write_tls(&mut client).is_err() {
                return;
            }
        }
    }
}
