//! TIME-WAIT as compact records (RFC 9293 §3.6, §3.10.7.4; RFC 1337;
//! RFC 6191).
//!
//! A connection the application has released lingers in TIME-WAIT for
//! 2·MSL so that a lost final ACK can be sent again and old duplicates of
//! its segments die before its 4-tuple is used again. All that takes is
//! the 4-tuple, the two sequence numbers, the window and timestamp state,
//! and a deadline, so a released connection entering TIME-WAIT gives up
//! its buffers and state machine for a [`TimeWaitRecord`] of a few dozen
//! bytes, as Linux trades a socket for an `inet_timewait_sock`. (A
//! connection whose handle the application still holds stays whole until
//! it is released, so the application sees TIME-WAIT as before.)
//!
//! The records are capped ([`TimeWaitTable::new`]'s `max`, Linux's
//! `tcp_max_tw_buckets`): beyond the cap a connection skips TIME-WAIT and
//! closes at once, which only weakens protection against old duplicates
//! for that 4-tuple. The table's timer heap is purged of stale entries as
//! it grows, so its size stays proportional to the records.
//!
//! What a record does with a segment ([`TimeWaitTable::on_segment`]):
//! - a RST is ignored (RFC 1337's fix for TIME-WAIT assassination: an old
//!   or forged RST would otherwise end TIME-WAIT early);
//! - a SYN may reopen the 4-tuple when it is newer than anything of the
//!   old connection (a timestamp above TS.Recent, RFC 6191 §2, or without
//!   timestamps a sequence number beyond RCV.NXT, RFC 1122 §4.2.2.13) and
//!   a listener takes it; the new connection's ISN is then chosen above
//!   the old SND.NXT, as Linux does. Without a listener (the usual case
//!   for a client's TIME-WAIT) the SYN is only acknowledged, as any stray
//!   segment: a forged SYN must not end TIME-WAIT;
//! - the peer's FIN again (our last ACK was lost) is acknowledged and
//!   restarts the 2·MSL timer (RFC 9293 §3.10.7.4);
//! - anything else gets an ACK, at most one per
//!   [`super::TcpConfig::invalid_ack_interval`].
//!
//! # Example
//!
//! A record answers the peer's FIN sent again (our last ACK was lost),
//! ignores a RST (RFC 1337), and goes when its timer does:
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use netstrata::transport::tcp::segment::{TcpFlags, TcpRepr};
//! use netstrata::transport::tcp::seq::SeqNumber;
//! use netstrata::transport::tcp::time_wait::{TimeWaitAction, TimeWaitRecord, TimeWaitTable};
//! use netstrata::{Duration, Instant};
//!
//! let local = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 80);
//! let remote = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 49152);
//! let msl2 = Duration::from_secs(60);
//! let record = TimeWaitRecord {
//!     snd_nxt: SeqNumber(5000),
//!     rcv_nxt: SeqNumber(9001), // after the peer's FIN at 9000
//!     window: 65535,
//!     timestamps: None,
//!     expires: Instant::ZERO + msl2,
//!     duration: msl2,
//!     ack_interval: Duration::from_millis(500),
//!     acked_at: None,
//! };
//! let mut table = TimeWaitTable::new(1024, [1, 2]);
//! assert!(table.insert((local, remote), record));
//!
//! let fin = TcpRepr {
//!     src_port: 49152,
//!     dst_port: 80,
//!     seq_number: SeqNumber(9000),
//!     ack_number: Some(SeqNumber(5000)),
//!     flags: TcpFlags::FIN,
//!     ..TcpRepr::default()
//! };
//! let now = Instant::from_secs(1);
//! let action = table.on_segment(now, (local, remote), &fin, false);
//! let Some(TimeWaitAction::Ack(ack)) = action else { panic!("no ACK") };
//! assert_eq!(ack.ack_number, Some(SeqNumber(9001)));
//! let rst = TcpRepr { flags: TcpFlags::RST, ..fin };
//! assert_eq!(table.on_segment(now, (local, remote), &rst, false), Some(TimeWaitAction::Ignore));
//!
//! table.expire(now + msl2); // the FIN restarted the timer
//! assert!(table.is_empty());
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::hash::{KeyedMap, keyed_map};
use std::net::SocketAddrV4;

use crate::time::{Duration, Instant};
use crate::transport::tcp::segment::{TcpFlags, TcpRepr};
use crate::transport::tcp::seq::SeqNumber;

/// A connection's 4-tuple: (local, remote).
pub type FourTuple = (SocketAddrV4, SocketAddrV4);

/// TS.Recent is trusted for 24 days of idleness (RFC 7323 §5.5).
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// The timestamp state a TIME-WAIT record keeps (RFC 7323).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWaitTimestamps {
    /// TS.Recent: the peer's latest timestamp.
    pub recent: u32,
    /// When TS.Recent was taken.
    pub recent_at: Instant,
    /// Our timestamp clock's offset.
    pub offset: u32,
}

/// What remains of a connection in TIME-WAIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWaitRecord {
    /// Our next sequence number (our FIN acknowledged).
    pub snd_nxt: SeqNumber,
    /// The peer's next sequence number (its FIN received).
    pub rcv_nxt: SeqNumber,
    /// The window field our ACKs carry.
    pub window: u16,
    /// Timestamps, if the connection used them.
    pub timestamps: Option<TimeWaitTimestamps>,
    /// When TIME-WAIT ends.
    pub expires: Instant,
    /// 2·MSL, to restart the timer with.
    pub duration: Duration,
    /// The least time between two ACKs answering stray segments.
    pub ack_interval: Duration,
    /// When such an ACK was last sent.
    pub acked_at: Option<Instant>,
}

/// What to do about a segment that hit a TIME-WAIT record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeWaitAction {
    /// Nothing (a RST, or an ACK over the rate limit).
    Ignore,
    /// Send this ACK.
    Ack(TcpRepr),
    /// A new SYN may reopen the 4-tuple, if a listener takes it (then
    /// [`TimeWaitTable::reopen`]); the new connection's ISN must lie above
    /// `isn_floor`.
    Reuse {
        /// The old connection's SND.NXT plus a window's worth, as Linux
        /// picks the new ISN.
        isn_floor: SeqNumber,
    },
}

/// Counters of the TIME-WAIT records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWaitStats {
    /// Connections that entered TIME-WAIT as a compact record.
    pub entered: u64,
    /// Connections that skipped TIME-WAIT because the table was full.
    pub overflows: u64,
    /// RSTs ignored (RFC 1337).
    pub rsts_ignored: u64,
    /// 4-tuples reopened by a newer SYN (RFC 6191).
    pub reused: u64,
    /// Stray segments left unanswered by the ACK rate limit.
    pub acks_limited: u64,
}

/// Every TIME-WAIT record of an interface, with their expiry timers.
#[derive(Debug)]
pub struct TimeWaitTable {
    records: KeyedMap<FourTuple, TimeWaitRecord>,
    /// Expiry deadlines; an entry whose record has another deadline (or
    /// none) is stale and skipped.
    timers: BinaryHeap<Reverse<(Instant, FourTuple)>>,
    max: usize,
    stats: TimeWaitStats,
}

impl TimeWaitTable {
    /// An empty table holding at most `max` records, indexed under the
    /// secret hash key `key` ([`crate::hash`]).
    pub fn new(max: usize, key: [u64; 2]) -> TimeWaitTable {
        TimeWaitTable {
            records: keyed_map(key),
            timers: BinaryHeap::new(),
            max,
            stats: TimeWaitStats::default(),
        }
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Entries in the timer heap (stale ones included).
    pub fn timer_len(&self) -> usize {
        self.timers.len()
    }

    /// Counters.
    pub fn stats(&self) -> TimeWaitStats {
        self.stats
    }

    /// Whether `tuple` is in TIME-WAIT.
    pub fn contains(&self, tuple: &FourTuple) -> bool {
        self.records.contains_key(tuple)
    }

    /// Ends `tuple`'s TIME-WAIT because a new connection reuses it;
    /// returns the least ISN the new connection may take (above the old
    /// SND.NXT by a window's worth, as Linux picks it), if there was one.
    pub fn reopen(&mut self, tuple: &FourTuple) -> Option<SeqNumber> {
        let r = self.records.remove(tuple)?;
        self.stats.reused += 1;
        Some(Self::isn_floor(&r))
    }

    fn isn_floor(r: &TimeWaitRecord) -> SeqNumber {
        r.snd_nxt + 65535 + 2
    }

    /// Puts a connection into TIME-WAIT; returns false (and counts it) if
    /// the table is full, in which case the connection simply closes.
    pub fn insert(&mut self, tuple: FourTuple, record: TimeWaitRecord) -> bool {
        if self.records.len() >= self.max && !self.records.contains_key(&tuple) {
            self.stats.overflows += 1;
            log::debug!(
                "{} -> {}: TIME-WAIT table full ({}): closing at once",
                tuple.0,
                tuple.1,
                self.max
            );
            return false;
        }
        self.stats.entered += 1;
        self.records.insert(tuple, record);
        self.schedule(record.expires, tuple);
        true
    }

    fn schedule(&mut self, at: Instant, tuple: FourTuple) {
        self.timers.push(Reverse((at, tuple)));
        // Restarted timers leave stale entries behind: purge them once they
        // outnumber the records, so the heap stays proportional to them.
        if self.timers.len() > 2 * self.records.len() + 64 {
            let records = &self.records;
            self.timers
                .retain(|Reverse((t, k))| records.get(k).is_some_and(|r| r.expires == *t));
        }
    }

    /// When the next record expires.
    pub fn poll_at(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Drops the records whose TIME-WAIT has ended at `now`.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&Reverse((t, tuple))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            if self.records.get(&tuple).is_some_and(|r| r.expires == t) {
                self.records.remove(&tuple);
            }
        }
    }

    /// Handles a segment for `tuple`'s record, if it has one; `listening`
    /// says whether a listener would take a SYN on this 4-tuple.
    pub fn on_segment(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        seg: &TcpRepr,
        listening: bool,
    ) -> Option<TimeWaitAction> {
        let r = self.records.get_mut(&tuple)?;
        if seg.flags.contains(TcpFlags::RST) {
            self.stats.rsts_ignored += 1;
            return Some(TimeWaitAction::Ignore);
        }
        let newer_ts = match (r.timestamps, seg.timestamp) {
            (Some(ts), Some((tsval, _))) => {
                (tsval.wrapping_sub(ts.recent) as i32) > 0 || now - ts.recent_at >= PAWS_IDLE
            }
            _ => false,
        };
        let syn = seg.flags.contains(TcpFlags::SYN) && seg.ack_number.is_none();
        if syn && listening {
            let newer = match (r.timestamps, seg.timestamp) {
                (Some(_), Some(_)) => newer_ts,
                _ => seg.seq_number > r.rcv_nxt,
            };
            if newer {
                let isn_floor = Self::isn_floor(r);
                return Some(TimeWaitAction::Reuse { isn_floor });
            }
        }
        // The peer's FIN again: our last ACK was lost.
        let fin_again =
            seg.flags.contains(TcpFlags::FIN) && seg.seq_number + seg.payload_len + 1 == r.rcv_nxt;
        if fin_again {
            r.expires = now + r.duration;
            if let (Some(ts), Some((tsval, _))) = (r.timestamps.as_mut(), seg.timestamp)
                && newer_ts
            {
                ts.recent = tsval;
                ts.recent_at = now;
            }
            let at = r.expires;
            let ack = Self::ack(now, tuple, r);
            self.schedule(at, tuple);
            return Some(TimeWaitAction::Ack(ack));
        }
        if r.acked_at.is_some_and(|t| now - t < r.ack_interval) {
            self.stats.acks_limited += 1;
            return Some(TimeWaitAction::Ignore);
        }
        r.acked_at = Some(now);
        Some(TimeWaitAction::Ack(Self::ack(now, tuple, r)))
    }

    /// The ACK a record sends: SND.NXT, RCV.NXT, the last window.
    fn ack(now: Instant, (local, remote): FourTuple, r: &TimeWaitRecord) -> TcpRepr {
        TcpRepr {
            src_port: local.port(),
            dst_port: remote.port(),
            seq_number: r.snd_nxt,
            ack_number: Some(r.rcv_nxt),
            flags: TcpFlags::empty(),
            window_len: r.window,
            timestamp: r.timestamps.map(|ts| {
                (
                    (now.total_millis() as u32).wrapping_add(ts.offset),
                    ts.recent,
                )
            }),
            ..TcpRepr::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn tuple(port: u16) -> FourTuple {
        (
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 80),
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), port),
        )
    }

    fn record(now: Instant, ts: bool) -> TimeWaitRecord {
        TimeWaitRecord {
            snd_nxt: SeqNumber(1000),
            rcv_nxt: SeqNumber(5000),
            window: 512,
            timestamps: ts.then_some(TimeWaitTimestamps {
                recent: 700,
                recent_at: now,
                offset: 0,
            }),
            expires: now + Duration::from_secs(60),
            duration: Duration::from_secs(60),
            ack_interval: Duration::from_millis(500),
            acked_at: None,
        }
    }

    fn seg(flags: TcpFlags, seq: u32, ack: Option<u32>, ts: Option<u32>) -> TcpRepr {
        TcpRepr {
            seq_number: SeqNumber(seq),
            ack_number: ack.map(SeqNumber),
            flags,
            timestamp: ts.map(|v| (v, 0)),
            ..TcpRepr::default()
        }
    }

    #[test]
    fn rst_is_ignored_and_records_expire() {
        let t0 = Instant::from_secs(1);
        let mut tw = TimeWaitTable::new(10, [1, 2]);
        assert!(tw.insert(tuple(1), record(t0, false)));
        let rst = seg(TcpFlags::RST, 5000, None, None);
        assert_eq!(
            tw.on_segment(t0, tuple(1), &rst, true),
            Some(TimeWaitAction::Ignore)
        );
        assert!(tw.contains(&tuple(1)));
        assert_eq!(tw.on_segment(t0, tuple(2), &rst, true), None);
        assert_eq!(tw.poll_at(), Some(t0 + Duration::from_secs(60)));
        tw.expire(t0 + Duration::from_secs(59));
        assert_eq!(tw.len(), 1);
        tw.expire(t0 + Duration::from_secs(60));
        assert!(tw.is_empty());
        assert_eq!(tw.stats().rsts_ignored, 1);
    }

    #[test]
    fn cap_refuses_and_counts() {
        let t0 = Instant::from_secs(1);
        let mut tw = TimeWaitTable::new(2, [1, 2]);
        assert!(tw.insert(tuple(1), record(t0, false)));
        assert!(tw.insert(tuple(2), record(t0, false)));
        assert!(!tw.insert(tuple(3), record(t0, false)));
        assert_eq!((tw.len(), tw.stats().overflows), (2, 1));
    }

    #[test]
    fn newer_syn_reuses_older_syn_gets_an_ack() {
        let t0 = Instant::from_secs(1);
        let mut tw = TimeWaitTable::new(10, [1, 2]);
        // With timestamps: judged by the timestamp (RFC 6191).
        tw.insert(tuple(1), record(t0, true));
        let old = seg(TcpFlags::SYN, 9000, None, Some(600));
        assert!(matches!(
            tw.on_segment(t0, tuple(1), &old, true),
            Some(TimeWaitAction::Ack(_))
        ));
        let new = seg(TcpFlags::SYN, 10, None, Some(800));
        assert_eq!(
            tw.on_segment(t0, tuple(1), &new, true),
            Some(TimeWaitAction::Reuse {
                isn_floor: SeqNumber(1000 + 65537)
            })
        );
        assert!(
            tw.contains(&tuple(1)),
            "only a listener taking it ends TIME-WAIT"
        );
        assert_eq!(tw.reopen(&tuple(1)), Some(SeqNumber(1000 + 65537)));
        assert!(!tw.contains(&tuple(1)));
        // Without: by the sequence number (RFC 1122 §4.2.2.13).
        tw.insert(tuple(2), record(t0, false));
        let old = seg(TcpFlags::SYN, 4000, None, None);
        assert!(matches!(
            tw.on_segment(t0 + Duration::from_secs(1), tuple(2), &old, true),
            Some(TimeWaitAction::Ack(_))
        ));
        let new = seg(TcpFlags::SYN, 6000, None, None);
        assert!(matches!(
            tw.on_segment(t0, tuple(2), &new, true),
            Some(TimeWaitAction::Reuse { .. })
        ));
        // No listener: a SYN, however new, is only acknowledged.
        assert!(matches!(
            tw.on_segment(t0 + Duration::from_secs(2), tuple(2), &new, false),
            Some(TimeWaitAction::Ack(_))
        ));
        assert!(tw.reopen(&tuple(2)).is_some());
        assert_eq!(tw.stats().reused, 2);
    }

    #[test]
    fn fin_again_is_acked_and_restarts_the_timer_strays_are_rate_limited() {
        let t0 = Instant::from_secs(1);
        let mut tw = TimeWaitTable::new(10, [1, 2]);
        tw.insert(tuple(1), record(t0, true));
        let t1 = t0 + Duration::from_secs(30);
        let fin = seg(TcpFlags::FIN, 4999, Some(1000), Some(710));
        let Some(TimeWaitAction::Ack(ack)) = tw.on_segment(t1, tuple(1), &fin, false) else {
            panic!("no ACK for the FIN");
        };
        assert_eq!(ack.seq_number, SeqNumber(1000));
        assert_eq!(ack.ack_number, Some(SeqNumber(5000)));
        assert_eq!(ack.window_len, 512);
        assert_eq!(ack.timestamp, Some((31_000, 710)));
        tw.expire(t0 + Duration::from_secs(61));
        assert!(tw.contains(&tuple(1)), "the FIN restarted the timer");
        // Stray ACKs: one answer per 500 ms.
        let stray = seg(TcpFlags::empty(), 7, Some(1), Some(720));
        let t2 = t1 + Duration::from_secs(1);
        assert!(matches!(
            tw.on_segment(t2, tuple(1), &stray, false),
            Some(TimeWaitAction::Ack(_))
        ));
        assert_eq!(
            tw.on_segment(t2, tuple(1), &stray, false),
            Some(TimeWaitAction::Ignore)
        );
        assert_eq!(tw.stats().acks_limited, 1);
        tw.expire(t1 + Duration::from_secs(60));
        assert!(tw.is_empty());
    }

    #[test]
    fn timer_heap_stays_proportional_to_records() {
        let t0 = Instant::from_secs(1);
        let mut tw = TimeWaitTable::new(10, [1, 2]);
        tw.insert(tuple(1), record(t0, false));
        let fin = seg(TcpFlags::FIN, 4999, Some(1000), None);
        for i in 0..1000 {
            tw.on_segment(t0 + Duration::from_millis(i), tuple(1), &fin, false);
        }
        assert!(tw.timer_len() <= 2 * tw.len() + 65, "{}", tw.timer_len());
    }
}
