//! A `std::net`-like UDP socket on a [`Runtime`].

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::Arc;

use crate::blocking::{Runtime, Shared, Timeouts, deadline, first_v4};
use crate::internet::icmpv4::DstUnreachable;
use crate::internet::{IcmpError, IcmpErrorKind};
use crate::transport::udp::{UdpError, UdpHandle};

/// The `std::io` error for a UDP error.
pub(crate) fn udp_error(e: UdpError) -> io::Error {
    let kind = match e {
        UdpError::InvalidHandle | UdpError::NotConnected => ErrorKind::NotConnected,
        UdpError::WouldBlock => ErrorKind::WouldBlock,
        UdpError::AddrInUse(_) => ErrorKind::AddrInUse,
        UdpError::AddrNotAvailable(_) | UdpError::NoEphemeralPort => ErrorKind::AddrNotAvailable,
        UdpError::Unaddressable(_) | UdpError::TooLarge(_) => ErrorKind::InvalidInput,
    };
    io::Error::new(kind, e)
}

/// The `std::io` error for an ICMP error about a socket's datagrams.
fn icmp_io_error(e: &IcmpError) -> io::Error {
    let kind = match e.kind {
        IcmpErrorKind::Unreachable(DstUnreachable::PortUnreachable) => ErrorKind::ConnectionRefused,
        _ => ErrorKind::HostUnreachable,
    };
    io::Error::new(kind, format!("ICMP {:?} from {}", e.kind, e.reporter))
}

/// A UDP socket, like [`std::net::UdpSocket`]; dropping it, and every
/// clone of it ([`UdpSocket::try_clone`]), closes it.
#[derive(Debug)]
pub struct UdpSocket {
    inner: Arc<Socket>,
}

/// What the clones of a socket share: the socket and its timeouts.
#[derive(Debug)]
struct Socket {
    shared: Arc<Shared>,
    handle: UdpHandle,
    timeouts: Timeouts,
}

impl UdpSocket {
    /// Binds to `addr` (port 0: an ephemeral port).
    pub fn bind(rt: &Runtime, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let addr = first_v4(addr)?;
        let shared = rt.shared().clone();
        let handle = shared.lock().iface.udp().bind(addr).map_err(udp_error)?;
        Ok(UdpSocket {
            inner: Arc::new(Socket {
                shared,
                handle,
                timeouts: Timeouts::default(),
            }),
        })
    }

    /// Another handle to the same socket, as
    /// [`std::net::UdpSocket::try_clone`]. The clones share the timeouts;
    /// the socket closes when the last of them is dropped. Never fails
    /// here (the `Result` is std's signature).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: Arc::clone(&self.inner),
        })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner
            .shared
            .lock()
            .iface
            .udp()
            .local_addr(self.inner.handle)
            .map(SocketAddr::V4)
            .map_err(udp_error)
    }

    /// The connected peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner
            .shared
            .lock()
            .iface
            .udp()
            .peer_addr(self.inner.handle)
            .map(SocketAddr::V4)
            .map_err(udp_error)
    }

    /// Sets the peer for `send`/`recv`; only its datagrams are received.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let addr = first_v4(addr)?;
        self.inner
            .shared
            .lock()
            .iface
            .udp()
            .connect(self.inner.handle, addr)
            .map_err(udp_error)
    }

    fn send_inner(&self, buf: &[u8], dst: Option<SocketAddrV4>) -> io::Result<usize> {
        let timeout = self.inner.timeouts.write();
        let h = self.inner.handle;
        self.inner.shared.wait_for(deadline(timeout), |s| {
            let udp = s.iface.udp();
            let r = match dst {
                Some(d) => udp.send_to(h, buf, d),
                None => udp.send(h, buf),
            };
            match r {
                Ok(()) => Some(Ok(buf.len())),
                Err(UdpError::WouldBlock) => None,
                Err(e) => Some(Err(udp_error(e))),
            }
        })
    }

    /// Sends one datagram to `addr`.
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let dst = first_v4(addr)?;
        self.send_inner(buf, Some(dst))
    }

    /// Sends one datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.send_inner(buf, None)
    }

    fn recv_inner(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let timeout = self.inner.timeouts.read();
        let h = self.inner.handle;
        self.inner.shared.wait_for(deadline(timeout), |s| {
            let udp = s.iface.udp();
            // A connected socket reports an ICMP error on its next receive,
            // as Linux does (ECONNREFUSED after a port unreachable).
            if udp.peer_addr(h).is_ok()
                && let Ok(Some(e)) = udp.take_error(h)
            {
                return Some(Err(icmp_io_error(&e)));
            }
            // Like std: a datagram larger than the buffer is cut.
            match udp.recv_from(h, buf) {
                Ok((n, from)) => Some(Ok((n, SocketAddr::V4(from)))),
                Err(UdpError::WouldBlock) => None,
                Err(e) => Some(Err(udp_error(e))),
            }
        })
    }

    /// Receives one datagram and its sender (waits up to the read
    /// timeout; `WouldBlock` when it passes).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_inner(buf)
    }

    /// Receives one datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_inner(buf).map(|(n, _)| n)
    }

    /// Sets the read timeout (`None`: forever; zero is an error, as in std).
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

    /// Takes the last ICMP error about this socket's datagrams, as an
    /// `io::Error`, like std's `take_error`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let e = self
            .inner
            .shared
            .lock()
            .iface
            .udp()
            .take_error(self.inner.handle);
        Ok(e.map_err(udp_error)?.map(|e| icmp_io_error(&e)))
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = self.shared.lock().iface.udp().close(self.handle);
    }
}
