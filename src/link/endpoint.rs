//! The link layer's endpoint: Ethernet framing plus ARP on one device.
//!
//! [`EthernetEndpoint`] owns the station's MAC address, its ARP cache and
//! the link counters. On receive it filters frames by destination MAC,
//! answers ARP (RFC 826's packet-reception algorithm), learns neighbours,
//! and hands IPv4 payloads up as owned buffers with the Ethernet header
//! pulled off. To the layer above it offers [`LinkEndpoint`]: send an IPv4
//! datagram to a next hop, resolving the hop's MAC as needed.
//!
//! The device is passed in for each call rather than stored, so the same
//! endpoint can be driven by a simulation, a runtime thread, or a test with
//! a fake device.
//!
//! # Example
//!
//! Two endpoints on a cable: the first datagram for a neighbour waits for
//! ARP, and arrives once the reply is in.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use netstrata::link::{ArpConfig, ChecksumOffload, Device, EthernetAddress, EthernetEndpoint};
//! use netstrata::link::{LinkEndpoint, MemoryNetwork, NextHop};
//! use netstrata::Instant;
//!
//! let endpoint = |n: u32| {
//!     let mac = EthernetAddress::local(n);
//!     let (offload, arp) = (ChecksumOffload::default(), ArpConfig::default());
//!     let mut ep = EthernetEndpoint::new(mac, 1500, offload, arp, [0, n.into()]);
//!     ep.set_ipv4_addr(Some(Ipv4Addr::new(192, 0, 2, n as u8)));
//!     ep
//! };
//! let (mut a, mut b) = (endpoint(1), endpoint(2));
//! let (mut dev_a, mut dev_b) = MemoryNetwork::pair(1500);
//! let now = Instant::ZERO;
//!
//! let mut link = a.with_device(&mut dev_a);
//! let mut datagram = link.alloc(5);
//! datagram.extend_from_slice(b"hello");
//! link.send_ipv4(now, NextHop::Unicast(Ipv4Addr::new(192, 0, 2, 2)), datagram)?;
//!
//! let request = dev_b.receive(now).unwrap();
//! assert!(b.receive(now, request, &mut dev_b).is_none()); // answered
//! let reply = dev_a.receive(now).unwrap();
//! assert!(a.receive(now, reply, &mut dev_a).is_none()); // learnt; sent
//! let frame = dev_b.receive(now).unwrap();
//! let datagram = b.receive(now, frame, &mut dev_b).expect("an IPv4 datagram");
//! assert!(datagram.data().starts_with(b"hello")); // then link padding
//! assert_eq!(b.stats().arp_replies_sent, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::Ipv4Addr;

use bytes::BytesMut;

use crate::buf::{BufferPool, MAX_HEADROOM, POOL_BUFFERS, PacketBuf, frame_buffer_size};
use crate::link::arp::{ArpPacket, ArpRepr, Operation};
use crate::link::arp_cache::{ArpCache, ArpConfig, ArpStats, NeighbourHint, Resolution};
use crate::link::device::{ChecksumOffload, Device, DeviceError, Medium};
use crate::link::ethernet::{self, EtherType, EthernetAddress, EthernetRepr, Frame};
use crate::time::Instant;

/// Where a datagram goes on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHop {
    /// A neighbour, by IPv4 address (resolved with ARP).
    Unicast(Ipv4Addr),
    /// Every station on the link.
    Broadcast,
}

/// Why the link did not take a datagram.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The next hop recently failed to resolve.
    #[error("next hop {0} did not answer ARP")]
    Unresolved(Ipv4Addr),
    /// The resolution queue for the next hop is full.
    #[error("too many packets waiting for ARP resolution of {0}")]
    QueueFull(Ipv4Addr),
    /// The device refused the frame.
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// What the link layer offers the internet layer above it.
pub trait LinkEndpoint {
    /// The largest datagram the link carries.
    fn mtu(&self) -> usize;
    /// Which checksums the device computes or verifies.
    fn checksum_offload(&self) -> ChecksumOffload;
    /// The largest TCP super-segment (an IP datagram) the device cuts
    /// into segments ([`crate::link::DeviceCaps::segmentation`]); 0 if it
    /// does not.
    fn segmentation(&self) -> usize {
        0
    }
    /// A buffer with headroom for every header, for a payload of
    /// `capacity` bytes.
    fn alloc(&mut self, capacity: usize) -> PacketBuf;
    /// Takes back a buffer that is no longer needed.
    fn recycle(&mut self, packet: PacketBuf);
    /// Takes back every allocation of `bufs` (left empty, its memory
    /// kept): slices of received frames the stack has no more use for.
    fn recycle_all(&mut self, bufs: &mut Vec<BytesMut>) {
        for buf in bufs.drain(..) {
            self.recycle(PacketBuf::from_bytes_mut(buf));
        }
    }
    /// Sends an IPv4 datagram (the buffer's data) to `next_hop`. `Ok` means
    /// sent or queued for resolution.
    fn send_ipv4(
        &mut self,
        now: Instant,
        next_hop: NextHop,
        packet: PacketBuf,
    ) -> Result<(), LinkError>;
    /// Sends an IPv4 datagram as [`LinkEndpoint::send_ipv4`] does, for a
    /// flow that remembers its neighbour in `hint`: while the hint holds,
    /// the neighbour's address is taken from it rather than looked up, and
    /// when it does not, it is refreshed. A link without neighbour
    /// resolution ignores it.
    fn send_ipv4_hinted(
        &mut self,
        now: Instant,
        next_hop: NextHop,
        packet: PacketBuf,
        _hint: &mut NeighbourHint,
    ) -> Result<(), LinkError> {
        self.send_ipv4(now, next_hop, packet)
    }
}

/// Link-layer counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames received from the device.
    pub rx_frames: u64,
    /// Bytes received from the device.
    pub rx_bytes: u64,
    /// Frames sent to the device.
    pub tx_frames: u64,
    /// Bytes sent to the device.
    pub tx_bytes: u64,
    /// Frames dropped: too short or unparsable header.
    pub rx_malformed: u64,
    /// Frames dropped: addressed to another station.
    pub rx_not_for_us: u64,
    /// Frames dropped: an EtherType this stack does not handle.
    pub rx_unknown_ethertype: u64,
    /// IPv4 datagrams for our unicast address that came in a link-layer
    /// broadcast frame (RFC 1122 §3.3.6: "SHOULD silently discard").
    pub rx_unicast_in_broadcast: u64,
    /// ARP packets claiming to come from our own MAC (our own frames
    /// reflected back, or forged), ignored.
    pub rx_arp_from_self: u64,
    /// ARP packets dropped: malformed or not Ethernet/IPv4.
    pub rx_arp_malformed: u64,
    /// ARP packets claiming our own address from another MAC.
    pub arp_conflicts: u64,
    /// ARP requests for our address answered.
    pub arp_replies_sent: u64,
    /// Frames the device refused.
    pub tx_device_errors: u64,
    /// The ARP cache's counters.
    pub arp: ArpStats,
}

/// Ethernet framing and ARP for one interface.
#[derive(Debug)]
pub struct EthernetEndpoint {
    /// Ethernet, or bare IP packets (no header, no ARP).
    medium: Medium,
    mac: EthernetAddress,
    ipv4: Option<Ipv4Addr>,
    mtu: usize,
    checksum: ChecksumOffload,
    /// The device's segmentation offload (0: none).
    segmentation: usize,
    arp: ArpCache,
    pool: BufferPool,
    stats: LinkStats,
}

impl EthernetEndpoint {
    /// An endpoint with station address `mac` on a link of `mtu` bytes;
    /// `key` is the secret key of its ARP table's hash ([`crate::hash`]).
    pub fn new(
        mac: EthernetAddress,
        mtu: usize,
        checksum: ChecksumOffload,
        arp: ArpConfig,
        key: [u64; 2],
    ) -> Self {
        EthernetEndpoint {
            medium: Medium::Ethernet,
            mac,
            ipv4: None,
            mtu,
            checksum,
            segmentation: 0,
            arp: ArpCache::new(arp, key),
            pool: BufferPool::new(POOL_BUFFERS, frame_buffer_size(mtu)),
            stats: LinkStats::default(),
        }
    }

    /// Builder: frames on this link are `medium`'s. On [`Medium::Ip`] (a
    /// TUN device) IP packets go to the device and come from it bare,
    /// with no header and no ARP: the link is point to point, and every
    /// next hop is the one peer.
    pub fn with_medium(mut self, medium: Medium) -> Self {
        self.medium = medium;
        self
    }

    /// Builder: the device cuts TCP super-segments of up to
    /// `max_datagram` bytes into segments
    /// ([`crate::link::DeviceCaps::segmentation`]); the internet layer
    /// then hands such super-segments down whole.
    pub fn with_segmentation(mut self, max_datagram: usize) -> Self {
        self.segmentation = max_datagram;
        self
    }

    /// What the link's frames are.
    pub fn medium(&self) -> Medium {
        self.medium
    }

    /// The station address.
    pub fn mac(&self) -> EthernetAddress {
        self.mac
    }

    /// Sets the IPv4 address this station answers ARP for.
    pub fn set_ipv4_addr(&mut self, addr: Option<Ipv4Addr>) {
        self.ipv4 = addr;
    }

    /// Counters.
    pub fn stats(&self) -> LinkStats {
        let mut s = self.stats;
        s.arp = self.arp.stats();
        s
    }

    /// The neighbour cache.
    pub fn arp_cache(&self) -> &ArpCache {
        &self.arp
    }

    /// The neighbour cache, mutable (static entries).
    pub fn arp_cache_mut(&mut self) -> &mut ArpCache {
        &mut self.arp
    }

    /// A buffer with headroom for every header and room for `capacity`
    /// bytes: from the pool, which the device refills when it runs dry.
    fn alloc<D: Device>(&mut self, device: &mut D, capacity: usize) -> PacketBuf {
        let large = MAX_HEADROOM + capacity > self.pool.buffer_size();
        if self.pool.spare() == 0 || large && self.pool.large_spare() == 0 {
            device.refill(&mut self.pool);
        }
        self.pool.alloc(MAX_HEADROOM, capacity)
    }

    /// Takes back a buffer the stack is done with; the device takes the
    /// surplus of a full pool.
    fn recycle<D: Device>(&mut self, device: &mut D, packet: PacketBuf) {
        if self.pool.is_full() {
            device.spill(&mut self.pool);
        }
        self.pool.recycle(packet);
    }

    /// Takes back every buffer of `bufs` (left empty), as
    /// [`EthernetEndpoint::recycle`] takes one.
    fn recycle_all<D: Device>(&mut self, device: &mut D, bufs: &mut Vec<BytesMut>) {
        while !bufs.is_empty() {
            if self.pool.is_full() {
                device.spill(&mut self.pool);
                if self.pool.is_full() {
                    break;
                }
            }
            self.pool.recycle_all(bufs);
        }
        bufs.clear();
    }

    /// Binds this endpoint to a device for a series of sends.
    pub fn with_device<'a, D: Device>(&'a mut self, device: &'a mut D) -> EthernetLink<'a, D> {
        EthernetLink {
            endpoint: self,
            device,
        }
    }

    /// Processes a received frame. Returns the IPv4 datagram it carried
    /// (Ethernet header pulled; link padding still present), or `None` if
    /// the frame was consumed (ARP) or dropped (counted).
    pub fn receive<D: Device>(
        &mut self,
        now: Instant,
        mut frame: PacketBuf,
        device: &mut D,
    ) -> Option<PacketBuf> {
        self.receive_in_place(now, &mut frame, device)
            .then_some(frame)
    }

    /// As [`EthernetEndpoint::receive`], in place: returns whether `frame`
    /// now holds an IPv4 datagram; if not, the frame was consumed and
    /// `frame` is left empty. A frame is not moved through this layer: a
    /// buffer moved right after its fields were written waits for those
    /// stores, at each layer it crosses.
    pub fn receive_in_place<D: Device>(
        &mut self,
        now: Instant,
        frame: &mut PacketBuf,
        device: &mut D,
    ) -> bool {
        self.stats.rx_frames += 1;
        self.stats.rx_bytes += frame.len() as u64;
        if self.medium == Medium::Ip {
            // A bare packet: the IP layer judges it; anything but IPv4 is
            // dropped here, as an unknown EtherType would be.
            if frame.data().first().is_some_and(|b| b >> 4 == 4) {
                return true;
            }
            self.stats.rx_unknown_ethertype += 1;
            self.recycle(device, core::mem::take(frame));
            return false;
        }
        let repr = match Frame::new_checked(frame.data()).and_then(|f| EthernetRepr::parse(&f)) {
            Ok(r) => r,
            Err(e) => {
                log::trace!("dropping frame: {e}");
                self.stats.rx_malformed += 1;
                self.recycle(device, core::mem::take(frame));
                return false;
            }
        };
        if repr.dst_addr != self.mac && !repr.dst_addr.is_broadcast() {
            self.stats.rx_not_for_us += 1;
            self.recycle(device, core::mem::take(frame));
            return false;
        }
        frame.pull_header(ethernet::HEADER_LEN);
        match repr.ethertype {
            EtherType::Ipv4
                if repr.dst_addr.is_broadcast() && self.is_unicast_to_us(frame.data()) =>
            {
                // RFC 1122 §3.3.6: a datagram received in a link-layer
                // broadcast must name a broadcast or multicast IP
                // destination. Dropping it here also keeps the layers above
                // from answering a link broadcast with an ICMP error
                // (§3.2.2), which they could not tell apart. (Linux's
                // `drop_unicast_in_l2_multicast`; by default Linux accepts
                // the datagram but sends no ICMP error about it.)
                self.stats.rx_unicast_in_broadcast += 1;
                self.recycle(device, core::mem::take(frame));
                false
            }
            EtherType::Ipv4 => true,
            EtherType::Arp => {
                self.receive_arp(now, frame, device);
                self.recycle(device, core::mem::take(frame));
                false
            }
            other => {
                log::trace!("dropping frame with EtherType {other:?}");
                self.stats.rx_unknown_ethertype += 1;
                self.recycle(device, core::mem::take(frame));
                false
            }
        }
    }

    /// Whether an IPv4 datagram (its header at the start of `datagram`) is
    /// addressed to our own unicast address.
    fn is_unicast_to_us(&self, datagram: &[u8]) -> bool {
        match (datagram.get(16..20), self.ipv4) {
            (Some(dst), Some(ours)) => dst == ours.octets(),
            _ => false,
        }
    }

    fn receive_arp<D: Device>(&mut self, now: Instant, packet: &PacketBuf, device: &mut D) {
        let repr = match ArpPacket::new_checked(packet.data()).and_then(|p| ArpRepr::parse(&p)) {
            Ok(r) => r,
            Err(e) => {
                log::trace!("dropping ARP packet: {e}");
                self.stats.rx_arp_malformed += 1;
                return;
            }
        };
        let Some(our_ip) = self.ipv4 else { return };
        if repr.source_hardware_addr == self.mac {
            // Our own request or announcement reflected back (or a forgery):
            // learning from it would map our address to ourselves.
            self.stats.rx_arp_from_self += 1;
            return;
        }
        if repr.source_protocol_addr == our_ip {
            log::warn!(
                "address conflict: {} claims {our_ip}, which is ours",
                repr.source_hardware_addr
            );
            self.stats.arp_conflicts += 1;
            return;
        }
        let for_us = repr.target_protocol_addr == our_ip;
        // RFC 826: update an existing entry for the sender; add it if the
        // packet is a request addressed to us (we are about to talk to the
        // sender). Like Linux with `arp_accept=0`, an unsolicited reply does
        // not create an entry: otherwise anyone could fill the cache and
        // evict real neighbours with replies nobody asked for.
        let waiting = self.arp.learn(
            now,
            repr.source_protocol_addr,
            repr.source_hardware_addr,
            for_us && repr.operation == Operation::Request,
        );
        for p in waiting {
            let mac = repr.source_hardware_addr;
            self.transmit(now, device, mac, EtherType::Ipv4, p);
        }
        if for_us && repr.operation == Operation::Request {
            let reply = ArpRepr {
                operation: Operation::Reply,
                source_hardware_addr: self.mac,
                source_protocol_addr: our_ip,
                target_hardware_addr: repr.source_hardware_addr,
                target_protocol_addr: repr.source_protocol_addr,
            };
            self.stats.arp_replies_sent += 1;
            self.send_arp(now, device, repr.source_hardware_addr, reply);
        }
    }

    /// Broadcasts a gratuitous ARP request for our own address (RFC 5227
    /// §3 "ARP Announcement"), so neighbours update stale entries.
    pub fn announce<D: Device>(&mut self, now: Instant, device: &mut D) {
        let Some(ip) = self.ipv4.filter(|_| self.medium == Medium::Ethernet) else {
            return;
        };
        let repr = ArpRepr {
            operation: Operation::Request,
            source_hardware_addr: self.mac,
            source_protocol_addr: ip,
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: ip,
        };
        self.send_arp(now, device, EthernetAddress::BROADCAST, repr);
    }

    fn send_request<D: Device>(
        &mut self,
        now: Instant,
        device: &mut D,
        target: Ipv4Addr,
        dst_mac: EthernetAddress,
    ) {
        let Some(ip) = self.ipv4 else { return };
        let repr = ArpRepr {
            operation: Operation::Request,
            source_hardware_addr: self.mac,
            source_protocol_addr: ip,
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: target,
        };
        self.send_arp(now, device, dst_mac, repr);
    }

    fn send_arp<D: Device>(
        &mut self,
        now: Instant,
        device: &mut D,
        dst: EthernetAddress,
        repr: ArpRepr,
    ) {
        let mut p = self.alloc(device, repr.buffer_len());
        repr.emit(&mut ArpPacket::new_unchecked(
            p.append_zeroed(repr.buffer_len()),
        ));
        self.transmit(now, device, dst, EtherType::Arp, p);
    }

    fn transmit<D: Device>(
        &mut self,
        now: Instant,
        device: &mut D,
        dst: EthernetAddress,
        ethertype: EtherType,
        mut packet: PacketBuf,
    ) {
        let repr = EthernetRepr {
            src_addr: self.mac,
            dst_addr: dst,
            ethertype,
        };
        repr.emit(&mut Frame::new_unchecked(
            packet.push_header(ethernet::HEADER_LEN),
        ));
        self.transmit_bare(now, device, packet);
    }

    /// Hands `packet`, framed as the medium wants, to the device.
    fn transmit_bare<D: Device>(&mut self, now: Instant, device: &mut D, packet: PacketBuf) {
        let len = packet.len() as u64;
        match device.transmit(now, packet) {
            Ok(()) => {
                self.stats.tx_frames += 1;
                self.stats.tx_bytes += len;
            }
            Err(e) => {
                log::debug!("device refused frame: {e}");
                self.stats.tx_device_errors += 1;
            }
        }
    }

    /// Runs ARP timers: retransmits requests and drops packets whose
    /// destination failed to resolve.
    pub fn poll<D: Device>(&mut self, now: Instant, device: &mut D) {
        let mut requests = Vec::new();
        let mut dropped = Vec::new();
        self.arp
            .poll(now, |r| requests.push(r.target), |p| dropped.push(p));
        for target in requests {
            self.send_request(now, device, target, EthernetAddress::BROADCAST);
        }
        for p in dropped {
            self.recycle(device, p);
        }
    }

    /// When [`EthernetEndpoint::poll`] next has work.
    pub fn poll_at(&self) -> Option<Instant> {
        self.arp.poll_at()
    }

    fn send_ipv4_on<D: Device>(
        &mut self,
        now: Instant,
        device: &mut D,
        next_hop: NextHop,
        packet: PacketBuf,
        hint: Option<&mut NeighbourHint>,
    ) -> Result<(), LinkError> {
        if self.medium == Medium::Ip {
            self.transmit_bare(now, device, packet);
            return Ok(());
        }
        let ip = match next_hop {
            NextHop::Broadcast => {
                self.transmit(
                    now,
                    device,
                    EthernetAddress::BROADCAST,
                    EtherType::Ipv4,
                    packet,
                );
                return Ok(());
            }
            NextHop::Unicast(ip) => ip,
        };
        // A flow's hint that holds gives the MAC; the table only when not.
        if let Some(mac) = hint.as_ref().and_then(|h| self.arp.hinted(now, ip, h)) {
            self.transmit(now, device, mac, EtherType::Ipv4, packet);
            return Ok(());
        }
        let resolution = match hint {
            Some(hint) => self.arp.resolve_hinted(now, ip, packet, hint),
            None => self.arp.resolve(now, ip, packet),
        };
        match resolution {
            Resolution::Send {
                mac,
                packet,
                refresh,
            } => {
                self.transmit(now, device, mac, EtherType::Ipv4, packet);
                if refresh {
                    self.send_request(now, device, ip, mac);
                }
                Ok(())
            }
            Resolution::Queued { send_request } => {
                if send_request {
                    log::debug!("resolving {ip}");
                    self.send_request(now, device, ip, EthernetAddress::BROADCAST);
                }
                Ok(())
            }
            Resolution::Dropped { packet, reason } => {
                self.recycle(device, packet);
                Err(match reason {
                    crate::link::arp_cache::ArpDrop::Failed => LinkError::Unresolved(ip),
                    _ => LinkError::QueueFull(ip),
                })
            }
        }
    }
}

/// An [`EthernetEndpoint`] bound to its device: the [`LinkEndpoint`] the
/// internet layer sends through.
#[derive(Debug)]
pub struct EthernetLink<'a, D> {
    endpoint: &'a mut EthernetEndpoint,
    device: &'a mut D,
}

impl<D: Device> LinkEndpoint for EthernetLink<'_, D> {
    fn mtu(&self) -> usize {
        self.endpoint.mtu
    }
    fn checksum_offload(&self) -> ChecksumOffload {
        self.endpoint.checksum
    }
    fn segmentation(&self) -> usize {
        self.endpoint.segmentation
    }
    fn alloc(&mut self, capacity: usize) -> PacketBuf {
        self.endpoint.alloc(self.device, capacity)
    }
    fn recycle(&mut self, packet: PacketBuf) {
        self.endpoint.recycle(self.device, packet);
    }
    fn recycle_all(&mut self, bufs: &mut Vec<BytesMut>) {
        self.endpoint.recycle_all(self.device, bufs);
    }
    fn send_ipv4(
        &mut self,
        now: Instant,
        next_hop: NextHop,
        packet: PacketBuf,
    ) -> Result<(), LinkError> {
        self.endpoint
            .send_ipv4_on(now, self.device, next_hop, packet, None)
    }
    fn send_ipv4_hinted(
        &mut self,
        now: Instant,
        next_hop: NextHop,
        packet: PacketBuf,
        hint: &mut NeighbourHint,
    ) -> Result<(), LinkError> {
        self.endpoint
            .send_ipv4_on(now, self.device, next_hop, packet, Some(hint))
    }
}

#[cfg(test)]
mod tests {
    //! The link layer alone, against a fake device.
    use super::*;
    use crate::link::device::DeviceCaps;
    use std::collections::VecDeque;

    const ME: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    #[derive(Default)]
    struct FakeDevice {
        sent: VecDeque<Vec<u8>>,
    }

    impl Device for FakeDevice {
        fn capabilities(&self) -> DeviceCaps {
            DeviceCaps::default()
        }
        fn receive(&mut self, _now: Instant) -> Option<PacketBuf> {
            None
        }
        fn transmit(&mut self, _now: Instant, frame: PacketBuf) -> Result<(), DeviceError> {
            self.sent.push_back(frame.data().to_vec());
            Ok(())
        }
    }

    fn endpoint() -> EthernetEndpoint {
        let mut e = EthernetEndpoint::new(
            EthernetAddress::local(1),
            1500,
            ChecksumOffload::default(),
            ArpConfig::default(),
            [1, 2],
        );
        e.set_ipv4_addr(Some(ME));
        e
    }

    #[test]
    fn on_an_ip_medium_packets_go_bare_both_ways_without_arp() {
        let mut e = endpoint().with_medium(Medium::Ip);
        let mut dev = FakeDevice::default();
        // Sent: no header, no ARP request, whatever the next hop.
        let datagram = [
            0x45u8, 0, 0, 20, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        ];
        for hop in [NextHop::Unicast(PEER), NextHop::Broadcast] {
            let p = PacketBuf::from_payload(MAX_HEADROOM, &datagram);
            e.with_device(&mut dev)
                .send_ipv4(Instant::ZERO, hop, p)
                .unwrap();
            assert_eq!(dev.sent.pop_front().as_deref(), Some(&datagram[..]));
        }
        assert!(dev.sent.is_empty());
        e.announce(Instant::ZERO, &mut dev);
        assert!(dev.sent.is_empty(), "no gratuitous ARP on an IP link");
        assert_eq!(e.stats().tx_frames, 2);
        // Received: an IPv4 packet is taken as it is; anything else is
        // dropped and counted.
        let mut p = PacketBuf::from_payload(0, &datagram);
        assert!(e.receive_in_place(Instant::ZERO, &mut p, &mut dev));
        assert_eq!(p.data(), &datagram[..]);
        for junk in [&[0x60u8, 0, 0, 0][..], &[]] {
            let mut p = PacketBuf::from_payload(0, junk);
            assert!(!e.receive_in_place(Instant::ZERO, &mut p, &mut dev));
        }
        assert_eq!(e.stats().rx_unknown_ethertype, 2);
        assert_eq!(e.medium(), Medium::Ip);
    }

    fn arp_frame(dst: EthernetAddress, repr: ArpRepr) -> PacketBuf {
        let mut p = PacketBuf::from_payload(MAX_HEADROOM, &[0; 28]);
        repr.emit(&mut ArpPacket::new_unchecked(p.data_mut()));
        let eth = EthernetRepr {
            src_addr: repr.source_hardware_addr,
            dst_addr: dst,
            ethertype: EtherType::Arp,
        };
        eth.emit(&mut Frame::new_unchecked(
            p.push_header(ethernet::HEADER_LEN),
        ));
        p
    }

    fn parse_arp(frame: &[u8]) -> (EthernetRepr, ArpRepr) {
        let f = Frame::new_checked(frame).unwrap();
        let eth = EthernetRepr::parse(&f).unwrap();
        (
            eth,
            ArpRepr::parse(&ArpPacket::new_checked(f.payload()).unwrap()).unwrap(),
        )
    }

    fn request(from_mac: EthernetAddress, from: Ipv4Addr, target: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            operation: Operation::Request,
            source_hardware_addr: from_mac,
            source_protocol_addr: from,
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: target,
        }
    }

    #[test]
    fn answers_requests_for_our_address_and_learns_the_asker() {
        let (mut e, mut dev) = (endpoint(), FakeDevice::default());
        let peer_mac = EthernetAddress::local(2);
        let req = arp_frame(EthernetAddress::BROADCAST, request(peer_mac, PEER, ME));
        assert!(e.receive(Instant::ZERO, req, &mut dev).is_none());
        let (eth, reply) = parse_arp(&dev.sent.pop_front().unwrap());
        assert_eq!((eth.dst_addr, eth.src_addr), (peer_mac, e.mac()));
        assert_eq!(reply.operation, Operation::Reply);
        assert_eq!(
            (reply.source_protocol_addr, reply.source_hardware_addr),
            (ME, e.mac())
        );
        assert_eq!(
            (reply.target_protocol_addr, reply.target_hardware_addr),
            (PEER, peer_mac)
        );
        assert_eq!(e.arp_cache().lookup(Instant::ZERO, PEER), Some(peer_mac));
        // A request for someone else is not answered and teaches nothing new.
        let other = arp_frame(
            EthernetAddress::BROADCAST,
            request(EthernetAddress::local(3), Ipv4Addr::new(192, 0, 2, 3), PEER),
        );
        e.receive(Instant::ZERO, other, &mut dev);
        assert!(dev.sent.is_empty());
        assert_eq!(
            e.arp_cache()
                .lookup(Instant::ZERO, Ipv4Addr::new(192, 0, 2, 3)),
            None
        );
    }

    /// Flows that keep their own neighbour hints are not misled by them:
    /// a neighbour's new address takes effect on the next frame, a hint
    /// taken for one neighbour never sends to another, and none outlives
    /// the cache it came from.
    #[test]
    fn hinted_sends_follow_the_neighbour_cache() {
        let (mut e, mut dev) = (endpoint(), FakeDevice::default());
        let other = Ipv4Addr::new(192, 0, 2, 3);
        let (peer_mac, other_mac, moved) = (
            EthernetAddress::local(2),
            EthernetAddress::local(3),
            EthernetAddress::local(4),
        );
        e.arp_cache_mut().learn(Instant::ZERO, PEER, peer_mac, true);
        e.arp_cache_mut()
            .learn(Instant::ZERO, other, other_mac, true);
        let mut send = |e: &mut EthernetEndpoint, to: Ipv4Addr, hint: &mut NeighbourHint| {
            let p = PacketBuf::from_payload(MAX_HEADROOM, &[0x45; 20]);
            e.with_device(&mut dev)
                .send_ipv4_hinted(Instant::ZERO, NextHop::Unicast(to), p, hint)
                .unwrap();
            let frame = dev.sent.pop_back().unwrap();
            EthernetAddress::from_bytes(&frame[..6]).unwrap()
        };
        let (mut a, mut b) = (NeighbourHint::default(), NeighbourHint::default());
        for _ in 0..3 {
            assert_eq!(send(&mut e, PEER, &mut a), peer_mac);
            assert_eq!(send(&mut e, other, &mut b), other_mac);
        }
        // The peer announces a new address (its request is answered).
        let moved_req = arp_frame(EthernetAddress::BROADCAST, request(moved, PEER, ME));
        e.receive(Instant::ZERO, moved_req, &mut FakeDevice::default());
        assert_eq!(send(&mut e, PEER, &mut a), moved);
        assert_eq!(send(&mut e, other, &mut b), other_mac);
        // A flow whose next hop changed.
        assert_eq!(send(&mut e, other, &mut a), other_mac);
        assert_eq!(send(&mut e, PEER, &mut b), moved);
        // A cache put in the old one's place voids every hint taken from
        // it (found by review: epochs counted per cache came round again).
        *e.arp_cache_mut() = ArpCache::new(ArpConfig::default(), [1, 2]);
        e.arp_cache_mut().learn(Instant::ZERO, PEER, peer_mac, true);
        assert_eq!(send(&mut e, PEER, &mut b), peer_mac);
    }

    #[test]
    fn resolves_then_sends_queued_datagrams_in_order() {
        let (mut e, mut dev) = (endpoint(), FakeDevice::default());
        for n in 0..3u8 {
            let p = PacketBuf::from_payload(MAX_HEADROOM, &[n; 20]);
            e.with_device(&mut dev)
                .send_ipv4(Instant::ZERO, NextHop::Unicast(PEER), p)
                .unwrap();
        }
        // One request for three datagrams.
        assert_eq!(dev.sent.len(), 1);
        let (eth, req) = parse_arp(&dev.sent.pop_front().unwrap());
        assert!(eth.dst_addr.is_broadcast());
        assert_eq!(
            (req.operation, req.target_protocol_addr),
            (Operation::Request, PEER)
        );
        let peer_mac = EthernetAddress::local(2);
        let reply = ArpRepr {
            operation: Operation::Reply,
            source_hardware_addr: peer_mac,
            source_protocol_addr: PEER,
            target_hardware_addr: e.mac(),
            target_protocol_addr: ME,
        };
        e.receive(Instant::ZERO, arp_frame(e.mac(), reply), &mut dev);
        let firsts: Vec<u8> = dev.sent.iter().map(|f| f[ethernet::HEADER_LEN]).collect();
        assert_eq!(firsts, vec![0, 1, 2]);
        assert!(
            dev.sent
                .iter()
                .all(|f| f[0..6] == peer_mac.0 && f[12..14] == [0x08, 0x00])
        );
    }

    #[test]
    fn filters_frames_for_other_stations_and_unknown_types() {
        let (mut e, mut dev) = (endpoint(), FakeDevice::default());
        let mut frame = |dst: EthernetAddress, ty: EtherType| {
            let mut p = PacketBuf::from_payload(MAX_HEADROOM, &[0x45; 40]);
            EthernetRepr {
                src_addr: EthernetAddress::local(9),
                dst_addr: dst,
                ethertype: ty,
            }
            .emit(&mut Frame::new_unchecked(
                p.push_header(ethernet::HEADER_LEN),
            ));
            e.receive(Instant::ZERO, p, &mut dev)
        };
        assert!(frame(EthernetAddress::local(5), EtherType::Ipv4).is_none());
        assert!(frame(EthernetAddress::local(1), EtherType::Ipv6).is_none());
        let up = frame(EthernetAddress::local(1), EtherType::Ipv4).unwrap();
        assert_eq!(up.data(), &[0x45; 40]);
        assert!(
            e.receive(
                Instant::ZERO,
                PacketBuf::from_payload(0, &[1, 2, 3]),
                &mut dev
            )
            .is_none()
        );
        let s = e.stats();
        assert_eq!(
            (
                s.rx_frames,
                s.rx_not_for_us,
                s.rx_unknown_ethertype,
                s.rx_malformed
            ),
            (4, 1, 1, 1)
        );
    }

    #[test]
    fn conflicting_claim_of_our_address_is_counted_not_learned() {
        let (mut e, mut dev) = (endpoint(), FakeDevice::default());
        let liar = arp_frame(
            EthernetAddress::BROADCAST,
            request(EthernetAddress::local(66), ME, ME),
        );
        e.receive(Instant::ZERO, liar, &mut dev);
        assert_eq!(e.stats().arp_conflicts, 1);
        assert!(dev.sent.is_empty());
    }
}

#[cfg(test)]
mod review_tests {
    //! Regression tests from review: broadcast-framed unicast, ARP from
    //! ourselves, unsolicited replies.
    use super::*;
    use crate::link::device::DeviceCaps;
    use std::collections::VecDeque;

    const ME: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    #[derive(Default)]
    struct FakeDevice {
        rx: VecDeque<PacketBuf>,
        tx: Vec<Vec<u8>>,
    }

    impl Device for FakeDevice {
        fn capabilities(&self) -> DeviceCaps {
            DeviceCaps::default()
        }
        fn receive(&mut self, _now: Instant) -> Option<PacketBuf> {
            self.rx.pop_front()
        }
        fn transmit(&mut self, _now: Instant, frame: PacketBuf) -> Result<(), DeviceError> {
            self.tx.push(frame.data().to_vec());
            Ok(())
        }
    }

    fn endpoint() -> EthernetEndpoint {
        let mut e = EthernetEndpoint::new(
            EthernetAddress::local(1),
            1500,
            ChecksumOffload::default(),
            ArpConfig::default(),
            [1, 2],
        );
        e.set_ipv4_addr(Some(ME));
        e
    }

    fn frame(
        dst: EthernetAddress,
        src: EthernetAddress,
        ethertype: EtherType,
        body: &[u8],
    ) -> PacketBuf {
        let mut p = PacketBuf::from_payload(MAX_HEADROOM, body);
        EthernetRepr {
            src_addr: src,
            dst_addr: dst,
            ethertype,
        }
        .emit(&mut Frame::new_unchecked(
            p.push_header(ethernet::HEADER_LEN),
        ));
        p
    }

    fn arp(op: Operation, sha: EthernetAddress, spa: Ipv4Addr, tpa: Ipv4Addr) -> PacketBuf {
        let repr = ArpRepr {
            operation: op,
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: tpa,
        };
        let mut body = [0u8; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut body[..]));
        frame(EthernetAddress::BROADCAST, sha, EtherType::Arp, &body)
    }

    #[test]
    fn unicast_datagram_in_broadcast_frame_is_dropped() {
        let mut e = endpoint();
        let mut dev = FakeDevice::default();
        let mut ip = [0u8; 28];
        ip[0] = 0x45;
        ip[16..20].copy_from_slice(&ME.octets());
        let peer_mac = EthernetAddress::local(2);
        let b = frame(EthernetAddress::BROADCAST, peer_mac, EtherType::Ipv4, &ip);
        assert!(e.receive(Instant::ZERO, b, &mut dev).is_none());
        assert_eq!(e.stats().rx_unicast_in_broadcast, 1);
        // The same datagram in a unicast frame, or a broadcast datagram in
        // a broadcast frame, goes up.
        let u = frame(e.mac(), peer_mac, EtherType::Ipv4, &ip);
        assert!(e.receive(Instant::ZERO, u, &mut dev).is_some());
        ip[16..20].copy_from_slice(&Ipv4Addr::BROADCAST.octets());
        let bb = frame(EthernetAddress::BROADCAST, peer_mac, EtherType::Ipv4, &ip);
        assert!(e.receive(Instant::ZERO, bb, &mut dev).is_some());
    }

    #[test]
    fn reflected_own_arp_is_ignored() {
        let mut e = endpoint();
        let mut dev = FakeDevice::default();
        e.announce(Instant::ZERO, &mut dev);
        let own = PacketBuf::from_payload(0, &dev.tx[0]);
        assert!(e.receive(Instant::ZERO, own, &mut dev).is_none());
        assert_eq!(e.arp_cache().lookup(Instant::ZERO, ME), None);
        assert_eq!(dev.tx.len(), 1, "no reply to ourselves");
        assert_eq!(e.stats().arp_conflicts, 0);
        assert_eq!(e.stats().rx_arp_from_self, 1);
    }

    #[test]
    fn requests_create_entries_unsolicited_replies_do_not() {
        let mut e = endpoint();
        let mut dev = FakeDevice::default();
        let peer_mac = EthernetAddress::local(2);
        let reply = arp(Operation::Reply, peer_mac, PEER, ME);
        e.receive(Instant::ZERO, reply, &mut dev);
        assert_eq!(e.arp_cache().lookup(Instant::ZERO, PEER), None);
        let req = arp(Operation::Request, peer_mac, PEER, ME);
        e.receive(Instant::ZERO, req, &mut dev);
        assert_eq!(e.arp_cache().lookup(Instant::ZERO, PEER), Some(peer_mac));
        // Answered, unicast to the asker, like Linux.
        assert_eq!(dev.tx.len(), 1);
        let f = Frame::new_checked(&dev.tx[0][..]).unwrap();
        let r = EthernetRepr::parse(&f).unwrap();
        assert_eq!((r.dst_addr, r.ethertype), (peer_mac, EtherType::Arp));
        let a = ArpRepr::parse(&ArpPacket::new_checked(&dev.tx[0][14..]).unwrap()).unwrap();
        assert_eq!(a.operation, Operation::Reply);
        assert_eq!(
            (a.source_hardware_addr, a.source_protocol_addr),
            (e.mac(), ME)
        );
        assert_eq!(
            (a.target_hardware_addr, a.target_protocol_addr),
            (peer_mac, PEER)
        );
        // Once known, a reply (or gratuitous ARP) updates the entry.
        let moved = EthernetAddress::local(3);
        let garp = arp(Operation::Request, moved, PEER, PEER);
        e.receive(Instant::ZERO, garp, &mut dev);
        assert_eq!(e.arp_cache().lookup(Instant::ZERO, PEER), Some(moved));
    }
}
