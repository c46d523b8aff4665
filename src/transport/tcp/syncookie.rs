//! SYN cookies (RFC 4987 §3.6), with Linux's encoding.
//!
//! When a listener's queue of half-open connections is full, a SYN is
//! answered without keeping any state: everything needed to build the
//! connection later is folded into the SYN-ACK's sequence number (and,
//! when the peer uses timestamps, into its timestamp), under a secret
//! keyed hash. The peer's ACK returns the cookie as ACK − 1; if the hash
//! checks out, the connection is created as if its SYN had been queued.
//! A spoofed SYN flood then costs nothing but the SYN-ACKs, and a
//! legitimate client still connects at once.
//!
//! The sequence number (Linux's `secure_tcp_syn_cookie`):
//!
//! ```text
//! cookie = H(tuple, key0) + peer ISN + (t << 24)
//!        + ((H(tuple, t, key1) + mss_index) mod 2^24)
//! ```
//!
//! where `t` counts minutes, so a cookie is accepted for at most
//! [`MAX_AGE_MINUTES`] minutes, and `mss_index` picks the MSS from a table
//! of common values ([`MSS_TABLE`]: two bits). A forger must guess 24 bits
//! of keyed hash per attempt: a blind ACK is taken for a valid cookie with
//! probability 4 in 2^24 while the listener sends cookies (and not at all
//! otherwise), so a flood of guesses makes one spoofed connection per four
//! million ACKs or so, as on Linux; such a connection is an orphan-to-be
//! that sends into the void and times out.
//!
//! The options a SYN-ACK cannot otherwise remember ride in the low six
//! bits of its timestamp value when the peer sent timestamps (Linux's
//! `cookie_init_timestamp`): the peer's window scale (four bits, 15 for
//! none), SACK permitted, and ECN (unused here). The peer echoes the
//! value in its ACK. Without timestamps, a cookie connection goes without
//! window scaling and SACK, as on Linux.
//!
//! # Example
//!
//! A listener answers a SYN with a cookie, and recognises it (and the
//! peer's MSS) in the ACK that returns it, for a while:
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use netstrata::transport::tcp::seq::SeqNumber;
//! use netstrata::transport::tcp::syncookie::{MSS_TABLE, SynCookies};
//! use netstrata::transport::tcp::syncookie::{decode_timestamp, encode_timestamp};
//! use netstrata::Instant;
//!
//! let cookies = SynCookies::new([[1, 2], [3, 4]]);
//! let local = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 80);
//! let remote = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 40000);
//! let peer_isn = SeqNumber(1000);
//! let mss = SynCookies::mss_index(1460);
//! let now = Instant::from_secs(30);
//! let cookie = cookies.cookie(now, local, remote, peer_isn, mss);
//!
//! let check = |at, cookie| cookies.check(at, local, remote, peer_isn, cookie);
//! assert_eq!(check(now, cookie).map(|i| MSS_TABLE[i as usize]), Some(1460));
//! assert_eq!(check(now, cookie + 1), None); // forged
//! assert_eq!(check(Instant::from_secs(600), cookie), None); // too old
//!
//! let ts = encode_timestamp(123_456, Some(7), true);
//! assert_eq!(decode_timestamp(ts), (Some(7), true));
//! ```

use std::net::SocketAddrV4;

use crate::siphash::siphash24;
use crate::time::Instant;
use crate::transport::tcp::seq::SeqNumber;

/// MSS values a cookie can carry (Linux's IPv4 `msstab`).
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];
/// How long a cookie stays valid, in minutes of its clock.
pub const MAX_AGE_MINUTES: u32 = 2;

const COOKIE_BITS: u32 = 24;
const COOKIE_MASK: u32 = (1 << COOKIE_BITS) - 1;
/// Timestamp bits carrying options.
const TS_BITS: u32 = 6;
const TS_MASK: u32 = (1 << TS_BITS) - 1;
const TS_WSCALE_NONE: u32 = 0xf;
const TS_SACK: u32 = 1 << 4;

/// What a cookie remembers of the SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieOptions {
    /// The MSS (one of [`MSS_TABLE`], at most the peer's).
    pub mss: u16,
    /// The peer's window scale, if it offered one (and timestamps carried
    /// it).
    pub window_scale: Option<u8>,
    /// The peer permitted SACK (and timestamps carried it).
    pub sack_permitted: bool,
}

/// The secret keys and clock of SYN cookies.
#[derive(Clone)]
pub struct SynCookies {
    keys: [[u64; 2]; 2],
}

impl core::fmt::Debug for SynCookies {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SynCookies").finish_non_exhaustive()
    }
}

fn minutes(now: Instant) -> u32 {
    (now.total_millis() / 60_000) as u32
}

impl SynCookies {
    /// Cookies under two secret keys (from the interface's generator).
    pub fn new(keys: [[u64; 2]; 2]) -> SynCookies {
        SynCookies { keys }
    }

    fn hash(&self, key: usize, local: SocketAddrV4, remote: SocketAddrV4, count: u32) -> u32 {
        let mut d = [0u8; 16];
        d[..4].copy_from_slice(&remote.ip().octets());
        d[4..8].copy_from_slice(&local.ip().octets());
        d[8..10].copy_from_slice(&remote.port().to_be_bytes());
        d[10..12].copy_from_slice(&local.port().to_be_bytes());
        d[12..].copy_from_slice(&count.to_be_bytes());
        siphash24(self.keys[key], &d) as u32
    }

    /// The index in [`MSS_TABLE`] of the largest entry not above the
    /// peer's MSS (the smallest when the peer's is below them all).
    pub fn mss_index(peer_mss: u16) -> u32 {
        MSS_TABLE.iter().rposition(|&m| m <= peer_mss).unwrap_or(0) as u32
    }

    /// The ISN of a SYN-ACK answering a SYN from `remote` (whose ISN is
    /// `peer_isn`) to `local`, remembering MSS index `mss_index`.
    pub fn cookie(
        &self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_isn: SeqNumber,
        mss_index: u32,
    ) -> SeqNumber {
        let count = minutes(now);
        let h = self
            .hash(0, local, remote, 0)
            .wrapping_add(peer_isn.0)
            .wrapping_add(count << COOKIE_BITS);
        let data = self.hash(1, local, remote, count).wrapping_add(mss_index) & COOKIE_MASK;
        SeqNumber(h.wrapping_add(data))
    }

    /// Checks the cookie an ACK returns (`ack - 1`) for a connection whose
    /// peer ISN was `peer_isn` (`seq - 1`); returns the MSS index if it is
    /// genuine and at most [`MAX_AGE_MINUTES`] old.
    pub fn check(
        &self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_isn: SeqNumber,
        cookie: SeqNumber,
    ) -> Option<u32> {
        let count = minutes(now);
        let rest = cookie
            .0
            .wrapping_sub(self.hash(0, local, remote, 0))
            .wrapping_sub(peer_isn.0);
        let age = count.wrapping_sub(rest >> COOKIE_BITS) & (u32::MAX >> COOKIE_BITS);
        if age >= MAX_AGE_MINUTES {
            return None;
        }
        let index =
            rest.wrapping_sub(self.hash(1, local, remote, count.wrapping_sub(age))) & COOKIE_MASK;
        (index < MSS_TABLE.len() as u32).then_some(index)
    }
}

/// The timestamp value of a cookie SYN-ACK: our clock `ts_now` with its
/// low six bits replaced by the options, never ahead of the clock
/// (Linux's `cookie_init_timestamp`).
pub fn encode_timestamp(ts_now: u32, window_scale: Option<u8>, sack_permitted: bool) -> u32 {
    let mut options = window_scale.map_or(TS_WSCALE_NONE, |w| u32::from(w.min(14)));
    if sack_permitted {
        options |= TS_SACK;
    }
    let ts = (ts_now & !TS_MASK) | options;
    if ts > ts_now {
        ts.wrapping_sub(TS_MASK + 1)
    } else {
        ts
    }
}

/// The options a cookie SYN-ACK's timestamp carried, from the peer's echo
/// (`tsecr`) in its ACK: `(window scale, SACK permitted)`.
pub fn decode_timestamp(tsecr: u32) -> (Option<u8>, bool) {
    let wscale = tsecr & TS_WSCALE_NONE;
    let sack = tsecr & TS_SACK != 0;
    // Four bits hold 0..=14 (RFC 7323 §2.3's largest shift) or 15, none.
    let wscale = (wscale != TS_WSCALE_NONE).then_some(wscale as u8);
    (wscale, sack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ends() -> (SocketAddrV4, SocketAddrV4) {
        (
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 80),
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 5, 9), 40000),
        )
    }

    #[test]
    fn a_cookie_checks_out_for_two_minutes_and_only_for_its_connection() {
        let c = SynCookies::new([[1, 2], [3, 4]]);
        let (local, remote) = ends();
        let isn = SeqNumber(0xdead_beef);
        let t0 = Instant::from_secs(3600);
        let cookie = c.cookie(t0, local, remote, isn, 3);
        assert_eq!(c.check(t0, local, remote, isn, cookie), Some(3));
        assert_eq!(
            c.check(
                t0 + crate::time::Duration::from_secs(119),
                local,
                remote,
                isn,
                cookie
            ),
            Some(3)
        );
        assert_eq!(
            c.check(
                t0 + crate::time::Duration::from_secs(180),
                local,
                remote,
                isn,
                cookie
            ),
            None
        );
        // Another peer ISN, another port, another key: no. (A peer ISN a
        // step or two off lands on another MSS index, as in Linux: the
        // hash only has to be right, and a forger who knows the cookie
        // gains nothing by it.)
        assert_eq!(c.check(t0, local, remote, isn + 100, cookie), None);
        let other = SocketAddrV4::new(*remote.ip(), 40001);
        assert_eq!(c.check(t0, local, other, isn, cookie), None);
        let c2 = SynCookies::new([[1, 2], [3, 5]]);
        assert_eq!(c2.check(t0, local, remote, isn, cookie), None);
        assert_eq!(c.check(t0, local, remote, isn, cookie + 1), None);
    }

    #[test]
    fn guessing_rarely_succeeds() {
        let c = SynCookies::new([[9, 9], [7, 7]]);
        let (local, remote) = ends();
        let t0 = Instant::from_secs(60);
        let hits = (0..100_000u32)
            .filter(|&g| {
                c.check(
                    t0,
                    local,
                    remote,
                    SeqNumber(5),
                    SeqNumber(g.wrapping_mul(2_654_435_761)),
                )
                .is_some()
            })
            .count();
        // 4 valid values per 2^24 for each of 2 minutes: ~0.05 expected.
        assert!(hits <= 2, "{hits} guesses accepted");
    }

    #[test]
    fn mss_index_picks_the_largest_entry_not_above() {
        assert_eq!(SynCookies::mss_index(1460), 3);
        assert_eq!(SynCookies::mss_index(1448), 2);
        assert_eq!(SynCookies::mss_index(1400), 1);
        assert_eq!(SynCookies::mss_index(536), 0);
        assert_eq!(SynCookies::mss_index(100), 0);
        assert_eq!(SynCookies::mss_index(9000), 3);
    }

    #[test]
    fn timestamps_carry_window_scale_and_sack() {
        for ts_now in [0u32, 63, 64, 1_000_000, u32::MAX] {
            for (w, sack) in [
                (None, false),
                (Some(7), true),
                (Some(0), false),
                (Some(14), true),
            ] {
                let ts = encode_timestamp(ts_now, w, sack);
                assert!(ts_now.wrapping_sub(ts) < 128, "{ts} far from {ts_now}");
                assert_eq!(decode_timestamp(ts), (w, sack));
            }
        }
    }
}
