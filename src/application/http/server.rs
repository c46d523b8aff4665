//! An HTTP/1.1 server (RFC 9110, RFC 9112) on the socket API: blocking
//! I/O, one thread per connection.
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
//! - [`Server`] accepts on a netstrata [`TcpListener`], runs
//!   [`serve_connection`] on a thread per connection up to
//!   [`ServerConfig::max_connections`], counts what happens
//!   ([`ServerStats`]), and shuts down gracefully.
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
//! request. With blocking threads, idle keep-alive connections look
//! at the shutdown flag every 100 ms rather than being woken.
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
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::blocking::TcpListener;
use connection::Context;

/// Answers requests: request in, response out.
///
/// Called on the connection's thread, so it may block (reading the
/// body, doing I/O of its own); many connections call it at once. A
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

/// Live counters, shared by the connection threads.
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
    /// Connections being served now.
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
    /// Connections still open when the grace period ran out; their
    /// threads end on their own within the configured timeouts.
    pub unfinished: u64,
    /// How long the shutdown took.
    pub elapsed: Duration,
}

/// What the accept thread, the connection threads and the [`Server`]
/// handle share.
struct Shared {
    listener: TcpListener,
    handler: Box<dyn Handler>,
    config: ServerConfig,
    shutdown: AtomicBool,
    counters: Counters,
    /// Connections being served.
    active: Mutex<u64>,
    /// Signalled when a connection ends, and on shutdown.
    changed: Condvar,
}

impl Shared {
    fn active(&self) -> MutexGuard<'_, u64> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        // Under the lock, so that the accept thread cannot miss it between
        // looking at the flag and waiting.
        drop(self.active());
        self.changed.notify_all();
        self.listener.close();
    }

    fn stats(&self) -> ServerStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ServerStats {
            connections_accepted: get(&c.accepted),
            connections_active: *self.active(),
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

/// Releases a connection's place when its thread ends, however it ends.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.active() -= 1;
        self.0.changed.notify_all();
    }
}

/// An HTTP server running on its own threads: one accepting, one per
/// connection.
///
/// At [`ServerConfig::max_connections`] it stops accepting until a
/// connection ends: new connections wait in the listener's backlog
/// (and beyond it are refused by the stack) rather than being answered
/// 503, which would cost a thread or a reset each.
///
/// Dropping the server stops it without waiting, as
/// [`shutdown`](Server::shutdown) with no grace.
pub struct Server {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
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
    /// [`ConfigError`]) or no thread can be started.
    pub fn spawn<H: Handler + 'static>(
        listener: TcpListener,
        handler: H,
        config: ServerConfig,
    ) -> io::Result<Server> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let local_addr = listener.local_addr()?;
        listener.set_nonblocking(false)?;
        let shared = Arc::new(Shared {
            listener,
            handler: Box::new(handler),
            config,
            shutdown: AtomicBool::new(false),
            counters: Counters::default(),
            active: Mutex::new(0),
            changed: Condvar::new(),
        });
        let accepting = shared.clone();
        let accept_thread = thread::Builder::new()
            .name("http-accept".into())
            .spawn(move || accept_loop(&accepting))?;
        log::info!("HTTP server listening on {local_addr}");
        Ok(Server {
            local_addr,
            shared,
            accept_thread: Some(accept_thread),
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

    /// Shuts down gracefully: stops accepting (the listener closes, so
    /// new connections are refused), lets requests in progress finish
    /// (their responses say `Connection: close`), closes idle
    /// keep-alive connections within 100 ms, and waits up to `grace`
    /// for every connection to end.
    pub fn shutdown(mut self, grace: Duration) -> ShutdownStats {
        let start = Instant::now();
        self.shared.begin_shutdown();
        if let Some(t) = self.accept_thread.take() {
            if t.join().is_err() {
                log::error!("HTTP accept thread panicked");
            }
        }
        let deadline = start + grace;
        let mut active = self.shared.active();
        while *active > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            active = match self.shared.changed.wait_timeout(active, left) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
        let unfinished = *active;
        drop(active);
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
        self.shared.begin_shutdown();
    }
}

fn accept_loop(shared: &Arc<Shared>) {
    loop {
        // At the limit, stop accepting: connections wait in the backlog.
        // Only this thread adds connections, so the count cannot pass the
        // limit between this wait and the accept.
        {
            let mut active = shared.active();
            while *active >= shared.config.max_connections as u64
                && !shared.shutdown.load(Ordering::Acquire)
            {
                active = shared
                    .changed
                    .wait(active)
                    .unwrap_or_else(|p| p.into_inner());
            }
        }
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        match shared.listener.accept() {
            Ok((stream, peer)) => {
                *shared.active() += 1;
                let slot = Slot(shared.clone());
                shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
                log::debug!("HTTP connection from {peer}");
                let spawned = thread::Builder::new()
                    .name("http-conn".into())
                    .spawn(move || run_connection(slot, stream, peer));
                if let Err(e) = spawned {
                    // The closure, stream and slot with it, is dropped.
                    log::warn!("cannot start a thread for {peer}: {e}");
                }
            }
            Err(_) if shared.shutdown.load(Ordering::Acquire) => return,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                log::warn!("HTTP listener closed: {e}");
                return;
            }
            Err(e) => {
                log::warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn run_connection(slot: Slot, stream: crate::blocking::TcpStream, peer: SocketAddr) {
    let shared = &*slot.0;
    let ctx = Context {
        config: &shared.config,
        shutdown: &shared.shutdown,
        counters: Some(&shared.counters),
    };
    let counters = &shared.counters;
    let served = panic::catch_unwind(AssertUnwindSafe(|| {
        connection::serve(stream, peer, &*shared.handler, &ctx)
    }));
    match served {
        Ok(Ok(stats)) => counters.count_end(stats.end),
        Ok(Err(e)) => {
            log::debug!("{peer}: connection failed: {e}");
            counters.io_errors.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {
            log::error!("{peer}: connection thread panicked");
            counters.handler_panics.fetch_add(1, Ordering::Relaxed);
        }
    }
}
