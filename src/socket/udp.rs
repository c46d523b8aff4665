//! A `std::net`-like UDP socket on a [`Runtime`].

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::{Arc, Mutex};

use crate::internet::IcmpErrorKind;
use crate::internet::icmpv4::DstUnreachable;
use crate::socket::{Runtime, Shared, deadline, first_v4};
use crate::transport::udp::{BindError, UdpHandle, UdpRecvError, UdpSendError};

fn bind_error(e: BindError) -> io::Error {
    let kind = match e {
        BindError::AddrInUse(_) => ErrorKind::AddrInUse,
        BindError::AddrNotAvailable(_) | BindError::NoEphemeralPort => ErrorKind::AddrNotAvailable,
    };
    io::Error::new(kind, e.to_string())
}

fn send_error(e: UdpSendError) -> io::Error {
    let kind = match e {
        UdpSendError::InvalidHandle => ErrorKind::NotConnected,
        UdpSendError::Unaddressable(_) | UdpSendError::TooLarge(_) => ErrorKind::InvalidInput,
        UdpSendError::NotConnected => ErrorKind::NotConnected,
        UdpSendError::QueueFull => ErrorKind::WouldBlock,
    };
    io::Error::new(kind, e.to_string())
}

/// A UDP socket, like [`std::net::UdpSocket`].
#[derive(Debug)]
pub struct UdpSocket {
    shared: Arc<Shared>,
    handle: UdpHandle,
    timeouts: Mutex<(Option<std::time::Duration>, Option<std::time::Duration>)>,
}

impl UdpSocket {
    /// Binds to `addr` (port 0: an ephemeral port).
    pub fn bind(rt: &Runtime, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let addr = first_v4(addr)?;
        let shared = rt.shared().clone();
        let handle = shared.lock().iface.udp().bind(addr).map_err(bind_error)?;
        Ok(UdpSocket {
            shared,
            handle,
            timeouts: Mutex::new((None, None)),
        })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared
            .lock()
            .iface
            .udp()
            .local_addr(self.handle)
            .map(SocketAddr::V4)
            .ok_or_else(|| io::Error::new(ErrorKind::NotConnected, "socket closed"))
    }

    /// The connected peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.shared
            .lock()
            .iface
            .udp()
            .peer_addr(self.handle)
            .map(SocketAddr::V4)
            .ok_or_else(|| io::Error::new(ErrorKind::NotConnected, "not connected"))
    }

    /// Sets the peer for `send`/`recv`; only its datagrams are received.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let addr = first_v4(addr)?;
        self.shared
            .lock()
            .iface
            .udp()
            .connect(self.handle, addr)
            .map_err(send_error)
    }

    fn send_inner(&self, buf: &[u8], dst: Option<SocketAddrV4>) -> io::Result<usize> {
        let timeout = self.timeouts.lock().unwrap_or_else(|p| p.into_inner()).1;
        let h = self.handle;
        self.shared.wait_for(deadline(timeout), |s| {
            let udp = s.iface.udp();
            let r = match dst {
                Some(d) => udp.send_to(h, buf, d),
                None => udp.send(h, buf),
            };
            match r {
                Ok(()) => Some(Ok(buf.len())),
                Err(UdpSendError::QueueFull) => None,
                Err(e) => Some(Err(send_error(e))),
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
        let timeout = self.timeouts.lock().unwrap_or_else(|p| p.into_inner()).0;
        let h = self.handle;
        self.shared.wait_for(deadline(timeout), |s| {
            let udp = s.iface.udp();
            // A connected socket reports an ICMP error on its next receive,
            // as Linux does (ECONNREFUSED after a port unreachable).
            if udp.peer_addr(h).is_some()
                && let Some(e) = udp.take_error(h)
            {
                let kind = match e.kind {
                    IcmpErrorKind::Unreachable(DstUnreachable::PortUnreachable) => {
                        ErrorKind::ConnectionRefused
                    }
                    _ => ErrorKind::HostUnreachable,
                };
                return Some(Err(io::Error::new(
                    kind,
                    format!("ICMP {:?} from {}", e.kind, e.reporter),
                )));
            }
            // Like std: a datagram larger than the buffer is cut.
            match udp.recv_from(h, buf) {
                Ok((n, from)) => Some(Ok((n, SocketAddr::V4(from)))),
                Err(UdpRecvError::WouldBlock) => None,
                Err(e) => Some(Err(io::Error::new(ErrorKind::NotConnected, e.to_string()))),
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
        if t.is_some_and(|t| t.is_zero()) {
            return Err(io::Error::new(ErrorKind::InvalidInput, "zero timeout"));
        }
        self.timeouts.lock().unwrap_or_else(|p| p.into_inner()).0 = t;
        Ok(())
    }

    /// Sets the write timeout.
    pub fn set_write_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        if t.is_some_and(|t| t.is_zero()) {
            return Err(io::Error::new(ErrorKind::InvalidInput, "zero timeout"));
        }
        self.timeouts.lock().unwrap_or_else(|p| p.into_inner()).1 = t;
        Ok(())
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<std::time::Duration>> {
        Ok(self.timeouts.lock().unwrap_or_else(|p| p.into_inner()).0)
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<std::time::Duration>> {
        Ok(self.timeouts.lock().unwrap_or_else(|p| p.into_inner()).1)
    }

    /// Takes the last ICMP error about this socket's datagrams, as an
    /// `io::Error`, like std's `take_error`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self
            .shared
            .lock()
            .iface
            .udp()
            .take_error(self.handle)
            .map(|e| {
                let kind = match e.kind {
                    IcmpErrorKind::Unreachable(DstUnreachable::PortUnreachable) => {
                        ErrorKind::ConnectionRefused
                    }
                    _ => ErrorKind::HostUnreachable,
                };
                io::Error::new(kind, format!("ICMP {:?} from {}", e.kind, e.reporter))
            }))
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        self.shared.lock().iface.udp().close(self.handle);
    }
}
