//! Detecting lost retransmissions during SACK loss recovery.
//!
//! RFC 6675 retransmits each hole once per recovery: `HighRxt` only moves
//! forward, so a retransmission that is itself lost is repaired only by
//! the retransmission timeout, at least 200 ms and a collapsed congestion
//! window later. Under random loss that is most of the time lost: at 3%
//! loss, one retransmission in thirty. RACK (RFC 8985) finds such losses
//! by transmission time; this module applies the same rule to the
//! retransmissions of a recovery only, which is where RFC 6675 needs it:
//!
//! - every retransmission is logged in the order it was sent;
//! - when a retransmission is delivered (cumulatively or selectively
//!   acknowledged), every retransmission sent before it and still not
//!   delivered is lost (RFC 8985 §6.2 step 5, with the reordering window
//!   zero, as §6.2 step 4 allows in recovery when no reordering has been
//!   seen);
//! - so is a retransmission when data first sent after it has been SACKed
//!   (the same rule for new data, which has no log entry of its own).
//!
//! A lost retransmission is sent again before anything `NextSeg` picks,
//! and its bytes leave `pipe` until then. When the connection has seen
//! reordering (a D-SACK), a retransmission is declared lost only once a
//! quarter of the smoothed RTT has passed since it was sent (RFC 8985's
//! `reo_wnd` of `min_RTT / 4`, re-checked at each ACK rather than on a
//! timer of its own).
//!
//! The log is bounded ([`MAX_RECORDS`]); a retransmission pushed out of it
//! falls back to the retransmission timeout. It is cleared when recovery
//! ends and on a timeout.
//!
//! Not here: RACK for original transmissions (RFC 6675's `IsLost` and
//! early retransmit do that job) and RACK's reordering timer.

use std::collections::VecDeque;

use super::scoreboard::Scoreboard;
use super::seq::SeqNumber;
use crate::time::{Duration, Instant};

/// How many retransmissions of one recovery are tracked.
pub const MAX_RECORDS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    start: SeqNumber,
    end: SeqNumber,
    sent: Instant,
    /// SND.MAX when it was sent: data from here on was first sent later.
    high_data: SeqNumber,
    lost: bool,
}

/// The retransmissions of the current recovery, oldest first.
#[derive(Debug, Clone, Default)]
pub struct RetransmitLog {
    records: VecDeque<Record>,
    lost_bytes: usize,
}

impl Record {
    fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
}

impl RetransmitLog {
    /// An empty log.
    pub fn new() -> RetransmitLog {
        RetransmitLog::default()
    }

    /// Forgets everything (recovery ended, or a timeout).
    pub fn clear(&mut self) {
        self.records.clear();
        self.lost_bytes = 0;
    }

    /// Bytes of retransmissions found lost and not sent again yet: not in
    /// flight, whatever `pipe` says.
    pub fn lost_bytes(&self) -> usize {
        self.lost_bytes
    }

    /// Logs a retransmission of `[start, end)` sent at `now`, when the
    /// highest sequence sent was `high_data`. Sending again a range found
    /// lost replaces its record.
    pub fn on_retransmit(
        &mut self,
        start: SeqNumber,
        end: SeqNumber,
        high_data: SeqNumber,
        now: Instant,
    ) {
        if let Some(i) = self
            .records
            .iter()
            .position(|r| r.lost && start < r.end && r.start < end)
        {
            let r = self.records.remove(i).expect("index from position");
            self.lost_bytes -= r.len();
        }
        if self.records.len() == MAX_RECORDS
            && let Some(old) = self.records.pop_front()
            && old.lost
        {
            self.lost_bytes -= old.len();
        }
        self.records.push_back(Record {
            start,
            end,
            sent: now,
            high_data,
            lost: false,
        });
    }

    /// Updates the log after an ACK: drops what has been delivered and
    /// marks what is lost. `reo_wnd` is the reordering window (zero when
    /// no reordering has been seen). Returns how many retransmissions were
    /// newly found lost.
    pub fn on_ack(
        &mut self,
        snd_una: SeqNumber,
        scoreboard: &Scoreboard,
        now: Instant,
        reo_wnd: Duration,
    ) -> usize {
        // Drop what has been delivered, in one pass, noting where the most
        // recently sent delivered retransmission stood among the kept ones.
        let mut delivered: Option<usize> = None;
        let (mut kept, mut freed) = (0, 0);
        self.records.retain(|r| {
            let from = r.start.max(snd_una);
            let done =
                r.end <= snd_una || scoreboard.ranges().any(|(s, e)| s <= from && r.end <= e);
            if done {
                if r.lost {
                    freed += r.len();
                }
                delivered = Some(kept);
            } else {
                kept += 1;
            }
            !done
        });
        self.lost_bytes -= freed;
        let highest_sacked = scoreboard.highest_sacked();
        let mut newly_lost = 0;
        for (k, r) in self.records.iter_mut().enumerate() {
            if r.lost || now.saturating_duration_since(r.sent) < reo_wnd {
                continue;
            }
            // Records before index `delivered` (counted among the kept
            // ones) were sent before the delivered retransmission.
            let overtaken = delivered.is_some_and(|d| k < d);
            let new_data_sacked = highest_sacked.is_some_and(|h| r.high_data < h);
            if overtaken || new_data_sacked {
                r.lost = true;
                self.lost_bytes += r.len();
                newly_lost += 1;
            }
        }
        newly_lost
    }

    /// The oldest retransmission found lost, trimmed to what is not yet
    /// acknowledged, and at most `mss` bytes: what to send first.
    pub fn next_lost(&self, snd_una: SeqNumber, mss: usize) -> Option<(SeqNumber, usize)> {
        let r = self.records.iter().find(|r| r.lost)?;
        let start = r.start.max(snd_una);
        let len = ((r.end - start) as usize).min(mss);
        (len > 0).then_some((start, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tcp::scoreboard::NO_SACK;

    const MSS: usize = 1000;

    fn s(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// A scoreboard with SND.UNA `una`, SND.NXT `nxt` and SACK blocks.
    fn board(una: u32, nxt: u32, sacks: &[(u32, u32)]) -> Scoreboard {
        let mut b = Scoreboard::new();
        let blocks: Vec<(SeqNumber, SeqNumber)> =
            sacks.iter().map(|&(a, e)| (s(a), s(e))).collect();
        if blocks.is_empty() {
            b.on_ack(s(una), NO_SACK, s(nxt));
        } else {
            b.on_ack(s(una), blocks, s(nxt));
        }
        b
    }

    #[test]
    fn a_later_retransmission_delivered_means_an_earlier_one_is_lost() {
        let mut log = RetransmitLog::new();
        // Holes at 0, 2000 and 4000 of 10000 sent; all three retransmitted.
        log.on_retransmit(s(0), s(1000), s(10_000), t(1));
        log.on_retransmit(s(2000), s(3000), s(10_000), t(2));
        log.on_retransmit(s(4000), s(5000), s(10_000), t(3));
        // The second arrives (SACKed); the first has not: lost. The third
        // was sent after the second: not yet.
        let b = board(0, 10_000, &[(1000, 4000), (5000, 10_000)]);
        assert_eq!(log.on_ack(s(0), &b, t(4), Duration::ZERO), 1);
        assert_eq!(log.lost_bytes(), 1000);
        assert_eq!(log.next_lost(s(0), MSS), Some((s(0), 1000)));
        // Sending it again replaces the record.
        log.on_retransmit(s(0), s(1000), s(10_000), t(5));
        assert_eq!(log.lost_bytes(), 0);
        assert_eq!(log.next_lost(s(0), MSS), None);
        // The third arrives: the new copy of the first was sent after it,
        // so it is not lost yet.
        let b = board(0, 10_000, &[(1000, 10_000)]);
        assert_eq!(log.on_ack(s(0), &b, t(6), Duration::ZERO), 0);
        // Everything acknowledged: the log empties.
        let b = board(10_000, 10_000, &[]);
        assert_eq!(log.on_ack(s(10_000), &b, t(7), Duration::ZERO), 0);
        assert!(log.records.is_empty());
    }

    #[test]
    fn new_data_sacked_after_a_retransmission_means_it_is_lost() {
        let mut log = RetransmitLog::new();
        log.on_retransmit(s(0), s(1000), s(10_000), t(1));
        // Data up to 10 000 was sent before the retransmission: SACKs of it
        // say nothing.
        let b = board(0, 12_000, &[(1000, 10_000)]);
        assert_eq!(log.on_ack(s(0), &b, t(2), Duration::ZERO), 0);
        // Data sent after it is SACKed: the retransmission is lost.
        let b = board(0, 12_000, &[(1000, 11_000)]);
        assert_eq!(log.on_ack(s(0), &b, t(3), Duration::ZERO), 1);
        assert_eq!(log.next_lost(s(0), MSS), Some((s(0), 1000)));
    }

    #[test]
    fn reordering_window_delays_the_verdict() {
        let mut log = RetransmitLog::new();
        log.on_retransmit(s(0), s(1000), s(10_000), t(100));
        log.on_retransmit(s(2000), s(3000), s(10_000), t(101));
        let b = board(0, 10_000, &[(1000, 10_000)]);
        // Within 20 ms of sending: maybe only reordered.
        assert_eq!(log.on_ack(s(0), &b, t(110), Duration::from_millis(20)), 0);
        // The delivered one is forgotten, so overtaking cannot be told any
        // more; new data SACKed still tells.
        let b = board(0, 12_000, &[(1000, 11_000)]);
        assert_eq!(log.on_ack(s(0), &b, t(130), Duration::from_millis(20)), 1);
    }

    #[test]
    fn partly_acknowledged_lost_retransmission_is_trimmed() {
        let mut log = RetransmitLog::new();
        log.on_retransmit(s(0), s(2000), s(10_000), t(1));
        log.on_retransmit(s(3000), s(4000), s(10_000), t(2));
        let b = board(1000, 10_000, &[(2000, 10_000)]);
        assert_eq!(log.on_ack(s(1000), &b, t(3), Duration::ZERO), 1);
        assert_eq!(log.next_lost(s(1000), MSS), Some((s(1000), 1000)));
    }

    #[test]
    fn the_log_is_bounded() {
        let mut log = RetransmitLog::new();
        for i in 0..(MAX_RECORDS as u32 + 50) {
            log.on_retransmit(s(i * 2000), s(i * 2000 + 1000), s(1 << 30), t(1));
        }
        assert_eq!(log.records.len(), MAX_RECORDS);
        // The newest is delivered: all the others are lost, and counted.
        let last = (MAX_RECORDS as u32 + 49) * 2000;
        let b = board(0, 1 << 30, &[(last, last + 1000)]);
        assert_eq!(log.on_ack(s(0), &b, t(2), Duration::ZERO), MAX_RECORDS - 1);
        assert_eq!(log.lost_bytes(), (MAX_RECORDS - 1) * 1000);
        log.clear();
        assert_eq!(log.lost_bytes(), 0);
    }
}
