//! Segmentation in software (Linux's GSO): a device wrapper that offers
//! TCP segmentation offload ([`DeviceCaps::segmentation`]) over a device
//! that has none, and cuts each super-segment the stack hands it into
//! the segments of the wire ([`vnet::segment`]) at the last moment.
//!
//! The layers above then do their per-segment work (TCP's output and
//! bookkeeping, the IPv4 header, the route and neighbour) once per
//! super-segment instead of once per segment; the price is one more copy
//! of every byte (from the super-segment into each segment's frame). The
//! checksums are this device's work too (it offers transmit checksum
//! offload): each segment's are made as it is cut, and an ordinary
//! frame's are filled before it goes, so that none is computed twice. Whether that pays depends
//! on what a segment costs the layers above against what a copy costs:
//! the crate's figures (issue #12's note) say which way it went here.
//! Below a [`crate::link::FaultInjector`], it also lets simulations drive
//! TCP's super-segments through loss, reordering and duplication of the
//! segments they stand for.
//!
//! # Example
//!
//! A TCP super-segment of 3000 payload bytes leaves as three segments of
//! 1000:
//!
//! ```
//! use netstrata::buf::PacketBuf;
//! use netstrata::link::{Device, MemoryNetwork, Segmenter};
//! use netstrata::Instant;
//! # fn super_segment(link_header: &[u8]) -> Vec<u8> {
//! #     let mut f = link_header.to_vec();
//! #     let ip = [0x45, 0, 0x0b, 0xe0, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2];
//! #     f.extend_from_slice(&ip); // IPv4: 3040 bytes, DF, TCP
//! #     let tcp = [0x30, 0x39, 0, 80, 0, 0, 0x03, 0xe8, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0];
//! #     f.extend_from_slice(&tcp); // TCP: seq 1000, ACK | PSH
//! #     f.extend_from_slice(&[b'x'; 3000]);
//! #     f
//! # }
//!
//! let (a, mut b) = MemoryNetwork::pair(1500);
//! let mut dev = Segmenter::new(a);
//! assert!(dev.capabilities().segmentation >= 3040 && dev.capabilities().checksum.tx);
//! let ethernet = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
//! let mut frame = PacketBuf::from_payload(0, &super_segment(&ethernet));
//! frame.set_segment_size(1000);
//! dev.transmit(Instant::ZERO, frame)?;
//! assert_eq!(dev.stats().segments, 3);
//! for _ in 0..3 {
//!     let segment = b.receive(Instant::ZERO).expect("a segment");
//!     assert_eq!(segment.len(), 14 + 20 + 20 + 1000);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::buf::{BufferPool, PacketBuf};
use crate::link::device::{Device, DeviceCaps, DeviceError, MAX_SUPER_SEGMENT, Medium};
use crate::link::vnet;
use crate::time::Instant;

/// Counters of a [`Segmenter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmenterStats {
    /// Super-segments cut.
    pub super_segments: u64,
    /// Segments made of them.
    pub segments: u64,
    /// Segments the inner device refused (the rest of their
    /// super-segment was still offered to it).
    pub refused: u64,
}

/// A device that takes TCP super-segments and hands its inner device the
/// segments they stand for; everything else passes through.
#[derive(Debug)]
pub struct Segmenter<D> {
    inner: D,
    medium: Medium,
    /// Buffers for the segments' frames, filled from the inner device's
    /// spares ([`Device::refill`]).
    pool: BufferPool,
    stats: SegmenterStats,
}

impl<D: Device> Segmenter<D> {
    /// Wraps `inner`.
    pub fn new(inner: D) -> Segmenter<D> {
        let caps = inner.capabilities();
        Segmenter {
            inner,
            medium: caps.medium,
            pool: BufferPool::new(
                crate::buf::POOL_BUFFERS,
                crate::buf::frame_buffer_size(caps.mtu),
            ),
            stats: SegmenterStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> SegmenterStats {
        self.stats
    }

    /// The inner device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The inner device, mutable.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Returns the inner device.
    pub fn into_inner(self) -> D {
        self.inner
    }
}

impl<D: Device> Segmenter<D> {
    /// Fills the checksums the stack left to this device and hands the
    /// frame on.
    fn transmit_filled(&mut self, now: Instant, mut frame: PacketBuf) -> Result<(), DeviceError> {
        vnet::prepare_transmit(frame.data_mut(), self.medium, 0);
        vnet::complete_partial(frame.data_mut(), self.medium);
        self.inner.transmit(now, frame)
    }
}

impl<D: Device> Device for Segmenter<D> {
    /// The inner device's, with segmentation of super-segments up to
    /// [`MAX_SUPER_SEGMENT`] and transmit checksum offload.
    fn capabilities(&self) -> DeviceCaps {
        let mut caps = self.inner.capabilities();
        caps.segmentation = MAX_SUPER_SEGMENT;
        caps.checksum.tx = true;
        caps
    }

    fn receive(&mut self, now: Instant) -> Option<PacketBuf> {
        self.inner.receive(now)
    }

    /// A super-segment ([`PacketBuf::segment_size`] set, more than one
    /// segment of TCP payload) goes to the inner device as its segments,
    /// each in a frame of its own with its own headers and checksums; the
    /// first refusal is returned, after every segment was offered (a
    /// queue may take the later ones, and TCP recovers the rest). Any
    /// other frame goes with its checksums filled.
    fn transmit(&mut self, now: Instant, mut frame: PacketBuf) -> Result<(), DeviceError> {
        let size = frame.segment_size();
        if size == 0 {
            return self.transmit_filled(now, frame);
        }
        let (inner, pool, stats) = (&mut self.inner, &mut self.pool, &mut self.stats);
        let mut result = Ok(());
        let n = vnet::segment(frame.data(), self.medium, size, |headers, payload| {
            if pool.spare() == 0 {
                inner.refill(pool);
            }
            let mut f = pool.alloc(0, headers.len() + payload.len());
            f.extend_from_slice(headers);
            f.extend_from_slice(payload);
            if let Err(e) = inner.transmit(now, f) {
                stats.refused += 1;
                if result.is_ok() {
                    result = Err(e);
                }
            }
        });
        if n == 0 {
            frame.set_segment_size(0);
            return self.transmit_filled(now, frame);
        }
        self.stats.super_segments += 1;
        self.stats.segments += n as u64;
        self.pool.recycle(frame);
        result
    }

    fn poll_at(&self) -> Option<Instant> {
        self.inner.poll_at()
    }

    /// Hands the stack its spare buffers (the super-segments' among
    /// them), then lets the inner device refill it.
    fn refill(&mut self, pool: &mut BufferPool) {
        self.pool.move_spares(pool, self.pool.spare());
        self.inner.refill(pool);
    }

    fn spill(&mut self, pool: &mut BufferPool) {
        self.inner.spill(pool);
    }

    fn flush(&mut self, now: Instant) {
        self.inner.flush(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::{MemoryNetwork, MemoryPort};

    /// An Ethernet frame with a TCP super-segment of `payload` bytes,
    /// checksums left as they are (the segmenter makes each anew).
    fn super_segment(payload: usize) -> PacketBuf {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        f[22] = 64;
        f[23] = 6;
        f[14 + 20 + 12] = 5 << 4;
        f[14 + 20 + 13] = 0x18;
        f.extend((0..payload).map(|i| i as u8));
        let mut p = PacketBuf::from_payload(0, &f);
        p.set_segment_size(1000);
        p
    }

    fn drain(port: &mut MemoryPort) -> Vec<PacketBuf> {
        std::iter::from_fn(|| port.receive(Instant::ZERO)).collect()
    }

    #[test]
    fn super_segments_leave_as_segments_and_the_rest_as_it_is() {
        let net = MemoryNetwork::new(1500);
        let (a, mut b) = (net.attach(), net.attach());
        let mut dev = Segmenter::new(a);
        assert_eq!(dev.capabilities().segmentation, MAX_SUPER_SEGMENT);
        assert_eq!(dev.capabilities().mtu, 1500);
        dev.transmit(Instant::ZERO, super_segment(3500)).unwrap();
        let got = drain(&mut b);
        let lens: Vec<usize> = got.iter().map(PacketBuf::len).collect();
        assert_eq!(lens, [1054, 1054, 1054, 554]);
        assert!(got.iter().all(|f| f.segment_size() == 0));
        // One segment's worth: as it is.
        dev.transmit(Instant::ZERO, super_segment(1000)).unwrap();
        assert_eq!(drain(&mut b).len(), 1);
        let mut plain = PacketBuf::from_payload(0, &[0xff; 60]);
        plain.set_segment_size(0);
        dev.transmit(Instant::ZERO, plain).unwrap();
        assert_eq!(drain(&mut b)[0].data(), &[0xff; 60]);
        assert_eq!(
            dev.stats(),
            SegmenterStats {
                super_segments: 1,
                segments: 4,
                refused: 0
            }
        );
    }
}
