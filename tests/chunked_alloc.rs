//! Guards the "no allocation in `feed`" promise of `ringgate::http::chunked`.
//!
//! This test binary installs a counting global allocator (its own process, so no other
//! test is affected) and counts allocations made by the current thread while a decoder
//! runs over a body that uses every part of the grammar.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ringgate::http::chunked::{ChunkedDecoder, ChunkedLimits};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the only addition
// is a thread-local counter, which has a const initialiser and so never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's; the layout is passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout, via `alloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: `ptr` came from `System` with `layout`; forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

#[test]
fn chunked_feed_any_split_allocates_nothing() {
    let body: &[u8] = b"5;name=\"quoted \\\" value\" ; flag\r\nhello\r\n\
        00A\r\n0123456789\r\n0;last\r\nExpires: never\r\nx-sum: 1\r\n\r\nNEXT";
    let mut payload_bytes = 0;
    let before = allocs();
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
    let after = allocs();
    assert_eq!(after - before, 0, "feed allocated");
    assert_eq!(payload_bytes, 15 * body.len());
    // The counter itself works: a real allocation on this thread is seen.
    let boxed = std::hint::black_box(Box::new(1u8));
    assert!(allocs() > after, "counting allocator is not counting");
    drop(boxed);
}
