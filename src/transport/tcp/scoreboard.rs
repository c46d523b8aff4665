//! The SACK scoreboard: the sender's record of what the peer has
//! selectively acknowledged (RFC 2018 §3, the scoreboard of RFC 6675 §3).
//!
//! [`Scoreboard`] remembers which parts of the send sequence space
//! `[SND.UNA, SND.NXT)` the peer has SACKed, as a short sorted list of
//! disjoint ranges, and forgets them as the cumulative ACK passes them.
//! [`Scoreboard::on_ack`] validates each SACK block much as Linux does: an
//! empty or inverted block, one starting below SND.UNA (other than a
//! D-SACK) or one ending beyond SND.NXT is ignored whole and counted. It
//! also recognises D-SACK blocks (RFC 2883 §4: a first block below the
//! cumulative ACK, or within the second block) and reports them instead
//! of recording them. What each ACK changed comes back as an [`AckInfo`].
//!
//! Loss detection is not here: RACK (RFC 8985) in [`super::rack`] decides
//! what is lost, by time rather than by counting SACKed data above a hole,
//! and keeps the octets in flight. What to send during recovery, and how
//! much (PRR, RFC 6937), is for [`super::prr`] and the connection's
//! recovery state (`connection/recovery.rs`), which also decides when
//! recovery starts and ends.
//!
//! # Sequence numbers: exclusive ends
//!
//! RFC 6675 names *octets*: HighACK is the highest octet cumulatively
//! acknowledged, HighData the highest octet sent. This module uses
//! half-open ranges and names the first octet *after* each, as TCP's own
//! variables do:
//!
//! | RFC 6675            | here                                                |
//! |---------------------|-----------------------------------------------------|
//! | HighACK + 1         | `snd_una`                                           |
//! | HighData + 1        | `snd_nxt` (pass SND.MAX if SND.NXT is ever rewound) |
//!
//! Likewise a SACKed range `(start, end)` ends one past its last octet, and
//! [`AckInfo::highest_sacked`] is one past RFC 6675's "highest octet
//! covered by any received SACK". All comparisons are modulo 2^32: ranges
//! are kept as offsets from SND.UNA, so nothing breaks across the wrap.
//!
//! # Costs
//!
//! At most [`MAX_SACK_RANGES`] ranges are kept (a few hundred bytes per
//! connection, allocated on the first SACK). Recording a block and every
//! query are linear in the number of ranges, never in bytes or segments.
//!
//! # Deliberately not here
//!
//! The RFC 5681 §2 judgement of a duplicate ACK without SACK (no payload,
//! same window, no SYN/FIN): the connection makes it. What a D-SACK means
//! (RACK widens its reordering window on one): the connection passes it
//! on. Detecting SACK reneging: with no such test, a retransmission
//! timeout clears the scoreboard as RFC 2018 and RFC 6675 §5.1 recommend.
//!
//! # Example
//!
//! With 5000 octets in flight from 1, the peer SACKs two blocks beyond a
//! hole; a later cumulative ACK passes the first of them.
//!
//! ```
//! use netstrata::transport::tcp::scoreboard::Scoreboard;
//! use netstrata::transport::tcp::seq::SeqNumber;
//!
//! let s = SeqNumber;
//! let mut board = Scoreboard::new();
//! let info = board.on_ack(s(1), [(s(1001), s(2001)), (s(3001), s(4001))], s(5001));
//! assert!(info.dup_ack);
//! assert_eq!((info.newly_sacked, info.sacked_ranges), (2000, 2));
//! assert_eq!(info.highest_sacked, Some(s(4001)));
//! assert!(board.is_sacked(s(1500)) && !board.is_sacked(s(2500)));
//!
//! let info = board.on_ack(s(2001), [(s(3001), s(4001))], s(5001));
//! assert_eq!((info.newly_acked, info.sacked_bytes), (2000, 1000));
//! // A block beyond SND.NXT is ignored and counted.
//! let info = board.on_ack(s(2001), [(s(4001), s(9001))], s(5001));
//! assert_eq!(info.invalid_blocks, 1);
//! ```

use core::borrow::Borrow;

use super::seq::SeqNumber;

/// DupThresh of RFC 6675 §2 (and RFC 5681 §3.2). With SACK, RACK's cue
/// (RFC 8985 §6.2 step 4) to drop the reordering window to zero: more than
/// `(DUP_THRESH - 1)` segments' worth of octets SACKed. Without SACK,
/// NewReno's count of duplicate ACKs that starts fast recovery.
pub const DUP_THRESH: usize = 3;

/// The most SACKed ranges a [`Scoreboard`] keeps. A peer can report at most
/// four new blocks per ACK, and each ACK that fills a hole merges ranges,
/// so this is rarely reached; when it is, the highest range is forgotten
/// (see [`Scoreboard::on_ack`]).
pub const MAX_SACK_RANGES: usize = 64;

/// No SACK blocks, for [`Scoreboard::on_ack`] on an ACK without any (a bare
/// `[]` leaves the block type ambiguous).
pub const NO_SACK: [(SeqNumber, SeqNumber); 0] = [];

/// What one ACK told the [`Scoreboard`] ([`Scoreboard::on_ack`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckInfo {
    /// Octets by which SND.UNA advanced since the previous call (0 on the
    /// first call, or when SND.UNA did not move).
    pub newly_acked: usize,
    /// Octets SACKed by this ACK that were neither acknowledged nor SACKed
    /// before.
    pub newly_sacked: usize,
    /// A duplicate ACK in the sense of RFC 6675 §2 ("DupAck"): it SACKs
    /// previously unacknowledged, un-SACKed octets between HighACK and
    /// HighData, i.e. `newly_sacked > 0`. Unlike RFC 5681's definition this
    /// holds even if the ACK also carries data, changes the window or
    /// advances the cumulative ACK. For a peer that does not SACK, this is
    /// always false: the connection judges duplicates by RFC 5681 §2.
    pub dup_ack: bool,
    /// The first block was a D-SACK (RFC 2883 §4): it starts below the
    /// cumulative ACK, or lies within the second block. It reports data
    /// received twice and is not recorded.
    pub dsack: bool,
    /// SACK blocks ignored as invalid: empty or inverted, starting below
    /// SND.UNA (other than the D-SACK), or ending beyond SND.NXT.
    pub invalid_blocks: usize,
    /// The end (exclusive) of the highest SACKed range after this ACK: one
    /// past RFC 6675's "highest octet covered by any received SACK".
    pub highest_sacked: Option<SeqNumber>,
    /// Octets SACKed in all, after this ACK.
    pub sacked_bytes: usize,
    /// Discontiguous SACKed ranges, after this ACK.
    pub sacked_ranges: usize,
}

/// The SACK scoreboard of RFC 6675 §3: which octets of `[SND.UNA, SND.NXT)`
/// the peer has selectively acknowledged.
///
/// Call [`Scoreboard::on_ack`] for every acceptable ACK, with or without SACK
/// blocks, so that data below SND.UNA is forgotten as it is acknowledged.
#[derive(Clone, Debug, Default)]
pub struct Scoreboard {
    /// SND.UNA at the last [`Scoreboard::on_ack`]; `None` before the first.
    base: Option<SeqNumber>,
    /// SACKed ranges `[start, end)` as offsets from `base`: sorted, disjoint,
    /// never adjacent, never empty, within the window of the last ACK, and
    /// at most [`MAX_SACK_RANGES`] of them.
    ranges: Vec<(u32, u32)>,
    /// Octets in `ranges`.
    sacked: usize,
}

/// The number of octets in `[snd_una, snd_nxt)`; 0 if `snd_nxt` is not after
/// `snd_una`.
fn window(snd_una: SeqNumber, snd_nxt: SeqNumber) -> u32 {
    u32::try_from(snd_nxt - snd_una).unwrap_or(0)
}

impl Scoreboard {
    /// An empty scoreboard.
    pub fn new() -> Scoreboard {
        Scoreboard::default()
    }

    /// Updates the scoreboard from one ACK (RFC 6675 §4 `Update ()`):
    /// forgets everything below `snd_una`, then records the SACK blocks.
    ///
    /// `snd_una` is SND.UNA after processing this ACK's acknowledgment
    /// number; `snd_nxt` is one past the highest octet ever sent (SND.MAX if
    /// the connection rewinds SND.NXT after a timeout, since blocks may still
    /// cover data sent before it). `sack_blocks` are the blocks in the order
    /// received (the first one may be a D-SACK): a slice, an array, or
    /// `repr.sack_ranges.iter().flatten()`, or [`NO_SACK`].
    ///
    /// Blocks are validated much as Linux does (`tcp_is_sackblock_valid`): a block
    /// that is empty or inverted, that starts below `snd_una` (unless it is
    /// the first block, which is then a D-SACK), or that ends beyond
    /// `snd_nxt` is ignored whole and counted in
    /// [`AckInfo::invalid_blocks`]. A block that starts at or after
    /// `snd_una` overlapping what is already SACKed is merged.
    ///
    /// When a new range would be the 65th, the highest range is forgotten
    /// (or the new one, if it is the highest). SACK information is advisory
    /// (RFC 2018 §8): forgetting some only makes the sender more cautious,
    /// counting those octets in flight and possibly resending them.
    ///
    /// A SACKed range that SND.UNA passes is dropped; SACK blocks are never
    /// "un-SACKed" by later ACKs that omit them (the peer may renege, RFC
    /// 2018 §8, but only a retransmission timeout acts on that:
    /// [`Scoreboard::on_retransmit_timeout`]).
    pub fn on_ack<I>(&mut self, snd_una: SeqNumber, sack_blocks: I, snd_nxt: SeqNumber) -> AckInfo
    where
        I: IntoIterator,
        I::Item: Borrow<(SeqNumber, SeqNumber)>,
    {
        let mut info = AckInfo::default();
        let win = window(snd_una, snd_nxt);
        if let Some(base) = self.base {
            match u32::try_from(snd_una - base) {
                Ok(advance) => {
                    info.newly_acked = advance as usize;
                    self.advance(advance, win);
                }
                Err(_) => {
                    log::debug!(
                        "SND.UNA moved back from {base} to {snd_una}: clearing SACK scoreboard"
                    );
                    self.clear();
                }
            }
        }
        self.base = Some(snd_una);

        let mut blocks = sack_blocks.into_iter().map(|b| *b.borrow());
        let first = blocks.next();
        let second = blocks.next();
        if let Some(first) = first {
            if is_dsack(first, second, snd_una) {
                log::trace!("D-SACK {}-{} (ack {snd_una})", first.0, first.1);
                info.dsack = true;
            } else {
                self.record(first, snd_una, win, &mut info);
            }
        }
        for block in second.into_iter().chain(blocks) {
            self.record(block, snd_una, win, &mut info);
        }

        info.dup_ack = info.newly_sacked > 0;
        info.highest_sacked = self.highest_sacked();
        info.sacked_bytes = self.sacked;
        info.sacked_ranges = self.ranges.len();
        info
    }

    /// Moves the base forward by `advance` octets and clips to `win`.
    fn advance(&mut self, advance: u32, win: u32) {
        self.ranges.retain_mut(|(s, e)| {
            *s = s.saturating_sub(advance);
            *e = e.saturating_sub(advance).min(win);
            s < e
        });
        self.sacked = self.ranges.iter().map(|&(s, e)| (e - s) as usize).sum();
    }

    /// Validates and records one (non-D-SACK) block.
    fn record(
        &mut self,
        (left, right): (SeqNumber, SeqNumber),
        snd_una: SeqNumber,
        win: u32,
        info: &mut AckInfo,
    ) {
        let l = left.wrapping_distance(snd_una);
        let r = right.wrapping_distance(snd_una);
        if l < r && r <= win {
            info.newly_sacked += self.insert(l, r);
        } else {
            log::trace!(
                "ignoring SACK block {left}-{right} outside {snd_una}..{}",
                snd_una + win as usize
            );
            info.invalid_blocks += 1;
        }
    }

    /// Adds `[l, r)` (offsets from `base`, `l < r`), merging with overlapping
    /// or adjacent ranges; returns how many octets were not SACKed before.
    fn insert(&mut self, l: u32, r: u32) -> usize {
        // ranges[i..j] overlap or touch [l, r).
        let i = self.ranges.partition_point(|&(_, e)| e < l);
        let j = self.ranges.partition_point(|&(s, _)| s <= r);
        if i == j {
            if self.ranges.len() >= MAX_SACK_RANGES {
                if i >= self.ranges.len() {
                    log::trace!("SACK scoreboard full: dropping the highest block");
                    return 0;
                }
                log::trace!("SACK scoreboard full: forgetting the highest range");
                if let Some((s, e)) = self.ranges.pop() {
                    self.sacked -= (e - s) as usize;
                }
            }
            self.ranges.insert(i, (l, r));
            self.sacked += (r - l) as usize;
            return (r - l) as usize;
        }
        let touched = &self.ranges[i..j];
        let covered: u32 = touched
            .iter()
            .map(|&(s, e)| e.min(r).saturating_sub(s.max(l)))
            .sum();
        let before: u32 = touched.iter().map(|&(s, e)| e - s).sum();
        let merged = (l.min(touched[0].0), r.max(touched[touched.len() - 1].1));
        self.ranges.drain(i + 1..j);
        self.ranges[i] = merged;
        self.sacked = self.sacked - before as usize + (merged.1 - merged.0) as usize;
        (r - l - covered) as usize
    }

    /// Forgets all SACK information (SND.UNA is remembered).
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.sacked = 0;
    }

    /// What to do on a retransmission timeout (RFC 6675 §5.1): clears the
    /// scoreboard.
    ///
    /// RFC 6675 §5.1 keeps RFC 2018's advice: the sender SHOULD expunge SACK
    /// information on a timeout, "since the timeout might indicate that the
    /// data receiver has reneged", and MUST ignore it in choosing what to
    /// retransmit. Retaining it is allowed only "as long as robust tests for
    /// reneging are present" (Errata 1610), which this module lacks. ACKs
    /// after the timeout rebuild the scoreboard through
    /// [`Scoreboard::on_ack`], as §5.1 asks.
    pub fn on_retransmit_timeout(&mut self) {
        self.clear();
    }

    /// No octet is SACKed.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Octets SACKed in all.
    pub fn sacked_bytes(&self) -> usize {
        self.sacked
    }

    /// The number of discontiguous SACKed ranges.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// The SACKed ranges `[start, end)`, in ascending order.
    pub fn ranges(&self) -> impl DoubleEndedIterator<Item = (SeqNumber, SeqNumber)> + '_ {
        let base = self.base.unwrap_or_default();
        self.ranges
            .iter()
            .map(move |&(s, e)| (base.wrapping_add(s), base.wrapping_add(e)))
    }

    /// One past the highest SACKed octet, if any.
    pub fn highest_sacked(&self) -> Option<SeqNumber> {
        self.ranges().next_back().map(|(_, end)| end)
    }

    /// The signed offset of `seq` from the base.
    fn offset(&self, seq: SeqNumber) -> i64 {
        i64::from(seq - self.base.unwrap_or_default())
    }

    /// Octet `seq` has been SACKed.
    pub fn is_sacked(&self, seq: SeqNumber) -> bool {
        let o = self.offset(seq);
        self.ranges
            .iter()
            .any(|&(s, e)| i64::from(s) <= o && o < i64::from(e))
    }
}

/// RFC 2883 §4: the first block is a D-SACK if it starts below the
/// cumulative ACK, or lies within the second block.
fn is_dsack(
    (left, right): (SeqNumber, SeqNumber),
    second: Option<(SeqNumber, SeqNumber)>,
    snd_una: SeqNumber,
) -> bool {
    if right - left <= 0 {
        return false;
    }
    left - snd_una < 0
        || second.is_some_and(|(l2, r2)| r2 - l2 > 0 && left - l2 >= 0 && r2 - right >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Initial sequence numbers to run every scenario from: plain, just
    /// before the 2^32 wrap, and just before the 2^31 sign flip.
    const BASES: [u32; 3] = [1000, u32::MAX - 2500, (1 << 31) - 700];

    fn at(base: u32, off: u32) -> SeqNumber {
        SeqNumber(base.wrapping_add(off))
    }

    fn check_invariants(sb: &Scoreboard) {
        assert!(sb.ranges.len() <= MAX_SACK_RANGES);
        for &(s, e) in &sb.ranges {
            assert!(s < e, "empty range {s}..{e}");
        }
        for w in sb.ranges.windows(2) {
            assert!(w[0].1 < w[1].0, "unsorted or adjacent: {w:?}");
        }
        let sum: usize = sb.ranges.iter().map(|&(s, e)| (e - s) as usize).sum();
        assert_eq!(sum, sb.sacked_bytes());
    }

    /// Ranges as offsets from `base`.
    fn offs(sb: &Scoreboard, base: u32) -> Vec<(u32, u32)> {
        sb.ranges()
            .map(|(s, e)| {
                (
                    s.wrapping_distance(SeqNumber(base)),
                    e.wrapping_distance(SeqNumber(base)),
                )
            })
            .collect()
    }

    #[test]
    fn merges_overlapping_and_adjacent_blocks() {
        for b in BASES {
            let mut sb = Scoreboard::new();
            let (una, nxt) = (at(b, 0), at(b, 10_000));
            let i = sb.on_ack(una, [(at(b, 2000), at(b, 3000))], nxt);
            assert_eq!(
                (i.newly_sacked, i.dup_ack, i.sacked_ranges),
                (1000, true, 1)
            );
            assert_eq!(i.highest_sacked, Some(at(b, 3000)));
            let i = sb.on_ack(
                una,
                [(at(b, 5000), at(b, 6000)), (at(b, 2000), at(b, 3000))],
                nxt,
            );
            assert_eq!(
                (i.newly_sacked, i.sacked_ranges, i.sacked_bytes),
                (1000, 2, 2000)
            );
            // Adjacent on the left of one, overlapping the other: all merge.
            let i = sb.on_ack(una, [(at(b, 3000), at(b, 5500))], nxt);
            assert_eq!(
                (i.newly_sacked, i.sacked_ranges, i.sacked_bytes),
                (2000, 1, 4000)
            );
            assert_eq!(offs(&sb, b), vec![(2000, 6000)]);
            // Repeating it (a stale block) is no news and no DupAck.
            let i = sb.on_ack(una, [(at(b, 2500), at(b, 4000))], nxt);
            assert_eq!((i.newly_sacked, i.dup_ack, i.invalid_blocks), (0, false, 0));
            // A block covering several ranges and holes.
            sb.on_ack(
                una,
                [(at(b, 7000), at(b, 7100)), (at(b, 8000), at(b, 8100))],
                nxt,
            );
            let i = sb.on_ack(una, [(at(b, 1000), at(b, 9000))], nxt);
            assert_eq!(i.newly_sacked, 8000 - 4000 - 200);
            assert_eq!(offs(&sb, b), vec![(1000, 9000)]);
            check_invariants(&sb);
        }
    }

    #[test]
    fn invalid_blocks_are_ignored() {
        for b in BASES {
            let mut sb = Scoreboard::new();
            let (una, nxt) = (at(b, 0), at(b, 5000));
            let bad = [
                (at(b, 1000), at(b, 1000)),                   // empty
                (at(b, 2000), at(b, 1000)),                   // inverted
                (at(b, 4000), at(b, 5001)),                   // beyond SND.NXT
                (at(b, 0).wrapping_add(1 << 31), at(b, 100)), // half the space away
                (at(b, 0) - 100usize, at(b, 500)),            // straddles SND.UNA, not first
                (at(b, 0) - 300usize, at(b, 0) - 100usize),   // below SND.UNA, not first
            ];
            let blocks = [(at(b, 3000), at(b, 3500))]
                .into_iter()
                .chain(bad)
                .collect::<Vec<_>>();
            let i = sb.on_ack(una, &blocks, nxt);
            assert_eq!(
                (i.invalid_blocks, i.newly_sacked, i.dsack),
                (bad.len(), 500, false)
            );
            assert_eq!(offs(&sb, b), vec![(3000, 3500)]);
            // Up to SND.NXT exactly, and from SND.UNA exactly, are fine.
            let i = sb.on_ack(
                una,
                [(at(b, 4500), at(b, 5000)), (at(b, 0), at(b, 10))],
                nxt,
            );
            assert_eq!((i.invalid_blocks, i.newly_sacked), (0, 510));
            // An empty window accepts nothing.
            let i = Scoreboard::new().on_ack(una, [(at(b, 4500), at(b, 5000))], una);
            assert_eq!((i.invalid_blocks, i.sacked_bytes), (1, 0));
            // Nor does a window that is negative.
            let i = Scoreboard::new().on_ack(una, [(at(b, 4500), at(b, 5000))], una - 1usize);
            assert_eq!((i.invalid_blocks, i.sacked_bytes), (1, 0));
            check_invariants(&sb);
        }
    }

    #[test]
    fn dsack_detected_not_recorded() {
        for b in BASES {
            let mut sb = Scoreboard::new();
            let (una, nxt) = (at(b, 3000), at(b, 10_000));
            // Below the cumulative ACK (RFC 2883 §4.1.1 and 4.1.2).
            let i = sb.on_ack(una, [(at(b, 1000), at(b, 2000))], nxt);
            assert!(i.dsack && !i.dup_ack);
            assert_eq!((i.invalid_blocks, i.sacked_bytes), (0, 0));
            // Straddling it also counts (Linux's test: left edge below ack).
            let i = sb.on_ack(
                una,
                [(at(b, 2000), at(b, 4000)), (at(b, 5000), at(b, 6000))],
                nxt,
            );
            assert!(i.dsack && i.dup_ack);
            assert_eq!(offs(&sb, b), vec![(5000, 6000)]);
            // Within the second block (RFC 2883 §4.2.1): the second is recorded.
            let i = sb.on_ack(
                una,
                [(at(b, 7200), at(b, 7400)), (at(b, 7000), at(b, 8000))],
                nxt,
            );
            assert!(i.dsack);
            assert_eq!((i.newly_sacked, i.sacked_ranges), (1000, 2));
            // Equal to the second block: still a D-SACK.
            let i = sb.on_ack(
                una,
                [(at(b, 7000), at(b, 8000)), (at(b, 7000), at(b, 8000))],
                nxt,
            );
            assert!(i.dsack && !i.dup_ack);
            // A D-SACK block is only ever the first one.
            let i = sb.on_ack(
                una,
                [(at(b, 9000), at(b, 9500)), (at(b, 1000), at(b, 2000))],
                nxt,
            );
            assert!(!i.dsack);
            assert_eq!((i.invalid_blocks, i.newly_sacked), (1, 500));
            // Not contained: an ordinary block.
            let i = sb.on_ack(
                una,
                [(at(b, 6900), at(b, 7100)), (at(b, 7000), at(b, 8000))],
                nxt,
            );
            assert!(!i.dsack);
            assert_eq!(i.newly_sacked, 100);
            check_invariants(&sb);
        }
    }

    #[test]
    fn cumulative_ack_discards_sacked_data_below_it() {
        for b in BASES {
            let mut sb = Scoreboard::new();
            let nxt = at(b, 10_000);
            sb.on_ack(
                at(b, 0),
                [(at(b, 1000), at(b, 2000)), (at(b, 3000), at(b, 4000))],
                nxt,
            );
            // Into the middle of the first range (a receiver that reneged on
            // part of it, or a stale view): the rest stays.
            let i = sb.on_ack(at(b, 1500), NO_SACK, nxt);
            assert_eq!(
                (i.newly_acked, i.sacked_bytes, i.sacked_ranges),
                (1500, 1500, 2)
            );
            assert_eq!(offs(&sb, b), vec![(1500, 2000), (3000, 4000)]);
            // Past it: gone. The peer repeats a stale block, now below the ACK:
            // it is taken for a D-SACK, not recorded.
            let i = sb.on_ack(at(b, 2500), [(at(b, 1000), at(b, 2000))], nxt);
            assert_eq!(
                (i.newly_acked, i.sacked_bytes, i.newly_sacked),
                (1000, 1000, 0)
            );
            assert!(i.dsack && !i.dup_ack);
            assert!(!sb.is_sacked(at(b, 1999)) && sb.is_sacked(at(b, 3000)));
            // Past everything: empty.
            let i = sb.on_ack(at(b, 5000), NO_SACK, nxt);
            assert_eq!((i.sacked_bytes, i.highest_sacked), (0, None));
            assert!(sb.is_empty());
            // SND.UNA going backwards (a caller bug) forgets everything.
            sb.on_ack(at(b, 5000), [(at(b, 6000), at(b, 7000))], nxt);
            let i = sb.on_ack(at(b, 4000), NO_SACK, nxt);
            assert_eq!((i.newly_acked, i.sacked_bytes), (0, 0));
            // SND.NXT shrinking (also a caller bug) clips.
            sb.on_ack(at(b, 4000), [(at(b, 6000), at(b, 7000))], nxt);
            sb.on_ack(at(b, 4000), NO_SACK, at(b, 6500));
            assert_eq!(offs(&sb, b), vec![(6000, 6500)]);
            check_invariants(&sb);
        }
    }

    #[test]
    fn memory_is_bounded() {
        for b in BASES {
            let mut sb = Scoreboard::new();
            let (una, nxt) = (at(b, 0), at(b, 1_000_000));
            // 100 disjoint blocks, lowest first: the ones above 64 are dropped.
            for k in 0..100 {
                let i = sb.on_ack(una, [(at(b, 100 + 20 * k), at(b, 110 + 20 * k))], nxt);
                assert_eq!(i.newly_sacked, if k < 64 { 10 } else { 0 });
                assert!(i.sacked_ranges <= MAX_SACK_RANGES);
            }
            assert_eq!(sb.range_count(), MAX_SACK_RANGES);
            assert_eq!(sb.highest_sacked(), Some(at(b, 110 + 20 * 63)));
            // A lower one displaces the highest range.
            let i = sb.on_ack(una, [(at(b, 10), at(b, 20))], nxt);
            assert_eq!((i.newly_sacked, i.sacked_ranges), (10, MAX_SACK_RANGES));
            assert_eq!(sb.highest_sacked(), Some(at(b, 110 + 20 * 62)));
            // A merging one needs no room.
            let i = sb.on_ack(una, [(at(b, 100), at(b, 130))], nxt);
            assert_eq!((i.newly_sacked, i.sacked_ranges), (10, MAX_SACK_RANGES - 1));
            check_invariants(&sb);
            assert!(sb.ranges.capacity() <= 2 * MAX_SACK_RANGES);
        }
    }

    #[test]
    fn accepts_option_arrays_and_slices() {
        let mut sb = Scoreboard::new();
        let sack_ranges = [
            Some((SeqNumber(10), SeqNumber(20))),
            None,
            Some((SeqNumber(30), SeqNumber(40))),
        ];
        let i = sb.on_ack(SeqNumber(0), sack_ranges.iter().flatten(), SeqNumber(100));
        assert_eq!(i.newly_sacked, 20);
        let slice: &[(SeqNumber, SeqNumber)] = &[(SeqNumber(50), SeqNumber(60))];
        assert_eq!(
            sb.on_ack(SeqNumber(0), slice, SeqNumber(100)).newly_sacked,
            10
        );
        assert_eq!(
            sb.on_ack(SeqNumber(0), NO_SACK, SeqNumber(100))
                .newly_sacked,
            0
        );
    }

    /// A per-octet model of the scoreboard, written from RFC 2018 and RFC
    /// 6675 §3: one flag per octet.
    #[derive(Debug)]
    struct Model {
        /// Octet offsets from the initial base: SND.UNA and SND.NXT.
        una: u32,
        nxt: u32,
        /// SACKed octets, by offset.
        sacked: Vec<bool>,
    }

    impl Model {
        fn sacked(&self, o: u32) -> bool {
            o >= self.una && o < self.nxt && self.sacked.get(o as usize).copied().unwrap_or(false)
        }

        /// The maximal runs `[start, end)` of SACKed octets in
        /// `[una, nxt)`, in ascending order.
        fn ranges(&self) -> Vec<(u32, u32)> {
            let mut runs: Vec<(u32, u32)> = Vec::new();
            for o in (self.una..self.nxt).filter(|&o| self.sacked(o)) {
                match runs.last_mut() {
                    Some((_, e)) if *e == o => *e = o + 1,
                    _ => runs.push((o, o + 1)),
                }
            }
            runs
        }
    }

    #[derive(Debug, Clone)]
    struct Step {
        acked: u32,
        sent: u32,
        blocks: Vec<(i32, i32)>,
    }

    fn step() -> impl Strategy<Value = Step> {
        (
            0..40u32,
            0..60u32,
            proptest::collection::vec((-20..130i32, prop_oneof![-3..12i32, -3..50i32]), 0..5),
        )
            .prop_map(|(acked, sent, blocks)| Step {
                acked,
                sent,
                blocks: blocks.into_iter().map(|(l, len)| (l, l + len)).collect(),
            })
    }

    fn base() -> impl Strategy<Value = u32> {
        prop_oneof![
            any::<u32>(),
            (0..300u32).prop_map(|k| u32::MAX - k),
            (0..300u32).prop_map(|k| (1 << 31) - k)
        ]
    }

    const MAX_WINDOW: u32 = 120;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// The scoreboard's ranges, SACKed octets and per-ACK report
        /// (newly SACKed, DupAck, D-SACK, invalid blocks) against the
        /// per-octet model, over windows small enough to count.
        #[test]
        fn matches_per_octet_model(base in base(), start in 0..50u32, steps in proptest::collection::vec(step(), 1..12)) {
            let mut sb = Scoreboard::new();
            let mut m = Model { una: start, nxt: start + 60, sacked: vec![false; 2000] };
            let seq = |o: i64| SeqNumber(base.wrapping_add(o as u32));
            sb.on_ack(seq(i64::from(m.una)), NO_SACK, seq(i64::from(m.nxt)));
            for st in steps {
                let acked = st.acked.min(m.nxt - m.una);
                m.una += acked;
                m.nxt += st.sent.min(MAX_WINDOW - (m.nxt - m.una));
                let (una, win) = (i64::from(m.una), m.nxt - m.una);
                let blocks: Vec<_> = st.blocks.iter().map(|&(l, r)| (seq(una + i64::from(l)), seq(una + i64::from(r)))).collect();
                let info = sb.on_ack(seq(una), &blocks, seq(i64::from(m.nxt)));
                check_invariants(&sb);

                // The model's Update ().
                let (mut newly, mut invalid, mut dsack) = (0, 0, false);
                for (k, &(l, r)) in st.blocks.iter().enumerate() {
                    if k == 0 && r > l {
                        let contained = st.blocks.get(1).is_some_and(|&(l2, r2)| r2 > l2 && l >= l2 && r <= r2);
                        if l < 0 || contained {
                            dsack = true;
                            continue;
                        }
                    }
                    if 0 <= l && l < r && r <= win as i32 {
                        for o in (m.una + l as u32)..(m.una + r as u32) {
                            if !m.sacked[o as usize] {
                                m.sacked[o as usize] = true;
                                newly += 1;
                            }
                        }
                    } else {
                        invalid += 1;
                    }
                }
                let runs = m.ranges();
                let bytes: usize = runs.iter().map(|&(s, e)| (e - s) as usize).sum();
                let highest = runs.last().map(|&(_, e)| seq(i64::from(e)));
                prop_assert_eq!(info, AckInfo {
                    newly_acked: acked as usize,
                    newly_sacked: newly,
                    dup_ack: newly > 0,
                    dsack,
                    invalid_blocks: invalid,
                    highest_sacked: highest,
                    sacked_bytes: bytes,
                    sacked_ranges: runs.len(),
                });

                let expected: Vec<_> = runs.iter().map(|&(s, e)| (seq(i64::from(s)), seq(i64::from(e)))).collect();
                prop_assert_eq!(sb.ranges().collect::<Vec<_>>(), expected);
                prop_assert_eq!(
                    (sb.sacked_bytes(), sb.range_count(), sb.highest_sacked(), sb.is_empty()),
                    (bytes, runs.len(), highest, runs.is_empty())
                );
                for o in (una - 3)..(i64::from(m.nxt) + 3) {
                    prop_assert_eq!(sb.is_sacked(seq(o)), o >= 0 && m.sacked(o as u32), "is_sacked {}", o);
                }
            }
        }

        /// Arbitrary sequence numbers never panic, whatever the caller or peer
        /// says, and the scoreboard's invariants survive.
        #[test]
        fn arbitrary_input_never_panics(
            calls in proptest::collection::vec(
                (any::<u32>(), any::<u32>(), proptest::collection::vec((any::<u32>(), any::<u32>()), 0..6),
                 any::<u32>(), 0..8u8),
                1..20,
            )
        ) {
            let mut sb = Scoreboard::new();
            for (una, nxt, blocks, q, rto) in calls {
                let (una, nxt, q) = (SeqNumber(una), SeqNumber(nxt), SeqNumber(q));
                let blocks: Vec<_> = blocks.into_iter().map(|(l, r)| (SeqNumber(l), SeqNumber(r))).collect();
                let info = sb.on_ack(una, &blocks, nxt);
                check_invariants(&sb);
                prop_assert!(info.sacked_bytes <= window(una, nxt) as usize);
                prop_assert!(info.invalid_blocks <= blocks.len());
                let _ = sb.is_sacked(q);
                if rto == 0 {
                    sb.on_retransmit_timeout();
                    prop_assert!(sb.is_empty() && sb.sacked_bytes() == 0);
                }
            }
        }
    }
}
