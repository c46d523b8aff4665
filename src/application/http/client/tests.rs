//! The client against scripted servers on a fake network: the bytes it
//! writes, how it reads every kind of response, connection reuse, retries,
//! redirects and `Expect: 100-continue`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::application::http::conn::tests::Pieces;

/// A condition on what the client has written so far.
type Ready = Box<dyn Fn(&[u8]) -> bool + Send>;

/// What a scripted server does next on one connection.
enum Step {
    /// Waits until what the client wrote satisfies the test; a read
    /// before that fails as a read timeout would.
    Until(Ready),
    /// Sends bytes.
    Send(Vec<u8>),
    /// Resets the connection: reads and writes fail.
    Reset,
    /// The next read takes this long (the server is slow to send).
    Sleep(Duration),
}

/// Waits for `n` complete request heads.
fn heads(n: usize) -> Step {
    Step::Until(Box::new(move |w| {
        w.windows(4).filter(|x| x == b"\r\n\r\n").count() >= n
    }))
}

/// Waits until the client has written something ending in `tail`.
fn until_ends_with(tail: &'static [u8]) -> Step {
    Step::Until(Box::new(move |w| w.ends_with(tail)))
}

fn send(s: &str) -> Step {
    Step::Send(s.as_bytes().to_vec())
}

/// One end of a scripted connection. The script ends in end of stream
/// (the server closed).
struct FakeStream {
    steps: VecDeque<Step>,
    sending: VecDeque<u8>,
    written: Arc<Mutex<Vec<u8>>>,
    /// Bytes returned per read at most.
    piece: usize,
    /// Whether the end of the script (the server closing) is hidden
    /// from `is_idle_open`, as when the FIN is still on its way.
    hidden_close: bool,
    /// Reads that "timed out", on every connection.
    timeouts: Arc<AtomicUsize>,
}

impl fmt::Debug for FakeStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FakeStream")
    }
}

impl Read for FakeStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.sending.is_empty() {
                let n = out.len().min(self.piece).min(self.sending.len());
                for (o, b) in out.iter_mut().zip(self.sending.drain(..n)) {
                    *o = b;
                }
                return Ok(n);
            }
            match self.steps.front() {
                None => return Ok(0),
                Some(Step::Until(ready)) => {
                    if !ready(&self.written.lock().unwrap()) {
                        self.timeouts.fetch_add(1, Ordering::SeqCst);
                        return Err(io::Error::new(io::ErrorKind::WouldBlock, "timed out"));
                    }
                }
                Some(Step::Send(bytes)) => self.sending.extend(bytes),
                Some(Step::Reset) => return Err(io::ErrorKind::ConnectionReset.into()),
                Some(Step::Sleep(d)) => std::thread::sleep(*d),
            }
            self.steps.pop_front();
        }
    }
}

impl Write for FakeStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if matches!(self.steps.front(), Some(Step::Reset)) {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.written.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ByteStream for FakeStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        assert_ne!(t, Some(Duration::ZERO));
        Ok(())
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        assert_ne!(t, Some(Duration::ZERO));
        Ok(())
    }
    fn set_nodelay(&self, _: bool) -> io::Result<()> {
        Ok(())
    }
    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
    }
    fn is_idle_open(&self) -> bool {
        self.hidden_close || !self.steps.is_empty() || !self.sending.is_empty()
    }
}

/// How a connection attempt goes.
enum Script {
    Serve(Vec<Step>),
    Refuse,
    TimeOut,
}

/// A network whose connections follow scripts, in order.
#[derive(Default)]
struct FakeNet {
    scripts: Mutex<VecDeque<Script>>,
    /// What the client wrote on each connection, in connection order.
    written: Mutex<Vec<Arc<Mutex<Vec<u8>>>>>,
    connects: Mutex<Vec<SocketAddr>>,
    piece: usize,
    hidden_close: bool,
    timeouts: Arc<AtomicUsize>,
}

impl FakeNet {
    fn new(scripts: Vec<Vec<Step>>) -> FakeNet {
        FakeNet::with(scripts.into_iter().map(Script::Serve).collect(), 1 << 20)
    }

    fn with(scripts: Vec<Script>, piece: usize) -> FakeNet {
        FakeNet {
            scripts: Mutex::new(scripts.into()),
            piece,
            ..FakeNet::default()
        }
    }

    /// Connections whose closing the client cannot see before it reuses
    /// them.
    fn hiding_close(mut self) -> FakeNet {
        self.hidden_close = true;
        self
    }

    /// The requests the client wrote on connection `i`, parsed back.
    fn requests(&self, i: usize) -> Vec<(RequestHead, String)> {
        let bytes = self.written.lock().unwrap()[i].lock().unwrap().clone();
        let mut conn = Connection::new(Pieces::new(&bytes, 1000), Limits::default());
        let mut out = Vec::new();
        while let Some(head) = conn.read_request_head().unwrap() {
            let kind = crate::application::http::request_body_kind(&head).unwrap();
            let body = conn.body(kind).read_to_vec(1 << 20).unwrap();
            out.push((head, String::from_utf8(body).unwrap()));
        }
        out
    }

    /// What the client wrote on connection `i`, as text.
    fn written(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.written.lock().unwrap()[i].lock().unwrap()).into_owned()
    }

    fn timeouts(&self) -> usize {
        self.timeouts.load(Ordering::SeqCst)
    }

    fn connections(&self) -> usize {
        self.connects.lock().unwrap().len()
    }
}

impl Network for &FakeNet {
    type Datagram = std::net::UdpSocket;
    type Stream = FakeStream;
    fn bind_datagram(&self, _: SocketAddr) -> io::Result<std::net::UdpSocket> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn connect_stream(&self, to: SocketAddr, timeout: Duration) -> io::Result<FakeStream> {
        assert!(!timeout.is_zero());
        self.connects.lock().unwrap().push(to);
        let steps = match self.scripts.lock().unwrap().pop_front() {
            Some(Script::Serve(steps)) => steps,
            Some(Script::TimeOut) => return Err(io::ErrorKind::TimedOut.into()),
            Some(Script::Refuse) | None => return Err(io::ErrorKind::ConnectionRefused.into()),
        };
        let written = Arc::new(Mutex::new(Vec::new()));
        self.written.lock().unwrap().push(written.clone());
        Ok(FakeStream {
            steps: steps.into(),
            sending: VecDeque::new(),
            written,
            piece: self.piece,
            hidden_close: self.hidden_close,
            timeouts: self.timeouts.clone(),
        })
    }
}

/// A resolver from a fixed table.
struct Names(Vec<(&'static str, Vec<Ipv4Addr>)>);

impl Resolve for Names {
    fn resolve_ipv4(&self, host: &str) -> Result<Vec<Ipv4Addr>, LookupError> {
        self.0
            .iter()
            .find(|(name, _)| *name == host)
            .map(|(_, addrs)| addrs.clone())
            .ok_or(LookupError::Dns(
                crate::application::dns::resolver::ResolveError::NxDomain,
            ))
    }
}

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const URL: &str = "http://192.0.2.1/";

fn client(net: &FakeNet) -> Client<&FakeNet> {
    Client::new(net)
}

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn get_golden_bytes_and_name_resolution() {
    let net = FakeNet::new(vec![vec![heads(1), send(&ok("hi"))]]);
    let names = Names(vec![("www.example.test", vec![SERVER])]);
    let c = client(&net).with_resolver(names);
    let mut r = c
        .get("http://WWW.example.test:8080/a/../b?x=1#frag")
        .unwrap();
    assert_eq!(r.status_line(), "HTTP/1.1 200 OK");
    assert_eq!(r.read_to_vec(100).unwrap(), b"hi");
    assert_eq!(
        net.written(0),
        format!(
            "GET /b?x=1 HTTP/1.1\r\nHost: www.example.test:8080\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\n\r\n"
        )
    );
    assert_eq!(
        *net.connects.lock().unwrap(),
        [SocketAddr::from((SERVER, 8080))]
    );
    assert!(USER_AGENT.starts_with("netstrata/"));
}

#[test]
fn bodies_and_caller_fields() {
    let net = FakeNet::new(vec![vec![
        heads(1),
        send(&ok("")),
        heads(2),
        send(&ok("")),
        heads(3),
        send(&ok("")),
    ]]);
    let c = client(&net);
    c.post(URL, "a=1").unwrap();
    c.put(URL, Vec::new()).unwrap();
    let request = Request::new("PATCH", Url::parse("http://192.0.2.1/p").unwrap())
        .with_header("user-agent", "probe/1")
        .with_header("Host", "virtual.example")
        .with_header("X-Trace", "7")
        .with_body("{}");
    c.request(request).unwrap();
    assert_eq!(
        net.written(0),
        format!(
            "POST / HTTP/1.1\r\nHost: 192.0.2.1\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\nContent-Length: 3\r\n\r\na=1\
PUT / HTTP/1.1\r\nHost: 192.0.2.1\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\nContent-Length: 0\r\n\r\n\
PATCH /p HTTP/1.1\r\nHost: virtual.example\r\nAccept: */*\r\nuser-agent: probe/1\r\nX-Trace: 7\r\nContent-Length: 2\r\n\r\n{{}}"
        )
    );
    assert_eq!(net.connections(), 1);
}

#[test]
fn bad_requests_are_refused_before_connecting() {
    let net = FakeNet::new(vec![]);
    let c = client(&net);
    let url = Url::parse(URL).unwrap();
    let r = |req: Request| c.request(req).unwrap_err();
    assert!(matches!(
        r(Request::new("GE T", url.clone())),
        ClientError::InvalidMethod(_)
    ));
    assert!(matches!(
        r(Request::new("CONNECT", url.clone())),
        ClientError::InvalidMethod(_)
    ));
    assert!(matches!(
        r(Request::new("GET", url.clone()).with_header("X", "a\r\nInjected: 1")),
        ClientError::InvalidHeader(_)
    ));
    assert!(matches!(
        r(Request::new("GET", url.clone()).with_header("Bad Name", "1")),
        ClientError::InvalidHeader(_)
    ));
    assert!(matches!(
        r(Request::new("POST", url.clone()).with_header("Transfer-Encoding", "chunked")),
        ClientError::ReservedHeader(_)
    ));
    let c2 = client(&net).with_user_agent("x\ny");
    assert!(matches!(c2.get(URL), Err(ClientError::InvalidHeader(_))));
    assert!(matches!(
        c.get("https://192.0.2.1/"),
        Err(ClientError::InvalidUrl(UrlError::HttpsUnsupported))
    ));
    assert_eq!(net.connections(), 0);
}

#[test]
fn resolution_and_connect_failures() {
    let net = FakeNet::with(vec![Script::Refuse, Script::TimeOut], 1 << 20);
    let e = client(&net).get("http://www.example.test/").unwrap_err();
    assert!(e.to_string().contains("no resolver configured"), "{e}");
    let names = Names(vec![
        ("empty.test", vec![]),
        (
            "two.test",
            vec![Ipv4Addr::new(192, 0, 2, 8), Ipv4Addr::new(192, 0, 2, 9)],
        ),
    ]);
    let c = client(&net).with_resolver(names);
    let e = c.get("http://nx.test/").unwrap_err();
    assert!(
        matches!(&e, ClientError::Resolve { host, source: LookupError::Dns(_) } if host == "nx.test")
    );
    assert_eq!(e.to_string(), "cannot resolve \"nx.test\": no such domain");
    assert!(matches!(
        c.get("http://empty.test/"),
        Err(ClientError::NoAddress(_))
    ));
    // Both addresses are tried; the last error is reported.
    let e = c.get("http://two.test/").unwrap_err();
    assert!(
        matches!(e, ClientError::ConnectTimeout(a) if a == SocketAddr::from(([192, 0, 2, 9], 80)))
    );
    assert!(e.is_timeout());
    let e = c.get(URL).unwrap_err();
    assert!(
        matches!(&e, ClientError::Connect { source, .. } if source.kind() == io::ErrorKind::ConnectionRefused)
    );
    // The second address answers when the first refuses.
    let net = FakeNet::with(
        vec![
            Script::Refuse,
            Script::Serve(vec![heads(1), send(&ok("x"))]),
        ],
        1 << 20,
    );
    let names = Names(vec![(
        "two.test",
        vec![Ipv4Addr::new(192, 0, 2, 8), Ipv4Addr::new(192, 0, 2, 9)],
    )]);
    let mut r = client(&net)
        .with_resolver(names)
        .get("http://two.test/")
        .unwrap();
    assert_eq!(r.read_to_vec(10).unwrap(), b"x");
}

/// Every kind of response framing, delivered a byte at a time.
#[test]
fn response_framings_in_one_byte_pieces() {
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 9\r\n\r\n";
    let interim = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let head_reply = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    let no_content = "HTTP/1.1 204 No Content\r\n\r\n";
    let not_modified = "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n";
    let close_delimited = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end";
    let script = vec![
        heads(1),
        send(chunked),
        heads(2),
        send(interim),
        heads(3),
        send(head_reply),
        heads(4),
        send(no_content),
        heads(5),
        send(not_modified),
        heads(6),
        send(close_delimited),
    ];
    let net = FakeNet::with(vec![Script::Serve(script)], 1);
    let c = client(&net);
    let mut r = c.get(URL).unwrap();
    assert_eq!(r.body_kind(), BodyKind::Chunked);
    assert_eq!(r.read_to_vec(100).unwrap(), b"hello world");
    assert_eq!(r.trailers().unwrap().get("x-sum"), Some(&b"9"[..]));
    let mut r = c.get(URL).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.read_to_vec(100).unwrap(), b"ok");
    let mut r = c.head(URL).unwrap();
    assert_eq!(r.headers().get("content-length"), Some(&b"1000"[..]));
    assert_eq!(r.read_to_vec(0).unwrap(), b"");
    for status in [204, 304] {
        let mut r = c.get(URL).unwrap();
        assert_eq!(r.status(), status);
        assert_eq!(r.body_kind(), BodyKind::None);
        assert_eq!(r.read_to_vec(0).unwrap(), b"");
    }
    let mut r = c.get(URL).unwrap();
    assert_eq!(r.body_kind(), BodyKind::CloseDelimited);
    assert_eq!(r.read_to_vec(100).unwrap(), b"until the end");
    // All six on one connection, which the last one closed.
    assert_eq!(net.connections(), 1);
    assert_eq!(c.idle_connections(), 0);
}

#[test]
fn hostile_responses_are_errors() {
    let many_interim = "HTTP/1.1 102 Processing\r\n\r\n".repeat(MAX_INTERIM + 1);
    let huge_head = format!(
        "HTTP/1.1 200 OK\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    let chunk = format!("400\r\n{}\r\n", "z".repeat(1024));
    let endless_chunks = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{}",
        chunk.repeat(200)
    );
    type Expected = fn(&ClientError) -> bool;
    let cases: Vec<(String, Expected)> = vec![
        ("garbage\r\n\r\n".into(), |e| {
            matches!(e, ClientError::MalformedResponse(_))
        }),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".into(),
            |e| {
                matches!(
                    e,
                    ClientError::MalformedResponse(HttpError::InvalidContentLength)
                )
            },
        ),
        ("HTTP/1.1 101 Switching Protocols\r\n\r\n".into(), |e| {
            matches!(e, ClientError::UnexpectedUpgrade)
        }),
        (many_interim, |e| {
            matches!(e, ClientError::TooManyInterim(_))
        }),
        (huge_head, |e| {
            matches!(
                e,
                ClientError::MalformedResponse(HttpError::HeadersTooLarge)
            )
        }),
        ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n".into(), |e| {
            matches!(e, ClientError::Closed(Phase::Head))
        }),
        ("HTTP/2 200 OK\r\n\r\n".into(), |e| {
            matches!(e, ClientError::MalformedResponse(_))
        }),
    ];
    for (reply, expected) in cases {
        let net = FakeNet::new(vec![vec![heads(1), Step::Send(reply.clone().into_bytes())]]);
        let e = client(&net).get(URL).unwrap_err();
        assert!(
            expected(&e),
            "{e:?} for {:?}",
            &reply[..reply.len().min(40)]
        );
    }
    // Body errors: too long, truncated, a bad chunk, an endless body.
    let net = FakeNet::new(vec![
        vec![
            heads(1),
            send("HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\nabc"),
        ],
        vec![
            heads(1),
            send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
        ],
        vec![
            heads(1),
            send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n"),
        ],
        vec![heads(1), Step::Send(endless_chunks.into_bytes())],
    ]);
    let c = client(&net);
    let mut r = c.get(URL).unwrap();
    assert!(matches!(
        r.read_to_vec(1 << 20),
        Err(ClientError::BodyTooLarge(_))
    ));
    let mut r = c.get(URL).unwrap();
    assert!(matches!(
        r.read_to_vec(100),
        Err(ClientError::Closed(Phase::Body))
    ));
    // After a failed read the body stays failed rather than looking ended.
    assert!(r.read(&mut [0u8; 4]).is_err());
    let mut r = c.get(URL).unwrap();
    assert!(matches!(
        r.read_to_vec(100),
        Err(ClientError::MalformedResponse(HttpError::InvalidChunkSize))
    ));
    let mut r = c.get(URL).unwrap();
    assert!(matches!(
        r.read_to_vec(50_000),
        Err(ClientError::BodyTooLarge(50_000))
    ));
    assert_eq!(c.idle_connections(), 0);
}

#[test]
fn timeouts_are_typed() {
    let never = || Step::Until(Box::new(|_| false));
    let net = FakeNet::new(vec![
        vec![never()],
        vec![
            heads(1),
            send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"),
            never(),
        ],
    ]);
    let c = client(&net);
    let e = c.get(URL).unwrap_err();
    assert!(matches!(e, ClientError::Timeout(Phase::Head)), "{e}");
    assert_eq!(e.to_string(), "timed out waiting for the response");
    let mut r = c.get(URL).unwrap();
    let e = r.read_to_vec(100).unwrap_err();
    assert!(matches!(e, ClientError::Timeout(Phase::Body)), "{e}");
    assert!(e.is_timeout());
}

/// `bytes` a byte at a time, each after `pause`.
fn trickle(bytes: &str, pause: Duration) -> Vec<Step> {
    bytes
        .bytes()
        .flat_map(|b| [Step::Sleep(pause), Step::Send(vec![b])])
        .collect()
}

/// A server trickling its response head a byte per 20 ms, each read well
/// within the read timeout of 50 ms, is cut off once the head has taken a
/// read timeout since its first byte; a body may trickle.
#[test]
fn a_trickled_response_head_times_out() {
    let ms = Duration::from_millis;
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
    let mut slow_head = vec![heads(1)];
    slow_head.extend(trickle(head, ms(20)));
    let mut slow_body = vec![heads(1), send(head)];
    slow_body.extend(trickle("abc", ms(20)));
    let net = FakeNet::new(vec![slow_head, slow_body]);
    let c = client(&net).with_read_timeout(Some(ms(50)));
    let start = std::time::Instant::now();
    let e = c.get(URL).unwrap_err();
    assert!(matches!(e, ClientError::Timeout(Phase::Head)), "{e}");
    assert!(start.elapsed() < ms(300), "{:?}", start.elapsed());
    let mut r = c.get(URL).unwrap();
    assert_eq!(r.read_to_vec(10).unwrap(), b"abc");
}

#[test]
fn keep_alive_rules() {
    let net = FakeNet::new(vec![
        // 1.1: reused.
        vec![heads(1), send(&ok("a")), heads(2), send(&ok("b"))],
        // 1.0 without keep-alive: closed.
        vec![
            heads(1),
            send("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nc"),
        ],
        // 1.0 with keep-alive: reused.
        vec![
            heads(1),
            send("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nd"),
            heads(2),
            send("HTTP/1.1 200 OK\r\nConnection: other, close\r\nContent-Length: 1\r\n\r\ne"),
        ],
        // Body not read: closed.
        vec![heads(1), send(&ok("fff"))],
        // Bytes after the body: closed.
        vec![heads(1), send(&(ok("g") + "junk"))],
        vec![heads(1), send(&ok("h"))],
    ]);
    let c = client(&net);
    let text = |mut r: Response<FakeStream>| String::from_utf8(r.read_to_vec(10).unwrap()).unwrap();
    assert_eq!(text(c.get(URL).unwrap()), "a");
    assert_eq!(c.idle_connections(), 1);
    assert_eq!(text(c.get(URL).unwrap()), "b");
    assert_eq!(net.connections(), 1);
    // The server has closed that one since: a new connection.
    assert_eq!(text(c.get(URL).unwrap()), "c");
    assert_eq!(net.connections(), 2);
    assert_eq!(c.idle_connections(), 0);
    assert_eq!(text(c.get(URL).unwrap()), "d");
    assert_eq!(c.idle_connections(), 1);
    assert_eq!(text(c.get(URL).unwrap()), "e");
    assert_eq!(c.idle_connections(), 0);
    drop(c.get(URL).unwrap());
    assert_eq!(c.idle_connections(), 0);
    assert_eq!(text(c.get(URL).unwrap()), "g");
    assert_eq!(c.idle_connections(), 0);
    assert_eq!(text(c.get(URL).unwrap()), "h");
    assert_eq!(net.connections(), 6);
    // A client without a pool says so.
    let net = FakeNet::new(vec![vec![heads(1), send(&ok(""))]]);
    client(&net)
        .with_pool(0, Duration::from_secs(1))
        .get(URL)
        .unwrap();
    assert!(net.written(0).ends_with("Connection: close\r\n\r\n"));
}

#[test]
fn stale_connection_retry_only_for_idempotent_methods() {
    // The server answers once then closes; the client cannot tell.
    let once = || vec![heads(1), send(&ok("1"))];
    let net = FakeNet::new(vec![once(), vec![heads(1), send(&ok("2"))]]).hiding_close();
    let c = client(&net);
    assert_eq!(c.get(URL).unwrap().read_to_vec(10).unwrap(), b"1");
    let mut r = c.delete(URL).unwrap();
    assert_eq!(r.read_to_vec(10).unwrap(), b"2");
    assert_eq!(net.connections(), 2);
    // The DELETE went out on the stale connection first, then again.
    assert!(net.written(0).contains("DELETE"));
    assert!(net.written(1).starts_with("DELETE"));
    // A POST on a stale connection is not sent twice.
    let net = FakeNet::new(vec![once(), once()]).hiding_close();
    let c = client(&net);
    c.get(URL).unwrap().read_to_vec(10).unwrap();
    let e = c.post(URL, "x").unwrap_err();
    assert!(matches!(e, ClientError::Closed(Phase::Head)), "{e}");
    assert_eq!(net.connections(), 1);
    // A reset on write counts as unanswered too.
    let net = FakeNet::new(vec![
        vec![heads(1), send(&ok("1")), Step::Reset],
        vec![heads(1), send(&ok("2"))],
    ])
    .hiding_close();
    let c = client(&net);
    c.get(URL).unwrap().read_to_vec(10).unwrap();
    assert_eq!(c.put(URL, "v").unwrap().read_to_vec(10).unwrap(), b"2");
    // A connection that closed halfway through a response is not retried.
    let net = FakeNet::new(vec![
        vec![
            heads(1),
            send(&ok("1")),
            heads(2),
            send("HTTP/1.1 200 OK\r\nContent-"),
        ],
        once(),
    ]);
    let c = client(&net);
    c.get(URL).unwrap().read_to_vec(10).unwrap();
    assert!(matches!(c.get(URL), Err(ClientError::Closed(Phase::Head))));
    assert_eq!(net.connections(), 1);
    // Nor is one that answered garbage.
    let net = FakeNet::new(vec![
        vec![heads(1), send(&ok("1")), heads(2), send("nonsense\r\n\r\n")],
        once(),
    ]);
    let c = client(&net);
    c.get(URL).unwrap().read_to_vec(10).unwrap();
    assert!(matches!(c.get(URL), Err(ClientError::MalformedResponse(_))));
    assert_eq!(net.connections(), 1);
}

fn redirect(status: u16, location: &str) -> String {
    format!("HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 5\r\n\r\nmoved")
}

#[test]
fn redirects_are_off_by_default() {
    let net = FakeNet::new(vec![vec![heads(1), send(&redirect(302, "/next"))]]);
    let mut r = client(&net).get(URL).unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.read_to_vec(10).unwrap(), b"moved");
}

#[test]
fn redirects_rewrite_methods_and_reuse_the_connection() {
    let net = FakeNet::new(vec![vec![
        heads(1),
        send(&redirect(303, "/seen?id=1")),
        heads(2),
        send(&redirect(307, "again")),
        heads(3),
        send(&ok("done")),
        heads(4),
        send(&redirect(308, "/perm")),
        heads(5),
        send(&ok("kept")),
        heads(6),
        send(&redirect(302, "http://192.0.2.1/get")),
        heads(7),
        send(&ok("got")),
    ]]);
    let c = client(&net).with_redirects(5);
    let request = Request::new("POST", Url::parse("http://192.0.2.1/form").unwrap())
        .with_header("Content-Type", "text/plain")
        .with_header("Authorization", "Bearer t")
        .with_body("data");
    let mut r = c.request(request.clone()).unwrap();
    assert_eq!(r.read_to_vec(10).unwrap(), b"done");
    assert_eq!(r.url().to_string(), "http://192.0.2.1/again");
    let mut r = c.put("http://192.0.2.1/x", "body").unwrap();
    assert_eq!(r.read_to_vec(10).unwrap(), b"kept");
    let mut r = c.request(request).unwrap();
    assert_eq!(r.read_to_vec(10).unwrap(), b"got");
    let sent: Vec<(String, String, Headers, String)> = net
        .requests(0)
        .into_iter()
        .map(|(h, body)| (h.method, h.target, h.headers, body))
        .collect();
    let lines: Vec<String> = sent
        .iter()
        .map(|(m, t, _, b)| format!("{m} {t} {b}"))
        .collect();
    assert_eq!(
        lines,
        [
            "POST /form data",
            // 303: GET, without the body.
            "GET /seen?id=1 ",
            // 307 keeps the method (GET by now).
            "GET /again ",
            "PUT /x body",
            // 308 keeps PUT and its body.
            "PUT /perm body",
            "POST /form data",
            // 302 turns POST into GET.
            "GET /get ",
        ]
    );
    let fields = |i: usize| &sent[i].2;
    assert_eq!(fields(0).get("content-type"), Some(&b"text/plain"[..]));
    // The fields describing the dropped body go with it; others stay.
    for i in [1, 2, 6] {
        assert!(!fields(i).contains("content-type"), "{i}");
        assert!(!fields(i).contains("content-length"), "{i}");
        assert_eq!(fields(i).get("authorization"), Some(&b"Bearer t"[..]));
    }
    assert_eq!(fields(4).get("content-length"), Some(&b"4"[..]));
    assert_eq!(net.connections(), 1);
}

#[test]
fn redirect_limits_and_odd_locations() {
    let loop_script = (1..=4)
        .flat_map(|i| [heads(i), send(&redirect(301, "/loop"))])
        .collect();
    let net = FakeNet::new(vec![loop_script]);
    let e = client(&net).with_redirects(3).get(URL).unwrap_err();
    assert!(matches!(e, ClientError::TooManyRedirects(3)), "{e}");
    assert_eq!(
        client(&net).with_redirects(1000).config().max_redirects,
        MAX_REDIRECTS
    );
    let net = FakeNet::new(vec![
        vec![
            heads(1),
            send("HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"),
        ],
        vec![heads(1), send(&redirect(301, "https://secure.example/"))],
        vec![heads(1), send(&redirect(301, "/caf\u{e9}"))],
        vec![heads(1), send(&ok("cafe"))],
    ]);
    let c = client(&net).with_redirects(2);
    // No Location: the 3xx itself.
    assert_eq!(c.get(URL).unwrap().status(), 302);
    let e = c.get(URL).unwrap_err();
    assert!(
        matches!(
            &e,
            ClientError::BadRedirect {
                source: UrlError::HttpsUnsupported,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("https is not supported"));
    // A raw non-ASCII Location is percent-encoded.
    let r = c.get(URL).unwrap();
    assert_eq!(r.url().path(), "/caf%C3%A9");
}

#[test]
fn cross_host_redirect_drops_credentials() {
    let net = FakeNet::new(vec![
        vec![heads(1), send(&redirect(307, "http://other.test:8080/x"))],
        vec![heads(1), send(&ok(""))],
    ]);
    let names = Names(vec![("other.test", vec![Ipv4Addr::new(192, 0, 2, 2)])]);
    let c = client(&net).with_resolver(names).with_redirects(1);
    let request = Request::new("GET", Url::parse(URL).unwrap())
        .with_header("Authorization", "secret")
        .with_header("Cookie", "c=1")
        .with_header("Host", "alias")
        .with_header("X-Keep", "1");
    c.request(request).unwrap();
    let second = net.written(1);
    assert!(
        second.starts_with("GET /x HTTP/1.1\r\nHost: other.test:8080\r\n"),
        "{second}"
    );
    assert!(second.contains("X-Keep: 1"));
    for gone in ["secret", "Cookie", "alias"] {
        assert!(!second.contains(gone), "{second}");
    }
}

#[test]
fn expect_continue() {
    let body = "0123456789abcdef";
    let net = FakeNet::new(vec![
        // 100 first, then the final answer after the body.
        vec![
            heads(1),
            send("HTTP/1.1 100 Continue\r\n\r\n"),
            until_ends_with(b"abcdef"),
            send(&ok("stored")),
        ],
        // A final status before the body: the body is never sent.
        vec![
            heads(1),
            send("HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n"),
        ],
        // No 100 in time: the body goes anyway.
        vec![until_ends_with(b"abcdef"), send(&ok("late"))],
        // 417: sent again without the expectation.
        vec![
            heads(1),
            send("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n"),
        ],
        vec![until_ends_with(b"abcdef"), send(&ok("plain"))],
        vec![heads(1), send(&ok("small"))],
    ]);
    let c = client(&net).with_expect_continue(Some(16), Duration::from_millis(50));
    let mut r = c.put(URL, body).unwrap();
    assert_eq!(r.read_to_vec(10).unwrap(), b"stored");
    let w = net.written(0);
    assert!(w.contains("Content-Length: 16\r\nExpect: 100-continue\r\n\r\n0123456789abcdef"));
    // The body went on the 100, without waiting it out.
    assert_eq!(net.timeouts(), 0);
    let r = c.put(URL, body).unwrap();
    assert_eq!(r.status(), 413);
    assert!(net.written(1).ends_with("\r\n\r\n"));
    // That connection was not kept: the server may still expect a body.
    assert_eq!(c.idle_connections(), 0);
    assert_eq!(c.put(URL, body).unwrap().read_to_vec(10).unwrap(), b"late");
    assert_eq!(net.timeouts(), 1);
    assert_eq!(
        c.post(URL, body).unwrap().read_to_vec(10).unwrap(),
        b"plain"
    );
    assert!(!net.written(4).contains("Expect"));
    // Smaller bodies do not wait.
    assert_eq!(
        c.put(URL, &body[1..]).unwrap().read_to_vec(10).unwrap(),
        b"small"
    );
    assert!(!net.written(5).contains("Expect"));
}

#[test]
fn streaming_a_body_returns_the_connection_at_its_end() {
    let big: String = (0..100_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let net = FakeNet::new(vec![vec![
        heads(1),
        send(&ok(&big)),
        heads(2),
        send(&ok("next")),
    ]]);
    let c = client(&net);
    let mut r = c.get(URL).unwrap();
    let mut out = Vec::new();
    assert_eq!(r.copy_to(&mut out).unwrap(), 100_000);
    assert_eq!(out, big.as_bytes());
    // Back in the pool before the response is dropped.
    assert_eq!(c.idle_connections(), 1);
    assert_eq!(c.get(URL).unwrap().read_to_vec(10).unwrap(), b"next");
    assert_eq!(net.connections(), 1);
}
