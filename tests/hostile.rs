//! Hostile input: arbitrary and mutated frames, floods of fragments and ARP
//! requests, overlapping fragments, ICMP errors quoting garbage, and storms
//! of datagrams to a closed port. The stack must never panic, keep memory
//! within its configured caps, count every frame it drops in the right
//! counter, and keep working afterwards.
//!
//! Every test drives a *victim* host (192.0.2.1) whose device is a
//! [`TapDevice`]: frames pushed into its tap are received before anything
//! from the in-memory switch, and the tap classifies every frame it hands
//! to the stack (an oracle written independently of the stack), so the
//! link counters are checked exactly and the counters above are checked to
//! add up ([`Net::check_accounting`]). A *peer* host (192.0.2.2) on the same
//! switch checks that the victim still answers ([`Net::healthy`]).
//!
//! The victim holds a static ARP entry for the peer, so hostile ARP
//! packets (which may legitimately rebind any other address, RFC 826) cannot
//! cut the path the health check uses.

mod common;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex, MutexGuard};

use common::addr;
use netstrata::buf::PacketBuf;
use netstrata::checksum::{self, Checksum};
use netstrata::internet::fragment::{ReassemblyConfig, fragment_offsets};
use netstrata::internet::icmpv4::{DstUnreachable, Icmpv4Packet, Icmpv4Repr, TimeExceeded};
use netstrata::internet::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};
use netstrata::internet::ping::{PingEvent, PingHandle};
use netstrata::internet::{IcmpError, IcmpErrorKind};
use netstrata::link::arp::{ArpPacket, ArpRepr, Operation};
use netstrata::link::ethernet::{EtherType, EthernetAddress, EthernetRepr, Frame};
use netstrata::link::{ArpConfig, Device, DeviceCaps, DeviceError, MemoryNetwork, MemoryPort};
use netstrata::rand::Rng;
use netstrata::sim::{HostId, Simulation};
use netstrata::transport::udp::{UdpHandle, UdpPacket, UdpRepr};
use netstrata::{Counters, Duration, Instant, Interface, InterfaceConfig};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

/// `cases` cases, with failures saved beside the crate's other proptest
/// regressions.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/hostile.txt",
        ))),
        ..ProptestConfig::default()
    }
}

const VICTIM: u8 = 1;
const PEER: u8 = 2;
/// A UDP port the victim listens on (0.0.0.0:7).
const OPEN_PORT: u16 = 7;
/// A UDP port nobody listens on.
const CLOSED_PORT: u16 = 9;
/// The peer's UDP port.
const PEER_PORT: u16 = 5000;

fn mac(n: u8) -> EthernetAddress {
    EthernetAddress::local(u32::from(n))
}

fn lock(tap: &Mutex<Tap>) -> MutexGuard<'_, Tap> {
    tap.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How the link layer must dispose of the frames handed to the stack,
/// computed from the bytes alone.
#[derive(Debug, Default, Clone, Copy)]
struct Expected {
    frames: u64,
    malformed: u64,
    not_for_us: u64,
    unknown_ethertype: u64,
    ipv4: u64,
    arp_malformed: u64,
}

impl Expected {
    fn classify(&mut self, frame: &[u8], station: EthernetAddress) {
        self.frames += 1;
        if frame.len() < 14 {
            self.malformed += 1;
            return;
        }
        if frame[0..6] != station.0 && frame[0..6] != [0xff; 6] {
            self.not_for_us += 1;
            return;
        }
        match u16::from_be_bytes([frame[12], frame[13]]) {
            0x0800 => self.ipv4 += 1,
            0x0806 => {
                let a = &frame[14..];
                // Ethernet (1) / IPv4 (0x0800), 6- and 4-byte addresses.
                let ok = a.len() >= 28 && a[0..6] == [0, 1, 8, 0, 6, 4];
                if !ok {
                    self.arp_malformed += 1;
                }
            }
            _ => self.unknown_ethertype += 1,
        }
    }
}

/// The shared state of a [`TapDevice`].
#[derive(Debug, Default)]
struct Tap {
    /// Frames to hand to the stack before anything from the switch.
    inbox: VecDeque<Vec<u8>>,
    /// The oracle's tally of every frame handed over.
    expected: Expected,
    /// Whether to keep a copy of transmitted frames.
    record_tx: bool,
    /// Transmitted frames, with the time.
    sent: Vec<(Instant, Vec<u8>)>,
}

/// A memory port with an injection queue in front of its receive side.
struct TapDevice {
    port: MemoryPort,
    station: EthernetAddress,
    tap: Arc<Mutex<Tap>>,
}

impl Device for TapDevice {
    fn capabilities(&self) -> DeviceCaps {
        self.port.capabilities()
    }

    fn receive(&mut self, now: Instant) -> Option<PacketBuf> {
        let mut tap = lock(&self.tap);
        let frame = match tap.inbox.pop_front() {
            Some(bytes) => PacketBuf::from_payload(0, &bytes),
            None => self.port.receive(now)?,
        };
        tap.expected.classify(frame.data(), self.station);
        Some(frame)
    }

    fn transmit(&mut self, now: Instant, frame: PacketBuf) -> Result<(), DeviceError> {
        {
            let mut tap = lock(&self.tap);
            if tap.record_tx {
                tap.sent.push((now, frame.data().to_vec()));
            }
        }
        self.port.transmit(now, frame)
    }

    fn poll_at(&self) -> Option<Instant> {
        self.port.poll_at()
    }
}

/// The victim, the peer and the tap.
struct Net {
    sim: Simulation,
    victim: HostId,
    peer: HostId,
    tap: Arc<Mutex<Tap>>,
    /// Every UDP socket of the victim (their deliveries enter the
    /// accounting).
    sockets: Vec<UdpHandle>,
    /// The victim's socket on [`OPEN_PORT`].
    open: UdpHandle,
    /// The peer's socket on [`PEER_PORT`].
    peer_udp: UdpHandle,
    /// The victim's reassembly limits.
    reassembly: ReassemblyConfig,
}

impl Net {
    /// A victim configured by `configure` (on top of the defaults) and a
    /// default peer, both up.
    fn new(configure: impl FnOnce(&mut InterfaceConfig)) -> Net {
        let net = MemoryNetwork::new(1500);
        let mut sim = Simulation::new();
        let port = net.attach();
        let mut cfg = InterfaceConfig::new(mac(VICTIM), "192.0.2.1/24".parse().unwrap())
            .with_seed(0x5eed_0001);
        configure(&mut cfg);
        let reassembly = cfg.ipv4.reassembly.clone();
        let iface = Interface::new(cfg, port.capabilities());
        let tap = Arc::new(Mutex::new(Tap::default()));
        let device = TapDevice {
            port,
            station: mac(VICTIM),
            tap: Arc::clone(&tap),
        };
        let victim = sim.add_host(iface, Box::new(device));
        let peer = common::add_host(&mut sim, &net, PEER, None);
        sim.iface(victim)
            .link()
            .arp_cache_mut()
            .insert_static(addr(PEER), mac(PEER));
        let open = sim
            .iface(victim)
            .udp()
            .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, OPEN_PORT))
            .unwrap();
        let peer_udp = sim
            .iface(peer)
            .udp()
            .bind(SocketAddrV4::new(addr(PEER), PEER_PORT))
            .unwrap();
        let mut n = Net {
            sim,
            victim,
            peer,
            tap,
            sockets: vec![open],
            open,
            peer_udp,
            reassembly,
        };
        n.drain();
        n
    }

    fn victim(&mut self) -> &mut Interface {
        self.sim.iface(self.victim)
    }

    fn counters(&mut self) -> Counters {
        self.victim().counters()
    }

    fn tap(&self) -> MutexGuard<'_, Tap> {
        lock(&self.tap)
    }

    /// Hands `frames` to the victim and lets everything settle.
    fn inject(&mut self, frames: impl IntoIterator<Item = Vec<u8>>) {
        self.tap().inbox.extend(frames);
        self.drain();
    }

    /// Polls until no host has work due now. `Simulation::settle` stops
    /// when no frame moves; looped-back datagrams move none, so poll those
    /// out explicitly (bounded).
    fn drain(&mut self) {
        self.sim.settle();
        for _ in 0..100 {
            let now = self.sim.now();
            let due = self
                .sim
                .hosts()
                .iter()
                .any(|h| h.iface.poll_at(now).is_some_and(|t| t <= now))
                || !self.tap().inbox.is_empty();
            if !due {
                return;
            }
            for h in self.sim.hosts() {
                h.iface.poll(now, &mut h.device);
            }
            self.sim.settle();
        }
        panic!("the victim still has work after 100 polls at one instant");
    }

    fn bind(&mut self, local: SocketAddrV4) -> UdpHandle {
        let h = self.victim().udp().bind(local).unwrap();
        self.sockets.push(h);
        h
    }

    /// Checks that the counters add up: every frame is counted by the link
    /// layer exactly where the oracle says, and every datagram IP received
    /// ends in exactly one disposition.
    fn check_accounting(&mut self) {
        let handles = self.sockets.clone();
        let delivered: u64 = handles
            .iter()
            .map(|&h| {
                self.victim()
                    .udp()
                    .socket_stats(h)
                    .map_or(0, |s| s.rx_datagrams)
            })
            .sum();
        let c = self.counters();
        let e = self.tap().expected;
        let (l, ip, u, r) = (c.link, c.ip, c.udp, c.reassembly);
        assert_eq!(l.rx_frames, e.frames, "every frame counted as received");
        assert_eq!(l.rx_malformed, e.malformed, "runts");
        assert_eq!(l.rx_not_for_us, e.not_for_us, "other stations' frames");
        assert_eq!(l.rx_unknown_ethertype, e.unknown_ethertype, "EtherTypes");
        assert_eq!(l.rx_arp_malformed, e.arp_malformed, "ARP packets");
        assert_eq!(
            ip.rx_packets,
            e.ipv4 + ip.loopback,
            "every IPv4 frame and looped-back datagram reaches IP: {ip:#?}"
        );
        let stopped = ip.rx_malformed
            + ip.rx_bad_checksum
            + ip.rx_not_for_us
            + ip.rx_bad_source
            + ip.rx_fragments;
        assert!(stopped <= ip.rx_packets, "{ip:#?}");
        let handed_on = ip.rx_packets - stopped + ip.reassembled;
        assert_eq!(
            handed_on,
            ip.icmp_rx_malformed
                + ip.rx_delivered
                + u.rx_malformed
                + u.rx_bad_checksum
                + u.rx_queue_full
                + c.tcp.rx_malformed
                + c.tcp.rx_bad_checksum
                + ip.rx_no_port
                + ip.rx_no_protocol,
            "every whole datagram ends in one disposition: {ip:#?} {u:#?}"
        );
        // The victim opens no TCP socket: every segment TCP does not drop
        // as malformed is for no socket (and answered with RST).
        assert_eq!(
            c.tcp.rx_segments,
            c.tcp.rx_malformed + c.tcp.rx_bad_checksum + c.tcp.rx_no_socket,
            "{:#?}",
            c.tcp
        );
        assert_eq!(
            u.rx_datagrams,
            u.rx_malformed + u.rx_bad_checksum + u.rx_no_socket + u.rx_queue_full + delivered,
            "{u:#?}"
        );
        assert_eq!(u.rx_no_socket, ip.rx_no_port);
        assert_eq!(ip.reassembled, r.completed);
        assert_eq!(
            ip.reassembly_dropped,
            r.overlaps + r.over_limit + r.malformed
        );
        assert_eq!(ip.reassembly_timeouts, r.timed_out);
        assert!(
            ip.icmp_tx_errors + ip.icmp_rate_limited
                <= ip.rx_no_port + ip.rx_no_protocol + ip.reassembly_timeouts,
            "{ip:#?}"
        );
        assert!(r.bytes_buffered <= self.reassembly.max_bytes);
        // The victim has no TCP listener, so nothing reaches a connection and
        // every segment that was not malformed is answered with RST (unless
        // it was a RST itself).
        assert!(c.tcp.rst_sent <= c.tcp.rx_no_socket, "{:#?}", c.tcp);
        let cache = self.victim().link().arp_cache().len();
        let capacity = self.victim().link().arp_cache().config().capacity;
        assert!(cache <= capacity, "ARP cache {cache} > capacity {capacity}");
    }

    /// One echo request of `size` bytes from `from` to `to`; the event that
    /// answered it.
    fn ping(&mut self, from: HostId, to: Ipv4Addr, size: usize) -> Option<PingEvent> {
        let h = self
            .sim
            .iface(from)
            .ping()
            .open(Duration::from_secs(2))
            .unwrap();
        self.sim.iface(from).ping().send(h, to, 1, size).unwrap();
        let mut event = None;
        self.sim.run_while_not(Duration::from_secs(5), |s| {
            event = s.iface(from).ping().recv(h).ok();
            event.is_some()
        });
        self.sim.iface(from).ping().close(h).unwrap();
        event
    }

    /// The victim still works: it answers a ping, takes a UDP datagram and
    /// sends one back; and its counters add up.
    fn healthy(&mut self) {
        self.drain();
        match self.ping(self.peer, addr(VICTIM), 56) {
            Some(PingEvent::Reply(r)) => assert_eq!(r.from, addr(VICTIM)),
            other => panic!("victim does not answer ping: {other:?}"),
        }
        // Hostile datagrams may wait in the socket: clear them first.
        let open = self.open;
        while self
            .victim()
            .udp()
            .recv_with(open, |d, a| (d.to_vec(), a))
            .is_ok()
        {}
        let msg = b"still here?";
        let (peer, victim, peer_udp) = (self.peer, self.victim, self.peer_udp);
        self.sim
            .iface(peer)
            .udp()
            .send_to(peer_udp, msg, SocketAddrV4::new(addr(VICTIM), OPEN_PORT))
            .unwrap();
        let mut got = None;
        assert!(
            self.sim.run_while_not(Duration::from_secs(3), |s| {
                got = s
                    .iface(victim)
                    .udp()
                    .recv_with(open, |d, a| (d.to_vec(), a))
                    .ok();
                got.is_some()
            }),
            "victim did not receive a UDP datagram"
        );
        let (data, from) = got.unwrap();
        assert_eq!(&data[..], msg);
        assert_eq!(from, SocketAddrV4::new(addr(PEER), PEER_PORT));
        self.victim().udp().send_to(open, &data, from).unwrap();
        let mut back = None;
        assert!(
            self.sim.run_while_not(Duration::from_secs(3), |s| {
                back = s
                    .iface(peer)
                    .udp()
                    .recv_with(peer_udp, |d, a| (d.to_vec(), a))
                    .ok();
                back.is_some()
            }),
            "victim did not send a UDP datagram"
        );
        assert_eq!(&back.unwrap().0[..], msg);
        self.drain();
        self.check_accounting();
    }
}

// ---------------------------------------------------------------------------
// Frame builders, all through the crate's own emitters
// ---------------------------------------------------------------------------

fn eth(dst: EthernetAddress, src: EthernetAddress, ethertype: EtherType, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + body.len()];
    EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
    }
    .emit(&mut Frame::new_unchecked(&mut f[..]));
    f[14..].copy_from_slice(body);
    f
}

/// An IPv4 packet from `src` to `dst` with header checksum.
fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: Protocol,
    ident: u16,
    more_frags: bool,
    frag_offset: usize,
    payload: &[u8],
) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol,
        payload_len: payload.len(),
        ttl: 64,
        tos: 0,
        ident,
        dont_frag: false,
        more_frags,
        frag_offset: frag_offset as u16,
    };
    let mut p = vec![0u8; 20 + payload.len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut p[..]), true);
    p[20..].copy_from_slice(payload);
    p
}

/// An IPv4 packet in a frame from `src_mac` to the victim.
fn ip_frame(src_mac: EthernetAddress, packet: &[u8]) -> Vec<u8> {
    eth(mac(VICTIM), src_mac, EtherType::Ipv4, packet)
}

fn icmp(repr: &Icmpv4Repr<'_>) -> Vec<u8> {
    let mut b = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut b[..]), true);
    b
}

fn udp(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8], fill_checksum: bool) -> Vec<u8> {
    let repr = UdpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        payload_len: payload.len(),
    };
    let mut b = vec![0u8; 8 + payload.len()];
    b[8..].copy_from_slice(payload);
    repr.emit(
        &mut UdpPacket::new_unchecked(&mut b[..]),
        *src.ip(),
        *dst.ip(),
        fill_checksum,
    );
    b
}

/// The fragments (IPv4 packets) of `payload` for a 1500-byte MTU, with each
/// fragment's payload offset.
fn fragments(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: Protocol,
    ident: u16,
    payload: &[u8],
) -> Vec<(usize, Vec<u8>)> {
    fragment_offsets(payload.len(), 1500, 20)
        .unwrap()
        .map(|f| {
            let piece = &payload[f.offset..f.offset + f.len];
            let packet = ipv4(src, dst, protocol, ident, f.more_fragments, f.offset, piece);
            (f.offset, packet)
        })
        .collect()
}

fn arp_frame(
    operation: Operation,
    sender: (EthernetAddress, Ipv4Addr),
    target: (EthernetAddress, Ipv4Addr),
    eth_dst: EthernetAddress,
) -> Vec<u8> {
    let repr = ArpRepr {
        operation,
        source_hardware_addr: sender.0,
        source_protocol_addr: sender.1,
        target_hardware_addr: target.0,
        target_protocol_addr: target.1,
    };
    let mut b = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut b[..]));
    eth(eth_dst, sender.0, EtherType::Arp, &b)
}

/// Sets the IPv4 header checksum of the packet at `ip` if its header is
/// all there.
fn fix_ipv4_checksum(ip: &mut [u8]) {
    if ip.len() < 20 {
        return;
    }
    let hlen = usize::from(ip[0] & 0x0f) * 4;
    if hlen < 20 || hlen > ip.len() {
        return;
    }
    ip[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&ip[..hlen]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Sets the ICMP or UDP checksum of the packet at `ip` (after its header
/// checksum), where the lengths allow, so that mutated fields reach the
/// transport layer instead of failing its checksum.
fn fix_transport_checksum(ip: &mut [u8]) {
    if ip.len() < 20 {
        return;
    }
    let hlen = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    if hlen < 20 || total < hlen + 8 {
        return;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let protocol = ip[9];
    let l4 = &mut ip[hlen..total];
    match protocol {
        1 => {
            l4[2..4].copy_from_slice(&[0, 0]);
            let c = checksum::checksum(l4);
            l4[2..4].copy_from_slice(&c.to_be_bytes());
        }
        17 => {
            let len = usize::from(u16::from_be_bytes([l4[4], l4[5]]));
            if len < 8 || len > l4.len() {
                return;
            }
            l4[6..8].copy_from_slice(&[0, 0]);
            let mut c = Checksum::new();
            c.add_ipv4_pseudo_header(src, dst, 17, len as u16);
            c.add_bytes(&l4[..len]);
            let c = match c.finish() {
                0 => 0xffff,
                c => c,
            };
            l4[6..8].copy_from_slice(&c.to_be_bytes());
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// 1. Arbitrary frames
// ---------------------------------------------------------------------------

/// A destination MAC: the victim, broadcast or anything.
fn arb_dst_mac() -> impl Strategy<Value = [u8; 6]> {
    prop_oneof![Just(mac(VICTIM).0), Just([0xff; 6]), any::<[u8; 6]>()]
}

/// An IPv4 address the victim might see: its own, the peer's, broadcasts,
/// an address on the subnet, anything.
fn arb_addr() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        Just(addr(VICTIM)),
        Just(addr(PEER)),
        Just(Ipv4Addr::new(192, 0, 2, 255)),
        Just(Ipv4Addr::BROADCAST),
        (0u8..=255).prop_map(addr),
        any::<u32>().prop_map(Ipv4Addr::from),
    ]
}

/// A frame whose IPv4 header is valid enough to pass the header checksum,
/// with random fields, options and payload; often a plausible transport
/// header (an ICMP type the stack handles, a UDP length that fits and a
/// port that is open or closed) and a valid transport checksum, so that
/// the noise reaches every layer.
fn arb_deep_ipv4_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        (
            prop_oneof![6 => Just(5u8), 1 => 0u8..16],
            any::<[u8; 20]>(),
            prop_oneof![Just(1u8), Just(6), Just(17), any::<u8>()],
            arb_addr(),
            prop_oneof![3 => Just(addr(VICTIM)), 1 => arb_addr()],
            prop_oneof![3 => Just(0u16), 1 => Just(0x2000), 1 => any::<u16>()],
            prop_oneof![4 => Just(None), 1 => any::<u16>().prop_map(Some)],
        ),
        prop::collection::vec(any::<u8>(), 0..1500),
        prop_oneof![
            1 => Just(None),
            3 => (
                prop_oneof![Just(8u8), Just(0), Just(3), Just(11), Just(5), any::<u8>()],
                prop_oneof![Just(OPEN_PORT), Just(CLOSED_PORT), any::<u16>()],
            )
                .prop_map(Some),
        ],
        any::<bool>(),
    )
        .prop_map(
            |((ihl, fields, protocol, src, dst, frag, total), body, shape, fix_l4)| {
                let hlen = usize::from(ihl) * 4;
                let mut ip = fields.to_vec();
                ip.resize(hlen.max(20), 0xa5);
                ip[0] = 0x40 | ihl;
                ip[6..8].copy_from_slice(&frag.to_be_bytes());
                ip[9] = protocol;
                ip[12..16].copy_from_slice(&src.octets());
                ip[16..20].copy_from_slice(&dst.octets());
                let l4 = ip.len();
                ip.extend_from_slice(&body);
                if shape.is_some() && frag & 0x2000 != 0 {
                    // A fragment other than the last carries a multiple of 8.
                    ip.truncate(l4 + body.len() / 8 * 8);
                }
                if let Some((icmp_type, port)) = shape
                    && ip.len() >= l4 + 8
                {
                    match protocol {
                        1 => ip[l4..l4 + 2].copy_from_slice(&[icmp_type, 0]),
                        17 => {
                            let len = (ip.len() - l4) as u16;
                            ip[l4 + 2..l4 + 4].copy_from_slice(&port.to_be_bytes());
                            ip[l4 + 4..l4 + 6].copy_from_slice(&len.to_be_bytes());
                        }
                        _ => {}
                    }
                }
                let total = total.unwrap_or(ip.len() as u16);
                ip[2..4].copy_from_slice(&total.to_be_bytes());
                if fix_l4 {
                    fix_transport_checksum(&mut ip);
                }
                fix_ipv4_checksum(&mut ip);
                ip_frame(mac(PEER), &ip)
            },
        )
}

fn arb_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Noise.
        prop::collection::vec(any::<u8>(), 0..2000),
        // Noise behind a plausible Ethernet header.
        (
            arb_dst_mac(),
            prop_oneof![Just(0x0800u16), Just(0x0806), Just(0x86dd), any::<u16>()],
            prop::collection::vec(any::<u8>(), 0..1986),
        )
            .prop_map(|(dst, ethertype, body)| {
                eth(
                    EthernetAddress(dst),
                    mac(99),
                    EtherType::from(ethertype),
                    &body,
                )
            }),
        // A well-formed ARP header with random operation and addresses.
        (
            arb_dst_mac(),
            prop_oneof![Just(1u16), Just(2), any::<u16>()],
            any::<[u8; 6]>(),
            arb_addr(),
            any::<[u8; 6]>(),
            prop_oneof![Just(addr(VICTIM)), arb_addr()],
            prop::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(dst, op, sha, spa, tha, tpa, pad)| {
                let mut f = arp_frame(
                    Operation::from(op),
                    (EthernetAddress(sha), spa),
                    (EthernetAddress(tha), tpa),
                    EthernetAddress(dst),
                );
                f.extend_from_slice(&pad);
                f
            }),
        arb_deep_ipv4_frame(),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary frames of 0..2000 bytes never panic the stack; each is
    /// counted exactly once where it belongs, and the victim keeps working.
    #[test]
    fn arbitrary_frames_never_panic(
        frames in prop::collection::vec(arb_frame(), 1..24),
    ) {
        let mut net = Net::new(|_| {});
        let before = net.counters().link.rx_frames;
        let n = frames.len() as u64;
        net.inject(frames);
        let after = net.counters();
        // Everything the victim received: our frames and the peer's.
        prop_assert!(after.link.rx_frames >= before + n);
        net.check_accounting();
        net.healthy();
    }
}

// ---------------------------------------------------------------------------
// 2. Mutated valid frames
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ArpRequest,
    ArpReply,
    Echo,
    UdpOpen,
    UdpClosed,
    UdpFragments,
    EchoFragments,
}

fn arb_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::ArpRequest),
        Just(Kind::ArpReply),
        Just(Kind::Echo),
        Just(Kind::UdpOpen),
        Just(Kind::UdpClosed),
        Just(Kind::UdpFragments),
        Just(Kind::EchoFragments),
    ]
}

/// Valid frames of a kind from host 192.0.2.`sender` (the peer or a
/// stranger) to the victim. Fragmented kinds carry at least 1,600 bytes.
fn valid_frames(kind: Kind, sender: u8, ident: u16, payload: &[u8]) -> Vec<Vec<u8>> {
    let (smac, sip) = (mac(sender), addr(sender));
    let victim = addr(VICTIM);
    let from = SocketAddrV4::new(sip, PEER_PORT);
    let mut long = payload.to_vec();
    while long.len() < 1600 {
        long.extend_from_slice(&[0x5a; 64]);
    }
    let echo = |data: &[u8]| {
        icmp(&Icmpv4Repr::EchoRequest {
            ident,
            seq_no: 1,
            data,
        })
    };
    match kind {
        Kind::ArpRequest => vec![arp_frame(
            Operation::Request,
            (smac, sip),
            (EthernetAddress::UNSPECIFIED, victim),
            EthernetAddress::BROADCAST,
        )],
        Kind::ArpReply => vec![arp_frame(
            Operation::Reply,
            (smac, sip),
            (mac(VICTIM), victim),
            mac(VICTIM),
        )],
        Kind::Echo => {
            let p = ipv4(sip, victim, Protocol::Icmp, ident, false, 0, &echo(payload));
            vec![ip_frame(smac, &p)]
        }
        Kind::UdpOpen | Kind::UdpClosed => {
            let port = if kind == Kind::UdpOpen {
                OPEN_PORT
            } else {
                CLOSED_PORT
            };
            let d = udp(from, SocketAddrV4::new(victim, port), payload, true);
            vec![ip_frame(
                smac,
                &ipv4(sip, victim, Protocol::Udp, ident, false, 0, &d),
            )]
        }
        Kind::UdpFragments => {
            let d = udp(from, SocketAddrV4::new(victim, OPEN_PORT), &long, true);
            fragments(sip, victim, Protocol::Udp, ident, &d)
                .into_iter()
                .map(|(_, p)| ip_frame(smac, &p))
                .collect()
        }
        Kind::EchoFragments => fragments(sip, victim, Protocol::Icmp, ident, &echo(&long))
            .into_iter()
            .map(|(_, p)| ip_frame(smac, &p))
            .collect(),
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Overwrite(Index, u8),
    Truncate(Index),
    Extend(Vec<u8>),
    Splice(Index, Vec<u8>),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Overwrite(i, v)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Extend),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Splice(i, b)),
    ]
}

fn mutate(frame: &mut Vec<u8>, m: &Mutation) {
    if frame.is_empty() {
        if let Mutation::Extend(b) | Mutation::Splice(_, b) = m {
            frame.extend_from_slice(b);
        }
        return;
    }
    match m {
        Mutation::Flip(i, bit) => {
            let at = i.index(frame.len());
            frame[at] ^= 1 << bit;
        }
        Mutation::Overwrite(i, v) => {
            let at = i.index(frame.len());
            frame[at] = *v;
        }
        Mutation::Truncate(i) => frame.truncate(i.index(frame.len())),
        Mutation::Extend(b) => frame.extend_from_slice(b),
        Mutation::Splice(i, b) => {
            let at = i.index(frame.len());
            let end = (at + b.len()).min(frame.len());
            frame.splice(at..end, b.iter().copied());
        }
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// Valid frames built with the crate's emitters, then damaged: bits
    /// flipped, bytes overwritten, truncated, extended, spliced, and
    /// sometimes their checksums fixed up again so that the damage reaches
    /// the layer above. Never a panic; the counters add up; the victim
    /// keeps working.
    #[test]
    fn mutated_frames_never_panic(
        kind in arb_kind(),
        from_peer in any::<bool>(),
        stranger in 10u8..250,
        ident in any::<u16>(),
        payload in prop::collection::vec(any::<u8>(), 0..400),
        victim_frame in any::<Index>(),
        mutations in prop::collection::vec(arb_mutation(), 1..5),
        fix_checksums in any::<bool>(),
        pristine_first in any::<bool>(),
    ) {
        let sender = if from_peer { PEER } else { stranger };
        let mut frames = valid_frames(kind, sender, ident, &payload);
        let mut net = Net::new(|_| {});
        if pristine_first {
            net.inject(frames.clone());
        }
        let i = victim_frame.index(frames.len());
        for m in &mutations {
            mutate(&mut frames[i], m);
        }
        if fix_checksums && frames[i].len() > 14 {
            fix_transport_checksum(&mut frames[i][14..]);
            fix_ipv4_checksum(&mut frames[i][14..]);
        }
        net.inject(frames);
        net.check_accounting();
        net.healthy();
    }
}

/// Where a single flipped bit goes, and what it must do.
#[derive(Debug, Clone, Copy)]
enum FlipTarget {
    /// The destination MAC of an echo request: not for us.
    EthDst,
    /// The EtherType: unknown.
    EtherType,
    /// The IPv4 header of an echo request: bad header checksum (or
    /// malformed, for the version/IHL and total-length bytes).
    IpHeader,
    /// The ICMP message of an echo request: bad ICMP checksum.
    Icmp,
    /// The UDP header or payload of a datagram to an open port.
    Udp,
    /// The payload of one fragment of a UDP datagram.
    FragmentedUdp,
    /// The payload of one fragment of an echo request.
    FragmentedIcmp,
    /// The IPv4 header of one fragment of a UDP datagram.
    FragmentHeader,
    /// The hardware/protocol type and length fields of an ARP request.
    ArpHeader,
}

fn arb_flip_target() -> impl Strategy<Value = FlipTarget> {
    prop_oneof![
        Just(FlipTarget::EthDst),
        Just(FlipTarget::EtherType),
        Just(FlipTarget::IpHeader),
        Just(FlipTarget::Icmp),
        Just(FlipTarget::Udp),
        Just(FlipTarget::FragmentedUdp),
        Just(FlipTarget::FragmentedIcmp),
        Just(FlipTarget::FragmentHeader),
        Just(FlipTarget::ArpHeader),
    ]
}

/// What a flipped UDP byte at `at` (in the UDP datagram) must do, given
/// the damaged datagram's checksum field.
fn expect_udp_flip(net: &mut Net, before: &Counters, at: usize, cks: u16, payload: &[u8]) {
    let c = net.counters();
    let bad = c.udp.rx_bad_checksum - before.udp.rx_bad_checksum;
    let malformed = c.udp.rx_malformed - before.udp.rx_malformed;
    let open = net.open;
    let got = net
        .victim()
        .udp()
        .recv_with(open, |d, a| (d.to_vec(), a))
        .ok();
    match at {
        // The length field: too long or short (malformed), or a shorter
        // datagram whose checksum fails.
        4 | 5 => match got {
            None => assert_eq!(bad + malformed, 1, "length byte {at}"),
            // A shorter length whose checksum happens to verify (1 in
            // 65,535): what is delivered is still a prefix of the data.
            Some((data, _)) => assert!(payload.starts_with(&data)),
        },
        // The checksum field: a damaged checksum fails, unless it became
        // zero ("no checksum", RFC 768), when the intact data is delivered.
        6 | 7 if cks == 0 => {
            assert_eq!(got.map(|g| g.0.to_vec()), Some(payload.to_vec()));
        }
        _ => {
            assert_eq!((bad, malformed), (1, 0), "UDP byte {at}");
            assert!(got.is_none(), "a damaged datagram was delivered");
        }
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// One flipped bit lands in exactly the counter of the layer whose
    /// check must catch it (a one-bit change always changes an Internet
    /// checksum), and nothing damaged is answered or delivered.
    #[test]
    fn single_bit_flips_are_counted_where_they_belong(
        target in arb_flip_target(),
        at in any::<Index>(),
        which in any::<Index>(),
        bit in 0u8..8,
        ident in any::<u16>(),
        payload in prop::collection::vec(any::<u8>(), 1..300),
    ) {
        let mut net = Net::new(|_| {});
        let kind = match target {
            FlipTarget::EthDst | FlipTarget::EtherType | FlipTarget::IpHeader
            | FlipTarget::Icmp => Kind::Echo,
            FlipTarget::Udp => Kind::UdpOpen,
            FlipTarget::FragmentedUdp | FlipTarget::FragmentHeader => Kind::UdpFragments,
            FlipTarget::FragmentedIcmp => Kind::EchoFragments,
            FlipTarget::ArpHeader => Kind::ArpRequest,
        };
        let pristine = valid_frames(kind, PEER, ident, &payload);

        // The pristine frames do what they should.
        let c0 = net.counters();
        net.inject(pristine.clone());
        let c1 = net.counters();
        match kind {
            Kind::Echo | Kind::EchoFragments => {
                prop_assert_eq!(c1.ip.icmp_tx_echo_replies, c0.ip.icmp_tx_echo_replies + 1);
            }
            Kind::UdpOpen | Kind::UdpFragments => {
                let open = net.open;
                prop_assert!(net.victim().udp().recv_with(open, |d, a| (d.to_vec(), a)).is_ok());
            }
            Kind::ArpRequest => {
                prop_assert_eq!(c1.link.arp_replies_sent, c0.link.arp_replies_sent + 1);
            }
            _ => unreachable!(),
        }

        // The same frames with one bit flipped.
        let mut frames = pristine;
        let f = which.index(frames.len());
        let pos = match target {
            FlipTarget::EthDst => at.index(6),
            FlipTarget::EtherType => 12 + at.index(2),
            FlipTarget::IpHeader | FlipTarget::FragmentHeader => 14 + at.index(20),
            FlipTarget::Icmp | FlipTarget::Udp | FlipTarget::FragmentedUdp
            | FlipTarget::FragmentedIcmp => 34 + at.index(frames[f].len() - 34),
            FlipTarget::ArpHeader => 14 + at.index(6),
        };
        frames[f][pos] ^= 1 << bit;
        let damaged = frames[f].clone();
        net.inject(frames);
        let c = net.counters();
        let ip_hdr = |c: &Counters| (c.ip.rx_bad_checksum, c.ip.rx_malformed);
        let no_reply = c.ip.icmp_tx_echo_replies == c1.ip.icmp_tx_echo_replies;
        match target {
            FlipTarget::EthDst => {
                prop_assert_eq!(c.link.rx_not_for_us, c1.link.rx_not_for_us + 1);
                prop_assert!(no_reply);
            }
            FlipTarget::EtherType => {
                prop_assert_eq!(c.link.rx_unknown_ethertype, c1.link.rx_unknown_ethertype + 1);
                prop_assert!(no_reply);
            }
            FlipTarget::IpHeader | FlipTarget::FragmentHeader => {
                let (b0, m0) = ip_hdr(&c1);
                let (b, m) = ip_hdr(&c);
                match pos - 14 {
                    // Version/IHL and total length may fail the length
                    // checks before the checksum is looked at.
                    0 | 2 | 3 => prop_assert_eq!((b - b0) + (m - m0), 1),
                    _ => prop_assert_eq!((b - b0, m - m0), (1, 0)),
                }
                prop_assert!(no_reply);
                prop_assert_eq!(c.ip.reassembled, c1.ip.reassembled);
                prop_assert_eq!(c.udp.rx_datagrams, c1.udp.rx_datagrams);
            }
            FlipTarget::Icmp | FlipTarget::FragmentedIcmp => {
                prop_assert_eq!(c.ip.icmp_rx_malformed, c1.ip.icmp_rx_malformed + 1);
                prop_assert!(no_reply);
            }
            FlipTarget::Udp | FlipTarget::FragmentedUdp => {
                // The byte's place in the UDP datagram.
                let frag_offset = usize::from(
                    u16::from_be_bytes([damaged[14 + 6], damaged[14 + 7]]) & 0x1fff,
                ) * 8;
                let at = frag_offset + pos - 34;
                // The UDP checksum field lives in the first fragment.
                let first = if f == 0 {
                    damaged.clone()
                } else {
                    valid_frames(kind, PEER, ident, &payload).swap_remove(0)
                };
                let cks = u16::from_be_bytes([first[34 + 6], first[34 + 7]]);
                let mut long = payload.clone();
                while kind == Kind::UdpFragments && long.len() < 1600 {
                    long.extend_from_slice(&[0x5a; 64]);
                }
                expect_udp_flip(&mut net, &c1, at, cks, &long);
            }
            FlipTarget::ArpHeader => {
                prop_assert_eq!(c.link.rx_arp_malformed, c1.link.rx_arp_malformed + 1);
                prop_assert_eq!(c.link.arp_replies_sent, c1.link.arp_replies_sent);
            }
        }
        net.check_accounting();
    }
}

// ---------------------------------------------------------------------------
// 3. Fragment flood
// ---------------------------------------------------------------------------

/// Feeds `count` distinct fragments that never complete (More Fragments
/// always set), with valid checksums and addressed to the victim, eight
/// every `step` (`late_step` for the last quarter), checking the reassembly
/// caps after every poll; then a 4,000-byte ping each way.
fn fragment_flood(
    config: ReassemblyConfig,
    count: usize,
    (step, late_step): (Duration, Duration),
    seed: u64,
) {
    let cap = config.clone();
    let mut net = Net::new(|c| c.ipv4.reassembly = config);
    let mut rng = Rng::new(seed);
    let mut peak = 0;
    let mut fed = 0;
    let start = net.sim.now();
    while fed < count {
        let first_half = fed < count / 2;
        let batch: Vec<Vec<u8>> = (0..8)
            .map(|_| {
                let (src, protocol, ident, offset, len) = if first_half || rng.chance(0.3) {
                    // 48 datagrams filled slot by slot with full-size
                    // pieces; a repeated slot carries the same bytes (an
                    // exact duplicate). They accumulate and press on the
                    // byte cap.
                    let key = rng.below(48) as u16;
                    let slot = rng.below(44) as usize;
                    (
                        addr(10 + (key % 12) as u8),
                        Protocol::Udp,
                        key,
                        slot * 1480,
                        1480,
                    )
                } else {
                    // Many datagrams of one or two pieces, from sources on
                    // the subnet (never the victim, the peer or broadcast)
                    // and off it: they press on the datagram cap.
                    let src = if rng.chance(0.7) {
                        addr(30 + rng.below(200) as u8)
                    } else {
                        Ipv4Addr::from(0x0a00_0000 | (rng.next_u32() & 0x00ff_ffff))
                    };
                    let protocol = [Protocol::Udp, Protocol::Icmp, Protocol::Unknown(99)]
                        [rng.below(3) as usize];
                    let offset = 8 * rng.below(8000) as usize;
                    let len = 8 * (1 + rng.below(185) as usize);
                    (
                        src,
                        protocol,
                        rng.next_u32() as u16,
                        offset.min(64_000),
                        len,
                    )
                };
                let fill = (usize::from(ident) + offset) as u8;
                let body = vec![fill; len];
                let p = ipv4(src, addr(VICTIM), protocol, ident, true, offset, &body);
                ip_frame(mac(PEER), &p)
            })
            .collect();
        fed += batch.len();
        net.tap().inbox.extend(batch);
        let now = net.sim.now() + if fed < count * 3 / 4 { step } else { late_step };
        net.sim.run_until(now);
        let r = net.counters().reassembly;
        peak = peak.max(r.bytes_buffered);
        assert!(
            r.bytes_buffered <= cap.max_bytes,
            "{} bytes buffered, cap {}",
            r.bytes_buffered,
            cap.max_bytes
        );
        let datagrams = net.victim().ipv4().reassembler().len();
        assert!(datagrams <= cap.max_datagrams);
    }
    net.drain();
    let c = net.counters();
    assert_eq!(c.ip.rx_fragments, count as u64);
    assert_eq!(c.ip.reassembled, 0);
    assert!(c.reassembly.evicted > 0, "the caps were never reached");
    assert!(c.reassembly.timed_out > 0 || cap.timeout > Duration::from_secs(10));
    assert!(
        peak > cap.max_bytes / 2,
        "peak {peak} never approached the byte cap {}",
        cap.max_bytes
    );
    eprintln!(
        "fragment flood: {count} fragments over {:?}, peak {peak} bytes buffered (cap {}), {:?}",
        net.sim.now() - start,
        cap.max_bytes,
        c.reassembly
    );
    net.check_accounting();

    // A fragmented ping still works, both ways.
    for (from, to) in [(net.peer, VICTIM), (net.victim, PEER)] {
        match net.ping(from, addr(to), 4000) {
            Some(PingEvent::Reply(r)) => assert_eq!(r.icmp_len, 4008),
            other => panic!("4000-byte ping to {} after the flood: {other:?}", addr(to)),
        }
    }
    net.healthy();
}

#[test]
fn fragment_flood_default_limits() {
    // 64 datagrams of at most 64 KiB can never exceed the default 4 MiB:
    // here the datagram cap binds, and the byte cap is only checked.
    let step = Duration::from_millis(2);
    fragment_flood(ReassemblyConfig::default(), 40_000, (step, step), 1);
}

#[test]
fn fragment_flood_tight_limits() {
    // A byte cap far below what the datagram and piece caps allow, under
    // about 1.5 MB/s of fragments; then fragments slow enough that each
    // batch times out (with ICMP Time Exceeded for first fragments).
    let config = ReassemblyConfig {
        timeout: Duration::from_millis(100),
        max_bytes: 48 * 1024,
        max_datagrams: 48,
        max_fragments_per_datagram: 4,
        ..ReassemblyConfig::default()
    };
    let steps = (Duration::from_millis(5), Duration::from_millis(150));
    fragment_flood(config, 40_000, steps, 2);
}

// ---------------------------------------------------------------------------
// 4. ARP flood
// ---------------------------------------------------------------------------

#[test]
fn arp_flood_keeps_the_cache_bounded_and_the_host_answering() {
    let capacity = 64;
    let mut net = Net::new(|c| {
        c.arp = ArpConfig {
            capacity,
            ..ArpConfig::default()
        };
    });
    let mut rng = Rng::new(3);
    let before = net.counters().link;
    let (mut requests, mut conflicts) = (0u64, 0u64);
    for _ in 0..200 {
        let batch: Vec<Vec<u8>> = (0..25)
            .map(|_| {
                let mut sha = [0u8; 6];
                sha.iter_mut().for_each(|b| *b = rng.next_u32() as u8);
                if rng.chance(0.9) {
                    sha[0] = (sha[0] & 0xfe) | 0x02; // unicast, locally administered
                }
                let spa = match rng.below(10) {
                    0 => Ipv4Addr::from(rng.next_u32()),
                    1 => addr(VICTIM), // claims our address: a conflict
                    _ => addr(10 + rng.below(240) as u8),
                };
                if spa == addr(VICTIM) {
                    conflicts += 1;
                } else {
                    requests += 1;
                }
                arp_frame(
                    Operation::Request,
                    (EthernetAddress(sha), spa),
                    (EthernetAddress::UNSPECIFIED, addr(VICTIM)),
                    EthernetAddress::BROADCAST,
                )
            })
            .collect();
        net.inject(batch);
        let len = net.victim().link().arp_cache().len();
        assert!(len <= capacity, "ARP cache holds {len} > {capacity}");
    }
    let after = net.counters().link;
    assert_eq!(after.arp_replies_sent - before.arp_replies_sent, requests);
    assert_eq!(after.arp_conflicts - before.arp_conflicts, conflicts);
    assert!(after.arp.evictions > 0);

    // A new neighbour still gets its answer.
    net.tap().record_tx = true;
    let newcomer = (mac(200), addr(200));
    net.inject([arp_frame(
        Operation::Request,
        newcomer,
        (EthernetAddress::UNSPECIFIED, addr(VICTIM)),
        EthernetAddress::BROADCAST,
    )]);
    let sent = std::mem::take(&mut net.tap().sent);
    let reply = sent
        .iter()
        .find(|(_, f)| f.len() >= 42 && f[12..14] == [0x08, 0x06])
        .expect("an ARP reply");
    let arp = ArpRepr::parse(&ArpPacket::new_checked(&reply.1[14..]).unwrap()).unwrap();
    assert_eq!(arp.operation, Operation::Reply);
    assert_eq!(
        (arp.source_hardware_addr, arp.source_protocol_addr),
        (mac(VICTIM), addr(VICTIM))
    );
    assert_eq!(
        (arp.target_hardware_addr, arp.target_protocol_addr),
        newcomer
    );
    assert_eq!(reply.1[0..6], mac(200).0);
    net.healthy();
}

/// Echo requests from many spoofed neighbours make the victim resolve each
/// of them: pending resolutions must respect the cache capacity too, even
/// when it is configured below the number of resolutions allowed at once.
#[test]
fn pending_resolutions_respect_the_cache_capacity() {
    let capacity = 16;
    let mut net = Net::new(|c| {
        c.arp = ArpConfig {
            capacity,
            max_pending: 64,
            ..ArpConfig::default()
        };
    });
    let echoes: Vec<Vec<u8>> = (10..60u8)
        .map(|n| {
            let m = icmp(&Icmpv4Repr::EchoRequest {
                ident: 1,
                seq_no: u16::from(n),
                data: b"who is there",
            });
            ip_frame(
                mac(n),
                &ipv4(addr(n), addr(VICTIM), Protocol::Icmp, 1, false, 0, &m),
            )
        })
        .collect();
    net.inject(echoes);
    let len = net.victim().link().arp_cache().len();
    assert!(len <= capacity, "ARP cache holds {len} > {capacity}");
    // Nobody answers; the resolutions fail and time out without harm.
    let later = net.sim.now() + Duration::from_secs(10);
    net.sim.run_until(later);
    net.healthy();
}

// ---------------------------------------------------------------------------
// 5. Overlapping and duplicate fragments
// ---------------------------------------------------------------------------

/// A fragment of the test datagram: where, whether More Fragments, and
/// whether it carries the corrupted byte.
#[derive(Debug, Clone)]
struct Piece {
    offset: usize,
    data: Vec<u8>,
    more: bool,
    corrupt: bool,
}

/// Whether the pieces can tile `0..len` (each next piece starting where
/// the last ended, the last one final) using at least one corrupt piece;
/// and whether they can tile it at all.
fn tilings(pieces: &[Piece], len: usize) -> (bool, bool) {
    // reach[o] = (reachable cleanly, reachable through a corrupt piece)
    let mut reach = vec![(false, false); len + 1];
    reach[0].0 = true;
    let mut offsets: Vec<usize> = pieces.iter().map(|p| p.offset).collect();
    offsets.sort_unstable();
    offsets.dedup();
    for o in offsets {
        let (clean, dirty) = reach[o];
        if !clean && !dirty {
            continue;
        }
        for p in pieces.iter().filter(|p| p.offset == o) {
            let end = p.offset + p.data.len();
            if p.more == (end == len) {
                continue; // only the final piece may end the datagram
            }
            let r = &mut reach[end];
            r.0 |= clean && !p.corrupt;
            r.1 |= dirty || (clean && p.corrupt);
        }
    }
    (reach[len].1, reach[len].0 || reach[len].1)
}

proptest! {
    #![proptest_config(config(1024))]

    /// A UDP datagram (without a UDP checksum, so the reassembler alone
    /// guards its integrity) cut into fragments, plus extra fragments that
    /// duplicate or overlap them — some carrying one corrupted byte — in
    /// random order. Every datagram delivered must be exactly right, unless
    /// the fragments received can legitimately tile a corrupted datagram
    /// without any overlap (then that one is allowed too: it is what a
    /// sender could have sent). If the extras are only exact duplicates,
    /// the datagram must be delivered.
    #[test]
    fn overlapping_fragments_deliver_exactly_or_nothing(
        payload in prop::collection::vec(any::<u8>(), 16..600),
        cuts in prop::collection::vec(1usize..8, 1..8),
        // (where, length in 8-byte units, 0: an exact duplicate of a piece
        // of the tiling, 1: any range with the right data, 2: any range
        // carrying the corrupted byte if it covers it)
        extras in prop::collection::vec((any::<Index>(), 1usize..10, 0u8..3), 0..6),
        corrupt_at in any::<Index>(),
        xor in 1u8..=255,
        ident in any::<u16>(),
        order_seed in any::<u64>(),
    ) {
        let victim = addr(VICTIM);
        let from = SocketAddrV4::new(addr(PEER), PEER_PORT);
        let d = udp(from, SocketAddrV4::new(victim, OPEN_PORT), &payload, false);
        let len = d.len();
        // The corrupted byte is in the payload, past the UDP header.
        let p = 8 + corrupt_at.index(payload.len());

        let mut pieces = Vec::new();
        let mut offset = 0;
        for units in cuts.iter().copied().chain(core::iter::repeat(8)) {
            if offset >= len {
                break;
            }
            let end = (offset + units * 8).min(len);
            pieces.push(Piece {
                offset,
                data: d[offset..end].to_vec(),
                more: end < len,
                corrupt: false,
            });
            offset = end;
        }
        let tiling = pieces.len();
        let mut only_duplicates = true;
        for &(start, units, mode) in &extras {
            if mode > 0 {
                // An arbitrary aligned range.
                let offset = start.index(len.div_ceil(8)) * 8;
                let end = (offset + units * 8).min(len);
                let mut data = d[offset..end].to_vec();
                let hits = mode == 2 && (offset..end).contains(&p);
                if hits {
                    data[p - offset] ^= xor;
                }
                only_duplicates &= !hits
                    && pieces[..tiling]
                        .iter()
                        .any(|q| q.offset == offset && q.data.len() == data.len());
                pieces.push(Piece { offset, data, more: end < len, corrupt: hits });
            } else {
                // An exact duplicate of a piece of the tiling.
                let q = pieces[start.index(tiling)].clone();
                pieces.push(q);
            }
        }
        let (corrupt_tiling, _) = tilings(&pieces, len);

        let mut rng = Rng::new(order_seed);
        for i in (1..pieces.len()).rev() {
            pieces.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let frames: Vec<Vec<u8>> = pieces
            .iter()
            .map(|q| {
                let ip = ipv4(addr(PEER), victim, Protocol::Udp, ident, q.more, q.offset, &q.data);
                ip_frame(mac(PEER), &ip)
            })
            .collect();

        let mut net = Net::new(|_| {});
        net.inject(frames);
        let mut corrupted = payload.clone();
        corrupted[p - 8] ^= xor;
        let mut delivered = 0;
        let open = net.open;
        while let Ok((data, sender)) = net.victim().udp().recv_with(open, |d, a| (d.to_vec(), a)) {
            prop_assert_eq!(sender, from);
            if data[..] != payload[..] {
                prop_assert!(
                    corrupt_tiling && data[..] == corrupted[..],
                    "a corrupt payload was delivered that no overlap-free set of the \
                     fragments received could form"
                );
            }
            delivered += 1;
        }
        if only_duplicates {
            prop_assert!(delivered >= 1, "exact duplicates prevented delivery");
        }
        net.check_accounting();
    }
}

#[test]
fn the_tiling_oracle_sees_overlap_free_corruption() {
    let piece = |offset: usize, len: usize, more: bool, corrupt: bool| Piece {
        offset,
        data: vec![0; len],
        more,
        corrupt,
    };
    // 0..16 and 16..24: one clean tiling.
    let clean = [piece(0, 16, true, false), piece(16, 8, false, false)];
    assert_eq!(tilings(&clean, 24), (false, true));
    // A corrupt 8..24 cannot tile without an 0..8 piece ...
    let mut v = clean.to_vec();
    v.push(piece(8, 16, false, true));
    assert_eq!(tilings(&v, 24), (false, true));
    // ... which makes it possible.
    v.push(piece(0, 8, true, false));
    assert_eq!(tilings(&v, 24), (true, true));
}

// ---------------------------------------------------------------------------
// 6. ICMP errors quoting garbage
// ---------------------------------------------------------------------------

/// The invoking datagram an ICMP error quotes, as the test builds it.
fn arb_quote() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Garbage.
        prop::collection::vec(any::<u8>(), 0..80),
        // A plausible IPv4 header with random fields and the start of a
        // transport header, clipped anywhere.
        (
            prop_oneof![4 => Just(0x45u8), 1 => any::<u8>()],
            prop::option::of(any::<u16>()),
            prop_oneof![3 => Just(0u16), 1 => any::<u16>()],
            prop_oneof![Just(17u8), Just(1), Just(6), any::<u8>()],
            prop_oneof![3 => Just(addr(VICTIM)), 1 => arb_addr()],
            prop_oneof![Just(addr(PEER)), arb_addr()],
            // (0x0800: an ICMP echo request's type and code, for quoted ICMP.)
            prop_oneof![
                Just(OPEN_PORT),
                Just(53u16),
                Just(40_000),
                Just(0x0800),
                any::<u16>()
            ],
            prop_oneof![Just(PEER_PORT), any::<u16>()],
            prop::collection::vec(any::<u8>(), 0..48),
            prop::option::of(any::<Index>()),
        )
            .prop_map(
                |(ver_ihl, total, frag, proto, src, dst, sport, dport, rest, clip)| {
                    let mut q = vec![0u8; 20];
                    q[0] = ver_ihl;
                    q[6..8].copy_from_slice(&frag.to_be_bytes());
                    q[8] = 64;
                    q[9] = proto;
                    q[12..16].copy_from_slice(&src.octets());
                    q[16..20].copy_from_slice(&dst.octets());
                    let hlen = usize::from(ver_ihl & 0x0f) * 4;
                    q.resize(hlen.max(20), 0);
                    q.extend_from_slice(&sport.to_be_bytes());
                    q.extend_from_slice(&dport.to_be_bytes());
                    q.extend_from_slice(&rest);
                    let total = total.unwrap_or(q.len() as u16);
                    q[2..4].copy_from_slice(&total.to_be_bytes());
                    fix_ipv4_checksum(&mut q);
                    if let Some(c) = clip {
                        q.truncate(c.index(q.len() + 1));
                    }
                    q
                },
            ),
    ]
}

/// The quoted datagram's protocol, addresses and first transport bytes,
/// read by the rules of RFC 792 as the test understands them: a version-4
/// header, all there, of a first fragment, followed by at least 8 bytes
/// of the datagram (clipped at its total length).
fn read_quote(q: &[u8]) -> Option<(u8, Ipv4Addr, Ipv4Addr, [u8; 8])> {
    if q.len() < 20 || q[0] >> 4 != 4 {
        return None;
    }
    let hlen = usize::from(q[0] & 0x0f) * 4;
    let frag = u16::from_be_bytes([q[6], q[7]]) & 0x1fff;
    let end = usize::from(u16::from_be_bytes([q[2], q[3]])).min(q.len());
    if hlen < 20 || frag != 0 || end < hlen + 8 {
        return None;
    }
    let a = |i: usize| Ipv4Addr::new(q[i], q[i + 1], q[i + 2], q[i + 3]);
    let mut t = [0u8; 8];
    t.copy_from_slice(&q[hlen..hlen + 8]);
    Some((q[9], a(12), a(16), t))
}

/// The victim's sockets in the ICMP test.
struct IcmpVictim {
    net: Net,
    /// (handle, local port, connected peer)
    udp: Vec<(UdpHandle, u16, Option<SocketAddrV4>)>,
    ping: PingHandle,
    ping_ident: u16,
}

impl IcmpVictim {
    fn new() -> IcmpVictim {
        let mut net = Net::new(|_| {});
        let open = net.open;
        let s53 = net.bind(SocketAddrV4::new(addr(VICTIM), 53));
        let peer = SocketAddrV4::new(addr(PEER), PEER_PORT);
        net.victim().udp().connect(s53, peer).unwrap();
        let s40k = net.bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 40_000));
        let ping = net.victim().ping().open(Duration::from_secs(60)).unwrap();
        let ping_ident = net.victim().ping().ident(ping).unwrap();
        IcmpVictim {
            net,
            udp: vec![
                (open, OPEN_PORT, None),
                (s53, 53, Some(peer)),
                (s40k, 40_000, None),
            ],
            ping,
            ping_ident,
        }
    }

    /// Sends the ICMP message `msg` from `reporter` and checks which socket
    /// heard of it.
    fn check(&mut self, reporter: Ipv4Addr, msg_type: u8, code: u8, mtu: u16, quote: &[u8]) {
        let mut m = vec![msg_type, code, 0, 0, 0, 0];
        m.extend_from_slice(&mtu.to_be_bytes());
        m.extend_from_slice(quote);
        let c = checksum::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        let ip = ipv4(reporter, addr(VICTIM), Protocol::Icmp, 1, false, 0, &m);
        self.net.inject([ip_frame(mac(PEER), &ip)]);

        let kind = match msg_type {
            3 if code == 4 => Some(IcmpErrorKind::FragmentationNeeded { mtu }),
            3 => Some(IcmpErrorKind::Unreachable(DstUnreachable::from(code))),
            11 => Some(IcmpErrorKind::TimeExceeded(TimeExceeded::from(code))),
            _ => None,
        };
        let quoted = kind.and(read_quote(quote));
        let ours = quoted.filter(|q| q.1 == addr(VICTIM));
        for &(h, port, connected) in &self.udp {
            let got = self.net.victim().udp().take_error(h).unwrap();
            let want = ours.and_then(|(proto, src, dst, t)| {
                let sport = u16::from_be_bytes([t[0], t[1]]);
                let dport = u16::from_be_bytes([t[2], t[3]]);
                let remote = SocketAddrV4::new(dst, dport);
                (proto == 17 && sport == port && connected.is_none_or(|p| p == remote)).then(|| {
                    IcmpError {
                        reporter,
                        kind: kind.unwrap(),
                        protocol: Protocol::Udp,
                        local_addr: src,
                        local_port: sport,
                        remote_addr: dst,
                        remote_port: dport,
                        transport_header: t
                            .get(..8)
                            .and_then(|h| h.try_into().ok())
                            .unwrap_or_default(),
                    }
                })
            });
            assert_eq!(
                got, want,
                "socket on port {port} (connected to {connected:?})"
            );
        }
        let mut events = Vec::new();
        while let Ok(e) = self.net.victim().ping().recv(self.ping) {
            events.push(e);
        }
        let want_ping = ours
            .filter(|(proto, _, _, t)| {
                // An echo request (type 8, code 0) with our identifier.
                *proto == 1
                    && t[0..2] == [8, 0]
                    && u16::from_be_bytes([t[4], t[5]]) == self.ping_ident
            })
            .map(|_| PingEvent::Error {
                reporter,
                kind: kind.unwrap(),
            });
        assert_eq!(events, want_ping.into_iter().collect::<Vec<_>>());
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// ICMP errors quoting garbage, half-plausible or plausible datagrams
    /// never panic, and an error reaches a socket exactly when it quotes a
    /// datagram that socket could have sent: ours, UDP, from its port, and
    /// to its peer if it is connected (the same rule as receiving).
    #[test]
    fn icmp_errors_reach_only_the_socket_they_concern(
        messages in prop::collection::vec((
            prop_oneof![Just(addr(PEER)), any::<u32>().prop_map(|a| {
                Ipv4Addr::from(0xc633_6400 | (a & 0xff)) // 198.51.100.0/24
            })],
            prop_oneof![
                3 => (Just(3u8), prop_oneof![0u8..16, any::<u8>()]),
                1 => (Just(11u8), any::<u8>()),
                1 => (any::<u8>(), any::<u8>()),
            ],
            any::<u16>(),
            arb_quote(),
            any::<bool>(),
            any::<bool>(),
        ), 1..16),
    ) {
        let mut v = IcmpVictim::new();
        for (reporter, (msg_type, code), mtu, quote, ping_ident, echo) in &messages {
            let mut quote = quote.clone();
            if *ping_ident && quote.len() >= 20 && quote[9] == 1 {
                // Quote our ping socket's identifier (and, with `echo`, an
                // echo request's type and code), so that the match is
                // exercised and not only the mismatch.
                let at = usize::from(quote[0] & 0x0f) * 4;
                if quote.len() >= at + 6 {
                    quote[at + 4..at + 6].copy_from_slice(&v.ping_ident.to_be_bytes());
                    if *echo {
                        quote[at..at + 2].copy_from_slice(&[8, 0]);
                    }
                }
            }
            v.check(*reporter, *msg_type, *code, *mtu, &quote);
        }
        v.net.check_accounting();
        v.net.healthy();
    }
}

/// Regression: an ICMP error about a datagram to some other host used to be
/// handed to a UDP socket connected to its peer, because errors were
/// matched on the local port alone. A connected socket only receives from
/// its peer, so only errors about datagrams to its peer concern it (as on
/// Linux, which looks the socket up by the quoted 4-tuple).
#[test]
fn icmp_error_about_another_peer_does_not_reach_a_connected_socket() {
    let mut v = IcmpVictim::new();
    let quote = |dst: Ipv4Addr, dport: u16| {
        let d = udp(
            SocketAddrV4::new(addr(VICTIM), 53),
            SocketAddrV4::new(dst, dport),
            b"query",
            true,
        );
        ipv4(addr(VICTIM), dst, Protocol::Udp, 9, false, 0, &d)
    };
    // About a datagram to the connected peer: delivered.
    v.check(addr(PEER), 3, 3, 0, &quote(addr(PEER), PEER_PORT));
    // About one to elsewhere, or to the peer's other port: not.
    v.check(addr(PEER), 3, 3, 0, &quote(addr(99), PEER_PORT));
    v.check(addr(PEER), 3, 3, 0, &quote(addr(PEER), 53));
}

/// Regression: an ICMP error whose quote cannot be read was counted twice,
/// as delivered and as malformed.
#[test]
fn icmp_error_with_an_unreadable_quote_is_counted_once_as_malformed() {
    let mut v = IcmpVictim::new();
    let before = v.net.counters().ip;
    for quote in [&[][..], &[0x45; 19][..], &[0x46, 0, 0, 28][..]] {
        v.check(addr(PEER), 3, 3, 0, quote);
    }
    let after = v.net.counters().ip;
    assert_eq!(after.icmp_rx_malformed - before.icmp_rx_malformed, 3);
    assert_eq!(after.rx_delivered, before.rx_delivered);
    v.net.check_accounting();
}

/// Regression: an ICMP error quoting any ICMP message of ours, not only an
/// echo request, used to reach the ping socket whose identifier sat at the
/// echo identifier's place in it.
#[test]
fn icmp_error_about_a_non_echo_message_does_not_reach_a_ping_socket() {
    let mut v = IcmpVictim::new();
    let ident = v.ping_ident;
    let quote = |msg_type: u8| {
        let mut m = vec![msg_type, 0, 0, 0];
        m.extend_from_slice(&ident.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        ipv4(addr(VICTIM), addr(PEER), Protocol::Icmp, 9, false, 0, &m)
    };
    // About our echo request: the ping socket hears of it.
    v.check(addr(PEER), 3, 1, 0, &quote(8));
    // About an echo reply or an error we sent: no one does.
    v.check(addr(PEER), 3, 1, 0, &quote(0));
    v.check(addr(PEER), 11, 0, 0, &quote(3));
}

// ---------------------------------------------------------------------------
// 7. Closed-port storm: ICMP errors are rate limited
// ---------------------------------------------------------------------------

/// The times at which the victim sent ICMP port unreachables to the peer.
fn port_unreachables_sent(net: &Net) -> Vec<Instant> {
    net.tap()
        .sent
        .iter()
        .filter(|(_, f)| {
            f.len() >= 14 + 20 + 8
                && f[12..14] == [0x08, 0x00]
                && f[14 + 9] == 1
                && f[14 + 16..14 + 20] == addr(PEER).octets()
                && f[14 + 20..14 + 22] == [3, 3]
        })
        .map(|(t, _)| *t)
        .collect()
}

/// How many of the events at `times` an ideal token bucket (`burst`
/// tokens, one more every `interval_us`, full at the start) lets through:
/// its level, kept in microseconds of refill, grows continuously up to
/// `burst` tokens, and each event that finds a whole token takes it.
fn ideal_bucket(burst: u32, interval_us: u64, times: &[Instant]) -> u64 {
    let cap = u64::from(burst) * interval_us;
    let mut level = cap;
    let mut prev = times.first().copied().unwrap_or(Instant::ZERO);
    let mut granted = 0;
    for &t in times {
        level = (level + (t - prev).as_micros() as u64).min(cap);
        prev = t;
        if level >= interval_us {
            level -= interval_us;
            granted += 1;
        }
    }
    granted
}

proptest! {
    #![proptest_config(config(64))]

    /// Datagrams to a closed port at a high rate: the port unreachables
    /// sent never exceed `burst + rate × elapsed` over any interval, and
    /// the limiter grants what an ideal token bucket would (it is not
    /// stingier than its rate either).
    #[test]
    fn port_unreachables_are_rate_limited(
        (burst, rate) in prop_oneof![
            Just((50u32, 1000u32)),
            Just((5, 100)),
            Just((1, 10)),
            Just((20, 1000)),
        ],
        count in 50usize..400,
        // Gaps between datagrams in 1/256ths of the limiter's refill
        // interval: mostly faster than the rate, sometimes slower.
        gaps in prop::collection::vec(prop_oneof![4 => 0u32..=256, 1 => 0u32..=1024], 1..64),
    ) {
        let mut net = Net::new(|c| {
            c.ipv4.icmp_error_burst = burst;
            c.ipv4.icmp_errors_per_second = rate;
        });
        net.tap().record_tx = true;
        let interval_us = 1_000_000 / u64::from(rate);
        let before = net.counters().ip;
        let from = SocketAddrV4::new(addr(PEER), PEER_PORT);
        let to = SocketAddrV4::new(addr(VICTIM), CLOSED_PORT);
        let mut arrivals = Vec::new();
        for i in 0..count {
            let gap = interval_us * u64::from(gaps[i % gaps.len()]) / 256;
            let t = net.sim.now() + Duration::from_micros(gap);
            net.sim.run_until(t);
            let d = udp(from, to, &(i as u32).to_be_bytes(), true);
            let ip = ipv4(addr(PEER), addr(VICTIM), Protocol::Udp, i as u16, false, 0, &d);
            net.inject([ip_frame(mac(PEER), &ip)]);
            arrivals.push(net.sim.now());
        }
        let after = net.counters().ip;
        let sent = port_unreachables_sent(&net);
        let tx = after.icmp_tx_errors - before.icmp_tx_errors;
        let limited = after.icmp_rate_limited - before.icmp_rate_limited;
        prop_assert_eq!(sent.len() as u64, tx);
        prop_assert_eq!(tx + limited, count as u64);

        // The upper bound, over every interval between two errors sent.
        let allowance = |from: Instant, to: Instant| {
            u64::from(burst) + (to - from).as_micros() as u64 / interval_us
        };
        for i in 0..sent.len() {
            for j in i..sent.len() {
                let n = (j - i + 1) as u64;
                prop_assert!(
                    n <= allowance(sent[i], sent[j]),
                    "{n} errors between {} and {}", sent[i], sent[j]
                );
            }
        }
        // Not stingier than its rate either (within one token, for
        // rounding at interval boundaries).
        let ideal = ideal_bucket(burst, interval_us, &arrivals);
        prop_assert!(
            tx.abs_diff(ideal) <= 1,
            "{tx} errors for {count} datagrams over {:?}; an ideal bucket sends {ideal}",
            arrivals[arrivals.len() - 1] - arrivals[0]
        );
        net.check_accounting();
    }
}
