//! A whole host: an [`Interface`] on a fake device, fed fuzzed frames.
//!
//! Before the first frame the host has a UDP socket on port 53, a TCP
//! listener on port 80, a TCP connection out to 192.0.2.2:8080 (whose
//! MAC is a static ARP entry, so its SYN leaves at once) and a ping in
//! flight to the same host.
//!
//! Input: one configuration byte (checksum offload, MTU, receive budget,
//! segmentation offload),
//! then records `[op][time][length: 2 bytes][frame]`. Each frame is
//! received and the interface polled until it has nothing due; then the
//! clock advances by [`time_step_millis`]`(time)`. The bits of `op`:
//! - 0x01: recompute the frame's checksums (after the rewrites below);
//! - 0x02: address a TCP segment to the outgoing connection (addresses
//!   and ports rewritten), so that fuzzed segments reach it;
//! - 0x04: read the TCP sequence and acknowledgment numbers as offsets
//!   (signed, 16 bits) from what the host last sent on that connection;
//! - 0x08: accept pending connections, read everything from every
//!   connection and echo some back;
//! - 0x10: read the UDP socket and echo each datagram;
//! - 0x20: send on the outgoing connection;
//! - 0x40: close the oldest accepted connection;
//! - 0x80: send another ping.
//!
//! Checked, beyond "no panic": every frame the host sends parses
//! (Ethernet, IPv4 with its checksum, and TCP, UDP and ICMP with theirs
//! unless offloaded) and fits the MTU, or is a TCP super-segment for a
//! device that segments whose every segment does; and `poll_at` does not stay "now"
//! once the host has been polled with nothing new arriving.
#![no_main]

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

use libfuzzer_sys::fuzz_target;
use netstrata::buf::PacketBuf;
use netstrata::internet::icmpv4::{Icmpv4Packet, Icmpv4Repr};
use netstrata::internet::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};
use netstrata::link::arp::{ArpPacket, ArpRepr};
use netstrata::link::ethernet::{self, EtherType, EthernetAddress, EthernetRepr, Frame};
use netstrata::link::vnet::segment;
use netstrata::link::{ChecksumOffload, Device, DeviceCaps, DeviceError, Medium};
use netstrata::time::{Duration, Instant};
use netstrata::transport::tcp::{ListenerHandle, SeqNumber, TcpHandle, TcpPacket, TcpRepr};
use netstrata::transport::udp::{UdpHandle, UdpPacket, UdpRepr};
use netstrata::{Interface, InterfaceConfig};
use netstrata_fuzz::{Input, fix_checksums, time_step_millis};

const OUR_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
const PEER_PORT: u16 = 8080;
const MTUS: [usize; 4] = [1500, 576, 9000, 68];
/// Most polls in a row at one instant before `poll_at` must point at the
/// future.
const MAX_POLLS: usize = 16;

fn our_mac() -> EthernetAddress {
    EthernetAddress::local(1)
}

fn peer_mac() -> EthernetAddress {
    EthernetAddress::local(2)
}

/// What the host last sent on one TCP connection, keyed by (our port,
/// peer address, peer port).
#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    /// Its highest sequence number sent, plus one.
    snd_max: SeqNumber,
    /// Its last acknowledgment (RCV.NXT).
    ack: SeqNumber,
}

/// A device whose received frames the harness queues and whose
/// transmitted frames are checked and then dropped.
struct FuzzDevice {
    caps: DeviceCaps,
    rx: VecDeque<PacketBuf>,
    sent: HashMap<(u16, Ipv4Addr, u16), Sent>,
    /// The outgoing connection's local port, from its SYN.
    client_port: Option<u16>,
}

impl Device for FuzzDevice {
    fn capabilities(&self) -> DeviceCaps {
        self.caps
    }

    fn receive(&mut self, _now: Instant) -> Option<PacketBuf> {
        self.rx.pop_front()
    }

    /// Checks the frame; a TCP super-segment (to a device that
    /// segments), as each of the segments it stands for.
    fn transmit(&mut self, _now: Instant, frame: PacketBuf) -> Result<(), DeviceError> {
        let size = frame.segment_size();
        if size == 0 || frame.len() <= ethernet::HEADER_LEN + self.caps.mtu {
            self.check_sent(frame.data());
            return Ok(());
        }
        assert!(
            frame.len() - ethernet::HEADER_LEN <= self.caps.segmentation,
            "a {}-byte super-segment to a device that takes {}",
            frame.len(),
            self.caps.segmentation
        );
        let mut segments = Vec::new();
        segment(frame.data(), Medium::Ethernet, size, |h, p| {
            segments.push([h, p].concat());
        });
        assert!(segments.len() >= 2, "a super-segment that is none");
        for s in &segments {
            self.check_sent(s);
        }
        Ok(())
    }
}

impl FuzzDevice {
    /// Checks a frame the host sent and records its TCP numbers.
    fn check_sent(&mut self, data: &[u8]) {
        assert!(
            data.len() <= ethernet::HEADER_LEN + self.caps.mtu,
            "a {}-byte frame on a {}-byte MTU",
            data.len(),
            self.caps.mtu
        );
        let frame = Frame::new_checked(data).expect("sent frame has a whole header");
        let eth = EthernetRepr::parse(&frame).expect("sent frame parses");
        assert_eq!(eth.src_addr, our_mac(), "sent from another MAC");
        match eth.ethertype {
            EtherType::Arp => {
                let arp = ArpPacket::new_checked(frame.payload()).expect("sent ARP is whole");
                ArpRepr::parse(&arp).expect("sent ARP parses");
            }
            EtherType::Ipv4 => self.check_sent_ipv4(frame.payload()),
            other => panic!("sent a frame of type {other:?}"),
        }
    }

    fn check_sent_ipv4(&mut self, data: &[u8]) {
        let verify = !self.caps.checksum.tx;
        let packet = Ipv4Packet::new_checked(data).expect("sent IPv4 is whole");
        let ip = Ipv4Repr::parse(&packet, verify).expect("sent IPv4 parses");
        assert_eq!(ip.src_addr, OUR_IP, "sent from another address");
        if ip.is_fragment() {
            return;
        }
        let payload = &packet.payload()[..ip.payload_len];
        let (src, dst) = (ip.src_addr, ip.dst_addr);
        match ip.protocol {
            Protocol::Tcp => {
                let tcp = TcpPacket::new_checked(payload).expect("sent TCP is whole");
                let repr = TcpRepr::parse(&tcp, src, dst, verify).expect("sent TCP parses");
                self.record_tcp(&repr, dst);
            }
            Protocol::Udp => {
                let udp = UdpPacket::new_checked(payload).expect("sent UDP is whole");
                UdpRepr::parse(&udp, src, dst, verify).expect("sent UDP parses");
            }
            Protocol::Icmp => {
                let icmp = Icmpv4Packet::new_checked(payload).expect("sent ICMP is whole");
                Icmpv4Repr::parse(&icmp, verify).expect("sent ICMP parses");
            }
            other => panic!("sent a datagram of protocol {other}"),
        }
    }

    fn record_tcp(&mut self, repr: &TcpRepr, dst: Ipv4Addr) {
        if dst == PEER_IP
            && repr.dst_port == PEER_PORT
            && repr
                .flags
                .contains(netstrata::transport::tcp::TcpFlags::SYN)
            && repr.ack_number.is_none()
        {
            self.client_port = Some(repr.src_port);
        }
        let sent = self
            .sent
            .entry((repr.src_port, dst, repr.dst_port))
            .or_insert(Sent {
                snd_max: repr.seq_number,
                ack: SeqNumber(0),
            });
        let end = repr.seq_number.wrapping_add(repr.segment_len() as u32);
        if end - sent.snd_max > 0 {
            sent.snd_max = end;
        }
        if let Some(ack) = repr.ack_number {
            sent.ack = ack;
        }
    }

    /// Applies the rewrites `op` asks for to a fuzzed frame.
    fn rewrite(&self, op: u8, frame: &mut [u8]) {
        if op & 0x06 != 0 {
            self.rewrite_tcp(op, frame);
        }
        if op & 0x01 != 0 {
            fix_checksums(frame);
        }
    }

    fn rewrite_tcp(&self, op: u8, frame: &mut [u8]) {
        let Ok(mut eth) = Frame::new_checked(&mut *frame) else {
            return;
        };
        if op & 0x02 != 0 {
            eth.set_dst_addr(our_mac());
            eth.set_src_addr(peer_mac());
            eth.set_ethertype(EtherType::Ipv4);
        }
        let Ok(mut ip) = Ipv4Packet::new_checked(eth.payload_mut()) else {
            return;
        };
        if op & 0x02 != 0 {
            ip.set_src_addr(PEER_IP);
            ip.set_dst_addr(OUR_IP);
            ip.set_protocol(Protocol::Tcp);
        }
        let src = ip.src_addr();
        let (hlen, total) = (ip.header_len(), usize::from(ip.total_len()));
        let ip_bytes = ip.into_inner();
        let Ok(mut tcp) = TcpPacket::new_checked(&mut ip_bytes[hlen..total]) else {
            return;
        };
        if op & 0x02 != 0 {
            tcp.set_src_port(PEER_PORT);
            if let Some(port) = self.client_port {
                tcp.set_dst_port(port);
            }
        }
        if op & 0x04 != 0 {
            let key = (tcp.dst_port(), src, tcp.src_port());
            if let Some(sent) = self.sent.get(&key) {
                // The low 16 bits of each number, read as a signed offset.
                let seq = tcp.seq_number().0 as u16 as i16 as i32 as u32;
                let ack = tcp.ack_number().0 as u16 as i16 as i32 as u32;
                tcp.set_seq_number(sent.ack.wrapping_add(seq));
                tcp.set_ack_number(sent.snd_max.wrapping_add(ack));
            }
        }
    }
}

/// The sockets the host starts with, and those it accepts.
struct Sockets {
    udp: UdpHandle,
    listener: ListenerHandle,
    client: Option<TcpHandle>,
    accepted: VecDeque<TcpHandle>,
    ping: Option<netstrata::internet::ping::PingHandle>,
    ping_seq: u16,
}

fn setup(iface: &mut Interface) -> Sockets {
    iface
        .link()
        .arp_cache_mut()
        .insert_static(PEER_IP, peer_mac());
    let any = |port| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
    let udp = iface.udp().bind(any(53)).expect("bind UDP 53");
    let listener = iface.tcp().listen(any(80), 4).expect("listen on 80");
    let client = iface
        .tcp()
        .connect(SocketAddrV4::new(PEER_IP, PEER_PORT))
        .ok();
    let ping = iface.ping().open(Duration::from_secs(5)).ok();
    if let Some(h) = ping {
        let _ = iface.ping().send(h, PEER_IP, 0, 56);
    }
    Sockets {
        udp,
        listener,
        client,
        accepted: VecDeque::new(),
        ping,
        ping_seq: 1,
    }
}

/// What the application does after a frame, as `op` says.
fn application(op: u8, iface: &mut Interface, s: &mut Sockets) {
    let mut buf = [0u8; 2048];
    if op & 0x08 != 0 {
        while let Ok(h) = iface.tcp().accept(s.listener) {
            s.accepted.push_back(h);
        }
        for &h in s.accepted.iter().chain(s.client.iter()) {
            while let Ok(n) = iface.tcp().recv(h, &mut buf) {
                if n == 0 {
                    break;
                }
                let _ = iface.tcp().send(h, &buf[..n.min(512)]);
            }
        }
    }
    if op & 0x10 != 0 {
        while let Ok((n, from)) = iface.udp().recv_from(s.udp, &mut buf) {
            let _ = iface.udp().send_to(s.udp, &buf[..n], from);
        }
        let _ = iface.udp().take_error(s.udp);
    }
    if op & 0x20 != 0
        && let Some(h) = s.client
    {
        let _ = iface.tcp().send(h, &[0x5a; 3000]);
    }
    if op & 0x40 != 0
        && let Some(h) = s.accepted.pop_front()
    {
        let _ = iface.tcp().close(h);
    }
    if op & 0x80 != 0
        && let Some(h) = s.ping
    {
        let _ = iface
            .ping()
            .send(h, PEER_IP, s.ping_seq, usize::from(op & 0x3f) * 16);
        s.ping_seq = s.ping_seq.wrapping_add(1);
        while iface.ping().recv(h).is_ok() {}
    }
}

/// Polls until nothing is due now; fails if that never happens.
fn settle(iface: &mut Interface, dev: &mut FuzzDevice, now: Instant) {
    for _ in 0..MAX_POLLS {
        iface.poll(now, dev);
        match iface.poll_at(now) {
            Some(t) if t <= now => continue,
            _ => return,
        }
    }
    panic!("poll_at still says now after {MAX_POLLS} polls at {now}");
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let config = input.u8();
    let caps = DeviceCaps {
        mtu: MTUS[usize::from(config >> 2) & 3],
        checksum: ChecksumOffload {
            rx: config & 1 != 0,
            tx: config & 2 != 0,
        },
        segmentation: if config & 0x20 != 0 {
            netstrata::link::MAX_SUPER_SEGMENT
        } else {
            0
        },
        ..DeviceCaps::default()
    };
    let mut cfg =
        InterfaceConfig::new(our_mac(), "192.0.2.1/24".parse().unwrap()).with_gateway(GATEWAY);
    cfg.rx_budget = if config & 0x10 != 0 { 1 } else { 64 };
    let mut iface = Interface::new(cfg, caps);
    let mut dev = FuzzDevice {
        caps,
        rx: VecDeque::new(),
        sent: HashMap::new(),
        client_port: None,
    };
    let mut now = Instant::from_secs(1);
    let mut sockets = setup(&mut iface);
    settle(&mut iface, &mut dev, now);

    while !input.is_empty() {
        let op = input.u8();
        let step = input.u8();
        let mut frame = input.record().to_vec();
        dev.rewrite(op, &mut frame);
        dev.rx.push_back(PacketBuf::from_payload(0, &frame));
        settle(&mut iface, &mut dev, now);
        application(op, &mut iface, &mut sockets);
        settle(&mut iface, &mut dev, now);
        now += Duration::from_millis(time_step_millis(step));
        settle(&mut iface, &mut dev, now);
    }
    let _ = iface.counters();
});
