//! Ping: ICMP echo request sockets (RFC 792, "Echo or Echo Reply Message").
//!
//! A ping socket has a random identifier; requests carry it and a sequence
//! number, and replies are matched on both. Each request's send time is
//! remembered here (the caller's clock), so the round-trip time does not
//! depend on what the peer echoes back; the data still begins with the send
//! time in microseconds, as Linux's `ping` does with its timeval, followed
//! by the same incrementing byte pattern.
//!
//! Requests are queued by [`PingSockets::send`] and transmitted by the next
//! poll of the interface; replies, ICMP errors and timeouts come back as
//! [`PingEvent`]s. Queues are bounded; lookups are by identifier in O(1).
//!
//! ```
//! use std::net::Ipv4Addr;
//! use netstrata::internet::ping::{PingError, PingEvent};
//! use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
//! use netstrata::sim::Simulation;
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
//! let (a, _b) = (host(1), host(2));
//! let h = sim.iface(a).ping().open(Duration::from_secs(1))?;
//! sim.iface(a).ping().send(h, Ipv4Addr::new(192, 0, 2, 2), 1, 56)?;
//! // Nothing yet: WouldBlock, until the reply comes.
//! assert_eq!(sim.iface(a).ping().recv(h), Err(PingError::WouldBlock));
//! let mut event = None;
//! sim.run_while_not(Duration::from_secs(2), |s| {
//!     event = s.iface(a).ping().recv(h).ok();
//!     event.is_some()
//! });
//! let Some(PingEvent::Reply(reply)) = event else { panic!("{event:?}") };
//! assert_eq!(reply.seq_no, 1);
//! # Ok::<(), PingError>(())
//! ```

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;

use crate::internet::endpoint::{IcmpErrorKind, IpSendError};
use crate::rand::KeyedRng;
use crate::slab::{Slab, SlabKey};
use crate::time::{Duration, Instant};

/// A ping socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PingHandle(SlabKey);

/// A reply to one of our requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    /// Who answered.
    pub from: Ipv4Addr,
    /// The request's sequence number.
    pub seq_no: u16,
    /// TTL of the reply as received.
    pub ttl: u8,
    /// ICMP message length (header and data), as `ping` reports it.
    pub icmp_len: usize,
    /// Time from sending the request to receiving the reply.
    pub rtt: Duration,
}

/// Something that happened to a ping socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingEvent {
    /// A reply arrived.
    Reply(EchoReply),
    /// An ICMP error about one of our requests.
    Error {
        /// Who reported it.
        reporter: Ipv4Addr,
        /// What it says.
        kind: IcmpErrorKind,
    },
    /// The request could not be sent (no route, ARP failure...).
    SendFailed {
        /// Its sequence number.
        seq_no: u16,
        /// Why.
        error: IpSendError,
    },
    /// No reply came within the socket's timeout.
    Timeout {
        /// Where the request went.
        dst: Ipv4Addr,
        /// Its sequence number.
        seq_no: u16,
    },
}

/// Why a ping could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PingError {
    /// The handle does not name an open ping socket.
    #[error("no such ping socket")]
    InvalidHandle,
    /// No event is waiting: try again after the next poll.
    #[error("operation would block")]
    WouldBlock,
    /// Too many requests are waiting for a reply.
    #[error("too many echo requests outstanding (at most {0})")]
    TooManyOutstanding(usize),
    /// The requested size does not fit in a datagram.
    #[error("payload of {0} bytes is larger than the 65507 an echo request can carry")]
    TooLarge(usize),
    /// All 65536 identifiers are taken by open sockets.
    #[error("no free ICMP echo identifier: 65536 ping sockets are open")]
    NoFreeIdentifier,
}

/// Counters of the ping sockets of an interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PingLayerStats {
    /// Echo replies that matched no outstanding request.
    pub unmatched_replies: u64,
}

/// Largest ping payload (65535 - 20 - 8).
pub const MAX_PAYLOAD: usize = 65507;
const MAX_OUTSTANDING: usize = 256;
const MAX_EVENTS: usize = 256;

#[derive(Debug, Clone, Copy)]
struct Outstanding {
    dst: Ipv4Addr,
    seq_no: u16,
    sent: Option<Instant>,
    payload_len: usize,
}

#[derive(Debug)]
struct PingSocket {
    ident: u16,
    timeout: Duration,
    outstanding: VecDeque<Outstanding>,
    events: VecDeque<PingEvent>,
}

/// A request ready to be transmitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingEcho {
    /// Destination.
    pub dst: Ipv4Addr,
    /// Identifier.
    pub ident: u16,
    /// Sequence number.
    pub seq_no: u16,
    /// Data length.
    pub payload_len: usize,
}

/// All ping sockets of an interface.
#[derive(Debug)]
pub struct PingSockets {
    rng: KeyedRng,
    sockets: Slab<PingSocket>,
    by_ident: HashMap<u16, SlabKey>,
    /// Requests queued by `send` and not yet taken for transmission.
    unsent: usize,
    unmatched_replies: u64,
}

impl PingSockets {
    /// No sockets; identifiers are drawn from `rng`.
    pub fn new(rng: KeyedRng) -> PingSockets {
        PingSockets {
            rng,
            sockets: Slab::new(),
            by_ident: HashMap::new(),
            unsent: 0,
            unmatched_replies: 0,
        }
    }

    /// Opens a socket whose requests time out after `timeout`. Fails only
    /// if every identifier is in use.
    pub fn open(&mut self, timeout: Duration) -> Result<PingHandle, PingError> {
        // A few random draws, then a bounded scan from a random start, so
        // that a nearly full identifier space neither loops forever nor
        // stops being random while it has room.
        let start = self.rng.next_u32() as u16;
        let ident = (0..8)
            .map(|_| self.rng.next_u32() as u16)
            .chain((0..=u16::MAX).map(|i| start.wrapping_add(i)))
            .find(|id| !self.by_ident.contains_key(id))
            .ok_or(PingError::NoFreeIdentifier)?;
        let socket = PingSocket {
            ident,
            timeout,
            outstanding: VecDeque::new(),
            events: VecDeque::new(),
        };
        let slot = self.sockets.insert(socket);
        self.by_ident.insert(ident, slot);
        Ok(PingHandle(slot))
    }

    /// Closes a socket; outstanding requests are forgotten.
    pub fn close(&mut self, handle: PingHandle) -> Result<(), PingError> {
        let s = self
            .sockets
            .remove(handle.0)
            .ok_or(PingError::InvalidHandle)?;
        self.by_ident.remove(&s.ident);
        self.unsent -= s.outstanding.iter().filter(|o| o.sent.is_none()).count();
        Ok(())
    }

    /// The identifier a socket's requests carry.
    pub fn ident(&self, handle: PingHandle) -> Result<u16, PingError> {
        self.socket(handle)
            .map(|s| s.ident)
            .ok_or(PingError::InvalidHandle)
    }

    fn socket(&self, h: PingHandle) -> Option<&PingSocket> {
        self.sockets.get(h.0)
    }

    fn socket_mut(&mut self, h: PingHandle) -> Option<&mut PingSocket> {
        self.sockets.get_mut(h.0)
    }

    /// Queues an echo request with `payload_len` bytes of data to `dst`.
    pub fn send(
        &mut self,
        handle: PingHandle,
        dst: Ipv4Addr,
        seq_no: u16,
        payload_len: usize,
    ) -> Result<(), PingError> {
        if payload_len > MAX_PAYLOAD {
            return Err(PingError::TooLarge(payload_len));
        }
        let s = self.socket_mut(handle).ok_or(PingError::InvalidHandle)?;
        if s.outstanding.len() >= MAX_OUTSTANDING {
            return Err(PingError::TooManyOutstanding(MAX_OUTSTANDING));
        }
        s.outstanding.push_back(Outstanding {
            dst,
            seq_no,
            sent: None,
            payload_len,
        });
        self.unsent += 1;
        Ok(())
    }

    /// The next event of a socket, or [`PingError::WouldBlock`] if none is
    /// waiting.
    pub fn recv(&mut self, handle: PingHandle) -> Result<PingEvent, PingError> {
        let s = self.socket_mut(handle).ok_or(PingError::InvalidHandle)?;
        s.events.pop_front().ok_or(PingError::WouldBlock)
    }

    /// Counters of the ping sockets.
    pub fn stats(&self) -> PingLayerStats {
        PingLayerStats {
            unmatched_replies: self.unmatched_replies,
        }
    }

    /// Takes the requests waiting to be transmitted, marking them sent at
    /// `now`.
    pub(crate) fn take_pending(&mut self, now: Instant, out: &mut Vec<PendingEcho>) {
        if self.unsent == 0 {
            return;
        }
        self.unsent = 0;
        for (_, s) in self.sockets.iter_mut() {
            for o in s.outstanding.iter_mut().filter(|o| o.sent.is_none()) {
                o.sent = Some(now);
                out.push(PendingEcho {
                    dst: o.dst,
                    ident: s.ident,
                    seq_no: o.seq_no,
                    payload_len: o.payload_len,
                });
            }
        }
    }

    /// Whether any request waits to be transmitted.
    pub(crate) fn has_pending_tx(&self) -> bool {
        self.unsent > 0
    }

    fn push_event(s: &mut PingSocket, e: PingEvent) {
        if s.events.len() < MAX_EVENTS {
            s.events.push_back(e);
        }
    }

    pub(crate) fn deliver_reply(
        &mut self,
        now: Instant,
        from: Ipv4Addr,
        ident: u16,
        seq_no: u16,
        ttl: u8,
        data: &[u8],
    ) {
        let Some(s) = self
            .by_ident
            .get(&ident)
            .copied()
            .and_then(|i| self.sockets.get_mut(i))
        else {
            self.unmatched_replies += 1;
            return;
        };
        let Some(pos) = s
            .outstanding
            .iter()
            .position(|o| o.seq_no == seq_no && o.dst == from && o.sent.is_some())
        else {
            self.unmatched_replies += 1;
            return;
        };
        let Some(o) = s.outstanding.remove(pos) else {
            return;
        };
        let sent = o.sent.unwrap_or(now);
        Self::push_event(
            s,
            PingEvent::Reply(EchoReply {
                from,
                seq_no,
                ttl,
                icmp_len: 8 + data.len(),
                rtt: now - sent,
            }),
        );
    }

    pub(crate) fn deliver_error(
        &mut self,
        _now: Instant,
        reporter: Ipv4Addr,
        ident: u16,
        kind: IcmpErrorKind,
    ) {
        if let Some(s) = self
            .by_ident
            .get(&ident)
            .copied()
            .and_then(|i| self.sockets.get_mut(i))
        {
            Self::push_event(s, PingEvent::Error { reporter, kind });
        }
    }

    pub(crate) fn deliver_send_error(&mut self, ident: u16, seq_no: u16, error: IpSendError) {
        if let Some(s) = self
            .by_ident
            .get(&ident)
            .copied()
            .and_then(|i| self.sockets.get_mut(i))
        {
            s.outstanding
                .retain(|o| o.seq_no != seq_no || o.sent.is_none());
            Self::push_event(s, PingEvent::SendFailed { seq_no, error });
        }
    }

    /// Turns requests older than their socket's timeout into timeout
    /// events.
    pub(crate) fn expire(&mut self, now: Instant) {
        for (_, s) in self.sockets.iter_mut() {
            while let Some(o) = s.outstanding.front().copied() {
                match o.sent {
                    Some(sent) if sent + s.timeout <= now => {
                        s.outstanding.pop_front();
                        Self::push_event(
                            s,
                            PingEvent::Timeout {
                                dst: o.dst,
                                seq_no: o.seq_no,
                            },
                        );
                    }
                    _ => break,
                }
            }
        }
    }

    /// The earliest timeout.
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.sockets
            .iter()
            .filter_map(|(_, s)| {
                s.outstanding
                    .front()
                    .and_then(|o| o.sent.map(|t| t + s.timeout))
            })
            .min()
    }
}

/// Fills an echo request's data: the send time in microseconds (8 bytes,
/// big-endian) and then the byte pattern 0x08, 0x09, ... as `ping` does.
pub fn fill_echo_data(data: &mut [u8], now: Instant) {
    let ts = now.total_micros().to_be_bytes();
    for (i, b) in data.iter_mut().enumerate() {
        *b = if i < 8 { ts[i] } else { i as u8 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    #[test]
    fn reply_matches_request_and_measures_rtt() {
        let mut p = PingSockets::new(KeyedRng::from_seed(1));
        let h = p.open(Duration::from_secs(1)).unwrap();
        let ident = p.ident(h).unwrap();
        p.send(h, DST, 1, 56).unwrap();
        assert!(p.has_pending_tx());
        let mut out = vec![];
        p.take_pending(Instant::from_millis(10), &mut out);
        assert_eq!(
            out,
            vec![PendingEcho {
                dst: DST,
                ident,
                seq_no: 1,
                payload_len: 56
            }]
        );
        assert!(!p.has_pending_tx());
        // Wrong ident, wrong seq, wrong source: ignored.
        p.deliver_reply(
            Instant::from_millis(11),
            DST,
            ident.wrapping_add(1),
            1,
            64,
            &[0; 56],
        );
        p.deliver_reply(Instant::from_millis(11), DST, ident, 2, 64, &[0; 56]);
        p.deliver_reply(
            Instant::from_millis(11),
            Ipv4Addr::new(1, 1, 1, 1),
            ident,
            1,
            64,
            &[0; 56],
        );
        assert_eq!(p.stats().unmatched_replies, 3);
        p.deliver_reply(Instant::from_millis(12), DST, ident, 1, 63, &[0; 56]);
        match p.recv(h) {
            Ok(PingEvent::Reply(r)) => {
                assert_eq!(r.rtt, Duration::from_millis(2));
                assert_eq!(r.icmp_len, 64);
                assert_eq!(r.ttl, 63);
            }
            other => panic!("{other:?}"),
        }
        // A duplicate is not a second reply.
        p.deliver_reply(Instant::from_millis(13), DST, ident, 1, 63, &[0; 56]);
        assert_eq!(p.recv(h), Err(PingError::WouldBlock));
    }

    #[test]
    fn a_stale_handle_is_refused_not_taken_for_the_socket_in_its_slot() {
        let mut p = PingSockets::new(KeyedRng::from_seed(5));
        let old = p.open(Duration::from_secs(1)).unwrap();
        p.close(old).unwrap();
        let new = p.open(Duration::from_secs(1)).unwrap();
        assert_eq!(p.send(old, DST, 1, 0), Err(PingError::InvalidHandle));
        assert_eq!(p.ident(old), Err(PingError::InvalidHandle));
        assert_eq!(p.recv(old), Err(PingError::InvalidHandle));
        assert_eq!(p.close(old), Err(PingError::InvalidHandle));
        assert!(p.ident(new).is_ok());
        assert!(p.send(new, DST, 1, 0).is_ok());
    }

    #[test]
    fn timeouts_and_errors() {
        let mut p = PingSockets::new(KeyedRng::from_seed(2));
        let h = p.open(Duration::from_secs(1)).unwrap();
        p.send(h, DST, 7, 0).unwrap();
        p.take_pending(Instant::from_secs(5), &mut vec![]);
        assert_eq!(p.poll_at(), Some(Instant::from_secs(6)));
        p.expire(Instant::from_millis(5999));
        assert_eq!(p.recv(h), Err(PingError::WouldBlock));
        p.expire(Instant::from_secs(6));
        assert_eq!(
            p.recv(h),
            Ok(PingEvent::Timeout {
                dst: DST,
                seq_no: 7
            })
        );
        assert_eq!(p.poll_at(), None);
        assert_eq!(
            p.send(h, DST, 1, MAX_PAYLOAD + 1),
            Err(PingError::TooLarge(MAX_PAYLOAD + 1))
        );
        p.close(h).unwrap();
        assert_eq!(p.send(h, DST, 1, 1), Err(PingError::InvalidHandle));
    }

    #[test]
    fn identifier_exhaustion_is_an_error_not_a_hang() {
        let mut p = PingSockets::new(KeyedRng::from_seed(3));
        let handles: Vec<PingHandle> = (0..=u16::MAX)
            .map(|_| p.open(Duration::from_secs(1)).unwrap())
            .collect();
        assert_eq!(
            p.open(Duration::from_secs(1)),
            Err(PingError::NoFreeIdentifier)
        );
        let freed = p.ident(handles[1234]).unwrap();
        p.close(handles[1234]).unwrap();
        let h = p.open(Duration::from_secs(1)).unwrap();
        assert_eq!(p.ident(h), Ok(freed));
    }

    #[test]
    fn closing_a_socket_forgets_its_unsent_requests() {
        let mut p = PingSockets::new(KeyedRng::from_seed(4));
        let a = p.open(Duration::from_secs(1)).unwrap();
        let b = p.open(Duration::from_secs(1)).unwrap();
        p.send(a, DST, 1, 8).unwrap();
        p.send(b, DST, 1, 8).unwrap();
        p.close(a).unwrap();
        assert!(p.has_pending_tx());
        let mut out = vec![];
        p.take_pending(Instant::ZERO, &mut out);
        assert_eq!(out.len(), 1);
        assert!(!p.has_pending_tx());
        p.send(b, DST, 2, 8).unwrap();
        p.close(b).unwrap();
        assert!(!p.has_pending_tx());
    }
}
