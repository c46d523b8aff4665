//! A socket's queue of datagrams: their payloads back to back in one byte
//! ring, each stored contiguously, and a ring of their lengths and
//! addresses beside it.
//!
//! Both queues of a UDP socket are one of these. On receive a small
//! payload is copied out of the frame into the ring and the frame goes
//! straight back to the link's buffer pool while it is still in cache; on
//! send the caller's bytes are copied in and the frame is built at the
//! next poll. Either way a datagram costs two copies of its payload and no
//! allocation, where handing the frame itself up as a shared slice (as TCP
//! does with its segments) would cost the reference counting that tells
//! when the application has let go of it: for small datagrams, that costs
//! more than the copies. A received payload that fills most of its frame
//! is not copied: the frame itself waits in the queue
//! ([`DatagramRing::push_frame`]), the reader borrows its payload there,
//! and the frame is handed back when the datagram is popped.
//!
//! A payload never wraps around the end of the ring, so a reader can
//! borrow it as one slice; when it does not fit between the tail and the
//! end, the rest of the ring up to the end is skipped and counted against
//! the datagram that skipped it.
//!
//! The byte ring is allocated at the first datagram and grows
//! geometrically up to its capacity, so a socket that never sends or
//! receives holds no memory; it does not shrink again, except that an
//! empty ring is given up when a frame needs its room.

use std::collections::VecDeque;
use std::net::SocketAddrV4;

use crate::buf::PacketBuf;

/// Smallest allocation once the ring holds anything.
const MIN_ALLOCATION: usize = 2048;

/// Where one datagram is.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Index of its first byte in the byte ring.
    start: usize,
    /// Its length.
    len: usize,
    /// Bytes skipped at the end of the ring before it (it would not fit
    /// there), freed with it.
    skipped: usize,
    addr: SocketAddrV4,
    /// Whether it is the next of `frames` rather than in the ring.
    in_frame: bool,
}

/// A bounded queue of datagrams and their addresses (the sender's on
/// receive, the destination on send).
#[derive(Debug, Default)]
pub struct DatagramRing {
    slots: VecDeque<Slot>,
    bytes: Box<[u8]>,
    /// Frames queued whole (their data is the payload), in order.
    frames: VecDeque<PacketBuf>,
    /// The memory `frames` keep alive.
    framed: usize,
    /// Index of the first byte in use (the oldest datagram's skipped bytes,
    /// or its first byte).
    head: usize,
    /// Bytes in use from `head`, skipped ones included.
    used: usize,
    /// Bytes of the datagrams held, skipped ones not included.
    held: usize,
    /// The most memory the byte ring's allocation and the frames queued
    /// whole hold together.
    capacity: usize,
    /// The most datagrams it holds.
    max_datagrams: usize,
}

impl DatagramRing {
    /// An empty queue of at most `max_datagrams` datagrams in at most
    /// `capacity` bytes. Allocates nothing until the first datagram.
    pub fn new(capacity: usize, max_datagrams: usize) -> DatagramRing {
        DatagramRing {
            capacity,
            max_datagrams,
            ..DatagramRing::default()
        }
    }

    /// Whether no datagram is queued.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether a datagram of `len` bytes would be taken now.
    pub fn fits(&self, len: usize) -> bool {
        self.slots.len() < self.max_datagrams && (self.place(len).is_some() || self.can_grow(len))
    }

    /// The memory held: the byte ring's allocation and the frames queued
    /// whole. Never more than the capacity.
    fn memory(&self) -> usize {
        self.bytes.len() + self.framed
    }

    /// Queues `data` from `addr`/to `addr`; false (nothing queued) if
    /// there is no room.
    pub fn push(&mut self, data: &[u8], addr: SocketAddrV4) -> bool {
        self.push_with(data.len(), addr, |b| b.copy_from_slice(data))
    }

    /// Queues a datagram of `len` bytes that `fill` writes in place (its
    /// slice holds stale bytes, not zeros); false, without calling `fill`,
    /// if there is no room.
    pub fn push_with(
        &mut self,
        len: usize,
        addr: SocketAddrV4,
        fill: impl FnOnce(&mut [u8]),
    ) -> bool {
        if self.slots.len() >= self.max_datagrams {
            return false;
        }
        let (start, skipped) = match self.place(len) {
            Some(p) => p,
            None if self.can_grow(len) => {
                self.grow(len);
                (self.used, 0)
            }
            None => return false,
        };
        fill(&mut self.bytes[start..start + len]);
        self.used += skipped + len;
        self.held += len;
        self.slots.push_back(Slot {
            start,
            len,
            skipped,
            addr,
            in_frame: false,
        });
        true
    }

    /// Queues a received frame whose data is the payload, without copying
    /// it; the frame is handed back if there is no room (its memory, the
    /// allocation, counts against the capacity). A byte ring that holds no
    /// payload is freed if that makes the room.
    pub fn push_frame(&mut self, frame: PacketBuf, addr: SocketAddrV4) -> Result<(), PacketBuf> {
        let size = frame.truesize();
        if self.slots.len() >= self.max_datagrams || self.framed + size > self.capacity {
            return Err(frame);
        }
        if self.memory() + size > self.capacity {
            if self.used > 0 {
                return Err(frame);
            }
            // Only empty datagrams are in the ring: they keep no bytes.
            self.bytes = Box::default();
            self.head = 0;
            for s in self.slots.iter_mut().filter(|s| !s.in_frame) {
                s.start = 0;
            }
        }
        self.framed += size;
        self.slots.push_back(Slot {
            start: 0,
            len: frame.len(),
            skipped: 0,
            addr,
            in_frame: true,
        });
        self.frames.push_back(frame);
        Ok(())
    }

    /// The oldest datagram and its address, if any.
    pub fn front(&self) -> Option<(&[u8], SocketAddrV4)> {
        let s = self.slots.front()?;
        let data = if s.in_frame {
            self.frames.front()?.data()
        } else {
            &self.bytes[s.start..s.start + s.len]
        };
        Some((data, s.addr))
    }

    /// Drops the oldest datagram; a frame it was queued in is handed back,
    /// for the buffer pool.
    pub fn pop(&mut self) -> Option<PacketBuf> {
        let s = self.slots.pop_front()?;
        if s.in_frame {
            let frame = self.frames.pop_front()?;
            self.framed -= frame.truesize();
            return Some(frame);
        }
        if s.len == 0 {
            // It occupies no bytes: the head stays where it is (its own
            // start may be stale, from before the ring last emptied).
            return None;
        }
        self.used -= s.skipped + s.len;
        self.held -= s.len;
        // An empty ring starts again at the front, so that the next
        // datagrams need not skip.
        self.head = if self.used == 0 { 0 } else { s.start + s.len };
        None
    }

    /// Whether a larger allocation would take `len` more bytes. A ring
    /// at its full size does not move what it holds to make room: a
    /// datagram that finds no contiguous room there waits (or, received,
    /// is dropped) as one that finds no room at all.
    fn can_grow(&self, len: usize) -> bool {
        let room = self.capacity - self.framed;
        self.bytes.len() < room && room - self.held >= len
    }

    /// Where a datagram of `len` bytes goes in the present allocation, and
    /// how many bytes it skips at the end of the ring to get there.
    fn place(&self, len: usize) -> Option<(usize, usize)> {
        let size = self.bytes.len();
        let tail = self.head + self.used;
        if tail < size {
            // In use: `head..tail`; free: `tail..size`, then `0..head`.
            if size - tail >= len {
                Some((tail, 0))
            } else if self.head >= len {
                Some((0, size - tail))
            } else {
                None
            }
        } else {
            // In use: `head..size` and `0..tail - size`; free between.
            let tail = tail - size;
            (self.head - tail >= len).then_some((tail, 0))
        }
    }

    /// Moves the datagrams held to the front of a larger allocation with
    /// room for `len` more bytes, within what the capacity leaves beside
    /// the frames queued whole.
    fn grow(&mut self, len: usize) {
        let size = (self.bytes.len() * 2)
            .max(MIN_ALLOCATION)
            .max(self.held + len)
            .min(self.capacity - self.framed);
        let mut bytes = vec![0; size].into_boxed_slice();
        let mut at = 0;
        for s in self.slots.iter_mut().filter(|s| !s.in_frame) {
            bytes[at..at + s.len].copy_from_slice(&self.bytes[s.start..s.start + s.len]);
            *s = Slot {
                start: at,
                skipped: 0,
                ..*s
            };
            at += s.len;
        }
        self.bytes = bytes;
        self.head = 0;
        self.used = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn addr(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 9), port)
    }

    #[test]
    fn allocates_at_the_first_datagram_and_grows_within_the_capacity() {
        let mut r = DatagramRing::new(10_000, 100);
        assert_eq!(r.bytes.len(), 0);
        assert!(r.push(b"", addr(1)));
        assert_eq!(r.bytes.len(), 0, "an empty datagram needs no bytes");
        assert!(r.push(b"abc", addr(2)));
        assert_eq!(r.bytes.len(), MIN_ALLOCATION);
        assert!(r.push(&[7; 5000], addr(3)));
        assert_eq!(r.bytes.len(), 5003);
        assert!(r.push(&[8; 4997], addr(4)));
        assert_eq!(r.bytes.len(), 10_000);
        assert!(!r.fits(1));
        assert!(!r.push(b"x", addr(5)));
        assert_eq!(r.front(), Some((&b""[..], addr(1))));
        r.pop();
        assert_eq!(r.front(), Some((&b"abc"[..], addr(2))));
        r.pop();
        assert_eq!(r.front().map(|(d, _)| d.len()), Some(5000));
    }

    #[test]
    fn a_datagram_that_would_wrap_skips_to_the_front_as_one_slice() {
        let mut r = DatagramRing::new(MIN_ALLOCATION, 100);
        assert!(r.push(&[1; 1000], addr(1)));
        assert!(r.push(&[2; 900], addr(2)));
        r.pop();
        // 148 bytes left at the end, 1000 free at the front.
        assert!(r.push(&[3; 500], addr(3)));
        assert_eq!(r.slots[1].start, 0);
        assert_eq!(r.slots[1].skipped, MIN_ALLOCATION - 1900);
        assert!(!r.push(&[4; 501], addr(4)), "only 500 free before the head");
        assert!(r.push(&[4; 500], addr(4)));
        r.pop();
        assert_eq!(r.front(), Some((&[3; 500][..], addr(3))));
        r.pop();
        r.pop();
        assert!(r.is_empty());
        assert_eq!((r.head, r.used), (0, 0));
    }

    #[test]
    fn the_datagram_limit_holds_whatever_the_bytes() {
        let mut r = DatagramRing::new(1 << 20, 3);
        for i in 0..3 {
            assert!(r.push(b"x", addr(i)));
        }
        assert!(!r.fits(0));
        assert!(!r.push(b"", addr(9)));
        let mut called = false;
        assert!(!r.push_with(1, addr(9), |_| called = true));
        assert!(!called);
        r.pop();
        assert!(r.push(b"y", addr(4)));
    }

    #[test]
    fn a_frame_queued_whole_is_read_in_place_and_handed_back_in_order() {
        let mut frame = PacketBuf::with_headroom(16, 600);
        frame.extend_from_slice(&[5; 600]);
        let size = frame.truesize();
        let mut r = DatagramRing::new(size + 5, 8);
        assert!(r.push(b"before", addr(1)));
        assert!(
            r.push_frame(frame.clone(), addr(2)).is_err(),
            "6 + size > capacity"
        );
        r.pop();
        assert!(r.push_frame(frame, addr(2)).is_ok());
        assert!(r.push(b"after", addr(3)));
        assert!(!r.push(b"x", addr(4)), "the frame's memory counts");
        assert_eq!(r.front(), Some((&[5; 600][..], addr(2))));
        let back = r.pop().expect("the frame comes back");
        assert_eq!(back.truesize(), size);
        assert_eq!(r.front(), Some((&b"after"[..], addr(3))));
        assert!(r.pop().is_none(), "a datagram in the ring has no frame");
        assert!(r.push(&[0; 5], addr(4)));
    }

    /// A datagram of no bytes popped after the ring emptied and refilled
    /// must not move the head: it did once, and the next datagram that
    /// skipped to the front was written over one not yet read.
    #[test]
    fn an_empty_datagram_does_not_move_the_head() {
        let mut r = DatagramRing::new(MIN_ALLOCATION, 100);
        assert!(r.push(&[1; 100], addr(1)));
        assert!(r.push(b"", addr(2)));
        r.pop();
        assert!(r.push(&[3; 50], addr(3)));
        r.pop();
        assert!(r.push(&[4; 1898], addr(4)));
        assert!(r.push(&[5; 100], addr(5)), "exactly the rest of the ring");
        assert!(!r.push(&[6; 1], addr(6)));
        for (n, len) in [(3, 50), (4, 1898), (5, 100)] {
            assert_eq!(r.front(), Some((&vec![n as u8; len][..], addr(n))));
            r.pop();
        }
    }

    /// The ring's allocation and the frames queued whole share one
    /// budget; an empty ring gives its allocation up to a frame.
    #[test]
    fn frames_and_the_ring_share_the_capacity() {
        let mut r = DatagramRing::new(4096, 100);
        for _ in 0..8 {
            assert!(r.push(&[1; 400], addr(1)));
        }
        assert_eq!(r.bytes.len(), 4096);
        let frame = |n: usize| {
            let mut f = PacketBuf::with_headroom(0, n);
            f.extend_from_slice(&vec![9; n]);
            f
        };
        assert!(
            r.push_frame(frame(1000), addr(2)).is_err(),
            "the ring holds it all"
        );
        while !r.is_empty() {
            r.pop();
        }
        assert!(r.push(b"", addr(3)));
        assert!(r.push_frame(frame(1000), addr(2)).is_ok());
        assert_eq!(r.bytes.len(), 0, "the empty ring made way");
        assert!(r.memory() <= 4096);
        assert_eq!(r.front(), Some((&b""[..], addr(3))));
        r.pop();
        assert_eq!(r.front().map(|(d, _)| d.len()), Some(1000));
    }

    /// What a test queues: a datagram copied in, one in a frame, or a pop.
    #[derive(Debug, Clone)]
    enum Op {
        Push(usize),
        Frame(usize),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        let len = prop_oneof![Just(0usize), 1usize..64, 0usize..2500];
        prop_oneof![
            3 => len.clone().prop_map(Op::Push),
            1 => len.prop_map(Op::Frame),
            3 => Just(Op::Pop),
        ]
    }

    proptest! {
        /// Against a plain queue: whatever the sizes and the order of
        /// pushes, frames and pops, every datagram comes out whole and in
        /// order, a refused one only when the ring is really short of
        /// room, and the memory held never exceeds the capacity.
        #[test]
        fn behaves_as_a_bounded_queue(
            capacity in 0usize..6000,
            ops in proptest::collection::vec(op(), 1..300),
        ) {
            let mut r = DatagramRing::new(capacity, 64);
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            for (i, op) in ops.into_iter().enumerate() {
                let data = |len| vec![i as u8; len];
                match op {
                    Op::Push(len) => {
                        let fits = r.fits(len);
                        let was_empty = model.is_empty() && r.framed == 0;
                        prop_assert_eq!(r.push(&data(len), addr(i as u16)), fits);
                        if fits {
                            model.push_back(data(len));
                        } else {
                            // Refused only when short of slots, or with
                            // something else held: an empty queue takes
                            // anything up to its capacity.
                            prop_assert!(model.len() == 64 || !was_empty || len > capacity);
                        }
                    }
                    Op::Frame(len) => {
                        let mut f = PacketBuf::with_headroom(0, len);
                        f.extend_from_slice(&data(len));
                        if r.push_frame(f, addr(i as u16)).is_ok() {
                            model.push_back(data(len));
                        }
                    }
                    Op::Pop => {
                        let expect = model.pop_front();
                        prop_assert_eq!(r.front().map(|(d, _)| d.to_vec()), expect);
                        r.pop();
                    }
                }
                prop_assert!(r.memory() <= capacity);
                prop_assert_eq!(r.slots.len(), model.len());
            }
            while let Some(expect) = model.pop_front() {
                prop_assert_eq!(r.front().map(|(d, _)| d.to_vec()), Some(expect));
                r.pop();
            }
            prop_assert!(r.front().is_none());
        }
    }
}
