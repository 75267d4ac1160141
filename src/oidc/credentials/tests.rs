use super::*;

/// Id and secret, copied out of the buffer so results compare easily.
type Owned = (Vec<u8>, Vec<u8>);
type Found = Result<Option<Owned>, CredentialsError>;

/// `Basic` + base64 of `raw`, as a well-behaved client sends it.
fn basic(raw: &str) -> Vec<u8> {
    let mut v = b"Basic ".to_vec();
    v.extend_from_slice(STANDARD.encode(raw).as_bytes());
    v
}

fn header(value: &[u8]) -> Found {
    let mut buf = CredentialBuf::new();
    Ok(from_authorization(value, &mut buf)?.map(|c| {
        assert_eq!(c.location, Location::Header);
        (c.id.to_vec(), c.secret.to_vec())
    }))
}

fn query(q: &str) -> Found {
    let mut buf = CredentialBuf::new();
    Ok(from_query(q.as_bytes(), &mut buf)?.map(|c| {
        assert_eq!(c.location, Location::Query);
        (c.id.to_vec(), c.secret.to_vec())
    }))
}

fn body(content_type: &str, b: &str) -> Found {
    let mut buf = CredentialBuf::new();
    Ok(from_body(content_type.as_bytes(), b.as_bytes(), &mut buf)?.map(|c| {
        assert_eq!(c.location, Location::Body);
        (c.id.to_vec(), c.secret.to_vec())
    }))
}

fn pair(id: &str, secret: &str) -> Option<Owned> {
    Some((id.as_bytes().to_vec(), secret.as_bytes().to_vec()))
}

// ---- header ----

#[test]
fn basic_header_well_formed_yields_id_and_secret() {
    assert_eq!(header(&basic("my-client:my-secret")), Ok(pair("my-client", "my-secret")));
}

#[test]
fn basic_header_scheme_any_case_is_accepted() {
    for scheme in ["basic", "BASIC", "bAsIc"] {
        let v = format!("{scheme} {}", STANDARD.encode("a:b"));
        assert_eq!(header(v.as_bytes()), Ok(pair("a", "b")), "{scheme}");
    }
}

#[test]
fn basic_header_several_spaces_and_trailing_whitespace_are_accepted() {
    let v = format!("Basic    {} \t", STANDARD.encode("a:b"));
    assert_eq!(header(v.as_bytes()), Ok(pair("a", "b")));
}

#[test]
fn basic_header_other_scheme_or_no_space_yields_nothing() {
    let b64 = STANDARD.encode("a:b");
    for v in [format!("Bearer {b64}"), format!("Basic{b64}"), format!("Basic\t{b64}"), format!("Basically {b64}")] {
        assert_eq!(header(v.as_bytes()), Ok(None), "{v}");
    }
    assert_eq!(header(b"Basic"), Ok(None));
    assert_eq!(header(b"Basic    "), Ok(None));
    assert_eq!(header(b""), Ok(None));
}

#[test]
fn basic_header_without_colon_yields_nothing() {
    assert_eq!(header(&basic("just-an-id")), Ok(None));
}

#[test]
fn basic_header_empty_id_yields_nothing() {
    assert_eq!(header(&basic(":secret")), Ok(None));
    assert_eq!(header(&basic(":")), Ok(None));
}

#[test]
fn basic_header_empty_secret_is_allowed() {
    assert_eq!(header(&basic("id:")), Ok(pair("id", "")));
}

#[test]
fn basic_header_splits_at_first_colon_only() {
    assert_eq!(header(&basic("id:se:cr:et")), Ok(pair("id", "se:cr:et")));
}

#[test]
fn basic_header_is_not_percent_decoded() {
    assert_eq!(header(&basic("a%20b:p+w%3D")), Ok(pair("a%20b", "p+w%3D")));
}

#[test]
fn basic_header_padding_optional() {
    // "ab:c" encodes to "YWI6Yw==".
    assert_eq!(header(b"Basic YWI6Yw=="), Ok(pair("ab", "c")));
    assert_eq!(header(b"Basic YWI6Yw"), Ok(pair("ab", "c")));
}

#[test]
fn basic_header_non_canonical_trailing_bits_decode_like_nginx() {
    // "YWI6Yx==" differs from "YWI6Yw==" only in bits the decoder drops.
    assert_eq!(header(b"Basic YWI6Yx=="), Ok(pair("ab", "c")));
}

#[test]
fn basic_header_invalid_base64_falls_back_to_raw_value() {
    assert_eq!(header(b"Basic my-client:my-secret"), Ok(pair("my-client", "my-secret")));
    // Not base64 and no colon: nothing.
    assert_eq!(header(b"Basic not*base64"), Ok(None));
}

#[test]
fn basic_header_binary_secret_is_returned_as_bytes() {
    let mut raw = b"id:".to_vec();
    raw.extend_from_slice(&[0, 0xff, 0x80, b'\n']);
    let v = [b"Basic ".as_slice(), STANDARD.encode(&raw).as_bytes()].concat();
    assert_eq!(header(&v), Ok(Some((b"id".to_vec(), vec![0, 0xff, 0x80, b'\n']))));
}

#[test]
fn basic_header_at_buffer_limit_is_read_and_over_it_is_too_long() {
    // 768 decoded bytes encode to exactly 1024 characters.
    let fits = format!("id:{}", "s".repeat(765));
    let v = basic(&fits);
    assert_eq!(v.len() - 6, CREDENTIAL_BUF_LEN);
    assert_eq!(header(&v), Ok(pair("id", &"s".repeat(765))));

    let over = basic(&format!("id:{}", "s".repeat(766)));
    assert_eq!(header(&over), Err(CredentialsError::TooLong));
    let raw_over = format!("Basic id:{}", "s".repeat(CREDENTIAL_BUF_LEN));
    assert_eq!(header(raw_over.as_bytes()), Err(CredentialsError::TooLong));
}

#[test]
fn basic_header_raw_fallback_at_buffer_limit_fits() {
    let raw = format!("id:{}", "*".repeat(CREDENTIAL_BUF_LEN - 3));
    let v = format!("Basic {raw}");
    assert_eq!(header(v.as_bytes()), Ok(pair("id", &"*".repeat(CREDENTIAL_BUF_LEN - 3))));
}

// ---- Grant-Type guard ----

#[test]
fn grant_type_header_absent_or_empty_keeps_header_location() {
    assert!(!header_location_disabled(None, None));
    assert!(!header_location_disabled(Some(b""), None));
    assert!(!header_location_disabled(Some(b"  "), Some(b"")));
}

#[test]
fn grant_type_header_client_credentials_keeps_header_location() {
    assert!(!header_location_disabled(Some(b"client_credentials"), None));
    assert!(!header_location_disabled(None, Some(b"client_credentials")));
    assert!(!header_location_disabled(Some(b" client_credentials "), None));
}

#[test]
fn grant_type_header_other_grant_disables_header_location() {
    assert!(header_location_disabled(Some(b"password"), None));
    assert!(header_location_disabled(None, Some(b"authorization_code")));
    assert!(header_location_disabled(Some(b"Client_Credentials"), None));
}

#[test]
fn grant_type_header_takes_precedence_over_x_grant_type() {
    assert!(!header_location_disabled(Some(b"client_credentials"), Some(b"password")));
    assert!(header_location_disabled(Some(b"password"), Some(b"client_credentials")));
    // An empty Grant-Type is absent, so X-Grant-Type decides.
    assert!(header_location_disabled(Some(b""), Some(b"password")));
}

// ---- query ----

#[test]
fn query_plain_pair_yields_credentials() {
    assert_eq!(query("client_id=abc&client_secret=xyz"), Ok(pair("abc", "xyz")));
    assert_eq!(query("x=1&client_secret=xyz&y&client_id=abc&z="), Ok(pair("abc", "xyz")));
}

#[test]
fn query_percent_encoding_and_plus_are_decoded() {
    assert_eq!(
        query("client_id=my%20app&client_secret=p%2Ba%3As%2Fs%3Dw%26o+rd"),
        Ok(pair("my app", "p+a:s/s=w&o rd"))
    );
    assert_eq!(query("client_id=%e2%82%ac&client_secret=x"), Ok(pair("€", "x")));
}

#[test]
fn query_names_are_decoded_too() {
    assert_eq!(query("client%5Fid=abc&client_secre%74=xyz"), Ok(pair("abc", "xyz")));
}

#[test]
fn query_broken_percent_escape_is_kept_literally() {
    assert_eq!(query("client_id=a%zz%4&client_secret=100%"), Ok(pair("a%zz%4", "100%")));
}

#[test]
fn query_first_occurrence_wins() {
    assert_eq!(query("client_id=first&client_id=second&client_secret=s1&client_secret=s2"), Ok(pair("first", "s1")));
}

#[test]
fn query_empty_first_occurrence_counts_as_absent() {
    assert_eq!(query("client_id=&client_id=abc&client_secret=xyz"), Ok(None));
    assert_eq!(query("client_id&client_secret=xyz"), Ok(None));
}

#[test]
fn query_empty_or_missing_values_yield_nothing() {
    assert_eq!(query("client_id=abc&client_secret="), Ok(None));
    assert_eq!(query("client_id=abc"), Ok(None));
    assert_eq!(query("client_secret=xyz"), Ok(None));
    assert_eq!(query(""), Ok(None));
}

#[test]
fn query_grant_type_client_credentials_or_empty_is_accepted() {
    assert_eq!(query("grant_type=client_credentials&client_id=a&client_secret=b"), Ok(pair("a", "b")));
    assert_eq!(query("grant_type=client%5Fcredentials&client_id=a&client_secret=b"), Ok(pair("a", "b")));
    assert_eq!(query("grant_type=&client_id=a&client_secret=b"), Ok(pair("a", "b")));
}

#[test]
fn query_grant_type_mismatch_yields_nothing() {
    assert_eq!(query("grant_type=password&client_id=a&client_secret=b"), Ok(None));
    assert_eq!(query("client_id=a&client_secret=b&grant_type=Client_Credentials"), Ok(None));
}

#[test]
fn query_decoded_credentials_over_buffer_are_too_long() {
    let half = "x".repeat(CREDENTIAL_BUF_LEN / 2);
    assert_eq!(query(&format!("client_id={half}&client_secret={half}")), Ok(pair(&half, &half)));
    let q = format!("client_id={half}&client_secret={half}y");
    assert_eq!(query(&q), Err(CredentialsError::TooLong));
    // Encoded length does not matter, decoded length does.
    let enc = "%41".repeat(CREDENTIAL_BUF_LEN - 1);
    assert_eq!(query(&format!("client_id={enc}&client_secret=s")), Ok(pair(&"A".repeat(CREDENTIAL_BUF_LEN - 1), "s")));
}

// ---- body ----

#[test]
fn body_form_yields_credentials() {
    let ct = "application/x-www-form-urlencoded";
    assert_eq!(body(ct, "client_id=a+b&client_secret=c%26d"), Ok(pair("a b", "c&d")));
}

#[test]
fn body_content_type_matches_by_prefix_in_any_case() {
    let b = "client_id=a&client_secret=b";
    assert_eq!(body("Application/X-WWW-Form-Urlencoded; charset=utf-8", b), Ok(pair("a", "b")));
    assert_eq!(body("  application/x-www-form-urlencoded", b), Ok(pair("a", "b")));
    assert_eq!(body("APPLICATION/JSON; charset=utf-8", r#"{"client_id":"a","client_secret":"b"}"#), Ok(pair("a", "b")));
}

#[test]
fn body_other_content_type_yields_nothing() {
    assert_eq!(body("text/plain", "client_id=a&client_secret=b"), Ok(None));
    assert_eq!(body("multipart/form-data; boundary=x", "client_id=a&client_secret=b"), Ok(None));
}

#[test]
fn body_form_grant_type_mismatch_yields_nothing() {
    let ct = "application/x-www-form-urlencoded";
    assert_eq!(body(ct, "grant_type=password&client_id=a&client_secret=b"), Ok(None));
}

#[test]
fn body_json_yields_credentials() {
    let b = r#"{"grant_type":"client_credentials","client_id":"abc","client_secret":"xyz","scope":"a b"}"#;
    assert_eq!(body("application/json", b), Ok(pair("abc", "xyz")));
}

#[test]
fn body_json_escapes_are_decoded() {
    let b = r#"{"client_id":"a\u002bb","client_secret":"p\"q\\r\/s\u00e9\ud83d\ude00"}"#;
    assert_eq!(body("application/json", b), Ok(pair("a+b", "p\"q\\r/sé😀")));
    // Escaped member names match too.
    let b = r#"{"client\u005fid":"a","client_secret":"b"}"#;
    assert_eq!(body("application/json", b), Ok(pair("a", "b")));
}

#[test]
fn body_json_non_string_values_count_as_absent() {
    for b in [
        r#"{"client_id":123,"client_secret":"b"}"#,
        r#"{"client_id":"a","client_secret":null}"#,
        r#"{"client_id":["a"],"client_secret":"b"}"#,
        r#"{"client_id":{"v":"a"},"client_secret":"b"}"#,
        r#"{"client_id":true,"client_secret":"b"}"#,
        r#"{"client_id":"","client_secret":"b"}"#,
    ] {
        assert_eq!(body("application/json", b), Ok(None), "{b}");
    }
}

#[test]
fn body_json_non_string_grant_type_counts_as_absent() {
    let b = r#"{"grant_type":1,"client_id":"a","client_secret":"b"}"#;
    assert_eq!(body("application/json", b), Ok(pair("a", "b")));
}

#[test]
fn body_json_grant_type_mismatch_yields_nothing() {
    let b = r#"{"grant_type":"password","client_id":"a","client_secret":"b"}"#;
    assert_eq!(body("application/json", b), Ok(None));
}

#[test]
fn body_json_first_occurrence_wins() {
    let b = r#"{"client_id":"first","client_id":"second","client_secret":"s"}"#;
    assert_eq!(body("application/json", b), Ok(pair("first", "s")));
    let b = r#"{"client_id":1,"client_id":"second","client_secret":"s"}"#;
    assert_eq!(body("application/json", b), Ok(None));
}

#[test]
fn body_json_nested_members_are_skipped() {
    let b = r#"{"extra":{"client_id":"inner","list":[1,{"a":[]}]},"client_id":"outer","client_secret":"s"}"#;
    assert_eq!(body("application/json", b), Ok(pair("outer", "s")));
}

#[test]
fn body_json_not_an_object_or_malformed_yields_nothing() {
    for b in [r#"["client_id","a"]"#, r#""client_id""#, "42", "null", r#"{"client_id":"a","#, "", "client_id=a"] {
        assert_eq!(body("application/json", b), Ok(None), "{b}");
    }
}

#[test]
fn body_json_nested_past_the_limit_yields_nothing_not_a_stack_overflow() {
    // Regression: a caller's body of a few KiB of `[` overflowed the stack in simd-json's
    // recursive skip of unread members and aborted the process.
    let deep = format!(r#"{{"x":{}{},"client_id":"a","client_secret":"b"}}"#, "[".repeat(50_000), "]".repeat(50_000));
    assert_eq!(body("application/json", &deep), Ok(None));
    let deep = deep.replace("client_id\":\"a\",\"client_secret\":\"b", "access_token\":\"t");
    assert_eq!(json_access_token(deep.as_bytes()), None);
    // Shallow nesting is still skipped as before.
    let b = format!(r#"{{"x":{}{},"access_token":"t"}}"#, "[".repeat(100), "]".repeat(100));
    assert_eq!(json_access_token(b.as_bytes()), Some(b"t".to_vec()));
}

#[test]
fn body_json_over_buffer_is_too_long() {
    let b = format!(r#"{{"client_id":"a","client_secret":"{}"}}"#, "s".repeat(CREDENTIAL_BUF_LEN));
    assert_eq!(body("application/json", &b), Err(CredentialsError::TooLong));
}

/// `{"client_id":"a","client_secret":"b","access_token":"t","x":` + `depth` arrays + `}`.
fn nested_body(depth: usize) -> Vec<u8> {
    let mut b = br#"{"client_id":"a","client_secret":"b","access_token":"t","x":"#.to_vec();
    b.extend(std::iter::repeat_n(b'[', depth));
    b.extend(std::iter::repeat_n(b']', depth));
    b.push(b'}');
    b
}

#[test]
fn body_json_nested_thousands_deep_yields_nothing_and_does_not_overflow_the_stack() {
    // 20 000 levels fit a 64 KiB body; simd-json's serde visitors recursed once per level
    // and overflowed the stack (an abort of the whole process) at a few thousand.
    let deep = nested_body(20_000);
    assert_eq!(body("application/json", std::str::from_utf8(&deep).unwrap()), Ok(None));
    assert_eq!(json_access_token(&deep), None);
    let shallow = nested_body(100);
    assert_eq!(body("application/json", std::str::from_utf8(&shallow).unwrap()), Ok(pair("a", "b")));
    assert_eq!(json_access_token(&shallow).as_deref(), Some(&b"t"[..]));
}

#[test]
fn body_json_that_simd_json_takes_but_rfc_8259_does_not_yields_nothing() {
    // `hide_credentials` cannot strip these, so a secret read from them reached the
    // upstream as sent.
    let front = r#"{"client_id":"a","client_secret":"b","access_token":"t","z":"#;
    for tail in ["null\0}", "1\0}", "true\0,\"y\":2}", r#""\ud800"}"#] {
        let b = format!("{front}{tail}");
        assert_eq!(body("application/json", &b), Ok(None), "{}", b.escape_debug());
        assert_eq!(json_access_token(b.as_bytes()), None, "{}", b.escape_debug());
    }
}

// ---- find ----

#[test]
fn find_default_order_prefers_header() {
    let auth = basic("hid:hsecret");
    let sources = Sources {
        authorization: Some(&auth),
        query: Some(b"client_id=qid&client_secret=qsecret"),
        ..Sources::default()
    };
    let mut buf = CredentialBuf::new();
    let c = find(&sources, &[Location::Header, Location::Query, Location::Body], &mut buf).unwrap().unwrap();
    assert_eq!((c.id, c.secret, c.location), (&b"hid"[..], &b"hsecret"[..], Location::Header));
}

#[test]
fn find_falls_through_to_later_location() {
    let auth = basic("no-colon");
    let sources = Sources {
        authorization: Some(&auth),
        query: Some(b"a=b"),
        content_type: Some(b"application/json"),
        body: Some(br#"{"client_id":"bid","client_secret":"bsecret"}"#),
        ..Sources::default()
    };
    let mut buf = CredentialBuf::new();
    let c = find(&sources, &[Location::Header, Location::Query, Location::Body], &mut buf).unwrap().unwrap();
    assert_eq!((c.id, c.secret, c.location), (&b"bid"[..], &b"bsecret"[..], Location::Body));
}

#[test]
fn find_grant_type_header_skips_header_location() {
    let auth = basic("hid:hsecret");
    let sources = Sources {
        authorization: Some(&auth),
        grant_type: Some(b"password"),
        query: Some(b"client_id=qid&client_secret=qsecret"),
        ..Sources::default()
    };
    let mut buf = CredentialBuf::new();
    let c = find(&sources, &[Location::Header, Location::Query], &mut buf).unwrap().unwrap();
    assert_eq!(c.location, Location::Query);
    assert!(find(&sources, &[Location::Header], &mut buf).unwrap().is_none());
}

#[test]
fn find_respects_configured_order() {
    let auth = basic("hid:hsecret");
    let sources =
        Sources { authorization: Some(&auth), query: Some(b"client_id=qid&client_secret=q"), ..Sources::default() };
    let mut buf = CredentialBuf::new();
    let c = find(&sources, &[Location::Query, Location::Header], &mut buf).unwrap().unwrap();
    assert_eq!(c.id, b"qid");
    assert!(find(&sources, &[Location::Body], &mut buf).unwrap().is_none());
}

#[test]
fn find_too_long_stops_the_search() {
    let auth = format!("Basic {}", "A".repeat(CREDENTIAL_BUF_LEN + 4));
    let sources = Sources {
        authorization: Some(auth.as_bytes()),
        query: Some(b"client_id=qid&client_secret=q"),
        ..Sources::default()
    };
    let mut buf = CredentialBuf::new();
    assert_eq!(find(&sources, &[Location::Header, Location::Query], &mut buf), Err(CredentialsError::TooLong));
}

// ---- redaction ----

#[test]
fn credentials_debug_redacts_secret() {
    let mut buf = CredentialBuf::new();
    let c = from_authorization(&basic("the-id:hunter2"), &mut buf).unwrap().unwrap();
    let shown = format!("{c:?}");
    assert!(shown.contains("the-id"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!format!("{buf:?}").contains("hunter2"));
}

#[test]
fn sources_debug_shows_lengths_not_secrets() {
    let auth = basic("the-id:hunter2");
    let sources = Sources {
        authorization: Some(&auth),
        grant_type: Some(b"client_credentials"),
        query: Some(b"client_id=a&client_secret=hunter2"),
        content_type: Some(b"application/json"),
        body: Some(br#"{"client_secret":"hunter2"}"#),
        ..Sources::default()
    };
    let shown = format!("{sources:?}");
    assert!(!shown.contains("hunter2") && !shown.contains(&STANDARD.encode("the-id:hunter2")), "{shown}");
    assert!(shown.contains("bytes>") && shown.contains("client_credentials"), "{shown}");
}

#[test]
fn client_secret_debug_and_display_redact() {
    let s = ClientSecret::new(b"hunter2");
    assert_eq!(format!("{s:?}"), "<redacted>");
    assert_eq!(format!("{s}"), "<redacted>");
    assert_eq!(s.expose(), b"hunter2");
}

// ---- encoders (RFC 6749 §2.3.1) ----

const TRICKY_SECRET: &[u8] = b"p+a:s/s=w&o rd";

#[test]
fn form_encoding_escapes_reserved_bytes() {
    let mut out = String::new();
    push_form_encoded(&mut out, TRICKY_SECRET);
    assert_eq!(out, "p%2Ba%3As%2Fs%3Dw%26o+rd");
    out.clear();
    push_form_encoded(&mut out, "aZ09*-._~€\x00".as_bytes());
    assert_eq!(out, "aZ09*-._%7E%E2%82%AC%00");
}

#[test]
fn client_secret_basic_form_encodes_before_base64() {
    let value = encode_client_secret_basic(b"my:client", TRICKY_SECRET);
    let b64 = value.strip_prefix("Basic ").unwrap();
    let joined = STANDARD.decode(b64).unwrap();
    assert_eq!(joined, b"my%3Aclient:p%2Ba%3As%2Fs%3Dw%26o+rd");
    assert_eq!(value, "Basic bXklM0FjbGllbnQ6cCUyQmElM0FzJTJGcyUzRHclMjZvK3Jk");
}

#[test]
fn client_secret_basic_round_trips_through_form_decoding() {
    let value = encode_client_secret_basic(b"my:client", TRICKY_SECRET);
    let joined = STANDARD.decode(value.strip_prefix("Basic ").unwrap()).unwrap();
    // The IdP splits at the first colon, then form-decodes each half.
    let colon = joined.iter().position(|&b| b == b':').unwrap();
    let mut out = [0u8; 64];
    let n = form_decode_into(&joined[..colon], &mut out).unwrap();
    assert_eq!(&out[..n], b"my:client");
    let n = form_decode_into(&joined[colon + 1..], &mut out).unwrap();
    assert_eq!(&out[..n], TRICKY_SECRET);
}

#[test]
fn client_secret_post_body_is_form_encoded() {
    let body = encode_client_secret_post(b"my client", TRICKY_SECRET, Some(b"openid profile"));
    assert_eq!(
        body,
        "grant_type=client_credentials&client_id=my+client&client_secret=p%2Ba%3As%2Fs%3Dw%26o+rd&scope=openid+profile"
    );
    let body = encode_client_secret_post(b"id", b"s", None);
    assert_eq!(body, "grant_type=client_credentials&client_id=id&client_secret=s");
}

#[test]
fn client_secret_post_body_parses_back_with_the_body_decoder() {
    let encoded = encode_client_secret_post(b"my client", TRICKY_SECRET, None);
    assert_eq!(body("application/x-www-form-urlencoded", &encoded), Ok(pair("my client", "p+a:s/s=w&o rd")));
}

#[test]
fn cookie_value_finds_the_named_cookie_on_any_line_and_unquotes_it() {
    let lines: [&[u8]; 2] = [b"a=1;tok=", b"x=2; tok = \"abc\" ; tok=later"];
    assert_eq!(cookie_value(lines.into_iter(), b"tok"), None, "the first occurrence is empty: absent");
    let lines: [&[u8]; 2] = [b"a=1", b"x=2; tok = \"abc\" ; tok=later"];
    assert_eq!(cookie_value(lines.into_iter(), b"tok"), Some(&b"abc"[..]));
    assert_eq!(cookie_value([&b"tokens=1; atok=2"[..]].into_iter(), b"tok"), None);
    assert_eq!(cookie_value([&b"tok"[..]].into_iter(), b"tok"), None, "no `=`: not a pair");
}

#[test]
fn json_access_token_reads_top_level_strings_only() {
    assert_eq!(json_access_token(br#"{"access_token":"a\u0062c"}"#), Some(b"abc".to_vec()));
    assert_eq!(json_access_token(br#"{"x":{"access_token":"n"}}"#), None);
    assert_eq!(json_access_token(br#"{"access_token":5}"#), None);
    assert_eq!(json_access_token(br#"{"access_token":""}"#), None);
    assert_eq!(json_access_token(br#"["access_token"]"#), None);
    assert_eq!(json_access_token(b"{not json"), None);
}

#[test]
fn find_bearer_takes_the_first_location_in_the_configured_order() {
    use crate::oidc::config::BearerLocation::{Body, Cookie, Header, Query};
    let sources = Sources {
        authorization: Some(b"bEaReR  hdr"),
        grant_type: None,
        x_grant_type: None,
        query: Some(b"a=1&access_token=q%2Bt"),
        content_type: Some(b"application/json"),
        body: Some(br#"{"access_token":"bdy"}"#),
        client_values: None,
        introspection_values: None,
        dpop: None,
        client_cert: None,
    };
    let lines: [&[u8]; 1] = [b"x=1; at=ck"];
    let cookies = || lines.into_iter();
    let kong = ["access-token".to_string(), "x-access-token".to_string()];
    let headers = BearerHeaders { authorization: true, dpop: false, names: &kong };
    let sent = |name: &str| (name == "x-access-token").then_some(&b" xat "[..]);
    let find = |order: &[_]| find_bearer(&sources, order, headers, sent, b"at", cookies).map(|t| t.into_owned());
    assert_eq!(find(&[Header, Query]), Some(b"hdr".to_vec()));
    assert_eq!(find(&[Query, Header]), Some(b"q+t".to_vec()), "arguments are form-decoded");
    assert_eq!(find(&[Body]), Some(b"bdy".to_vec()));
    assert_eq!(find(&[Cookie, Header]), Some(b"ck".to_vec()));
    let basic = Sources { authorization: Some(b"Basic abc"), query: None, body: None, ..sources };
    let none = |_: &str| None;
    assert_eq!(find_bearer(&basic, &[Header, Query, Body], headers, none, b"at", cookies), None);
    // Without `Authorization: Bearer`, Kong's other two headers, bare values, in order.
    let got = find_bearer(&basic, &[Header], headers, sent, b"at", cookies);
    assert_eq!(got.as_deref(), Some(&b"xat"[..]));
    let both = |name: &str| Some(if name == "access-token" { &b"at1"[..] } else { &b"xat"[..] });
    assert_eq!(find_bearer(&basic, &[Header], headers, both, b"at", cookies).as_deref(), Some(&b"at1"[..]));
    // `bearer_token_header_name`: that header alone, Authorization not read.
    let own = ["x-token".to_string()];
    let only = BearerHeaders { authorization: false, dpop: false, names: &own };
    let custom = |name: &str| (name == "x-token").then_some(&b"tok"[..]);
    assert_eq!(find_bearer(&sources, &[Header], only, custom, b"at", cookies).as_deref(), Some(&b"tok"[..]));
    assert_eq!(
        find_bearer(&sources, &[Header], only, sent, b"at", cookies),
        None,
        "not Authorization, not x-access-token"
    );
    // The `DPoP` scheme is read only when `proof_of_possession_dpop` is on.
    let dpop_sent = Sources { authorization: Some(b"dPoP  tok.en "), ..sources };
    assert_eq!(find_bearer(&dpop_sent, &[Header], headers, none, b"at", cookies), None);
    let with_dpop = BearerHeaders { dpop: true, ..headers };
    let got = find_bearer(&dpop_sent, &[Header], with_dpop, none, b"at", cookies);
    assert_eq!(got.as_deref(), Some(&b"tok.en"[..]));
    assert_eq!(dpop_token(b"DPoP x"), Some(&b"x"[..]));
    assert_eq!((dpop_token(b"Bearer x"), dpop_token(b"DPoP")), (None, None));
    assert_eq!(authorization_token(b"Bearer a.b", true), Some(&b"a.b"[..]));
    assert_eq!(authorization_token(b"Basic a.b", true), None);
}

#[test]
fn client_values_come_from_query_then_form_then_header_and_skip_empty_ones() {
    let names = ["a".to_string(), "b".to_string(), "c".to_string(), "d".to_string()];
    let headers = ["x-h".to_string(), "x-none".to_string()];
    let sources = Sources {
        query: Some(b"a=q&b="),
        content_type: Some(b"application/x-www-form-urlencoded"),
        body: Some(b"a=f&b=f%2Bb&c=f"),
        ..Sources::default()
    };
    let header = |name: &str| match name.to_ascii_lowercase().as_str() {
        "a" | "c" | "d" => Some(&b"hdr"[..]),
        "x-h" => Some(&b"H"[..]),
        "x-none" => Some(&b""[..]),
        _ => None,
    };
    let v = client_values(&names, &headers, &sources, header);
    let show = |e: &[(usize, Box<[u8]>)]| e.iter().map(|(i, v)| (*i, v.to_vec())).collect::<Vec<_>>();
    assert_eq!(show(&v.post), [(0, b"q".to_vec()), (1, b"f+b".to_vec()), (2, b"f".to_vec()), (3, b"hdr".to_vec())]);
    assert_eq!(show(&v.headers), [(0, b"H".to_vec())]);
    // A JSON body is not a form: its values are not read.
    let json = Sources { content_type: Some(b"application/json"), body: Some(br#"{"c":"j"}"#), ..Sources::default() };
    assert_eq!(show(&client_values(&names[2..3], &[], &json, |_| None).post), []);
}

#[test]
fn introspection_values_read_arguments_and_headers_each_from_their_own_place() {
    use crate::oidc::config::CallerArg;
    let arg = |name: &str, from_header| CallerArg { name: name.into(), from_header };
    // `d` is an argument the caller sends only as a header, `q` a header-list name the
    // caller sends only in the query: neither is taken from the other place.
    let args = [arg("a", false), arg("b", false), arg("d", false), arg("x-r", true), arg("q", true)];
    let headers = ["x-t".to_string()];
    let sources = Sources {
        query: Some(b"a=q&q=in-query"),
        content_type: Some(b"application/x-www-form-urlencoded"),
        body: Some(b"a=f&b=f%2Bb"),
        ..Sources::default()
    };
    let header = |name: &str| match name.to_ascii_lowercase().as_str() {
        "d" => Some(&b"hdr"[..]),
        "x-r" => Some(&b"eu"[..]),
        "x-t" => Some(&b"T"[..]),
        _ => None,
    };
    let v = introspection_values(&args, &headers, &sources, header);
    let show = |e: &[(usize, Box<[u8]>)]| e.iter().map(|(i, v)| (*i, v.to_vec())).collect::<Vec<_>>();
    assert_eq!(show(&v.post), [(0, b"q".to_vec()), (1, b"f+b".to_vec()), (3, b"eu".to_vec())]);
    assert_eq!(show(&v.headers), [(0, b"T".to_vec())]);
}

#[test]
fn client_values_frame_each_value_so_no_two_sets_share_a_key_input() {
    let set = |post: &[(usize, &[u8])], headers: &[(usize, &[u8])]| ClientValues {
        post: post.iter().map(|(i, v)| (*i, Box::from(*v))).collect(),
        headers: headers.iter().map(|(i, v)| (*i, Box::from(*v))).collect(),
    };
    let inputs = [
        set(&[(0, b"ab"), (1, b"c")], &[]),
        set(&[(0, b"a"), (1, b"bc")], &[]),
        set(&[(1, b"ab")], &[]),
        set(&[], &[(0, b"ab")]),
        set(&[], &[]),
    ];
    for (i, a) in inputs.iter().enumerate() {
        for b in &inputs[i + 1..] {
            assert_ne!(a.key_input(), b.key_input(), "{a:?} / {b:?}");
        }
    }
}

// ---- property tests: random and mutated credentials ----

use crate::testing::{self, Rng};

/// Any bytes, with the ones that matter to each location (separators, escapes,
/// whitespace, line ends, non-ASCII) much more often than chance would give them.
fn random_bytes(rng: &mut Rng, max_len: usize) -> Vec<u8> {
    let len = rng.below(max_len + 1);
    rng.bytes(len, b"aZ09:=&+%2F; \t\"\\\r\n\0\x7f\x80\xff")
}

fn random_case(rng: &mut Rng, word: &str) -> String {
    word.chars().map(|c| if rng.chance(2) { c.to_ascii_uppercase() } else { c }).collect()
}

/// An `Authorization` value as clients write it: `Basic`, spaces, the base64 of
/// `id:secret` (padded or not), maybe trailing whitespace.
fn basic_value(rng: &mut Rng, id: &[u8], secret: &[u8]) -> Vec<u8> {
    let mut token = STANDARD.encode([id, b":", secret].concat());
    if rng.chance(2) {
        token = token.trim_end_matches('=').to_string();
    }
    let spaces = " ".repeat(1 + rng.below(3));
    let trailing = rng.pick(&["", " ", "\t", " \t "]);
    format!("{}{spaces}{token}{trailing}", random_case(rng, "basic")).into_bytes()
}

/// What the header location must give for `value`, read straight from the rules in
/// the module docs.
fn header_oracle(value: &[u8]) -> Found {
    let v = trim_ows(value);
    if v.len() < 6 || !v[..5].eq_ignore_ascii_case(b"basic") || v[5] != b' ' {
        return Ok(None);
    }
    let token = trim_ows(&v[6..]);
    if token.is_empty() {
        return Ok(None);
    }
    if token.len() > CREDENTIAL_BUF_LEN {
        return Err(CredentialsError::TooLong);
    }
    let decoded = LENIENT_STANDARD.decode(token).unwrap_or_else(|_| token.to_vec());
    match decoded.iter().position(|&c| c == b':') {
        Some(colon) if colon > 0 => Ok(Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))),
        _ => Ok(None),
    }
}

#[test]
fn basic_headers_of_random_ids_and_secrets_give_back_exactly_what_was_encoded() {
    let mut rng = Rng(0xc0ed_5eed_0000_0001);
    for _ in 0..20_000 {
        let mut id = random_bytes(&mut rng, 40);
        id.retain(|&c| c != b':');
        if id.is_empty() {
            id.push(b'i');
        }
        let max = if rng.chance(20) { 1000 } else { 40 };
        let secret = random_bytes(&mut rng, max);
        let value = basic_value(&mut rng, &id, &secret);
        let token_len = trim_ows(&value[6..]).len();
        let want = if token_len > CREDENTIAL_BUF_LEN { Err(CredentialsError::TooLong) } else { Ok(Some((id, secret))) };
        assert_eq!(header(&value), want, "{:?}", value.escape_ascii().to_string());
    }
}

#[test]
fn mutated_basic_headers_never_panic_and_yield_only_what_the_value_decodes_to() {
    let mut rng = Rng(0xc0ed_5eed_0000_0002);
    let mut found = 0;
    for _ in 0..20_000 {
        let mut id = random_bytes(&mut rng, 12);
        id.retain(|&c| c != b':');
        id.insert(0, b'i');
        let secret = random_bytes(&mut rng, 12);
        let mut value = basic_value(&mut rng, &id, &secret);
        for _ in 0..1 + rng.below(3) {
            testing::mutate_bytes(&mut rng, &mut value);
        }
        if rng.chance(10) {
            // Not base64 at all: the raw value, as Kong takes it.
            value = [&b"Basic "[..], &id, b":", &secret].concat();
        }
        let got = header(&value);
        assert_eq!(got, header_oracle(&value), "{:?}", value.escape_ascii().to_string());
        if let Ok(Some((id, _))) = &got {
            assert!(!id.is_empty() && !id.contains(&b':'));
            found += 1;
        }
    }
    assert!(found > 500, "only {found} values gave credentials");
}

/// What the query and form-body locations must give for `form`, read straight from the
/// rules in the module docs: the first occurrence of each name, by its decoded name.
fn form_oracle(form: &[u8]) -> Found {
    let first = |name: &[u8]| {
        form.split(|&c| c == b'&').find_map(|pair| {
            let (n, v) = match pair.iter().position(|&c| c == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &b""[..]),
            };
            (testing::form_decoded(n) == name).then_some(v)
        })
    };
    if let Some(grant) = first(b"grant_type").filter(|g| !g.is_empty()) {
        if testing::form_decoded(grant) != b"client_credentials" {
            return Ok(None);
        }
    }
    let (Some(id), Some(secret)) = (first(b"client_id"), first(b"client_secret")) else { return Ok(None) };
    if id.is_empty() || secret.is_empty() {
        return Ok(None);
    }
    let (id, secret) = (testing::form_decoded(id), testing::form_decoded(secret));
    if id.len() + secret.len() > CREDENTIAL_BUF_LEN {
        return Err(CredentialsError::TooLong);
    }
    Ok(Some((id, secret)))
}

/// A query string carrying `id` and `secret` among other arguments, in random order,
/// with later (ignored) repeats of the names it carries.
fn credential_form(rng: &mut Rng, id: &[u8], secret: &[u8]) -> Vec<u8> {
    let mut pairs: Vec<Vec<u8>> = vec![
        [&b"client_id="[..], &testing::form_encoded(rng, id)].concat(),
        [&b"client%5Fsecret="[..], &testing::form_encoded(rng, secret)].concat(),
    ];
    if rng.chance(2) {
        let grant: &[u8] =
            rng.pick(&[b"grant_type=client_credentials", b"grant%5ftype=client%5Fcredentials", b"grant_type="]);
        pairs.push(grant.to_vec());
    }
    for _ in 0..rng.below(4) {
        pairs.push(rng.pick(&[&b"a=1"[..], b"", b"flag", b"client_idx=1", b"x=%zz", b"scope=a+b"]).to_vec());
    }
    for i in 1..pairs.len() {
        pairs.swap(i, rng.below(i + 1));
    }
    let repeat: &[u8] = rng.pick(&[b"client_id=later", b"client_secret=later", b"client_id="]);
    pairs.push(repeat.to_vec());
    pairs.join(&b'&')
}

#[test]
fn form_credentials_of_random_bytes_give_back_exactly_what_was_encoded() {
    let mut rng = Rng(0xc0ed_5eed_0000_0003);
    let form_type = "application/x-www-form-urlencoded";
    for _ in 0..10_000 {
        let max = if rng.chance(20) { 700 } else { 30 };
        let mut id = random_bytes(&mut rng, max);
        let max = if rng.chance(20) { 700 } else { 30 };
        let mut secret = random_bytes(&mut rng, max);
        id.push(b'i');
        secret.insert(0, b's');
        let q = credential_form(&mut rng, &id, &secret);
        let want = if id.len() + secret.len() > CREDENTIAL_BUF_LEN {
            Err(CredentialsError::TooLong)
        } else {
            Ok(Some((id, secret)))
        };
        let mut buf = CredentialBuf::new();
        let got = from_query(&q, &mut buf).map(|c| c.map(|c| (c.id.to_vec(), c.secret.to_vec())));
        assert_eq!(got, want, "{:?}", q.escape_ascii().to_string());
        let mut buf = CredentialBuf::new();
        let got = from_body(form_type.as_bytes(), &q, &mut buf).map(|c| c.map(|c| (c.id.to_vec(), c.secret.to_vec())));
        assert_eq!(got, want, "{:?}", q.escape_ascii().to_string());
    }
}

#[test]
fn mutated_forms_never_panic_and_yield_exactly_the_first_decoded_id_and_secret() {
    let mut rng = Rng(0xc0ed_5eed_0000_0004);
    let mut found = 0;
    for _ in 0..20_000 {
        let (id, secret) = (random_bytes(&mut rng, 12), random_bytes(&mut rng, 12));
        let mut q = credential_form(&mut rng, &id, &secret);
        for _ in 0..1 + rng.below(3) {
            if rng.chance(2) {
                let at = rng.below(q.len() + 1);
                q.insert(at, rng.pick(b"&=%+_"));
            } else {
                testing::mutate_bytes(&mut rng, &mut q);
            }
        }
        let mut buf = CredentialBuf::new();
        let got = from_query(&q, &mut buf).map(|c| c.map(|c| (c.id.to_vec(), c.secret.to_vec())));
        let want = form_oracle(&q);
        assert_eq!(got, want, "{:?}", q.escape_ascii().to_string());
        found += usize::from(matches!(got, Ok(Some(_))));
    }
    assert!(found > 1000, "only {found} forms gave credentials");
}

/// What the JSON body location must give for `body`, read by serde_json: the first
/// member of each name, strings only.
fn json_oracle(members: &[(String, serde_json::Value)]) -> Found {
    let first =
        |name: &str| members.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str().unwrap_or("").as_bytes().to_vec());
    if let Some(grant) = first("grant_type").filter(|g| !g.is_empty()) {
        if grant != b"client_credentials" {
            return Ok(None);
        }
    }
    let (Some(id), Some(secret)) = (first("client_id"), first("client_secret")) else { return Ok(None) };
    if id.is_empty() || secret.is_empty() {
        return Ok(None);
    }
    if id.len() + secret.len() > CREDENTIAL_BUF_LEN {
        return Err(CredentialsError::TooLong);
    }
    Ok(Some((id, secret)))
}

fn json_body(b: &[u8]) -> Found {
    let mut buf = CredentialBuf::new();
    Ok(from_body(b"application/json", b, &mut buf)?.map(|c| (c.id.to_vec(), c.secret.to_vec())))
}

#[test]
fn json_credentials_of_random_strings_give_back_exactly_what_was_encoded() {
    let mut rng = Rng(0xc0ed_5eed_0000_0005);
    for _ in 0..6000 {
        let max = if rng.chance(20) { 300 } else { 20 };
        let id = format!("i{}", testing::random_text(&mut rng, max));
        let max = if rng.chance(20) { 300 } else { 20 };
        let secret = format!("{}s", testing::random_text(&mut rng, max));
        let body = testing::credential_json(&mut rng, &id, &secret);
        let want = if id.len() + secret.len() > CREDENTIAL_BUF_LEN {
            Err(CredentialsError::TooLong)
        } else {
            Ok(Some((id.into_bytes(), secret.into_bytes())))
        };
        assert_eq!(json_body(body.as_bytes()), want, "{body:?}");
    }
}

#[test]
fn mutated_json_bodies_never_panic_and_yield_what_serde_json_reads() {
    let mut rng = Rng(0xc0ed_5eed_0000_0006);
    let mut found = 0;
    for _ in 0..8000 {
        let (id, secret) =
            (format!("i{}", testing::random_text(&mut rng, 10)), format!("s{}", testing::random_text(&mut rng, 10)));
        let mut body = testing::credential_json(&mut rng, &id, &secret).into_bytes();
        for _ in 0..1 + rng.below(2) {
            testing::mutate_json(&mut rng, &mut body);
        }
        let got = json_body(&body);
        found += usize::from(matches!(got, Ok(Some(_))));
        match testing::json_members(&body) {
            Some(members) => assert_eq!(got, json_oracle(&members), "{:?}", String::from_utf8_lossy(&body)),
            // Not JSON to serde_json (or nested past its limit of 128 levels): no credentials.
            None => assert_eq!(got, Ok(None), "{:?}", String::from_utf8_lossy(&body)),
        }
    }
    assert!(found > 300, "only {found} bodies gave credentials");
}
