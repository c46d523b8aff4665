//! `std::net`-like TCP sockets on a [`Runtime`].

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::blocking::{Runtime, Shared, Stack, Timeouts, deadline, first_v4};
use crate::transport::tcp::{ListenerHandle, State, TcpError, TcpHandle, TcpInfo};

/// Backlog of a listener made by [`TcpListener::bind`] (std's is 128).
const DEFAULT_BACKLOG: usize = 128;

/// The `std::io` error for a TCP error.
pub(crate) fn tcp_error(e: TcpError) -> io::Error {
    let kind = match e {
        TcpError::InvalidHandle | TcpError::NotConnected(_) => ErrorKind::NotConnected,
        TcpError::WouldBlock => ErrorKind::WouldBlock,
        TcpError::WriteShutdown => ErrorKind::BrokenPipe,
        TcpError::ConnectionRefused => ErrorKind::ConnectionRefused,
        TcpError::ConnectionReset => ErrorKind::ConnectionReset,
        TcpError::TimedOut => ErrorKind::TimedOut,
        TcpError::ConnectionAborted => ErrorKind::ConnectionAborted,
        TcpError::AddrInUse(_) | TcpError::ConnectionExists(..) => ErrorKind::AddrInUse,
        TcpError::AddrNotAvailable(_) | TcpError::NoEphemeralPort => ErrorKind::AddrNotAvailable,
        TcpError::Unaddressable(_) => ErrorKind::InvalidInput,
    };
    io::Error::new(kind, e)
}

/// A TCP socket listening for connections, like [`std::net::TcpListener`].
#[derive(Debug)]
pub struct TcpListener {
    shared: Arc<Shared>,
    handle: ListenerHandle,
    /// Set (under the stack lock) once the listener is closed; the
    /// stack may then reuse `handle` for another listener.
    closed: AtomicBool,
    nonblocking: AtomicBool,
}

impl TcpListener {
    /// Listens on `addr` (port 0 picks a free port; address 0.0.0.0 or the
    /// interface's).
    pub fn bind(rt: &Runtime, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        TcpListener::bind_with_backlog(rt, addr, DEFAULT_BACKLOG)
    }

    /// As [`TcpListener::bind`], with a backlog of `backlog` half-open and
    /// as many unaccepted connections.
    pub fn bind_with_backlog(
        rt: &Runtime,
        addr: impl ToSocketAddrs,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        let addr = first_v4(addr)?;
        let shared = rt.shared().clone();
        let handle = shared
            .lock()
            .iface
            .tcp()
            .listen(addr, backlog)
            .map_err(tcp_error)?;
        Ok(TcpListener {
            shared,
            handle,
            closed: AtomicBool::new(false),
            nonblocking: AtomicBool::new(false),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let mut g = self.shared.lock();
        g.iface
            .tcp()
            .listener_addr(self.handle)
            .map(SocketAddr::V4)
            .map_err(tcp_error)
    }

    /// Waits for a connection (or, in non-blocking mode, fails with
    /// `WouldBlock` if none is waiting). Fails with `NotConnected` once
    /// the listener is [closed](TcpListener::close).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let h = self.shared.wait_for(None, |s| {
            if self.closed.load(Ordering::Acquire) {
                return Some(Err(io::Error::new(
                    ErrorKind::NotConnected,
                    "listener closed",
                )));
            }
            match s.iface.tcp().accept(self.handle) {
                Ok(h) => Some(Ok(h)),
                Err(TcpError::WouldBlock) if self.nonblocking.load(Ordering::Relaxed) => Some(Err(
                    io::Error::new(ErrorKind::WouldBlock, "no connection waiting"),
                )),
                Err(TcpError::WouldBlock) => None,
                Err(e) => Some(Err(io::Error::new(ErrorKind::NotConnected, e.to_string()))),
            }
        })?;
        let stream = TcpStream::from_handle(self.shared.clone(), h);
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
    }

    /// Moves the listener into or out of non-blocking mode, like
    /// [`std::net::TcpListener::set_nonblocking`].
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }

    /// The runtime and the handle, for a [`Poller`](super::Poller).
    pub(crate) fn parts(&self) -> (&Arc<Shared>, ListenerHandle) {
        (&self.shared, self.handle)
    }

    /// Whether [`TcpListener::close`] was called (read under the stack's
    /// lock, it is stable until the lock is released).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Stops listening, from any thread: connections not yet accepted are
    /// reset, new SYNs are refused, and `accept` calls blocked on other
    /// threads return `NotConnected`. This is how a server shuts down
    /// gracefully while its accept loop is blocked (`std::net` has no
    /// equivalent). Closing twice, or dropping after closing, is harmless.
    pub fn close(&self) {
        let mut g = self.shared.lock();
        if !self.closed.swap(true, Ordering::AcqRel) {
            // The handle is ours and closed only here: it is live.
            let _ = g.iface.tcp().close_listener(self.handle);
            g.registry.forget_listener(self.handle);
        }
        drop(g);
        self.shared.kick();
    }

    /// An endless iterator over accepted connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        self.close();
    }
}

/// Iterator of [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A TCP connection, like [`std::net::TcpStream`]. Reads and writes block
/// (up to the timeouts set); dropping it, and every clone of it
/// ([`TcpStream::try_clone`]), closes the connection gracefully.
#[derive(Debug)]
pub struct TcpStream {
    inner: Arc<Stream>,
}

/// What the clones of a stream share, as duplicated file descriptors share
/// one socket: the connection, its timeouts and its read shutdown.
#[derive(Debug)]
struct Stream {
    shared: Arc<Shared>,
    handle: TcpHandle,
    timeouts: Timeouts,
    /// Set by `shutdown(Shutdown::Read)`: reads return 0.
    read_shut: AtomicBool,
    /// Reads and writes fail with `WouldBlock` rather than wait.
    nonblocking: AtomicBool,
}

impl TcpStream {
    fn from_handle(shared: Arc<Shared>, handle: TcpHandle) -> TcpStream {
        TcpStream {
            inner: Arc::new(Stream {
                shared,
                handle,
                timeouts: Timeouts::default(),
                read_shut: AtomicBool::new(false),
                nonblocking: AtomicBool::new(false),
            }),
        }
    }

    /// Another handle to the same connection, as
    /// [`std::net::TcpStream::try_clone`]: one thread may read while
    /// another writes. The clones share the timeouts and the read
    /// shutdown, as duplicated descriptors share a socket's options; the
    /// connection closes when the last of them is dropped. Never fails
    /// here (the `Result` is std's signature).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: Arc::clone(&self.inner),
        })
    }

    /// Connects to `addr`, waiting as long as the SYN retries allow
    /// (about two minutes by default).
    pub fn connect(rt: &Runtime, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        TcpStream::connect_inner(rt, addr, None)
    }

    /// Connects to `addr`, giving up with `TimedOut` after `timeout`.
    pub fn connect_timeout(
        rt: &Runtime,
        addr: &SocketAddr,
        timeout: std::time::Duration,
    ) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "cannot connect with a zero timeout",
            ));
        }
        TcpStream::connect_inner(rt, addr, Some(timeout))
    }

    fn connect_inner(
        rt: &Runtime,
        addr: impl ToSocketAddrs,
        timeout: Option<std::time::Duration>,
    ) -> io::Result<TcpStream> {
        let addr = first_v4(addr)?;
        let shared = rt.shared().clone();
        let handle = {
            let mut g = shared.lock();
            if let Err(e) = g.iface.ipv4().routes().lookup(*addr.ip()) {
                return Err(io::Error::new(ErrorKind::HostUnreachable, e.to_string()));
            }
            g.iface.tcp().connect(addr).map_err(tcp_error)?
        };
        shared.kick();
        let stream = TcpStream::from_handle(shared, handle);
        let r = stream.inner.shared.wait_for(deadline(timeout), |s| {
            let tcp = s.iface.tcp();
            match tcp.state(handle) {
                Ok(State::SynSent | State::SynReceived) => None,
                Ok(State::Closed) => Some(Err(match tcp.error(handle) {
                    Ok(Some(e)) => tcp_error(e),
                    _ => io::Error::new(ErrorKind::ConnectionAborted, "connection closed"),
                })),
                Ok(_) => Some(Ok(())),
                Err(e) => Some(Err(tcp_error(e))),
            }
        });
        match r {
            Ok(()) => Ok(stream),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                // The connect timeout: abort the attempt quietly.
                let mut g = stream.inner.shared.lock();
                let _ = g.iface.tcp().abort(handle);
                drop(g);
                // Dropping `stream` now finds the handle released.
                Err(io::Error::new(ErrorKind::TimedOut, "connection timed out"))
            }
            Err(e) => Err(e),
        }
    }

    /// The runtime and the handle, for a [`Poller`](super::Poller).
    pub(crate) fn parts(&self) -> (&Arc<Shared>, TcpHandle) {
        (&self.inner.shared, self.inner.handle)
    }

    /// Moves the stream into or out of non-blocking mode, like
    /// [`std::net::TcpStream::set_nonblocking`]: reads and writes that
    /// would wait fail with `WouldBlock` instead. The mode is shared by
    /// the stream's clones, as a descriptor's flag is.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }

    /// The error a call that would wait returns in non-blocking mode, or
    /// `None` (wait).
    fn would_block(&self) -> Option<io::Result<usize>> {
        self.inner
            .nonblocking
            .load(Ordering::Relaxed)
            .then(|| Err(io::Error::new(ErrorKind::WouldBlock, "would block")))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Stack, TcpHandle) -> T) -> T {
        let mut g = self.inner.shared.lock();
        f(&mut g, self.inner.handle)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.with(|s, h| {
            s.iface
                .tcp()
                .peer_addr(h)
                .map(SocketAddr::V4)
                .map_err(tcp_error)
        })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.with(|s, h| {
            s.iface
                .tcp()
                .local_addr(h)
                .map(SocketAddr::V4)
                .map_err(tcp_error)
        })
    }

    /// Shuts down reading, writing or both. Shutting down reading marks
    /// the stream so reads, including one blocked on another thread,
    /// return 0, as on Linux; TCP cannot tell the peer, and what it sends
    /// is still acknowledged.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.inner.read_shut.store(true, Ordering::Release);
            self.inner.shared.kick();
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.with(|s, h| s.iface.tcp().shutdown(h).map_err(tcp_error))?;
            self.inner.shared.kick();
        }
        Ok(())
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.with(|s, h| s.iface.tcp().set_nodelay(h, nodelay).map_err(tcp_error))
    }

    /// Whether Nagle's algorithm is off.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.with(|s, h| {
            s.iface
                .tcp()
                .connection(h)
                .map(|c| c.config().nodelay)
                .map_err(tcp_error)
        })
    }

    /// Sets the read timeout (`None`: block forever). A zero duration is
    /// an error, as in std.
    pub fn set_read_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        self.inner.timeouts.set_read(t)
    }

    /// Sets the write timeout.
    pub fn set_write_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        self.inner.timeouts.set_write(t)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<std::time::Duration>> {
        Ok(self.inner.timeouts.read())
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<std::time::Duration>> {
        Ok(self.inner.timeouts.write())
    }

    /// Statistics and estimates of the connection (state, RTT, cwnd,
    /// retransmissions...).
    pub fn info(&self) -> io::Result<TcpInfo> {
        self.with(|s, h| s.iface.tcp().info(h).map_err(tcp_error))
    }

    /// How many received bytes wait to be read, without blocking (what
    /// Linux's `FIONREAD` answers).
    pub fn bytes_available(&self) -> io::Result<usize> {
        self.with(|s, h| {
            let tcp = s.iface.tcp();
            tcp.state(h).map_err(tcp_error)?;
            Ok(tcp.recv_queue(h))
        })
    }

    /// Waits until everything written has been acknowledged by the peer
    /// (or `timeout` passes).
    pub fn wait_acked(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        let h = self.inner.handle;
        self.inner.shared.wait_for(deadline(timeout), |s| {
            let tcp = s.iface.tcp();
            if let Ok(Some(e)) = tcp.error(h) {
                return Some(Err(tcp_error(e)));
            }
            match tcp.state(h) {
                Err(e) => Some(Err(tcp_error(e))),
                Ok(_) if tcp.send_queue(h) == 0 => Some(Ok(())),
                Ok(_) => None,
            }
        })
    }

    fn read_inner(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let timeout = self.inner.timeouts.read();
        let h = self.inner.handle;
        self.inner.shared.wait_for(deadline(timeout), |s| {
            if self.inner.read_shut.load(Ordering::Acquire) {
                return Some(Ok(0));
            }
            let tcp = s.iface.tcp();
            match tcp.recv(h, buf) {
                Ok(n) => Some(Ok(n)),
                Err(TcpError::WouldBlock) => self.would_block(),
                Err(e) => Some(Err(tcp_error(e))),
            }
        })
    }

    fn write_inner(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let timeout = self.inner.timeouts.write();
        let h = self.inner.handle;
        self.inner
            .shared
            .wait_for(deadline(timeout), |s| match s.iface.tcp().send(h, buf) {
                Err(TcpError::WouldBlock) => self.would_block(),
                Ok(n) => Some(Ok(n)),
                Err(e) => Some(Err(tcp_error(e))),
            })
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let mut g = self.shared.lock();
        let _ = g.iface.tcp().close(self.handle);
        g.registry.forget(self.handle);
        drop(g);
        self.shared.kick();
    }
}
