//! The connection's timers (RFC 9293 §3.8, RFC 6298): deadlines kept as
//! data, the earliest of which is [`Connection::poll_at`], and what
//! happens when each expires ([`Connection::on_timer`]). What a
//! retransmission timeout does to the data in flight is loss recovery's
//! business (`recovery`); here it only counts retries.

use crate::time::Instant;

use super::Connection;
use super::types::{State, TcpError};

/// Absolute deadlines, and the counts that go with them.
#[derive(Debug)]
pub(super) struct Timers {
    /// Retransmission timer (RFC 6298).
    pub(super) rto: Option<Instant>,
    /// Tail loss probe timer (RFC 8985 §7).
    pub(super) tlp: Option<Instant>,
    /// RACK's reordering timer (RFC 8985 §6.3).
    pub(super) reorder: Option<Instant>,
    /// Delayed ACK.
    pub(super) delack: Option<Instant>,
    /// Zero-window probe (persist) timer.
    pub(super) persist: Option<Instant>,
    /// Persist timer backoff: doublings so far.
    pub(super) persist_backoff: u32,
    /// Zero-window probes sent since the peer last answered.
    pub(super) probes_unanswered: u32,
    /// Next keep-alive probe.
    pub(super) keepalive: Option<Instant>,
    /// Keep-alive probes sent since the peer last answered.
    pub(super) keepalive_sent: u32,
    /// End of TIME-WAIT, or of an orphan's FIN-WAIT-2.
    pub(super) time_wait: Option<Instant>,
    /// When SND.UNA last advanced (or data was first outstanding): the
    /// user timeout runs from here.
    pub(super) progress_at: Instant,
    /// Retransmissions of the current SND.UNA (or of the SYN).
    pub(super) retries: u32,
}

impl Timers {
    pub(super) fn new(now: Instant) -> Timers {
        Timers {
            rto: None,
            tlp: None,
            reorder: None,
            delack: None,
            persist: None,
            persist_backoff: 0,
            probes_unanswered: 0,
            keepalive: None,
            keepalive_sent: 0,
            time_wait: None,
            progress_at: now,
            retries: 0,
        }
    }

    /// Stops every timer (the connection is closed).
    pub(super) fn stop_all(&mut self) {
        self.rto = None;
        self.tlp = None;
        self.reorder = None;
        self.delack = None;
        self.persist = None;
        self.keepalive = None;
        self.time_wait = None;
    }
}

impl Connection {
    /// The earliest instant this connection needs attention, `now` if it
    /// has something to send.
    pub fn poll_at(&self, now: Instant) -> Option<Instant> {
        if self.pending.rst || self.pending.ack || self.pending.probe || self.rec.probe_due() {
            return Some(now);
        }
        // Data to send, at once or when pacing lets it out. Data waiting
        // for the pacer counts even if the window is shut now: only
        // `poll_transmit` arms the persist timer for a shut window, and it
        // must run for that (found by review: a window closed while the
        // pacer held data back left `poll_at` at None for good).
        let ready = self.pacer_ready(now);
        let paced = if self.wants_to_send() {
            Some(if ready { now } else { self.path.pacer.next() })
        } else if !ready && self.unsent_data() > 0 && self.state.is_synchronized() {
            Some(self.path.pacer.next())
        } else {
            None
        };
        let t = &self.timers;
        [
            paced,
            t.rto,
            t.tlp,
            t.reorder,
            t.delack,
            t.persist,
            t.keepalive,
            t.time_wait,
            self.user_timeout_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(super) fn user_timeout_at(&self) -> Option<Instant> {
        let t = self.config.user_timeout?;
        // Not once closed: the connection that timed out keeps its unACKed
        // data, and an expired deadline would make `poll_at` say "now"
        // forever.
        (self.state != State::Closed && self.snd.una != self.snd.max)
            .then(|| self.timers.progress_at + t)
    }

    /// Handles every timer that has expired at `now`.
    pub fn on_timer(&mut self, now: Instant) {
        if self.timers.time_wait.is_some_and(|t| t <= now) {
            self.timers.time_wait = None;
            self.enter_closed();
            return;
        }
        if self.user_timeout_at().is_some_and(|t| t <= now) {
            self.fail(TcpError::TimedOut);
            return;
        }
        if self.timers.delack.is_some_and(|t| t <= now) {
            self.timers.delack = None;
            self.pending.ack = true;
        }
        if self.timers.rto.is_some_and(|t| t <= now) {
            self.on_rto(now);
        } else if self.timers.tlp.is_some_and(|t| t <= now) {
            self.timers.tlp = None;
            self.rec.tlp_due = true;
        }
        if self.timers.reorder.is_some_and(|t| t <= now) {
            self.detect_losses(now, self.flight_size());
        }
        if self.timers.persist.is_some_and(|t| t <= now) {
            self.timers.persist = None;
            // The peer answers probes while it lives; one that never does
            // is as dead as one that never acknowledges data.
            if self.timers.probes_unanswered >= self.config.max_retransmissions {
                self.fail(TcpError::TimedOut);
                return;
            }
            if self.closed_by_user && self.timers.persist_backoff > self.config.orphan_retries {
                log::debug!(
                    "{} -> {}: orphan in a zero window for {} probes: reset",
                    self.local,
                    self.remote,
                    self.timers.persist_backoff - 1
                );
                self.stats.orphan_timeouts += 1;
                self.abort_timed_out();
                return;
            }
            self.timers.probes_unanswered += 1;
            self.pending.probe = true;
            self.stats.window_probes += 1;
        }
        if self.timers.keepalive.is_some_and(|t| t <= now) {
            if self.timers.keepalive_sent >= self.config.keepalive_probes {
                self.fail(TcpError::TimedOut);
                return;
            }
            self.timers.keepalive_sent += 1;
            self.pending.probe = true;
            self.timers.keepalive = Some(now + self.config.keepalive_interval);
        }
    }

    pub(super) fn on_rto(&mut self, now: Instant) {
        self.timers.rto = None;
        match self.state {
            State::SynSent | State::SynReceived => {
                if self.stats.segs_out > 0 {
                    if self.timers.retries >= self.config.syn_retries {
                        self.fail(TcpError::TimedOut);
                        return;
                    }
                    self.timers.retries += 1;
                    self.stats.timeouts += 1;
                    // Back off, doubling (RFC 6298 §5.5); the 3 s of §5.7
                    // applies once the handshake completes.
                    self.rtt.on_timeout();
                    self.cc.on_handshake_loss();
                    self.rtt_probe = None;
                }
                self.snd.nxt = self.snd.iss;
                self.pending.syn = true;
                return;
            }
            State::Closed | State::TimeWait => return,
            _ => {}
        }
        if self.snd.una == self.snd.max {
            return;
        }
        if self.timers.retries >= self.config.max_retransmissions {
            self.fail(TcpError::TimedOut);
            return;
        }
        if self.closed_by_user && self.timers.retries >= self.config.orphan_retries {
            self.stats.orphan_timeouts += 1;
            self.abort_timed_out();
            return;
        }
        self.timers.retries += 1;
        self.stats.timeouts += 1;
        self.on_retransmit_timeout(now);
    }

    pub(super) fn arm_persist(&mut self, now: Instant) {
        if self.timers.persist.is_none() {
            let backoff = 1u32 << self.timers.persist_backoff.min(10);
            let t = (self.rtt.rto() * backoff).min(self.config.rtt.max_rto);
            self.timers.persist_backoff += 1;
            self.timers.persist = Some(now + t);
        }
    }
}
