//! TCP sequence numbers: 32-bit counters compared modulo 2^32 (RFC 9293
//! §3.4).
//!
//! A [`SeqNumber`] names a byte (or a SYN or FIN) in one direction of a
//! connection. Arithmetic wraps at 2^32, and two numbers are ordered by the
//! sign of their 32-bit difference ("serial number arithmetic", as in RFC 1982
//! §3.2): `a < b` iff `b - a` read as a signed 32-bit integer is positive.
//! That order is meaningful only between numbers less than 2^31 apart, which
//! TCP guarantees for everything it compares (windows are at most 2^30 bytes,
//! RFC 7323 §2.3).
//!
//! Deliberately not here: window acceptability tests and PAWS (RFC 7323 §5),
//! which belong to the state machine.
//!
//! # Example
//!
//! Numbers compare across the wrap at 2^32:
//!
//! ```
//! use netstrata::transport::tcp::seq::SeqNumber;
//!
//! let near_end = SeqNumber(u32::MAX - 9);
//! let wrapped = near_end + 20;
//! assert_eq!(wrapped, SeqNumber(10));
//! assert!(near_end < wrapped); // 20 bytes later, though numerically smaller
//! assert_eq!(wrapped - near_end, 20);
//! assert_eq!(wrapped.wrapping_distance(near_end), 20);
//! assert_eq!(near_end.max(wrapped), wrapped);
//! ```

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};

/// A TCP sequence (or acknowledgment) number, with modulo-2^32 arithmetic
/// (RFC 9293 §3.4).
///
/// [`PartialOrd`] compares by the sign of the wrapping difference. It is
/// **not** a total order: it is not transitive across spans of 2^31 or more
/// (`0 < 2^30 < 2^31 < 3 * 2^30 < 0`), and two numbers exactly 2^31 apart are
/// incomparable (`partial_cmp` returns `None`, so both `<` and `>` are
/// false). Compare only numbers known to lie within 2^31 of each other, such
/// as the edges of one window.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// The forward distance from `from` to `self` modulo 2^32: how many
    /// sequence numbers `from + n == self` advances over. Meaningful when
    /// `from` is known not to be after `self` (e.g. `snd_nxt` from `snd_una`).
    pub const fn wrapping_distance(self, from: SeqNumber) -> u32 {
        self.0.wrapping_sub(from.0)
    }

    /// `self + n` modulo 2^32, for any `n` (no debug check).
    pub const fn wrapping_add(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n))
    }

    /// The later of two numbers in sequence space; `self` if they are equal
    /// or incomparable.
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if other > self { other } else { self }
    }

    /// The earlier of two numbers in sequence space; `self` if they are
    /// equal or incomparable.
    pub fn min(self, other: SeqNumber) -> SeqNumber {
        if other < self { other } else { self }
    }
}

/// Advances by `n` sequence numbers, wrapping at 2^32.
///
/// Debug builds panic if `n` exceeds `i32::MAX`: such a jump would make the
/// result compare *less* than `self`, which is always a bug in TCP.
impl Add<usize> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, n: usize) -> SeqNumber {
        debug_assert!(
            n <= i32::MAX as usize,
            "sequence number advanced by {n} (more than 2^31 - 1)"
        );
        SeqNumber(self.0.wrapping_add(n as u32))
    }
}

impl AddAssign<usize> for SeqNumber {
    fn add_assign(&mut self, n: usize) {
        *self = *self + n;
    }
}

/// Goes back by `n` sequence numbers, wrapping at 2^32.
///
/// Debug builds panic if `n` exceeds `i32::MAX` (see [`Add`]).
impl Sub<usize> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, n: usize) -> SeqNumber {
        debug_assert!(
            n <= i32::MAX as usize,
            "sequence number moved back by {n} (more than 2^31 - 1)"
        );
        SeqNumber(self.0.wrapping_sub(n as u32))
    }
}

impl SubAssign<usize> for SeqNumber {
    fn sub_assign(&mut self, n: usize) {
        *self = *self - n;
    }
}

/// The signed distance `self - rhs`: positive when `self` is after `rhs`.
/// Exact when the two are less than 2^31 apart.
impl Sub<SeqNumber> for SeqNumber {
    type Output = i32;
    fn sub(self, rhs: SeqNumber) -> i32 {
        self.0.wrapping_sub(rhs.0) as i32
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &SeqNumber) -> Option<Ordering> {
        match *self - *other {
            // Exactly half the space apart: neither is before the other.
            i32::MIN => None,
            d => Some(d.cmp(&0)),
        }
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeqNumber({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HALF: u32 = 1 << 31;

    #[test]
    fn wraps_at_2_32() {
        let a = SeqNumber(u32::MAX - 1);
        let b = a + 3;
        assert_eq!(b, SeqNumber(1));
        assert!(b > a);
        assert!(a < b);
        assert_eq!(b - a, 3);
        assert_eq!(a - b, -3);
        assert_eq!(b.wrapping_distance(a), 3);
        assert_eq!(b - 3, a);
        assert_eq!(a.max(b), b);
        assert_eq!(b.max(a), b);
        assert_eq!(a.min(b), a);
        assert_eq!(b.min(a), a);
        let mut c = a;
        c += 3;
        assert_eq!(c, b);
        c -= 3;
        assert_eq!(c, a);
    }

    #[test]
    fn not_a_total_order() {
        // Antipodal numbers are incomparable.
        let a = SeqNumber(5);
        let b = SeqNumber(5 + HALF);
        assert_eq!(a.partial_cmp(&b), None);
        assert!(!a.lt(&b) && !a.gt(&b) && !a.le(&b) && !a.ge(&b) && a != b);
        // Transitivity fails around the circle.
        let q = 1u32 << 30;
        let pts = [0, q, 2 * q, 3 * q].map(SeqNumber);
        for i in 0..4 {
            assert!(pts[i] < pts[(i + 1) % 4]);
        }
    }

    #[test]
    fn display() {
        assert_eq!(SeqNumber(4_000_000_000).to_string(), "4000000000");
        assert_eq!(format!("{:?}", SeqNumber(7)), "SeqNumber(7)");
    }

    proptest! {
        #[test]
        fn add_then_distance(a in any::<u32>(), n in 0..HALF) {
            let a = SeqNumber(a);
            let b = a + n as usize;
            prop_assert_eq!(b - a, n as i32);
            prop_assert_eq!(b.wrapping_distance(a), n);
            prop_assert_eq!(b - n as usize, a);
            prop_assert_eq!(a.wrapping_add(n), b);
        }

        #[test]
        fn order_consistent_across_wrap(a in any::<u32>(), n in 1..HALF) {
            let a = SeqNumber(a);
            let b = a + n as usize;
            prop_assert!(a < b);
            prop_assert!(b > a);
            prop_assert!(a <= b);
            prop_assert!(b >= a);
            prop_assert_ne!(a, b);
            prop_assert_eq!(a.partial_cmp(&b), Some(Ordering::Less));
            prop_assert_eq!(b.partial_cmp(&a), Some(Ordering::Greater));
            prop_assert_eq!(a.max(b), b);
            prop_assert_eq!(a.min(b), a);
            prop_assert_eq!(b.max(a), b);
            prop_assert_eq!(b.min(a), a);
        }

        #[test]
        fn straddling_zero(k in 0..1000u32, n in 1001..HALF) {
            // Numbers just below 2^32 come before small numbers after them.
            let a = SeqNumber(u32::MAX - k);
            let b = a + n as usize;
            prop_assert!(b.0 < a.0);
            prop_assert!(a < b);
        }

        #[test]
        fn antisymmetric_and_reflexive(a in any::<u32>(), b in any::<u32>()) {
            let (a, b) = (SeqNumber(a), SeqNumber(b));
            prop_assert_eq!(a.partial_cmp(&a), Some(Ordering::Equal));
            prop_assert_eq!(a.partial_cmp(&b), b.partial_cmp(&a).map(Ordering::reverse));
            prop_assert_eq!(a.partial_cmp(&b) == Some(Ordering::Equal), a == b);
        }
    }
}
