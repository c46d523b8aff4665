//! What the steady state of the data path allocates: a counting global
//! allocator watches a TCP bulk transfer (nothing per segment) and a UDP
//! stream (nothing per datagram) between two interfaces on the
//! in-memory network, driven through the public API as
//! `examples/throughput` drives them, after a warm-up.
//!
//! The counter is per thread, so the test harness's other threads do not
//! disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddrV4};

use netstrata::link::{EthernetAddress, MemoryNetwork, MemoryPort};
use netstrata::transport::tcp::{State, TcpConfig};
use netstrata::{Instant, Interface, InterfaceConfig};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is passed to the system allocator unchanged; the
// counter is a thread-local cell that allocates nothing itself.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

struct Host {
    iface: Interface,
    port: MemoryPort,
}

impl Host {
    fn new(n: u8, port: MemoryPort, tcp: TcpConfig) -> Host {
        let mut cfg = InterfaceConfig::new(
            EthernetAddress::local(u32::from(n)),
            format!("192.0.2.{n}/24").parse().unwrap(),
        );
        cfg.tcp = tcp;
        let iface = Interface::new(cfg, netstrata::link::Device::capabilities(&port));
        Host { iface, port }
    }

    fn poll(&mut self, now: Instant) {
        self.iface.poll(now, &mut self.port);
    }
}

/// Byte `i` of the stream.
fn byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// TCP bulk, 256 KiB buffers, either API: runs `rounds` polls of each host
/// and returns (allocations, segments sent) over the last `measured`.
fn tcp_bulk(copy: bool, rounds: u32, measured: u32) -> (u64, u64) {
    let tcp = TcpConfig {
        send_buffer: 256 * 1024,
        recv_buffer: 256 * 1024,
        ..TcpConfig::default()
    };
    let (pa, pb) = MemoryNetwork::pair(1500);
    let mut a = Host::new(1, pa, tcp.clone());
    let mut b = Host::new(2, pb, tcp);
    let server = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 5001);
    let listener = b.iface.tcp().listen(server, 1).unwrap();
    // A virtual clock: 10 µs a round.
    let mut now = Instant::ZERO;
    let ha = a.iface.tcp().connect(server).unwrap();
    let mut hb = None;
    for _ in 0..100 {
        now += netstrata::Duration::from_micros(10);
        a.poll(now);
        b.poll(now);
        if let Ok(h) = b.iface.tcp().accept(listener) {
            hb = Some(h);
        }
        if hb.is_some() && a.iface.tcp().state(ha) == Ok(State::Established) {
            break;
        }
    }
    let hb = hb.expect("handshake");
    let mut sink = vec![0u8; 64 * 1024];
    let (mut sent, mut rcvd) = (0u64, 0u64);
    let mut before = (0, 0);
    for round in 0..rounds {
        if round == rounds - measured {
            before = (
                allocations(),
                a.iface.tcp().info(ha).unwrap().stats.segs_out,
            );
        }
        loop {
            let took = a.iface.tcp().send_with(ha, |room| {
                for (i, b) in room.iter_mut().enumerate() {
                    *b = byte(sent + i as u64);
                }
                room.len()
            });
            let Ok(took) = took else {
                break;
            };
            sent += took as u64;
        }
        now += netstrata::Duration::from_micros(10);
        a.poll(now);
        b.poll(now);
        if copy {
            while let Ok(n @ 1..) = b.iface.tcp().recv(hb, &mut sink) {
                for &x in &sink[..n] {
                    assert_eq!(x, byte(rcvd));
                    rcvd += 1;
                }
            }
        } else {
            while let Ok(data) = b.iface.tcp().recv_bytes(hb, usize::MAX) {
                if data.is_empty() {
                    break;
                }
                for &x in &data[..] {
                    assert_eq!(x, byte(rcvd));
                    rcvd += 1;
                }
            }
        }
    }
    let segments = a.iface.tcp().info(ha).unwrap().stats.segs_out - before.1;
    assert!(rcvd > 16 * 1024 * 1024, "only {rcvd} bytes arrived");
    (allocations() - before.0, segments)
}

#[test]
fn tcp_bulk_allocates_nothing_per_segment_with_zero_copy_calls() {
    let (allocs, segments) = tcp_bulk(false, 400, 200);
    assert!(segments > 10_000, "only {segments} segments");
    assert_eq!(allocs, 0, "{allocs} allocations for {segments} segments");
}

#[test]
fn tcp_bulk_allocates_nothing_per_segment_with_copying_calls() {
    let (allocs, segments) = tcp_bulk(true, 400, 200);
    assert!(segments > 10_000, "only {segments} segments");
    assert_eq!(allocs, 0, "{allocs} allocations for {segments} segments");
}

/// UDP: datagrams of `size` bytes in batches, or one per call; returns
/// (allocations, datagrams) over the last `measured` rounds.
fn udp_stream(batch: bool, size: usize, rounds: u32, measured: u32) -> (u64, u64) {
    let (pa, pb) = MemoryNetwork::pair(1500);
    let mut a = Host::new(1, pa, TcpConfig::default());
    let mut b = Host::new(2, pb, TcpConfig::default());
    let src = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 5000);
    let dst = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 5001);
    let ha = a.iface.udp().bind(src).unwrap();
    let hb = b.iface.udp().bind(dst).unwrap();
    let mut now = Instant::ZERO;
    const BATCH: usize = 200;
    let mut buf = vec![0u8; size];
    let payloads: Vec<Vec<u8>> = (0..BATCH).map(|i| vec![i as u8; size]).collect();
    let (mut rcvd, mut before) = (0u64, 0u64);
    let mut counted = 0;
    for round in 0..rounds {
        if round == rounds - measured {
            before = allocations();
            counted = rcvd;
        }
        if batch {
            let datagrams = payloads.iter().map(|p| (&p[..], dst));
            a.iface.udp().send_batch(ha, datagrams).unwrap();
        } else {
            for p in &payloads {
                a.iface.udp().send_to(ha, p, dst).unwrap();
            }
        }
        now += netstrata::Duration::from_micros(10);
        a.poll(now);
        b.poll(now);
        if batch {
            let read = |d: &[u8], _| assert_eq!(d.len(), size);
            if let Ok(n) = b.iface.udp().recv_batch(hb, usize::MAX, read) {
                rcvd += n as u64;
            }
        } else {
            while let Ok((n, _)) = b.iface.udp().recv_from(hb, &mut buf) {
                assert_eq!(n, size);
                rcvd += 1;
            }
        }
    }
    assert!(
        rcvd > u64::from(rounds - 5) * BATCH as u64,
        "{rcvd} arrived"
    );
    (allocations() - before, rcvd - counted)
}

#[test]
fn udp_allocates_nothing_per_datagram_in_batches() {
    let (allocs, datagrams) = udp_stream(true, 64, 300, 200);
    assert!(datagrams >= 39_000, "only {datagrams} datagrams");
    assert_eq!(allocs, 0, "{allocs} allocations for {datagrams} datagrams");
}

/// Datagrams that fill their frames are queued in them, not copied: the
/// frames go back to the pool when they are read.
#[test]
fn udp_allocates_nothing_per_large_datagram() {
    let (allocs, datagrams) = udp_stream(true, 1200, 300, 200);
    assert!(datagrams >= 39_000, "only {datagrams} datagrams");
    assert_eq!(allocs, 0, "{allocs} allocations for {datagrams} datagrams");
}

#[test]
fn udp_allocates_nothing_per_datagram_one_at_a_time() {
    let (allocs, datagrams) = udp_stream(false, 64, 300, 200);
    assert!(datagrams >= 39_000, "only {datagrams} datagrams");
    assert_eq!(allocs, 0, "{allocs} allocations for {datagrams} datagrams");
}
