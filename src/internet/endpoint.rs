//! The IPv4 endpoint of a host: receive validation, reassembly, ICMP, and
//! the send path with routing and fragmentation.
//!
//! Receive (RFC 1122 §3.2.1): datagrams are validated ([`Ipv4Repr::parse`]),
//! accepted only if addressed to this host or a broadcast address (this is
//! a host, not a router: nothing is forwarded), reassembled if fragmented
//! (RFC 791 §3.2), and then handled by ICMP here or handed up through
//! [`TransportDispatcher`]. The transport answers with a [`Disposition`];
//! a datagram nobody takes is answered with an ICMP destination
//! unreachable (RFC 1122 §3.2.2.1, §4.1.3.1), rate limited (RFC 1812
//! §4.3.2.8) and never in answer to an ICMP error, a broadcast or a
//! non-initial fragment (RFC 1122 §3.2.2).
//!
//! ICMP (RFC 792): echo requests are answered in place — the request's own
//! buffer becomes the reply, its checksum updated incrementally (RFC 1624)
//! — so a request that fits the MTU is answered without copying its data
//! (a larger one is copied once, fragment by fragment, on the way out).
//! IP options of the request (Record Route, Timestamp) are not echoed
//! (RFC 1122 §3.2.2.6 SHOULD; Linux does). Echo
//! replies go to ping sockets ([`crate::internet::ping`]); destination
//! unreachable and time exceeded are matched to the transport socket whose
//! datagram they quote.
//!
//! Send: the route gives the next hop and source address; datagrams larger
//! than the link MTU are fragmented (RFC 791 §3.2) unless Don't Fragment is
//! asked for. Datagrams to the host's own address loop back.
//!
//! To the transport layer above it offers [`IpSender`].
//!
//! # Example
//!
//! Host A sends a 3000-byte payload over a 1500-byte link: three fragments
//! go out, and host B reassembles them and hands the payload up. (The link
//! and the transport layer are stand-ins that keep what they are given.)
//!
//! ```
//! use std::net::Ipv4Addr;
//! use netstrata::internet::ipv4::Protocol;
//! use netstrata::internet::{Ipv4Config, Ipv4Endpoint};
//! use netstrata::rand::KeyedRng;
//! use netstrata::Instant;
//! # use netstrata::buf::{MAX_HEADROOM, PacketBuf};
//! # use netstrata::internet::{Disposition, IcmpError, IpMeta, IpSender, TransportDispatcher};
//! # use netstrata::link::{ChecksumOffload, LinkEndpoint, LinkError, NextHop};
//! # /// A link that keeps what is sent on it.
//! # #[derive(Default)]
//! # struct Wire(Vec<PacketBuf>);
//! # impl LinkEndpoint for Wire {
//! #     fn mtu(&self) -> usize { 1500 }
//! #     fn checksum_offload(&self) -> ChecksumOffload { ChecksumOffload::default() }
//! #     fn alloc(&mut self, capacity: usize) -> PacketBuf { PacketBuf::with_headroom(MAX_HEADROOM, capacity) }
//! #     fn recycle(&mut self, _: PacketBuf) {}
//! #     fn send_ipv4(&mut self, _: Instant, _: NextHop, p: PacketBuf) -> Result<(), LinkError> {
//! #         Ok(self.0.push(p))
//! #     }
//! # }
//! # /// A transport layer that keeps what it is handed.
//! # #[derive(Default)]
//! # struct Up(Vec<Vec<u8>>);
//! # impl TransportDispatcher for Up {
//! #     fn receive<S: IpSender>(&mut self, _: Instant, _: &IpMeta, p: PacketBuf, _: &mut S) -> Disposition {
//! #         self.0.push(p.data().to_vec());
//! #         Disposition::Delivered
//! #     }
//! #     fn icmp_error(&mut self, _: Instant, _: &IcmpError) {}
//! # }
//!
//! let endpoint = |cidr: &str| {
//!     let config = Ipv4Config::new(cidr.parse().unwrap());
//!     Ipv4Endpoint::new(config, &mut KeyedRng::from_seed(1))
//! };
//! let (mut a, mut b) = (endpoint("192.0.2.1/24"), endpoint("192.0.2.2/24"));
//! let (mut wire, mut up, now) = (Wire::default(), Up::default(), Instant::ZERO);
//!
//! let mut payload = wire.alloc(3000);
//! payload.extend_from_slice(&[7; 3000]);
//! a.send_datagram(now, &mut wire, None, b.address(), Protocol::Udp, payload, false)?;
//! assert_eq!(wire.0.len(), 3);
//! for fragment in std::mem::take(&mut wire.0) {
//!     b.receive(now, fragment, &mut wire, &mut up);
//! }
//! assert_eq!(up.0, [vec![7; 3000]]);
//! assert_eq!(b.stats().reassembled, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use bytes::BytesMut;

use crate::buf::{L4Checksum, PacketBuf};
use crate::checksum;
use crate::error::ParseError;
use crate::internet::fragment::{self, FragmentKey, Reassembler, ReassemblyConfig};
use crate::internet::icmpv4::{
    self, DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr, TimeExceeded,
};
use crate::internet::ident::IdentGenerator;
use crate::internet::ipv4::{self, Ipv4Cidr, Ipv4Packet, Ipv4Repr, Protocol};
use crate::internet::path::{CachedRoute, PathCache};
use crate::internet::ping::{self, PingSockets};
use crate::internet::route::{NoRoute, RouteDecision, RoutingTable};
use crate::link::{ChecksumOffload, LinkEndpoint, LinkError, NeighbourHint, NextHop};
use crate::rand::KeyedRng;
use crate::ratelimit::TokenBucket;
use crate::time::Instant;

/// Configuration of the IPv4 endpoint.
#[derive(Debug, Clone)]
pub struct Ipv4Config {
    /// The host's address and its connected subnet.
    pub address: Ipv4Cidr,
    /// The default gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// TTL of datagrams sent.
    pub ttl: u8,
    /// Reassembly limits.
    pub reassembly: ReassemblyConfig,
    /// Largest burst of ICMP errors sent at once.
    pub icmp_error_burst: u32,
    /// Sustained rate of ICMP errors sent.
    pub icmp_errors_per_second: u32,
    /// Whether to answer echo requests sent to a broadcast address (Linux
    /// does not by default: `icmp_echo_ignore_broadcasts`).
    pub answer_broadcast_echo: bool,
    /// Most datagrams waiting on the loopback queue.
    pub loopback_queue: usize,
}

impl Ipv4Config {
    /// Defaults for a host at `address`.
    pub fn new(address: Ipv4Cidr) -> Ipv4Config {
        Ipv4Config {
            address,
            gateway: None,
            ttl: ipv4::DEFAULT_TTL,
            reassembly: ReassemblyConfig::default(),
            icmp_error_burst: 50,
            icmp_errors_per_second: 1000,
            answer_broadcast_echo: false,
            loopback_queue: 256,
        }
    }
}

/// What the internet layer tells the transport layer about a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpMeta {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address (ours, or a broadcast address).
    pub dst: Ipv4Addr,
    /// Transport protocol.
    pub protocol: Protocol,
    /// TTL as received.
    pub ttl: u8,
    /// Whether it was sent to a broadcast address.
    pub broadcast: bool,
    /// Whether the device already verified transport checksums.
    pub checksum_verified: bool,
}

/// What the transport layer did with a datagram.
#[derive(Debug)]
pub enum Disposition {
    /// Taken by a socket.
    Delivered,
    /// Dropped by the transport layer (malformed, bad checksum, queue full;
    /// the transport counts it).
    Dropped,
    /// No socket is bound to the destination port; the payload is handed
    /// back so the ICMP error can quote it.
    PortUnreachable(PacketBuf),
    /// The protocol is not implemented; the payload is handed back.
    ProtocolUnreachable(PacketBuf),
}

/// An ICMP error about a datagram this host sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    /// The host or router that reported it.
    pub reporter: Ipv4Addr,
    /// What went wrong.
    pub kind: IcmpErrorKind,
    /// The transport protocol of the quoted datagram.
    pub protocol: Protocol,
    /// Our address, from the quoted datagram.
    pub local_addr: Ipv4Addr,
    /// Our port, from the quoted datagram.
    pub local_port: u16,
    /// The remote address the datagram was sent to.
    pub remote_addr: Ipv4Addr,
    /// The remote port.
    pub remote_port: u16,
    /// The first 8 bytes of the quoted transport header (for TCP, the
    /// ports and the sequence number, which RFC 5927 §4.1 checks).
    pub transport_header: [u8; 8],
}

/// The kinds of ICMP error a transport socket is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpErrorKind {
    /// Destination unreachable.
    Unreachable(DstUnreachable),
    /// Fragmentation needed (path MTU discovery, RFC 1191).
    FragmentationNeeded {
        /// The next hop's MTU, if the router said.
        mtu: u16,
    },
    /// Time exceeded in transit or in reassembly.
    TimeExceeded(TimeExceeded),
}

/// The transport layer as the internet layer sees it: it takes datagrams
/// and ICMP errors. Implemented by [`crate::transport`].
pub trait TransportDispatcher {
    /// A datagram for protocol `meta.protocol`, its IP header removed.
    /// `ip` is available to send replies at once.
    fn receive<S: IpSender>(
        &mut self,
        now: Instant,
        meta: &IpMeta,
        payload: PacketBuf,
        ip: &mut S,
    ) -> Disposition;

    /// An ICMP error quoting a datagram this host sent.
    fn icmp_error(&mut self, now: Instant, error: &IcmpError);
}

/// Why the internet layer did not send a datagram.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpSendError {
    /// No route reaches the destination.
    #[error(transparent)]
    NoRoute(#[from] NoRoute),
    /// The datagram exceeds the MTU and may not be fragmented.
    #[error("datagram of {len} bytes exceeds the path MTU of {mtu} and Don't Fragment is set")]
    TooBig {
        /// Datagram length.
        len: usize,
        /// Path MTU.
        mtu: usize,
    },
    /// The datagram exceeds the IPv4 maximum of 65535 bytes.
    #[error("datagram of {0} bytes exceeds the IPv4 maximum of 65535")]
    TooLarge(usize),
    /// The link refused it.
    #[error(transparent)]
    Link(#[from] LinkError),
}

/// What the internet layer offers the transport layer above it.
pub trait IpSender {
    /// How `dst` is reached, and from which source address.
    fn route(&self, dst: Ipv4Addr) -> Result<RouteDecision, NoRoute>;
    /// The largest datagram sent without fragmentation.
    fn mtu(&self) -> usize;
    /// Which checksums the device computes.
    fn checksum_offload(&self) -> ChecksumOffload;
    /// A buffer with headroom for every header below the transport.
    fn alloc(&mut self, capacity: usize) -> PacketBuf;
    /// Takes back a buffer no longer needed.
    fn recycle(&mut self, packet: PacketBuf);
    /// Takes back every allocation of `bufs` (left empty, its memory
    /// kept), in one call: slices of received frames no longer needed.
    fn recycle_all(&mut self, bufs: &mut Vec<BytesMut>) {
        for buf in bufs.drain(..) {
            self.recycle(PacketBuf::from_bytes_mut(buf));
        }
    }
    /// Sends `packet` (a transport header and payload) from `src` to `dst`,
    /// with the Don't Fragment flag if `dont_frag` (path MTU discovery,
    /// RFC 1191).
    fn send(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: Protocol,
        packet: PacketBuf,
        dont_frag: bool,
    ) -> Result<(), IpSendError>;
    /// Sends as [`IpSender::send`] does, for a flow that keeps `path`
    /// (one per connection or socket): the route, identification counter
    /// and next hop's link address decided for its last datagram are
    /// reused while the routing table and neighbour cache stand. A sender
    /// that decides nothing per datagram ignores it.
    #[allow(clippy::too_many_arguments)]
    fn send_on_path(
        &mut self,
        now: Instant,
        _path: &mut PathCache,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: Protocol,
        packet: PacketBuf,
        dont_frag: bool,
    ) -> Result<(), IpSendError> {
        self.send(now, src, dst, protocol, packet, dont_frag)
    }
}

/// IPv4 and ICMP counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpStats {
    /// Datagrams received from the link.
    pub rx_packets: u64,
    /// Datagrams dropped: malformed header or lengths.
    pub rx_malformed: u64,
    /// Datagrams dropped: bad header checksum.
    pub rx_bad_checksum: u64,
    /// Datagrams dropped: not addressed to this host.
    pub rx_not_for_us: u64,
    /// Datagrams dropped: a source address no host may have.
    pub rx_bad_source: u64,
    /// Fragments received.
    pub rx_fragments: u64,
    /// Datagrams reassembled from fragments.
    pub reassembled: u64,
    /// Fragments dropped by the reassembler (malformed, overlapping, over
    /// limits).
    pub reassembly_dropped: u64,
    /// Reassemblies abandoned after the timeout.
    pub reassembly_timeouts: u64,
    /// Datagrams delivered to the transport layer or ICMP.
    pub rx_delivered: u64,
    /// Datagrams for a closed port.
    pub rx_no_port: u64,
    /// Datagrams for an unknown protocol.
    pub rx_no_protocol: u64,
    /// Datagrams sent (before fragmentation).
    pub tx_packets: u64,
    /// Fragments sent.
    pub tx_fragments: u64,
    /// Datagrams not sent: no route.
    pub tx_no_route: u64,
    /// Datagrams not sent: the link refused them (ARP failure, queue full).
    pub tx_link_errors: u64,
    /// Datagrams looped back to this host.
    pub loopback: u64,
    /// Datagrams to this host dropped because the loopback queue was full.
    pub loopback_dropped: u64,
    /// ICMP messages dropped: malformed or bad checksum.
    pub icmp_rx_malformed: u64,
    /// Echo requests received.
    pub icmp_rx_echo_requests: u64,
    /// Echo replies sent.
    pub icmp_tx_echo_replies: u64,
    /// ICMP errors received.
    pub icmp_rx_errors: u64,
    /// ICMP errors sent.
    pub icmp_tx_errors: u64,
    /// ICMP errors not sent because of the rate limit.
    pub icmp_rate_limited: u64,
}

/// The IPv4 endpoint of one interface.
#[derive(Debug)]
pub struct Ipv4Endpoint {
    config: Ipv4Config,
    routes: RoutingTable,
    idents: IdentGenerator,
    reassembler: Reassembler,
    icmp_limiter: TokenBucket,
    pings: PingSockets,
    loopback: VecDeque<PacketBuf>,
    stats: IpStats,
}

impl Ipv4Endpoint {
    /// An endpoint with the given configuration; `rng` keys the IP
    /// identifications and ping identifiers.
    pub fn new(config: Ipv4Config, rng: &mut KeyedRng) -> Ipv4Endpoint {
        let mut routes = RoutingTable::new();
        routes.add_connected(config.address);
        if let Some(gw) = config.gateway
            && let Err(e) = routes.set_default_gateway(gw)
        {
            log::warn!("ignoring default gateway: {e}");
        }
        Ipv4Endpoint {
            reassembler: Reassembler::new(config.reassembly.clone()),
            icmp_limiter: TokenBucket::new(config.icmp_error_burst, config.icmp_errors_per_second),
            idents: IdentGenerator::new(rng),
            pings: PingSockets::new(rng.fork()),
            loopback: VecDeque::new(),
            routes,
            config,
            stats: IpStats::default(),
        }
    }

    /// The host address.
    pub fn address(&self) -> Ipv4Addr {
        self.config.address.address()
    }

    /// The host address with its prefix.
    pub fn cidr(&self) -> Ipv4Cidr {
        self.config.address
    }

    /// The routing table.
    pub fn routes(&self) -> &RoutingTable {
        &self.routes
    }

    /// The routing table, mutable.
    pub fn routes_mut(&mut self) -> &mut RoutingTable {
        &mut self.routes
    }

    /// Counters.
    pub fn stats(&self) -> IpStats {
        self.stats
    }

    /// The reassembler (for its counters).
    pub fn reassembler(&self) -> &Reassembler {
        &self.reassembler
    }

    /// Ping sockets.
    pub fn pings(&self) -> &PingSockets {
        &self.pings
    }

    /// Ping sockets, mutable.
    pub fn pings_mut(&mut self) -> &mut PingSockets {
        &mut self.pings
    }

    /// Binds this endpoint to the link below for a series of sends.
    pub fn with_link<'a, L: LinkEndpoint>(&'a mut self, link: &'a mut L) -> Ipv4Tx<'a, L> {
        Ipv4Tx { ip: self, link }
    }

    fn is_broadcast(&self, addr: Ipv4Addr) -> bool {
        addr.is_broadcast() || self.config.address.broadcast() == Some(addr)
    }

    /// Processes a datagram from the link (its data starts at the IPv4
    /// header; link padding may follow it).
    pub fn receive<L: LinkEndpoint, U: TransportDispatcher>(
        &mut self,
        now: Instant,
        packet: PacketBuf,
        link: &mut L,
        upper: &mut U,
    ) {
        self.receive_datagram(now, packet, true, link, upper);
    }

    /// The receive path shared by datagrams from the link and looped-back
    /// ones; `from_link` enables the checks that only make sense for the
    /// former (our own address as the source).
    fn receive_datagram<L: LinkEndpoint, U: TransportDispatcher>(
        &mut self,
        now: Instant,
        mut packet: PacketBuf,
        from_link: bool,
        link: &mut L,
        upper: &mut U,
    ) {
        self.stats.rx_packets += 1;
        let verify = !link.checksum_offload().rx;
        // A frame the device vouches for on its own (virtio's flags) still
        // has its IP header checked here, as Linux does.
        let l4_vouched = packet.l4_checksum() != L4Checksum::Unverified;
        let parsed = Ipv4Packet::new_checked(packet.data())
            .and_then(|p| Ipv4Repr::parse(&p, verify).map(|r| (r, p.header_len())));
        let (mut repr, header_len) = match parsed {
            Ok(r) => r,
            Err(e) => {
                log::trace!("dropping IPv4 datagram: {e}");
                if e == ParseError::BadChecksum {
                    self.stats.rx_bad_checksum += 1;
                } else {
                    self.stats.rx_malformed += 1;
                }
                link.recycle(packet);
                return;
            }
        };
        let broadcast = self.is_broadcast(repr.dst_addr);
        if repr.dst_addr != self.address() && !broadcast {
            self.stats.rx_not_for_us += 1;
            link.recycle(packet);
            return;
        }
        // RFC 1122 §3.2.1.3: a source that is broadcast or multicast is
        // discarded, and so is 127/8 ("MUST NOT appear outside a host") or
        // 0.0.0.0 other than to the limited broadcast (a host still
        // learning its address, as with DHCP). Like Linux (a "martian
        // source"), our own address arriving from the link is dropped too.
        if self.is_broadcast(repr.src_addr)
            || repr.src_addr.is_multicast()
            || repr.src_addr.is_loopback()
            || (repr.src_addr.is_unspecified() && !repr.dst_addr.is_broadcast())
            || (from_link && repr.src_addr == self.address())
        {
            self.stats.rx_bad_source += 1;
            link.recycle(packet);
            return;
        }
        packet.pull_header(header_len);
        packet.truncate(repr.payload_len);

        let reassembled = repr.is_fragment();
        if reassembled {
            self.stats.rx_fragments += 1;
            let key = FragmentKey {
                src: repr.src_addr,
                dst: repr.dst_addr,
                protocol: u8::from(repr.protocol),
                ident: repr.ident,
            };
            let offset = usize::from(repr.frag_offset);
            let truesize = packet.truesize();
            match self.reassembler.add_pinned(
                now,
                key,
                offset,
                repr.more_frags,
                packet.freeze(),
                truesize,
            ) {
                Ok(Some(done)) => {
                    self.stats.reassembled += 1;
                    repr.payload_len = done.payload.len();
                    repr.more_frags = false;
                    repr.frag_offset = 0;
                    let bytes = done
                        .payload
                        .try_into_mut()
                        .unwrap_or_else(|b| BytesMut::from(&b[..]));
                    packet = PacketBuf::from_bytes_mut(bytes);
                }
                Ok(None) => return,
                Err(e) => {
                    log::debug!("dropping fragment from {}: {e}", repr.src_addr);
                    self.stats.reassembly_dropped += 1;
                    return;
                }
            }
        }

        let meta = IpMeta {
            src: repr.src_addr,
            dst: repr.dst_addr,
            protocol: repr.protocol,
            ttl: repr.ttl,
            broadcast,
            // A device verifies the checksums of whole frames; it cannot
            // have verified the transport checksum of a datagram that
            // arrived in pieces.
            checksum_verified: (!verify || l4_vouched) && !reassembled,
        };
        if repr.protocol == Protocol::Icmp {
            self.receive_icmp(now, &repr, &meta, packet, link, upper);
            return;
        }
        let mut tx = Ipv4Tx {
            ip: &mut *self,
            link: &mut *link,
        };
        match upper.receive(now, &meta, packet, &mut tx) {
            Disposition::Delivered => self.stats.rx_delivered += 1,
            Disposition::Dropped => {}
            Disposition::PortUnreachable(payload) => {
                self.stats.rx_no_port += 1;
                self.send_icmp_error(
                    now,
                    link,
                    &repr,
                    payload,
                    Icmpv4Repr::dst_unreachable(DstUnreachable::PortUnreachable, 0, &[]),
                );
            }
            Disposition::ProtocolUnreachable(payload) => {
                self.stats.rx_no_protocol += 1;
                self.send_icmp_error(
                    now,
                    link,
                    &repr,
                    payload,
                    Icmpv4Repr::dst_unreachable(DstUnreachable::ProtoUnreachable, 0, &[]),
                );
            }
        }
    }

    fn receive_icmp<L: LinkEndpoint, U: TransportDispatcher>(
        &mut self,
        now: Instant,
        ip_repr: &Ipv4Repr,
        meta: &IpMeta,
        mut packet: PacketBuf,
        link: &mut L,
        upper: &mut U,
    ) {
        // ICMP checksums are always verified here, whatever the device
        // claims: devices that verify on receive verify TCP and UDP (as
        // virtio-net's DATA_VALID does), and an echo reply is made from
        // the request by an incremental checksum update, which would pass
        // a bad checksum on as a wrong one (found by fuzzing).
        let repr = match Icmpv4Packet::new_checked(packet.data())
            .and_then(|p| Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(p.into_inner()), true))
        {
            Ok(r) => r,
            Err(e) => {
                log::trace!("dropping ICMP message from {}: {e}", meta.src);
                self.stats.icmp_rx_malformed += 1;
                link.recycle(packet);
                return;
            }
        };
        // An error whose quote is unreadable is malformed, like a bad
        // checksum: counted once, as malformed, not also as delivered.
        if let Some(invoking) = repr.invoking()
            && icmpv4::quoted_addrs_and_ports(invoking).is_none()
        {
            log::trace!("dropping ICMP error from {}: unreadable quote", meta.src);
            self.stats.icmp_rx_malformed += 1;
            link.recycle(packet);
            return;
        }
        self.stats.rx_delivered += 1;
        match repr {
            Icmpv4Repr::EchoRequest { .. } => {
                self.stats.icmp_rx_echo_requests += 1;
                if meta.broadcast && !self.config.answer_broadcast_echo {
                    link.recycle(packet);
                    return;
                }
                // Turn the request into the reply in place: only the type
                // changes, so the checksum is updated incrementally.
                let mut icmp = Icmpv4Packet::new_unchecked(packet.data_mut());
                let old = u16::from(u8::from(Icmpv4Message::EchoRequest)) << 8;
                let new = u16::from(u8::from(Icmpv4Message::EchoReply)) << 8;
                let cks = icmp.checksum();
                icmp.set_msg_type(Icmpv4Message::EchoReply);
                if link.checksum_offload().tx {
                    icmp.set_checksum(0);
                } else {
                    icmp.set_checksum(checksum::update(cks, old, new));
                }
                let dst = ip_repr.src_addr;
                match self.send_datagram(now, link, None, dst, Protocol::Icmp, packet, false) {
                    Ok(()) => self.stats.icmp_tx_echo_replies += 1,
                    Err(e) => log::debug!("echo reply to {dst} not sent: {e}"),
                }
            }
            Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                self.pings
                    .deliver_reply(now, meta.src, ident, seq_no, meta.ttl, data);
                link.recycle(packet);
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                invoking,
            } => {
                self.stats.icmp_rx_errors += 1;
                let kind = if reason == DstUnreachable::FragRequired {
                    IcmpErrorKind::FragmentationNeeded { mtu: next_hop_mtu }
                } else {
                    IcmpErrorKind::Unreachable(reason)
                };
                self.deliver_icmp_error(now, meta.src, kind, invoking, upper);
                link.recycle(packet);
            }
            Icmpv4Repr::TimeExceeded { reason, invoking } => {
                self.stats.icmp_rx_errors += 1;
                self.deliver_icmp_error(
                    now,
                    meta.src,
                    IcmpErrorKind::TimeExceeded(reason),
                    invoking,
                    upper,
                );
                link.recycle(packet);
            }
            Icmpv4Repr::Other { msg_type, .. } => {
                log::trace!("ignoring ICMP {msg_type:?} from {}", meta.src);
                link.recycle(packet);
            }
        }
    }

    fn deliver_icmp_error<U: TransportDispatcher>(
        &mut self,
        now: Instant,
        reporter: Ipv4Addr,
        kind: IcmpErrorKind,
        invoking: &[u8],
        upper: &mut U,
    ) {
        // Unreadable quotes were counted and dropped in `receive_icmp`.
        let Some(q) = icmpv4::quoted_addrs_and_ports(invoking) else {
            return;
        };
        if q.src_addr != self.address() {
            return;
        }
        let protocol = Protocol::from(q.protocol);
        if protocol == Protocol::Icmp {
            // Only an echo request of ours concerns a ping socket (as on
            // Linux); its identifier sits after the type, code and
            // checksum. Any other quoted ICMP message (an error we sent,
            // an echo reply) concerns no socket, whatever those bytes hold.
            let echo_request = u8::from(Icmpv4Message::EchoRequest);
            if let [t, 0, _, _, a, b, ..] = *q.transport
                && t == echo_request
            {
                self.pings
                    .deliver_error(now, reporter, u16::from_be_bytes([a, b]), kind);
            }
            return;
        }
        log::debug!(
            "ICMP {kind:?} from {reporter} about {protocol} {}:{} -> {}:{}",
            q.src_addr,
            q.src_port,
            q.dst_addr,
            q.dst_port
        );
        upper.icmp_error(
            now,
            &IcmpError {
                reporter,
                kind,
                protocol,
                local_addr: q.src_addr,
                local_port: q.src_port,
                remote_addr: q.dst_addr,
                remote_port: q.dst_port,
                transport_header: q.transport.first_chunk::<8>().copied().unwrap_or_default(),
            },
        );
    }

    /// Sends an ICMP error about the datagram `original` whose payload is
    /// `payload`. The `error` repr supplies the type, code and MTU; the
    /// quote is built here.
    fn send_icmp_error<L: LinkEndpoint>(
        &mut self,
        now: Instant,
        link: &mut L,
        original: &Ipv4Repr,
        payload: PacketBuf,
        error: Icmpv4Repr<'_>,
    ) {
        // RFC 1122 §3.2.2: never about a broadcast, a non-initial fragment,
        // or from an address that does not identify a single host.
        if self.is_broadcast(original.dst_addr)
            || original.frag_offset != 0
            || original.src_addr.is_unspecified()
            || original.src_addr.is_loopback()
        {
            link.recycle(payload);
            return;
        }
        // Nor about an ICMP error message (reachable here through a
        // fragmented one whose reassembly timed out). Like Linux, a type
        // beyond those assigned (18) counts as an error.
        if original.protocol == Protocol::Icmp
            && payload
                .data()
                .first()
                .is_none_or(|&t| t > 18 || Icmpv4Message::from(t).is_error())
        {
            link.recycle(payload);
            return;
        }
        if !self.icmp_limiter.try_take(now) {
            self.stats.icmp_rate_limited += 1;
            link.recycle(payload);
            return;
        }
        // The quote: the original header (without options) and as much of
        // the payload as fits in 576 bytes (RFC 1812 §4.3.2.3).
        let quoted_payload = payload.len().min(icmpv4::MAX_QUOTE - ipv4::HEADER_LEN);
        let mut quote = [0u8; icmpv4::MAX_QUOTE];
        let quote_len = ipv4::HEADER_LEN + quoted_payload;
        {
            let mut header = Ipv4Packet::new_unchecked(&mut quote[..]);
            original.emit(&mut header, true);
        }
        quote[ipv4::HEADER_LEN..quote_len].copy_from_slice(&payload.data()[..quoted_payload]);
        link.recycle(payload);
        let repr = match error {
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                ..
            } => Icmpv4Repr::dst_unreachable(reason, next_hop_mtu, &quote[..quote_len]),
            Icmpv4Repr::TimeExceeded { reason, .. } => {
                Icmpv4Repr::time_exceeded(reason, &quote[..quote_len])
            }
            _ => return,
        };
        let mut p = link.alloc(repr.buffer_len());
        let fill = !link.checksum_offload().tx;
        repr.emit(
            &mut Icmpv4Packet::new_unchecked(p.append_zeroed(repr.buffer_len())),
            fill,
        );
        match self.send_datagram(now, link, None, original.src_addr, Protocol::Icmp, p, false) {
            Ok(()) => self.stats.icmp_tx_errors += 1,
            Err(e) => log::debug!("ICMP error to {} not sent: {e}", original.src_addr),
        }
    }

    /// Transmits the echo requests ping sockets have queued.
    fn send_pending_pings<L: LinkEndpoint>(&mut self, now: Instant, link: &mut L) {
        let mut pending = Vec::new();
        self.pings.take_pending(now, &mut pending);
        for req in pending {
            let len = icmpv4::HEADER_LEN + req.payload_len;
            let mut p = link.alloc(len);
            let mut icmp = Icmpv4Packet::new_unchecked(p.append_zeroed(len));
            icmp.set_msg_type(Icmpv4Message::EchoRequest);
            icmp.set_msg_code(0);
            icmp.set_echo_ident(req.ident);
            icmp.set_echo_seq_no(req.seq_no);
            ping::fill_echo_data(icmp.data_mut(), now);
            if link.checksum_offload().tx {
                icmp.set_checksum(0);
            } else {
                icmp.fill_checksum();
            }
            if let Err(e) = self.send_datagram(now, link, None, req.dst, Protocol::Icmp, p, false) {
                log::debug!("echo request to {} not sent: {e}", req.dst);
                self.pings.deliver_send_error(req.ident, req.seq_no, e);
            }
        }
    }

    /// Sends `packet` (an IP payload) to `dst`, fragmenting it if needed.
    #[allow(clippy::too_many_arguments)]
    pub fn send_datagram<L: LinkEndpoint>(
        &mut self,
        now: Instant,
        link: &mut L,
        src: Option<Ipv4Addr>,
        dst: Ipv4Addr,
        protocol: Protocol,
        packet: PacketBuf,
        dont_frag: bool,
    ) -> Result<(), IpSendError> {
        match CachedRoute::decide(&self.routes, &mut self.idents, src, dst, protocol) {
            Ok(path) => self.send_routed(now, link, &path, None, packet, dont_frag),
            Err(e) => self.no_route(link, packet, e),
        }
    }

    /// Sends `packet` (an IP payload) from `src` to `dst` as
    /// [`Ipv4Endpoint::send_datagram`] does, for a flow that keeps `cache`:
    /// the route, the identification counter and the neighbour are taken
    /// from it while they hold, and it is filled afresh when they do not.
    #[allow(clippy::too_many_arguments)]
    pub fn send_on_path<L: LinkEndpoint>(
        &mut self,
        now: Instant,
        link: &mut L,
        cache: &mut PathCache,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: Protocol,
        packet: PacketBuf,
        dont_frag: bool,
    ) -> Result<(), IpSendError> {
        match cache.get_or_fill(&self.routes, &mut self.idents, (src, dst, protocol)) {
            Ok((path, neighbour)) => {
                self.send_routed(now, link, path, Some(neighbour), packet, dont_frag)
            }
            Err(e) => self.no_route(link, packet, e),
        }
    }

    fn no_route<L: LinkEndpoint>(
        &mut self,
        link: &mut L,
        packet: PacketBuf,
        e: NoRoute,
    ) -> Result<(), IpSendError> {
        self.stats.tx_no_route += 1;
        link.recycle(packet);
        Err(e.into())
    }

    /// Sends `packet` on a route decided: through `neighbour`, the flow's
    /// hint, if it keeps one.
    fn send_routed<L: LinkEndpoint>(
        &mut self,
        now: Instant,
        link: &mut L,
        path: &CachedRoute,
        neighbour: Option<&mut NeighbourHint>,
        mut packet: PacketBuf,
        dont_frag: bool,
    ) -> Result<(), IpSendError> {
        let (route, dst) = (path.decision, path.dst);
        let total = ipv4::HEADER_LEN + packet.len();
        if total > ipv4::MAX_DATAGRAM_LEN {
            link.recycle(packet);
            return Err(IpSendError::TooLarge(total));
        }
        let mtu = link.mtu();
        // A TCP super-segment goes down whole to a device that cuts it,
        // into datagrams numbered from its identification on.
        let segments = match packet.segment_size() {
            size if size > 0
                && total > mtu
                && path.protocol == Protocol::Tcp
                && total <= link.segmentation() =>
            {
                let header = packet.data().get(12).map_or(0, |b| usize::from(b >> 4) * 4);
                packet.len().saturating_sub(header).div_ceil(size)
            }
            _ => 1,
        };
        let mut repr = Ipv4Repr {
            src_addr: path.src,
            dst_addr: dst,
            protocol: path.protocol,
            payload_len: packet.len(),
            ttl: self.config.ttl,
            tos: 0,
            ident: self.idents.next_run_of(
                path.ident,
                now,
                segments.min(usize::from(u16::MAX)) as u16,
            ),
            dont_frag,
            more_frags: false,
            frag_offset: 0,
        };
        let fill = !link.checksum_offload().tx;
        self.stats.tx_packets += 1;
        if dst == self.address() || dst.is_loopback() {
            // Loop back: checksums are computed (the receive path verifies
            // them) and the datagram waits for the next poll. No device
            // sees it.
            if !fill {
                fill_transport_checksum(&repr, &mut packet);
            }
            repr.emit(
                &mut Ipv4Packet::new_unchecked(packet.push_header(ipv4::HEADER_LEN)),
                true,
            );
            if self.loopback.len() < self.config.loopback_queue {
                self.stats.loopback += 1;
                self.loopback.push_back(packet);
            } else {
                // Like a full device queue: dropped, counted, not an error.
                self.stats.loopback_dropped += 1;
            }
            return Ok(());
        }
        let next_hop = if route.broadcast {
            NextHop::Broadcast
        } else {
            NextHop::Unicast(route.next_hop)
        };
        if total <= mtu || segments > 1 {
            repr.emit(
                &mut Ipv4Packet::new_unchecked(packet.push_header(ipv4::HEADER_LEN)),
                fill,
            );
            let sent = match neighbour {
                Some(hint) => link.send_ipv4_hinted(now, next_hop, packet, hint),
                None => link.send_ipv4(now, next_hop, packet),
            };
            return sent.map_err(|e| {
                self.stats.tx_link_errors += 1;
                e.into()
            });
        }
        if dont_frag {
            link.recycle(packet);
            return Err(IpSendError::TooBig { len: total, mtu });
        }
        if !fill {
            // The device fills checksums frame by frame, and a fragment
            // does not hold the whole message its transport checksum
            // covers: the sum is made here, once, before the cut.
            fill_transport_checksum(&repr, &mut packet);
        }
        let plan = match fragment::fragment_offsets(packet.len(), mtu, ipv4::HEADER_LEN) {
            Ok(plan) => plan,
            Err(_) => {
                link.recycle(packet);
                return Err(IpSendError::TooBig { len: total, mtu });
            }
        };
        let mut result = Ok(());
        for piece in plan {
            let (offset, len, more) = (piece.offset, piece.len, piece.more_fragments);
            let mut frag = link.alloc(len);
            frag.extend_from_slice(&packet.data()[offset..offset + len]);
            repr.payload_len = len;
            repr.frag_offset = offset as u16;
            repr.more_frags = more;
            repr.emit(
                &mut Ipv4Packet::new_unchecked(frag.push_header(ipv4::HEADER_LEN)),
                fill,
            );
            self.stats.tx_fragments += 1;
            if let Err(e) = link.send_ipv4(now, next_hop, frag) {
                self.stats.tx_link_errors += 1;
                result = Err(e.into());
                break;
            }
        }
        link.recycle(packet);
        result
    }

    /// Runs timers (reassembly timeouts) and delivers looped-back
    /// datagrams.
    pub fn poll<L: LinkEndpoint, U: TransportDispatcher>(
        &mut self,
        now: Instant,
        link: &mut L,
        upper: &mut U,
    ) {
        let expired: Vec<fragment::Expired> = self.reassembler.expire(now).collect();
        for e in expired {
            self.stats.reassembly_timeouts += 1;
            // RFC 792 / RFC 1122 §3.3.2: report the timeout to the sender
            // if the first fragment (with the transport header) arrived.
            if let Some(first) = e.first_fragment {
                log::debug!(
                    "reassembly of datagram {} from {} timed out",
                    e.key.ident,
                    e.key.src
                );
                let original = Ipv4Repr {
                    src_addr: e.key.src,
                    dst_addr: e.key.dst,
                    protocol: Protocol::from(e.key.protocol),
                    payload_len: first.len(),
                    ttl: self.config.ttl,
                    tos: 0,
                    ident: e.key.ident,
                    dont_frag: false,
                    more_frags: true,
                    frag_offset: 0,
                };
                let mut payload = link.alloc(first.len());
                payload.extend_from_slice(&first);
                self.send_icmp_error(
                    now,
                    link,
                    &original,
                    payload,
                    Icmpv4Repr::time_exceeded(TimeExceeded::FragReassemblyExceeded, &[]),
                );
            }
        }
        // Bounded: only what was queued before this poll.
        for _ in 0..self.loopback.len() {
            let Some(p) = self.loopback.pop_front() else {
                break;
            };
            self.receive_datagram(now, p, false, link, upper);
        }
        self.pings.expire(now);
        self.send_pending_pings(now, link);
    }

    /// When [`Ipv4Endpoint::poll`] next has work.
    pub fn poll_at(&self, now: Instant) -> Option<Instant> {
        if !self.loopback.is_empty() || self.pings.has_pending_tx() {
            return Some(now);
        }
        [self.reassembler.poll_at(), self.pings.poll_at()]
            .into_iter()
            .flatten()
            .min()
    }
}

/// An [`Ipv4Endpoint`] bound to the link below it: the [`IpSender`] the
/// transport layer sends through.
#[derive(Debug)]
pub struct Ipv4Tx<'a, L> {
    ip: &'a mut Ipv4Endpoint,
    link: &'a mut L,
}

impl<L: LinkEndpoint> IpSender for Ipv4Tx<'_, L> {
    fn route(&self, dst: Ipv4Addr) -> Result<RouteDecision, NoRoute> {
        if dst == self.ip.address() {
            return Ok(RouteDecision {
                next_hop: dst,
                source: dst,
                broadcast: false,
            });
        }
        self.ip.routes.lookup(dst)
    }
    fn mtu(&self) -> usize {
        self.link.mtu()
    }
    fn checksum_offload(&self) -> ChecksumOffload {
        self.link.checksum_offload()
    }
    fn alloc(&mut self, capacity: usize) -> PacketBuf {
        self.link.alloc(capacity)
    }
    fn recycle(&mut self, packet: PacketBuf) {
        self.link.recycle(packet);
    }
    fn recycle_all(&mut self, bufs: &mut Vec<BytesMut>) {
        self.link.recycle_all(bufs);
    }
    fn send(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: Protocol,
        packet: PacketBuf,
        dont_frag: bool,
    ) -> Result<(), IpSendError> {
        self.ip
            .send_datagram(now, self.link, Some(src), dst, protocol, packet, dont_frag)
    }
    fn send_on_path(
        &mut self,
        now: Instant,
        path: &mut PathCache,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: Protocol,
        packet: PacketBuf,
        dont_frag: bool,
    ) -> Result<(), IpSendError> {
        self.ip
            .send_on_path(now, self.link, path, src, dst, protocol, packet, dont_frag)
    }
}

/// Makes the transport checksum of `packet`, the payload of `repr`, that
/// the stack left to a device with transmit offload, for a datagram no
/// device will see whole (looped back, or cut into fragments).
fn fill_transport_checksum(repr: &Ipv4Repr, packet: &mut PacketBuf) {
    checksum::fill_transport(
        repr.protocol.into(),
        repr.src_addr,
        repr.dst_addr,
        packet.data_mut(),
    );
}

#[cfg(test)]
mod tests {
    //! The internet layer alone, between a fake link and a fake transport.
    use super::*;
    use crate::buf::MAX_HEADROOM;
    use crate::internet::icmpv4::Icmpv4Message;
    use crate::time::Duration;

    const ME: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    /// A link that records what is sent (shared with `review_tests`).
    pub(super) struct FakeLink {
        pub(super) mtu: usize,
        pub(super) offload: ChecksumOffload,
        pub(super) sent: Vec<(NextHop, Vec<u8>)>,
    }

    impl Default for FakeLink {
        fn default() -> Self {
            FakeLink {
                mtu: 1500,
                offload: ChecksumOffload::default(),
                sent: Vec::new(),
            }
        }
    }

    impl LinkEndpoint for FakeLink {
        fn mtu(&self) -> usize {
            self.mtu
        }
        fn checksum_offload(&self) -> ChecksumOffload {
            self.offload
        }
        fn alloc(&mut self, capacity: usize) -> PacketBuf {
            PacketBuf::with_headroom(MAX_HEADROOM, capacity)
        }
        fn recycle(&mut self, _packet: PacketBuf) {}
        fn send_ipv4(
            &mut self,
            _now: Instant,
            next_hop: NextHop,
            packet: PacketBuf,
        ) -> Result<(), LinkError> {
            self.sent.push((next_hop, packet.data().to_vec()));
            Ok(())
        }
    }

    /// Takes UDP on port 7 only; everything else is "no socket", TCP is
    /// "no protocol".
    #[derive(Default)]
    struct FakeTransport {
        got: Vec<(IpMeta, Vec<u8>)>,
        errors: Vec<IcmpError>,
    }

    impl TransportDispatcher for FakeTransport {
        fn receive<S: IpSender>(
            &mut self,
            _now: Instant,
            meta: &IpMeta,
            payload: PacketBuf,
            _ip: &mut S,
        ) -> Disposition {
            match meta.protocol {
                Protocol::Udp if payload.data().get(2..4) == Some(&[0, 7][..]) => {
                    self.got.push((*meta, payload.data().to_vec()));
                    Disposition::Delivered
                }
                Protocol::Udp => Disposition::PortUnreachable(payload),
                _ => Disposition::ProtocolUnreachable(payload),
            }
        }
        fn icmp_error(&mut self, _now: Instant, error: &IcmpError) {
            self.errors.push(*error);
        }
    }

    fn endpoint() -> Ipv4Endpoint {
        Ipv4Endpoint::new(
            Ipv4Config::new("192.0.2.1/24".parse().unwrap()),
            &mut KeyedRng::from_seed(1),
        )
    }

    fn setup(mtu: usize) -> (Ipv4Endpoint, FakeLink, FakeTransport) {
        let link = FakeLink {
            mtu,
            ..FakeLink::default()
        };
        (endpoint(), link, FakeTransport::default())
    }

    fn datagram(src: Ipv4Addr, dst: Ipv4Addr, protocol: Protocol, payload: &[u8]) -> PacketBuf {
        let repr = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            protocol,
            payload_len: payload.len(),
            ttl: 64,
            tos: 0,
            ident: 0x1234,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        };
        let mut p = PacketBuf::from_payload(MAX_HEADROOM, payload);
        repr.emit(
            &mut Ipv4Packet::new_unchecked(p.push_header(ipv4::HEADER_LEN)),
            true,
        );
        p
    }

    /// An IPv4 datagram from PEER to ME carrying `repr`.
    fn icmp_from_peer(repr: &Icmpv4Repr<'_>) -> PacketBuf {
        let mut icmp = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut icmp[..]), true);
        datagram(PEER, ME, Protocol::Icmp, &icmp)
    }

    fn parse_sent(bytes: &[u8]) -> (Ipv4Repr, Vec<u8>) {
        let p = Ipv4Packet::new_checked(bytes).unwrap();
        (Ipv4Repr::parse(&p, true).unwrap(), p.payload().to_vec())
    }

    #[test]
    fn delivers_to_transport_and_trims_padding() {
        let (mut ip, mut link, mut up) = setup(1500);
        let mut p = datagram(PEER, ME, Protocol::Udp, &[0, 1, 0, 7, 0, 8, 0, 0]);
        p.extend_from_slice(&[0xee; 10]); // link padding
        ip.receive(Instant::ZERO, p, &mut link, &mut up);
        assert_eq!(up.got.len(), 1);
        assert_eq!(up.got[0].1, vec![0, 1, 0, 7, 0, 8, 0, 0]);
        assert_eq!(up.got[0].0.src, PEER);
        assert_eq!(ip.stats().rx_delivered, 1);
    }

    #[test]
    fn not_for_us_and_bad_source_are_dropped() {
        let (mut ip, mut link, mut up) = setup(1500);
        ip.receive(
            Instant::ZERO,
            datagram(PEER, Ipv4Addr::new(192, 0, 2, 9), Protocol::Udp, &[0; 8]),
            &mut link,
            &mut up,
        );
        ip.receive(
            Instant::ZERO,
            datagram(Ipv4Addr::new(192, 0, 2, 255), ME, Protocol::Udp, &[0; 8]),
            &mut link,
            &mut up,
        );
        assert!(up.got.is_empty() && link.sent.is_empty());
        assert_eq!(ip.stats().rx_not_for_us, 1);
        assert_eq!(ip.stats().rx_bad_source, 1);
    }

    #[test]
    fn closed_port_and_unknown_protocol_get_icmp_errors() {
        let (mut ip, mut link, mut up) = setup(1500);
        let udp = [0x30, 0x39, 0, 9, 0, 12, 0, 0, b'a', b'b', b'c', b'd'];
        ip.receive(
            Instant::ZERO,
            datagram(PEER, ME, Protocol::Udp, &udp),
            &mut link,
            &mut up,
        );
        ip.receive(
            Instant::ZERO,
            datagram(PEER, ME, Protocol::Unknown(253), b"xyzxyzxyz"),
            &mut link,
            &mut up,
        );
        assert_eq!(link.sent.len(), 2);
        for ((hop, bytes), code) in link.sent.iter().zip([3u8, 2]) {
            assert_eq!(*hop, NextHop::Unicast(PEER));
            let (repr, icmp) = parse_sent(bytes);
            assert_eq!(
                (repr.src_addr, repr.dst_addr, repr.protocol),
                (ME, PEER, Protocol::Icmp)
            );
            let msg = Icmpv4Packet::new_checked(&icmp[..]).unwrap();
            assert!(msg.verify_checksum());
            assert_eq!(
                (msg.msg_type(), msg.msg_code()),
                (Icmpv4Message::DstUnreachable, code)
            );
            // The quote: the original header and the start of its payload.
            let q = icmpv4::quoted_addrs_and_ports(msg.data()).unwrap();
            assert_eq!((q.src_addr, q.dst_addr), (PEER, ME));
        }
        let (_, icmp) = parse_sent(&link.sent[0].1);
        assert_eq!(&icmp[8 + 20..], &udp[..]);
        assert_eq!(ip.stats().rx_no_port, 1);
        assert_eq!(ip.stats().rx_no_protocol, 1);
    }

    #[test]
    fn no_icmp_error_about_broadcasts_and_errors_are_rate_limited() {
        let (mut ip, mut link, mut up) = setup(1500);
        let udp = [0x30, 0x39, 0, 9, 0, 8, 0, 0];
        ip.receive(
            Instant::ZERO,
            datagram(PEER, Ipv4Addr::BROADCAST, Protocol::Udp, &udp),
            &mut link,
            &mut up,
        );
        assert!(link.sent.is_empty());
        for _ in 0..200 {
            ip.receive(
                Instant::ZERO,
                datagram(PEER, ME, Protocol::Udp, &udp),
                &mut link,
                &mut up,
            );
        }
        assert_eq!(link.sent.len(), 50, "burst of 50");
        assert_eq!(ip.stats().icmp_rate_limited, 150);
        for _ in 0..200 {
            ip.receive(
                Instant::from_millis(100),
                datagram(PEER, ME, Protocol::Udp, &udp),
                &mut link,
                &mut up,
            );
        }
        // 100 ms at 1000/s refills 100 tokens, capped at the burst of 50.
        assert_eq!(link.sent.len(), 100);
    }

    #[test]
    fn echo_request_answered_in_place_with_valid_checksum() {
        let (mut ip, mut link, mut up) = setup(1500);
        let req = Icmpv4Repr::EchoRequest {
            ident: 0x4242,
            seq_no: 7,
            data: b"abcdefgh",
        };
        ip.receive(Instant::ZERO, icmp_from_peer(&req), &mut link, &mut up);
        let (repr, reply) = parse_sent(&link.sent[0].1);
        assert_eq!((repr.src_addr, repr.dst_addr), (ME, PEER));
        let msg = Icmpv4Packet::new_checked(&reply[..]).unwrap();
        assert!(msg.verify_checksum());
        assert_eq!(
            Icmpv4Repr::parse(&msg, true).unwrap(),
            Icmpv4Repr::EchoReply {
                ident: 0x4242,
                seq_no: 7,
                data: b"abcdefgh"
            }
        );
    }

    /// Regression (fuzzing): with a device that verifies checksums on
    /// receive, an echo request with a bad ICMP checksum was answered, and
    /// the reply, updated incrementally, carried a wrong checksum. ICMP is
    /// verified in software whatever the device says.
    #[test]
    fn a_bad_icmp_checksum_is_caught_even_with_receive_offload() {
        let (mut ip, mut link, mut up) = setup(1500);
        link.offload = ChecksumOffload {
            tx: false,
            rx: true,
        };
        let req = Icmpv4Repr::EchoRequest {
            ident: 1,
            seq_no: 2,
            data: b"abcd",
        };
        let mut icmp = vec![0u8; req.buffer_len()];
        req.emit(&mut Icmpv4Packet::new_unchecked(&mut icmp[..]), true);
        icmp[2] ^= 0x10;
        ip.receive(
            Instant::ZERO,
            datagram(PEER, ME, Protocol::Icmp, &icmp),
            &mut link,
            &mut up,
        );
        assert!(link.sent.is_empty(), "a bad request was answered");
        assert_eq!(ip.stats().icmp_rx_malformed, 1);
    }

    #[test]
    fn large_datagrams_are_fragmented_within_the_mtu() {
        let (mut ip, mut link, _) = setup(576);
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let p = PacketBuf::from_payload(MAX_HEADROOM, &payload);
        ip.send_datagram(
            Instant::ZERO,
            &mut link,
            None,
            PEER,
            Protocol::Udp,
            p,
            false,
        )
        .unwrap();
        let mut rebuilt = vec![0u8; payload.len()];
        let mut ident = None;
        for (i, (_, bytes)) in link.sent.iter().enumerate() {
            assert!(bytes.len() <= 576);
            let (r, data) = parse_sent(bytes);
            assert_eq!(
                *ident.get_or_insert(r.ident),
                r.ident,
                "one ident for all fragments"
            );
            assert_eq!(r.more_frags, i + 1 < link.sent.len());
            let off = usize::from(r.frag_offset);
            rebuilt[off..off + data.len()].copy_from_slice(&data);
        }
        assert_eq!(link.sent.len(), 6); // 552-byte pieces: 5 × 552 + 240
        assert_eq!(rebuilt, payload);
        let too_big = PacketBuf::from_payload(MAX_HEADROOM, &payload);
        assert!(matches!(
            ip.send_datagram(
                Instant::ZERO,
                &mut link,
                None,
                PEER,
                Protocol::Udp,
                too_big,
                true
            ),
            Err(IpSendError::TooBig {
                len: 3020,
                mtu: 576
            })
        ));
    }

    #[test]
    fn no_route_is_a_typed_error() {
        let (mut ip, mut link, _) = setup(1500);
        let far = Ipv4Addr::new(198, 51, 100, 1);
        let err = ip
            .send_datagram(
                Instant::ZERO,
                &mut link,
                None,
                far,
                Protocol::Udp,
                PacketBuf::from_payload(MAX_HEADROOM, b"x"),
                false,
            )
            .unwrap_err();
        assert_eq!(err, IpSendError::NoRoute(NoRoute(far)));
        assert_eq!(ip.stats().tx_no_route, 1);
    }

    /// A flow's cached path follows the routing table: a route added or
    /// removed takes effect on the flow's next datagram, and a datagram to
    /// another destination through the same cache is routed afresh. The
    /// flow's identifications come from the same counter as uncached
    /// datagrams between the same hosts.
    #[test]
    fn a_cached_path_follows_route_changes() {
        let (mut ip, mut link, _) = setup(1500);
        let far = Ipv4Addr::new(198, 51, 100, 1);
        let (gw1, gw2) = (Ipv4Addr::new(192, 0, 2, 254), Ipv4Addr::new(192, 0, 2, 253));
        ip.routes_mut().set_default_gateway(gw1).unwrap();
        let mut path = PathCache::default();
        let mut send = |ip: &mut Ipv4Endpoint, path: &mut PathCache, dst: Ipv4Addr| {
            let p = PacketBuf::from_payload(MAX_HEADROOM, b"x");
            ip.send_on_path(
                Instant::ZERO,
                &mut link,
                path,
                ME,
                dst,
                Protocol::Udp,
                p,
                false,
            )?;
            let (hop, bytes) = link.sent.pop().unwrap();
            Ok::<_, IpSendError>((hop, parse_sent(&bytes).0.ident))
        };
        let (hop, first) = send(&mut ip, &mut path, far).unwrap();
        assert_eq!(hop, NextHop::Unicast(gw1));
        assert_eq!(
            send(&mut ip, &mut path, far).unwrap().1,
            first.wrapping_add(1)
        );
        let narrower: Ipv4Cidr = "198.51.100.0/24".parse().unwrap();
        ip.routes_mut().add_gateway(narrower, gw2).unwrap();
        assert_eq!(
            send(&mut ip, &mut path, far).unwrap().0,
            NextHop::Unicast(gw2)
        );
        ip.routes_mut().remove(narrower);
        assert_eq!(
            send(&mut ip, &mut path, far).unwrap().0,
            NextHop::Unicast(gw1)
        );
        assert_eq!(
            send(&mut ip, &mut path, PEER).unwrap().0,
            NextHop::Unicast(PEER)
        );
        ip.routes_mut().remove(Ipv4Cidr::ANY);
        assert_eq!(
            send(&mut ip, &mut path, far),
            Err(IpSendError::NoRoute(NoRoute(far)))
        );
        assert_eq!(ip.stats().tx_no_route, 1);
        // A table put in the old one's place, new or restored from a copy,
        // is followed at once: its epoch is no earlier table's (found by
        // review: epochs counted per table once came round again).
        let mut table = RoutingTable::new();
        table.add_connected(ip.cidr());
        table.set_default_gateway(gw2).unwrap();
        *ip.routes_mut() = table;
        assert_eq!(
            send(&mut ip, &mut path, far).unwrap().0,
            NextHop::Unicast(gw2)
        );
        let saved = ip.routes().clone();
        ip.routes_mut().add_gateway(narrower, gw1).unwrap();
        assert_eq!(
            send(&mut ip, &mut path, far).unwrap().0,
            NextHop::Unicast(gw1)
        );
        *ip.routes_mut() = saved;
        let gw3 = Ipv4Addr::new(192, 0, 2, 252);
        ip.routes_mut().add_gateway(narrower, gw3).unwrap();
        assert_eq!(
            send(&mut ip, &mut path, far).unwrap().0,
            NextHop::Unicast(gw3)
        );
        // PEER's counter, shared with datagrams sent without a cache.
        let (_, before) = send(&mut ip, &mut path, PEER).unwrap();
        let p = PacketBuf::from_payload(MAX_HEADROOM, b"x");
        ip.send_datagram(
            Instant::ZERO,
            &mut link,
            None,
            PEER,
            Protocol::Udp,
            p,
            false,
        )
        .unwrap();
        let uncached = parse_sent(&link.sent.pop().unwrap().1).0.ident;
        assert_eq!(uncached, before.wrapping_add(1));
    }

    #[test]
    fn reassembly_timeout_sends_time_exceeded() {
        let (mut ip, mut link, mut up) = setup(1500);
        // The first of two fragments only.
        let mut p = datagram(PEER, ME, Protocol::Udp, &[0u8; 16]);
        {
            let mut h = Ipv4Packet::new_unchecked(p.data_mut());
            h.set_frag(false, true, 0);
            h.fill_checksum();
        }
        ip.receive(Instant::ZERO, p, &mut link, &mut up);
        let deadline = ip.poll_at(Instant::ZERO).unwrap();
        assert_eq!(deadline, Instant::ZERO + Duration::from_secs(30));
        ip.poll(deadline, &mut link, &mut up);
        assert_eq!(ip.stats().reassembly_timeouts, 1);
        let (_, icmp) = parse_sent(&link.sent[0].1);
        let msg = Icmpv4Packet::new_checked(&icmp[..]).unwrap();
        assert_eq!(
            (msg.msg_type(), msg.msg_code()),
            (Icmpv4Message::TimeExceeded, 1)
        );
    }

    #[test]
    fn icmp_errors_reach_the_transport() {
        let (mut ip, mut link, mut up) = setup(1500);
        // PEER says our UDP datagram ME:5000 -> PEER:53 hit a closed port.
        let original = datagram(ME, PEER, Protocol::Udp, &[0x13, 0x88, 0, 53, 0, 8, 0, 0]);
        let err = Icmpv4Repr::dst_unreachable(DstUnreachable::PortUnreachable, 0, original.data());
        ip.receive(Instant::ZERO, icmp_from_peer(&err), &mut link, &mut up);
        assert_eq!(up.errors.len(), 1);
        let e = up.errors[0];
        assert_eq!(
            (e.local_port, e.remote_addr, e.remote_port),
            (5000, PEER, 53)
        );
        assert_eq!(
            e.kind,
            IcmpErrorKind::Unreachable(DstUnreachable::PortUnreachable)
        );
        // Never an ICMP error about an ICMP error.
        assert!(link.sent.is_empty());
    }
}

#[cfg(test)]
mod review_tests {
    //! Regression tests from review: ICMP-about-ICMP, martian sources,
    //! checksum offload and reassembly.
    use super::*;
    use crate::buf::MAX_HEADROOM;
    use crate::time::Duration;

    const ME: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    use super::tests::FakeLink;

    /// A transport that records what it is handed; no port is open unless
    /// `open`.
    #[derive(Default)]
    struct FakeUpper {
        open: bool,
        received: Vec<IpMeta>,
    }

    impl TransportDispatcher for FakeUpper {
        fn receive<S: IpSender>(
            &mut self,
            _now: Instant,
            meta: &IpMeta,
            payload: PacketBuf,
            _ip: &mut S,
        ) -> Disposition {
            self.received.push(*meta);
            if self.open {
                Disposition::Delivered
            } else {
                Disposition::PortUnreachable(payload)
            }
        }
        fn icmp_error(&mut self, _now: Instant, _error: &IcmpError) {}
    }

    fn endpoint() -> Ipv4Endpoint {
        let cidr = Ipv4Cidr::new(ME, 24).unwrap();
        Ipv4Endpoint::new(Ipv4Config::new(cidr), &mut KeyedRng::from_seed(1))
    }

    /// An IPv4 datagram (or fragment) carrying `payload`.
    fn datagram(
        src: Ipv4Addr,
        protocol: Protocol,
        payload: &[u8],
        frag_offset: u16,
        more_frags: bool,
    ) -> PacketBuf {
        let repr = Ipv4Repr {
            src_addr: src,
            dst_addr: ME,
            protocol,
            payload_len: payload.len(),
            ttl: 64,
            tos: 0,
            ident: 77,
            dont_frag: false,
            more_frags,
            frag_offset,
        };
        let mut p = PacketBuf::from_payload(MAX_HEADROOM, payload);
        repr.emit(
            &mut Ipv4Packet::new_unchecked(p.push_header(ipv4::HEADER_LEN)),
            true,
        );
        p
    }

    fn icmp_types_sent(link: &FakeLink) -> Vec<u8> {
        link.sent
            .iter()
            .filter(|(_, d)| d[9] == 1)
            .map(|(_, d)| d[ipv4::HEADER_LEN])
            .collect()
    }

    #[test]
    fn no_time_exceeded_about_a_fragmented_icmp_error() {
        // The first fragment of a port-unreachable message (type 3) whose
        // second fragment never comes.
        let mut error = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
        error.resize(16, 0);
        let mut ip = endpoint();
        let mut link = FakeLink::default();
        let mut upper = FakeUpper::default();
        let t0 = Instant::ZERO;
        ip.receive(
            t0,
            datagram(PEER, Protocol::Icmp, &error, 0, true),
            &mut link,
            &mut upper,
        );
        ip.poll(t0 + Duration::from_secs(60), &mut link, &mut upper);
        assert_eq!(ip.stats().reassembly_timeouts, 1);
        assert_eq!(icmp_types_sent(&link), Vec::<u8>::new());

        // An echo request in the same situation is reported.
        let mut echo = vec![8u8, 0, 0, 0, 0, 1, 0, 1];
        echo.resize(16, 0);
        ip.receive(
            t0,
            datagram(PEER, Protocol::Icmp, &echo, 0, true),
            &mut link,
            &mut upper,
        );
        ip.poll(t0 + Duration::from_secs(120), &mut link, &mut upper);
        assert_eq!(icmp_types_sent(&link), vec![11]);
    }

    #[test]
    fn martian_sources_are_dropped() {
        let mut ip = endpoint();
        let mut link = FakeLink::default();
        let mut upper = FakeUpper::default();
        let udp = [0u8, 1, 0, 2, 0, 8, 0, 0];
        for src in [Ipv4Addr::LOCALHOST, ME, Ipv4Addr::UNSPECIFIED] {
            ip.receive(
                Instant::ZERO,
                datagram(src, Protocol::Udp, &udp, 0, false),
                &mut link,
                &mut upper,
            );
        }
        assert_eq!(ip.stats().rx_bad_source, 3);
        assert!(upper.received.is_empty());
        assert!(link.sent.is_empty(), "no ICMP about martians");

        // Our own datagrams to ourselves still arrive through loopback.
        let p = PacketBuf::from_payload(MAX_HEADROOM, &udp);
        ip.send_datagram(Instant::ZERO, &mut link, None, ME, Protocol::Udp, p, false)
            .unwrap();
        upper.open = true;
        ip.poll(Instant::ZERO, &mut link, &mut upper);
        assert_eq!(upper.received.len(), 1);
        assert_eq!(upper.received[0].src, ME);
    }

    #[test]
    fn reassembled_datagrams_are_not_marked_checksum_verified() {
        let mut ip = endpoint();
        let mut link = FakeLink {
            offload: ChecksumOffload {
                tx: false,
                rx: true,
            },
            ..FakeLink::default()
        };
        let mut upper = FakeUpper {
            open: true,
            ..FakeUpper::default()
        };
        let whole = [0u8; 24];
        ip.receive(
            Instant::ZERO,
            datagram(PEER, Protocol::Udp, &whole, 0, false),
            &mut link,
            &mut upper,
        );
        ip.receive(
            Instant::ZERO,
            datagram(PEER, Protocol::Udp, &whole[..16], 0, true),
            &mut link,
            &mut upper,
        );
        ip.receive(
            Instant::ZERO,
            datagram(PEER, Protocol::Udp, &whole[16..], 16, false),
            &mut link,
            &mut upper,
        );
        let verified: Vec<bool> = upper.received.iter().map(|m| m.checksum_verified).collect();
        assert_eq!(verified, vec![true, false]);
    }

    #[test]
    fn echo_reply_in_place_with_options_and_padding() {
        // An echo request with one word of IP options (NOP NOP NOP EOL) and
        // 10 bytes of link padding after it.
        let mut icmp = vec![8u8, 0, 0, 0, 0x12, 0x34, 0, 7];
        icmp.extend((0..37u8).map(|i| i.wrapping_mul(7)));
        let c = checksum::checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let total = 24 + icmp.len();
        let mut d = vec![0x46, 0, 0, 0, 0, 9, 0, 0, 64, 1, 0, 0];
        d[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        d.extend_from_slice(&PEER.octets());
        d.extend_from_slice(&ME.octets());
        d.extend_from_slice(&[1, 1, 1, 0]);
        d.extend_from_slice(&icmp);
        d.extend_from_slice(&[0xee; 10]);
        Ipv4Packet::new_unchecked(&mut d[..]).fill_checksum();
        let frame = PacketBuf::from_payload(14, &d);

        let mut ip = endpoint();
        let mut link = FakeLink::default();
        ip.receive(Instant::ZERO, frame, &mut link, &mut FakeUpper::default());
        assert_eq!(link.sent.len(), 1);
        let (hop, reply) = &link.sent[0];
        assert_eq!(*hop, NextHop::Unicast(PEER));
        let p = Ipv4Packet::new_checked(&reply[..]).unwrap();
        let r = Ipv4Repr::parse(&p, true).unwrap();
        assert_eq!(
            (r.src_addr, r.dst_addr, r.protocol),
            (ME, PEER, Protocol::Icmp)
        );
        // No padding carried over; data identical; checksum valid.
        assert_eq!(reply.len(), 20 + icmp.len());
        assert_eq!(p.payload()[0], 0);
        assert_eq!(&p.payload()[1..2], &icmp[1..2]);
        assert_eq!(&p.payload()[4..], &icmp[4..]);
        assert_eq!(checksum::checksum(p.payload()), 0);
    }

    #[test]
    fn fragments_share_ident_and_tile_the_payload() {
        let mut ip = endpoint();
        let mut link = FakeLink::default();
        let payload: Vec<u8> = (0..4001u32).map(|i| i as u8).collect();
        let p = PacketBuf::from_payload(MAX_HEADROOM, &payload);
        ip.send_datagram(
            Instant::ZERO,
            &mut link,
            None,
            PEER,
            Protocol::Udp,
            p,
            false,
        )
        .unwrap();
        let mut next = 0;
        let mut idents = Vec::new();
        for (i, (_, f)) in link.sent.iter().enumerate() {
            assert!(f.len() <= 1500);
            let p = Ipv4Packet::new_checked(&f[..]).unwrap();
            let r = Ipv4Repr::parse(&p, true).unwrap();
            assert_eq!(usize::from(r.frag_offset), next);
            assert_eq!(r.more_frags, i + 1 < link.sent.len());
            assert!(!r.dont_frag);
            assert_eq!(p.payload(), &payload[next..next + r.payload_len]);
            next += r.payload_len;
            idents.push(r.ident);
        }
        assert_eq!(next, payload.len());
        assert_eq!(link.sent.len(), 3);
        assert!(idents.iter().all(|&i| i == idents[0]));
        // Too big with Don't Fragment: a typed error, nothing sent.
        let p = PacketBuf::from_payload(MAX_HEADROOM, &payload);
        assert!(matches!(
            ip.send_datagram(Instant::ZERO, &mut link, None, PEER, Protocol::Udp, p, true),
            Err(IpSendError::TooBig { .. })
        ));
        assert_eq!(link.sent.len(), 3);
    }

    proptest::proptest! {
        #[test]
        fn echo_reply_checksum_always_valid(
            ident in proptest::prelude::any::<u16>(),
            seq in proptest::prelude::any::<u16>(),
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1400),
        ) {
            let mut icmp = vec![8u8, 0, 0, 0];
            icmp.extend_from_slice(&ident.to_be_bytes());
            icmp.extend_from_slice(&seq.to_be_bytes());
            icmp.extend_from_slice(&data);
            let c = checksum::checksum(&icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            let mut ip = endpoint();
            let mut link = FakeLink::default();
            ip.receive(
                Instant::ZERO,
                datagram(PEER, Protocol::Icmp, &icmp, 0, false),
                &mut link,
                &mut FakeUpper::default(),
            );
            proptest::prop_assert_eq!(link.sent.len(), 1);
            let reply = &link.sent[0].1[ipv4::HEADER_LEN..];
            proptest::prop_assert_eq!(reply[0], 0);
            proptest::prop_assert_eq!(&reply[4..], &icmp[4..]);
            proptest::prop_assert_eq!(checksum::checksum(reply), 0);
        }
    }
}
