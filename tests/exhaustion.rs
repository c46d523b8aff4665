//! A hostile network cannot exhaust the stack: resource attacks in the
//! simulator, with memory measured for real by a counting global allocator
//! (what the heap holds after the attack, less what it held before). The
//! tests take turns (one lock) so that they measure only themselves.
//!
//! - Pinned memory: queues count the memory a buffer pins, not the slice
//!   it holds, so small pieces of large buffers (the UDP or TCP payload of
//!   a reassembled 64 KiB datagram, trimmed to a few hundred bytes) cannot
//!   make a socket hold far more than its limits say. Before, the UDP case
//!   pinned about 64 KiB per queued 256-byte datagram and the TCP case
//!   about 64 KiB per 256-byte segment.
//! - A spoofed SYN flood (5,000 SYNs a second from random sources) keeps a
//!   real client out for no time at all: SYN cookies. Before, the
//!   half-open table filled with entries that retried for two minutes and
//!   every later SYN was dropped.
//! - Sockstress: clients that stop reading mid-response and answer every
//!   window probe leave orphans that are reaped after their retry limit,
//!   and the memory they hold stays within the layer's limit. Before, they
//!   stayed forever with their send buffers.
//! - A server that closes first, 200,000 times: TIME-WAIT costs a compact
//!   record each, up to a cap. Before, every TIME-WAIT kept its whole
//!   connection.

mod counting;
mod script;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Mutex;

use counting::held;
use netstrata::buf::PacketBuf;
use netstrata::internet::Protocol;
use netstrata::internet::ipv4::{Ipv4Packet, Ipv4Repr};
use netstrata::link::{Device, EthernetAddress, MemoryNetwork, MemoryPort};
use netstrata::rand::Rng;
use netstrata::sim::{HostId, Simulation};
use netstrata::transport::tcp::{
    SeqNumber, State, TcpConfig, TcpFlags, TcpHandle, TcpLimits, TcpPacket, TcpRepr,
};
use netstrata::{Duration, Instant, Interface, InterfaceConfig};
use script::Script;

static TURN: Mutex<()> = Mutex::new(());

/// Frames of one IPv4 datagram from `src` to `dst` carrying `payload`,
/// fragmented for a 1500-byte MTU.
fn fragmented(
    src: (EthernetAddress, Ipv4Addr),
    dst: (EthernetAddress, Ipv4Addr),
    ident: u16,
    protocol: Protocol,
    payload: &[u8],
) -> Vec<Vec<u8>> {
    payload
        .chunks(1480)
        .enumerate()
        .map(|(i, piece)| {
            let offset = i * 1480;
            let ip = Ipv4Repr {
                src_addr: src.1,
                dst_addr: dst.1,
                protocol,
                payload_len: piece.len(),
                ttl: 64,
                tos: 0,
                ident,
                dont_frag: false,
                more_frags: offset + piece.len() < payload.len(),
                frag_offset: offset as u16,
            };
            let mut frame = Vec::with_capacity(14 + 20 + piece.len());
            frame.extend_from_slice(&dst.0.0);
            frame.extend_from_slice(&src.0.0);
            frame.extend_from_slice(&[0x08, 0x00]);
            let mut header = [0u8; 20];
            ip.emit(&mut Ipv4Packet::new_unchecked(&mut header[..]), true);
            frame.extend_from_slice(&header);
            frame.extend_from_slice(piece);
            frame
        })
        .collect()
}

#[test]
fn udp_datagrams_short_in_large_reassembled_buffers_do_not_pin_them() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let net = MemoryNetwork::new(1500);
    let mut sim = Simulation::new();
    let port = net.attach();
    let me = (EthernetAddress::local(2), Ipv4Addr::new(192, 0, 2, 2));
    let cfg = InterfaceConfig::new(me.0, "192.0.2.2/24".parse().unwrap()).with_seed(2);
    let b = sim.add_host(Interface::new(cfg, port.capabilities()), Box::new(port));
    let sock = sim
        .iface(b)
        .udp()
        .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 53))
        .unwrap();
    let mut attacker = net.attach();
    let them = (EthernetAddress::local(9), Ipv4Addr::new(192, 0, 2, 9));
    sim.run_until(sim.now() + Duration::from_millis(10));

    let before = held();
    let datagrams = 200u16;
    for ident in 0..datagrams {
        // A UDP header whose length field says 256 bytes of payload, in a
        // 64,000-byte datagram: the rest is not UDP's.
        let mut payload = vec![0u8; 64_000];
        payload[..2].copy_from_slice(&4000u16.to_be_bytes());
        payload[2..4].copy_from_slice(&53u16.to_be_bytes());
        payload[4..6].copy_from_slice(&(8u16 + 256).to_be_bytes());
        for frame in fragmented(them, me, ident, Protocol::Udp, &payload) {
            let now = sim.now();
            attacker
                .transmit(now, PacketBuf::from_payload(0, &frame))
                .unwrap();
        }
        sim.run_until(sim.now() + Duration::from_millis(1));
    }
    let grown = held() - before;
    let queued = std::iter::from_fn(|| {
        sim.iface(b)
            .udp()
            .recv_with(sock, |d, a| (d.to_vec(), a))
            .ok()
    })
    .count();
    assert_eq!(queued, usize::from(datagrams), "every datagram is queued");
    eprintln!("{datagrams} datagrams of 256 bytes queued: heap grew by {grown} bytes");
    // 200 × 256 bytes and bookkeeping, not 200 × 64 KB (12.8 MB).
    assert!(grown < 1 << 20, "heap grew by {grown} bytes");
}

#[test]
fn tcp_segments_short_in_large_buffers_do_not_pin_them() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = Script::new(TcpConfig::default());
    s.run(
        "
        0    connect
        0    > S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 3>
        +100 < S. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,wscale 7>
        +0   > . 1:1(0) ack 1 win 32768
        ",
    );
    // 256-byte segments, each in a 64 KiB allocation, filling the 256 KiB
    // window: out of order (after a one-byte hole), and then in order.
    s.pad_to = 65536;
    let before = held();
    for i in 0..1000 {
        let start = 2 + 256 * i;
        s.run_and_count_sent(&format!("+0 < . {start}:{}(256) ack 1", start + 256));
    }
    let grown = held() - before;
    let memory = s.tcp.memory();
    eprintln!("1000 out-of-order segments of 256 bytes: heap grew by {grown}, TCP counts {memory}");
    assert!(grown < 1 << 20, "heap grew by {grown} bytes");
    assert!((256_000..1 << 20).contains(&memory), "TCP counts {memory}");
    // The hole filled: all of it in order, still compact.
    s.run_and_count_sent("+0 < . 1:2(1) ack 1");
    let grown = held() - before;
    assert!(grown < 1 << 20, "heap grew by {grown} bytes");
    assert_eq!(s.tcp.recv_queue(s.handle()), 256_001);
}

// ---------------------------------------------------------------------------
// Hosts and frames.

/// Host 192.0.2.`n` on `net`, with TCP options and limits adjusted by
/// `tweak`.
fn host(
    sim: &mut Simulation,
    net: &MemoryNetwork,
    n: u8,
    tweak: impl FnOnce(&mut InterfaceConfig),
) -> HostId {
    let port = net.attach();
    let mut cfg = InterfaceConfig::new(
        EthernetAddress::local(u32::from(n)),
        format!("192.0.2.{n}/24").parse().unwrap(),
    )
    .with_seed(u64::from(n));
    tweak(&mut cfg);
    sim.add_host(Interface::new(cfg, port.capabilities()), Box::new(port))
}

fn addr(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, n)
}

/// An Ethernet frame carrying one TCP segment.
fn tcp_frame(
    (src_mac, src): (EthernetAddress, SocketAddrV4),
    (dst_mac, dst): (EthernetAddress, SocketAddrV4),
    repr: &TcpRepr,
    ident: u16,
) -> Vec<u8> {
    let mut segment = vec![0u8; repr.header_len()];
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut segment[..]),
        *src.ip(),
        *dst.ip(),
        true,
    );
    let ip = Ipv4Repr {
        src_addr: *src.ip(),
        dst_addr: *dst.ip(),
        protocol: Protocol::Tcp,
        payload_len: segment.len(),
        ttl: 64,
        tos: 0,
        ident,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let mut frame = Vec::with_capacity(14 + 20 + segment.len());
    frame.extend_from_slice(&dst_mac.0);
    frame.extend_from_slice(&src_mac.0);
    frame.extend_from_slice(&[0x08, 0x00]);
    let mut header = [0u8; 20];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut header[..]), true);
    frame.extend_from_slice(&header);
    frame.extend_from_slice(&segment);
    frame
}

// ---------------------------------------------------------------------------
// SYN flood.

/// A server behind a gateway, a spoofed SYN flood at 5,000 SYNs a second
/// (random off-link sources, as `hping3 -S --rand-source` sends them, half
/// with options like a real stack's), and a real client connecting in the
/// middle of it. Returns how long each of the client's three connects took
/// (the last after the flood) and the server's TCP counters.
fn syn_flood(limits: TcpLimits) -> (Vec<Option<Duration>>, isize, usize) {
    let net = MemoryNetwork::new(1500);
    let mut sim = Simulation::new();
    let client = host(&mut sim, &net, 1, |_| {});
    let server = host(&mut sim, &net, 2, |cfg| {
        cfg.tcp_limits = limits;
        cfg.ipv4.gateway = Some(addr(254));
    });
    // The gateway: answers ARP and absorbs the SYN-ACKs to spoofed sources.
    let _gateway = host(&mut sim, &net, 254, |_| {});
    let mut attacker: MemoryPort = net.attach();
    let service = SocketAddrV4::new(addr(2), 80);
    let listener = sim.iface(server).tcp().listen(service, 128).unwrap();
    sim.run_until(sim.now() + Duration::from_millis(100));

    let mut rng = Rng::new(7);
    let mut connects = Vec::new();
    let mut pending: Option<(TcpHandle, Instant)> = None;
    let start = sim.now();
    let before = held();
    let mut peak = 0isize;
    let flood = Duration::from_secs(10);
    let mut accepted = Vec::new();
    while sim.now() < start + flood + Duration::from_secs(3) {
        let now = sim.now();
        if now < start + flood {
            for _ in 0..5 {
                let src = SocketAddrV4::new(
                    Ipv4Addr::from(0xc612_0000 | (rng.next_u32() & 0x1_ffff)),
                    1024 + (rng.next_u32() % 60000) as u16,
                );
                let options = rng.chance(0.5);
                let syn = TcpRepr {
                    src_port: src.port(),
                    dst_port: 80,
                    seq_number: SeqNumber(rng.next_u32()),
                    flags: TcpFlags::SYN,
                    window_len: 64240,
                    max_seg_size: options.then_some(1460),
                    sack_permitted: options,
                    window_scale: options.then_some(7),
                    timestamp: options.then_some((rng.next_u32(), 0)),
                    ..TcpRepr::default()
                };
                let frame = tcp_frame(
                    (EthernetAddress::local(99), src),
                    (EthernetAddress::local(2), service),
                    &syn,
                    rng.next_u32() as u16,
                );
                attacker
                    .transmit(now, PacketBuf::from_payload(0, &frame))
                    .unwrap();
            }
        }
        // The real client: at 2 s, 8 s, and 11 s (after the flood).
        let since = now - start;
        let due = [2000u64, 8000, 11_000]
            .get(connects.len())
            .is_some_and(|&ms| since >= Duration::from_millis(ms));
        if pending.is_none() && due {
            let c = sim.iface(client).tcp().connect(service).unwrap();
            pending = Some((c, now));
        }
        if let Some((c, at)) = pending {
            match sim.iface(client).tcp().state(c) {
                Ok(State::Established) => {
                    connects.push(Some(now - at));
                    let _ = sim.iface(client).tcp().send(c, b"hello");
                    let _ = sim.iface(client).tcp().close(c);
                    pending = None;
                }
                _ if now - at > Duration::from_secs(2) => {
                    connects.push(None);
                    let _ = sim.iface(client).tcp().abort(c);
                    pending = None;
                }
                _ => {}
            }
        }
        while let Ok(h) = sim.iface(server).tcp().accept(listener) {
            accepted.push(h);
        }
        peak = peak.max(held() - before);
        sim.run_until(now + Duration::from_millis(1));
    }
    let half_open_max = sim.iface(server).tcp().connection_count();
    (connects, peak, half_open_max)
}

#[test]
fn a_spoofed_syn_flood_does_not_keep_a_client_out() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (connects, peak, conns) = syn_flood(TcpLimits::default());
    eprintln!(
        "SYN flood: connects took {connects:?}, heap peak +{peak} bytes, {conns} connections left"
    );
    assert_eq!(connects.len(), 3);
    for (i, c) in connects.iter().enumerate() {
        let took = c.unwrap_or_else(|| panic!("connect {i} failed"));
        // At once: no SYN was lost (the first retransmission comes at 1 s).
        assert!(
            took < Duration::from_millis(100),
            "connect {i} took {took:?}"
        );
    }
    // 50,000 SYNs: the half-open table stays at its cap, memory flat.
    assert!(conns <= 128 + 3, "{conns} connections");
    assert!(peak < 8 << 20, "heap peak +{peak} bytes");
}

#[test]
fn without_syn_cookies_the_flood_keeps_the_client_out() {
    // The negative control: what the flood did before SYN cookies.
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let limits = TcpLimits {
        syn_cookies: false,
        ..TcpLimits::default()
    };
    let (connects, _, _) = syn_flood(limits);
    assert!(
        connects[..2]
            .iter()
            .all(|c| c.is_none_or(|t| t >= Duration::from_secs(1))),
        "{connects:?}"
    );
}

// ---------------------------------------------------------------------------
// Sockstress.

/// `clients` connections from a client that never reads (4 KiB receive
/// buffers, so its window closes at once, but it answers every probe) to a
/// server that writes as much as it can to each and closes it, as an HTTP
/// server does after its write timeout. Runs `duration` of virtual time;
/// returns the server's peak TCP memory and its connections and memory at
/// the end.
fn sockstress(clients: usize, limits: TcpLimits, duration: Duration) -> (usize, usize, usize) {
    let net = MemoryNetwork::new(1500);
    let mut sim = Simulation::new();
    let client = host(&mut sim, &net, 1, |cfg| {
        cfg.tcp.recv_buffer = 4096;
    });
    let server = host(&mut sim, &net, 2, |cfg| cfg.tcp_limits = limits);
    let service = SocketAddrV4::new(addr(2), 80);
    let listener = sim.iface(server).tcp().listen(service, 1024).unwrap();
    let conns: Vec<TcpHandle> = (0..clients)
        .map(|_| sim.iface(client).tcp().connect(service).unwrap())
        .collect();
    let start = sim.now();
    let mut peak = 0;
    let chunk = vec![0x5a; 64 * 1024];
    while sim.now() < start + duration {
        let now = sim.now();
        while let Ok(h) = sim.iface(server).tcp().accept(listener) {
            let tcp = sim.iface(server).tcp();
            while tcp.send(h, &chunk).is_ok_and(|n| n > 0) {}
            tcp.close(h).unwrap();
        }
        peak = peak.max(sim.iface(server).tcp().memory());
        sim.run_until(now + Duration::from_millis(10));
    }
    drop(conns);
    let tcp = sim.iface(server).tcp();
    (peak, tcp.connection_count(), tcp.memory())
}

#[test]
fn sockstress_orphans_are_reaped_within_their_retry_limit() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    // 300 orphans, each with a full 256 KiB send buffer: 8 answered probes
    // each (backing off from the 200 ms RTO: about 100 s), then reset.
    let (peak, left, memory) = sockstress(300, TcpLimits::default(), Duration::from_secs(200));
    eprintln!("sockstress: peak {peak} bytes; after 200 s {left} connections, {memory} bytes");
    assert!(
        peak > 300 * 200 * 1024,
        "the attack did not fill the buffers: {peak}"
    );
    assert_eq!(left, 0, "orphans left after their retries");
    assert_eq!(memory, 0);
}

#[test]
fn sockstress_memory_stays_within_the_layer_limit() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let limits = TcpLimits {
        memory_pressure: 6 << 20,
        memory_limit: 8 << 20,
        ..TcpLimits::default()
    };
    let (peak, _, _) = sockstress(300, limits, Duration::from_secs(30));
    eprintln!("sockstress with an 8 MiB limit: TCP peak {peak} bytes");
    // At the limit, a connection with nothing queued may still queue 4 KiB.
    assert!(peak <= (8 << 20) + 300 * 4096 + 65536, "TCP peak {peak}");
}

// ---------------------------------------------------------------------------
// TIME-WAIT.

/// `total` short connections, `concurrency` at a time: the client sends a
/// request, the server answers and closes first (so TIME-WAIT is the
/// server's), the client reads to the end and closes. Returns the virtual
/// time taken.
fn short_connections(
    sim: &mut Simulation,
    (client, server): (HostId, HostId),
    total: usize,
    concurrency: usize,
) -> Duration {
    let service = SocketAddrV4::new(addr(2), 80);
    let listener = sim.iface(server).tcp().listen(service, 1024).unwrap();
    let start = sim.now();
    let (mut started, mut done) = (0, 0);
    let mut clients: Vec<(TcpHandle, bool)> = Vec::new();
    let mut served: Vec<TcpHandle> = Vec::new();
    let mut buf = [0u8; 256];
    while done < total {
        let now = sim.now();
        assert!(
            now - start < Duration::from_secs(3600),
            "stuck at {done} of {total}"
        );
        while clients.len() < concurrency && started < total {
            let c = sim.iface(client).tcp().connect(service).unwrap();
            clients.push((c, false));
            started += 1;
        }
        let tcp = sim.iface(client).tcp();
        clients.retain_mut(|(c, asked)| {
            if !*asked && tcp.state(*c) == Ok(State::Established) {
                *asked = tcp.send(*c, &[b'?'; 64]) == Ok(64);
            }
            while tcp.recv(*c, &mut buf).is_ok_and(|n| n > 0) {}
            let finished = tcp.recv_eof(*c) || tcp.state(*c) == Ok(State::Closed);
            if finished {
                tcp.close(*c).unwrap();
                done += 1;
            }
            !finished
        });
        let tcp = sim.iface(server).tcp();
        while let Ok(h) = tcp.accept(listener) {
            served.push(h);
        }
        served.retain(|&h| {
            if tcp.recv_queue(h) < 64 {
                return true;
            }
            tcp.recv(h, &mut buf).unwrap();
            tcp.send(h, &[b'!'; 64]).unwrap();
            tcp.close(h).unwrap();
            false
        });
        sim.step(Duration::from_millis(5));
    }
    sim.iface(server)
        .tcp()
        .close_listener(listener)
        .expect("the listener is open");
    sim.now() - start
}

#[test]
fn time_wait_after_200_000_connections_is_compact_and_capped() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let net = MemoryNetwork::new(1500);
    let mut sim = Simulation::new();
    let client = host(&mut sim, &net, 1, |_| {});
    let limits = TcpLimits {
        max_time_wait: 8_192,
        ..TcpLimits::default()
    };
    let server = host(&mut sim, &net, 2, |cfg| cfg.tcp_limits = limits);
    // Warm up (tables grown), then measure.
    short_connections(&mut sim, (client, server), 2_000, 256);
    sim.run_until(sim.now() + Duration::from_secs(61));
    let before = held();
    let took = short_connections(&mut sim, (client, server), 200_000, 256);
    let grown = held() - before;
    let stats = sim.iface(server).counters().tcp;
    eprintln!(
        "200,000 connections in {took:?} (virtual): {} in TIME-WAIT, {} skipped it, {} reused; heap +{grown} bytes",
        stats.time_wait, stats.time_wait_overflows, stats.time_wait_reused
    );
    assert!(stats.time_wait <= 8_192);
    assert!(stats.time_wait_overflows > 0, "the cap was never reached");
    // About 100 bytes a record and the tables' growth; a whole connection
    // per TIME-WAIT was several KiB.
    assert!(grown < 12 << 20, "heap grew by {grown} bytes");
    assert_eq!(sim.iface(server).tcp().memory(), 0);
    // The timer heaps hold about one entry per connection or record, not
    // the stale deadlines of 200,000 connections.
    for h in [client, server] {
        let tcp = sim.iface(h).tcp();
        let (heap, live) = (tcp.timer_heap_len(), tcp.connection_count());
        assert!(
            heap <= 2 * live + 128,
            "timer heap {heap} for {live} connections"
        );
    }
    // TIME-WAIT ends; nothing is left.
    sim.run_until(sim.now() + Duration::from_secs(61));
    assert_eq!(sim.iface(server).tcp().connection_count(), 0);
    assert_eq!(sim.iface(client).tcp().connection_count(), 0);
}
