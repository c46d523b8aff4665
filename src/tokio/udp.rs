//! A UDP socket whose calls are futures.

use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::task::{Context, Poll};

use super::{Shared, Stack, add_waker};
use crate::blocking::udp_error;
use crate::transport::udp::{UdpError, UdpHandle};

/// A UDP socket, like [`tokio::net::UdpSocket`](::tokio::net::UdpSocket).
/// Dropping it closes it.
#[derive(Debug)]
pub struct UdpSocket {
    shared: Arc<Shared>,
    handle: UdpHandle,
}

impl UdpSocket {
    /// Binds to `addr` (port 0: an ephemeral port).
    pub fn bind(stack: &Stack, addr: SocketAddrV4) -> io::Result<UdpSocket> {
        let shared = stack.shared.clone();
        let handle = shared.lock().iface.udp().bind(addr).map_err(udp_error)?;
        Ok(UdpSocket { shared, handle })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let mut state = self.shared.lock();
        let addr = state.iface.udp().local_addr(self.handle);
        addr.map(SocketAddr::V4).map_err(udp_error)
    }

    /// Sends one datagram to `dst`, waiting for room in the send queue.
    pub async fn send_to(&self, buf: &[u8], dst: SocketAddrV4) -> io::Result<usize> {
        poll_fn(|cx| self.poll_send_to(cx, buf, dst)).await
    }

    /// Queues one datagram to `dst`, or registers `cx` to be woken when
    /// the send queue has drained.
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        dst: SocketAddrV4,
    ) -> Poll<io::Result<usize>> {
        let mut state = self.shared.lock();
        state.check_alive()?;
        match state.iface.udp().send_to(self.handle, buf, dst) {
            Ok(()) => {
                drop(state);
                self.shared.kick.notify_one();
                Poll::Ready(Ok(buf.len()))
            }
            Err(UdpError::WouldBlock) => {
                add_waker(state.wakers.udp.entry(self.handle).or_default(), cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(udp_error(e))),
        }
    }

    /// Receives one datagram and its sender; a datagram longer than `buf`
    /// is cut to fit, as with `std`.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| self.poll_recv_from(cx, buf)).await
    }

    /// Takes the next datagram, or registers `cx` to be woken when one
    /// comes.
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let mut state = self.shared.lock();
        state.check_alive()?;
        match state.iface.udp().recv_from(self.handle, buf) {
            Ok((n, from)) => Poll::Ready(Ok((n, SocketAddr::V4(from)))),
            Err(UdpError::WouldBlock) => {
                add_waker(state.wakers.udp.entry(self.handle).or_default(), cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(udp_error(e))),
        }
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let _ = state.iface.udp().close(self.handle);
        state.wakers.udp.remove(&self.handle);
        drop(state);
        // What it queued leaves at the next poll; a driver with no other
        // user left looks at whether to end.
        self.shared.kick.notify_one();
    }
}
