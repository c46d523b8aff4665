//! The HTTP client end to end: over `std::net` on loopback against a small
//! server written here (and against Python's `http.server`), and over
//! netstrata's sockets on the in-memory network, resolving the server's
//! name through netstrata's DNS responder.
//!
//! The server here reads requests with the crate's own `Connection` (the
//! request side of the codec) and writes responses by hand, on any
//! `StreamListener`: one accept loop serves both networks. It counts the
//! connections it accepts, which is how reuse is proven. Every wait is
//! bounded: server connections time out after 5 s idle, the slow routes
//! give up after 3 s, and the client tests set timeouts of a second or
//! less.

mod common;

use common::pattern;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use netstrata::application::dns::resolver::{ResolveError, Resolver, ResolverConfig};
use netstrata::application::dns::responder::{Zone, serve_udp};
use netstrata::application::dns::{Class, Name, Record, RecordData};
use netstrata::application::http::client::{
    Client, ClientError, LookupError, Phase, Request, SystemResolver, Url,
};
use netstrata::application::http::{
    ChunkedWriter, Connection, Headers, Limits, RequestHead, ResponseHead, Version,
    request_body_kind,
};
use netstrata::application::net::{ByteStream, StdNetwork, StreamListener};
use netstrata::blocking::{TcpListener, UdpSocket};
use netstrata::link::MemoryNetwork;

/// The size of the big body.
const BIG: usize = 5 << 20;

// ---------------------------------------------------------------------------
// The test server.

/// Writes a response with Content-Length, the body left out for HEAD.
fn respond<S: Write>(
    stream: &mut S,
    to_head: bool,
    status: u16,
    fields: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut headers = Headers::new();
    for (name, value) in fields {
        headers.push(*name, *value);
    }
    headers.push("Content-Length", body.len().to_string());
    let head = ResponseHead {
        version: Version::Http11,
        status,
        reason: b"Whatever".to_vec(),
        headers,
    };
    let mut out = Vec::new();
    head.write_to(&mut out);
    stream.write_all(&out)?;
    if to_head {
        return stream.flush();
    }
    for slice in body.chunks(64 * 1024) {
        stream.write_all(slice)?;
    }
    stream.flush()
}

/// Holds a route open without answering until the test ends (or 3 s).
fn stall(stop: &AtomicBool) {
    let until = Instant::now() + Duration::from_secs(3);
    while !stop.load(Ordering::Acquire) && Instant::now() < until {
        thread::sleep(Duration::from_millis(20));
    }
}

/// Answers one request; false to close the connection after it.
fn route<S: ByteStream>(
    conn: &mut Connection<S>,
    head: &RequestHead,
    body: &[u8],
    stop: &AtomicBool,
) -> std::io::Result<bool> {
    let s = conn.stream_mut();
    let path = head.target.as_str();
    let h = head.method == "HEAD";
    match path {
        "/hello" => respond(s, h, 200, &[], b"hello\n")?,
        "/headers" => {
            // Echoes the request head.
            let mut out = Vec::new();
            head.write_to(&mut out);
            respond(s, h, 200, &[], &out)?;
        }
        "/echo" => {
            let mut out = format!("{} ", head.method).into_bytes();
            out.extend_from_slice(body);
            respond(s, h, 200, &[], &out)?;
        }
        "/big" => respond(s, h, 200, &[], &pattern(BIG))?,
        "/chunked" => {
            let mut out = Vec::new();
            ResponseHead {
                version: Version::Http11,
                status: 200,
                reason: b"OK".to_vec(),
                headers: {
                    let mut h = Headers::new();
                    h.push("Transfer-Encoding", "chunked");
                    h
                },
            }
            .write_to(&mut out);
            s.write_all(&out)?;
            let mut w = ChunkedWriter::new(&mut *s);
            for i in 0..100 {
                writeln!(w, "line {i}")?;
                w.flush()?;
            }
            let mut trailers = Headers::new();
            trailers.push("X-Lines", "100");
            w.finish(&trailers)?;
        }
        "/close-after" => {
            // Answers as if the connection stayed open, then closes it: a
            // server timing out an idle connection.
            respond(s, h, 200, &[], b"once")?;
            return Ok(false);
        }
        "/silent" => {
            stall(stop);
            return Ok(false);
        }
        "/trickle" => {
            // A head that never ends, a byte every 50 ms: no read times
            // out, only the request's time limit can stop it.
            s.write_all(b"HTTP/1.1 200 OK\r\nX-Slow: ")?;
            let until = Instant::now() + Duration::from_secs(3);
            while !stop.load(Ordering::Acquire) && Instant::now() < until {
                s.write_all(b"a")?;
                s.flush()?;
                thread::sleep(Duration::from_millis(50));
            }
            return Ok(false);
        }
        _ => {
            if let Some(n) = path.strip_prefix("/redirect/") {
                let n: u32 = n.parse().unwrap_or(0);
                if n == 0 {
                    respond(s, h, 200, &[], b"landed")?;
                } else {
                    // Relative, so that resolution against the URL is used.
                    let next = format!("{}", n - 1);
                    respond(s, h, 302, &[("Location", &next)], b"moving on")?;
                }
            } else {
                respond(s, h, 404, &[], b"no such thing")?;
            }
        }
    }
    Ok(true)
}

fn serve_connection<S: ByteStream>(stream: S, stop: &AtomicBool) {
    let _ = stream.set_timeouts(Some(Duration::from_secs(5)));
    let mut conn = Connection::new(stream, Limits::default());
    for _ in 0..1000 {
        let Ok(Some(head)) = conn.read_request_head() else {
            return;
        };
        let Ok(kind) = request_body_kind(&head) else {
            return;
        };
        let expects_100 = head
            .headers
            .get("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
        if expects_100 {
            // RFC 9110 §10.1.1: a final status instead of a 100 means the
            // body is not wanted; this server then closes.
            if head.target == "/reject-upload" {
                let _ = respond(conn.stream_mut(), false, 413, &[], b"too big");
                return;
            }
            if conn
                .stream_mut()
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .is_err()
            {
                return;
            }
        }
        let Ok(body) = conn.body(kind).read_to_vec(8 << 20) else {
            return;
        };
        if !matches!(route(&mut conn, &head, &body, stop), Ok(true)) {
            return;
        }
    }
}

/// A server on a listener, with a thread per connection.
struct TestServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    /// Ends the accept loop (the loop checks `stop` after each accept).
    wake: Box<dyn Fn()>,
    thread: Option<thread::JoinHandle<()>>,
}

impl TestServer {
    fn start<L>(listener: L, addr: SocketAddr, wake: Box<dyn Fn()>) -> TestServer
    where
        L: StreamListener + Send + 'static,
        L::Stream: Send + 'static,
    {
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (accepted.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while let Ok((stream, _)) = listener.accept_stream() {
                if halt.load(Ordering::Acquire) {
                    break;
                }
                count.fetch_add(1, Ordering::SeqCst);
                let halt = halt.clone();
                thread::spawn(move || serve_connection(stream, &halt));
            }
        });
        TestServer {
            addr,
            accepted,
            stop,
            wake,
            thread: Some(thread),
        }
    }

    /// A server on 127.0.0.1 over `std::net`.
    fn std() -> TestServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        TestServer::start(
            listener,
            addr,
            Box::new(move || {
                let _ = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
            }),
        )
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        (self.wake)();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn std_client() -> Client<StdNetwork> {
    Client::new(StdNetwork).with_read_timeout(Some(Duration::from_secs(5)))
}

// ---------------------------------------------------------------------------
// std::net on loopback.

#[test]
fn keep_alive_reuses_one_connection() {
    let server = TestServer::std();
    let client = std_client();
    for i in 0..10 {
        let mut r = client.get(server.url("/hello")).unwrap();
        assert_eq!(r.status_line(), "HTTP/1.1 200 Whatever");
        assert_eq!(r.read_to_vec(100).unwrap(), b"hello\n", "request {i}");
    }
    let mut r = client.post(server.url("/echo"), "payload").unwrap();
    assert_eq!(r.read_to_vec(100).unwrap(), b"POST payload");
    let r = client.head(server.url("/hello")).unwrap();
    assert_eq!(r.headers().get("content-length"), Some(&b"6"[..]));
    let mut r = client.delete(server.url("/echo")).unwrap();
    assert_eq!(r.read_to_vec(100).unwrap(), b"DELETE ");
    assert_eq!(server.accepted(), 1, "13 requests, one connection");
    assert_eq!(client.idle_connections(), 1);
}

#[test]
fn request_head_as_the_server_sees_it() {
    let server = TestServer::std();
    let request = Request::new("PUT", Url::parse(&server.url("/headers")).unwrap())
        .with_header("X-Test", "1")
        .with_body("");
    let mut r = std_client().request(request).unwrap();
    let text = String::from_utf8(r.read_to_vec(1000).unwrap()).unwrap();
    let expected = format!(
        "PUT /headers HTTP/1.1\r\nHost: {}\r\nUser-Agent: netstrata/{}\r\nAccept: */*\r\nX-Test: 1\r\nContent-Length: 0\r\n\r\n",
        server.addr,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(text, expected);
}

#[test]
fn chunked_response_with_trailers() {
    let server = TestServer::std();
    let mut r = std_client().get(server.url("/chunked")).unwrap();
    let text = String::from_utf8(r.read_to_vec(1 << 20).unwrap()).unwrap();
    let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
    assert_eq!(text, expected);
    assert_eq!(r.trailers().unwrap().get("x-lines"), Some(&b"100"[..]));
}

#[test]
fn five_mib_body_streamed_byte_for_byte() {
    let server = TestServer::std();
    let client = std_client();
    let start = Instant::now();
    let mut r = client.get(server.url("/big")).unwrap();
    let mut got = Vec::with_capacity(BIG);
    let n = r.copy_to(&mut got).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(n, BIG as u64);
    assert!(got == pattern(BIG), "the body differs");
    eprintln!(
        "5 MiB over loopback in {elapsed:?} ({:.0} MB/s)",
        BIG as f64 / elapsed.as_secs_f64() / 1e6
    );
    // Read through `Read` too, in odd-sized pieces.
    let mut r = client.get(server.url("/big")).unwrap();
    let mut got = Vec::with_capacity(BIG);
    let mut buf = [0u8; 1000];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got == pattern(BIG));
    // Too big to hold whole under a 1 MiB limit: refused from the
    // Content-Length, before reading.
    let mut r = client.get(server.url("/big")).unwrap();
    assert!(matches!(
        r.read_to_vec(1 << 20),
        Err(ClientError::BodyTooLarge(_))
    ));
    drop(r);
    // Three requests on one connection, which the unread body closed.
    assert_eq!(server.accepted(), 1);
    assert_eq!(client.idle_connections(), 0);
    let mut r = client.get(server.url("/hello")).unwrap();
    assert_eq!(r.read_to_vec(100).unwrap(), b"hello\n");
    assert_eq!(server.accepted(), 2);
}

#[test]
fn large_upload_waits_for_100_continue() {
    let server = TestServer::std();
    // Were the 100 not seen, the body would wait 5 s.
    let client = std_client().with_expect_continue(Some(1 << 20), Duration::from_secs(5));
    let body = pattern(3 << 20);
    let start = Instant::now();
    let mut r = client.put(server.url("/echo"), body.clone()).unwrap();
    let echoed = r.read_to_vec(4 << 20).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(echoed.starts_with(b"PUT ") && echoed[4..] == body[..]);
    // A server that refuses the upload up front: the body is not sent.
    let start = Instant::now();
    let mut r = client.put(server.url("/reject-upload"), body).unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.read_to_vec(100).unwrap(), b"too big");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(client.idle_connections(), 0);
}

#[test]
fn redirects_followed_and_bounded() {
    let server = TestServer::std();
    let mut r = std_client().get(server.url("/redirect/3")).unwrap();
    assert_eq!(r.status(), 302, "not followed by default");
    assert_eq!(r.read_to_vec(100).unwrap(), b"moving on");
    let client = std_client().with_redirects(5);
    let mut r = client.get(server.url("/redirect/3")).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.url().path(), "/redirect/0");
    assert_eq!(r.read_to_vec(100).unwrap(), b"landed");
    let e = std_client()
        .with_redirects(2)
        .get(server.url("/redirect/3"))
        .unwrap_err();
    assert!(matches!(e, ClientError::TooManyRedirects(2)), "{e}");
    // Every hop on the connection the first one opened.
    assert_eq!(server.accepted(), 3);
}

#[test]
fn timeouts_against_a_server_that_never_answers() {
    let server = TestServer::std();
    let client = std_client().with_read_timeout(Some(Duration::from_millis(300)));
    let start = Instant::now();
    let e = client.get(server.url("/silent")).unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(e, ClientError::Timeout(Phase::Head)), "{e}");
    assert!(waited >= Duration::from_millis(290), "{waited:?}");
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    // A head that trickles in never trips the read timeout; the limit on
    // the whole request stops it.
    let client = std_client()
        .with_read_timeout(Some(Duration::from_secs(2)))
        .with_timeout(Some(Duration::from_millis(400)));
    let start = Instant::now();
    let e = client.get(server.url("/trickle")).unwrap_err();
    let waited = start.elapsed();
    assert!(e.is_timeout(), "{e}");
    assert!(waited < Duration::from_secs(1), "{waited:?}");
}

#[test]
fn server_closing_an_idle_connection_is_survived() {
    let server = TestServer::std();
    let client = std_client();
    let mut r = client.get(server.url("/close-after")).unwrap();
    assert_eq!(r.read_to_vec(10).unwrap(), b"once");
    // The connection went back to the pool; the server has closed it.
    assert_eq!(client.idle_connections(), 1);
    thread::sleep(Duration::from_millis(50));
    // A POST is not retried on a stale connection: the pool must see it
    // closed and open another.
    let mut r = client.post(server.url("/echo"), "x").unwrap();
    assert_eq!(r.read_to_vec(10).unwrap(), b"POST x");
    assert_eq!(server.accepted(), 2);
}

#[test]
fn names_refusals_and_errors() {
    let server = TestServer::std();
    // No resolver: a name is a clear error.
    let url = format!("http://localhost:{}/hello", server.addr.port());
    let e = std_client().get(&url).unwrap_err();
    assert!(
        matches!(
            &e,
            ClientError::Resolve {
                source: LookupError::NoResolver,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("no resolver"), "{e}");
    // The system resolver knows localhost.
    let client = std_client().with_resolver(SystemResolver);
    let mut r = client.get(&url).unwrap();
    assert_eq!(r.read_to_vec(10).unwrap(), b"hello\n");
    // Nothing listens on a port just released.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = std_client()
        .get(format!("http://127.0.0.1:{port}/"))
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Connect { source, .. } if source.kind() == std::io::ErrorKind::ConnectionRefused),
        "{e}"
    );
    let mut r = std_client().get(server.url("/nope")).unwrap();
    assert_eq!(r.status(), 404);
    assert!(!r.is_success());
    assert_eq!(r.read_to_vec(100).unwrap(), b"no such thing");
}

#[test]
fn one_client_many_threads() {
    let server = TestServer::std();
    let client = Arc::new(std_client().with_pool(4, Duration::from_secs(30)));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let client = client.clone();
            let url = server.url("/echo");
            thread::spawn(move || {
                for i in 0..25 {
                    let body = format!("{t}-{i}");
                    let mut r = client.post(url.as_str(), body.clone()).unwrap();
                    assert_eq!(
                        r.read_to_vec(100).unwrap(),
                        format!("POST {body}").as_bytes()
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(server.accepted() <= 4, "{} connections", server.accepted());
}

// ---------------------------------------------------------------------------
// Python's http.server.

/// `python3 -m http.server` on 127.0.0.1, serving a temporary directory;
/// killed and the directory removed on drop, even when the test fails.
struct PythonServer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl PythonServer {
    fn start(files: &[(&str, &[u8])]) -> PythonServer {
        let dir = std::env::temp_dir().join(format!(
            "netstrata-http-{}-{:?}",
            std::process::id(),
            thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, data) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, data).unwrap();
        }
        // A free port: bind port 0, release it, and try again should the
        // server lose the race for it.
        for _ in 0..5 {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            let mut child = Command::new("python3")
                .args([
                    "-m",
                    "http.server",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                ])
                .arg("--directory")
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    let _ = std::fs::remove_dir_all(&dir);
                    panic!(
                        "cannot run python3 ({e}): this test needs python3 on PATH (CI installs it)"
                    )
                });
            if wait_until_listening(&mut child, port) {
                return PythonServer { child, dir, port };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("python3 -m http.server did not start");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// Waits (up to 10 s) until a server on `port` accepts; false if it
/// exited first or never did.
fn wait_until_listening(child: &mut Child, port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn against_python_http_server() {
    let blob = pattern(1 << 20);
    let server = PythonServer::start(&[("blob.bin", &blob), ("sub/a.txt", b"in a subdirectory\n")]);
    let client = std_client().with_redirects(3);
    let mut r = client.get(server.url("/blob.bin")).unwrap();
    assert_eq!(r.status(), 200, "{}", r.status_line());
    assert_eq!(r.headers().get("content-length"), Some(&b"1048576"[..]));
    assert!(r.read_to_vec(2 << 20).unwrap() == blob, "the body differs");
    let mut r = client.head(server.url("/blob.bin")).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("content-length"), Some(&b"1048576"[..]));
    assert_eq!(r.read_to_vec(0).unwrap(), b"");
    let mut r = client.get(server.url("/sub/a.txt")).unwrap();
    assert_eq!(r.read_to_vec(100).unwrap(), b"in a subdirectory\n");
    let mut r = client.get(server.url("/missing")).unwrap();
    assert_eq!(r.status(), 404);
    assert!(!r.read_to_vec(1 << 16).unwrap().is_empty());
    // A directory without its slash: 301 to /sub/, then the listing.
    let mut r = client.get(server.url("/sub")).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.url().path(), "/sub/");
    let listing = String::from_utf8(r.read_to_vec(1 << 16).unwrap()).unwrap();
    assert!(listing.contains("a.txt"), "{listing}");
}

// ---------------------------------------------------------------------------
// netstrata on the in-memory network, with DNS.

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn zone() -> Zone {
    let mut z = common::example_zone();
    let www = Record {
        name: "www.example.test".parse::<Name>().unwrap(),
        class: Class::In,
        ttl: 300,
        data: RecordData::A(SERVER),
    };
    z.add(www).unwrap();
    z
}

#[test]
fn netstrata_client_resolves_through_dns_and_reuses_connections() {
    let net = MemoryNetwork::new(1500);
    let client_rt = common::runtime(&net, 1);
    let server_rt = common::runtime(&net, 2);
    // DNS on the server host.
    let dns_stop = Arc::new(AtomicBool::new(false));
    let udp = UdpSocket::bind(&server_rt, (SERVER, 53)).unwrap();
    let halt = dns_stop.clone();
    let dns = thread::spawn(move || serve_udp(&udp, &zone(), &halt).unwrap());
    // HTTP on the server host, port 80.
    let listener = Arc::new(TcpListener::bind(&server_rt, (SERVER, 80)).unwrap());
    let closer = listener.clone();
    let server = TestServer::start(
        ListenerRef(listener),
        (SERVER, 80).into(),
        Box::new(move || closer.close()),
    );

    let config = ResolverConfig {
        timeout: Duration::from_millis(500),
        seed: Some(11),
        ..ResolverConfig::default()
    };
    let resolver = Resolver::new(&client_rt, (SERVER, 53).into(), config);
    let client = Client::new(&client_rt)
        .with_resolver(&resolver)
        .with_read_timeout(Some(Duration::from_secs(5)));
    let mut r = client.get("http://www.example.test/hello").unwrap();
    assert_eq!(r.status_line(), "HTTP/1.1 200 Whatever");
    assert_eq!(r.read_to_vec(100).unwrap(), b"hello\n");
    let mut r = client.get("http://www.example.test/headers").unwrap();
    let head = String::from_utf8(r.read_to_vec(1000).unwrap()).unwrap();
    assert!(head.contains("\r\nHost: www.example.test\r\n"), "{head}");
    let mut r = client.get("http://www.example.test/chunked").unwrap();
    assert_eq!(r.read_to_vec(1 << 20).unwrap().len(), 790);
    let mut r = client
        .post("http://www.example.test/echo", pattern(200_000))
        .unwrap();
    let echoed = r.read_to_vec(1 << 20).unwrap();
    assert!(echoed[5..] == pattern(200_000)[..]);
    let start = Instant::now();
    let mut r = client.get("http://www.example.test/big").unwrap();
    let mut got = Vec::with_capacity(BIG);
    r.copy_to(&mut got).unwrap();
    let elapsed = start.elapsed();
    assert!(got == pattern(BIG), "the body differs");
    eprintln!(
        "5 MiB over netstrata's memory network in {elapsed:?} ({:.0} MB/s)",
        BIG as f64 / elapsed.as_secs_f64() / 1e6
    );
    assert_eq!(server.accepted(), 1, "one connection for every request");
    let e = client.get("http://nope.example.test/").unwrap_err();
    assert!(
        matches!(
            &e,
            ClientError::Resolve {
                source: LookupError::Dns(ResolveError::NxDomain),
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "cannot resolve \"nope.example.test\": no such domain"
    );
    drop(client);
    drop(server);
    dns_stop.store(true, Ordering::Release);
    dns.join().unwrap();
}

/// A shared netstrata listener, so that the test keeps a handle to close
/// it while the accept loop owns it.
struct ListenerRef(Arc<TcpListener>);

impl StreamListener for ListenerRef {
    type Stream = netstrata::blocking::TcpStream;
    fn accept_stream(&self) -> std::io::Result<(Self::Stream, SocketAddr)> {
        self.0.accept()
    }
}

/// A server that answers a HEAD, then (once the client has pooled the
/// connection) sends a whole unasked-for response, as a server that
/// wrongly sent a HEAD response's body might: the client must see the
/// stray bytes before reusing the connection (RFC 9112 §9.3), not take
/// them for the response to its next request.
#[test]
fn stray_bytes_on_an_idle_connection_are_not_a_response() {
    use std::sync::mpsc;
    let net = MemoryNetwork::new(1500);
    let client_rt = common::runtime(&net, 1);
    let server_rt = common::runtime(&net, 2);
    let listener = Arc::new(TcpListener::bind(&server_rt, (SERVER, 80)).unwrap());
    let (pooled_tx, pooled_rx) = mpsc::channel::<()>();
    let (stray_tx, stray_rx) = mpsc::channel::<()>();
    let accepting = listener.clone();
    let server = thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((stream, _)) = accepting.accept() {
            stream.set_timeouts(Some(Duration::from_secs(2))).unwrap();
            let mut conn = Connection::new(&stream, Limits::default());
            let Ok(Some(head)) = conn.read_request_head() else {
                break;
            };
            let mut s = &stream;
            if head.method == "HEAD" {
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
                    .unwrap();
                if pooled_rx.recv_timeout(Duration::from_secs(2)).is_err() {
                    break;
                }
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
                    .unwrap();
                // Acknowledged: in the client's receive buffer.
                stream.wait_acked(Some(Duration::from_secs(2))).unwrap();
                stray_tx.send(()).unwrap();
            } else {
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
                    .unwrap();
            }
            held.push(stream);
        }
    });
    let client = Client::new(&client_rt).with_read_timeout(Some(Duration::from_secs(2)));
    let url = format!("http://{SERVER}/x");
    let r = client.head(url.as_str()).unwrap();
    assert_eq!(r.status(), 200);
    drop(r);
    assert_eq!(client.idle_connections(), 1);
    pooled_tx.send(()).unwrap();
    stray_rx.recv_timeout(Duration::from_secs(2)).unwrap();
    let body = client
        .get(url.as_str())
        .and_then(|mut r| r.read_to_vec(100));
    listener.close();
    server.join().unwrap();
    assert_eq!(body.unwrap(), b"good");
}
