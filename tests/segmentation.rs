//! TCP segmentation offload end to end, in memory, over
//! `link::Segmenter` (segmentation in software): what one super-segment
//! standing for many segments must not change on the wire.
//!
//! - A lost segment costs one retransmission, not the super-segment's
//!   worth (RACK keeps a record per segment, as SACK blocks speak of
//!   segments).
//! - A D-SACK goes in one segment, not copied into every segment of a
//!   super-segment.
//! - Segments of consecutive super-segments never share an IP
//!   identification, with Don't Fragment or without (after a path MTU
//!   reduction below 576).
//! - A super-segment to our own address is looped back whole.
//! - The software cut takes mutated frames without panicking.
use std::net::{Ipv4Addr, SocketAddrV4};

use netstrata::buf::PacketBuf;
use netstrata::link::{
    ChecksumOffload, Device, DeviceCaps, DeviceError, EthernetAddress, MAX_SUPER_SEGMENT,
    MemoryNetwork, Segmenter,
};
use netstrata::{Duration, Instant, Interface, InterfaceConfig};

const ME: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

struct Sink {
    seg: usize,
    tx: bool,
}
impl Device for Sink {
    fn capabilities(&self) -> DeviceCaps {
        DeviceCaps {
            mtu: 1500,
            checksum: ChecksumOffload {
                tx: self.tx,
                rx: false,
            },
            segmentation: self.seg,
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

fn loopback_transfer(seg: usize, tx: bool) -> (usize, Instant) {
    let mut dev = Sink { seg, tx };
    let mut ifc = iface("192.0.2.1/24", 7, dev.capabilities());
    let listener = ifc.tcp().listen(SocketAddrV4::new(ME, 80), 4).unwrap();
    let client = ifc.tcp().connect(SocketAddrV4::new(ME, 80)).unwrap();
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 + i / 4093) as u8).collect();
    let (mut sent, mut got) = (0, Vec::new());
    let mut conn = None;
    let mut now = Instant::ZERO;
    let mut buf = vec![0u8; 65536];
    while now < Instant::from_secs(20) && got.len() < data.len() {
        if sent < data.len() {
            sent += ifc.tcp().send(client, &data[sent..]).unwrap_or(0);
        }
        ifc.poll(now, &mut dev);
        if conn.is_none() {
            conn = ifc.tcp().accept(listener).ok();
        }
        if let Some(c) = conn {
            while let Ok(n) = ifc.tcp().recv(c, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        now += Duration::from_micros(100);
    }
    assert!(got == data[..got.len()]);
    (got.len(), now)
}

#[test]
fn a_super_segment_to_our_own_address_loops_back() {
    for (seg, tx) in [
        (0, false),
        (MAX_SUPER_SEGMENT, false),
        (MAX_SUPER_SEGMENT, true),
    ] {
        let (n, t) = loopback_transfer(seg, tx);
        assert_eq!(n, 4 << 20, "segmentation {seg}, tx offload {tx}: by {t:?}");
    }
}

use netstrata::link::{FaultConfig, FaultInjector};
use std::sync::{Arc, Mutex};

/// Records every frame it transmits.
struct Rec<D> {
    inner: D,
    log: Arc<Mutex<Vec<Vec<u8>>>>,
    inject: Arc<Mutex<Vec<Vec<u8>>>>,
}
impl<D: Device> Device for Rec<D> {
    fn capabilities(&self) -> DeviceCaps {
        self.inner.capabilities()
    }
    fn receive(&mut self, now: Instant) -> Option<PacketBuf> {
        if let Some(f) = self.inject.lock().unwrap().pop() {
            return Some(PacketBuf::from_payload(0, &f));
        }
        self.inner.receive(now)
    }
    fn transmit(&mut self, now: Instant, f: PacketBuf) -> Result<(), DeviceError> {
        self.log.lock().unwrap().push(f.data().to_vec());
        self.inner.transmit(now, f)
    }
    fn poll_at(&self) -> Option<Instant> {
        self.inner.poll_at()
    }
}

/// A TCP frame as sent.
struct TcpFrame {
    ip_id: u16,
    ack: u32,
    payload_len: usize,
    sack: Vec<(u32, u32)>,
}

/// The TCP frames of `log`.
fn tcp_frames(log: &[Vec<u8>]) -> Vec<TcpFrame> {
    let mut out = Vec::new();
    for f in log {
        if f.len() < 54 || f[12..14] != [8, 0] || f[23] != 6 {
            continue;
        }
        let ip = &f[14..];
        let ihl = usize::from(ip[0] & 15) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let id = u16::from_be_bytes([ip[4], ip[5]]);
        let t = &ip[ihl..total];
        let doff = usize::from(t[12] >> 4) * 4;
        let ack = u32::from_be_bytes(t[8..12].try_into().unwrap());
        let mut sacks = Vec::new();
        let mut o = &t[20..doff];
        while let Some(&k) = o.first() {
            match k {
                0 => break,
                1 => o = &o[1..],
                _ => {
                    let l = usize::from(o[1]);
                    if k == 5 {
                        for b in o[2..l].chunks(8) {
                            sacks.push((
                                u32::from_be_bytes(b[0..4].try_into().unwrap()),
                                u32::from_be_bytes(b[4..8].try_into().unwrap()),
                            ));
                        }
                    }
                    o = &o[l..];
                }
            }
        }
        out.push(TcpFrame {
            ip_id: id,
            ack,
            payload_len: total - ihl - doff,
            sack: sacks,
        });
    }
    out
}

/// A and B exchange `bytes` each way over a link of `mtu`; A's device
/// segments, B's (if `b_seg`) too. `fault_b` on what B sends. Returns A's
/// frames on the wire and the two interfaces.
fn exchange(
    mtu: usize,
    bytes: usize,
    b_seg: bool,
    fault_b: FaultConfig,
    frag_needed: bool,
) -> (Vec<Vec<u8>>, Interface, Interface) {
    let net = MemoryNetwork::new(mtu);
    let (pa, pb) = (net.attach(), net.attach());
    let log = Arc::new(Mutex::new(Vec::new()));
    let inject = Arc::new(Mutex::new(Vec::new()));
    let mut dev_a = Segmenter::new(Rec {
        inner: pa,
        log: log.clone(),
        inject: inject.clone(),
    });
    let mut injected = false;
    let fb = FaultInjector::new(pb, 5).with_tx(fault_b);
    let mut dev_b: Box<dyn Device> = if b_seg {
        Box::new(Segmenter::new(fb))
    } else {
        Box::new(fb)
    };
    let mut a = iface("192.0.2.10/24", 1, dev_a.capabilities());
    let mut b = iface("192.0.2.11/24", 2, dev_b.capabilities());
    let server = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 11), 80);
    let listener = b.tcp().listen(server, 4).unwrap();
    let ca = a.tcp().connect(server).unwrap();
    let data: Vec<u8> = (0..bytes as u32)
        .map(|i| (i * 7 + i / 4093) as u8)
        .collect();
    let (mut sa, mut sb, mut ga, mut gb) = (0, 0, 0usize, 0usize);
    let mut cb = None;
    let mut now = Instant::ZERO;
    let mut buf = vec![0u8; 65536];
    while now < Instant::from_secs(60) && (ga < bytes || gb < bytes) {
        if sa < bytes {
            sa += a.tcp().send(ca, &data[sa..]).unwrap_or(0);
        }
        if let Some(c) = cb
            && sb < bytes
        {
            sb += b.tcp().send(c, &data[sb..]).unwrap_or(0);
        }
        if frag_needed && !injected && ga + gb > bytes / 2 {
            // A router's "fragmentation needed", MTU 500, quoting A's last
            // data segment.
            let l = log.lock().unwrap();
            let f = l.iter().rev().find(|f| f.len() > 1000).unwrap();
            inject
                .lock()
                .unwrap()
                .push(frag_needed_frame(&f[14..14 + 28], 500));
            injected = true;
        }
        a.poll(now, &mut dev_a);
        b.poll(now, &mut dev_b);
        if cb.is_none() {
            cb = b.tcp().accept(listener).ok();
        }
        ga += drain(&mut a, ca, &mut buf);
        if let Some(c) = cb {
            gb += drain(&mut b, c, &mut buf);
        }
        now += Duration::from_micros(100);
    }
    assert_eq!((ga, gb), (bytes, bytes), "by {now:?}");
    let log = log.lock().unwrap().clone();
    (log, a, b)
}

/// Below an MTU of 104 a segment of the floor size (64 bytes) would be
/// a datagram the IP layer fragments, which a device's cut does not:
/// segments on such a link are sized to it, super-segments too (found by
/// fuzzing, MTU 68; before, a 68-byte link carried no TCP data at all).
#[test]
fn a_link_narrower_than_the_segment_floor_carries_whole_segments() {
    let (log, _, _) = exchange(68, 32 << 10, true, FaultConfig::new(), false);
    let longest = log.iter().map(Vec::len).max().unwrap();
    assert!(
        longest <= 14 + 68,
        "a {longest}-byte frame on a 68-byte MTU"
    );
    let fragments = log
        .iter()
        .filter(|f| f.len() >= 34 && f[12..14] == [8, 0] && (f[20] & 0x3f != 0 || f[21] != 0))
        .count();
    assert_eq!(fragments, 0, "segments went as IP fragments");
}

#[test]
fn segments_of_consecutive_super_segments_never_share_an_ip_id() {
    let (log, _, _) = exchange(1500, 1 << 20, false, FaultConfig::new(), false);
    let frames: Vec<_> = tcp_frames(&log)
        .into_iter()
        .filter(|f| f.payload_len > 0)
        .collect();
    // Any two data frames with the same IP ID within 64 frames of each other?
    let dups = repeated_ids(frames.iter().map(|f| f.ip_id));
    eprintln!(
        "{} data frames, {dups} repeated IDs within 64 frames",
        frames.len()
    );
    assert_eq!(
        dups, 0,
        "IP IDs repeat between segments of consecutive super-segments"
    );
}

#[test]
fn a_d_sack_goes_in_one_segment_only() {
    let (log, a, mut b) = exchange(
        1500,
        4 << 20,
        false,
        FaultConfig::new().with_duplicate(0.01),
        false,
    );
    let frames = tcp_frames(&log);
    // A D-SACK: the first block at or below the ACK.
    let mut copies = std::collections::HashMap::new();
    for f in &frames {
        if let Some(&(l, r)) = f.sack.first()
            && (r.wrapping_sub(f.ack) as i32) <= 0
        {
            *copies.entry((l, r)).or_insert(0) += 1;
        }
    }
    let most = copies.values().max().copied().unwrap_or(0);
    eprintln!(
        "{} distinct D-SACKs, sent {} times in all, at most {most} copies; B counted {} D-SACKs received",
        copies.len(),
        copies.values().sum::<i32>(),
        b.tcp().stats().connections.dsacks_received,
    );
    let _ = a;
    assert!(most <= 1, "one D-SACK block copied into {most} segments");
}

fn sum(b: &[u8]) -> u16 {
    let mut s = 0u32;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn frag_needed_frame(quote: &[u8], mtu: u16) -> Vec<u8> {
    let mut icmp = vec![3, 4, 0, 0, 0, 0];
    icmp.extend_from_slice(&mtu.to_be_bytes());
    icmp.extend_from_slice(quote);
    let c = sum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 1, 0, 0, 64, 1, 0, 0, 192, 0, 2, 11, 192, 0, 2, 10,
    ];
    let total = (20 + icmp.len()) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let c = sum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&EthernetAddress::local(1).0);
    f.extend_from_slice(&EthernetAddress::local(2).0);
    f.extend_from_slice(&[8, 0]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&icmp);
    f
}

#[test]
fn fragmentable_segments_never_share_an_ip_id() {
    let (log, mut a, _) = exchange(1500, 2 << 20, false, FaultConfig::new(), true);
    eprintln!("A: {:?}", a.tcp().stats().connections.pmtu_reductions);
    // Data frames without Don't Fragment, in order, with their IP IDs.
    let frames: Vec<(u16, usize)> = log
        .iter()
        .filter(|f| f.len() > 100 && f[12..14] == [8, 0] && f[23] == 6 && f[20] & 0x40 == 0)
        .map(|f| (u16::from_be_bytes([f[18], f[19]]), f.len()))
        .collect();
    let dups = repeated_ids(frames.iter().map(|f| f.0));
    eprintln!(
        "{} data frames without DF ({:?}...), {dups} repeated IDs within 64 frames",
        frames.len(),
        &frames[..frames.len().min(6)]
    );
    assert!(!frames.is_empty());
    assert_eq!(dups, 0, "fragmentable datagrams of one flow share IP IDs");
}

#[test]
fn the_cut_takes_mutated_frames_without_panicking() {
    use netstrata::link::Medium;
    use netstrata::link::vnet::{complete_partial, prepare_transmit, segment};
    let mut base = vec![0u8; 14 + 20 + 32];
    base[12] = 8;
    base[14] = 0x45;
    base[14 + 9] = 6;
    base[14 + 20 + 12] = 8 << 4;
    base.extend((0..5000u32).map(|i| i as u8));
    let total = (base.len() - 14) as u16;
    base[16..18].copy_from_slice(&total.to_be_bytes());
    let mut x = 0x12345678u64;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..300_000 {
        let mut f = base.clone();
        let cut = (rnd() % f.len() as u64) as usize;
        if rnd() % 3 == 0 {
            f.truncate(cut);
        }
        for _ in 0..(rnd() % 4) {
            if f.is_empty() {
                break;
            }
            let i = (rnd() as usize % 80).min(f.len() - 1);
            f[i] = rnd() as u8;
        }
        let size = (rnd() % 3000) as usize;
        let medium = if rnd() % 2 == 0 {
            Medium::Ethernet
        } else {
            Medium::Ip
        };
        let g = if medium == Medium::Ip && f.len() > 14 {
            f[14..].to_vec()
        } else {
            f.clone()
        };
        let mut payload = 0;
        let n = segment(&g, medium, size, |h, p| {
            assert!(!p.is_empty() && p.len() <= size);
            assert!(h.len() <= 134);
            payload += p.len();
        });
        if n > 0 {
            assert!(n >= 2);
        }
        let mut c = g.clone();
        let h = prepare_transmit(&mut c, medium, size);
        if h.gso_type != 0 {
            assert!(segment(&c, medium, size, |_, _| {}) >= 2);
        }
        complete_partial(&mut c, medium);
    }
}

/// A sends `bytes` to B over a path that loses `loss` of A's frames
/// (cut from super-segments if `seg`). Returns (payload bytes lost on the
/// wire, payload bytes A sent beyond `bytes`, D-SACKs A got back).
fn lossy_one_way(seg: bool, loss: f64, seed: u64, bytes: usize) -> (u64, u64, u64) {
    let net = MemoryNetwork::new(1500);
    let (pa, mut pb) = (net.attach(), net.attach());
    let fa = FaultInjector::new(pa, seed).with_tx(
        FaultConfig::new()
            .with_loss(loss)
            .with_delay(Duration::from_millis(5)),
    );
    let mut dev_a = Segmenter::new(fa);
    let caps = DeviceCaps {
        segmentation: if seg { MAX_SUPER_SEGMENT } else { 0 },
        ..dev_a.capabilities()
    };
    let mut a = iface("192.0.2.10/24", 1, caps);
    let mut b = iface("192.0.2.11/24", 2, pb.capabilities());
    let server = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 11), 80);
    let listener = b.tcp().listen(server, 4).unwrap();
    let ca = a.tcp().connect(server).unwrap();
    let data = vec![7u8; bytes];
    let (mut sa, mut gb) = (0, 0usize);
    let mut cb = None;
    let mut now = Instant::ZERO;
    let mut buf = vec![0u8; 65536];
    while now < Instant::from_secs(120) && gb < bytes {
        if sa < bytes {
            sa += a.tcp().send(ca, &data[sa..]).unwrap_or(0);
        }
        a.poll(now, &mut dev_a);
        b.poll(now, &mut pb);
        if cb.is_none() {
            cb = b.tcp().accept(listener).ok();
        }
        if let Some(c) = cb {
            gb += drain(&mut b, c, &mut buf);
        }
        now += Duration::from_micros(100);
    }
    assert_eq!(gb, bytes);
    let info = a.tcp().info(ca).unwrap();
    let lost_frames = dev_a.inner().tx_stats().lost;
    // Full-sized frames: 1448 bytes of payload each (timestamps on).
    (
        lost_frames * 1448,
        info.stats.bytes_sent - bytes as u64,
        info.stats.dsacks_received,
    )
}

#[test]
fn a_lost_segment_of_a_super_segment_costs_one_retransmission() {
    for seg in [false, true] {
        let (mut lost, mut resent, mut dsacks) = (0, 0, 0);
        for seed in 1..6 {
            let (l, r, d) = lossy_one_way(seg, 0.01, seed, 4 << 20);
            lost += l;
            resent += r;
            dsacks += d;
        }
        eprintln!(
            "segmentation {seg}: {lost} bytes lost on the wire, {resent} bytes resent, {dsacks} D-SACKs (needless retransmissions) reported"
        );
        if seg {
            assert!(resent < 2 * lost, "resent {resent} bytes for {lost} lost");
        }
    }
}

/// Receives what waits on `h` (into `buf`, discarded); returns how much.
fn drain(iface: &mut Interface, h: netstrata::transport::tcp::TcpHandle, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while let Ok(k) = iface.tcp().recv(h, buf) {
        if k == 0 {
            break;
        }
        n += k;
    }
    n
}

/// How many pairs of the identifications `ids` are equal within 64 of
/// each other (a reassembler's window, generously).
fn repeated_ids(ids: impl Iterator<Item = u16>) -> usize {
    let ids: Vec<u16> = ids.collect();
    (0..ids.len())
        .map(|i| {
            (i + 1..ids.len().min(i + 64))
                .filter(|&j| ids[i] == ids[j])
                .count()
        })
        .sum()
}
