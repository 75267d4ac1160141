use super::*;

use rcgen::{CertificateParams, CertifiedKey as RcKey, KeyPair};

/// A CA and a function that issues leaf certificates for names under it.
struct Ca {
    pem: String,
    issuer: rcgen::Issuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "ringgate test CA");
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { pem, issuer: rcgen::Issuer::new(params, key) }
    }

    /// (certificate PEM, key PEM) for `names`.
    fn issue(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn self_signed(names: &[&str]) -> (String, String) {
    let RcKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    (cert.pem(), signing_key.serialize_pem())
}

fn key_for(names: &[&str]) -> Arc<CertifiedKey> {
    let (c, k) = self_signed(names);
    certified_key(c.as_bytes(), k.as_bytes()).unwrap()
}

#[test]
fn pem_pairs_load_and_mismatches_are_refused() {
    let (cert, key) = self_signed(&["a.example"]);
    assert!(certified_key(cert.as_bytes(), key.as_bytes()).is_ok());
    let (_, other_key) = self_signed(&["b.example"]);
    let e = certified_key(cert.as_bytes(), other_key.as_bytes()).unwrap_err();
    assert!(e.starts_with("the key does not belong to the certificate"), "{e}");
    let e = certified_key(b"not pem", key.as_bytes()).unwrap_err();
    assert_eq!(e, "no PEM certificate found");
    let e =
        certified_key(cert.as_bytes(), b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap_err();
    assert!(e.starts_with("the key cannot sign"), "{e}");
}

#[test]
fn problems_name_the_half_of_the_pair_they_are_in() {
    let (cert, key) = self_signed(&["a.example"]);
    let (_, other_key) = self_signed(&["b.example"]);
    let part = |c: &str, k: &str| certified_key_checked(c.as_bytes(), k.as_bytes()).map(|_| ()).map_err(|(p, _)| p);
    assert_eq!(part(&cert, &key), Ok(()));
    assert_eq!(part("not pem", &key), Err(KeyPart::Cert));
    let garbage = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
    assert_eq!(part(garbage, &key), Err(KeyPart::Cert), "PEM that is not X.509");
    assert_eq!(part(&cert, "not pem"), Err(KeyPart::Key));
    assert_eq!(part(&cert, &other_key), Err(KeyPart::Pair));
    let (_, e) = certified_key_checked(cert.as_bytes(), &key.as_bytes()[..key.len() / 2]).unwrap_err();
    let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!e.contains(&body[..16]), "no message quotes the key: {e}");
    // pki-types quotes the line or label it stops at: a key pasted on one line, or with
    // its first line joined to the header, would be quoted whole.
    let one_line = key.replace('\n', "");
    let joined = key.replacen("-----\n", "-----", 1);
    let as_bytes = format!("{:?}", &body.as_bytes()[..8]);
    let as_bytes = as_bytes.trim_matches(['[', ']']);
    for bad in [one_line, joined] {
        let (part, e) = certified_key_checked(cert.as_bytes(), bad.as_bytes()).unwrap_err();
        assert_eq!(part, KeyPart::Key);
        assert!(e.starts_with("the key is not a PEM private key ("), "{e}");
        assert!(!e.contains(&body[..16]) && !e.contains(as_bytes), "no message quotes the key: {e}");
    }
    // The same key pasted where a certificate belongs (a bundle in `cert`, the two
    // fields swapped): the certificate parser must not quote it either, nor the CA
    // parser (`ca_certificates`, `--idp-ca-file`).
    for bad in [key.replace('\n', ""), key.replacen("-----\n", "-----", 1)] {
        let (part, e) = certified_key_checked(bad.as_bytes(), key.as_bytes()).unwrap_err();
        assert_eq!(part, KeyPart::Cert);
        assert!(!e.contains(&body[..16]) && !e.contains(as_bytes), "no message quotes the key: {e}");
        let e = ca_certificates(bad.as_bytes()).unwrap_err();
        assert!(!e.contains(&body[..16]) && !e.contains(as_bytes), "no message quotes the key: {e}");
    }
}

#[test]
fn ca_certificates_must_be_usable_as_trust_anchors() {
    let ca = Ca::new();
    assert_eq!(ca_certificates(ca.pem.as_bytes()).unwrap().len(), 1);
    let garbage = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
    let e = ca_certificates(garbage.as_bytes()).unwrap_err();
    assert!(e.starts_with("the certificate cannot be used as a CA certificate"), "{e}");
    assert_eq!(ca_certificates(b"nothing").unwrap_err(), "no PEM certificate found");
}

#[test]
fn sni_picks_exact_then_wildcard_then_default() {
    let (exact, wild, default) = (key_for(&["api.example"]), key_for(&["*.example"]), key_for(&["fallback"]));
    let mut certs = ServerCerts::default();
    assert!(certs.add("API.example.", exact.clone()));
    assert!(certs.add("*.example", wild.clone()));
    assert!(!certs.add("api.example", wild.clone()), "the first certificate keeps a name");
    assert!(certs.pick(Some("nope.test")).is_none(), "no default yet: no certificate");
    certs.set_default(default.clone());
    assert!(Arc::ptr_eq(&certs.pick(Some("api.example")).unwrap(), &exact));
    assert!(Arc::ptr_eq(&certs.pick(Some("Other.Example")).unwrap(), &wild));
    assert!(Arc::ptr_eq(&certs.pick(Some("deep.other.example")).unwrap(), &default), "a wildcard covers one label");
    assert!(Arc::ptr_eq(&certs.pick(None).unwrap(), &default));
}

/// The served certificate (first DER), the ALPN protocol and the TLS version.
type Negotiated = (Vec<u8>, Option<Vec<u8>>, rustls::ProtocolVersion);

/// Runs a handshake between a client and a server config in memory; returns the
/// server's chosen certificate's first DER and the negotiated ALPN, or the error.
fn handshake(server: Arc<ServerConfig>, client: Arc<ClientConfig>, sni: &str) -> Result<Negotiated, rustls::Error> {
    let mut s = rustls::ServerConnection::new(server)?;
    let mut c = rustls::ClientConnection::new(client, server_name(sni).unwrap())?;
    for _ in 0..10 {
        let mut buf = Vec::new();
        c.write_tls(&mut buf).unwrap();
        s.read_tls(&mut &buf[..]).unwrap();
        s.process_new_packets()?;
        let mut buf = Vec::new();
        s.write_tls(&mut buf).unwrap();
        c.read_tls(&mut &buf[..]).unwrap();
        c.process_new_packets()?;
        if !c.is_handshaking() && !s.is_handshaking() {
            let cert = c.peer_certificates().unwrap()[0].to_vec();
            return Ok((cert, c.alpn_protocol().map(<[u8]>::to_vec), c.protocol_version().unwrap()));
        }
    }
    panic!("handshake did not finish");
}

fn client_trusting(ca_pem: &str, versions: &[&'static rustls::SupportedProtocolVersion]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(certificates(ca_pem.as_bytes()).unwrap().remove(0)).unwrap();
    let mut c = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(c)
}

#[test]
fn server_config_serves_by_sni_with_alpn_http11_on_tls12_and_tls13() {
    let ca = Ca::new();
    let (a_cert, a_key) = ca.issue(&["a.example", "b.example"]);
    let (d_cert, d_key) = ca.issue(&["default.example"]);
    let mut certs = ServerCerts::default();
    let a = certified_key(a_cert.as_bytes(), a_key.as_bytes()).unwrap();
    certs.add("a.example", a.clone());
    certs.add("b.example", a.clone());
    certs.set_default(certified_key(d_cert.as_bytes(), d_key.as_bytes()).unwrap());
    let server = server_config(certs, &Resumption::new().unwrap()).unwrap();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let client = client_trusting(&ca.pem, &[version]);
        let (cert, alpn, got) = handshake(server.clone(), client.clone(), "b.example").unwrap();
        assert_eq!(cert, a.cert[0].to_vec());
        assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(got, version.version);
        // An unknown name gets the default certificate, which does not name it: the
        // client refuses it.
        let e = handshake(server.clone(), client, "c.example").unwrap_err();
        assert!(matches!(e, rustls::Error::InvalidCertificate(_)), "{e:?}");
    }
}

#[test]
fn without_a_default_an_unknown_name_fails_the_handshake() {
    let ca = Ca::new();
    let (cert, key) = ca.issue(&["a.example"]);
    let mut certs = ServerCerts::default();
    certs.add("a.example", certified_key(cert.as_bytes(), key.as_bytes()).unwrap());
    let server = server_config(certs, &Resumption::new().unwrap()).unwrap();
    let client = client_trusting(&ca.pem, &[&rustls::version::TLS13]);
    assert!(handshake(server, client, "z.example").is_err());
}

#[test]
fn upstream_config_verifies_against_extra_roots_or_not_at_all() {
    let ca = Ca::new();
    let (cert, key) = ca.issue(&["up.example"]);
    let mut certs = ServerCerts::default();
    certs.set_default(certified_key(cert.as_bytes(), key.as_bytes()).unwrap());
    let server = server_config(certs, &Resumption::new().unwrap()).unwrap();

    let trusting =
        UpstreamTls { verify: true, extra_roots: certificates(ca.pem.clone().as_bytes()).unwrap(), client_cert: None };
    assert!(handshake(server.clone(), upstream_client_config(&trusting).unwrap(), "up.example").is_ok());
    let wrong_name = handshake(server.clone(), upstream_client_config(&trusting).unwrap(), "other.example");
    assert!(matches!(wrong_name, Err(rustls::Error::InvalidCertificate(_))), "{wrong_name:?}");
    let system_only = UpstreamTls { verify: true, ..UpstreamTls::default() };
    assert!(handshake(server.clone(), upstream_client_config(&system_only).unwrap(), "up.example").is_err());
    let unverified = UpstreamTls { verify: false, ..UpstreamTls::default() };
    assert!(handshake(server, upstream_client_config(&unverified).unwrap(), "other.example").is_ok());
}

/// A decK document with `certificates` holding `certs` (PEM pairs, each with its SNIs
/// and optional id), `ca_certificates` and `services_yaml`.
fn deck(certs: &[(&str, &str, &[&str], Option<&str>)], cas: &[(&str, &str)], services_yaml: &str) -> String {
    let block = |pem: &str| pem.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let mut doc = String::from("_format_version: \"3.0\"\ncertificates:\n");
    for (cert, key, snis, id) in certs {
        doc.push_str(&format!("- cert: |\n{}  key: |\n{}  snis: [{}]\n", block(cert), block(key), snis.join(", ")));
        if let Some(id) = id {
            doc.push_str(&format!("  id: {id}\n"));
        }
    }
    doc.push_str("ca_certificates:\n");
    for (id, pem) in cas {
        doc.push_str(&format!("- id: {id}\n  cert: |\n{}", block(pem)));
    }
    doc.push_str(services_yaml);
    doc
}

const ID1: &str = "6b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c";
const ID2: &str = "7b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c";

#[test]
fn compile_builds_served_certs_and_https_upstreams() {
    let ca = Ca::new();
    let (cert, key) = ca.issue(&["a.example"]);
    let yaml = deck(
        &[(&cert, &key, &["a.example", "'*.b.example'"], Some(ID1))],
        &[(ID2, &ca.pem)],
        &format!("services:\n- name: s\n  url: https://a.example\n  ca_certificates: [{ID2}]\n  client_certificate: {ID1}\n- name: p\n  url: http://a.example\n"),
    );
    let cfg = crate::config::load_str(&yaml, "t.yaml", &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let mut warnings = Vec::new();
    let out = config::compile(&cfg, &mut warnings).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(out.server_certs.pick(Some("x.b.example")).is_some());
    assert!(out.server_certs.pick(Some("other")).is_none());
    assert!(out.upstreams[0].len() == 1 && out.upstreams[1].is_empty());
    assert!(warnings.is_empty());
}

#[test]
fn an_https_service_on_an_upstream_gets_a_tls_name_per_target_or_the_host_header() {
    let yaml = "_format_version: \"3.0\"\nupstreams:\n- name: u\n  targets: [{target: 'a.example:443'}, \
                {target: 'b.example:443'}, {target: 'a.example:8443'}]\n- name: h\n  host_header: api.example\n  \
                targets: [{target: '10.0.0.1:443'}, {target: '10.0.0.2:443'}]\n\
                services:\n- name: s\n  protocol: https\n  host: u\n- name: t\n  protocol: https\n  host: h\n";
    let cfg = crate::config::load_str(yaml, "t.yaml", &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let out = config::compile(&cfg, &mut Vec::new()).unwrap_or_else(|e| panic!("{e:?}"));
    let names = |i: usize| out.upstreams[i].iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>();
    assert_eq!(names(0), vec!["a.example", "b.example"]);
    assert_eq!(names(1), vec!["api.example"]);
    // One client configuration per service: the names differ, the setup does not.
    assert!(Arc::ptr_eq(&out.upstreams[0][0].1.config, &out.upstreams[0][1].1.config));
    assert_ne!(out.upstreams[0][0].1.id, out.upstreams[0][1].1.id);
}

#[test]
fn compile_reports_every_tls_problem_with_its_position() {
    let (cert, key) = self_signed(&["a.example"]);
    let (_, other_key) = self_signed(&["x"]);
    let yaml = deck(
        &[(&cert, &key, &["a.example"], None), (&cert, &other_key, &["b.example"], None), (&cert, &key, &["a.example"], None)],
        &[(ID2, "not a certificate")],
        &format!("services:\n- url: https://a.example\n  ca_certificates: [{ID1}]\n  client_certificate: {ID1}\n- url: http://b.example\n  ca_certificates: [{ID2}]\nupstreams:\n- name: u\n  client_certificate: {{id: {ID2}}}\n"),
    );
    let cfg = crate::config::load_str(&yaml, "t.yaml", &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let mut warnings = Vec::new();
    let errors: Vec<String> =
        config::compile(&cfg, &mut warnings).unwrap_err().into_iter().map(|e| e.message).collect();
    assert_eq!(errors.len(), 6, "{errors:#?}");
    assert!(errors[0].starts_with("certificate #2: the key does not belong to the certificate"), "{errors:#?}");
    assert!(errors[1].starts_with("SNI 'a.example' is served by two certificates (first at "), "{errors:#?}");
    assert_eq!(errors[2], "CA certificate 7b3a1b2c-0d4e-4f5a-8b6c-7d8e9f0a1b2c: no PEM certificate found");
    // An upstream's, whether or not a service uses it.
    assert_eq!(errors[3], format!("no certificate with id '{ID2}'"));
    assert_eq!(errors[4], format!("no CA certificate with id '{ID1}'"));
    assert_eq!(errors[5], format!("no certificate with id '{ID1}'"));
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].message, "'ca_certificates' and 'client_certificate' have no effect on an http service");
}

#[test]
fn an_sni_given_twice_in_another_spelling_is_still_a_duplicate() {
    let (cert, key) = self_signed(&["a.example"]);
    let yaml = deck(&[(&cert, &key, &["a.example"], None), (&cert, &key, &["A.Example."], None)], &[], "");
    let cfg = crate::config::load_str(&yaml, "t.yaml", &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let errors: Vec<String> =
        config::compile(&cfg, &mut Vec::new()).unwrap_err().into_iter().map(|e| e.message).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with("SNI 'a.example.' is served by two certificates (first at "), "{errors:#?}");
}

#[test]
fn https_targets_with_one_setup_share_an_id_within_a_compile_and_across_a_reload() {
    let yaml = "_format_version: \"3.0\"\nservices:\n- name: a\n  url: https://127.0.0.1:9443\n- name: b\n  url: https://127.0.0.1:9443/other\n- name: c\n  url: https://127.0.0.1:9443\n  tls_verify: false\n";
    let build = || {
        let cfg = crate::config::load_str(yaml, "t.yaml", &|_| None).unwrap_or_else(|e| panic!("{e}"));
        crate::snapshot::Snapshot::build(cfg, &mut crate::snapshot::Resolved::new()).unwrap_or_else(|e| panic!("{e:?}"))
    };
    let id = |s: &crate::snapshot::Snapshot, i: usize| s.targets[i].peers[0].tls.as_ref().unwrap().id;
    let first = build();
    assert_eq!(id(&first, 0), id(&first, 1), "same setup, one target");
    assert_ne!(id(&first, 0), id(&first, 2), "tls_verify differs");
    let mut second = build();
    assert_ne!(id(&second, 0), id(&first, 0), "a fresh compile makes new targets");
    second.carry_over(&first);
    assert_eq!((id(&second, 0), id(&second, 2)), (id(&first, 0), id(&first, 2)), "a reload keeps them");
}

/// A verifier that trusts `ca` and offers only `schemes` in the client hello: a client
/// that can verify only some key types.
#[derive(Debug)]
struct Offering {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for Offering {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

fn client_offering(ca_pem: &str, schemes: Option<Vec<SignatureScheme>>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(certificates(ca_pem.as_bytes()).unwrap().remove(0)).unwrap();
    let inner =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build().unwrap();
    let schemes = schemes.unwrap_or_else(|| inner.supported_verify_schemes());
    let c = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Offering { inner, schemes }))
        .with_no_client_auth();
    Arc::new(c)
}

impl Ca {
    /// (certificate PEM, key PEM) for `names`, with a key made for `alg`.
    fn issue_for(&self, names: &[&str], alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
        let key = KeyPair::generate_for(alg).unwrap();
        let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A decK document with one certificate for `a.example` and an alternate pair
/// (`key_alt` left out when `None`).
fn alt_deck(cert: &str, key: &str, cert_alt: &str, key_alt: Option<&str>) -> String {
    let block = |pem: &str| pem.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let mut doc = format!(
        "_format_version: \"3.0\"\ncertificates:\n- snis: [a.example]\n  cert: |\n{}  key: |\n{}  cert_alt: |\n{}",
        block(cert),
        block(key),
        block(cert_alt)
    );
    if let Some(k) = key_alt {
        doc.push_str(&format!("  key_alt: |\n{}", block(k)));
    }
    doc
}

#[test]
fn an_alternate_certificate_serves_clients_that_cannot_take_the_first() {
    let ca = Ca::new();
    let (ec_cert, ec_key) = ca.issue(&["a.example"]);
    let (ed_cert, ed_key) = ca.issue_for(&["a.example"], &rcgen::PKCS_ED25519);
    let yaml = alt_deck(&ec_cert, &ec_key, &ed_cert, Some(&ed_key));
    let cfg = crate::config::load_str(&yaml, "t.yaml", &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let out = config::compile(&cfg, &mut Vec::new()).unwrap_or_else(|e| panic!("{e:?}"));
    let server = server_config(out.server_certs, &Resumption::new().unwrap()).unwrap();
    let der = |pem: &str| certificates(pem.as_bytes()).unwrap().remove(0).to_vec();
    // A client that verifies everything gets the main one (ECDSA, offered first).
    let (got, _, _) = handshake(server.clone(), client_offering(&ca.pem, None), "a.example").unwrap();
    assert_eq!(got, der(&ec_cert));
    // One that only takes Ed25519 gets the alternate.
    let (got, _, _) =
        handshake(server.clone(), client_offering(&ca.pem, Some(vec![SignatureScheme::ED25519])), "a.example").unwrap();
    assert_eq!(got, der(&ed_cert));
    // A client preferring Ed25519 but taking ECDSA too: its first choice decides.
    let both = vec![SignatureScheme::ED25519, SignatureScheme::ECDSA_NISTP256_SHA256];
    let (got, _, _) = handshake(server, client_offering(&ca.pem, Some(both)), "a.example").unwrap();
    assert_eq!(got, der(&ed_cert));
}

#[test]
fn an_alternate_pair_must_be_whole_and_of_another_key_type() {
    let ca = Ca::new();
    let (c1, k1) = ca.issue(&["a.example"]);
    let (c2, k2) = ca.issue(&["a.example"]);
    let same = alt_deck(&c1, &k1, &c2, Some(&k2));
    let cfg = crate::config::load_str(&same, "t.yaml", &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let e = config::compile(&cfg, &mut Vec::new()).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(e[0].message.contains("must have keys of different types"), "{}", e[0].message);
    let half = alt_deck(&c1, &k1, &c2, None);
    let e = crate::config::load_str(&half, "t.yaml", &|_| None).unwrap_err();
    assert!(e.0.iter().any(|e| e.message == "a certificate needs both 'cert_alt' and 'key_alt', or neither"), "{e}");
}

/// A client trusting `ca_pem` that presents a fresh self-signed certificate; with the
/// certificate's DER.
fn client_with_cert(
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (Arc<ClientConfig>, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["caller.example".to_string()]).unwrap().self_signed(&key).unwrap();
    let der = cert.der().to_vec();
    let mut roots = RootCertStore::empty();
    roots.add(certificates(ca_pem.as_bytes()).unwrap().remove(0)).unwrap();
    let c = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from(der.clone())],
            PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    (Arc::new(c), der)
}

#[test]
fn a_listener_asking_for_client_certificates_notes_each_handshakes_own() {
    let ca = Ca::new();
    let (cert, key) = ca.issue(&["api.example"]);
    let mut certs = ServerCerts::default();
    certs.set_default(certified_key(cert.as_bytes(), key.as_bytes()).unwrap());
    let tls = ServerTls::new(certs.clone(), &Resumption::new().unwrap(), true).unwrap();
    assert!(tls.asks_client_cert());
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let (client, der) = client_with_cert(&ca.pem, &[version]);
        let (server, slot) = tls.for_handshake();
        // Not resumed: a resumed session would skip the certificate.
        assert_eq!(server.send_tls13_tickets, 0);
        assert!(!server.session_storage.can_cache());
        let slot = slot.expect("a slot per handshake");
        assert_eq!(slot.thumbprint(), None, "nothing before the handshake");
        handshake(server, client, "api.example").unwrap();
        let want = ring::digest::digest(&ring::digest::SHA256, &der);
        assert_eq!(slot.thumbprint().as_ref().map(|t| &t[..]), Some(want.as_ref()), "{version:?}");

        // Another handshake has a slot of its own; a client without a certificate
        // connects all the same, and its slot stays empty.
        let (server, other) = tls.for_handshake();
        handshake(server, client_trusting(&ca.pem, &[version]), "api.example").unwrap();
        assert_eq!(other.unwrap().thumbprint(), None);
        assert!(slot.thumbprint().is_some(), "the first slot keeps its certificate");
    }

    // Not asking: one shared config, no slot, and a client certificate is not asked for.
    let plain = ServerTls::new(certs, &Resumption::new().unwrap(), false).unwrap();
    assert!(!plain.asks_client_cert());
    let (a, slot) = plain.for_handshake();
    assert!(slot.is_none());
    assert!(Arc::ptr_eq(&a, &plain.for_handshake().0));
    let (client, _) = client_with_cert(&ca.pem, &[&rustls::version::TLS13]);
    handshake(a, client, "api.example").unwrap();
}
