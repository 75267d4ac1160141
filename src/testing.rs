//! Helpers shared by the unit tests of several modules.

/// xorshift64*: deterministic, dependency-free randomness for the property tests, so
/// their cases are the same on every run.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (which must not be 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True once in `one_in` times, on average.
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    /// One element of `from` (which must not be empty).
    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }

    /// `len` bytes, each from `from`, or any byte at all one time in eight.
    pub fn bytes(&mut self, len: usize, from: &[u8]) -> Vec<u8> {
        (0..len).map(|_| if self.chance(8) { self.next() as u8 } else { self.pick(from) }).collect()
    }
}

/// Bytes that end, split or smuggle a field when they land in the wrong place: line ends,
/// NUL, DEL, obs-text, whitespace and the separators of fields and lists.
pub(crate) const NASTY: &[u8] = b"\r\n\0\x7f\x80\xa0\xff \t:,;";

/// A message head as lines without their CRLF, the start line first, so that a test can
/// mutate it line by line before [`join_head`] writes it out.
pub(crate) type Lines = Vec<Vec<u8>>;

/// `lines`, each ended by CRLF, then the blank line.
pub(crate) fn join_head(lines: &Lines) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A header field the generators use: its name, values a peer may send, and values it
/// must not.
pub(crate) struct Field {
    pub name: &'static str,
    pub valid: &'static [&'static [u8]],
    pub invalid: &'static [&'static [u8]],
}

/// The request fields that decide framing, routing and forwarding, plus ordinary ones.
pub(crate) const REQUEST_FIELDS: &[Field] = &[
    Field {
        name: "host",
        valid: &[b"api.example.com", b"a", b"[::1]:8000", b"a:80", b"", b"10.0.0.1:8080"],
        invalid: &[b"a b", b"a/b", b"u@a", b"a:80x", b"[::1", b"a:123456", b"a\\b"],
    },
    Field {
        name: "content-length",
        valid: &[b"0", b"3", b"003", b"18446744073709551615"],
        invalid: &[b"18446744073709551616", b"+3", b"-1", b"3 3", b"3,3", b"0x3", b""],
    },
    Field {
        name: "transfer-encoding",
        valid: &[b"chunked", b"CHUNKED", b"gzip, chunked", b"x-gzip ,chunked", b"gzip,,chunked"],
        invalid: &[
            b"gzip",
            b"chunked, gzip",
            b"chunked, chunked",
            b"identity",
            b",",
            b"",
            b"chunked;q=1",
            b"chunked\x80",
        ],
    },
    Field {
        name: "connection",
        valid: &[
            b"close",
            b"keep-alive",
            b"Keep-Alive, X-Hop",
            b"upgrade",
            b"x-hop, close",
            b"",
            b"te, content-length",
        ],
        invalid: &[b"a b", b"x/y", b"close;q"],
    },
    Field {
        name: "expect",
        valid: &[b"100-continue", b"100-Continue"],
        invalid: &[b"", b"coffee", b"100-continue, x"],
    },
    Field { name: "upgrade", valid: &[b"h2c", b"websocket", b""], invalid: &[] },
    Field { name: "te", valid: &[b"trailers"], invalid: &[] },
    Field { name: "keep-alive", valid: &[b"timeout=5"], invalid: &[] },
    Field { name: "proxy-connection", valid: &[b"keep-alive"], invalid: &[] },
    Field { name: "x-forwarded-for", valid: &[b"203.0.113.1", b"", b"1.1.1.1, 2.2.2.2"], invalid: &[] },
    Field { name: "x-real-ip", valid: &[b"6.6.6.6"], invalid: &[] },
    Field { name: "x-forwarded-host", valid: &[b"evil.example"], invalid: &[] },
    Field { name: "x-hop", valid: &[b"1"], invalid: &[] },
    Field { name: "authorization", valid: &[b"Basic YTpi", b"Bearer t.t.t"], invalid: &[] },
    Field { name: "grant-type", valid: &[b"client_credentials", b"password"], invalid: &[] },
    Field { name: "x-access-token", valid: &[b"t.t.t"], invalid: &[] },
    Field { name: "cookie", valid: &[b"a=1; b=2", b"token=x"], invalid: &[] },
    Field { name: "x-consumer-id", valid: &[b"admin"], invalid: &[] },
    Field { name: "accept", valid: &[b"*/*", b"text/html;q=0.9, \x80\xff"], invalid: &[] },
];

/// The response fields that decide framing and the connection, plus ordinary ones.
pub(crate) const RESPONSE_FIELDS: &[Field] = &[
    Field {
        name: "content-length",
        valid: &[b"0", b"2", b"002", b"18446744073709551615"],
        invalid: &[b"18446744073709551616", b"+2", b"-1", b"2 2", b"2,2", b""],
    },
    Field {
        name: "transfer-encoding",
        valid: &[b"chunked", b"Chunked", b"gzip, chunked", b"gzip", b"", b"br"],
        invalid: &[b"chunked, gzip", b"chunked, chunked", b"chunked;q=1", b"gz ip"],
    },
    Field { name: "connection", valid: &[b"close", b"keep-alive", b"X-Hop", b"", b"x-hop, close, te"], invalid: &[] },
    Field { name: "keep-alive", valid: &[b"timeout=5"], invalid: &[] },
    Field { name: "proxy-connection", valid: &[b"close"], invalid: &[] },
    Field { name: "upgrade", valid: &[b"h2c"], invalid: &[] },
    Field { name: "te", valid: &[b"trailers"], invalid: &[] },
    Field { name: "x-hop", valid: &[b"1"], invalid: &[] },
    Field { name: "set-cookie", valid: &[b"s=1; Path=/"], invalid: &[] },
    Field { name: "date", valid: &[b"Mon, 01 Jan 2024 00:00:00 GMT"], invalid: &[] },
];

/// `name` with each letter's case chosen at random.
fn random_case(rng: &mut Rng, name: &str) -> Vec<u8> {
    name.bytes().map(|c| if rng.chance(3) { c.to_ascii_uppercase() } else { c }).collect()
}

/// A `Name: value` line of one of `fields`; the value invalid one time in `invalid_one_in`.
pub(crate) fn field_line(rng: &mut Rng, fields: &[Field], invalid_one_in: usize) -> Vec<u8> {
    let f = &fields[rng.below(fields.len())];
    let value =
        if !f.invalid.is_empty() && rng.chance(invalid_one_in) { rng.pick(f.invalid) } else { rng.pick(f.valid) };
    let mut line = random_case(rng, f.name);
    line.extend_from_slice(if rng.chance(6) { b":" } else { b": " });
    line.extend_from_slice(value);
    if rng.chance(8) {
        line.push(rng.pick(b" \t"));
    }
    line
}

/// A request head that usually parses: a request line, `Host` for HTTP/1.1, and a few
/// fields from [`REQUEST_FIELDS`].
pub(crate) fn request_lines(rng: &mut Rng) -> Lines {
    let method = if rng.chance(40) {
        rng.pick(&["CONNECT", "get", "G@T", ""])
    } else {
        rng.pick(&["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH"])
    };
    let target: &[u8] = if rng.chance(20) {
        rng.pick(&[b"*", b"ftp://a/", b"a.example:443", b"http://", b"http://u@a/", b"//a", b""])
    } else {
        rng.pick(&[
            b"/",
            b"/orders/7?x=1",
            b"/a/b/../c",
            b"/%0d%0a%00",
            b"/a?b=c&d",
            b"/\x80\xff?\x80",
            b"http://api.example.com/p?q",
            b"HTTPS://a:8443",
            b"http://a.example?x",
            b"http://[::1]:80/v",
        ])
    };
    let version = if rng.chance(30) {
        rng.pick(&["HTTP/2.0", "HTTP/1.2", "http/1.1", "HTTP/1.1x", "HTTP/1"])
    } else if rng.chance(5) {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    let mut start = format!("{method} ").into_bytes();
    start.extend_from_slice(target);
    start.extend_from_slice(format!(" {version}").as_bytes());
    let mut lines = vec![start];
    if version != "HTTP/1.0" || rng.chance(2) {
        let mut host = if rng.chance(4) { b"HOST: ".to_vec() } else { b"Host: ".to_vec() };
        host.extend_from_slice(rng.pick(REQUEST_FIELDS[0].valid));
        lines.push(host);
    }
    for _ in 0..rng.below(6) {
        let at = 1 + rng.below(lines.len());
        lines.insert(at, field_line(rng, REQUEST_FIELDS, 6));
    }
    lines
}

/// A response head that usually parses: a status line and a few fields from
/// [`RESPONSE_FIELDS`].
pub(crate) fn response_lines(rng: &mut Rng) -> Lines {
    let version = if rng.chance(5) { "HTTP/1.0" } else { "HTTP/1.1" };
    let status = if rng.chance(6) {
        rng.pick(&["100", "101", "103", "199", "099", "000", "600", "999"])
    } else {
        rng.pick(&["200", "201", "204", "304", "404", "500", "502"])
    };
    let reason: &[u8] = rng.pick(&[b"OK", b"", b"Not Found", b"with\tHT and \x80\xff", b" "]);
    let start = if rng.chance(30) {
        rng.pick(&[
            "HTTP/1.1 20 OK",
            "HTTP/1.1 2000 OK",
            "HTTP/1.1  200 OK",
            "HTTP/2 200 OK",
            "HTTP/1.1 200",
            "ICY 200 OK",
        ])
        .as_bytes()
        .to_vec()
    } else {
        let mut start = format!("{version} {status} ").into_bytes();
        start.extend_from_slice(reason);
        start
    };
    let mut lines = vec![start];
    for _ in 0..rng.below(6) {
        let at = 1 + rng.below(lines.len());
        lines.insert(at, field_line(rng, RESPONSE_FIELDS, 6));
    }
    lines
}

/// One structural change to a head's header lines (never the start line's position):
/// duplicated, reordered, dropped, added or re-valued fields, over-long names and values,
/// many fields, folded lines, a blank line in the middle, whitespace around the name.
pub(crate) fn mutate_lines(rng: &mut Rng, lines: &mut Lines, fields: &[Field]) {
    let header = |rng: &mut Rng, lines: &Lines| 1 + rng.below(lines.len() - 1);
    match rng.below(11) {
        0 if lines.len() > 1 => {
            let line = lines[header(rng, lines)].clone();
            let at = 1 + rng.below(lines.len());
            lines.insert(at, line);
        }
        1 if lines.len() > 2 => {
            let (a, b) = (header(rng, lines), header(rng, lines));
            lines.swap(a, b);
        }
        2 if lines.len() > 1 => {
            let at = header(rng, lines);
            lines.remove(at);
        }
        3 if lines.len() > 1 => {
            // Same name, another value.
            let at = header(rng, lines);
            let name_end = lines[at].iter().position(|&c| c == b':').unwrap_or(lines[at].len());
            let mut line = lines[at][..name_end].to_vec();
            let f = fields.iter().find(|f| f.name.as_bytes().eq_ignore_ascii_case(&line));
            let value = match f {
                Some(f) if !f.invalid.is_empty() && rng.chance(2) => rng.pick(f.invalid),
                Some(f) => rng.pick(f.valid),
                None => b"v",
            };
            line.extend_from_slice(b": ");
            line.extend_from_slice(value);
            lines[at] = line;
        }
        4 => {
            let mut line = if rng.chance(2) {
                let mut name = vec![b'x'; 1 + rng.below(6000)];
                name.extend_from_slice(b": v");
                name
            } else {
                let mut line = b"X-Long: ".to_vec();
                line.resize(line.len() + 1 + rng.below(40_000), b'v');
                line
            };
            if rng.chance(4) {
                line[5] = rng.pick(NASTY);
            }
            let at = 1 + rng.below(lines.len());
            lines.insert(at, line);
        }
        5 => {
            let at = 1 + rng.below(lines.len());
            for i in 0..20 + rng.below(280) {
                lines.insert(at, format!("X-Many-{i}: {i}").into_bytes());
            }
        }
        6 => {
            // obs-fold: a line that continues the one before it.
            let at = 1 + rng.below(lines.len());
            lines.insert(at, if rng.chance(2) { b" folded".to_vec() } else { b"\tContent-Length: 5".to_vec() });
        }
        7 if lines.len() > 1 => {
            // The head ends early; the rest follows as body bytes.
            let at = header(rng, lines);
            lines.insert(at, Vec::new());
        }
        8 if lines.len() > 1 => {
            // Whitespace before the colon or the name.
            let at = header(rng, lines);
            let line = &mut lines[at];
            match line.iter().position(|&c| c == b':') {
                Some(colon) if rng.chance(2) => line.insert(colon, rng.pick(b" \t")),
                _ => line.insert(0, rng.pick(b" \t")),
            }
        }
        _ => {
            let at = 1 + rng.below(lines.len());
            lines.insert(at, field_line(rng, fields, 2));
        }
    }
}

/// One byte-level change: a byte overwritten (by a [`NASTY`] one or any), inserted,
/// deleted, or a run of bytes copied elsewhere.
pub(crate) fn mutate_bytes(rng: &mut Rng, raw: &mut Vec<u8>) {
    if raw.is_empty() {
        raw.push(rng.pick(NASTY));
        return;
    }
    let at = rng.below(raw.len());
    match rng.below(5) {
        0 => raw[at] = rng.next() as u8,
        1 => raw[at] = rng.pick(NASTY),
        2 => raw.insert(at, rng.pick(NASTY)),
        3 => {
            raw.remove(at);
        }
        _ => {
            let end = (at + 1 + rng.below(40)).min(raw.len());
            let run = raw[at..end].to_vec();
            let to = rng.below(raw.len() + 1);
            raw.splice(to..to, run);
        }
    }
}

/// A head from `lines` with a few structural and byte-level mutations (none, one time in
/// five, so that valid heads are well represented).
pub(crate) fn mutated(rng: &mut Rng, mut lines: Lines, fields: &[Field]) -> Vec<u8> {
    if rng.chance(5) {
        return join_head(&lines);
    }
    for _ in 0..rng.below(3) {
        mutate_lines(rng, &mut lines, fields);
    }
    let mut raw = join_head(&lines);
    if rng.chance(2) {
        for _ in 0..1 + rng.below(3) {
            mutate_bytes(rng, &mut raw);
        }
    }
    raw
}

/// The top-level members of a JSON object in document order, duplicates kept, read by
/// serde_json (an oracle independent of simd-json and of `hide`'s scanner); `None` when
/// `body` is not one JSON object.
pub(crate) fn json_members(body: &[u8]) -> Option<Vec<(String, serde_json::Value)>> {
    struct Members(Vec<(String, serde_json::Value)>);
    struct MembersVisitor;
    impl<'de> serde::de::Visitor<'de> for MembersVisitor {
        type Value = Members;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
            let mut members = Vec::new();
            while let Some(member) = map.next_entry::<String, serde_json::Value>()? {
                members.push(member);
            }
            Ok(Members(members))
        }
    }
    impl<'de> serde::Deserialize<'de> for Members {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Members, D::Error> {
            d.deserialize_map(MembersVisitor)
        }
    }
    // (serde_json refuses nesting past 128 levels, so bodies deeper than that are `None`.)
    let mut de = serde_json::Deserializer::from_slice(body);
    let members: Members = serde::Deserialize::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(members.0)
}

// ---- credentials: form and JSON bodies ----

/// `bytes` form-encoded the many ways clients do it: unreserved bytes as they are or
/// escaped, a space as `+` or `%20`, hex in either case; the bytes that delimit or
/// escape (`&`, `=`, `+`, `%`, `#`) and anything outside printable ASCII always escaped.
pub(crate) fn form_encoded(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in bytes {
        let plain = b.is_ascii_graphic() && !b"&=+%#".contains(&b);
        if b == b' ' && rng.chance(2) {
            out.push(b'+');
        } else if plain && !rng.chance(4) {
            out.push(b);
        } else {
            let hex = format!("%{b:02X}");
            out.extend(hex.bytes().map(|c| if rng.chance(2) { c.to_ascii_lowercase() } else { c }));
        }
    }
    out
}

/// A form-decoding written apart from `FormDecode`: `+` is a space, `%` and two hex
/// digits a byte, anything else itself.
pub(crate) fn form_decoded(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len() && hex(raw[i + 1]).is_some() && hex(raw[i + 2]).is_some() => {
                out.push(hex(raw[i + 1]).unwrap() << 4 | hex(raw[i + 2]).unwrap());
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// `s` as a JSON string, each character written plainly or escaped (`\uXXXX`, surrogate
/// pairs past the BMP, or the short escapes), as different clients write it.
pub(crate) fn json_string(rng: &mut Rng, s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        let must = c == '"' || c == '\\' || (c as u32) < 0x20;
        if must || rng.chance(5) {
            match c {
                '"' if rng.chance(2) => out.push_str("\\\""),
                '\\' if rng.chance(2) => out.push_str("\\\\"),
                '\n' if rng.chance(2) => out.push_str("\\n"),
                '/' if rng.chance(2) => out.push_str("\\/"),
                c => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{:04x}", u));
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// A string of characters that matter to JSON and to the credential buffer.
pub(crate) fn random_text(rng: &mut Rng, max_len: usize) -> String {
    let chars = ['a', 'Z', '0', ':', '"', '\\', '/', '\n', '\0', '\u{7f}', 'é', '\u{2028}', '😀', ' ', '{', ']'];
    (0..rng.below(max_len + 1)).map(|_| rng.pick(&chars)).collect()
}

/// A JSON object carrying `id` and `secret` among other members, in random order, with
/// later (ignored) repeats, and whitespace where JSON allows it.
pub(crate) fn credential_json(rng: &mut Rng, id: &str, secret: &str) -> String {
    let mut members = vec![
        format!("{}:{}", json_string(rng, "client_id"), json_string(rng, id)),
        format!("{}:{}", json_string(rng, "client_secret"), json_string(rng, secret)),
    ];
    if rng.chance(2) {
        members.push(
            rng.pick(&[r#""grant_type":"client_credentials""#, r#""grant_type":"""#, r#""grant_type":7"#]).into(),
        );
    }
    for _ in 0..rng.below(4) {
        let other =
            rng.pick(&[r#""a":1"#, r#""n":[1,{"client_id":"x"},-2.5e3]"#, r#""o":{}"#, r#""t":true"#, r#""z":null"#]);
        members.push(other.into());
    }
    for i in 1..members.len() {
        members.swap(i, rng.below(i + 1));
    }
    members.push(rng.pick(&[r#""client_id":"later""#, r#""client_secret":5"#]).into());
    let ws = |rng: &mut Rng| rng.pick(&["", " ", "\n\t "]);
    let mut body = format!("{}{{", ws(rng));
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(ws(rng));
        body.push_str(m);
        body.push_str(ws(rng));
    }
    body.push('}');
    body.push_str(ws(rng));
    body
}

/// One of the changes a JSON body may suffer: a byte changed, added or lost, or a
/// member's value wrapped in arrays, a few levels deep or thousands.
pub(crate) fn mutate_json(rng: &mut Rng, body: &mut Vec<u8>) {
    if rng.chance(4) {
        // Just after a colon: the start of a member's value.
        let colons: Vec<usize> = body.iter().enumerate().filter(|(_, &c)| c == b':').map(|(i, _)| i + 1).collect();
        let Some(&at) = colons.get(rng.below(colons.len().max(1))) else { return };
        let levels = if rng.chance(8) { 20_000 } else { rng.below(100) };
        let end = body[at..].iter().position(|&c| c == b',' || c == b'}').map_or(body.len(), |e| at + e);
        body.splice(end..end, std::iter::repeat_n(b']', levels));
        body.splice(at..at, std::iter::repeat_n(b'[', levels));
    } else if rng.chance(3) {
        let at = rng.below(body.len() + 1);
        body.insert(at, rng.pick(b"{}[]\",:\\u0-e"));
    } else {
        mutate_bytes(rng, body);
    }
}

/// Number texts at the edges of what JSON readers map to integers and floats.
pub(crate) const EDGE_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "0.5",
    "-0.5",
    "1.0",
    "1e3",
    "1E+2",
    "2.5e-3",
    "-1e-300",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345678901234567890",
    "1e300",
    "-1e300",
    "1767225600.25",
];

/// The integer texts of [`EDGE_NUMBERS`] outside `i64::MIN..=u64::MAX`. simd-json refuses
/// a document holding one (RFC 8259 §6 lets a reader limit the range of numbers), where
/// serde_json reads it as a float.
pub(crate) const OUT_OF_RANGE_INTEGERS: &[&str] =
    &["-9223372036854775809", "18446744073709551616", "123456789012345678901234567890"];

/// Whether text made by [`json_text`] holds one of [`OUT_OF_RANGE_INTEGERS`] (no string
/// it makes contains their digits).
pub(crate) fn has_out_of_range_integer(text: &str) -> bool {
    OUT_OF_RANGE_INTEGERS.iter().any(|n| text.contains(n))
}

/// JSON string texts (with their quotes): control characters, escapes, non-ASCII.
pub(crate) const EDGE_STRINGS: &[&str] = &[
    r#""""#,
    r#"" ""#,
    r#""a""#,
    r#""openid email""#,
    r#""a\r\nX-Injected: 1""#,
    r#""nul\u0000byte""#,
    r#""tab\tok""#,
    r#""del\u007f""#,
    r#""\u00e9t\u00e9""#,
    "\"\u{e9}\u{1f600}\"",
    r#""line\u2028sep""#,
    r#""quote\"back\\slash""#,
    r#""  padded  ""#,
    r#""x\fy""#,
];

/// A random JSON value as text, nested at most `depth` levels: edge numbers and strings,
/// arrays and objects (whose keys may repeat).
pub(crate) fn json_text(rng: &mut Rng, depth: usize) -> String {
    match rng.below(if depth == 0 { 5 } else { 7 }) {
        0 => rng.pick(&["null", "true", "false"]).to_string(),
        1 | 2 => rng.pick(EDGE_NUMBERS).to_string(),
        3 => (rng.next() as i64 >> rng.below(64)).to_string(),
        4 => rng.pick(EDGE_STRINGS).to_string(),
        5 => {
            let items: Vec<String> = (0..rng.below(4)).map(|_| json_text(rng, depth - 1)).collect();
            format!("[{}]", items.join(","))
        }
        _ => {
            let members: Vec<String> = (0..rng.below(4))
                .map(|_| format!(r#""{}":{}"#, rng.pick(&["a", "b", "roles", "id"]), json_text(rng, depth - 1)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
    }
}

/// Whether `mark` is a position in `text`: on one of its lines, at one of that line's
/// characters or just past the last one (where an error at the end of a line points).
pub fn mark_inside(text: &str, mark: crate::config::Mark) -> bool {
    let Some(line) = text.split('\n').nth((mark.line as usize).wrapping_sub(1)) else { return false };
    mark.line >= 1 && mark.column >= 1 && mark.column as usize <= line.chars().count() + 1
}
