//! HyStart++ (RFC 9406): leaving slow start when the round-trip time
//! rises, before the window overshoots the path and a whole window's
//! worth of loss tells it.
//!
//! Slow start doubles the window every round trip until a loss; the round
//! in which it fills the bottleneck's queue ends with up to half a window
//! lost. HyStart++ watches the minimum RTT of each round (from at least
//! [`N_RTT_SAMPLE`] samples): once it exceeds the last round's by an eighth
//! (clamped to 4–16 ms, §4.2), a queue is building, and slow start turns
//! conservative (CSS): the window grows by a quarter of what slow start
//! would add. If the RTT falls back below where CSS began, the rise was
//! jitter and slow start resumes; after [`CSS_ROUNDS`] rounds in CSS it
//! ends, with ssthresh set to the window.
//!
//! Used, as §4.3 advises, only in a connection's first slow start (while
//! ssthresh is still arbitrarily high): later ones stop at the ssthresh a
//! loss set. A loss, a timeout or a reduction of any kind ends it. The
//! caller ([`Cubic`](super::Cubic)) tells it of each ACK in slow start, with
//! the ACK's RTT sample and whether the ACK began a new round (SND.UNA
//! passed what SND.NXT was at the last round's start, §4.2 `windowEnd`).
//!
//! RFC 9406 limits the growth per ACK to L = 8 segments without pacing;
//! this stack's slow start allows 64 (its receivers acknowledge batches at
//! once, see `congestion::ABC_L`) and HyStart++ keeps that.
//!
//! # Example
//!
//! Round trips at 100 ms keep slow start going; when a round's minimum RTT
//! rises by more than an eighth, slow start turns conservative:
//!
//! ```
//! use netstrata::transport::tcp::hystart::{Growth, HyStart, N_RTT_SAMPLE};
//! use netstrata::Duration;
//!
//! let mut hs = HyStart::new();
//! let mut round = |hs: &mut HyStart, ms| {
//!     let rtt = Some(Duration::from_millis(ms));
//!     let mut growth = hs.on_ack(rtt, true);
//!     for _ in 1..N_RTT_SAMPLE {
//!         growth = hs.on_ack(rtt, false);
//!     }
//!     growth
//! };
//! assert_eq!(round(&mut hs, 100), Growth::SlowStart);
//! assert_eq!(round(&mut hs, 100), Growth::SlowStart);
//! assert_eq!(round(&mut hs, 130), Growth::Conservative); // +30 ms > 100/8
//! assert!(hs.in_css() && !hs.is_done());
//! ```

use crate::time::Duration;

/// RTT samples a round needs before its minimum is judged (§4.2).
pub const N_RTT_SAMPLE: u32 = 8;
/// Rounds of conservative slow start before congestion avoidance (§4.2).
pub const CSS_ROUNDS: u32 = 5;
/// Slow start's growth is divided by this in CSS (§4.2).
pub const CSS_GROWTH_DIVISOR: usize = 4;
/// Bounds of the RTT rise that counts (§4.2): a rise of an eighth of the
/// last round's minimum, but at least 4 ms and at most 16 ms.
const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
const MIN_RTT_DIVISOR: u32 = 8;

/// How the window grows for one ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Growth {
    /// As slow start: by what was acknowledged.
    SlowStart,
    /// Conservative slow start: by a [`CSS_GROWTH_DIVISOR`]th of it.
    Conservative,
    /// Slow start is over: ssthresh becomes the window, and congestion
    /// avoidance takes this ACK.
    Exit,
}

/// Conservative slow start under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Css {
    /// The round minimum that began it (`cssBaselineMinRtt`).
    baseline: Duration,
    /// Rounds completed in it.
    rounds: u32,
}

/// The state of HyStart++ for one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HyStart {
    /// `lastRoundMinRTT` and `currentRoundMinRTT`.
    last_round_min: Option<Duration>,
    round_min: Option<Duration>,
    /// `rttSampleCount` of the current round.
    samples: u32,
    css: Option<Css>,
    /// Over: the first slow start ended, by HyStart++ or by a loss.
    done: bool,
}

impl HyStart {
    /// A connection's first slow start is about to begin.
    pub fn new() -> HyStart {
        HyStart::default()
    }

    /// Whether the window is growing conservatively.
    pub fn in_css(&self) -> bool {
        self.css.is_some()
    }

    /// Whether HyStart++ no longer applies.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Slow start ended otherwise (a loss, a timeout, an undo, an idle
    /// restart): HyStart++ is over for this connection (§4.3).
    pub fn end(&mut self) {
        self.done = true;
        self.css = None;
    }

    /// An ACK of new data in slow start: `rtt` is its round-trip sample,
    /// if Karn's rule allows one; `round_start` says it began a new round.
    pub fn on_ack(&mut self, rtt: Option<Duration>, round_start: bool) -> Growth {
        if self.done {
            return Growth::SlowStart;
        }
        if round_start {
            if let Some(css) = &mut self.css {
                css.rounds += 1;
                if css.rounds >= CSS_ROUNDS {
                    log::debug!("HyStart++: {CSS_ROUNDS} rounds of CSS, slow start ends");
                    self.end();
                    return Growth::Exit;
                }
            }
            self.last_round_min = self.round_min.take();
            self.samples = 0;
        }
        if let Some(rtt) = rtt {
            self.round_min = Some(self.round_min.map_or(rtt, |m| m.min(rtt)));
            self.samples = self.samples.saturating_add(1);
        }
        let judged = self.samples >= N_RTT_SAMPLE;
        match (self.css, self.round_min, self.last_round_min) {
            (None, Some(current), Some(last)) if judged => {
                let thresh = (last / MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH);
                if current >= last + thresh {
                    log::debug!(
                        "HyStart++: round minimum RTT {current:?} up from {last:?}: conservative slow start"
                    );
                    self.css = Some(Css {
                        baseline: current,
                        rounds: 0,
                    });
                }
            }
            (Some(css), Some(current), _) if judged && current < css.baseline => {
                // The rise was not a queue: back to slow start (§4.2).
                log::debug!("HyStart++: RTT {current:?} back below {:?}", css.baseline);
                self.css = None;
            }
            _ => {}
        }
        if self.css.is_some() {
            Growth::Conservative
        } else {
            Growth::SlowStart
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// One round of `n` ACKs, all with `rtt`; the last growth.
    fn round(h: &mut HyStart, rtt: Duration, n: u32) -> Growth {
        let mut g = h.on_ack(Some(rtt), true);
        for _ in 1..n {
            g = h.on_ack(Some(rtt), false);
        }
        g
    }

    #[test]
    fn a_steady_rtt_stays_in_slow_start() {
        let mut h = HyStart::new();
        for _ in 0..20 {
            assert_eq!(round(&mut h, ms(50), 20), Growth::SlowStart);
        }
    }

    #[test]
    fn a_rising_rtt_turns_conservative_then_ends_slow_start() {
        let mut h = HyStart::new();
        round(&mut h, ms(50), 20);
        // 50 ms / 8 = 6.25 ms: a rise of 6 ms is not enough, 7 ms is.
        assert_eq!(round(&mut h, ms(56), 20), Growth::SlowStart);
        // Judged only after eight samples of the round.
        let mut h = HyStart::new();
        round(&mut h, ms(50), 20);
        let mut g = h.on_ack(Some(ms(57)), true);
        for _ in 1..N_RTT_SAMPLE {
            assert_eq!(g, Growth::SlowStart);
            g = h.on_ack(Some(ms(57)), false);
        }
        assert_eq!(g, Growth::Conservative);
        for _ in 1..CSS_ROUNDS {
            assert_eq!(round(&mut h, ms(57), 20), Growth::Conservative);
        }
        assert_eq!(h.on_ack(Some(ms(57)), true), Growth::Exit);
        assert!(h.is_done());
        assert_eq!(round(&mut h, ms(100), 20), Growth::SlowStart);
    }

    #[test]
    fn the_thresholds_are_clamped_to_4_and_16_ms() {
        // 1 ms paths: an eighth would be 125 µs; jitter of 3 ms is not a
        // queue.
        let mut h = HyStart::new();
        round(&mut h, ms(1), 20);
        assert_eq!(round(&mut h, ms(4), 20), Growth::SlowStart);
        assert_eq!(round(&mut h, ms(9), 20), Growth::Conservative);
        // 400 ms paths: an eighth would be 50 ms; 16 ms is enough.
        let mut h = HyStart::new();
        round(&mut h, ms(400), 20);
        assert_eq!(round(&mut h, ms(416), 20), Growth::Conservative);
    }

    #[test]
    fn rtt_falling_back_resumes_slow_start() {
        let mut h = HyStart::new();
        round(&mut h, ms(50), 20);
        assert_eq!(round(&mut h, ms(60), 20), Growth::Conservative);
        assert_eq!(round(&mut h, ms(55), 20), Growth::SlowStart);
        assert!(!h.is_done());
    }

    #[test]
    fn acks_without_samples_judge_nothing() {
        let mut h = HyStart::new();
        round(&mut h, ms(50), 20);
        assert_eq!(h.on_ack(None, true), Growth::SlowStart);
        for _ in 0..100 {
            assert_eq!(h.on_ack(None, false), Growth::SlowStart);
        }
    }

    #[test]
    fn a_loss_ends_it() {
        let mut h = HyStart::new();
        round(&mut h, ms(50), 20);
        assert_eq!(round(&mut h, ms(60), 20), Growth::Conservative);
        h.end();
        assert!(!h.in_css());
        assert_eq!(round(&mut h, ms(200), 20), Growth::SlowStart);
    }
}
