//! Owned packet buffers with headroom.
//!
//! A [`PacketBuf`] is one contiguous `BytesMut` with a movable start. On
//! transmit, the sender allocates once with room in front for every header
//! below it ([`MAX_HEADROOM`] covers Ethernet + IPv4 with options + TCP with
//! options), writes its payload, and each lower layer *pushes* its header
//! into that headroom: the payload is never moved. On receive, each layer
//! *pulls* its header off the front and truncates trailing padding, handing
//! the rest up in the same allocation; payloads given to sockets are
//! zero-copy [`Bytes`] slices of the received frame.
//!
//! Allocation is amortised by a [`BufferPool`] that recycles the `BytesMut`
//! of buffers that were consumed (transmitted, or dropped after parsing),
//! and by [`Lent`], which takes back the frames whose payload went up to the
//! application once the application has let go of it. A device that keeps
//! buffers of its own (the in-memory network shares one store between its
//! ports) refills a pool that ran dry and takes the surplus of one that is
//! full, so that in a steady flow no frame is allocated.
//!
//! Deliberately not here: scatter-gather chains. Every packet is one slice,
//! which keeps parsing simple and matches what TAP and pcap want.
//!
//! # Example
//!
//! A payload written once, with headers pushed in front of it and pulled off
//! again, never moves:
//!
//! ```
//! use netstrata::buf::{BufferPool, MAX_HEADROOM, PacketBuf};
//!
//! let mut packet = PacketBuf::from_payload(MAX_HEADROOM, b"payload");
//! let at = packet.data().as_ptr();
//! packet.push_header(8).copy_from_slice(b"UDPHEADR");
//! packet.push_header(20).fill(0x45);
//! assert_eq!(packet.len(), 20 + 8 + 7);
//! assert_eq!(packet.headroom(), MAX_HEADROOM - 28);
//!
//! assert!(packet.pull_header(28));
//! assert_eq!(packet.data(), b"payload");
//! assert_eq!(packet.data().as_ptr(), at);
//!
//! // A pool hands a recycled buffer out again instead of allocating.
//! let mut pool = BufferPool::new(8, 2048);
//! let mut frame = pool.alloc(MAX_HEADROOM, 1500);
//! frame.extend_from_slice(&packet.data()[..4]);
//! pool.recycle(frame);
//! assert_eq!(pool.spare(), 1);
//! let again = pool.alloc(MAX_HEADROOM, 1500);
//! assert!(again.is_empty() && again.headroom() == MAX_HEADROOM);
//! assert_eq!(pool.stats(), (1, 1)); // (allocated, reused)
//! ```

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// Headroom reserved in front of every transmitted payload: Ethernet (14) +
/// IPv4 with maximal options (60) + TCP with maximal options (60), rounded
/// up to a cache line.
pub const MAX_HEADROOM: usize = 192;

/// A packet under construction or being taken apart, with free space in
/// front of the data for headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PacketBuf {
    buf: BytesMut,
    /// Where the data begins in `buf` (the low 32 bits), the device's
    /// [`L4Checksum`] (bits 32 and 33), and the segment size of a TCP
    /// super-segment (the top 16 bits, [`PacketBuf::segment_size`]). One word, always written whole: a
    /// packet is moved from layer to layer right after it is made, and a
    /// move reads this word back with one load, which waits (the store
    /// cannot be forwarded) if the word was written in two pieces. As two
    /// fields, the UDP packet rate fell by a tenth. (64 bits on every
    /// target, so that the state has bits of its own on 32-bit ones.)
    head: u64,
}

/// The bits of [`PacketBuf`]'s `head` word that hold the offset; packet
/// buffers are far below 4 GiB.
const HEAD_OFFSET: u64 = u32::MAX as u64;
/// Where the [`L4Checksum`] sits in that word.
const L4_SHIFT: u32 = 32;
const L4_BITS: u64 = 3 << L4_SHIFT;
/// Where the segment size sits in that word.
const SEGMENT_SHIFT: u32 = 48;
const SEGMENT_BITS: u64 = 0xffff << SEGMENT_SHIFT;

/// What a device knows of a received frame's transport (TCP, UDP)
/// checksum: Linux's `ip_summed`, virtio-net's header flags. Only the
/// device that read the frame sets it; a packet being built is always
/// [`L4Checksum::Unverified`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum L4Checksum {
    /// Nothing is known: the stack verifies it.
    #[default]
    Unverified,
    /// The device, or the kernel that handed it over, verified it
    /// (virtio's `VIRTIO_NET_HDR_F_DATA_VALID`).
    Verified,
    /// Left partial by a local sender that offloads its checksums to the
    /// device (virtio's `VIRTIO_NET_HDR_F_NEEDS_CSUM`): the field holds
    /// only the pseudo-header's sum. The data never crossed a wire and is
    /// as good as verified; a capture completes the sum to show it.
    Partial,
}

impl PacketBuf {
    /// An empty packet with `headroom` bytes free in front and room for
    /// `capacity` bytes of data.
    pub fn with_headroom(headroom: usize, capacity: usize) -> PacketBuf {
        let mut buf = BytesMut::with_capacity(headroom + capacity);
        buf.resize(headroom, 0);
        PacketBuf {
            buf,
            head: headroom as u64,
        }
    }

    /// A packet holding a copy of `payload` with `headroom` bytes in front.
    pub fn from_payload(headroom: usize, payload: &[u8]) -> PacketBuf {
        let mut p = PacketBuf::with_headroom(headroom, payload.len());
        p.buf.extend_from_slice(payload);
        p
    }

    /// A packet whose data is all of `buf` (a received frame), no headroom.
    pub fn from_bytes_mut(buf: BytesMut) -> PacketBuf {
        PacketBuf { buf, head: 0 }
    }

    /// What the receiving device knows of the transport checksum.
    pub fn l4_checksum(&self) -> L4Checksum {
        match (self.head & L4_BITS) >> L4_SHIFT {
            1 => L4Checksum::Verified,
            2 => L4Checksum::Partial,
            _ => L4Checksum::Unverified,
        }
    }

    /// Records what the receiving device knows of the transport checksum.
    pub fn set_l4_checksum(&mut self, state: L4Checksum) {
        let bits: u64 = match state {
            L4Checksum::Unverified => 0,
            L4Checksum::Verified => 1,
            L4Checksum::Partial => 2,
        };
        self.head = (self.head & !L4_BITS) | bits << L4_SHIFT;
    }

    /// The payload bytes of each segment a device that segments (TCP
    /// segmentation offload) cuts this packet into: set on a TCP
    /// super-segment, a TCP header in front of more payload than one
    /// segment carries, which only a device that segments is given
    /// ([`crate::link::DeviceCaps::segmentation`]). 0 for an ordinary
    /// packet. Virtio's `gso_size`, Linux's `gso_size`.
    pub fn segment_size(&self) -> usize {
        (self.head >> SEGMENT_SHIFT) as usize
    }

    /// Marks the packet as a TCP super-segment to be cut into segments of
    /// `size` payload bytes (0: an ordinary packet). It stays through the
    /// headers pushed in front of it.
    pub fn set_segment_size(&mut self, size: u16) {
        self.head = (self.head & !SEGMENT_BITS) | u64::from(size) << SEGMENT_SHIFT;
    }

    /// The bytes of the packet from the current head to the end.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.headroom()..]
    }

    /// The bytes of the packet, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let head = self.headroom();
        &mut self.buf[head..]
    }

    /// Length of the data.
    pub fn len(&self) -> usize {
        self.buf.len() - self.headroom()
    }

    /// Whether the data is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Free space in front of the data.
    pub fn headroom(&self) -> usize {
        (self.head & HEAD_OFFSET) as usize
    }

    /// The size of the allocation this packet keeps alive, whatever part
    /// of it the data occupies (Linux's `truesize`, without the metadata):
    /// what a queue holding the packet, or a slice of it, really costs.
    pub fn truesize(&self) -> usize {
        // `head` lies inside `buf`, which starts where the allocation does
        // (a `PacketBuf` only gives up its front in `freeze`).
        self.buf.capacity()
    }

    /// Appends `bytes` at the end of the data (used while building a
    /// payload; may grow the allocation).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Grows the data by `n` zero bytes at the end and returns them.
    pub fn append_zeroed(&mut self, n: usize) -> &mut [u8] {
        let old = self.buf.len();
        self.buf.resize(old + n, 0);
        &mut self.buf[old..]
    }

    /// Makes room for an `n`-byte header in front of the data and returns
    /// it for the caller to fill. The new bytes hold stale contents.
    ///
    /// If the headroom is too small (a caller that did not reserve
    /// [`MAX_HEADROOM`]) the data is moved once into a larger allocation
    /// rather than failing; this is a slow path and is logged.
    pub fn push_header(&mut self, n: usize) -> &mut [u8] {
        if n > self.headroom() {
            log::debug!(
                "packet buffer headroom {} < {n}: reallocating",
                self.headroom()
            );
            let mut grown = PacketBuf::with_headroom(MAX_HEADROOM.max(n), self.len());
            grown.buf.extend_from_slice(self.data());
            grown.head |= self.head & SEGMENT_BITS;
            *self = grown;
        }
        // A packet that gains a header is being sent: whatever a device
        // said of it as received no longer holds. Its segment size, set
        // for the device, holds.
        let head = self.headroom() - n;
        self.head = head as u64 | (self.head & SEGMENT_BITS);
        &mut self.buf[head..head + n]
    }

    /// Removes `n` bytes from the front of the data (a parsed header).
    /// Returns false, leaving the packet unchanged, if fewer than `n` bytes
    /// remain.
    pub fn pull_header(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.head += n as u64;
        true
    }

    /// Shortens the data to `len` bytes (drops link-layer padding); no-op if
    /// it is already shorter.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.buf.truncate(self.headroom() + len);
        }
    }

    /// The data as immutable shared bytes, without copying.
    pub fn freeze(mut self) -> Bytes {
        // Drop the headroom from the `BytesMut` first (a pointer bump)
        // rather than slicing the frozen `Bytes`: slicing a `Bytes` made
        // from a whole `Vec` promotes it to the shared representation,
        // which allocates, once per received datagram.
        self.buf.advance(self.headroom());
        self.buf.freeze()
    }

    /// The whole underlying allocation, for recycling into a
    /// [`BufferPool`].
    pub fn into_inner(self) -> BytesMut {
        self.buf
    }
}

/// Slices smaller than this are never worth copying out of their
/// allocation on account of what they pin: that much is one ordinary frame
/// buffer ([`BufferPool::default`]'s size, rounded up).
pub const COMPACT_ABOVE: usize = 2048;

/// Whether `len` bytes that keep a `truesize`-byte allocation alive should
/// be copied into an allocation of their own before they are queued, as
/// Linux collapses its buffers: when the allocation is more than twice the
/// data and larger than one ordinary frame buffer. A 256-byte slice of a
/// reassembled 64 KiB datagram is copied; a small datagram in a pool
/// buffer is not (it is counted at the buffer's size instead), so the
/// common path stays free of copies and allocations, and what a queue
/// counts bounds what it holds within a factor of two.
pub fn worth_compacting(len: usize, truesize: usize) -> bool {
    truesize > COMPACT_ABOVE && truesize > len.saturating_mul(2)
}

/// The size of the buffers a pool keeps for TCP super-segments and
/// super-frames (segmentation and large receive offloads): the largest
/// IPv4 datagram behind [`MAX_HEADROOM`], or a TAP's largest read with its
/// virtio-net header, rounded up.
pub const LARGE_BUFFER_SIZE: usize = 66 * 1024;

/// How many [`LARGE_BUFFER_SIZE`] buffers a pool keeps spare: a 1 MiB
/// window's worth.
pub const LARGE_BUFFERS: usize = 16;

/// A bounded free list of packet allocations, in two sizes: frames, and
/// super-frames ([`LARGE_BUFFER_SIZE`]).
///
/// `alloc` hands out a recycled allocation when one large enough is free
/// and allocates otherwise; `recycle` takes back the allocation of a packet
/// that is no longer needed. An allocation whose memory is still shared
/// (a payload slice given to a socket) simply is not recycled.
#[derive(Debug)]
pub struct BufferPool {
    free: Vec<BytesMut>,
    max_free: usize,
    /// Spare super-frame buffers, at most [`LARGE_BUFFERS`]: a device
    /// that segments or coalesces passes one per 64 KiB, which would
    /// otherwise be allocated (and the memory faulted in) every time.
    large: Vec<BytesMut>,
    buffer_size: usize,
    allocated: u64,
    reused: u64,
}

impl BufferPool {
    /// A pool that keeps up to `max_free` allocations of `buffer_size`
    /// bytes each.
    pub fn new(max_free: usize, buffer_size: usize) -> BufferPool {
        BufferPool {
            free: Vec::with_capacity(max_free),
            max_free,
            large: Vec::new(),
            buffer_size,
            allocated: 0,
            reused: 0,
        }
    }

    /// A packet with `headroom` free bytes in front and room for `capacity`
    /// bytes of data.
    pub fn alloc(&mut self, headroom: usize, capacity: usize) -> PacketBuf {
        let need = headroom + capacity;
        let (spares, size) = if need <= self.buffer_size {
            (Some(&mut self.free), self.buffer_size)
        } else if need <= LARGE_BUFFER_SIZE {
            (Some(&mut self.large), LARGE_BUFFER_SIZE)
        } else {
            (None, need)
        };
        if let Some(mut buf) = spares.and_then(Vec::pop) {
            self.reused += 1;
            // A recycled buffer keeps the length it had: those bytes are
            // initialised (stale), and headroom within them is not zeroed
            // again.
            if buf.len() >= headroom {
                buf.truncate(headroom);
            } else {
                buf.resize(headroom, 0);
            }
            return PacketBuf {
                buf,
                head: headroom as u64,
            };
        }
        self.allocated += 1;
        let mut buf = BytesMut::with_capacity(size.max(need));
        // Give the allocation its shared form now, once (`split_to` does,
        // at the cost of one small allocation): a frame that is frozen into
        // `Bytes`, sliced, handed to a socket and taken back
        // ([`Lent::reclaim`]) then stays in that form, and none of those
        // steps allocates again. A plain vector would allocate a
        // reference count at every `freeze`, and free it again when taken
        // back.
        drop(buf.split_to(0));
        buf.resize(headroom, 0);
        PacketBuf {
            buf,
            head: headroom as u64,
        }
    }

    /// Returns a packet's allocation to the pool if it is uniquely owned
    /// and of about the pool's size (at most twice it); otherwise it is
    /// freed, so that a reassembled 64 KiB datagram does not sit in a
    /// free list meant for MTU-sized frames.
    pub fn recycle(&mut self, packet: PacketBuf) {
        self.recycle_bytes(packet.into_inner());
    }

    /// As [`BufferPool::recycle`], for a bare allocation. A slice of a
    /// frame taken back from a socket ([`Lent`]) starts inside its
    /// allocation: when it is the only reference left, it is moved back to
    /// the start without allocating; one still shared is not kept.
    pub fn recycle_bytes(&mut self, mut buf: BytesMut) {
        if self.free.len() < self.max_free && restore(&mut buf, self.buffer_size) {
            self.free.push(buf);
        } else {
            self.keep_large(buf);
        }
    }

    /// Keeps `buf` among the super-frame buffers if it is one (whole, or
    /// a slice of one that is its only reference) and there is room.
    fn keep_large(&mut self, mut buf: BytesMut) {
        if self.buffer_size < LARGE_BUFFER_SIZE
            && self.large.len() < LARGE_BUFFERS
            && restore(&mut buf, LARGE_BUFFER_SIZE)
        {
            self.large.push(buf);
        }
    }

    /// As [`BufferPool::recycle_bytes`], for as many allocations of `bufs`
    /// as the pool has room for, taken from the front; the rest stay in
    /// `bufs`. They are restored where they lie once moved: moved after
    /// the stores that restored them, each would wait for those stores.
    pub fn recycle_all(&mut self, bufs: &mut Vec<BytesMut>) {
        let start = self.free.len();
        let n = self.max_free.saturating_sub(start).min(bufs.len());
        self.free.extend(bufs.drain(..n));
        let mut i = start;
        while i < self.free.len() {
            if restore(&mut self.free[i], self.buffer_size) {
                i += 1;
            } else {
                let buf = self.free.swap_remove(i);
                self.keep_large(buf);
            }
        }
    }

    /// How many allocations were made fresh and how many were reused.
    pub fn stats(&self) -> (u64, u64) {
        (self.allocated, self.reused)
    }

    /// How many spare allocations the pool holds (frame buffers).
    pub fn spare(&self) -> usize {
        self.free.len()
    }

    /// How many spare super-frame buffers the pool holds.
    pub fn large_spare(&self) -> usize {
        self.large.len()
    }

    /// The size of the pool's frame buffers.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    /// Whether the pool is full: a recycled allocation would be freed.
    pub fn is_full(&self) -> bool {
        self.free.len() >= self.max_free
    }

    /// Moves spare allocations into `depot` (a device's, shared with other
    /// pools) until this pool keeps `keep` of them or `depot` holds
    /// `depot_max`.
    pub fn spill_into(&mut self, depot: &mut Vec<BytesMut>, keep: usize, depot_max: usize) {
        while self.free.len() > keep && depot.len() < depot_max {
            let Some(buf) = self.free.pop() else { break };
            depot.push(buf);
        }
    }

    /// Moves up to `n` spare allocations into `to` (another pool: a
    /// device's and its stack's), while `to` has room, and half the spare
    /// super-frame buffers (rounded up).
    pub fn move_spares(&mut self, to: &mut BufferPool, n: usize) {
        for _ in 0..n {
            if to.is_full() {
                break;
            }
            let Some(buf) = self.free.pop() else { break };
            to.recycle_bytes(buf);
        }
        for _ in 0..self.large.len().div_ceil(2) {
            if to.large.len() >= LARGE_BUFFERS {
                break;
            }
            let Some(buf) = self.large.pop() else { break };
            to.keep_large(buf);
        }
    }

    /// Takes up to `n` allocations from `depot` into this pool; one too
    /// small for this pool's buffers (or absurdly large) is freed instead.
    pub fn refill_from(&mut self, depot: &mut Vec<BytesMut>, n: usize) {
        for _ in 0..n {
            let Some(buf) = depot.pop() else { break };
            self.recycle_bytes(buf);
        }
    }
}

/// Allocations lent upward: received frames whose payload a socket handed
/// to the application ([`Bytes`] slices of the frame) or consumed, waiting
/// to go back to a [`BufferPool`] once nothing else refers to them.
///
/// The stack keeps one reference to each (a clone of the slice, which
/// costs a reference count, not a copy) and, at its next poll, takes back
/// each allocation whose only remaining reference is its own: an
/// application that drops what it read returns every frame, and the
/// steady state allocates nothing. At most
/// `max` are held: beyond that the oldest is let go, to be freed by
/// whoever drops it last, so an application that keeps what it read costs
/// no more than it would without this.
#[derive(Debug, Default)]
pub struct Lent {
    held: VecDeque<Bytes>,
    /// Taken back, not yet handed to a pool.
    taken: Vec<BytesMut>,
    max: usize,
}

impl Lent {
    /// Holds up to `max` lent allocations.
    pub fn new(max: usize) -> Lent {
        Lent {
            held: VecDeque::new(),
            taken: Vec::new(),
            max,
        }
    }

    /// Remembers a slice handed to the application, if it is the only
    /// reference to its allocation: one that shares it with something the
    /// stack still holds (a block of small pieces copied together, the
    /// rest of a frame) would not come back soon, and is not waited for.
    pub fn lend(&mut self, bytes: &Bytes) {
        if bytes.is_unique() {
            self.hold(bytes.clone());
        }
    }

    /// Takes back a slice the stack no longer needs (consumed by a copying
    /// read), if it is the last reference to its allocation.
    pub fn give_back(&mut self, bytes: Bytes) {
        if bytes.is_unique() {
            self.hold(bytes);
        }
    }

    fn hold(&mut self, bytes: Bytes) {
        if self.max == 0 {
            return;
        }
        if self.held.len() >= self.max {
            self.held.pop_front();
        }
        self.held.push_back(bytes);
    }

    /// Takes back, from the oldest on, the allocations whose only
    /// reference is the one held here, up to the first still in use; the
    /// next [`Lent::reclaim`] hands them out. Called when the application
    /// reads again, this finds what it dropped since its last read while
    /// the reference counts it released are still in cache, at a cost of
    /// one check more than it takes back.
    pub fn collect(&mut self) {
        while self.taken.len() < self.max {
            let Some(bytes) = self.held.pop_front() else {
                break;
            };
            match bytes.try_into_mut() {
                Ok(buf) => self.taken.push(buf),
                Err(bytes) => {
                    self.held.push_front(bytes);
                    break;
                }
            }
        }
    }

    /// Hands `recycle` what was collected and every other allocation whose
    /// only reference is the one held here, all at once; the others stay,
    /// in order (one pass over what is held: in a steady flow, about what
    /// was lent since the last call).
    pub fn reclaim(&mut self, recycle: impl FnOnce(&mut Vec<BytesMut>)) {
        for _ in 0..self.held.len() {
            let Some(bytes) = self.held.pop_front() else {
                break;
            };
            match bytes.try_into_mut() {
                Ok(buf) => self.taken.push(buf),
                Err(bytes) => self.held.push_back(bytes),
            }
        }
        recycle(&mut self.taken);
        self.taken.clear();
    }
}

/// Makes `buf` fit to be handed out again by a pool of `size`-byte
/// buffers, or says it is not. A whole buffer (it starts where its
/// allocation does, as a frame sent or dropped does) is kept as it is, its
/// bytes initialised; anything else is emptied and moved back to the
/// start, which only a buffer no one else references can be. One more than
/// twice the pool's size (a reassembled datagram's) is not kept.
///
/// A buffer larger than the pool's may also be the tail of a far larger
/// allocation (a TAP's 64 KiB super-frame, read by the application up to
/// its last few kilobytes), which it would keep alive for as long as the
/// pool kept it. Asking it for room up to twice the pool's size tells: a
/// whole buffer cannot give it and is left as it is, a tail can, and
/// then shows the allocation's size.
fn restore(buf: &mut BytesMut, size: usize) -> bool {
    let most = size.saturating_mul(2);
    if buf.capacity() < size {
        buf.clear();
        if !buf.try_reclaim(size) {
            return false;
        }
    } else if buf.capacity() > size {
        let more = (most + 1).saturating_sub(buf.len());
        // Succeeds only by showing room beyond `most`: not kept then.
        let _ = buf.try_reclaim(more);
    }
    buf.capacity() <= most
}

/// The size of the buffers a stack's pool keeps on a link of `mtu` bytes:
/// an Ethernet frame of that MTU behind [`MAX_HEADROOM`], with room to
/// spare (a frame a device reads may run over, and is then discarded).
/// Devices that keep buffers of their own use the same size, so that the
/// two pools can pass buffers back and forth.
pub fn frame_buffer_size(mtu: usize) -> usize {
    MAX_HEADROOM + mtu + 64
}

/// How many spare buffers a stack's pool keeps. A device that keeps
/// buffers of its own keeps as many: the two pass a window's worth of
/// frames back and forth (about 440 KiB each at MTU 1500).
pub const POOL_BUFFERS: usize = 256;

impl Default for BufferPool {
    fn default() -> Self {
        BufferPool::new(POOL_BUFFERS, frame_buffer_size(1500))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_of_a_large_allocation_is_not_kept() {
        let size = frame_buffer_size(1500);
        // A super-frame's allocation, read down to its last 2500 bytes,
        // whose slice is all that is left of it.
        let mut big = BytesMut::with_capacity(65_564);
        big.resize(65_564, 7);
        let mut tail = big.split_off(65_564 - 2_500);
        drop(big);
        tail.truncate(1_000);
        assert!((size..2 * size).contains(&tail.capacity()));
        assert!(!restore(&mut tail, size), "the tail pins 64 KiB");
        // A whole buffer a little larger than the pool's is kept, as it
        // is.
        let mut whole = BytesMut::with_capacity(size + size / 2);
        whole.resize(100, 1);
        assert!(restore(&mut whole, size));
        assert_eq!(whole.len(), 100);
        assert_eq!(whole.capacity(), size + size / 2);
        // So is a pool buffer's tail (moved back to its start).
        let mut pool_buf = BytesMut::with_capacity(size);
        pool_buf.resize(size, 2);
        let mut slice = pool_buf.split_off(200);
        drop(pool_buf);
        assert!(restore(&mut slice, size));
        assert_eq!(slice.capacity(), size);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_packet_stays_small_enough_to_move_cheaply() {
        assert_eq!(core::mem::size_of::<PacketBuf>(), 40);
    }

    #[test]
    fn push_and_pull_headers_without_moving_payload() {
        let mut p = PacketBuf::from_payload(MAX_HEADROOM, b"payload");
        let payload_ptr = p.data().as_ptr();
        p.push_header(8).copy_from_slice(b"UDPHEADR");
        p.push_header(4).copy_from_slice(b"IPv4");
        assert_eq!(p.data(), b"IPv4UDPHEADRpayload");
        assert_eq!(p.headroom(), MAX_HEADROOM - 12);
        assert!(p.pull_header(12));
        assert_eq!(p.data().as_ptr(), payload_ptr);
        assert!(!p.pull_header(100));
        assert_eq!(p.data(), b"payload");
        p.truncate(3);
        let frozen = p.freeze();
        assert_eq!(frozen, Bytes::from_static(b"pay"));
        assert_eq!(frozen.as_ptr(), payload_ptr, "freeze copied");
    }

    #[test]
    fn push_beyond_headroom_reallocates_instead_of_panicking() {
        let mut p = PacketBuf::from_payload(2, b"xyz");
        p.push_header(10).copy_from_slice(b"0123456789");
        assert_eq!(p.data(), b"0123456789xyz");
        assert_eq!(p.headroom(), MAX_HEADROOM - 10);
    }

    #[test]
    fn pool_reuses_allocations() {
        let mut pool = BufferPool::new(4, 2048);
        let mut p = pool.alloc(MAX_HEADROOM, 100);
        p.extend_from_slice(&[1; 100]);
        let ptr = p.data().as_ptr() as usize - MAX_HEADROOM;
        pool.recycle(p);
        let q = pool.alloc(MAX_HEADROOM, 1000);
        assert_eq!(q.data().as_ptr() as usize - MAX_HEADROOM, ptr);
        assert!(q.is_empty());
        assert_eq!(pool.stats(), (1, 1));
        // Shared memory is not recycled.
        let frozen = {
            let mut p = pool.alloc(0, 10);
            p.extend_from_slice(b"abc");
            p.freeze()
        };
        assert_eq!(&frozen[..], b"abc");
    }

    /// Taken back in a batch, allocations are restored as one by one:
    /// whole buffers kept as they are, slices moved back to the start of
    /// their allocation, small and huge allocations not kept. The batch
    /// takes as many as the pool has room for, from the front; the rest
    /// stay with the caller.
    #[test]
    fn pool_takes_back_a_batch_as_it_takes_one() {
        const SIZE: usize = 2048;
        let mut pool = BufferPool::new(3, SIZE);
        let mut frame = PacketBuf::with_headroom(MAX_HEADROOM, SIZE - MAX_HEADROOM);
        frame.extend_from_slice(&[1; 100]);
        let slice = frame.freeze().slice(50..);
        let slice = slice.try_into_mut().expect("unique");
        let start = slice.as_ptr() as usize - MAX_HEADROOM - 50;
        let mut bufs = vec![
            BytesMut::with_capacity(SIZE),
            slice,
            BytesMut::with_capacity(16),
            BytesMut::with_capacity(SIZE * 4),
            BytesMut::with_capacity(SIZE),
            BytesMut::with_capacity(SIZE),
        ];
        pool.recycle_all(&mut bufs);
        assert_eq!((pool.spare(), bufs.len()), (2, 3));
        pool.recycle_all(&mut bufs);
        assert_eq!((pool.spare(), bufs.len()), (2, 2));
        pool.recycle_all(&mut bufs);
        assert_eq!((pool.spare(), bufs.len()), (3, 1));
        let starts: Vec<usize> = (0..3)
            .map(|_| {
                let p = pool.alloc(MAX_HEADROOM, 100);
                assert!(p.truesize() >= SIZE && p.is_empty());
                p.data().as_ptr() as usize - MAX_HEADROOM
            })
            .collect();
        assert!(
            starts.contains(&start),
            "the slice's allocation, from its start"
        );
        assert_eq!(pool.stats(), (0, 3));
    }

    #[test]
    fn truesize_is_the_allocation_and_compacting_pays_only_for_big_ones() {
        let mut p = PacketBuf::with_headroom(MAX_HEADROOM, 1500);
        p.extend_from_slice(&[7; 64]);
        assert!(p.truesize() >= MAX_HEADROOM + 1500);
        assert!(p.pull_header(20));
        p.truncate(10);
        assert!(p.truesize() >= MAX_HEADROOM + 1500);
        assert!(!worth_compacting(10, p.truesize()));
        assert!(worth_compacting(256, 65536));
        assert!(!worth_compacting(40_000, 65536));
        assert!(!worth_compacting(0, 0));
    }

    #[test]
    fn super_frame_buffers_are_kept_apart_and_reused() {
        let mut pool = BufferPool::new(4, 2048);
        let mut p = pool.alloc(MAX_HEADROOM, 60_000);
        assert!(p.truesize() >= LARGE_BUFFER_SIZE);
        p.extend_from_slice(&[3; 60_000]);
        let ptr = p.data().as_ptr();
        pool.recycle(p);
        assert_eq!((pool.spare(), pool.large_spare()), (0, 1));
        // A frame does not take it; a super-segment does.
        let small = pool.alloc(MAX_HEADROOM, 100);
        let q = pool.alloc(MAX_HEADROOM, 1_000);
        assert!(q.truesize() < LARGE_BUFFER_SIZE);
        let big = pool.alloc(MAX_HEADROOM, 50_000);
        assert_eq!(big.data().as_ptr(), ptr);
        assert_eq!(pool.stats(), (3, 1));
        // The tail of one, given back by the application, is kept from
        // its start; a bounded number are kept.
        let mut whole = big.into_inner();
        whole.resize(LARGE_BUFFER_SIZE, 1);
        let start = whole.as_ptr();
        let tail = whole.split_off(LARGE_BUFFER_SIZE - 1_000);
        drop(whole);
        pool.recycle_bytes(tail);
        assert_eq!(pool.large_spare(), 1);
        assert_eq!(pool.alloc(0, 30_000).data().as_ptr(), start);
        for _ in 0..LARGE_BUFFERS + 3 {
            pool.recycle_bytes(BytesMut::with_capacity(LARGE_BUFFER_SIZE));
        }
        assert_eq!(pool.large_spare(), LARGE_BUFFERS);
        // Another pool takes half of them.
        let mut other = BufferPool::new(4, 2048);
        pool.move_spares(&mut other, 0);
        assert_eq!(other.large_spare(), LARGE_BUFFERS / 2);
        drop((small, q));
    }

    #[test]
    fn the_segment_size_stays_through_headers_and_apart_from_the_rest() {
        let mut p = PacketBuf::from_payload(MAX_HEADROOM, &[0; 3000]);
        p.push_header(20);
        p.set_segment_size(1448);
        p.set_l4_checksum(L4Checksum::Partial);
        assert_eq!(p.l4_checksum(), L4Checksum::Partial);
        assert_eq!(p.segment_size(), 1448);
        p.push_header(20);
        assert_eq!(p.segment_size(), 1448);
        assert_eq!(p.l4_checksum(), L4Checksum::Unverified);
        assert_eq!(p.len(), 3040);
        // Even through a reallocation for want of headroom.
        p.push_header(MAX_HEADROOM);
        assert_eq!(p.segment_size(), 1448);
        p.set_segment_size(0);
        assert_eq!(p.segment_size(), 0);
        assert_eq!(p.len(), 3040 + MAX_HEADROOM);
    }

    #[test]
    fn more_than_a_super_frame_is_allocated_not_taken_from_the_spares() {
        let mut pool = BufferPool::new(4, 2048);
        pool.recycle(pool_buffer(&mut BufferPool::new(4, 2048)));
        pool.recycle_bytes(BytesMut::with_capacity(LARGE_BUFFER_SIZE));
        assert_eq!((pool.spare(), pool.large_spare()), (1, 1));
        let big = pool.alloc(0, 100_000);
        assert!(big.truesize() >= 100_000, "{}", big.truesize());
        assert_eq!((pool.spare(), pool.large_spare()), (1, 1));
    }

    fn pool_buffer(pool: &mut BufferPool) -> PacketBuf {
        pool.alloc(0, 100)
    }

    #[test]
    fn pool_does_not_hoard_huge_allocations() {
        let mut pool = BufferPool::new(4, 2048);
        pool.recycle(PacketBuf::with_headroom(0, 65536));
        let _ = pool.alloc(MAX_HEADROOM, 100);
        assert_eq!(pool.stats(), (1, 0));
    }
}
