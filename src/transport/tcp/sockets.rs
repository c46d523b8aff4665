//! TCP sockets of an interface: listeners, connections, demultiplexing and
//! timers.
//!
//! [`TcpSockets`] owns every connection in a slab and finds the one a
//! segment belongs to by its 4-tuple in a hash map: demultiplexing is O(1)
//! whatever the number of connections. Listeners are found by port.
//!
//! A listener keeps a bounded backlog: at most `backlog` connections may be
//! half-open (SYN-RECEIVED) at once, and at most `backlog` established
//! connections may wait for `accept`. A SYN beyond that is dropped and
//! counted (a SYN flood fills the backlog, and established connections are
//! unaffected).
//!
//! Timers cost nothing for idle connections: each connection's next
//! deadline sits in a binary heap, pushed only when it moves earlier
//! (deadlines that move later — the retransmission timer on every ACK —
//! are found stale when they pop and re-queued once). Connections with
//! something to send go on a ready list, so a poll touches only
//! connections with work.
//!
//! Segments for no connection and no listener are answered with RST
//! (RFC 9293 §3.10.7.1). Initial sequence numbers follow RFC 6528 and
//! ephemeral ports are random (RFC 6056 §3.3.1).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::Bytes;

use crate::buf::PacketBuf;
use crate::error::ParseError;
use crate::internet::{Disposition, IcmpError, IpMeta, IpSender, Protocol};
use crate::rand::KeyedRng;
use crate::time::{Duration, Instant};
use crate::transport::ports::EphemeralPorts;
use crate::transport::tcp::connection::{
    Connection, Handled, Outgoing, State, TcpConfig, TcpError, TcpInfo, TcpSocketError,
};
use crate::transport::tcp::isn::IsnGenerator;
use crate::transport::tcp::segment::{TcpFlags, TcpPacket, TcpRepr};
use crate::transport::tcp::seq::SeqNumber;

/// A TCP connection of an interface. Stale handles (of a connection that
/// was closed and whose slot was reused) are detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TcpHandle {
    index: u32,
    generation: u32,
}

/// A listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerHandle(usize);

/// Why a listen or connect could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TcpBindError {
    /// Another listener has the port.
    #[error("address in use: port {0} already has a listener")]
    AddrInUse(u16),
    /// The address is not this interface's.
    #[error("cannot bind to {0}: not an address of this interface")]
    AddrNotAvailable(Ipv4Addr),
    /// The destination is unspecified or port 0.
    #[error("cannot connect to {0}: address or port is zero")]
    Unaddressable(SocketAddrV4),
    /// No free ephemeral port for this destination.
    #[error("no free ephemeral port")]
    NoEphemeralPort,
    /// The 4-tuple is in use.
    #[error("connection {0} -> {1} already exists")]
    InUse(SocketAddrV4, SocketAddrV4),
}

/// Why `accept` returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// Not a listener of this interface.
    #[error("no such listener")]
    InvalidHandle,
    /// No established connection is waiting.
    #[error("no connection waiting")]
    WouldBlock,
}

/// Why a call on a connection handle failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TcpCallError {
    /// The handle does not name a live connection (closed and released).
    #[error("no such TCP connection")]
    InvalidHandle,
    /// The connection refused the call.
    #[error(transparent)]
    Socket(#[from] TcpSocketError),
}

/// Counters of the TCP layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpLayerStats {
    /// Segments received.
    pub rx_segments: u64,
    /// Dropped: bad checksum.
    pub rx_bad_checksum: u64,
    /// Dropped: malformed header or options.
    pub rx_malformed: u64,
    /// Segments for no connection or listener (answered with RST).
    pub rx_no_socket: u64,
    /// RSTs sent for segments that had no connection, or were invalid.
    pub rst_sent: u64,
    /// SYNs dropped because a listener's backlog was full.
    pub syn_backlog_drops: u64,
    /// Segments sent.
    pub tx_segments: u64,
    /// Segments that could not be sent (no route, link refused).
    pub tx_errors: u64,
    /// Connections that reached ESTABLISHED.
    pub established: u64,
    /// Connections that ended with an error.
    pub failed: u64,
    /// Connections reset because data arrived after the application had
    /// closed them (Linux's `TCPAbortOnData`).
    pub aborts_on_data: u64,
}

#[derive(Debug)]
struct Listener {
    local: SocketAddrV4,
    backlog: usize,
    half_open: usize,
    accept_queue: VecDeque<TcpHandle>,
    config: TcpConfig,
}

#[derive(Debug)]
struct Entry {
    conn: Connection,
    /// The listener that spawned it, while it is not yet accepted.
    listener: Option<usize>,
    /// Counted in the listener's half-open total.
    half_open: bool,
    /// The user released the handle: free the slot when finished.
    orphan: bool,
    /// On the ready list.
    ready: bool,
    /// The deadline of this connection's entry in the timer heap.
    scheduled: Option<Instant>,
    /// Consecutive services that sent nothing although the connection was
    /// due (a livelock guard).
    idle_services: u8,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

type FourTuple = (SocketAddrV4, SocketAddrV4);

/// Segments one connection may send per dispatch before yielding to
/// others (it stays on the ready list).
const SEND_BURST: usize = 256;

/// All TCP sockets of an interface.
#[derive(Debug)]
pub struct TcpSockets {
    local_addr: Ipv4Addr,
    mtu: usize,
    slots: Vec<Slot>,
    free: Vec<u32>,
    demux: HashMap<FourTuple, u32>,
    listeners: Vec<Option<Listener>>,
    by_port: HashMap<u16, usize>,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    ready: VecDeque<u32>,
    isn: IsnGenerator,
    ports: EphemeralPorts,
    default_config: TcpConfig,
    stats: TcpLayerStats,
    live: usize,
}

impl TcpSockets {
    /// No sockets. `local_addr` is the interface address, `mtu` the link's;
    /// `rng` keys the ISN generator and the ephemeral port selection.
    pub fn new(
        local_addr: Ipv4Addr,
        mtu: usize,
        config: TcpConfig,
        mut rng: KeyedRng,
    ) -> TcpSockets {
        let key = rng.next_key();
        TcpSockets {
            local_addr,
            mtu,
            slots: Vec::new(),
            free: Vec::new(),
            demux: HashMap::new(),
            listeners: Vec::new(),
            by_port: HashMap::new(),
            timers: BinaryHeap::new(),
            ready: VecDeque::new(),
            isn: IsnGenerator::new(key),
            ports: EphemeralPorts::new(rng),
            default_config: config,
            stats: TcpLayerStats::default(),
            live: 0,
        }
    }

    /// Layer counters.
    pub fn stats(&self) -> TcpLayerStats {
        self.stats
    }

    /// The options new sockets get.
    pub fn default_config(&self) -> &TcpConfig {
        &self.default_config
    }

    /// Number of connections in any state (TIME-WAIT included).
    pub fn connection_count(&self) -> usize {
        self.live
    }

    /// Entries in the timer heap (for tests of the timer structure).
    pub fn timer_heap_len(&self) -> usize {
        self.timers.len()
    }

    // ------------------------------------------------------------------
    // Listeners.

    /// Listens on `addr` (address 0.0.0.0 or the interface's) with a
    /// backlog of `backlog` half-open and as many unaccepted connections.
    pub fn listen(
        &mut self,
        addr: SocketAddrV4,
        backlog: usize,
    ) -> Result<ListenerHandle, TcpBindError> {
        self.listen_with(addr, backlog, self.default_config.clone())
    }

    /// As [`TcpSockets::listen`], with options for accepted connections.
    pub fn listen_with(
        &mut self,
        addr: SocketAddrV4,
        backlog: usize,
        config: TcpConfig,
    ) -> Result<ListenerHandle, TcpBindError> {
        if !addr.ip().is_unspecified() && *addr.ip() != self.local_addr {
            return Err(TcpBindError::AddrNotAvailable(*addr.ip()));
        }
        let port = match addr.port() {
            0 => self.ephemeral_port(None)?,
            p if self.by_port.contains_key(&p) => return Err(TcpBindError::AddrInUse(p)),
            p => p,
        };
        let l = Listener {
            local: SocketAddrV4::new(*addr.ip(), port),
            backlog: backlog.max(1),
            half_open: 0,
            accept_queue: VecDeque::new(),
            config,
        };
        let i = match self.listeners.iter().position(Option::is_none) {
            Some(i) => {
                self.listeners[i] = Some(l);
                i
            }
            None => {
                self.listeners.push(Some(l));
                self.listeners.len() - 1
            }
        };
        self.by_port.insert(port, i);
        Ok(ListenerHandle(i))
    }

    /// The address a listener is bound to.
    pub fn listener_addr(&self, l: ListenerHandle) -> Option<SocketAddrV4> {
        self.listeners.get(l.0)?.as_ref().map(|l| l.local)
    }

    /// Takes the next established connection of a listener.
    pub fn accept(&mut self, l: ListenerHandle) -> Result<TcpHandle, AcceptError> {
        let listener = self
            .listeners
            .get_mut(l.0)
            .and_then(Option::as_mut)
            .ok_or(AcceptError::InvalidHandle)?;
        while let Some(h) = listener.accept_queue.pop_front() {
            if let Some(e) = self.slots.get_mut(h.index as usize).and_then(|s| {
                (s.generation == h.generation)
                    .then_some(())
                    .and(s.entry.as_mut())
            }) {
                e.listener = None;
                return Ok(h);
            }
        }
        Err(AcceptError::WouldBlock)
    }

    /// Whether a connection waits to be accepted.
    pub fn can_accept(&self, l: ListenerHandle) -> bool {
        self.listeners
            .get(l.0)
            .and_then(Option::as_ref)
            .is_some_and(|l| !l.accept_queue.is_empty())
    }

    /// Stops listening. Connections waiting in the accept queue are reset;
    /// half-open ones are dropped.
    pub fn close_listener(&mut self, l: ListenerHandle) {
        let Some(listener) = self.listeners.get_mut(l.0).and_then(Option::take) else {
            return;
        };
        self.by_port.remove(&listener.local.port());
        for h in listener.accept_queue {
            let _ = self.abort(h);
        }
        // Half-open connections of this listener become orphans.
        for i in 0..self.slots.len() {
            if let Some(e) = self.slots[i].entry.as_mut()
                && e.listener == Some(l.0)
            {
                e.listener = None;
                e.conn.abort();
                e.orphan = true;
                self.mark_ready(i as u32);
            }
        }
    }

    // ------------------------------------------------------------------
    // Connections.

    /// A free port for a listener (`remote` is `None`, RFC 6056's
    /// algorithm 1) or a connection to `remote` (algorithm 4): see
    /// [`crate::transport::ports`].
    fn ephemeral_port(&mut self, remote: Option<SocketAddrV4>) -> Result<u16, TcpBindError> {
        let (local_addr, by_port, demux) = (self.local_addr, &self.by_port, &self.demux);
        let free = |port: u16| {
            !by_port.contains_key(&port)
                && remote
                    .is_none_or(|r| !demux.contains_key(&(SocketAddrV4::new(local_addr, port), r)))
        };
        match remote {
            Some(r) => self.ports.for_connection(local_addr, r, free),
            None => self.ports.random(|&p| free(p)),
        }
        .ok_or(TcpBindError::NoEphemeralPort)
    }

    /// Opens a connection to `remote` from an ephemeral port; the SYN goes
    /// out at the next poll.
    pub fn connect(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
    ) -> Result<TcpHandle, TcpBindError> {
        self.connect_with(now, remote, None, self.default_config.clone())
    }

    /// As [`TcpSockets::connect`], from `local_port` (0 for ephemeral) with
    /// the given options.
    pub fn connect_with(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        local_port: Option<u16>,
        config: TcpConfig,
    ) -> Result<TcpHandle, TcpBindError> {
        if remote.ip().is_unspecified() || remote.port() == 0 || remote.ip().is_broadcast() {
            return Err(TcpBindError::Unaddressable(remote));
        }
        let port = match local_port {
            None | Some(0) => self.ephemeral_port(Some(remote))?,
            Some(p) => p,
        };
        let local = SocketAddrV4::new(self.local_addr, port);
        if self.demux.contains_key(&(local, remote)) {
            return Err(TcpBindError::InUse(local, remote));
        }
        let isn = self.isn.isn(now, local, remote);
        let ts = self.isn.ts_offset(local, remote);
        let conn = Connection::connect(now, config, local, remote, isn, self.mtu, ts);
        let h = self.insert(conn, None);
        self.mark_ready(h.index);
        Ok(h)
    }

    fn insert(&mut self, conn: Connection, listener: Option<usize>) -> TcpHandle {
        let tuple = (conn.local(), conn.remote());
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.entry = Some(Entry {
            conn,
            listener,
            half_open: listener.is_some(),
            orphan: false,
            ready: false,
            scheduled: None,
            idle_services: 0,
        });
        self.demux.insert(tuple, index);
        self.live += 1;
        TcpHandle {
            index,
            generation: slot.generation,
        }
    }

    fn remove(&mut self, index: u32) {
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        let Some(e) = slot.entry.take() else { return };
        self.demux.remove(&(e.conn.local(), e.conn.remote()));
        self.stats.aborts_on_data += e.conn.info().stats.aborts_on_data;
        if e.half_open
            && let Some(l) = e
                .listener
                .and_then(|l| self.listeners.get_mut(l))
                .and_then(Option::as_mut)
        {
            l.half_open = l.half_open.saturating_sub(1);
        }
        self.free.push(index);
        self.live -= 1;
    }

    fn entry(&self, h: TcpHandle) -> Result<&Entry, TcpCallError> {
        self.slots
            .get(h.index as usize)
            .filter(|s| s.generation == h.generation)
            .and_then(|s| s.entry.as_ref())
            .filter(|e| !e.orphan)
            .ok_or(TcpCallError::InvalidHandle)
    }

    fn entry_mut(&mut self, h: TcpHandle) -> Result<&mut Entry, TcpCallError> {
        self.slots
            .get_mut(h.index as usize)
            .filter(|s| s.generation == h.generation)
            .and_then(|s| s.entry.as_mut())
            .filter(|e| !e.orphan)
            .ok_or(TcpCallError::InvalidHandle)
    }

    /// The connection behind a handle.
    pub fn connection(&self, h: TcpHandle) -> Result<&Connection, TcpCallError> {
        self.entry(h).map(|e| &e.conn)
    }

    fn mark_ready(&mut self, index: u32) {
        if let Some(e) = self
            .slots
            .get_mut(index as usize)
            .and_then(|s| s.entry.as_mut())
            && !e.ready
        {
            e.ready = true;
            self.ready.push_back(index);
        }
    }

    fn user_call<T>(
        &mut self,
        h: TcpHandle,
        f: impl FnOnce(&mut Connection) -> Result<T, TcpSocketError>,
    ) -> Result<T, TcpCallError> {
        let e = self.entry_mut(h)?;
        let r = f(&mut e.conn);
        self.mark_ready(h.index);
        Ok(r?)
    }

    /// Queues data; returns how much fitted in the send buffer.
    pub fn send(&mut self, h: TcpHandle, data: &[u8]) -> Result<usize, TcpCallError> {
        self.user_call(h, |c| c.send(data))
    }

    /// Reads received data; `Ok(0)` at end of stream or when nothing is
    /// there yet (see [`TcpSockets::recv_eof`], [`TcpSockets::can_recv`]).
    pub fn recv(&mut self, h: TcpHandle, buf: &mut [u8]) -> Result<usize, TcpCallError> {
        self.user_call(h, |c| c.recv(buf))
    }

    /// Reads the next chunk of received data without copying.
    pub fn recv_bytes(&mut self, h: TcpHandle, max: usize) -> Result<Option<Bytes>, TcpCallError> {
        self.user_call(h, |c| c.recv_bytes(max))
    }

    /// Whether data waits to be read.
    pub fn can_recv(&self, h: TcpHandle) -> bool {
        self.entry(h).is_ok_and(|e| e.conn.can_recv())
    }

    /// Bytes received and waiting to be read.
    pub fn recv_queue(&self, h: TcpHandle) -> usize {
        self.entry(h).map_or(0, |e| e.conn.recv_queue())
    }

    /// Whether the peer closed and all data was read.
    pub fn recv_eof(&self, h: TcpHandle) -> bool {
        self.entry(h).is_ok_and(|e| e.conn.recv_eof())
    }

    /// Free space in the send buffer.
    pub fn send_capacity(&self, h: TcpHandle) -> usize {
        self.entry(h).map_or(0, |e| e.conn.send_capacity())
    }

    /// Bytes sent but not yet acknowledged, plus bytes not yet sent.
    pub fn send_queue(&self, h: TcpHandle) -> usize {
        self.entry(h).map_or(0, |e| e.conn.send_queue())
    }

    /// Shuts down the write side (a FIN follows the data).
    pub fn shutdown(&mut self, now: Instant, h: TcpHandle) -> Result<(), TcpCallError> {
        self.user_call(h, |c| {
            c.shutdown_write(now);
            Ok(())
        })
    }

    /// Closes the connection and releases the handle; the stack finishes
    /// the close (FIN, TIME-WAIT) on its own.
    pub fn close(&mut self, now: Instant, h: TcpHandle) -> Result<(), TcpCallError> {
        let e = self.entry_mut(h)?;
        e.conn.close(now);
        e.orphan = true;
        self.mark_ready(h.index);
        Ok(())
    }

    /// Aborts with RST and releases the handle.
    pub fn abort(&mut self, h: TcpHandle) -> Result<(), TcpCallError> {
        let e = self.entry_mut(h)?;
        e.conn.abort();
        e.orphan = true;
        self.mark_ready(h.index);
        Ok(())
    }

    /// The connection's state.
    pub fn state(&self, h: TcpHandle) -> Result<State, TcpCallError> {
        self.entry(h).map(|e| e.conn.state())
    }

    /// The error that ended the connection, if any.
    pub fn error(&self, h: TcpHandle) -> Result<Option<TcpError>, TcpCallError> {
        self.entry(h).map(|e| e.conn.error())
    }

    /// Statistics and estimates of a connection.
    pub fn info(&self, h: TcpHandle) -> Result<TcpInfo, TcpCallError> {
        self.entry(h).map(|e| e.conn.info())
    }

    /// The local address of a connection.
    pub fn local_addr(&self, h: TcpHandle) -> Result<SocketAddrV4, TcpCallError> {
        self.entry(h).map(|e| e.conn.local())
    }

    /// The peer address of a connection.
    pub fn peer_addr(&self, h: TcpHandle) -> Result<SocketAddrV4, TcpCallError> {
        self.entry(h).map(|e| e.conn.remote())
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    pub fn set_nodelay(&mut self, h: TcpHandle, nodelay: bool) -> Result<(), TcpCallError> {
        self.user_call(h, |c| {
            c.set_nodelay(nodelay);
            Ok(())
        })
    }

    /// Sets keep-alive (`None`: off).
    pub fn set_keepalive(
        &mut self,
        now: Instant,
        h: TcpHandle,
        idle: Option<Duration>,
    ) -> Result<(), TcpCallError> {
        self.user_call(h, |c| {
            c.set_keepalive(now, idle);
            Ok(())
        })
    }

    // ------------------------------------------------------------------
    // Segments in.

    /// Handles a received segment (the IP payload).
    pub fn receive<S: IpSender>(
        &mut self,
        now: Instant,
        meta: &IpMeta,
        mut payload: PacketBuf,
        ip: &mut S,
    ) -> Disposition {
        self.stats.rx_segments += 1;
        let parsed = TcpPacket::new_checked(payload.data()).and_then(|p| {
            TcpRepr::parse(&p, meta.src, meta.dst, !meta.checksum_verified)
                .map(|r| (r, p.header_len()))
        });
        let (repr, header_len) = match parsed {
            Ok(r) => r,
            Err(e) => {
                log::trace!("dropping TCP segment from {}: {e}", meta.src);
                if e == ParseError::BadChecksum {
                    self.stats.rx_bad_checksum += 1;
                } else {
                    self.stats.rx_malformed += 1;
                }
                return Disposition::Dropped;
            }
        };
        if meta.broadcast || meta.dst != self.local_addr {
            // TCP is unicast only (RFC 1122 §4.2.3.10).
            self.stats.rx_malformed += 1;
            return Disposition::Dropped;
        }
        let local = SocketAddrV4::new(meta.dst, repr.dst_port);
        let remote = SocketAddrV4::new(meta.src, repr.src_port);
        payload.pull_header(header_len);
        payload.truncate(repr.payload_len);
        let data = if repr.payload_len > 0 {
            payload.freeze()
        } else {
            // A pure ACK: its buffer goes back to the pool, to carry one
            // of our segments next.
            ip.recycle(payload);
            Bytes::new()
        };

        if let Some(&index) = self.demux.get(&(local, remote)) {
            self.deliver(now, index, &repr, data, ip);
            return Disposition::Delivered;
        }
        if let Some(&li) = self.by_port.get(&repr.dst_port) {
            self.syn_to_listener(now, li, local, remote, &repr, ip);
            return Disposition::Delivered;
        }
        self.stats.rx_no_socket += 1;
        self.reset_for(now, &repr, local, remote, ip);
        Disposition::Delivered
    }

    fn deliver<S: IpSender>(
        &mut self,
        now: Instant,
        index: u32,
        repr: &TcpRepr,
        data: Bytes,
        ip: &mut S,
    ) {
        let Some(e) = self.slots[index as usize].entry.as_mut() else {
            return;
        };
        let was = e.conn.state();
        let handled = e.conn.handle_segment(now, repr, data);
        let state = e.conn.state();
        let (local, remote) = (e.conn.local(), e.conn.remote());
        if was == State::SynReceived && state != State::SynReceived && e.half_open {
            e.half_open = false;
            if let Some(l) = e
                .listener
                .and_then(|l| self.listeners.get_mut(l))
                .and_then(Option::as_mut)
            {
                l.half_open = l.half_open.saturating_sub(1);
            }
        }
        if state.is_synchronized() && !was.is_synchronized() {
            self.stats.established += 1;
            let generation = self.slots[index as usize].generation;
            let e = self.slots[index as usize].entry.as_mut();
            if let Some(e) = e
                && let Some(li) = e.listener
                && let Some(l) = self.listeners.get_mut(li).and_then(Option::as_mut)
            {
                if l.accept_queue.len() < l.backlog {
                    l.accept_queue.push_back(TcpHandle { index, generation });
                } else {
                    // Accept queue overflow: reset it, like Linux with
                    // tcp_abort_on_overflow, rather than leave the peer
                    // believing it is accepted.
                    self.stats.syn_backlog_drops += 1;
                    e.conn.abort();
                    e.orphan = true;
                }
            }
        }
        if let Handled::Reset { seq } = handled {
            self.send_rst(now, local, remote, seq, None, ip);
        }
        if handled == Handled::Closed {
            self.stats.failed += u64::from(
                self.slots[index as usize]
                    .entry
                    .as_ref()
                    .is_some_and(|e| e.conn.error().is_some()),
            );
            // A half-open connection reset by its peer just goes away.
            if let Some(e) = self.slots[index as usize].entry.as_mut()
                && e.listener.is_some()
            {
                e.orphan = true;
            }
        }
        self.mark_ready(index);
    }

    fn syn_to_listener<S: IpSender>(
        &mut self,
        now: Instant,
        li: usize,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        repr: &TcpRepr,
        ip: &mut S,
    ) {
        let Some(l) = self.listeners.get_mut(li).and_then(Option::as_mut) else {
            return;
        };
        if !l.local.ip().is_unspecified() && *l.local.ip() != *local.ip() {
            self.stats.rx_no_socket += 1;
            self.reset_for(now, repr, local, remote, ip);
            return;
        }
        // RFC 9293 §3.10.7.2: RST ignored, ACK answered with RST, SYN
        // starts a connection.
        if repr.flags.contains(TcpFlags::RST) {
            return;
        }
        if repr.ack_number.is_some() {
            self.reset_for(now, repr, local, remote, ip);
            return;
        }
        if !repr.flags.contains(TcpFlags::SYN) || repr.flags.contains(TcpFlags::FIN) {
            return;
        }
        if l.half_open >= l.backlog || l.accept_queue.len() >= l.backlog {
            self.stats.syn_backlog_drops += 1;
            log::debug!(
                "listener {}: backlog full, dropping SYN from {remote}",
                l.local
            );
            return;
        }
        l.half_open += 1;
        let config = l.config.clone();
        let isn = self.isn.isn(now, local, remote);
        let ts = self.isn.ts_offset(local, remote);
        let conn = Connection::accept(now, config, local, remote, isn, self.mtu, ts, repr);
        let h = self.insert(conn, Some(li));
        self.mark_ready(h.index);
    }

    /// Answers a segment that has no connection with RST (RFC 9293
    /// §3.10.7.1).
    fn reset_for<S: IpSender>(
        &mut self,
        now: Instant,
        repr: &TcpRepr,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        ip: &mut S,
    ) {
        if repr.flags.contains(TcpFlags::RST) {
            return;
        }
        match repr.ack_number {
            Some(ack) => self.send_rst(now, local, remote, ack, None, ip),
            None => {
                let ack = repr.seq_number + repr.segment_len();
                self.send_rst(now, local, remote, SeqNumber(0), Some(ack), ip);
            }
        }
    }

    fn send_rst<S: IpSender>(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seq: SeqNumber,
        ack: Option<SeqNumber>,
        ip: &mut S,
    ) {
        let repr = TcpRepr {
            src_port: local.port(),
            dst_port: remote.port(),
            seq_number: seq,
            ack_number: ack,
            flags: TcpFlags::RST,
            ..TcpRepr::default()
        };
        self.stats.rst_sent += 1;
        emit_segment(now, local, remote, &repr, None, ip, &mut self.stats);
    }

    /// An ICMP error about one of our segments. Only errors quoting a
    /// sequence number we have outstanding are believed (RFC 5927 §4.1);
    /// see [`Connection::on_icmp_error`] for what each does.
    pub fn icmp_error(&mut self, now: Instant, error: &IcmpError) {
        let local = SocketAddrV4::new(error.local_addr, error.local_port);
        let remote = SocketAddrV4::new(error.remote_addr, error.remote_port);
        let Some(&index) = self.demux.get(&(local, remote)) else {
            return;
        };
        let h = &error.transport_header;
        let seq = SeqNumber(u32::from_be_bytes([h[4], h[5], h[6], h[7]]));
        if let Some(e) = self.slots[index as usize].entry.as_mut() {
            e.conn.on_icmp_error(now, error.kind, seq);
            self.mark_ready(index);
        }
    }

    // ------------------------------------------------------------------
    // Timers and output.

    /// Whether any connection has something to send now.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The earliest timer deadline, `now` if a connection is ready.
    pub fn poll_at(&self, now: Instant) -> Option<Instant> {
        if !self.ready.is_empty() {
            return Some(now);
        }
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Runs expired timers and sends what every ready connection has.
    pub fn dispatch<S: IpSender>(&mut self, now: Instant, ip: &mut S) {
        while let Some(&Reverse((t, index, generation))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(slot) = self.slots.get_mut(index as usize) else {
                continue;
            };
            if slot.generation != generation {
                continue;
            }
            let Some(e) = slot.entry.as_mut() else {
                continue;
            };
            if e.scheduled != Some(t) {
                continue;
            }
            e.scheduled = None;
            e.conn.on_timer(now);
            self.mark_ready(index);
        }
        let mut rounds = self.ready.len();
        while rounds > 0 {
            rounds -= 1;
            let Some(index) = self.ready.pop_front() else {
                break;
            };
            self.service(now, index, ip);
        }
    }

    fn service<S: IpSender>(&mut self, now: Instant, index: u32, ip: &mut S) {
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        let generation = slot.generation;
        let Some(e) = slot.entry.as_mut() else { return };
        e.ready = false;
        let mut sent = 0;
        while sent < SEND_BURST {
            let Some(e) = self.slots[index as usize].entry.as_mut() else {
                return;
            };
            let Some(Outgoing {
                repr,
                payload_offset,
            }) = e.conn.poll_transmit(now)
            else {
                break;
            };
            sent += 1;
            let Some(conn) = self.slots[index as usize].entry.as_ref().map(|e| &e.conn) else {
                break;
            };
            let (local, remote) = (conn.local(), conn.remote());
            let payload = Some((conn, payload_offset));
            emit_segment(now, local, remote, &repr, payload, ip, &mut self.stats);
        }
        let Some(e) = self.slots[index as usize].entry.as_mut() else {
            return;
        };
        if e.conn.is_finished() && (e.orphan || e.conn.error().is_some() && e.listener.is_some()) {
            self.remove(index);
            return;
        }
        let mut due = e.conn.poll_at(now);
        if sent > 0 {
            e.idle_services = 0;
        } else if due.is_some_and(|t| t <= now) {
            // Due, yet nothing was sent: a timer has expired. Run it (the
            // next round sends what it produces). A connection that still
            // claims to be due after that is not allowed to spin the
            // caller: it is looked at again in a millisecond.
            e.conn.on_timer(now);
            due = e.conn.poll_at(now);
            e.idle_services = e.idle_services.saturating_add(1);
            if e.idle_services > 2 && due.is_some_and(|t| t <= now) {
                log::debug!(
                    "{} -> {}: due with nothing to send",
                    e.conn.local(),
                    e.conn.remote()
                );
                due = Some(now + Duration::from_millis(1));
            }
        }
        match due {
            Some(t) if t <= now && !e.ready => {
                e.ready = true;
                self.ready.push_back(index);
            }
            Some(t) if t > now && e.scheduled.is_none_or(|s| t < s) => {
                e.scheduled = Some(t);
                self.timers.push(Reverse((t, index, generation)));
            }
            _ => {}
        }
        // A deadline that moved later than the scheduled one is found when
        // the stale entry pops: re-queue it then.
        if let Some(e) = self.slots[index as usize].entry.as_mut()
            && e.scheduled.is_none()
            && let Some(t) = e.conn.poll_at(now).filter(|t| *t > now)
        {
            e.scheduled = Some(t);
            self.timers.push(Reverse((t, index, generation)));
        }
    }
}

/// Builds a segment (payload copied from the connection's send buffer into
/// a buffer with headroom, header pushed in front) and sends it.
fn emit_segment<S: IpSender>(
    now: Instant,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    repr: &TcpRepr,
    payload: Option<(&Connection, usize)>,
    ip: &mut S,
    stats: &mut TcpLayerStats,
) {
    let len = repr.payload_len;
    let hlen = repr.header_len();
    let mut p = ip.alloc(len);
    if let Some((conn, offset)) = payload.filter(|_| len > 0) {
        let dst = p.append_zeroed(len);
        conn.copy_payload(offset, dst);
    }
    let fill = !ip.checksum_offload().tx;
    p.push_header(hlen);
    repr.emit(
        &mut TcpPacket::new_unchecked(p.data_mut()),
        *local.ip(),
        *remote.ip(),
        fill,
    );
    let dont_frag = payload.is_some_and(|(conn, _)| conn.dont_fragment());
    match ip.send(now, *local.ip(), *remote.ip(), Protocol::Tcp, p, dont_frag) {
        Ok(()) => stats.tx_segments += 1,
        Err(e) => {
            log::debug!("TCP segment to {remote} not sent: {e}");
            stats.tx_errors += 1;
        }
    }
}
