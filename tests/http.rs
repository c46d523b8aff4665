//! netstrata's HTTP client against netstrata's HTTP server, each on its
//! own runtime over the in-memory network: keep-alive, chunked bodies,
//! tens of MiB each way, many concurrent clients, redirects, HEAD, and a
//! server that goes away under a pooled connection.

mod common;

use std::io::Read;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use netstrata::application::http::client::{Client, ClientError};
use netstrata::application::http::server::{Request, Response, Server, ServerConfig};
use netstrata::blocking::{Runtime, TcpListener};
use netstrata::link::MemoryNetwork;

use common::pattern;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// `common::pattern` as a stream: byte `i` of an endless body, generated
/// as it is read, so the server can send tens of MiB without holding them.
struct PatternReader {
    pos: usize,
    left: u64,
}

impl Read for PatternReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = out
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for (i, b) in out[..n].iter_mut().enumerate() {
            *b = ((self.pos + i).wrapping_mul(2_654_435_761) >> 7) as u8;
        }
        self.pos += n;
        self.left -= n as u64;
        Ok(n)
    }
}

/// The `n=` number of a query.
fn query_n(req: &Request<'_>) -> Option<u64> {
    req.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("n="))?
        .parse()
        .ok()
}

/// The test site: a page, pattern bodies of any length with a known
/// length or chunked, an echo, and a redirect.
fn site(req: &mut Request<'_>) -> Response {
    let n = query_n(req);
    match (req.method(), req.path(), n) {
        ("GET", "/page", _) => Response::text(200, "a small page\n"),
        ("GET" | "HEAD", "/sized", Some(n)) => Response::stream(
            200,
            "application/octet-stream",
            PatternReader { pos: 0, left: n },
            Some(n),
        ),
        ("GET", "/chunked", Some(n)) => Response::stream(
            200,
            "application/octet-stream",
            PatternReader { pos: 0, left: n },
            None,
        ),
        ("POST" | "PUT", "/echo", _) => match req.body().read_to_vec() {
            Ok(body) => Response::bytes(200, "application/octet-stream", body),
            Err(_) => Response::error(400),
        },
        ("GET", "/redirect", _) => Response::new(302).with_header("Location", "/page"),
        _ => Response::error(404),
    }
}

/// A client runtime, and the site served from another.
struct Setup {
    client_rt: Runtime,
    _server_rt: Runtime,
    server: Option<Server>,
}

fn start() -> Setup {
    let net = MemoryNetwork::new(1500);
    let client_rt = common::runtime(&net, 1);
    let server_rt = common::runtime(&net, 2);
    let listener = TcpListener::bind(&server_rt, (SERVER, 80)).unwrap();
    let config = ServerConfig {
        max_body_size: 64 << 20,
        ..ServerConfig::default()
    };
    let server = Server::spawn(listener, site, config).unwrap();
    Setup {
        client_rt,
        _server_rt: server_rt,
        server: Some(server),
    }
}

impl Setup {
    fn client(&self) -> Client<&Runtime> {
        Client::new(&self.client_rt).with_timeout(Some(Duration::from_secs(30)))
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("the server runs")
    }
}

fn url(path: &str) -> String {
    format!("http://{SERVER}{path}")
}

#[test]
fn keep_alive_and_chunked_bodies_on_one_connection() {
    let s = start();
    let client = s.client();
    for i in 0..20u64 {
        if i % 2 == 0 {
            let mut r = client.get(url("/page")).unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.read_to_vec(1000).unwrap(), b"a small page\n");
        } else {
            let n = 1000 * i + 7;
            let mut r = client.get(url(&format!("/chunked?n={n}"))).unwrap();
            assert_eq!(r.headers().get("transfer-encoding"), Some(&b"chunked"[..]));
            assert_eq!(r.read_to_vec(1 << 20).unwrap(), pattern(n as usize));
        }
    }
    assert_eq!(client.idle_connections(), 1);
    let stats = s.server().stats();
    assert_eq!(stats.connections_accepted, 1, "{stats:?}");
    assert_eq!(stats.requests, 20, "{stats:?}");
}

#[test]
fn tens_of_mib_each_way() {
    let s = start();
    let client = s.client();
    let check = |path: &str, len: usize| {
        let t = Instant::now();
        let mut r = client.get(url(path)).unwrap();
        assert_eq!(r.status(), 200);
        let (mut buf, mut got, mut at) = (vec![0u8; 64 << 10], 0usize, 0usize);
        let expected = pattern(len);
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            assert_eq!(buf[..n], expected[at..at + n], "{path}: at {at}");
            at += n;
            got += n;
        }
        assert_eq!(got, len, "{path}");
        eprintln!(
            "GET {path}: {} MiB in {:.2} s",
            len >> 20,
            t.elapsed().as_secs_f64()
        );
    };
    check(&format!("/sized?n={}", 32 << 20), 32 << 20);
    check(&format!("/chunked?n={}", 24 << 20), 24 << 20);
    let upload = pattern(20 << 20);
    let t = Instant::now();
    let mut r = client.post(url("/echo"), upload.clone()).unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.read_to_vec(32 << 20).unwrap() == upload);
    eprintln!(
        "POST /echo: 20 MiB up and back in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(s.server().stats().connections_accepted, 1);
}

#[test]
fn many_concurrent_clients() {
    let s = start();
    let shared = Arc::new(s.client().with_pool(16, Duration::from_secs(30)));
    thread::scope(|scope| {
        for t in 0..16usize {
            let shared = shared.clone();
            let own = s.client();
            scope.spawn(move || {
                for i in 0..10usize {
                    // Half the threads share one client (and its pool),
                    // half have their own.
                    let client = if t % 2 == 0 { &*shared } else { &own };
                    let n = 997 * (t + 1) + 131 * i;
                    let path = if i % 3 == 0 { "chunked" } else { "sized" };
                    let mut r = client.get(url(&format!("/{path}?n={n}"))).unwrap();
                    assert_eq!(r.read_to_vec(1 << 20).unwrap(), pattern(n), "{t}/{i}");
                }
                let mut r = own.put(url("/echo"), pattern(50_000 + t)).unwrap();
                assert_eq!(r.read_to_vec(1 << 20).unwrap(), pattern(50_000 + t));
            });
        }
    });
    let stats = s.server().stats();
    assert_eq!(stats.requests, 16 * 11, "{stats:?}");
    // Keep-alive: far fewer connections than requests. At most one per
    // thread on the shared client (8) and one per own client (16: every
    // thread's PUT goes on its own client).
    assert!(stats.connections_accepted <= 24, "{stats:?}");
    assert_eq!(
        stats.malformed + stats.io_errors + stats.timeouts,
        0,
        "{stats:?}"
    );
}

#[test]
fn redirects_head_and_errors() {
    let s = start();
    // Redirects are off by default: the 302 comes back as it is.
    let r = s.client().get(url("/redirect")).unwrap();
    assert_eq!(r.status(), 302);
    drop(r);
    let mut r = s.client().with_redirects(2).get(url("/redirect")).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.url().path(), "/page");
    assert_eq!(r.read_to_vec(100).unwrap(), b"a small page\n");

    let client = s.client();
    let mut r = client.head(url("/sized?n=123456")).unwrap();
    assert_eq!(r.headers().get("content-length"), Some(&b"123456"[..]));
    assert_eq!(r.read_to_vec(10).unwrap(), b"");
    // The connection is still good after a HEAD.
    let mut r = client.get(url("/page")).unwrap();
    assert_eq!(r.read_to_vec(100).unwrap(), b"a small page\n");
    let r = client.delete(url("/page")).unwrap();
    assert_eq!(r.status(), 404);
}

#[test]
fn server_gone_under_a_pooled_connection() {
    let Setup {
        client_rt,
        _server_rt,
        server,
    } = start();
    let client = Client::new(&client_rt);
    let mut r = client.get(url("/page")).unwrap();
    r.read_to_vec(100).unwrap();
    drop(r);
    assert_eq!(client.idle_connections(), 1);
    let done = server.unwrap().shutdown(Duration::from_secs(2));
    assert_eq!(done.unfinished, 0);
    // The pooled connection was closed by the server; the client notices,
    // reconnects, and is refused: a clear error, not a hang.
    let t = Instant::now();
    match client.get(url("/page")) {
        Err(ClientError::Connect { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused)
        }
        other => panic!(
            "expected connection refused, got {:?}",
            other.map(|r| r.status())
        ),
    }
    assert!(t.elapsed() < Duration::from_secs(5));
}
