//! Congestion control: how much unacknowledged data a sender may have in
//! flight.
//!
//! [`CongestionControl`] is the interface the connection drives; three
//! algorithms implement it:
//!
//! - [`NewReno`]: RFC 5681 slow start and congestion avoidance with
//!   appropriate byte counting (RFC 3465, with L = 64 rather than 2: see `ABC_L`), the initial window of RFC
//!   6928, and the window reductions of RFC 5681 §3.1–3.2 that NewReno fast
//!   recovery (RFC 6582) builds on.
//! - [`Cubic`] (the default): RFC 9438, with C = 0.4, β = 0.7, fast
//!   convergence and the Reno-friendly region; its first slow start ends
//!   early by HyStart++ (RFC 9406, [`super::hystart`]) when the RTT rises,
//!   later ones at ssthresh.
//!
//! - [`Bbr`]: BBR version 1 (draft-cardwell-iccrg-bbr-congestion-control-00),
//!   model-based: it paces at its estimate of the bottleneck bandwidth and
//!   does not take random loss for congestion ([`super::bbr`]).
//!
//! [`CongestionAlgorithm`] names them and builds a boxed one.
//!
//! Windows are in bytes. Nothing here reads a clock: every event carries the
//! time from the caller. CUBIC uses `f64` with only the basic IEEE 754
//! operations (its cube root is a Newton iteration, not the platform's
//! `cbrt`), so results are bit-for-bit reproducible.
//!
//! # Division of labour with the connection
//!
//! The controller owns `cwnd` and `ssthresh` and nothing else. The
//! connection detects losses, decides when a loss episode (one "congestion
//! event") begins and ends, runs the retransmissions of fast recovery, and
//! tells the controller through these calls:
//!
//! 1. **Creation and MSS.** Build with the sender maximum segment size in
//!    effect (SMSS: the effective send MSS of RFC 9293 §3.7.1). Call
//!    [`set_mss`](CongestionControl::set_mss) when it changes: once the
//!    peer's MSS option is known (an untouched initial window is recomputed
//!    for the new MSS) and on path MTU changes (the window keeps its size in
//!    segments, as Linux does).
//! 2. **Sending.** Outside fast recovery, the sender keeps the bytes in
//!    flight at or below `min(cwnd(), receive window)` (RFC 5681 §3.1).
//!    "Bytes in flight" is FlightSize (`SND.NXT − SND.UNA`), or RFC 6675's
//!    `pipe` with SACK.
//! 3. **New data acknowledged** (SND.UNA advances) while *not* in fast
//!    recovery: [`on_ack`](CongestionControl::on_ack) with an [`Ack`]: the
//!    number of bytes newly acknowledged, the current smoothed RTT if
//!    known, the ACK's own RTT sample, whether it began a new round trip,
//!    and whether the sender has been using its window: the connection
//!    keeps a [`CwndUsage`] from what it sent, and the window grows only
//!    when it says so (RFC 7661's principle, RFC 9438 §5.8 for CUBIC). A
//!    sender limited by the application or the receive window therefore
//!    does not inflate `cwnd`. Duplicate ACKs are not passed here.
//! 4. **Loss detected** by three duplicate ACKs (RFC 5681 §3.2) or by SACK
//!    (RFC 6675), when not already recovering from an earlier loss in the
//!    same window (RFC 6582 §3.2 step 1, the `recover` variable):
//!    [`on_congestion_event`](CongestionControl::on_congestion_event) with
//!    FlightSize. This sets ssthresh and sets `cwnd` to it (NewReno:
//!    max(FlightSize/2, 2·SMSS), RFC 5681 eq. 4; CUBIC: max(0.7·FlightSize,
//!    2·SMSS), RFC 9438 §4.6), and enters recovery. A second call before
//!    [`on_recovery_exit`](CongestionControl::on_recovery_exit) is ignored:
//!    at most one reduction per episode.
//! 5. **During fast recovery** `cwnd()` stays at the reduced value; it does
//!    **not** include the inflation of RFC 5681 §3.2 steps 3–4 or the
//!    deflation of RFC 6582 §3.2 step 3. What may be sent during recovery is
//!    the connection's business, computed on top of `cwnd()`:
//!    - NewReno: keep an `inflation` counter, 3·SMSS on entry, + SMSS per
//!      further duplicate ACK; on a partial ACK subtract the bytes it
//!      acknowledged and add back SMSS if that was at least SMSS; may send
//!      while FlightSize < `cwnd() + inflation`; or
//!    - with SACK, RFC 6675: may send while `pipe < cwnd()`; or
//!    - PRR (RFC 6937), which paces the reduction towards `cwnd()`.
//!
//!    Partial ACKs are **not** passed to `on_ack` (no window growth during
//!    recovery; calls while recovering are ignored).
//! 6. **Recovery ends** when an ACK covers `recover` (a "full ACK", RFC
//!    6582 §3.2 step 3): [`on_recovery_exit`](CongestionControl::on_recovery_exit).
//!    That ACK is not also passed to `on_ack`. `cwnd` stays at ssthresh
//!    (option 2 of RFC 6582 §3.2 step 3, as Linux); if much less than that
//!    is in flight, the sender should avoid sending the difference as one
//!    burst.
//! 7. **Retransmission timeout**: [`on_retransmit_timeout`](CongestionControl::on_retransmit_timeout)
//!    on every expiry, with FlightSize at the time of the expiry. It sets
//!    `cwnd` to the loss window of one SMSS and, on the first expiry since
//!    new data was last acknowledged, ssthresh as for a loss (RFC 5681
//!    §3.1: ssthresh is not lowered again when the same data times out
//!    again). It ends any fast recovery.
//! 8. **Idle restart**: before sending after an idle period longer than
//!    the RTO, [`on_idle_restart`](CongestionControl::on_idle_restart)
//!    (RFC 5681 §4.1).
//! 9. **Handshake loss**: if the SYN or SYN-ACK was retransmitted,
//!    [`on_handshake_loss`](CongestionControl::on_handshake_loss) before
//!    sending data: the initial window becomes one segment (RFC 5681 §3.1).
//!
//! Invariants (proptested): SMSS ≤ `cwnd()` ≤ [`MAX_CWND`], ssthresh ≥
//! 2·SMSS, and no input makes any call panic.
//!
//! Deliberately not here: ECN reactions (RFC 3168); deciding that a
//! reduction was spurious (the connection does, by D-SACK and F-RTO, and
//! calls [`on_spurious_congestion`](CongestionControl::on_spurious_congestion));
//! the Eifel timestamp test (RFC 3522); pacing (the connection paces, at
//! [`pacing_rate`](CongestionControl::pacing_rate) or its own); and the
//! congestion window validation of RFC 7661 beyond the "do not grow an
//! unused window" test above.
//!
//! # Example
//!
//! NewReno with a 1000-byte MSS: slow start grows the window by what each ACK
//! acknowledges, and a loss halves it.
//!
//! ```
//! use netstrata::transport::tcp::congestion::{Ack, CongestionAlgorithm, initial_window};
//! use netstrata::{Duration, Instant};
//!
//! let mut cc = CongestionAlgorithm::NewReno.build(1000);
//! assert_eq!(cc.cwnd(), initial_window(1000));
//! assert_eq!(cc.cwnd(), 10_000);
//! let ack = |acked| Ack {
//!     now: Instant::from_millis(100),
//!     acked,
//!     srtt: Some(Duration::from_millis(100)),
//!     rtt: Some(Duration::from_millis(100)),
//!     cwnd_limited: true,
//!     round_start: false,
//! };
//! cc.on_ack(&ack(2000));
//! assert_eq!(cc.cwnd(), 12_000);
//! assert!(cc.in_slow_start());
//!
//! cc.on_congestion_event(Instant::from_millis(200), 12_000);
//! assert_eq!(cc.ssthresh(), 6_000);
//! assert!(cc.in_recovery() && !cc.in_slow_start());
//! assert_eq!(CongestionAlgorithm::from_name("cubic"), Some(CongestionAlgorithm::Cubic));
//! ```

use core::fmt::Debug;

pub use super::bbr::Bbr;
use super::hystart::{CSS_GROWTH_DIVISOR, Growth, HyStart};
use super::rate::RateSample;
use super::seq::SeqNumber;
use crate::time::{Duration, Instant};

/// The largest congestion window, 2^30 bytes: the largest window TCP can
/// advertise is just below it (RFC 7323 §2.3), so a larger `cwnd` never lets
/// more be sent and only risks arithmetic trouble.
pub const MAX_CWND: usize = 1 << 30;

/// The largest SMSS accepted by [`CongestionControl::set_mss`]; larger
/// values are clamped (the MSS option is 16 bits).
pub const MAX_MSS: usize = u16::MAX as usize;

/// Window growth per ACK in slow start is capped at L·SMSS. RFC 3465 §2.2
/// suggests L = 2 against bursts from stretch ACKs; but this stack's
/// receivers (like Linux with GRO) acknowledge a whole batch of segments
/// at once, and with L = 2 slow start then grows by 2 segments per round
/// trip instead of doubling. Linux counts every acknowledged segment;
/// so does this, up to 64 segments per ACK.
const ABC_L: usize = 64;

/// The initial window of RFC 6928 §2: min(10·MSS, max(2·MSS, 14600)) bytes,
/// for an MSS clamped to `1..=MAX_MSS`.
pub fn initial_window(mss: usize) -> usize {
    let mss = mss.clamp(1, MAX_MSS);
    (10 * mss).min((2 * mss).max(14_600))
}

/// A congestion controller, driven by the connection as laid out in the
/// [module documentation](self).
pub trait CongestionControl: Debug + Send {
    /// The algorithm's name ("newreno", "cubic").
    fn name(&self) -> &'static str;

    /// The congestion window in bytes, without any fast-recovery inflation.
    fn cwnd(&self) -> usize;

    /// The slow-start threshold in bytes; `usize::MAX` until the first loss
    /// (RFC 5681 §3.1: "arbitrarily high").
    fn ssthresh(&self) -> usize;

    /// The SMSS in use.
    fn mss(&self) -> usize;

    /// Whether the next ACK grows the window by slow start (`cwnd <
    /// ssthresh`).
    fn in_slow_start(&self) -> bool {
        self.cwnd() < self.ssthresh()
    }

    /// Between [`on_congestion_event`](Self::on_congestion_event) and
    /// [`on_recovery_exit`](Self::on_recovery_exit) (or a timeout).
    fn in_recovery(&self) -> bool;

    /// New data was acknowledged outside fast recovery. Ignored during
    /// recovery.
    fn on_ack(&mut self, ack: &Ack);

    /// A loss was detected by duplicate ACKs or SACK: reduce the window and
    /// enter recovery. `flight_size` is the bytes in flight when the loss
    /// was detected. Ignored if already in recovery.
    fn on_congestion_event(&mut self, now: Instant, flight_size: usize);

    /// Fast recovery ended (a full ACK). The window stays at ssthresh and
    /// grows again from the next [`on_ack`](Self::on_ack).
    fn on_recovery_exit(&mut self, now: Instant);

    /// The retransmission timer expired with `flight_size` bytes in flight:
    /// `cwnd` becomes one SMSS, and ssthresh is lowered unless this is a
    /// repeated expiry without new data acknowledged in between.
    fn on_retransmit_timeout(&mut self, now: Instant, flight_size: usize);

    /// The connection was idle for longer than the RTO and is about to send:
    /// `cwnd` becomes min(initial window, `cwnd`) (RFC 5681 §4.1).
    fn on_idle_restart(&mut self, now: Instant);

    /// The SYN or SYN-ACK was retransmitted: the initial window becomes one
    /// segment (RFC 5681 §3.1). Call before any data is sent.
    fn on_handshake_loss(&mut self);

    /// The SMSS changed (clamped to `1..=MAX_MSS`).
    fn set_mss(&mut self, mss: usize);

    /// Every ACK that delivered data (cumulatively or by SACK) or revealed
    /// losses, in recovery too, after the connection has processed it:
    /// for model-based controllers (BBR). Window-based ones take
    /// [`on_ack`](Self::on_ack) instead and ignore this.
    fn on_delivery(&mut self, _delivered: &Delivered) {}

    /// The rate to pace data at, in bytes per second, if the controller
    /// sets one (BBR); window-based ones leave pacing to the connection's
    /// configuration.
    fn pacing_rate(&self) -> Option<u64> {
        None
    }

    /// Whether fast recovery sends within Proportional Rate Reduction's
    /// budget (RFC 6937); a controller that sets its window in recovery
    /// itself (BBR) says no, and recovery sends within `cwnd()`.
    fn wants_prr(&self) -> bool {
        true
    }

    /// The last congestion event or run of timeouts was spurious: what it
    /// retransmitted had not been lost (D-SACK, RFC 3708; timestamps, RFC
    /// 3522). The window and ssthresh return to what they were before it,
    /// or stay where they are if larger by now (RFC 4015 §3, RFC 9438
    /// §4.9). Returns false if there was nothing to undo (already undone,
    /// or no reduction yet).
    fn on_spurious_congestion(&mut self, now: Instant) -> bool;
}

/// What an ACK of new data tells the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// When the ACK arrived.
    pub now: Instant,
    /// Bytes of new data acknowledged.
    pub acked: usize,
    /// The smoothed RTT, if known (CUBIC looks one RTT ahead).
    pub srtt: Option<Duration>,
    /// This ACK's round-trip sample, if Karn's rule allows one.
    pub rtt: Option<Duration>,
    /// The sender has been using its window ([`CwndUsage::limited`]):
    /// only then may it grow.
    pub cwnd_limited: bool,
    /// The ACK begins a new round trip: SND.UNA passed what SND.NXT was
    /// when the last round began (RFC 9406 §4.2 `windowEnd`).
    pub round_start: bool,
}

/// What one ACK delivered, for [`CongestionControl::on_delivery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// When the ACK arrived.
    pub now: Instant,
    /// Bytes it delivered, cumulatively or by SACK.
    pub bytes: usize,
    /// Bytes it revealed lost.
    pub lost: usize,
    /// Bytes in flight after it (neither delivered nor lost).
    pub in_flight: usize,
    /// Bytes delivered over the connection's life (`C.delivered`).
    pub total: u64,
    /// Its delivery rate sample, if it gave one.
    pub rate: Option<RateSample>,
    /// Its round-trip sample, if Karn's rule allows one.
    pub rtt: Option<Duration>,
}

/// The congestion control algorithms available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CongestionAlgorithm {
    /// [`NewReno`].
    NewReno,
    /// [`Cubic`], the default.
    #[default]
    Cubic,
    /// [`Bbr`] (version 1), which paces.
    Bbr,
}

impl CongestionAlgorithm {
    /// A fresh controller of this kind for an SMSS of `mss` bytes, with
    /// its defaults.
    pub fn build(self, mss: usize) -> Box<dyn CongestionControl> {
        self.build_with(mss, true, 0)
    }

    /// The same, with HyStart++ on or off where the algorithm has it
    /// (CUBIC), and `seed` for what the algorithm chooses at random (BBR's
    /// first probing phase).
    pub fn build_with(self, mss: usize, hystart: bool, seed: u64) -> Box<dyn CongestionControl> {
        match self {
            CongestionAlgorithm::NewReno => Box::new(NewReno::new(mss)),
            CongestionAlgorithm::Cubic => {
                let mut cubic = Cubic::new(mss);
                cubic.set_hystart(hystart);
                Box::new(cubic)
            }
            CongestionAlgorithm::Bbr => Box::new(Bbr::new(mss, seed)),
        }
    }

    /// The algorithm named `name` ("newreno", "cubic", "bbr").
    pub fn from_name(name: &str) -> Option<CongestionAlgorithm> {
        match name {
            "newreno" | "reno" => Some(CongestionAlgorithm::NewReno),
            "cubic" => Some(CongestionAlgorithm::Cubic),
            "bbr" => Some(CongestionAlgorithm::Bbr),
            _ => None,
        }
    }
}

/// `x · num / den` without overflow, saturating at `usize::MAX`.
fn scale(x: usize, num: usize, den: usize) -> usize {
    let r = (x as u128) * (num as u128) / (den.max(1) as u128);
    usize::try_from(r).unwrap_or(usize::MAX)
}

/// Whether the congestion window limits the sender, judged over the
/// window's worth of data last sent rather than at the instant of one ACK
/// (the principle of RFC 7661; the bookkeeping of Linux's
/// `tcp_cwnd_validate`).
///
/// The instant is misleading for a sender that takes ACKs in batches, as
/// this one does (a poll reads every waiting frame, then sends): by the
/// last ACK of a batch most of the flight is acknowledged and nothing has
/// been sent yet, and a test of what is in flight then would call a
/// window that was full a moment ago unused.
///
/// The connection reports every time it looks for new data to send
/// ([`CwndUsage::on_send`]). The answer holds until SND.UNA passes what was
/// sent when it was formed, so it covers one round trip of sending:
/// limited if the window stopped the sender at any point in it. In slow
/// start the window may also grow to twice the most that was in flight, as
/// Linux allows, so that it doubles per round even when the application
/// keeps it just short of full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CwndUsage {
    /// The window stopped the sender in the current period.
    limited: bool,
    /// The most in flight in the current period.
    max_in_flight: usize,
    /// What was in flight when the sender last looked.
    last_in_flight: usize,
    /// SND.NXT when the period began; SND.UNA reaching it ends the period.
    end: SeqNumber,
}

impl CwndUsage {
    /// The sender looked for new data to send: `limited` if the window
    /// left no room for it, with `in_flight` outstanding, SND.UNA `una` and
    /// SND.NXT `nxt`.
    pub fn on_send(&mut self, limited: bool, in_flight: usize, una: SeqNumber, nxt: SeqNumber) {
        self.last_in_flight = in_flight;
        let period_over = self.end <= una;
        if period_over || limited || (!self.limited && in_flight > self.max_in_flight) {
            self.limited = limited;
            self.max_in_flight = in_flight;
            self.end = nxt;
        }
    }

    /// What was in flight when the sender last looked for data to send.
    pub fn last_in_flight(&self) -> usize {
        self.last_in_flight
    }

    /// Whether a window of `cwnd` bytes may grow: the sender was limited by
    /// it, or (in slow start) it is less than twice what was in flight.
    pub fn limited(&self, cwnd: usize, in_slow_start: bool) -> bool {
        self.limited || (in_slow_start && cwnd < self.max_in_flight.saturating_mul(2))
    }
}

/// The state both algorithms share: the window, the threshold and the
/// phase.
#[derive(Debug, Clone)]
struct Window {
    mss: usize,
    cwnd: usize,
    ssthresh: usize,
    in_recovery: bool,
    /// A timeout fired and no new data has been acknowledged since: another
    /// timeout is for the same loss and must not lower ssthresh again.
    rto_pending: bool,
    /// `cwnd` is still the untouched initial window.
    fresh: bool,
    /// cwnd and ssthresh before the last reduction, until it is undone.
    prior: Option<(usize, usize)>,
}

impl Window {
    fn new(mss: usize) -> Window {
        let mss = mss.clamp(1, MAX_MSS);
        Window {
            mss,
            cwnd: initial_window(mss),
            ssthresh: usize::MAX,
            in_recovery: false,
            rto_pending: false,
            fresh: true,
            prior: None,
        }
    }

    fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }

    /// Common bookkeeping of an ACK of new data.
    fn on_new_data_acked(&mut self) {
        self.rto_pending = false;
        self.fresh = false;
    }

    /// Slow start with appropriate byte counting (RFC 5681 §3.1, RFC 3465
    /// §2.2): grows `cwnd` by min(acked, L·SMSS) / `divisor` (1, or
    /// HyStart++'s in conservative slow start), but not beyond ssthresh.
    /// Returns the bytes left over for congestion avoidance once `cwnd`
    /// reaches ssthresh (0 if it did not).
    fn slow_start(&mut self, acked: usize, divisor: usize) -> usize {
        let room = self.ssthresh.saturating_sub(self.cwnd);
        let inc = acked.min(ABC_L * self.mss) / divisor.max(1);
        if inc < room {
            self.cwnd = self.cwnd.saturating_add(inc).min(MAX_CWND);
            0
        } else {
            self.cwnd = self.ssthresh.min(MAX_CWND);
            acked - room
        }
    }

    /// Sets ssthresh from a loss (at least 2·SMSS, RFC 5681 eq. 4).
    fn set_ssthresh(&mut self, ssthresh: usize) {
        self.ssthresh = ssthresh.max(2 * self.mss);
    }

    /// Remembers cwnd and ssthresh before a reduction, for [`Window::undo`].
    fn save(&mut self) {
        self.prior = Some((self.cwnd, self.ssthresh));
    }

    /// Undoes the last reduction: cwnd and ssthresh at least what they
    /// were before it. Returns whether there was one.
    fn undo(&mut self) -> bool {
        let Some((cwnd, ssthresh)) = self.prior.take() else {
            return false;
        };
        self.cwnd = self.cwnd.max(cwnd);
        self.ssthresh = if ssthresh == usize::MAX {
            ssthresh
        } else {
            self.ssthresh.max(ssthresh)
        };
        self.rto_pending = false;
        true
    }

    /// Enters fast recovery with `cwnd` = ssthresh (no inflation).
    fn enter_recovery(&mut self) {
        self.cwnd = self.ssthresh.min(MAX_CWND);
        self.in_recovery = true;
        self.rto_pending = false;
        self.fresh = false;
    }

    /// The loss window after a timeout; returns whether ssthresh should be
    /// recomputed (the first timeout of a run).
    fn timeout(&mut self) -> bool {
        let first = !self.rto_pending;
        self.cwnd = self.mss;
        self.in_recovery = false;
        self.rto_pending = true;
        self.fresh = false;
        first
    }

    fn idle_restart(&mut self) {
        self.cwnd = self.cwnd.min(initial_window(self.mss));
    }

    fn handshake_loss(&mut self) {
        self.cwnd = self.mss;
        self.fresh = false;
    }

    /// Changes the SMSS; returns the old one. Scales the window to the same
    /// number of segments, or recomputes an untouched initial window.
    fn set_mss(&mut self, mss: usize) -> usize {
        let old = self.mss;
        let mss = mss.clamp(1, MAX_MSS);
        self.mss = mss;
        if self.fresh {
            self.cwnd = initial_window(mss);
        } else {
            self.cwnd = scale(self.cwnd, mss, old).clamp(mss, MAX_CWND);
        }
        if self.ssthresh != usize::MAX {
            self.ssthresh = scale(self.ssthresh, mss, old).max(2 * mss);
        }
        old
    }
}

/// NewReno's window management (RFC 5681, RFC 3465, RFC 6928; fast
/// recovery itself, RFC 6582, is run by the connection — see the
/// [module documentation](self)).
///
/// - Initial window: [`initial_window`]; ssthresh starts arbitrarily high.
/// - Slow start (`cwnd < ssthresh`): `cwnd += min(acked, 2·SMSS)` per ACK.
/// - Congestion avoidance: byte counting (RFC 3465 §2.1): once a full
///   `cwnd` of bytes has been acknowledged, `cwnd += SMSS` — one segment
///   per round trip, however the ACKs are spaced.
/// - Loss: ssthresh = `cwnd` = max(FlightSize/2, 2·SMSS).
/// - Timeout: ssthresh as for a loss, `cwnd` = SMSS.
#[derive(Debug, Clone)]
pub struct NewReno {
    w: Window,
    /// Bytes acknowledged in congestion avoidance towards the next
    /// increment (RFC 3465 `bytes_acked`).
    bytes_acked: usize,
}

impl NewReno {
    /// A controller for an SMSS of `mss` bytes, with the initial window.
    pub fn new(mss: usize) -> NewReno {
        NewReno {
            w: Window::new(mss),
            bytes_acked: 0,
        }
    }
}

impl CongestionControl for NewReno {
    fn name(&self) -> &'static str {
        "newreno"
    }

    fn cwnd(&self) -> usize {
        self.w.cwnd
    }

    fn ssthresh(&self) -> usize {
        self.w.ssthresh
    }

    fn mss(&self) -> usize {
        self.w.mss
    }

    fn in_recovery(&self) -> bool {
        self.w.in_recovery
    }

    fn on_ack(&mut self, ack: &Ack) {
        if self.w.in_recovery || ack.acked == 0 {
            return;
        }
        self.w.on_new_data_acked();
        if !ack.cwnd_limited {
            return;
        }
        let mut acked = ack.acked;
        if self.w.in_slow_start() {
            acked = self.w.slow_start(acked, 1);
            if acked == 0 {
                return;
            }
        }
        // Congestion avoidance, RFC 3465 §2.1. At most one increment per
        // ACK; what a stretch ACK acknowledges beyond that carries over, up
        // to one more window.
        self.bytes_acked = self.bytes_acked.saturating_add(acked);
        if self.bytes_acked >= self.w.cwnd {
            self.bytes_acked -= self.w.cwnd;
            self.w.cwnd = (self.w.cwnd + self.w.mss).min(MAX_CWND);
            self.bytes_acked = self.bytes_acked.min(self.w.cwnd);
        }
    }

    fn on_congestion_event(&mut self, _now: Instant, flight_size: usize) {
        if self.w.in_recovery {
            return;
        }
        self.w.save();
        self.w.set_ssthresh(flight_size / 2);
        self.w.enter_recovery();
        self.bytes_acked = 0;
    }

    fn on_recovery_exit(&mut self, _now: Instant) {
        self.w.in_recovery = false;
    }

    fn on_retransmit_timeout(&mut self, _now: Instant, flight_size: usize) {
        if !self.w.rto_pending {
            self.w.save();
        }
        if self.w.timeout() {
            self.w.set_ssthresh(flight_size / 2);
        }
        self.bytes_acked = 0;
    }

    fn on_spurious_congestion(&mut self, _now: Instant) -> bool {
        self.bytes_acked = 0;
        self.w.undo()
    }

    fn on_idle_restart(&mut self, _now: Instant) {
        self.w.idle_restart();
        self.bytes_acked = 0;
    }

    fn on_handshake_loss(&mut self) {
        self.w.handshake_loss();
    }

    fn set_mss(&mut self, mss: usize) {
        let old = self.w.set_mss(mss);
        self.bytes_acked = scale(self.bytes_acked, self.w.mss, old).min(self.w.cwnd);
    }
}

/// CUBIC's C: window growth in segments per second cubed (RFC 9438 §4.1.1).
const CUBIC_C: f64 = 0.4;
/// β_cubic, the multiplicative decrease factor (RFC 9438 §4.1.1).
const CUBIC_BETA: f64 = 0.7;
/// α_cubic = 3(1 − β)/(1 + β), the additive increase of the Reno-friendly
/// estimate before it reaches the previous window (RFC 9438 §4.3).
const CUBIC_ALPHA: f64 = 3.0 * (1.0 - CUBIC_BETA) / (1.0 + CUBIC_BETA);

/// The cube root of `x` for finite `x ≥ 0` (0 otherwise), by Newton's
/// method from a bit-level first guess, using only basic IEEE operations so
/// that it is reproducible on every platform.
fn cbrt(x: f64) -> f64 {
    // Below this the guess trick is unreliable and the root is
    // insignificant (< 1e-100 seconds).
    if x.is_nan() || x <= 1e-300 || x.is_infinite() {
        return 0.0;
    }
    // Dividing the exponent by three: within a few percent of the root.
    let mut y = f64::from_bits(x.to_bits() / 3 + 0x2A9F_7893_782D_A1CE);
    for _ in 0..6 {
        y = (2.0 * y + x / (y * y)) / 3.0;
    }
    y
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// CUBIC (RFC 9438), the default.
///
/// In congestion avoidance the window follows
/// W_cubic(t) = C·(t − K)³ + W_max (in segments, t in seconds since the
/// current congestion avoidance stage began), where W_max is the window
/// before the last reduction and K = ∛((W_max − cwnd_epoch)/C) the time to
/// regain it (§4.2). On each ACK the window moves towards
/// target = W_cubic(t + RTT), bounded to [cwnd, 1.5·cwnd] (so it at most
/// grows by half per round trip), by (target − cwnd)/cwnd per segment
/// acknowledged — unless the Reno-friendly estimate W_est, which grows by
/// α_cubic (then 1, once past the previous window) segments per round trip,
/// is ahead of W_cubic(t); then the window is W_est (§4.3). A loss sets
/// ssthresh = cwnd = max(0.7·FlightSize, 2·SMSS) and W_max with fast
/// convergence (§4.6, §4.7); a timeout sets ssthresh the same way and
/// starts the next stage with K = 0, W_max = cwnd_epoch (§4.8). Below
/// ssthresh, it is slow start as in [`NewReno`].
///
/// The stage's time origin is the first ACK in congestion avoidance after a
/// reduction; it is reset (and K recomputed from the current window) when
/// the sender stops using its window, so that application-limited periods
/// do not count towards t (§5.8). With no RTT known, the target is
/// W_cubic(t).
#[derive(Debug, Clone)]
pub struct Cubic {
    w: Window,
    /// W_max in bytes.
    w_max: f64,
    /// The window just before the last reduction, in bytes (cwnd_prior).
    cwnd_prior: f64,
    /// W_max before the last reduction, for an undo (RFC 9438 §4.9).
    w_max_prior: f64,
    /// K in seconds.
    k: f64,
    /// W_est in bytes.
    w_est: f64,
    /// The window with its fractional part, valid while `epoch` is set.
    cwnd_exact: f64,
    /// t_epoch: when the current congestion avoidance stage began.
    epoch: Option<Instant>,
    /// The last smoothed RTT passed in.
    srtt: Option<Duration>,
    /// The next stage follows a timeout (§4.8).
    after_timeout: bool,
    fast_convergence: bool,
    /// HyStart++ in the first slow start (RFC 9438 §4.10, RFC 9406).
    hystart: HyStart,
}

impl Cubic {
    /// A controller for an SMSS of `mss` bytes, with the initial window and
    /// fast convergence on.
    pub fn new(mss: usize) -> Cubic {
        Cubic {
            w: Window::new(mss),
            w_max: 0.0,
            cwnd_prior: 0.0,
            w_max_prior: 0.0,
            k: 0.0,
            w_est: 0.0,
            cwnd_exact: 0.0,
            epoch: None,
            srtt: None,
            after_timeout: false,
            fast_convergence: true,
            hystart: HyStart::new(),
        }
    }

    /// Turns HyStart++ (on by default) on or off; off, the first slow
    /// start ends only with a loss. Meant before the first ACK.
    pub fn set_hystart(&mut self, on: bool) {
        self.hystart = HyStart::new();
        if !on {
            self.hystart.end();
        }
    }

    /// Turns fast convergence (RFC 9438 §4.7, a SHOULD) on or off.
    pub fn set_fast_convergence(&mut self, on: bool) {
        self.fast_convergence = on;
    }

    /// W_max in bytes: the window before the last reduction, possibly
    /// lowered by fast convergence (0 before any loss).
    pub fn w_max(&self) -> f64 {
        self.w_max
    }

    /// K in seconds: how long after the start of the current congestion
    /// avoidance stage W_cubic reaches W_max.
    pub fn k(&self) -> f64 {
        self.k
    }

    /// W_cubic(t) in bytes (RFC 9438 eq. 1).
    fn w_cubic(&self, t: f64) -> f64 {
        let d = t - self.k;
        CUBIC_C * (self.w.mss as f64) * d * d * d + self.w_max
    }

    /// The beginning of a congestion avoidance stage (§4.2, §4.3, §4.8).
    fn start_epoch(&mut self, now: Instant) {
        let cwnd = self.w.cwnd as f64;
        self.epoch = Some(now);
        self.cwnd_exact = cwnd;
        self.w_est = cwnd;
        if self.after_timeout || self.w_max <= cwnd {
            if self.after_timeout {
                self.cwnd_prior = cwnd;
            }
            self.after_timeout = false;
            self.w_max = cwnd;
            self.k = 0.0;
        } else {
            self.k = cbrt((self.w_max - cwnd) / (CUBIC_C * self.w.mss as f64));
        }
    }

    fn congestion_avoidance(&mut self, now: Instant, acked: usize) {
        let epoch = match self.epoch {
            Some(e) => e,
            None => {
                self.start_epoch(now);
                now
            }
        };
        let max = MAX_CWND as f64;
        let mss = self.w.mss as f64;
        let acked = acked as f64;
        let cwnd = self.cwnd_exact;
        let t = secs(now.saturating_duration_since(epoch));

        let alpha = if self.w_est >= self.cwnd_prior {
            1.0
        } else {
            CUBIC_ALPHA
        };
        self.w_est = (self.w_est + alpha * acked * mss / cwnd).min(max);

        let next = if self.w_cubic(t) < self.w_est {
            // Reno-friendly region (§4.3).
            self.w_est
        } else {
            // Concave or convex region (§4.4, §4.5).
            let rtt = self.srtt.map_or(0.0, secs);
            let target = self.w_cubic(t + rtt).min(1.5 * cwnd).max(cwnd);
            cwnd + (target - cwnd) * acked / cwnd
        };
        self.cwnd_exact = next.max(cwnd).min(max);
        // `as` saturates; cwnd_exact is finite and within [SMSS, MAX_CWND].
        self.w.cwnd = (self.cwnd_exact as usize).clamp(self.w.mss, MAX_CWND);
    }

    /// ssthresh = max(β·FlightSize, 2·SMSS) (§4.6).
    fn reduced(&self, flight_size: usize) -> usize {
        scale(flight_size, 7, 10)
    }
}

impl CongestionControl for Cubic {
    fn name(&self) -> &'static str {
        "cubic"
    }

    fn cwnd(&self) -> usize {
        self.w.cwnd
    }

    fn ssthresh(&self) -> usize {
        self.w.ssthresh
    }

    fn mss(&self) -> usize {
        self.w.mss
    }

    fn in_recovery(&self) -> bool {
        self.w.in_recovery
    }

    fn on_ack(&mut self, ack: &Ack) {
        if self.w.in_recovery || ack.acked == 0 {
            return;
        }
        self.w.on_new_data_acked();
        if ack.srtt.is_some() {
            self.srtt = ack.srtt;
        }
        let mut divisor = 1;
        if self.w.in_slow_start() && self.w.ssthresh == usize::MAX {
            match self.hystart.on_ack(ack.rtt, ack.round_start) {
                Growth::SlowStart => {}
                Growth::Conservative => divisor = CSS_GROWTH_DIVISOR,
                Growth::Exit => self.w.ssthresh = self.w.cwnd.max(2 * self.w.mss),
            }
        }
        if !ack.cwnd_limited {
            // §5.8: time spent not using the window does not count.
            self.epoch = None;
            return;
        }
        let mut acked = ack.acked;
        if self.w.in_slow_start() {
            acked = self.w.slow_start(acked, divisor);
            if acked == 0 {
                return;
            }
        }
        self.congestion_avoidance(ack.now, acked);
    }

    fn on_congestion_event(&mut self, _now: Instant, flight_size: usize) {
        if self.w.in_recovery {
            return;
        }
        let cwnd = self.w.cwnd as f64;
        self.w.save();
        self.w_max_prior = self.w_max;
        self.cwnd_prior = cwnd;
        // Fast convergence (§4.7): a flow losing below its previous maximum
        // releases bandwidth by aiming lower.
        self.w_max = if self.fast_convergence && cwnd < self.w_max {
            cwnd * (1.0 + CUBIC_BETA) / 2.0
        } else {
            cwnd
        };
        self.w.set_ssthresh(self.reduced(flight_size));
        self.w.enter_recovery();
        self.epoch = None;
        self.after_timeout = false;
        self.hystart.end();
    }

    fn on_recovery_exit(&mut self, _now: Instant) {
        self.w.in_recovery = false;
    }

    fn on_retransmit_timeout(&mut self, _now: Instant, flight_size: usize) {
        if !self.w.rto_pending {
            self.w.save();
            self.w_max_prior = self.w_max;
        }
        if self.w.timeout() {
            self.w.set_ssthresh(self.reduced(flight_size));
        }
        self.epoch = None;
        self.after_timeout = true;
        self.hystart.end();
    }

    fn on_spurious_congestion(&mut self, _now: Instant) -> bool {
        if !self.w.undo() {
            return false;
        }
        // RFC 9438 §4.9: W_max as before the event; a new stage begins
        // from the restored window.
        self.w_max = self.w_max_prior;
        self.epoch = None;
        self.after_timeout = false;
        true
    }

    fn on_idle_restart(&mut self, _now: Instant) {
        self.w.idle_restart();
        self.epoch = None;
        self.hystart.end();
    }

    fn on_handshake_loss(&mut self) {
        self.w.handshake_loss();
        self.epoch = None;
    }

    fn set_mss(&mut self, mss: usize) {
        let old = self.w.set_mss(mss) as f64;
        let ratio = self.w.mss as f64 / old;
        self.w_max *= ratio;
        self.cwnd_prior *= ratio;
        self.epoch = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MSS: usize = 1000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// An ACK whose RTT sample is `srtt`, in no new round (HyStart++ never
    /// judges a round).
    fn ack(now: Instant, acked: usize, srtt: Option<Duration>, cwnd_limited: bool) -> Ack {
        Ack {
            now,
            acked,
            srtt,
            rtt: srtt,
            cwnd_limited,
            round_start: false,
        }
    }

    /// One round trip of a sender that keeps its window full: the window at
    /// the start of the round is sent in full-sized segments and
    /// acknowledged `per_ack` segments at a time, the ACKs spread evenly
    /// over the round trip. Returns the time at the end of the round.
    fn round(
        cc: &mut dyn CongestionControl,
        start: Instant,
        rtt: Duration,
        per_ack: usize,
    ) -> Instant {
        let window = cc.cwnd();
        let segments = (window / cc.mss()).max(1);
        let acks = segments.div_ceil(per_ack);
        for i in 1..=acks {
            let now = start + rtt * (i as u32) / (acks as u32);
            let acked = (per_ack * cc.mss()).min((segments - (i - 1) * per_ack) * cc.mss());
            cc.on_ack(&ack(now, acked, Some(rtt), true));
        }
        start + rtt
    }

    fn rounds(
        cc: &mut dyn CongestionControl,
        mut now: Instant,
        rtt: Duration,
        n: usize,
    ) -> Instant {
        for _ in 0..n {
            now = round(cc, now, rtt, 1);
        }
        now
    }

    #[test]
    fn initial_window_per_rfc6928() {
        assert_eq!(initial_window(1460), 14_600);
        assert_eq!(initial_window(536), 5_360);
        assert_eq!(initial_window(4000), 14_600);
        assert_eq!(initial_window(9000), 18_000);
        assert_eq!(initial_window(0), 10);
        assert_eq!(CongestionAlgorithm::default(), CongestionAlgorithm::Cubic);
        for alg in [CongestionAlgorithm::NewReno, CongestionAlgorithm::Cubic] {
            let cc = alg.build(1460);
            assert_eq!(cc.cwnd(), 14_600);
            assert_eq!(cc.ssthresh(), usize::MAX);
            assert!(cc.in_slow_start());
        }
        assert_eq!(CongestionAlgorithm::Cubic.build(1460).name(), "cubic");
        assert_eq!(CongestionAlgorithm::NewReno.build(1460).name(), "newreno");
    }

    #[test]
    fn set_mss_recomputes_an_untouched_initial_window() {
        let mut cc = NewReno::new(536);
        assert_eq!(cc.cwnd(), 5360);
        cc.set_mss(1460);
        assert_eq!(cc.cwnd(), 14_600);
        // After activity the window keeps its size in segments.
        cc.on_congestion_event(Instant::ZERO, 40 * 1460);
        assert_eq!(cc.cwnd(), 20 * 1460);
        cc.set_mss(1000);
        assert_eq!(cc.cwnd(), 20 * 1000);
        assert_eq!(cc.ssthresh(), 20 * 1000);
        // A handshake loss is not undone by learning the MSS.
        let mut cc = Cubic::new(536);
        cc.on_handshake_loss();
        cc.set_mss(1460);
        assert_eq!(cc.cwnd(), 1460);
    }

    #[test]
    fn slow_start_doubles_per_round_trip() {
        for alg in [CongestionAlgorithm::NewReno, CongestionAlgorithm::Cubic] {
            for per_ack in [1, 2] {
                let mut cc = alg.build(MSS);
                let mut now = Instant::ZERO;
                let mut expected = 10 * MSS;
                for _ in 0..6 {
                    assert_eq!(cc.cwnd(), expected, "{alg:?}, {per_ack} per ACK");
                    now = round(cc.as_mut(), now, ms(100), per_ack);
                    expected *= 2;
                }
            }
        }
    }

    #[test]
    fn slow_start_byte_counting_limit() {
        // A stretch ACK for 5 segments counts all 5 (as Linux), up to
        // ABC_L segments.
        let mut cc = NewReno::new(MSS);
        cc.on_ack(&ack(Instant::ZERO, 5 * MSS, None, true));
        assert_eq!(cc.cwnd(), 15 * MSS);
        let mut cc = NewReno::new(MSS);
        cc.on_ack(&ack(Instant::ZERO, 100 * MSS, None, true));
        assert_eq!(cc.cwnd(), (10 + ABC_L) * MSS);
    }

    #[test]
    fn slow_start_stops_at_ssthresh() {
        let mut cc = NewReno::new(MSS);
        cc.on_retransmit_timeout(Instant::ZERO, 5 * MSS); // ssthresh 2500 → 2000
        assert_eq!(cc.ssthresh(), 2 * MSS + MSS / 2);
        assert_eq!(cc.cwnd(), MSS);
        cc.on_ack(&ack(Instant::ZERO, MSS, None, true));
        assert_eq!(cc.cwnd(), 2 * MSS);
        cc.on_ack(&ack(Instant::ZERO, 2 * MSS, None, true));
        assert_eq!(cc.cwnd(), cc.ssthresh());
        assert!(!cc.in_slow_start());
    }

    #[test]
    fn newreno_congestion_avoidance_grows_one_segment_per_round_trip() {
        for per_ack in [1, 2, 3] {
            let mut cc = NewReno::new(MSS);
            cc.on_congestion_event(Instant::ZERO, 40 * MSS);
            cc.on_recovery_exit(Instant::ZERO);
            assert_eq!(cc.cwnd(), 20 * MSS);
            let mut now = Instant::ZERO;
            for r in 1..=10 {
                now = round(&mut cc, now, ms(50), per_ack);
                assert_eq!(cc.cwnd(), (20 + r) * MSS, "{per_ack} per ACK, round {r}");
            }
        }
    }

    #[test]
    fn newreno_loss_halves_and_timeout_resets() {
        let mut cc = NewReno::new(MSS);
        let t = Instant::from_secs(1);
        rounds(&mut cc, t, ms(10), 4); // 160 segments
        assert_eq!(cc.cwnd(), 160 * MSS);
        cc.on_congestion_event(t, 160 * MSS);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (80 * MSS, 80 * MSS));
        assert!(cc.in_recovery());
        // No growth and no second reduction during recovery.
        cc.on_ack(&ack(t, 10 * MSS, None, true));
        cc.on_congestion_event(t, 100 * MSS);
        assert_eq!(cc.cwnd(), 80 * MSS);
        cc.on_recovery_exit(t);
        assert!(!cc.in_recovery());
        assert_eq!(cc.cwnd(), 80 * MSS);
        // Small flight: ssthresh is at least 2 segments.
        cc.on_congestion_event(t, MSS);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (2 * MSS, 2 * MSS));
        cc.on_recovery_exit(t);
        // Timeout: loss window, ssthresh from FlightSize.
        cc.on_retransmit_timeout(t, 30 * MSS);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (MSS, 15 * MSS));
        // A repeated timeout for the same data keeps ssthresh.
        cc.on_retransmit_timeout(t, 2 * MSS);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (MSS, 15 * MSS));
        // After new data is acknowledged, a timeout lowers it again.
        cc.on_ack(&ack(t, MSS, None, true));
        cc.on_retransmit_timeout(t, 8 * MSS);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (MSS, 4 * MSS));
    }

    #[test]
    fn timeout_ends_recovery() {
        let mut cc = Cubic::new(MSS);
        cc.on_congestion_event(Instant::ZERO, 100 * MSS);
        assert!(cc.in_recovery());
        cc.on_retransmit_timeout(Instant::ZERO, 100 * MSS);
        assert!(!cc.in_recovery());
        assert_eq!(cc.cwnd(), MSS);
    }

    #[test]
    fn a_spurious_reduction_is_undone_once() {
        for alg in [CongestionAlgorithm::NewReno, CongestionAlgorithm::Cubic] {
            let mut cc = alg.build(MSS);
            assert!(!cc.on_spurious_congestion(Instant::ZERO), "{alg:?}");
            // Slow start to 20 segments, a first loss, congestion
            // avoidance, then the reduction that proves spurious.
            for i in 0..10 {
                cc.on_ack(&ack(Instant::from_millis(i), MSS, Some(ms(10)), true));
            }
            cc.on_congestion_event(Instant::ZERO, 20 * MSS);
            cc.on_recovery_exit(Instant::ZERO);
            let (cwnd, ssthresh) = (cc.cwnd(), cc.ssthresh());
            cc.on_congestion_event(Instant::ZERO, cwnd);
            assert!(cc.cwnd() < cwnd && cc.ssthresh() < ssthresh, "{alg:?}");
            assert!(cc.on_spurious_congestion(Instant::ZERO), "{alg:?}");
            assert_eq!((cc.cwnd(), cc.ssthresh()), (cwnd, ssthresh), "{alg:?}");
            assert!(!cc.on_spurious_congestion(Instant::ZERO), "{alg:?}");
            // A run of timeouts is undone to before the first of them.
            cc.on_recovery_exit(Instant::ZERO);
            cc.on_retransmit_timeout(Instant::ZERO, cwnd);
            cc.on_retransmit_timeout(Instant::ZERO, MSS);
            assert_eq!(cc.cwnd(), MSS, "{alg:?}");
            assert!(cc.on_spurious_congestion(Instant::ZERO), "{alg:?}");
            assert_eq!((cc.cwnd(), cc.ssthresh()), (cwnd, ssthresh), "{alg:?}");
        }
    }

    #[test]
    fn unused_window_does_not_grow() {
        for alg in [CongestionAlgorithm::NewReno, CongestionAlgorithm::Cubic] {
            let mut cc = alg.build(MSS);
            // An interactive flow with one segment in flight at a time.
            for i in 0..100 {
                cc.on_ack(&ack(Instant::from_millis(i), MSS, Some(ms(1)), false));
            }
            assert_eq!(cc.cwnd(), 10 * MSS, "{alg:?}");
            // A sender the window stopped may grow it.
            cc.on_ack(&ack(Instant::ZERO, MSS, None, true));
            assert_eq!(cc.cwnd(), 11 * MSS, "{alg:?}");
        }
    }

    #[test]
    fn window_usage_is_judged_over_a_round_of_sending() {
        let seq = |n: u32| SeqNumber(n);
        let mut u = CwndUsage::default();
        // Ten segments sent, then the window stops the sender.
        u.on_send(false, 9 * MSS, seq(0), seq(9000));
        u.on_send(true, 10 * MSS, seq(0), seq(10_000));
        assert!(u.limited(10 * MSS, false));
        // ACKs drain the flight and the sender finds room: until SND.UNA
        // passes what was sent when the window stopped it, the round
        // still counts as limited.
        u.on_send(false, MSS, seq(9000), seq(10_000));
        assert!(u.limited(10 * MSS, false));
        // A round with room to spare ends that.
        u.on_send(false, 2 * MSS, seq(10_000), seq(12_000));
        assert!(!u.limited(10 * MSS, false));
        // In slow start the window may grow to twice the most in flight.
        u.on_send(false, 6 * MSS, seq(10_000), seq(16_000));
        assert!(u.limited(10 * MSS, true));
        assert!(!u.limited(12 * MSS, true));
        assert!(!u.limited(10 * MSS, false));
    }

    #[test]
    fn idle_restart_and_handshake_loss() {
        for alg in [CongestionAlgorithm::NewReno, CongestionAlgorithm::Cubic] {
            let mut cc = alg.build(MSS);
            rounds(cc.as_mut(), Instant::ZERO, ms(10), 3);
            assert_eq!(cc.cwnd(), 80 * MSS);
            cc.on_idle_restart(Instant::from_secs(10));
            assert_eq!(cc.cwnd(), 10 * MSS);
            assert_eq!(cc.ssthresh(), usize::MAX);
            cc.on_retransmit_timeout(Instant::from_secs(11), 10 * MSS);
            cc.on_idle_restart(Instant::from_secs(20));
            assert_eq!(cc.cwnd(), MSS); // min(IW, cwnd)

            let mut cc = alg.build(MSS);
            cc.on_handshake_loss();
            assert_eq!(cc.cwnd(), MSS);
            assert_eq!(cc.ssthresh(), usize::MAX);
        }
    }

    #[test]
    fn cbrt_matches_the_platform() {
        for x in [
            1e-12, 1e-6, 0.001, 0.3, 1.0, 2.0, 27.0, 75.0, 1e6, 3.3e9, 1e30, 1e300,
        ] {
            let got = cbrt(x);
            let want = x.cbrt();
            assert!(
                (got - want).abs() <= want * 1e-14,
                "cbrt({x}) = {got}, want {want}"
            );
        }
        assert_eq!(cbrt(0.0), 0.0);
        assert_eq!(cbrt(-8.0), 0.0);
        assert_eq!(cbrt(f64::NAN), 0.0);
        assert_eq!(cbrt(f64::INFINITY), 0.0);
    }

    /// CUBIC after a loss at `w_max` segments with a full window in flight.
    fn cubic_after_loss(w_max: usize) -> Cubic {
        let mut cc = Cubic::new(MSS);
        cc.on_congestion_event(Instant::ZERO, 1); // leave the initial window
        cc.on_recovery_exit(Instant::ZERO);
        cc.w.cwnd = w_max * MSS; // as if grown there
        cc.on_congestion_event(Instant::ZERO, w_max * MSS);
        cc.on_recovery_exit(Instant::ZERO);
        cc
    }

    #[test]
    fn cubic_loss_reduces_by_beta() {
        let mut cc = Cubic::new(MSS);
        let t = Instant::from_secs(1);
        rounds(&mut cc, t, ms(10), 4);
        assert_eq!(cc.cwnd(), 160 * MSS);
        cc.on_congestion_event(t, 160 * MSS);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (112 * MSS, 112 * MSS));
        assert_eq!(cc.w_max(), (160 * MSS) as f64);
        cc.on_recovery_exit(t);
        cc.on_retransmit_timeout(t, 100 * MSS);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (MSS, 70 * MSS));
    }

    #[test]
    fn cubic_follows_the_cubic_curve_to_w_max_at_k() {
        // W_max = 100 segments, cwnd_epoch = 70: K = ∛(30/0.4) = ∛75 ≈ 4.217 s.
        let rtt = ms(100);
        let mut cc = cubic_after_loss(100);
        assert_eq!(cc.cwnd(), 70 * MSS);
        let start = Instant::from_secs(1);
        // The first ACK in congestion avoidance starts the epoch.
        cc.on_ack(&ack(start, MSS, Some(rtt), true));
        let k = cc.k();
        assert!((k - 75f64.cbrt()).abs() < 1e-12, "K = {k}");
        let mss = MSS as f64;
        let mut now = start;
        let mut prev = cc.cwnd();
        let mut at_k = None;
        for _ in 0..80 {
            now = round(&mut cc, now, rtt, 1);
            let t = secs(now - start);
            let w = cc.cwnd() as f64;
            // Never shrinking, never more than 1.5× per round trip.
            assert!(cc.cwnd() >= prev && w <= 1.5 * prev as f64 + 1.0);
            // On the curve, at most a round trip ahead of it, unless the
            // Reno-friendly estimate is ahead (it is, for a while after K,
            // where the curve is flat).
            let ahead = cc.w_cubic(t + 0.1).max(cc.w_est);
            assert!(
                w >= cc.w_cubic(t) - 2.0 * mss,
                "t = {t}: {w} vs {}",
                cc.w_cubic(t)
            );
            assert!(w <= ahead + mss, "t = {t}: {w} vs {ahead}");
            if t < k / 2.0 {
                assert!(w < 97.0 * mss, "concave: still well below W_max at {t}");
            }
            if at_k.is_none() && t >= k {
                at_k = Some(w);
            }
            prev = cc.cwnd();
        }
        // Back at W_max at t ≈ K, where the curve is flat.
        let at_k = at_k.unwrap();
        assert!((99.0 * mss..=101.5 * mss).contains(&at_k), "{at_k} at K");
        // Then probing beyond it (convex region): W_cubic(8 s) ≈ 121.6.
        assert!(cc.cwnd() > 115 * MSS, "{}", cc.cwnd());
    }

    #[test]
    fn cubic_without_rtt_targets_w_cubic_now() {
        let mut cc = cubic_after_loss(100);
        let start = Instant::from_secs(1);
        cc.on_ack(&ack(start, MSS, None, true));
        // t = 0, target = W_cubic(0) = cwnd_epoch: no growth but the few
        // bytes W_est gained.
        assert!(
            (70 * MSS..70 * MSS + 10).contains(&cc.cwnd()),
            "{}",
            cc.cwnd()
        );
        let mut now = start;
        for _ in 0..10 {
            now += ms(100);
            cc.on_ack(&ack(now, MSS, None, true));
        }
        assert!(cc.cwnd() > 70 * MSS);
    }

    #[test]
    fn fast_convergence_lowers_w_max() {
        let mut cc = cubic_after_loss(100);
        assert_eq!(cc.w_max(), (100 * MSS) as f64);
        // A second loss before regaining W_max, at 90 segments.
        cc.w.cwnd = 90 * MSS;
        cc.on_congestion_event(Instant::ZERO, 90 * MSS);
        assert!((cc.w_max() - 76_500.0).abs() < 1e-6, "{}", cc.w_max());
        assert_eq!(cc.cwnd(), 63 * MSS);
        // Without fast convergence, W_max is the window at the loss.
        let mut cc = cubic_after_loss(100);
        cc.set_fast_convergence(false);
        cc.on_recovery_exit(Instant::ZERO);
        cc.w.cwnd = 90 * MSS;
        cc.on_congestion_event(Instant::ZERO, 90 * MSS);
        assert_eq!(cc.w_max(), (90 * MSS) as f64);
    }

    #[test]
    fn reno_friendly_region_dominates_at_small_bdp() {
        // A short round trip and a small window: the cubic curve barely
        // moves in 50 round trips (0.5 s), while W_est grows like Reno.
        let rtt = ms(10);
        let mut cc = cubic_after_loss(20);
        assert_eq!(cc.cwnd(), 14 * MSS);
        let start = Instant::ZERO;
        let now = rounds(&mut cc, start, rtt, 50);
        let t = secs(now - start);
        let cubic = cc.w_cubic(t + 0.01);
        let w = cc.cwnd() as f64;
        assert!(w > cubic + 10.0 * MSS as f64, "cwnd {w} vs W_cubic {cubic}");
        // 6 segments at α ≈ 0.53 per round trip to regain 20 (≈ 12 rounds),
        // then about one per round trip.
        let segs = w / MSS as f64;
        assert!((45.0..=60.0).contains(&segs), "{segs} segments");
    }

    #[test]
    fn cubic_after_timeout_starts_with_k_zero() {
        let mut cc = cubic_after_loss(100);
        cc.on_retransmit_timeout(Instant::ZERO, 70 * MSS); // ssthresh 49
        assert_eq!(cc.ssthresh(), 49 * MSS);
        // Slow start: 1, 2, 4, 8, 16, 32, then 49 within the sixth round.
        let now = rounds(&mut cc, Instant::ZERO, ms(50), 6);
        assert!(!cc.in_slow_start());
        assert_eq!(cc.k(), 0.0);
        assert_eq!(cc.w_max(), (49 * MSS) as f64);
        // W_est starts at the previous window, so α = 1: Reno's rate at
        // first (the cubic term is tiny for a while) ...
        let c0 = cc.cwnd();
        let now = rounds(&mut cc, now, ms(50), 20);
        let grown = (cc.cwnd() - c0) as f64 / MSS as f64;
        assert!(
            (18.0..=21.0).contains(&grown),
            "{grown} segments in 20 round trips"
        );
        // ... until the convex curve overtakes: W_cubic(10 s) ≈ 449
        // segments, where Reno would be at about 250.
        rounds(&mut cc, now, ms(50), 174);
        assert!(cc.cwnd() > 350 * MSS, "{}", cc.cwnd());
    }

    #[test]
    fn cubic_app_limited_time_does_not_count() {
        let mut a = cubic_after_loss(100);
        let mut b = cubic_after_loss(100);
        let rtt = ms(100);
        let t0 = Instant::from_secs(1);
        let now = rounds(&mut a, t0, rtt, 5);
        let _ = rounds(&mut b, t0, rtt, 5);
        // b goes quiet for 3 s, sending a trickle.
        let mut later = now;
        for _ in 0..30 {
            later += rtt;
            b.on_ack(&ack(later, MSS, Some(rtt), false));
        }
        assert_eq!(a.cwnd(), b.cwnd());
        rounds(&mut a, now, rtt, 1);
        rounds(&mut b, later, rtt, 1);
        // Resuming, b continues from where it was rather than jumping 3 s
        // along the curve.
        let diff = (a.cwnd() as f64 - b.cwnd() as f64).abs();
        assert!(diff < 3.0 * MSS as f64, "{} vs {}", a.cwnd(), b.cwnd());
    }

    #[derive(Debug, Clone)]
    enum Event {
        Ack {
            dt: u64,
            acked: usize,
            srtt: Option<u64>,
            limited: bool,
        },
        Loss {
            dt: u64,
            flight: usize,
        },
        RecoveryExit,
        Timeout {
            flight: usize,
        },
        Idle,
        HandshakeLoss,
        Mss(usize),
        Jump(u64),
    }

    fn big() -> impl Strategy<Value = usize> {
        prop_oneof![0usize..100_000, 0usize..(1 << 32), any::<usize>()]
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            6 => (0u64..1_000_000, big(), proptest::option::of(any::<u64>()), any::<bool>())
                .prop_map(|(dt, acked, srtt, limited)| Event::Ack { dt, acked, srtt, limited }),
            1 => (0u64..1_000_000, big()).prop_map(|(dt, flight)| Event::Loss { dt, flight }),
            1 => Just(Event::RecoveryExit),
            1 => big().prop_map(|flight| Event::Timeout { flight }),
            1 => Just(Event::Idle),
            1 => Just(Event::HandshakeLoss),
            1 => big().prop_map(Event::Mss),
            1 => any::<u64>().prop_map(Event::Jump),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_events_keep_the_invariants(
            cubic in any::<bool>(),
            mss in 0usize..100_000,
            events in proptest::collection::vec(event(), 0..200),
        ) {
            let alg = if cubic { CongestionAlgorithm::Cubic } else { CongestionAlgorithm::NewReno };
            let mut cc = alg.build(mss);
            let mut now = Instant::ZERO;
            for e in events {
                match e {
                    Event::Ack { dt, acked, srtt, limited } => {
                        now += Duration::from_micros(dt);
                        cc.on_ack(&ack(now, acked, srtt.map(Duration::from_micros), limited));
                    }
                    Event::Loss { dt, flight } => {
                        now += Duration::from_micros(dt);
                        cc.on_congestion_event(now, flight);
                    }
                    Event::RecoveryExit => cc.on_recovery_exit(now),
                    Event::Timeout { flight } => cc.on_retransmit_timeout(now, flight),
                    Event::Idle => cc.on_idle_restart(now),
                    Event::HandshakeLoss => cc.on_handshake_loss(),
                    Event::Mss(m) => cc.set_mss(m),
                    // Also backwards: time from a careless caller.
                    Event::Jump(t) => now = Instant::from_micros(t),
                }
                let m = cc.mss();
                prop_assert!((1..=MAX_MSS).contains(&m));
                prop_assert!(cc.cwnd() >= m, "cwnd {} < mss {}", cc.cwnd(), m);
                prop_assert!(cc.cwnd() <= MAX_CWND);
                prop_assert!(cc.ssthresh() >= 2 * m);
            }
        }

        #[test]
        fn bulk_transfer_stays_within_bounds(
            cubic in any::<bool>(),
            rtt_ms in 1u64..1000,
            loss_every in 5usize..200,
            rounds_n in 1usize..300,
        ) {
            // A long-running ACK clock with periodic losses.
            let alg = if cubic { CongestionAlgorithm::Cubic } else { CongestionAlgorithm::NewReno };
            let mut cc = alg.build(MSS);
            let mut now = Instant::ZERO;
            for r in 0..rounds_n {
                if r % loss_every == loss_every - 1 {
                    cc.on_congestion_event(now, cc.cwnd());
                    cc.on_recovery_exit(now + ms(rtt_ms));
                }
                let before = cc.cwnd();
                // At most 64 ACKs per round trip, to keep huge windows cheap.
                let segments = (before / MSS).max(1);
                let per_ack = segments.div_ceil(64).max(2);
                now = round(cc.as_mut(), now, ms(rtt_ms), per_ack);
                prop_assert!(cc.cwnd() <= 2 * before.max(MSS));
                prop_assert!(cc.cwnd() >= MSS && cc.cwnd() <= MAX_CWND);
            }
        }
    }
}
