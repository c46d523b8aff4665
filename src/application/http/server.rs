//! An HTTP/1.1 server (RFC 9110, RFC 9112) on the socket API:
//! event-driven between requests, blocking I/O within one.
//!
//! - [`Handler`] turns a [`Request`] into a [`Response`]; closures
//!   `Fn(&mut Request) -> Response` are handlers. Bodies stream both
//!   ways: the request body is a reader over the connection, a response
//!   body may be a reader of known or unknown length.
//! - [`serve_connection`] serves one connection over any
//!   [`ByteStream`](crate::application::net::ByteStream) (netstrata's or
//!   std's TCP streams): persistent connections and pipelining, HEAD,
//!   `Expect: 100-continue`, chunked responses, the `Date` and `Server`
//!   fields, bounded draining of unread bodies, lingering close, and the
//!   error statuses of malformed or refused requests. Its documentation
//!   lists the rules.
//! - [`Server`] accepts on a netstrata [`TcpListener`] and holds every
//!   connection that waits for a request (idle, or with a head begun) in
//!   one event loop on a [`crate::blocking::Poller`], with no
//!   thread of its own; a pool of [`ServerConfig::workers`] threads
//!   (growing to [`ServerConfig::max_workers`] while all are busy) serves
//!   each request once its head has arrived, as [`serve_connection`]
//!   does. It holds tens of thousands of connections on a few threads
//!   (`tests/http_scale.rs`: 10,000 slow clients, a few hundred bytes of
//!   heap each beyond TCP), counts what happens ([`ServerStats`]), and
//!   shuts down gracefully.
//! - [`ServerConfig`] bounds what a client can hold: the keep-alive
//!   timeout, a deadline for a whole head (a slowloris trickling bytes
//!   within the read timeout is still cut off), read and write timeouts,
//!   a minimum rate for bodies and responses (slow POST, slow read),
//!   requests per connection, body size, the header [`Limits`], and
//!   concurrent connections.
//! - [`StaticFiles`](super::StaticFiles) is a handler serving a
//!   directory.
//!
//! Not implemented: HTTP/2 and upgrades (101), CONNECT (answered 501),
//! TLS, content codings, ranges, conditional requests, and handing the
//! trailer fields of a chunked request body to the handler (they are
//! read and dropped); a client that keeps up with the minimum rate may
//! take as long as that rate allows over a body or a response (there is
//! no overall deadline), and a response body cannot borrow from the
//! request.
//!
//! A handler is usually a closure (annotate its argument so that it takes
//! a request of any lifetime). Here one connection is served over std's
//! loopback:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use netstrata::application::http::server::{serve_connection, Request, Response, ServerConfig};
//!
//! let hello = |req: &mut Request<'_>| Response::text(200, format!("hello {}\n", req.path()));
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let server = std::thread::spawn(move || {
//!     let (stream, peer) = listener.accept()?;
//!     serve_connection(stream, peer, &hello, &ServerConfig::default())
//! });
//! let mut client = TcpStream::connect(addr)?;
//! client.write_all(b"GET /you HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
//! let mut reply = String::new();
//! client.read_to_string(&mut reply)?;
//! assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(reply.ends_with("\r\n\r\nhello /you\n"));
//! drop(client); // the server waits for the client's close (lingering close)
//! assert_eq!(server.join().unwrap()?.requests, 1);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [`Limits`]: super::Limits

mod config;
mod connection;
mod date;
mod event_loop;
mod message;
#[cfg(test)]
mod test_stream;
mod wire;

pub use config::{ConfigError, ServerConfig};
pub use connection::{ConnectionEnd, ConnectionStats, serve_connection};
pub use date::format_http_date;
pub use message::{Body, Request, RequestBody, Response, reason_phrase};

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::blocking::{PollWaker, Poller, TcpListener};
use connection::Context;
use event_loop::{EventLoop, Pool};

/// Answers requests: request in, response out.
///
/// Called on a worker thread of the [`Server`] (or the thread that runs
/// [`serve_connection`]), so it may block (reading the body, doing I/O of
/// its own); many connections call it at once. A
/// panic is caught and answered 500. Closures
/// `Fn(&mut Request<'_>) -> Response` are handlers, and so is `Arc<H>`
/// for a handler `H` (`Arc<dyn Handler>` included).
pub trait Handler: Send + Sync {
    /// The response to `req`. The body need not be read: the server
    /// discards what is left (within bounds) or closes the connection.
    fn handle(&self, req: &mut Request<'_>) -> Response;
}

impl<F> Handler for F
where
    F: Fn(&mut Request<'_>) -> Response + Send + Sync,
{
    fn handle(&self, req: &mut Request<'_>) -> Response {
        self(req)
    }
}

impl<H: Handler + ?Sized> Handler for Arc<H> {
    fn handle(&self, req: &mut Request<'_>) -> Response {
        (**self).handle(req)
    }
}

/// Live counters, shared by the event loop and the workers.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    requests: AtomicU64,
    malformed: AtomicU64,
    too_large: AtomicU64,
    timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    unread_bodies: AtomicU64,
    handler_panics: AtomicU64,
    io_errors: AtomicU64,
}

impl Counters {
    fn count_end(&self, end: ConnectionEnd) {
        let counter = match end {
            ConnectionEnd::Rejected(408) => &self.timeouts,
            ConnectionEnd::Rejected(413) => &self.too_large,
            ConnectionEnd::Rejected(_) => &self.malformed,
            ConnectionEnd::IdleTimeout => &self.idle_timeouts,
            ConnectionEnd::UnreadBody => &self.unread_bodies,
            ConnectionEnd::HandlerPanic => &self.handler_panics,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a [`Server`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted.
    pub connections_accepted: u64,
    /// Connections open now: waiting for a request, receiving a head,
    /// being served or closing.
    pub connections_active: u64,
    /// Responses written.
    pub requests: u64,
    /// Connections closed after a malformed or refused request (400, 414,
    /// 417, 431, 501, 505).
    pub malformed: u64,
    /// Connections closed after a body over the size limit (413).
    pub too_large: u64,
    /// Connections closed because a head or a body read took too long
    /// (408).
    pub timeouts: u64,
    /// Connections closed by the keep-alive timeout (not an error).
    pub idle_timeouts: u64,
    /// Connections closed because a handler left a body unread.
    pub unread_bodies: u64,
    /// Handler panics (each answered 500).
    pub handler_panics: u64,
    /// Connections that failed with an I/O error (reset, write timeout).
    pub io_errors: u64,
}

/// What [`Server::shutdown`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownStats {
    /// The counters at the end.
    pub stats: ServerStats,
    /// Connections still open when the grace period ran out; the event
    /// loop and the workers go on until they end, within the configured
    /// timeouts.
    pub unfinished: u64,
    /// How long the shutdown took.
    pub elapsed: Duration,
}

/// What the event loop, the workers and the [`Server`] handle share.
struct Shared {
    handler: Box<dyn Handler>,
    config: ServerConfig,
    shutdown: AtomicBool,
    counters: Counters,
    /// What the event loop last published.
    published: Mutex<Published>,
    /// Signalled when it publishes a change.
    changed: Condvar,
}

/// The event loop's state, for the stats and a shutdown.
#[derive(Debug, Default)]
struct Published {
    /// Connections open.
    open: u64,
    /// The event loop has ended (every connection is closed).
    ended: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn published(&self) -> MutexGuard<'_, Published> {
        lock(&self.published)
    }

    fn stats(&self) -> ServerStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ServerStats {
            connections_accepted: get(&c.accepted),
            connections_active: self.published().open,
            requests: get(&c.requests),
            malformed: get(&c.malformed),
            too_large: get(&c.too_large),
            timeouts: get(&c.timeouts),
            idle_timeouts: get(&c.idle_timeouts),
            unread_bodies: get(&c.unread_bodies),
            handler_panics: get(&c.handler_panics),
            io_errors: get(&c.io_errors),
        }
    }
}

/// An event-driven HTTP server on threads of its own: one event loop
/// that holds every connection while it waits for a request, and
/// [`ServerConfig::workers`] threads that serve the requests whose heads
/// have arrived (see [`serve_connection`] for what serving means), more
/// while they are all busy, up to [`ServerConfig::max_workers`].
///
/// An idle keep-alive connection, or one whose client trickles its head,
/// costs memory but no thread, so the server holds tens of thousands of
/// them (up to [`ServerConfig::max_connections`]) and still answers a
/// new client at once. A worker is busy from a request's last head byte
/// to its response's last byte: a handler that blocks, a slow request
/// body or a slow reader of the response occupies it (bounded by the
/// timeouts and [`ServerConfig::min_rate`]); while every worker is busy
/// another starts, and at [`ServerConfig::max_workers`] complete requests
/// wait in a queue. Heads being received share
/// [`ServerConfig::head_memory`].
///
/// At [`ServerConfig::max_connections`] it stops accepting until a
/// connection ends: new connections wait in the listener's backlog (and
/// beyond it are refused by the stack) rather than being answered 503.
///
/// Dropping the server stops it without waiting, as
/// [`shutdown`](Server::shutdown) with no grace.
pub struct Server {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    waker: PollWaker,
    event_loop: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Serves `handler` on `listener` until shut down. Fails if the
    /// configuration is invalid (`InvalidInput`, wrapping a
    /// [`ConfigError`]) or the threads cannot be started.
    pub fn spawn<H: Handler + 'static>(
        listener: TcpListener,
        handler: H,
        config: ServerConfig,
    ) -> io::Result<Server> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            config,
            shutdown: AtomicBool::new(false),
            counters: Counters::default(),
            published: Mutex::new(Published::default()),
            changed: Condvar::new(),
        });
        let poller = Poller::for_listener(&listener);
        let waker = poller.waker();
        let pool = Arc::new(Pool::default());
        // On a failure below, dropping the event loop closes the pool,
        // which ends the workers started.
        let event_loop = EventLoop::new(shared.clone(), pool.clone(), poller, listener)?;
        event_loop::start_workers(&shared, &pool, &waker)?;
        let event_loop = thread::Builder::new()
            .name("http-events".into())
            .spawn(move || event_loop.run())?;
        log::info!(
            "HTTP server listening on {local_addr} ({} workers)",
            config.workers
        );
        Ok(Server {
            local_addr,
            shared,
            waker,
            event_loop: Some(event_loop),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The counters so far.
    pub fn stats(&self) -> ServerStats {
        self.shared.stats()
    }

    fn begin_shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Shuts down gracefully: stops accepting (the listener closes, so
    /// new connections are refused), closes the connections waiting for
    /// a request at once, lets requests in progress (and heads begun)
    /// finish, their responses saying `Connection: close`, and waits up
    /// to `grace` for every connection to end.
    pub fn shutdown(mut self, grace: Duration) -> ShutdownStats {
        let start = Instant::now();
        self.begin_shutdown();
        // The event loop ends once it has seen the flag and every
        // connection has closed.
        let deadline = start + grace;
        let mut published = self.shared.published();
        while !published.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            published = match self.shared.changed.wait_timeout(published, left) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
        let (ended, unfinished) = (published.ended, published.open);
        drop(published);
        if ended {
            if let Some(t) = self.event_loop.take() {
                if t.join().is_err() {
                    log::error!("HTTP event loop panicked");
                }
            }
        }
        let stats = self.shared.stats();
        log::info!(
            "HTTP server on {} shut down: {} connections, {} requests, {} unfinished",
            self.local_addr,
            stats.connections_accepted,
            stats.requests,
            unfinished
        );
        ShutdownStats {
            stats,
            unfinished,
            elapsed: start.elapsed(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}
