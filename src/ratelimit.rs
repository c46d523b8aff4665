//! A token bucket, for rate-limiting messages the stack generates on its
//! own (ICMP errors, RFC 1812 §4.3.2.8; TCP challenge ACKs, RFC 5961 §7).
//!
//! # Example
//!
//! A burst of 2, then one every 100 ms:
//!
//! ```
//! use netstrata::ratelimit::TokenBucket;
//! use netstrata::Instant;
//!
//! let mut bucket = TokenBucket::new(2, 10);
//! let t = Instant::from_secs(1);
//! assert!(bucket.try_take(t) && bucket.try_take(t));
//! assert!(!bucket.try_take(t)); // empty
//! assert!(!bucket.try_take(Instant::from_millis(1050)));
//! assert!(bucket.try_take(Instant::from_millis(1100))); // refilled one
//! assert!(!bucket.try_take(Instant::from_millis(1100)));
//! ```

use crate::time::{Duration, Instant};

/// Allows bursts of up to `burst` events, refilled at `per_second`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    burst: u32,
    interval: Duration,
    tokens: u32,
    last_refill: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `per_second` (at least
    /// one per second).
    pub fn new(burst: u32, per_second: u32) -> TokenBucket {
        TokenBucket {
            burst,
            interval: Duration::from_secs(1) / per_second.max(1),
            tokens: burst,
            last_refill: Instant::ZERO,
        }
    }

    /// Takes a token if one is available at `now`.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if self.tokens < self.burst {
            let interval = u64::try_from(self.interval.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            let elapsed = u64::try_from((now - self.last_refill).as_micros()).unwrap_or(u64::MAX);
            let new = elapsed / interval;
            if new > 0 {
                let tokens = u64::from(self.tokens).saturating_add(new);
                if tokens >= u64::from(self.burst) {
                    self.tokens = self.burst;
                    self.last_refill = now;
                } else {
                    // Keep the part of an interval already elapsed: moving
                    // the refill mark to `now` would drop it, and with
                    // events arriving a little faster than one an interval
                    // the bucket would refill at about half its rate.
                    self.tokens = tokens as u32;
                    self.last_refill += Duration::from_micros(new * interval);
                }
            }
        } else {
            self.last_refill = now;
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let mut b = TokenBucket::new(3, 10);
        let t0 = Instant::from_secs(1);
        assert!((0..3).all(|_| b.try_take(t0)));
        assert!(!b.try_take(t0));
        assert!(!b.try_take(t0 + Duration::from_millis(50)));
        assert!(b.try_take(t0 + Duration::from_millis(100)));
        assert!(!b.try_take(t0 + Duration::from_millis(100)));
        let later = t0 + Duration::from_secs(10);
        assert_eq!((0..10).filter(|_| b.try_take(later)).count(), 3);
    }

    /// Regression: the part of an interval elapsed before a refill used to
    /// be dropped, so events 0.9 intervals apart got a token only every
    /// other time once the burst was spent.
    #[test]
    fn refill_keeps_partial_intervals() {
        let mut b = TokenBucket::new(2, 1000); // one token per millisecond
        let t0 = Instant::from_secs(1);
        assert!(b.try_take(t0));
        // Events every 0.9 ms for 90 ms: the token left over and the 90 that
        // accrue (the bucket never fills) are all taken.
        let granted = (1..=100)
            .filter(|i| b.try_take(t0 + Duration::from_micros(900 * i)))
            .count();
        assert_eq!(granted, 91);
    }
}
