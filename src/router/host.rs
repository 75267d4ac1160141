//! Host matching: splitting a `Host` value into name and port, and the three kinds of
//! route host (exact, leading `*` wildcard, trailing `*` wildcard).
//!
//! Comparison is ASCII case-insensitive in place (RFC 9110 §4.2.3: the host is
//! case-insensitive), so the hot path never builds a lower-cased copy.

/// A host name from a `Host` header (or route), without brackets or port.
pub(crate) struct HostPort<'a> {
    pub name: &'a [u8],
    /// The port written after the name, if any.
    pub port: Option<u16>,
}

fn parse_port(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, &d| Some(acc * 10 + u32::from(d - b'0'))).and_then(|v| u16::try_from(v).ok())
}

/// Splits `host[:port]`, `[v6]` or `[v6]:port`. An empty port (`example.com:`) counts
/// as none. A value that does not parse (a non-numeric port, a bare IPv6 address with
/// several colons) is returned whole as the name, so it only equals a route host
/// written the same way.
pub(crate) fn split(value: &[u8]) -> HostPort<'_> {
    let whole = HostPort { name: value, port: None };
    if let Some(inner) = value.strip_prefix(b"[") {
        let Some(close) = inner.iter().position(|&b| b == b']') else {
            return whole;
        };
        let name = &inner[..close];
        return match &inner[close + 1..] {
            [] | [b':'] => HostPort { name, port: None },
            [b':', digits @ ..] => match parse_port(digits) {
                Some(port) => HostPort { name, port: Some(port) },
                None => whole,
            },
            _ => whole,
        };
    }
    let first_colon = value.iter().position(|&b| b == b':');
    match first_colon.map(|i| (i, value[i + 1..].contains(&b':'))) {
        Some((i, false)) => {
            let digits = &value[i + 1..];
            if digits.is_empty() {
                return HostPort { name: &value[..i], port: None };
            }
            match parse_port(digits) {
                Some(port) => HostPort { name: &value[..i], port: Some(port) },
                None => whole,
            }
        }
        _ => whole,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostKind {
    /// `api.example.com`
    Exact,
    /// `*.example.com`: stored as `.example.com`; the request host must end with it and
    /// have at least one byte before it, so one or more labels match.
    Suffix,
    /// `example.*`: stored as `example.`; the request host must start with it and have
    /// at least one byte after it.
    Prefix,
}

#[derive(Debug, Clone)]
pub(crate) struct HostPattern {
    pub kind: HostKind,
    /// ASCII lower-case.
    pub name: Box<[u8]>,
    pub port: Option<u16>,
}

impl HostPattern {
    /// Compiles one entry of a route's `hosts`. Errors name what is wrong.
    pub fn parse(host: &str) -> Result<HostPattern, String> {
        let lower = host.to_ascii_lowercase();
        let HostPort { name, port } = split(lower.as_bytes());
        // `split` hands back the value whole when it cannot parse the port part.
        let bracketed = lower.starts_with('[');
        let unparsed = if bracketed {
            name.len() == lower.len()
        } else {
            port.is_none() && lower.matches(':').count() == 1 && !lower.ends_with(':')
        };
        if unparsed {
            return Err(format!("host `{host}` has an invalid port"));
        }
        let (kind, name) = if let Some(rest) = name.strip_prefix(b"*") {
            (HostKind::Suffix, rest)
        } else if let Some(rest) = name.strip_suffix(b"*") {
            (HostKind::Prefix, rest)
        } else {
            (HostKind::Exact, name)
        };
        if name.is_empty() || name.contains(&b'*') {
            return Err(format!("host `{host}`: a wildcard must be the whole first or last label"));
        }
        Ok(HostPattern { kind, name: name.into(), port })
    }

    pub fn is_wildcard(&self) -> bool {
        self.kind != HostKind::Exact
    }

    /// `name` is the request host without port; `port` the request's effective port
    /// (the Host header's, else the port the connection arrived on).
    pub fn matches(&self, name: &[u8], port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let pat = &*self.name;
        match self.kind {
            HostKind::Exact => name.eq_ignore_ascii_case(pat),
            HostKind::Suffix => name.len() > pat.len() && name[name.len() - pat.len()..].eq_ignore_ascii_case(pat),
            HostKind::Prefix => name.len() > pat.len() && name[..pat.len()].eq_ignore_ascii_case(pat),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(v: &str) -> (String, Option<u16>) {
        let hp = split(v.as_bytes());
        (String::from_utf8(hp.name.to_vec()).unwrap(), hp.port)
    }

    #[test]
    fn host_values_split_into_name_and_port() {
        assert_eq!(sp("example.com"), ("example.com".into(), None));
        assert_eq!(sp("example.com:8000"), ("example.com".into(), Some(8000)));
        assert_eq!(sp("example.com:"), ("example.com".into(), None));
        assert_eq!(sp("[::1]:8000"), ("::1".into(), Some(8000)));
        assert_eq!(sp("[::1]"), ("::1".into(), None));
        assert_eq!(sp("::1"), ("::1".into(), None));
        assert_eq!(sp("a:1:2"), ("a:1:2".into(), None));
        assert_eq!(sp(":80"), ("".into(), Some(80)));
    }

    #[test]
    fn unparsable_ports_keep_the_value_whole() {
        assert_eq!(sp("example.com:http"), ("example.com:http".into(), None));
        assert_eq!(sp("example.com:70000"), ("example.com:70000".into(), None));
        assert_eq!(sp("[::1]x"), ("[::1]x".into(), None));
    }

    #[test]
    fn route_hosts_parse_into_kinds() {
        let p = HostPattern::parse("*.Example.com:8443").unwrap();
        assert_eq!((p.kind, &*p.name, p.port), (HostKind::Suffix, &b".example.com"[..], Some(8443)));
        let p = HostPattern::parse("example.*").unwrap();
        assert_eq!((p.kind, &*p.name, p.port), (HostKind::Prefix, &b"example."[..], None));
        assert!(HostPattern::parse("a.*.com").is_err());
        assert!(HostPattern::parse("*").is_err());
        assert!(HostPattern::parse("example.com:http").is_err());
    }
}
