//! Shared by `benches/packet_path.rs`: building
//! valid Ethernet/IPv4/UDP frames, parsing them back, and a device that
//! hands a prepared batch of frames to an interface and swallows whatever
//! it transmits.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4};

use netstrata::buf::{MAX_HEADROOM, PacketBuf};
use netstrata::internet::Protocol;
use netstrata::internet::ipv4::{self, Ipv4Packet, Ipv4Repr};
use netstrata::link::ethernet::{self, EthernetRepr, Frame};
use netstrata::link::{Device, DeviceCaps, DeviceError, EtherType, EthernetAddress};
use netstrata::transport::udp::packet::{self as udp, UdpPacket, UdpRepr};
use netstrata::transport::udp::{UdpConfig, UdpHandle};
use netstrata::{Instant, Interface, InterfaceConfig};

/// The receiving host: 02:00:00:00:00:01, 192.0.2.1 (TEST-NET-1).
pub const RX_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The sending host's address.
pub const TX_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The port the receiver's socket is bound to.
pub const RX_PORT: u16 = 7000;
/// The sender's port.
pub const TX_PORT: u16 = 40000;

/// The receiving host's MAC.
pub fn rx_mac() -> EthernetAddress {
    EthernetAddress::local(1)
}

/// The sending host's MAC.
pub fn tx_mac() -> EthernetAddress {
    EthernetAddress::local(2)
}

/// A payload of `len` bytes with varying contents.
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// Pushes UDP, IPv4 and Ethernet headers (all checksums filled) in front of
/// the payload already in `p`: a datagram from `TX_IP:TX_PORT` (`tx_mac`)
/// to `RX_IP:RX_PORT` (`rx_mac`).
pub fn emit_headers(p: &mut PacketBuf) {
    let udp_repr = UdpRepr {
        src_port: TX_PORT,
        dst_port: RX_PORT,
        payload_len: p.len(),
    };
    p.push_header(udp::HEADER_LEN);
    udp_repr.emit(
        &mut UdpPacket::new_unchecked(p.data_mut()),
        TX_IP,
        RX_IP,
        true,
    );
    let ip_repr = Ipv4Repr {
        src_addr: TX_IP,
        dst_addr: RX_IP,
        protocol: Protocol::Udp,
        payload_len: p.len(),
        ttl: 64,
        tos: 0,
        ident: 0x1234,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    ip_repr.emit(
        &mut Ipv4Packet::new_unchecked(p.push_header(ipv4::HEADER_LEN)),
        true,
    );
    let eth_repr = EthernetRepr {
        src_addr: tx_mac(),
        dst_addr: rx_mac(),
        ethertype: EtherType::Ipv4,
    };
    eth_repr.emit(&mut Frame::new_unchecked(
        p.push_header(ethernet::HEADER_LEN),
    ));
}

/// A complete, valid frame carrying a UDP payload of `len` bytes.
pub fn udp_frame(len: usize) -> PacketBuf {
    let mut p = PacketBuf::from_payload(MAX_HEADROOM, &payload(len));
    emit_headers(&mut p);
    p
}

/// Parses a frame down to its UDP payload, verifying both checksums.
/// Returns the three headers, or `None` if any layer rejects the frame.
pub fn parse_frame(frame: &[u8]) -> Option<(EthernetRepr, Ipv4Repr, UdpRepr)> {
    let f = Frame::new_checked(frame).ok()?;
    let eth = EthernetRepr::parse(&f).ok()?;
    let ip_packet = Ipv4Packet::new_checked(f.payload()).ok()?;
    let ip = Ipv4Repr::parse(&ip_packet, true).ok()?;
    let udp_packet = UdpPacket::new_checked(ip_packet.payload()).ok()?;
    let udp = UdpRepr::parse(&udp_packet, ip.src_addr, ip.dst_addr, true).ok()?;
    Some((eth, ip, udp))
}

/// A device whose receive side replays a batch of frames loaded with
/// [`BatchDevice::load`] and whose transmit side drops every frame (after
/// counting it).
#[derive(Debug, Default)]
pub struct BatchDevice {
    rx: std::vec::IntoIter<PacketBuf>,
    /// Frames transmitted so far.
    pub tx_frames: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
}

impl BatchDevice {
    /// Queues `frames` for the interface to receive, in order (replacing
    /// any not yet received).
    pub fn load(&mut self, frames: Vec<PacketBuf>) {
        self.rx = frames.into_iter();
    }
}

impl Device for BatchDevice {
    fn capabilities(&self) -> DeviceCaps {
        DeviceCaps::default()
    }

    fn receive(&mut self, _now: Instant) -> Option<PacketBuf> {
        self.rx.next()
    }

    fn transmit(&mut self, _now: Instant, frame: PacketBuf) -> Result<(), DeviceError> {
        self.tx_frames += 1;
        self.tx_bytes += frame.len() as u64;
        Ok(())
    }
}

/// The receiving host, brought up (its first poll announces its address,
/// into the sink) with a UDP socket bound to `RX_IP:RX_PORT` whose queue
/// holds `queue` datagrams of up to 1472 bytes, each in a frame buffer of
/// its own at most.
pub fn receiver(queue: usize) -> (Interface, UdpHandle, BatchDevice) {
    let mut cfg = InterfaceConfig::new(
        rx_mac(),
        netstrata::internet::Ipv4Cidr::new(RX_IP, 24).expect("valid prefix"),
    );
    cfg.udp = UdpConfig {
        rx_datagrams: queue,
        rx_bytes: queue * netstrata::buf::frame_buffer_size(1500),
        ..UdpConfig::default()
    };
    cfg.rx_budget = cfg.rx_budget.max(queue);
    let mut device = BatchDevice::default();
    let mut iface = Interface::new(cfg, device.capabilities());
    let socket = iface
        .udp()
        .bind(SocketAddrV4::new(RX_IP, RX_PORT))
        .expect("port is free");
    iface.poll(Instant::ZERO, &mut device);
    (iface, socket, device)
}

/// The sending host (the mirror image of [`receiver`]) with a static ARP
/// entry for the receiver, so sends never wait for resolution, and a
/// socket bound to `TX_IP:TX_PORT` whose send queue holds `queue`
/// datagrams.
pub fn sender(queue: usize) -> (Interface, UdpHandle, BatchDevice) {
    let mut cfg = InterfaceConfig::new(
        tx_mac(),
        netstrata::internet::Ipv4Cidr::new(TX_IP, 24).expect("valid prefix"),
    );
    cfg.udp = UdpConfig {
        tx_datagrams: queue,
        ..UdpConfig::default()
    };
    let mut device = BatchDevice::default();
    let mut iface = Interface::new(cfg, device.capabilities());
    iface.link().arp_cache_mut().insert_static(RX_IP, rx_mac());
    let socket = iface
        .udp()
        .bind(SocketAddrV4::new(TX_IP, TX_PORT))
        .expect("port is free");
    iface.poll(Instant::ZERO, &mut device);
    (iface, socket, device)
}
