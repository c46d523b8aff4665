//! The netstrata demo: two hosts on an in-memory Ethernet switch.
//!
//! Host A pings host B (small and fragmented), exchanges UDP datagrams
//! with an echo service on B, and pokes a closed port. Everything runs on
//! a virtual clock, so the run is identical every time; the link adds a
//! 25 µs one-way latency so round-trip times look like a fast LAN's.
//! Host A then sends 100 MiB over TCP to host B. Host A's frames are
//! written to `demo.pcap`, the first 256 bytes of each (open it with
//! Wireshark or `tshark -r demo.pcap`).
//!
//! Part two is the application layer on the blocking socket API, on real
//! threads and the wall clock: two fresh hosts on a new switch. Host B
//! runs a DNS responder for the zone `demo.test` and an HTTP server; host
//! A resolves `www.demo.test` (a CNAME to `web.demo.test`), fetches a page
//! and then a 64 MiB file over one kept-alive connection, checks every
//! byte, and B's server shuts down gracefully. Host A's frames go to
//! `demo-web.pcap` (256 bytes of each), where tshark decodes the DNS and
//! HTTP.
//!
//! Run with `cargo run --release --example demo`.

#[path = "common/mod.rs"]
mod common;

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use netstrata::application::dns::resolver::{Resolver, ResolverConfig};
use netstrata::application::dns::responder::{Zone, serve_udp};
use netstrata::application::dns::{Class, Name, Record, RecordData, RecordType};
use netstrata::application::http::client::Client;
use netstrata::application::http::server::{Request, Response, Server, ServerConfig};
use netstrata::blocking::{ParkSleeper, Runtime, TcpListener, UdpSocket};
use netstrata::internet::ping::PingEvent;
use netstrata::link::{Device, EthernetAddress, FaultConfig, FaultInjector, MemoryNetwork};
use netstrata::sim::{HostId, Simulation};
use netstrata::transport::tcp::TcpError;
use netstrata::{Duration, Interface, InterfaceConfig};

type DemoResult<T> = Result<T, Box<dyn std::error::Error>>;

const LATENCY: Duration = Duration::from_micros(25);

fn add_host(
    sim: &mut Simulation,
    net: &MemoryNetwork,
    n: u8,
    capture: Option<&str>,
) -> Result<HostId, Box<dyn std::error::Error>> {
    let mac = EthernetAddress::local(u32::from(n));
    let cidr = format!("192.0.2.{n}/24").parse()?;
    let port = net.attach();
    let iface = Interface::new(
        InterfaceConfig::new(mac, cidr).with_seed(u64::from(n)),
        port.capabilities(),
    );
    // One-way link latency on transmit.
    let link =
        FaultInjector::new(port, u64::from(n)).with_tx(FaultConfig::default().with_delay(LATENCY));
    let device: Box<dyn Device + Send> = match capture {
        // Headers only (256 bytes per frame), so the 100 MiB TCP transfer
        // makes a capture of about 20 MB, not 100.
        Some(path) => Box::new(common::capture(link, path)?.with_snaplen(256)),
        None => Box::new(link),
    };
    println!("  host {} {mac} {cidr}", (b'A' + n - 1) as char);
    Ok(sim.add_host(iface, device))
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn ping(sim: &mut Simulation, from: HostId, to: Ipv4Addr, size: usize, count: u16) {
    println!("PING {to} {size}({}) bytes of data.", size + 28);
    let h = match sim.iface(from).ping().open(Duration::from_secs(1)) {
        Ok(h) => h,
        Err(e) => {
            println!("ping: {e}");
            return;
        }
    };
    let (mut received, mut rtts) = (0, Vec::new());
    for seq in 1..=count {
        if let Err(e) = sim.iface(from).ping().send(h, to, seq, size) {
            println!("ping: {e}");
            continue;
        }
        let deadline = sim.now() + Duration::from_secs(1);
        let mut event = None;
        sim.run_while_not(Duration::from_secs(1), |s| {
            event = s.iface(from).ping().recv(h).ok();
            event.is_some()
        });
        match event {
            Some(PingEvent::Reply(r)) => {
                received += 1;
                rtts.push(r.rtt);
                println!(
                    "{} bytes from {}: icmp_seq={} ttl={} time={} ms",
                    r.icmp_len,
                    r.from,
                    r.seq_no,
                    r.ttl,
                    ms(r.rtt)
                );
            }
            Some(other) => println!("icmp_seq={seq}: {other:?}"),
            None => println!("icmp_seq={seq}: no reply"),
        }
        // ping(8) sends one request a second.
        sim.run_until(deadline);
    }
    sim.iface(from)
        .ping()
        .close(h)
        .expect("the ping socket is open");
    println!("--- {to} ping statistics ---");
    println!(
        "{count} packets transmitted, {received} received, {}% packet loss",
        (u32::from(count) - received) * 100 / u32::from(count.max(1))
    );
    if let (Some(min), Some(max)) = (rtts.iter().min(), rtts.iter().max()) {
        let avg = rtts.iter().sum::<Duration>() / rtts.len() as u32;
        println!("rtt min/avg/max = {}/{}/{} ms", ms(*min), ms(avg), ms(*max));
    }
    println!();
}

/// Sends `len` bytes from host `a` to a sink on host `b` over TCP and
/// reports throughput (wall clock: how fast the two stacks process it on
/// this machine; virtual: what the simulated link achieved), retransmissions
/// and the final congestion window.
fn tcp_transfer(
    sim: &mut Simulation,
    a: HostId,
    b: HostId,
    len: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let addr_b = sim.iface(b).ipv4_addr();
    let listener = sim
        .iface(b)
        .tcp()
        .listen(SocketAddrV4::new(addr_b, 5001), 8)?;
    let client = sim
        .iface(a)
        .tcp()
        .connect(SocketAddrV4::new(addr_b, 5001))?;
    let mut server = None;
    sim.run_while_not(Duration::from_secs(5), |s| {
        server = s.iface(b).tcp().accept(listener).ok();
        server.is_some()
    });
    let Some(server) = server else {
        println!("TCP: connection to {addr_b}:5001 failed");
        return Ok(());
    };
    let local = sim.iface(a).tcp().local_addr(client)?;
    println!(
        "TCP: {local} -> {addr_b}:5001 established, sending {} MiB",
        len >> 20
    );
    let chunk = vec![0x6e; 256 * 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let (mut sent, mut received) = (0u64, 0u64);
    let (wall, start) = (std::time::Instant::now(), sim.now());
    while received < len {
        if sent < len {
            let n = ((len - sent) as usize).min(chunk.len());
            sent += match sim.iface(a).tcp().send(client, &chunk[..n]) {
                Ok(k) => k as u64,
                Err(TcpError::WouldBlock) => 0,
                Err(e) => return Err(e.into()),
            };
            if sent == len {
                sim.iface(a).tcp().shutdown(client)?;
            }
        }
        loop {
            match sim.iface(b).tcp().recv(server, &mut buf) {
                Ok(0) | Err(TcpError::WouldBlock) => break,
                Ok(n) => received += n as u64,
                Err(e) => return Err(e.into()),
            }
        }
        if sim.now() - start > Duration::from_secs(600) {
            println!("TCP: transfer stalled at {received} bytes");
            return Ok(());
        }
        sim.step(Duration::from_millis(10));
    }
    let (wall, virt) = (wall.elapsed(), sim.now() - start);
    let info = sim.iface(a).tcp().info(client)?;
    let gbit = |secs: f64| len as f64 * 8.0 / secs / 1e9;
    println!(
        "  {} MiB delivered in {:.2} s wall clock ({:.2} Gbit/s through both stacks on one core), {:.3} s simulated ({:.2} Gbit/s)",
        len >> 20,
        wall.as_secs_f64(),
        gbit(wall.as_secs_f64()),
        virt.as_secs_f64(),
        gbit(virt.as_secs_f64()),
    );
    println!(
        "  retransmissions {}, timeouts {}, final cwnd {} bytes ({} segments), srtt {} ms, congestion control {}",
        info.stats.retransmits,
        info.stats.timeouts,
        info.cwnd,
        info.cwnd / info.mss.max(1),
        info.srtt.map_or("-".into(), ms),
        info.congestion,
    );
    sim.iface(b).tcp().close(server)?;
    sim.iface(a).tcp().close(client)?;
    sim.run_until(sim.now() + Duration::from_millis(10));
    println!();
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let net = MemoryNetwork::new(1500);
    let mut sim = Simulation::new();
    println!(
        "netstrata demo: two hosts on an in-memory Ethernet switch (MTU 1500, {} µs one-way latency, virtual clock)",
        LATENCY.as_micros()
    );
    let a = add_host(&mut sim, &net, 1, Some("demo.pcap"))?;
    let b = add_host(&mut sim, &net, 2, None)?;
    let (addr_a, addr_b) = (sim.iface(a).ipv4_addr(), sim.iface(b).ipv4_addr());
    println!();

    // ARP: the first ping resolves B; watch when the cache learns it.
    let start = sim.now();
    let h = sim.iface(a).ping().open(Duration::from_secs(1))?;
    sim.iface(a).ping().send(h, addr_b, 0, 0)?;
    let resolved = sim.run_while_not(Duration::from_secs(5), |s| {
        let now = s.now();
        s.iface(a).link().arp_cache().lookup(now, addr_b).is_some()
    });
    let now = sim.now();
    match sim.iface(a).link().arp_cache().lookup(now, addr_b) {
        Some(mac) if resolved => println!(
            "ARP: {addr_b} is-at {mac} (resolved in {} ms)",
            ms(now - start)
        ),
        _ => println!("ARP: {addr_b} did not resolve"),
    }
    sim.run_until(sim.now() + Duration::from_millis(10));
    while sim.iface(a).ping().recv(h).is_ok() {}
    sim.iface(a).ping().close(h)?;
    println!();

    ping(&mut sim, a, addr_b, 56, 4);
    ping(&mut sim, a, addr_b, 4000, 2);

    // UDP: an echo service on B, a client on A.
    let echo = sim.iface(b).udp().bind(SocketAddrV4::new(addr_b, 7))?;
    let client = sim
        .iface(a)
        .udp()
        .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
    let client_port = sim
        .iface(a)
        .udp()
        .local_addr(client)
        .map(|s| s.port())
        .unwrap_or(0);
    println!("UDP: echo service on {addr_b}:7, client on {addr_a}:{client_port}");
    for msg in [
        &b"hello, netstrata"[..],
        &[0x5a; 3000][..],
        &[0xa5; 8000][..],
    ] {
        sim.iface(a)
            .udp()
            .send_to(client, msg, SocketAddrV4::new(addr_b, 7))?;
        // B echoes whatever arrives.
        sim.run_while_not(Duration::from_secs(1), |s| s.iface(b).udp().can_recv(echo));
        let mut buf = [0; 9000];
        if let Ok((n, from)) = sim.iface(b).udp().recv_from(echo, &mut buf) {
            sim.iface(b).udp().send_to(echo, &buf[..n], from)?;
        }
        let t0 = sim.now();
        sim.run_while_not(Duration::from_secs(1), |s| {
            s.iface(a).udp().can_recv(client)
        });
        match sim.iface(a).udp().recv_from(client, &mut buf) {
            Ok((n, from)) if buf[..n] == msg[..] => {
                println!(
                    "  {n} bytes echoed by {from} intact ({} ms)",
                    ms(sim.now() - t0)
                )
            }
            Ok((n, from)) => println!("  {n} bytes from {from}: CONTENT MISMATCH"),
            Err(e) => println!("  no echo: {e}"),
        }
    }
    sim.iface(a)
        .udp()
        .send_to(client, b"anyone there?", SocketAddrV4::new(addr_b, 9))?;
    sim.run_while_not(Duration::from_secs(1), |s| {
        s.iface(a).udp().peer_addr(client).is_ok() || {
            // Peek without taking: stop once the error has arrived.
            s.iface(b).counters().ip.icmp_tx_errors > 0
        }
    });
    sim.run_until(sim.now() + Duration::from_millis(1));
    match sim.iface(a).udp().take_error(client)? {
        Some(e) => println!(
            "UDP to {addr_b}:9 (closed): ICMP {:?} from {}",
            e.kind, e.reporter
        ),
        None => println!("UDP to {addr_b}:9 (closed): no ICMP error"),
    }
    println!();

    tcp_transfer(&mut sim, a, b, 100 << 20)?;

    for (name, id) in [("A", a), ("B", b)] {
        let c = sim.iface(id).counters();
        println!(
            "host {name}: link rx {} tx {} frames | ip rx {} tx {} (fragments rx {} tx {}, reassembled {}) | icmp echo req {} rep {} errors tx {} | udp rx {} tx {} no-socket {} | drops: malformed {} bad-checksum {}",
            c.link.rx_frames,
            c.link.tx_frames,
            c.ip.rx_packets,
            c.ip.tx_packets,
            c.ip.rx_fragments,
            c.ip.tx_fragments,
            c.ip.reassembled,
            c.ip.icmp_rx_echo_requests,
            c.ip.icmp_tx_echo_replies,
            c.ip.icmp_tx_errors,
            c.udp.rx_datagrams,
            c.udp.tx_datagrams,
            c.udp.rx_no_socket,
            c.link.rx_malformed + c.ip.rx_malformed + c.udp.rx_malformed,
            c.ip.rx_bad_checksum + c.udp.rx_bad_checksum,
        );
    }
    drop(sim);
    println!("\nwrote demo.pcap (host A's view); read it with: tshark -r demo.pcap");
    println!();
    web_demo()?;
    println!(
        "\nwrote demo-web.pcap (host A's view); read it with: tshark -r demo-web.pcap -Y 'dns || http'"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Part two: DNS and HTTP on the socket API.

/// The size of the large file host A downloads.
const LARGE: u64 = 64 << 20;

/// A blocking-socket host on `net`: 192.0.2.`n`, its frames captured to
/// `capture` (first 256 bytes of each) if given.
fn runtime(net: &MemoryNetwork, n: u8, capture: Option<&str>) -> DemoResult<Runtime> {
    let mac = EthernetAddress::local(u32::from(n));
    let cidr = format!("192.0.2.{n}/24").parse()?;
    let port = net.attach();
    let iface = Interface::new(
        InterfaceConfig::new(mac, cidr).with_seed(u64::from(n) + 100),
        port.capabilities(),
    );
    println!("  host {} {mac} {cidr}", (b'A' + n - 1) as char);
    let sleeper = ParkSleeper::for_memory_port(&port);
    Ok(match capture {
        Some(path) => {
            let device = common::capture(port, path)?.with_snaplen(256);
            Runtime::new(iface, device, sleeper)?
        }
        None => Runtime::new(iface, port, sleeper)?,
    })
}

/// The zone host B serves: `www.demo.test` is a CNAME for
/// `web.demo.test`, which is B.
fn demo_zone(web: Ipv4Addr) -> DemoResult<Zone> {
    let name = |s: &str| s.parse::<Name>();
    let record = |owner: &str, data| -> DemoResult<Record> {
        Ok(Record {
            name: name(owner)?,
            class: Class::In,
            ttl: 300,
            data,
        })
    };
    let soa = RecordData::Soa {
        mname: name("ns.demo.test")?,
        rname: name("admin.demo.test")?,
        serial: 1,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 60,
    };
    let mut zone = Zone::new(record("demo.test", soa)?)?;
    zone.add(record("web.demo.test", RecordData::A(web))?)?;
    zone.add(record(
        "www.demo.test",
        RecordData::Cname(name("web.demo.test")?),
    )?)?;
    Ok(zone)
}

/// An endless stream of pseudo-random bytes: byte `i` is byte `i % 8` of
/// a hash of `i / 8`, so the stream is the same whatever the read sizes.
/// The server generates the large file with it on the fly, and the client
/// again to check what arrived.
struct Pattern {
    pos: u64,
}

impl Pattern {
    fn word(index: u64) -> [u8; 8] {
        // The SplitMix64 finaliser.
        let mut z = index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).to_le_bytes()
    }
}

impl Read for Pattern {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut done = 0;
        while done < out.len() {
            let offset = (self.pos % 8) as usize;
            let n = (8 - offset).min(out.len() - done);
            out[done..done + n].copy_from_slice(&Pattern::word(self.pos / 8)[offset..offset + n]);
            self.pos += n as u64;
            done += n;
        }
        Ok(out.len())
    }
}

const PAGE: &str = "<!doctype html>\n<title>netstrata demo</title>\n<h1>Hello from host B</h1>\n<p>Served by netstrata's HTTP/1.1 server over netstrata's TCP.</p>\n<p><a href=\"/large.bin\">large.bin</a> (64 MiB)</p>\n";

/// Host B's web site: the page, the large file, 404 for the rest.
fn site(req: &mut Request<'_>) -> Response {
    match (req.method(), req.path()) {
        ("GET" | "HEAD", "/") => Response::html(200, PAGE),
        ("GET" | "HEAD", "/large.bin") => Response::stream(
            200,
            "application/octet-stream",
            Pattern { pos: 0 }.take(LARGE),
            Some(LARGE),
        ),
        ("GET" | "HEAD", _) => Response::error(404),
        _ => Response::error(405).with_header("Allow", "GET, HEAD"),
    }
}

fn web_demo() -> DemoResult<()> {
    let net = MemoryNetwork::new(1500);
    println!(
        "Part two: DNS and HTTP/1.1 over the blocking socket API (real threads, wall clock), on a new switch"
    );
    let a = runtime(&net, 1, Some("demo-web.pcap"))?;
    let b = Arc::new(runtime(&net, 2, None)?);
    let addr_b = b.ipv4_addr();

    // Host B: the DNS responder on UDP port 53, on a thread of its own.
    let zone = demo_zone(addr_b)?;
    let dns_socket = UdpSocket::bind(&b, (addr_b, 53))?;
    let stop = Arc::new(AtomicBool::new(false));
    let responder = {
        let stop = stop.clone();
        std::thread::spawn(move || serve_udp(&dns_socket, &zone, &stop))
    };
    // Host B: the HTTP server on port 80.
    let server = Server::spawn(
        TcpListener::bind(&b, (addr_b, 80))?,
        site,
        ServerConfig::default(),
    )?;
    println!(
        "DNS: host B answers for demo.test on {addr_b}:53; HTTP: host B serves http://{addr_b}/"
    );

    // Host A: resolve the name, twice (the second answer is cached).
    let dns_server = SocketAddr::from((addr_b, 53));
    let config = ResolverConfig {
        seed: Some(0x6465_6d6f),
        ..ResolverConfig::default()
    };
    let resolver = Resolver::new(&a, dns_server, config);
    let name: Name = "www.demo.test".parse()?;
    let t = std::time::Instant::now();
    let answer = resolver.resolve(&name, RecordType::A)?;
    let took = t.elapsed();
    for cname in &answer.cnames {
        if let RecordData::Cname(target) = &cname.data {
            println!("  {} is an alias for {target}", cname.name);
        }
    }
    for record in &answer.records {
        if let RecordData::A(ip) = record.data {
            println!("  {} has address {ip} (TTL {} s)", record.name, record.ttl);
        }
    }
    let t = std::time::Instant::now();
    resolver.resolve(&name, RecordType::A)?;
    println!(
        "  resolved in {:.3} ms (ARP included); again from the cache in {:.3} ms",
        took.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );

    // Host A: fetch the page and the large file, resolving through B.
    let client = Client::new(&a).with_resolver(resolver);
    let t = std::time::Instant::now();
    let mut page = client.get("http://www.demo.test/")?;
    let body = page.read_to_vec(1 << 20)?;
    println!(
        "HTTP: GET http://www.demo.test/ -> {} ({} bytes, {}, {:.3} ms)",
        page.status_line(),
        body.len(),
        String::from_utf8_lossy(page.headers().get("content-type").unwrap_or(b"?")),
        t.elapsed().as_secs_f64() * 1e3
    );
    drop(page);
    for line in String::from_utf8_lossy(&body).lines() {
        println!("  | {line}");
    }
    let t = std::time::Instant::now();
    let mut large = client.get("http://www.demo.test/large.bin")?;
    println!(
        "HTTP: GET http://www.demo.test/large.bin -> {} (Content-Length {})",
        large.status_line(),
        String::from_utf8_lossy(large.headers().get("content-length").unwrap_or(b"?")),
    );
    let (mut got, mut expected) = (vec![0u8; 256 * 1024], vec![0u8; 256 * 1024]);
    let (mut total, mut pattern, mut intact) = (0u64, Pattern { pos: 0 }, true);
    loop {
        let n = large.read(&mut got)?;
        if n == 0 {
            break;
        }
        pattern.read_exact(&mut expected[..n])?;
        intact &= got[..n] == expected[..n];
        total += n as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    drop(large);
    println!(
        "  {} MiB received in {secs:.2} s ({:.2} Gbit/s), {}; connections kept for reuse: {}",
        total >> 20,
        total as f64 * 8.0 / secs / 1e9,
        if intact && total == LARGE {
            "every byte as sent"
        } else {
            "CONTENT MISMATCH"
        },
        client.idle_connections()
    );

    let stats = server.shutdown(std::time::Duration::from_secs(2));
    println!(
        "HTTP server shut down in {:.1} ms: {} connection(s), {} request(s), {} unfinished",
        stats.elapsed.as_secs_f64() * 1e3,
        stats.stats.connections_accepted,
        stats.stats.requests,
        stats.unfinished
    );
    stop.store(true, Ordering::Relaxed);
    let answered = responder.join().map_err(|_| "DNS responder panicked")??;
    println!("DNS responder stopped after {answered} queries");
    drop(client);
    let c = a.with_interface(|iface, _| iface.counters());
    println!(
        "host A: link rx {} tx {} frames | tcp segments rx {} tx {}, connections {} | udp rx {} tx {}",
        c.link.rx_frames,
        c.link.tx_frames,
        c.tcp.rx_segments,
        c.tcp.tx_segments,
        c.tcp.established,
        c.udp.rx_datagrams,
        c.udp.tx_datagrams,
    );
    if !(intact && total == LARGE) {
        return Err("the large file arrived damaged".into());
    }
    Ok(())
}
