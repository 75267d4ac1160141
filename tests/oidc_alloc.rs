//! Guards the token-cache hit promise (DESIGN "hot path", STYLE habit 7): decoding the
//! `Authorization: Basic` value, digesting the cache key and an L1 hit — including the
//! refresh-due hand-out — make no heap allocation.
//!
//! A counting global allocator (this test binary only) counts allocations made by the
//! current thread while a measurement is on. The cache is built and filled before the
//! measurement: that is start-up and miss-path work.

mod support;

use support::alloc::{allocations_during, Counting};

use std::hint::black_box;
use std::rc::Rc;

use ringgate::oidc::cache::{CacheKey, CachedToken, KeyPrefix, L1Cache, Lifetime, Lookup};
use ringgate::oidc::credentials::{self, CredentialBuf, Location, Sources};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ENDPOINT: &[u8] = b"https://idp.example.com/realms/demo/protocol/openid-connect/token";
const SALT: &[u8] = b"per-plugin-salt";
/// `my-client-id:my-client-secret-value`
const AUTHORIZATION: &[u8] = b"Basic bXktY2xpZW50LWlkOm15LWNsaWVudC1zZWNyZXQtdmFsdWU=";

fn key_for(id: &[u8], secret: &[u8]) -> CacheKey {
    KeyPrefix::new(ENDPOINT, SALT).key(id, secret, None)
}

fn filled_cache(refresh_after: u64) -> L1Cache {
    let mut cache = L1Cache::new(1024);
    for n in 0..500u32 {
        let id = format!("client-{n}");
        let t = CachedToken::bearer(b"other", Lifetime { ttl: 3600, refresh_after: 3000 }, 0);
        cache.insert(key_for(id.as_bytes(), b"s"), Rc::new(t));
    }
    let lifetime = Lifetime { ttl: 3600, refresh_after };
    let token = CachedToken::bearer(b"eyJhbGciOiJSUzI1NiJ9.payload.signature", lifetime, 0);
    cache.insert(key_for(b"my-client-id", b"my-client-secret-value"), Rc::new(token));
    cache
}

/// The request path on a hit: header → key → lookup → the header value to splice.
fn serve(cache: &mut L1Cache, prefix: &KeyPrefix, authorization: &[u8], now: u64) -> usize {
    let sources = Sources { authorization: Some(authorization), ..Sources::default() };
    let mut buf = CredentialBuf::new();
    let creds = credentials::find(&sources, &[Location::Header, Location::Query, Location::Body], &mut buf)
        .expect("fits")
        .expect("present");
    let key = prefix.key(creds.id, creds.secret, None);
    match cache.get(&key, now) {
        Lookup::Fresh(token) | Lookup::RefreshDue(token) => black_box(token.header_value()).len(),
        other => panic!("expected a hit, got {other:?}"),
    }
}

#[test]
fn basic_header_key_and_l1_hit_do_not_allocate() {
    let mut cache = filled_cache(3000);
    let prefix = KeyPrefix::new(ENDPOINT, SALT);
    serve(&mut cache, &prefix, AUTHORIZATION, 1);
    let n = allocations_during(|| {
        for now in 1..1000 {
            assert_eq!(serve(&mut cache, &prefix, black_box(AUTHORIZATION), now), "Bearer ".len() + 38);
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn refresh_due_hand_out_does_not_allocate() {
    let mut cache = filled_cache(100);
    let prefix = KeyPrefix::new(ENDPOINT, SALT);
    let n = allocations_during(|| {
        for now in 100..400 {
            serve(&mut cache, &prefix, black_box(AUTHORIZATION), now);
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn raw_basic_fallback_and_query_extraction_do_not_allocate() {
    let n = allocations_during(|| {
        let mut buf = CredentialBuf::new();
        let c = credentials::from_authorization(black_box(b"Basic my-client-id:my-secret"), &mut buf);
        assert!(c.unwrap().is_some());
        let q = b"grant_type=client_credentials&client_id=my%2Dclient&client_secret=p%2Bw+d";
        let c = credentials::from_query(black_box(q), &mut buf);
        assert_eq!(c.unwrap().unwrap().secret, b"p+w d");
    });
    assert_eq!(n, 0);
}

#[test]
fn the_counter_sees_allocations() {
    assert!(allocations_during(|| drop(black_box(vec![1u8; 16]))) > 0);
}
