//! End-to-end over the in-memory link: ARP, ping (small and fragmented),
//! UDP of every size class, port unreachable, and recovery under faults.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};

use common::{add_host, addr, network};
use netstrata::internet::ping::PingEvent;
use netstrata::internet::{IcmpErrorKind, icmpv4::DstUnreachable};
use netstrata::link::{FaultConfig, MemoryNetwork};
use netstrata::sim::Simulation;
use netstrata::{Duration, Instant};

fn ping_once(
    sim: &mut Simulation,
    from: usize,
    to: Ipv4Addr,
    size: usize,
    seq: u16,
) -> Option<PingEvent> {
    let h = sim.iface(from).ping().open(Duration::from_secs(2)).unwrap();
    sim.iface(from).ping().send(h, to, seq, size).unwrap();
    let mut event = None;
    sim.run_while_not(Duration::from_secs(5), |s| {
        event = s.iface(from).ping().recv(h).ok();
        event.is_some()
    });
    sim.iface(from).ping().close(h).unwrap();
    event
}

#[test]
fn two_hosts_resolve_each_other_and_ping() {
    let (mut sim, h) = network(2, 1500);
    let ev = ping_once(&mut sim, h[0], addr(2), 56, 1);
    match ev {
        Some(PingEvent::Reply(r)) => {
            assert_eq!(r.from, addr(2));
            assert_eq!(r.seq_no, 1);
            assert_eq!(r.icmp_len, 64);
            assert_eq!(r.ttl, 64);
        }
        other => panic!("no reply: {other:?}"),
    }
    // Both sides learned each other (the request carried host 1's address).
    let now = sim.now();
    assert!(
        sim.iface(h[0])
            .link()
            .arp_cache()
            .lookup(now, addr(2))
            .is_some()
    );
    assert!(
        sim.iface(h[1])
            .link()
            .arp_cache()
            .lookup(now, addr(1))
            .is_some()
    );
    let c = sim.iface(h[1]).counters();
    assert_eq!(c.ip.icmp_rx_echo_requests, 1);
    assert_eq!(c.ip.icmp_tx_echo_replies, 1);
    assert_eq!(c.link.arp_replies_sent, 1);
}

#[test]
fn fragmented_ping_4000_bytes_on_1500_mtu() {
    let (mut sim, h) = network(2, 1500);
    match ping_once(&mut sim, h[0], addr(2), 4000, 9) {
        Some(PingEvent::Reply(r)) => assert_eq!(r.icmp_len, 4008),
        other => panic!("no reply: {other:?}"),
    }
    let c2 = sim.iface(h[1]).counters();
    assert_eq!(c2.ip.rx_fragments, 3);
    assert_eq!(c2.ip.reassembled, 1);
    assert_eq!(c2.ip.tx_fragments, 3);
    let c1 = sim.iface(h[0]).counters();
    assert_eq!(c1.ip.tx_fragments, 3);
    assert_eq!(c1.ip.reassembled, 1);
}

#[test]
fn largest_ping_is_answered() {
    let (mut sim, h) = network(2, 1500);
    match ping_once(&mut sim, h[0], addr(2), 65507, 1) {
        Some(PingEvent::Reply(r)) => assert_eq!(r.icmp_len, 65515),
        other => panic!("no reply: {other:?}"),
    }
}

#[test]
fn udp_datagrams_of_1_to_8000_bytes() {
    let (mut sim, h) = network(2, 1500);
    let a = sim
        .iface(h[0])
        .udp()
        .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .unwrap();
    let b = sim
        .iface(h[1])
        .udp()
        .bind(SocketAddrV4::new(addr(2), 7000))
        .unwrap();
    let a_addr = SocketAddrV4::new(addr(1), sim.iface(h[0]).udp().local_addr(a).unwrap().port());
    let sizes: Vec<usize> = [
        1, 2, 7, 8, 9, 100, 1471, 1472, 1473, 1480, 2952, 2953, 4000, 6000, 8000,
    ]
    .to_vec();
    for (i, &n) in sizes.iter().enumerate() {
        let payload: Vec<u8> = (0..n).map(|j| (j * 31 + i) as u8).collect();
        sim.iface(h[0])
            .udp()
            .send_to(a, &payload, SocketAddrV4::new(addr(2), 7000))
            .unwrap();
        let mut got = None;
        assert!(
            sim.run_while_not(Duration::from_secs(2), |s| {
                got = s
                    .iface(h[1])
                    .udp()
                    .recv_with(b, |d, a| (d.to_vec(), a))
                    .ok();
                got.is_some()
            }),
            "size {n} not delivered"
        );
        let (data, from) = got.unwrap();
        assert_eq!(from, a_addr);
        assert_eq!(&data[..], &payload[..], "size {n}");
        // Echo it back.
        sim.iface(h[1]).udp().send_to(b, &data, from).unwrap();
        let mut back = None;
        assert!(sim.run_while_not(Duration::from_secs(2), |s| {
            back = s
                .iface(h[0])
                .udp()
                .recv_with(a, |d, a| (d.to_vec(), a))
                .ok();
            back.is_some()
        }));
        assert_eq!(&back.unwrap().0[..], &payload[..]);
    }
    let c = sim.iface(h[1]).counters();
    assert_eq!(c.udp.rx_datagrams, sizes.len() as u64);
    assert_eq!(c.udp.rx_bad_checksum + c.udp.rx_malformed, 0);
}

#[test]
fn closed_port_answers_port_unreachable() {
    let (mut sim, h) = network(2, 1500);
    let a = sim
        .iface(h[0])
        .udp()
        .bind(SocketAddrV4::new(addr(1), 5555))
        .unwrap();
    sim.iface(h[0])
        .udp()
        .send_to(a, b"anyone?", SocketAddrV4::new(addr(2), 9))
        .unwrap();
    let mut err = None;
    assert!(sim.run_while_not(Duration::from_secs(2), |s| {
        err = s.iface(h[0]).udp().take_error(a).unwrap();
        err.is_some()
    }));
    let e = err.unwrap();
    assert_eq!(
        e.kind,
        IcmpErrorKind::Unreachable(DstUnreachable::PortUnreachable)
    );
    assert_eq!(e.reporter, addr(2));
    assert_eq!(
        (e.local_port, e.remote_addr, e.remote_port),
        (5555, addr(2), 9)
    );
    assert_eq!(sim.iface(h[1]).counters().udp.rx_no_socket, 1);
    assert_eq!(sim.iface(h[1]).counters().ip.icmp_tx_errors, 1);
}

#[test]
fn three_hosts_all_reach_each_other() {
    let (mut sim, h) = network(3, 1500);
    for &from in &h {
        for to in 1..=3u8 {
            if usize::from(to) == from + 1 {
                continue;
            }
            match ping_once(&mut sim, from, addr(to), 56, u16::from(to)) {
                Some(PingEvent::Reply(r)) => assert_eq!(r.from, addr(to)),
                other => panic!("{from} -> {to}: {other:?}"),
            }
        }
    }
    // Every host resolved both others.
    let now = sim.now();
    for &i in &h {
        assert_eq!(sim.iface(i).link().arp_cache().len(), 2);
        let _ = now;
    }
}

#[test]
fn unresolvable_neighbour_fails_without_blocking_others() {
    let (mut sim, h) = network(2, 1500);
    let ghost = addr(99);
    let p = sim
        .iface(h[0])
        .ping()
        .open(Duration::from_secs(10))
        .unwrap();
    sim.iface(h[0]).ping().send(p, ghost, 1, 56).unwrap();
    // Meanwhile host 2 is reachable.
    match ping_once(&mut sim, h[0], addr(2), 56, 2) {
        Some(PingEvent::Reply(_)) => {}
        other => panic!("{other:?}"),
    }
    sim.run_until(sim.now() + Duration::from_secs(10));
    let c = sim.iface(h[0]).counters();
    assert_eq!(c.link.arp.failures, 1);
    assert_eq!(c.link.arp.dropped_unresolved, 1);
    // Six requests for the ghost, one for host 2.
    assert_eq!(c.link.arp.requests, 7);
}

#[test]
fn arp_and_ping_recover_under_faults() {
    for seed in 0..50u64 {
        let net = MemoryNetwork::new(1500);
        let mut sim = Simulation::new();
        let faults = FaultConfig::default()
            .with_loss(0.3)
            .with_duplicate(0.1)
            .with_reorder(0.1, Duration::from_millis(5))
            .with_corrupt(0.05)
            .with_delay(Duration::from_millis(1));
        let a = add_host(&mut sim, &net, 1, Some((faults.clone(), seed)));
        let _b = add_host(&mut sim, &net, 2, Some((faults, seed + 1000)));
        // Like ping(8): one request a second until a reply comes.
        let h = sim.iface(a).ping().open(Duration::from_secs(1)).unwrap();
        let mut replied = false;
        for seq in 1..=30u16 {
            sim.iface(a).ping().send(h, addr(2), seq, 1000).unwrap();
            let until = sim.now() + Duration::from_secs(1);
            sim.run_while_not(until - sim.now(), |s| {
                while let Ok(e) = s.iface(a).ping().recv(h) {
                    if matches!(e, PingEvent::Reply(_)) {
                        replied = true;
                    }
                }
                replied
            });
            if replied {
                break;
            }
            sim.run_until(until);
        }
        assert!(replied, "seed {seed}: no reply in 30 tries");
    }
}

#[test]
fn simulation_is_deterministic() {
    fn run() -> (Instant, netstrata::Counters) {
        let net = MemoryNetwork::new(1500);
        let mut sim = Simulation::new();
        let f = FaultConfig::default()
            .with_loss(0.2)
            .with_jitter(Duration::from_millis(3));
        let a = add_host(&mut sim, &net, 1, Some((f.clone(), 5)));
        add_host(&mut sim, &net, 2, Some((f, 6)));
        let h = sim.iface(a).ping().open(Duration::from_secs(1)).unwrap();
        for seq in 0..20 {
            sim.iface(a).ping().send(h, addr(2), seq, 3000).unwrap();
            sim.run_until(sim.now() + Duration::from_millis(200));
        }
        (sim.now(), sim.iface(a).counters())
    }
    assert_eq!(run(), run());
}
