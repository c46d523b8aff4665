//! A fast keyed hash for the tables the stack looks up on every packet
//! (connections by 4-tuple, ports, TIME-WAIT records).
//!
//! std's `RandomState` is SipHash-1-3: a pseudo-random function, and most of
//! the cost of a lookup keyed by a 12-byte 4-tuple. This hash mixes each
//! integer the key writes with one 64 × 64 → 128-bit multiply whose halves
//! are folded together (the construction of foldhash and of ahash's
//! fallback), under a 128-bit secret key drawn from the interface's
//! [`KeyedRng`](crate::rand::KeyedRng): from the operating system unless a
//! seed is given on purpose.
//!
//! Against hash flooding it relies, as those do, on the key staying secret:
//! it is not a PRF, but no hash value and no table order ever leaves the
//! stack, so an attacker choosing 4-tuples cannot learn which ones collide.
//! Every table it serves is capped besides, so a flood that did find
//! collisions would slow lookups in a bounded table, not grow one.
//!
//! Keys hash as the sequence of integers their `Hash` impls write
//! (`Ipv4Addr` writes a `u32`, a port a `u16`); byte strings are taken 8
//! bytes at a time, their length mixed in.
//!
//! # Example
//!
//! A map keyed by 4-tuples, under a secret key; the same key hashes the
//! same, another key differently:
//!
//! ```
//! use std::hash::BuildHasher;
//! use std::net::Ipv4Addr;
//! use netstrata::hash::{KeyedHash, keyed_map};
//!
//! let tuple = (Ipv4Addr::new(192, 0, 2, 1), 49152u16, Ipv4Addr::new(192, 0, 2, 2), 80u16);
//! let mut map = keyed_map([7, 11]);
//! map.insert(tuple, "connection");
//! assert_eq!(map.get(&tuple), Some(&"connection"));
//!
//! let h = |key| KeyedHash::new(key).hash_one(tuple);
//! assert_eq!(h([7, 11]), h([7, 11]));
//! assert_ne!(h([7, 11]), h([7, 12]));
//! ```

use core::hash::{BuildHasher, Hasher};
use std::collections::HashMap;

/// A `HashMap` under [`KeyedHash`].
pub type KeyedMap<K, V> = HashMap<K, V, KeyedHash>;

/// An empty [`KeyedMap`] under `key`.
pub fn keyed_map<K, V>(key: [u64; 2]) -> KeyedMap<K, V> {
    HashMap::with_hasher(KeyedHash::new(key))
}

/// Builds [`KeyedHasher`]s under one secret key.
#[derive(Clone)]
pub struct KeyedHash {
    key: [u64; 2],
}

impl core::fmt::Debug for KeyedHash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The key is a secret: it stays out of logs.
        f.debug_struct("KeyedHash").finish_non_exhaustive()
    }
}

impl KeyedHash {
    /// A hash under the 128-bit secret `key`
    /// ([`KeyedRng::next_key`](crate::rand::KeyedRng::next_key)).
    pub fn new(key: [u64; 2]) -> KeyedHash {
        KeyedHash { key }
    }
}

impl BuildHasher for KeyedHash {
    type Hasher = KeyedHasher;

    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher {
            acc: self.key[0],
            key: self.key[1],
        }
    }
}

/// The state of one hash computation.
#[derive(Debug, Clone)]
pub struct KeyedHasher {
    acc: u64,
    key: u64,
}

/// Odd constants from the fractional digits of π, so that a zero key and
/// zero input still mix.
const PI: [u64; 2] = [0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344];

/// The 128-bit product of `a` and `b`, its halves folded by XOR.
#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl KeyedHasher {
    #[inline]
    fn mix(&mut self, x: u64) {
        self.acc = folded_multiply(self.acc ^ x ^ PI[0], self.key ^ PI[1]);
    }
}

impl Hasher for KeyedHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let mut last = [0u8; 8];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.mix(u64::from_le_bytes(last) ^ ((bytes.len() as u64) << 56));
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // A last round, so that the final input also reaches the high bits
        // that hashbrown takes its control byte from.
        folded_multiply(self.acc, self.key ^ PI[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn hash_of<T: core::hash::Hash>(h: &KeyedHash, v: &T) -> u64 {
        h.hash_one(v)
    }

    #[test]
    fn the_same_key_hashes_alike_and_another_key_differently() {
        let t = (
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80),
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 40000),
        );
        let a = KeyedHash::new([1, 2]);
        assert_eq!(hash_of(&a, &t), hash_of(&a.clone(), &t));
        assert_ne!(hash_of(&a, &t), hash_of(&KeyedHash::new([1, 3]), &t));
        assert_ne!(hash_of(&a, &t), hash_of(&KeyedHash::new([2, 2]), &t));
    }

    #[test]
    fn swapped_ends_and_neighbouring_ports_do_not_collide() {
        let h = KeyedHash::new([0, 0]);
        let mut seen = HashSet::new();
        // 256 addresses × 256 ports, each both ways round: 131,072 tuples.
        for host in 0..=255u8 {
            for port in 0..256u16 {
                let a = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, host), 40000 + port);
                let b = SocketAddrV4::new(Ipv4Addr::new(198, 18, 1, 1), 80);
                assert!(seen.insert(hash_of(&h, &(a, b))));
                assert!(seen.insert(hash_of(&h, &(b, a))));
            }
        }
    }

    #[test]
    fn every_output_bit_depends_on_the_input() {
        // Over sequential ports, each output bit is set in roughly half the
        // hashes: the high bits (hashbrown's control byte) included.
        let h = KeyedHash::new([0x1234, 0x5678]);
        let n = 4096u32;
        let mut ones = [0u32; 64];
        for port in 0..n {
            let v = hash_of(&h, &(port as u16));
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += ((v >> bit) & 1) as u32;
            }
        }
        for (bit, &count) in ones.iter().enumerate() {
            assert!(
                (n * 4 / 10..n * 6 / 10).contains(&count),
                "bit {bit} set in {count} of {n}"
            );
        }
    }

    #[test]
    fn byte_strings_of_different_lengths_differ() {
        let h = KeyedHash::new([7, 9]);
        let mut seen = HashSet::new();
        for len in 0..=24 {
            assert!(seen.insert(hash_of(&h, &vec![0u8; len])));
        }
    }
}
