//! TCP sockets of an interface: listeners, connections, demultiplexing,
//! timers, and the limits that keep a hostile network from exhausting the
//! stack.
//!
//! [`TcpSockets`] owns every connection in a generational slab and finds
//! the one a segment belongs to by its 4-tuple in a hash map:
//! demultiplexing is O(1) whatever the number of connections, and a handle
//! kept after its connection was released is refused, never taken for the
//! connection that reused its slot. Listeners are found by port.
//!
//! The calls an application makes take no time argument: they act at the
//! time of the last poll ([`TcpSockets::receive`],
//! [`TcpSockets::dispatch`]), as every socket table of the stack does. A
//! call fails with one flat [`TcpError`]; one that cannot go on yet (nothing
//! to read, no room, nothing to accept) with [`TcpError::WouldBlock`],
//! never with a count of 0, which a read keeps for the end of the stream.
//!
//! ```
//! use std::net::SocketAddrV4;
//! use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
//! use netstrata::sim::Simulation;
//! use netstrata::transport::tcp::TcpError;
//! use netstrata::{Duration, Interface, InterfaceConfig};
//!
//! let net = MemoryNetwork::new(1500);
//! let mut sim = Simulation::new();
//! let mut host = |n: u32| {
//!     let port = net.attach();
//!     let cidr = format!("192.0.2.{n}/24").parse().unwrap();
//!     let iface = Interface::new(InterfaceConfig::new(EthernetAddress::local(n), cidr), port.capabilities());
//!     sim.add_host(iface, Box::new(port))
//! };
//! let (a, b) = (host(1), host(2));
//! let server: SocketAddrV4 = "192.0.2.2:80".parse().unwrap();
//! let listener = sim.iface(b).tcp().listen(server, 16)?;
//! let client = sim.iface(a).tcp().connect(server)?;
//! // Queued now, sent once the handshake is done.
//! sim.iface(a).tcp().send(client, b"hello")?;
//! let mut buf = [0u8; 64];
//! assert_eq!(sim.iface(a).tcp().recv(client, &mut buf), Err(TcpError::WouldBlock));
//! let mut accepted = None;
//! sim.run_while_not(Duration::from_secs(5), |s| {
//!     accepted = accepted.or_else(|| s.iface(b).tcp().accept(listener).ok());
//!     accepted.is_some_and(|h| s.iface(b).tcp().can_recv(h))
//! });
//! let h = accepted.expect("accepted");
//! let n = sim.iface(b).tcp().recv(h, &mut buf)?;
//! assert_eq!(&buf[..n], b"hello");
//! sim.iface(a).tcp().shutdown(client)?;
//! sim.run_while_not(Duration::from_secs(5), |s| s.iface(b).tcp().recv_eof(h));
//! assert_eq!(sim.iface(b).tcp().recv(h, &mut buf), Ok(0)); // end of stream
//! # Ok::<(), TcpError>(())
//! ```
//!
//! Timers cost nothing for idle connections: each connection's next
//! deadline sits in a binary heap, pushed only when it moves earlier
//! (deadlines that move later — the retransmission timer on every ACK —
//! are found stale when they pop and re-queued once; once stale entries
//! outnumber connections they are purged, so the heap stays proportional
//! to the connections). Connections with something to send go on a ready
//! list, so a poll touches only connections with work.
//!
//! Segments for no connection and no listener are answered with RST
//! (RFC 9293 §3.10.7.1). Initial sequence numbers follow RFC 6528 and
//! ephemeral ports RFC 6056 (see [`crate::transport::ports`]).
//!
//! # Limits
//!
//! Every table a peer can grow is capped, and every cap that is hit is
//! counted in [`TcpLayerStats`]. The layer-wide ones are [`TcpLimits`]:
//!
//! - **Half-open connections** (SYN-RECEIVED): at most `backlog` per
//!   listener. Beyond that a SYN is answered with a SYN cookie
//!   ([`super::syncookie`], RFC 4987), which costs no memory: under a
//!   spoofed SYN flood the table stays at its cap and a real client still
//!   connects at once. While a listener's half-open table is more than half
//!   full, a half-open connection gives up after
//!   [`TcpLimits::synack_retries_under_pressure`] SYN-ACK retransmissions
//!   instead of [`TcpConfig::syn_retries`], so spoofed entries make room
//!   in seconds, not minutes (Linux prunes its SYN queue the same way).
//! - **The accept queue**: at most `backlog` established connections wait
//!   for `accept`. When it is full, a new SYN is dropped, and the last ACK
//!   of a handshake is dropped too, leaving the connection half-open: the
//!   client's retransmission completes it once there is room, so bursts
//!   larger than the backlog are absorbed instead of reset (Linux with
//!   `tcp_abort_on_overflow` = 0). [`TcpLimits::abort_on_overflow`] resets
//!   instead.
//! - **Orphans**, connections the application has closed that are still
//!   sending their data and FIN: at most [`TcpLimits::max_orphans`];
//!   beyond it a newly closed connection is reset instead (Linux's
//!   `tcp_max_orphans`). Each orphan also gets only
//!   [`TcpConfig::orphan_retries`] retransmissions or window probes.
//! - **TIME-WAIT**: a released connection entering it becomes a compact
//!   record ([`super::time_wait`]); at most [`TcpLimits::max_time_wait`]
//!   of them, beyond which TIME-WAIT is skipped (Linux's
//!   `tcp_max_tw_buckets`).
//! - **Memory**: every connection's buffers are counted as the allocations
//!   they hold ([`Connection::memory`]). Above
//!   [`TcpLimits::memory_pressure`] windows stop growing and out-of-order
//!   data is dropped first; at [`TcpLimits::memory_limit`] connections
//!   that hold data store and queue no more, and orphans are reset (as
//!   Linux's `tcp_mem`). See [`MemoryPressure`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::Bytes;

use crate::buf::{Lent, PacketBuf};
use crate::error::ParseError;
use crate::hash::{KeyedMap, keyed_map};
use crate::internet::{Disposition, IcmpError, IpMeta, IpSender, PathCache, Protocol};
use crate::rand::KeyedRng;
use crate::slab::{Slab, SlabKey};
use crate::time::{Duration, Instant};
use crate::transport::ports::{EphemeralPorts, PortTable};
use crate::transport::tcp::connection::{
    Connection, Handled, MemoryPressure, Outgoing, State, TcpConfig, TcpError, TcpInfo,
    TcpSocketStats, mss_for_mtu, window_scale_for,
};
use crate::transport::tcp::isn::IsnGenerator;
use crate::transport::tcp::segment::{TcpFlags, TcpPacket, TcpRepr};
use crate::transport::tcp::seq::SeqNumber;
use crate::transport::tcp::syncookie::{self, MSS_TABLE, SynCookies};
use crate::transport::tcp::time_wait::{FourTuple, TimeWaitAction, TimeWaitTable};

/// A TCP connection of an interface. A handle kept after its connection
/// was released is refused ([`TcpError::InvalidHandle`]), never taken
/// for a connection that reused its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TcpHandle(SlabKey);

/// A listening socket; stale handles are refused as for [`TcpHandle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerHandle(SlabKey);

/// A socket whose state may have changed for its user: what a readiness
/// mechanism (epoll's role) needs to wake only the tasks that can go on.
/// See [`TcpSockets::take_events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpEvent {
    /// Data, end of stream, room to send, an established or failed
    /// handshake, an error: a read, write or connect may go on.
    Connection(TcpHandle),
    /// A connection waits to be accepted.
    Listener(ListenerHandle),
}

/// Layer-wide limits of TCP (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpLimits {
    /// Answer SYNs beyond a listener's half-open cap with SYN cookies
    /// (default); off, they are dropped (Linux's `tcp_syncookies`).
    pub syn_cookies: bool,
    /// SYN-ACK retransmissions a half-open connection gets while its
    /// listener's half-open table is more than half full. Default 2 (the
    /// connection then gives up after about 7 s instead of about 127 s).
    pub synack_retries_under_pressure: u32,
    /// Reset a connection whose handshake completes while the accept queue
    /// is full, instead of dropping the ACK (default false; Linux's
    /// `tcp_abort_on_overflow`).
    pub abort_on_overflow: bool,
    /// Most orphaned connections; beyond it a newly closed connection is
    /// reset. Default 8192 (Linux's `tcp_max_orphans` is sized by memory:
    /// 8192 on a small machine).
    pub max_orphans: usize,
    /// Most connections in TIME-WAIT as compact records; beyond it
    /// TIME-WAIT is skipped. Default 32768 records, about 3 MiB (Linux's
    /// `tcp_max_tw_buckets` is sized by memory).
    pub max_time_wait: usize,
    /// Memory of TCP buffers above which the layer is under pressure.
    /// Default 192 MiB.
    pub memory_pressure: usize,
    /// Memory of TCP buffers at which it is exhausted. Default 256 MiB:
    /// about 500 connections with both 256 KiB buffers full.
    pub memory_limit: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            syn_cookies: true,
            synack_retries_under_pressure: 2,
            abort_on_overflow: false,
            max_orphans: 8192,
            max_time_wait: 32768,
            memory_pressure: 192 << 20,
            memory_limit: 256 << 20,
        }
    }
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
    /// SYNs dropped because a listener's half-open table was full (and SYN
    /// cookies are off).
    pub syn_backlog_drops: u64,
    /// SYN-ACKs sent with a SYN cookie.
    pub syncookies_sent: u64,
    /// Connections made from a valid SYN cookie.
    pub syncookies_accepted: u64,
    /// ACKs whose SYN cookie did not check out (answered with RST).
    pub syncookies_rejected: u64,
    /// SYNs and handshake-completing ACKs dropped because a listener's
    /// accept queue was full (Linux's `ListenOverflows`).
    pub listen_overflows: u64,
    /// Half-open connections given up early while their listener's table
    /// was under pressure.
    pub syn_recv_pruned: u64,
    /// Connections currently orphaned (closed by the application, not yet
    /// finished).
    pub orphans: u64,
    /// Orphans reset: over [`TcpLimits::max_orphans`], or while memory was
    /// exhausted.
    pub orphans_reset: u64,
    /// Connections currently in TIME-WAIT as compact records.
    pub time_wait: u64,
    /// Connections that entered TIME-WAIT as a compact record.
    pub time_wait_entered: u64,
    /// Connections that skipped TIME-WAIT because the table was full.
    pub time_wait_overflows: u64,
    /// 4-tuples in TIME-WAIT reopened by a newer SYN (RFC 6191).
    pub time_wait_reused: u64,
    /// RSTs ignored in TIME-WAIT (RFC 1337).
    pub time_wait_rsts_ignored: u64,
    /// Stray segments a TIME-WAIT record left unanswered (rate limit).
    pub time_wait_acks_limited: u64,
    /// Bytes of memory TCP buffers hold now (see [`TcpLimits`]).
    pub memory: u64,
    /// Times the layer went under memory pressure.
    pub memory_pressure_events: u64,
    /// Segments sent.
    pub tx_segments: u64,
    /// Segments that could not be sent (no route, link refused).
    pub tx_errors: u64,
    /// Connections that reached ESTABLISHED.
    pub established: u64,
    /// Connections that ended with an error.
    pub failed: u64,
    /// Every connection's counters summed, live and ended ones.
    pub connections: TcpSocketStats,
}

#[derive(Debug)]
struct Listener {
    local: SocketAddrV4,
    backlog: usize,
    half_open: usize,
    accept_queue: VecDeque<TcpHandle>,
    config: TcpConfig,
    /// When a SYN cookie was last sent: cookies are checked only for two
    /// minutes after (as Linux does), so a listener that never overflowed
    /// cannot be probed with guessed cookies.
    cookie_sent_at: Option<Instant>,
    /// On the event list.
    signalled: bool,
}

impl Listener {
    /// Whether it takes segments for `local` (bound to it, or to any).
    fn takes(&self, local: SocketAddrV4) -> bool {
        self.local.ip().is_unspecified() || *self.local.ip() == *local.ip()
    }

    fn accept_queue_full(&self) -> bool {
        self.accept_queue.len() >= self.backlog
    }

    /// More than half full, and not tiny: Linux sizes no SYN queue below
    /// eight entries, and a listener with a backlog of one should not count
    /// its one handshake in progress as a flood.
    fn under_pressure(&self) -> bool {
        self.half_open > (self.backlog / 2).max(4)
    }
}

#[derive(Debug)]
struct Entry {
    conn: Connection,
    /// The listener that spawned it, while it is not yet accepted.
    listener: Option<SlabKey>,
    /// Counted in the listener's half-open total.
    half_open: bool,
    /// The user released the handle: free the slot when finished.
    orphan: bool,
    /// On the ready list.
    ready: bool,
    /// On the event list.
    signalled: bool,
    /// The deadline of this connection's entry in the timer heap.
    scheduled: Option<Instant>,
    /// Consecutive services that sent nothing although the connection was
    /// due (a livelock guard).
    idle_services: u8,
    /// The memory last counted for this connection.
    charged: usize,
    /// How its segments leave: route, identification counter, next hop.
    path: PathCache,
}

/// Segments one connection may send per dispatch before yielding to
/// others (it stays on the ready list).
const SEND_BURST: usize = 256;

/// Received frames whose data the applications hold or have read, kept to
/// be taken back into the buffer pool (about two 256 KiB receive buffers'
/// worth of full-sized frames).
const LENT_FRAMES: usize = 512;

/// All TCP sockets of an interface.
#[derive(Debug)]
pub struct TcpSockets {
    local_addr: Ipv4Addr,
    mtu: usize,
    conns: Slab<Entry>,
    demux: KeyedMap<FourTuple, SlabKey>,
    /// The demultiplexer's last answer: a flow's segments come in runs,
    /// and the next of a run then costs a comparison instead of a keyed
    /// hash and a probe. Cleared whenever the demultiplexer changes.
    last_demux: Option<(FourTuple, SlabKey)>,
    listeners: Slab<Listener>,
    by_port: PortTable<SlabKey>,
    timers: BinaryHeap<Reverse<(Instant, SlabKey)>>,
    ready: VecDeque<SlabKey>,
    time_wait: TimeWaitTable,
    isn: IsnGenerator,
    cookies: SynCookies,
    ports: EphemeralPorts,
    default_config: TcpConfig,
    limits: TcpLimits,
    /// Memory charged to all connections.
    memory: usize,
    pressure: MemoryPressure,
    orphans: usize,
    stats: TcpLayerStats,
    /// Counters of the connections that have ended.
    retired: TcpSocketStats,
    /// Received frames whose data went to the application.
    lent: Lent,
    /// The largest super-segment the device cuts; 0 if it does not.
    segmentation: usize,
    /// The time of the last poll (segments in or out): user calls act at
    /// it.
    now: Instant,
    /// Sockets whose state may have changed for their users since the
    /// last [`TcpSockets::take_events`], each once.
    events: VecDeque<TcpEvent>,
}

impl TcpSockets {
    /// No sockets. `local_addr` is the interface address, `mtu` the link's;
    /// `rng` keys initial sequence numbers, SYN cookies and the ephemeral
    /// port selection.
    pub fn new(
        local_addr: Ipv4Addr,
        mtu: usize,
        config: TcpConfig,
        limits: TcpLimits,
        mut rng: KeyedRng,
    ) -> TcpSockets {
        let isn = IsnGenerator::new(rng.next_key());
        let cookies = SynCookies::new([rng.next_key(), rng.next_key()]);
        TcpSockets {
            local_addr,
            mtu,
            conns: Slab::new(),
            demux: keyed_map(rng.derive_key("tcp demux")),
            last_demux: None,
            listeners: Slab::new(),
            by_port: PortTable::default(),
            timers: BinaryHeap::new(),
            ready: VecDeque::new(),
            time_wait: TimeWaitTable::new(limits.max_time_wait, rng.derive_key("time-wait")),
            isn,
            cookies,
            ports: EphemeralPorts::new(rng),
            default_config: config,
            limits,
            memory: 0,
            pressure: MemoryPressure::Normal,
            orphans: 0,
            stats: TcpLayerStats::default(),
            retired: TcpSocketStats::default(),
            lent: Lent::new(LENT_FRAMES),
            segmentation: 0,
            now: Instant::ZERO,
            events: VecDeque::new(),
        }
    }

    /// Builder: the device cuts TCP super-segments of up to
    /// `max_datagram` bytes (an IP datagram) into segments (TCP
    /// segmentation offload, [`crate::link::DeviceCaps::segmentation`]);
    /// connections then hand it their new data that way. 0, the default,
    /// for a device that does not.
    pub fn with_segmentation(mut self, max_datagram: usize) -> Self {
        self.segmentation = max_datagram;
        self
    }

    /// Layer counters, with every connection's counters summed.
    pub fn stats(&self) -> TcpLayerStats {
        let mut s = self.stats;
        s.connections = self.retired;
        for (_, e) in self.conns.iter() {
            s.connections.accumulate(&e.conn.info().stats);
        }
        let tw = self.time_wait.stats();
        s.time_wait = self.time_wait.len() as u64;
        s.time_wait_entered = tw.entered;
        s.time_wait_overflows = tw.overflows;
        s.time_wait_reused = tw.reused;
        s.time_wait_rsts_ignored = tw.rsts_ignored;
        s.time_wait_acks_limited = tw.acks_limited;
        s.orphans = self.orphans as u64;
        s.memory = self.memory as u64;
        s
    }

    /// The options new sockets get.
    pub fn default_config(&self) -> &TcpConfig {
        &self.default_config
    }

    /// The layer's limits.
    pub fn limits(&self) -> &TcpLimits {
        &self.limits
    }

    /// Number of connections in any state, TIME-WAIT records included.
    pub fn connection_count(&self) -> usize {
        self.conns.len() + self.time_wait.len()
    }

    /// Connections in TIME-WAIT as compact records.
    pub fn time_wait_count(&self) -> usize {
        self.time_wait.len()
    }

    /// Entries in the timer heaps, stale ones included (for tests of the
    /// timer structure).
    pub fn timer_heap_len(&self) -> usize {
        self.timers.len() + self.time_wait.timer_len()
    }

    /// The memory TCP buffers hold, as the limits count it.
    pub fn memory(&self) -> usize {
        self.memory
    }

    // ------------------------------------------------------------------
    // Listeners.

    /// Listens on `addr` (address 0.0.0.0 or the interface's) with a
    /// backlog of `backlog` half-open and as many unaccepted connections.
    pub fn listen(
        &mut self,
        addr: SocketAddrV4,
        backlog: usize,
    ) -> Result<ListenerHandle, TcpError> {
        self.listen_with(addr, backlog, self.default_config.clone())
    }

    /// As [`TcpSockets::listen`], with options for accepted connections.
    pub fn listen_with(
        &mut self,
        addr: SocketAddrV4,
        backlog: usize,
        config: TcpConfig,
    ) -> Result<ListenerHandle, TcpError> {
        if !addr.ip().is_unspecified() && *addr.ip() != self.local_addr {
            return Err(TcpError::AddrNotAvailable(*addr.ip()));
        }
        let port = match addr.port() {
            0 => self.ephemeral_port(None)?,
            p if self.by_port.contains(p) => return Err(TcpError::AddrInUse(p)),
            p => p,
        };
        let key = self.listeners.insert(Listener {
            local: SocketAddrV4::new(*addr.ip(), port),
            backlog: backlog.max(1),
            half_open: 0,
            accept_queue: VecDeque::new(),
            config,
            cookie_sent_at: None,
            signalled: false,
        });
        self.by_port.insert(port, key);
        Ok(ListenerHandle(key))
    }

    /// The address a listener is bound to.
    pub fn listener_addr(&self, l: ListenerHandle) -> Result<SocketAddrV4, TcpError> {
        self.listeners
            .get(l.0)
            .map(|l| l.local)
            .ok_or(TcpError::InvalidHandle)
    }

    /// Takes the next established connection of a listener.
    pub fn accept(&mut self, l: ListenerHandle) -> Result<TcpHandle, TcpError> {
        let listener = self.listeners.get_mut(l.0).ok_or(TcpError::InvalidHandle)?;
        while let Some(h) = listener.accept_queue.pop_front() {
            if let Some(e) = self.conns.get_mut(h.0) {
                e.listener = None;
                return Ok(h);
            }
        }
        Err(TcpError::WouldBlock)
    }

    /// Whether a connection waits to be accepted.
    pub fn can_accept(&self, l: ListenerHandle) -> bool {
        self.listeners
            .get(l.0)
            .is_some_and(|l| !l.accept_queue.is_empty())
    }

    /// Stops listening. Connections waiting in the accept queue are reset;
    /// half-open ones are dropped.
    pub fn close_listener(&mut self, l: ListenerHandle) -> Result<(), TcpError> {
        let listener = self.listeners.remove(l.0).ok_or(TcpError::InvalidHandle)?;
        self.by_port.remove(listener.local.port());
        for h in listener.accept_queue {
            let _ = self.abort(h);
        }
        // Half-open connections of this listener go too (a scan: closing a
        // listener is rare).
        let spawned: Vec<SlabKey> = self
            .conns
            .iter()
            .filter(|(_, e)| e.listener == Some(l.0))
            .map(|(k, _)| k)
            .collect();
        for key in spawned {
            if let Some(e) = self.conns.get_mut(key) {
                e.listener = None;
                e.half_open = false;
                e.conn.abort();
            }
            self.set_orphan(key);
            self.mark_ready(key);
        }
        Ok(())
    }

    // ------------------------------------------------------------------
    // Connections.

    /// A free port for a listener (`remote` is `None`, RFC 6056's
    /// algorithm 1) or a connection to `remote` (algorithm 4): see
    /// [`crate::transport::ports`].
    fn ephemeral_port(&mut self, remote: Option<SocketAddrV4>) -> Result<u16, TcpError> {
        let (local_addr, by_port, demux) = (self.local_addr, &self.by_port, &self.demux);
        let time_wait = &self.time_wait;
        let free = |port: u16| {
            !by_port.contains(port)
                && remote.is_none_or(|r| {
                    let tuple = (SocketAddrV4::new(local_addr, port), r);
                    !demux.contains_key(&tuple) && !time_wait.contains(&tuple)
                })
        };
        match remote {
            Some(r) => self.ports.for_connection(local_addr, r, free),
            None => self.ports.random(|&p| free(p)),
        }
        .ok_or(TcpError::NoEphemeralPort)
    }

    /// Opens a connection to `remote` from an ephemeral port; the SYN goes
    /// out at the next poll.
    pub fn connect(&mut self, remote: SocketAddrV4) -> Result<TcpHandle, TcpError> {
        self.connect_with(remote, None, self.default_config.clone())
    }

    /// As [`TcpSockets::connect`], from `local_port` (0 for ephemeral) with
    /// the given options.
    pub fn connect_with(
        &mut self,
        remote: SocketAddrV4,
        local_port: Option<u16>,
        config: TcpConfig,
    ) -> Result<TcpHandle, TcpError> {
        if remote.ip().is_unspecified() || remote.port() == 0 || remote.ip().is_broadcast() {
            return Err(TcpError::Unaddressable(remote));
        }
        let port = match local_port {
            None | Some(0) => self.ephemeral_port(Some(remote))?,
            Some(p) => p,
        };
        let local = SocketAddrV4::new(self.local_addr, port);
        if self.demux.contains_key(&(local, remote)) {
            return Err(TcpError::ConnectionExists(local, remote));
        }
        // An explicit port may reopen a 4-tuple in TIME-WAIT: the new ISN
        // then lies beyond the old connection's sequence space.
        let now = self.now;
        let isn = self.isn.isn(now, local, remote);
        let isn = match self.time_wait.reopen(&(local, remote)) {
            Some(floor) => floor.max(isn),
            None => isn,
        };
        let ts = self.isn.ts_offset(local, remote);
        let conn = Connection::connect(now, config, local, remote, isn, self.mtu, ts);
        let h = self.insert(conn, None);
        self.mark_ready(h.0);
        Ok(h)
    }

    fn insert(&mut self, mut conn: Connection, listener: Option<SlabKey>) -> TcpHandle {
        conn.set_segmentation(self.segmentation);
        let tuple = (conn.local(), conn.remote());
        let key = self.conns.insert(Entry {
            conn,
            listener,
            half_open: listener.is_some(),
            orphan: false,
            ready: false,
            signalled: false,
            scheduled: None,
            idle_services: 0,
            charged: 0,
            path: PathCache::default(),
        });
        self.demux.insert(tuple, key);
        self.last_demux = None;
        TcpHandle(key)
    }

    fn remove(&mut self, key: SlabKey) {
        let Some(e) = self.conns.remove(key) else {
            return;
        };
        let tuple = (e.conn.local(), e.conn.remote());
        if self.demux.get(&tuple) == Some(&key) {
            self.demux.remove(&tuple);
            self.last_demux = None;
        }
        self.retired.accumulate(&e.conn.info().stats);
        self.memory -= e.charged;
        if e.orphan {
            self.orphans -= 1;
        }
        if e.half_open
            && let Some(l) = e.listener.and_then(|l| self.listeners.get_mut(l))
        {
            debug_assert!(l.half_open > 0, "half-open count out of step");
            l.half_open = l.half_open.saturating_sub(1);
        }
    }

    /// Marks a connection released by the application.
    fn set_orphan(&mut self, key: SlabKey) {
        if let Some(e) = self.conns.get_mut(key)
            && !e.orphan
        {
            e.orphan = true;
            self.orphans += 1;
        }
    }

    fn entry(&self, h: TcpHandle) -> Result<&Entry, TcpError> {
        self.conns
            .get(h.0)
            .filter(|e| !e.orphan)
            .ok_or(TcpError::InvalidHandle)
    }

    fn entry_mut(&mut self, h: TcpHandle) -> Result<&mut Entry, TcpError> {
        self.conns
            .get_mut(h.0)
            .filter(|e| !e.orphan)
            .ok_or(TcpError::InvalidHandle)
    }

    /// The connection behind a handle.
    pub fn connection(&self, h: TcpHandle) -> Result<&Connection, TcpError> {
        self.entry(h).map(|e| &e.conn)
    }

    fn mark_ready(&mut self, key: SlabKey) {
        if let Some(e) = self.conns.get_mut(key)
            && !e.ready
        {
            e.ready = true;
            self.ready.push_back(key);
        }
    }

    // ------------------------------------------------------------------
    // Memory.

    /// The memory state the limits give for `memory` bytes.
    fn pressure_for(&self, memory: usize) -> MemoryPressure {
        if memory >= self.limits.memory_limit {
            MemoryPressure::Exhausted
        } else if memory >= self.limits.memory_pressure {
            MemoryPressure::Pressure
        } else {
            MemoryPressure::Normal
        }
    }

    /// Tells a connection the memory state before it acts.
    fn brief(&mut self, key: SlabKey) {
        let pressure = self.pressure;
        if let Some(e) = self.conns.get_mut(key) {
            e.conn.set_memory_pressure(pressure);
        }
    }

    /// Counts a connection's memory again after it acted.
    fn recharge(&mut self, key: SlabKey) {
        let Some(e) = self.conns.get_mut(key) else {
            return;
        };
        let memory = e.conn.memory();
        let charged = std::mem::replace(&mut e.charged, memory);
        self.account(charged, memory);
    }

    /// A connection charged `charged` bytes now holds `memory`: updates the
    /// total and the memory state.
    fn account(&mut self, charged: usize, memory: usize) {
        if charged == memory {
            return;
        }
        self.memory = self.memory - charged + memory;
        let pressure = self.pressure_for(self.memory);
        if pressure != self.pressure {
            if self.pressure == MemoryPressure::Normal {
                self.stats.memory_pressure_events += 1;
                log::debug!("TCP memory under pressure: {} bytes", self.memory);
            }
            self.pressure = pressure;
        }
    }

    // ------------------------------------------------------------------
    // User calls.

    fn user_call<T>(
        &mut self,
        h: TcpHandle,
        f: impl FnOnce(&mut Connection) -> Result<T, TcpError>,
    ) -> Result<T, TcpError> {
        self.entry(h)?;
        self.brief(h.0);
        let e = self.entry_mut(h)?;
        let r = f(&mut e.conn);
        self.recharge(h.0);
        // What the call freed may have eased the pressure: the connection
        // hears of it now (a read then offers the window it held back).
        self.brief(h.0);
        self.mark_ready(h.0);
        r
    }

    /// Queues data; returns how much fitted in the send buffer, or
    /// [`TcpError::WouldBlock`] if none did.
    pub fn send(&mut self, h: TcpHandle, data: &[u8]) -> Result<usize, TcpError> {
        self.user_call(h, |c| c.send(data))
    }

    /// Queues data written in place, without a copy: `f` gets free space
    /// of the connection's send buffer as one slice (stale contents, not
    /// zeros) and returns how many bytes it wrote at its start; returns
    /// that count. The bytes are sent from where `f` wrote them, so data
    /// produced in place (read from a file, encoded, generated) is copied
    /// only once, into the frame. The slice may be shorter than the free
    /// space where the buffer's ring wraps: call again for the rest. `f` is
    /// not called when the buffer is full: the call fails with
    /// [`TcpError::WouldBlock`].
    ///
    /// ```
    /// # use netstrata::link::{EthernetAddress, MemoryNetwork};
    /// # use netstrata::{Instant, Interface, InterfaceConfig};
    /// # let (port, _peer) = MemoryNetwork::pair(1500);
    /// # let cfg = InterfaceConfig::new(EthernetAddress::local(1), "192.0.2.1/24".parse().unwrap());
    /// # let mut iface = Interface::new(cfg, netstrata::link::Device::capabilities(&port));
    /// let tcp = iface.tcp();
    /// let h = tcp.connect("192.0.2.2:80".parse().unwrap())?;
    /// let request = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n";
    /// let n = tcp.send_with(h, |room| {
    ///     let n = request.len().min(room.len());
    ///     room[..n].copy_from_slice(&request[..n]);
    ///     n
    /// })?;
    /// assert_eq!(n, request.len());
    /// assert_eq!(tcp.send_queue(h), request.len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_with(
        &mut self,
        h: TcpHandle,
        f: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, TcpError> {
        self.user_call(h, |c| c.send_with(f))
    }

    /// Reads received data: `Ok(0)` at end of stream (or into an empty
    /// `buf`), [`TcpError::WouldBlock`] if nothing is there yet.
    pub fn recv(&mut self, h: TcpHandle, buf: &mut [u8]) -> Result<usize, TcpError> {
        self.lent.collect();
        let mut lent = std::mem::take(&mut self.lent);
        let r = self.user_call(h, |c| c.recv(buf, &mut lent));
        self.lent = lent;
        r
    }

    /// Reads the next chunk of received data, at most `max` bytes, without
    /// copying: empty at end of stream, [`TcpError::WouldBlock`] if nothing
    /// is there yet. The frame it is a slice of goes back to the buffer
    /// pool, at a later poll, once the caller has dropped it.
    pub fn recv_bytes(&mut self, h: TcpHandle, max: usize) -> Result<Bytes, TcpError> {
        self.lent.collect();
        let r = self.user_call(h, |c| c.recv_bytes(max));
        if let Ok(bytes) = &r
            && !bytes.is_empty()
        {
            self.lent.lend(bytes);
        }
        r
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
    pub fn shutdown(&mut self, h: TcpHandle) -> Result<(), TcpError> {
        self.user_call(h, |c| {
            c.shutdown_write();
            Ok(())
        })
    }

    /// Closes the connection and releases the handle; the stack finishes
    /// the close (FIN, TIME-WAIT) on its own. Beyond
    /// [`TcpLimits::max_orphans`] the connection is reset instead.
    pub fn close(&mut self, h: TcpHandle) -> Result<(), TcpError> {
        let now = self.now;
        let max_orphans = self.limits.max_orphans;
        let over = self.orphans >= max_orphans;
        let e = self.entry_mut(h)?;
        if over && e.conn.state().is_synchronized() {
            log::debug!(
                "{} -> {}: {max_orphans} orphans already: reset",
                e.conn.local(),
                e.conn.remote()
            );
            e.conn.abort();
            self.stats.orphans_reset += 1;
        } else {
            e.conn.close(now);
        }
        self.set_orphan(h.0);
        self.recharge(h.0);
        self.mark_ready(h.0);
        Ok(())
    }

    /// Aborts with RST and releases the handle.
    pub fn abort(&mut self, h: TcpHandle) -> Result<(), TcpError> {
        let e = self.entry_mut(h)?;
        e.conn.abort();
        self.set_orphan(h.0);
        self.mark_ready(h.0);
        Ok(())
    }

    /// The connection's state.
    pub fn state(&self, h: TcpHandle) -> Result<State, TcpError> {
        self.entry(h).map(|e| e.conn.state())
    }

    /// The error that ended the connection, if any.
    pub fn error(&self, h: TcpHandle) -> Result<Option<TcpError>, TcpError> {
        self.entry(h).map(|e| e.conn.error())
    }

    /// Statistics and estimates of a connection.
    pub fn info(&self, h: TcpHandle) -> Result<TcpInfo, TcpError> {
        self.entry(h).map(|e| e.conn.info())
    }

    /// The local address of a connection.
    pub fn local_addr(&self, h: TcpHandle) -> Result<SocketAddrV4, TcpError> {
        self.entry(h).map(|e| e.conn.local())
    }

    /// The peer address of a connection.
    pub fn peer_addr(&self, h: TcpHandle) -> Result<SocketAddrV4, TcpError> {
        self.entry(h).map(|e| e.conn.remote())
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    pub fn set_nodelay(&mut self, h: TcpHandle, nodelay: bool) -> Result<(), TcpError> {
        self.user_call(h, |c| {
            c.set_nodelay(nodelay);
            Ok(())
        })
    }

    /// Sets keep-alive (`None`: off).
    pub fn set_keepalive(&mut self, h: TcpHandle, idle: Option<Duration>) -> Result<(), TcpError> {
        let now = self.now;
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
        self.now = now;
        self.stats.rx_segments += 1;
        // Parsed in place: a `TcpRepr` moved through a `Result` and a
        // tuple is copied with wide loads that wait for the narrow stores
        // that filled it.
        let mut repr = TcpRepr::default();
        let parsed = TcpPacket::new_checked(payload.data()).and_then(|p| {
            repr.parse_from(&p, meta.src, meta.dst, !meta.checksum_verified)?;
            Ok(p.header_len())
        });
        let header_len = match parsed {
            Ok(n) => n,
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
        let truesize = payload.truesize();
        let data = if repr.payload_len > 0 {
            payload.freeze()
        } else {
            // A pure ACK: its buffer goes back to the pool, to carry one
            // of our segments next.
            ip.recycle(payload);
            Bytes::new()
        };
        let segment = Segment {
            local,
            remote,
            repr: &repr,
        };

        if let Some(key) = self.demux((local, remote)) {
            self.deliver(now, key, &segment, data, truesize, ip);
            return Disposition::Delivered;
        }
        let listener = self
            .by_port
            .get(repr.dst_port)
            .filter(|&li| self.listeners.get(li).is_some_and(|l| l.takes(local)));
        let mut isn_floor = None;
        let tuple = (local, remote);
        match self
            .time_wait
            .on_segment(now, tuple, &repr, listener.is_some())
        {
            None => {}
            Some(TimeWaitAction::Ignore) => return Disposition::Delivered,
            Some(TimeWaitAction::Ack(ack)) => {
                emit_segment(now, segment.reply(), &ack, ip, None, &mut self.stats);
                return Disposition::Delivered;
            }
            Some(TimeWaitAction::Reuse { .. }) => isn_floor = self.time_wait.reopen(&tuple),
        }
        if let Some(li) = self.by_port.get(repr.dst_port) {
            self.segment_to_listener(now, li, &segment, (data, truesize), isn_floor, ip);
            return Disposition::Delivered;
        }
        self.stats.rx_no_socket += 1;
        self.reset_for(now, &segment, ip);
        Disposition::Delivered
    }

    /// The connection of `tuple`, if any.
    fn demux(&mut self, tuple: FourTuple) -> Option<SlabKey> {
        if let Some((last, key)) = self.last_demux
            && last == tuple
        {
            return Some(key);
        }
        let key = *self.demux.get(&tuple)?;
        self.last_demux = Some((tuple, key));
        Some(key)
    }

    fn deliver<S: IpSender>(
        &mut self,
        now: Instant,
        key: SlabKey,
        seg: &Segment<'_>,
        data: Bytes,
        truesize: usize,
        ip: &mut S,
    ) {
        let half_open = self.conns.get(key).is_some_and(|e| e.half_open);
        if half_open && !self.may_complete_handshake(key, seg.repr) {
            return;
        }
        // One lookup for the common case: brief, handle, count again.
        let pressure = self.pressure;
        let Some(e) = self.conns.get_mut(key) else {
            return;
        };
        e.conn.set_memory_pressure(pressure);
        let was = e.conn.state();
        let handled = e.conn.handle_segment(now, seg.repr, data, truesize);
        if let Some(unkept) = e.conn.take_unkept_payload() {
            // Its frame goes back to the pool once the connection's copy
            // is made.
            self.lent.give_back(unkept);
        }
        let state = e.conn.state();
        let memory = e.conn.memory();
        let charged = std::mem::replace(&mut e.charged, memory);
        self.account(charged, memory);
        if was == State::SynReceived && state != State::SynReceived {
            self.leave_half_open(key);
        }
        if state.is_synchronized() && !was.is_synchronized() {
            self.stats.established += 1;
            self.queue_for_accept(key);
        }
        self.signal(key);
        if let Handled::Reset { seq } = handled {
            let rst = TcpRepr {
                seq_number: seq,
                flags: TcpFlags::RST,
                ..TcpRepr::default()
            };
            self.send_rst(now, seg, rst, ip);
        }
        if handled == Handled::Closed {
            let e = self.conns.get(key);
            self.stats.failed += u64::from(e.is_some_and(|e| e.conn.error().is_some()));
            // A half-open connection reset by its peer just goes away.
            if e.is_some_and(|e| e.listener.is_some()) {
                self.set_orphan(key);
            }
        }
        self.mark_ready(key);
    }

    /// Whether a segment may reach a half-open connection: the one that
    /// would complete its handshake is dropped while its listener's accept
    /// queue is full, so the peer's retransmission completes it once there
    /// is room (or, with [`TcpLimits::abort_on_overflow`], the connection
    /// is reset).
    fn may_complete_handshake(&mut self, key: SlabKey, repr: &TcpRepr) -> bool {
        let Some(e) = self.conns.get(key) else {
            return false;
        };
        let completes = e.half_open && e.conn.completes_handshake(repr);
        let full = e
            .listener
            .and_then(|l| self.listeners.get(l))
            .is_some_and(Listener::accept_queue_full);
        if !(completes && full) {
            return true;
        }
        self.stats.listen_overflows += 1;
        if self.limits.abort_on_overflow {
            if let Some(e) = self.conns.get_mut(key) {
                e.conn.abort();
            }
            self.leave_half_open(key);
            self.set_orphan(key);
            self.mark_ready(key);
        } else {
            log::debug!("accept queue full: dropping the ACK of a handshake");
        }
        false
    }

    fn leave_half_open(&mut self, key: SlabKey) {
        let Some(e) = self.conns.get_mut(key) else {
            return;
        };
        if !e.half_open {
            return;
        }
        e.half_open = false;
        if let Some(l) = e.listener.and_then(|l| self.listeners.get_mut(l)) {
            debug_assert!(l.half_open > 0, "half-open count out of step");
            l.half_open = l.half_open.saturating_sub(1);
        }
    }

    /// Queues a newly established connection for `accept`, if a listener
    /// spawned it.
    fn queue_for_accept(&mut self, key: SlabKey) {
        let Some(e) = self.conns.get(key) else {
            return;
        };
        let Some(lkey) = e.listener else {
            return;
        };
        let Some(l) = self.listeners.get_mut(lkey) else {
            return;
        };
        l.accept_queue.push_back(TcpHandle(key));
        if !l.signalled {
            l.signalled = true;
            self.push_event(TcpEvent::Listener(ListenerHandle(lkey)));
        }
    }

    /// Appends to the event list. Entries of sockets released since they
    /// were queued are pruned when they would outnumber the live ones, so
    /// that a stack nobody asks for events keeps the list at about one
    /// entry per socket, however many come and go.
    fn push_event(&mut self, event: TcpEvent) {
        if self.events.len() >= 2 * (self.conns.len() + self.listeners.len()) + 64 {
            let (conns, listeners) = (&self.conns, &self.listeners);
            self.events.retain(|e| match e {
                TcpEvent::Connection(h) => conns.get(h.0).is_some(),
                TcpEvent::Listener(l) => listeners.get(l.0).is_some(),
            });
        }
        self.events.push_back(event);
    }

    /// Puts a connection its user holds on the event list, once.
    fn signal(&mut self, key: SlabKey) {
        if let Some(e) = self.conns.get_mut(key)
            && !e.signalled
            && !e.orphan
            && e.listener.is_none()
        {
            e.signalled = true;
            self.push_event(TcpEvent::Connection(TcpHandle(key)));
        }
    }

    /// Takes the sockets whose state may have changed for their users
    /// since the last call (segments arrived, timers fired, connections
    /// came to be accepted), each once, oldest first: a runtime wakes the
    /// tasks waiting on these and no others, so that its cost follows the
    /// active sockets, not the open ones. The list holds at most one entry
    /// per socket; a stack nobody asks keeps it at that.
    pub fn take_events(&mut self, out: &mut Vec<TcpEvent>) {
        for event in self.events.drain(..) {
            match event {
                TcpEvent::Connection(h) => {
                    if let Some(e) = self.conns.get_mut(h.0) {
                        e.signalled = false;
                        out.push(event);
                    }
                }
                TcpEvent::Listener(l) => {
                    if let Some(listener) = self.listeners.get_mut(l.0) {
                        listener.signalled = false;
                        out.push(event);
                    }
                }
            }
        }
    }

    /// A segment for no connection, to a port with a listener (RFC 9293
    /// §3.10.7.2): a SYN opens a connection (or is answered with a SYN
    /// cookie), an ACK may return a SYN cookie, anything else is reset.
    fn segment_to_listener<S: IpSender>(
        &mut self,
        now: Instant,
        li: SlabKey,
        seg: &Segment<'_>,
        payload: (Bytes, usize),
        isn_floor: Option<SeqNumber>,
        ip: &mut S,
    ) {
        let Some(l) = self.listeners.get(li) else {
            return;
        };
        let repr = seg.repr;
        if !l.takes(seg.local) {
            self.stats.rx_no_socket += 1;
            self.reset_for(now, seg, ip);
            return;
        }
        if repr.flags.contains(TcpFlags::RST) {
            return;
        }
        if repr.ack_number.is_some() {
            if repr.flags.contains(TcpFlags::SYN) || !self.accept_cookie(now, li, seg, payload) {
                self.reset_for(now, seg, ip);
            }
            return;
        }
        if !repr.flags.contains(TcpFlags::SYN) || repr.flags.contains(TcpFlags::FIN) {
            return;
        }
        if l.accept_queue_full() {
            self.stats.listen_overflows += 1;
            log::debug!("listener {}: accept queue full, dropping SYN", l.local);
            return;
        }
        if l.half_open >= l.backlog {
            if self.limits.syn_cookies {
                self.send_cookie(now, li, seg, ip);
            } else {
                self.stats.syn_backlog_drops += 1;
                log::debug!("listener {}: SYN queue full, dropping SYN", l.local);
            }
            return;
        }
        let config = l.config.clone();
        let (local, remote) = (seg.local, seg.remote);
        let isn = match isn_floor {
            Some(floor) => floor.max(self.isn.isn(now, local, remote)),
            None => self.isn.isn(now, local, remote),
        };
        let ts = self.isn.ts_offset(local, remote);
        let conn = Connection::accept(now, config, local, remote, isn, self.mtu, ts, repr);
        if let Some(l) = self.listeners.get_mut(li) {
            l.half_open += 1;
        }
        let h = self.insert(conn, Some(li));
        self.mark_ready(h.0);
    }

    /// Answers a SYN with a SYN-ACK whose ISN (and timestamp) carry a SYN
    /// cookie, keeping nothing (see [`super::syncookie`]).
    fn send_cookie<S: IpSender>(
        &mut self,
        now: Instant,
        li: SlabKey,
        seg: &Segment<'_>,
        ip: &mut S,
    ) {
        let Some(l) = self.listeners.get_mut(li) else {
            return;
        };
        l.cookie_sent_at = Some(now);
        let config = &l.config;
        let syn = seg.repr;
        let our_mss = mss_for_mtu(self.mtu);
        let peer_mss = syn.max_seg_size.map_or(536, |m| m.min(our_mss as u16));
        let mss_index = SynCookies::mss_index(peer_mss);
        let isn = self
            .cookies
            .cookie(now, seg.local, seg.remote, syn.seq_number, mss_index);
        // Window scaling and SACK can be remembered only in a timestamp.
        let timestamps = config.timestamps && syn.timestamp.is_some();
        let wscale = (timestamps && config.window_scaling)
            .then_some(syn.window_scale)
            .flatten();
        let sack = timestamps && config.sack && syn.sack_permitted;
        let mut repr = TcpRepr {
            seq_number: isn,
            ack_number: Some(syn.seq_number + 1),
            flags: TcpFlags::SYN,
            window_len: config.recv_buffer.min(65535) as u16,
            max_seg_size: Some(our_mss.min(65535) as u16),
            sack_permitted: sack,
            window_scale: wscale.map(|_| window_scale_for(config)),
            ..TcpRepr::default()
        };
        if let Some((tsval, _)) = syn.timestamp.filter(|_| timestamps) {
            let ts_now =
                (now.total_millis() as u32).wrapping_add(self.isn.ts_offset(seg.local, seg.remote));
            repr.timestamp = Some((syncookie::encode_timestamp(ts_now, wscale, sack), tsval));
        }
        self.stats.syncookies_sent += 1;
        emit_segment(now, seg.reply(), &repr, ip, None, &mut self.stats);
    }

    /// An ACK for no connection may return a SYN cookie: if it checks out
    /// (and the listener sent cookies lately), the connection is made as if
    /// its SYN had been queued, and the ACK (with any data) handled.
    /// Returns false if it is no valid cookie (the ACK is then reset).
    fn accept_cookie(
        &mut self,
        now: Instant,
        li: SlabKey,
        seg: &Segment<'_>,
        (data, truesize): (Bytes, usize),
    ) -> bool {
        let Some(l) = self.listeners.get(li) else {
            return false;
        };
        let recent = l.cookie_sent_at.is_some_and(|t| {
            now - t < Duration::from_secs(60 * u64::from(syncookie::MAX_AGE_MINUTES))
        });
        let repr = seg.repr;
        let Some(ack) = repr.ack_number else {
            return false;
        };
        let (iss, irs) = (ack - 1, repr.seq_number - 1);
        let checked = recent
            .then(|| self.cookies.check(now, seg.local, seg.remote, irs, iss))
            .flatten();
        // Options come back only through a timestamp our SYN-ACK did carry:
        // the echo must be our clock (whose per-connection offset is
        // secret) within the cookie's lifetime, and nothing is taken that
        // the listener's configuration forbids. A peer adding a timestamp
        // to its ACK cannot invent options.
        let config = &l.config;
        let ts_now =
            (now.total_millis() as u32).wrapping_add(self.isn.ts_offset(seg.local, seg.remote));
        let lifetime = 60_000 * syncookie::MAX_AGE_MINUTES + 64;
        let timestamp = repr
            .timestamp
            .filter(|&(_, tsecr)| config.timestamps && ts_now.wrapping_sub(tsecr) < lifetime);
        let (window_scale, sack) = match timestamp {
            Some((_, tsecr)) => syncookie::decode_timestamp(tsecr),
            None => (None, false),
        };
        let window_scale = window_scale.filter(|_| config.window_scaling);
        let sack = sack && config.sack;
        let Some(mss_index) = checked else {
            if recent {
                self.stats.syncookies_rejected += 1;
            }
            return false;
        };
        if l.accept_queue_full() {
            // As for a queued half-open connection: the peer's
            // retransmission returns the cookie again later.
            self.stats.listen_overflows += 1;
            return true;
        }
        let syn = TcpRepr {
            src_port: repr.src_port,
            dst_port: repr.dst_port,
            seq_number: irs,
            flags: TcpFlags::SYN,
            window_len: repr.window_len,
            max_seg_size: Some(MSS_TABLE[mss_index as usize]),
            window_scale,
            sack_permitted: sack,
            timestamp: timestamp.map(|(tsval, _)| (tsval, 0)),
            ..TcpRepr::default()
        };
        let config = l.config.clone();
        let ts = self.isn.ts_offset(seg.local, seg.remote);
        let conn = Connection::accept(now, config, seg.local, seg.remote, iss, self.mtu, ts, &syn)
            .with_cookie_syn_ack_sent(now);
        self.stats.syncookies_accepted += 1;
        let h = self.insert(conn, Some(li));
        if let Some(l) = self.listeners.get_mut(li) {
            l.half_open += 1;
        }
        self.brief(h.0);
        let Some(e) = self.conns.get_mut(h.0) else {
            return true;
        };
        e.conn.handle_segment(now, repr, data, truesize);
        let established = e.conn.state().is_synchronized();
        self.recharge(h.0);
        self.leave_half_open(h.0);
        if established {
            self.stats.established += 1;
            self.queue_for_accept(h.0);
        } else {
            self.set_orphan(h.0);
        }
        self.mark_ready(h.0);
        true
    }

    /// Answers a segment that has no connection with RST (RFC 9293
    /// §3.10.7.1).
    fn reset_for<S: IpSender>(&mut self, now: Instant, seg: &Segment<'_>, ip: &mut S) {
        let repr = seg.repr;
        if repr.flags.contains(TcpFlags::RST) {
            return;
        }
        let rst = match repr.ack_number {
            Some(ack) => TcpRepr {
                seq_number: ack,
                flags: TcpFlags::RST,
                ..TcpRepr::default()
            },
            None => TcpRepr {
                seq_number: SeqNumber(0),
                ack_number: Some(repr.seq_number + repr.segment_len()),
                flags: TcpFlags::RST,
                ..TcpRepr::default()
            },
        };
        self.send_rst(now, seg, rst, ip);
    }

    fn send_rst<S: IpSender>(&mut self, now: Instant, seg: &Segment<'_>, rst: TcpRepr, ip: &mut S) {
        self.stats.rst_sent += 1;
        emit_segment(now, seg.reply(), &rst, ip, None, &mut self.stats);
    }

    /// An ICMP error about one of our segments. Only errors quoting a
    /// sequence number we have outstanding are believed (RFC 5927 §4.1);
    /// see [`Connection::on_icmp_error`] for what each does.
    pub fn icmp_error(&mut self, now: Instant, error: &IcmpError) {
        self.now = now;
        let local = SocketAddrV4::new(error.local_addr, error.local_port);
        let remote = SocketAddrV4::new(error.remote_addr, error.remote_port);
        let Some(key) = self.demux((local, remote)) else {
            return;
        };
        let h = &error.transport_header;
        let seq = SeqNumber(u32::from_be_bytes([h[4], h[5], h[6], h[7]]));
        if let Some(e) = self.conns.get_mut(key) {
            let was = e.conn.state();
            e.conn.on_icmp_error(now, error.kind, seq);
            // If it ended a connection attempt (RFC 1122 §4.2.3.9), the
            // user hears of it now, not at the next retry.
            if e.conn.state() != was {
                self.signal(key);
            }
            self.mark_ready(key);
        }
    }

    // ------------------------------------------------------------------
    // Timers and output.

    /// Whether any connection has something to send now.
    pub fn has_pending_tx(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The earliest timer deadline, `now` if a connection is ready.
    pub fn poll_at(&self, now: Instant) -> Option<Instant> {
        if !self.ready.is_empty() {
            return Some(now);
        }
        let conn = self.timers.peek().map(|Reverse((t, _))| *t);
        [conn, self.time_wait.poll_at()].into_iter().flatten().min()
    }

    /// Runs expired timers and sends what every ready connection has.
    pub fn dispatch<S: IpSender>(&mut self, now: Instant, ip: &mut S) {
        self.now = now;
        self.lent.reclaim(|bufs| ip.recycle_all(bufs));
        self.time_wait.expire(now);
        while let Some(&Reverse((t, key))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(e) = self.conns.get_mut(key) else {
                continue;
            };
            if e.scheduled != Some(t) {
                continue;
            }
            e.scheduled = None;
            if !self.shed_on_timer(key) {
                self.brief(key);
                if let Some(e) = self.conns.get_mut(key) {
                    e.conn.on_timer(now);
                }
                self.recharge(key);
            }
            self.signal(key);
            self.mark_ready(key);
        }
        let mut rounds = self.ready.len();
        while rounds > 0 {
            rounds -= 1;
            let Some(key) = self.ready.pop_front() else {
                break;
            };
            self.service(now, key, ip);
        }
    }

    /// What a timer may end instead of running: a half-open connection
    /// over its SYN-ACK retries under pressure, or an orphan while memory
    /// is exhausted. Returns whether it ended the connection.
    fn shed_on_timer(&mut self, key: SlabKey) -> bool {
        let Some(e) = self.conns.get(key) else {
            return false;
        };
        let pressured = e
            .listener
            .and_then(|l| self.listeners.get(l))
            .is_some_and(Listener::under_pressure);
        if e.half_open
            && pressured
            && e.conn.syn_ack_retries() >= self.limits.synack_retries_under_pressure
        {
            self.stats.syn_recv_pruned += 1;
            self.remove(key);
            return true;
        }
        if e.orphan
            && self.pressure == MemoryPressure::Exhausted
            && e.conn.state().is_synchronized()
        {
            log::debug!(
                "{} -> {}: orphan reset, TCP memory exhausted",
                e.conn.local(),
                e.conn.remote()
            );
            self.stats.orphans_reset += 1;
            if let Some(e) = self.conns.get_mut(key) {
                e.conn.abort();
            }
            return true;
        }
        false
    }

    fn service<S: IpSender>(&mut self, now: Instant, key: SlabKey, ip: &mut S) {
        let Some(e) = self.conns.get_mut(key) else {
            return;
        };
        e.ready = false;
        e.conn.set_memory_pressure(self.pressure);
        let mut sent = 0;
        while sent < SEND_BURST {
            let Some(e) = self.conns.get_mut(key) else {
                return;
            };
            let Some(Outgoing {
                repr,
                payload_offset,
                segment_size,
            }) = e.conn.poll_transmit(now)
            else {
                break;
            };
            sent += 1;
            let origin = Origin::Connection(&e.conn, payload_offset, segment_size);
            let path = Some(&mut e.path);
            emit_segment(now, origin, &repr, ip, path, &mut self.stats);
        }
        self.recharge(key);
        let Some(e) = self.conns.get_mut(key) else {
            return;
        };
        if e.orphan && e.conn.state() == State::TimeWait {
            self.retire_to_time_wait(now, key);
            return;
        }
        if e.conn.is_finished() && (e.orphan || e.conn.error().is_some() && e.listener.is_some()) {
            self.remove(key);
            return;
        }
        let mut due = e.conn.poll_at(now);
        let timer_ran = sent == 0 && due.is_some_and(|t| t <= now);
        if sent > 0 {
            e.idle_services = 0;
        } else if timer_ran {
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
                self.ready.push_back(key);
            }
            Some(t) if t > now && e.scheduled.is_none_or(|s| t < s) => {
                e.scheduled = Some(t);
                self.schedule(t, key);
            }
            _ => {}
        }
        if timer_ran {
            self.signal(key);
        }
        // A deadline that moved later than the scheduled one is found when
        // the stale entry pops: re-queue it then.
        if let Some(e) = self.conns.get_mut(key)
            && e.scheduled.is_none()
            && let Some(t) = e.conn.poll_at(now).filter(|t| *t > now)
        {
            e.scheduled = Some(t);
            self.schedule(t, key);
        }
    }

    /// Pushes a timer; purges stale entries (of deadlines that moved, or
    /// connections gone) once they outnumber the connections, so the heap
    /// stays proportional to them.
    fn schedule(&mut self, at: Instant, key: SlabKey) {
        self.timers.push(Reverse((at, key)));
        if self.timers.len() > 2 * self.conns.len() + 64 {
            let conns = &self.conns;
            self.timers
                .retain(|Reverse((t, k))| conns.get(*k).is_some_and(|e| e.scheduled == Some(*t)));
        }
    }

    /// A released connection that reached TIME-WAIT gives up its state and
    /// buffers for a compact record (or, the table full, just closes).
    fn retire_to_time_wait(&mut self, now: Instant, key: SlabKey) {
        let Some(e) = self.conns.get(key) else {
            return;
        };
        let tuple = (e.conn.local(), e.conn.remote());
        let record = e.conn.time_wait_record(now);
        self.remove(key);
        self.time_wait.insert(tuple, record);
    }
}

/// A received segment and the connection ends it belongs to.
struct Segment<'a> {
    local: SocketAddrV4,
    remote: SocketAddrV4,
    repr: &'a TcpRepr,
}

impl Segment<'_> {
    /// Where a segment of ours answering this one comes from: its ends,
    /// on the same 4-tuple.
    fn reply(&self) -> Origin<'static> {
        Origin::Reply(self.local, self.remote)
    }
}

/// Where a segment we send comes from.
enum Origin<'a> {
    /// A connection: its ends, its payload at this offset into the send
    /// buffer, and the segment size if it is a super-segment (0 if not).
    Connection(&'a Connection, usize, u16),
    /// A reply outside any connection (a reset, a SYN-ACK with a cookie,
    /// an ACK from TIME-WAIT) from the first end to the second: no
    /// payload.
    Reply(SocketAddrV4, SocketAddrV4),
}

/// Builds a segment (payload copied from the connection's send buffer into
/// a buffer with headroom, header pushed in front) and sends it.
///
/// A connection's ends and its segment are read where they lie, not
/// gathered into a new tuple or copy first: values moved right after the
/// narrow stores that made them are read back with wide loads that wait
/// for those stores.
fn emit_segment<S: IpSender>(
    now: Instant,
    origin: Origin<'_>,
    repr: &TcpRepr,
    ip: &mut S,
    path: Option<&mut PathCache>,
    stats: &mut TcpLayerStats,
) {
    let reply;
    let mut segment_size = 0;
    let (local, remote, payload, repr) = match origin {
        Origin::Connection(conn, offset, size) => {
            segment_size = size;
            debug_assert_eq!(
                (repr.src_port, repr.dst_port),
                (conn.local().port(), conn.remote().port())
            );
            (conn.local(), conn.remote(), Some((conn, offset)), repr)
        }
        Origin::Reply(local, remote) => {
            reply = TcpRepr {
                src_port: local.port(),
                dst_port: remote.port(),
                ..*repr
            };
            (local, remote, None, &reply)
        }
    };
    let len = repr.payload_len;
    let hlen = repr.header_len();
    let mut p = ip.alloc(len);
    if let Some((conn, offset)) = payload.filter(|_| len > 0) {
        // Appended, not zeroed and then overwritten.
        let (a, b) = conn.payload(offset, len);
        debug_assert_eq!(a.len() + b.len(), len);
        p.extend_from_slice(a);
        p.extend_from_slice(b);
    }
    let fill = !ip.checksum_offload().tx;
    let (src, dst) = (*local.ip(), *remote.ip());
    p.push_header(hlen);
    repr.emit(&mut TcpPacket::new_unchecked(p.data_mut()), src, dst, fill);
    p.set_segment_size(segment_size);
    let dont_frag = payload.is_some_and(|(conn, _)| conn.dont_fragment());
    let sent = match path {
        Some(path) => ip.send_on_path(now, path, src, dst, Protocol::Tcp, p, dont_frag),
        None => ip.send(now, src, dst, Protocol::Tcp, p, dont_frag),
    };
    match sent {
        Ok(()) => stats.tx_segments += 1,
        Err(e) => {
            log::debug!("TCP segment to {remote} not sent: {e}");
            stats.tx_errors += 1;
        }
    }
}
