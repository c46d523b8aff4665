//! SipHash-2-4 (Aumasson and Bernstein, 2012), the keyed hash behind every
//! value the stack derives from a secret: initial sequence numbers and
//! timestamp offsets (RFC 6528, RFC 7323 §5.4), ephemeral ports (RFC 6056
//! §3.3.4), IP identifications (RFC 7739 §5.3), SYN cookies (RFC 4987
//! §3.6) and [`crate::rand::KeyedRng`]. It is a pseudo-random function: an
//! attacker who sees outputs learns nothing about the key or about other
//! outputs, which is what these values need and what a plain generator
//! (whose state its outputs reveal) does not give.
//!
//! # Example
//!
//! The test vectors of the SipHash paper (Appendix A), with key `00 01 .. 0f`:
//!
//! ```
//! use netstrata::siphash::siphash24;
//!
//! let key = [0x0706050403020100, 0x0f0e0d0c0b0a0908];
//! assert_eq!(siphash24(key, b""), 0x726fdb47dd0e0e31);
//! let message: Vec<u8> = (0..15).collect();
//! assert_eq!(siphash24(key, &message), 0xa129ca6149be45e5);
//! assert_ne!(siphash24([0, 0], &message), siphash24(key, &message));
//! ```

/// SipHash-2-4 (Aumasson and Bernstein, 2012) of `data` under `key`.
pub fn siphash24(key: [u64; 2], data: &[u8]) -> u64 {
    let mut v = [
        key[0] ^ 0x736f_6d65_7073_6575,
        key[1] ^ 0x646f_7261_6e64_6f6d,
        key[0] ^ 0x6c79_6765_6e65_7261,
        key[1] ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let m = u64::from_le_bytes(w);
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let rest = chunks.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    last[7] = data.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    round(&mut v);
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        // From the SipHash paper, appendix A: key 00..0f, messages 00..(n-1).
        let key = [
            u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]),
            u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]),
        ];
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(key, &[]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(key, &msg), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash24(key, &msg[..8]), 0x93f5_f579_9a93_2462);
    }
}
