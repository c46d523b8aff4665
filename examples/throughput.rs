//! How fast is the stack? Prints rough figures from a few seconds of work:
//!
//! 1. the Internet checksum on 1500-byte buffers, fast against reference;
//! 2. the receive path, frame to UDP socket, for 64- and 1472-byte payloads
//!    (the stack alone, then including the per-frame copy a device makes);
//! 3. a bulk UDP transfer between two hosts over the in-memory switch,
//!    driven by a [`Simulation`].
//!
//! ```text
//! cargo run --release --example throughput
//! ```
//!
//! This program is the edge of the system, so it reads the wall clock
//! (`std::time::Instant`); the stack itself never does. Numbers from a
//! debug build are meaningless.

#[path = "../benches/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant as WallClock};

use netstrata::buf::PacketBuf;
use netstrata::checksum::{checksum, checksum_reference};
use netstrata::link::{EthernetAddress, MemoryNetwork};
use netstrata::sim::{HostId, Simulation};
use netstrata::{Instant, Interface, InterfaceConfig};
use support::{parse_frame, payload, receiver, udp_frame};

/// Runs `f` in rounds until `budget` has passed; returns calls per second.
/// `f` returns how long of its own work counts (so set-up inside a round
/// can be left out) and how many items it processed.
fn rate(budget: Duration, mut f: impl FnMut() -> (Duration, u64)) -> f64 {
    let start = WallClock::now();
    let mut busy = Duration::ZERO;
    let mut items = 0u64;
    while start.elapsed() < budget {
        let (t, n) = f();
        busy += t;
        items += n;
    }
    items as f64 / busy.as_secs_f64()
}

fn checksum_figures() {
    println!("checksum, 1500-byte buffer");
    let data = payload(1500);
    assert_eq!(checksum(&data), checksum_reference(&data));
    for (name, f) in [
        ("fast", checksum as fn(&[u8]) -> u16),
        ("reference", checksum_reference),
    ] {
        // Warm up, then measure.
        for _ in 0..10_000 {
            black_box(f(black_box(&data)));
        }
        let per_sec = rate(Duration::from_millis(700), || {
            let t = WallClock::now();
            for _ in 0..10_000 {
                black_box(f(black_box(&data)));
            }
            (t.elapsed(), 10_000)
        });
        println!("  {name:<10} {:6.1} GB/s", per_sec * 1500.0 / 1e9);
    }
}

/// Frames per poll: one burst, as a NIC hands it over.
const BATCH: usize = 128;

fn receive_figures() {
    println!("receive path, frame to UDP socket ({BATCH} frames per poll)");
    for len in [64usize, 1472] {
        let frame = udp_frame(len);
        assert!(parse_frame(frame.data()).is_some());
        let batch: Vec<PacketBuf> = vec![frame.clone(); BATCH];
        let (mut iface, socket, mut device) = receiver(BATCH);
        let now = Instant::from_secs(1);
        let mut run = |copy_in_timing: bool| {
            rate(Duration::from_millis(1500), || {
                let t0 = WallClock::now();
                let frames = batch.clone();
                let t1 = WallClock::now();
                device.load(frames);
                iface.poll(now, &mut device);
                let mut n = 0;
                while let Ok((data, _)) = iface.udp().recv_from(socket) {
                    black_box(&data);
                    n += 1;
                }
                assert_eq!(n, BATCH, "datagrams lost");
                let start = if copy_in_timing { t0 } else { t1 };
                (start.elapsed(), n as u64)
            })
        };
        for (label, copy) in [("stack only", false), ("with device copy", true)] {
            let pps = run(copy);
            println!(
                "  {len:>4}-byte payload, {label:<16} {:7.2} Mpps {:6.2} Gbit/s of payload",
                pps / 1e6,
                pps * len as f64 * 8.0 / 1e9
            );
        }
        let c = iface.counters();
        assert_eq!(c.udp.rx_queue_full + c.udp.rx_bad_checksum, 0);
    }
}

fn host(sim: &mut Simulation, net: &MemoryNetwork, n: u8) -> HostId {
    let port = net.attach();
    let cfg = InterfaceConfig::new(
        EthernetAddress::local(u32::from(n)),
        format!("192.0.2.{n}/24").parse().expect("valid address"),
    )
    .with_seed(u64::from(n));
    let iface = Interface::new(cfg, netstrata::link::Device::capabilities(&port));
    sim.add_host(iface, Box::new(port))
}

fn transfer_figures() {
    const COUNT: u64 = 1_000_000;
    const SIZE: usize = 1472;
    // Datagrams sent before the receiver drains its socket: below the
    // socket's default limit (256 datagrams or 256 KiB = 178 of these), so
    // nothing is dropped for want of reading.
    const WINDOW: u64 = 128;
    println!("two hosts over the in-memory switch: {COUNT} datagrams of {SIZE} bytes");
    let net = MemoryNetwork::new(1500);
    let mut sim = Simulation::new();
    let a = host(&mut sim, &net, 1);
    let b = host(&mut sim, &net, 2);
    let dst = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 9000);
    let tx = sim
        .iface(a)
        .udp()
        .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .expect("ephemeral port");
    let rx = sim.iface(b).udp().bind(dst).expect("port is free");
    let data = payload(SIZE);

    // One datagram first, so ARP is resolved before the clock starts.
    sim.iface(a).udp().send_to(tx, &data, dst).expect("queued");
    let delivered = sim.run_while_not(netstrata::Duration::from_secs(5), |s| {
        s.iface(b).udp().recv_from(rx).is_ok()
    });
    assert!(delivered, "first datagram not delivered");

    let start = WallClock::now();
    let (mut sent, mut received, mut bytes) = (0u64, 0u64, 0u64);
    while sent < COUNT {
        let burst = WINDOW.min(COUNT - sent);
        for _ in 0..burst {
            sim.iface(a).udp().send_to(tx, &data, dst).expect("queued");
        }
        sent += burst;
        // The switch has no delay: when every host is idle, every datagram
        // of the burst has been delivered or dropped.
        sim.settle();
        while let Ok((d, _)) = sim.iface(b).udp().recv_from(rx) {
            received += 1;
            bytes += d.len() as u64;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cb = sim.iface(b).counters();
    println!(
        "  {:7.2} M datagrams/s {:6.2} Gbit/s of payload; {received} of {sent} delivered \
         (lost: {} to a full socket queue, {} otherwise), {:.3} s",
        received as f64 / secs / 1e6,
        bytes as f64 * 8.0 / secs / 1e9,
        cb.udp.rx_queue_full,
        sent - received - cb.udp.rx_queue_full,
        secs,
    );
}

fn main() {
    if cfg!(debug_assertions) {
        println!("(debug build: run with --release for meaningful numbers)");
    }
    checksum_figures();
    receive_figures();
    transfer_figures();
}
