//! Pacing: when the next data segment may leave, so that a window goes
//! out spread over the round trip instead of as one burst at line rate.
//!
//! A burst the size of the congestion window fills a bottleneck's queue
//! at once and, behind a shallow one, loses its tail; spread at the rate
//! the window implies it arrives as the bottleneck drains it. The
//! connection asks [`Pacer::ready`] before a data segment (new or
//! retransmitted; ACKs, SYNs and RSTs are never held) and tells
//! [`Pacer::on_sent`] of each one; while the pacer holds data back, the
//! connection's `poll_at` is [`Pacer::next`], so a runtime sleeps until
//! then (the core reads no clock).
//!
//! The rate comes from the congestion controller: BBR's own (its pacing
//! gain times its bottleneck bandwidth estimate), or, for window-based
//! controllers with pacing on, Linux's default: cwnd / SRTT times 2 in slow
//! start and 1.2 in congestion avoidance (`tcp_pacing_ss_ratio`,
//! `tcp_pacing_ca_ratio`), fast enough that pacing never limits the
//! window, only spreads it ([`window_rate`]).
//!
//! Segments may leave back to back up to a quantum of one millisecond at
//! the rate, at least two segments (Linux's `tcp_tso_autosize`): finer
//! spacing buys nothing on a real link and costs a timer per segment.
//!
//! # Example
//!
//! A window of 100 kB over a 100 ms round trip, in congestion avoidance, is
//! paced at 1.2 MB/s; a sender that has just let its quantum go waits:
//!
//! ```
//! use netstrata::transport::tcp::pacing::{Pacer, window_rate};
//! use netstrata::{Duration, Instant};
//!
//! let rate = window_rate(100_000, Duration::from_millis(100), false);
//! assert_eq!(rate, 1_200_000);
//! let mut pacer = Pacer::new();
//! let now = Instant::from_secs(1);
//! assert!(pacer.ready(now));
//! for _ in 0..3 {
//!     pacer.on_sent(now, 1200, rate, 1200); // 1 ms of sending each
//! }
//! assert!(!pacer.ready(now));
//! assert!(pacer.next() > now && pacer.ready(pacer.next()));
//! ```

use crate::time::{Duration, Instant};

/// Pacing rate a window-based controller implies: `cwnd / srtt` times
/// 2 in slow start, 1.2 otherwise, in bytes per second (at least 1).
pub fn window_rate(cwnd: usize, srtt: Duration, slow_start: bool) -> u64 {
    let us = srtt.as_micros().max(1);
    let (num, den) = if slow_start { (2, 1) } else { (6, 5) };
    let rate = cwnd as u128 * 1_000_000 * num / (us * den);
    u64::try_from(rate).unwrap_or(u64::MAX).max(1)
}

/// The pacing state of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacer {
    /// When the next segment may leave (Linux's `tcp_wstamp_ns`).
    next: Instant,
}

impl Pacer {
    /// Nothing sent yet: the first segment may leave at once.
    pub fn new() -> Pacer {
        Pacer {
            next: Instant::ZERO,
        }
    }

    /// Whether a data segment may leave at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.next <= now
    }

    /// When the next data segment may leave.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// A data segment of `len` bytes left at `now`, paced at `rate` bytes
    /// per second; `mss` sizes the burst quantum. The departure slot moves
    /// on by the segment's time at the rate, from `now` less the quantum's
    /// time at most: an idle sender may burst one quantum, no more.
    pub fn on_sent(&mut self, now: Instant, len: usize, rate: u64, mss: usize) {
        let rate = u128::from(rate.max(1));
        // The quantum less the first segment, which always may go.
        let quantum_bytes = (rate / 1000).max(2 * mss as u128) - mss as u128;
        let quantum = micros(quantum_bytes * 1_000_000 / rate);
        let floor = Instant::from_micros(now.total_micros().saturating_sub(quantum));
        let start = self.next.max(floor);
        self.next = start + Duration::from_micros(micros(len as u128 * 1_000_000 / rate));
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new()
    }
}

fn micros(us: u128) -> u64 {
    u64::try_from(us).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_rate_is_twice_or_1_2_times_cwnd_per_srtt() {
        let srtt = Duration::from_millis(100);
        assert_eq!(window_rate(100_000, srtt, true), 2_000_000);
        assert_eq!(window_rate(100_000, srtt, false), 1_200_000);
        // Degenerate inputs stay finite and positive.
        assert_eq!(window_rate(0, srtt, false), 1);
        assert!(window_rate(usize::MAX, Duration::ZERO, true) > 0);
    }

    #[test]
    fn segments_are_spaced_at_the_rate_after_one_quantum() {
        // 1,000,000 B/s, 1000-byte segments: a quantum of two segments
        // (1 ms is only 1000 bytes), then one per millisecond.
        let mut p = Pacer::new();
        let now = Instant::from_millis(1000);
        let mut sent = Vec::new();
        let mut t = now;
        while sent.len() < 6 {
            if p.ready(t) {
                p.on_sent(t, 1000, 1_000_000, 1000);
                sent.push(t.total_micros() - now.total_micros());
            } else {
                t = p.next();
            }
        }
        assert_eq!(sent, [0, 0, 1000, 2000, 3000, 4000]);
    }

    #[test]
    fn a_fast_rate_bursts_a_millisecond_of_data() {
        // 100 MB/s: 1 ms is 100,000 bytes, 66 segments of 1500.
        let mut p = Pacer::new();
        let now = Instant::from_millis(1000);
        let mut n = 0;
        while p.ready(now) {
            p.on_sent(now, 1500, 100_000_000, 1500);
            n += 1;
        }
        assert_eq!(n, 66);
        assert!(p.next() <= now + Duration::from_micros(15));
    }

    #[test]
    fn idling_earns_no_more_than_a_quantum() {
        let mut p = Pacer::new();
        p.on_sent(Instant::from_millis(1), 1000, 1_000_000, 1000);
        let later = Instant::from_secs(10);
        let mut n = 0;
        while p.ready(later) {
            p.on_sent(later, 1000, 1_000_000, 1000);
            n += 1;
        }
        assert_eq!(n, 2);
    }
}
