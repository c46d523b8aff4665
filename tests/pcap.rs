//! Captures written by `PcapWriter` are read by tshark without a single
//! malformed frame, expert error or bad checksum.
//!
//! Needs `tshark`. Without it the test says it was skipped, except in CI
//! (`CI` set), where a missing tshark is a failure: `.ci/run` installs it.

mod common;

use std::fs::File;
use std::io::BufWriter;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::addr;
use netstrata::link::{Device, EthernetAddress, MemoryNetwork, PcapWriter};
use netstrata::sim::Simulation;
use netstrata::{Duration, Interface, InterfaceConfig};

fn tshark_available() -> bool {
    match Command::new("tshark").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "tshark is not installed, and CI must run this test (.ci/run installs it)"
            );
            eprintln!("SKIPPED: tshark not installed (apt-get install tshark to run this test)");
            false
        }
    }
}

/// Frame numbers tshark finds malformed or with a bad checksum.
fn bad_frames(path: &Path) -> Vec<String> {
    let out = common::tshark()
        .arg("-r")
        .arg(path)
        .args([
            "-Y",
            common::TSHARK_BAD_FILTER,
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every frame's protocol stack, as tshark dissects it.
fn protocols(path: &Path) -> Vec<String> {
    let out = common::tshark()
        .arg("-r")
        .arg(path)
        .args(["-T", "fields", "-e", "frame.protocols"])
        .output()
        .expect("run tshark");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("netstrata-{}-{name}", std::process::id()))
}

/// Runs ARP, small and fragmented pings, UDP of several sizes and a closed
/// port, capturing host 1's link to `path`.
fn capture_run(path: &Path) {
    let net = MemoryNetwork::new(1500);
    let mut sim = Simulation::new();
    for n in 1..=2u8 {
        let port = net.attach();
        let cfg = InterfaceConfig::new(
            EthernetAddress::local(u32::from(n)),
            format!("192.0.2.{n}/24").parse().unwrap(),
        );
        let iface = Interface::new(cfg, port.capabilities());
        let dev: Box<dyn Device + Send> = if n == 1 {
            Box::new(PcapWriter::new(
                port,
                BufWriter::new(File::create(path).unwrap()),
                1_700_000_000,
            ))
        } else {
            Box::new(port)
        };
        sim.add_host(iface, dev);
    }
    let p = sim.iface(0).ping().open(Duration::from_secs(1)).unwrap();
    for (seq, size) in [(1u16, 56usize), (2, 4000), (3, 1), (4, 20000)] {
        sim.iface(0).ping().send(p, addr(2), seq, size).unwrap();
        sim.run_until(sim.now() + Duration::from_millis(100));
    }
    let srv = sim
        .iface(1)
        .udp()
        .bind(SocketAddrV4::new(addr(2), 7))
        .unwrap();
    let cli = sim
        .iface(0)
        .udp()
        .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .unwrap();
    for size in [0usize, 1, 1472, 1473, 8000] {
        sim.iface(0)
            .udp()
            .send_to(cli, &vec![0x42; size], SocketAddrV4::new(addr(2), 7))
            .unwrap();
        sim.run_until(sim.now() + Duration::from_millis(10));
        let (data, from) = sim
            .iface(1)
            .udp()
            .recv_with(srv, |d, a| (d.to_vec(), a))
            .unwrap();
        sim.iface(1).udp().send_to(srv, &data, from).unwrap();
        sim.run_until(sim.now() + Duration::from_millis(10));
    }
    sim.iface(0)
        .udp()
        .send_to(cli, b"closed?", SocketAddrV4::new(addr(2), 9))
        .unwrap();
    sim.run_until(sim.now() + Duration::from_millis(10));
    assert!(sim.iface(0).udp().take_error(cli).unwrap().is_some());
    // Dropping the simulation flushes the capture.
}

#[test]
fn tshark_reads_captures_cleanly() {
    if !tshark_available() {
        return;
    }
    let path = temp_path("clean.pcap");
    let _cleanup = scopeguard(&path);
    capture_run(&path);
    let protos = protocols(&path);
    assert!(protos.len() > 30, "only {} frames captured", protos.len());
    for needle in [
        "eth:ethertype:arp",
        "eth:ethertype:ip:icmp",
        "eth:ethertype:ip:udp",
        "eth:ethertype:ip:data",
    ] {
        assert!(
            protos.iter().any(|p| p.starts_with(needle)),
            "no {needle} frame in {protos:?}"
        );
    }
    // An ICMP port unreachable quoting our UDP datagram.
    assert!(
        protos.iter().any(|p| p.contains("icmp:ip:udp")),
        "no port unreachable in {protos:?}"
    );
    let bad = bad_frames(&path);
    assert!(bad.is_empty(), "tshark flags frames {bad:?}");
}

#[test]
fn tshark_check_detects_a_bad_checksum() {
    // The negative control: the same filter must flag a corrupted frame,
    // or the clean result above would prove nothing.
    if !tshark_available() {
        return;
    }
    let path = temp_path("bad.pcap");
    let _cleanup = scopeguard(&path);
    let mut sink = netstrata::link::PcapSink::new(BufWriter::new(File::create(&path).unwrap()), 0);
    // A UDP datagram 192.0.2.1:1000 -> 192.0.2.2:7 with a wrong checksum.
    let mut frame = vec![
        0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, // Ethernet
        0x45, 0, 0, 29, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2, // IPv4
        0x03, 0xe8, 0, 7, 0, 9, 0xde, 0xad, 0x41, // UDP, 1 byte payload
    ];
    let c = netstrata::checksum::checksum(&frame[14..34]);
    frame[24..26].copy_from_slice(&c.to_be_bytes());
    sink.record(netstrata::Instant::ZERO, &frame);
    drop(sink.into_inner());
    assert_eq!(bad_frames(&path), vec!["1".to_string()]);
}

/// A TCP payload that looks like a Thrift message with a bad field type
/// is plain data to the check: it judges the link, IP and TCP layers, not
/// what a payload resembles (tshark's heuristic Thrift dissector raises an
/// Error-level expert info on this one; random payloads hit it now and then
/// and made the interop capture check fail at random). The same frame with
/// a bad TCP checksum is still flagged.
#[test]
fn tshark_check_ignores_what_payloads_resemble() {
    use netstrata::internet::Protocol;
    use netstrata::internet::ipv4::{Ipv4Packet, Ipv4Repr};
    use netstrata::transport::tcp::{SeqNumber, TcpFlags, TcpPacket, TcpRepr};
    if !tshark_available() {
        return;
    }
    let (src, dst) = (addr(1), addr(2));
    // Thrift binary protocol: version 0x8001, call "ping", seqid 1, then a
    // field of type 0x11, which no Thrift type has.
    let mut payload = b"\x80\x01\x00\x01\x00\x00\x00\x04ping\x00\x00\x00\x01\x11\x00\x01".to_vec();
    payload.resize(64, 0);
    let tcp = TcpRepr {
        src_port: 49200,
        dst_port: 5001,
        seq_number: SeqNumber(1000),
        ack_number: Some(SeqNumber(1)),
        flags: TcpFlags::PSH,
        window_len: 65535,
        payload_len: payload.len(),
        ..TcpRepr::default()
    };
    let mut segment = vec![0; tcp.header_len()];
    segment.extend_from_slice(&payload);
    tcp.emit(
        &mut TcpPacket::new_unchecked(&mut segment[..]),
        src,
        dst,
        true,
    );
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: Protocol::Tcp,
        payload_len: segment.len(),
        ttl: 64,
        tos: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let mut frame = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let mut header = vec![0; ip.header_len()];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut header[..]), true);
    frame.extend_from_slice(&header);
    frame.extend_from_slice(&segment);
    let mut damaged = frame.clone();
    *damaged.last_mut().unwrap() ^= 1;
    // A segment whose checksum comes out 0x0000, sent as 0xffff: the
    // other one's complement zero, valid (the kernel sends one in 65,536
    // so), which tshark flags (`tcp.checksum.ffff`) and the check accepts.
    let mut zero_sum = frame.clone();
    let tcp_at = 14 + 20;
    let cks = u16::from_be_bytes([zero_sum[tcp_at + 16], zero_sum[tcp_at + 17]]);
    let last = zero_sum.len() - 2;
    let word = u16::from_be_bytes([zero_sum[last], zero_sum[last + 1]]);
    // Adding the checksum to a payload word makes the sum 0xffff, so the
    // checksum 0x0000 (one's complement addition).
    let sum = u32::from(word) + u32::from(cks);
    let word = ((sum & 0xffff) + (sum >> 16)) as u16;
    zero_sum[last..].copy_from_slice(&word.to_be_bytes());
    zero_sum[tcp_at + 16..tcp_at + 18].copy_from_slice(&[0xff, 0xff]);

    let path = temp_path("payload.pcap");
    let _cleanup = scopeguard(&path);
    let mut sink = netstrata::link::PcapSink::new(BufWriter::new(File::create(&path).unwrap()), 0);
    sink.record(netstrata::Instant::ZERO, &frame);
    sink.record(netstrata::Instant::from_micros(1), &damaged);
    sink.record(netstrata::Instant::from_micros(2), &zero_sum);
    drop(sink.into_inner());
    assert_eq!(protocols(&path)[0], "eth:ethertype:ip:tcp:data");
    assert_eq!(bad_frames(&path), vec!["2".to_string()]);
}

/// Removes the file when dropped, even if the test panics.
fn scopeguard(path: &Path) -> impl Drop + '_ {
    struct Remove<'a>(&'a Path);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
        }
    }
    Remove(path)
}
