//! Queues count the memory a buffer pins, not the slice it holds: a peer
//! that sends small pieces of large buffers (the UDP or TCP payload of a
//! reassembled 64 KiB datagram, trimmed to a few hundred bytes) cannot make
//! a socket hold far more than its limits say.
//!
//! Memory is measured for real, by a counting global allocator: what the
//! heap holds after the attack, less what it held before. Before the
//! queues counted allocations, the UDP case pinned about 64 KiB per queued
//! 256-byte datagram and the TCP case about 64 KiB per 256-byte segment.
//! The tests take turns (one lock) so that they measure only themselves.

mod script;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Mutex;
use std::sync::atomic::{AtomicIsize, Ordering};

use netstrata::buf::PacketBuf;
use netstrata::internet::Protocol;
use netstrata::internet::ipv4::{Ipv4Packet, Ipv4Repr};
use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
use netstrata::sim::Simulation;
use netstrata::transport::tcp::TcpConfig;
use netstrata::{Duration, Interface, InterfaceConfig};
use script::Script;

/// The system allocator, counting the bytes it holds.
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

static TURN: Mutex<()> = Mutex::new(());

fn held() -> isize {
    HELD.load(Ordering::Relaxed)
}

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
    let queued = std::iter::from_fn(|| sim.iface(b).udp().recv_from(sock).ok()).count();
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
