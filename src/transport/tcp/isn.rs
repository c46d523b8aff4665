//! Initial sequence numbers (RFC 6528) and per-connection secrets.
//!
//! `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)`,
//! where M is a clock ticking every 4 µs (RFC 9293 §3.4.1) and F is
//! SipHash-2-4 keyed with a secret drawn when the stack starts. An
//! off-path attacker can't predict F; the clock keeps successive
//! incarnations of a 4-tuple moving forward. The same hash, with a
//! different domain byte, gives each connection its timestamp offset
//! (RFC 7323 §5.4), so timestamps reveal no global clock.
//!
//! # Example
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use netstrata::transport::tcp::isn::IsnGenerator;
//! use netstrata::Instant;
//!
//! let local = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 49152);
//! let remote = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80);
//! let isns = IsnGenerator::new([1, 2]);
//! let first = isns.isn(Instant::ZERO, local, remote);
//! // The clock ticks every 4 µs: a later incarnation starts further on.
//! assert_eq!(isns.isn(Instant::from_micros(400), local, remote), first + 100);
//! // Another 4-tuple, or another key, starts somewhere unrelated.
//! let other = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 3), 80);
//! assert_ne!(isns.isn(Instant::ZERO, local, other), first);
//! assert_ne!(IsnGenerator::new([1, 3]).isn(Instant::ZERO, local, remote), first);
//! ```

use std::net::SocketAddrV4;

use crate::siphash::siphash24;
use crate::time::Instant;
use crate::transport::tcp::seq::SeqNumber;

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
