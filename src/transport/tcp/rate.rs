//! Delivery rate estimation (draft-cheng-iccrg-delivery-rate-estimation):
//! how fast the path delivered data over the last round trip, measured
//! per ACK, for model-based congestion control (BBR).
//!
//! Each segment is stamped when sent with the connection's delivery
//! state at that moment ([`TxState`]); when it is delivered (cumulatively
//! or by SACK), the bytes delivered since then over the time elapsed is a
//! rate sample. The interval is the longer of the send interval (from the
//! first to the last segment of the flight the sample covers) and the ACK
//! interval, so neither a burst of sends nor a compressed burst of ACKs
//! inflates it (§3.3). A sample taken while the application did not keep
//! the window full is marked app-limited: it can say the path is faster
//! than thought, never slower (§3.4).
//!
//! [`DeliveryRate`] is the connection-wide state (`C.delivered`,
//! `C.delivered_time`, `C.first_sent_time`, `C.app_limited`); the RACK
//! records (`super::rack`) carry each segment's [`TxState`].
//!
//! # Example
//!
//! Ten segments sent at once and delivered 100 ms later: 10 kB in 100 ms.
//!
//! ```
//! use netstrata::transport::tcp::rate::DeliveryRate;
//! use netstrata::{Duration, Instant};
//!
//! let mut rate = DeliveryRate::new();
//! let sent = Instant::from_secs(1);
//! let states: Vec<_> = (0..10).map(|i| rate.on_sent(sent, i == 0)).collect();
//! let acked = sent + Duration::from_millis(100);
//! for tx in states {
//!     rate.on_delivered(tx, sent, 1000, acked);
//! }
//! let sample = rate.sample(Some(Duration::from_millis(10))).unwrap();
//! assert_eq!((sample.delivered, sample.interval), (10_000, Duration::from_millis(100)));
//! assert_eq!(sample.rate(), 100_000); // bytes per second
//! assert!(!sample.app_limited);
//! assert_eq!(rate.delivered(), 10_000);
//! ```

use crate::time::{Duration, Instant};

/// What a segment carries from the moment it was sent (§3.2: `P.delivered`,
/// `P.delivered_time`, `P.first_sent_time`, `P.is_app_limited`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxState {
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    app_limited: bool,
}

/// One rate sample (§3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateSample {
    /// Bytes delivered over the interval.
    pub delivered: u64,
    /// The interval.
    pub interval: Duration,
    /// `C.delivered` when the newest segment this ACK delivered was sent:
    /// BBR counts round trips by it.
    pub prior_delivered: u64,
    /// Taken while the sender was limited by the application.
    pub app_limited: bool,
}

impl RateSample {
    /// The delivery rate in bytes per second.
    pub fn rate(&self) -> u64 {
        let us = self.interval.as_micros().max(1);
        u64::try_from(u128::from(self.delivered) * 1_000_000 / us).unwrap_or(u64::MAX)
    }
}

/// The newest segment delivered by one ACK, while it is processed.
#[derive(Clone, Copy, Debug)]
struct Newest {
    tx: TxState,
    sent: Instant,
}

/// The connection's delivery state.
#[derive(Clone, Debug, Default)]
pub struct DeliveryRate {
    /// `C.delivered`: bytes delivered so far.
    delivered: u64,
    /// `C.delivered_time`: when `delivered` last grew.
    delivered_time: Instant,
    /// `C.first_sent_time`: when the first segment of the current flight
    /// was sent.
    first_sent_time: Instant,
    /// `C.app_limited`: while `delivered` is below this, samples are
    /// app-limited (0: not app-limited).
    app_limited_until: u64,
    /// The newest segment delivered by the ACK being processed.
    newest: Option<Newest>,
}

impl DeliveryRate {
    /// Nothing sent yet.
    pub fn new() -> DeliveryRate {
        DeliveryRate::default()
    }

    /// Bytes delivered so far (`C.delivered`).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// A segment is sent at `now`, with nothing in flight if
    /// `idle` (§3.2): what it carries.
    pub fn on_sent(&mut self, now: Instant, idle: bool) -> TxState {
        if idle {
            self.first_sent_time = now;
            self.delivered_time = now;
        }
        TxState {
            delivered: self.delivered,
            delivered_time: self.delivered_time,
            first_sent_time: self.first_sent_time,
            app_limited: self.app_limited_until != 0,
        }
    }

    /// A segment of `len` bytes sent at `sent` with `tx` was delivered at
    /// `now` (§3.3, `UpdateRateSample` per segment).
    pub fn on_delivered(&mut self, tx: TxState, sent: Instant, len: usize, now: Instant) {
        self.delivered += len as u64;
        self.delivered_time = now;
        let newer = self.newest.is_none_or(|n| {
            tx.delivered > n.tx.delivered || (tx.delivered == n.tx.delivered && sent > n.sent)
        });
        if newer {
            self.newest = Some(Newest { tx, sent });
            // The next flight's send interval starts at this segment.
            self.first_sent_time = sent;
        }
    }

    /// The ACK is processed: its sample, if it delivered anything and the
    /// interval is long enough to mean something (`min_rtt`, §3.3: shorter
    /// ones come from ACK compression or a burst).
    pub fn sample(&mut self, min_rtt: Option<Duration>) -> Option<RateSample> {
        let Newest { tx, sent } = self.newest.take()?;
        if self.app_limited_until != 0 && self.delivered > self.app_limited_until {
            self.app_limited_until = 0;
        }
        let send_elapsed = sent.saturating_duration_since(tx.first_sent_time);
        let ack_elapsed = self
            .delivered_time
            .saturating_duration_since(tx.delivered_time);
        let interval = send_elapsed.max(ack_elapsed);
        if interval.is_zero() || min_rtt.is_some_and(|m| interval < m) {
            return None;
        }
        Some(RateSample {
            delivered: self.delivered - tx.delivered,
            interval,
            prior_delivered: tx.delivered,
            app_limited: tx.app_limited,
        })
    }

    /// The sender has nothing to send and room in its window (§3.4): the
    /// samples of what is in flight (`in_flight` bytes) say nothing of the
    /// path's limit.
    pub fn on_app_limited(&mut self, in_flight: usize) {
        self.app_limited_until = (self.delivered + in_flight as u64).max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn a_flight_delivered_over_a_round_trip_gives_its_rate() {
        // Ten 1000-byte segments sent at 0..9 ms, delivered at 100..109.
        let mut r = DeliveryRate::new();
        let txs: Vec<_> = (0..10).map(|i| (r.on_sent(ms(i), i == 0), ms(i))).collect();
        let mut last = None;
        for (i, (tx, sent)) in txs.into_iter().enumerate() {
            r.on_delivered(tx, sent, 1000, ms(100 + i as u64));
            last = r.sample(None);
        }
        // The last ACK: 10,000 bytes over max(9 ms sending, 109 ms since
        // the first segment's delivery state, stamped at 0).
        let s = last.unwrap();
        assert_eq!(
            (s.delivered, s.interval),
            (10_000, Duration::from_millis(109))
        );
        assert_eq!(s.rate(), 91_743);
        assert!(!s.app_limited);
        assert_eq!(r.delivered(), 10_000);
    }

    #[test]
    fn the_second_flight_measures_the_path_not_the_idle_start() {
        let mut r = DeliveryRate::new();
        // A first segment, delivered after 100 ms.
        let tx = r.on_sent(ms(0), true);
        r.on_delivered(tx, ms(0), 1000, ms(100));
        r.sample(None);
        // Two segments sent at 100 ms, delivered at 200 and 201 ms: 2000
        // bytes since the state stamped at 100 ms, over 101 ms.
        let a = r.on_sent(ms(100), true);
        let b = r.on_sent(ms(100), false);
        r.on_delivered(a, ms(100), 1000, ms(200));
        r.sample(None);
        r.on_delivered(b, ms(100), 1000, ms(201));
        let s = r.sample(None).unwrap();
        assert_eq!(
            (s.delivered, s.interval),
            (2000, Duration::from_millis(101))
        );
        assert_eq!(s.prior_delivered, 1000);
    }

    #[test]
    fn intervals_shorter_than_the_minimum_rtt_give_no_sample() {
        let mut r = DeliveryRate::new();
        let tx = r.on_sent(ms(0), true);
        r.on_delivered(tx, ms(0), 1000, ms(5));
        assert_eq!(r.sample(Some(Duration::from_millis(10))), None);
        // Nothing delivered: no sample either.
        assert_eq!(r.sample(None), None);
    }

    #[test]
    fn samples_are_app_limited_until_the_marked_bytes_are_delivered() {
        let mut r = DeliveryRate::new();
        let tx = r.on_sent(ms(0), true);
        r.on_delivered(tx, ms(0), 1000, ms(100));
        r.sample(None);
        // Nothing more to send with 0 bytes in flight: what goes next is
        // app-limited.
        r.on_app_limited(0);
        let tx = r.on_sent(ms(200), true);
        r.on_delivered(tx, ms(200), 1000, ms(300));
        assert!(r.sample(None).unwrap().app_limited);
        // Delivered past the mark: later segments are not.
        let tx = r.on_sent(ms(300), true);
        r.on_delivered(tx, ms(300), 1000, ms(400));
        assert!(!r.sample(None).unwrap().app_limited);
    }
}
