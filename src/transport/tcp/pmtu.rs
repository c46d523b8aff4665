//! Path MTU discovery for one connection (RFC 1191), hardened against
//! forged "fragmentation needed" messages.
//!
//! TCP segments leave with Don't Fragment set; a router that cannot
//! forward one answers with ICMP "fragmentation needed" and its next-hop
//! MTU, and the connection shrinks its segments to fit. The connection
//! only hears errors that quote a sequence number it has in flight
//! (RFC 5927 §4.1, checked by the caller). Beyond that, since the message
//! is unauthenticated:
//!
//! - the path MTU never goes below 552 bytes, Linux's `min_pmtu`; a
//!   smaller report sets 552 and clears Don't Fragment instead, so that a
//!   real path that narrow still works (routers fragment) and a forged one
//!   cannot push segments down to a few bytes each (RFC 1191 §3 allows
//!   68; Linux takes the same way out);
//! - a reported MTU is rounded down to the nearest of a table of common
//!   path MTUs (RFC 1191 §7's plateaus, with the MTUs of common tunnels
//!   between 1280 and 1500 added), so a forger stepping down a byte at a
//!   time gets at most one reduction per table entry;
//! - at most one reduction per smoothed RTT, so each costs at most one
//!   resent flight (RFC 1191 §6.5's "retransmit what was too big");
//! - the estimate is raised back to the link's MTU ten minutes after the
//!   last reduction (RFC 1191 §6.3), so a path that grew again, or a
//!   forgery, does not hold the connection down forever.
//!
//! Not here: a path MTU cache shared by connections to one destination
//! (Linux keeps it in the route), and packetization-layer probing (RFC
//! 4821), which also finds black holes that send no ICMP.
//!
//! # Example
//!
//! ```
//! use netstrata::transport::tcp::pmtu::{MIN_PMTU, PMTU_AGING, PathMtu};
//! use netstrata::{Duration, Instant};
//!
//! let mut pmtu = PathMtu::new(1500);
//! let now = Instant::from_secs(1);
//! assert!(pmtu.on_fragmentation_needed(now, 1400, None));
//! assert_eq!(pmtu.mtu(), 1400);
//! // A second report within a round trip is ignored.
//! let rtt = Some(Duration::from_millis(50));
//! assert!(!pmtu.on_fragmentation_needed(now, 1280, rtt));
//! // A forged report of 100 bytes sets the floor and clears Don't Fragment.
//! let later = now + Duration::from_secs(1);
//! assert!(pmtu.on_fragmentation_needed(later, 100, rtt));
//! assert_eq!((pmtu.mtu(), pmtu.dont_fragment()), (MIN_PMTU, false));
//! // The estimate is raised again after a while.
//! assert!(pmtu.age(later + PMTU_AGING));
//! assert_eq!((pmtu.mtu(), pmtu.dont_fragment()), (1500, true));
//! ```

use crate::time::{Duration, Instant};

/// The smallest path MTU believed (Linux's `ip_rt_min_pmtu`).
pub const MIN_PMTU: usize = 552;

/// How long a reduced estimate holds before it is raised again (RFC 1191
/// §6.3: "the timeout should be set to 10 minutes").
pub const PMTU_AGING: Duration = Duration::from_secs(600);

/// Path MTUs a report is rounded down to: RFC 1191 §7's plateaus, with
/// common tunnel and PPPoE MTUs between 1280 and 1500.
const PLATEAUS: [usize; 21] = [
    65535, 32000, 17914, 9000, 8166, 4352, 2002, 1500, 1492, 1480, 1460, 1440, 1420, 1400, 1380,
    1360, 1340, 1320, 1300, 1280, 1006,
];

/// What one connection knows of its path's MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathMtu {
    link_mtu: usize,
    mtu: usize,
    /// A report below [`MIN_PMTU`] came: segments go without DF.
    locked: bool,
    reduced_at: Option<Instant>,
}

impl PathMtu {
    /// The path MTU is the link's until a router says otherwise.
    pub fn new(link_mtu: usize) -> PathMtu {
        PathMtu {
            link_mtu,
            mtu: link_mtu,
            locked: false,
            reduced_at: None,
        }
    }

    /// The current estimate.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Whether segments should carry Don't Fragment.
    pub fn dont_fragment(&self) -> bool {
        !self.locked
    }

    /// A "fragmentation needed" report of `reported` bytes (0 when the
    /// router gave none, RFC 1191 §5) at `now`; `rtt` is the smoothed RTT
    /// if known. Returns whether the estimate went down (the caller then
    /// resends what was too big).
    pub fn on_fragmentation_needed(
        &mut self,
        now: Instant,
        reported: usize,
        rtt: Option<Duration>,
    ) -> bool {
        if self
            .reduced_at
            .is_some_and(|t| now - t < rtt.unwrap_or(Duration::from_secs(1)))
        {
            return false;
        }
        // A router that names no MTU (RFC 1191 §5) gets the next plateau
        // below the current estimate.
        let reported = if reported == 0 {
            self.mtu.saturating_sub(1)
        } else {
            reported
        };
        let (mtu, locked) = if reported < MIN_PMTU {
            (MIN_PMTU, true)
        } else {
            let plateau = PLATEAUS.iter().copied().find(|&p| p <= reported);
            (plateau.unwrap_or(MIN_PMTU).max(MIN_PMTU), false)
        };
        let mtu = mtu.min(self.link_mtu);
        if mtu >= self.mtu && (!locked || self.locked) {
            return false;
        }
        self.mtu = mtu.min(self.mtu);
        self.locked |= locked;
        self.reduced_at = Some(now);
        true
    }

    /// Raises the estimate back to the link's MTU once [`PMTU_AGING`] has
    /// passed since the last reduction; returns whether it did.
    pub fn age(&mut self, now: Instant) -> bool {
        match self.reduced_at {
            Some(t) if now - t >= PMTU_AGING => {
                *self = PathMtu::new(self.link_mtu);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Option<Duration> = Some(Duration::from_millis(50));

    #[test]
    fn honest_reports_round_down_to_a_plateau() {
        let mut p = PathMtu::new(1500);
        let t = Instant::from_secs(1);
        assert!(p.on_fragmentation_needed(t, 1420, RTT));
        assert_eq!(p.mtu(), 1420);
        assert!(p.dont_fragment());
        // A second bottleneck further on, an RTT later.
        assert!(p.on_fragmentation_needed(t + Duration::from_millis(60), 1390, RTT));
        assert_eq!(p.mtu(), 1380);
        // A larger report never raises it.
        assert!(!p.on_fragmentation_needed(t + Duration::from_secs(1), 1500, RTT));
        assert_eq!(p.mtu(), 1380);
        // Nor does one above the link's MTU lower it.
        let mut q = PathMtu::new(1500);
        assert!(!q.on_fragmentation_needed(t, 9000, RTT));
        assert_eq!(q.mtu(), 1500);
    }

    #[test]
    fn forged_tiny_mtus_stop_at_552_without_df() {
        let mut p = PathMtu::new(1500);
        let t = Instant::from_secs(1);
        assert!(p.on_fragmentation_needed(t, 68, RTT));
        assert_eq!(p.mtu(), MIN_PMTU);
        assert!(!p.dont_fragment());
        assert!(!p.on_fragmentation_needed(t + Duration::from_secs(5), 68, RTT));
        assert_eq!(p.mtu(), MIN_PMTU);
    }

    #[test]
    fn one_reduction_per_rtt_and_few_steps_for_a_byte_by_byte_forger() {
        let mut p = PathMtu::new(1500);
        let mut t = Instant::from_secs(1);
        assert!(p.on_fragmentation_needed(t, 1499, RTT));
        assert!(!p.on_fragmentation_needed(t + Duration::from_millis(10), 1400, RTT));
        assert_eq!(p.mtu(), 1492);
        // Stepping down one byte per RTT from 1491 to 553.
        let mut reductions = 0;
        for reported in (553..1492).rev() {
            t += Duration::from_millis(60);
            reductions += usize::from(p.on_fragmentation_needed(t, reported, RTT));
        }
        assert!(reductions <= PLATEAUS.len(), "{reductions} reductions");
        assert_eq!(p.mtu(), MIN_PMTU);
    }

    #[test]
    fn an_old_reduction_ages_out() {
        let mut p = PathMtu::new(1500);
        let t = Instant::from_secs(1);
        p.on_fragmentation_needed(t, 100, RTT);
        assert!(!p.age(t + Duration::from_secs(599)));
        assert!(p.age(t + PMTU_AGING));
        assert_eq!(p.mtu(), 1500);
        assert!(p.dont_fragment());
        assert!(!PathMtu::new(1500).age(t + PMTU_AGING));
    }
}
