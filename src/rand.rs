//! Randomness: the operating system's entropy, a keyed generator for
//! everything an attacker may see, and a fast seeded one for simulations.
//!
//! - [`os_random_u64`] reads the operating system's entropy
//!   (`/dev/urandom`, which never blocks once the kernel's pool is
//!   initialised, as `getrandom(2)` without flags does).
//! - [`KeyedRng`] makes the stack's random choices: ephemeral ports, ping
//!   identifiers, DNS IDs, and the secret keys behind initial sequence
//!   numbers, timestamp offsets, IP identifications and SYN cookies. It is
//!   SipHash-2-4 of a counter under a 128-bit key, so outputs reveal
//!   neither the key nor other outputs. Keyed from the OS by default
//!   ([`KeyedRng::from_os`]), or from a seed on purpose
//!   ([`KeyedRng::from_seed`]) so that a simulation replays exactly.
//! - [`Rng`] is SplitMix64: fast, statistically sound and not
//!   cryptographic (its outputs reveal its state). Fault injection and
//!   tests use it; nothing an attacker can observe comes from it.
//!
//! # Example
//!
//! A seeded generator replays; a forked one is independent of its parent:
//!
//! ```
//! use netstrata::rand::{KeyedRng, Rng};
//!
//! let mut a = KeyedRng::from_seed(42);
//! let mut b = KeyedRng::from_seed(42);
//! assert_eq!(a.next_u64(), b.next_u64());
//! let key = a.derive_key("isn"); // does not advance `a`
//! assert_eq!(a.next_u64(), b.next_u64());
//! assert_ne!(key, a.derive_key("syncookie"));
//! assert!((0..100).all(|_| a.below(6) < 6));
//!
//! let mut fast = Rng::new(1);
//! assert!(fast.chance(1.0) && !fast.chance(0.0));
//! assert_ne!(KeyedRng::from_os().next_u64(), KeyedRng::from_os().next_u64());
//! ```

use std::io::Read;

use crate::siphash::siphash24;

/// 64 bits of the operating system's entropy.
///
/// Read from `/dev/urandom`; where that cannot be read, from the keys the
/// standard library draws from the operating system for `HashMap`
/// (`RandomState`), mixed with the time and a per-process counter, so that
/// two calls never return the same value.
pub fn os_random_u64() -> u64 {
    let mut b = [0u8; 8];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    match read {
        Ok(()) => u64::from_ne_bytes(b),
        Err(e) => {
            use std::hash::{BuildHasher, Hasher};
            use std::sync::atomic::{AtomicU64, Ordering};
            static CALLS: AtomicU64 = AtomicU64::new(0);
            log::warn!("/dev/urandom unreadable ({e}): falling back to std's RandomState");
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            h.write_u64(t);
            h.finish()
        }
    }
}

/// A generator whose outputs an attacker may see: SipHash-2-4 of a counter
/// under a secret 128-bit key (a pseudo-random function in counter mode).
#[derive(Clone)]
pub struct KeyedRng {
    key: [u64; 2],
    counter: u64,
}

impl core::fmt::Debug for KeyedRng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The key is a secret: it stays out of logs.
        f.debug_struct("KeyedRng").finish_non_exhaustive()
    }
}

impl KeyedRng {
    /// A generator keyed from the operating system's entropy.
    pub fn from_os() -> KeyedRng {
        KeyedRng {
            key: [os_random_u64(), os_random_u64()],
            counter: 0,
        }
    }

    /// A generator whose whole output is determined by `seed`: for
    /// simulations and tests that must replay exactly. Anyone who knows the
    /// seed can predict every value, so a seed is for deliberate use only.
    pub fn from_seed(seed: u64) -> KeyedRng {
        let mut expand = Rng::new(seed);
        KeyedRng {
            key: [expand.next_u64(), expand.next_u64()],
            counter: 0,
        }
    }

    /// From the seed if one is given, else from the operating system.
    pub fn new(seed: Option<u64>) -> KeyedRng {
        seed.map_or_else(KeyedRng::from_os, KeyedRng::from_seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(1);
        siphash24(self.key, &self.counter.to_le_bytes())
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// An independent generator for a part of the stack, keyed from this
    /// one.
    pub fn fork(&mut self) -> KeyedRng {
        KeyedRng {
            key: self.next_key(),
            counter: 0,
        }
    }

    /// A fresh 128-bit secret key for a keyed hash.
    pub fn next_key(&mut self) -> [u64; 2] {
        [self.next_u64(), self.next_u64()]
    }

    /// A 128-bit secret key for the purpose named by `label`, derived
    /// without advancing the generator: what it produces afterwards is the
    /// same as if this had not been called (a seeded simulation replays
    /// the same whether or not a part of the stack derives keys). The
    /// derivation is the same PRF on inputs of more than 8 bytes, which no
    /// counter value is, so derived keys are independent of every output.
    pub fn derive_key(&self, label: &str) -> [u64; 2] {
        let mut input = Vec::with_capacity(label.len() + 9);
        input.extend_from_slice(b"derive:");
        input.extend_from_slice(label.as_bytes());
        input.push(0);
        let first = siphash24(self.key, &input);
        *input.last_mut().expect("not empty") = 1;
        [first, siphash24(self.key, &input)]
    }

    /// A uniform value in `0..bound` (zero when `bound` is zero).
    pub fn below(&mut self, bound: u64) -> u64 {
        uniform_below(bound, || self.next_u64())
    }
}

/// Lemire's multiply-shift method: a uniform value in `0..bound` from
/// uniform 64-bit words, without modulo bias.
fn uniform_below(bound: u64, mut next: impl FnMut() -> u64) -> u64 {
    if bound == 0 {
        return 0;
    }
    loop {
        let m = u128::from(next()) * u128::from(bound);
        let low = m as u64;
        if low >= bound.wrapping_neg() % bound {
            return (m >> 64) as u64;
        }
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose whole output is determined by `seed`.
    pub const fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A uniform value in `0..bound` (zero when `bound` is zero), without
    /// modulo bias (Lemire's multiply-shift method).
    pub fn below(&mut self, bound: u64) -> u64 {
        uniform_below(bound, || self.next_u64())
    }

    /// True with probability `p` (clamped to 0..=1).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        // 53 random bits give a uniform f64 in [0, 1).
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_leave_the_sequence_alone_and_differ_by_label() {
        let mut plain = KeyedRng::from_seed(5);
        let mut deriving = KeyedRng::from_seed(5);
        let a = deriving.derive_key("a");
        assert_eq!(a, deriving.derive_key("a"));
        assert_ne!(a, deriving.derive_key("b"));
        assert_ne!(a, KeyedRng::from_seed(6).derive_key("a"));
        let outputs: Vec<u64> = (0..100).map(|_| plain.next_u64()).collect();
        for &o in &outputs {
            assert_eq!(deriving.next_u64(), o);
            assert!(!a.contains(&o));
        }
    }

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = Rng::new(3);
        assert_eq!(r.below(0), 0);
        for bound in [1u64, 2, 3, 10, 1000, u64::MAX] {
            for _ in 0..200 {
                assert!(r.below(bound) < bound);
            }
        }
    }

    #[test]
    fn keyed_rng_replays_a_seed_and_differs_across_os_keys() {
        let mut a = KeyedRng::from_seed(5);
        let mut b = KeyedRng::new(Some(5));
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        assert!(xs.iter().all(|&x| x == b.next_u64()));
        let mut c = KeyedRng::from_seed(6);
        assert!(xs.iter().all(|&x| x != c.next_u64()));
        // Two generators keyed by the OS agree on nothing.
        let (mut o1, mut o2) = (KeyedRng::from_os(), KeyedRng::from_os());
        let ys: Vec<u64> = (0..8).map(|_| o1.next_u64()).collect();
        assert!(ys.iter().all(|&y| y != o2.next_u64()));
        assert_ne!(os_random_u64(), os_random_u64());
        for bound in [1u64, 7, 1000] {
            assert!((0..100).all(|_| a.below(bound) < bound));
        }
    }

    #[test]
    fn chance_matches_probability_roughly() {
        let mut r = Rng::new(11);
        let hits = (0..100_000).filter(|_| r.chance(0.1)).count();
        assert!((9_000..11_000).contains(&hits), "{hits}");
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
    }
}
