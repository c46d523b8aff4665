//! The DNS resolver against the DNS responder: over the in-memory network
//! with two runtimes, and over `std::net` on loopback.

mod common;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use netstrata::application::dns::resolver::{ResolveError, Resolver, ResolverConfig};
use netstrata::application::dns::responder::{Zone, serve_tcp, serve_udp};
use netstrata::application::dns::{Class, Message, Name, Record, RecordData, RecordType};
use netstrata::application::net::{DatagramSocket, StdNetwork};
use netstrata::link::MemoryNetwork;
use netstrata::socket::{Runtime, TcpListener, TcpStream, UdpSocket};

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn n(s: &str) -> Name {
    s.parse().unwrap()
}

fn rec(name: &str, ttl: u32, data: RecordData) -> Record {
    Record {
        name: n(name),
        class: Class::In,
        ttl,
        data,
    }
}

fn zone() -> Zone {
    let mut z = common::example_zone();
    let a = |x| RecordData::A(Ipv4Addr::new(192, 0, 2, x));
    z.add(rec("www.example.test", 300, a(10))).unwrap();
    z.add(rec("www.example.test", 100, a(11))).unwrap();
    z.add(rec(
        "c1.example.test",
        300,
        RecordData::Cname(n("c2.example.test")),
    ))
    .unwrap();
    z.add(rec(
        "c2.example.test",
        300,
        RecordData::Cname(n("www.example.test")),
    ))
    .unwrap();
    z.add(rec(
        "loop1.example.test",
        300,
        RecordData::Cname(n("loop2.example.test")),
    ))
    .unwrap();
    z.add(rec(
        "loop2.example.test",
        300,
        RecordData::Cname(n("loop1.example.test")),
    ))
    .unwrap();
    for i in 0..10u8 {
        let txt = RecordData::Txt(vec![vec![b'a' + i; 100]]);
        z.add(rec("big.example.test", 60, txt)).unwrap();
    }
    z
}

/// A socket that counts the datagrams it receives and ignores the first
/// `drop_first` of them, as if they were lost.
struct Lossy<S> {
    inner: S,
    drop_first: usize,
    seen: Arc<AtomicUsize>,
}

impl<S: DatagramSocket> DatagramSocket for Lossy<S> {
    fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.inner.send_to(buf, to)
    }
    fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            let r = self.inner.recv_from(buf)?;
            if self.seen.fetch_add(1, Ordering::SeqCst) >= self.drop_first {
                return Ok(r);
            }
        }
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(t)
    }
}

/// The two runtimes and a UDP (and TCP) responder on the server.
struct Fixture {
    client: Runtime,
    server: Arc<Runtime>,
    stop: Arc<AtomicBool>,
    seen: Arc<AtomicUsize>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Fixture {
    fn new(drop_first: usize) -> Fixture {
        let net = MemoryNetwork::new(1500);
        let client = common::runtime(&net, 1);
        let server = Arc::new(common::runtime(&net, 2));
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let sock = Lossy {
            inner: UdpSocket::bind(&server, (SERVER, 53)).unwrap(),
            drop_first,
            seen: seen.clone(),
        };
        let listener = TcpListener::bind(&server, (SERVER, 53)).unwrap();
        let (s1, s2) = (stop.clone(), stop.clone());
        let threads = vec![
            thread::spawn(move || {
                serve_udp(&sock, &zone(), &s1).unwrap();
            }),
            thread::spawn(move || {
                let _ = serve_tcp(&listener, &zone(), &s2);
            }),
        ];
        Fixture {
            client,
            server,
            stop,
            seen,
            threads,
        }
    }

    fn resolver(&self, timeout_ms: u64) -> Resolver<&Runtime> {
        let config = ResolverConfig {
            timeout: Duration::from_millis(timeout_ms),
            seed: Some(7),
            ..ResolverConfig::default()
        };
        Resolver::new(&self.client, (SERVER, 53).into(), config)
    }

    fn queries(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the TCP loop blocked in accept.
        let _ =
            TcpStream::connect_timeout(&self.client, &(SERVER, 53).into(), Duration::from_secs(1));
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
        let _ = &self.server;
    }
}

fn addrs(r: &[Record]) -> Vec<RecordData> {
    r.iter().map(|r| r.data.clone()).collect()
}

#[test]
fn a_records_and_cname_chain() {
    let f = Fixture::new(0);
    let mut r = f.resolver(500);
    let mut ips = r.lookup_ipv4("www.example.test").unwrap();
    ips.sort();
    assert_eq!(
        ips,
        [Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 11)]
    );
    let a = r.resolve(&n("c1.example.test"), RecordType::A).unwrap();
    assert_eq!(a.canonical, n("www.example.test"));
    assert_eq!(a.cnames.len(), 2);
    assert_eq!(a.records.len(), 2);
    // Asking for the CNAME itself does not follow it.
    let c = r.resolve(&n("c1.example.test"), RecordType::Cname).unwrap();
    assert_eq!(addrs(&c.records), [RecordData::Cname(n("c2.example.test"))]);
    // A loop is an error, not a hang.
    assert!(matches!(
        r.resolve(&n("loop1.example.test"), RecordType::A),
        Err(ResolveError::CnameChain)
    ));
    // NODATA is an empty answer.
    let none = r.resolve(&n("www.example.test"), RecordType::Mx).unwrap();
    assert!(none.records.is_empty());
    // Outside the zone: REFUSED.
    assert!(matches!(
        r.lookup_ipv4("example.com"),
        Err(ResolveError::Refused)
    ));
}

#[test]
fn nxdomain_is_cached_negatively() {
    let f = Fixture::new(0);
    let mut r = f.resolver(500);
    assert!(matches!(
        r.lookup_ipv4("nope.example.test"),
        Err(ResolveError::NxDomain)
    ));
    let sent = f.queries();
    assert_eq!(sent, 1);
    assert!(matches!(
        r.lookup_ipv4("nope.example.test"),
        Err(ResolveError::NxDomain)
    ));
    assert!(matches!(
        r.resolve(&n("nope.example.test"), RecordType::Txt),
        Err(ResolveError::NxDomain)
    ));
    assert_eq!(f.queries(), sent, "the negative answer came from the cache");
}

#[test]
fn truncated_answer_falls_back_to_tcp() {
    let f = Fixture::new(0);
    let mut r = f.resolver(2000);
    let a = r.resolve(&n("big.example.test"), RecordType::Txt).unwrap();
    assert_eq!(a.records.len(), 10);
    assert_eq!(f.queries(), 1);
}

#[test]
fn lost_queries_are_retried() {
    let f = Fixture::new(2);
    let mut r = f.resolver(200);
    let start = Instant::now();
    assert_eq!(r.lookup_ipv4("www.example.test").unwrap().len(), 2);
    assert_eq!(f.queries(), 3);
    assert!(start.elapsed() >= Duration::from_millis(400));
    // All three tries lost: timed out.
    let f = Fixture::new(3);
    let mut r = f.resolver(100);
    assert!(matches!(
        r.lookup_ipv4("www.example.test"),
        Err(ResolveError::TimedOut)
    ));
}

#[test]
fn forged_reply_is_ignored() {
    let net = MemoryNetwork::new(1500);
    let client = common::runtime(&net, 1);
    let server = common::runtime(&net, 2);
    let sock = UdpSocket::bind(&server, (SERVER, 53)).unwrap();
    let forger = UdpSocket::bind(&server, (SERVER, 5353)).unwrap();
    let responder = thread::spawn(move || {
        let mut buf = [0u8; 512];
        let (len, from) = sock.recv_from(&mut buf).unwrap();
        let query = Message::parse(&buf[..len]).unwrap();
        let mut wrong_id = zone().answer(&query);
        wrong_id.header.id ^= 1;
        wrong_id.answers[0].data = RecordData::A(Ipv4Addr::new(6, 6, 6, 6));
        // A reply with the wrong ID from the right address, and a reply
        // with the right ID from the wrong port: both must be ignored.
        sock.send_to(&wrong_id.emit().unwrap(), from).unwrap();
        wrong_id.header.id ^= 1;
        forger.send_to(&wrong_id.emit().unwrap(), from).unwrap();
        thread::sleep(Duration::from_millis(50));
        sock.send_to(&zone().answer(&query).emit().unwrap(), from)
            .unwrap();
        // Kept open until the resolver has its answer: a socket dropped
        // at once may lose what it queued.
        (sock, forger)
    });
    let config = ResolverConfig {
        timeout: Duration::from_secs(2),
        attempts: 1,
        ..ResolverConfig::default()
    };
    let mut r = Resolver::new(&client, (SERVER, 53).into(), config);
    let mut ips = r.lookup_ipv4("www.example.test").unwrap();
    ips.sort();
    assert_eq!(
        ips,
        [Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 11)]
    );
    drop(responder.join().unwrap());
}

#[test]
fn cache_hits_within_ttl_and_expires_after() {
    let f = Fixture::new(0);
    let base = Instant::now();
    let offset = Arc::new(AtomicU64::new(0));
    let o = offset.clone();
    let config = ResolverConfig {
        timeout: Duration::from_millis(500),
        ..ResolverConfig::default()
    };
    let mut r = Resolver::with_clock(&f.client, (SERVER, 53).into(), config, move || {
        base + Duration::from_secs(o.load(Ordering::SeqCst))
    });
    r.lookup_ipv4("www.example.test").unwrap();
    assert_eq!(f.queries(), 1);
    offset.store(99, Ordering::SeqCst);
    r.lookup_ipv4("WWW.example.test").unwrap();
    assert_eq!(
        f.queries(),
        1,
        "cached within the TTL (the RRset's smallest, 100 s)"
    );
    offset.store(100, Ordering::SeqCst);
    r.lookup_ipv4("www.example.test").unwrap();
    assert_eq!(f.queries(), 2, "expired after it");
    // NXDOMAIN lasts min(SOA TTL, MINIMUM) = 30 s.
    let _ = r.lookup_ipv4("gone.example.test");
    offset.store(129, Ordering::SeqCst);
    let _ = r.lookup_ipv4("gone.example.test");
    assert_eq!(f.queries(), 3);
    offset.store(130, Ordering::SeqCst);
    let _ = r.lookup_ipv4("gone.example.test");
    assert_eq!(f.queries(), 4);
}

#[test]
fn cache_capacity_is_bounded() {
    let f = Fixture::new(0);
    let config = ResolverConfig {
        timeout: Duration::from_millis(500),
        cache_capacity: 2,
        ..ResolverConfig::default()
    };
    let mut r = Resolver::new(&f.client, (SERVER, 53).into(), config);
    for name in [
        "www.example.test",
        "a.example.test",
        "b.example.test",
        "c1.example.test",
    ] {
        let _ = r.lookup_ipv4(name);
        assert!(r.cache_len() <= 2);
    }
}

#[test]
fn over_std_net_on_loopback() {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = udp.local_addr().unwrap();
    let tcp = std::net::TcpListener::bind(addr).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (s1, s2) = (stop.clone(), stop.clone());
    let u = thread::spawn(move || serve_udp(&udp, &zone(), &s1).unwrap());
    let t = thread::spawn(move || serve_tcp(&tcp, &zone(), &s2).unwrap());
    let config = ResolverConfig {
        timeout: Duration::from_secs(2),
        ..ResolverConfig::default()
    };
    let mut r = Resolver::new(StdNetwork, addr, config);
    assert_eq!(r.lookup_ipv4("c1.example.test").unwrap().len(), 2);
    let big = r.resolve(&n("big.example.test"), RecordType::Txt).unwrap();
    assert_eq!(big.records.len(), 10);
    assert!(matches!(
        r.lookup_ipv4("x.example.test"),
        Err(ResolveError::NxDomain)
    ));
    stop.store(true, Ordering::SeqCst);
    let _ = std::net::TcpStream::connect(addr);
    assert!(u.join().unwrap() >= 2);
    assert_eq!(t.join().unwrap(), 1);
}
