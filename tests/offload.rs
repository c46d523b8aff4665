//! Checksum offload end to end, in memory: what a device that offers it
//! (a TAP with a virtio-net header, `TapConfig::checksum_offload`) means
//! for the rest of the stack.
//!
//! - With transmit offload the stack leaves transport checksums to the
//!   device; a datagram to the stack's own address never reaches one, so
//!   the IP layer fills them before looping it back.
//! - A frame's own word on its checksum (`L4Checksum`) is void once a
//!   fault injector has flipped one of its bits.

use std::net::{Ipv4Addr, SocketAddrV4};

use netstrata::buf::{L4Checksum, PacketBuf};
use netstrata::internet::ping::PingEvent;
use netstrata::link::{
    ChecksumOffload, Device, DeviceCaps, DeviceError, EthernetAddress, FaultConfig, FaultInjector,
    MemoryNetwork, MemoryPort, Segmenter,
};
use netstrata::transport::tcp::State;
use netstrata::{Duration, Instant, Interface, InterfaceConfig};

const ME: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// A device that, like a TAP with checksum offload, takes partial
/// checksums on transmit (and sends nothing anywhere).
struct TransmitOffload;

impl Device for TransmitOffload {
    fn capabilities(&self) -> DeviceCaps {
        DeviceCaps {
            mtu: 1500,
            checksum: ChecksumOffload {
                tx: true,
                rx: false,
            },
            ..DeviceCaps::default()
        }
    }
    fn receive(&mut self, _: Instant) -> Option<PacketBuf> {
        None
    }
    fn transmit(&mut self, _: Instant, _: PacketBuf) -> Result<(), DeviceError> {
        Ok(())
    }
}

fn iface(addr: &str, seed: u64, caps: DeviceCaps) -> Interface {
    let mac = EthernetAddress::local(seed as u32);
    let cfg = InterfaceConfig::new(mac, addr.parse().unwrap()).with_seed(seed);
    Interface::new(cfg, caps)
}

#[test]
fn ping_and_tcp_to_our_own_address_work_under_transmit_offload() {
    let mut dev = TransmitOffload;
    let mut ifc = iface("192.0.2.1/24", 7, dev.capabilities());
    let ping = ifc.ping().open(Duration::from_secs(1)).unwrap();
    ifc.ping().send(ping, ME, 1, 1000).unwrap();
    // A datagram too long for the link, looped back whole.
    ifc.ping().send(ping, ME, 2, 3000).unwrap();
    let listener = ifc.tcp().listen(SocketAddrV4::new(ME, 80), 4).unwrap();
    let client = ifc.tcp().connect(SocketAddrV4::new(ME, 80)).unwrap();
    let udp = ifc
        .udp()
        .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 9))
        .unwrap();
    ifc.udp()
        .send_to(udp, b"to myself", SocketAddrV4::new(ME, 9))
        .unwrap();
    let mut now = Instant::ZERO;
    let mut replies = Vec::new();
    for _ in 0..20 {
        ifc.poll(now, &mut dev);
        while let Ok(e) = ifc.ping().recv(ping) {
            replies.push(e);
        }
        now += Duration::from_millis(10);
    }
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(
        replies.iter().all(|e| matches!(e, PingEvent::Reply(_))),
        "{replies:?}"
    );
    assert_eq!(ifc.tcp().state(client).unwrap(), State::Established);
    assert!(ifc.tcp().accept(listener).is_ok());
    let got = ifc.udp().recv_with(udp, |d, _| d.to_vec()).unwrap();
    assert_eq!(got, b"to myself");
}

/// A memory port that, like a TAP passing on the kernel's `DATA_VALID`,
/// vouches for every frame it receives.
struct Vouching(MemoryPort);

impl Device for Vouching {
    fn capabilities(&self) -> DeviceCaps {
        self.0.capabilities()
    }
    fn receive(&mut self, now: Instant) -> Option<PacketBuf> {
        let mut p = self.0.receive(now)?;
        p.set_l4_checksum(L4Checksum::Verified);
        Some(p)
    }
    fn transmit(&mut self, now: Instant, frame: PacketBuf) -> Result<(), DeviceError> {
        self.0.transmit(now, frame)
    }
}

#[test]
fn a_frame_the_injector_corrupted_is_verified_whatever_its_device_said() {
    let net = MemoryNetwork::new(1500);
    let (mut port_a, port_b) = (net.attach(), net.attach());
    let mut dev_b =
        FaultInjector::new(Vouching(port_b), 1).with_rx(FaultConfig::new().with_corrupt(1.0));
    let mut a = iface("192.0.2.10/24", 1, port_a.capabilities());
    let mut b = iface("192.0.2.11/24", 2, dev_b.capabilities());
    let b_mac = b.mac();
    a.link()
        .arp_cache_mut()
        .insert_static(Ipv4Addr::new(192, 0, 2, 11), b_mac);
    let dst = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 11), 9);
    let sa = a
        .udp()
        .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5000))
        .unwrap();
    let sb = b
        .udp()
        .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 9))
        .unwrap();
    let payload = [0x55u8; 200];
    let mut delivered = 0;
    let mut now = Instant::ZERO;
    for _ in 0..200 {
        a.udp().send_to(sa, &payload, dst).unwrap();
        a.poll(now, &mut port_a);
        b.poll(now, &mut dev_b);
        while let Ok(d) = b.udp().recv_with(sb, |d, _| d.to_vec()) {
            assert_eq!(d, payload, "a corrupted datagram was delivered");
            delivered += 1;
        }
        now += Duration::from_millis(1);
    }
    // Every frame had a bit flipped: a flip in the IP header or the UDP
    // data is caught by a checksum, and nothing gets through.
    assert_eq!(delivered, 0);
    assert_eq!(dev_b.rx_stats().corrupted, 200);
}

/// TCP over a device that segments: the sender hands down super-segments
/// of many segments each, the wire sees frames within the MTU, each with
/// valid checksums, and the receiver gets every byte in order.
#[test]
fn tcp_hands_a_segmenting_device_super_segments_that_arrive_whole() {
    let net = MemoryNetwork::new(1500);
    let (port_a, mut port_b) = (net.attach(), net.attach());
    let mut dev_a = Segmenter::new(port_a);
    let mut a = iface("192.0.2.10/24", 1, dev_a.capabilities());
    let mut b = iface("192.0.2.11/24", 2, port_b.capabilities());
    let server = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 11), 80);
    let listener = b.tcp().listen(server, 4).unwrap();
    let client = a.tcp().connect(server).unwrap();
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 + i / 4093) as u8).collect();
    let (mut sent, mut got) = (0, Vec::with_capacity(data.len()));
    let mut conn = None;
    let mut now = Instant::ZERO;
    let mut buf = vec![0u8; 65536];
    for _ in 0..20_000 {
        if got.len() == data.len() {
            break;
        }
        if sent < data.len() {
            sent += a.tcp().send(client, &data[sent..]).unwrap_or(0);
        }
        a.poll(now, &mut dev_a);
        b.poll(now, &mut port_b);
        if conn.is_none() {
            conn = b.tcp().accept(listener).ok();
        }
        if let Some(c) = conn {
            while let Ok(n) = b.tcp().recv(c, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        now += Duration::from_micros(100);
    }
    assert!(
        got == data,
        "{} of {} bytes, in order?",
        got.len(),
        data.len()
    );
    let stats = dev_a.stats();
    assert!(stats.super_segments > 0, "{stats:?}");
    assert!(
        stats.segments > 8 * stats.super_segments,
        "super-segments of a few segments only: {stats:?}"
    );
    assert_eq!(stats.refused, 0);
    // B verified every segment's checksum, and found none bad.
    assert_eq!(b.counters().tcp.rx_bad_checksum, 0);
    assert!(b.counters().tcp.rx_segments >= stats.segments);
}
