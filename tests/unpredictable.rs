//! Nothing an off-path attacker sees is predictable from one process to
//! the next: separate processes with the default configuration choose
//! unrelated initial sequence numbers, ephemeral ports, IP identifications,
//! ping identifiers and DNS query IDs.
//!
//! The test runs itself three times as a child process (each child prints
//! what its stack chose) and compares. Before the stack drew its secrets
//! from the operating system, the three first SYNs left from the same port
//! with initial sequence numbers within ±2 of each other.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket as StdUdpSocket};
use std::process::Command;
use std::sync::{Arc, Mutex};

use netstrata::application::dns::resolver::{Resolver, ResolverConfig};
use netstrata::application::net::StdNetwork;
use netstrata::buf::PacketBuf;
use netstrata::internet::ipv4::Ipv4Packet;
use netstrata::link::{Device, DeviceCaps, DeviceError, EthernetAddress, MemoryNetwork};
use netstrata::sim::Simulation;
use netstrata::transport::tcp::{TcpFlags, TcpPacket};
use netstrata::{Duration, Instant, Interface, InterfaceConfig};

const CHILD: &str = "NETSTRATA_UNPREDICTABLE_CHILD";

/// What one process chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Choices {
    syn_port: u16,
    isn: u32,
    syn_ip_id: u16,
    udp_port: u16,
    ping_ident: u16,
    dns_id: u16,
}

/// A device that keeps a copy of every frame it transmits.
struct Recorder<D> {
    inner: D,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl<D: Device> Device for Recorder<D> {
    fn capabilities(&self) -> DeviceCaps {
        self.inner.capabilities()
    }
    fn receive(&mut self, now: Instant) -> Option<PacketBuf> {
        self.inner.receive(now)
    }
    fn transmit(&mut self, now: Instant, frame: PacketBuf) -> Result<(), DeviceError> {
        self.sent.lock().unwrap().push(frame.data().to_vec());
        self.inner.transmit(now, frame)
    }
}

/// The child's work: a stack with the default configuration (no seed)
/// connects, binds and pings; a resolver with the default configuration
/// asks a local UDP socket.
fn choose() -> Choices {
    let net = MemoryNetwork::new(1500);
    let mut sim = Simulation::new();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let port = net.attach();
    let cfg = InterfaceConfig::new(EthernetAddress::local(1), "192.0.2.1/24".parse().unwrap());
    let a = sim.add_host(
        Interface::new(cfg, port.capabilities()),
        Box::new(Recorder {
            inner: port,
            sent: sent.clone(),
        }),
    );
    let port = net.attach();
    let cfg = InterfaceConfig::new(EthernetAddress::local(2), "192.0.2.2/24".parse().unwrap())
        .with_seed(2);
    let b = sim.add_host(Interface::new(cfg, port.capabilities()), Box::new(port));
    let server = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80);
    sim.iface(b).tcp().listen(server, 8).unwrap();
    let now = sim.now();
    sim.iface(a).tcp().connect(server).unwrap();
    sim.run_until(now + Duration::from_millis(100));

    let syn = sent
        .lock()
        .unwrap()
        .iter()
        .filter(|f| f.len() > 14 && f[12..14] == [0x08, 0x00])
        .map(|f| f[14..].to_vec())
        .find(|ip| {
            let p = Ipv4Packet::new_checked(&ip[..]).unwrap();
            TcpPacket::new_checked(p.payload()).is_ok_and(|t| t.flags() == TcpFlags::SYN)
        })
        .expect("the stack sent a SYN");
    let ip = Ipv4Packet::new_checked(&syn[..]).unwrap();
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();

    let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
    let udp = sim.iface(a).udp().bind(any).unwrap();
    let udp_port = sim.iface(a).udp().local_addr(udp).unwrap().port();
    let ping = sim.iface(a).ping().open(Duration::from_secs(1)).unwrap();
    let ping_ident = sim.iface(a).ping().ident(ping).unwrap();

    Choices {
        syn_port: tcp.src_port(),
        isn: tcp.seq_number().0,
        syn_ip_id: ip.ident(),
        udp_port,
        ping_ident,
        dns_id: first_dns_id(),
    }
}

/// The ID of the first query a default resolver sends.
fn first_dns_id() -> u16 {
    let server = StdUdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let addr = server.local_addr().unwrap();
    let asker = std::thread::spawn(move || {
        let config = ResolverConfig {
            timeout: std::time::Duration::from_millis(300),
            attempts: 1,
            ..ResolverConfig::default()
        };
        // Nobody answers: the lookup times out, which is fine.
        let _ = Resolver::new(StdNetwork, addr, config).lookup_ipv4("example.test");
    });
    let mut query = [0u8; 512];
    let (n, _) = server.recv_from(&mut query).expect("a DNS query");
    assert!(n >= 12, "query of {n} bytes");
    asker.join().unwrap();
    u16::from_be_bytes([query[0], query[1]])
}

#[test]
fn separate_processes_choose_unrelated_values() {
    if std::env::var_os(CHILD).is_some() {
        let c = choose();
        println!(
            "CHOICES {} {} {} {} {} {}",
            c.syn_port, c.isn, c.syn_ip_id, c.udp_port, c.ping_ident, c.dns_id
        );
        return;
    }
    let me = std::env::current_exe().unwrap();
    let runs: Vec<Choices> = (0..3)
        .map(|_| {
            let out = Command::new(&me)
                .env(CHILD, "1")
                .args([
                    "--exact",
                    "separate_processes_choose_unrelated_values",
                    "--nocapture",
                ])
                .output()
                .expect("run the test binary as a child");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "child failed: {stdout}");
            let line = stdout
                .lines()
                .find_map(|l| l.strip_prefix("CHOICES "))
                .unwrap_or_else(|| panic!("no CHOICES line in {stdout}"));
            let v: Vec<u32> = line.split(' ').map(|x| x.parse().unwrap()).collect();
            Choices {
                syn_port: v[0] as u16,
                isn: v[1],
                syn_ip_id: v[2] as u16,
                udp_port: v[3] as u16,
                ping_ident: v[4] as u16,
                dns_id: v[5] as u16,
            }
        })
        .collect();
    eprintln!("{runs:#?}");
    // ISNs: 32 random bits each; two within 2^16 of each other happen
    // with probability about 3·2^-15 if they are unrelated.
    for (i, a) in runs.iter().enumerate() {
        for b in &runs[i + 1..] {
            let d = a.isn.wrapping_sub(b.isn).min(b.isn.wrapping_sub(a.isn));
            assert!(d > 1 << 16, "ISNs {} and {} are {d} apart", a.isn, b.isn);
        }
    }
    // 14 to 16 random bits each: all three equal has probability below
    // 2^-28 if they are unrelated.
    let distinct = |f: fn(&Choices) -> u16| runs.iter().map(f).collect::<HashSet<_>>().len();
    assert!(distinct(|c| c.syn_port) > 1, "SYN source ports: {runs:?}");
    assert!(
        distinct(|c| c.syn_ip_id) > 1,
        "IP identifications: {runs:?}"
    );
    assert!(distinct(|c| c.udp_port) > 1, "UDP ports: {runs:?}");
    assert!(distinct(|c| c.ping_ident) > 1, "ping identifiers: {runs:?}");
    assert!(distinct(|c| c.dns_id) > 1, "DNS IDs: {runs:?}");
}
