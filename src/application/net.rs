//! The few socket operations the application protocols need, as traits,
//! so that the same protocol code runs over netstrata's sockets
//! ([`crate::blocking`]) and over [`std::net`].
//!
//! [`DatagramSocket`] is a UDP socket; [`Network`] makes a client's
//! sockets (the DNS resolver's fresh UDP socket per query, its TCP
//! connection for a truncated answer, the HTTP client's connections);
//! [`StreamListener`] and [`ByteStream`] serve TCP. The two
//! implementations are [`StdNetwork`] and `&`[`Runtime`]. Not here: IPv6
//! sources for netstrata (the stack is IPv4 only).
//!
//! Code written against the traits runs on either; here a line is sent
//! over std's loopback and over netstrata's in-memory network alike:
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use std::net::SocketAddr;
//! use netstrata::application::net::{ByteStream, Network, StdNetwork, StreamListener};
//! use netstrata::blocking::Runtime;
//! use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
//! use netstrata::{Interface, InterfaceConfig};
//!
//! /// Sends a line to `listener` through `network` and reads it back.
//! fn round_trip<N, L>(network: N, listener: L, addr: SocketAddr) -> std::io::Result<String>
//! where
//!     N: Network,
//!     L: StreamListener + Send + 'static,
//! {
//!     let echo = std::thread::spawn(move || -> std::io::Result<()> {
//!         let (mut s, _) = listener.accept_stream()?;
//!         let mut line = String::new();
//!         BufReader::new(&mut s).read_line(&mut line)?;
//!         s.write_all(line.as_bytes())
//!     });
//!     let mut c = network.connect_stream(addr, std::time::Duration::from_secs(5))?;
//!     c.set_timeouts(Some(std::time::Duration::from_secs(5)))?;
//!     c.write_all(b"over any network\n")?;
//!     let mut line = String::new();
//!     BufReader::new(&mut c).read_line(&mut line)?;
//!     echo.join().unwrap()?;
//!     Ok(line)
//! }
//!
//! let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let addr = std_listener.local_addr()?;
//! assert_eq!(round_trip(StdNetwork, std_listener, addr)?, "over any network\n");
//!
//! let net = MemoryNetwork::new(1500);
//! let runtime = |n: u32| {
//!     let port = net.attach();
//!     let cidr = format!("192.0.2.{n}/24").parse().unwrap();
//!     let iface = Interface::new(InterfaceConfig::new(EthernetAddress::local(n), cidr), port.capabilities());
//!     Runtime::on_memory_port(iface, port)
//! };
//! let (client, server) = (runtime(1)?, runtime(2)?);
//! let listener = netstrata::blocking::TcpListener::bind(&server, "192.0.2.2:7")?;
//! let addr = listener.local_addr()?;
//! assert_eq!(round_trip(&client, listener, addr)?, "over any network\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use crate::blocking::{Runtime, TcpListener, TcpStream, UdpSocket};
use crate::transport::tcp::State;

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
///
/// A timeout is `None` (wait forever) or a positive duration; zero is an
/// error, as in std. An expired timeout fails the read or write with
/// `WouldBlock` or `TimedOut` ([`is_timeout`](super::is_timeout)).
pub trait ByteStream: Read + Write {
    /// Sets the read timeout (`None`: wait forever; zero is an error). A
    /// read that times out fails with `WouldBlock` or `TimedOut`.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Sets the write timeout, as the read timeout.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Sets both the read and the write timeout.
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)?;
        self.set_write_timeout(timeout)
    }
    /// Whether a connection that has sat idle is still open: the peer has
    /// neither closed it nor sent anything since, so a new request may go
    /// out on it (the HTTP client asks before reusing a kept-alive
    /// connection). Answered without blocking; a stream that cannot tell
    /// says `true`.
    fn is_idle_open(&self) -> bool {
        true
    }
    /// Turns Nagle's algorithm off (`true`) or on (RFC 9293 §3.7.4); a
    /// peer that writes whole messages at once wants it off.
    fn set_nodelay(&self, nodelay: bool) -> io::Result<()>;
    /// Shuts down the write side: the peer reads the end of the stream
    /// after the data written so far, and reading goes on.
    fn shutdown_write(&self) -> io::Result<()>;
}

/// `limit` (or no limit), cut to what is left before `deadline`; `None`
/// once the deadline has passed.
pub fn time_left(deadline: Instant, limit: Option<Duration>) -> Option<Duration> {
    let left = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())?;
    Some(limit.map_or(left, |l| l.min(left)))
}

/// A stream borrowed for an exchange that must end by a deadline: before
/// every read and write the socket's timeout is cut to the time left, and
/// once the deadline has passed they fail with `TimedOut` without touching
/// the socket. Socket timeouts alone bound each read, so a peer trickling
/// a byte at a time would never trip them.
#[derive(Debug)]
pub struct DeadlineStream<'a, S> {
    stream: &'a mut S,
    deadline: Instant,
    timeout: Option<Duration>,
}

impl<'a, S: ByteStream> DeadlineStream<'a, S> {
    /// `stream`, until `deadline`.
    pub fn new(stream: &'a mut S, deadline: Instant) -> DeadlineStream<'a, S> {
        DeadlineStream {
            stream,
            deadline,
            timeout: None,
        }
    }

    /// Each read and write also waits at most `timeout` (an idle limit).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn left(&self) -> io::Result<Duration> {
        time_left(self.deadline, self.timeout)
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
    }
}

impl<S: ByteStream> Read for DeadlineStream<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

impl<S: ByteStream> Write for DeadlineStream<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// A TCP listener.
pub trait StreamListener {
    /// The connections it accepts.
    type Stream: ByteStream;
    /// Waits for a connection.
    fn accept_stream(&self) -> io::Result<(Self::Stream, SocketAddr)>;
}

/// Where a client gets its sockets.
pub trait Network {
    /// Its UDP sockets.
    type Datagram: DatagramSocket;
    /// Its TCP connections.
    type Stream: ByteStream;
    /// Binds a UDP socket to `local` (port 0: an ephemeral port).
    fn bind_datagram(&self, local: SocketAddr) -> io::Result<Self::Datagram>;
    /// Connects to `to`, giving up after `timeout`.
    fn connect_stream(&self, to: SocketAddr, timeout: Duration) -> io::Result<Self::Stream>;
}

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

impl ByteStream for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
    /// Open while the connection is established (the peer's FIN moves it
    /// to CLOSE-WAIT, a reset to CLOSED) and nothing has arrived on it.
    fn is_idle_open(&self) -> bool {
        self.info().is_ok_and(|i| i.state == State::Established)
            && self.bytes_available().is_ok_and(|n| n == 0)
    }
    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        TcpStream::set_nodelay(self, nodelay)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl ByteStream for std::net::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_write_timeout(self, timeout)
    }
    /// Peeks without blocking: end of stream (the peer closed), bytes
    /// nobody asked for, or an error all mean the connection is not fit
    /// for a new request.
    fn is_idle_open(&self) -> bool {
        if self.set_nonblocking(true).is_err() {
            return false;
        }
        let peeked = self.peek(&mut [0u8; 1]);
        let open = matches!(&peeked, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        self.set_nonblocking(false).is_ok() && open
    }
    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        std::net::TcpStream::set_nodelay(self, nodelay)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
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
