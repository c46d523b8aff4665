//! The HTTP server at scale, in memory: 10,000 clients that each sent half
//! a request head and wait, held by the event loop (no thread each),
//! while a legitimate client is answered at once; the heap an idle
//! connection costs beyond TCP, measured with a counting allocator; and
//! the head timeout cutting all 10,000 off with 408. This file's only
//! test, so that nothing else allocates meanwhile.

mod common;
mod counting;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::runtime;
use counting::held;
use netstrata::application::http::server::{Request, Response, Server, ServerConfig};
use netstrata::blocking::{Runtime, TcpListener, TcpStream};
use netstrata::link::MemoryNetwork;

const IDLE: usize = 10_000;
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const HALF_HEAD: &[u8] = b"GET /slow HTTP/1.1\r\nHost: t\r\n";

/// Waits (up to 60 s) for `done`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a whole `Connection: close` answer.
fn answer(stream: &TcpStream) -> String {
    let mut reply = Vec::new();
    (&*stream).read_to_end(&mut reply).unwrap();
    String::from_utf8(reply).unwrap()
}

#[test]
fn ten_thousand_half_sent_heads_a_prompt_answer_and_the_head_timeout() {
    // Each measurement on fresh stacks, whose tables have not grown yet.
    let stacks = || {
        let net = MemoryNetwork::new(1500);
        (runtime(&net, 1), runtime(&net, 2))
    };
    let connect = |clients: &Runtime, port: u16| {
        let s = TcpStream::connect_timeout(
            clients,
            &SocketAddr::from((SERVER_IP, port)),
            Duration::from_secs(5),
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    };

    // TCP alone: the same number of connections, accepted and held by a
    // plain listener.
    let (clients, server_rt) = stacks();
    let before = held();
    let plain = TcpListener::bind_with_backlog(&server_rt, (SERVER_IP, 81), IDLE).unwrap();
    let mut held_plain = Vec::with_capacity(IDLE);
    let mut accepted = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        held_plain.push(connect(&clients, 81));
        accepted.push(plain.accept().unwrap().0);
    }
    std::thread::sleep(Duration::from_millis(300));
    let tcp_only = (held() - before) / IDLE as isize;
    // The same bytes through TCP, read out and thrown away: what the TCP
    // buffers cost once they have carried data.
    for c in &held_plain {
        (&*c).write_all(HALF_HEAD).unwrap();
    }
    let mut scratch = [0u8; 64];
    for s in &accepted {
        (&*s).read_exact(&mut scratch[..HALF_HEAD.len()]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let tcp_used = (held() - before) / IDLE as isize;
    drop((held_plain, accepted, plain, clients, server_rt));
    let (clients, server_rt) = stacks();
    let before = held();

    // The HTTP server, with as many idle connections.
    let config = ServerConfig {
        head_timeout: Duration::from_secs(8),
        ..ServerConfig::default()
    };
    let listener = TcpListener::bind_with_backlog(&server_rt, (SERVER_IP, 80), 1024).unwrap();
    let server = Server::spawn(
        listener,
        |req: &mut Request<'_>| Response::text(200, format!("hello {}\n", req.path())),
        config,
    )
    .unwrap();
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(connect(&clients, 80));
    }
    wait_until("the server to accept every connection", || {
        server.stats().connections_active == IDLE as u64
    });
    std::thread::sleep(Duration::from_millis(300));
    let with_http = (held() - before) / IDLE as isize;

    // Each sends half a head, which the event loop reads and keeps.
    let started = Instant::now();
    for c in &idle {
        (&*c).write_all(HALF_HEAD).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let with_heads = (held() - before) / IDLE as isize;
    eprintln!(
        "{IDLE} idle connections, heap per connection (both ends): {tcp_only} bytes with TCP \
         alone, {with_http} with the HTTP server ({} for the server's part); once each sent half \
         a head, {tcp_used} with TCP alone, {with_heads} with the HTTP server ({} for the \
         server's part)",
        with_http - tcp_only,
        with_heads - tcp_used
    );
    assert!(
        with_http - tcp_only < 2 * 1024,
        "the HTTP server holds {} bytes per idle connection beyond TCP",
        with_http - tcp_only
    );
    assert!(
        with_heads - tcp_used < 2 * 1024,
        "the HTTP server holds {} bytes per connection with half a head, beyond TCP",
        with_heads - tcp_used
    );
    let stats = server.stats();
    assert_eq!(stats.requests, 0);
    assert_eq!(stats.timeouts, 0);

    // A legitimate client is answered at once.
    let asked = Instant::now();
    let c = connect(&clients, 80);
    (&c).write_all(b"GET /you HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let reply = answer(&c);
    let took = asked.elapsed();
    eprintln!("the legitimate client was answered in {took:?}");
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("hello /you\n"), "{reply}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    // One idle client finishes its head and is served.
    let last = idle.pop().unwrap();
    (&last).write_all(b"Connection: close\r\n\r\n").unwrap();
    assert!(answer(&last).ends_with("hello /slow\n"));

    // The head timeout: every other client is answered 408 and closed.
    let limit = started + config.head_timeout;
    wait_until("the head timeout", || {
        server.stats().timeouts == IDLE as u64 - 1
    });
    assert!(Instant::now() >= limit);
    for c in idle.iter().step_by(499) {
        let reply = answer(c);
        assert!(reply.starts_with("HTTP/1.1 408 "), "{reply}");
    }
    drop(idle);
    let done = server.shutdown(Duration::from_secs(10));
    assert_eq!(done.unfinished, 0);
    assert_eq!(done.stats.connections_accepted, IDLE as u64 + 1);
    assert_eq!(done.stats.requests, IDLE as u64 + 1);
}
