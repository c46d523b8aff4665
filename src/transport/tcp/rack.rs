//! RACK loss detection (RFC 8985 §6): a segment is lost once a segment
//! sent after it has been delivered and a reordering window has passed.
//!
//! [`Rack`] keeps one record per segment in flight: its sequence range,
//! when it was last sent, whether it was sent more than once, and whether
//! it has been found lost and not sent again since. Records leave as they
//! are acknowledged, cumulatively or selectively, so what remains is
//! exactly the data not known to be delivered, and [`Rack::pipe`] (the
//! octets in flight) counts what was sent and is neither delivered nor
//! lost, as Linux's `packets_in_flight` does, whatever the pattern of
//! losses: unlike RFC 6675's `IsLost`, a lost tail or a lost
//! retransmission leaves `pipe` as soon as time says so.
//!
//! Time, not counting, decides (RFC 8985 §2): a single delivered segment
//! sent after a hole marks the hole lost after the reordering window, so
//! a loss in a small window, at a flight's tail, or of a retransmission
//! is found without three duplicate ACKs or a timeout. The duplicate-ACK
//! threshold matters only as RFC 8985 §6.2 step 4's cue to drop the
//! window to zero once three segments are SACKed above a hole.
//!
//! # Costs
//!
//! Records sit in a sequence-ordered ring: a new segment is appended, a
//! cumulative ACK pops from the front, a SACK block is found by binary
//! search. Loss detection walks from the oldest record and stops at the
//! first segment first sent after the most recently delivered one (later
//! ones in sequence order were first sent later still), so on a path
//! without loss it looks at one record per ACK. Records never split
//! unless a retransmission or SACK block cuts across one.
//!
//! # Deliberately not here
//!
//! The tail loss probe (RFC 8985 §7), entering and leaving recovery, and
//! what to send: the connection's recovery (`connection/recovery.rs`).
//! The reordering timer is the connection's too; [`Rack::detect_loss`]
//! says when it should fire.
//!
//! # Example
//!
//! Three segments go out a millisecond apart; the peer SACKs the third. The
//! two before it are lost once the reordering window has passed since the
//! third's round trip.
//!
//! ```
//! use netstrata::transport::tcp::rack::Rack;
//! use netstrata::transport::tcp::seq::SeqNumber;
//! use netstrata::{Duration, Instant};
//!
//! let ms = |n| Instant::from_millis(n);
//! let seq = SeqNumber;
//! let mut rack = Rack::new(seq(0));
//! for i in 0..3 {
//!     rack.on_sent(seq(1 + 1000 * i), seq(1001 + 1000 * i), ms(i.into()), false);
//! }
//! assert_eq!(rack.pipe(), 3000);
//! let d = rack.on_ack(seq(1), &[(seq(2001), seq(3001))], seq(3001), ms(50), |_| false);
//! assert_eq!((d.bytes, d.rtt), (1000, Some(Duration::from_millis(48))));
//!
//! let reo_wnd = Duration::from_millis(5);
//! let early = rack.detect_loss(ms(50), reo_wnd);
//! assert_eq!(early.segments, 0);
//! assert!(early.reorder_timer.is_some()); // not yet: maybe reordered
//! let late = rack.detect_loss(ms(60), reo_wnd);
//! assert_eq!((late.segments, late.bytes), (2, 2000));
//! assert_eq!(rack.pipe(), 0);
//! ```

use std::collections::VecDeque;

use super::rate::{DeliveryRate, RateSample, TxState};
use super::seq::SeqNumber;
use crate::time::{Duration, Instant};

/// Recoveries after the last D-SACK during which the reordering window
/// stays widened (RFC 8985 §6.2 step 4, `RACK.reo_wnd_persist`).
const REO_WND_PERSIST: u32 = 16;

/// One segment in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    start: SeqNumber,
    end: SeqNumber,
    /// When it was last sent (`Segment.xmit_ts`).
    sent: Instant,
    /// Sent more than once (`Segment.retransmitted`).
    retransmitted: bool,
    /// Found lost and not sent again since (`Segment.lost`).
    lost: bool,
    /// The connection's delivery state when it was last sent, for a rate
    /// sample when it is delivered.
    tx: TxState,
}

impl Segment {
    fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// The part from `at` on; `self` keeps the part before.
    fn split_off(&mut self, at: SeqNumber) -> Segment {
        let tail = Segment { start: at, ..*self };
        self.end = at;
        tail
    }
}

/// RFC 8985's `RACK_sent_after(t1, seq1, t2, seq2)`: a segment sent at
/// `t1` ending at `seq1` was sent after one sent at `t2` ending at `seq2`.
fn sent_after(t1: Instant, seq1: SeqNumber, t2: Instant, seq2: SeqNumber) -> bool {
    t1 > t2 || (t1 == t2 && seq1 > seq2)
}

/// The segments one ACK delivered one way (cumulatively, or by SACK), for
/// an RTT sample.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    /// The earliest send time among them sent once.
    oldest: Option<Instant>,
    /// One of them had been retransmitted.
    retransmitted: bool,
}

impl Sample {
    fn add(&mut self, seg: &Segment) {
        if seg.retransmitted {
            self.retransmitted = true;
        } else if self.oldest.is_none_or(|t| seg.sent < t) {
            self.oldest = Some(seg.sent);
        }
    }

    /// The send time to time, if Karn's rule allows one.
    fn oldest(&self) -> Option<Instant> {
        self.oldest.filter(|_| !self.retransmitted)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Samples {
    cumulative: Sample,
    sacked: Sample,
}

/// What an ACK delivered, as [`Rack::on_ack`] saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Octets newly delivered, cumulatively or selectively.
    pub bytes: usize,
    /// A round-trip time sample in microseconds, finer than the
    /// timestamp option's clock: the time since the oldest segment this
    /// ACK acknowledged cumulatively was sent, unless the ACK also
    /// acknowledged a retransmission (Karn's rule: it may be the
    /// retransmission that released the ACK, as when it fills a hole);
    /// else the time since the oldest segment it newly SACKed that was
    /// sent once. Linux takes the same two samples.
    pub rtt: Option<Duration>,
    /// Octets delivered that had been marked lost: the mark was wrong, or
    /// the retransmission arrived.
    pub lost_bytes: usize,
    /// The delivery rate sample, if this ACK gave one.
    pub rate: Option<RateSample>,
    /// Where the lowest segment it delivered that was sent only once
    /// ends: such a delivery after a timeout shows the timeout was
    /// spurious (F-RTO).
    pub first_original: Option<SeqNumber>,
}

/// What [`Rack::detect_loss`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Losses {
    /// Segments newly marked lost.
    pub segments: usize,
    /// Their octets.
    pub bytes: usize,
    /// Of those, retransmissions.
    pub retransmissions: usize,
    /// When the next segment sent before RACK's reference will be overdue,
    /// if one is not yet: the reordering timer (RFC 8985 §6.3).
    pub reorder_timer: Option<Instant>,
}

/// The RACK state of one connection (RFC 8985 §6.1) and its segments in
/// flight.
#[derive(Clone, Debug)]
pub struct Rack {
    /// Segments sent and not yet delivered, in sequence order.
    segs: VecDeque<Segment>,
    /// Octets of `segs` in flight: not marked lost.
    in_flight: usize,
    /// Octets of `segs` marked lost.
    lost: usize,
    /// `RACK.xmit_ts`: when the most recently sent delivered segment was
    /// sent (`None` until the first delivery).
    xmit_ts: Option<Instant>,
    /// `RACK.end_seq`: where that segment ends.
    end_seq: SeqNumber,
    /// `RACK.rtt`: its round-trip time.
    rtt: Duration,
    /// `RACK.min_RTT`: the lowest round-trip time seen, for the
    /// reordering window. Reordering is a property of the path, not of
    /// its queues, so the minimum rather than SRTT.
    min_rtt: Option<Duration>,
    /// `RACK.fack`: the highest sequence delivered (exclusive).
    fack: SeqNumber,
    /// `RACK.reordering_seen`: a segment sent once was delivered below
    /// `fack`.
    reordering_seen: bool,
    /// `RACK.reo_wnd_mult`: D-SACK rounds widen the window.
    reo_wnd_mult: u32,
    /// `RACK.reo_wnd_persist`.
    reo_wnd_persist: u32,
    /// `RACK.dsack_round`: no further widening until SND.UNA passes this.
    dsack_round: Option<SeqNumber>,
    /// Delivery rate estimation over the same records.
    rate: DeliveryRate,
}

impl Rack {
    /// Nothing sent yet; `iss` is the initial send sequence number.
    pub fn new(iss: SeqNumber) -> Rack {
        Rack {
            segs: VecDeque::new(),
            in_flight: 0,
            lost: 0,
            xmit_ts: None,
            end_seq: iss,
            rtt: Duration::ZERO,
            min_rtt: None,
            fack: iss,
            reordering_seen: false,
            reo_wnd_mult: 1,
            reo_wnd_persist: 0,
            dsack_round: None,
            rate: DeliveryRate::new(),
        }
    }

    /// Bytes delivered so far, cumulatively or by SACK.
    pub fn delivered(&self) -> u64 {
        self.rate.delivered()
    }

    /// The sender has nothing to send and room in its window: samples of
    /// what is in flight are app-limited.
    pub fn on_app_limited(&mut self) {
        self.rate.on_app_limited(self.in_flight);
    }

    /// Octets in flight: sent and neither delivered nor marked lost
    /// (RFC 6675's `pipe` with RACK's idea of lost).
    pub fn pipe(&self) -> usize {
        self.in_flight
    }

    /// Octets marked lost and not sent again.
    pub fn lost_bytes(&self) -> usize {
        self.lost
    }

    /// Reordering has been seen on this connection.
    pub fn reordering_seen(&self) -> bool {
        self.reordering_seen
    }

    /// `RACK.min_RTT`.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// The memory the records of segments in flight take, kept while data
    /// flows (see [`Rack::release_idle`]): part of what the connection
    /// costs, for the TCP layer's memory limits.
    pub fn memory(&self) -> usize {
        self.segs.capacity() * core::mem::size_of::<Segment>()
    }

    /// The connection has nothing outstanding and nothing queued: the
    /// records of its last burst are given back (while data flows, the
    /// space is kept for the next window instead of being allocated anew
    /// each time a window is acknowledged whole).
    pub fn release_idle(&mut self) {
        if self.segs.is_empty() && self.segs.capacity() > 64 {
            self.segs = VecDeque::new();
        }
    }

    /// `[start, end)` was sent at `now`, for the first time unless
    /// `retransmission` (RFC 8985 §6.1: `Segment.xmit_ts` and
    /// `Segment.retransmitted`). Sending again a range found lost puts it
    /// back in flight.
    pub fn on_sent(
        &mut self,
        start: SeqNumber,
        end: SeqNumber,
        now: Instant,
        retransmission: bool,
    ) {
        if end <= start {
            return;
        }
        let tx = self.rate.on_sent(now, self.in_flight == 0);
        if self.segs.back().is_none_or(|last| last.end <= start) {
            self.segs.push_back(Segment {
                start,
                end,
                sent: now,
                retransmitted: retransmission,
                lost: false,
                tx,
            });
            self.in_flight += (end - start) as usize;
            return;
        }
        let mut i = self.segs.partition_point(|s| s.end <= start);
        let mut at = start;
        while at < end {
            match self.segs.get(i).copied() {
                Some(seg) if seg.start <= at => {
                    if seg.start < at {
                        let tail = self.segs[i].split_off(at);
                        i += 1;
                        self.segs.insert(i, tail);
                    }
                    if end < self.segs[i].end {
                        let tail = self.segs[i].split_off(end);
                        self.segs.insert(i + 1, tail);
                    }
                    let seg = &mut self.segs[i];
                    if seg.lost {
                        seg.lost = false;
                        self.lost -= seg.len();
                        self.in_flight += seg.len();
                    }
                    seg.sent = now;
                    seg.retransmitted = true;
                    seg.tx = tx;
                    at = seg.end;
                }
                next => {
                    // Not recorded: SACKed once, and sent again after a
                    // timeout cleared the scoreboard.
                    let gap_end = next.map_or(end, |n| n.start.min(end));
                    self.segs.insert(
                        i,
                        Segment {
                            start: at,
                            end: gap_end,
                            sent: now,
                            retransmitted: retransmission,
                            lost: false,
                            tx,
                        },
                    );
                    self.in_flight += (gap_end - at) as usize;
                    at = gap_end;
                }
            }
            i += 1;
        }
    }

    /// Updates the state from an ACK (RFC 8985 §6.2 steps 1-3): the
    /// segments below `snd_una` and within `sacked` (the ACK's SACK
    /// blocks, D-SACK excluded) are delivered; the most recently sent of
    /// them becomes RACK's reference, and one sent once but delivered
    /// below what was delivered before is reordering.
    ///
    /// A block counts only within `[snd_una, snd_max)`, and only for the
    /// segments it covers whole: a block that covers part of one leaves
    /// it outstanding, as Linux does below a segment. Otherwise a peer
    /// SACKing every other octet would cut the records into one per
    /// octet, with memory and time to match (the "SACK slowness" of
    /// CVE-2019-11478). Records are thus never more than segments sent.
    ///
    /// `echo_predates(t)` says whether the ACK's timestamp echo is older
    /// than a transmission at `t`: then a retransmitted segment's delivery
    /// is the original's, and it does not advance RACK (§6.2 step 2).
    pub fn on_ack(
        &mut self,
        snd_una: SeqNumber,
        sacked: &[(SeqNumber, SeqNumber)],
        snd_max: SeqNumber,
        now: Instant,
        echo_predates: impl Fn(Instant) -> bool,
    ) -> Delivery {
        let mut d = Delivery::default();
        let prior_fack = self.fack;
        let mut samples = Samples::default();
        while let Some(front) = self.segs.front_mut() {
            if front.end <= snd_una {
                let seg = self.segs.pop_front().expect("front exists");
                samples.cumulative.add(&seg);
                self.deliver(seg, true, prior_fack, now, &echo_predates, &mut d);
            } else {
                if front.start < snd_una {
                    let head = Segment {
                        end: snd_una,
                        ..*front
                    };
                    front.start = snd_una;
                    samples.cumulative.add(&head);
                    self.deliver(head, true, prior_fack, now, &echo_predates, &mut d);
                }
                break;
            }
        }
        for &(left, right) in sacked {
            if left < snd_una || right <= left || snd_max < right {
                continue;
            }
            // The records wholly within the block: from the first that
            // starts at or after `left` to the last that ends by `right`.
            let i = self.segs.partition_point(|s| s.start < left);
            let j = i + self.segs.range(i..).take_while(|s| s.end <= right).count();
            for seg in self.segs.drain(i..j).collect::<Vec<_>>() {
                samples.sacked.add(&seg);
                self.deliver(seg, false, prior_fack, now, &echo_predates, &mut d);
            }
        }
        d.rtt = samples
            .cumulative
            .oldest()
            .or(samples.sacked.oldest())
            .map(|sent| now.saturating_duration_since(sent));
        d.rate = self.rate.sample(self.min_rtt);
        d
    }

    /// One segment delivered, `cumulative`ly or by a SACK block.
    fn deliver(
        &mut self,
        seg: Segment,
        cumulative: bool,
        prior_fack: SeqNumber,
        now: Instant,
        echo_predates: &impl Fn(Instant) -> bool,
        d: &mut Delivery,
    ) {
        let len = seg.len();
        d.bytes += len;
        self.rate.on_delivered(seg.tx, seg.sent, len, now);
        if !seg.retransmitted && d.first_original.is_none_or(|end| seg.end < end) {
            d.first_original = Some(seg.end);
        }
        if seg.lost {
            self.lost -= len;
            d.lost_bytes += len;
        } else {
            self.in_flight -= len;
        }
        // Step 3: reordering, when a segment sent once is delivered below
        // one delivered before. A retransmitted segment counts too when
        // it fills the hole at SND.UNA with an echo older than its
        // retransmission: the original arrived late, and it is the
        // retransmission that was needless (Linux's `tcp_packet_delayed`).
        // Without this, a reordering that RACK mistakes for loss before
        // reordering is known is never learnt from: the late original
        // always finds its segment already sent again. Only a cumulative
        // delivery: the echo of an out-of-order arrival is the last
        // in-order segment's (RFC 7323 §4.3), older whoever arrived.
        let original = !seg.retransmitted || (cumulative && echo_predates(seg.sent));
        if seg.end < prior_fack && original {
            if !self.reordering_seen {
                log::trace!(
                    "RACK: {}-{} delivered below {prior_fack}: reordering",
                    seg.start,
                    seg.end
                );
            }
            self.reordering_seen = true;
        }
        if self.fack < seg.end {
            self.fack = seg.end;
        }
        // Step 2: the most recently sent delivered segment.
        let rtt = now.saturating_duration_since(seg.sent);
        if seg.retransmitted
            && (echo_predates(seg.sent) || self.min_rtt.is_some_and(|min| rtt < min))
        {
            return;
        }
        if !seg.retransmitted {
            self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        }
        if self
            .xmit_ts
            .is_none_or(|ts| sent_after(seg.sent, seg.end, ts, self.end_seq))
        {
            self.xmit_ts = Some(seg.sent);
            self.end_seq = seg.end;
            self.rtt = rtt;
        }
    }

    /// The ACK carried a D-SACK (RFC 8985 §6.2 step 4): once per round
    /// trip, the reordering window widens by another `min_RTT / 4`, and
    /// stays wide for 16 recoveries.
    pub fn on_dsack(&mut self, snd_max: SeqNumber) {
        if self.dsack_round.is_none() {
            self.dsack_round = Some(snd_max);
            self.reo_wnd_mult = self.reo_wnd_mult.saturating_add(1);
            self.reo_wnd_persist = REO_WND_PERSIST;
        }
    }

    /// SND.UNA moved to `snd_una`: a D-SACK round that it passed is over.
    pub fn on_snd_una(&mut self, snd_una: SeqNumber) {
        if self.dsack_round.is_some_and(|r| r <= snd_una) {
            self.dsack_round = None;
        }
    }

    /// A loss recovery ended: the widened window persists one recovery
    /// less.
    pub fn on_recovery_exit(&mut self) {
        self.reo_wnd_persist = self.reo_wnd_persist.saturating_sub(1);
        if self.reo_wnd_persist == 0 {
            self.reo_wnd_mult = 1;
        }
    }

    /// `RACK.reo_wnd` (RFC 8985 §6.2 step 4). Until reordering is seen it
    /// is zero in recovery, or once `dup_thresh_met` (three segments
    /// SACKed above a hole, RFC 6675's threshold); otherwise a quarter of
    /// the minimum RTT per D-SACK round, at most SRTT.
    pub fn reo_wnd(&self, in_recovery: bool, dup_thresh_met: bool, srtt: Duration) -> Duration {
        if !self.reordering_seen && (in_recovery || dup_thresh_met) {
            return Duration::ZERO;
        }
        let quarter = self.min_rtt.unwrap_or(srtt) / 4;
        (quarter * self.reo_wnd_mult).min(srtt)
    }

    /// RFC 8985 §6.2 step 5: marks lost every segment sent before the
    /// most recently delivered one by more than its RTT plus `reo_wnd`.
    pub fn detect_loss(&mut self, now: Instant, reo_wnd: Duration) -> Losses {
        let mut found = Losses::default();
        let Some(xmit_ts) = self.xmit_ts else {
            return found;
        };
        for seg in self.segs.iter_mut() {
            if seg.lost {
                continue;
            }
            if !sent_after(xmit_ts, self.end_seq, seg.sent, seg.end) {
                if seg.retransmitted {
                    continue;
                }
                // First sent after the reference, and so is every later
                // segment (sequence order is first-transmission order).
                break;
            }
            let deadline = seg.sent + self.rtt + reo_wnd;
            if deadline <= now {
                seg.lost = true;
                self.in_flight -= seg.len();
                self.lost += seg.len();
                found.segments += 1;
                found.bytes += seg.len();
                found.retransmissions += usize::from(seg.retransmitted);
            } else if found.reorder_timer.is_none_or(|t| t < deadline) {
                found.reorder_timer = Some(deadline);
            }
        }
        found
    }

    /// The first segment marked lost, at most `mss` octets of it: what to
    /// retransmit first.
    pub fn first_lost(&self, mss: usize) -> Option<(SeqNumber, usize)> {
        if self.lost == 0 {
            return None;
        }
        let seg = self.segs.iter().find(|s| s.lost)?;
        Some((seg.start, seg.len().min(mss)))
    }

    /// The last `mss` octets (at most) of the highest segment neither
    /// delivered nor SACKed: what a loss probe sends again.
    pub fn last_outstanding(&self, mss: usize) -> Option<(SeqNumber, usize)> {
        let seg = self.segs.back()?;
        let len = seg.len().min(mss);
        Some((seg.end - len, len))
    }

    /// What was marked lost was not: the loss episode was spurious, and
    /// its segments are in flight again (RACK marks them anew if they
    /// really are lost).
    pub fn unmark_lost(&mut self) {
        for seg in self.segs.iter_mut().filter(|s| s.lost) {
            seg.lost = false;
        }
        self.in_flight += self.lost;
        self.lost = 0;
    }

    /// The retransmission timer fired (RFC 8985 §6.3): the oldest segment
    /// outstanding is lost (it was sent an RTO ago), and so is every other
    /// that RACK would find lost with `reo_wnd` at `now`; one sent too
    /// recently for that is given its round trip, and RACK marks it later
    /// if it is lost too. SACKed segments have no record: they are not
    /// sent again. Returns the segments newly marked.
    pub fn on_timeout(&mut self, now: Instant, reo_wnd: Duration) -> usize {
        let mut marked = 0;
        for (i, seg) in self.segs.iter_mut().enumerate() {
            let overdue = seg.sent + self.rtt + reo_wnd <= now;
            if !seg.lost && (i == 0 || overdue) {
                seg.lost = true;
                self.in_flight -= seg.len();
                self.lost += seg.len();
                marked += 1;
            }
        }
        marked
    }

    /// Whether the receiver SACKed the data at `snd_una` (no record left
    /// for it while it is not cumulatively acknowledged) and then timed
    /// out on it: it discarded what it SACKed ("reneging", RFC 2018 §8),
    /// and the SACKed data must be sent again too.
    pub fn head_sacked(&self, snd_una: SeqNumber, snd_max: SeqNumber) -> bool {
        match self.segs.front() {
            Some(seg) => snd_una < seg.start,
            None => snd_una < snd_max,
        }
    }

    /// Every segment still outstanding is lost: a path MTU drop, or a
    /// retransmission timeout after reneging or without SACK.
    pub fn mark_all_lost(&mut self) {
        for seg in self.segs.iter_mut().filter(|s| !s.lost) {
            seg.lost = true;
        }
        self.lost += self.in_flight;
        self.in_flight = 0;
    }

    /// Records kept (for tests and bounds checks).
    pub fn len(&self) -> usize {
        self.segs.len()
    }

    /// Nothing is in flight or lost.
    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    const MS: Duration = Duration::from_millis(1);

    /// Ten 100-octet segments sent 1 ms apart from 0.
    fn ten() -> Rack {
        let mut r = Rack::new(s(0));
        for k in 0..10 {
            r.on_sent(s(k * 100), s(k * 100 + 100), t(u64::from(k)), false);
        }
        r
    }

    fn never(_: Instant) -> bool {
        false
    }

    /// (segments, reordering timer).
    fn losses(l: Losses) -> (usize, Option<Instant>) {
        (l.segments, l.reorder_timer)
    }

    #[test]
    fn records_are_counted_and_given_back_when_idle() {
        let mut r = Rack::new(s(0));
        assert_eq!(r.memory(), 0);
        for k in 0..200 {
            r.on_sent(s(k * 100), s(k * 100 + 100), t(0), false);
        }
        let held = r.memory();
        assert!(held >= 200 * core::mem::size_of::<Segment>(), "{held}");
        let _ = r.on_ack(s(20_000), &[], s(20_000), t(1), never);
        // Acknowledged whole while data flows: the space is kept.
        assert_eq!(r.memory(), held);
        r.release_idle();
        assert_eq!(r.memory(), 0);
    }

    #[test]
    fn one_sack_above_a_hole_marks_it_lost_after_the_reordering_window() {
        let mut r = ten();
        assert_eq!(r.pipe(), 1000);
        // Segment 1 is SACKed at 20 ms: segment 0, sent a millisecond
        // before it, is overdue once RACK.rtt (19 ms) and the window
        // (4 ms) have passed since it was sent.
        let d = r.on_ack(s(0), &[(s(100), s(200))], s(2000), t(20), never);
        assert_eq!(d.bytes, 100);
        assert_eq!(d.rtt, Some(19 * MS));
        assert_eq!(r.pipe(), 900);
        assert_eq!(losses(r.detect_loss(t(20), 4 * MS)), (0, Some(t(23))));
        assert_eq!(losses(r.detect_loss(t(23), 4 * MS)), (1, None));
        assert_eq!(r.pipe(), 800);
        assert_eq!(r.lost_bytes(), 100);
        assert_eq!(r.first_lost(1000), Some((s(0), 100)));
        // Sent again, it is in flight once more.
        r.on_sent(s(0), s(100), t(24), true);
        assert_eq!((r.pipe(), r.lost_bytes()), (900, 0));
        assert_eq!(r.first_lost(1000), None);
    }

    #[test]
    fn a_lost_retransmission_is_found_by_a_later_delivery() {
        let mut r = ten();
        r.on_ack(s(0), &[(s(100), s(1000))], s(2000), t(20), never);
        assert_eq!(losses(r.detect_loss(t(20), Duration::ZERO)), (1, None));
        r.on_sent(s(0), s(100), t(21), true);
        // New data sent after the retransmission is delivered: the
        // retransmission, unacknowledged, is lost too.
        r.on_sent(s(1000), s(1100), t(22), false);
        r.on_ack(s(0), &[(s(1000), s(1100))], s(2000), t(40), never);
        assert_eq!(losses(r.detect_loss(t(40), Duration::ZERO)), (1, None));
        assert_eq!(r.first_lost(1000), Some((s(0), 100)));
    }

    #[test]
    fn a_clean_path_looks_at_one_record_and_keeps_none() {
        let mut r = ten();
        let d = r.on_ack(s(500), &[], s(2000), t(15), never);
        assert_eq!(d.bytes, 500);
        // The oldest segment acknowledged (sent at 0 ms) gives the sample.
        assert_eq!(d.rtt, Some(15 * MS));
        assert_eq!(losses(r.detect_loss(t(15), Duration::ZERO)), (0, None));
        r.on_ack(s(1000), &[], s(2000), t(20), never);
        assert!(r.is_empty());
        assert_eq!(r.pipe(), 0);
    }

    #[test]
    fn a_partial_ack_splits_and_a_block_counts_only_whole_segments() {
        let mut r = ten();
        // Half of segment 1 acknowledged; a block over parts of segments
        // 4 and 5 and the whole of neither delivers nothing of them.
        let d = r.on_ack(s(150), &[(s(420), s(580))], s(2000), t(20), never);
        assert_eq!(d.bytes, 150);
        assert_eq!(r.pipe(), 850);
        assert_eq!(r.len(), 9);
        // One octet SACKed in every segment cuts nothing.
        let blocks: Vec<_> = (2..10)
            .map(|k| (s(k * 100 + 50), s(k * 100 + 51)))
            .collect();
        r.on_ack(s(150), &blocks, s(2000), t(21), never);
        assert_eq!(r.len(), 9);
        // Sending again across records splits them there.
        r.on_sent(s(180), s(320), t(21), true);
        assert_eq!(r.len(), 11);
        assert_eq!(r.pipe(), 850);
        r.on_ack(s(320), &[(s(400), s(600))], s(2000), t(30), never);
        assert_eq!(r.pipe(), 1000 - 320 - 200);
    }

    #[test]
    fn blocks_outside_the_window_are_ignored() {
        let mut r = ten();
        // Below SND.UNA, or beyond what was sent: neither deletes a hole.
        r.on_ack(
            s(100),
            &[(s(0), s(300)), (s(900), s(1100))],
            s(1000),
            t(20),
            never,
        );
        assert_eq!(r.pipe(), 900);
    }

    #[test]
    fn a_retransmission_after_a_timeout_refills_sacked_gaps() {
        let mut r = ten();
        r.on_ack(s(0), &[(s(200), s(400))], s(2000), t(20), never);
        r.mark_all_lost();
        assert_eq!((r.pipe(), r.lost_bytes()), (0, 800));
        // Go-back-N resends everything, SACKed data included.
        r.on_sent(s(0), s(1000), t(300), true);
        assert_eq!((r.pipe(), r.lost_bytes()), (1000, 0));
        r.on_ack(s(1000), &[], s(2000), t(320), never);
        assert!(r.is_empty());
    }

    #[test]
    fn reordering_widens_the_window_and_d_sacks_widen_it_further() {
        let mut r = ten();
        let srtt = 20 * MS;
        // Segment 5 SACKed, then segment 2 (never retransmitted) arrives.
        r.on_ack(s(0), &[(s(500), s(600))], s(2000), t(10), never);
        assert!(!r.reordering_seen());
        assert_eq!(r.reo_wnd(true, false, srtt), Duration::ZERO);
        r.on_ack(s(0), &[(s(200), s(300))], s(2000), t(11), never);
        assert!(r.reordering_seen());
        // min RTT is 5 ms (segment 5): a quarter of it.
        let quarter = Duration::from_micros(1250);
        assert_eq!(r.reo_wnd(true, true, srtt), quarter);
        r.on_dsack(s(1000));
        assert_eq!(r.reo_wnd(true, true, srtt), quarter * 2);
        // Once per round trip.
        r.on_dsack(s(1000));
        assert_eq!(r.reo_wnd(true, true, srtt), quarter * 2);
        r.on_snd_una(s(1000));
        r.on_dsack(s(1000));
        assert_eq!(r.reo_wnd(true, true, srtt), quarter * 3);
        // Never beyond SRTT, and back to one quarter after 16 recoveries.
        assert_eq!(r.reo_wnd(false, false, 2 * MS), 2 * MS);
        for _ in 0..REO_WND_PERSIST {
            r.on_recovery_exit();
        }
        assert_eq!(r.reo_wnd(true, true, srtt), quarter);
    }

    #[test]
    fn a_late_original_that_fills_the_hole_is_reordering() {
        // Segment 0 is marked lost at once (no reordering known) and sent
        // again at 21 ms; the ACK that fills the hole echoes a timestamp
        // older than the retransmission: the original arrived late.
        let before_retransmission = |sent: Instant| sent > t(20);
        for (cumulative, echo_old, reordering) in [
            (true, true, true),
            (true, false, false),
            (false, true, false),
        ] {
            let mut r = ten();
            r.on_ack(s(0), &[(s(100), s(300))], s(2000), t(20), never);
            r.detect_loss(t(20), Duration::ZERO);
            r.on_sent(s(0), s(100), t(21), true);
            let predates = |sent: Instant| echo_old && before_retransmission(sent);
            if cumulative {
                r.on_ack(s(300), &[], s(2000), t(22), predates);
            } else {
                // Only SACKed (above a hole at 300..400 that is not
                // there: SND.UNA stays put), the echo proves nothing.
                r.on_ack(s(0), &[(s(0), s(100))], s(2000), t(22), predates);
            }
            assert_eq!(
                r.reordering_seen(),
                reordering,
                "cumulative {cumulative}, old echo {echo_old}"
            );
        }
    }

    #[test]
    fn no_sample_when_an_ack_covers_a_retransmission() {
        let mut r = ten();
        r.on_ack(s(0), &[(s(100), s(300))], s(2000), t(20), never);
        r.mark_all_lost();
        r.on_sent(s(0), s(100), t(300), true);
        // The hole filled, the receiver acknowledges everything it held:
        // segments 3-9, sent once at 3-9 ms, are acknowledged at 301 ms
        // because of the retransmission, not 292 ms after they were sent.
        let d = r.on_ack(s(1000), &[], s(2000), t(301), never);
        assert_eq!(d.rtt, None);
        // A SACK of data sent once is a sample.
        let mut r = ten();
        let d = r.on_ack(s(0), &[(s(300), s(500))], s(2000), t(20), never);
        assert_eq!(d.rtt, Some(17 * MS));
    }

    #[test]
    fn a_retransmission_acked_by_the_original_does_not_advance_rack() {
        let mut r = ten();
        r.on_ack(s(0), &[(s(100), s(200))], s(2000), t(20), never);
        r.detect_loss(t(30), Duration::ZERO);
        r.on_sent(s(0), s(100), t(31), true);
        // The ACK echoes a timestamp older than the retransmission: the
        // original arrived, late. RACK keeps segment 1 as its reference,
        // and the delivery is no RTT sample.
        let d = r.on_ack(s(200), &[], s(2000), t(32), |sent| sent > t(25));
        assert_eq!(d.rtt, None);
        assert_eq!(losses(r.detect_loss(t(32), Duration::ZERO)), (0, None));
        assert_eq!(r.rtt, 19 * MS);
    }
}
