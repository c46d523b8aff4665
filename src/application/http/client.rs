//! An HTTP/1.1 client (RFC 9110, RFC 9112) over any [`Network`]:
//! netstrata's sockets (`&Runtime`) or the operating system's
//! ([`StdNetwork`](crate::application::net::StdNetwork)).
//!
//! ```no_run
//! use netstrata::application::http::client::{Client, SystemResolver};
//! use netstrata::application::net::StdNetwork;
//!
//! let client = Client::new(StdNetwork).with_resolver(SystemResolver).with_redirects(5);
//! let mut response = client.get("http://example.com/")?;
//! println!("{}", response.status_line());
//! let body = response.read_to_vec(1 << 20)?;
//! # Ok::<(), netstrata::application::http::client::ClientError>(())
//! ```
//!
//! The same client on netstrata's sockets, against netstrata's server on
//! the in-memory network (an IPv4 literal needs no resolver):
//!
//! ```
//! use netstrata::application::http::client::Client;
//! use netstrata::application::http::server::{Request, Response, Server, ServerConfig};
//! use netstrata::blocking::{Runtime, TcpListener};
//! use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
//! use netstrata::{Interface, InterfaceConfig};
//!
//! let net = MemoryNetwork::new(1500);
//! let runtime = |n: u32| {
//!     let port = net.attach();
//!     let cidr = format!("192.0.2.{n}/24").parse().unwrap();
//!     let iface = Interface::new(InterfaceConfig::new(EthernetAddress::local(n), cidr), port.capabilities());
//!     Runtime::on_memory_port(iface, port)
//! };
//! let (a, b) = (runtime(1)?, runtime(2)?);
//! let hello = |req: &mut Request<'_>| Response::text(200, format!("hello {}\n", req.path()));
//! let server = Server::spawn(TcpListener::bind(&b, "192.0.2.2:80")?, hello, ServerConfig::default())?;
//!
//! let client = Client::new(&a);
//! let mut response = client.get("http://192.0.2.2/you")?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.read_to_vec(1 << 20)?, b"hello /you\n");
//! drop(response);
//! assert_eq!(server.shutdown(std::time::Duration::from_secs(1)).stats.requests, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What it does:
//! - **Requests** with any method (GET, HEAD, POST, PUT, DELETE have
//!   shorthands), in origin-form (RFC 9112 §3.2.1), with `Host` first
//!   (RFC 9110 §7.2; with the port unless it is 80), `User-Agent:
//!   netstrata/<version>` (§10.1.5) and `Accept: */*` (§12.5.1), each
//!   replaced by the caller's own field of that name, and
//!   `Content-Length` when there is content or the method gives content a
//!   meaning (POST, PUT, PATCH: `Content-Length: 0` for an empty body;
//!   §8.6). Methods and fields are checked, so that a caller's string
//!   cannot inject a header; the framing fields are the client's own.
//! - **`Expect: 100-continue`** (RFC 9110 §10.1.1) for bodies of at least
//!   [`ClientConfig::expect_continue`] bytes (1 MiB by default): the body
//!   follows a 100, or [`ClientConfig::expect_wait`] without an answer;
//!   it is never sent if a final status comes first (and the connection
//!   is then closed). A 417 sends the request again without the
//!   expectation.
//! - **Responses**: interim 1xx responses are skipped (RFC 9110 §15.2; at
//!   most 16 of them; a 101 is an error, since the client never asks to
//!   upgrade); the body is framed as RFC 9112 §6.3 says (none for HEAD,
//!   204 and 304), and read through the connection's
//!   [`BodyReader`](super::BodyReader) machinery, streamed or whole with
//!   a size limit.
//! - **Persistent connections** (RFC 9112 §9.3): a connection goes back
//!   to an idle pool (bounded, with an idle timeout) keyed by host and
//!   port when its response body has been read to the end, the response
//!   is HTTP/1.1 without `Connection: close` (or HTTP/1.0 with
//!   `keep-alive`), the request did not say `close`, the body was not
//!   close-delimited, and nothing follows it on the connection. With the
//!   pool disabled, requests say `Connection: close`.
//! - **Retry** (RFC 9112 §9.3.1): a request sent on a reused connection
//!   that fails before any byte of a response arrives (the server closed
//!   the idle connection) is sent once more on a new connection if its
//!   method is idempotent (RFC 9110 §9.2.2). A non-idempotent request is
//!   not retried; the pool checks whether an idle connection was closed
//!   ([`ByteStream::is_idle_open`]) before handing it out, which makes
//!   that case rare.
//! - **Redirects** (RFC 9110 §15.4), off by default, followed up to
//!   [`ClientConfig::max_redirects`] times (at most [`MAX_REDIRECTS`]):
//!   `Location` is resolved against the request's URL (RFC 3986 §5.2); a
//!   303 turns any method but HEAD into GET, and a 301 or 302 turns POST
//!   into GET (as browsers do, RFC 9110 §15.4.2, §15.4.3), dropping the
//!   body and the fields that describe it; 307 and 308 keep the method
//!   and body. Across hosts the `Authorization`, `Cookie`,
//!   `Proxy-Authorization` and caller-given `Host` fields are dropped. A
//!   3xx without `Location` is returned as it is.
//! - **Names** are resolved through [`Resolve`]: netstrata's DNS resolver,
//!   the system's, or none (IPv4 literals only); every address is tried
//!   in turn.
//! - **Time limits**: connect, read and write timeouts per step, a
//!   response head must arrive within one read timeout of its first byte
//!   (a server trickling it a byte per read timeout is cut off), and an
//!   optional limit on the whole request ([`ClientConfig::timeout`]) from
//!   the first connect to the last body byte (name resolution keeps the
//!   resolver's own timeouts). Without that limit a body, sent or received,
//!   may take as long as a server that moves a byte per timeout period
//!   likes.
//!
//! A hostile server cannot make the client panic or buffer without bound:
//! heads, chunk lines and trailers are bounded by [`Limits`], interim
//! responses and redirects are counted, a redirect's body is read for
//! at most 64 KiB before the connection is dropped, and a body is only
//! held whole up to the limit the caller gives.
//!
//! Not implemented: https (no TLS), proxies, IPv6, request bodies streamed
//! from a reader (bodies are sent from memory, never chunked), pipelining,
//! content codings (no `Accept-Encoding` is sent, and a coded body is
//! returned as it came), cookies, authentication, caching, and the
//! `Retry-After` of 503.

mod pool;
mod resolve;
mod response;
mod timed;
mod url;

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::pool::{Pool, PoolKey};
pub use self::resolve::{LookupError, NoResolver, Resolve, SystemResolver};
use self::response::Body;
pub use self::response::Response;
use self::timed::TimedStream;
pub use self::url::{DEFAULT_PORT, Host, Url, UrlError};
use super::parse::{is_field_byte, is_token};
use super::{
    BodyKind, Connection, Headers, HttpError, Limits, ReadError, RequestHead, ResponseHead,
    Version, response_body_kind,
};
use crate::application::is_timeout;
use crate::application::net::{ByteStream, Network};

/// The `User-Agent` the client sends unless told otherwise.
pub const USER_AGENT: &str = concat!("netstrata/", env!("CARGO_PKG_VERSION"));

/// The most redirects [`Client::with_redirects`] allows.
pub const MAX_REDIRECTS: usize = 20;

/// The most interim (1xx) responses accepted before a final one.
const MAX_INTERIM: usize = 16;

/// How much of a redirect's body is read (and dropped) to keep its
/// connection; a longer body closes it.
const REDIRECT_DRAIN: u64 = 64 * 1024;

/// Bodies up to this size go out in the same write as the head.
const INLINE_BODY: usize = 16 * 1024;

/// Fields the client writes itself, refused from the caller.
const RESERVED_FIELDS: [&str; 3] = ["content-length", "transfer-encoding", "expect"];

/// Fields that describe a request's content, dropped with it when a
/// redirect turns the method into GET.
const CONTENT_FIELDS: [&str; 4] = [
    "content-type",
    "content-encoding",
    "content-language",
    "content-location",
];

/// Fields not carried to another host on a redirect.
const ORIGIN_FIELDS: [&str; 4] = ["authorization", "cookie", "proxy-authorization", "host"];

/// What the client was doing when something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Opening a connection.
    Connect,
    /// Writing the request.
    Send,
    /// Waiting for the response head.
    Head,
    /// Reading the response body.
    Body,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connecting",
            Phase::Send => "sending the request",
            Phase::Head => "waiting for the response",
            Phase::Body => "reading the response body",
        })
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL (or a redirect's) could not be parsed or is not supported.
    #[error("invalid URL: {0}")]
    InvalidUrl(#[from] UrlError),
    /// The method is not a token (RFC 9110 §9.1), or is CONNECT.
    #[error("invalid or unsupported method {0:?}")]
    InvalidMethod(String),
    /// A header field's name is not a token or its value holds CR, LF,
    /// NUL or another control character (RFC 9110 §5.5).
    #[error("invalid header field {0:?}")]
    InvalidHeader(String),
    /// A field the client writes itself (Content-Length,
    /// Transfer-Encoding, Expect).
    #[error("the {0} header field is set by the client, not the caller")]
    ReservedHeader(String),
    /// The host name has no addresses: NXDOMAIN, a DNS timeout, no
    /// resolver given...
    #[error("cannot resolve {host:?}: {source}")]
    Resolve {
        /// The name.
        host: String,
        /// Why.
        source: LookupError,
    },
    /// The host name exists but has no IPv4 address.
    #[error("{0:?} has no IPv4 address")]
    NoAddress(String),
    /// No connection could be opened (refused, unreachable...; the last
    /// address's error when there are several).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// Opening a connection took longer than the connect timeout.
    #[error("connecting to {0} timed out")]
    ConnectTimeout(SocketAddr),
    /// A read or write timeout, or the request's time limit, passed.
    #[error("timed out {0}")]
    Timeout(Phase),
    /// The connection failed.
    #[error("I/O error while {phase}: {source}")]
    Io {
        /// When.
        phase: Phase,
        /// Why.
        source: io::Error,
    },
    /// The server closed the connection before the response was whole.
    #[error("connection closed by the server while {0}")]
    Closed(Phase),
    /// The response is not valid HTTP/1.1 or exceeds the limits.
    #[error("malformed response: {0}")]
    MalformedResponse(#[from] HttpError),
    /// A 101 (Switching Protocols) answered a request that asked for no
    /// upgrade.
    #[error("unexpected 101 Switching Protocols")]
    UnexpectedUpgrade,
    /// More interim (1xx) responses than the client accepts.
    #[error("more than {0} interim (1xx) responses")]
    TooManyInterim(usize),
    /// More redirects than allowed.
    #[error("too many redirects (the limit is {0})")]
    TooManyRedirects(usize),
    /// A redirect's `Location` is not a URL the client can follow.
    #[error("cannot follow the redirect to {location:?}: {source}")]
    BadRedirect {
        /// The `Location` value.
        location: String,
        /// Why.
        source: UrlError,
    },
    /// The body is longer than the limit given to
    /// [`Response::read_to_vec`].
    #[error("response body larger than {0} bytes")]
    BodyTooLarge(u64),
    /// Writing the body out ([`Response::copy_to`]) failed.
    #[error("cannot write the body out: {0}")]
    Output(io::Error),
}

impl ClientError {
    /// Whether a time limit passed (connect, read, write or the whole
    /// request's).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            ClientError::Timeout(_) | ClientError::ConnectTimeout(_)
        )
    }
}

/// How a [`Client`] behaves. [`Default`] gives the values listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// How long opening one connection may take (10 s).
    pub connect_timeout: Duration,
    /// How long one read may wait (30 s; `None`: forever), and how long
    /// a response head may take from its first byte to its last.
    pub read_timeout: Option<Duration>,
    /// How long one write may wait (30 s; `None`: forever).
    pub write_timeout: Option<Duration>,
    /// How long a whole request may take, from connecting to the last
    /// byte of the body, redirects included (`None`, the default: no
    /// limit but the per-step timeouts).
    pub timeout: Option<Duration>,
    /// How many redirects to follow (0, the default: none; the 3xx is
    /// returned).
    pub max_redirects: usize,
    /// Limits on response heads, chunk lines and trailers.
    pub limits: Limits,
    /// The most idle connections kept (8; 0 disables reuse).
    pub max_idle: usize,
    /// How long an idle connection is kept (30 s).
    pub idle_timeout: Duration,
    /// Bodies of at least this many bytes are sent with `Expect:
    /// 100-continue` (1 MiB; `None`: never).
    pub expect_continue: Option<u64>,
    /// How long to wait for a 100 before sending the body anyway (1 s).
    pub expect_wait: Duration,
    /// The `User-Agent` value ([`USER_AGENT`]).
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Some(Duration::from_secs(30)),
            write_timeout: Some(Duration::from_secs(30)),
            timeout: None,
            max_redirects: 0,
            limits: Limits::default(),
            max_idle: 8,
            idle_timeout: Duration::from_secs(30),
            expect_continue: Some(1 << 20),
            expect_wait: Duration::from_secs(1),
            user_agent: USER_AGENT.to_string(),
        }
    }
}

/// A request to send with [`Client::request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, a token (`GET`, `POST`, ...; case-sensitive).
    pub method: String,
    /// Where to send it.
    pub url: Url,
    /// Fields to send besides those the client adds; a `Host`,
    /// `User-Agent` or `Accept` here replaces the client's.
    pub headers: Headers,
    /// The content (empty: none).
    pub body: Vec<u8>,
}

impl Request {
    /// A request with no extra fields and no body.
    pub fn new(method: impl Into<String>, url: Url) -> Request {
        Request {
            method: method.into(),
            url,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header field.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Request {
        self.headers.push(name, value);
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }
}

/// Something that names a URL: a [`Url`], or text to parse as one.
pub trait IntoUrl {
    /// The URL.
    fn into_url(self) -> Result<Url, UrlError>;
}

impl IntoUrl for Url {
    fn into_url(self) -> Result<Url, UrlError> {
        Ok(self)
    }
}

impl IntoUrl for &Url {
    fn into_url(self) -> Result<Url, UrlError> {
        Ok(self.clone())
    }
}

impl IntoUrl for &str {
    fn into_url(self) -> Result<Url, UrlError> {
        Url::parse(self)
    }
}

impl IntoUrl for &String {
    fn into_url(self) -> Result<Url, UrlError> {
        Url::parse(self)
    }
}

impl IntoUrl for String {
    fn into_url(self) -> Result<Url, UrlError> {
        Url::parse(&self)
    }
}

/// An HTTP/1.1 client over the network `N`, resolving names with `R`.
///
/// Requests take `&self`: one client (and its pool of idle connections)
/// can serve several threads.
pub struct Client<N: Network, R = NoResolver> {
    net: N,
    resolver: R,
    config: ClientConfig,
    pool: Arc<Pool<N::Stream>>,
}

impl<N: Network, R> fmt::Debug for Client<N, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("idle_connections", &self.pool.len())
            .finish()
    }
}

/// A failed exchange on one connection, and whether the server can have
/// seen nothing of it (so that sending it again is safe when the method
/// is idempotent).
struct Failed {
    error: ClientError,
    unanswered: bool,
}

impl Failed {
    fn unanswered(error: ClientError) -> Failed {
        Failed {
            error,
            unanswered: true,
        }
    }

    /// A failure to send: the server cannot have answered, and may have
    /// closed the connection, unless the write timed out (a server that
    /// stops reading is not one to send the request to again).
    fn sending(error: ClientError) -> Failed {
        Failed {
            unanswered: !error.is_timeout(),
            error,
        }
    }

    fn answered(error: ClientError) -> Failed {
        Failed {
            error,
            unanswered: false,
        }
    }
}

impl<N: Network> Client<N, NoResolver> {
    /// A client with the default [`ClientConfig`] and no resolver (IPv4
    /// literals only, until [`with_resolver`](Self::with_resolver)).
    pub fn new(net: N) -> Self {
        Client::with_config(net, ClientConfig::default())
    }

    /// A client with `config` and no resolver.
    pub fn with_config(net: N, config: ClientConfig) -> Self {
        let pool = Arc::new(Pool::new(config.max_idle, config.idle_timeout));
        Client {
            net,
            resolver: NoResolver,
            config,
            pool,
        }
    }
}

impl<N: Network, R: Resolve> Client<N, R> {
    /// The same client resolving host names with `resolver`.
    pub fn with_resolver<R2: Resolve>(self, resolver: R2) -> Client<N, R2> {
        Client {
            net: self.net,
            resolver,
            config: self.config,
            pool: self.pool,
        }
    }

    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Sets the read timeout (`None`: wait forever).
    pub fn with_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.read_timeout = timeout;
        self
    }

    /// Sets the write timeout (`None`: wait forever).
    pub fn with_write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// Limits the time a whole request may take (`None`: no limit).
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// Follows up to `max` redirects (at most [`MAX_REDIRECTS`]; 0 turns
    /// following off).
    pub fn with_redirects(mut self, max: usize) -> Self {
        self.config.max_redirects = max.min(MAX_REDIRECTS);
        self
    }

    /// Sets the limits on response heads.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Keeps up to `max_idle` idle connections (0: none) for up to
    /// `idle_timeout`. Drops the connections kept so far.
    pub fn with_pool(mut self, max_idle: usize, idle_timeout: Duration) -> Self {
        self.config.max_idle = max_idle;
        self.config.idle_timeout = idle_timeout;
        self.pool = Arc::new(Pool::new(max_idle, idle_timeout));
        self
    }

    /// Sends bodies of at least `threshold` bytes with `Expect:
    /// 100-continue`, waiting up to `wait` for the 100 (`None`: never).
    pub fn with_expect_continue(mut self, threshold: Option<u64>, wait: Duration) -> Self {
        self.config.expect_continue = threshold;
        self.config.expect_wait = wait;
        self
    }

    /// Sets the `User-Agent` value.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.config.user_agent = user_agent.into();
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// How many idle connections are kept now.
    pub fn idle_connections(&self) -> usize {
        self.pool.len()
    }

    /// GET `url`.
    pub fn get(&self, url: impl IntoUrl) -> Result<Response<N::Stream>, ClientError> {
        self.request(Request::new("GET", url.into_url()?))
    }

    /// HEAD `url`: the response has no body.
    pub fn head(&self, url: impl IntoUrl) -> Result<Response<N::Stream>, ClientError> {
        self.request(Request::new("HEAD", url.into_url()?))
    }

    /// POST `body` to `url`.
    pub fn post(
        &self,
        url: impl IntoUrl,
        body: impl Into<Vec<u8>>,
    ) -> Result<Response<N::Stream>, ClientError> {
        self.request(Request::new("POST", url.into_url()?).with_body(body))
    }

    /// PUT `body` at `url`.
    pub fn put(
        &self,
        url: impl IntoUrl,
        body: impl Into<Vec<u8>>,
    ) -> Result<Response<N::Stream>, ClientError> {
        self.request(Request::new("PUT", url.into_url()?).with_body(body))
    }

    /// DELETE `url`.
    pub fn delete(&self, url: impl IntoUrl) -> Result<Response<N::Stream>, ClientError> {
        self.request(Request::new("DELETE", url.into_url()?))
    }

    /// Sends `request`, following redirects if configured to, and returns
    /// the response with its body still to read.
    pub fn request(&self, request: Request) -> Result<Response<N::Stream>, ClientError> {
        self.check(&request)?;
        let deadline = self.config.timeout.map(|t| Instant::now() + t);
        let mut request = request;
        let mut followed = 0;
        loop {
            let response = self.send(&request, deadline)?;
            let Some(next) = self.redirect(&request, &response)? else {
                return Ok(response);
            };
            if followed == self.config.max_redirects {
                return Err(ClientError::TooManyRedirects(self.config.max_redirects));
            }
            followed += 1;
            log::debug!(
                "{} {}: {} to {}",
                request.method,
                request.url,
                response.status(),
                next.url
            );
            response.discard(REDIRECT_DRAIN);
            request = next;
        }
    }

    /// Refuses a method or field that would make a malformed or
    /// smuggled request.
    fn check(&self, request: &Request) -> Result<(), ClientError> {
        if !is_token(request.method.as_bytes()) || request.method == "CONNECT" {
            return Err(ClientError::InvalidMethod(request.method.clone()));
        }
        let fields = request
            .headers
            .iter()
            .chain([("User-Agent", self.config.user_agent.as_bytes())]);
        for (name, value) in fields {
            if !is_token(name.as_bytes()) || !value.iter().all(|&b| is_field_byte(b)) {
                return Err(ClientError::InvalidHeader(name.to_string()));
            }
            if RESERVED_FIELDS.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                return Err(ClientError::ReservedHeader(name.to_string()));
            }
        }
        Ok(())
    }

    /// Sends one request (no redirects), sending it again without the
    /// expectation if the server answers 417 (RFC 9110 §10.1.1).
    fn send(
        &self,
        request: &Request,
        deadline: Option<Instant>,
    ) -> Result<Response<N::Stream>, ClientError> {
        let expect = !request.body.is_empty()
            && self
                .config
                .expect_continue
                .is_some_and(|t| request.body.len() as u64 >= t);
        let response = self.send_once(request, expect, deadline)?;
        if expect && response.status() == 417 {
            log::debug!("417 to Expect: 100-continue; sending again without it");
            drop(response);
            return self.send_once(request, false, deadline);
        }
        Ok(response)
    }

    /// Sends one request on an idle connection if there is one (again on
    /// a new connection if that one turns out closed), or on a new one.
    fn send_once(
        &self,
        request: &Request,
        expect: bool,
        deadline: Option<Instant>,
    ) -> Result<Response<N::Stream>, ClientError> {
        let key: PoolKey = (request.url.host().clone(), request.url.port());
        if let Some(conn) = self.pool.take(&key, Instant::now()) {
            log::debug!("reusing a connection to {}", request.url.authority());
            match self.exchange(conn, request, key.clone(), expect, deadline) {
                Ok(response) => return Ok(response),
                Err(f) if f.unanswered && is_idempotent(&request.method) => {
                    log::debug!(
                        "reused connection failed before any response ({}); retrying",
                        f.error
                    );
                }
                Err(f) => return Err(f.error),
            }
        }
        let conn = self.connect(&request.url, deadline)?;
        self.exchange(conn, request, key, expect, deadline)
            .map_err(|f| f.error)
    }

    /// Resolves the URL's host and connects to its addresses in turn.
    fn connect(
        &self,
        url: &Url,
        deadline: Option<Instant>,
    ) -> Result<Connection<TimedStream<N::Stream>>, ClientError> {
        let addrs = match url.host() {
            Host::Ipv4(a) => vec![*a],
            Host::Name(name) => {
                self.resolver
                    .resolve_ipv4(name)
                    .map_err(|source| ClientError::Resolve {
                        host: name.clone(),
                        source,
                    })?
            }
        };
        let mut error = ClientError::NoAddress(url.host().to_string());
        for ip in addrs {
            let addr = SocketAddr::from((ip, url.port()));
            let mut timeout = self.config.connect_timeout;
            if let Some(deadline) = deadline {
                let left = deadline
                    .checked_duration_since(Instant::now())
                    .filter(|d| !d.is_zero())
                    .ok_or(ClientError::Timeout(Phase::Connect))?;
                timeout = timeout.min(left);
            }
            match self.net.connect_stream(addr, timeout) {
                Ok(stream) => {
                    log::debug!("connected to {addr}");
                    // A request goes out as whole writes; Nagle would
                    // hold the body back until the head is acknowledged.
                    if let Err(e) = stream.set_nodelay(true) {
                        log::debug!("cannot set TCP_NODELAY: {e}");
                    }
                    let stream = TimedStream::new(stream);
                    return Ok(Connection::new(stream, self.config.limits));
                }
                Err(e) if is_timeout(&e) => error = ClientError::ConnectTimeout(addr),
                Err(source) => error = ClientError::Connect { addr, source },
            }
            log::debug!("{error}");
        }
        Err(error)
    }

    /// The request head as it goes on the wire.
    fn request_head(&self, request: &Request, expect: bool) -> RequestHead {
        let given = &request.headers;
        let mut headers = Headers::new();
        match given.get("host") {
            Some(host) => headers.push("Host", host),
            None => headers.push("Host", request.url.authority()),
        }
        if !given.contains("user-agent") {
            headers.push("User-Agent", self.config.user_agent.as_str());
        }
        if !given.contains("accept") {
            headers.push("Accept", "*/*");
        }
        for (name, value) in given.iter() {
            if !name.eq_ignore_ascii_case("host") {
                headers.push(name, value);
            }
        }
        if !request.body.is_empty() || matches!(request.method.as_str(), "POST" | "PUT" | "PATCH") {
            headers.push("Content-Length", request.body.len().to_string());
        }
        if expect {
            headers.push("Expect", "100-continue");
        }
        if !self.pool.is_enabled() && !given.contains("connection") {
            headers.push("Connection", "close");
        }
        RequestHead {
            method: request.method.clone(),
            target: request.url.request_target(),
            version: Version::Http11,
            headers,
        }
    }

    /// Sends `request` on `conn` and reads the response head.
    fn exchange(
        &self,
        mut conn: Connection<TimedStream<N::Stream>>,
        request: &Request,
        key: PoolKey,
        expect: bool,
        deadline: Option<Instant>,
    ) -> Result<Response<N::Stream>, Failed> {
        let config = &self.config;
        conn.stream_mut()
            .set_limits(config.read_timeout, config.write_timeout, deadline)
            .map_err(|source| {
                Failed::unanswered(ClientError::Io {
                    phase: Phase::Send,
                    source,
                })
            })?;
        let mut out = Vec::with_capacity(512);
        self.request_head(request, expect).write_to(&mut out);
        let body = request.body.as_slice();
        let inline = !expect && body.len() <= INLINE_BODY;
        if inline {
            out.extend_from_slice(body);
        }
        send_bytes(&mut conn, &out).map_err(Failed::sending)?;
        if !expect && !inline {
            send_bytes(&mut conn, body).map_err(Failed::sending)?;
        }
        let mut body_sent = !expect;
        if expect {
            conn.stream_mut()
                .set_read_timeout(Some(config.expect_wait))
                .map_err(|source| {
                    Failed::answered(ClientError::Io {
                        phase: Phase::Head,
                        source,
                    })
                })?;
        }
        let mut interim = 0;
        conn.stream_mut().begin_head(config.read_timeout);
        let head = loop {
            match conn.read_response_head() {
                Ok(head) if head.status >= 200 => break head,
                Ok(head) if head.status == 101 => {
                    return Err(Failed::answered(ClientError::UnexpectedUpgrade));
                }
                Ok(head) => {
                    interim += 1;
                    if interim > MAX_INTERIM {
                        return Err(Failed::answered(ClientError::TooManyInterim(MAX_INTERIM)));
                    }
                    conn.stream_mut().begin_head(config.read_timeout);
                    if head.status == 100 && !body_sent {
                        send_body_after_wait(&mut conn, body, config.read_timeout)
                            .map_err(Failed::answered)?;
                        body_sent = true;
                    }
                }
                Err(e) if !body_sent && e.is_timeout() => {
                    log::debug!("no 100 (Continue) in time: sending the body");
                    send_body_after_wait(&mut conn, body, config.read_timeout)
                        .map_err(Failed::answered)?;
                    body_sent = true;
                }
                Err(e) => {
                    // Nothing came back: the server closed or reset the
                    // connection without answering (an idle connection it
                    // had given up on).
                    let unanswered = interim == 0
                        && !conn.has_buffered()
                        && match &e {
                            ReadError::UnexpectedEof => true,
                            ReadError::Io(io) => !is_timeout(io),
                            ReadError::Http(_) => false,
                        };
                    return Err(Failed {
                        error: head_error(e),
                        unanswered,
                    });
                }
            }
        };
        conn.stream_mut().end_head().map_err(|source| {
            Failed::answered(ClientError::Io {
                phase: Phase::Head,
                source,
            })
        })?;
        self.response(conn, request, key, head, body_sent)
            .map_err(Failed::answered)
    }

    /// The response to `request`, whose head has been read from `conn`.
    fn response(
        &self,
        conn: Connection<TimedStream<N::Stream>>,
        request: &Request,
        key: PoolKey,
        head: ResponseHead,
        body_sent: bool,
    ) -> Result<Response<N::Stream>, ClientError> {
        let kind = response_body_kind(&head, &request.method)?;
        // RFC 9112 §9.3, §9.6: persistent unless either side says close,
        // and HTTP/1.0 only with keep-alive. A request whose body was not
        // sent leaves the server waiting for it: close.
        let persistent = match head.version {
            Version::Http11 => !has_token(&head.headers, "connection", "close"),
            Version::Http10 => {
                has_token(&head.headers, "connection", "keep-alive")
                    && !has_token(&head.headers, "connection", "close")
            }
        };
        let keep = persistent
            && body_sent
            && kind != BodyKind::CloseDelimited
            && self.pool.is_enabled()
            && !has_token(&request.headers, "connection", "close");
        let keep = keep.then(|| (self.pool.clone(), key));
        let body = Body::new(conn, kind, keep);
        Ok(Response::new(head, request.url.clone(), kind, body))
    }

    /// The request a redirect asks for, if it is to be followed.
    fn redirect(
        &self,
        request: &Request,
        response: &Response<N::Stream>,
    ) -> Result<Option<Request>, ClientError> {
        let status = response.status();
        if self.config.max_redirects == 0 || !matches!(status, 301 | 302 | 303 | 307 | 308) {
            return Ok(None);
        }
        let Some(location) = response.headers().get("location") else {
            return Ok(None);
        };
        let location = percent_encode_non_ascii(location);
        let url = request
            .url
            .join(&location)
            .map_err(|source| ClientError::BadRedirect { location, source })?;
        let to_get = (status == 303 && request.method != "HEAD")
            || (matches!(status, 301 | 302) && request.method == "POST");
        let same_origin = url.same_origin(&request.url);
        let mut headers = Headers::new();
        for (name, value) in request.headers.iter() {
            let is = |fields: &[&str]| fields.iter().any(|f| f.eq_ignore_ascii_case(name));
            let dropped = (to_get && is(&CONTENT_FIELDS)) || (!same_origin && is(&ORIGIN_FIELDS));
            if !dropped {
                headers.push(name, value);
            }
        }
        Ok(Some(Request {
            method: if to_get {
                "GET".to_string()
            } else {
                request.method.clone()
            },
            url,
            headers,
            body: if to_get {
                Vec::new()
            } else {
                request.body.clone()
            },
        }))
    }
}

/// Idempotent methods (RFC 9110 §9.2.2): safe to send again.
fn is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
    )
}

/// Whether a comma-separated field lists `token` (case-insensitively).
fn has_token(headers: &Headers, field: &str, token: &str) -> bool {
    headers.get_all(field).any(|value| {
        value
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// A `Location` value as text, any octet above 0x7F percent-encoded
/// (servers sometimes send raw UTF-8 or Latin-1).
fn percent_encode_non_ascii(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value {
        if b.is_ascii() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a failed head read means.
fn head_error(e: ReadError) -> ClientError {
    match e {
        ReadError::Io(e) if is_timeout(&e) => ClientError::Timeout(Phase::Head),
        ReadError::Io(source) => ClientError::Io {
            phase: Phase::Head,
            source,
        },
        ReadError::Http(e) => ClientError::MalformedResponse(e),
        ReadError::UnexpectedEof => ClientError::Closed(Phase::Head),
    }
}

/// Writes `bytes` (the timeouts and the deadline are the stream's).
fn send_bytes<S: ByteStream>(
    conn: &mut Connection<TimedStream<S>>,
    bytes: &[u8],
) -> Result<(), ClientError> {
    let stream = conn.stream_mut();
    stream
        .write_all(bytes)
        .and_then(|()| stream.flush())
        .map_err(|e| {
            if is_timeout(&e) {
                ClientError::Timeout(Phase::Send)
            } else {
                ClientError::Io {
                    phase: Phase::Send,
                    source: e,
                }
            }
        })
}

/// Sends a body held back for a 100 (Continue), and goes back to the
/// normal read timeout.
fn send_body_after_wait<S: ByteStream>(
    conn: &mut Connection<TimedStream<S>>,
    body: &[u8],
    read_timeout: Option<Duration>,
) -> Result<(), ClientError> {
    send_bytes(conn, body)?;
    conn.stream_mut()
        .set_read_timeout(read_timeout)
        .map_err(|source| ClientError::Io {
            phase: Phase::Head,
            source,
        })
}

#[cfg(test)]
mod tests;
