//! Guards the "no allocation in `feed`" promise of `ringgate::http::chunked`.
//!
//! This test binary installs a counting global allocator (its own process, so no other
//! test is affected) and counts allocations made by the current thread while a decoder
//! runs over a body that uses every part of the grammar.

mod support;

use support::alloc::{allocations_during, Counting};

use ringgate::http::chunked::{ChunkedDecoder, ChunkedLimits};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn chunked_feed_any_split_allocates_nothing() {
    let body: &[u8] = b"5;name=\"quoted \\\" value\" ; flag\r\nhello\r\n\
        00A\r\n0123456789\r\n0;last\r\nExpires: never\r\nx-sum: 1\r\n\r\nNEXT";
    let mut payload_bytes = 0;
    let allocated = allocations_during(|| {
        for piece_len in 1..=body.len() {
            let mut dec = ChunkedDecoder::new(ChunkedLimits::default());
            let mut consumed = 0;
            for piece in body.chunks(piece_len) {
                let n = dec.feed(piece, &mut |r: std::ops::Range<usize>| payload_bytes += r.len()).expect("valid body");
                consumed += n;
                if dec.is_done() {
                    break;
                }
            }
            assert!(dec.is_done());
            assert_eq!(consumed, body.len() - 4);
            assert_eq!(dec.payload_len(), 15);
        }
    });
    assert_eq!(allocated, 0, "feed allocated");
    assert_eq!(payload_bytes, 15 * body.len());
    // The counter itself works: a real allocation on this thread is seen.
    assert!(allocations_during(|| drop(std::hint::black_box(Box::new(1u8)))) > 0, "counting allocator is not counting");
}
