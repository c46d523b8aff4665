//! UDP sockets: binding, sending and receiving datagrams (RFC 768, RFC 1122
//! §4.1).
//!
//! Sockets live in a slab and are found by local port through a hash map,
//! so demultiplexing is O(1) whatever the number of sockets. Each socket
//! queues datagrams in two rings of bytes (`DatagramRing`). A received
//! payload is copied out of its frame, which goes straight back to the
//! link's buffer pool (unless the payload fills most of it: the frame then
//! waits in the queue and goes back when the datagram is read); it is read
//! by copying it out ([`UdpSockets::recv_from`]) or borrowing it in place
//! ([`UdpSockets::recv_with`], [`UdpSockets::recv_batch`]). A sent payload
//! is copied in (or written in place, [`UdpSockets::send_with`]) and into
//! a pooled frame at the next poll. No datagram allocates. Both queues are
//! bounded in datagrams and in bytes: a full receive queue drops (and
//! counts) new datagrams, a full send queue refuses the send with
//! [`UdpError::WouldBlock`].
//!
//! Ephemeral ports are chosen at random from 49152–65535 with bounded
//! probing (RFC 6056 §3.3.1, "Algorithm 1"; see
//! [`crate::transport::ports`]). ICMP errors about a socket's datagrams are
//! kept for [`UdpSockets::take_error`], as
//! `std::net::UdpSocket::take_error` reports them.
//!
//! # Example
//!
//! Many datagrams per call, each written and read in place:
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
//! use netstrata::sim::Simulation;
//! use netstrata::{Duration, Interface, InterfaceConfig};
//!
//! let net = MemoryNetwork::new(1500);
//! let mut sim = Simulation::new();
//! let mut host = |n: u32| {
//!     let port = net.attach();
//!     let cidr = format!("192.0.2.{n}/24").parse().unwrap();
//!     let cfg = InterfaceConfig::new(EthernetAddress::local(n), cidr);
//!     sim.add_host(Interface::new(cfg, port.capabilities()), Box::new(port))
//! };
//! let (a, b) = (host(1), host(2));
//! let rx = sim.iface(b).udp().bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7)).unwrap();
//! let tx = sim.iface(a).udp().bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
//! let dst = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 7);
//! for seq in 0u32..10 {
//!     sim.iface(a)
//!         .udp()
//!         .send_with(tx, 4, dst, |buf| buf.copy_from_slice(&seq.to_be_bytes()))
//!         .unwrap();
//! }
//! let mut got = Vec::new();
//! sim.run_while_not(Duration::from_secs(1), |s| {
//!     let _ = s.iface(b).udp().recv_batch(rx, 64, |data, _from| {
//!         got.push(u32::from_be_bytes(data.try_into().unwrap()));
//!     });
//!     got.len() == 10
//! });
//! assert_eq!(got, (0..10).collect::<Vec<_>>());
//! ```
//!
//! Not here: multicast membership, `SO_REUSEPORT`-style sharing of a port,
//! IPv6.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::buf::PacketBuf;
use crate::internet::{Disposition, IcmpError, IpMeta, IpSender, PathCache, Protocol};
use crate::rand::KeyedRng;
use crate::slab::{Slab, SlabKey};
use crate::time::Instant;
use crate::transport::ports::{EphemeralPorts, PortTable};
use crate::transport::udp::packet::{self, UdpPacket, UdpRepr};
use crate::transport::udp::ring::DatagramRing;

/// A UDP socket of an interface. A handle kept after its socket was
/// closed is refused ([`UdpError::InvalidHandle`]), never taken for a
/// socket opened later in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UdpHandle(SlabKey);

/// Queue limits of a UDP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpConfig {
    /// Most datagrams waiting to be read.
    pub rx_datagrams: usize,
    /// Most memory held by datagrams waiting to be read: the allocation
    /// of the receive queue's ring, into which payloads are copied, and
    /// the frames queued whole, counted as their allocations
    /// ([`PacketBuf::truesize`]). A datagram larger than this is never
    /// received.
    pub rx_bytes: usize,
    /// Most datagrams waiting to be sent.
    pub tx_datagrams: usize,
    /// Most bytes of payload waiting to be sent: the size the send queue's
    /// ring grows to, never less than one datagram of the largest size
    /// ([`MAX_PAYLOAD`]).
    pub tx_bytes: usize,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            rx_datagrams: 256,
            rx_bytes: 512 * 1024,
            tx_datagrams: 256,
            tx_bytes: 256 * 1024,
        }
    }
}

/// Why a UDP call failed: one flat list a caller matches on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UdpError {
    /// The handle does not name an open socket.
    #[error("no such UDP socket")]
    InvalidHandle,
    /// No datagram is waiting, or the send queue is full: try again after
    /// the next poll.
    #[error("operation would block")]
    WouldBlock,
    /// Another socket has the port.
    #[error("address in use: port {0} is already bound")]
    AddrInUse(u16),
    /// The address is not one of this interface's.
    #[error("cannot bind to {0}: not an address of this interface")]
    AddrNotAvailable(Ipv4Addr),
    /// Every ephemeral port is taken.
    #[error("no free ephemeral port")]
    NoEphemeralPort,
    /// The destination is unspecified or port 0.
    #[error("cannot send to {0}: address or port is zero")]
    Unaddressable(SocketAddrV4),
    /// The socket is not connected (for `send` and `peer_addr`).
    #[error("socket is not connected")]
    NotConnected,
    /// The payload is too large for one datagram.
    #[error("payload of {0} bytes exceeds the UDP maximum of 65507")]
    TooLarge(usize),
}

/// The largest UDP payload in an IPv4 datagram (65535 - 20 - 8).
pub const MAX_PAYLOAD: usize = 65507;

/// Counters of one socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpSocketStats {
    /// Datagrams queued for the reader.
    pub rx_datagrams: u64,
    /// Datagrams dropped because the receive queue was full.
    pub rx_dropped_full: u64,
    /// Datagrams sent.
    pub tx_datagrams: u64,
    /// Datagrams that could not be sent (no route, ARP failure).
    pub tx_errors: u64,
}

/// Counters of the UDP layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpLayerStats {
    /// Datagrams received.
    pub rx_datagrams: u64,
    /// Dropped: header or length malformed.
    pub rx_malformed: u64,
    /// Dropped: bad checksum.
    pub rx_bad_checksum: u64,
    /// Dropped: no socket on the port (answered with port unreachable).
    pub rx_no_socket: u64,
    /// Dropped: a socket's receive queue was full.
    pub rx_queue_full: u64,
    /// Datagrams sent.
    pub tx_datagrams: u64,
    /// Datagrams not sent (no route, link refused).
    pub tx_errors: u64,
}

#[derive(Debug)]
struct UdpSocket {
    local: SocketAddrV4,
    remote: Option<SocketAddrV4>,
    /// Datagrams received and their senders.
    rx: DatagramRing,
    /// Datagrams to send and their destinations.
    tx: DatagramRing,
    queued_for_tx: bool,
    /// Closed by its user with datagrams still queued: they go out at the
    /// next dispatch, then the slot is freed. No call reaches it.
    closed: bool,
    /// On the event list.
    signalled: bool,
    error: Option<IcmpError>,
    stats: UdpSocketStats,
    /// How its datagrams to the last destination leave.
    path: PathCache,
}

/// All UDP sockets of an interface.
#[derive(Debug)]
pub struct UdpSockets {
    local_addr: Ipv4Addr,
    sockets: Slab<UdpSocket>,
    by_port: PortTable<SlabKey>,
    /// Sockets with datagrams to send, each once.
    tx_ready: VecDeque<SlabKey>,
    ports: EphemeralPorts,
    /// Frames of datagrams read in place, for the link's buffer pool at
    /// the next poll.
    spent: Spent,
    config: UdpConfig,
    stats: UdpLayerStats,
    /// Sockets that received a datagram or an error, or whose send queue
    /// drained, since the last [`UdpSockets::take_events`], each once.
    events: VecDeque<SlabKey>,
}

/// Frames of datagrams the application read in place, kept for the
/// buffer pool until the next poll: at most [`SPENT_FRAMES`] of them and
/// [`SPENT_BYTES`] of memory; beyond that they are freed.
#[derive(Debug, Default)]
struct Spent {
    frames: Vec<PacketBuf>,
    bytes: usize,
}

/// Most read frames kept for the buffer pool between polls.
const SPENT_FRAMES: usize = 256;
/// Most memory those frames may hold (a frame can be a reassembled
/// 64 KiB datagram).
const SPENT_BYTES: usize = 1 << 20;

impl Spent {
    fn keep(&mut self, frame: PacketBuf) {
        let size = frame.truesize();
        if self.frames.len() < SPENT_FRAMES && self.bytes + size <= SPENT_BYTES {
            self.bytes += size;
            self.frames.push(frame);
        }
    }

    fn give_back<S: IpSender>(&mut self, ip: &mut S) {
        self.frames.drain(..).for_each(|p| ip.recycle(p));
        self.bytes = 0;
    }
}

impl UdpSockets {
    /// No sockets. `local_addr` is the interface address sockets may bind
    /// to; `rng` picks ephemeral ports.
    pub fn new(local_addr: Ipv4Addr, config: UdpConfig, rng: KeyedRng) -> UdpSockets {
        UdpSockets {
            local_addr,
            sockets: Slab::new(),
            by_port: PortTable::default(),
            tx_ready: VecDeque::new(),
            ports: EphemeralPorts::new(rng),
            spent: Spent::default(),
            config,
            stats: UdpLayerStats::default(),
            events: VecDeque::new(),
        }
    }

    /// Layer counters.
    pub fn stats(&self) -> UdpLayerStats {
        self.stats
    }

    fn socket(&self, h: UdpHandle) -> Result<&UdpSocket, UdpError> {
        self.sockets
            .get(h.0)
            .filter(|s| !s.closed)
            .ok_or(UdpError::InvalidHandle)
    }

    fn socket_mut(&mut self, h: UdpHandle) -> Result<&mut UdpSocket, UdpError> {
        open_socket(&mut self.sockets, h)
    }

    /// Binds a socket to `addr`. Port 0 picks a free ephemeral port;
    /// address 0.0.0.0 accepts datagrams to any of the interface's
    /// addresses (and broadcasts).
    pub fn bind(&mut self, addr: SocketAddrV4) -> Result<UdpHandle, UdpError> {
        let ip = *addr.ip();
        if !ip.is_unspecified() && ip != self.local_addr {
            return Err(UdpError::AddrNotAvailable(ip));
        }
        let port = match addr.port() {
            0 => self.ephemeral_port()?,
            p if self.by_port.contains(p) => return Err(UdpError::AddrInUse(p)),
            p => p,
        };
        let socket = UdpSocket {
            local: SocketAddrV4::new(ip, port),
            remote: None,
            rx: DatagramRing::new(self.config.rx_bytes, self.config.rx_datagrams),
            tx: DatagramRing::new(
                self.config.tx_bytes.max(MAX_PAYLOAD),
                self.config.tx_datagrams,
            ),
            queued_for_tx: false,
            closed: false,
            signalled: false,
            error: None,
            stats: UdpSocketStats::default(),
            path: PathCache::default(),
        };
        let slot = self.sockets.insert(socket);
        self.by_port.insert(port, slot);
        // Entries of sockets closed since they were queued are pruned
        // when they would outnumber the live sockets.
        if self.events.len() >= 2 * self.sockets.len() + 64 {
            let sockets = &self.sockets;
            self.events.retain(|&k| sockets.get(k).is_some());
        }
        Ok(UdpHandle(slot))
    }

    fn ephemeral_port(&mut self) -> Result<u16, UdpError> {
        let by_port = &self.by_port;
        self.ports
            .random(|p| !by_port.contains(*p))
            .ok_or(UdpError::NoEphemeralPort)
    }

    /// Closes a socket and frees its port at once. Datagrams it queued
    /// still go out at the next dispatch, as a kernel's do after `close`
    /// (a send that succeeded was not a maybe); received ones are
    /// discarded.
    pub fn close(&mut self, h: UdpHandle) -> Result<(), UdpError> {
        let s = self.socket_mut(h)?;
        let port = s.local.port();
        if s.tx.is_empty() {
            self.sockets.remove(h.0);
        } else {
            s.closed = true;
        }
        self.by_port.remove(port);
        Ok(())
    }

    /// The local address of a socket.
    pub fn local_addr(&self, h: UdpHandle) -> Result<SocketAddrV4, UdpError> {
        self.socket(h).map(|s| s.local)
    }

    /// The peer of a connected socket ([`UdpError::NotConnected`] if it is
    /// not).
    pub fn peer_addr(&self, h: UdpHandle) -> Result<SocketAddrV4, UdpError> {
        self.socket(h)?.remote.ok_or(UdpError::NotConnected)
    }

    /// Counters of a socket.
    pub fn socket_stats(&self, h: UdpHandle) -> Result<UdpSocketStats, UdpError> {
        self.socket(h).map(|s| s.stats)
    }

    /// Sets the socket's peer: `send` goes there and only datagrams from
    /// there are received.
    pub fn connect(&mut self, h: UdpHandle, remote: SocketAddrV4) -> Result<(), UdpError> {
        if remote.ip().is_unspecified() || remote.port() == 0 {
            return Err(UdpError::Unaddressable(remote));
        }
        self.socket_mut(h)?.remote = Some(remote);
        Ok(())
    }

    /// Queues `data` as one datagram to `dst`; it is sent at the next poll.
    pub fn send_to(
        &mut self,
        h: UdpHandle,
        data: &[u8],
        dst: SocketAddrV4,
    ) -> Result<(), UdpError> {
        self.send_batch(h, [(data, dst)]).map(|_| ())
    }

    /// Queues datagrams, each to its own destination, in order, until one
    /// cannot be (as `sendmmsg(2)`): returns how many were queued. If the
    /// first cannot, its error is returned; a later one ends the batch
    /// there, and the next call reports it. One lookup of the socket
    /// serves the whole batch.
    pub fn send_batch<'a>(
        &mut self,
        h: UdpHandle,
        datagrams: impl IntoIterator<Item = (&'a [u8], SocketAddrV4)>,
    ) -> Result<usize, UdpError> {
        let s = open_socket(&mut self.sockets, h)?;
        let mut queued = 0;
        for (data, dst) in datagrams {
            match queue(&mut s.tx, data.len(), dst, |b| b.copy_from_slice(data)) {
                Err(e) if queued == 0 => return Err(e),
                Err(_) => break,
                Ok(()) => queued += 1,
            }
        }
        if queued > 0 {
            self.mark_ready(h);
        }
        Ok(queued)
    }

    /// Queues a datagram of `len` bytes to `dst` that `fill` writes in
    /// place in the send queue (its slice holds stale bytes, not zeros):
    /// the payload is then copied once, into the frame. `fill` is not
    /// called if the datagram cannot be queued.
    ///
    /// ```
    /// # use std::net::{Ipv4Addr, SocketAddrV4};
    /// # use netstrata::transport::udp::{UdpConfig, UdpSockets};
    /// # use netstrata::rand::KeyedRng;
    /// # let me = Ipv4Addr::new(192, 0, 2, 1);
    /// # let mut udp = UdpSockets::new(me, UdpConfig::default(), KeyedRng::from_seed(1));
    /// let h = udp.bind(SocketAddrV4::new(me, 5000)).unwrap();
    /// let dst = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 53);
    /// udp.send_with(h, 8, dst, |buf| buf.copy_from_slice(&7u64.to_be_bytes()))
    ///     .unwrap();
    /// ```
    pub fn send_with(
        &mut self,
        h: UdpHandle,
        len: usize,
        dst: SocketAddrV4,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), UdpError> {
        let s = open_socket(&mut self.sockets, h)?;
        queue(&mut s.tx, len, dst, fill)?;
        self.mark_ready(h);
        Ok(())
    }

    /// Puts a socket with datagrams to send on the list for the next
    /// dispatch, once.
    fn mark_ready(&mut self, h: UdpHandle) {
        if let Some(s) = self.sockets.get_mut(h.0)
            && !s.queued_for_tx
        {
            s.queued_for_tx = true;
            self.tx_ready.push_back(h.0);
        }
    }

    /// Queues `data` to the connected peer.
    pub fn send(&mut self, h: UdpHandle, data: &[u8]) -> Result<(), UdpError> {
        let remote = self.peer_addr(h)?;
        self.send_to(h, data, remote)
    }

    /// Whether a datagram of `len` bytes would be queued now.
    pub fn can_send(&self, h: UdpHandle, len: usize) -> bool {
        self.socket(h)
            .is_ok_and(|s| len <= MAX_PAYLOAD && s.tx.fits(len))
    }

    /// Whether a datagram is waiting to be read.
    pub fn can_recv(&self, h: UdpHandle) -> bool {
        self.socket(h).is_ok_and(|s| !s.rx.is_empty())
    }

    /// Copies the next datagram into `buf` and returns its length there
    /// and its sender. As with `std::net::UdpSocket::recv_from`, a datagram
    /// longer than `buf` is cut to fit, and the rest is lost.
    pub fn recv_from(
        &mut self,
        h: UdpHandle,
        buf: &mut [u8],
    ) -> Result<(usize, SocketAddrV4), UdpError> {
        self.recv_with(h, |data, from| {
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            (n, from)
        })
    }

    /// Hands the next datagram and its sender to `read` in place, without
    /// copying, and returns what `read` returns.
    pub fn recv_with<R>(
        &mut self,
        h: UdpHandle,
        read: impl FnOnce(&[u8], SocketAddrV4) -> R,
    ) -> Result<R, UdpError> {
        let s = open_socket(&mut self.sockets, h)?;
        let (data, from) = s.rx.front().ok_or(UdpError::WouldBlock)?;
        let r = read(data, from);
        if let Some(frame) = s.rx.pop() {
            self.spent.keep(frame);
        }
        Ok(r)
    }

    /// Hands up to `max` waiting datagrams and their senders to `read`, in
    /// order and in place (as `recvmmsg(2)`, without the copies); returns
    /// how many. [`UdpError::WouldBlock`] if none is waiting and `max`
    /// is not 0.
    pub fn recv_batch(
        &mut self,
        h: UdpHandle,
        max: usize,
        mut read: impl FnMut(&[u8], SocketAddrV4),
    ) -> Result<usize, UdpError> {
        let s = open_socket(&mut self.sockets, h)?;
        if s.rx.is_empty() && max > 0 {
            return Err(UdpError::WouldBlock);
        }
        let mut n = 0;
        while n < max
            && let Some((data, from)) = s.rx.front()
        {
            read(data, from);
            if let Some(frame) = s.rx.pop() {
                self.spent.keep(frame);
            }
            n += 1;
        }
        Ok(n)
    }

    /// Takes the last ICMP error reported about this socket's datagrams.
    pub fn take_error(&mut self, h: UdpHandle) -> Result<Option<IcmpError>, UdpError> {
        let s = open_socket(&mut self.sockets, h)?;
        Ok(s.error.take())
    }

    /// Takes the sockets that received a datagram or an ICMP error, or
    /// whose send queue drained, since the last call, each once, oldest
    /// first: a runtime wakes the tasks waiting on these and no others
    /// (see [`crate::transport::tcp::TcpSockets::take_events`]).
    pub fn take_events(&mut self, out: &mut Vec<UdpHandle>) {
        for key in self.events.drain(..) {
            if let Some(s) = self.sockets.get_mut(key).filter(|s| !s.closed) {
                s.signalled = false;
                out.push(UdpHandle(key));
            }
        }
    }

    /// Whether any socket has datagrams to send.
    pub fn has_pending_tx(&self) -> bool {
        !self.tx_ready.is_empty()
    }

    /// Sends every queued datagram through `ip`.
    pub fn dispatch<S: IpSender>(&mut self, now: Instant, ip: &mut S) {
        self.spent.give_back(ip);
        let fill = !ip.checksum_offload().tx;
        while let Some(k) = self.tx_ready.pop_front() {
            let Some(s) = self.sockets.get_mut(k) else {
                continue;
            };
            s.queued_for_tx = false;
            // Its send queue drains now: a writer waiting for room goes on.
            signal(&mut self.events, k, s);
            while let Some((data, dst)) = s.tx.front() {
                let src = if s.local.ip().is_unspecified() {
                    match ip.route(*dst.ip()) {
                        Ok(r) => r.source,
                        Err(e) => {
                            log::debug!("UDP to {dst}: {e}");
                            s.stats.tx_errors += 1;
                            self.stats.tx_errors += 1;
                            s.tx.pop();
                            continue;
                        }
                    }
                } else {
                    *s.local.ip()
                };
                let repr = UdpRepr {
                    src_port: s.local.port(),
                    dst_port: dst.port(),
                    payload_len: data.len(),
                };
                let mut p = ip.alloc(data.len());
                p.extend_from_slice(data);
                s.tx.pop();
                p.push_header(packet::HEADER_LEN);
                repr.emit(
                    &mut UdpPacket::new_unchecked(p.data_mut()),
                    src,
                    *dst.ip(),
                    fill,
                );
                match ip.send_on_path(now, &mut s.path, src, *dst.ip(), Protocol::Udp, p, false) {
                    Ok(()) => {
                        s.stats.tx_datagrams += 1;
                        self.stats.tx_datagrams += 1;
                    }
                    Err(e) => {
                        log::debug!("UDP datagram to {dst} not sent: {e}");
                        s.stats.tx_errors += 1;
                        self.stats.tx_errors += 1;
                    }
                }
            }
            if s.closed {
                self.sockets.remove(k);
            }
        }
    }

    /// Handles a received datagram (the IP payload). A payload that fills
    /// most of its frame is queued in the frame; a smaller one is copied
    /// into the socket's queue and the frame given back to `ip` at once.
    pub fn receive<S: IpSender>(
        &mut self,
        meta: &IpMeta,
        mut payload: PacketBuf,
        ip: &mut S,
    ) -> Disposition {
        self.stats.rx_datagrams += 1;
        let parsed = UdpPacket::new_checked(payload.data())
            .and_then(|p| UdpRepr::parse(&p, meta.src, meta.dst, !meta.checksum_verified));
        let repr = match parsed {
            Ok(r) => r,
            Err(e) => {
                log::trace!("dropping UDP datagram from {}: {e}", meta.src);
                if e == crate::error::ParseError::BadChecksum {
                    self.stats.rx_bad_checksum += 1;
                } else {
                    self.stats.rx_malformed += 1;
                }
                ip.recycle(payload);
                return Disposition::Dropped;
            }
        };
        let from = SocketAddrV4::new(meta.src, repr.src_port);
        let socket = self
            .by_port
            .get(repr.dst_port)
            .and_then(|k| Some(k).zip(self.sockets.get_mut(k)))
            .filter(|(_, s)| s.local.ip().is_unspecified() || *s.local.ip() == meta.dst)
            .filter(|(_, s)| s.remote.is_none_or(|r| r == from));
        let Some((key, s)) = socket else {
            self.stats.rx_no_socket += 1;
            return Disposition::PortUnreachable(payload);
        };
        // A frame the queue has no room for may still leave room for a
        // copy of its payload. The copy is taken from the frame as it
        // came, without moving it first: a buffer whose fields were just
        // written is slow to move (the wide loads wait for the narrow
        // stores), which cost 3% of a 64-byte datagram's path at each
        // move.
        let len = repr.payload_len;
        let queued = if fills_its_frame(len, payload.truesize()) {
            payload.pull_header(packet::HEADER_LEN);
            payload.truncate(len);
            match s.rx.push_frame(payload, from) {
                Ok(()) => true,
                Err(payload) => {
                    let queued = s.rx.push(payload.data(), from);
                    ip.recycle(payload);
                    queued
                }
            }
        } else {
            let queued =
                s.rx.push(&payload.data()[packet::HEADER_LEN..][..len], from);
            ip.recycle(payload);
            queued
        };
        if !queued {
            s.stats.rx_dropped_full += 1;
            self.stats.rx_queue_full += 1;
            return Disposition::Dropped;
        }
        s.stats.rx_datagrams += 1;
        signal(&mut self.events, key, s);
        Disposition::Delivered
    }

    /// Records an ICMP error for the socket whose datagram it quotes. The
    /// quote must match the socket: its bound address if it has one, and
    /// its peer if it is connected (a connected socket never sent to
    /// anyone else, so anything else is stale or forged; RFC 5927 §4.1).
    pub fn icmp_error(&mut self, error: &IcmpError) {
        let quoted_remote = SocketAddrV4::new(error.remote_addr, error.remote_port);
        if let Some((key, s)) = self
            .by_port
            .get(error.local_port)
            .and_then(|k| Some(k).zip(self.sockets.get_mut(k)))
            .filter(|(_, s)| s.local.ip().is_unspecified() || *s.local.ip() == error.local_addr)
            .filter(|(_, s)| s.remote.is_none_or(|r| r == quoted_remote))
        {
            s.error = Some(*error);
            signal(&mut self.events, key, s);
        }
    }
}

/// Queues a datagram of `len` bytes to `dst` in a send queue, written by
/// `fill`, or says why it cannot be sent.
fn queue(
    tx: &mut DatagramRing,
    len: usize,
    dst: SocketAddrV4,
    fill: impl FnOnce(&mut [u8]),
) -> Result<(), UdpError> {
    if dst.ip().is_unspecified() || dst.port() == 0 {
        Err(UdpError::Unaddressable(dst))
    } else if len > MAX_PAYLOAD {
        Err(UdpError::TooLarge(len))
    } else if !tx.push_with(len, dst, fill) {
        Err(UdpError::WouldBlock)
    } else {
        Ok(())
    }
}

/// Whether a payload of `len` bytes fills most of a `truesize`-byte frame,
/// so that queueing the frame costs less than copying the payload and
/// pins little memory besides.
fn fills_its_frame(len: usize, truesize: usize) -> bool {
    len.saturating_mul(2) >= truesize
}

/// The socket a handle names, unless closed (with or without datagrams
/// still leaving): a free function, so that a call may hold it beside the
/// table's other fields.
fn open_socket(sockets: &mut Slab<UdpSocket>, h: UdpHandle) -> Result<&mut UdpSocket, UdpError> {
    sockets
        .get_mut(h.0)
        .filter(|s| !s.closed)
        .ok_or(UdpError::InvalidHandle)
}

/// Puts a socket on the event list, once.
fn signal(events: &mut VecDeque<SlabKey>, key: SlabKey, s: &mut UdpSocket) {
    if !s.signalled {
        s.signalled = true;
        events.push_back(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ports::{EPHEMERAL_COUNT, EPHEMERAL_FIRST};

    const ME: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    /// A socket table of `ME` under `config`.
    fn with_config(config: UdpConfig) -> UdpSockets {
        UdpSockets::new(ME, config, KeyedRng::from_seed(1))
    }

    #[test]
    fn bind_rules() {
        let mut u = with_config(UdpConfig::default());
        let a = u.bind(SocketAddrV4::new(ME, 53)).unwrap();
        assert_eq!(
            u.bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 53)),
            Err(UdpError::AddrInUse(53))
        );
        assert_eq!(
            u.bind(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 54)),
            Err(UdpError::AddrNotAvailable(Ipv4Addr::new(10, 0, 0, 1)))
        );
        let e = u.bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let port = u.local_addr(e).unwrap().port();
        assert!(port >= EPHEMERAL_FIRST);
        u.close(a).unwrap();
        assert!(u.bind(SocketAddrV4::new(ME, 53)).is_ok());
    }

    #[test]
    fn ephemeral_ports_exhaust_cleanly() {
        let mut u = UdpSockets::new(ME, UdpConfig::default(), KeyedRng::from_seed(9));
        for _ in 0..EPHEMERAL_COUNT {
            u.bind(SocketAddrV4::new(ME, 0)).unwrap();
        }
        assert_eq!(
            u.bind(SocketAddrV4::new(ME, 0)),
            Err(UdpError::NoEphemeralPort)
        );
    }

    #[test]
    fn send_errors_are_typed() {
        let mut u = with_config(UdpConfig {
            tx_datagrams: 1,
            ..UdpConfig::default()
        });
        let h = u.bind(SocketAddrV4::new(ME, 1000)).unwrap();
        let dst = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 7);
        assert_eq!(u.send(h, b"x"), Err(UdpError::NotConnected));
        assert!(matches!(
            u.send_to(h, b"x", SocketAddrV4::new(ME, 0)),
            Err(UdpError::Unaddressable(_))
        ));
        assert_eq!(
            u.send_to(h, &vec![0; MAX_PAYLOAD + 1], dst),
            Err(UdpError::TooLarge(MAX_PAYLOAD + 1))
        );
        u.send_to(h, b"x", dst).unwrap();
        assert_eq!(u.send_to(h, b"y", dst), Err(UdpError::WouldBlock));
        assert_eq!(
            u.send_with(h, 1, dst, |_| unreachable!("no room")),
            Err(UdpError::WouldBlock)
        );
        assert_eq!(u.recv_from(h, &mut [0; 8]), Err(UdpError::WouldBlock));
    }

    #[test]
    fn the_send_queue_is_bounded_in_bytes_but_always_takes_one_largest_datagram() {
        let mut u = with_config(UdpConfig {
            tx_bytes: 100,
            ..UdpConfig::default()
        });
        let h = u.bind(SocketAddrV4::new(ME, 1000)).unwrap();
        let dst = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 7);
        assert!(u.can_send(h, MAX_PAYLOAD));
        assert!(!u.can_send(h, MAX_PAYLOAD + 1));
        u.send_with(h, MAX_PAYLOAD, dst, |b| b.fill(1)).unwrap();
        assert!(!u.can_send(h, 1));
        assert_eq!(u.send_to(h, b"x", dst), Err(UdpError::WouldBlock));
    }

    #[test]
    fn a_batch_queues_until_a_datagram_cannot_be_and_reports_that_one_first() {
        let mut u = with_config(UdpConfig {
            tx_datagrams: 3,
            ..UdpConfig::default()
        });
        let h = u.bind(SocketAddrV4::new(ME, 1000)).unwrap();
        let dst = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 7);
        let nowhere = SocketAddrV4::new(ME, 0);
        let a: &[u8] = b"a";
        // The second cannot go: one queued, and the next call says why.
        assert_eq!(u.send_batch(h, [(a, dst), (a, nowhere), (a, dst)]), Ok(1));
        assert!(matches!(
            u.send_batch(h, [(a, nowhere), (a, dst)]),
            Err(UdpError::Unaddressable(_))
        ));
        // A full queue ends a batch the same way.
        assert_eq!(u.send_batch(h, [(a, dst); 5]), Ok(2));
        assert_eq!(u.send_batch(h, [(a, dst)]), Err(UdpError::WouldBlock));
        assert_eq!(u.send_batch(h, []), Ok(0));
        assert!(!u.can_send(h, 0), "three queued: the queue is full");
        assert_eq!(u.tx_ready.len(), 1, "queued for transmission once");
    }

    #[test]
    fn a_batch_receive_takes_what_waits_in_order() {
        let mut u = with_config(UdpConfig::default());
        let h = u.bind(SocketAddrV4::new(ME, 1000)).unwrap();
        let from = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 7);
        let mut out = Vec::new();
        let mut take = |d: &[u8], a| out.push((d.to_vec(), a));
        assert_eq!(u.recv_batch(h, 8, &mut take), Err(UdpError::WouldBlock));
        assert_eq!(u.recv_batch(h, 0, &mut take), Ok(0));
        let s = u.socket_mut(h).unwrap();
        for d in [&b"one"[..], b"two", b"three", b"four"] {
            assert!(s.rx.push(d, from));
        }
        assert_eq!(u.recv_batch(h, 2, &mut take), Ok(2));
        assert_eq!(u.recv_batch(h, 1, &mut take), Ok(1));
        let got: Vec<&[u8]> = out.iter().map(|(d, _)| &d[..]).collect();
        assert_eq!(got, [&b"one"[..], b"two", b"three"]);
        assert!(out.iter().all(|&(_, a)| a == from));
        // Copied out, a datagram longer than the buffer is cut, as in std.
        let mut buf = [0; 2];
        assert_eq!(u.recv_from(h, &mut buf), Ok((2, from)));
        assert_eq!(&buf, b"fo");
        assert!(!u.can_recv(h));
    }

    #[test]
    fn read_frames_kept_for_the_pool_are_bounded_in_number_and_memory() {
        let mut spent = Spent::default();
        let frame = |n| PacketBuf::with_headroom(0, n);
        for _ in 0..SPENT_FRAMES + 10 {
            spent.keep(frame(64));
        }
        assert_eq!(spent.frames.len(), SPENT_FRAMES);
        let mut spent = Spent::default();
        for _ in 0..40 {
            spent.keep(frame(65_536));
        }
        assert!(spent.bytes <= SPENT_BYTES && spent.frames.len() < 40);
        assert_eq!(
            spent.bytes,
            spent.frames.iter().map(PacketBuf::truesize).sum::<usize>()
        );
    }

    #[test]
    fn a_stale_handle_is_refused_not_taken_for_the_socket_in_its_slot() {
        let mut u = with_config(UdpConfig::default());
        let old = u.bind(SocketAddrV4::new(ME, 1000)).unwrap();
        u.close(old).unwrap();
        let new = u.bind(SocketAddrV4::new(ME, 2000)).unwrap();
        let dst = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 7);
        assert_eq!(u.send_to(old, b"x", dst), Err(UdpError::InvalidHandle));
        assert_eq!(u.recv_from(old, &mut [0; 8]), Err(UdpError::InvalidHandle));
        assert_eq!(u.recv_with(old, |_, _| ()), Err(UdpError::InvalidHandle));
        assert_eq!(
            u.send_with(old, 1, dst, |_| ()),
            Err(UdpError::InvalidHandle)
        );
        assert_eq!(u.local_addr(old), Err(UdpError::InvalidHandle));
        assert!(!u.can_send(old, 1));
        assert_eq!(u.close(old), Err(UdpError::InvalidHandle));
        assert_eq!(u.local_addr(new).map(|a| a.port()), Ok(2000));
        assert!(u.send_to(new, b"x", dst).is_ok());
    }

    #[test]
    fn icmp_errors_must_match_a_connected_peer() {
        use crate::internet::IcmpErrorKind;
        use crate::internet::icmpv4::DstUnreachable;
        let mut u = with_config(UdpConfig::default());
        let h = u.bind(SocketAddrV4::new(ME, 4000)).unwrap();
        let peer = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 53);
        u.connect(h, peer).unwrap();
        let error = |remote: SocketAddrV4| IcmpError {
            reporter: *remote.ip(),
            kind: IcmpErrorKind::Unreachable(DstUnreachable::PortUnreachable),
            protocol: Protocol::Udp,
            local_addr: ME,
            local_port: 4000,
            remote_addr: *remote.ip(),
            remote_port: remote.port(),
            transport_header: [0; 8],
        };
        u.icmp_error(&error(SocketAddrV4::new(
            Ipv4Addr::new(198, 51, 100, 9),
            53,
        )));
        u.icmp_error(&error(SocketAddrV4::new(*peer.ip(), 54)));
        assert_eq!(u.take_error(h), Ok(None));
        u.icmp_error(&error(peer));
        assert_eq!(u.take_error(h), Ok(Some(error(peer))));
    }
}
