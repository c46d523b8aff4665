//! The send buffer of a TCP connection: bytes the application has written
//! and the peer has not yet acknowledged (RFC 9293 §3.8.6, "SEND" in
//! §3.10.2).
//!
//! A bounded byte ring. [`SendBuffer::write`] copies the application's bytes
//! in, or [`SendBuffer::write_with`] lets the application write them in
//! place; the connection copies ranges out ([`SendBuffer::slices`])
//! straight into the frame being built, at any offset
//! from the front (the front is `snd_una`; offsets beyond what was sent are
//! new data, offsets before it retransmissions), and drops acknowledged bytes
//! with [`SendBuffer::consume`].
//!
//! The ring allocates lazily and grows geometrically up to its capacity, so
//! an idle connection holds no memory and one that sends little holds
//! little.
//!
//! Deliberately not here: sequence numbers, SYN and FIN (they occupy
//! sequence space but no buffer space: the connection accounts for them),
//! and segmentation decisions (Nagle, MSS).
//!
//! # Example
//!
//! ```
//! use netstrata::transport::tcp::send_buffer::SendBuffer;
//!
//! let mut buf = SendBuffer::new(8);
//! assert_eq!(buf.write(b"hello, world"), 8); // as much as fits
//! assert_eq!(buf.free(), 0);
//! // A segment takes bytes from any offset (here: a retransmission of 2..6).
//! let (first, second) = buf.slices(2, 4);
//! assert_eq!([first, second].concat(), b"llo,");
//! // The peer acknowledges 5 bytes: they leave, and make room.
//! assert_eq!(buf.consume(5), 5);
//! assert_eq!(buf.write(b"world"), 5);
//! let mut out = [0; 8];
//! assert_eq!(buf.copy_to(0, &mut out), 8);
//! assert_eq!(&out, b", wworld");
//! ```

/// Smallest allocation once the ring holds anything.
const MIN_ALLOCATION: usize = 4096;

/// Bytes written by the application and not yet acknowledged, in a bounded
/// ring.
#[derive(Debug, Clone, Default)]
pub struct SendBuffer {
    /// The ring; its length is the current allocation, at most `capacity`
    /// (unless `capacity` was lowered to what was held).
    buf: Box<[u8]>,
    /// Index in `buf` of the oldest byte.
    head: usize,
    /// Bytes held.
    len: usize,
    /// The most bytes the buffer will hold.
    capacity: usize,
}

impl SendBuffer {
    /// An empty buffer that will hold up to `capacity` bytes. Allocates
    /// nothing until the first write.
    pub fn new(capacity: usize) -> SendBuffer {
        SendBuffer {
            buf: Box::default(),
            head: 0,
            len: 0,
            capacity,
        }
    }

    /// Bytes held (written and not yet consumed).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no bytes are held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most bytes the buffer holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The memory the ring holds (its allocation).
    pub fn memory(&self) -> usize {
        self.buf.len()
    }

    /// Frees the allocation if nothing is held (the next write allocates
    /// afresh); returns the memory freed.
    pub fn release_if_empty(&mut self) -> usize {
        if self.len > 0 {
            return 0;
        }
        let freed = self.buf.len();
        self.buf = Box::default();
        self.head = 0;
        freed
    }

    /// How many more bytes [`write`](Self::write) would accept.
    pub fn free(&self) -> usize {
        self.capacity - self.len
    }

    /// Sets the capacity, never below [`len`](Self::len), and returns the
    /// capacity set. Shrinking also shrinks an allocation beyond it.
    pub fn set_capacity(&mut self, capacity: usize) -> usize {
        self.capacity = capacity.max(self.len);
        if self.buf.len() > self.capacity {
            self.reallocate(self.capacity);
        }
        self.capacity
    }

    /// Copies as much of `data` as fits in; returns how many bytes.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        self.reserve(n);
        let needed = self.len + n;
        let size = self.buf.len();
        let tail = self.wrap(self.head + self.len);
        let first = n.min(size - tail);
        self.buf[tail..tail + first].copy_from_slice(&data[..first]);
        self.buf[..n - first].copy_from_slice(&data[first..n]);
        self.len = needed;
        n
    }

    /// Lets `f` write up to `max` new bytes in place, at the end of what is
    /// held: `f` gets free space where the next byte goes as one contiguous
    /// slice (its old contents are stale bytes, not zeros) and returns how
    /// many bytes it wrote there, from the start of the slice; the count is
    /// clamped to the slice. Returns that count. The slice is `max` bytes
    /// (or what is free, if less) unless the ring wraps inside it: a second
    /// call then offers the rest. `f` is not called when there is no room.
    /// The ring grows as for [`write`](Self::write) of `max` bytes.
    pub fn write_with(&mut self, max: usize, f: impl FnOnce(&mut [u8]) -> usize) -> usize {
        let max = max.min(self.free());
        if max == 0 {
            return 0;
        }
        self.reserve(max);
        let size = self.buf.len();
        let tail = self.wrap(self.head + self.len);
        // Free space runs from the tail to the end of the allocation, or
        // to the head when the held bytes wrap past the end.
        let end = if tail >= self.head { size } else { self.head };
        let room = max.min(end - tail);
        let n = f(&mut self.buf[tail..tail + room]).min(room);
        self.len += n;
        n
    }

    /// Grows the allocation, geometrically and within the capacity, until
    /// `n` more bytes fit (`n` at most [`free`](Self::free)).
    fn reserve(&mut self, n: usize) {
        let needed = self.len + n;
        if needed > self.buf.len() {
            let grown = self.buf.len().saturating_mul(2).max(MIN_ALLOCATION);
            self.reallocate(grown.min(self.capacity).max(needed));
        }
    }

    /// Drops up to `n` bytes from the front (they were acknowledged);
    /// returns how many.
    pub fn consume(&mut self, n: usize) -> usize {
        let n = n.min(self.len);
        self.len -= n;
        self.head = if self.len == 0 {
            0
        } else {
            self.wrap(self.head + n)
        };
        n
    }

    /// Drops every byte held.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Copies the bytes from `offset` (counted from the front) into `dst`,
    /// as many as fit and are held; returns how many (0 if `offset` is at or
    /// beyond [`len`](Self::len)).
    pub fn copy_to(&self, offset: usize, dst: &mut [u8]) -> usize {
        let (a, b) = self.slices(offset, dst.len());
        dst[..a.len()].copy_from_slice(a);
        dst[a.len()..a.len() + b.len()].copy_from_slice(b);
        a.len() + b.len()
    }

    /// The up to `max` bytes from `offset` (counted from the front), as two
    /// slices because the ring may wrap (the second is then non-empty).
    /// Both are empty if `offset` is at or beyond [`len`](Self::len).
    pub fn slices(&self, offset: usize, max: usize) -> (&[u8], &[u8]) {
        if offset >= self.len {
            return (&[], &[]);
        }
        let n = max.min(self.len - offset);
        let start = self.wrap(self.head + offset);
        let first = n.min(self.buf.len() - start);
        (&self.buf[start..start + first], &self.buf[..n - first])
    }

    /// Reduces an index in `0..2 * buf.len()` into the ring.
    fn wrap(&self, i: usize) -> usize {
        if i >= self.buf.len() {
            i - self.buf.len()
        } else {
            i
        }
    }

    /// Moves the bytes held into a fresh allocation of `size >= len` bytes,
    /// starting at index 0.
    fn reallocate(&mut self, size: usize) {
        let mut buf = vec![0; size].into_boxed_slice();
        let n = self.copy_to(0, &mut buf);
        debug_assert_eq!(n, self.len);
        self.buf = buf;
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn allocates_lazily() {
        let mut b = SendBuffer::new(1 << 20);
        assert_eq!(b.buf.len(), 0);
        assert_eq!(b.write(b""), 0);
        assert_eq!(b.buf.len(), 0);
        assert_eq!(b.write(b"abc"), 3);
        assert_eq!(b.buf.len(), MIN_ALLOCATION);
        let big = vec![7; 10_000];
        assert_eq!(b.write(&big), 10_000);
        assert_eq!(b.buf.len(), 10_003);
        assert_eq!(b.write(&[1]), 1);
        assert_eq!(b.buf.len(), 20_006);
    }

    #[test]
    fn memory_is_the_allocation_and_an_empty_ring_can_give_it_back() {
        let mut b = SendBuffer::new(1 << 20);
        assert_eq!(b.memory(), 0);
        b.write(&[1; 5000]);
        assert_eq!(b.memory(), 5000);
        assert_eq!(b.release_if_empty(), 0);
        b.consume(5000);
        assert_eq!(b.memory(), 5000);
        assert_eq!(b.release_if_empty(), 5000);
        assert_eq!(b.memory(), 0);
        assert_eq!(b.write(b"xy"), 2);
        let mut out = [0; 2];
        assert_eq!(b.copy_to(0, &mut out), 2);
        assert_eq!(&out, b"xy");
    }

    #[test]
    fn write_bounded_by_capacity() {
        let mut b = SendBuffer::new(5);
        assert_eq!(b.write(b"hello world"), 5);
        assert_eq!(b.free(), 0);
        assert_eq!(b.write(b"!"), 0);
        assert_eq!(b.buf.len(), 5);
        let mut out = [0; 8];
        assert_eq!(b.copy_to(0, &mut out), 5);
        assert_eq!(&out[..5], b"hello");
    }

    #[test]
    fn wraps_around() {
        let mut b = SendBuffer::new(8);
        assert_eq!(b.write(b"abcdef"), 6);
        assert_eq!(b.consume(4), 4);
        assert_eq!(b.write(b"ghijkl"), 6);
        // Ring of 8: "ij kl ? ? ef gh" with head at 4.
        assert_eq!(b.head, 4);
        assert_eq!(b.slices(0, 8), (&b"efgh"[..], &b"ijkl"[..]));
        let mut out = [0; 3];
        assert_eq!(b.copy_to(2, &mut out), 3);
        assert_eq!(&out, b"ghi");
        assert_eq!(b.copy_to(7, &mut out), 1);
        assert_eq!(out[0], b'l');
        assert_eq!(b.copy_to(8, &mut out), 0);
        assert_eq!(b.copy_to(usize::MAX, &mut out), 0);
        assert_eq!(b.consume(100), 8);
        assert!(b.is_empty());
        assert_eq!(b.head, 0);
    }

    #[test]
    fn writes_in_place_up_to_the_wrap_then_after_it() {
        let mut b = SendBuffer::new(8);
        assert_eq!(
            b.write_with(8, |room| {
                assert_eq!(room.len(), 8);
                room[..6].copy_from_slice(b"abcdef");
                6
            }),
            6
        );
        assert_eq!(b.consume(4), 4);
        // Held: "ef" at 4..6. The room runs to the end of the ring first,
        // then from its start up to the held bytes.
        assert_eq!(
            b.write_with(8, |room| {
                assert_eq!(room.len(), 2);
                room.copy_from_slice(b"gh");
                2
            }),
            2
        );
        assert_eq!(
            b.write_with(100, |room| {
                assert_eq!(room.len(), 4);
                room[..3].copy_from_slice(b"ijk");
                3
            }),
            3
        );
        assert_eq!(b.slices(0, 8), (&b"efgh"[..], &b"ijk"[..]));
        // A count beyond the slice is clamped; a full ring does not call.
        assert_eq!(b.write_with(8, |_| 100), 1);
        assert_eq!(b.free(), 0);
        assert_eq!(b.write_with(8, |_| unreachable!("no room")), 0);
    }

    #[test]
    fn writing_in_place_grows_the_ring_as_writing_does() {
        let mut b = SendBuffer::new(1 << 16);
        assert_eq!(b.write_with(0, |_| unreachable!("no room asked")), 0);
        assert_eq!(b.memory(), 0);
        assert_eq!(b.write_with(3, |room| room.len()), 3);
        assert_eq!(b.memory(), MIN_ALLOCATION);
        assert_eq!(b.write_with(usize::MAX, |room| room.len()), (1 << 16) - 3);
        assert_eq!(b.memory(), 1 << 16);
    }

    #[test]
    fn capacity_changes() {
        let mut b = SendBuffer::new(8);
        b.write(b"abcdefgh");
        b.consume(6);
        b.write(b"ijkl");
        assert_eq!(b.set_capacity(2), 6);
        assert_eq!(b.buf.len(), 6);
        assert_eq!(b.slices(0, 10), (&b"ghijkl"[..], &b""[..]));
        assert_eq!(b.set_capacity(100), 100);
        assert_eq!(b.write(&[0; 200]), 94);
        assert_eq!(b.len(), 100);
        assert_eq!(b.slices(0, 6), (&b"ghijkl"[..], &b""[..]));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(Vec<u8>),
        Consume(usize),
        CopyTo(usize, usize),
        SetCapacity(usize),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Op::Write),
            3 => (0..400usize).prop_map(Op::Consume),
            3 => (0..600usize, 0..600usize).prop_map(|(o, n)| Op::CopyTo(o, n)),
            1 => (0..1200usize).prop_map(Op::SetCapacity),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        #[test]
        fn matches_vec_model(
            capacity in 0..1000usize,
            ops in proptest::collection::vec(op(), 0..60),
        ) {
            let mut b = SendBuffer::new(capacity);
            let mut model: Vec<u8> = Vec::new();
            let mut cap = capacity;
            for op in ops {
                match op {
                    Op::Write(data) => {
                        let n = b.write(&data);
                        let expect = data.len().min(cap - model.len());
                        prop_assert_eq!(n, expect);
                        model.extend_from_slice(&data[..n]);
                    }
                    Op::Consume(n) => {
                        let expect = n.min(model.len());
                        prop_assert_eq!(b.consume(n), expect);
                        model.drain(..expect);
                    }
                    Op::CopyTo(offset, n) => {
                        let mut dst = vec![0xee; n];
                        let got = b.copy_to(offset, &mut dst);
                        let want = model.get(offset..).unwrap_or(&[]);
                        let want = &want[..want.len().min(n)];
                        prop_assert_eq!(&dst[..got], want);
                        prop_assert!(dst[got..].iter().all(|&x| x == 0xee));
                        let (x, y) = b.slices(offset, n);
                        prop_assert_eq!([x, y].concat(), want);
                    }
                    Op::SetCapacity(c) => {
                        cap = c.max(model.len());
                        prop_assert_eq!(b.set_capacity(c), cap);
                    }
                    Op::Clear => {
                        b.clear();
                        model.clear();
                    }
                }
                prop_assert_eq!(b.len(), model.len());
                prop_assert_eq!(b.is_empty(), model.is_empty());
                prop_assert_eq!(b.capacity(), cap);
                prop_assert_eq!(b.free(), cap - model.len());
                prop_assert!(b.buf.len() <= cap);
                prop_assert!(b.head < b.buf.len() || b.head == 0);
                let (x, y) = b.slices(0, usize::MAX);
                prop_assert_eq!([x, y].concat(), model.clone());
            }
        }
    }
}
