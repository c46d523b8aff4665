//! Loss detection and recovery: fast retransmit and recovery with SACK
//! (RFC 6675) or NewReno (RFC 6582), early retransmit (RFC 5827), RACK's
//! reordering timer and the tail loss probe (RFC 8985), and go-back-N
//! after a retransmission timeout (RFC 6298 §5.4).
//!
//! [`Recovery`] holds the state; the methods on [`Connection`] here decide
//! when recovery starts, what to retransmit, and when to probe.

use crate::time::{Duration, Instant};
use crate::transport::tcp::rxt_log::RetransmitLog;
use crate::transport::tcp::scoreboard::{DUP_THRESH, NextSeg, Scoreboard};
use crate::transport::tcp::seq::SeqNumber;

use super::types::Outgoing;
use super::{Connection, distance};

/// The loss-recovery state of a connection.
#[derive(Debug)]
pub(super) struct Recovery {
    /// What the peer has SACKed.
    pub(super) scoreboard: Scoreboard,
    /// Duplicate ACKs since SND.UNA last advanced.
    pub(super) dupacks: u32,
    /// `Some(recovery point)` while in fast recovery.
    pub(super) point: Option<SeqNumber>,
    /// RFC 6582 `recover`: no new recovery until SND.UNA passes it.
    pub(super) recover: SeqNumber,
    /// Highest sequence retransmitted in this recovery (RFC 6675 HighRxt).
    pub(super) high_rxt: SeqNumber,
    /// The retransmissions of the current recovery, to find lost ones.
    pub(super) rxt_log: RetransmitLog,
    /// Retransmit the segment at SND.UNA now (the first retransmission of
    /// a recovery; with NewReno, after each partial ACK too).
    pub(super) rtx_una: bool,
    /// RFC 6675 RescueRxt: the one rescue retransmission of a recovery.
    pub(super) rescue_rxt: Option<SeqNumber>,
    /// When, outside recovery, data above SND.UNA was first seen SACKed:
    /// RACK's reordering timer runs from here (see `rack_deadline`).
    pub(super) hole_seen_at: Option<Instant>,
    /// Send a tail loss probe now.
    pub(super) tlp_due: bool,
    /// A probe is out and no ACK has advanced since.
    pub(super) tlp_outstanding: bool,
    /// Our timestamp clock when the last retransmission timeout fired:
    /// echoes older than it give no RTT sample.
    pub(super) rto_ts: Option<u32>,
}

impl Recovery {
    pub(super) fn new(iss: SeqNumber) -> Recovery {
        Recovery {
            scoreboard: Scoreboard::new(),
            dupacks: 0,
            point: None,
            recover: iss,
            high_rxt: iss,
            rxt_log: RetransmitLog::new(),
            rtx_una: false,
            rescue_rxt: None,
            hole_seen_at: None,
            tlp_due: false,
            tlp_outstanding: false,
            rto_ts: None,
        }
    }

    /// Whether in fast recovery.
    pub(super) fn in_recovery(&self) -> bool {
        self.point.is_some()
    }

    /// The handshake completed with `ack`: nothing is to be recovered yet.
    pub(super) fn on_synchronized(&mut self, iss: SeqNumber, ack: SeqNumber) {
        self.recover = iss;
        self.high_rxt = ack;
    }

    /// Fast recovery begins with everything below `snd_max` outstanding
    /// (RFC 6675 §5 step 4, RFC 6582 §3.2 step 2): the segment at SND.UNA
    /// is retransmitted first.
    pub(super) fn enter(&mut self, snd_una: SeqNumber, snd_max: SeqNumber) {
        self.point = Some(snd_max);
        self.recover = snd_max;
        self.hole_seen_at = None;
        self.high_rxt = snd_una;
        self.rxt_log.clear();
        self.rescue_rxt = None;
        self.rtx_una = true;
    }

    /// A full ACK ends fast recovery (RFC 6582 §3.2 step 3, RFC 6675 §5).
    pub(super) fn exit(&mut self) {
        self.point = None;
        self.rxt_log.clear();
        self.rtx_una = false;
    }

    /// Everything from `snd_una` will be sent again: any recovery ends,
    /// `recover` marks the highest sent (RFC 6582 §4) and the scoreboard
    /// starts afresh (RFC 6675 §5.1).
    pub(super) fn go_back(&mut self, snd_una: SeqNumber, snd_max: SeqNumber) {
        self.recover = snd_max;
        self.point = None;
        self.rtx_una = false;
        self.dupacks = 0;
        self.high_rxt = snd_una;
        self.rxt_log.clear();
        self.hole_seen_at = None;
        self.scoreboard.on_retransmit_timeout();
    }

    /// The retransmission timer fired at our timestamp clock `ts_now`.
    pub(super) fn on_timeout(&mut self, ts_now: u32) {
        self.tlp_due = false;
        self.tlp_outstanding = false;
        self.rto_ts = Some(ts_now);
    }

    /// The connection closed: nothing is due.
    pub(super) fn on_closed(&mut self) {
        self.tlp_due = false;
        self.hole_seen_at = None;
    }
}

impl Connection {
    pub(super) fn on_dupack(&mut self, now: Instant) {
        if self.rec.in_recovery() {
            return;
        }
        // Early retransmit (RFC 5827 §3.1): with fewer than four segments
        // outstanding and nothing new to send, three duplicate ACKs can
        // never come; lower the threshold to the outstanding segments - 1.
        let mss = self.mss();
        let outstanding = self.flight_size().div_ceil(mss) as u32;
        let thresh = if outstanding < 4 && self.unsent_data() == 0 {
            outstanding.saturating_sub(1).max(1)
        } else {
            DUP_THRESH as u32
        };
        let lost = if self.opts.sack_ok {
            self.rec.dupacks >= thresh || self.rec.scoreboard.is_lost(self.snd.una, mss)
        } else {
            self.rec.dupacks >= thresh
        };
        // RFC 6582 §3.2 step 2: not again for losses of a window already
        // recovered (`recover` is the highest sequence sent when the last
        // recovery or timeout began).
        if lost && self.rec.recover <= self.snd.una {
            self.enter_recovery(now);
        }
    }

    pub(super) fn enter_recovery(&mut self, now: Instant) {
        log::trace!(
            "{} -> {}: fast retransmit at {}",
            self.local,
            self.remote,
            self.snd.una
        );
        self.stats.fast_retransmits += 1;
        self.rec.enter(self.snd.una, self.snd.max);
        self.timers.tlp = None;
        self.cc.on_congestion_event(now, self.flight_size());
        self.rtt_probe = None;
    }

    /// RACK's reordering timer for original transmissions (RFC 8985
    /// §6.2-§6.3), in the simple form a range-based scoreboard allows:
    /// data above the hole at SND.UNA was sent after it, so once some of
    /// it has been SACKed for a reordering window (a quarter of SRTT)
    /// without the hole being filled, the hole is lost, however few
    /// duplicate ACKs made it back. RFC 6675 alone needs three segments
    /// SACKed, which a small window or lost ACKs may never produce; the
    /// retransmission timeout then had to repair the loss.
    pub(super) fn rack_deadline(&self) -> Option<Instant> {
        if !self.opts.sack_ok || self.rec.in_recovery() || self.snd.una < self.rec.recover {
            return None;
        }
        let seen = self.rec.hole_seen_at?;
        let reo_wnd = self
            .rtt
            .srtt()
            .map_or(Duration::from_millis(1), |srtt| srtt / 4);
        Some(seen + reo_wnd)
    }

    /// Notes when data above SND.UNA is first seen SACKed outside
    /// recovery, for [`Self::rack_deadline`].
    pub(super) fn track_hole(&mut self, now: Instant) {
        let hole = self.opts.sack_ok
            && !self.rec.in_recovery()
            && self.snd.una != self.snd.max
            && !self.rec.scoreboard.is_empty();
        if !hole {
            self.rec.hole_seen_at = None;
        } else if self.rec.hole_seen_at.is_none() {
            self.rec.hole_seen_at = Some(now);
        }
    }

    /// Go back N: everything from SND.UNA is sent again as the window
    /// allows (RFC 6298 §5.4), after a timeout or when the path MTU shrank
    /// under the flight. Any fast recovery ends (its pipe accounting does
    /// not hold across it), `recover` marks the highest sent (RFC 6582
    /// §4), and the SACK scoreboard starts afresh (RFC 6675 §5.1).
    pub(super) fn go_back_n(&mut self) {
        self.rec.go_back(self.snd.una, self.snd.max);
        self.snd.nxt = self.snd.una;
    }

    /// A retransmission timeout with data outstanding (RFC 6298 §5.4-5.6):
    /// no probe is pending any more, the congestion controller and the
    /// timer back off, and everything from SND.UNA goes again.
    pub(super) fn on_retransmit_timeout(&mut self, now: Instant) {
        log::trace!(
            "{} -> {}: retransmission timeout, RTO {:?}",
            self.local,
            self.remote,
            self.rtt.rto()
        );
        self.timers.tlp = None;
        self.rec.on_timeout(self.ts_now(now));
        self.cc.on_retransmit_timeout(now, self.flight_size());
        self.rtt.on_timeout();
        self.rtt_probe = None;
        self.go_back_n();
        self.timers.rto = Some(now + self.rtt.rto());
    }

    pub(super) fn poll_retransmit(&mut self, now: Instant) -> Option<Outgoing> {
        self.rec.point?;
        let mss = self.mss();
        let (seq, len) = if self.opts.sack_ok {
            if self.rec.rtx_una {
                // The first retransmission of the recovery (RFC 6675 §5
                // step 4.3), stopping short of SACKed data.
                self.rec.rtx_una = false;
                self.rec
                    .scoreboard
                    .head_segment(self.snd.una, self.snd.max, mss)
                    .unwrap_or((self.snd.una, mss))
            } else {
                // Lost retransmissions are not in flight.
                let pipe = self
                    .rec
                    .scoreboard
                    .pipe(self.snd.una, self.snd.max, self.rec.high_rxt, mss)
                    .saturating_sub(self.rec.rxt_log.lost_bytes());
                if pipe >= self.cc.cwnd() {
                    return None;
                }
                if let Some((seq, len)) = self.rec.rxt_log.next_lost(self.snd.una, mss) {
                    let out = self.data_segment(now, seq, len, true)?;
                    let end = seq + out.repr.payload_len;
                    self.rec.rxt_log.on_retransmit(seq, end, self.snd.max, now);
                    return Some(out);
                }
                let new_data =
                    self.unsent_data() > 0 && (self.snd.una + self.snd.wnd) - self.snd.nxt > 0;
                match self.rec.scoreboard.next_seg(
                    self.snd.una,
                    self.snd.max,
                    self.rec.high_rxt,
                    self.rec.rescue_rxt,
                    mss,
                    new_data,
                ) {
                    NextSeg::Retransmit { seq, len } => (seq, len),
                    NextSeg::Rescue { seq, len } => {
                        // RFC 6675 §4 rule 4: RescueRxt = RecoveryPoint, and
                        // HighRxt is not advanced by a rescue, so holes
                        // found later below it are still repaired by SACK.
                        self.rec.rescue_rxt = self.rec.point.or(Some(self.snd.max));
                        let out = self.data_segment(now, seq, len, true)?;
                        let end = seq + out.repr.payload_len;
                        self.rec.rxt_log.on_retransmit(seq, end, self.snd.max, now);
                        return Some(out);
                    }
                    NextSeg::NewData | NextSeg::None => return None,
                }
            }
        } else {
            if !self.rec.rtx_una {
                return None;
            }
            self.rec.rtx_una = false;
            (self.snd.una, mss)
        };
        let out = self.data_segment(now, seq, len, true)?;
        let end = seq + out.repr.payload_len;
        if self.rec.high_rxt < end {
            self.rec.high_rxt = end;
        }
        if self.opts.sack_ok {
            self.rec.rxt_log.on_retransmit(seq, end, self.snd.max, now);
        }
        Some(out)
    }

    /// Arms the tail loss probe timer (RFC 8985 §7.2): two smoothed RTTs
    /// after the last send or ACK, plus a worst-case delayed ACK when only
    /// one segment is out, and never later than the retransmission timer.
    pub(super) fn schedule_tlp(&mut self, now: Instant) {
        self.timers.tlp = None;
        if !self.opts.sack_ok || self.rec.in_recovery() || self.rec.tlp_outstanding {
            return;
        }
        let Some(srtt) = self.rtt.srtt() else { return };
        if self.snd.una == self.snd.max || !self.state.is_synchronized() {
            return;
        }
        let mut pto = srtt * 2;
        if self.flight_size() <= self.mss() {
            pto += Duration::from_millis(200);
        } else {
            pto += Duration::from_millis(2);
        }
        let at = now + pto;
        if self.timers.rto.is_none_or(|rto| at < rto) {
            self.timers.tlp = Some(at);
        }
    }

    /// Sends the tail loss probe (RFC 8985 §7.3): a new segment if one may
    /// go, else the last segment sent again, so that a loss at the tail of
    /// a flight is reported by SACK and repaired by fast recovery rather
    /// than by the retransmission timer.
    pub(super) fn tail_loss_probe(&mut self, now: Instant) -> Option<Outgoing> {
        if self.snd.una == self.snd.max || self.rec.in_recovery() {
            return None;
        }
        let mss = self.mss();
        let peer_room = (self.snd.una + self.snd.wnd) - self.snd.nxt;
        let out = if self.unsent_data() > 0 && peer_room > 0 {
            let len = self.unsent_data().min(mss).min(peer_room as usize);
            self.data_segment(now, self.snd.nxt, len, false)
        } else {
            // The last data segment (the FIN rides along if it is due).
            let data_end = self.snd.una + self.snd.buf.len();
            let start = if distance(self.snd.una, data_end) > mss {
                data_end - mss
            } else {
                self.snd.una
            };
            self.data_segment(now, start, distance(start, data_end), true)
        }?;
        self.rec.tlp_outstanding = true;
        self.timers.tlp = None;
        self.timers.rto = Some(now + self.rtt.rto());
        Some(out)
    }
}
