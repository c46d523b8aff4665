//! A token bucket, for rate-limiting messages the stack generates on its
//! own (ICMP errors, RFC 1812 §4.3.2.8; TCP challenge ACKs, RFC 5961 §7).

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
            let elapsed = now - self.last_refill;
            let new = (elapsed.as_micros() / self.interval.as_micros().max(1)) as u64;
            if new > 0 {
                self.tokens = (u64::from(self.tokens) + new).min(u64::from(self.burst)) as u32;
                self.last_refill = now;
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
}
