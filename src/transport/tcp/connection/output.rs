//! What to send (RFC 9293 §3.8): the handshake, new data within the
//! congestion and peer windows with Nagle's algorithm and sender SWS
//! avoidance, the FIN, probes, ACKs with the window we advertise
//! (receiver SWS avoidance) and our options, and the RST of an abort.
//! Retransmissions during recovery come from `recovery`.

use crate::time::Instant;
use crate::transport::tcp::pacing::window_rate;
use crate::transport::tcp::segment::{HEADER_LEN, TcpFlags, TcpRepr};
use crate::transport::tcp::seq::SeqNumber;

use super::types::{Outgoing, State};
use super::{Connection, distance};

impl Connection {
    /// The next segment to send at `now`, if any. Call until `None`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Outgoing> {
        if self.path.pmtu.age(now) {
            self.apply_path_mtu();
        }
        if self.pending.rst {
            self.pending.rst = false;
            let repr = TcpRepr {
                src_port: self.local.port(),
                dst_port: self.remote.port(),
                seq_number: self.snd.nxt,
                ack_number: None,
                flags: TcpFlags::RST,
                ..TcpRepr::default()
            };
            self.stats.segs_out += 1;
            return Some(Outgoing {
                repr,
                payload_offset: 0,
                segment_size: 0,
            });
        }
        match self.state {
            State::Closed => return None,
            State::SynSent | State::SynReceived => return self.poll_handshake(now),
            State::TimeWait => return self.poll_ack(now),
            _ => {}
        }
        if self.pacer_ready(now) {
            if let Some(out) = self.poll_retransmit(now) {
                return Some(out);
            }
            if let Some(out) = self.poll_new_data(now) {
                return Some(out);
            }
        }
        if self.rec.probe_due() {
            if let Some(out) = self.tail_loss_probe(now) {
                return Some(out);
            }
        }
        if self.pending.probe {
            self.pending.probe = false;
            // A zero-window or keep-alive probe: one old sequence number,
            // which the peer must answer with an ACK (RFC 9293 §3.8.6.1,
            // §3.8.4).
            let seq = self.snd.una - 1;
            let repr = self.base_repr(now, seq, TcpFlags::empty());
            self.finish_output(&repr);
            if self.snd.wnd == 0 && self.unsent_data() > 0 {
                self.arm_persist(now);
            }
            return Some(Outgoing {
                repr,
                payload_offset: 0,
                segment_size: 0,
            });
        }
        self.poll_ack(now)
    }

    pub(super) fn poll_ack(&mut self, now: Instant) -> Option<Outgoing> {
        if !self.pending.ack {
            return None;
        }
        let repr = self.base_repr(now, self.snd_nxt_for_ack(), TcpFlags::empty());
        self.finish_output(&repr);
        Some(Outgoing {
            repr,
            payload_offset: 0,
            segment_size: 0,
        })
    }

    pub(super) fn snd_nxt_for_ack(&self) -> SeqNumber {
        // A pure ACK carries SND.NXT; after go-back-N use the highest.
        self.snd.max
    }

    pub(super) fn poll_handshake(&mut self, now: Instant) -> Option<Outgoing> {
        if !self.pending.syn {
            // An ACK owed in SYN-RECEIVED, for an unacceptable segment
            // (RFC 9293 §3.10.7.4): send it, or `poll_at` would keep
            // reporting it due.
            if self.state == State::SynReceived {
                return self.poll_ack(now);
            }
            // Nothing else goes out before the handshake completes.
            self.pending.ack = false;
            self.pending.probe = false;
            return None;
        }
        self.pending.syn = false;
        // A SYN in SYN-SENT, a SYN-ACK in SYN-RECEIVED.
        let repr = self.base_repr(now, self.snd.iss, TcpFlags::SYN);
        self.snd.nxt = self.snd.iss + 1;
        self.snd.max = self.snd.iss + 1;
        if self.timers.retries == 0 {
            self.rtt_probe = Some((self.snd.iss + 1, now));
        }
        self.timers.rto = Some(now + self.rtt.rto());
        self.finish_output(&repr);
        self.pending.ack = false;
        Some(Outgoing {
            repr,
            payload_offset: 0,
            segment_size: 0,
        })
    }

    pub(super) fn poll_new_data(&mut self, now: Instant) -> Option<Outgoing> {
        // Skip ranges the peer already SACKed when resending after an RTO
        // (the ranges are sorted and disjoint: one pass).
        if self.opts.sack_ok && self.snd.nxt < self.snd.max {
            for (start, end) in self.rec.scoreboard.ranges() {
                if start <= self.snd.nxt && self.snd.nxt < end {
                    self.snd.nxt = end;
                }
            }
        }
        // Restart window after idleness (RFC 5681 §4.1): a sender idle for
        // longer than an RTO must not burst a stale congestion window.
        if self.snd.una == self.snd.max && now - self.last_data_sent > self.rtt.rto() {
            self.cc.on_idle_restart(now);
        }
        let unsent = self.unsent_data();
        let window = self.send_window();
        self.note_cwnd_usage(unsent);
        if unsent < self.mss() && !self.retransmit_due() && self.rec.rack.pipe() < self.cc.cwnd() {
            // Less than a segment to send and room in the window: what is
            // in flight says nothing of the path's rate (delivery rate
            // estimation §3.4).
            self.rec.rack.on_app_limited();
        }
        if unsent > 0 {
            if self.snd.wnd == 0 && self.snd.una == self.snd.max {
                // Zero window: probe on the persist timer.
                self.arm_persist(now);
                return None;
            }
            let len = unsent.min(window).min(self.send_quantum());
            if len > 0 && self.nagle_allows(len.min(unsent)) {
                let retransmission = self.snd.nxt < self.snd.max;
                return self.data_segment(now, self.snd.nxt, len, retransmission);
            }
            // Held back by the peer's small window (sender SWS avoidance)
            // with nothing in flight: only the peer's window update can
            // release the data, and a lost one is never sent again (a pure
            // ACK is not retransmitted). Probe on the persist timer, whose
            // answer carries the current window, as for a zero window
            // (RFC 9293 §3.8.6.2.1's override timeout serves the same end;
            // Linux arms its probe timer the same way).
            if len > 0 && len < unsent && self.snd.una == self.snd.max {
                self.arm_persist(now);
            }
            return None;
        }
        if self.fin_pending() {
            let seq = self.snd.nxt;
            let retransmission = seq < self.snd.max;
            let repr = self.base_repr(now, seq, TcpFlags::FIN);
            self.on_data_sent(now, seq, seq + 1, retransmission, 0);
            self.snd.nxt = seq + 1;
            if self.snd.una == self.snd.max {
                // Nothing was outstanding: the user timeout starts now.
                self.timers.progress_at = now;
            }
            if self.snd.max < self.snd.nxt {
                self.snd.max = self.snd.nxt;
            }
            if self.timers.rto.is_none() {
                self.timers.rto = Some(now + self.rtt.rto());
            }
            // As after new data: the probe's timeout now counts the FIN,
            // which the peer acknowledges at once.
            if !retransmission || self.rec.in_recovery() {
                self.schedule_tlp(now);
            }
            self.finish_output(&repr);
            return Some(Outgoing {
                repr,
                payload_offset: 0,
                segment_size: 0,
            });
        }
        None
    }

    /// Builds a data segment of up to `len` bytes at `seq` (which must lie
    /// in the send buffer).
    pub(super) fn data_segment(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        len: usize,
        retransmission: bool,
    ) -> Option<Outgoing> {
        let offset = distance(self.snd.una, seq).checked_sub(usize::from(self.snd.syn_unacked))?;
        let avail = self.snd.buf.len().saturating_sub(offset);
        let len = len.min(avail);
        let fin_follows = self.snd.fin_queued && offset + len == self.snd.buf.len();
        if len == 0 && !fin_follows {
            return None;
        }
        let mut flags = TcpFlags::empty();
        if offset + len == self.snd.buf.len() {
            flags.insert(TcpFlags::PSH);
        }
        // Piggyback the FIN when it is allowed at this point; a FIN sent
        // before goes again whatever the window, as the bare FIN went.
        let send_fin = fin_follows && {
            let room = (self.snd.una + self.snd.wnd) - (seq + len);
            room > 0 || self.snd.wnd == 0 || seq + len < self.snd.max
        };
        if len == 0 && !send_fin {
            return None;
        }
        if send_fin {
            flags.insert(TcpFlags::FIN);
        }
        // A D-SACK goes in one segment only: copied into every segment
        // of a super-segment, it would report the duplicate many times.
        let dsack_pending = self.rcv.dsack.is_some();
        let mut repr = self.base_repr(now, seq, flags);
        // Options beyond the timestamps (SACK blocks) come out of the
        // payload: options and data together never exceed the peer's MSS
        // (RFC 9293 §3.7.1, RFC 6691 §2), or the datagram would exceed the
        // MTU and be fragmented. A shortened segment carries neither the
        // FIN nor PSH (more data follows it).
        //
        // SACK blocks give way first, down to none, before a segment is
        // cut below half a segment's worth: with a tiny MSS (a peer may
        // announce 64) a full set of blocks would leave a few bytes a
        // segment, thousands of segments for one window (found by fuzzing).
        let room =
            |repr: &TcpRepr| (self.path.peer_mss + HEADER_LEN).saturating_sub(repr.header_len());
        let want = len.min(self.mss() / 2);
        while room(&repr) < want {
            let Some(last) = repr.sack_ranges.iter_mut().rev().find(|r| r.is_some()) else {
                break;
            };
            *last = None;
        }
        let room = room(&repr);
        // With segmentation offload, as many whole segments of `room`
        // bytes as `len` holds go as one super-segment; the device cuts
        // it, and copies this header (options too) into every piece,
        // leaving FIN and PSH on the last only.
        let whole = if self.path.segmentation > 0 && !dsack_pending && room > 0 && len >= 2 * room {
            len / room * room
        } else {
            room
        };
        let shortened = len > whole && whole > 0;
        let (len, send_fin) = if shortened {
            repr.flags.remove(TcpFlags::FIN);
            repr.flags.remove(TcpFlags::PSH);
            (whole, false)
        } else {
            (len, send_fin)
        };
        let segment_size = if len > room { room } else { 0 };
        repr.payload_len = len;
        let end = seq + len + usize::from(send_fin);
        if self.snd.nxt < end || seq == self.snd.nxt {
            self.snd.nxt = end;
        }
        if self.snd.una == self.snd.max {
            // Nothing was outstanding: the user timeout (RFC 5482) counts
            // from now, not from the last ACK, however long ago.
            self.timers.progress_at = now;
        }
        if self.snd.max < end {
            self.snd.max = end;
        }
        if len < self.mss() && !shortened {
            self.snd.sml = end;
        }
        self.on_data_sent(now, seq, end, retransmission, segment_size);
        let segments = if segment_size > 0 {
            len.div_ceil(segment_size)
        } else {
            1
        };
        if retransmission {
            self.stats.retransmits += segments as u64;
        } else if self.rtt_probe.is_none() && !self.opts.ts_ok {
            self.rtt_probe = Some((end, now));
        }
        if self.timers.rto.is_none() {
            self.timers.rto = Some(now + self.rtt.rto());
        }
        if !retransmission || self.rec.in_recovery() {
            self.schedule_tlp(now);
        }
        self.stats.bytes_sent += len as u64;
        self.last_data_sent = now;
        self.finish_output(&repr);
        // The segments on the wire.
        self.stats.segs_out += segments as u64 - 1;
        Some(Outgoing {
            repr,
            payload_offset: offset,
            segment_size: segment_size as u16,
        })
    }

    /// `[seq, end)` of the sequence space went out, in segments of
    /// `segment_size` bytes if a super-segment (0 if one segment): RACK
    /// records each segment, as the peer's SACK blocks will speak of them,
    /// and in fast recovery it is spent from PRR's budget.
    fn on_data_sent(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        end: SeqNumber,
        retransmission: bool,
        segment_size: usize,
    ) {
        let mut segments = 0;
        let mut at = seq;
        while at < end {
            let next = if segment_size > 0 && distance(at, end) > segment_size {
                at + segment_size
            } else {
                end
            };
            self.rec.rack.on_sent(at, next, now, retransmission);
            segments += 1;
            at = next;
        }
        if let Some(rate) = self.pacing_rate() {
            let mss = self.mss();
            self.path.pacer.on_sent(now, distance(seq, end), rate, mss);
        }
        if retransmission {
            self.note_retransmission(now, seq, segments);
        }
        if self.opts.sack_ok && self.rec.in_recovery() {
            let len = distance(seq, end);
            self.rec.prr.on_sent(len);
            self.rec.prr_budget = self.rec.prr_budget.saturating_sub(len);
        }
    }

    /// The rate data is paced at, in bytes per second, if pacing is on
    /// and an RTT is known ([`crate::transport::tcp::pacing`]).
    pub(super) fn pacing_rate(&self) -> Option<u64> {
        if let Some(rate) = self.cc.pacing_rate() {
            return Some(rate);
        }
        if !self.config.pacing {
            return None;
        }
        let srtt = self.rtt.srtt()?;
        Some(window_rate(self.cc.cwnd(), srtt, self.cc.in_slow_start()))
    }

    /// The most new data one segment handed to the device carries: one
    /// MSS, or with segmentation offload as many whole segments as a
    /// super-segment holds, fewer with pacing on: about a millisecond's
    /// worth at the pacing rate, at least two, as Linux sizes its TSO
    /// bursts (`tcp_tso_autosize`), so that pacing still spreads them.
    pub(super) fn send_quantum(&self) -> usize {
        /// An IPv4 header without options, and the longest TCP header.
        const HEADERS: usize = 20 + 60;
        let mss = self.mss();
        let Some(room) = self.path.segmentation.checked_sub(HEADERS) else {
            return mss;
        };
        let mut segments = room / mss;
        if let Some(rate) = self.pacing_rate() {
            let per_ms = usize::try_from(rate / 1000).unwrap_or(usize::MAX);
            segments = segments.min((per_ms / mss).max(2));
        }
        segments.max(1) * mss
    }

    /// Whether pacing lets a data segment out at `now`.
    pub(super) fn pacer_ready(&self, now: Instant) -> bool {
        self.pacing_rate().is_none() || self.path.pacer.ready(now)
    }

    pub(super) fn unsent_data(&self) -> usize {
        // Data from SND.NXT to the end of the send buffer.
        let sent =
            distance(self.snd.una, self.snd.nxt).saturating_sub(usize::from(self.snd.syn_unacked));
        self.snd.buf.len().saturating_sub(sent)
    }

    pub(super) fn fin_pending(&self) -> bool {
        // The FIN is due once all data is sent, and not yet sent at this
        // position (after go-back-N it is resent). Only in the states where
        // it is unacknowledged (RFC 9293 §3.3.2): once acknowledged
        // (FIN-WAIT-2, TIME-WAIT) SND.NXT equals this position again.
        self.snd.fin_queued
            && matches!(
                self.state,
                State::FinWait1 | State::Closing | State::LastAck
            )
            && self.unsent_data() == 0
            && {
                let fin = self.snd.una + self.snd.buf.len();
                self.snd.nxt == fin
            }
    }

    /// Octets the congestion window lets out now, whatever the peer's
    /// window: in fast recovery with SACK, PRR's budget (RFC 6937) if it
    /// allows a whole segment.
    pub(super) fn send_window_room(&self) -> usize {
        if self.opts.sack_ok && self.rec.in_recovery() && self.cc.wants_prr() {
            // Spent in whole segments: a remainder waits for the next
            // ACK's budget rather than going out as a runt.
            let budget = self.rec.prr_budget;
            return if budget >= self.mss() { budget } else { 0 };
        }
        let in_flight = if self.opts.sack_ok {
            // Neither SACKed nor lost, by RACK's reckoning.
            self.rec.rack.pipe()
        } else if self.rec.in_recovery() {
            // NewReno: each duplicate ACK is a segment that left the network.
            distance(self.snd.una, self.snd.nxt)
                .saturating_sub(self.rec.dupacks as usize * self.mss())
        } else {
            distance(self.snd.una, self.snd.nxt)
        };
        // Limited transmit (RFC 3042): each of the first two duplicate ACKs
        // lets one new segment out beyond the congestion window, so a small
        // window still produces the three duplicates fast retransmit needs.
        // With SACK, `pipe` already leaves out what the duplicates SACKed.
        let limited = if !self.rec.in_recovery() && !self.opts.sack_ok {
            self.rec.dupacks.min(2) as usize * self.mss()
        } else {
            0
        };
        (self.cc.cwnd() + limited).saturating_sub(in_flight)
    }

    /// Notes what the sender finds when it looks for new data: what is
    /// outstanding, and whether the congestion window (or, in recovery,
    /// PRR's share of it) leaves too little room for the next segment.
    fn note_cwnd_usage(&mut self, unsent: usize) {
        let limited = unsent > 0 && self.send_window_room() < unsent.min(self.mss());
        let in_flight = distance(self.snd.una, self.snd.nxt);
        self.snd
            .usage
            .on_send(limited, in_flight, self.snd.una, self.snd.nxt);
    }

    /// Usable window: the congestion window's room, within the peer's.
    pub(super) fn send_window(&self) -> usize {
        let peer_room = (self.snd.una + self.snd.wnd) - self.snd.nxt;
        self.send_window_room().min(peer_room.max(0) as usize)
    }

    pub(super) fn wants_to_send(&self) -> bool {
        match self.state {
            // The handshake is driven by `syn_due`, set from the timer.
            State::SynSent | State::SynReceived => self.pending.syn,
            State::Established
            | State::CloseWait
            | State::FinWait1
            | State::Closing
            | State::LastAck => {
                self.retransmit_due()
                    || (self.unsent_data() > 0
                        && self.send_window() > 0
                        && self.nagle_allows(self.unsent_data().min(self.send_window())))
                    || self.fin_pending()
            }
            _ => false,
        }
    }

    pub(super) fn nagle_allows(&self, len: usize) -> bool {
        let mss = self.mss();
        // Nagle and sender SWS avoidance hold back new data only (RFC 9293
        // §3.7.4, §3.8.6.2.1): data resent after a timeout (go-back-N,
        // SND.NXT below the highest sent) goes as soon as the window allows,
        // or a lost small segment — the outstanding one Minshall's rule
        // waits for — would never be retransmitted.
        if len >= mss || self.config.nodelay || self.snd.nxt < self.snd.max {
            return true;
        }
        // All queued data fits: send it if no small segment is
        // outstanding (Minshall) — or if the FIN follows it.
        let all = len >= self.unsent_data();
        if !all {
            // Receiver-side SWS: the peer's window limits us to a small
            // piece; wait for it to open unless it is at least half its max.
            return len >= self.snd.max_wnd / 2 && len > 0;
        }
        self.snd.fin_queued || self.snd.sml <= self.snd.una
    }

    pub(super) fn window_to_advertise(&mut self) -> u16 {
        let mut edge = self.free_space_edge();
        // Never shrink the window (RFC 9293 §3.8.6.2.2), and do not move
        // the edge by less than min(buffer/2, MSS) (receiver SWS avoidance).
        if edge < self.rcv.adv {
            edge = self.rcv.adv;
        } else {
            let grow = distance(self.rcv.adv, edge);
            let threshold = (self.rcv.buf.capacity() / 2).min(self.path.our_mss);
            if grow < threshold && self.rcv.nxt < self.rcv.adv {
                edge = self.rcv.adv;
            }
        }
        let wnd = distance(self.rcv.nxt, edge);
        let scaled = (wnd >> self.rcv.wscale).min(65535);
        // Record what the peer may use: the scaled value, rounded down.
        self.rcv.adv = self.rcv.nxt + (scaled << self.rcv.wscale);
        scaled as u16
    }

    pub(super) fn base_repr(&mut self, now: Instant, seq: SeqNumber, flags: TcpFlags) -> TcpRepr {
        let syn = flags.contains(TcpFlags::SYN);
        let window_len = if syn {
            // Never scaled in a SYN (RFC 7323 §2.2).
            let w = self.rcv.buf.window().min(65535);
            self.rcv.adv = self.rcv.nxt + w;
            w as u16
        } else {
            self.window_to_advertise()
        };
        let ack_number = (self.state != State::SynSent).then_some(self.rcv.nxt);
        let mut repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq_number: seq,
            ack_number,
            flags,
            window_len,
            ..TcpRepr::default()
        };
        if syn {
            repr.max_seg_size = Some(self.path.our_mss.min(65535) as u16);
            let offer_all = self.state == State::SynSent;
            if self.config.sack && (offer_all || self.opts.sack_ok) {
                repr.sack_permitted = true;
            }
            if self.config.window_scaling && (offer_all || self.opts.wscale_ok) {
                repr.window_scale = Some(self.rcv.wscale);
            }
            if self.config.timestamps && (offer_all || self.opts.ts_ok) {
                repr.timestamp = Some((
                    self.ts_now(now),
                    if offer_all { 0 } else { self.opts.ts_recent },
                ));
            }
        } else {
            if self.opts.ts_ok {
                repr.timestamp = Some((self.ts_now(now), self.opts.ts_recent));
            }
            if self.opts.sack_ok && ack_number.is_some() {
                let mut ranges = [(0u64, 0u64); 3];
                let n = self.rcv.buf.sack_ranges(&mut ranges);
                let base = self.rcv.buf.next_expected();
                let mut slots = repr.sack_ranges.iter_mut();
                if let Some(d) = self.rcv.dsack.take()
                    && let Some(slot) = slots.next()
                {
                    *slot = Some(d);
                }
                for (slot, (start, end)) in slots.zip(&ranges[..n]) {
                    let left = self.rcv.nxt + (start - base) as usize;
                    let right = self.rcv.nxt + (end - base) as usize;
                    *slot = Some((left, right));
                }
            }
        }
        if let Some(a) = ack_number {
            self.rcv.last_ack_sent = a;
        }
        repr
    }

    pub(super) fn finish_output(&mut self, repr: &TcpRepr) {
        self.stats.segs_out += 1;
        if repr.ack_number.is_some() {
            self.pending.ack = false;
            self.timers.delack = None;
            self.pending.unacked_segs = 0;
        }
    }
}
