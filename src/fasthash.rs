//! A small multiplicative hasher for maps whose keys ringgate makes itself (upstream
//! addresses from the configuration, plugin instances by address), not peers: SipHash's
//! resistance to chosen keys buys nothing there and costs a measurable share of a
//! request.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const K: u64 = 0x517c_c1b7_2722_0a95;

/// One multiply per word, one per byte for byte strings.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash<T: Hash>(v: T) -> u64 {
        BuildHasherDefault::<FastHasher>::default().hash_one(v)
    }

    #[test]
    fn different_words_and_strings_hash_apart() {
        let words: std::collections::HashSet<u64> = (0..10_000usize).map(|i| hash(i * 64)).collect();
        assert_eq!(words.len(), 10_000, "aligned pointers must not collide");
        assert_ne!(hash("ab"), hash("ba"));
        assert_ne!(hash(1u64), hash(2u64));
    }
}
