//! IPv4 identification values (RFC 6864, RFC 7739).
//!
//! The identification field only needs to be unique for one source,
//! destination and protocol within a datagram's lifetime (RFC 6864 §4.1).
//! One global counter, the classic choice, tells anyone who can make the
//! host answer how many datagrams it sent in between: that is how an idle
//! scan uses a bystander to probe a third host. Here a table of counters
//! is indexed by a keyed hash of the source, destination and protocol, and
//! each counter starts at a random value (the hash-based counters of RFC
//! 7739 §5.4): what one destination sees says nothing about the datagrams
//! sent to others, except for the 1 in [`BUCKETS`] that share its counter.
//! Even those learn little: a counter left idle jumps by a random amount
//! up to the milliseconds it was idle when it is next used, as Linux's
//! counters do since Knockel and Crandall counted packets between other
//! hosts through shared ones (2014), so its steps no longer count
//! datagrams.
//!
//! # Example
//!
//! Identifications count up per destination, from a random start:
//!
//! ```
//! use std::net::Ipv4Addr;
//! use netstrata::internet::ident::IdentGenerator;
//! use netstrata::internet::ipv4::Protocol;
//! use netstrata::rand::KeyedRng;
//! use netstrata::Instant;
//!
//! let mut idents = IdentGenerator::new(&mut KeyedRng::from_seed(1));
//! let (me, peer) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
//! let now = Instant::from_secs(1);
//! let first = idents.next(now, me, peer, Protocol::Udp);
//! assert_eq!(idents.next(now, me, peer, Protocol::Udp), first.wrapping_add(1));
//! // A flow that keeps its counter skips the lookup.
//! let counter = idents.counter(me, peer, Protocol::Udp);
//! assert_eq!(idents.next_of(counter, now), first.wrapping_add(2));
//! // Another seed, another start.
//! let mut other = IdentGenerator::new(&mut KeyedRng::from_seed(2));
//! assert_ne!(other.next(now, me, peer, Protocol::Udp), first);
//! ```

use std::net::Ipv4Addr;

use crate::internet::ipv4::Protocol;
use crate::rand::KeyedRng;
use crate::siphash::siphash24;
use crate::time::Instant;

/// Number of counters.
pub const BUCKETS: usize = 2048;

/// Hands out identification values per (source, destination, protocol).
#[derive(Clone)]
pub struct IdentGenerator {
    key: [u64; 2],
    /// Each counter and when it was last used (milliseconds, wrapping).
    counters: Box<[(u16, u32)]>,
    rng: KeyedRng,
    /// The last flow (source and destination as one number, protocol) and
    /// its counter: a bulk transfer sends to one destination, and the
    /// keyed hash is then computed once, not per datagram.
    last: Option<((u64, u8), IdentCounter)>,
}

/// One of the generator's counters, as [`IdentGenerator::counter`] chose
/// it for a flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdentCounter(usize);

impl core::fmt::Debug for IdentGenerator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IdentGenerator").finish_non_exhaustive()
    }
}

impl IdentGenerator {
    /// A table keyed and initialised from `rng`.
    pub fn new(rng: &mut KeyedRng) -> IdentGenerator {
        let key = rng.next_key();
        let counters = (0..BUCKETS).map(|_| (rng.next_u32() as u16, 0)).collect();
        IdentGenerator {
            key,
            counters,
            rng: rng.fork(),
            last: None,
        }
    }

    /// The identification for the next datagram from `src` to `dst`, sent
    /// at `now`.
    pub fn next(&mut self, now: Instant, src: Ipv4Addr, dst: Ipv4Addr, protocol: Protocol) -> u16 {
        let counter = self.counter(src, dst, protocol);
        self.next_of(counter, now)
    }

    /// Which counter the datagrams from `src` to `dst` take their
    /// identifications from: a flow that keeps it calls
    /// [`IdentGenerator::next_of`] with it and skips this lookup.
    pub fn counter(&mut self, src: Ipv4Addr, dst: Ipv4Addr, protocol: Protocol) -> IdentCounter {
        // Compared as numbers: the byte array the hash reads is built only
        // on a miss (comparing one just written byte by byte would wait
        // for those stores to land).
        let flow = (
            u64::from(u32::from(src)) << 32 | u64::from(u32::from(dst)),
            u8::from(protocol),
        );
        if let Some((last, counter)) = self.last
            && last == flow
        {
            return counter;
        }
        let mut d = [0u8; 9];
        d[..8].copy_from_slice(&flow.0.to_be_bytes());
        d[8] = flow.1;
        let counter = IdentCounter(siphash24(self.key, &d) as usize % BUCKETS);
        self.last = Some((flow, counter));
        counter
    }

    /// The next identification from `counter`, for a datagram sent at
    /// `now`.
    pub fn next_of(&mut self, counter: IdentCounter, now: Instant) -> u16 {
        self.next_run_of(counter, now, 1)
    }

    /// The first of `count` consecutive identifications from `counter`,
    /// for a TCP super-segment sent at `now` that a device cuts into
    /// `count` datagrams numbered from it (as Linux reserves `gso_segs`
    /// of them): the next datagram of the flow takes the one after them.
    pub fn next_run_of(&mut self, counter: IdentCounter, now: Instant, count: u16) -> u16 {
        let i = counter.0;
        let now_ms = now.total_millis() as u32;
        let (id, used) = self.counters[i];
        let idle = now_ms.wrapping_sub(used);
        let jump = if idle == 0 {
            0
        } else {
            self.rng.below(u64::from(idle.min(1 << 16))) as u16
        };
        let id = id.wrapping_add(1).wrapping_add(jump);
        self.counters[i] = (id.wrapping_add(count.max(1) - 1), now_ms);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    #[test]
    fn counts_per_destination() {
        let mut g = IdentGenerator::new(&mut KeyedRng::from_seed(1));
        let b = Ipv4Addr::new(192, 0, 2, 2);
        let t = Instant::from_secs(5);
        let first = g.next(t, A, b, Protocol::Udp);
        assert_eq!(g.next(t, A, b, Protocol::Udp), first.wrapping_add(1));
        // Datagrams to other destinations do not move b's counter, except
        // for the few that share it.
        for n in 0..200u8 {
            g.next(t, A, Ipv4Addr::new(198, 18, 1, n), Protocol::Udp);
        }
        let moved = g.next(t, A, b, Protocol::Udp).wrapping_sub(first);
        assert!(moved < 5, "b's counter moved by {moved}");
    }

    #[test]
    fn an_idle_counter_jumps_so_its_steps_do_not_count_datagrams() {
        let mut g = IdentGenerator::new(&mut KeyedRng::from_seed(2));
        let b = Ipv4Addr::new(192, 0, 2, 2);
        let mut t = Instant::from_secs(1);
        let mut last = g.next(t, A, b, Protocol::Udp);
        let mut steps = std::collections::HashSet::new();
        for _ in 0..50 {
            t += crate::time::Duration::from_millis(1000);
            let id = g.next(t, A, b, Protocol::Udp);
            steps.insert(id.wrapping_sub(last));
            last = id;
        }
        // One datagram a second: steps of 1 would say exactly that.
        assert!(steps.len() > 40, "{steps:?}");
    }

    #[test]
    fn unrelated_across_keys() {
        let b = Ipv4Addr::new(192, 0, 2, 2);
        let firsts: Vec<u16> = (0..4)
            .map(|_| {
                IdentGenerator::new(&mut KeyedRng::from_os()).next(
                    Instant::ZERO,
                    A,
                    b,
                    Protocol::Tcp,
                )
            })
            .collect();
        let distinct: std::collections::HashSet<_> = firsts.iter().collect();
        assert!(distinct.len() >= 3, "{firsts:?}");
    }
}
