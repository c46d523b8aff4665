//! Shared set-up for end-to-end tests: hosts on an in-memory switch with a
//! virtual clock.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use netstrata::application::dns::responder::Zone;
use netstrata::application::dns::{Class, Name, Record, RecordData};
use netstrata::blocking::Runtime;
use netstrata::link::{Device, EthernetAddress, FaultConfig, FaultInjector, MemoryNetwork};
use netstrata::sim::{HostId, Simulation};
use netstrata::{Interface, InterfaceConfig};

/// 192.0.2.N/24 (TEST-NET-1, documentation addresses: never routed).
pub fn addr(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, n)
}

/// Adds host `n` (address 192.0.2.n, MAC 02:00:00:00:00:n) to `net`,
/// optionally behind a fault injector on its receive side.
pub fn add_host(
    sim: &mut Simulation,
    net: &MemoryNetwork,
    n: u8,
    faults: Option<(FaultConfig, u64)>,
) -> HostId {
    let port = net.attach();
    let caps = port.capabilities();
    let cfg = InterfaceConfig::new(
        netstrata::link::EthernetAddress::local(u32::from(n)),
        format!("192.0.2.{n}/24").parse().unwrap(),
    )
    .with_seed(u64::from(n) * 7919);
    let iface = Interface::new(cfg, caps);
    let device: Box<dyn Device + Send> = match faults {
        Some((f, seed)) => Box::new(FaultInjector::new(port, seed).with_rx(f.clone()).with_tx(f)),
        None => Box::new(port),
    };
    sim.add_host(iface, device)
}

/// A simulation with `n` hosts 192.0.2.1 ..= 192.0.2.n on one switch.
pub fn network(n: u8, mtu: usize) -> (Simulation, Vec<HostId>) {
    let net = MemoryNetwork::new(mtu);
    let mut sim = Simulation::new();
    let ids = (1..=n).map(|i| add_host(&mut sim, &net, i, None)).collect();
    (sim, ids)
}

/// Host `n` (192.0.2.n/24, MAC 02:00:00:00:00:n, seed n) on `net`, run by
/// a socket runtime on its own thread in real time.
pub fn runtime(net: &MemoryNetwork, n: u8) -> Runtime {
    let port = net.attach();
    let cidr = format!("192.0.2.{n}/24").parse().unwrap();
    let cfg =
        InterfaceConfig::new(EthernetAddress::local(u32::from(n)), cidr).with_seed(u64::from(n));
    Runtime::on_memory_port(Interface::new(cfg, port.capabilities()), port).unwrap()
}

/// A zone for `example.test` holding only its SOA (negative answers are
/// cached for 30 s); tests add their records.
pub fn example_zone() -> Zone {
    let n = |s: &str| s.parse::<Name>().unwrap();
    let soa = RecordData::Soa {
        mname: n("ns.example.test"),
        rname: n("admin.example.test"),
        serial: 1,
        refresh: 60,
        retry: 60,
        expire: 600,
        minimum: 30,
    };
    Zone::new(Record {
        name: n("example.test"),
        class: Class::In,
        ttl: 3600,
        data: soa,
    })
    .unwrap()
}

/// Bytes that differ at nearly every offset, so that a misplaced or
/// repeated slice shows.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect()
}

/// What tshark must never report about a capture: a malformed frame, an
/// Error-level expert info or a bad checksum.
///
/// One complaint is not an error: a TCP checksum field of 0xffff where
/// tshark computes 0x0000 (`tcp.checksum.ffff`, which tshark also counts
/// as a bad checksum). Both are the
/// one's complement zero (RFC 1071, RFC 1624 §3), any receiver accepts
/// either, and the kernel sends 0xffff for the one segment in 65,536 whose
/// checksum comes out zero: it flagged a kernel frame in about one capture
/// run in six.
pub const TSHARK_BAD_FILTER: &str = "_ws.malformed || \
     (_ws.expert.severity == \"Error\" && !tcp.checksum.ffff) || \
     ip.checksum.status == \"Bad\" || udp.checksum.status == \"Bad\" || \
     icmp.checksum.status == \"Bad\" || \
     (tcp.checksum.status == \"Bad\" && !tcp.checksum.ffff)";

/// The protocols tshark judges: the link, internet and transport layers
/// and what they carry as plain data. `frame` is the root of every
/// dissection; `ethertype` hands Ethernet frames on to ARP and IP; `raw`
/// takes a TUN's bare IP packets (`LINKTYPE_RAW`).
const TSHARK_LAYERS: &[&str] = &[
    "frame",
    "raw",
    "eth",
    "ethertype",
    "arp",
    "ip",
    "icmp",
    "udp",
    "tcp",
    "data",
];

/// A `tshark` command that dissects only [`TSHARK_LAYERS`], with checksum
/// validation on for IP, UDP and TCP (ICMP's is always checked).
///
/// Every other dissector is disabled, heuristic ones included: payloads
/// are decoded as plain data. Random test payloads otherwise look like some
/// protocol now and then (tshark's heuristic Thrift dissector took a random
/// TCP payload for a Thrift message and raised an Error-level expert info),
/// and a check of the stack's own layers would fail at random. tshark 4.0
/// has no `--only-protocols`, so the list of disabled protocols goes into
/// a configuration directory of its own (`WIRESHARK_CONFIG_DIR`), written
/// once per test process; that also keeps a user's preferences out.
pub fn tshark() -> std::process::Command {
    use std::sync::OnceLock;
    static CONFIG: OnceLock<std::path::PathBuf> = OnceLock::new();
    let dir = CONFIG.get_or_init(|| {
        let out = std::process::Command::new("tshark")
            .args(["-G", "protocols"])
            .output()
            .expect("run tshark -G protocols");
        assert!(out.status.success(), "tshark -G protocols failed");
        let listing = String::from_utf8_lossy(&out.stdout);
        // Each line: name, short name, filter name; the filter name is what
        // `disabled_protos` takes.
        let disabled: String = listing
            .lines()
            .filter_map(|l| l.split('\t').nth(2))
            .filter(|p| !TSHARK_LAYERS.contains(p) && !p.starts_with("_ws."))
            .map(|p| format!("{p}\n"))
            .collect();
        assert!(
            disabled.lines().count() > 100,
            "tshark -G protocols listed too little: {listing:.200}"
        );
        let dir = std::env::temp_dir().join(format!("netstrata-tshark-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create tshark configuration directory");
        std::fs::write(dir.join("disabled_protos"), disabled).expect("write disabled_protos");
        dir
    });
    let mut cmd = std::process::Command::new("tshark");
    cmd.env("WIRESHARK_CONFIG_DIR", dir).args([
        "-n",
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
    ]);
    cmd
}
