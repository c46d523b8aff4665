//! An in-memory Ethernet: a learning switch with any number of ports.
//!
//! [`MemoryNetwork`] is a virtual Ethernet switch; every interface attached
//! to it gets a [`MemoryPort`], which is a [`Device`]. This is the network
//! everything runs on without privileges: simulations, tests and examples.
//!
//! The switch behaves like a transparent bridge (IEEE 802.1D §7.7–§7.8,
//! reduced to what a single switch needs): it learns which port each
//! unicast source address was last seen on, forwards a frame whose
//! destination it has learned to that port only, and floods broadcast,
//! multicast and unknown unicast frames to every other port. A frame is
//! never sent back to the port it came from (a unicast frame for a station
//! learned on the sending port is filtered). A station that moves is
//! relearned on its new port the first time it sends.
//!
//! Frames move without copying: the transmitted [`PacketBuf`] itself is
//! queued at the destination port; only flooding clones it, once per extra
//! port. Each port has a bounded receive queue (1024 frames unless
//! configured); frames arriving at a full queue are dropped and counted,
//! as a switch with a full output buffer does.
//!
//! Ports can be driven from one thread (a simulation owning every port) or
//! from many (one stack per thread): state is behind `Arc<Mutex<..>>`.
//! The switch's table and each port's queue have their own locks, and
//! every lock costs two atomic operations, which at millions of frames a
//! second are most of a frame's cost; so the common cases take fewer:
//! - a port receiving takes its own lock once per batch, moving every
//!   waiting frame to an inbox it then hands out alone. Those frames count
//!   against its queue limit until it takes the next batch, as a NIC's
//!   ring descriptors come back to it in batches;
//! - a port sending another frame between the same two stations as its
//!   last, with the table unchanged since (a generation counter, read
//!   without a lock, says so), queues it at the destination port without
//!   the switch's lock; and, on a port whose driver flushes (as
//!   [`crate::Interface::poll`] does at the end of every poll), it holds
//!   such frames back to queue them in one batch, under one lock, at
//!   [`Device::flush`], at the port's next `receive`, before a frame that
//!   goes another way, or when `OUTBOX_FRAMES` are waiting.
//!
//! The network also keeps spare frame buffers for its ports' stacks
//! ([`Device::refill`] and [`Device::spill`]): in a one-way flow the
//! receiver frees what the sender allocates, so a stack whose pool is full
//! leaves buffers here and one whose pool ran dry takes them, and neither
//! allocates in the steady state.
//!
//! A port can register a *waker*, a callback run (outside every lock) each
//! time frames are queued for it, so that a runtime thread may sleep until
//! work arrives.
//!
//! Deliberately not here: delay, loss and other impairments (wrap a port
//! in a [`FaultInjector`](super::fault::FaultInjector)); address ageing
//! (ports' clocks need not share an epoch, so the switch keeps no time:
//! entries live until their port detaches or the station moves); VLANs;
//! spanning tree (there is one switch, so no loops). The learning table is
//! bounded at [`MAX_LEARNED`] addresses; beyond that new stations are not
//! learned and frames for them are flooded.
//!
//! # Example
//!
//! A frame for a station the switch has not seen yet is flooded; once the
//! station has sent, frames for it go to its port only:
//!
//! ```
//! use netstrata::buf::PacketBuf;
//! use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
//! use netstrata::Instant;
//!
//! let frame = |dst: u32, src: u32| {
//!     let mut f = PacketBuf::from_payload(14, b"hi");
//!     let h = f.push_header(14);
//!     h[..6].copy_from_slice(&EthernetAddress::local(dst).0);
//!     h[6..12].copy_from_slice(&EthernetAddress::local(src).0);
//!     h[12..].copy_from_slice(&[0x08, 0x00]);
//!     f
//! };
//! let now = Instant::ZERO;
//! let net = MemoryNetwork::new(1500);
//! let (mut a, mut b, mut c) = (net.attach(), net.attach(), net.attach());
//!
//! a.transmit(now, frame(2, 1))?; // 2 is unknown: flooded to b and c
//! assert!(b.receive(now).is_some() && c.receive(now).is_some());
//! b.transmit(now, frame(1, 2))?; // 1 was learned on a's port
//! assert!(a.receive(now).is_some() && c.receive(now).is_none());
//! assert_eq!(net.lookup(EthernetAddress::local(2)), Some(b.id()));
//! assert_eq!(c.stats().rx_frames, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::BytesMut;

use crate::buf::{BufferPool, PacketBuf};
use crate::link::device::{Device, DeviceCaps, DeviceError};
use crate::link::ethernet::{EthernetAddress, HEADER_LEN};
use crate::time::Instant;

/// Receive-queue length of each port unless configured otherwise.
pub const DEFAULT_QUEUE_LIMIT: usize = 1024;

/// Most source addresses the switch remembers.
pub const MAX_LEARNED: usize = 4096;

/// Most spare frame buffers the network keeps for its ports' stacks
/// (about 2 MB at MTU 1500).
const DEPOT_MAX: usize = 1024;

/// How many buffers a stack's empty pool takes from the network at once.
const REFILL_BATCH: usize = 64;

/// A callback run when a frame is queued for a port.
type Waker = Arc<dyn Fn() + Send + Sync>;

/// Counters of one port. "Received" means delivered into the port's queue
/// by the switch, whether or not the stack has taken it out yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Frames the port transmitted into the switch.
    pub tx_frames: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames refused on transmit: larger than the MTU allows
    /// ([`DeviceError::TooLarge`]) or shorter than an Ethernet header (runts,
    /// silently discarded as a switch does).
    pub tx_refused: u64,
    /// Frames queued for this port.
    pub rx_frames: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Frames for this port dropped because its receive queue was full.
    pub rx_dropped: u64,
}

/// One port's receive side, shared between the switch and the port.
struct PortState {
    queue: VecDeque<PacketBuf>,
    /// Frames the port took in its last batch: they count against the
    /// queue limit until it takes the next.
    taken: usize,
    stats: PortStats,
    waker: Option<Waker>,
}

/// The switch proper: the ports and the learned addresses.
struct Switch {
    /// Indexed by port id; `None` once the port has detached. Ids are not
    /// reused.
    ports: Vec<Option<Arc<Mutex<PortState>>>>,
    /// Learned station → port id.
    table: BTreeMap<EthernetAddress, usize>,
}

struct Shared {
    mtu: usize,
    queue_limit: usize,
    switch: Mutex<Switch>,
    /// Changes (under the switch's lock) whenever a learned station moves
    /// or is forgotten: a port's cached [`Route`] is good while it holds.
    generation: AtomicU64,
    /// Spare frame buffers, shared by the ports' stacks: a stack that
    /// receives more than it sends (the receiver of a bulk transfer) puts
    /// the surplus here, and one that sends more than it receives takes
    /// it, so neither allocates nor frees a frame in a steady flow.
    depot: Mutex<Vec<BytesMut>>,
    /// How many buffers `depot` holds, read without its lock so that a
    /// stack finding its pool empty does not lock an empty depot.
    depot_len: AtomicUsize,
}

/// Where a port's last frame went: while its stations and the switch's
/// generation are unchanged, the next such frame goes the same way.
struct Route {
    src: EthernetAddress,
    dst: EthernetAddress,
    generation: u64,
    target: Arc<Mutex<PortState>>,
}

/// Locks a mutex, carrying on if a thread panicked while holding it: the
/// protected state (queues and counters) stays consistent at every step.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A virtual Ethernet switch. Cloning gives another handle to the same
/// switch.
#[derive(Clone)]
pub struct MemoryNetwork {
    shared: Arc<Shared>,
}

impl MemoryNetwork {
    /// A switch for a link with the given MTU (largest Ethernet payload,
    /// e.g. 1500) and per-port queues of [`DEFAULT_QUEUE_LIMIT`] frames.
    pub fn new(mtu: usize) -> MemoryNetwork {
        MemoryNetwork::with_queue_limit(mtu, DEFAULT_QUEUE_LIMIT)
    }

    /// A switch whose ports each queue at most `queue_limit` received
    /// frames.
    pub fn with_queue_limit(mtu: usize, queue_limit: usize) -> MemoryNetwork {
        MemoryNetwork {
            shared: Arc::new(Shared {
                mtu,
                queue_limit,
                switch: Mutex::new(Switch {
                    ports: Vec::new(),
                    table: BTreeMap::new(),
                }),
                generation: AtomicU64::new(0),
                depot: Mutex::new(Vec::new()),
                depot_len: AtomicUsize::new(0),
            }),
        }
    }

    /// Two ports of a fresh switch: a virtual cable between two
    /// interfaces.
    pub fn pair(mtu: usize) -> (MemoryPort, MemoryPort) {
        let net = MemoryNetwork::new(mtu);
        (net.attach(), net.attach())
    }

    /// Attaches a new port. The port detaches when dropped.
    pub fn attach(&self) -> MemoryPort {
        let state = Arc::new(Mutex::new(PortState {
            queue: VecDeque::new(),
            taken: 0,
            stats: PortStats::default(),
            waker: None,
        }));
        let mut sw = lock(&self.shared.switch);
        let id = sw.ports.len();
        sw.ports.push(Some(Arc::clone(&state)));
        drop(sw);
        MemoryPort {
            shared: Arc::clone(&self.shared),
            id,
            state,
            inbox: VecDeque::new(),
            route: None,
            outbox: VecDeque::new(),
            batching: false,
            tx: TxStats::default(),
        }
    }

    /// The link MTU.
    pub fn mtu(&self) -> usize {
        self.shared.mtu
    }

    /// The receive-queue limit of each port.
    pub fn queue_limit(&self) -> usize {
        self.shared.queue_limit
    }

    /// How many ports are attached.
    pub fn port_count(&self) -> usize {
        lock(&self.shared.switch)
            .ports
            .iter()
            .filter(|p| p.is_some())
            .count()
    }

    /// The id of the port on which `station` was learned, if any.
    pub fn lookup(&self, station: EthernetAddress) -> Option<usize> {
        lock(&self.shared.switch).table.get(&station).copied()
    }
}

impl fmt::Debug for MemoryNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryNetwork")
            .field("mtu", &self.shared.mtu)
            .field("queue_limit", &self.shared.queue_limit)
            .finish_non_exhaustive()
    }
}

/// Queues `frame` at a port; returns the port's waker to run once every
/// lock is released, or `None` if there is none or the frame was dropped.
fn enqueue(port: &Mutex<PortState>, limit: usize, frame: PacketBuf) -> Option<Waker> {
    let mut p = lock(port);
    if p.admit(limit, 1) == 0 {
        return None;
    }
    p.stats.rx_frames += 1;
    p.stats.rx_bytes += frame.len() as u64;
    p.queue.push_back(frame);
    p.waker.clone()
}

/// Queues the frames of `frames` at a port under one lock, as many as its
/// queue takes (the rest are dropped), and leaves `frames` empty with its
/// memory kept; returns the waker as [`enqueue`] does. The frames move in
/// bulk, not one by one: a buffer moved alone right after its fields were
/// written waits for those stores.
fn enqueue_all(
    port: &Mutex<PortState>,
    limit: usize,
    frames: &mut VecDeque<PacketBuf>,
) -> Option<Waker> {
    let mut p = lock(port);
    let n = p.admit(limit, frames.len());
    frames.truncate(n);
    p.stats.rx_frames += n as u64;
    p.stats.rx_bytes += frames.iter().map(|f| f.len() as u64).sum::<u64>();
    p.queue.append(frames);
    p.waker.clone().filter(|_| n > 0)
}

impl PortState {
    /// How many of `n` frames arriving now the queue takes (the frames of
    /// the port's last batch count against its limit too); the others are
    /// counted as dropped.
    fn admit(&mut self, limit: usize, n: usize) -> usize {
        let room = limit.saturating_sub(self.queue.len() + self.taken);
        if n > room {
            self.stats.rx_dropped += (n - room) as u64;
            log::trace!("memory port queue full: dropping {} frames", n - room);
        }
        n.min(room)
    }
}

/// One attachment to a [`MemoryNetwork`]; a [`Device`]. `Send`, so it can
/// be moved to the thread that runs its stack.
pub struct MemoryPort {
    shared: Arc<Shared>,
    id: usize,
    state: Arc<Mutex<PortState>>,
    /// The frames of the last batch taken, handed out one by one.
    inbox: VecDeque<PacketBuf>,
    /// Where the last unicast frame went.
    route: Option<Route>,
    /// Frames sent on `route`, not yet queued at its port: they go in one
    /// batch, under one lock, at [`Device::flush`], at this port's next
    /// `receive`, before any frame that takes another way, or when
    /// [`OUTBOX_FRAMES`] are waiting.
    outbox: VecDeque<PacketBuf>,
    /// Whoever drives the port calls [`Device::flush`] (it has once): only
    /// then are frames held back. A program that transmits on a port by
    /// hand and never flushes sees every frame queued at once.
    batching: bool,
    /// The transmit counters: only this port's own calls change them, so
    /// they need no lock (the receive side's are in `state`).
    tx: TxStats,
}

/// What a port transmitted (the `tx_` fields of [`PortStats`]).
#[derive(Debug, Clone, Copy, Default)]
struct TxStats {
    frames: u64,
    bytes: u64,
    refused: u64,
}

impl MemoryPort {
    /// The port's number on its switch (attachment order, from 0).
    pub fn id(&self) -> usize {
        self.id
    }

    /// A handle to the switch this port is attached to.
    pub fn network(&self) -> MemoryNetwork {
        MemoryNetwork {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The port's counters.
    pub fn stats(&self) -> PortStats {
        PortStats {
            tx_frames: self.tx.frames,
            tx_bytes: self.tx.bytes,
            tx_refused: self.tx.refused,
            ..lock(&self.state).stats
        }
    }

    /// Frames waiting in the receive queue.
    pub fn queued(&self) -> usize {
        lock(&self.state).queue.len() + self.inbox.len()
    }

    /// Registers a callback run every time frames are queued for this port
    /// (from whichever thread transmitted it, with no lock held, so it may
    /// itself use the network). Replaces any earlier waker.
    pub fn set_waker(&self, waker: Box<dyn Fn() + Send + Sync>) {
        lock(&self.state).waker = Some(Arc::from(waker));
    }

    /// Removes the waker.
    pub fn clear_waker(&self) {
        lock(&self.state).waker = None;
    }

    fn refuse(&mut self) {
        self.tx.refused += 1;
    }

    /// Queues the frames held back at the port they were sent to.
    fn flush_outbox(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let limit = self.shared.queue_limit;
        let waker = match &self.route {
            Some(r) => enqueue_all(&r.target, limit, &mut self.outbox),
            // Never: frames are held only while a route is known, and the
            // route changes only after the outbox is flushed.
            None => {
                self.outbox.clear();
                None
            }
        };
        if let Some(w) = waker {
            w();
        }
    }
}

/// Most frames a port holds back before queueing them at their port.
const OUTBOX_FRAMES: usize = 64;

impl fmt::Debug for MemoryPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryPort")
            .field("id", &self.id)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Device for MemoryPort {
    fn capabilities(&self) -> DeviceCaps {
        DeviceCaps {
            mtu: self.shared.mtu,
            ..DeviceCaps::default()
        }
    }

    /// The next frame: from the inbox, or, when that is empty, from a new
    /// batch of every frame waiting (taken under one lock).
    fn receive(&mut self, _now: Instant) -> Option<PacketBuf> {
        self.flush_outbox();
        if self.inbox.is_empty() {
            let mut p = lock(&self.state);
            std::mem::swap(&mut p.queue, &mut self.inbox);
            p.taken = self.inbox.len();
        }
        self.inbox.pop_front()
    }

    /// Takes a batch of the network's spare buffers, if it has any.
    fn refill(&mut self, pool: &mut BufferPool) {
        if self.shared.depot_len.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut depot = lock(&self.shared.depot);
        pool.refill_from(&mut depot, REFILL_BATCH);
        self.shared.depot_len.store(depot.len(), Ordering::Relaxed);
    }

    /// Takes half of a full pool for the other ports' stacks, while the
    /// network has room.
    fn spill(&mut self, pool: &mut BufferPool) {
        let mut depot = lock(&self.shared.depot);
        pool.spill_into(&mut depot, pool.spare() / 2, DEPOT_MAX);
        self.shared.depot_len.store(depot.len(), Ordering::Relaxed);
    }

    /// A queued frame is ready at any instant, and one held back to send
    /// is due to go: reported as [`Instant::ZERO`].
    fn poll_at(&self) -> Option<Instant> {
        let due = !self.inbox.is_empty()
            || !self.outbox.is_empty()
            || !lock(&self.state).queue.is_empty();
        due.then_some(Instant::ZERO)
    }

    fn flush(&mut self, _now: Instant) {
        self.batching = true;
        self.flush_outbox();
    }

    /// Forwards the frame through the switch. Refuses frames longer than
    /// MTU + 14 with [`DeviceError::TooLarge`]; discards (and counts) frames
    /// shorter than an Ethernet header.
    fn transmit(&mut self, _now: Instant, frame: PacketBuf) -> Result<(), DeviceError> {
        let len = frame.len();
        let max = self.shared.mtu.saturating_add(HEADER_LEN);
        if len > max {
            self.refuse();
            return Err(DeviceError::TooLarge { len, max });
        }
        let data = frame.data();
        let addrs = match (data.get(0..6), data.get(6..12)) {
            (Some(d), Some(s)) if len >= HEADER_LEN => {
                EthernetAddress::from_bytes(d).zip(EthernetAddress::from_bytes(s))
            }
            _ => None,
        };
        let Some((dst, src)) = addrs else {
            log::debug!("memory port {}: discarding {len}-byte runt", self.id);
            self.refuse();
            return Ok(());
        };

        let limit = self.shared.queue_limit;
        let mut wakers: Vec<Waker> = Vec::new();
        let mut unicast_waker: Option<Waker> = None;
        if let Some(r) = &self.route
            && (r.src, r.dst) == (src, dst)
            && r.generation == self.shared.generation.load(Ordering::Acquire)
        {
            if self.batching {
                self.outbox.push_back(frame);
                if self.outbox.len() >= OUTBOX_FRAMES {
                    self.flush_outbox();
                }
            } else {
                unicast_waker = enqueue(&r.target, limit, frame);
            }
        } else {
            // In order: what was held back goes before this frame, and
            // before the route changes.
            self.flush_outbox();
            let mut sw = lock(&self.shared.switch);
            // Learning: one lookup when the station is where it was.
            let src_here = src.is_unicast()
                && match sw.table.get(&src) {
                    Some(&port) if port == self.id => true,
                    known if known.is_some() || sw.table.len() < MAX_LEARNED => {
                        sw.table.insert(src, self.id);
                        self.shared.generation.fetch_add(1, Ordering::Release);
                        true
                    }
                    _ => false,
                };
            let learned = if dst.is_multicast() {
                None
            } else {
                sw.table.get(&dst).copied()
            };
            match learned {
                Some(port) if port == self.id => {
                    log::trace!("memory port {}: filtered frame for {dst}", self.id);
                }
                Some(port) => {
                    if let Some(Some(target)) = sw.ports.get(port) {
                        if src_here {
                            self.route = Some(Route {
                                src,
                                dst,
                                generation: self.shared.generation.load(Ordering::Acquire),
                                target: Arc::clone(target),
                            });
                        }
                        unicast_waker = enqueue(target, limit, frame);
                    }
                }
                None => {
                    // Flood: clone for every eligible port but the last,
                    // which gets the frame itself.
                    let eligible = |(i, p): &(usize, &Option<Arc<Mutex<PortState>>>)| {
                        *i != self.id && p.is_some()
                    };
                    let last = sw.ports.iter().enumerate().rev().find(eligible);
                    if let Some((last, _)) = last {
                        for (_, p) in sw.ports.iter().enumerate().take(last).filter(eligible) {
                            if let Some(p) = p
                                && let Some(w) = enqueue(p, limit, frame.clone())
                            {
                                wakers.push(w);
                            }
                        }
                        if let Some(Some(p)) = sw.ports.get(last)
                            && let Some(w) = enqueue(p, limit, frame)
                        {
                            wakers.push(w);
                        }
                    }
                }
            }
        }
        self.tx.frames += 1;
        self.tx.bytes += len as u64;
        if let Some(w) = unicast_waker {
            w();
        }
        for w in wakers {
            w();
        }
        Ok(())
    }
}

impl Drop for MemoryPort {
    /// Detaches the port: it gets no more frames and the switch forgets
    /// the stations learned on it.
    fn drop(&mut self) {
        self.flush_outbox();
        let mut sw = lock(&self.shared.switch);
        if let Some(slot) = sw.ports.get_mut(self.id) {
            *slot = None;
        }
        let id = self.id;
        sw.table.retain(|_, port| *port != id);
        self.shared.generation.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::MAX_HEADROOM;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const T: Instant = Instant::ZERO;

    fn mac(n: u32) -> EthernetAddress {
        EthernetAddress::local(n)
    }

    fn frame(dst: EthernetAddress, src: EthernetAddress, payload: &[u8]) -> PacketBuf {
        let mut p = PacketBuf::from_payload(MAX_HEADROOM, payload);
        let h = p.push_header(HEADER_LEN);
        h[0..6].copy_from_slice(&dst.0);
        h[6..12].copy_from_slice(&src.0);
        h[12..14].copy_from_slice(&[0x08, 0x00]);
        p
    }

    fn drain(p: &mut MemoryPort) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| p.receive(T))
            .map(|f| f.data().to_vec())
            .collect()
    }

    #[test]
    fn pair_carries_frames_both_ways_without_copying() {
        let (mut a, mut b) = MemoryNetwork::pair(1500);
        assert_eq!(a.capabilities().mtu, 1500);
        let f = frame(mac(2), mac(1), b"hello");
        let ptr = f.data().as_ptr();
        a.transmit(T, f).unwrap();
        // Unknown unicast is flooded; with two ports that is just b.
        let got = b.receive(T).unwrap();
        assert_eq!(got.data().as_ptr(), ptr, "frame was copied");
        assert_eq!(&got.data()[HEADER_LEN..], b"hello");
        assert!(b.receive(T).is_none());
        assert!(a.receive(T).is_none());
        b.transmit(T, frame(mac(1), mac(2), b"back")).unwrap();
        assert_eq!(&a.receive(T).unwrap().data()[HEADER_LEN..], b"back");
        let s = a.stats();
        assert_eq!((s.tx_frames, s.tx_bytes), (1, 19));
        assert_eq!((s.rx_frames, s.rx_bytes, s.rx_dropped), (1, 18, 0));
    }

    #[test]
    fn learns_and_forwards_unicast_to_learned_port_only() {
        let net = MemoryNetwork::new(1500);
        let mut a = net.attach();
        let mut b = net.attach();
        let mut c = net.attach();
        assert_eq!(net.port_count(), 3);

        // b is not yet known: flooded to b and c, never back to a.
        a.transmit(T, frame(mac(2), mac(1), b"1")).unwrap();
        assert_eq!(drain(&mut b).len(), 1);
        assert_eq!(drain(&mut c).len(), 1);
        assert!(drain(&mut a).is_empty());
        assert_eq!(net.lookup(mac(1)), Some(a.id()));
        assert_eq!(net.lookup(mac(2)), None);

        // a has been learned: b's reply goes to a only.
        b.transmit(T, frame(mac(1), mac(2), b"2")).unwrap();
        assert_eq!(drain(&mut a).len(), 1);
        assert!(drain(&mut c).is_empty());
        assert_eq!(net.lookup(mac(2)), Some(b.id()));

        // Now both are learned: a → b reaches b only.
        for _ in 0..5 {
            a.transmit(T, frame(mac(2), mac(1), b"3")).unwrap();
        }
        assert_eq!(drain(&mut b).len(), 5);
        assert!(drain(&mut c).is_empty());
        assert!(drain(&mut a).is_empty());
        assert_eq!(c.stats().rx_frames, 1);
    }

    /// On a port whose driver flushes, frames on a remembered route are
    /// held back and queued in one batch: at `flush`, at the sender's next
    /// `receive`, before a frame that goes another way, and once
    /// `OUTBOX_FRAMES` wait. Order is kept, the receiver's queue limit
    /// still applies frame by frame, and the waker runs once a batch. A
    /// port never flushed holds nothing back.
    #[test]
    fn frames_on_a_remembered_route_go_in_batches_in_order() {
        let net = MemoryNetwork::with_queue_limit(1500, 100);
        let mut a = net.attach();
        let mut b = net.attach();
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = Arc::clone(&wakes);
        b.set_waker(Box::new(move || {
            w.fetch_add(1, Ordering::Relaxed);
        }));
        b.transmit(T, frame(mac(1), mac(2), b"")).unwrap();
        drain(&mut a);
        let send = |a: &mut MemoryPort, n: u8| a.transmit(T, frame(mac(2), mac(1), &[n])).unwrap();
        let payloads =
            |b: &mut MemoryPort| -> Vec<u8> { drain(b).iter().map(|f| f[HEADER_LEN]).collect() };
        // Never flushed: nothing is held back.
        for n in 0..3 {
            send(&mut a, n);
        }
        assert_eq!(payloads(&mut b), vec![0, 1, 2]);
        a.flush(T);
        for n in 0..4 {
            send(&mut a, n);
        }
        assert_eq!(payloads(&mut b), Vec::<u8>::new());
        assert_eq!(a.poll_at(), Some(Instant::ZERO));
        let before = wakes.load(Ordering::Relaxed);
        a.flush(T);
        assert_eq!(payloads(&mut b), vec![0, 1, 2, 3]);
        assert_eq!(wakes.load(Ordering::Relaxed), before + 1);
        assert_eq!(a.poll_at(), None);
        // The sender's next receive hands them on too.
        send(&mut a, 4);
        assert!(a.receive(T).is_none());
        assert_eq!(payloads(&mut b), vec![4]);
        // A broadcast goes after what was held.
        send(&mut a, 5);
        a.transmit(T, frame(EthernetAddress::BROADCAST, mac(1), &[6]))
            .unwrap();
        assert_eq!(payloads(&mut b), vec![5, 6]);
        // At most OUTBOX_FRAMES wait; beyond the receiver's limit of 100,
        // frames are dropped and counted as before.
        for n in 0..OUTBOX_FRAMES {
            send(&mut a, n as u8);
        }
        assert_eq!(b.queued(), OUTBOX_FRAMES);
        for n in 0..60 {
            send(&mut a, n);
        }
        a.flush(T);
        assert_eq!(b.queued(), 100);
        assert_eq!(b.stats().rx_dropped, OUTBOX_FRAMES as u64 + 60 - 100);
    }

    #[test]
    fn floods_broadcast_and_multicast_to_all_other_ports() {
        let net = MemoryNetwork::new(1500);
        let mut ports: Vec<_> = (0..4).map(|_| net.attach()).collect();
        // Everyone is learned first; that must not stop flooding.
        for (i, p) in ports.iter_mut().enumerate() {
            p.transmit(T, frame(EthernetAddress::BROADCAST, mac(i as u32), b"hi"))
                .unwrap();
        }
        for p in ports.iter_mut() {
            assert_eq!(drain(p).len(), 3);
        }
        let multicast = EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 1]);
        ports[0]
            .transmit(T, frame(multicast, mac(0), b"m"))
            .unwrap();
        assert!(drain(&mut ports[0]).is_empty());
        for p in ports[1..].iter_mut() {
            assert_eq!(
                drain(p),
                vec![frame(multicast, mac(0), b"m").data().to_vec()]
            );
        }
        // A multicast source address is never learned.
        ports[1]
            .transmit(T, frame(mac(0), multicast, b"x"))
            .unwrap();
        assert_eq!(net.lookup(multicast), None);
    }

    #[test]
    fn filters_unicast_for_a_station_on_the_sending_port() {
        let (mut a, mut b) = MemoryNetwork::pair(1500);
        a.transmit(T, frame(mac(2), mac(1), b"")).unwrap();
        drain(&mut b);
        // mac(1) lives behind a; a frame from a to mac(1) goes nowhere.
        a.transmit(T, frame(mac(1), mac(3), b"")).unwrap();
        assert!(drain(&mut a).is_empty());
        assert!(drain(&mut b).is_empty());
        assert_eq!(a.stats().tx_frames, 2);
    }

    #[test]
    fn station_move_is_relearned() {
        let net = MemoryNetwork::new(1500);
        let mut a = net.attach();
        let mut b = net.attach();
        let mut c = net.attach();
        b.transmit(T, frame(mac(1), mac(9), b"")).unwrap();
        assert_eq!(net.lookup(mac(9)), Some(b.id()));
        c.transmit(T, frame(mac(1), mac(9), b"")).unwrap();
        assert_eq!(net.lookup(mac(9)), Some(c.id()));
        drain(&mut a);
        drain(&mut b);
        drain(&mut c);
        a.transmit(T, frame(mac(9), mac(1), b"")).unwrap();
        assert!(drain(&mut b).is_empty());
        assert_eq!(drain(&mut c).len(), 1);
    }

    #[test]
    fn a_remembered_route_follows_a_station_that_moves_or_leaves() {
        let net = MemoryNetwork::new(1500);
        let mut a = net.attach();
        let mut b = net.attach();
        let mut c = net.attach();
        b.transmit(T, frame(mac(1), mac(9), b"")).unwrap();
        drain(&mut a);
        drain(&mut c);
        // a's frames to mac(9) go to b, the second by the remembered route.
        for _ in 0..2 {
            a.transmit(T, frame(mac(9), mac(1), b"")).unwrap();
        }
        assert_eq!((drain(&mut b).len(), drain(&mut c).len()), (2, 0));
        // The station moves to c: a's next frame follows it.
        c.transmit(T, frame(mac(1), mac(9), b"")).unwrap();
        drain(&mut a);
        a.transmit(T, frame(mac(9), mac(1), b"")).unwrap();
        assert_eq!((drain(&mut b).len(), drain(&mut c).len()), (0, 1));
        // c leaves: the station is unknown again, and the frame floods.
        drop(c);
        a.transmit(T, frame(mac(9), mac(1), b"")).unwrap();
        assert_eq!(drain(&mut b).len(), 1);
        // A frame from another source address is learned, not sent by the
        // route remembered for mac(1).
        a.transmit(T, frame(mac(9), mac(5), b"")).unwrap();
        assert_eq!(net.lookup(mac(5)), Some(a.id()));
    }

    #[test]
    fn frames_of_the_last_batch_count_against_the_limit_until_the_next() {
        let net = MemoryNetwork::with_queue_limit(1500, 4);
        let mut a = net.attach();
        let mut b = net.attach();
        for i in 0..4u8 {
            a.transmit(T, frame(mac(2), mac(1), &[i])).unwrap();
        }
        // b takes all four and hands out one: the queue is still full.
        assert_eq!(b.receive(T).unwrap().data()[HEADER_LEN], 0);
        assert_eq!(b.queued(), 3);
        a.transmit(T, frame(mac(2), mac(1), &[4])).unwrap();
        assert_eq!(b.stats().rx_dropped, 1);
        // Once b has handed out the batch and looked for the next, there
        // is room for four again.
        assert_eq!(drain(&mut b).len(), 3);
        for i in 5..9u8 {
            a.transmit(T, frame(mac(2), mac(1), &[i])).unwrap();
        }
        let s = b.stats();
        assert_eq!((s.rx_frames, s.rx_dropped), (8, 1));
        let firsts: Vec<u8> = drain(&mut b).iter().map(|f| f[HEADER_LEN]).collect();
        assert_eq!(firsts, [5, 6, 7, 8]);
        assert!(b.poll_at().is_none());
    }

    #[test]
    fn detached_port_is_forgotten() {
        let net = MemoryNetwork::new(1500);
        let mut a = net.attach();
        let mut b = net.attach();
        let mut c = net.attach();
        b.transmit(T, frame(mac(1), mac(2), b"")).unwrap();
        assert_eq!(net.lookup(mac(2)), Some(1));
        drop(b);
        assert_eq!(net.port_count(), 2);
        assert_eq!(net.lookup(mac(2)), None);
        drain(&mut a);
        drain(&mut c);
        // Unknown again: flooded to c.
        a.transmit(T, frame(mac(2), mac(1), b"")).unwrap();
        assert_eq!(drain(&mut c).len(), 1);
        // New ports get fresh ids.
        assert_eq!(net.attach().id(), 3);
    }

    #[test]
    fn refuses_frames_over_mtu_and_discards_runts() {
        let (mut a, mut b) = MemoryNetwork::pair(100);
        let ok = frame(mac(2), mac(1), &[0; 100]);
        assert_eq!(ok.len(), 114);
        a.transmit(T, ok).unwrap();
        assert_eq!(
            a.transmit(T, frame(mac(2), mac(1), &[0; 101])),
            Err(DeviceError::TooLarge { len: 115, max: 114 })
        );
        for n in [0, 5, 11, 13] {
            a.transmit(T, PacketBuf::from_payload(0, &vec![0xff; n]))
                .unwrap();
        }
        assert_eq!(drain(&mut b).len(), 1);
        let s = a.stats();
        assert_eq!((s.tx_frames, s.tx_refused), (1, 5));
    }

    #[test]
    fn receive_queue_is_bounded_and_drops_are_counted() {
        let net = MemoryNetwork::with_queue_limit(1500, 4);
        assert_eq!(net.queue_limit(), 4);
        let mut a = net.attach();
        let mut b = net.attach();
        for i in 0..6u8 {
            a.transmit(T, frame(mac(2), mac(1), &[i])).unwrap();
        }
        assert_eq!(b.queued(), 4);
        let got = drain(&mut b);
        // The oldest four are kept (tail drop).
        let firsts: Vec<u8> = got.iter().map(|f| f[HEADER_LEN]).collect();
        assert_eq!(firsts, [0, 1, 2, 3]);
        let s = b.stats();
        assert_eq!((s.rx_frames, s.rx_dropped), (4, 2));
        assert_eq!(a.stats().tx_frames, 6);
        // Room again after draining.
        a.transmit(T, frame(mac(2), mac(1), b"")).unwrap();
        assert_eq!(b.queued(), 1);
    }

    #[test]
    fn waker_runs_when_a_frame_is_queued() {
        let net = MemoryNetwork::with_queue_limit(1500, 2);
        let mut a = net.attach();
        let b = net.attach();
        let c = net.attach();
        let count = Arc::new(AtomicUsize::new(0));
        let c2 = Arc::clone(&count);
        b.set_waker(Box::new(move || {
            c2.fetch_add(1, Ordering::SeqCst);
        }));
        a.transmit(T, frame(EthernetAddress::BROADCAST, mac(1), b""))
            .unwrap();
        a.transmit(T, frame(mac(2), mac(1), b"")).unwrap();
        // Queue full: dropped, no wake-up.
        a.transmit(T, frame(mac(2), mac(1), b"")).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 2);
        assert_eq!(c.queued(), 2);
        b.clear_waker();
        a.transmit(T, frame(EthernetAddress::BROADCAST, mac(1), b""))
            .unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn waker_may_use_the_network() {
        // The waker runs with no lock held, so it can transmit itself.
        let net = MemoryNetwork::new(1500);
        let mut a = net.attach();
        let b = net.attach();
        let echo = Mutex::new(net.attach());
        b.set_waker(Box::new(move || {
            let _ = lock(&echo).transmit(T, frame(mac(1), mac(99), b"echo"));
        }));
        a.transmit(T, frame(mac(2), mac(1), b"")).unwrap();
        assert_eq!(
            drain(&mut a),
            vec![frame(mac(1), mac(99), b"echo").data().to_vec()]
        );
    }

    #[test]
    fn ports_work_across_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<MemoryPort>();
        assert_send::<MemoryNetwork>();

        let (mut a, mut b) = MemoryNetwork::pair(1500);
        let (tx, rx) = std::sync::mpsc::channel();
        b.set_waker(Box::new(move || {
            let _ = tx.send(());
        }));
        let sender = std::thread::spawn(move || {
            for i in 0..100u32 {
                a.transmit(T, frame(mac(2), mac(1), &i.to_be_bytes()))
                    .unwrap();
            }
            a
        });
        let mut seen = Vec::new();
        while seen.len() < 100 {
            rx.recv().unwrap();
            while let Some(f) = b.receive(T) {
                seen.push(u32::from_be_bytes(
                    f.data()[HEADER_LEN..].try_into().unwrap(),
                ));
            }
        }
        let a = sender.join().unwrap();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        assert_eq!(a.stats().tx_frames, 100);
    }

    proptest! {
        #[test]
        fn arbitrary_frames_never_panic_and_never_return_to_sender(
            frames in proptest::collection::vec(
                (0usize..3, proptest::collection::vec(any::<u8>(), 0..80)),
                0..40,
            )
        ) {
            let net = MemoryNetwork::with_queue_limit(50, 8);
            let mut ports: Vec<_> = (0..3).map(|_| net.attach()).collect();
            for (from, bytes) in frames {
                let f = PacketBuf::from_payload(0, &bytes);
                let before: Vec<u64> = ports.iter().map(|p| p.stats().rx_frames).collect();
                let r = ports[from].transmit(T, f);
                prop_assert_eq!(r.is_err(), bytes.len() > 64);
                prop_assert_eq!(ports[from].stats().rx_frames, before[from]);
            }
            for p in ports.iter_mut() {
                let s = p.stats();
                prop_assert!(p.queued() <= 8);
                prop_assert_eq!(drain(p).len() as u64, s.rx_frames);
            }
        }
    }
}
