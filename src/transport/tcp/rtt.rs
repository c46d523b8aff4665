//! The retransmission timeout: round-trip time estimation and exponential
//! backoff (RFC 6298).
//!
//! [`RttEstimator`] keeps the smoothed round-trip time (SRTT) and its mean
//! deviation (RTTVAR) from the samples it is given, and derives the
//! retransmission timeout (RTO) from them:
//!
//! - before any sample, RTO is [`RttConfig::initial_rto`] (RFC 6298 §2.1);
//! - the first sample R sets SRTT = R and RTTVAR = R/2 (§2.2);
//! - later samples R' update RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R'| (with the
//!   old SRTT), then SRTT = 7/8·SRTT + 1/8·R' (§2.3);
//! - RTO = SRTT + max(G, 4·RTTVAR), then clamped to
//!   [[`min_rto`](RttConfig::min_rto), [`max_rto`](RttConfig::max_rto)]
//!   (§2.4, §2.5);
//! - each expiry of the timer doubles the RTO ("backing off", §5.5), up to
//!   `max_rto`; the next valid sample collapses it again (note after §5.7).
//!
//! Arithmetic is in integer nanoseconds with 128-bit intermediates: it is
//! exact up to truncation, deterministic, and cannot overflow.
//!
//! # What the caller must do: Karn's algorithm
//!
//! The estimator believes every sample it is given. Feeding it only valid
//! samples is the connection's job (RFC 6298 §3, Karn's algorithm): an RTT
//! may be measured from a segment that was **not retransmitted** (the ACK of
//! a retransmitted segment is ambiguous), at most about once per RTT, or —
//! with the timestamp option — from the echoed timestamp of any ACK that
//! advances the left window edge (RFC 7323 §4), which is unambiguous even
//! after a retransmission. With timestamps, many samples arrive per RTT;
//! [`RttEstimator::sample_weighted`] scales the gains as RFC 7323
//! Appendix G suggests so that SRTT keeps about the same memory.
//!
//! The connection also restarts its timer (§5.1–§5.3), calls
//! [`RttEstimator::on_timeout`] when it fires (§5.4–§5.6, after
//! retransmitting), [`RttEstimator::on_new_ack`] when an ACK acknowledges
//! new data, and, if the SYN or SYN-ACK had to be retransmitted,
//! [`RttEstimator::apply_syn_loss_fallback`] when the handshake completes
//! (§5.7).
//!
//! # Choosing `min_rto` and `G`
//!
//! RFC 6298 §2.4 says RTO SHOULD be at least 1 second; Linux uses 200 ms
//! (`TCP_RTO_MIN`), as most modern stacks use something well below 1 s. The
//! default here is 200 ms ([`RttConfig::default`]); [`RttConfig::rfc6298`]
//! gives the RFC's 1 s. Note that Linux's floor applies to the variance term
//! (its RTO is about SRTT + max(4·RTTVAR, 200 ms)), whereas RFC 6298 clamps
//! the whole RTO. With the RFC formula, a path with a long, very steady RTT
//! lets RTTVAR decay towards zero and the RTO towards SRTT + G, which a
//! delayed ACK can then exceed (a spurious timeout). Setting
//! [`RttConfig::granularity`] to 200 ms reproduces Linux's floor within the
//! RFC's formula: [`RttConfig::linux`].
//!
//! Deliberately not here: the timer itself (a deadline the connection keeps,
//! `now + rto()`), the give-up thresholds R1/R2 (RFC 9293 §3.8.3; the
//! connection may use [`RttEstimator::consecutive_timeouts`]), clearing
//! SRTT after many backoffs (RFC 6298 §5, a MAY), and any windowed minimum
//! RTT filter ([`RttEstimator::min_rtt`] is the minimum over the lifetime).
//!
//! # Example
//!
//! The first sample sets SRTT and RTTVAR (RFC 6298 §2.2); a timeout doubles
//! the RTO until the next valid sample:
//!
//! ```
//! use netstrata::transport::tcp::rtt::{RttConfig, RttEstimator};
//! use netstrata::Duration;
//!
//! let ms = Duration::from_millis;
//! let mut rtt = RttEstimator::new(RttConfig::rfc6298());
//! assert_eq!(rtt.rto(), ms(1000)); // before any sample
//! rtt.sample(ms(100));
//! assert_eq!((rtt.srtt(), rtt.rttvar()), (Some(ms(100)), Some(ms(50))));
//! assert_eq!(rtt.rto(), ms(1000)); // 100 + 4 * 50 = 300, raised to min_rto
//!
//! let mut rtt = RttEstimator::new(RttConfig::linux());
//! rtt.sample(ms(100));
//! assert_eq!(rtt.rto(), ms(300));
//! rtt.on_timeout();
//! assert_eq!((rtt.rto(), rtt.backoff()), (ms(600), 1)); // one doubling
//! rtt.on_new_ack(); // the ACK of a retransmission: no sample (Karn)
//! assert_eq!(rtt.rto(), ms(600));
//! rtt.sample(ms(100)); // a valid sample ends the backoff
//! assert_eq!(rtt.rto(), ms(300));
//! ```

use crate::time::Duration;

/// Parameters of the retransmission timeout computation.
///
/// A configuration with `min_rto > max_rto` is not rejected: `max_rto`
/// wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttConfig {
    /// The lower bound on the computed RTO (before backoff). Default 200 ms,
    /// Linux's `TCP_RTO_MIN`; RFC 6298 §2.4 says 1 s (see the module
    /// documentation).
    pub min_rto: Duration,
    /// The upper bound on the RTO, backoff included. Default 120 s, as
    /// Linux's `TCP_RTO_MAX`; RFC 6298 §2.5 allows any maximum of at least
    /// 60 s.
    pub max_rto: Duration,
    /// The RTO before the first RTT sample: 1 s (RFC 6298 §2.1).
    pub initial_rto: Duration,
    /// The clock granularity G of RFC 6298 §2.2–2.3, the least the variance
    /// term can add to SRTT. Default 1 ms.
    pub granularity: Duration,
}

impl RttConfig {
    /// RFC 6298 to the letter: a minimum RTO of 1 s (§2.4), a maximum of
    /// 120 s, an initial RTO of 1 s and G = 1 ms.
    pub const fn rfc6298() -> RttConfig {
        RttConfig {
            min_rto: Duration::from_secs(1),
            max_rto: Duration::from_secs(120),
            initial_rto: Duration::from_secs(1),
            granularity: Duration::from_millis(1),
        }
    }

    /// Close to Linux: RTO ≈ SRTT + max(4·RTTVAR, 200 ms), at least 200 ms,
    /// at most 120 s, initially 1 s. (Linux computes its variance term a
    /// little differently; the floor is what matters.)
    pub const fn linux() -> RttConfig {
        RttConfig {
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(120),
            initial_rto: Duration::from_secs(1),
            granularity: Duration::from_millis(200),
        }
    }
}

impl Default for RttConfig {
    /// `min_rto` 200 ms, `max_rto` 120 s, `initial_rto` 1 s, G = 1 ms.
    fn default() -> RttConfig {
        RttConfig {
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(120),
            initial_rto: Duration::from_secs(1),
            granularity: Duration::from_millis(1),
        }
    }
}

/// The RTO of RFC 6298 §5.7 after a lost SYN or SYN-ACK.
const SYN_LOSS_RTO: Duration = Duration::from_secs(3);

/// The largest backoff exponent kept; 2^63 times any nonzero RTO is beyond
/// every `max_rto` representable in nanoseconds.
const MAX_BACKOFF: u32 = 63;

/// SRTT, RTTVAR and the retransmission timeout of one connection (RFC 6298).
#[derive(Debug, Clone)]
pub struct RttEstimator {
    config: RttConfig,
    /// SRTT and RTTVAR in nanoseconds; `None` before the first sample.
    smoothed: Option<(u64, u64)>,
    min_rtt: Option<Duration>,
    /// The RTO before backoff, in nanoseconds, within the configured bounds.
    base_rto: u64,
    /// The backoff exponent: the RTO in use is `base_rto << backoff`.
    backoff: u32,
    consecutive_timeouts: u32,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn sat_u64(x: u128) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

impl RttEstimator {
    /// An estimator with no samples yet: the RTO is `config.initial_rto`
    /// (within the configured bounds).
    pub fn new(config: RttConfig) -> RttEstimator {
        let mut e = RttEstimator {
            config,
            smoothed: None,
            min_rtt: None,
            base_rto: 0,
            backoff: 0,
            consecutive_timeouts: 0,
        };
        e.base_rto = e.bounded(nanos(config.initial_rto));
        e
    }

    /// The configuration in use.
    pub fn config(&self) -> &RttConfig {
        &self.config
    }

    /// `rto` raised to `min_rto` and lowered to `max_rto` (the latter wins
    /// if they conflict).
    fn bounded(&self, rto: u64) -> u64 {
        rto.max(nanos(self.config.min_rto))
            .min(nanos(self.config.max_rto))
    }

    /// Takes one valid RTT measurement (RFC 6298 §2.2 for the first, §2.3
    /// after), recomputes the RTO and clears any backoff.
    ///
    /// Only give it samples that obey Karn's algorithm (module
    /// documentation).
    pub fn sample(&mut self, rtt: Duration) {
        self.sample_weighted(rtt, 1);
    }

    /// Like [`sample`](Self::sample), with the gains α = 1/8 and β = 1/4
    /// divided by `expected_samples` (at least 1), for use when every ACK
    /// yields a sample (timestamps): RFC 7323 Appendix G. Compute
    /// `expected_samples` with [`expected_samples`](Self::expected_samples).
    ///
    /// The first sample initialises SRTT and RTTVAR as usual (§2.2).
    pub fn sample_weighted(&mut self, rtt: Duration, expected_samples: u32) {
        let r = nanos(rtt);
        let n = i128::from(expected_samples.max(1));
        self.smoothed = Some(match self.smoothed {
            None => (r, r / 2),
            Some((srtt, rttvar)) => {
                let (srtt, rttvar, r) = (i128::from(srtt), i128::from(rttvar), i128::from(r));
                // RTTVAR first, from the old SRTT (§2.3).
                let rttvar = rttvar + ((srtt - r).abs() - rttvar) / (4 * n);
                let srtt = srtt + (r - srtt) / (8 * n);
                // Both are convex combinations of u64 values, hence in range.
                (
                    u64::try_from(srtt).unwrap_or(u64::MAX),
                    u64::try_from(rttvar).unwrap_or(u64::MAX),
                )
            }
        });
        let r = Duration::from_nanos(r);
        self.min_rtt = Some(self.min_rtt.map_or(r, |m| m.min(r)));
        self.base_rto = self.computed_rto();
        self.backoff = 0;
    }

    /// ExpectedSamples of RFC 7323 Appendix G: ⌈FlightSize / (2·SMSS)⌉, at
    /// least 1 — how many timestamp samples a window's worth of ACKs (one
    /// per two segments) yields.
    pub fn expected_samples(flight_size: usize, smss: usize) -> u32 {
        let per = (smss.max(1) as u128) * 2;
        let n = (flight_size as u128).div_ceil(per).max(1);
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// SRTT + max(G, 4·RTTVAR), within the bounds (RFC 6298 §2.2–2.5).
    fn computed_rto(&self) -> u64 {
        match self.smoothed {
            None => self.bounded(nanos(self.config.initial_rto)),
            Some((srtt, rttvar)) => {
                let var = (4 * u128::from(rttvar)).max(u128::from(nanos(self.config.granularity)));
                self.bounded(sat_u64(u128::from(srtt) + var))
            }
        }
    }

    /// The retransmission timeout to arm the timer with now, backoff
    /// included, never above `max_rto`.
    pub fn rto(&self) -> Duration {
        let shifted = u128::from(self.base_rto) << self.backoff.min(MAX_BACKOFF);
        let max = u128::from(nanos(self.config.max_rto));
        Duration::from_nanos(sat_u64(shifted.min(max)))
    }

    /// The retransmission timer expired: back off, doubling the RTO up to
    /// `max_rto` (RFC 6298 §5.5), and count the timeout.
    pub fn on_timeout(&mut self) {
        self.backoff = (self.backoff + 1).min(MAX_BACKOFF);
        self.consecutive_timeouts = self.consecutive_timeouts.saturating_add(1);
    }

    /// An ACK acknowledged new data: the run of consecutive timeouts is
    /// over.
    ///
    /// This does **not** clear the backoff. Following Karn's algorithm (RFC
    /// 6298 §3 and the note after §5.7), the backed-off RTO stays in force
    /// until a valid RTT sample ([`sample`](Self::sample)) collapses it:
    /// the ACK of a retransmission yields no sample, and dropping back to
    /// the old, too-small RTO would likely time out again before any sample
    /// could be taken.
    pub fn on_new_ack(&mut self) {
        self.consecutive_timeouts = 0;
    }

    /// Clears the backoff, returning the RTO to the one computed from SRTT
    /// and RTTVAR (or the initial RTO), without a sample.
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    /// RFC 6298 §5.7: if the SYN or SYN-ACK was retransmitted and the RTO in
    /// use is below 3 s, the RTO is re-initialised to 3 s when data transfer
    /// begins. Call this once, when the handshake completes, only if the
    /// SYN or SYN-ACK was retransmitted.
    ///
    /// Clears the backoff. Has no effect on the RTO once a valid RTT sample
    /// has been taken (then SRTT and RTTVAR govern), and raises the RTO only
    /// up to `max_rto`.
    pub fn apply_syn_loss_fallback(&mut self) {
        self.backoff = 0;
        if self.smoothed.is_none() {
            let fallback = nanos(SYN_LOSS_RTO).min(nanos(self.config.max_rto));
            self.base_rto = self.base_rto.max(fallback);
        }
    }

    /// The smoothed round-trip time; `None` before the first sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.smoothed.map(|(s, _)| Duration::from_nanos(s))
    }

    /// The round-trip time variation RTTVAR; `None` before the first sample.
    pub fn rttvar(&self) -> Option<Duration> {
        self.smoothed.map(|(_, v)| Duration::from_nanos(v))
    }

    /// The smallest sample seen over the connection's lifetime; `None`
    /// before the first sample.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// The backoff exponent: the RTO in use is the computed RTO times
    /// 2^backoff (capped at `max_rto`).
    pub fn backoff(&self) -> u32 {
        self.backoff
    }

    /// Timer expiries since the last ACK of new data
    /// ([`on_new_ack`](Self::on_new_ack)), for the connection's give-up
    /// thresholds (RFC 9293 §3.8.3).
    pub fn consecutive_timeouts(&self) -> u32 {
        self.consecutive_timeouts
    }
}

impl Default for RttEstimator {
    fn default() -> RttEstimator {
        RttEstimator::new(RttConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn initial_rto_before_any_sample() {
        let e = RttEstimator::default();
        assert_eq!(e.rto(), Duration::from_secs(1));
        assert_eq!(e.srtt(), None);
        assert_eq!(e.rttvar(), None);
        assert_eq!(e.min_rtt(), None);
    }

    #[test]
    fn worked_samples() {
        let mut e = RttEstimator::default();
        // §2.2: SRTT = 100, RTTVAR = 50, RTO = 100 + max(1, 200) = 300 ms.
        e.sample(ms(100));
        assert_eq!(e.srtt(), Some(ms(100)));
        assert_eq!(e.rttvar(), Some(ms(50)));
        assert_eq!(e.rto(), ms(300));
        // §2.3: RTTVAR = 3/4·50 + 1/4·|100 − 200| = 62.5;
        // SRTT = 7/8·100 + 1/8·200 = 112.5; RTO = 112.5 + 250 = 362.5 ms.
        e.sample(ms(200));
        assert_eq!(e.rttvar(), Some(us(62_500)));
        assert_eq!(e.srtt(), Some(us(112_500)));
        assert_eq!(e.rto(), us(362_500));
        // RTTVAR = 3/4·62.5 + 1/4·|112.5 − 50| = 62.5;
        // SRTT = 7/8·112.5 + 1/8·50 = 104.6875; RTO = 354.6875 ms.
        e.sample(ms(50));
        assert_eq!(e.rttvar(), Some(us(62_500)));
        assert_eq!(e.srtt(), Some(Duration::from_nanos(104_687_500)));
        assert_eq!(e.rto(), Duration::from_nanos(354_687_500));
        assert_eq!(e.min_rtt(), Some(ms(50)));
    }

    #[test]
    fn rto_is_clamped_below() {
        let mut e = RttEstimator::default();
        e.sample(ms(1)); // 1 + 4·0.5 = 3 ms
        assert_eq!(e.rto(), ms(200));
        let mut e = RttEstimator::new(RttConfig::rfc6298());
        e.sample(ms(1));
        assert_eq!(e.rto(), Duration::from_secs(1));
    }

    #[test]
    fn granularity_floors_the_variance_term() {
        let cfg = RttConfig {
            min_rto: Duration::ZERO,
            ..RttConfig::default()
        };
        let mut e = RttEstimator::new(cfg);
        for _ in 0..200 {
            e.sample(ms(300));
        }
        // RTTVAR has decayed to (nearly) nothing; G = 1 ms remains.
        assert!(e.rttvar().unwrap() < us(1));
        assert_eq!(e.rto(), ms(301));
        // The Linux-like preset keeps a 200 ms margin.
        let mut e = RttEstimator::new(RttConfig::linux());
        for _ in 0..200 {
            e.sample(ms(300));
        }
        assert_eq!(e.rto(), ms(500));
    }

    #[test]
    fn backoff_doubles_up_to_max_and_a_sample_collapses_it() {
        let mut e = RttEstimator::default();
        e.sample(ms(100)); // RTO 300 ms
        let mut expected = ms(300);
        for i in 1..=20u32 {
            e.on_timeout();
            expected = (expected * 2).min(Duration::from_secs(120));
            assert_eq!(e.rto(), expected, "after {i} timeouts");
        }
        assert_eq!(e.rto(), Duration::from_secs(120));
        assert_eq!(e.consecutive_timeouts(), 20);
        // An ACK of new data (of a retransmission: no sample) keeps the
        // backed-off RTO, per Karn.
        e.on_new_ack();
        assert_eq!(e.consecutive_timeouts(), 0);
        assert_eq!(e.rto(), Duration::from_secs(120));
        // A valid sample collapses it.
        e.sample(ms(100));
        assert_eq!(e.backoff(), 0);
        assert!(e.rto() < ms(400));
        e.on_timeout();
        e.reset_backoff();
        assert!(e.rto() < ms(400));
    }

    #[test]
    fn backoff_before_first_sample_starts_from_initial_rto() {
        let mut e = RttEstimator::default();
        e.on_timeout();
        assert_eq!(e.rto(), Duration::from_secs(2));
        e.on_timeout();
        assert_eq!(e.rto(), Duration::from_secs(4));
    }

    #[test]
    fn syn_loss_fallback() {
        let mut e = RttEstimator::default();
        e.on_timeout(); // SYN retransmitted
        e.apply_syn_loss_fallback();
        assert_eq!(e.rto(), Duration::from_secs(3));
        assert_eq!(e.backoff(), 0);
        // A later sample governs as usual.
        e.sample(ms(100));
        assert_eq!(e.rto(), ms(300));
        // With a sample already taken, the fallback leaves the RTO alone.
        e.apply_syn_loss_fallback();
        assert_eq!(e.rto(), ms(300));
        // Never above max_rto.
        let mut e = RttEstimator::new(RttConfig {
            max_rto: Duration::from_secs(2),
            ..RttConfig::default()
        });
        e.apply_syn_loss_fallback();
        assert_eq!(e.rto(), Duration::from_secs(2));
    }

    #[test]
    fn weighted_samples_per_rfc7323_appendix_g() {
        // 20 segments in flight, ACK every other one: 10 samples per RTT.
        assert_eq!(RttEstimator::expected_samples(20 * 1460, 1460), 10);
        assert_eq!(RttEstimator::expected_samples(20 * 1460 + 1, 1460), 11);
        assert_eq!(RttEstimator::expected_samples(0, 1460), 1);
        assert!(RttEstimator::expected_samples(usize::MAX, 0) >= 1);
        let mut e = RttEstimator::default();
        e.sample_weighted(ms(100), 10); // first: as §2.2
        assert_eq!(e.srtt(), Some(ms(100)));
        assert_eq!(e.rttvar(), Some(ms(50)));
        // α' = 1/80, β' = 1/40: RTTVAR = 50 + (|100 − 180| − 50)/40 = 50.75;
        // SRTT = 100 + (180 − 100)/80 = 101; RTO = 101 + 203 = 304 ms.
        e.sample_weighted(ms(180), 10);
        assert_eq!(e.rttvar(), Some(us(50_750)));
        assert_eq!(e.srtt(), Some(ms(101)));
        assert_eq!(e.rto(), ms(304));
    }

    #[test]
    fn inverted_bounds_do_not_panic() {
        let cfg = RttConfig {
            min_rto: Duration::from_secs(10),
            max_rto: Duration::from_secs(1),
            ..RttConfig::default()
        };
        let mut e = RttEstimator::new(cfg);
        assert_eq!(e.rto(), Duration::from_secs(1));
        e.sample(ms(5));
        assert_eq!(e.rto(), Duration::from_secs(1));
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_in_bounds(
            events in proptest::collection::vec(
                (0u8..5, any::<u64>(), any::<u32>()), 0..100),
            min_ms in 0u64..5000,
            max_ms in 0u64..500_000,
        ) {
            let cfg = RttConfig {
                min_rto: Duration::from_millis(min_ms),
                max_rto: Duration::from_millis(max_ms),
                ..RttConfig::default()
            };
            let mut e = RttEstimator::new(cfg);
            for (kind, a, b) in events {
                match kind {
                    0 => e.sample(Duration::from_nanos(a)),
                    1 => e.sample_weighted(Duration::new(a, 0), b),
                    2 => e.on_timeout(),
                    3 => e.on_new_ack(),
                    _ => e.apply_syn_loss_fallback(),
                }
                prop_assert!(e.rto() <= cfg.max_rto);
                prop_assert!(e.rto() >= cfg.min_rto.min(cfg.max_rto));
                if let (Some(min), Some(srtt)) = (e.min_rtt(), e.srtt()) {
                    // SRTT is a weighted mean of the samples.
                    prop_assert!(min <= srtt);
                }
            }
        }
    }
}
