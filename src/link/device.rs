//! The boundary between the stack and a network device.
//!
//! A [`Device`] moves whole Ethernet frames (without FCS), or bare IP
//! packets on an IP-only link ([`Medium::Ip`], a TUN device), as owned
//! [`PacketBuf`]s. Devices compose as decorators: the fault injector and the
//! pcap writer each wrap any device and are devices themselves.
//!
//! # Example
//!
//! Any device is driven the same way; here the two ends of an in-memory
//! cable:
//!
//! ```
//! use netstrata::buf::PacketBuf;
//! use netstrata::link::{Device, EthernetAddress, MemoryNetwork, Medium};
//! use netstrata::Instant;
//!
//! let (mut a, mut b) = MemoryNetwork::pair(1500);
//! assert_eq!(a.capabilities().mtu, 1500);
//! assert_eq!(a.capabilities().medium, Medium::Ethernet);
//!
//! let mut frame = PacketBuf::from_payload(14, b"payload");
//! let header = frame.push_header(14);
//! header[..6].copy_from_slice(&EthernetAddress::BROADCAST.0);
//! header[6..12].copy_from_slice(&EthernetAddress::local(1).0);
//! header[12..].copy_from_slice(&[0x08, 0x00]);
//! a.transmit(Instant::ZERO, frame)?;
//!
//! let got = b.receive(Instant::ZERO).expect("a frame");
//! assert_eq!(&got.data()[14..], b"payload");
//! assert!(b.receive(Instant::ZERO).is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::buf::{BufferPool, PacketBuf};
use crate::time::Instant;

/// Which checksums the device handles so that the stack need not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChecksumOffload {
    /// The device fills IPv4/ICMP/UDP/TCP checksums on transmit; the stack
    /// leaves them zero.
    pub tx: bool,
    /// The device has verified the IPv4, UDP and TCP checksums of received
    /// frames (and drops bad ones); the stack skips verifying them. ICMP
    /// checksums are verified by the stack all the same.
    pub rx: bool,
}

/// What a device's frames are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Medium {
    /// Ethernet II frames; neighbours are found with ARP.
    #[default]
    Ethernet,
    /// Bare IP packets on a point-to-point link (a TUN device): no link
    /// header, no link addresses, no ARP.
    Ip,
}

impl Medium {
    /// Length of the link header in front of every IP packet.
    pub fn header_len(self) -> usize {
        match self {
            Medium::Ethernet => crate::link::ethernet::HEADER_LEN,
            Medium::Ip => 0,
        }
    }
}

/// The largest TCP super-segment a device may be given: the largest
/// IPv4 datagram.
pub const MAX_SUPER_SEGMENT: usize = 65535;

/// What a device can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceCaps {
    /// The largest IP packet the link carries (the Ethernet payload size),
    /// e.g. 1500.
    pub mtu: usize,
    /// Checksum offload.
    pub checksum: ChecksumOffload,
    /// What the frames are.
    pub medium: Medium,
    /// TCP segmentation offload: the largest IP datagram (at most
    /// [`MAX_SUPER_SEGMENT`]) the device takes as a TCP super-segment and cuts into
    /// segments that fit the MTU, or 0 if it does not. A super-segment is a
    /// frame longer than the MTU whose [`PacketBuf::segment_size`] says
    /// how much payload each segment carries; its transport checksum is
    /// left partial if the device also offloads checksums, and complete
    /// over the whole otherwise (the device sums each segment anew).
    pub segmentation: usize,
}

impl Default for DeviceCaps {
    fn default() -> Self {
        DeviceCaps {
            mtu: 1500,
            checksum: ChecksumOffload::default(),
            medium: Medium::Ethernet,
            segmentation: 0,
        }
    }
}

/// Why a device refused a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The device's transmit queue is full; the frame was dropped.
    #[error("transmit queue full")]
    QueueFull,
    /// The frame is larger than the link allows.
    #[error("frame of {len} bytes exceeds the link's maximum of {max}")]
    TooLarge {
        /// Frame length.
        len: usize,
        /// Largest frame allowed.
        max: usize,
    },
    /// The device is down or detached.
    #[error("device is down")]
    Down,
    /// An operating-system error.
    #[error("device I/O error: {0}")]
    Io(std::io::ErrorKind),
}

/// A network device carrying Ethernet frames.
pub trait Device {
    /// What the device can do.
    fn capabilities(&self) -> DeviceCaps;

    /// The next received frame, if one is ready at `now`.
    fn receive(&mut self, now: Instant) -> Option<PacketBuf>;

    /// Sends a frame (the buffer's data is the whole Ethernet frame).
    fn transmit(&mut self, now: Instant, frame: PacketBuf) -> Result<(), DeviceError>;

    /// The earliest instant at which the device has a frame to deliver:
    /// an instant at or before the present means a frame is ready now; a
    /// later one, that a delayed frame (in a simulated link) becomes ready
    /// then. `None` if nothing is pending.
    fn poll_at(&self) -> Option<Instant> {
        None
    }

    /// The stack's buffer pool ran dry: a device that keeps spare frame
    /// buffers of its own (the memory of frames it received and the stack
    /// gave back, or a store shared between the ports of a network) moves
    /// some into `pool`, so that the stack need not allocate. By default
    /// the device keeps none and the stack allocates.
    fn refill(&mut self, pool: &mut BufferPool) {
        let _ = pool;
    }

    /// The stack's buffer pool is full: the device may take some of its
    /// spare buffers to hand out again (to its receive path, or to another
    /// port of its network, which sends what this one receives). By
    /// default it takes none, and a buffer recycled into a full pool is
    /// freed.
    fn spill(&mut self, pool: &mut BufferPool) {
        let _ = pool;
    }

    /// The stack has sent what it will for now: a device that holds
    /// transmitted frames back to hand them on in batches (one lock, one
    /// doorbell, one wake-up for many) hands them on.
    /// [`crate::Interface::poll`] calls it at the end of every poll. A
    /// device holds frames back only once this has been called on it, so
    /// that a program that transmits by hand and never flushes (or a
    /// wrapper that does not forward the call) sees every frame go at
    /// once. By default nothing is held.
    fn flush(&mut self, now: Instant) {
        let _ = now;
    }
}

impl<D: Device + ?Sized> Device for &mut D {
    fn capabilities(&self) -> DeviceCaps {
        (**self).capabilities()
    }
    fn receive(&mut self, now: Instant) -> Option<PacketBuf> {
        (**self).receive(now)
    }
    fn transmit(&mut self, now: Instant, frame: PacketBuf) -> Result<(), DeviceError> {
        (**self).transmit(now, frame)
    }
    fn poll_at(&self) -> Option<Instant> {
        (**self).poll_at()
    }
    fn refill(&mut self, pool: &mut BufferPool) {
        (**self).refill(pool);
    }
    fn spill(&mut self, pool: &mut BufferPool) {
        (**self).spill(pool);
    }
    fn flush(&mut self, now: Instant) {
        (**self).flush(now);
    }
}

impl<D: Device + ?Sized> Device for Box<D> {
    fn capabilities(&self) -> DeviceCaps {
        (**self).capabilities()
    }
    fn receive(&mut self, now: Instant) -> Option<PacketBuf> {
        (**self).receive(now)
    }
    fn transmit(&mut self, now: Instant, frame: PacketBuf) -> Result<(), DeviceError> {
        (**self).transmit(now, frame)
    }
    fn poll_at(&self) -> Option<Instant> {
        (**self).poll_at()
    }
    fn refill(&mut self, pool: &mut BufferPool) {
        (**self).refill(pool);
    }
    fn spill(&mut self, pool: &mut BufferPool) {
        (**self).spill(pool);
    }
    fn flush(&mut self, now: Instant) {
        (**self).flush(now);
    }
}
