//! The ARP neighbour cache: address resolution as a sans-IO state machine.
//!
//! Implements the resolution side of RFC 826 with the timing discipline of
//! RFC 1122 §2.3.2.1 (flood prevention: at most one request per destination
//! per retry interval) and §2.3.2.2 (queue at least one packet while
//! resolving). Each destination is in one of three states:
//!
//! - **Pending**: requests are being sent with exponential backoff starting
//!   at [`ArpConfig::retry_initial`] (short, because the first frame on a
//!   new link is often lost), capped at [`ArpConfig::retry_max`]; packets
//!   for it wait in a bounded per-destination queue. Waiting on one
//!   destination never blocks another.
//! - **Resolved**: the MAC is known until the entry expires; shortly before
//!   expiry, a use of the entry triggers a unicast refresh request while the
//!   old mapping stays in use (like Linux's PROBE state), so a busy flow
//!   never stalls on re-resolution.
//! - **Failed**: after [`ArpConfig::max_requests`] unanswered requests the
//!   queued packets are dropped and counted, and new packets to that
//!   destination are dropped at once until the hold-down ends.
//!
//! The cache holds at most [`ArpConfig::capacity`] entries and at most
//! [`ArpConfig::max_pending`] destinations in resolution; when full it
//! evicts the resolved or failed entry closest to expiry (a scan, which
//! only happens when the cache is full). When the pending table is full, a
//! new destination evicts the resolution that has gone longest unanswered
//! (its queued packets are dropped and counted): replies to spoofed
//! on-link sources, which never answer ARP, would otherwise fill it and
//! keep every real destination from being resolved. A real destination
//! still needs its answer before [`ArpConfig::max_pending`] newer
//! resolutions push it out: at 5,000 spoofed sources a second and the
//! default 64, about 13 ms, ample on a LAN. Queued packets count
//! as the allocations they hold, not their length.
//!
//! Not here: proxy ARP, ARP for multiple interfaces, static entries beyond
//! [`ArpCache::insert_static`].
//!
//! # Example
//!
//! A packet for an unknown neighbour waits while a request goes out, and is
//! handed back when the reply is learnt:
//!
//! ```
//! use std::net::Ipv4Addr;
//! use netstrata::buf::PacketBuf;
//! use netstrata::link::arp_cache::Resolution;
//! use netstrata::link::{ArpCache, ArpConfig, EthernetAddress};
//! use netstrata::{Duration, Instant};
//!
//! let mut cache = ArpCache::new(ArpConfig::default(), [1, 2]);
//! let peer = Ipv4Addr::new(192, 0, 2, 2);
//! let now = Instant::ZERO;
//! let packet = PacketBuf::from_payload(64, b"datagram");
//! let r = cache.resolve(now, peer, packet);
//! assert!(matches!(r, Resolution::Queued { send_request: true }));
//! // The first retransmission is due after `retry_initial`.
//! assert_eq!(cache.poll_at(), Some(now + Duration::from_millis(100)));
//!
//! let waiting = cache.learn(now, peer, EthernetAddress::local(2), true);
//! assert_eq!(waiting[0].data(), b"datagram");
//! assert_eq!(cache.lookup(now, peer), Some(EthernetAddress::local(2)));
//! let r = cache.resolve(now, peer, PacketBuf::from_payload(64, b"next"));
//! assert!(matches!(r, Resolution::Send { mac, .. } if mac == EthernetAddress::local(2)));
//! ```

use std::cmp::Reverse;
use std::collections::VecDeque;
use std::net::Ipv4Addr;

use crate::buf::PacketBuf;
use crate::epoch::Epoch;
use crate::hash::{KeyedMap, keyed_map};
use crate::link::ethernet::EthernetAddress;
use crate::time::{Duration, Instant};

/// Timing and size limits of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpConfig {
    /// Most entries held.
    pub capacity: usize,
    /// Most destinations being resolved at once.
    pub max_pending: usize,
    /// Most packets queued per destination while it resolves.
    pub queue_per_destination: usize,
    /// Most bytes queued per destination while it resolves (Linux's
    /// `unres_qlen_bytes`); enough for the fragments of one 64 KiB
    /// datagram.
    pub queue_bytes_per_destination: usize,
    /// How long a resolved entry is trusted.
    pub reachable_time: Duration,
    /// How long before expiry a used entry is refreshed by a unicast
    /// request.
    pub refresh_before: Duration,
    /// Delay before the first retransmitted request.
    pub retry_initial: Duration,
    /// Largest delay between requests.
    pub retry_max: Duration,
    /// Requests sent before giving up.
    pub max_requests: u32,
    /// How long past expiry an entry is still used while being
    /// re-confirmed by unicast probes.
    pub stale_time: Duration,
    /// How long a failed destination drops packets before resolution is
    /// tried again.
    pub failed_holddown: Duration,
}

impl Default for ArpConfig {
    fn default() -> Self {
        ArpConfig {
            capacity: 1024,
            max_pending: 64,
            queue_per_destination: 64,
            queue_bytes_per_destination: 128 * 1024,
            reachable_time: Duration::from_secs(60),
            refresh_before: Duration::from_secs(5),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
            max_requests: 6,
            stale_time: Duration::from_secs(60),
            failed_holddown: Duration::from_secs(1),
        }
    }
}

#[derive(Debug)]
enum State {
    Pending {
        requests_sent: u32,
        next_request: Instant,
        queue: VecDeque<PacketBuf>,
        /// Memory the packets in `queue` hold (their allocations).
        queued_bytes: usize,
    },
    Resolved {
        mac: EthernetAddress,
        expires: Instant,
        /// When a refresh (unicast) request last went out.
        probed_at: Option<Instant>,
        permanent: bool,
    },
    Failed {
        until: Instant,
    },
}

/// What to do with a packet for a destination.
#[derive(Debug)]
pub enum Resolution {
    /// Send it to this MAC now. If `refresh` is set, also send a unicast
    /// request to that MAC to refresh the entry.
    Send {
        /// The destination's MAC.
        mac: EthernetAddress,
        /// The packet, handed back.
        packet: PacketBuf,
        /// Whether to send a unicast refresh request.
        refresh: bool,
    },
    /// The packet waits for resolution. If `send_request` is set, a
    /// broadcast request must go out now (a new resolution).
    Queued {
        /// Whether to broadcast a request now.
        send_request: bool,
    },
    /// The packet was not queued.
    Dropped {
        /// The packet, handed back for recycling.
        packet: PacketBuf,
        /// Why.
        reason: ArpDrop,
    },
}

/// Why the cache refused a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpDrop {
    /// The destination recently failed to resolve.
    Failed,
    /// The destination's queue is full.
    QueueFull,
    /// Too many destinations are being resolved.
    TooManyPending,
}

/// A request the cache wants sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRequest {
    /// The address to resolve.
    pub target: Ipv4Addr,
}

/// The cache's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArpStats {
    /// Requests asked for (first and retransmitted).
    pub requests: u64,
    /// Resolutions that failed.
    pub failures: u64,
    /// Packets dropped because their destination failed to resolve.
    pub dropped_unresolved: u64,
    /// Packets dropped because a queue or the pending table was full.
    pub dropped_queue_full: u64,
    /// Entries evicted to make room.
    pub evictions: u64,
    /// Resolutions in progress evicted because the pending table was full.
    pub pending_evicted: u64,
}

/// The neighbour cache.
#[derive(Debug)]
pub struct ArpCache {
    config: ArpConfig,
    entries: KeyedMap<Ipv4Addr, State>,
    /// Destinations in the Pending state (at most `max_pending`).
    pending: Vec<Ipv4Addr>,
    /// Fresh whenever an entry's address changes or an entry is added
    /// over or removed (and in a new cache): every [`NeighbourHint`] taken
    /// before then is void.
    epoch: Epoch,
    /// The hint of the last packet sent without one of its own: a flow
    /// whose sender keeps no hint still skips the table.
    last: NeighbourHint,
    stats: ArpStats,
}

/// What a flow remembers of its neighbour: the MAC, and until when its
/// packets need nothing but that MAC (no refresh probe due). Kept by the
/// flow and handed to [`ArpCache::resolve`] with each packet, it lets the
/// packet skip the table. It is void once the time has passed or any entry
/// of the cache has been learnt, added or removed since it was taken; the
/// default hint is void.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NeighbourHint {
    ip: Option<Ipv4Addr>,
    mac: EthernetAddress,
    until: Instant,
    epoch: Epoch,
}

impl ArpCache {
    /// An empty cache, its table indexed under the secret hash key `key`
    /// ([`crate::hash`]).
    pub fn new(config: ArpConfig, key: [u64; 2]) -> ArpCache {
        ArpCache {
            config,
            entries: keyed_map(key),
            pending: Vec::new(),
            epoch: Epoch::fresh(),
            last: NeighbourHint::default(),
            stats: ArpStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ArpConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> ArpStats {
        self.stats
    }

    /// Number of entries in any state.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The MAC for `ip` if resolved and not expired.
    pub fn lookup(&self, now: Instant, ip: Ipv4Addr) -> Option<EthernetAddress> {
        match self.entries.get(&ip) {
            Some(State::Resolved {
                mac,
                expires,
                permanent,
                ..
            }) if *permanent || *expires > now => Some(*mac),
            _ => None,
        }
    }

    /// Adds an entry that never expires.
    pub fn insert_static(&mut self, ip: Ipv4Addr, mac: EthernetAddress) {
        // Static entries are the administrator's choice: added even if the
        // cache is full of entries that cannot be evicted.
        self.make_room(Instant::ZERO, ip);
        self.epoch = Epoch::fresh();
        self.entries.insert(
            ip,
            State::Resolved {
                mac,
                expires: Instant::ZERO,
                probed_at: None,
                permanent: true,
            },
        );
    }

    /// Decides what to do with `packet` bound for `ip`.
    pub fn resolve(&mut self, now: Instant, ip: Ipv4Addr, packet: PacketBuf) -> Resolution {
        if let Some(mac) = self.hinted(now, ip, &self.last) {
            return Resolution::Send {
                mac,
                packet,
                refresh: false,
            };
        }
        let mut last = self.last;
        let resolution = self.resolve_hinted(now, ip, packet, &mut last);
        self.last = last;
        resolution
    }

    /// The MAC that `hint` remembers for `ip`, if the hint still holds: a
    /// packet to `ip` then needs nothing else.
    #[inline]
    pub fn hinted(
        &self,
        now: Instant,
        ip: Ipv4Addr,
        hint: &NeighbourHint,
    ) -> Option<EthernetAddress> {
        (hint.ip == Some(ip) && hint.epoch == self.epoch && now < hint.until).then_some(hint.mac)
    }

    /// Decides what to do with `packet` bound for `ip` by the table, and
    /// refreshes `hint` (a flow's memory of `ip`) from it: for a flow whose
    /// hint no longer holds ([`ArpCache::hinted`] said so; while it holds,
    /// the packet needs nothing but the MAC it gives).
    pub fn resolve_hinted(
        &mut self,
        now: Instant,
        ip: Ipv4Addr,
        packet: PacketBuf,
        hint: &mut NeighbourHint,
    ) -> Resolution {
        let cfg = self.config;
        match self.entries.get_mut(&ip) {
            Some(State::Resolved {
                mac,
                expires,
                probed_at,
                permanent,
            }) => {
                // Fresh, or stale but within the grace period: keep using
                // the known MAC (like Linux's STALE/PROBE states) and probe
                // it by unicast, at most once per retry interval, from
                // shortly before expiry on. A flow never stalls on
                // re-resolution of a neighbour that is still there.
                if *permanent || now < *expires + cfg.stale_time {
                    let refresh = !*permanent
                        && *expires < now + cfg.refresh_before
                        && probed_at.is_none_or(|t| now >= t + cfg.retry_max);
                    if refresh {
                        *probed_at = Some(now);
                        self.stats.requests += 1;
                    }
                    // Until a refresh may be due, the next packets need
                    // only the MAC.
                    let until = if *permanent {
                        Instant::from_micros(u64::MAX)
                    } else {
                        *expires - cfg.refresh_before
                    };
                    *hint = NeighbourHint {
                        ip: Some(ip),
                        mac: *mac,
                        until,
                        epoch: self.epoch,
                    };
                    return Resolution::Send {
                        mac: *mac,
                        packet,
                        refresh,
                    };
                }
                // Expired: resolve afresh below.
            }
            Some(State::Pending {
                queue,
                queued_bytes,
                ..
            }) => {
                if queue.len() >= cfg.queue_per_destination
                    || *queued_bytes + packet.truesize() > cfg.queue_bytes_per_destination
                {
                    self.stats.dropped_queue_full += 1;
                    return Resolution::Dropped {
                        packet,
                        reason: ArpDrop::QueueFull,
                    };
                }
                *queued_bytes += packet.truesize();
                queue.push_back(packet);
                return Resolution::Queued {
                    send_request: false,
                };
            }
            Some(State::Failed { until }) if *until > now => {
                self.stats.dropped_unresolved += 1;
                return Resolution::Dropped {
                    packet,
                    reason: ArpDrop::Failed,
                };
            }
            Some(State::Failed { .. }) | None => {}
        }
        if self.pending.len() >= cfg.max_pending && !self.evict_stalest_pending() {
            self.stats.dropped_queue_full += 1;
            return Resolution::Dropped {
                packet,
                reason: ArpDrop::TooManyPending,
            };
        }
        // A cache full of resolutions in progress takes no more: the
        // capacity bounds every entry, pending ones included.
        if !self.make_room(now, ip) {
            self.stats.dropped_queue_full += 1;
            return Resolution::Dropped {
                packet,
                reason: ArpDrop::TooManyPending,
            };
        }
        let queued_bytes = packet.truesize();
        let mut queue = VecDeque::with_capacity(4);
        queue.push_back(packet);
        self.entries.insert(
            ip,
            State::Pending {
                requests_sent: 1,
                next_request: now + cfg.retry_initial,
                queue,
                queued_bytes,
            },
        );
        self.pending.push(ip);
        self.stats.requests += 1;
        Resolution::Queued { send_request: true }
    }

    /// Records that `ip` is at `mac` (from an ARP packet). An existing
    /// entry is always updated (RFC 826's merge); a new one is created only
    /// if `create` (the packet was addressed to us). Returns the packets that
    /// were waiting for this destination, to be sent now.
    pub fn learn(
        &mut self,
        now: Instant,
        ip: Ipv4Addr,
        mac: EthernetAddress,
        create: bool,
    ) -> VecDeque<PacketBuf> {
        if !mac.is_unicast() || ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
            return VecDeque::new();
        }
        let expires = now + self.config.reachable_time;
        let fresh = State::Resolved {
            mac,
            expires,
            probed_at: None,
            permanent: false,
        };
        match self.entries.get_mut(&ip) {
            Some(State::Resolved {
                permanent: true, ..
            }) => VecDeque::new(),
            Some(state @ State::Pending { .. }) => {
                let old = core::mem::replace(state, fresh);
                self.pending.retain(|p| *p != ip);
                self.epoch = Epoch::fresh();
                match old {
                    State::Pending { queue, .. } => queue,
                    _ => VecDeque::new(),
                }
            }
            Some(state) => {
                // The same address again only extends the entry: hints
                // taken from it expire sooner than it now does, which is
                // safe. A new address voids them all.
                if !matches!(state, State::Resolved { mac: known, .. } if *known == mac) {
                    self.epoch = Epoch::fresh();
                }
                *state = fresh;
                VecDeque::new()
            }
            None => {
                if create && self.make_room(now, ip) {
                    self.entries.insert(ip, fresh);
                }
                VecDeque::new()
            }
        }
    }

    /// Advances timers: calls `send_request` for each retransmission due and
    /// `dropped` with each packet discarded because its destination failed.
    pub fn poll(
        &mut self,
        now: Instant,
        mut send_request: impl FnMut(ArpRequest),
        mut dropped: impl FnMut(PacketBuf),
    ) {
        let cfg = self.config;
        let mut i = 0;
        while i < self.pending.len() {
            let ip = self.pending[i];
            let Some(state) = self.entries.get_mut(&ip) else {
                self.pending.swap_remove(i);
                continue;
            };
            let State::Pending {
                requests_sent,
                next_request,
                queue,
                ..
            } = state
            else {
                self.pending.swap_remove(i);
                continue;
            };
            if *next_request > now {
                i += 1;
                continue;
            }
            if *requests_sent >= cfg.max_requests {
                log::debug!("ARP resolution of {ip} failed after {requests_sent} requests");
                self.stats.failures += 1;
                for p in queue.drain(..) {
                    self.stats.dropped_unresolved += 1;
                    dropped(p);
                }
                *state = State::Failed {
                    until: now + cfg.failed_holddown,
                };
                self.pending.swap_remove(i);
                continue;
            }
            let backoff = cfg
                .retry_initial
                .saturating_mul(1u32 << (*requests_sent).min(16))
                .min(cfg.retry_max);
            *requests_sent += 1;
            *next_request = now + backoff;
            self.stats.requests += 1;
            send_request(ArpRequest { target: ip });
            i += 1;
        }
    }

    /// When [`ArpCache::poll`] next has work (a retransmission or a
    /// give-up), if ever.
    pub fn poll_at(&self) -> Option<Instant> {
        self.pending
            .iter()
            .filter_map(|ip| match self.entries.get(ip) {
                Some(State::Pending { next_request, .. }) => Some(*next_request),
                _ => None,
            })
            .min()
    }

    /// Evicts the resolution that has sent the most requests unanswered
    /// (dropping its queue); false if nothing is pending.
    fn evict_stalest_pending(&mut self) -> bool {
        let stalest = self
            .pending
            .iter()
            .enumerate()
            .max_by_key(|&(i, ip)| match self.entries.get(ip) {
                Some(State::Pending {
                    requests_sent,
                    next_request,
                    ..
                }) => (*requests_sent, Reverse(*next_request), Reverse(i)),
                _ => (u32::MAX, Reverse(Instant::ZERO), Reverse(i)),
            })
            .map(|(i, ip)| (i, *ip));
        let Some((i, ip)) = stalest else {
            return false;
        };
        self.pending.swap_remove(i);
        if let Some(State::Pending { queue, .. }) = self.entries.remove(&ip) {
            self.stats.dropped_queue_full += queue.len() as u64;
        }
        self.stats.pending_evicted += 1;
        log::debug!("ARP: pending table full, giving up on {ip}");
        true
    }

    /// Makes room for an entry for `incoming`, evicting one if the cache is
    /// full. Returns false if it is full of entries that cannot be evicted
    /// (pending and permanent ones): possible when `capacity` is configured
    /// at or below `max_pending`. An eviction voids every
    /// [`NeighbourHint`].
    fn make_room(&mut self, now: Instant, incoming: Ipv4Addr) -> bool {
        if self.entries.len() < self.config.capacity || self.entries.contains_key(&incoming) {
            return true;
        }
        // Evict the non-pending, non-permanent entry closest to expiry.
        let victim = self
            .entries
            .iter()
            .filter_map(|(ip, s)| match s {
                State::Resolved {
                    expires,
                    permanent: false,
                    ..
                } => Some((*expires, *ip)),
                State::Failed { until } => Some((*until, *ip)),
                _ => None,
            })
            .min();
        if let Some((_, ip)) = victim {
            log::trace!("ARP cache full at {now}: evicting {ip}");
            self.entries.remove(&ip);
            self.epoch = Epoch::fresh();
            self.stats.evictions += 1;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u64; 2] = [3, 4];
    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    fn pkt(n: u8) -> PacketBuf {
        PacketBuf::from_payload(0, &[n])
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// Replies to spoofed on-link sources (which never answer ARP) fill the
    /// pending table; a real destination is still resolved, and the flood's
    /// entries are what make way.
    #[test]
    fn a_flood_of_unanswered_resolutions_does_not_block_a_real_one() {
        let cfg = ArpConfig::default();
        let mut c = ArpCache::new(cfg, KEY);
        let mut at = 0;
        for i in 0..1000u32 {
            at += 1;
            c.resolve(t(at), Ipv4Addr::from(0x0a00_0000 + i), pkt(0));
            c.poll(t(at), |_| {}, drop);
        }
        assert_eq!(c.pending.len(), cfg.max_pending);
        assert!(matches!(
            c.resolve(t(at), B, pkt(1)),
            Resolution::Queued { send_request: true }
        ));
        // The answer comes a millisecond later, while the flood goes on.
        for i in 1000..1010u32 {
            c.resolve(t(at), Ipv4Addr::from(0x0a00_0000 + i), pkt(0));
        }
        let released = c.learn(t(at + 1), B, EthernetAddress::local(2), false);
        assert_eq!(released.len(), 1);
        assert!(c.stats().pending_evicted >= 1000 - cfg.max_pending as u64);
        assert!(c.len() <= cfg.capacity);
    }

    /// Regression: with `capacity` at or below `max_pending`, resolutions
    /// in progress (which cannot be evicted) used to grow the cache past
    /// its capacity.
    #[test]
    fn capacity_bounds_pending_entries() {
        let cfg = ArpConfig {
            capacity: 2,
            max_pending: 8,
            ..ArpConfig::default()
        };
        let mut c = ArpCache::new(cfg, KEY);
        for n in 1..=2 {
            assert!(matches!(
                c.resolve(t(0), Ipv4Addr::new(192, 0, 2, n), pkt(n)),
                Resolution::Queued { send_request: true }
            ));
        }
        assert!(matches!(
            c.resolve(t(0), Ipv4Addr::new(192, 0, 2, 3), pkt(3)),
            Resolution::Dropped {
                reason: ArpDrop::TooManyPending,
                ..
            }
        ));
        // Nor does an ARP request addressed to us add an entry.
        c.learn(
            t(0),
            Ipv4Addr::new(192, 0, 2, 4),
            EthernetAddress::local(4),
            true,
        );
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn resolve_queue_then_learn_flushes() {
        let mut c = ArpCache::new(ArpConfig::default(), KEY);
        assert!(matches!(
            c.resolve(t(0), A, pkt(1)),
            Resolution::Queued { send_request: true }
        ));
        assert!(matches!(
            c.resolve(t(1), A, pkt(2)),
            Resolution::Queued {
                send_request: false
            }
        ));
        let mac = EthernetAddress::local(1);
        let flushed = c.learn(t(2), A, mac, false);
        assert_eq!(
            flushed.iter().map(|p| p.data()[0]).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(
            matches!(c.resolve(t(3), A, pkt(3)), Resolution::Send { mac: m, refresh: false, .. } if m == mac)
        );
        assert_eq!(c.lookup(t(3), A), Some(mac));
    }

    #[test]
    fn retries_back_off_then_fail_and_hold_down() {
        let cfg = ArpConfig::default();
        let mut c = ArpCache::new(cfg, KEY);
        c.resolve(t(0), A, pkt(1));
        let mut sent = vec![];
        let mut dropped = 0;
        let mut now = t(0);
        for _ in 0..100 {
            let Some(next) = c.poll_at() else { break };
            now = next;
            c.poll(now, |r| sent.push((now, r.target)), |_| dropped += 1);
        }
        let times: Vec<u64> = sent.iter().map(|(t, _)| t.total_millis()).collect();
        assert_eq!(times, vec![100, 300, 700, 1500, 2500]);
        assert_eq!(dropped, 1);
        assert_eq!(c.stats().failures, 1);
        assert_eq!(c.stats().requests, u64::from(cfg.max_requests));
        assert!(matches!(
            c.resolve(now + Duration::from_millis(10), A, pkt(2)),
            Resolution::Dropped {
                reason: ArpDrop::Failed,
                ..
            }
        ));
        assert!(matches!(
            c.resolve(now + cfg.failed_holddown, A, pkt(3)),
            Resolution::Queued { send_request: true }
        ));
    }

    #[test]
    fn waiting_destination_does_not_block_others() {
        let mut c = ArpCache::new(ArpConfig::default(), KEY);
        c.resolve(t(0), A, pkt(1));
        c.learn(t(0), B, EthernetAddress::local(2), true);
        assert!(matches!(
            c.resolve(t(1), B, pkt(2)),
            Resolution::Send { .. }
        ));
    }

    #[test]
    fn queues_and_table_are_bounded() {
        let cfg = ArpConfig {
            capacity: 8,
            max_pending: 4,
            queue_per_destination: 2,
            ..ArpConfig::default()
        };
        let mut c = ArpCache::new(cfg, KEY);
        c.resolve(t(0), A, pkt(1));
        c.resolve(t(0), A, pkt(2));
        assert!(matches!(
            c.resolve(t(0), A, pkt(3)),
            Resolution::Dropped {
                reason: ArpDrop::QueueFull,
                ..
            }
        ));
        for i in 0..3 {
            c.resolve(t(0), Ipv4Addr::new(10, 0, 0, i), pkt(0));
        }
        // The pending table is full: the stalest resolution (A's, the
        // first) makes way, its two packets dropped.
        assert!(matches!(
            c.resolve(t(0), Ipv4Addr::new(10, 0, 1, 1), pkt(0)),
            Resolution::Queued { send_request: true }
        ));
        assert_eq!(c.stats().pending_evicted, 1);
        assert_eq!(c.stats().dropped_queue_full, 1 + 2);
        assert_eq!(c.pending.len(), cfg.max_pending);
        for i in 0..100u32 {
            c.learn(
                t(u64::from(i)),
                Ipv4Addr::from(0x0b00_0000 + i),
                EthernetAddress::local(i),
                true,
            );
        }
        assert!(c.len() <= cfg.capacity);
        assert!(c.stats().evictions > 0);
    }

    #[test]
    fn unsolicited_replies_do_not_create_entries() {
        let mut c = ArpCache::new(ArpConfig::default(), KEY);
        c.learn(t(0), A, EthernetAddress::local(1), false);
        assert_eq!(c.lookup(t(0), A), None);
        // Broadcast MACs are never learned.
        c.learn(t(0), A, EthernetAddress::BROADCAST, true);
        assert_eq!(c.lookup(t(0), A), None);
    }

    #[test]
    fn entries_expire_and_refresh_before_expiry() {
        let cfg = ArpConfig::default();
        let mut c = ArpCache::new(cfg, KEY);
        let mac = EthernetAddress::local(1);
        c.learn(t(0), A, mac, true);
        let near = Instant::ZERO + cfg.reachable_time - Duration::from_secs(1);
        assert!(matches!(
            c.resolve(near, A, pkt(1)),
            Resolution::Send { refresh: true, .. }
        ));
        assert!(matches!(
            c.resolve(near, A, pkt(1)),
            Resolution::Send { refresh: false, .. }
        ));
        // Expired but within the stale grace: still used, probed again
        // once per retry interval.
        let after = Instant::ZERO + cfg.reachable_time;
        assert_eq!(c.lookup(after, A), None);
        assert!(matches!(
            c.resolve(after, A, pkt(2)),
            Resolution::Send { refresh: true, mac: m, .. } if m == mac
        ));
        assert!(matches!(
            c.resolve(after, A, pkt(2)),
            Resolution::Send { refresh: false, .. }
        ));
        // A reply renews it.
        c.learn(after, A, mac, false);
        assert_eq!(c.lookup(after, A), Some(mac));
        // Never confirmed within the grace: resolved afresh.
        let gone = after + cfg.reachable_time + cfg.stale_time;
        assert!(matches!(
            c.resolve(gone, A, pkt(3)),
            Resolution::Queued { send_request: true }
        ));
    }

    /// The last neighbour's MAC is reused without the table only while
    /// nothing else is due: a refresh near expiry still happens, and a
    /// new MAC takes effect at once.
    #[test]
    fn the_last_neighbour_shortcut_skips_nothing_due() {
        let cfg = ArpConfig::default();
        let mut c = ArpCache::new(cfg, KEY);
        let (old, new) = (EthernetAddress::local(1), EthernetAddress::local(2));
        c.learn(t(0), A, old, true);
        c.learn(t(0), B, new, true);
        for ms in [1, 2, 3] {
            assert!(matches!(
                c.resolve(t(ms), A, pkt(1)),
                Resolution::Send { mac, refresh: false, .. } if mac == old
            ));
        }
        assert!(matches!(
            c.resolve(t(4), B, pkt(1)),
            Resolution::Send { mac, .. } if mac == new
        ));
        assert!(matches!(
            c.resolve(t(5), A, pkt(1)),
            Resolution::Send { mac, .. } if mac == old
        ));
        let near = Instant::ZERO + cfg.reachable_time - Duration::from_secs(1);
        assert!(matches!(
            c.resolve(near, A, pkt(1)),
            Resolution::Send { refresh: true, .. }
        ));
        c.learn(near, A, new, false);
        assert!(matches!(
            c.resolve(near, A, pkt(1)),
            Resolution::Send { mac, refresh: false, .. } if mac == new
        ));
        c.insert_static(A, old);
        assert!(matches!(
            c.resolve(near, A, pkt(1)),
            Resolution::Send { mac, .. } if mac == old
        ));
    }

    /// A flow's own hint outlives other flows' packets (the shared
    /// shortcut does not), never stands for another neighbour, and never
    /// hides a refresh that falls due or an entry added since.
    #[test]
    fn a_flow_hint_holds_across_flows_and_yields_to_refresh() {
        let cfg = ArpConfig::default();
        let mut c = ArpCache::new(cfg, KEY);
        let (ma, mb) = (EthernetAddress::local(1), EthernetAddress::local(2));
        c.learn(t(0), A, ma, true);
        c.learn(t(0), B, mb, true);
        let mut h = NeighbourHint::default();
        assert_eq!(c.hinted(t(1), A, &h), None);
        c.resolve_hinted(t(1), A, pkt(1), &mut h);
        assert_eq!(c.hinted(t(1), A, &h), Some(ma));
        c.resolve(t(2), B, pkt(1));
        assert_eq!(c.hinted(t(2), A, &h), Some(ma));
        assert_eq!(c.hinted(t(2), B, &h), None);
        let near = Instant::ZERO + cfg.reachable_time - Duration::from_secs(1);
        assert_eq!(c.hinted(near, A, &h), None);
        assert!(matches!(
            c.resolve_hinted(near, A, pkt(1), &mut h),
            Resolution::Send { mac, refresh: true, .. } if mac == ma
        ));
        let mut fresh = NeighbourHint::default();
        c.resolve_hinted(t(3), B, pkt(1), &mut fresh);
        assert_eq!(c.hinted(t(3), B, &fresh), Some(mb));
        c.insert_static(Ipv4Addr::new(192, 0, 2, 9), ma);
        assert_eq!(c.hinted(t(3), B, &fresh), None);
    }

    #[test]
    fn queue_bytes_are_bounded() {
        let cfg = ArpConfig {
            queue_bytes_per_destination: 100,
            ..ArpConfig::default()
        };
        let mut c = ArpCache::new(cfg, KEY);
        let big = || PacketBuf::from_payload(0, &[0; 40]);
        c.resolve(t(0), A, big());
        c.resolve(t(0), A, big());
        assert!(matches!(
            c.resolve(t(0), A, big()),
            Resolution::Dropped {
                reason: ArpDrop::QueueFull,
                ..
            }
        ));
        assert!(matches!(
            c.resolve(t(0), A, PacketBuf::from_payload(0, &[0; 20])),
            Resolution::Queued { .. }
        ));
        assert_eq!(c.learn(t(1), A, EthernetAddress::local(1), false).len(), 3);
    }
}
