//! IPv4 fragment reassembly (RFC 791 §3.2, RFC 815) and the sender's
//! fragmentation planner.
//!
//! # Receiving
//!
//! The IPv4 layer parses a fragment's header and hands the [`Reassembler`]
//! the datagram's [`FragmentKey`] (source, destination, protocol and
//! identification: the fields RFC 791 §3.2 uses to tell datagrams apart),
//! the fragment offset in bytes, the More Fragments flag and the fragment's
//! payload. When the last missing byte arrives, [`Reassembler::add`]
//! returns the whole payload as one contiguous buffer. This module never
//! sees an IP header.
//!
//! The rules, and why:
//!
//! * Fragments may arrive in any order. A fragment whose bytes have all
//!   been received already, with the same contents, is a duplicate and is
//!   ignored (networks duplicate packets; RFC 8200 §4.5 permits ignoring
//!   exact duplicates, as Linux does since commit ade446403bfb).
//! * Any other overlap discards the whole datagram. RFC 791's procedure lets
//!   later data overwrite earlier data; which copy wins is exactly the
//!   ambiguity exploited to slip data past filters (RFC 1858 §4, RFC 3128).
//!   RFC 5722 mandates discarding for IPv6, and Linux applies the same rule
//!   to IPv4 since 2018 (commit 7969e5c40dfd, "ip: discard IPv4 datagrams
//!   with overlapping segments"). Legitimate senders never overlap.
//! * Fail fast: every rejected fragment (see [`FragmentError`]) also
//!   discards the datagram in progress under its key, as Linux does since
//!   commit 0ff89efb5246 ("ip: fail fast on IP defrag errors"): a datagram
//!   with one bad fragment will not reassemble correctly, and keeping it only
//!   holds memory. Later fragments of that datagram start a new entry that
//!   expires or is evicted.
//! * The fragment with More Fragments clear fixes the total length. A second
//!   final fragment with a different end, data beyond the end, or a final
//!   fragment below data already received are errors.
//! * Non-final fragments carry a multiple of 8 bytes (RFC 791 §3.1: the
//!   offset is counted in 8-octet units); empty fragments are rejected.
//! * The timer starts with the first fragment and is never extended (RFC
//!   1122 §3.3.2 asks for a fixed timeout; RFC 791's "maximum of the timer
//!   and the fragment's TTL" rule is not used). The default is Linux's 30 s;
//!   RFC 1122 suggests 60–120 s. Deadlines are enforced by
//!   [`Reassembler::expire`], which the caller runs at
//!   [`Reassembler::poll_at`].
//!
//! Completion uses RFC 815's observation that only the holes matter, in its
//! cheapest form: received pieces are kept sorted and disjoint, so a datagram
//! is complete exactly when its total length is known and the bytes received
//! add up to it, an O(1) test per fragment.
//!
//! # Memory
//!
//! Everything is bounded by [`ReassemblyConfig`]: buffered payload bytes
//! (`max_bytes`, the hard cap), datagrams in progress (`max_datagrams`) and
//! pieces per datagram (`max_fragments_per_datagram`, which also bounds the
//! work per fragment). A fragment that would exceed a cap evicts the oldest
//! datagrams in progress (never the one it belongs to) until it fits, so a
//! flood of fragments that never complete keeps memory bounded at all times
//! and costs legitimate traffic only the datagrams it pushes out.
//!
//! Fragments are stored as the `Bytes` slices the caller hands in, without
//! copying, and counted as the allocation they keep alive (the frame's
//! [`truesize`](crate::buf::PacketBuf::truesize), given to
//! [`Reassembler::add_pinned`]), so `max_bytes` bounds the memory really
//! held. A fragment shorter than [`ReassemblyConfig::copy_below`], or much
//! smaller than its frame ([`crate::buf::worth_compacting`]), is copied
//! into its own allocation first and counted at its length. Per-piece
//! bookkeeping (a few dozen bytes) is not counted; it is bounded by
//! `max_datagrams × max_fragments_per_datagram`. Reassembly copies each
//! byte once, into the datagram's final buffer (a datagram that arrived as
//! one piece is returned as is).
//!
//! # Sending
//!
//! [`fragment_offsets`] plans how to cut a payload for an MTU (RFC 791 §2.3
//! and §3.2, "An Example Fragmentation Procedure"): every piece but the last
//! carries the largest multiple of 8 bytes that fits. The IPv4 layer builds
//! the headers.
//!
//! # Deliberately not here
//!
//! Parsing or building IPv4 headers; the ICMP Time Exceeded message itself
//! ([`Reassembler::expire`] returns what the caller needs to send one);
//! re-fragmenting a fragment in the planner (the caller adds the original
//! offset and ORs in the original More Fragments flag); per-source limits;
//! IPv6.
//!
//! # Example
//!
//! Plan the fragments of a 3000-byte payload for a 1500-byte MTU, and
//! reassemble them arriving out of order:
//!
//! ```
//! use std::net::Ipv4Addr;
//! use bytes::Bytes;
//! use netstrata::internet::fragment::{FragmentKey, Reassembler, ReassemblyConfig};
//! use netstrata::internet::fragment::fragment_offsets;
//! use netstrata::Instant;
//!
//! let plan: Vec<_> = fragment_offsets(3000, 1500, 20)?.collect();
//! let pieces: Vec<_> = plan.iter().map(|f| (f.offset, f.len)).collect();
//! assert_eq!(pieces, [(0, 1480), (1480, 1480), (2960, 40)]);
//! assert!(plan[0].more_fragments && !plan[2].more_fragments);
//!
//! let payload: Vec<u8> = (0..3000).map(|i| i as u8).collect();
//! let key = FragmentKey {
//!     src: Ipv4Addr::new(192, 0, 2, 1),
//!     dst: Ipv4Addr::new(192, 0, 2, 2),
//!     protocol: 17,
//!     ident: 0x1234,
//! };
//! let mut reassembler = Reassembler::new(ReassemblyConfig::default());
//! let mut done = None;
//! for f in plan.iter().rev() {
//!     let piece = Bytes::copy_from_slice(&payload[f.offset..f.offset + f.len]);
//!     done = reassembler.add(Instant::ZERO, key, f.offset, f.more_fragments, piece)?;
//! }
//! assert_eq!(done.unwrap().payload, payload);
//! assert_eq!(reassembler.stats().completed, 1);
//! assert!(reassembler.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::net::Ipv4Addr;
use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};

use crate::buf::worth_compacting;

use crate::time::{Duration, Instant};

/// The unit of fragment offsets: every fragment but the last carries a
/// multiple of this many bytes (RFC 791 §3.1, Fragment Offset).
pub const FRAGMENT_UNIT: usize = 8;

/// The largest IPv4 datagram, header included (RFC 791 §3.1, Total Length).
pub const MAX_DATAGRAM_LEN: usize = 65_535;

/// The shortest IPv4 header (RFC 791 §3.1).
const MIN_HEADER_LEN: usize = 20;

/// What identifies the fragments of one datagram (RFC 791 §3.2: source,
/// destination, protocol and identification).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FragmentKey {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// The protocol field.
    pub protocol: u8,
    /// The identification field.
    pub ident: u16,
}

/// Limits for a [`Reassembler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// How long a datagram may stay incomplete, counted from its first
    /// fragment. Default 30 s (Linux's `ipfrag_time`; RFC 1122 §3.3.2
    /// suggests 60–120 s).
    pub timeout: Duration,
    /// The largest reassembled payload accepted, in bytes. An IPv4 datagram,
    /// header included, cannot exceed 65,535 bytes (RFC 791 §3.1), so the
    /// default is 65,535 − 20 (the shortest header); fragments reaching
    /// beyond it (the "ping of death") are rejected. The IPv4 layer knows
    /// the first fragment's real header length and may check more tightly.
    pub max_payload: usize,
    /// The hard cap on payload bytes buffered across all datagrams in
    /// progress. Default 4 MiB.
    pub max_bytes: usize,
    /// The most datagrams in progress at once. Default 64.
    pub max_datagrams: usize,
    /// The most distinct pieces one datagram may be made of. Default 64,
    /// enough for the largest datagram over any path MTU of 1,044 bytes or
    /// more (1,024 payload bytes per fragment behind a 20-byte header).
    pub max_fragments_per_datagram: usize,
    /// Fragments shorter than this are copied out of their received frame
    /// instead of holding a slice of it (see the module docs). Default 256.
    pub copy_below: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            timeout: Duration::from_secs(30),
            max_payload: MAX_DATAGRAM_LEN - MIN_HEADER_LEN,
            max_bytes: 4 * 1024 * 1024,
            max_datagrams: 64,
            max_fragments_per_datagram: 64,
            copy_below: 256,
        }
    }
}

/// A datagram whose fragments have all arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassembled {
    /// Which datagram.
    pub key: FragmentKey,
    /// The whole payload, in one contiguous buffer.
    pub payload: Bytes,
}

/// A datagram that timed out before all its fragments arrived.
///
/// RFC 792 and RFC 1122 §3.3.2: the receiver may answer with ICMP Time
/// Exceeded, code 1 ("fragment reassembly time exceeded"), but only if
/// fragment zero arrived, since the message quotes the start of the
/// datagram; if it did not, nothing need be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// Which datagram.
    pub key: FragmentKey,
    /// The payload of the fragment at offset zero, if it arrived: the
    /// transport header the ICMP message quotes is at its start.
    pub first_fragment: Option<Bytes>,
}

/// Counters kept by a [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReassemblyStats {
    /// Datagrams reassembled and returned.
    pub completed: u64,
    /// Datagrams dropped because their time ran out.
    pub timed_out: u64,
    /// Datagrams dropped to make room for newer fragments.
    pub evicted: u64,
    /// Datagrams discarded because one of their fragments was rejected
    /// (counted once per datagram, beside the fragment's own counter).
    pub discarded: u64,
    /// Fragments that overlapped data already received.
    pub overlaps: u64,
    /// Fragments ignored as exact duplicates.
    pub duplicates: u64,
    /// Fragments rejected as malformed: empty, unaligned, too long, or
    /// contradicting the datagram's end.
    pub malformed: u64,
    /// Fragments rejected by a limit: too many pieces, or larger than the
    /// whole memory cap.
    pub over_limit: u64,
    /// Memory the buffered fragments hold (their allocations, as counted
    /// against `max_bytes`).
    pub bytes_buffered: usize,
}

/// Why a fragment was rejected. In every case the datagram in progress
/// under the same key, if any, has been discarded with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FragmentError {
    /// The fragment carries no data.
    #[error("empty fragment at offset {offset}")]
    Empty {
        /// The fragment's offset in bytes.
        offset: usize,
    },
    /// The offset is not a multiple of 8, or a fragment other than the last
    /// carries a length that is not.
    #[error("unaligned fragment: offset {offset}, length {len}")]
    Unaligned {
        /// The fragment's offset in bytes.
        offset: usize,
        /// The fragment's length.
        len: usize,
    },
    /// The fragment reaches beyond the largest payload accepted.
    #[error("fragment at offset {offset} with {len} bytes exceeds the maximum payload of {max}")]
    TooLong {
        /// The fragment's offset in bytes.
        offset: usize,
        /// The fragment's length.
        len: usize,
        /// [`ReassemblyConfig::max_payload`].
        max: usize,
    },
    /// A final fragment disagrees with the end fixed by an earlier one.
    #[error("final fragment ends at {end}, but the datagram ends at {total}")]
    ConflictingEnd {
        /// Where this final fragment ends.
        end: usize,
        /// The length fixed earlier.
        total: usize,
    },
    /// Data lies beyond the datagram's end: a fragment reaching past a known
    /// end, or a final fragment ending before data already received.
    #[error("data up to {end} lies beyond the datagram's end at {total}")]
    BeyondEnd {
        /// Where the data ends.
        end: usize,
        /// Where the datagram ends.
        total: usize,
    },
    /// The fragment overlaps data already received (and is not an exact
    /// duplicate of it).
    #[error("fragment at offset {offset} with {len} bytes overlaps received data")]
    Overlap {
        /// The fragment's offset in bytes.
        offset: usize,
        /// The fragment's length.
        len: usize,
    },
    /// The datagram already holds the most pieces allowed.
    #[error("more than {max} fragments in one datagram")]
    TooManyFragments {
        /// [`ReassemblyConfig::max_fragments_per_datagram`].
        max: usize,
    },
    /// The fragment cannot be buffered within the configured limits even
    /// after evicting every other datagram.
    #[error("no room to buffer a {len}-byte fragment")]
    NoCapacity {
        /// The fragment's length.
        len: usize,
    },
}

impl FragmentError {
    fn count(&self, stats: &mut ReassemblyStats) {
        match self {
            FragmentError::Overlap { .. } => stats.overlaps += 1,
            FragmentError::TooManyFragments { .. } | FragmentError::NoCapacity { .. } => {
                stats.over_limit += 1
            }
            FragmentError::Empty { .. }
            | FragmentError::Unaligned { .. }
            | FragmentError::TooLong { .. }
            | FragmentError::ConflictingEnd { .. }
            | FragmentError::BeyondEnd { .. } => stats.malformed += 1,
        }
    }
}

/// A received run of bytes.
#[derive(Debug, Clone)]
struct Piece {
    offset: usize,
    data: Bytes,
}

impl Piece {
    fn end(&self) -> usize {
        self.offset + self.data.len()
    }
}

/// A datagram in progress.
#[derive(Debug)]
struct Datagram {
    /// When it expires; with `seq`, its key in the deadline index.
    deadline: Instant,
    seq: u64,
    /// Sorted by offset, pairwise disjoint, none empty, all within `total`
    /// once that is known.
    pieces: Vec<Piece>,
    /// Sum of the pieces' lengths.
    received: usize,
    /// The memory the pieces hold, as counted against `max_bytes`.
    charged: usize,
    /// The payload length, once the final fragment has arrived.
    total: Option<usize>,
}

impl Datagram {
    fn highest_end(&self) -> usize {
        self.pieces.last().map_or(0, Piece::end)
    }

    /// Where a new piece `offset..end` goes, or that it is a duplicate.
    /// The piece's bytes are `data`.
    fn place(&self, offset: usize, data: &[u8]) -> Result<Placement, FragmentError> {
        let end = offset + data.len();
        // The first piece ending after `offset`: everything before it lies
        // wholly before the new piece.
        let first = self.pieces.partition_point(|p| p.end() <= offset);
        let mut covered_to = offset;
        let mut intersects = false;
        let mut duplicate = true;
        for p in self.pieces[first..].iter().take_while(|p| p.offset < end) {
            intersects = true;
            if p.offset > covered_to {
                duplicate = false; // a gap: the new piece brings new data
                break;
            }
            let from = covered_to.max(p.offset);
            let to = end.min(p.end());
            if p.data[from - p.offset..to - p.offset] != data[from - offset..to - offset] {
                duplicate = false;
                break;
            }
            covered_to = to;
        }
        if !intersects {
            Ok(Placement::At(first))
        } else if duplicate && covered_to >= end {
            Ok(Placement::Duplicate)
        } else {
            Err(FragmentError::Overlap {
                offset,
                len: data.len(),
            })
        }
    }

    /// Checks a new piece `offset..end` against the datagram's end.
    fn check_end(&self, end: usize, more_fragments: bool) -> Result<(), FragmentError> {
        if more_fragments {
            if let Some(total) = self.total
                && end > total
            {
                return Err(FragmentError::BeyondEnd { end, total });
            }
        } else {
            if let Some(total) = self.total
                && total != end
            {
                return Err(FragmentError::ConflictingEnd { end, total });
            }
            let highest = self.highest_end();
            if highest > end {
                return Err(FragmentError::BeyondEnd {
                    end: highest,
                    total: end,
                });
            }
        }
        Ok(())
    }

    fn is_complete(&self) -> bool {
        self.total == Some(self.received)
    }

    /// The payload; only for a complete datagram.
    fn assemble(mut self) -> Bytes {
        if self.pieces.len() == 1 {
            return self.pieces.pop().map(|p| p.data).unwrap_or_default();
        }
        let mut buf = BytesMut::with_capacity(self.received);
        for p in &self.pieces {
            buf.extend_from_slice(&p.data);
        }
        buf.freeze()
    }
}

enum Placement {
    At(usize),
    Duplicate,
}

/// Reassembles IPv4 datagrams from their fragments; see the module docs.
///
/// Datagrams in progress are found by key in a `BTreeMap` and ordered by
/// deadline in a second one, so [`Reassembler::add`], eviction and
/// [`Reassembler::poll_at`] cost O(log n) and never scan. With a fixed
/// timeout the earliest deadline is also the oldest datagram, the one
/// evicted first.
#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    datagrams: BTreeMap<FragmentKey, Datagram>,
    deadlines: BTreeMap<(Instant, u64), FragmentKey>,
    next_seq: u64,
    stats: ReassemblyStats,
}

impl Reassembler {
    /// An empty reassembler with the given limits.
    pub fn new(config: ReassemblyConfig) -> Reassembler {
        Reassembler {
            config,
            datagrams: BTreeMap::new(),
            deadlines: BTreeMap::new(),
            next_seq: 0,
            stats: ReassemblyStats::default(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &ReassemblyConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// Datagrams in progress.
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    /// Whether no datagram is in progress.
    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Adds a fragment received at `now`: `payload` is its data, found at
    /// `offset` bytes into the datagram's payload; `more_fragments` is the
    /// MF flag. Returns the whole payload when this fragment completes the
    /// datagram, `None` while pieces are missing (or when the fragment was
    /// an exact duplicate, which is counted and ignored).
    ///
    /// On error the fragment is dropped and so is the datagram in progress
    /// under `key`, if any; both are counted. The caller only logs: no ICMP
    /// error is due for a bad fragment.
    pub fn add(
        &mut self,
        now: Instant,
        key: FragmentKey,
        offset: usize,
        more_fragments: bool,
        payload: Bytes,
    ) -> Result<Option<Reassembled>, FragmentError> {
        let truesize = payload.len();
        self.add_pinned(now, key, offset, more_fragments, payload, truesize)
    }

    /// As [`Reassembler::add`], for a `payload` that keeps an allocation
    /// of `truesize` bytes alive (a slice of its received frame).
    pub fn add_pinned(
        &mut self,
        now: Instant,
        key: FragmentKey,
        offset: usize,
        more_fragments: bool,
        payload: Bytes,
        truesize: usize,
    ) -> Result<Option<Reassembled>, FragmentError> {
        match self.insert(now, key, offset, more_fragments, payload, truesize) {
            Ok(done) => Ok(done),
            Err(err) => {
                err.count(&mut self.stats);
                if self.remove(key).is_some() {
                    self.stats.discarded += 1;
                    log::debug!("discarding datagram {key:?}: {err}");
                } else {
                    log::trace!("dropping fragment of {key:?}: {err}");
                }
                Err(err)
            }
        }
    }

    fn insert(
        &mut self,
        now: Instant,
        key: FragmentKey,
        offset: usize,
        more_fragments: bool,
        payload: Bytes,
        truesize: usize,
    ) -> Result<Option<Reassembled>, FragmentError> {
        let len = payload.len();
        if len == 0 {
            return Err(FragmentError::Empty { offset });
        }
        if offset % FRAGMENT_UNIT != 0 || (more_fragments && len % FRAGMENT_UNIT != 0) {
            return Err(FragmentError::Unaligned { offset, len });
        }
        let max = self.config.max_payload;
        let end = match offset.checked_add(len) {
            Some(end) if end <= max => end,
            _ => return Err(FragmentError::TooLong { offset, len, max }),
        };
        if len > self.config.max_bytes {
            return Err(FragmentError::NoCapacity { len });
        }

        let index = match self.datagrams.get(&key) {
            Some(d) => {
                d.check_end(end, more_fragments)?;
                let index = match d.place(offset, &payload)? {
                    Placement::At(index) => index,
                    Placement::Duplicate => {
                        self.stats.duplicates += 1;
                        return Ok(None);
                    }
                };
                if d.pieces.len() >= self.config.max_fragments_per_datagram {
                    return Err(FragmentError::TooManyFragments {
                        max: self.config.max_fragments_per_datagram,
                    });
                }
                index
            }
            None => {
                if self.config.max_datagrams == 0 || self.config.max_fragments_per_datagram == 0 {
                    return Err(FragmentError::NoCapacity { len });
                }
                while self.datagrams.len() >= self.config.max_datagrams {
                    if !self.evict_oldest_except(key) {
                        break;
                    }
                }
                0
            }
        };
        let copy = len < self.config.copy_below || worth_compacting(len, truesize);
        let charge = if copy { len } else { truesize.max(len) };
        while self.stats.bytes_buffered + charge > self.config.max_bytes {
            if !self.evict_oldest_except(key) {
                return Err(FragmentError::NoCapacity { len });
            }
        }

        let data = if copy {
            Bytes::copy_from_slice(&payload)
        } else {
            payload
        };
        let d = match self.datagrams.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let deadline = now + self.config.timeout;
                let seq = self.next_seq;
                self.next_seq += 1;
                self.deadlines.insert((deadline, seq), key);
                e.insert(Datagram {
                    deadline,
                    seq,
                    pieces: Vec::new(),
                    received: 0,
                    charged: 0,
                    total: None,
                })
            }
        };
        d.pieces.insert(index, Piece { offset, data });
        d.received += len;
        d.charged += charge;
        if !more_fragments {
            d.total = Some(end);
        }
        self.stats.bytes_buffered += charge;

        if !d.is_complete() {
            return Ok(None);
        }
        let Some(d) = self.remove(key) else {
            return Ok(None);
        };
        self.stats.completed += 1;
        Ok(Some(Reassembled {
            key,
            payload: d.assemble(),
        }))
    }

    /// The earliest deadline of a datagram in progress: when
    /// [`Reassembler::expire`] next has work. O(log n).
    pub fn poll_at(&self) -> Option<Instant> {
        self.deadlines
            .first_key_value()
            .map(|(&(deadline, _), _)| deadline)
    }

    /// Removes the datagrams whose deadline is at or before `now`, yielding
    /// each, oldest first, so the caller can send ICMP Time Exceeded where
    /// due. Datagrams are removed as the iterator is consumed: drain it
    /// (`.count()` discards them all).
    pub fn expire(&mut self, now: Instant) -> impl Iterator<Item = Expired> + '_ {
        core::iter::from_fn(move || {
            let (&(deadline, _), &key) = self.deadlines.first_key_value()?;
            if deadline > now {
                return None;
            }
            let d = self.remove(key)?;
            self.stats.timed_out += 1;
            log::debug!("reassembly of {key:?} timed out");
            let first_fragment = d
                .pieces
                .into_iter()
                .next()
                .filter(|p| p.offset == 0)
                .map(|p| p.data);
            Some(Expired {
                key,
                first_fragment,
            })
        })
    }

    /// Evicts the oldest datagram other than `keep`; false if there is none.
    fn evict_oldest_except(&mut self, keep: FragmentKey) -> bool {
        // At most two steps: `keep` appears once.
        let victim = self.deadlines.values().copied().find(|k| *k != keep);
        match victim {
            Some(key) => {
                self.remove(key);
                self.stats.evicted += 1;
                log::debug!("evicting datagram {key:?} in reassembly");
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, key: FragmentKey) -> Option<Datagram> {
        let d = self.datagrams.remove(&key)?;
        self.deadlines.remove(&(d.deadline, d.seq));
        self.stats.bytes_buffered -= d.charged;
        Some(d)
    }

    /// Checks every internal invariant (tests only).
    #[cfg(test)]
    fn check_invariants(&self) {
        let c = &self.config;
        assert!(self.stats.bytes_buffered <= c.max_bytes);
        assert!(self.datagrams.len() <= c.max_datagrams);
        assert_eq!(self.datagrams.len(), self.deadlines.len());
        let mut bytes = 0;
        for (key, d) in &self.datagrams {
            assert_eq!(self.deadlines.get(&(d.deadline, d.seq)), Some(key));
            assert!(!d.pieces.is_empty());
            assert!(d.pieces.len() <= c.max_fragments_per_datagram);
            assert!(!d.is_complete());
            let mut prev_end = 0;
            let mut sum = 0;
            for p in &d.pieces {
                assert!(!p.data.is_empty());
                assert!(p.offset >= prev_end);
                prev_end = p.end();
                sum += p.data.len();
            }
            assert!(prev_end <= d.total.unwrap_or(c.max_payload));
            assert_eq!(sum, d.received);
            assert!(d.charged >= sum);
            bytes += d.charged;
        }
        assert_eq!(bytes, self.stats.bytes_buffered);
    }
}

/// One fragment of a planned datagram: `len` payload bytes from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedFragment {
    /// Where the piece starts in the payload, in bytes (a multiple of 8;
    /// the header field holds `offset / 8`).
    pub offset: usize,
    /// Payload bytes in this piece.
    pub len: usize,
    /// The More Fragments flag: set on every piece but the last.
    pub more_fragments: bool,
}

/// Why a datagram cannot be fragmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The MTU cannot carry the header and 8 bytes of payload.
    #[error("an MTU of {mtu} cannot carry a {header_len}-byte header and 8 bytes of payload")]
    MtuTooSmall {
        /// The MTU.
        mtu: usize,
        /// The header length.
        header_len: usize,
    },
    /// Header and payload exceed the largest IPv4 datagram.
    #[error("a {payload_len}-byte payload with a {header_len}-byte header exceeds 65535 bytes")]
    TooLong {
        /// The payload length.
        payload_len: usize,
        /// The header length.
        header_len: usize,
    },
}

/// Plans the fragments of a datagram with `payload_len` bytes of payload
/// behind an `ip_header_len`-byte header, for a link of `mtu` bytes (RFC
/// 791 §3.2): each piece but the last carries the largest multiple of 8
/// bytes that fits, and the pieces cover the payload in order.
///
/// A datagram that fits is one piece at offset 0 without More Fragments;
/// so is an empty payload. Pass the first fragment's header length: later
/// fragments carry only the options marked "copied" (RFC 791 §3.1), so their
/// headers are never longer and every piece fits.
pub fn fragment_offsets(
    payload_len: usize,
    mtu: usize,
    ip_header_len: usize,
) -> Result<FragmentPlan, PlanError> {
    let too_small = PlanError::MtuTooSmall {
        mtu,
        header_len: ip_header_len,
    };
    match payload_len.checked_add(ip_header_len) {
        Some(total) if total <= MAX_DATAGRAM_LEN => {}
        _ => {
            return Err(PlanError::TooLong {
                payload_len,
                header_len: ip_header_len,
            });
        }
    }
    let room = mtu.checked_sub(ip_header_len).ok_or(too_small)?;
    let chunk = if payload_len <= room {
        payload_len
    } else {
        let chunk = room - room % FRAGMENT_UNIT;
        if chunk == 0 {
            return Err(too_small);
        }
        chunk
    };
    Ok(FragmentPlan {
        payload_len,
        chunk,
        next: 0,
        done: false,
    })
}

/// The fragments planned by [`fragment_offsets`], in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentPlan {
    payload_len: usize,
    chunk: usize,
    next: usize,
    done: bool,
}

impl FragmentPlan {
    /// Payload bytes in every piece but the last.
    pub fn bytes_per_fragment(&self) -> usize {
        self.chunk
    }
}

impl Iterator for FragmentPlan {
    type Item = PlannedFragment;

    fn next(&mut self) -> Option<PlannedFragment> {
        if self.done {
            return None;
        }
        let offset = self.next;
        let len = self.chunk.min(self.payload_len - offset);
        let more_fragments = offset + len < self.payload_len;
        self.next = offset + len;
        self.done = !more_fragments;
        Some(PlannedFragment {
            offset,
            len,
            more_fragments,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = if self.done {
            0
        } else {
            (self.payload_len - self.next)
                .div_ceil(self.chunk.max(1))
                .max(1)
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for FragmentPlan {}

impl core::iter::FusedIterator for FragmentPlan {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(ident: u16) -> FragmentKey {
        FragmentKey {
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(192, 0, 2, 2),
            protocol: 17,
            ident,
        }
    }

    fn payload(len: usize) -> Bytes {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// The fragments of `data` for `mtu` with a 20-byte header.
    fn fragments(data: &Bytes, mtu: usize) -> Vec<(usize, bool, Bytes)> {
        fragment_offsets(data.len(), mtu, 20)
            .unwrap()
            .map(|f| {
                (
                    f.offset,
                    f.more_fragments,
                    data.slice(f.offset..f.offset + f.len),
                )
            })
            .collect()
    }

    const T0: Instant = Instant::from_secs(100);

    #[test]
    fn in_order_and_reverse() {
        let data = payload(4000);
        let frags = fragments(&data, 1500);
        assert_eq!(frags.len(), 3);
        for order in [frags.clone(), frags.iter().rev().cloned().collect()] {
            let mut r = Reassembler::new(ReassemblyConfig::default());
            let last = order.len() - 1;
            for (i, (off, mf, bytes)) in order.into_iter().enumerate() {
                let out = r.add(T0, key(1), off, mf, bytes).unwrap();
                r.check_invariants();
                if i == last {
                    let out = out.unwrap();
                    assert_eq!(out.key, key(1));
                    assert_eq!(out.payload, data);
                } else {
                    assert!(out.is_none());
                    assert_eq!(r.len(), 1);
                }
            }
            let s = r.stats();
            assert_eq!((s.completed, s.bytes_buffered), (1, 0));
            assert!(r.is_empty());
            assert_eq!(r.poll_at(), None);
        }
    }

    #[test]
    fn datagrams_are_kept_apart_by_key() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let a = payload(3000);
        let b: Bytes = a.iter().map(|x| !x).collect();
        let fa = fragments(&a, 1500);
        let fb = fragments(&b, 1500);
        let mut k2 = key(1);
        k2.src = Ipv4Addr::new(198, 51, 100, 1);
        for i in 0..fa.len() - 1 {
            assert!(
                r.add(T0, key(1), fa[i].0, fa[i].1, fa[i].2.clone())
                    .unwrap()
                    .is_none()
            );
            assert!(
                r.add(T0, k2, fb[i].0, fb[i].1, fb[i].2.clone())
                    .unwrap()
                    .is_none()
            );
        }
        let (o, m, d) = fb.last().unwrap().clone();
        assert_eq!(r.add(T0, k2, o, m, d).unwrap().unwrap().payload, b);
        let (o, m, d) = fa.last().unwrap().clone();
        assert_eq!(r.add(T0, key(1), o, m, d).unwrap().unwrap().payload, a);
    }

    #[test]
    fn single_piece_is_returned_without_copying() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(1000);
        let out = r.add(T0, key(1), 0, false, data.clone()).unwrap().unwrap();
        assert_eq!(out.payload.as_ptr(), data.as_ptr());
    }

    #[test]
    fn small_fragments_are_copied_out_large_ones_kept() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let frame = payload(2000);
        let small = frame.slice(0..64);
        let large = frame.slice(64..64 + 512);
        r.add(T0, key(1), 0, true, small.clone()).unwrap();
        r.add(T0, key(1), 64, true, large.clone()).unwrap();
        let d = &r.datagrams[&key(1)];
        assert_ne!(d.pieces[0].data.as_ptr(), small.as_ptr());
        assert_eq!(d.pieces[1].data.as_ptr(), large.as_ptr());
        assert_eq!(r.stats().bytes_buffered, 64 + 512);
    }

    #[test]
    fn fragments_count_what_they_pin_and_small_slices_of_big_frames_are_copied() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let frame = payload(65000);
        // A slice of an ordinary frame buffer: kept, charged the buffer.
        let ordinary = frame.slice(0..1480);
        r.add_pinned(T0, key(1), 0, true, ordinary.clone(), 1770)
            .unwrap();
        // 512 bytes of a 64 KiB allocation: copied, charged 512.
        let small = frame.slice(2000..2512);
        r.add_pinned(T0, key(1), 1480, true, small.clone(), 65536)
            .unwrap();
        let d = &r.datagrams[&key(1)];
        assert_eq!(d.pieces[0].data.as_ptr(), ordinary.as_ptr());
        assert_ne!(d.pieces[1].data.as_ptr(), small.as_ptr());
        assert_eq!(r.stats().bytes_buffered, 1770 + 512);
        r.check_invariants();
    }

    #[test]
    fn duplicates_are_ignored() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(48);
        r.add(T0, key(1), 0, true, data.slice(0..16)).unwrap();
        r.add(T0, key(1), 16, true, data.slice(16..32)).unwrap();
        // Exact duplicate, a sub-range, and a range spanning two pieces.
        for (a, b) in [(0, 16), (8, 16), (8, 24), (0, 32)] {
            assert_eq!(r.add(T0, key(1), a, true, data.slice(a..b)).unwrap(), None);
        }
        assert_eq!(r.stats().duplicates, 4);
        assert_eq!(r.stats().bytes_buffered, 32);
        r.check_invariants();
        let out = r.add(T0, key(1), 32, false, data.slice(32..)).unwrap();
        assert_eq!(out.unwrap().payload, data);
        // A duplicate after completion starts a new datagram.
        assert_eq!(
            r.add(T0, key(1), 32, false, data.slice(32..)).unwrap(),
            None
        );
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn overlaps_discard_the_datagram() {
        let data = payload(64);
        let mut altered = data.to_vec();
        altered[20] ^= 0xff;
        let altered = Bytes::from(altered);
        // (offset, end, bytes): received data and a gap, a rewrite of
        // received bytes, a gap and received data, and all of it.
        let cases: [(usize, usize, &Bytes); 4] = [
            (16, 32, &data),
            (16, 24, &altered),
            (24, 40, &data),
            (0, 48, &data),
        ];
        for (a, b, src) in cases {
            let mut r = Reassembler::new(ReassemblyConfig::default());
            r.add(T0, key(1), 0, true, data.slice(0..16)).unwrap();
            r.add(T0, key(1), 16, true, data.slice(16..24)).unwrap();
            r.add(T0, key(1), 32, true, data.slice(32..40)).unwrap();
            let err = r.add(T0, key(1), a, true, src.slice(a..b)).unwrap_err();
            assert_eq!(
                err,
                FragmentError::Overlap {
                    offset: a,
                    len: b - a
                }
            );
            assert!(r.is_empty());
            let s = r.stats();
            assert_eq!((s.overlaps, s.discarded, s.bytes_buffered), (1, 1, 0));
            r.check_invariants();
        }
    }

    #[test]
    fn conflicting_ends_discard_the_datagram() {
        let data = payload(200);
        let mut r = Reassembler::new(ReassemblyConfig::default());
        r.add(T0, key(1), 96, false, data.slice(96..100)).unwrap();
        // A duplicate final fragment is fine.
        r.add(T0, key(1), 96, false, data.slice(96..100)).unwrap();
        assert_eq!(
            r.add(T0, key(1), 96, false, data.slice(96..104)),
            Err(FragmentError::ConflictingEnd {
                end: 104,
                total: 100
            })
        );
        assert!(r.is_empty());

        // Data beyond a known end.
        r.add(T0, key(2), 96, false, data.slice(96..100)).unwrap();
        assert_eq!(
            r.add(T0, key(2), 96, true, data.slice(96..104)),
            Err(FragmentError::BeyondEnd {
                end: 104,
                total: 100
            })
        );
        assert!(r.is_empty());

        // A final fragment ending before data already received.
        r.add(T0, key(3), 96, true, data.slice(96..104)).unwrap();
        assert_eq!(
            r.add(T0, key(3), 0, false, data.slice(0..50)),
            Err(FragmentError::BeyondEnd {
                end: 104,
                total: 50
            })
        );
        assert!(r.is_empty());
        let s = r.stats();
        assert_eq!((s.malformed, s.discarded), (3, 3));
    }

    #[test]
    fn malformed_fragments_are_rejected() {
        let cfg = ReassemblyConfig::default();
        let max = cfg.max_payload;
        let cases = [
            (16, true, 0, FragmentError::Empty { offset: 16 }),
            (
                16,
                true,
                12,
                FragmentError::Unaligned {
                    offset: 16,
                    len: 12,
                },
            ),
            (
                12,
                false,
                8,
                FragmentError::Unaligned { offset: 12, len: 8 },
            ),
            // The ping of death: the last fragment reaches past 65,535.
            (
                65_528,
                false,
                100,
                FragmentError::TooLong {
                    offset: 65_528,
                    len: 100,
                    max,
                },
            ),
            (
                usize::MAX - 7,
                false,
                16,
                FragmentError::TooLong {
                    offset: usize::MAX - 7,
                    len: 16,
                    max,
                },
            ),
        ];
        for (offset, mf, len, want) in cases {
            let mut r = Reassembler::new(cfg.clone());
            r.add(T0, key(1), 0, true, payload(8)).unwrap();
            assert_eq!(r.add(T0, key(1), offset, mf, payload(len)), Err(want));
            assert!(r.is_empty(), "{want}");
            assert_eq!(r.stats().malformed, 1);
            // Without a datagram in progress: dropped, nothing discarded.
            assert_eq!(r.add(T0, key(2), offset, mf, payload(len)), Err(want));
            assert_eq!(r.stats().discarded, 1);
        }
        // The largest payload is accepted.
        let mut r = Reassembler::new(cfg);
        let data = payload(max);
        for (off, mf, bytes) in fragments(&data, 9000).into_iter().rev() {
            if let Some(out) = r.add(T0, key(1), off, mf, bytes).unwrap() {
                assert_eq!(out.payload, data);
            }
        }
        assert_eq!(r.stats().completed, 1);
    }

    #[test]
    fn too_many_fragments() {
        let cfg = ReassemblyConfig {
            max_fragments_per_datagram: 4,
            ..ReassemblyConfig::default()
        };
        let mut r = Reassembler::new(cfg);
        for i in 0..4 {
            r.add(T0, key(1), i * 16, true, payload(8)).unwrap();
        }
        // A duplicate is not a new piece.
        r.add(T0, key(1), 0, true, payload(8)).unwrap();
        assert_eq!(
            r.add(T0, key(1), 64, true, payload(8)),
            Err(FragmentError::TooManyFragments { max: 4 })
        );
        assert!(r.is_empty());
        assert_eq!(r.stats().over_limit, 1);
    }

    #[test]
    fn timeout() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let data = payload(3000);
        let frags = fragments(&data, 1500);
        r.add(T0, key(1), frags[0].0, frags[0].1, frags[0].2.clone())
            .unwrap();
        let later = T0 + Duration::from_secs(5);
        r.add(later, key(2), frags[1].0, frags[1].1, frags[1].2.clone())
            .unwrap();
        // Later fragments do not extend the deadline.
        r.add(later, key(1), frags[1].0, frags[1].1, frags[1].2.clone())
            .unwrap();
        let deadline = T0 + Duration::from_secs(30);
        assert_eq!(r.poll_at(), Some(deadline));
        assert_eq!(r.expire(deadline - Duration::from_micros(1)).count(), 0);
        assert_eq!(r.len(), 2);

        let expired: Vec<_> = r.expire(deadline).collect();
        assert_eq!(
            expired,
            vec![Expired {
                key: key(1),
                first_fragment: Some(frags[0].2.clone()),
            }]
        );
        assert_eq!(r.poll_at(), Some(later + Duration::from_secs(30)));
        let s = r.stats();
        assert_eq!((s.timed_out, s.bytes_buffered), (1, frags[1].2.len()));

        // The missing piece no longer completes anything.
        let (o, m, d) = frags[2].clone();
        assert_eq!(r.add(deadline, key(1), o, m, d).unwrap(), None);

        let expired: Vec<_> = r.expire(Instant::from_secs(1000)).collect();
        assert_eq!(expired.len(), 2);
        assert_eq!(expired[0].key, key(2));
        assert_eq!(expired[0].first_fragment, None);
        assert!(r.is_empty());
        assert_eq!(r.poll_at(), None);
        assert_eq!(r.stats().timed_out, 3);
        assert_eq!(r.stats().bytes_buffered, 0);
    }

    #[test]
    fn flood_of_unfinished_datagrams_stays_bounded() {
        let frag = payload(1480);
        let configs = [
            ReassemblyConfig::default(),
            // Bytes, not the datagram count, are the binding limit.
            ReassemblyConfig {
                max_bytes: 64 * 1024,
                max_datagrams: 100_000,
                ..ReassemblyConfig::default()
            },
        ];
        for cfg in configs {
            let mut r = Reassembler::new(cfg.clone());
            let mut now = T0;
            for i in 0..10_000u32 {
                let mut k = key(i as u16);
                k.src = Ipv4Addr::from(0x0a00_0000 | (i >> 16));
                r.add(now, k, 0, true, frag.clone()).unwrap();
                let s = r.stats();
                assert!(s.bytes_buffered <= cfg.max_bytes);
                assert!(r.len() <= cfg.max_datagrams);
                now += Duration::from_micros(10);
            }
            r.check_invariants();
            let s = r.stats();
            assert_eq!(s.evicted, 10_000 - r.len() as u64);
            assert!(s.evicted > 0);

            // A legitimate datagram still gets through.
            let data = payload(4000);
            let mut done = None;
            for (o, m, d) in fragments(&data, 1500) {
                done = r.add(now, key(u16::MAX), o, m, d).unwrap();
            }
            assert_eq!(done.unwrap().payload, data);
        }
    }

    #[test]
    fn eviction_spares_the_datagram_being_added_to() {
        let cfg = ReassemblyConfig {
            max_bytes: 4096,
            ..ReassemblyConfig::default()
        };
        let mut r = Reassembler::new(cfg);
        r.add(T0, key(1), 0, true, payload(1024)).unwrap();
        r.add(T0, key(2), 0, true, payload(1024)).unwrap();
        r.add(T0, key(3), 0, true, payload(1024)).unwrap();
        // key(1) is the oldest but is the one growing: key(2) goes.
        r.add(T0, key(1), 1024, true, payload(2048)).unwrap();
        assert!(r.datagrams.contains_key(&key(1)));
        assert!(!r.datagrams.contains_key(&key(2)));
        assert!(r.datagrams.contains_key(&key(3)));
        assert_eq!(r.stats().evicted, 1);
        // key(1) cannot grow past the cap even alone.
        assert_eq!(
            r.add(T0, key(1), 3072, true, payload(1032)),
            Err(FragmentError::NoCapacity { len: 1032 })
        );
        assert!(r.is_empty());
        assert_eq!(r.stats().evicted, 2);
        // A fragment larger than the whole cap evicts nothing.
        r.add(T0, key(4), 0, true, payload(8)).unwrap();
        assert_eq!(
            r.add(T0, key(5), 0, true, payload(4104)),
            Err(FragmentError::NoCapacity { len: 4104 })
        );
        assert_eq!(r.len(), 1);
        r.check_invariants();
    }

    #[test]
    fn zero_limits_reject_everything() {
        for cfg in [
            ReassemblyConfig {
                max_datagrams: 0,
                ..ReassemblyConfig::default()
            },
            ReassemblyConfig {
                max_fragments_per_datagram: 0,
                ..ReassemblyConfig::default()
            },
            ReassemblyConfig {
                max_bytes: 0,
                ..ReassemblyConfig::default()
            },
        ] {
            let mut r = Reassembler::new(cfg);
            assert_eq!(
                r.add(T0, key(1), 0, true, payload(8)),
                Err(FragmentError::NoCapacity { len: 8 })
            );
            assert!(r.is_empty());
        }
    }

    #[test]
    fn planner() {
        let plan: Vec<_> = fragment_offsets(4000, 1500, 20).unwrap().collect();
        let f = |offset, len, more_fragments| PlannedFragment {
            offset,
            len,
            more_fragments,
        };
        assert_eq!(
            plan,
            [f(0, 1480, true), f(1480, 1480, true), f(2960, 1040, false)]
        );
        // RFC 791's minimum MTU: 60-byte header and 8 bytes of payload.
        let plan = fragment_offsets(20, 68, 60).unwrap();
        assert_eq!(plan.len(), 3);
        assert_eq!(plan.bytes_per_fragment(), 8);
        // An odd room rounds down to a multiple of 8.
        assert_eq!(
            fragment_offsets(100, 75, 20).unwrap().next(),
            Some(f(0, 48, true))
        );
        // Fits: one piece, even if the room is under 8 bytes.
        assert_eq!(
            fragment_offsets(4, 24, 20).unwrap().collect::<Vec<_>>(),
            [f(0, 4, false)]
        );
        assert_eq!(
            fragment_offsets(0, 20, 20).unwrap().collect::<Vec<_>>(),
            [f(0, 0, false)]
        );
        let small = |mtu, header_len| PlanError::MtuTooSmall { mtu, header_len };
        assert_eq!(fragment_offsets(100, 27, 20), Err(small(27, 20)));
        assert_eq!(fragment_offsets(0, 19, 20), Err(small(19, 20)));
        assert_eq!(
            fragment_offsets(65_516, 1500, 20),
            Err(PlanError::TooLong {
                payload_len: 65_516,
                header_len: 20
            })
        );
        assert_eq!(fragment_offsets(65_515, 1500, 20).unwrap().count(), 45);
    }

    /// The fragments of `data` cut at the given multiples of 8.
    fn cut(data: &Bytes, cuts: &[usize]) -> Vec<(usize, bool, Bytes)> {
        let mut points: Vec<usize> = cuts
            .iter()
            .map(|c| c / 8 * 8)
            .filter(|&c| c > 0 && c < data.len())
            .collect();
        points.sort_unstable();
        points.dedup();
        points.insert(0, 0);
        points.push(data.len());
        points
            .windows(2)
            .map(|w| (w[0], w[1] < data.len(), data.slice(w[0]..w[1])))
            .collect()
    }

    proptest! {
        #[test]
        fn any_order_with_duplicates_reassembles(
            (data, frags) in (1usize..5000)
                .prop_flat_map(|len| (
                    proptest::collection::vec(any::<u8>(), len),
                    proptest::collection::vec(0..len, 0..40),
                ))
                .prop_flat_map(|(data, cuts)| {
                    let data = Bytes::from(data);
                    let frags = cut(&data, &cuts);
                    let n = frags.len();
                    (
                        Just(data),
                        Just(frags),
                        proptest::collection::vec(0..n, 0..8),
                    )
                })
                .prop_flat_map(|(data, frags, dups)| {
                    let mut all = frags.clone();
                    all.extend(dups.iter().map(|&i| frags[i].clone()));
                    (Just(data), Just(all).prop_shuffle())
                }),
        ) {
            let distinct: usize = {
                let mut o: Vec<_> = frags.iter().map(|f| f.0).collect();
                o.sort_unstable();
                o.dedup();
                o.len()
            };
            let mut r = Reassembler::new(ReassemblyConfig::default());
            let mut seen = std::collections::BTreeSet::new();
            let mut done = None;
            for (off, mf, bytes) in frags {
                seen.insert(off);
                let out = r.add(T0, key(7), off, mf, bytes).unwrap();
                r.check_invariants();
                if let Some(out) = out {
                    done = Some(out);
                    break;
                }
            }
            prop_assert_eq!(seen.len(), distinct);
            prop_assert_eq!(done.unwrap().payload, data);
            prop_assert!(r.is_empty());
            prop_assert_eq!(r.stats().bytes_buffered, 0);
        }

        #[test]
        fn planned_fragments_reassemble(
            len in 0usize..=65_515,
            mtu in 68usize..10_000,
            header_len in (5usize..=15).prop_map(|w| w * 4),
        ) {
            let plan = match fragment_offsets(len, mtu, header_len) {
                Ok(plan) => plan,
                Err(PlanError::TooLong { .. }) => {
                    prop_assert!(len + header_len > 65_535);
                    return Ok(());
                }
                Err(e) => {
                    // Only a long header in a tiny MTU leaves under 8 bytes.
                    prop_assert!(mtu - header_len < 8 && len > mtu - header_len, "{}", e);
                    return Ok(());
                }
            };
            let n = plan.len();
            let pieces: Vec<_> = plan.collect();
            prop_assert_eq!(pieces.len(), n);
            let mut next = 0;
            for (i, p) in pieces.iter().enumerate() {
                prop_assert_eq!(p.offset, next);
                prop_assert!(p.len + header_len <= mtu);
                prop_assert_eq!(p.more_fragments, i + 1 < n);
                if p.more_fragments {
                    prop_assert_eq!(p.len % 8, 0);
                    prop_assert!(p.len > 0);
                    // As large as fits.
                    prop_assert!(p.len + header_len + 8 > mtu);
                }
                next += p.len;
            }
            prop_assert_eq!(next, len);
            if len > 0 {
                let data = payload(len);
                let mut r = Reassembler::new(ReassemblyConfig {
                    max_fragments_per_datagram: usize::MAX,
                    ..ReassemblyConfig::default()
                });
                let mut out = None;
                // In order: appending is cheap even for 8,000 pieces.
                for p in &pieces {
                    out = r.add(T0, key(1), p.offset, p.more_fragments,
                        data.slice(p.offset..p.offset + p.len)).unwrap();
                }
                prop_assert_eq!(out.unwrap().payload, data);
            }
        }

        #[test]
        fn planner_never_panics(len in any::<usize>(), mtu in any::<usize>(), hdr in any::<usize>()) {
            if let Ok(plan) = fragment_offsets(len, mtu, hdr) {
                prop_assert!(plan.len() <= 65_535);
                prop_assert_eq!(plan.count(), fragment_offsets(len, mtu, hdr).unwrap().len());
            }
        }

        #[test]
        fn arbitrary_fragments_never_panic(
            ops in proptest::collection::vec(
                (
                    (0u16..4, 0usize..40, prop::bool::weighted(0.85)),
                    (0usize..12, prop::bool::weighted(0.1), 0u8..2),
                    0u64..500_000,
                ),
                0..300,
            ),
        ) {
            let cfg = ReassemblyConfig {
                timeout: Duration::from_secs(2),
                max_payload: 1024,
                max_bytes: 600,
                max_datagrams: 3,
                max_fragments_per_datagram: 4,
                copy_below: 16,
            };
            let mut r = Reassembler::new(cfg);
            let mut now = T0;
            for ((ident, units, mf), (len_units, odd, fill), step) in ops {
                now += Duration::from_micros(step);
                // Mostly aligned, sometimes not: offsets and lengths in
                // 8-byte units plus an occasional odd byte count.
                let (off, len) = if odd {
                    (units * 8 + usize::from(fill) * 3, len_units * 8 + 5)
                } else {
                    (units * 8, len_units * 8)
                };
                let _ = r.add(now, key(ident), off, mf, Bytes::from(vec![fill; len]));
                r.check_invariants();
                if step % 3 == 0 {
                    for e in r.expire(now) {
                        prop_assert!(e.first_fragment.is_none_or(|f| !f.is_empty()));
                    }
                    prop_assert!(r.poll_at().is_none_or(|at| at > now));
                    r.check_invariants();
                }
            }
        }
    }
}
