//! Hashes ringgate makes itself, not for SipHash's resistance to chosen keys:
//! - [`FastHasher`], a small multiplicative hasher for maps whose keys ringgate makes
//!   itself (upstream addresses from the configuration, plugin instances by address):
//!   SipHash would cost a measurable share of a request for nothing there;
//! - [`key_hash`], the fixed hash of consistent hashing's ring points and request keys;
//! - [`mix64`], splitmix64's finalizer, which both it and the token cache's jitter
//!   generator finish with.

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

/// splitmix64's finalizer: every input bit moves every output bit, so close inputs
/// land far apart.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 64-bit hash of `bytes` (FNV-1a, then [`mix64`] to spread close keys):
/// the ring's points and the requests' keys. Fixed, so a key keeps its place across
/// restarts and versions.
pub fn key_hash(bytes: &[u8]) -> u64 {
    let mut h = KeyHash::new();
    h.write(bytes);
    h.finish()
}

/// [`key_hash`] over several pieces, without joining them.
pub struct KeyHash(u64);

impl KeyHash {
    pub fn new() -> KeyHash {
        KeyHash(0xcbf2_9ce4_8422_2325)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn finish(self) -> u64 {
        mix64(self.0)
    }
}

impl Default for KeyHash {
    fn default() -> KeyHash {
        KeyHash::new()
    }
}

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
