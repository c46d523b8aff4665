//! Segment arrival (RFC 9293 §3.10.7): the handshake, the acceptability
//! tests, RST and SYN processing with RFC 5961's protections, the ACK
//! field (with SACK, RTT samples and the window update), data and FIN;
//! and ICMP errors about our segments (RFC 5927, RFC 1191).

use bytes::{Buf, Bytes};

use crate::internet::IcmpErrorKind;
use crate::internet::icmpv4::DstUnreachable;
use crate::time::{Duration, Instant};
use crate::transport::tcp::congestion::{Ack, Delivered};
use crate::transport::tcp::scoreboard::NO_SACK;
use crate::transport::tcp::segment::{TcpFlags, TcpRepr};
use crate::transport::tcp::seq::SeqNumber;

use super::types::{DEFAULT_MSS, Handled, MAX_WSCALE, MemoryPressure, PAWS_IDLE, State, TcpError};
use super::{Connection, distance};

impl Connection {
    /// Processes a segment for this connection. `payload` keeps an
    /// allocation of `truesize` bytes alive (the received frame's
    /// [`crate::buf::PacketBuf::truesize`]), which is what storing it costs.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        mut payload: Bytes,
        truesize: usize,
    ) -> Handled {
        self.stats.segs_in += 1;
        match self.state {
            State::Closed => Handled::Closed,
            State::SynSent => self.handle_syn_sent(now, seg),
            // The payload goes down by reference and is taken where it is
            // kept: a buffer handle moved from call to call right after it
            // was made waits for the stores that made it.
            _ => self.handle_synchronized(now, seg, &mut payload, truesize),
        }
    }

    pub(super) fn handle_syn_sent(&mut self, now: Instant, seg: &TcpRepr) -> Handled {
        // First: the ACK (RFC 9293 §3.10.7.3).
        if let Some(ack) = seg.ack_number
            && (ack <= self.snd.iss || self.snd.max < ack)
        {
            if seg.flags.contains(TcpFlags::RST) {
                return Handled::Ok;
            }
            return Handled::Reset { seq: ack };
        }
        if seg.flags.contains(TcpFlags::RST) {
            if seg.ack_number.is_some() {
                self.fail(TcpError::ConnectionRefused);
                return Handled::Closed;
            }
            return Handled::Ok;
        }
        if !seg.flags.contains(TcpFlags::SYN) {
            return Handled::Ok;
        }
        self.take_syn_options(now, seg);
        self.rcv.irs = seg.seq_number;
        self.rcv.nxt = seg.seq_number + 1;
        self.rcv.adv = self.rcv.nxt;
        if let Some(ack) = seg.ack_number {
            // Our SYN is acknowledged: established.
            self.on_syn_acked(now, ack, seg, usize::from(seg.window_len));
            self.state = State::Established;
            self.pending.ack = true;
            log::debug!("{} -> {}: established (active)", self.local, self.remote);
        } else {
            // Simultaneous open (RFC 9293 §3.5, figure 8).
            self.state = State::SynReceived;
            self.snd.nxt = self.snd.iss;
            self.snd.wnd = usize::from(seg.window_len);
            self.snd.wl1 = seg.seq_number;
            self.pending.syn = true;
        }
        Handled::Ok
    }

    /// Records the options of the peer's SYN and decides what is in use.
    pub(super) fn take_syn_options(&mut self, now: Instant, syn: &TcpRepr) {
        self.path.syn_mss = syn
            .max_seg_size
            .map_or(DEFAULT_MSS, usize::from)
            .clamp(64, self.path.our_mss);
        self.path.peer_mss = self.path.syn_mss.min(self.path.pmtu.mtu() - 40);
        // Window scaling only if both sides offer it (RFC 7323 §2.2).
        self.opts.wscale_ok = self.config.window_scaling && syn.window_scale.is_some();
        if self.opts.wscale_ok {
            self.snd.wscale = syn.window_scale.unwrap_or(0).min(MAX_WSCALE);
        } else {
            self.snd.wscale = 0;
            self.rcv.wscale = 0;
        }
        self.opts.ts_ok = self.config.timestamps && syn.timestamp.is_some();
        if let Some((tsval, _)) = syn.timestamp.filter(|_| self.opts.ts_ok) {
            self.opts.ts_recent = tsval;
            self.opts.ts_recent_at = now;
        }
        self.opts.sack_ok = self.config.sack && syn.sack_permitted;
        self.cc.set_mss(self.mss());
    }

    /// Our SYN is acknowledged by `seg`. `window` is the peer's window in
    /// bytes (unscaled in a SYN-ACK, RFC 7323 §2.2).
    pub(super) fn on_syn_acked(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        seg: &TcpRepr,
        window: usize,
    ) {
        self.snd.syn_unacked = false;
        self.snd.una = ack;
        if self.snd.nxt < ack {
            self.snd.nxt = ack;
        }
        self.snd.wnd = window;
        self.snd.max_wnd = self.snd.max_wnd.max(self.snd.wnd);
        self.snd.wl1 = seg.seq_number;
        self.snd.wl2 = ack;
        self.snd.sml = ack;
        self.rec.on_synchronized(self.snd.iss);
        // RTT of the handshake, unless the SYN was retransmitted (Karn).
        if self.timers.retries == 0 {
            if let Some((_, sent)) = self.rtt_probe {
                self.rtt.sample(now - sent);
            }
        } else {
            // RFC 6298 §5.7: the SYN (or SYN-ACK) was retransmitted, so the
            // RTO is at least 3 s as data transfer begins.
            self.rtt.apply_syn_loss_fallback();
        }
        self.rtt_probe = None;
        self.timers.retries = 0;
        self.rtt.reset_backoff();
        self.timers.rto = None;
        self.timers.progress_at = now;
        self.timers.keepalive = self.config.keepalive.map(|d| now + d);
    }

    pub(super) fn rcv_wnd(&self) -> usize {
        let adv = self.rcv.adv - self.rcv.nxt;
        (adv.max(0) as usize).max(self.rcv.buf.window())
    }

    /// RFC 9293 §3.10.7.4, first check: is the segment in the window?
    pub(super) fn acceptable(&self, seg: &TcpRepr) -> bool {
        let len = seg.segment_len();
        // A RST must fall in the window we advertised (RFC 5961 §3.2), not
        // in the larger free space data is accepted into: that would widen
        // the range a blind attacker has to hit.
        let wnd = if seg.flags.contains(TcpFlags::RST) {
            (self.rcv.adv - self.rcv.nxt).max(0) as usize
        } else {
            self.rcv_wnd()
        };
        let seq = seg.seq_number;
        let in_window = |s: SeqNumber| self.rcv.nxt <= s && s < self.rcv.nxt + wnd;
        match (len, wnd) {
            (0, 0) => seq == self.rcv.nxt,
            (0, _) => in_window(seq),
            (_, 0) => false,
            (_, _) => in_window(seq) || in_window(seq + (len - 1)),
        }
    }

    /// Whether `seg` would complete this passive open's handshake: an
    /// acceptable segment acknowledging our SYN-ACK (RFC 9293 §3.10.7.4,
    /// fifth), or the SYN-ACK of a simultaneous open. A blind segment with
    /// the wrong numbers would not.
    pub fn completes_handshake(&self, seg: &TcpRepr) -> bool {
        if self.state != State::SynReceived || seg.flags.contains(TcpFlags::RST) {
            return false;
        }
        let Some(ack) = seg.ack_number else {
            return false;
        };
        if !(self.snd.una < ack && ack <= self.snd.max) {
            return false;
        }
        if seg.flags.contains(TcpFlags::SYN) {
            seg.seq_number + 1 == self.rcv.nxt
        } else {
            self.acceptable(seg)
        }
    }

    pub(super) fn handle_synchronized(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        payload: &mut Bytes,
        truesize: usize,
    ) -> Handled {
        let rst = seg.flags.contains(TcpFlags::RST);
        // PAWS (RFC 7323 §5.3 R1).
        if self.opts.ts_ok
            && !rst
            && let Some((tsval, _)) = seg.timestamp
            && (tsval.wrapping_sub(self.opts.ts_recent) as i32) < 0
            && now - self.opts.ts_recent_at < PAWS_IDLE
            && !self.disordered_ack(seg, tsval)
        {
            self.stats.rejected += 1;
            self.ack_invalid(now, seg);
            // A late original whose retransmission arrived first fails
            // PAWS: its D-SACK is how the sender learns the
            // retransmission was needless (Linux's `tcp_send_dupack`).
            self.report_duplicate(seg);
            return Handled::Ok;
        }
        // The peer's SYN again in SYN-RECEIVED (RFC 9293 §3.5). It lies
        // left of the window, so it is recognised before the window test:
        // alone, it is a retransmission because our SYN-ACK was lost, and
        // gets the SYN-ACK again (as Linux does); acknowledging our SYN, it
        // is the SYN-ACK of a simultaneous open, which completes the
        // handshake (figure 8, line 6).
        if self.state == State::SynReceived
            && !rst
            && seg.flags.contains(TcpFlags::SYN)
            && seg.seq_number + 1 == self.rcv.nxt
        {
            match seg.ack_number {
                None => {
                    self.pending.syn = true;
                    return Handled::Ok;
                }
                Some(ack) if self.snd.una < ack && ack <= self.snd.max => {
                    // The window of a SYN is never scaled (RFC 7323 §2.2).
                    self.on_syn_acked(now, ack, seg, usize::from(seg.window_len));
                    self.state = if self.snd.fin_queued {
                        State::FinWait1
                    } else {
                        State::Established
                    };
                    return Handled::Ok;
                }
                Some(_) => {}
            }
        }
        if !self.acceptable(seg) {
            self.stats.rejected += 1;
            if seg.flags.contains(TcpFlags::SYN) && !rst {
                // RFC 5961 §4.2: a SYN gets a challenge ACK wherever it
                // falls (under the challenge ACK limit), as in the window.
                self.challenge_ack(now);
            } else if !rst {
                self.ack_invalid(now, seg);
                self.report_duplicate(seg);
            }
            // A retransmitted FIN in TIME-WAIT restarts the timer.
            if self.state == State::TimeWait && seg.flags.contains(TcpFlags::FIN) {
                self.timers.time_wait = Some(now + self.config.msl * 2);
            }
            return Handled::Ok;
        }
        // RFC 1337: a RST does not end TIME-WAIT, where an old or forged
        // RST would otherwise assassinate it.
        if rst && self.state == State::TimeWait {
            return Handled::Ok;
        }
        // RST (RFC 5961 §3.2).
        if rst {
            if seg.seq_number == self.rcv.nxt {
                return match self.state {
                    State::SynReceived if self.error.is_none() => {
                        self.fail(TcpError::ConnectionRefused);
                        Handled::Closed
                    }
                    State::Closing | State::LastAck => {
                        self.enter_closed();
                        Handled::Closed
                    }
                    _ => {
                        self.fail(TcpError::ConnectionReset);
                        Handled::Closed
                    }
                };
            }
            self.challenge_ack(now);
            return Handled::Ok;
        }
        // SYN in a synchronized state (RFC 5961 §4.2).
        if seg.flags.contains(TcpFlags::SYN) {
            self.challenge_ack(now);
            return Handled::Ok;
        }
        let Some(ack) = seg.ack_number else {
            return Handled::Ok;
        };
        if self.state == State::SynReceived {
            if self.snd.una < ack && ack <= self.snd.max {
                let window = usize::from(seg.window_len) << self.snd.wscale;
                self.on_syn_acked(now, ack, seg, window);
                self.state = if self.snd.fin_queued {
                    State::FinWait1
                } else {
                    State::Established
                };
                log::debug!("{} <- {}: established (passive)", self.local, self.remote);
            } else {
                return Handled::Reset { seq: ack };
            }
        }
        if !self.process_ack(now, seg, ack) {
            return Handled::Ok;
        }
        if self.state == State::Closed {
            return Handled::Closed;
        }
        // Keep-alive: the peer is alive.
        self.timers.keepalive_sent = 0;
        self.timers.keepalive = self
            .config
            .keepalive
            .filter(|_| self.keepalive_applies())
            .map(|d| now + d);

        // Segment text (§3.10.7.4, seventh).
        if seg.payload_len > 0 {
            // New data for a connection the application has closed can
            // never be read: reset, as RFC 1122 §4.2.2.13 allows and
            // Linux does (TCPAbortOnData), so the peer stops sending
            // into the void instead of filling our buffer until the
            // FIN-WAIT-2 timeout.
            if self.closed_by_user
                && matches!(self.state, State::FinWait1 | State::FinWait2)
                && seg.seq_number + seg.payload_len > self.rcv.nxt
            {
                log::debug!("data after close: abort");
                self.stats.aborts_on_data += 1;
                self.abort();
                return Handled::Closed;
            }
            match self.state {
                State::Established | State::FinWait1 | State::FinWait2 => {
                    self.receive_data(now, seg, payload, truesize);
                }
                _ => {}
            }
        }
        // FIN (eighth).
        if seg.flags.contains(TcpFlags::FIN) {
            self.rcv.fin_seq = Some(seg.seq_number + seg.payload_len);
            self.pending.ack = true;
        }
        self.maybe_take_fin(now);
        if self.state == State::Closed {
            Handled::Closed
        } else {
            Handled::Ok
        }
    }

    /// Answers an unacceptable segment with an ACK (RFC 9293 §3.10.7.4),
    /// at most one per [`TcpConfig::invalid_ack_interval`] unless the
    /// segment carries data, as Linux limits them (`tcp_invalid_ratelimit`,
    /// `tcp_oow_rate_limited`): forged or looping pure ACKs and SYNs would
    /// otherwise be answered one for one, which reflects traffic at a
    /// victim and sustains ACK storms between confused peers. Data and FIN
    /// are exempt: a spurious retransmission needs its (D-SACK) answer, a
    /// retransmitted FIN its ACK, and neither loops.
    pub(super) fn ack_invalid(&mut self, now: Instant, seg: &TcpRepr) {
        // Data or a FIN (Linux: end_seq != seq), but not a SYN.
        let data = seg.segment_len() > 0 && !seg.flags.contains(TcpFlags::SYN);
        let limited = self
            .invalid_ack_at
            .is_some_and(|t| now - t < self.config.invalid_ack_interval);
        if data || !limited {
            self.pending.ack = true;
            if !data {
                self.invalid_ack_at = Some(now);
            }
        } else {
            self.stats.invalid_acks_limited += 1;
        }
    }

    /// Data of `seg` already received (a spurious retransmission, most
    /// often) is reported in a D-SACK block (RFC 2883 §4), as for data
    /// partly old in `receive_data`.
    fn report_duplicate(&mut self, seg: &TcpRepr) {
        if self.opts.sack_ok && seg.payload_len > 0 && seg.seq_number < self.rcv.nxt {
            let end = seg.seq_number + seg.payload_len;
            let end = if self.rcv.nxt < end {
                self.rcv.nxt
            } else {
                end
            };
            self.rcv.dsack = Some((seg.seq_number, end));
        }
    }

    /// A pure duplicate ACK that failed PAWS only because the path
    /// reordered it: it acknowledges SND.UNA, sits at RCV.NXT, changes no
    /// window, and its timestamp is at most one RTO older than the
    /// newest. RFC 7323 §5.3 would drop it and its SACK blocks with it;
    /// Linux's `tcp_disordered_ack` lets it through, as here: such an ACK
    /// can move nothing a newer one has not.
    fn disordered_ack(&self, seg: &TcpRepr, tsval: u32) -> bool {
        let pure = seg.payload_len == 0
            && !seg
                .flags
                .intersects(TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST);
        let replay_ms = self.rtt.rto().as_millis();
        pure && seg.seq_number == self.rcv.nxt
            && seg.ack_number == Some(self.snd.una)
            && (usize::from(seg.window_len) << self.snd.wscale) == self.snd.wnd
            && u128::from(self.opts.ts_recent.wrapping_sub(tsval)) <= replay_ms
    }

    pub(super) fn challenge_ack(&mut self, now: Instant) {
        if self.challenge.try_take(now) {
            self.stats.challenge_acks += 1;
            self.pending.ack = true;
        } else {
            self.stats.challenge_acks_limited += 1;
        }
    }

    /// The ACK field (§3.10.7.4, fifth). Returns false if the segment is to
    /// be dropped.
    pub(super) fn process_ack(&mut self, now: Instant, seg: &TcpRepr, ack: SeqNumber) -> bool {
        // Acks something not yet sent: ACK and drop.
        if self.snd.max < ack {
            self.ack_invalid(now, seg);
            return false;
        }
        // Too old (RFC 5961 §5.2).
        if ack < self.snd.una - self.snd.max_wnd.min(1 << 30) {
            self.challenge_ack(now);
            return false;
        }
        self.timers.probes_unanswered = 0;
        // The segment is acceptable and so is its ACK: only now may its
        // timestamp become TS.Recent (RFC 7323 §4.3 rule 3, in the order
        // Linux applies it). Taken before the ACK was validated, a blind
        // in-window segment with a far-future timestamp would make every
        // later segment of the real peer fail PAWS.
        if self.opts.ts_ok
            && let Some((tsval, _)) = seg.timestamp
            && (tsval.wrapping_sub(self.opts.ts_recent) as i32) >= 0
            && seg.seq_number <= self.rcv.last_ack_sent
        {
            self.opts.ts_recent = tsval;
            self.opts.ts_recent_at = now;
        }
        let window = usize::from(seg.window_len) << self.snd.wscale;
        if self.ack_is_quiet(seg, ack) {
            // What the full processing below would still do: the
            // scoreboard keeps its base at SND.UNA, and a D-SACK round
            // SND.UNA has passed is over. (The reordering timer that loss
            // detection would disarm is already off: the ACK that brought
            // SND.UNA to SND.MAX disarmed it.)
            if self.opts.sack_ok {
                self.rec.scoreboard.on_ack(ack, NO_SACK, self.snd.max);
                self.rec.rack.on_snd_una(self.snd.una);
            }
            self.update_send_window(seg, ack, window);
            return true;
        }
        let window_changed = window != self.snd.wnd;
        let sack: [(SeqNumber, SeqNumber); 3] = {
            let mut out = [(SeqNumber(0), SeqNumber(0)); 3];
            for (o, r) in out.iter_mut().zip(seg.sack_ranges.iter()) {
                if let Some(r) = r {
                    *o = *r;
                }
            }
            out
        };
        let n_sack = seg.sack_ranges.iter().filter(|r| r.is_some()).count();
        let mut newly_sacked = 0;
        let mut dsack = false;
        if self.opts.sack_ok && n_sack > 0 {
            self.stats.sacks_received += n_sack as u64;
            let info =
                self.rec
                    .scoreboard
                    .on_ack(ack, sack[..n_sack].iter().copied(), self.snd.max);
            newly_sacked = info.newly_sacked;
            dsack = info.dsack;
            if dsack {
                self.stats.dsacks_received += 1;
            }
        } else if self.opts.sack_ok {
            self.rec.scoreboard.on_ack(ack, NO_SACK, self.snd.max);
        }
        // What this ACK delivered, segment by segment (RFC 8985 §6.2
        // steps 1-3). A retransmission's delivery counts for RACK only if
        // the echo shows it was the retransmission that arrived.
        let sacked = if self.opts.sack_ok {
            &sack[usize::from(dsack)..n_sack]
        } else {
            &[]
        };
        let echo = seg.timestamp.filter(|_| self.opts.ts_ok).map(|(_, e)| e);
        let ts_offset = self.opts.ts_offset;
        let prior_flight = self.flight_size();
        let delivery = self
            .rec
            .rack
            .on_ack(ack, sacked, self.snd.max, now, |sent| {
                echo.is_some_and(|e| {
                    let ts = (sent.total_millis() as u32).wrapping_add(ts_offset);
                    (e.wrapping_sub(ts) as i32) < 0
                })
            });

        let una_advanced = self.snd.una < ack;
        let after_timeout = self.after_timeout();
        if una_advanced {
            self.on_new_ack(now, seg, ack, delivery.rtt);
        } else if ack == self.snd.una
            && self.snd.una != self.snd.max
            && ((seg.payload_len == 0
                && !seg.flags.intersects(TcpFlags::SYN | TcpFlags::FIN)
                && !window_changed)
                || newly_sacked > 0)
        {
            // A duplicate ACK (RFC 5681 §2; RFC 6675 §2 with SACK).
            self.stats.dup_acks += 1;
            self.rec.dupacks += 1;
            self.on_dupack(now);
        }
        self.detect_spurious(now, dsack.then_some(sack[0]));
        self.detect_spurious_by_echo(now, ack, echo);
        self.detect_spurious_timeout(now, after_timeout, delivery.first_original);
        let duplicate =
            !una_advanced && newly_sacked == 0 && seg.payload_len == 0 && !window_changed && !dsack;
        self.detect_tlp_repair(now, ack, dsack.then_some(sack[0]), duplicate, prior_flight);
        let mut newly_lost = 0;
        if self.opts.sack_ok {
            // RFC 8985 §6.2 step 4: a round SND.UNA has passed is over
            // before this ACK's D-SACK may begin another.
            self.rec.rack.on_snd_una(self.snd.una);
            if dsack && !self.dsack_of_probe(sack[0]) {
                self.rec.rack.on_dsack(self.snd.max);
            }
            newly_lost = self.detect_losses(now, prior_flight);
            if self.rec.in_recovery() {
                self.schedule_tlp(now);
                // RFC 6937 §3: what may be sent until the next ACK.
                let safe = una_advanced && newly_lost == 0;
                self.rec.prr_budget =
                    self.rec
                        .prr
                        .on_ack(delivery.bytes, self.rec.rack.pipe(), self.mss(), safe);
            }
        }

        if delivery.bytes > 0 || newly_lost > 0 {
            self.cc.on_delivery(&Delivered {
                now,
                bytes: delivery.bytes,
                lost: newly_lost,
                in_flight: self.rec.rack.pipe(),
                total: self.rec.rack.delivered(),
                rate: delivery.rate,
                rtt: delivery.rtt,
            });
        }

        self.update_send_window(seg, ack, window);
        true
    }

    /// The window update of an acceptable ACK (RFC 9293 §3.10.7.4, the
    /// SND.WL1/WL2 rule): `window` is the segment's, scaled.
    fn update_send_window(&mut self, seg: &TcpRepr, ack: SeqNumber, window: usize) {
        if self.snd.wl1 < seg.seq_number || (self.snd.wl1 == seg.seq_number && self.snd.wl2 <= ack)
        {
            self.snd.wnd = window;
            self.snd.max_wnd = self.snd.max_wnd.max(window);
            self.snd.wl1 = seg.seq_number;
            self.snd.wl2 = ack;
            if window > 0 {
                // Try to send at once; if the window is still too small,
                // `poll_new_data` arms the persist timer again.
                self.timers.persist = None;
            }
            // The probes' backoff ends only when the window admits the
            // next segment, as Linux's `tcp_ack_probe` judges it: a peer
            // answering every probe with a window of a few bytes must not
            // keep an orphan alive by restarting its count each time.
            let room = (self.snd.una + window) - self.snd.nxt;
            if room >= self.unsent_data().min(self.mss()).max(1) as i32 {
                self.timers.persist_backoff = 0;
            }
        }
    }

    /// SND.UNA advances to `ack`. `segment_rtt` is the round-trip time
    /// of the newest segment sent once that this ACK delivered.
    pub(super) fn on_new_ack(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        ack: SeqNumber,
        segment_rtt: Option<Duration>,
    ) {
        let mut acked = distance(self.snd.una, ack);
        let fin_seq = self.fin_sent_seq();
        let fin_acked = fin_seq.is_some_and(|f| f < ack);
        if fin_acked {
            acked -= 1;
        }
        let data_acked = acked.min(self.snd.buf.len());
        self.snd.buf.consume(data_acked);
        if self.memory_pressure != MemoryPressure::Normal {
            self.snd.buf.release_if_empty();
        }
        self.stats.bytes_acked += data_acked as u64;
        let after_timeout = self.after_timeout();
        self.snd.una = ack;
        if after_timeout && !self.recovering() {
            // Everything outstanding at the timeout is delivered: the loss
            // episode is over for the controller too.
            self.cc.on_recovery_exit(now);
        }
        if self.snd.nxt < ack {
            self.snd.nxt = ack;
        }
        self.rec.dupacks = 0;
        self.rec.rto_head = false;
        self.timers.retries = 0;
        self.timers.progress_at = now;

        // RTT: the newest segment delivered that was sent once, timed in
        // microseconds (Karn's rule; as Linux, in preference to the echo,
        // which a middlebox may corrupt); else the timestamp echo (RFC
        // 7323 §4.1), which also times retransmissions; else the timed
        // segment (the SYN).
        let mut sample = segment_rtt;
        if sample.is_some() {
            self.rtt_probe = None;
        } else if self.opts.ts_ok
            && let Some((_, tsecr)) = seg.timestamp
            && tsecr != 0
        {
            // Karn's rule for timestamps: an echo of a segment sent before
            // the last timeout measures the backoff, not the path (the
            // receiver echoes an old TS.Recent for a duplicate, RFC 7323
            // §4.3), and would inflate SRTT to seconds under heavy loss.
            let after_timeout = self
                .rec
                .rto_ts
                .is_none_or(|t| (tsecr.wrapping_sub(t) as i32) >= 0);
            let ms = self.ts_now(now).wrapping_sub(tsecr);
            if after_timeout && ms < 60_000 {
                sample = Some(Duration::from_millis(u64::from(ms)));
            }
        } else if let Some((end, sent)) = self.rtt_probe
            && end <= ack
        {
            sample = Some(now - sent);
            self.rtt_probe = None;
        }
        if let Some(rtt) = sample {
            self.rtt.sample(rtt);
        }
        // Karn (RFC 6298 §3, note after §5.7): only a valid sample (taken
        // above) collapses a backed-off RTO; the ACK of a retransmission
        // leaves it in force.
        self.rtt.on_new_ack();

        match self.rec.point {
            Some(point) if point <= ack => {
                // Full ACK: recovery ends (RFC 6582 §3.2 step 3; RFC 6675 §5).
                self.rec.exit();
                self.cc.on_recovery_exit(now);
            }
            Some(_) => {
                // Partial ACK: the next hole is lost too (RFC 6582 §3.2
                // step 3 partial); with SACK, RACK decides.
                if !self.opts.sack_ok {
                    self.rec.rtx_una = true;
                }
            }
            None => {
                let round_start = self.snd.round_end <= ack;
                if round_start {
                    self.snd.round_end = self.snd.nxt;
                }
                self.cc.on_ack(&Ack {
                    now,
                    acked: data_acked,
                    srtt: self.rtt.srtt(),
                    rtt: sample,
                    cwnd_limited: self
                        .snd
                        .usage
                        .limited(self.cc.cwnd(), self.cc.in_slow_start()),
                    round_start,
                });
            }
        }

        // The retransmission timer (RFC 6298 §5.2–5.3).
        self.rec.tlp_probes = 0;
        if self.snd.una == self.snd.max {
            self.timers.rto = None;
            self.timers.tlp = None;
            if self.snd.buf.is_empty() {
                self.rec.rack.release_idle();
            }
        } else {
            self.timers.rto = Some(now + self.rtt.rto());
            self.schedule_tlp(now);
        }

        if fin_acked {
            match self.state {
                State::FinWait1 => {
                    self.state = State::FinWait2;
                    self.arm_fin_wait2(now);
                }
                State::Closing => self.enter_time_wait(now),
                State::LastAck => self.enter_closed(),
                _ => {}
            }
        }
    }

    /// The sequence number of our FIN, if sent.
    pub(super) fn fin_sent_seq(&self) -> Option<SeqNumber> {
        if !self.snd.fin_queued {
            return None;
        }
        let fin = self.snd.una + self.snd.buf.len() + usize::from(self.snd.syn_unacked);
        (fin < self.snd.max).then_some(fin)
    }

    pub(super) fn receive_data(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        payload: &mut Bytes,
        truesize: usize,
    ) {
        // Trim to what we have room for: the offset space of the receive
        // buffer starts at IRS + 1.
        let rel = seg.seq_number - self.rcv.nxt;
        let skip = if rel < 0 { (-rel) as usize } else { 0 };
        // The offset of the first byte kept: old bytes (RFC 9293 §3.10.7.4,
        // "straddle the boundary") are skipped, and what follows them goes
        // at RCV.NXT, not where the segment began.
        let offset = self.rcv.buf.next_expected() + rel.max(0) as u64;
        if skip > 0 && self.opts.sack_ok {
            // Report the duplicate in a D-SACK block (RFC 2883 §4).
            let end = seg.seq_number + skip.min(payload.len());
            self.rcv.dsack = Some((seg.seq_number, end));
        }
        if skip >= payload.len() {
            self.pending.ack = true; // a pure duplicate: ACK it at once
            return;
        }
        if self.memory_pressure != MemoryPressure::Normal && self.shed_for_memory(rel > 0) {
            self.pending.ack = true;
            return;
        }
        let mut data = core::mem::take(payload);
        data.advance(skip);
        let r = self.rcv.buf.insert_pinned(offset, data, truesize);
        let advanced = r.new_in_order_bytes;
        self.rcv.nxt += advanced;
        self.stats.bytes_received += advanced as u64;
        if r.out_of_order {
            self.stats.out_of_order += 1;
            // Out of order: ACK at once so the sender sees the hole
            // (RFC 5681 §4.2), with SACK blocks.
            self.pending.ack = true;
        } else if r.fills_gap || r.duplicate || skip > 0 || r.beyond_window > 0 || r.dropped {
            // Filled (part of) a hole, or carried old bytes: ACK at once.
            self.pending.ack = true;
        } else {
            // Counted in full-sized segments' worth (RFC 5681 §4.2: an ACK
            // at least every second full-sized segment): a segment the
            // device coalesced from many (GRO, a TAP's large receive)
            // counts as all of them, so it is acknowledged at once, as
            // Linux does by comparing bytes with its receive MSS. The
            // measure is the MSS we announced, the most the peer may put
            // in one segment; what we may send (`mss()`, 536 if the
            // peer's SYN named none) says nothing of what it sends, and
            // counting by it would acknowledge every segment.
            let segments = (seg.payload_len / self.path.our_mss.max(1)).max(1);
            self.pending.unacked_segs = self
                .pending
                .unacked_segs
                .saturating_add(u32::try_from(segments).unwrap_or(u32::MAX));
            let full = seg.payload_len >= self.mss().min(self.path.our_mss);
            let pushed_small = !full && seg.flags.contains(TcpFlags::PSH);
            if self.pending.quickack > 0 {
                self.pending.quickack -= 1;
                self.pending.ack = true;
            } else if self.pending.unacked_segs >= 2 || pushed_small {
                self.pending.ack = true;
            } else if self.timers.delack.is_none() {
                self.timers.delack = Some(now + self.config.delayed_ack);
            }
        }
    }

    /// Under memory pressure: out-of-order data held is dropped first
    /// (Linux prunes its out-of-order queue the same way), and so is a new
    /// out-of-order segment; once memory is exhausted, any data is dropped
    /// unless nothing is held (so that every connection can make
    /// progress). Returns whether to drop the segment at hand; the peer
    /// sends it again.
    pub(super) fn shed_for_memory(&mut self, out_of_order: bool) -> bool {
        if self.rcv.buf.out_of_order_bytes() > 0 {
            self.stats.pruned_bytes += self.rcv.buf.out_of_order_bytes() as u64;
            self.rcv.buf.prune_out_of_order();
        }
        let drop = out_of_order
            || (self.memory_pressure == MemoryPressure::Exhausted && !self.rcv.buf.is_empty());
        if drop {
            self.stats.memory_drops += 1;
        }
        drop
    }

    pub(super) fn maybe_take_fin(&mut self, now: Instant) {
        let Some(fin) = self.rcv.fin_seq else { return };
        if self.rcv.fin_received || fin != self.rcv.nxt {
            return;
        }
        self.rcv.fin_received = true;
        self.rcv.nxt += 1;
        self.pending.ack = true;
        match self.state {
            State::SynReceived | State::Established => self.state = State::CloseWait,
            // Our FIN is not acknowledged yet (that would be FIN-WAIT-2).
            State::FinWait1 => self.state = State::Closing,
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    /// An ICMP error quoting a segment of ours that started at `seq`.
    ///
    /// Errors that don't quote a sequence number in `[SND.UNA, SND.MAX)`
    /// are ignored (RFC 5927 §4.1). While connecting, port and protocol
    /// unreachable are hard errors that refuse the connection (RFC 1122
    /// §4.2.3.9, as Linux does); in a synchronized state every error is
    /// soft and the connection carries on (RFC 5927 §4.2, RFC 5461).
    /// "Fragmentation needed" lowers the MSS to the path MTU (RFC 1191
    /// §6.3, with the limits of [`crate::transport::tcp::pmtu`]) and
    /// resends what was in flight (§6.5).
    pub fn on_icmp_error(&mut self, now: Instant, kind: IcmpErrorKind, seq: SeqNumber) {
        if !(self.snd.una <= seq && seq < self.snd.max) {
            return;
        }
        match kind {
            IcmpErrorKind::Unreachable(
                DstUnreachable::PortUnreachable | DstUnreachable::ProtoUnreachable,
            ) if self.state == State::SynSent => self.fail(TcpError::ConnectionRefused),
            IcmpErrorKind::FragmentationNeeded { mtu }
                if self.state.is_synchronized()
                    && self.path.pmtu.on_fragmentation_needed(
                        now,
                        usize::from(mtu),
                        self.rtt.srtt(),
                    ) =>
            {
                log::debug!(
                    "{} -> {}: path MTU {} (reported {mtu})",
                    self.local,
                    self.remote,
                    self.path.pmtu.mtu()
                );
                self.stats.pmtu_reductions += 1;
                if self.apply_path_mtu() && self.snd.una != self.snd.max {
                    // What was in flight was too big (RFC 1191 §6.5); the
                    // congestion window stays, as on Linux: no congestion.
                    self.go_back_n();
                }
            }
            IcmpErrorKind::FragmentationNeeded { .. } => self.stats.pmtu_reports_ignored += 1,
            _ => {}
        }
    }
}
