//! TCP sockets whose calls are futures: [`TcpListener`] and [`TcpStream`].

use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Shared, Stack, add_waker};
use crate::blocking::tcp_error;
use crate::transport::tcp::{ListenerHandle, State, TcpError, TcpHandle};

/// Backlog of a listener made by [`TcpListener::bind`] (tokio's own is
/// 1024).
const DEFAULT_BACKLOG: usize = 1024;

/// A listening socket, like [`tokio::net::TcpListener`](::tokio::net::TcpListener).
/// Dropping it stops listening.
#[derive(Debug)]
pub struct TcpListener {
    shared: Arc<Shared>,
    handle: ListenerHandle,
}

impl TcpListener {
    /// Listens on `addr` (address 0.0.0.0 or the interface's; port 0 for
    /// an ephemeral one) with a backlog of 1024.
    pub fn bind(stack: &Stack, addr: SocketAddrV4) -> io::Result<TcpListener> {
        TcpListener::listen(stack, addr, DEFAULT_BACKLOG)
    }

    /// Listens on `addr` with `backlog` half-open and as many unaccepted
    /// connections.
    pub fn listen(stack: &Stack, addr: SocketAddrV4, backlog: usize) -> io::Result<TcpListener> {
        let shared = stack.shared.clone();
        let handle = shared
            .lock()
            .iface
            .tcp()
            .listen(addr, backlog)
            .map_err(tcp_error)?;
        Ok(TcpListener { shared, handle })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let mut state = self.shared.lock();
        let addr = state.iface.tcp().listener_addr(self.handle);
        addr.map(SocketAddr::V4).map_err(tcp_error)
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Takes the next connection, or registers `cx` to be woken when one
    /// comes.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let mut state = self.shared.lock();
        state.check_alive()?;
        match state.iface.tcp().accept(self.handle) {
            Ok(h) => {
                drop(state);
                // Wrapped at once: dropped on any error below, it closes.
                let stream = TcpStream::from_handle(self.shared.clone(), h);
                let peer = stream.inner.peer_addr()?;
                Poll::Ready(Ok((stream, peer)))
            }
            Err(TcpError::WouldBlock) => {
                let waiting = state.wakers.listeners.entry(self.handle).or_default();
                add_waker(waiting, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(tcp_error(e))),
        }
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let _ = state.iface.tcp().close_listener(self.handle);
        state.wakers.listeners.remove(&self.handle);
        drop(state);
        self.shared.kick.notify_one();
    }
}

/// A TCP connection, like [`tokio::net::TcpStream`](::tokio::net::TcpStream):
/// [`AsyncRead`] and [`AsyncWrite`]. Dropping it (both halves, after
/// [`TcpStream::into_split`]) closes the connection gracefully.
#[derive(Debug)]
pub struct TcpStream {
    inner: Arc<Stream>,
}

/// What a stream and its halves share.
#[derive(Debug)]
struct Stream {
    shared: Arc<Shared>,
    handle: TcpHandle,
}

impl TcpStream {
    fn from_handle(shared: Arc<Shared>, handle: TcpHandle) -> TcpStream {
        TcpStream {
            inner: Arc::new(Stream { shared, handle }),
        }
    }

    /// Connects to `addr`, waiting as long as the SYN retries allow.
    pub async fn connect(stack: &Stack, addr: SocketAddrV4) -> io::Result<TcpStream> {
        let shared = stack.shared.clone();
        let handle = shared.lock().iface.tcp().connect(addr).map_err(tcp_error)?;
        shared.kick.notify_one();
        // Closes the attempt if the caller gives up (drops the future).
        let stream = TcpStream::from_handle(shared, handle);
        poll_fn(|cx| stream.inner.poll_connected(cx)).await?;
        Ok(stream)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let mut state = self.inner.shared.lock();
        let addr = state.iface.tcp().local_addr(self.inner.handle);
        addr.map(SocketAddr::V4).map_err(tcp_error)
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let mut state = self.inner.shared.lock();
        let r = state.iface.tcp().set_nodelay(self.inner.handle, nodelay);
        r.map_err(tcp_error)
    }

    /// Splits the stream into a reading and a writing half that can move
    /// to different tasks. Dropping the writing half shuts the write side
    /// down (a FIN follows the data), as tokio's does; the connection
    /// closes when both are gone.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        (
            OwnedReadHalf {
                inner: self.inner.clone(),
            },
            OwnedWriteHalf { inner: self.inner },
        )
    }
}

impl Stream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        let mut state = self.shared.lock();
        let addr = state.iface.tcp().peer_addr(self.handle);
        addr.map(SocketAddr::V4).map_err(tcp_error)
    }

    /// Registers `cx` to be woken when the connection changes.
    fn wait(&self, state: &mut super::State, cx: &Context<'_>) {
        add_waker(state.wakers.tcp.entry(self.handle).or_default(), cx.waker());
    }

    fn poll_connected(&self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.shared.lock();
        state.check_alive()?;
        let tcp = state.iface.tcp();
        match tcp.state(self.handle) {
            Ok(State::SynSent | State::SynReceived) => {
                self.wait(&mut state, cx);
                Poll::Pending
            }
            Ok(State::Closed) => Poll::Ready(Err(tcp_error(
                tcp.error(self.handle)
                    .ok()
                    .flatten()
                    .unwrap_or(TcpError::ConnectionAborted),
            ))),
            Ok(_) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(tcp_error(e))),
        }
    }

    fn poll_read(&self, cx: &Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut state = self.shared.lock();
        state.check_alive()?;
        match state
            .iface
            .tcp()
            .recv(self.handle, buf.initialize_unfilled())
        {
            Ok(n) => {
                buf.advance(n);
                drop(state);
                if n > 0 {
                    // The window the read opened may be worth announcing.
                    self.shared.kick.notify_one();
                }
                Poll::Ready(Ok(()))
            }
            Err(TcpError::WouldBlock) => {
                self.wait(&mut state, cx);
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(tcp_error(e))),
        }
    }

    fn poll_write(&self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut state = self.shared.lock();
        state.check_alive()?;
        match state.iface.tcp().send(self.handle, buf) {
            Ok(n) => {
                drop(state);
                self.shared.kick.notify_one();
                Poll::Ready(Ok(n))
            }
            Err(TcpError::WouldBlock) => {
                self.wait(&mut state, cx);
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(tcp_error(e))),
        }
    }

    fn shutdown(&self) -> io::Result<()> {
        let r = self.shared.lock().iface.tcp().shutdown(self.handle);
        self.shared.kick.notify_one();
        r.map_err(tcp_error)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let _ = state.iface.tcp().close(self.handle);
        state.wakers.tcp.remove(&self.handle);
        drop(state);
        self.shared.kick.notify_one();
    }
}

/// `AsyncRead` for a type whose `inner` is a [`Stream`].
macro_rules! async_read {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.inner.poll_read(cx, buf)
            }
        }
    };
}

/// `AsyncWrite` for a type whose `inner` is a [`Stream`]: a flush has
/// nothing to do (written data is queued for the stack), a shutdown sends
/// the FIN after it.
macro_rules! async_write {
    ($t:ty) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.inner.poll_write(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.inner.shutdown())
            }
        }
    };
}

async_read!(TcpStream);
async_write!(TcpStream);
async_read!(OwnedReadHalf);
async_write!(OwnedWriteHalf);

/// The reading half of a [`TcpStream`] ([`TcpStream::into_split`]).
#[derive(Debug)]
pub struct OwnedReadHalf {
    inner: Arc<Stream>,
}

impl OwnedReadHalf {
    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

/// The writing half of a [`TcpStream`] ([`TcpStream::into_split`]);
/// dropping it shuts the write side down.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    inner: Arc<Stream>,
}

impl OwnedWriteHalf {
    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        let _ = self.inner.shutdown();
    }
}
