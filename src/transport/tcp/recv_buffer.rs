//! The receive buffer of a TCP connection: data received and not yet read by
//! the application, in order, plus the out-of-order data held beyond a hole
//! (RFC 9293 §3.10.7.4, "seventh, process the segment text"; §3.8.6.2.2 for
//! the window it implies) and the SACK blocks describing it (RFC 2018 §4).
//!
//! Positions are 64-bit *offsets* in the received byte stream, not sequence
//! numbers: offset 0 is the first data byte, and the connection maps
//! `seq - (irs + 1)` to an offset (extending it past 2^32). Nothing here
//! wraps.
//!
//! # Layout
//!
//! In-order data is a queue of [`Bytes`] chunks, normally zero-copy slices
//! of the received frames, so a segment's payload goes from the wire to
//! [`RecvBuffer::read`] without being copied in between. Data beyond the
//! next expected byte goes to an assembler: a sorted queue of non-overlapping
//! segments, and beside it a short sorted list of the contiguous *ranges*
//! they form, each stamped with when it last received a segment (for SACK
//! ordering). When a segment fills the hole before the first range, the
//! range's segments are moved (not copied) into the in-order queue.
//!
//! Where segments overlap, the bytes already held win: a retransmission
//! carrying held bytes contributes only the bytes that are new.
//!
//! # Memory bounds
//!
//! - Nothing is stored at or beyond `read_offset + capacity`: the window the
//!   connection advertises ([`RecvBuffer::window`]) never lets the peer send
//!   beyond what is stored, and bytes beyond it are trimmed.
//! - At most [`DEFAULT_MAX_OUT_OF_ORDER_RANGES`] (configurable) disjoint
//!   out-of-order ranges, and at most `max(ranges, capacity / 256)`
//!   out-of-order segments. A segment that would exceed either is dropped
//!   whole and reported ([`Insert::dropped`]); held data is never discarded,
//!   so SACKed data is never reneged on (RFC 2018 §8).
//! - Pinning: a `Bytes` slice keeps its whole allocation alive, and a
//!   `Bytes` does not reveal how large that is, so the caller says
//!   ([`RecvBuffer::insert_pinned`]: the frame's
//!   [`truesize`](crate::buf::PacketBuf::truesize)). A piece is kept as a
//!   slice only if it is at least the copy threshold (default
//!   [`DEFAULT_COPY_THRESHOLD`] bytes, measured *after* trimming
//!   duplicates) and at least half of its allocation; any other piece (a
//!   small segment, the new bytes of a mostly duplicate one, 256 bytes of a
//!   reassembled 64 KiB datagram) is copied out: in-order copies are
//!   appended to a shared growable block, out-of-order ones get their own
//!   small allocation. A kept piece is charged its whole allocation, a copy
//!   its length, and [`RecvBuffer::memory`] is the sum. Since no more than
//!   two pieces of one allocation can each be half of it, the figure is
//!   within a factor of two of what is really held, either way: honest
//!   enough for a memory limit to judge, and not inflatable by cutting one
//!   frame into many pieces. (quinn-proto's assembler does the same with
//!   its `allocation_size`.)
//!
//! In-order inserts allocate nothing beyond growth of the chunk queue (and of
//! the small-piece block, amortised); out-of-order inserts cost a binary
//! search plus a scan of the (capped) range list.
//!
//! Deliberately not here: FIN, sequence-number mapping and segment
//! acceptability (the connection's job); D-SACK (RFC 2883); remembering
//! which SACK blocks were *sent* (blocks are ordered by when they last
//! received data, which is what RFC 2018 §4 asks for the first block and
//! approximates it for the rest).
//!
//! # Example
//!
//! A segment beyond a hole waits and is reported in a SACK block; the
//! segment that fills the hole makes both readable:
//!
//! ```
//! use bytes::Bytes;
//! use netstrata::buf::Lent;
//! use netstrata::transport::tcp::recv_buffer::RecvBuffer;
//!
//! let mut buf = RecvBuffer::new(1024);
//! let later = buf.insert(5, Bytes::from_static(b"world"));
//! assert!(later.out_of_order);
//! assert_eq!(buf.readable(), 0);
//! assert_eq!(buf.sack_blocks().collect::<Vec<_>>(), [(5, 10)]);
//!
//! let first = buf.insert(0, Bytes::from_static(b"hello"));
//! assert!(first.fills_gap);
//! assert_eq!((buf.readable(), buf.next_expected()), (10, 10));
//! let mut out = [0; 16];
//! let n = buf.read(&mut out, &mut Lent::new(8));
//! assert_eq!(&out[..n], b"helloworld");
//! assert_eq!(buf.window(), 1024);
//! ```

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use crate::buf::Lent;

/// Default cap on the number of disjoint out-of-order ranges held.
pub const DEFAULT_MAX_OUT_OF_ORDER_RANGES: usize = 64;

/// Default copy threshold: pieces shorter than this are copied rather than
/// kept as slices of their frames.
pub const DEFAULT_COPY_THRESHOLD: usize = 256;

/// One out-of-order segment is allowed per this many bytes of capacity (with
/// at least as many segments as ranges).
const CAPACITY_PER_OUT_OF_ORDER_SEGMENT: usize = 256;

/// Smallest growth of the block small in-order pieces are copied into.
const SMALL_PIECE_BLOCK: usize = 2048;

/// What [`RecvBuffer::insert`] did with a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Insert {
    /// How far [`RecvBuffer::next_expected`] advanced: this segment's new
    /// bytes plus any out-of-order data it made contiguous.
    pub new_in_order_bytes: usize,
    /// New bytes of this segment stored out of order.
    pub new_out_of_order_bytes: usize,
    /// The segment started beyond [`RecvBuffer::next_expected`] (there was a
    /// hole before it); RFC 5681 §4.2 asks for an immediate ACK.
    pub out_of_order: bool,
    /// Nothing new was stored although the segment carried bytes that had
    /// already been received (read, in order, or held out of order).
    pub duplicate: bool,
    /// New bytes were stored below the end of the out-of-order data held
    /// before: the segment filled all or part of a gap (RFC 5681 §4.2 asks
    /// for an immediate ACK).
    pub fills_gap: bool,
    /// Bytes at or beyond the right edge of the window, trimmed off.
    pub beyond_window: usize,
    /// The segment would have exceeded the out-of-order range or segment
    /// cap and was dropped whole.
    pub dropped: bool,
}

/// An out-of-order segment: `data` belongs at `start`, and keeps `charge`
/// bytes of memory alive.
#[derive(Debug, Clone)]
struct OutOfOrderSegment {
    start: u64,
    data: Bytes,
    charge: usize,
}

/// Received bytes and the size of the allocation they keep alive.
#[derive(Debug)]
struct Pinned {
    data: Bytes,
    truesize: usize,
}

/// An in-order chunk and the memory it keeps alive.
#[derive(Debug, Clone)]
struct Chunk {
    data: Bytes,
    charge: usize,
}

/// A maximal run of contiguous out-of-order bytes, `start..end`, and when it
/// last received a segment (larger is more recent; unique per range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OutOfOrderRange {
    start: u64,
    end: u64,
    stamp: u64,
}

/// Received data of one TCP connection: in-order bytes waiting to be read,
/// and out-of-order bytes waiting for the holes before them.
///
/// See the [module documentation](self) for layout and memory bounds.
#[derive(Debug, Clone)]
pub struct RecvBuffer {
    /// In-order data before `small`, oldest first; never holds an empty
    /// chunk.
    chunks: VecDeque<Chunk>,
    /// In-order data after `chunks`: copies of small pieces, coalesced.
    small: BytesMut,
    /// Offset of the next byte the application will read.
    read_offset: u64,
    /// Offset of the first byte not yet received in order (`rcv_nxt`).
    next_expected: u64,
    capacity: usize,
    copy_threshold: usize,
    /// Out-of-order segments, sorted by `start`, non-overlapping, all
    /// beyond `next_expected`.
    segments: VecDeque<OutOfOrderSegment>,
    /// The ranges `segments` form, sorted, separated by holes.
    ranges: Vec<OutOfOrderRange>,
    max_ranges: usize,
    /// Total length of `segments`.
    out_of_order_bytes: usize,
    /// Stamp of the most recent range update.
    last_stamp: u64,
    /// Memory charged for `chunks` and `segments` (`small` is counted by
    /// its capacity).
    charged: usize,
    /// The last in-order segment's bytes, when they were copied (or were
    /// old) rather than kept: its frame can go back to the pool.
    unkept: Option<Bytes>,
}

impl RecvBuffer {
    /// An empty buffer that will hold up to `capacity` bytes beyond the read
    /// point; the next byte expected is offset 0. Allocates nothing.
    pub fn new(capacity: usize) -> RecvBuffer {
        RecvBuffer {
            chunks: VecDeque::new(),
            small: BytesMut::new(),
            read_offset: 0,
            next_expected: 0,
            capacity,
            copy_threshold: DEFAULT_COPY_THRESHOLD,
            segments: VecDeque::new(),
            ranges: Vec::new(),
            max_ranges: DEFAULT_MAX_OUT_OF_ORDER_RANGES,
            out_of_order_bytes: 0,
            last_stamp: 0,
            charged: 0,
            unkept: None,
        }
    }

    /// The most bytes held beyond the read point.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sets the capacity, but never below the span from the read point to
    /// the last byte held (in order or not), and returns the capacity set.
    ///
    /// Shrinking moves the window's right edge left, which RFC 9293
    /// §3.8.6.2.2 discourages; whether to is the connection's decision.
    pub fn set_capacity(&mut self, capacity: usize) -> usize {
        let held_end = self.ranges.last().map_or(self.next_expected, |r| r.end);
        let held = (held_end - self.read_offset) as usize;
        self.capacity = capacity.max(held);
        self.capacity
    }

    /// Pieces shorter than this are copied instead of kept as slices of
    /// their frames (see the module documentation).
    pub fn copy_threshold(&self) -> usize {
        self.copy_threshold
    }

    /// Sets the copy threshold: 0 keeps every piece zero-copy, a larger
    /// value bounds pinned memory more tightly (to `frame size / threshold`
    /// times the data held).
    pub fn set_copy_threshold(&mut self, threshold: usize) {
        self.copy_threshold = threshold;
    }

    /// The cap on disjoint out-of-order ranges.
    pub fn max_out_of_order_ranges(&self) -> usize {
        self.max_ranges
    }

    /// Sets the cap on disjoint out-of-order ranges (at least 1). Ranges
    /// already held are kept; new ones are refused while over the cap.
    pub fn set_max_out_of_order_ranges(&mut self, max: usize) {
        self.max_ranges = max.max(1);
    }

    /// The cap on out-of-order segments held: `max(ranges cap, capacity /
    /// 256)`, so that segments of 256 bytes or more never hit it. (Lowering
    /// the capacity keeps segments already held, even over the new cap.)
    pub fn max_out_of_order_segments(&self) -> usize {
        self.max_ranges
            .max(self.capacity / CAPACITY_PER_OUT_OF_ORDER_SEGMENT)
    }

    /// Offset of the next byte [`read`](Self::read) returns.
    pub fn read_offset(&self) -> u64 {
        self.read_offset
    }

    /// Offset of the first byte not yet received in order: `rcv_nxt`.
    pub fn next_expected(&self) -> u64 {
        self.next_expected
    }

    /// In-order bytes waiting to be read.
    pub fn readable(&self) -> usize {
        (self.next_expected - self.read_offset) as usize
    }

    /// The receive window to advertise, counted from
    /// [`next_expected`](Self::next_expected): `capacity - readable`.
    ///
    /// Its right edge, `read_offset + capacity`, is where storage ends, so a
    /// peer that respects it never sends a byte that is not stored.
    /// Out-of-order data lies inside the window and does not shrink it.
    pub fn window(&self) -> usize {
        self.capacity.saturating_sub(self.readable())
    }

    /// Offset one past the last byte that may be stored.
    pub fn window_end(&self) -> u64 {
        self.read_offset.saturating_add(self.capacity as u64)
    }

    /// Bytes held out of order.
    pub fn out_of_order_bytes(&self) -> usize {
        self.out_of_order_bytes
    }

    /// Out-of-order segments held.
    pub fn out_of_order_segments(&self) -> usize {
        self.segments.len()
    }

    /// The out-of-order ranges held, as half-open offset ranges in offset
    /// order.
    pub fn out_of_order_ranges(&self) -> impl ExactSizeIterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|r| (r.start, r.end))
    }

    /// The memory held, counted as the allocations the data keeps alive
    /// (see the module documentation).
    pub fn memory(&self) -> usize {
        self.charged + self.small.capacity()
    }

    /// Drops every out-of-order segment (reneging on what SACK reported,
    /// which RFC 2018 §8 allows: the sender keeps data until it is
    /// acknowledged cumulatively) and returns the memory freed. For memory
    /// pressure: out-of-order data goes first, as Linux prunes its
    /// out-of-order queue before it drops in-order data.
    pub fn prune_out_of_order(&mut self) -> usize {
        let freed: usize = self.segments.iter().map(|s| s.charge).sum();
        self.segments.clear();
        self.ranges.clear();
        self.out_of_order_bytes = 0;
        self.charged -= freed;
        freed
    }

    /// Whether nothing is held at all, in order or out of order.
    pub fn is_empty(&self) -> bool {
        self.readable() == 0 && self.ranges.is_empty()
    }

    /// Stores the segment whose first byte is at `offset`, counting it as
    /// an allocation of its own length (see [`RecvBuffer::insert_pinned`]).
    pub fn insert(&mut self, offset: u64, data: Bytes) -> Insert {
        let truesize = data.len();
        self.insert_pinned(offset, data, truesize)
    }

    /// Stores the segment whose first byte is at `offset`; `data` keeps an
    /// allocation of `truesize` bytes alive.
    ///
    /// Bytes before [`next_expected`](Self::next_expected) or already held
    /// out of order are ignored (the first copy received is kept), as are
    /// bytes at or beyond [`window_end`](Self::window_end). Never panics,
    /// for any `offset` and length.
    pub fn insert_pinned(&mut self, offset: u64, data: Bytes, truesize: usize) -> Insert {
        let mut out = Insert::default();
        if data.is_empty() {
            return out;
        }
        let len = data.len() as u64;
        let seg_end = offset.saturating_add(len);
        let nxt = self.next_expected;
        let win_end = self.window_end();
        out.out_of_order = offset > nxt;
        out.beyond_window = match win_end.checked_sub(offset) {
            Some(inside) => len.saturating_sub(inside) as usize,
            None => data.len(),
        };
        let start = offset.max(nxt);
        let end = seg_end.min(win_end);
        if start >= end {
            out.duplicate = offset < nxt;
            self.unkept = Some(data);
            return out;
        }
        let data = Pinned { data, truesize };
        if start == nxt {
            self.insert_in_order(offset, data, start, end, &mut out);
        } else {
            self.insert_out_of_order(offset, &data, start, end, &mut out);
        }
        out
    }

    /// The bytes of the last segment inserted in order, if they were not
    /// kept (a small piece copied, or bytes already received): their frame
    /// may go back to the buffer pool.
    pub fn take_unkept(&mut self) -> Option<Bytes> {
        self.unkept.take()
    }

    /// Whether a piece of `len` bytes of `source` is kept as a slice (or
    /// copied): only if it is large and at least half its allocation.
    fn keeps_slice(&self, len: usize, source: &Pinned) -> bool {
        len >= self.copy_threshold && source.truesize <= len.saturating_mul(2)
    }

    /// `start == next_expected < end`: the data goes straight to the reader,
    /// and so does every out-of-order range it reaches.
    fn insert_in_order(
        &mut self,
        offset: u64,
        data: Pinned,
        start: u64,
        end: u64,
        out: &mut Insert,
    ) {
        out.fills_gap = !self.ranges.is_empty();
        // Ranges starting at or before `end` become contiguous.
        let reached = self.ranges.partition_point(|r| r.start <= end);
        if reached == 0 {
            // The common case: the segment's new bytes, moved rather than
            // sliced (slicing a `Bytes` that owns a whole `Vec` allocates to
            // share it).
            let (skip, len) = ((start - offset) as usize, (end - start) as usize);
            if self.keeps_slice(len, &data) {
                let Pinned { mut data, truesize } = data;
                data.advance(skip);
                data.truncate(len);
                self.push_in_order(data, truesize);
            } else {
                self.push_copy(&data.data[skip..skip + len]);
                self.unkept = Some(data.data);
            }
            self.next_expected = end;
        } else {
            let mut cursor = start;
            for i in 0..reached {
                let range = self.ranges[i];
                // Ranges lie beyond `next_expected` and are separated by
                // holes, so `cursor < range.start <= end`.
                let piece = (cursor - offset) as usize..(range.start - offset) as usize;
                self.push_piece(&data, piece);
                while self.segments.front().is_some_and(|s| s.start < range.end) {
                    if let Some(seg) = self.segments.pop_front() {
                        self.out_of_order_bytes -= seg.data.len();
                        // Already charged: it moves as it is.
                        self.charged -= seg.charge;
                        self.push_in_order(seg.data, seg.charge);
                    }
                }
                cursor = range.end;
            }
            if cursor < end {
                let piece = (cursor - offset) as usize..(end - offset) as usize;
                self.push_piece(&data, piece);
                cursor = end;
            }
            self.ranges.drain(..reached);
            self.next_expected = cursor;
        }
        out.new_in_order_bytes = (self.next_expected - start) as usize;
    }

    /// Appends the bytes `range` of `source` to the in-order data, as a
    /// slice or as a copy (see [`RecvBuffer::keeps_slice`]).
    fn push_piece(&mut self, source: &Pinned, range: core::ops::Range<usize>) {
        if range.is_empty() {
            return;
        }
        if self.keeps_slice(range.len(), source) {
            self.push_in_order(source.data.slice(range), source.truesize);
        } else {
            self.push_copy(&source.data[range]);
        }
    }

    /// Appends in-order bytes held elsewhere: copied into `small`.
    fn push_copy(&mut self, bytes: &[u8]) {
        if self.small.capacity() - self.small.len() < bytes.len() {
            self.small.reserve(bytes.len().max(SMALL_PIECE_BLOCK));
        }
        self.small.extend_from_slice(bytes);
    }

    /// Appends an in-order chunk that keeps `charge` bytes alive; one
    /// shorter than the copy threshold is copied into `small` instead.
    fn push_in_order(&mut self, data: Bytes, charge: usize) {
        if data.is_empty() {
            return;
        }
        if data.len() < self.copy_threshold {
            self.push_copy(&data);
            return;
        }
        if !self.small.is_empty() {
            // The copies so far become a chunk; `small` starts afresh in
            // what is left of its allocation (counted by its capacity).
            let copies = self.small.split().freeze();
            let charge = copies.len();
            self.charged += charge;
            self.chunks.push_back(Chunk {
                data: copies,
                charge,
            });
        }
        self.charged += charge;
        self.chunks.push_back(Chunk { data, charge });
    }

    /// `next_expected < start < end <= window_end`: store the bytes of
    /// `start..end` not yet held, as one or more segments, and merge the
    /// ranges they touch.
    fn insert_out_of_order(
        &mut self,
        offset: u64,
        data: &Pinned,
        start: u64,
        end: u64,
        out: &mut Insert,
    ) {
        // Ranges overlapping or adjacent to start..end: first..last.
        let first = self.ranges.partition_point(|r| r.end < start);
        let last = self.ranges.partition_point(|r| r.start <= end);
        if first == last && self.ranges.len() >= self.max_ranges {
            out.dropped = true;
            return;
        }
        // Count the holes the segment fills before changing anything.
        let mut pieces = 0;
        let mut first_piece = None;
        let mut cursor = start;
        for range in &self.ranges[first..last] {
            if cursor < range.start {
                pieces += 1;
                first_piece.get_or_insert(cursor);
            }
            cursor = cursor.max(range.end);
        }
        if cursor < end {
            pieces += 1;
            first_piece.get_or_insert(cursor);
        }
        if pieces > 0 && self.segments.len() + pieces > self.max_out_of_order_segments() {
            out.dropped = true;
            return;
        }
        if let (Some(piece), Some(held)) = (first_piece, self.ranges.last()) {
            out.fills_gap = piece < held.end;
        }

        let mut cursor = start;
        let mut stored = 0;
        for i in first..last {
            let range = self.ranges[i];
            if cursor < range.start {
                stored += self.store_out_of_order(offset, data, cursor, range.start);
            }
            cursor = cursor.max(range.end);
        }
        if cursor < end {
            stored += self.store_out_of_order(offset, data, cursor, end);
        }
        out.new_out_of_order_bytes = stored;
        out.duplicate = stored == 0;

        // The merged range holds the segment just received: make it the
        // most recent, even for a duplicate (RFC 2018 §4, first block).
        self.last_stamp += 1;
        let stamp = self.last_stamp;
        if first == last {
            self.ranges
                .insert(first, OutOfOrderRange { start, end, stamp });
        } else {
            self.ranges[first] = OutOfOrderRange {
                start: start.min(self.ranges[first].start),
                end: end.max(self.ranges[last - 1].end),
                stamp,
            };
            self.ranges.drain(first + 1..last);
        }
    }

    /// Stores `data`'s bytes `from..to` (stream offsets) as one segment.
    /// Returns how many bytes were stored.
    fn store_out_of_order(&mut self, offset: u64, data: &Pinned, from: u64, to: u64) -> usize {
        let range = (from - offset) as usize..(to - offset) as usize;
        let (piece, charge) = if self.keeps_slice(range.len(), data) {
            (data.data.slice(range), data.truesize)
        } else {
            let len = range.len();
            (Bytes::copy_from_slice(&data.data[range]), len)
        };
        let stored = piece.len();
        self.out_of_order_bytes += stored;
        self.charged += charge;
        let at = self.segments.partition_point(|s| s.start < from);
        self.segments.insert(
            at,
            OutOfOrderSegment {
                start: from,
                data: piece,
                charge,
            },
        );
        stored
    }

    /// Copies in-order bytes into `buf` and consumes them; returns how many
    /// (0 when nothing is readable). This is the only copy of large
    /// segments on the receive path. The frames emptied go to `lent`, to be
    /// taken back into the buffer pool.
    pub fn read(&mut self, buf: &mut [u8], lent: &mut Lent) -> usize {
        let mut n = 0;
        while n < buf.len() {
            let want = buf.len() - n;
            if let Some(front) = self.chunks.front_mut() {
                let k = front.data.len().min(want);
                buf[n..n + k].copy_from_slice(&front.data[..k]);
                if k == front.data.len() {
                    if let Some(chunk) = self.pop_chunk() {
                        lent.give_back(chunk);
                    }
                } else {
                    front.data.advance(k);
                }
                n += k;
            } else {
                let k = self.small.len().min(want);
                buf[n..n + k].copy_from_slice(&self.small[..k]);
                self.small.advance(k);
                n += k;
                break;
            }
        }
        self.read_offset += n as u64;
        n
    }

    /// Takes the next in-order chunk, at most `max` bytes, without copying;
    /// `None` when nothing is readable or `max` is 0.
    pub fn read_bytes(&mut self, max: usize) -> Option<Bytes> {
        if max == 0 {
            return None;
        }
        let bytes = match self.chunks.front_mut() {
            Some(front) if front.data.len() <= max => self.pop_chunk()?,
            // The rest of the chunk stays charged for the whole allocation.
            Some(front) => front.data.split_to(max),
            None if self.small.is_empty() => return None,
            None => self.small.split_to(max.min(self.small.len())).freeze(),
        };
        self.read_offset += bytes.len() as u64;
        Some(bytes)
    }

    fn pop_chunk(&mut self) -> Option<Bytes> {
        let chunk = self.chunks.pop_front()?;
        self.charged -= chunk.charge;
        Some(chunk.data)
    }

    /// The out-of-order ranges as half-open offset ranges for SACK blocks
    /// (RFC 2018 §3, §4): the range that most recently received a segment
    /// first (it holds the segment that triggered this ACK, unless that
    /// segment advanced [`next_expected`](Self::next_expected)), then the
    /// others from most to least recently updated.
    ///
    /// All lie beyond `next_expected` and are disjoint. Each step scans the
    /// (capped) range list: take only the few blocks an ACK has room for.
    pub fn sack_blocks(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut below = u64::MAX;
        core::iter::from_fn(move || {
            let next = self
                .ranges
                .iter()
                .filter(|r| r.stamp < below)
                .max_by_key(|r| r.stamp)?;
            below = next.stamp;
            Some((next.start, next.end))
        })
    }

    /// Fills `out` with the first [`sack_blocks`](Self::sack_blocks) and
    /// returns how many it wrote.
    pub fn sack_ranges(&self, out: &mut [(u64, u64)]) -> usize {
        let mut n = 0;
        for (slot, block) in out.iter_mut().zip(self.sack_blocks()) {
            *slot = block;
            n += 1;
        }
        n
    }

    /// Checks every structural invariant (tests only).
    #[cfg(test)]
    fn check_invariants(&self) {
        let chunked: usize = self.chunks.iter().map(|c| c.data.len()).sum();
        assert!(self.chunks.iter().all(|c| !c.data.is_empty()));
        let charges: usize = self.chunks.iter().map(|c| c.charge).sum::<usize>()
            + self.segments.iter().map(|s| s.charge).sum::<usize>();
        assert_eq!(charges, self.charged);
        assert!(self.chunks.iter().all(|c| c.charge >= c.data.len()));
        assert_eq!(chunked + self.small.len(), self.readable());
        assert!(self.read_offset <= self.next_expected);
        let win_end = self.window_end();
        assert!(self.readable() <= self.capacity);
        // Ranges: sorted, separated by holes, inside the window.
        let mut prev_end = self.next_expected;
        for r in &self.ranges {
            assert!(r.start > prev_end, "range {r:?} after {prev_end}");
            assert!(r.end > r.start);
            assert!(r.end <= win_end);
            prev_end = r.end;
        }
        let mut stamps: Vec<u64> = self.ranges.iter().map(|r| r.stamp).collect();
        stamps.sort_unstable();
        stamps.dedup();
        assert_eq!(stamps.len(), self.ranges.len());
        // Segments: sorted, non-empty, non-overlapping, tiling the ranges.
        let mut segs = self.segments.iter().peekable();
        let mut total = 0;
        for r in &self.ranges {
            let mut at = r.start;
            while at < r.end {
                let s = segs.next().expect("segment missing from range");
                assert_eq!(s.start, at);
                assert!(!s.data.is_empty());
                at += s.data.len() as u64;
                total += s.data.len();
            }
            assert_eq!(at, r.end);
        }
        assert!(segs.next().is_none());
        assert_eq!(total, self.out_of_order_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// The byte at `offset` of the stream every test segment carries.
    fn byte_at(offset: u64) -> u8 {
        (offset.wrapping_mul(0x9e37_79b9) >> 11) as u8 ^ offset as u8
    }

    /// A segment carrying `offset..offset + len` as a slice of a larger
    /// "frame" with `front` and `back` bytes of junk around it.
    fn frame_segment(offset: u64, len: usize, front: usize, back: usize) -> Bytes {
        let mut frame = vec![0xa5; front];
        frame.extend((offset..offset + len as u64).map(byte_at));
        frame.extend(std::iter::repeat_n(0x5a, back));
        Bytes::from(frame).slice(front..front + len)
    }

    fn segment(offset: u64, len: usize) -> Bytes {
        frame_segment(offset, len, 54, 4)
    }

    fn read_all(b: &mut RecvBuffer) -> Vec<u8> {
        let mut out = vec![0; b.readable() + 10];
        let n = b.read(&mut out, &mut Lent::default());
        out.truncate(n);
        out
    }

    fn stream(range: core::ops::Range<u64>) -> Vec<u8> {
        range.map(byte_at).collect()
    }

    fn blocks(b: &RecvBuffer) -> Vec<(u64, u64)> {
        b.sack_blocks().collect()
    }

    #[test]
    fn in_order_is_zero_copy() {
        let mut b = RecvBuffer::new(10_000);
        let seg = segment(0, 1000);
        let ptr = seg.as_ptr();
        let r = b.insert(0, seg);
        assert_eq!(
            r,
            Insert {
                new_in_order_bytes: 1000,
                ..Insert::default()
            }
        );
        assert_eq!(
            (b.next_expected(), b.readable(), b.window()),
            (1000, 1000, 9000)
        );
        let chunk = b.read_bytes(600).unwrap();
        assert_eq!(chunk.as_ptr(), ptr);
        assert_eq!(&chunk[..], &stream(0..600)[..]);
        let chunk = b.read_bytes(600).unwrap();
        assert_eq!(chunk.as_ptr(), ptr.wrapping_add(600));
        assert_eq!(chunk.len(), 400);
        assert_eq!(b.read_bytes(600), None);
        assert_eq!(b.read_bytes(0), None);
        assert_eq!((b.read_offset(), b.window()), (1000, 10_000));
        b.check_invariants();
    }

    #[test]
    fn memory_counts_what_pieces_pin_and_small_slices_of_big_buffers_are_copied() {
        let mut b = RecvBuffer::new(1 << 20);
        // A full segment in an ordinary frame buffer: kept, charged the
        // buffer.
        b.insert_pinned(0, segment(0, 1460), 1756);
        assert_eq!(b.memory(), 1756);
        // 300 bytes at the end of a 64 KiB allocation (a reassembled
        // datagram mostly outside the window): copied, charged 300, in
        // order and out of order alike.
        b.insert_pinned(1460, frame_segment(1460, 300, 65000, 0), 65536);
        b.insert_pinned(5000, frame_segment(5000, 300, 65000, 0), 65536);
        assert_eq!(b.memory() - b.small.capacity(), 1756 + 300);
        b.check_invariants();
        assert_eq!(read_all(&mut b)[..10], stream(0..10)[..]);
        assert_eq!(b.read_bytes(10), None);
        // Out-of-order data is what pressure drops first.
        assert_eq!(b.prune_out_of_order(), 300);
        assert_eq!(b.out_of_order_bytes(), 0);
        assert_eq!(b.sack_blocks().count(), 0);
        b.check_invariants();
        assert_eq!(b.memory(), b.small.capacity());
    }

    #[test]
    fn a_frame_cut_into_many_pieces_is_not_charged_many_times() {
        // One-byte ranges held out of order cut a 1460-byte segment (in a
        // 1770-byte frame buffer) into five pieces: each is copied (less
        // than half the buffer), so the charge stays near what is held.
        let mut b = RecvBuffer::new(1 << 20);
        for at in [1000u64, 1300, 1600, 1900] {
            b.insert(at, frame_segment(at, 1, 0, 0));
        }
        b.insert_pinned(700, frame_segment(700, 1460, 54, 256), 1770);
        b.check_invariants();
        let held = b.out_of_order_bytes();
        assert_eq!(held, 1460);
        assert!(
            b.memory() - b.small.capacity() <= 2 * 1770,
            "{}",
            b.memory()
        );
        // A whole segment is kept as a slice and charged its buffer once.
        let mut b = RecvBuffer::new(1 << 20);
        b.insert_pinned(0, segment(0, 1460), 1770);
        assert_eq!(b.memory(), 1770);
    }

    #[test]
    fn small_pieces_are_coalesced_copies() {
        let mut b = RecvBuffer::new(10_000);
        for i in 0..100 {
            b.insert(i * 10, segment(i * 10, 10));
        }
        assert!(b.chunks.is_empty());
        let big = segment(1000, 300);
        let ptr = big.as_ptr();
        b.insert(1000, big);
        b.insert(1300, segment(1300, 5));
        assert_eq!(b.chunks.len(), 2);
        b.check_invariants();
        let first = b.read_bytes(usize::MAX).unwrap();
        assert_eq!(&first[..], &stream(0..1000)[..]);
        let second = b.read_bytes(usize::MAX).unwrap();
        assert_eq!(second.as_ptr(), ptr);
        assert_eq!(&read_all(&mut b)[..], &stream(1300..1305)[..]);
    }

    #[test]
    fn rfc2018_case_3() {
        // RFC 2018 §3 example, case 3: 500-byte segments from 5000, the
        // 2nd, 4th, 6th and 8th lost; then the 4th and the 2nd arrive.
        let base = 5000;
        let mut b = RecvBuffer::new(8000);
        let send = |b: &mut RecvBuffer, seq: u64| b.insert(seq - base, segment(seq - base, 500));
        let sack = |b: &RecvBuffer| -> Vec<(u64, u64)> {
            b.sack_blocks().map(|(l, r)| (l + base, r + base)).collect()
        };
        send(&mut b, 5000);
        assert_eq!(b.next_expected() + base, 5500);
        let r = send(&mut b, 6000);
        assert!(r.out_of_order && !r.fills_gap && !r.duplicate);
        assert_eq!(r.new_out_of_order_bytes, 500);
        assert_eq!(sack(&b), [(6000, 6500)]);
        send(&mut b, 7000);
        assert_eq!(sack(&b), [(7000, 7500), (6000, 6500)]);
        send(&mut b, 8000);
        assert_eq!(sack(&b), [(8000, 8500), (7000, 7500), (6000, 6500)]);
        let r = send(&mut b, 6500);
        assert!(r.out_of_order && r.fills_gap);
        assert_eq!(b.next_expected() + base, 5500);
        assert_eq!(sack(&b), [(6000, 7500), (8000, 8500)]);
        let r = send(&mut b, 5500);
        assert!(!r.out_of_order && r.fills_gap);
        assert_eq!(r.new_in_order_bytes, 2000);
        assert_eq!(b.next_expected() + base, 7500);
        assert_eq!(sack(&b), [(8000, 8500)]);
        let mut out = [(0, 0); 4];
        assert_eq!(b.sack_ranges(&mut out), 1);
        assert_eq!(out[0], (3000, 3500));
        b.check_invariants();
        assert_eq!(read_all(&mut b), stream(0..2500));
    }

    #[test]
    fn duplicate_refreshes_recency() {
        let mut b = RecvBuffer::new(8000);
        b.insert(100, segment(100, 100));
        b.insert(300, segment(300, 100));
        assert_eq!(blocks(&b), [(300, 400), (100, 200)]);
        let r = b.insert(120, segment(120, 50));
        assert!(r.duplicate && r.out_of_order);
        assert_eq!(blocks(&b), [(100, 200), (300, 400)]);
        let mut one = [(0, 0); 1];
        assert_eq!(b.sack_ranges(&mut one), 1);
        assert_eq!(one[0], (100, 200));
        assert_eq!(b.sack_ranges(&mut []), 0);
    }

    #[test]
    fn first_copy_wins() {
        let mut b = RecvBuffer::new(1000);
        b.insert(10, Bytes::from_static(b"AAAA"));
        b.insert(20, Bytes::from_static(b"CCCC"));
        // Overlaps both and the gap between: only the gaps are taken.
        let r = b.insert(8, Bytes::from_static(b"bbbbbbbbbbbbbbbbbbbb"));
        assert_eq!(r.new_out_of_order_bytes, 12);
        assert!(!r.duplicate && r.fills_gap);
        assert_eq!(b.out_of_order_ranges().collect::<Vec<_>>(), [(8, 28)]);
        b.check_invariants();
        let r = b.insert(0, Bytes::from_static(b"zzzzzzzzzz"));
        assert_eq!(r.new_in_order_bytes, 28);
        assert_eq!(read_all(&mut b), b"zzzzzzzzbbAAAAbbbbbbCCCCbbbb");
        // Already read: a pure duplicate.
        let r = b.insert(0, Bytes::from_static(b"yyyy"));
        assert!(r.duplicate && !r.out_of_order);
        assert_eq!(r.new_in_order_bytes, 0);
        b.check_invariants();
    }

    #[test]
    fn partial_overlap_with_read_data() {
        let mut b = RecvBuffer::new(1000);
        b.insert(0, segment(0, 100));
        assert_eq!(read_all(&mut b).len(), 100);
        let r = b.insert(50, segment(50, 100));
        assert_eq!(r.new_in_order_bytes, 50);
        assert!(!r.duplicate);
        assert_eq!(read_all(&mut b), stream(100..150));
    }

    #[test]
    fn never_stores_beyond_window() {
        let mut b = RecvBuffer::new(1000);
        let r = b.insert(900, segment(900, 300));
        assert_eq!(r.beyond_window, 200);
        assert_eq!(r.new_out_of_order_bytes, 100);
        assert_eq!(b.out_of_order_ranges().collect::<Vec<_>>(), [(900, 1000)]);
        let r = b.insert(1000, segment(1000, 10));
        assert_eq!(r.beyond_window, 10);
        assert!(!r.duplicate && !r.dropped);
        assert_eq!(r.new_out_of_order_bytes, 0);
        // In order too, and a zero window takes nothing.
        let r = b.insert(0, segment(0, 1500));
        assert_eq!((r.new_in_order_bytes, r.beyond_window), (1000, 500));
        assert_eq!(b.window(), 0);
        let r = b.insert(1000, segment(1000, 1));
        assert_eq!(r.beyond_window, 1);
        assert!(!r.duplicate);
        // Reading opens the window.
        assert_eq!(b.read_bytes(1).map(|c| c.len()), Some(1));
        assert_eq!(b.window(), 1);
        let r = b.insert(1000, segment(1000, 2));
        assert_eq!((r.new_in_order_bytes, r.beyond_window), (1, 1));
        b.check_invariants();
    }

    #[test]
    fn capacity_never_below_what_is_held() {
        let mut b = RecvBuffer::new(1000);
        b.insert(0, segment(0, 100));
        b.insert(500, segment(500, 100));
        assert_eq!(b.set_capacity(10), 600);
        assert_eq!(b.window(), 500);
        assert_eq!(read_all(&mut b).len(), 100);
        assert_eq!(b.set_capacity(10), 500);
        assert_eq!(b.set_capacity(5000), 5000);
        b.check_invariants();
    }

    #[test]
    fn range_cap_drops_new_isolated_segments() {
        let mut b = RecvBuffer::new(10_000);
        b.set_max_out_of_order_ranges(3);
        for i in 1..=3 {
            assert!(!b.insert(i * 1000, segment(i * 1000, 100)).dropped);
        }
        let r = b.insert(5000, segment(5000, 100));
        assert!(r.dropped && r.out_of_order && !r.duplicate);
        assert_eq!(r.new_out_of_order_bytes, 0);
        // Extending or joining held ranges is always allowed.
        assert!(!b.insert(3100, segment(3100, 100)).dropped);
        assert!(!b.insert(1100, segment(1100, 900)).dropped);
        assert_eq!(b.out_of_order_ranges().len(), 2);
        assert!(!b.insert(5000, segment(5000, 100)).dropped);
        // In-order data is never dropped.
        let r = b.insert(0, segment(0, 1000));
        assert_eq!(r.new_in_order_bytes, 2100);
        b.check_invariants();
    }

    #[test]
    fn segment_cap_drops() {
        let mut b = RecvBuffer::new(256 * 4);
        b.set_max_out_of_order_ranges(2);
        assert_eq!(b.max_out_of_order_segments(), 4);
        for i in 0..4 {
            assert!(!b.insert(10 + i, segment(10 + i, 1)).dropped);
        }
        assert!(b.insert(14, segment(14, 1)).dropped);
        // A duplicate needs no new segment.
        assert!(b.insert(10, segment(10, 4)).duplicate);
        assert_eq!(b.out_of_order_segments(), 4);
        b.check_invariants();
    }

    #[test]
    fn small_out_of_order_pieces_do_not_pin_frames() {
        let mut b = RecvBuffer::new(10_000);
        let frame = frame_segment(100, 10, 1000, 1000);
        let frame_ptr = frame.as_ptr() as usize;
        b.insert(100, frame);
        let big = frame_segment(300, 500, 50, 0);
        let big_ptr = big.as_ptr();
        b.insert(300, big);
        let held: Vec<usize> = b
            .segments
            .iter()
            .map(|s| s.data.as_ptr() as usize)
            .collect();
        assert!(held[0].abs_diff(frame_ptr) > 1000);
        assert_eq!(held[1], big_ptr as usize);
        b.set_copy_threshold(0);
        let tiny = segment(900, 1);
        let tiny_ptr = tiny.as_ptr();
        b.insert(900, tiny);
        assert_eq!(b.segments[2].data.as_ptr(), tiny_ptr);
        b.check_invariants();
    }

    #[test]
    fn edge_offsets_do_not_panic() {
        let mut b = RecvBuffer::new(usize::MAX);
        b.insert(u64::MAX - 2, segment(0, 10));
        b.insert(u64::MAX, segment(0, 10));
        b.insert(5, segment(0, 10));
        b.check_invariants();
        let mut b = RecvBuffer::new(0);
        assert_eq!(b.insert(0, segment(0, 10)).beyond_window, 10);
        assert_eq!(b.insert(u64::MAX, segment(0, 10)).beyond_window, 10);
        assert!(b.is_empty());
    }

    /// Reference model: which offsets are held out of order, with the stamp
    /// of the last insert that touched their range.
    #[derive(Debug, Default)]
    struct Model {
        read: u64,
        next: u64,
        cap: u64,
        held: BTreeMap<u64, u64>,
        time: u64,
    }

    impl Model {
        fn held_end(&self) -> u64 {
            self.held.keys().next_back().map_or(self.next, |&o| o + 1)
        }

        fn ranges(&self) -> Vec<(u64, u64, u64)> {
            let mut out: Vec<(u64, u64, u64)> = Vec::new();
            for (&o, &t) in &self.held {
                match out.last_mut() {
                    Some(r) if r.1 == o => {
                        r.1 += 1;
                        r.2 = r.2.max(t);
                    }
                    _ => out.push((o, o + 1, t)),
                }
            }
            out
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert { rel: i64, len: usize, front: usize },
        Read(usize),
        ReadBytes(usize),
        SetCapacity(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (-60..500i64, 0..120usize, 0..300usize)
                .prop_map(|(rel, len, front)| Op::Insert { rel, len, front }),
            1 => (0..400usize).prop_map(Op::Read),
            1 => (0..400usize).prop_map(Op::ReadBytes),
            1 => (0..800usize).prop_map(Op::SetCapacity),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any mix of segments, duplicates, overlaps and reorderings of one
        /// stream reads back as exactly that stream, and every report and
        /// SACK block agrees with a byte-by-byte model.
        #[test]
        fn matches_byte_model(
            capacity in 1..600usize,
            threshold in prop_oneof![Just(0usize), Just(16), Just(256), Just(100_000)],
            max_ranges in prop_oneof![1..6usize, Just(64)],
            ops in proptest::collection::vec(op(), 1..80),
        ) {
            let mut b = RecvBuffer::new(capacity);
            b.set_copy_threshold(threshold);
            b.set_max_out_of_order_ranges(max_ranges);
            let mut m = Model { cap: capacity as u64, ..Model::default() };
            let mut received = Vec::new();
            for op in ops {
                match op {
                    Op::Insert { rel, len, front } => {
                        let offset = m.next.saturating_add_signed(rel);
                        let ranges_before = b.out_of_order_ranges().len();
                        let segments_before = b.out_of_order_segments();
                        let r = b.insert(offset, frame_segment(offset, len, front, 7));
                        // Shrinking the capacity may leave more segments
                        // than the cap allows, but never adds one.
                        prop_assert!(b.out_of_order_segments()
                            <= segments_before.max(b.max_out_of_order_segments()));
                        let win_end = m.read + m.cap;
                        let end = offset + len as u64;
                        let old_end = m.held.keys().next_back().map(|&o| o + 1);
                        let (s, e) = (offset.max(m.next), end.min(win_end));
                        let new: Vec<u64> = (s..e).filter(|o| !m.held.contains_key(o)).collect();
                        let already = offset < m.next || (s..e).any(|o| m.held.contains_key(&o));
                        prop_assert_eq!(r.out_of_order, len > 0 && offset > m.next);
                        prop_assert_eq!(r.beyond_window as u64, end - end.min(win_end.max(offset)));
                        if r.dropped {
                            prop_assert!(offset > m.next);
                            prop_assert!(!new.is_empty());
                            prop_assert!(ranges_before >= max_ranges
                                || segments_before + ranges_before + 1 > b.max_out_of_order_segments());
                            prop_assert_eq!((r.new_in_order_bytes, r.new_out_of_order_bytes), (0, 0));
                            prop_assert!(!r.duplicate && !r.fills_gap);
                        } else {
                            prop_assert_eq!(r.duplicate, len > 0 && new.is_empty() && already);
                            prop_assert_eq!(
                                r.fills_gap,
                                !new.is_empty() && old_end.is_some_and(|h| new[0] < h)
                            );
                            m.time += 1;
                            for &o in &new {
                                m.held.insert(o, m.time);
                            }
                            let next_before = m.next;
                            while m.held.remove(&m.next).is_some() {
                                m.next += 1;
                            }
                            prop_assert_eq!(r.new_in_order_bytes as u64, m.next - next_before);
                            if m.next == next_before {
                                prop_assert_eq!(r.new_out_of_order_bytes, new.len());
                                if s < e {
                                    // Restamp the whole range the segment is in.
                                    let mut lo = s;
                                    while lo > 0 && m.held.contains_key(&(lo - 1)) {
                                        lo -= 1;
                                    }
                                    let mut hi = s;
                                    while m.held.contains_key(&hi) {
                                        hi += 1;
                                    }
                                    for o in lo..hi {
                                        m.held.insert(o, m.time);
                                    }
                                    let first = b.sack_blocks().next().unwrap();
                                    prop_assert!(first.0 <= s && e <= first.1);
                                }
                            } else {
                                prop_assert_eq!(r.new_out_of_order_bytes, 0);
                            }
                        }
                    }
                    Op::Read(n) => {
                        let mut buf = vec![0; n];
                        let k = b.read(&mut buf, &mut Lent::default());
                        prop_assert_eq!(k as u64, (n as u64).min(m.next - m.read));
                        received.extend_from_slice(&buf[..k]);
                        m.read += k as u64;
                    }
                    Op::ReadBytes(n) => {
                        let chunk = b.read_bytes(n);
                        let readable = m.next - m.read;
                        prop_assert_eq!(chunk.is_none(), n == 0 || readable == 0);
                        if let Some(c) = chunk {
                            prop_assert!(!c.is_empty() && c.len() <= n);
                            received.extend_from_slice(&c);
                            m.read += c.len() as u64;
                        }
                    }
                    Op::SetCapacity(c) => {
                        m.cap = (c as u64).max(m.held_end() - m.read);
                        prop_assert_eq!(b.set_capacity(c) as u64, m.cap);
                    }
                }
                b.check_invariants();
                prop_assert_eq!(b.read_offset(), m.read);
                prop_assert_eq!(b.next_expected(), m.next);
                prop_assert_eq!(b.readable() as u64, m.next - m.read);
                prop_assert_eq!(b.window() as u64, m.cap - (m.next - m.read));
                prop_assert!(m.held_end() <= m.read + m.cap);
                prop_assert!(b.out_of_order_ranges().len() <= max_ranges);
                prop_assert_eq!(b.out_of_order_bytes(), m.held.len());
                let ranges = m.ranges();
                let got: Vec<(u64, u64)> = b.out_of_order_ranges().collect();
                let want: Vec<(u64, u64)> = ranges.iter().map(|r| (r.0, r.1)).collect();
                prop_assert_eq!(got, want);
                let mut by_recency = ranges.clone();
                by_recency.sort_by_key(|r| core::cmp::Reverse(r.2));
                let want: Vec<(u64, u64)> = by_recency.iter().map(|r| (r.0, r.1)).collect();
                prop_assert_eq!(blocks(&b), want);
                prop_assert_eq!(&received[..], &stream(0..m.read)[..]);
            }
            // Filling the window in order delivers everything held.
            let win_end = b.window_end();
            let r = b.insert(m.next, frame_segment(m.next, (win_end - m.next) as usize, 3, 3));
            prop_assert_eq!(b.next_expected(), win_end);
            prop_assert!(b.out_of_order_ranges().len() == 0 && !r.dropped);
            received.extend(read_all(&mut b));
            prop_assert_eq!(&received[..], &stream(0..win_end)[..]);
            b.check_invariants();
        }

        #[test]
        fn arbitrary_inputs_never_panic(
            capacity in any::<usize>(),
            ops in proptest::collection::vec(
                (any::<u64>(), 0..64usize, any::<usize>(), any::<u8>()), 0..60),
        ) {
            let mut b = RecvBuffer::new(capacity);
            for (offset, len, n, kind) in ops {
                match kind % 6 {
                    0 => { b.read(&mut vec![0; n % 256], &mut Lent::default()); }
                    1 => { b.read_bytes(n); }
                    2 => { b.set_capacity(n); }
                    3 => { b.set_max_out_of_order_ranges(n % 8); }
                    4 => { b.insert(b.next_expected().wrapping_add(offset % 512), segment(0, len)); }
                    _ => { b.insert(offset, segment(0, len)); }
                }
                b.check_invariants();
                let mut out = [(0, 0); 4];
                let k = b.sack_ranges(&mut out);
                prop_assert!(out[..k].iter().all(|&(l, r)| l > b.next_expected() && l < r));
            }
        }
    }

    /// A rough per-segment cost (run with `--ignored --nocapture` in
    /// release mode).
    #[test]
    #[ignore]
    fn micro_benchmark() {
        const MSS: usize = 1460;
        const N: u64 = 200_000;
        let frames: Vec<Bytes> = (0..64).map(|i| frame_segment(i, MSS, 54, 0)).collect();
        let mut b = RecvBuffer::new(64 * 1024);
        let start = std::time::Instant::now();
        for i in 0..N {
            let offset = i * MSS as u64;
            b.insert(offset, frames[(i % 64) as usize].clone());
            while b.read_bytes(usize::MAX).is_some() {}
        }
        let in_order = start.elapsed();
        // Every tenth segment arrives after the next nine.
        let mut b = RecvBuffer::new(64 * 1024);
        let start = std::time::Instant::now();
        for group in 0..N / 10 {
            let base = group * 10;
            for i in (base + 1..base + 10).chain([base]) {
                b.insert(i * MSS as u64, frames[(i % 64) as usize].clone());
            }
            while b.read_bytes(usize::MAX).is_some() {}
        }
        let reordered = start.elapsed();
        println!(
            "in order: {:?}/segment, 10% reordered: {:?}/segment",
            in_order / N as u32,
            reordered / N as u32
        );
    }
}
