//! Initial sequence numbers (RFC 6528) and per-connection secrets.
//!
//! `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)`,
//! where M is a clock ticking every 4 µs (RFC 9293 §3.4.1) and F is
//! SipHash-2-4 keyed with a secret drawn when the stack starts. An
//! off-path attacker can't predict F; the clock keeps successive
//! incarnations of a 4-tuple moving forward. The same hash, with a
//! different domain byte, gives each connection its timestamp offset
//! (RFC 7323 §5.4), so timestamps reveal no global clock.

use std::net::SocketAddrV4;

use crate::time::Instant;
use crate::transport::tcp::seq::SeqNumber;

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

/// Keyed generator of initial sequence numbers and timestamp offsets.
#[derive(Debug, Clone)]
pub struct IsnGenerator {
    key: [u64; 2],
}

impl IsnGenerator {
    /// A generator with the secret `key`.
    pub fn new(key: [u64; 2]) -> IsnGenerator {
        IsnGenerator { key }
    }

    fn hash(&self, domain: u8, local: SocketAddrV4, remote: SocketAddrV4) -> u64 {
        let mut d = [0u8; 13];
        d[0] = domain;
        d[1..5].copy_from_slice(&local.ip().octets());
        d[5..7].copy_from_slice(&local.port().to_be_bytes());
        d[7..11].copy_from_slice(&remote.ip().octets());
        d[11..13].copy_from_slice(&remote.port().to_be_bytes());
        siphash24(self.key, &d)
    }

    /// The ISN for a connection between `local` and `remote` at `now`.
    pub fn isn(&self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4) -> SeqNumber {
        let m = (now.total_micros() / 4) as u32;
        SeqNumber(m.wrapping_add(self.hash(0, local, remote) as u32))
    }

    /// The timestamp offset for a connection.
    pub fn ts_offset(&self, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        self.hash(1, local, remote) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn siphash_reference_vectors() {
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

    #[test]
    fn isn_depends_on_tuple_key_and_clock() {
        let a = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 1000);
        let b = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80);
        let g = IsnGenerator::new([1, 2]);
        let t = Instant::from_secs(1);
        assert_ne!(g.isn(t, a, b), g.isn(t, b, a));
        assert_ne!(g.isn(t, a, b), IsnGenerator::new([1, 3]).isn(t, a, b));
        // The clock moves it forward by 250 000 per second.
        assert_eq!(g.isn(Instant::from_secs(2), a, b) - g.isn(t, a, b), 250_000);
    }
}
