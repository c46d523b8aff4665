//! The few socket operations the resolver and the responder need, as
//! traits, so that the same protocol code runs over netstrata's sockets
//! ([`crate::socket`]) and over [`std::net`].
//!
//! [`DatagramSocket`] is a UDP socket; [`Network`] makes the resolver's
//! sockets (a fresh UDP socket per query, a TCP connection for a truncated
//! answer); [`StreamListener`] and [`DnsStream`] serve TCP. The two
//! implementations are [`StdNetwork`] and `&`[`Runtime`]. Not here: IPv6
//! sources for netstrata (the stack is IPv4 only).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use crate::socket::{Runtime, TcpListener, TcpStream, UdpSocket};

/// A UDP socket: what DNS over UDP needs of one.
pub trait DatagramSocket {
    /// Sends one datagram to `to`.
    fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize>;
    /// Receives one datagram (waits up to the read timeout).
    fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)>;
    /// Sets the read timeout (`None`: wait forever; zero is an error).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

/// A TCP connection: a byte stream with timeouts.
pub trait DnsStream: Read + Write {
    /// Sets both the read and the write timeout.
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()>;
}

/// A TCP listener.
pub trait StreamListener {
    /// The connections it accepts.
    type Stream: DnsStream;
    /// Waits for a connection.
    fn accept_stream(&self) -> io::Result<(Self::Stream, SocketAddr)>;
}

/// Where the resolver gets its sockets.
pub trait Network {
    /// Its UDP sockets.
    type Datagram: DatagramSocket;
    /// Its TCP connections.
    type Stream: DnsStream;
    /// Binds a UDP socket to `local` (port 0: an ephemeral port).
    fn bind_datagram(&self, local: SocketAddr) -> io::Result<Self::Datagram>;
    /// Connects to `to`, giving up after `timeout`.
    fn connect_stream(&self, to: SocketAddr, timeout: Duration) -> io::Result<Self::Stream>;
}

pub use crate::application::is_timeout;

impl DatagramSocket for UdpSocket {
    fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        UdpSocket::send_to(self, buf, to)
    }
    fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        UdpSocket::recv_from(self, buf)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UdpSocket::set_read_timeout(self, timeout)
    }
}

impl DatagramSocket for std::net::UdpSocket {
    fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        std::net::UdpSocket::send_to(self, buf, to)
    }
    fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        std::net::UdpSocket::recv_from(self, buf)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::UdpSocket::set_read_timeout(self, timeout)
    }
}

impl DnsStream for TcpStream {
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)?;
        self.set_write_timeout(timeout)
    }
}

impl DnsStream for std::net::TcpStream {
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)?;
        self.set_write_timeout(timeout)
    }
}

impl StreamListener for TcpListener {
    type Stream = TcpStream;
    fn accept_stream(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept()
    }
}

impl StreamListener for std::net::TcpListener {
    type Stream = std::net::TcpStream;
    fn accept_stream(&self) -> io::Result<(std::net::TcpStream, SocketAddr)> {
        self.accept()
    }
}

/// The operating system's sockets ([`std::net`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct StdNetwork;

impl Network for StdNetwork {
    type Datagram = std::net::UdpSocket;
    type Stream = std::net::TcpStream;
    fn bind_datagram(&self, local: SocketAddr) -> io::Result<std::net::UdpSocket> {
        std::net::UdpSocket::bind(local)
    }
    fn connect_stream(&self, to: SocketAddr, timeout: Duration) -> io::Result<std::net::TcpStream> {
        std::net::TcpStream::connect_timeout(&to, timeout)
    }
}

impl Network for &Runtime {
    type Datagram = UdpSocket;
    type Stream = TcpStream;
    fn bind_datagram(&self, local: SocketAddr) -> io::Result<UdpSocket> {
        UdpSocket::bind(self, local)
    }
    fn connect_stream(&self, to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        TcpStream::connect_timeout(self, &to, timeout)
    }
}

/// Writes one DNS message over TCP with its two-octet length prefix
/// (RFC 1035 §4.2.2).
pub fn write_framed(w: &mut impl Write, msg: &[u8]) -> io::Result<()> {
    let len = u16::try_from(msg.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "DNS message over 65535"))?;
    let mut buf = Vec::with_capacity(2 + msg.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(msg);
    w.write_all(&buf)?;
    w.flush()
}

/// Reads one length-prefixed DNS message (RFC 1035 §4.2.2); `Ok(None)` on
/// a clean end of stream before the prefix. At most 65535 octets.
pub fn read_framed(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match r.read(&mut len[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    r.read_exact(&mut msg)?;
    Ok(Some(msg))
}
