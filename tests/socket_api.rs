//! The blocking, std-like socket API on real threads over the in-memory
//! network: two runtimes, each driving its own interface.

mod common;

use common::pattern;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use netstrata::blocking::{Poller, Runtime, TcpListener, TcpStream, Token, UdpSocket};
use netstrata::link::MemoryNetwork;

fn pair() -> (Runtime, Runtime) {
    let net = MemoryNetwork::new(1500);
    (common::runtime(&net, 1), common::runtime(&net, 2))
}

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// Host A's runtime, host B's, and a connection from A to B's `port`:
/// (a, b, A's end, B's end).
fn connected(port: u16) -> (Runtime, Runtime, TcpStream, TcpStream) {
    let (a, b) = pair();
    let listener = TcpListener::bind(&b, (B, port)).unwrap();
    let c = TcpStream::connect(&a, (B, port)).unwrap();
    let (s, _) = listener.accept().unwrap();
    (a, b, c, s)
}

#[test]
fn tcp_echo_full_duplex_across_threads() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    assert_eq!(listener.local_addr().unwrap(), "0.0.0.0:7".parse().unwrap());
    let server = thread::spawn(move || {
        let (s, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), std::net::IpAddr::V4(A));
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0;
        loop {
            let n = (&s).read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            (&s).write_all(&buf[..n]).unwrap();
            total += n;
        }
        total
    });
    let c = TcpStream::connect(&a, (B, 7)).unwrap();
    assert_eq!(c.peer_addr().unwrap(), SocketAddr::from((B, 7)));
    let data = pattern(3_000_000);
    let mut echoed = Vec::new();
    thread::scope(|scope| {
        scope.spawn(|| {
            (&c).write_all(&data).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
        });
        (&c).read_to_end(&mut echoed).unwrap();
    });
    assert_eq!(server.join().unwrap(), data.len());
    assert!(echoed == data, "echo differs");
    let info = c.info().unwrap();
    assert!(info.srtt.is_some());
}

#[test]
fn many_streams_on_many_threads() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&b, (B, 9000)).unwrap();
    const N: usize = 16;
    thread::scope(|scope| {
        scope.spawn(|| {
            let mut handlers = Vec::new();
            for s in listener.incoming().take(N) {
                let s = s.unwrap();
                handlers.push(thread::spawn(move || {
                    let mut got = Vec::new();
                    (&s).read_to_end(&mut got).unwrap();
                    (&s).write_all(&(got.len() as u64).to_be_bytes()).unwrap();
                    got
                }));
            }
            for (i, h) in handlers.into_iter().enumerate() {
                let got = h.join().unwrap();
                assert!(!got.is_empty(), "handler {i}");
            }
        });
        for i in 0..N {
            let a = &a;
            scope.spawn(move || {
                let s = TcpStream::connect(a, (B, 9000)).unwrap();
                s.set_nodelay(true).unwrap();
                let data = pattern(10_000 + i * 1000);
                (&s).write_all(&data).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                let mut len = [0u8; 8];
                (&s).read_exact(&mut len).unwrap();
                assert_eq!(u64::from_be_bytes(len), data.len() as u64);
            });
        }
    });
}

#[test]
fn connection_refused_and_timeouts() {
    let (a, _b) = pair();
    let e = TcpStream::connect(&a, (B, 1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    // Nobody at .99: the connect timeout fires.
    let t = Instant::now();
    let e = TcpStream::connect_timeout(
        &a,
        &SocketAddr::from((Ipv4Addr::new(192, 0, 2, 99), 80)),
        Duration::from_millis(300),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(t.elapsed() < Duration::from_secs(5));
    // Out of the subnet and no gateway: no route.
    let e = TcpStream::connect(&a, (Ipv4Addr::new(203, 0, 113, 1), 80)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HostUnreachable);
    // Address in use.
    let _l = TcpListener::bind(&a, (A, 80)).unwrap();
    assert_eq!(
        TcpListener::bind(&a, (A, 80)).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
}

#[test]
fn read_timeout_and_dropping_closes_gracefully() {
    let (_a, _b, c, s) = connected(5000);
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        (&s).read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert!(s.set_read_timeout(Some(Duration::ZERO)).is_err());
    (&c).write_all(b"last words").unwrap();
    drop(c); // FIN after the data
    let mut got = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (&s).read_to_end(&mut got).unwrap();
    assert_eq!(got, b"last words");
}

#[test]
fn udp_send_recv_connect_and_errors() {
    let (a, b) = pair();
    let server = UdpSocket::bind(&b, (B, 53)).unwrap();
    let client = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    let port = client.local_addr().unwrap().port();
    assert!(port >= 49152);
    client.send_to(b"query", (B, 53)).unwrap();
    let mut buf = [0u8; 100];
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"query");
    assert_eq!(from, SocketAddr::from((A, port)));
    server.send_to(b"answer", from).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"answer");
    // A big datagram, fragmented.
    let big = pattern(8000);
    client.send_to(&big, (B, 53)).unwrap();
    let mut bigbuf = vec![0u8; 9000];
    let (n, _) = server.recv_from(&mut bigbuf).unwrap();
    assert_eq!(&bigbuf[..n], &big[..]);
    // Connected to a closed port: the next recv reports it.
    client.connect((B, 54)).unwrap();
    client.send(b"anyone?").unwrap();
    let e = client.recv(&mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    // Read timeout on an idle socket.
    server
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    assert_eq!(
        server.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

#[test]
fn ping_as_a_call() {
    let (a, _b) = pair();
    let r = a.ping(B, 1, 56, netstrata::Duration::from_secs(2)).unwrap();
    assert_eq!(r.from, B);
    assert_eq!(r.icmp_len, 64);
    let e = a
        .ping(
            Ipv4Addr::new(192, 0, 2, 77),
            1,
            56,
            netstrata::Duration::from_millis(500),
        )
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::HostUnreachable),
        "{e}"
    );
}

#[test]
fn idle_runtime_sleeps() {
    // An idle stack does not spin: once ARP announcements are out and no
    // timer is pending, the runtime's thread sleeps until something
    // happens.
    let (a, _b) = pair();
    thread::sleep(Duration::from_millis(100));
    let before = a.poll_rounds();
    thread::sleep(Duration::from_millis(500));
    let woke = a.poll_rounds() - before;
    assert!(woke <= 2, "an idle runtime woke {woke} times in 500 ms");
    // And it does wake for work.
    a.ping(B, 1, 8, netstrata::Duration::from_secs(2)).unwrap();
    assert!(a.poll_rounds() > before + woke);
}

#[test]
fn listener_close_unblocks_accept_and_nonblocking_accept() {
    let (a, b) = pair();
    let listener = std::sync::Arc::new(TcpListener::bind(&b, (B, 8080)).unwrap());
    listener.set_nonblocking(true).unwrap();
    assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    let _c = TcpStream::connect(&a, (B, 8080)).unwrap();
    let t = Instant::now();
    loop {
        match listener.accept() {
            Ok((_, peer)) => break assert_eq!(peer.ip(), A),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(t.elapsed() < Duration::from_secs(5));
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    listener.set_nonblocking(false).unwrap();
    // A blocked accept returns once another thread closes the listener.
    let l2 = listener.clone();
    let blocked = thread::spawn(move || l2.accept().map(|_| ()));
    thread::sleep(Duration::from_millis(50));
    listener.close();
    let e = blocked.join().unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotConnected);
    assert_eq!(
        TcpStream::connect(&a, (B, 8080)).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
    // The port is free again; the closed listener's handle, reused by the
    // new listener, is not closed a second time when the old one drops.
    let again = TcpListener::bind(&b, (B, 8080)).unwrap();
    drop(listener);
    let _c = TcpStream::connect(&a, (B, 8080)).unwrap();
    again.accept().unwrap();
}

#[test]
fn shutdown_read_unblocks_a_reader() {
    let (_a, _b, _c, s) = connected(5001);
    let s = std::sync::Arc::new(s);
    let reader = {
        let s = s.clone();
        thread::spawn(move || (&*s).read(&mut [0u8; 16]))
    };
    thread::sleep(Duration::from_millis(50));
    s.shutdown(Shutdown::Read).unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), 0);
    assert_eq!((&*s).read(&mut [0u8; 16]).unwrap(), 0);
}

#[test]
fn writing_to_a_closed_peer_fails_with_a_reset() {
    // The server reads nothing more and closes; the client keeps writing.
    // The server's stack resets the connection at the first data after
    // the close (as Linux does), so the client's writes fail soon instead
    // of filling buffers until a timeout.
    let (_a, b, c, s) = connected(5002);
    drop(s);
    let t = Instant::now();
    let chunk = [0x42u8; 1000];
    let err = loop {
        match (&c).write(&chunk) {
            Ok(_) => assert!(t.elapsed() < Duration::from_secs(5), "writes never failed"),
            Err(e) => break e,
        }
        thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    let stats = b.with_interface(|iface, _| iface.counters().tcp);
    assert_eq!(stats.connections.aborts_on_data, 1, "{stats:?}");
}

#[test]
fn bytes_available_counts_what_a_read_would_return_without_blocking() {
    let (_a, _b, c, s) = connected(5003);
    assert_eq!(c.bytes_available().unwrap(), 0);
    (&s).write_all(b"hello").unwrap();
    // Acknowledged: in the client's receive buffer.
    s.wait_acked(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(c.bytes_available().unwrap(), 5);
    let mut two = [0u8; 2];
    (&c).read_exact(&mut two).unwrap();
    assert_eq!(c.bytes_available().unwrap(), 3);
}

/// `try_clone`, as std users reach for it: one thread reads through a
/// clone while another writes through the original. The clones share the
/// read timeout, and the connection stays open until the last of them is
/// dropped, then closes gracefully (the peer reads its end).
#[test]
fn a_cloned_stream_reads_while_the_original_writes() {
    let (_a, _b, mut c, mut s) = connected(9100);
    let reader = c.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_secs(10)));
    let data = pattern(1 << 20);
    let len = data.len();
    let echoed = thread::scope(|scope| {
        let echo = scope.spawn(|| {
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0;
            while total < len {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "early end of stream after {total}");
                s.write_all(&buf[..n]).unwrap();
                total += n;
            }
        });
        let read = scope.spawn(move || {
            let mut reader = reader;
            let mut got = vec![0u8; len];
            reader.read_exact(&mut got).unwrap();
            (reader, got)
        });
        c.write_all(&data).unwrap();
        echo.join().unwrap();
        read.join().unwrap()
    });
    let (reader, got) = echoed;
    assert!(got == data, "echo differs");
    // Dropping one clone leaves the connection open for the other.
    drop(c);
    (&reader).write_all(b"still open").unwrap();
    let mut buf = [0u8; 10];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still open");
    // The last one closes it: the peer reads the end of the stream.
    drop(reader);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(s.read(&mut buf).unwrap(), 0);
}

/// A cloned UDP socket is the same socket: a datagram sent through the
/// clone is answered to the original, and the port stays bound until
/// the last clone is dropped.
#[test]
fn a_cloned_udp_socket_is_the_same_socket() {
    let (a, b) = pair();
    let server = UdpSocket::bind(&b, (B, 53)).unwrap();
    let client = UdpSocket::bind(&a, (A, 5300)).unwrap();
    let clone = client.try_clone().unwrap();
    assert_eq!(clone.local_addr().unwrap(), client.local_addr().unwrap());
    clone.send_to(b"query", (B, 53)).unwrap();
    let mut buf = [0u8; 100];
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"query"[..], SocketAddr::from((A, 5300)))
    );
    server.send_to(b"answer", from).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(clone.read_timeout().unwrap(), Some(Duration::from_secs(5)));
    let n = client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"answer");
    drop(client);
    assert_eq!(
        UdpSocket::bind(&a, (A, 5300)).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    drop(clone);
    UdpSocket::bind(&a, (A, 5300)).unwrap();
}

/// A datagram whose send succeeded goes out even if the socket is closed
/// at once, as with a kernel's sockets; the port is free again at once.
#[test]
fn a_datagram_sent_just_before_close_still_goes_out() {
    let (a, b) = pair();
    let server = UdpSocket::bind(&b, (B, 53)).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for i in 0..20u8 {
        let client = UdpSocket::bind(&a, (A, 5301)).unwrap();
        client.send_to(&[i; 100], (B, 53)).unwrap();
        drop(client);
        let mut buf = [0u8; 200];
        let (n, _) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[i; 100]);
    }
}

/// Waits on `poller` (at most 2 s) until `token` is reported.
fn reported(poller: &Poller, token: Token) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut events = Vec::new();
    while Instant::now() < deadline {
        poller
            .wait(&mut events, Some(Duration::from_millis(200)))
            .unwrap();
        if events.contains(&token) {
            return true;
        }
    }
    false
}

#[test]
fn poller_reports_connections_data_end_of_stream_and_wakes() {
    let (client_rt, server_rt) = pair();
    let listener = TcpListener::bind(&server_rt, "192.0.2.2:90").unwrap();
    listener.set_nonblocking(true).unwrap();
    let poller = Poller::new(&server_rt);
    poller.register_listener(&listener, Token(7)).unwrap();
    // Registering reports the token once, then a wait times out empty.
    assert!(reported(&poller, Token(7)));
    assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    let mut events = Vec::new();
    let start = Instant::now();
    poller
        .wait(&mut events, Some(Duration::from_millis(100)))
        .unwrap();
    assert!(events.is_empty() && start.elapsed() >= Duration::from_millis(90));

    // A connection waiting to be accepted.
    let client = TcpStream::connect(&client_rt, "192.0.2.2:90").unwrap();
    assert!(reported(&poller, Token(7)));
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    poller.register(&server, Token(8)).unwrap();
    assert!(reported(&poller, Token(8)));
    let mut buf = [0u8; 16];
    assert_eq!(
        (&server).read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );

    // Data, then the end of the stream.
    (&client).write_all(b"hi").unwrap();
    assert!(reported(&poller, Token(8)));
    assert_eq!((&server).read(&mut buf).unwrap(), 2);
    client.shutdown(Shutdown::Write).unwrap();
    assert!(reported(&poller, Token(8)));
    assert_eq!((&server).read(&mut buf).unwrap(), 0);

    // A waker from another thread ends a wait with no token.
    let waker = poller.waker();
    let waking = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        waker.wake();
    });
    let start = Instant::now();
    poller
        .wait(&mut events, Some(Duration::from_secs(5)))
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
    waking.join().unwrap();

    // A deregistered stream is not reported; nor is a socket of another
    // runtime taken.
    poller.deregister(&server).unwrap();
    drop(client);
    poller
        .wait(&mut events, Some(Duration::from_millis(200)))
        .unwrap();
    assert!(!events.contains(&Token(8)));
    let other = TcpListener::bind(&client_rt, "192.0.2.1:91").unwrap();
    assert_eq!(
        poller
            .register_listener(&other, Token(9))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );

    // A stopped runtime ends every wait.
    drop((server, listener, other));
    let waiting = thread::spawn(move || poller.wait(&mut Vec::new(), None));
    thread::sleep(Duration::from_millis(50));
    server_rt.shutdown();
    assert_eq!(
        waiting.join().unwrap().unwrap_err().kind(),
        ErrorKind::NotConnected
    );
}
