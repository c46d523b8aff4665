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
use netstrata::blocking::{Runtime, TcpListener, TcpStream, UdpSocket};
use netstrata::link::MemoryNetwork;

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
    let r = f.resolver(500);
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
    let r = f.resolver(500);
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
    let r = f.resolver(2000);
    let a = r.resolve(&n("big.example.test"), RecordType::Txt).unwrap();
    assert_eq!(a.records.len(), 10);
    assert_eq!(f.queries(), 1);
}

#[test]
fn lost_queries_are_retried() {
    let f = Fixture::new(2);
    let r = f.resolver(200);
    let start = Instant::now();
    assert_eq!(r.lookup_ipv4("www.example.test").unwrap().len(), 2);
    assert_eq!(f.queries(), 3);
    assert!(start.elapsed() >= Duration::from_millis(400));
    // All three tries lost: timed out.
    let f = Fixture::new(3);
    let r = f.resolver(100);
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
    let r = Resolver::new(&client, (SERVER, 53).into(), config);
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
    let r = Resolver::with_clock(&f.client, (SERVER, 53).into(), config, move || {
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
    let r = Resolver::new(&f.client, (SERVER, 53).into(), config);
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
    let r = Resolver::new(StdNetwork, addr, config);
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

// ---------------------------------------------------------------------------
// Against hostile or slow servers (over std on loopback).

/// A DNS server on loopback UDP (and TCP, same port): each query is
/// answered by `answer` on a thread of its own, after the delay it asks
/// for; `None` answers nothing. `tcp` serves the TCP side, if given.
struct FakeServer {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
}

impl FakeServer {
    fn start(
        answer: impl Fn(&Message) -> Option<(Message, Duration)> + Send + Sync + 'static,
        tcp: Option<fn(std::net::TcpStream)>,
    ) -> FakeServer {
        let udp = Arc::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
        let addr = udp.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let answer = Arc::new(answer);
        let count = queries.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(q) = Message::parse(&buf[..n]) else {
                    continue;
                };
                let (udp, answer) = (udp.clone(), answer.clone());
                thread::spawn(move || {
                    if let Some((m, delay)) = answer(&q) {
                        thread::sleep(delay);
                        let _ = udp.send_to(&m.emit().unwrap(), from);
                    }
                });
            }
        });
        if let Some(serve) = tcp {
            let listener = std::net::TcpListener::bind(addr).unwrap();
            thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    thread::spawn(move || serve(stream));
                }
            });
        }
        FakeServer { addr, queries }
    }

    fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

/// The reply to `q` with `answers` and `authorities`.
fn reply(
    q: &Message,
    rcode: netstrata::application::dns::Rcode,
    answers: Vec<Record>,
    authorities: Vec<Record>,
) -> Message {
    let mut header = q.header;
    header.qr = true;
    header.rcode = rcode;
    Message {
        header,
        questions: q.questions.clone(),
        answers,
        authorities,
        additionals: Vec::new(),
    }
}

#[test]
fn a_trickled_tcp_answer_ends_at_the_lookup_deadline() {
    // UDP says "truncated"; the TCP answer then comes one byte every
    // 300 ms. Each byte restarts a socket's read timeout, so only an
    // overall deadline ends the lookup. Before it had one, this took
    // about 30 s (and the shared resolver was locked all along).
    let server = FakeServer::start(
        |q| {
            let mut m = reply(
                q,
                netstrata::application::dns::Rcode::NoError,
                vec![],
                vec![],
            );
            m.header.tc = true;
            Some((m, Duration::ZERO))
        },
        Some(|mut stream: std::net::TcpStream| {
            use std::io::{Read, Write};
            let mut buf = [0u8; 512];
            let _ = stream.read(&mut buf);
            // A 100-byte message, announced at once, trickled after.
            if stream.write_all(&[0, 100]).is_err() {
                return;
            }
            for _ in 0..100 {
                thread::sleep(Duration::from_millis(300));
                if stream.write_all(&[0]).is_err() {
                    return;
                }
            }
        }),
    );
    let config = ResolverConfig {
        timeout: Duration::from_secs(1),
        lookup_timeout: Duration::from_secs(2),
        ..ResolverConfig::default()
    };
    let r = Resolver::new(StdNetwork, server.addr, config);
    let t = Instant::now();
    let result = r.lookup_ipv4("slow.example.test");
    let took = t.elapsed();
    assert!(matches!(result, Err(ResolveError::TimedOut)), "{result:?}");
    assert!(took < Duration::from_millis(2600), "took {took:?}");
}

#[test]
fn one_slow_lookup_holds_up_no_other() {
    // Two threads share a resolver: one lookup waits 1.5 s for its
    // server, the other is answered at once and must not wait for it (the
    // cache's lock is never held across network I/O).
    let server = FakeServer::start(
        |q| {
            let slow = q.questions[0].name == n("slow.example.test");
            let a = rec(
                &q.questions[0].name.to_string(),
                60,
                RecordData::A(Ipv4Addr::new(192, 0, 2, 7)),
            );
            let delay = if slow {
                Duration::from_millis(1500)
            } else {
                Duration::ZERO
            };
            Some((
                reply(
                    q,
                    netstrata::application::dns::Rcode::NoError,
                    vec![a],
                    vec![],
                ),
                delay,
            ))
        },
        None,
    );
    let config = ResolverConfig {
        timeout: Duration::from_secs(3),
        ..ResolverConfig::default()
    };
    let r = Arc::new(Resolver::new(StdNetwork, server.addr, config));
    let slow = {
        let r = r.clone();
        thread::spawn(move || r.lookup_ipv4("slow.example.test"))
    };
    thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    assert_eq!(
        r.lookup_ipv4("fast.example.test").unwrap(),
        [Ipv4Addr::new(192, 0, 2, 7)]
    );
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(700),
        "the fast lookup took {took:?}"
    );
    assert_eq!(slow.join().unwrap().unwrap().len(), 1);
}

#[test]
fn ttls_are_capped_at_a_day_and_negative_ones_at_an_hour() {
    use netstrata::application::dns::Rcode;
    let server = FakeServer::start(
        |q| {
            let name = q.questions[0].name.clone();
            if name == n("gone.example.test") {
                let soa = rec(
                    "example.test",
                    7 * 86400,
                    RecordData::Soa {
                        mname: n("ns.example.test"),
                        rname: n("admin.example.test"),
                        serial: 1,
                        refresh: 60,
                        retry: 60,
                        expire: 600,
                        minimum: 7 * 86400,
                    },
                );
                return Some((reply(q, Rcode::NxDomain, vec![], vec![soa]), Duration::ZERO));
            }
            let a = rec(
                &name.to_string(),
                10 * 86400,
                RecordData::A(Ipv4Addr::new(192, 0, 2, 8)),
            );
            Some((reply(q, Rcode::NoError, vec![a], vec![]), Duration::ZERO))
        },
        None,
    );
    let base = Instant::now();
    let offset = Arc::new(AtomicU64::new(0));
    let o = offset.clone();
    let r = Resolver::with_clock(
        StdNetwork,
        server.addr,
        ResolverConfig::default(),
        move || base + Duration::from_secs(o.load(Ordering::SeqCst)),
    );
    let at = |secs| offset.store(secs, Ordering::SeqCst);
    r.lookup_ipv4("www.example.test").unwrap();
    let _ = r.lookup_ipv4("gone.example.test");
    assert_eq!(server.queries(), 2);
    // A ten-day TTL is kept a day; a week of negative TTL, an hour.
    at(3599);
    r.lookup_ipv4("www.example.test").unwrap();
    let _ = r.lookup_ipv4("gone.example.test");
    assert_eq!(server.queries(), 2);
    at(3600);
    let _ = r.lookup_ipv4("gone.example.test");
    assert_eq!(server.queries(), 3, "negative answer kept past an hour");
    at(86_399);
    r.lookup_ipv4("www.example.test").unwrap();
    assert_eq!(server.queries(), 3);
    at(86_400);
    r.lookup_ipv4("www.example.test").unwrap();
    assert_eq!(server.queries(), 4, "answer kept past a day");
}

#[test]
fn the_responder_serves_tcp_clients_at_once_while_one_trickles() {
    // A client that connects and never finishes its query does not keep
    // the responder from answering another (one connection at a time, it
    // did for 2 s per byte it trickled).
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = tcp.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let server = thread::spawn(move || serve_tcp(&tcp, &zone(), &s).unwrap());
    let mut stuck = std::net::TcpStream::connect(addr).unwrap();
    {
        use std::io::Write;
        stuck.write_all(&[0]).unwrap();
    }
    thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let query = Message {
        header: netstrata::application::dns::Header::query(99),
        questions: vec![netstrata::application::dns::Question {
            name: n("www.example.test"),
            qtype: RecordType::A,
            qclass: Class::In,
        }],
        answers: vec![],
        authorities: vec![],
        additionals: vec![],
    };
    netstrata::application::dns::transport::write_framed(&mut client, &query.emit().unwrap())
        .unwrap();
    let answer = netstrata::application::dns::transport::read_framed(&mut client)
        .unwrap()
        .unwrap();
    assert_eq!(Message::parse(&answer).unwrap().answers.len(), 2);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    stop.store(true, Ordering::SeqCst);
    drop(client);
    let _ = std::net::TcpStream::connect(addr);
    drop(stuck);
    assert!(server.join().unwrap() >= 1);
}
