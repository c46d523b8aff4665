//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The one's-complement sum is independent of byte order (RFC 1071 §2(B)),
//! so the bulk loop adds the data as native-endian 64-bit words into 128-bit
//! accumulators (the carries of a 64-bit add land in the upper half instead
//! of being folded on every step), four independent chains at a time, and
//! folds to 16 bits once at the end, branch-free. The result is converted to
//! network order last. Short buffers (headers) matter as much as long ones:
//! the tail is read as 8-, 4-, 2- and 1-byte pieces without a copy. On a
//! 2-core AMD EPYC (Zen 4) VM, built for baseline x86-64, this runs at about
//! 39 GB/s on 1500-byte buffers and 12 GB/s on 64-byte ones, against about
//! 2.5 and 3.1 GB/s for the plain 16-bit loop ([`checksum_reference`]); see
//! `benches/checksum.rs`.
//!
//! [`Checksum`] accumulates several pieces (a pseudo-header, a header, a
//! payload) and keeps track of odd-length pieces so that they combine as if
//! they were one buffer.
//!
//! # Example
//!
//! A real IPv4 header sums to zero with its checksum field in place, and an
//! incremental update after a change agrees with summing afresh:
//!
//! ```
//! use netstrata::checksum::{Checksum, checksum, update};
//!
//! let mut header = [
//!     0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, // checksum b861
//!     0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
//! ];
//! assert_eq!(checksum(&header), 0);
//! header[10..12].fill(0);
//! assert_eq!(checksum(&header), 0xb861);
//!
//! // Pieces of odd length combine as if they were one buffer.
//! let whole = Checksum::new().add_bytes(&header).finish();
//! let pieces = Checksum::new().add_bytes(&header[..5]).add_bytes(&header[5..]).finish();
//! assert_eq!(whole, pieces);
//!
//! // The TTL drops from 64 to 63 (RFC 1624).
//! header[8] = 63;
//! assert_eq!(update(0xb861, 0x4011, 0x3f11), checksum(&header));
//! ```

use core::net::Ipv4Addr;

/// Folds a wide one's-complement sum down to 16 bits (with end-around
/// carry), in the byte order the sum was computed in.
///
/// Three fixed halving steps, no loop and no data-dependent branch: each
/// step adds the two halves and then the carry out of that addition, which
/// cannot carry again (the sum of two n-bit values is at most 2^(n+1) - 2).
/// A non-zero sum never folds to zero, as with the textbook loop.
#[inline]
fn fold(sum: u128) -> u16 {
    let (s, c) = (sum as u64).overflowing_add((sum >> 64) as u64);
    let s = s + u64::from(c);
    let (s, c) = (s as u32).overflowing_add((s >> 32) as u32);
    let s = s + u32::from(c);
    let (s, c) = (s as u16).overflowing_add((s >> 16) as u16);
    s + u16::from(c)
}

/// The one's-complement sum of `data` as native-endian 16-bit words,
/// unfolded. A trailing odd byte is padded with a zero byte after it.
///
/// Words of any even width at even offsets may be mixed freely: since
/// 2^16 = 1 (mod 2^16 - 1), a 64- or 32-bit native word adds the same, after
/// folding, as its 16-bit halves.
#[inline]
fn sum_native(data: &[u8]) -> u128 {
    let mut acc = [0u128; 4];
    let mut chunks = data.chunks_exact(32);
    for c in &mut chunks {
        // `first_chunk` on an exact 8-byte chunk never fails and compiles
        // to a plain load: no copy, no bounds check.
        for (a, w) in acc.iter_mut().zip(c.chunks_exact(8)) {
            if let Some(w) = w.first_chunk::<8>() {
                *a += u128::from(u64::from_ne_bytes(*w));
            }
        }
    }
    let mut sum = acc[0] + acc[1] + acc[2] + acc[3];
    // At most 31 bytes remain: up to three 8-byte words, then a 4-, a 2-
    // and a 1-byte piece (fixed-size loads rather than a variable-length
    // copy into a padded word, which costs a `memcpy` call).
    let mut words = chunks.remainder().chunks_exact(8);
    for w in &mut words {
        if let Some(w) = w.first_chunk::<8>() {
            sum += u128::from(u64::from_ne_bytes(*w));
        }
    }
    let mut rest = words.remainder();
    if let Some((w, r)) = rest.split_first_chunk::<4>() {
        sum += u128::from(u32::from_ne_bytes(*w));
        rest = r;
    }
    if let Some((w, r)) = rest.split_first_chunk::<2>() {
        sum += u128::from(u16::from_ne_bytes(*w));
        rest = r;
    }
    if let [b] = rest {
        sum += u128::from(u16::from_ne_bytes([*b, 0]));
    }
    sum
}

/// Converts a 16-bit sum computed over native-endian words to the value of
/// the same sum over big-endian (network) words.
#[inline]
fn native_to_network(sum: u16) -> u16 {
    // The folded sum, laid out in memory, is the network-order sum.
    u16::from_be_bytes(sum.to_ne_bytes())
}

/// The 16-bit one's-complement sum of `data` in network byte order (not
/// complemented). Use [`checksum`] for the value that goes on the wire.
pub fn ones_complement_sum(data: &[u8]) -> u16 {
    native_to_network(fold(sum_native(data)))
}

/// The Internet checksum of `data`: the complement of its one's-complement
/// sum, in host order. A buffer that includes a correct checksum field sums
/// to zero here.
pub fn checksum(data: &[u8]) -> u16 {
    !ones_complement_sum(data)
}

/// An accumulator for a checksum over several pieces.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checksum {
    /// Sum of the network-order 16-bit words seen so far.
    sum: u64,
    /// Whether an odd number of bytes has been added so far.
    odd: bool,
}

impl Checksum {
    /// An empty accumulator.
    pub const fn new() -> Checksum {
        Checksum { sum: 0, odd: false }
    }

    /// Adds a piece of data that follows the pieces added before.
    pub fn add_bytes(&mut self, data: &[u8]) -> &mut Self {
        let s = u64::from(ones_complement_sum(data));
        // After an odd number of bytes, this piece's words straddle the
        // previous word boundary: its sum is byte-swapped (RFC 1071 §2(B)).
        let s = if self.odd {
            u64::from((s as u16).swap_bytes())
        } else {
            s
        };
        self.sum += s;
        self.odd ^= data.len() % 2 == 1;
        self
    }

    /// Adds a 16-bit word in host order, as if its two bytes in network
    /// order followed the pieces added before. Summing a header's fields
    /// as numbers, rather than reading back the header just written,
    /// spares the reads that would wait for those narrow stores to land.
    #[inline]
    pub fn add_u16(&mut self, word: u16) -> &mut Self {
        self.sum += u64::from(if self.odd { word.swap_bytes() } else { word });
        self
    }

    /// Adds a 32-bit word in host order, as [`Checksum::add_u16`] its two
    /// halves.
    #[inline]
    pub fn add_u32(&mut self, word: u32) -> &mut Self {
        self.add_u16((word >> 16) as u16).add_u16(word as u16)
    }

    /// Adds the IPv4 pseudo-header of RFC 768 / RFC 9293 §3.1: its six
    /// 16-bit words are added as numbers, with no buffer to sum.
    #[inline]
    pub fn add_ipv4_pseudo_header(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: u8,
        length: u16,
    ) -> &mut Self {
        let (src, dst) = (u32::from(src), u32::from(dst));
        let words = u64::from(src >> 16)
            + u64::from(src & 0xffff)
            + u64::from(dst >> 16)
            + u64::from(dst & 0xffff)
            + u64::from(protocol)
            + u64::from(length);
        // After an odd number of bytes the words straddle the boundary:
        // their sum is byte-swapped, as in `add_bytes`.
        self.sum += if self.odd {
            u64::from(fold(u128::from(words)).swap_bytes())
        } else {
            words
        };
        self
    }

    /// The one's-complement sum so far (not complemented).
    pub fn sum(&self) -> u16 {
        fold(u128::from(self.sum))
    }

    /// The checksum value to put on the wire, in host order.
    pub fn finish(&self) -> u16 {
        !self.sum()
    }
}

/// Where a transport protocol keeps its checksum (see
/// [`transport_checksum`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportChecksum {
    /// Offset of the 16-bit field in the transport header.
    pub offset: usize,
    /// The shortest header that holds the field.
    pub min_len: usize,
    /// Whether the sum covers the IPv4 pseudo-header.
    pub pseudo_header: bool,
}

/// Where the checksum of the transport protocol numbered `protocol`
/// (IANA) lies: TCP (RFC 9293 §3.1), UDP (RFC 768), ICMP (RFC 792). Code
/// that fills checksums left to it (a device with checksum offload, or
/// the IP layer fragmenting a datagram whose checksum was left to one)
/// needs to know, without knowing those protocols.
pub fn transport_checksum(protocol: u8) -> Option<TransportChecksum> {
    let (offset, min_len, pseudo_header) = match protocol {
        1 => (2, 4, false),
        6 => (16, 20, true),
        17 => (6, 8, true),
        _ => return None,
    };
    Some(TransportChecksum {
        offset,
        min_len,
        pseudo_header,
    })
}

/// Fills the checksum of `datagram`, a whole transport message of
/// `protocol` from `src` to `dst`, whatever its field held. A UDP sum of
/// zero is sent as 0xFFFF (zero says "no checksum", RFC 768). Returns
/// false, changing nothing, for another protocol or a message too short.
pub fn fill_transport(protocol: u8, src: Ipv4Addr, dst: Ipv4Addr, datagram: &mut [u8]) -> bool {
    let Some(t) = transport_checksum(protocol) else {
        return false;
    };
    let Ok(len) = u16::try_from(datagram.len()) else {
        return false;
    };
    if datagram.len() < t.min_len {
        return false;
    }
    datagram[t.offset..t.offset + 2].fill(0);
    let mut sum = Checksum::new();
    if t.pseudo_header {
        sum.add_ipv4_pseudo_header(src, dst, protocol, len);
    }
    let mut value = sum.add_bytes(datagram).finish();
    if value == 0 && protocol == 17 {
        value = 0xffff;
    }
    datagram[t.offset..t.offset + 2].copy_from_slice(&value.to_be_bytes());
    true
}

/// Updates checksum `old_checksum` after one 16-bit field of the summed data
/// changed from `old_word` to `new_word`, per RFC 1624 eqn. 3:
/// `HC' = ~(~HC + ~m + m')`, which avoids the -0 pitfall of RFC 1141.
///
/// The equation never yields 0xFFFF: where the new data sums to zero it
/// yields 0x0000, which is wrong if every word of the data is zero (their
/// sum is +0, and only 0xFFFF verifies: an echo reply with identifier,
/// sequence number and data all zero, found by fuzzing). 0xFFFF verifies
/// for any data that sums to zero, so it is returned instead.
pub fn update(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
    let sum = u128::from(!old_checksum) + u128::from(!old_word) + u128::from(new_word);
    match !fold(sum) {
        0 => 0xffff,
        c => c,
    }
}

/// As [`update`] for a 32-bit field (an address) that changed.
pub fn update_u32(old_checksum: u16, old: u32, new: u32) -> u16 {
    let c = update(old_checksum, (old >> 16) as u16, (new >> 16) as u16);
    update(c, old as u16, new as u16)
}

/// A reference implementation: the plain RFC 1071 loop over big-endian
/// 16-bit words. Kept for tests and as the benchmark baseline.
pub fn checksum_reference(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    if let [b] = words.remainder() {
        sum += u32::from(*b) << 8;
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Whether `data` with checksum `ck` passes verification: their sum
    /// is 0xFFFF (RFC 1071 §1, "the result is checked for all 1 bits").
    fn verifies(data: &[u8], ck: u16) -> bool {
        fold(u128::from(ones_complement_sum(data)) + u128::from(ck)) == 0xffff
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ones_complement_sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn real_ipv4_header_sums_to_zero() {
        // A captured IPv4 header with its checksum (0xb861) in place.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0);
        let mut zeroed = hdr;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(checksum(&zeroed), 0xb861);
    }

    #[test]
    fn empty_and_odd() {
        assert_eq!(checksum(&[]), 0xffff);
        assert_eq!(checksum(&[0xab]), !0xab00);
    }

    /// The textbook end-around-carry loop the branch-free [`fold`] replaces.
    fn fold_loop(mut sum: u128) -> u16 {
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn transport_checksums_are_filled_where_each_protocol_keeps_them() {
        let (src, dst) = (Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 1));
        let verifies = |protocol: u8, m: &[u8]| {
            let mut sum = Checksum::new();
            if protocol != 1 {
                sum.add_ipv4_pseudo_header(src, dst, protocol, m.len() as u16);
            }
            sum.add_bytes(m).finish() == 0
        };
        for (protocol, len) in [(1u8, 3000), (6, 20 + 1448), (17, 8 + 4000), (17, 8)] {
            let mut m: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
            assert!(fill_transport(protocol, src, dst, &mut m), "{protocol}");
            assert!(verifies(protocol, &m), "{protocol}, {len} bytes");
            // Whatever the field held before.
            let at = transport_checksum(protocol).unwrap().offset;
            m[at] ^= 0x5a;
            assert!(fill_transport(protocol, src, dst, &mut m));
            assert!(verifies(protocol, &m));
        }
        // A UDP sum of zero goes as all ones.
        let mut udp = vec![0u8; 10];
        udp[4..6].copy_from_slice(&10u16.to_be_bytes());
        let zero = (0..=u16::MAX).find(|&v| {
            udp[8..10].copy_from_slice(&v.to_be_bytes());
            fill_transport(17, src, dst, &mut udp);
            udp[6..8] == [0xff, 0xff]
        });
        assert!(zero.is_some() && verifies(17, &udp));
        // Unknown protocols and short messages are left alone.
        let mut m = vec![7u8; 30];
        assert!(!fill_transport(47, src, dst, &mut m));
        assert!(!fill_transport(6, src, dst, &mut m[..19]));
        assert_eq!(m, vec![7u8; 30]);
    }

    #[test]
    fn fold_edge_cases() {
        for v in [
            0,
            1,
            0xffff,
            0x1_0000,
            0x1_fffe,
            0xffff_ffff,
            0x1_0000_0000,
            u128::from(u64::MAX),
            u128::from(u64::MAX) + 1,
            u128::MAX,
            u128::MAX - 1,
            0xffff_u128 << 64,
        ] {
            assert_eq!(fold(v), fold_loop(v), "{v:#x}");
        }
    }

    #[test]
    fn all_ones_buffers_carry_correctly() {
        // Every word 0xffff: the most carries per add. Lengths straddle the
        // 32-byte block and every tail piece.
        let data = vec![0xffu8; 65536 + 40];
        for len in (0..100).chain([1499, 1500, 1501, 65535, 65536, 65536 + 39]) {
            assert_eq!(
                checksum(&data[..len]),
                checksum_reference(&data[..len]),
                "len {len}"
            );
        }
    }

    proptest! {
        #[test]
        fn pseudo_header_adds_as_its_bytes_would(
            prefix in proptest::collection::vec(any::<u8>(), 0..5),
            src in any::<u32>(),
            dst in any::<u32>(),
            protocol in any::<u8>(),
            length in any::<u16>(),
        ) {
            let (s, d) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            let mut bytes = [0u8; 12];
            bytes[0..4].copy_from_slice(&s.octets());
            bytes[4..8].copy_from_slice(&d.octets());
            bytes[9] = protocol;
            bytes[10..12].copy_from_slice(&length.to_be_bytes());
            let mut by_numbers = Checksum::new();
            by_numbers.add_bytes(&prefix).add_ipv4_pseudo_header(s, d, protocol, length);
            by_numbers.add_bytes(b"tail");
            let mut by_bytes = Checksum::new();
            by_bytes.add_bytes(&prefix).add_bytes(&bytes).add_bytes(b"tail");
            prop_assert_eq!(by_numbers.finish(), by_bytes.finish());
        }

        #[test]
        fn words_add_as_their_bytes_would(
            prefix in proptest::collection::vec(any::<u8>(), 0..5),
            half in any::<u16>(),
            word in any::<u32>(),
        ) {
            let mut by_numbers = Checksum::new();
            by_numbers.add_bytes(&prefix).add_u16(half).add_u32(word).add_bytes(b"tail");
            let mut by_bytes = Checksum::new();
            by_bytes
                .add_bytes(&prefix)
                .add_bytes(&half.to_be_bytes())
                .add_bytes(&word.to_be_bytes())
                .add_bytes(b"tail");
            prop_assert_eq!(by_numbers.finish(), by_bytes.finish());
        }

        #[test]
        fn fold_matches_loop(v in any::<u128>()) {
            prop_assert_eq!(fold(v), fold_loop(v));
        }

        #[test]
        fn matches_reference_at_any_alignment(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            skip in 0usize..8,
        ) {
            let d = &data[skip.min(data.len())..];
            prop_assert_eq!(checksum(d), checksum_reference(d));
        }

        #[test]
        fn matches_reference(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            prop_assert_eq!(checksum(&data), checksum_reference(&data));
        }

        #[test]
        fn pieces_combine_like_one_buffer(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
            cuts.sort();
            let mut acc = Checksum::new();
            let mut start = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                acc.add_bytes(&data[start..c]);
                start = c;
            }
            prop_assert_eq!(acc.finish(), checksum_reference(&data));
        }

        #[test]
        fn incremental_update_matches_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 2..200),
            idx in any::<prop::sample::Index>(),
            new_word in any::<u16>(),
        ) {
            let words = data.len() / 2;
            let i = idx.index(words) * 2;
            let old_ck = checksum(&data);
            let old_word = u16::from_be_bytes([data[i], data[i + 1]]);
            data[i..i + 2].copy_from_slice(&new_word.to_be_bytes());
            let updated = update(old_ck, old_word, new_word);
            // One's complement has two zeros, so the updated checksum may
            // differ from a fresh one; what matters is that it verifies.
            let fresh = checksum(&data);
            prop_assert!(updated == fresh || (updated == 0xffff && fresh == 0));
            prop_assert!(verifies(&data, updated));
        }

        /// Data that is all zero after the change (an echo reply with
        /// identifier, sequence number and data zero) needs 0xFFFF.
        #[test]
        fn incremental_update_to_all_zero_data_verifies(
            len in 1usize..100,
            idx in any::<prop::sample::Index>(),
            old_word in 1u16..,
        ) {
            let mut data = vec![0u8; len * 2];
            let i = idx.index(len) * 2;
            data[i..i + 2].copy_from_slice(&old_word.to_be_bytes());
            let old_ck = checksum(&data);
            data[i..i + 2].copy_from_slice(&[0, 0]);
            let updated = update(old_ck, old_word, 0);
            prop_assert_eq!(updated, 0xffff);
            prop_assert!(verifies(&data, updated));
        }
    }
}
