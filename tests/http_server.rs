//! The HTTP server end to end: a `Server` on one runtime, raw TCP clients
//! on another, over the in-memory network; and `serve_connection` over
//! std's loopback sockets.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use netstrata::application::http::server::{
    ConnectionEnd, Request, Response, Server, ServerConfig, ServerStats, serve_connection,
};
use netstrata::application::http::{
    Connection, Limits, ResponseHead, StaticFiles, response_body_kind,
};
use netstrata::blocking::{Runtime, TcpListener, TcpStream};
use netstrata::link::MemoryNetwork;

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

mod common;

use common::runtime;

/// A client runtime, and a server on another runtime (kept alive with
/// it) at 192.0.2.2:80.
struct Setup {
    client: Runtime,
    _server_rt: Runtime,
    server: Server,
}

fn start(
    config: ServerConfig,
    handler: impl Fn(&mut Request<'_>) -> Response + Send + Sync + 'static,
) -> Setup {
    let net = MemoryNetwork::new(1500);
    let client = runtime(&net, 1);
    let server_rt = runtime(&net, 2);
    let listener = TcpListener::bind(&server_rt, (SERVER_IP, 80)).unwrap();
    let server = Server::spawn(listener, handler, config).unwrap();
    assert_eq!(server.local_addr(), SocketAddr::from((SERVER_IP, 80)));
    Setup {
        client,
        _server_rt: server_rt,
        server,
    }
}

impl Setup {
    /// Shuts the server down once every client has closed: it must find
    /// no connection left and take no time.
    fn finish(self) -> ServerStats {
        let done = self.server.shutdown(Duration::from_secs(2));
        assert_eq!(done.unfinished, 0);
        assert!(done.elapsed < Duration::from_secs(1), "{:?}", done.elapsed);
        done.stats
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect_timeout(
            &self.client,
            &self.server.local_addr(),
            Duration::from_secs(2),
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }
}

/// A response read by a client.
struct Answer {
    head: ResponseHead,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .headers
            .get(name)
            .map(|v| std::str::from_utf8(v).unwrap())
    }
}

fn client(stream: &TcpStream) -> Connection<&TcpStream> {
    Connection::new(stream, Limits::default())
}

fn read_answer<S: Read + Write>(conn: &mut Connection<S>, method: &str) -> Answer {
    let head = conn.read_response_head().unwrap();
    let kind = response_body_kind(&head, method).unwrap();
    let body = conn.body(kind).read_to_vec(64 << 20).unwrap();
    Answer { head, body }
}

/// Whether the server closed the connection: a read sees the end.
fn at_eof(stream: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!((&*stream).read(&mut b), Ok(0))
}

fn echo(req: &mut Request<'_>) -> Response {
    let body = req.body().read_to_vec().unwrap_or_default();
    Response::text(
        200,
        format!("{} {} {}", req.method(), req.target(), body.len()),
    )
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

#[test]
fn keep_alive_serves_several_requests_then_idles_out() {
    let config = ServerConfig {
        idle_timeout: Duration::from_millis(400),
        ..ServerConfig::default()
    };
    let setup = start(config, echo);
    let stream = setup.connect();
    let mut conn = client(&stream);
    for i in 0..5 {
        (&stream).write_all(&get(&format!("/{i}"))).unwrap();
        let a = read_answer(&mut conn, "GET");
        assert_eq!(a.head.status, 200);
        assert_eq!(a.body, format!("GET /{i} 0").as_bytes());
        assert_eq!(a.header("connection"), None);
        assert_eq!(a.header("server"), Some("netstrata"));
        assert!(a.header("date").is_some_and(|d| d.ends_with("GMT")));
    }
    assert_eq!(setup.server.stats().connections_active, 1);
    // Idle past the keep-alive timeout: the server closes.
    let idle = Instant::now();
    assert!(at_eof(&stream));
    let waited = idle.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    drop(conn);
    drop(stream);
    let stats = setup.finish();
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.idle_timeouts, 1);
}

#[test]
fn pipelined_requests_in_one_write() {
    let setup = start(ServerConfig::default(), echo);
    let stream = setup.connect();
    let mut burst = Vec::new();
    burst.extend_from_slice(&get("/a"));
    burst.extend_from_slice(b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz");
    burst.extend_from_slice(b"HEAD /c HTTP/1.1\r\nHost: t\r\n\r\n");
    burst.extend_from_slice(b"GET /d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    (&stream).write_all(&burst).unwrap();
    let mut conn = client(&stream);
    let bodies: Vec<Vec<u8>> = ["GET", "POST", "HEAD", "GET"]
        .iter()
        .map(|m| read_answer(&mut conn, m).body)
        .collect();
    assert_eq!(bodies, [&b"GET /a 0"[..], b"POST /b 3", b"", b"GET /d 0"]);
    drop(conn);
    assert!(at_eof(&stream));
    drop(stream);
    setup.finish();
}

#[test]
fn http_1_0_keep_alive_like_ab_k() {
    let setup = start(ServerConfig::default(), echo);
    let stream = setup.connect();
    let mut conn = client(&stream);
    for _ in 0..3 {
        (&stream)
            .write_all(b"GET /ab HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: t\r\n\r\n")
            .unwrap();
        let a = read_answer(&mut conn, "GET");
        assert_eq!(a.header("connection"), Some("keep-alive"));
        assert_eq!(a.header("content-length"), Some("9"));
        assert_eq!(a.body, b"GET /ab 0");
    }
    // Without keep-alive, HTTP/1.0 closes.
    (&stream).write_all(b"GET /last HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(
        read_answer(&mut conn, "GET").header("connection"),
        Some("close")
    );
    drop(conn);
    assert!(at_eof(&stream));
    drop(stream);
    let stats = setup.finish();
    assert_eq!((stats.connections_accepted, stats.requests), (1, 4));
}

#[test]
fn expect_100_continue_before_the_body() {
    let setup = start(ServerConfig::default(), echo);
    let stream = setup.connect();
    (&stream)
        .write_all(
            b"PUT /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap();
    let mut conn = client(&stream);
    // The interim response comes before any of the body is sent.
    let interim = conn.read_response_head().unwrap();
    assert_eq!(
        (interim.status, interim.reason.as_slice()),
        (100, &b"Continue"[..])
    );
    (&stream).write_all(b"hello").unwrap();
    let a = read_answer(&mut conn, "PUT");
    assert_eq!((a.head.status, a.body.as_slice()), (200, &b"PUT /up 5"[..]));

    // Too large: the final status at once, no 100, and a close.
    let small = ServerConfig {
        max_body_size: 4,
        ..ServerConfig::default()
    };
    let setup2 = start(small, echo);
    let stream2 = setup2.connect();
    (&stream2)
        .write_all(
            b"PUT /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap();
    let mut conn2 = client(&stream2);
    let a = read_answer(&mut conn2, "PUT");
    assert_eq!(a.head.status, 413);
    assert_eq!(a.header("connection"), Some("close"));
    drop(conn2);
    assert!(at_eof(&stream2));
    drop(stream2);
    assert_eq!(setup2.finish().too_large, 1);
    drop(conn);
    drop(stream);
    setup.finish();
}

#[test]
fn slowloris_is_cut_off_by_the_head_timeout() {
    let config = ServerConfig {
        head_timeout: Duration::from_millis(600),
        read_timeout: Duration::from_millis(400),
        linger: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let setup = start(config, echo);
    let stream = Arc::new(setup.connect());
    let answered = Arc::new(AtomicBool::new(false));
    let start_time = Instant::now();
    let trickle = {
        let (stream, answered) = (stream.clone(), answered.clone());
        thread::spawn(move || {
            // One byte every 50 ms, well within the read timeout; the head
            // never ends. Bounded: 100 bytes at most.
            let head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            for &b in head.iter().take(100) {
                if answered.load(Ordering::Relaxed) || (&*stream).write_all(&[b]).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut conn = client(&stream);
    let a = read_answer(&mut conn, "GET");
    let cut_after = start_time.elapsed();
    answered.store(true, Ordering::Relaxed);
    assert_eq!(a.head.status, 408);
    assert_eq!(a.header("connection"), Some("close"));
    assert!(
        cut_after >= Duration::from_millis(550) && cut_after < Duration::from_secs(2),
        "{cut_after:?}"
    );
    trickle.join().unwrap();
    drop(conn);
    drop(stream);
    assert_eq!(setup.finish().timeouts, 1);
}

#[test]
fn fifty_concurrent_clients() {
    let setup = start(ServerConfig::default(), echo);
    let started = Instant::now();
    thread::scope(|scope| {
        let clients: Vec<_> = (0..50)
            .map(|c| {
                let setup = &setup;
                scope.spawn(move || {
                    let stream = setup.connect();
                    let mut conn = client(&stream);
                    for r in 0..3 {
                        let body = format!("client {c} request {r}");
                        let req = format!(
                            "POST /{c}/{r} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        (&stream).write_all(req.as_bytes()).unwrap();
                        let a = read_answer(&mut conn, "POST");
                        let expected = format!("POST /{c}/{r} {}", body.len());
                        assert_eq!(a.body, expected.as_bytes());
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    });
    eprintln!("50 clients x 3 requests: {:?}", started.elapsed());
    let stats = setup.finish();
    assert_eq!(stats.connections_accepted, 50);
    assert_eq!(stats.requests, 150);
    assert_eq!(stats.io_errors, 0);
}

/// A reader producing `pattern(len)` without holding it.
struct PatternReader {
    pos: usize,
    len: usize,
}

impl Read for PatternReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = out.len().min(self.len - self.pos);
        for (i, b) in out[..n].iter_mut().enumerate() {
            *b = ((self.pos + i).wrapping_mul(2654435761) >> 7) as u8;
        }
        self.pos += n;
        Ok(n)
    }
}

const BIG: usize = 20 << 20;

#[test]
fn twenty_mib_bodies_stream_both_ways() {
    let config = ServerConfig {
        max_body_size: 32 << 20,
        ..ServerConfig::default()
    };
    let setup = start(config, |req: &mut Request<'_>| {
        if req.method() == "GET" {
            let reader = PatternReader { pos: 0, len: BIG };
            return Response::stream(200, "application/octet-stream", reader, None);
        }
        // Check the upload as it streams in, without keeping it.
        let mut expected = PatternReader { pos: 0, len: BIG };
        let (mut got, mut want) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        let mut total = 0usize;
        loop {
            let n = req.body().read(&mut got).unwrap();
            if n == 0 {
                break;
            }
            expected.read_exact(&mut want[..n]).unwrap();
            if got[..n] != want[..n] {
                return Response::text(200, format!("mismatch near {total}"));
            }
            total += n;
        }
        Response::text(200, format!("ok {total}"))
    });
    let stream = setup.connect();
    let mut conn = client(&stream);

    let started = Instant::now();
    let head = format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {BIG}\r\n\r\n");
    (&stream).write_all(head.as_bytes()).unwrap();
    let mut data = Vec::with_capacity(BIG);
    PatternReader { pos: 0, len: BIG }
        .read_to_end(&mut data)
        .unwrap();
    (&stream).write_all(&data).unwrap();
    let a = read_answer(&mut conn, "POST");
    assert_eq!(a.body, format!("ok {BIG}").as_bytes());
    let up = started.elapsed();

    let started = Instant::now();
    (&stream).write_all(&get("/down")).unwrap();
    let a = read_answer(&mut conn, "GET");
    assert_eq!(a.header("transfer-encoding"), Some("chunked"));
    assert_eq!(a.body.len(), BIG);
    assert!(a.body == data, "downloaded bytes differ");
    let down = started.elapsed();
    let mib_s = |d: Duration| 20.0 / d.as_secs_f64();
    eprintln!(
        "20 MiB up in {up:?} ({:.0} MiB/s), down chunked in {down:?} ({:.0} MiB/s)",
        mib_s(up),
        mib_s(down)
    );
    drop(conn);
    drop(stream);
    setup.finish();
}

#[test]
fn graceful_shutdown_finishes_in_flight_requests() {
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let config = ServerConfig {
        linger: Duration::from_millis(500),
        ..ServerConfig::default()
    };
    let setup = start(config, move |req: &mut Request<'_>| {
        if req.path() == "/slow" {
            started_tx.lock().unwrap().send(()).unwrap();
            thread::sleep(Duration::from_millis(400));
            return Response::text(200, "slow but complete");
        }
        Response::text(200, "quick")
    });
    // An idle keep-alive connection, and one with a request in flight.
    let idle = setup.connect();
    let mut idle_conn = client(&idle);
    (&idle).write_all(&get("/")).unwrap();
    assert_eq!(read_answer(&mut idle_conn, "GET").body, b"quick");
    let busy = setup.connect();
    (&busy).write_all(&get("/slow")).unwrap();
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();

    let Setup {
        client: client_rt,
        _server_rt,
        server,
    } = setup;
    let addr = server.local_addr();
    let shutdown = thread::spawn(move || server.shutdown(Duration::from_secs(5)));

    // The idle connection is closed promptly.
    let closing = Instant::now();
    assert!(at_eof(&idle));
    let idle_closed = closing.elapsed();
    assert!(idle_closed < Duration::from_millis(500), "{idle_closed:?}");
    // New connections are refused.
    let refused = TcpStream::connect_timeout(&client_rt, &addr, Duration::from_secs(1));
    assert!(refused.is_err());
    // The request in flight completes, with Connection: close.
    let mut busy_conn = client(&busy);
    let a = read_answer(&mut busy_conn, "GET");
    assert_eq!(
        (a.head.status, a.body.as_slice()),
        (200, &b"slow but complete"[..])
    );
    assert_eq!(a.header("connection"), Some("close"));
    drop(busy_conn);
    assert!(at_eof(&busy));
    drop(busy);

    let done = shutdown.join().unwrap();
    assert_eq!(done.unfinished, 0);
    assert_eq!(done.stats.requests, 2);
    assert!(done.elapsed < Duration::from_secs(1), "{:?}", done.elapsed);
    eprintln!(
        "shutdown: idle connection closed in {idle_closed:?}, all done in {:?}",
        done.elapsed
    );
}

#[test]
fn connections_over_the_limit_wait_for_a_free_place() {
    let config = ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    };
    let setup = start(config, echo);
    let first = setup.connect();
    let second = setup.connect();
    for s in [&first, &second] {
        (&*s).write_all(&get("/")).unwrap();
        read_answer(&mut client(s), "GET");
    }
    // The third connection is made (the backlog) but not served...
    let third = setup.connect();
    third
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    (&third).write_all(&get("/third")).unwrap();
    let mut b = [0u8; 1];
    let err = (&third).read(&mut b).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    assert_eq!(setup.server.stats().connections_active, 2);
    // ...until another one ends.
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let a = read_answer(&mut client(&third), "GET");
    assert_eq!(a.body, b"GET /third 0");
    drop((second, third));
    assert_eq!(setup.finish().connections_accepted, 3);
}

#[test]
fn handler_panic_is_500_and_the_server_lives_on() {
    let setup = start(ServerConfig::default(), |req: &mut Request<'_>| {
        if req.path() == "/panic" {
            panic!("handler panic (expected by the test)");
        }
        Response::text(200, "fine")
    });
    let stream = setup.connect();
    (&stream).write_all(&get("/panic")).unwrap();
    let a = read_answer(&mut client(&stream), "GET");
    assert_eq!(a.head.status, 500);
    assert_eq!(a.header("connection"), Some("close"));
    let again = setup.connect();
    (&again).write_all(&get("/")).unwrap();
    assert_eq!(read_answer(&mut client(&again), "GET").body, b"fine");
    drop((stream, again));
    assert_eq!(setup.finish().handler_panics, 1);
}

#[test]
fn static_files_and_traversal_attempts() {
    let dir = std::env::temp_dir().join(format!("netstrata-http-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("www/a")).unwrap();
    std::fs::write(dir.join("www/index.html"), "<p>index</p>").unwrap();
    std::fs::write(dir.join("www/a/data.json"), "{\"x\":1}").unwrap();
    std::fs::write(dir.join("x"), "outside").unwrap();
    let files = StaticFiles::new(dir.join("www")).unwrap();
    let setup = start(ServerConfig::default(), move |req: &mut Request<'_>| {
        use netstrata::application::http::server::Handler;
        files.handle(req)
    });
    let stream = setup.connect();
    let mut conn = client(&stream);
    let mut ask = |method: &str, target: &str| {
        let req = format!("{method} {target} HTTP/1.1\r\nHost: t\r\n\r\n");
        (&stream).write_all(req.as_bytes()).unwrap();
        read_answer(&mut conn, method)
    };
    let a = ask("GET", "/");
    assert_eq!(
        (a.head.status, a.body.as_slice()),
        (200, &b"<p>index</p>"[..])
    );
    assert_eq!(a.header("content-type"), Some("text/html; charset=utf-8"));
    let a = ask("GET", "/a/data.json?ignored=1");
    assert_eq!((a.head.status, a.body.as_slice()), (200, &b"{\"x\":1}"[..]));
    assert_eq!(a.header("content-type"), Some("application/json"));
    let a = ask("HEAD", "/a/data.json");
    assert_eq!((a.header("content-length"), a.body.len()), (Some("7"), 0));
    assert_eq!(ask("GET", "/a").header("location"), Some("/a/"));
    assert_eq!(ask("GET", "/missing").head.status, 404);
    assert_eq!(ask("DELETE", "/").head.status, 405);
    for target in [
        "/../etc/passwd",
        "/%2e%2e/",
        "/a/../../x",
        "/%2e%2e/x",
        "/a/%2E%2E/%2e%2e/x",
    ] {
        let a = ask("GET", target);
        assert!(
            matches!(a.head.status, 403 | 404),
            "{target}: {}",
            a.head.status
        );
        assert_ne!(a.body, b"outside", "{target}");
    }
    drop(conn);
    drop(stream);
    setup.finish();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_connection_over_std_loopback() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (stream, peer) = listener.accept().unwrap();
        serve_connection(stream, peer, &echo, &ServerConfig::default())
    });
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut burst = b"POST /one HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n".to_vec();
    burst.extend_from_slice(b"GET /two HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    (&stream).write_all(&burst).unwrap();
    let mut conn = Connection::new(&stream, Limits::default());
    assert_eq!(read_answer(&mut conn, "POST").body, b"POST /one 4");
    let a = read_answer(&mut conn, "GET");
    assert_eq!(a.body, b"GET /two 0");
    assert_eq!(a.header("connection"), Some("close"));
    drop(conn);
    drop(stream);
    let stats = server.join().unwrap().unwrap();
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.end, ConnectionEnd::Close);
}

/// Reads what arrives first (at most `timeout` of waiting).
fn first_bytes(stream: &TcpStream, timeout: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut got = vec![0u8; 256];
    let n = (&*stream).read(&mut got).unwrap_or(0);
    got.truncate(n);
    got
}

/// Sends a small `Connection: close` GET and says whether it was answered
/// 200 within 3 s.
fn answered_at_once(setup: &Setup) -> bool {
    let legit = setup.connect();
    (&legit)
        .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    first_bytes(&legit, Duration::from_secs(3)).starts_with(b"HTTP/1.1 200")
}

/// Clients that stall their bodies, or never read their responses, hold
/// a worker each; when every worker is busy, more start (up to
/// `max_workers`), so a legitimate client is still answered. (With a
/// fixed pool of 16, found in review, 16 such clients stopped the
/// server.)
#[test]
fn stalled_bodies_and_unread_responses_do_not_take_every_worker() {
    let config = ServerConfig {
        workers: 2,
        max_workers: 16,
        ..ServerConfig::default()
    };
    let big = vec![b'z'; 4 << 20];
    let setup = start(config, move |req: &mut Request<'_>| {
        if req.path() == "/big" {
            Response::bytes(200, "application/octet-stream", big.clone())
        } else {
            echo(req)
        }
    });
    let mut slow = Vec::new();
    for _ in 0..3 {
        let s = setup.connect();
        (&s).write_all(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\nx")
            .unwrap();
        slow.push(s);
        let s = setup.connect();
        (&s).write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        slow.push(s);
    }
    thread::sleep(Duration::from_millis(300));
    assert!(answered_at_once(&setup), "a legitimate client waited");
    drop(slow);
}

/// A head buffer per connection would let 16,384 clients hold 64 KiB of
/// head each (found in review). Past `head_memory`, heads beyond 8 KiB
/// are answered 431 and closed, and a usual head is still served.
#[test]
fn heads_beyond_the_head_memory_are_refused_and_usual_ones_served() {
    let config = ServerConfig {
        head_memory: 256 * 1024,
        head_timeout: Duration::from_secs(20),
        ..ServerConfig::default()
    };
    let setup = start(config, echo);
    // Incomplete heads of 40 KiB: 60,000 valid field bytes short of an end.
    let mut head = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..40 {
        head.extend_from_slice(format!("X-{i:04}: {}\r\n", "a".repeat(1014)).as_bytes());
    }
    let big: Vec<TcpStream> = (0..16)
        .map(|_| {
            let s = setup.connect();
            (&s).write_all(&head).unwrap();
            s
        })
        .collect();
    thread::sleep(Duration::from_millis(500));
    assert!(answered_at_once(&setup), "a usual head waited");
    // The budget holds about six of the 40 KiB heads; the rest are
    // refused.
    let refused = big
        .iter()
        .filter(|s| first_bytes(s, Duration::from_millis(100)).starts_with(b"HTTP/1.1 431"))
        .count();
    assert!((8..16).contains(&refused), "{refused} refused");
    assert_eq!(setup.server.stats().malformed, refused as u64);
    drop(big);
}

/// A timeout too long to be a deadline is refused up front; it used to
/// panic the event loop at the first connection (found in review).
#[test]
fn absurd_timeouts_are_refused_by_the_configuration() {
    let net = MemoryNetwork::new(1500);
    let server_rt = runtime(&net, 2);
    let listener = TcpListener::bind(&server_rt, (SERVER_IP, 80)).unwrap();
    let config = ServerConfig {
        idle_timeout: Duration::MAX,
        ..ServerConfig::default()
    };
    let e = Server::spawn(listener, echo, config).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

/// A CRLF after a request's body, as some clients send, is ignored before
/// the next request (RFC 9112 §2.2), pipelined or sent later.
#[test]
fn a_crlf_after_a_body_is_ignored() {
    let setup = start(ServerConfig::default(), echo);
    let stream = setup.connect();
    (&stream)
        .write_all(b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut conn = client(&stream);
    assert_eq!(read_answer(&mut conn, "POST").body, b"POST /a 2");
    assert_eq!(read_answer(&mut conn, "GET").body, b"GET /b 0");
    (&stream)
        .write_all(b"POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx\r\n")
        .unwrap();
    assert_eq!(read_answer(&mut conn, "POST").body, b"POST /c 1");
    thread::sleep(Duration::from_millis(50));
    (&stream)
        .write_all(b"GET /d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(read_answer(&mut conn, "GET").body, b"GET /d 0");
    drop(conn);
    drop(stream);
    assert_eq!(setup.finish().requests, 4);
}
