//! Loss detection and recovery. With SACK: RACK's time-based loss
//! detection (RFC 8985 §6, [`crate::transport::tcp::rack`]) for every
//! segment, retransmissions included, with its reordering timer; fast
//! recovery sending within Proportional Rate Reduction's budget (RFC
//! 6937, [`crate::transport::tcp::prr`]); and the tail loss probe (RFC
//! 8985 §7). Without SACK: three duplicate ACKs, early retransmit (RFC
//! 5827) and NewReno (RFC 6582). After a retransmission timeout (RFC 6298
//! §5.4): with SACK, what RACK marks lost is resent and what the peer
//! SACKed is kept (RFC 8985 §6.3); without, go-back-N. Undo of spurious
//! reductions: D-SACK (RFC 3708) and timestamps (Eifel, RFC 3522) for
//! both, F-RTO (RFC 5682, SACK-enhanced) for timeouts; and a loss the tail
//! loss probe repaired is a congestion event (RFC 8985 §7.4).
//!
//! [`Recovery`] holds the state; the methods on [`Connection`] here decide
//! when recovery starts, what to retransmit, and when to probe.

use crate::time::{Duration, Instant};
use crate::transport::tcp::prr::Prr;
use crate::transport::tcp::rack::Rack;
use crate::transport::tcp::scoreboard::{DUP_THRESH, Scoreboard};
use crate::transport::tcp::segment::TcpRepr;
use crate::transport::tcp::seq::SeqNumber;

use super::types::Outgoing;
use super::{Connection, distance};

/// The loss-recovery state of a connection.
#[derive(Debug)]
pub(super) struct Recovery {
    /// What the peer has SACKed.
    pub(super) scoreboard: Scoreboard,
    /// The segments in flight and RACK's state.
    pub(super) rack: Rack,
    /// Proportional Rate Reduction during fast recovery with SACK.
    pub(super) prr: Prr,
    /// Octets PRR lets out until the next ACK.
    pub(super) prr_budget: usize,
    /// Duplicate ACKs since SND.UNA last advanced.
    pub(super) dupacks: u32,
    /// `Some(recovery point)` while in fast recovery.
    pub(super) point: Option<SeqNumber>,
    /// RFC 6582 `recover`: no new recovery until SND.UNA passes it (set
    /// when a fast recovery or a timeout begins).
    pub(super) recover: SeqNumber,
    /// NewReno: retransmit the segment at SND.UNA now (the first
    /// retransmission of a recovery, and after each partial ACK).
    pub(super) rtx_una: bool,
    /// Send a tail loss probe now.
    pub(super) tlp_due: bool,
    /// The second segment of a probe that sent new data: the flight's
    /// last segment, sent again right after it (see
    /// [`Connection::tail_loss_probe`]).
    pub(super) tlp_resend: Option<(SeqNumber, usize)>,
    /// Probes sent since SND.UNA last advanced (at most
    /// [`MAX_PROBES`]).
    pub(super) tlp_probes: u8,
    /// A timeout fired: the segment at SND.UNA goes again whatever the
    /// window (RFC 6298 §5.4), even if segments sent just before the
    /// timeout, which RACK gives their round trip, still fill it.
    pub(super) rto_head: bool,
    /// F-RTO (RFC 5682, SACK-enhanced, as Linux): the last timeout may
    /// yet prove spurious, if data sent once before it is delivered.
    pub(super) frto: bool,
    /// A probe that resent data outside fast recovery (RFC 8985 §7.4),
    /// until its fate is known.
    pub(super) tlp_high: Option<ProbeResend>,
    /// Where the last segment a probe resent ends, in or out of recovery:
    /// its D-SACK is the duplicate the probe asked for, not reordering.
    pub(super) probe_resent: Option<SeqNumber>,
    /// Our timestamp clock when the last retransmission timeout fired:
    /// echoes older than it give no RTT sample.
    pub(super) rto_ts: Option<u32>,
    /// The retransmissions of the current loss episode, to undo its
    /// reduction if they prove unnecessary.
    pub(super) undo: Undo,
}

/// Tail loss probes sent before the retransmission timer is left to
/// fire, if no ACK advances SND.UNA in between (see
/// [`Connection::schedule_tlp`]).
pub(super) const MAX_PROBES: u8 = 2;

/// The least tail loss probe timeout. RFC 8985 §7.2 sets none beyond
/// 2·SRTT; this one only covers the lateness of the timer that runs the
/// connection (the runtimes here wait with ppoll(2), good to tens of
/// microseconds) and of the peer's ACK. QUIC's `kGranularity` of 1 ms
/// (RFC 9002 §6.1.2), used before, assumes a coarser clock: on a path of
/// 30 µs RTT it held a sender that a lost tail had stopped for 30 RTTs,
/// which at 3% loss each way against Linux over TAP was about 30% of the
/// transfer's time; at 100 µs the sender went from 1.68 to 2.33 Gbit/s
/// (medians of six 16 MiB runs, alternated).
const PTO_GRANULARITY: Duration = Duration::from_micros(100);

/// `WCDelAckT` of RFC 8985 §7.2: how long a receiver may hold the ACK of
/// a lone segment.
const WORST_CASE_DELAYED_ACK: Duration = Duration::from_millis(200);

/// What a tail loss probe resent, to learn from the ACKs whether it
/// repaired a loss (RFC 8985 §7.4).
#[derive(Debug, Clone, Copy)]
pub(super) struct ProbeResend {
    /// `TLP.end_seq`: SND.NXT when the probe went.
    high: SeqNumber,
    /// The ends of the segments the probes resent (of the first and the
    /// last): a D-SACK ending at either says the original arrived too.
    ends: [SeqNumber; 2],
}

/// A loss episode (a fast recovery, or a run of timeouts) whose window
/// reduction may yet prove spurious, as Linux's `undo_marker` and
/// `undo_retrans` track it.
#[derive(Debug, Default)]
pub(super) struct Undo {
    /// An episode is open.
    active: bool,
    /// Its retransmissions not yet reported received twice by D-SACK.
    retrans: u32,
    /// Where its first retransmission began: D-SACKs below it are for
    /// other episodes.
    first: Option<SeqNumber>,
    /// The timestamp its first retransmission carried, until the first
    /// ACK beyond it is tested (RFC 3522's `RetransmitTS`).
    first_ts: Option<u32>,
    /// The last D-SACK block counted: the same block again (in a
    /// duplicated ACK, or in every segment a peer's device cut from one
    /// super-segment) reports no other duplicate, and is not counted
    /// again (as Linux stops counting once its `dsack_dups` exceed its
    /// retransmissions).
    counted: Option<(SeqNumber, SeqNumber)>,
}

impl Recovery {
    pub(super) fn new(iss: SeqNumber) -> Recovery {
        Recovery {
            scoreboard: Scoreboard::new(),
            rack: Rack::new(iss),
            prr: Prr::default(),
            prr_budget: 0,
            dupacks: 0,
            point: None,
            recover: iss,
            rtx_una: false,
            tlp_due: false,
            tlp_resend: None,
            tlp_probes: 0,
            tlp_high: None,
            probe_resent: None,
            frto: false,
            rto_head: false,
            rto_ts: None,
            undo: Undo::default(),
        }
    }

    /// Whether in fast recovery.
    pub(super) fn in_recovery(&self) -> bool {
        self.point.is_some()
    }

    /// The handshake completed: nothing is to be recovered yet.
    pub(super) fn on_synchronized(&mut self, iss: SeqNumber) {
        self.recover = iss;
    }

    /// Fast recovery begins with everything below `snd_max` outstanding
    /// (RFC 6675 §5 step 4, RFC 6582 §3.2 step 2), `flight_size` octets,
    /// and the congestion controller's new `ssthresh`.
    pub(super) fn enter(&mut self, snd_max: SeqNumber, flight_size: usize, ssthresh: usize) {
        self.point = Some(snd_max);
        self.recover = snd_max;
        self.rtx_una = true;
        self.prr = Prr::new(flight_size, ssthresh);
        self.prr_budget = 0;
    }

    /// A full ACK ends fast recovery (RFC 6582 §3.2 step 3, RFC 6675 §5).
    pub(super) fn exit(&mut self) {
        self.point = None;
        self.rtx_una = false;
        self.rack.on_recovery_exit();
    }

    /// A timeout or a path MTU drop: any fast recovery ends (its pipe
    /// accounting does not hold across it) and `recover` marks the
    /// highest sent (RFC 6582 §4).
    fn end_recovery(&mut self, snd_max: SeqNumber) {
        self.rto_head = false;
        self.recover = snd_max;
        self.point = None;
        self.rtx_una = false;
        self.dupacks = 0;
        self.cancel_probe();
    }

    /// Everything from SND.UNA will be sent again: the scoreboard starts
    /// afresh (RFC 6675 §5.1) and nothing outstanding is counted in
    /// flight until it is resent (a path MTU drop lost all of it; Linux's
    /// `tcp_simple_retransmit`).
    pub(super) fn go_back(&mut self, snd_max: SeqNumber) {
        self.end_recovery(snd_max);
        self.scoreboard.on_retransmit_timeout();
        self.rack.mark_all_lost();
    }

    /// A retransmission timeout with SACK and no reneging (RFC 8985 §6.3):
    /// what the peer SACKed stays SACKed and is not sent again (as in
    /// Linux's `tcp_timeout_mark_lost`); RACK marks what is lost.
    pub(super) fn timeout_loss(&mut self, snd_max: SeqNumber, now: Instant, reo_wnd: Duration) {
        self.end_recovery(snd_max);
        self.rack.on_timeout(now, reo_wnd);
        self.rto_head = true;
    }

    /// The retransmission timer fired at our timestamp clock `ts_now`
    /// (everything outstanding is lost, RFC 8985 §6.3: `go_back` marks
    /// it).
    pub(super) fn on_timeout(&mut self, ts_now: u32) {
        self.cancel_probe();
        self.tlp_probes = 0;
        self.tlp_high = None;
        self.rto_ts = Some(ts_now);
    }

    /// The connection closed, or is in TIME-WAIT: nothing is due.
    pub(super) fn on_closed(&mut self) {
        self.cancel_probe();
    }

    /// A tail loss probe, or its second part, is due now.
    pub(super) fn probe_due(&self) -> bool {
        self.tlp_due || self.tlp_resend.is_some()
    }

    /// Nothing of a probe is due any more, neither part.
    fn cancel_probe(&mut self) {
        self.tlp_due = false;
        self.tlp_resend = None;
    }
}

impl Connection {
    /// A duplicate ACK from a peer that does not SACK (RFC 5681 §3.2).
    pub(super) fn on_dupack(&mut self, now: Instant) {
        if self.rec.in_recovery() || self.opts.sack_ok {
            return;
        }
        // Early retransmit (RFC 5827 §3.1): with fewer than four segments
        // outstanding and nothing new to send, three duplicate ACKs can
        // never come; lower the threshold to the outstanding segments - 1.
        let outstanding = self.flight_size().div_ceil(self.mss()) as u32;
        let thresh = if outstanding < 4 && self.unsent_data() == 0 {
            outstanding.saturating_sub(1).max(1)
        } else {
            DUP_THRESH as u32
        };
        // RFC 6582 §3.2 step 2: not again for losses of a window already
        // recovered (`recover` is the highest sequence sent when the last
        // recovery or timeout began).
        if self.rec.dupacks >= thresh && self.rec.recover <= self.snd.una {
            self.enter_recovery(now, self.window_in_use(self.flight_size()));
        }
    }

    /// The FlightSize a reduction starts from (RFC 5681 eq. 4, RFC 9438
    /// §4.6): `flight`, what was outstanding before the ACK that revealed
    /// the loss, unless more was outstanding when the sender last had the
    /// chance to send. The two differ when ACKs come in batches with no
    /// chance to send between them (a poll reads every waiting frame
    /// before it sends): by the ACK that reveals a loss, the earlier ACKs
    /// of the batch may have acknowledged most of a full window that
    /// nothing could replace yet, and a reduction from that dip would be
    /// one from a window never in use. One ACK at a time, they are equal.
    fn window_in_use(&self, flight: usize) -> usize {
        flight.max(self.snd.usage.last_in_flight())
    }

    /// Fast recovery begins; `flight` is what was outstanding when the
    /// loss was found, for the congestion controller's reduction.
    pub(super) fn enter_recovery(&mut self, now: Instant, flight: usize) {
        log::trace!(
            "{} -> {}: fast recovery at {}",
            self.local,
            self.remote,
            self.snd.una
        );
        self.stats.fast_retransmits += 1;
        // A loss the probe's ACK revealed is this recovery's, reduced once.
        self.rec.tlp_high = None;
        self.cc.on_congestion_event(now, flight);
        self.rec.undo = Undo {
            active: true,
            ..Undo::default()
        };
        self.rec.enter(self.snd.max, flight, self.cc.ssthresh());
        // The fast retransmission may go at once, even when recovery
        // begins on the reordering timer rather than on an ACK.
        self.rec.prr_budget = self
            .rec
            .prr
            .on_ack(0, self.rec.rack.pipe(), self.mss(), false);
        self.schedule_tlp(now);
        self.rtt_probe = None;
    }

    /// In loss recovery of either kind: fast recovery, or after a timeout
    /// until SND.UNA passes what was outstanding then.
    pub(super) fn recovering(&self) -> bool {
        self.rec.in_recovery() || self.snd.una < self.rec.recover
    }

    /// Recovering from a retransmission timeout: not in fast recovery, and
    /// SND.UNA not yet past what was outstanding at the timeout.
    pub(super) fn after_timeout(&self) -> bool {
        self.recovering() && !self.rec.in_recovery()
    }

    /// Whether an acceptable ACK of `ack` in `seg` leaves all of loss
    /// recovery as it is: it acknowledges nothing new, nothing is
    /// outstanding, it carries no SACK block (so no D-SACK), and no episode
    /// is open for it to advance: no recovery, no timeout, no F-RTO, no
    /// loss probe, no undo waiting for the echo of its first
    /// retransmission. RACK
    /// and the scoreboard then hold nothing, there is nothing to deliver,
    /// lose or undo, and such an ACK only moves the window. This is the
    /// common case of a connection that only receives: every data segment
    /// carries the same ACK. As in the fast path of header prediction (Van
    /// Jacobson's, Linux's `tcp_rcv_established`), it is recognised before
    /// the machinery is run, not after.
    pub(super) fn ack_is_quiet(&self, seg: &TcpRepr, ack: SeqNumber) -> bool {
        #[cfg(test)]
        if super::tests::FULL_ACK_PROCESSING.get() {
            return false;
        }
        let quiet = ack == self.snd.una
            && self.snd.una == self.snd.max
            && seg.sack_ranges.iter().all(Option::is_none)
            && !self.recovering()
            && !(self.rec.undo.active && self.rec.undo.first_ts.is_some())
            && !self.rec.frto
            && self.rec.tlp_high.is_none();
        #[cfg(test)]
        super::tests::QUIET_ACKS.set(super::tests::QUIET_ACKS.get() + u64::from(quiet));
        quiet
    }

    /// RACK's loss detection (RFC 8985 §6.2 step 5), after an ACK or when
    /// the reordering timer fires: marks what is lost, arms the timer for
    /// what may yet be, and begins fast recovery if something is lost
    /// outside recovery (after a timeout the lost segments are resent
    /// within the congestion window instead). Returns the octets newly
    /// marked lost.
    ///
    /// `flight` is what was outstanding before the ACK that found the
    /// loss: that ACK may also have acknowledged most of the flight (a
    /// receiver that coalesces ACKs acknowledges a whole burst at once),
    /// and what is left above the hole says little of the window in use.
    pub(super) fn detect_losses(&mut self, now: Instant, flight: usize) -> usize {
        let flight = self.window_in_use(flight);
        self.timers.reorder = None;
        if !self.opts.sack_ok || self.snd.una == self.snd.max {
            return 0;
        }
        let mss = self.mss();
        let srtt = self.rtt.srtt().unwrap_or(Duration::from_millis(1));
        let dup_thresh_met = self.rec.scoreboard.sacked_bytes() > (DUP_THRESH - 1) * mss;
        let reo_wnd = self
            .rec
            .rack
            .reo_wnd(self.recovering(), dup_thresh_met, srtt);
        let found = self.rec.rack.detect_loss(now, reo_wnd);
        self.timers.reorder = found.reorder_timer;
        if found.bytes == 0 {
            return 0;
        }
        log::trace!(
            "{} -> {}: RACK marked {} segment(s) lost ({} retransmitted)",
            self.local,
            self.remote,
            found.segments,
            found.retransmissions
        );
        self.stats.lost_retransmits += found.retransmissions as u64;
        // A loss outside recovery begins one. So does a lost
        // retransmission after a timeout (Linux's `FLAG_LOST_RETRANS` in
        // its Loss state): the window that slow start is rebuilding is
        // already more than the path carries, and without a reduction,
        // and PRR to spread the resending, nothing would check it until
        // SND.UNA passes the highest sent at the timeout, which a hole
        // whose every retransmission is lost never lets happen (seen
        // behind a full drop-tail queue: bursts of a hundred
        // retransmissions, most lost again, for seconds).
        if !self.recovering() {
            self.enter_recovery(now, flight);
        } else if self.after_timeout() && found.retransmissions > 0 {
            // The reduction is from the window slow start has rebuilt
            // since the timeout (as Linux's, from cwnd), not from the
            // flight outstanding since before it, which would raise it.
            self.enter_recovery(now, flight.min(self.cc.cwnd()));
        }
        found.bytes
    }

    /// The first lost segment that may be sent again now, if any: below
    /// SND.NXT (after a timeout, go-back-N resends the rest in order) and
    /// within PRR's budget in fast recovery, else the congestion window.
    fn lost_to_resend(&self) -> Option<(SeqNumber, usize)> {
        let (seq, len) = self.rec.rack.first_lost(self.mss())?;
        let head_after_timeout = self.rec.rto_head && seq == self.snd.una;
        let room = head_after_timeout || len <= self.send_window_room();
        (seq < self.snd.nxt && room).then_some((seq, len))
    }

    /// Something lost is ready to go again.
    pub(super) fn retransmit_due(&self) -> bool {
        if self.opts.sack_ok {
            self.lost_to_resend().is_some()
        } else {
            self.rec.rtx_una
        }
    }

    /// Go back N: everything from SND.UNA is sent again as the window
    /// allows (RFC 6298 §5.4), after a timeout or when the path MTU shrank
    /// under the flight. Any fast recovery ends (its pipe accounting does
    /// not hold across it), `recover` marks the highest sent (RFC 6582
    /// §4), and the SACK scoreboard starts afresh (RFC 6675 §5.1).
    pub(super) fn go_back_n(&mut self) {
        self.rec.go_back(self.snd.max);
        self.timers.tlp = None;
        self.snd.nxt = self.snd.una;
    }

    /// A retransmission timeout with data outstanding (RFC 6298 §5.4-5.6):
    /// no probe is pending any more, the congestion controller and the
    /// timer back off, and what is lost goes again in slow start: with
    /// SACK, what RACK marks lost (RFC 8985 §6.3), SACKed data excepted;
    /// without, or if the peer dropped what it SACKed, everything from
    /// SND.UNA (go-back-N).
    pub(super) fn on_retransmit_timeout(&mut self, now: Instant) {
        log::trace!(
            "{} -> {}: retransmission timeout, RTO {:?}",
            self.local,
            self.remote,
            self.rtt.rto()
        );
        self.timers.tlp = None;
        self.timers.reorder = None;
        if self.timers.retries <= 1 {
            // The first timeout of a run begins an episode; later ones
            // belong to it.
            self.rec.undo = Undo {
                active: true,
                ..Undo::default()
            };
        }
        // F-RTO for a timeout that did not interrupt a fast recovery (as
        // Linux's `new_recovery`), or that repeats one.
        self.rec.frto = self.opts.sack_ok && (!self.rec.in_recovery() || self.timers.retries > 1);
        self.rec.on_timeout(self.ts_now(now));
        self.cc.on_retransmit_timeout(now, self.flight_size());
        self.rtt.on_timeout();
        self.rtt_probe = None;
        if self.opts.sack_ok && !self.rec.rack.head_sacked(self.snd.una, self.snd.max) {
            // Only what was not SACKed goes again, as RACK marks it lost.
            let srtt = self.rtt.srtt().unwrap_or(Duration::from_millis(1));
            let reo_wnd = self.rec.rack.reo_wnd(true, true, srtt);
            self.rec.timeout_loss(self.snd.max, now, reo_wnd);
        } else {
            self.rec.frto = false;
            if self.opts.sack_ok {
                log::debug!(
                    "{} -> {}: timed out on data it SACKed: reneging, all is sent again",
                    self.local,
                    self.remote
                );
                self.stats.sack_reneging += 1;
            }
            self.go_back_n();
        }
        self.timers.rto = Some(now + self.rtt.rto());
    }

    /// A retransmission, if one is due: with SACK the oldest segment
    /// RACK found lost; with NewReno the segment at SND.UNA.
    pub(super) fn poll_retransmit(&mut self, now: Instant) -> Option<Outgoing> {
        let (seq, len) = if self.opts.sack_ok {
            let (seq, len) = self.lost_to_resend()?;
            self.rec.rto_head = false;
            (seq, len)
        } else {
            if !self.rec.in_recovery() || !self.rec.rtx_una {
                return None;
            }
            self.rec.rtx_una = false;
            (self.snd.una, self.mss())
        };
        self.data_segment(now, seq, len, true)
    }

    /// Arms the tail loss probe timer (RFC 8985 §7.2): two smoothed RTTs
    /// after the last send or ACK, plus a worst-case delayed ACK when only
    /// one segment is out, and never later than the retransmission timer.
    /// The timeout is at least 1 ms, QUIC's timer granularity (RFC 9002
    /// §6.1.2): a caller's clock may tick in milliseconds and measure an
    /// SRTT of 0, and a probe must not go at the instant of the flight.
    /// Linux adds 2 ms instead, for its jiffies; on a path of 50 µs that
    /// was most of the cost of a probe. In fast recovery a lone segment
    /// gets no delayed-ACK allowance: it is most often the retransmission
    /// of the flight's last segment, which the receiver takes in order
    /// with nothing queued above it, and Linux then holds its ACK for the
    /// delayed-ACK timer (it acknowledges at once only a segment that
    /// empties its out-of-order queue). The probe's duplicate is answered
    /// at once: two round trips instead of 40 ms, measured against Linux
    /// at 3% loss, where this stall came once or twice per 16 MiB.
    ///
    /// Unlike RFC 8985 §7.2 and Linux, the probe is armed in fast
    /// recovery too (but not after a timeout). There, the flight can end
    /// with retransmissions and the ACK of the last one can be lost: with
    /// nothing sent after it, no later ACK can repair that, and the
    /// retransmission timer fired in most of the recoveries it happened
    /// to (measured against Linux at 3% loss). The probe elicits the ACK
    /// two round trips later instead of 200 ms.
    ///
    /// And unlike RFC 8985 §7.3, which sends one probe and then waits for
    /// the retransmission timer, a probe that no ACK answers is followed by
    /// a second, at twice the timeout, as QUIC's early loss recovery drafts
    /// did (`kMaxTLPs` = 2). A probe's answer is one ACK, as likely to be
    /// lost as those it replaces; on a short path the retransmission timer
    /// behind it is a thousand round trips away and collapses the window.
    /// Measured against Linux at 3% loss each way, about one probe in 30
    /// went unanswered, and each became a timeout.
    pub(super) fn schedule_tlp(&mut self, now: Instant) {
        self.timers.tlp = None;
        if !self.opts.sack_ok || self.after_timeout() || self.rec.tlp_probes >= MAX_PROBES {
            return;
        }
        let Some(srtt) = self.rtt.srtt() else { return };
        if self.snd.una == self.snd.max || !self.state.is_synchronized() {
            return;
        }
        let mut pto = (srtt * 2).max(PTO_GRANULARITY);
        // A lone segment's ACK may be delayed (RFC 8985 §7.2), but not if
        // it carries our FIN: the peer acknowledges a FIN when it
        // processes it (RFC 9293 §3.10.7.4, "eighth, check the FIN bit").
        // Otherwise the loss of a transfer's last segment costs 200 ms,
        // more than a 16 MiB transfer takes on a fast path.
        if self.flight_size() <= self.mss()
            && !self.rec.in_recovery()
            && self.fin_sent_seq().is_none()
        {
            pto += WORST_CASE_DELAYED_ACK;
        }
        let at = now + pto * (1u32 << self.rec.tlp_probes);
        if self.timers.rto.is_none_or(|rto| at < rto) {
            self.timers.tlp = Some(at);
        }
    }

    /// Sends the tail loss probe (RFC 8985 §7.3), one segment per call: a
    /// new segment if the peer's window takes one, else the highest
    /// segment not SACKed sent again, so that a loss at the tail of a
    /// flight is reported by SACK and repaired by fast recovery rather than
    /// by the retransmission timer.
    ///
    /// Unlike RFC 8985 §7.3 and Linux, a probe of new data is followed by
    /// the flight's last segment sent again. A probe is most often needed
    /// because the ACKs of the flight's last segments were lost, not the
    /// segments: the receiver holds them all, and new data in order is
    /// something it may acknowledge late. Linux acknowledges at once only
    /// if its window would not shrink; otherwise its delayed-ACK timer
    /// holds the ACK (40 ms or more), and the one ACK it then sends for
    /// all of it is as likely to be lost as the others were. A duplicate
    /// is acknowledged at once by every receiver (RFC 5681 §4.2, and Linux
    /// answers it with a D-SACK and quick ACKs). Measured against Linux at
    /// 3% loss each way, one-segment probes cost about 40 ms each, more
    /// than half the transfer's time, and most retransmission timeouts
    /// came after a probe of new data whose delayed ACK was lost. If the
    /// tail was lost instead, the new segment, out of order, is
    /// acknowledged at once anyway, and the resent one may be the repair.
    pub(super) fn tail_loss_probe(&mut self, now: Instant) -> Option<Outgoing> {
        if let Some((start, len)) = self.rec.tlp_resend.take() {
            // Both parts go in the same poll, but an ACK may come between.
            if start < self.snd.una {
                return None;
            }
            let out = self.data_segment(now, start, len, true)?;
            self.note_probe_resend(start + len);
            return Some(out);
        }
        self.rec.tlp_due = false;
        if self.snd.una == self.snd.max {
            return None;
        }
        let mss = self.mss();
        let resend = self.rec.rack.last_outstanding(mss).unwrap_or_else(|| {
            // Nothing left in RACK's records: the last data segment (the
            // FIN rides along if it is due).
            // Sent data only: with data unsent, the buffer goes beyond it.
            let data_end = (self.snd.una + self.snd.buf.len()).min(self.snd.max);
            let start = if distance(self.snd.una, data_end) > mss {
                data_end - mss
            } else {
                self.snd.una
            };
            (start, distance(start, data_end))
        });
        let peer_room = (self.snd.una + self.snd.wnd) - self.snd.nxt;
        let out = if self.unsent_data() > 0 && peer_room > 0 {
            let len = self.unsent_data().min(mss).min(peer_room as usize);
            let retransmission = self.snd.nxt < self.snd.max;
            let out = self.data_segment(now, self.snd.nxt, len, retransmission);
            if out.is_some() && resend.1 > 0 {
                self.rec.tlp_resend = Some(resend);
            }
            out
        } else {
            let (start, len) = resend;
            let out = self.data_segment(now, start, len, true);
            if out.is_some() {
                self.note_probe_resend(start + len);
            }
            out
        }?;
        self.stats.loss_probes += 1;
        self.rec.tlp_probes += 1;
        self.timers.rto = Some(now + self.rtt.rto());
        self.schedule_tlp(now);
        Some(out)
    }

    /// A probe resent data ending at `end`: outside fast recovery its ACKs
    /// tell whether it repaired a loss (RFC 8985 §7.4).
    fn note_probe_resend(&mut self, end: SeqNumber) {
        self.rec.probe_resent = Some(end);
        if !self.rec.in_recovery() {
            let first = self.rec.tlp_high.map_or(end, |p| p.ends[0]);
            self.rec.tlp_high = Some(ProbeResend {
                high: self.snd.nxt,
                ends: [first, end],
            });
        }
    }

    /// What an ACK says of a probe that resent data (RFC 8985 §7.4, as
    /// Linux's `tcp_process_tlp_ack`): a D-SACK of it, or a pure duplicate
    /// ACK, means the original arrived too and nothing was lost; an ACK
    /// beyond what was sent when it went means the probe repaired a loss
    /// no other mechanism saw, which is congestion all the same: the window
    /// is reduced once, as for a recovery that ends at once.
    ///
    /// `flight` is what was outstanding before this ACK, as for
    /// [`Connection::detect_losses`]: the ACK that settles a probe usually
    /// acknowledges everything, and a reduction from what is left after it
    /// would take the window to its 2·SMSS floor.
    pub(super) fn detect_tlp_repair(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        dsack: Option<(SeqNumber, SeqNumber)>,
        duplicate: bool,
        flight: usize,
    ) {
        let Some(ProbeResend { high, ends }) = self.rec.tlp_high else {
            return;
        };
        if dsack.is_some_and(|(_, right)| ends.contains(&right)) || duplicate {
            self.rec.tlp_high = None;
        } else if high < ack {
            self.rec.tlp_high = None;
            log::debug!(
                "{} -> {}: the loss probe repaired a loss: window reduced",
                self.local,
                self.remote
            );
            self.stats.tlp_recoveries += 1;
            self.cc.on_congestion_event(now, self.window_in_use(flight));
            self.cc.on_recovery_exit(now);
        }
    }

    /// Whether a D-SACK (`dsack`, the ACK's first SACK block) reports the
    /// segment a loss probe resent: a duplicate the probe sent on purpose
    /// (see [`Connection::tail_loss_probe`]), which says nothing of
    /// reordering (Linux's `FLAG_DSACK_TLP`).
    pub(super) fn dsack_of_probe(&self, dsack: (SeqNumber, SeqNumber)) -> bool {
        self.rec.probe_resent == Some(dsack.1)
    }

    /// `[seq, ..)` was retransmitted at `now`, `segments` segments of it:
    /// as many more retransmissions of the episode.
    pub(super) fn note_retransmission(&mut self, now: Instant, seq: SeqNumber, segments: u32) {
        let ts = self.ts_now(now);
        let undo = &mut self.rec.undo;
        if undo.active {
            undo.retrans += segments;
            if undo.first.is_none() {
                undo.first = Some(seq);
                undo.first_ts = Some(ts);
            }
        }
    }

    /// The Eifel detection algorithm (RFC 3522 §3.2, as Linux's
    /// `tcp_packet_delayed`): the first ACK that acknowledges the episode's
    /// first retransmission (`ack` beyond it) echoes (`echo`) a timestamp
    /// older than the retransmission carried. The receiver's TS.Recent
    /// comes from the segment that advanced its window (RFC 7323 §4.3),
    /// so the original did: the retransmission was unnecessary, and the
    /// reduction is undone one round trip before its D-SACK could say so.
    /// Timestamps tick in milliseconds: on a shorter path the original and
    /// its retransmission carry the same one, and only D-SACK can tell.
    /// A duplicate the receiver already had is not acceptable to it, does
    /// not become TS.Recent, and is answered with the older echo: a
    /// timeout that only lost ACKs caused is found spurious the same way.
    /// Measured in the simulator at 10 ms RTT (5 seeds x 4 MiB): no undo
    /// on paths that only lose (2% and 5%, with SACK); with 1% of frames
    /// also reordered by 5 ms, three undos instead of one, and the
    /// transfers 16% faster.
    pub(super) fn detect_spurious_by_echo(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        echo: Option<u32>,
    ) {
        let undo = &mut self.rec.undo;
        let (Some(first), Some(sent)) = (undo.first, undo.first_ts) else {
            return;
        };
        if !undo.active || ack <= first {
            return;
        }
        undo.first_ts = None;
        if echo.is_some_and(|e| e != 0 && (e.wrapping_sub(sent) as i32) < 0) {
            self.undo_reduction(
                now,
                "the ACK of the first retransmission echoes the original (Eifel)",
            );
        }
    }

    /// Tests an ACK for proof that the episode's retransmissions were
    /// unnecessary, and undoes its reduction if so: a D-SACK (`dsack`,
    /// the ACK's first SACK block) for every one of them (RFC 3708 §3,
    /// Linux's `undo_retrans`). The receiver got each twice, so the
    /// originals were not lost: reordering or a delay made them look so.
    pub(super) fn detect_spurious(&mut self, now: Instant, dsack: Option<(SeqNumber, SeqNumber)>) {
        let mss = self.mss();
        let undo = &mut self.rec.undo;
        let Some(first_seq) = undo.first.filter(|_| undo.active) else {
            return;
        };
        let Some((left, right)) = dsack.filter(|&(left, _)| first_seq <= left) else {
            return;
        };
        if undo.counted == Some((left, right)) {
            return;
        }
        undo.counted = Some((left, right));
        let segments = distance(left, right).div_ceil(mss).max(1);
        undo.retrans = undo.retrans.saturating_sub(segments as u32);
        if undo.retrans > 0 {
            return;
        }
        let what = if self.rec.in_recovery() {
            "every retransmission of the fast recovery came back as a D-SACK"
        } else {
            "every retransmission of the timeouts came back as a D-SACK"
        };
        self.undo_reduction(now, what);
    }

    /// F-RTO's test (RFC 5682 §3.1 step 3b, SACK-enhanced, as Linux's
    /// `FLAG_ORIG_SACK_ACKED`): after a timeout, an ACK that delivers data
    /// sent only once, before the timeout, shows that what was in flight
    /// is still arriving: the timeout came of a delay (or of lost ACKs),
    /// not of a lost window, and its reduction is undone. `first_original`
    /// is where the lowest such segment the ACK delivered ends;
    /// `after_timeout` says the connection was recovering from a timeout
    /// when the ACK came.
    pub(super) fn detect_spurious_timeout(
        &mut self,
        now: Instant,
        after_timeout: bool,
        first_original: Option<SeqNumber>,
    ) {
        if !self.rec.frto {
            return;
        }
        if !after_timeout || self.rec.in_recovery() {
            self.rec.frto = false;
            return;
        }
        if first_original.is_some_and(|end| end <= self.rec.recover) {
            self.rec.frto = false;
            self.undo_reduction(now, "data sent before the timeout was delivered (F-RTO)");
        }
    }

    /// The last loss episode was spurious (`why`): its window reduction is
    /// undone (RFC 3708, RFC 5682 with RFC 4015's response). After a
    /// timeout, what go-back-N has not resent yet was not lost either, and
    /// what RACK marked lost is in flight again; RACK finds anything that
    /// really is lost.
    fn undo_reduction(&mut self, now: Instant, why: &str) {
        self.rec.undo = Undo::default();
        if !self.cc.on_spurious_congestion(now) {
            return;
        }
        log::debug!(
            "{} -> {}: {why}: window restored to {}",
            self.local,
            self.remote,
            self.cc.cwnd()
        );
        self.stats.spurious_undos += 1;
        if self.after_timeout() {
            self.snd.nxt = self.snd.max;
            self.rec.recover = self.snd.una;
            self.rec.rack.unmark_lost();
        }
    }
}
