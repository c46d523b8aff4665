//! A flow's cached path: what the internet and link layers decided for the
//! last datagram of a flow, kept by the flow so that the next one skips the
//! decisions.
//!
//! Each datagram needs a route (RFC 1122 §3.3.1), an identification
//! counter (RFC 6864, [`crate::internet::ident`]) and the next hop's link
//! address (RFC 826). None of them changes from one datagram of a flow to
//! the next unless the routing table or the neighbour cache does. A flow
//! (a TCP connection, a UDP socket) keeps a [`PathCache`] and sends
//! through [`crate::internet::IpSender::send_on_path`]: the route and the
//! counter are taken from the cache while the routing table's epoch
//! stands, and the neighbour's address while its
//! [`NeighbourHint`] holds (the ARP cache voids every hint when it
//! changes). A flow whose addresses change simply fills the cache afresh:
//! it is keyed by source, destination and protocol.
//!
//! # Example
//!
//! A flow sends through its cache: the first datagram fills it, the next
//! take the route and counter from it, and a change to the routing table is
//! noticed. (The link is a stand-in that keeps what it is given.)
//!
//! ```
//! use std::net::Ipv4Addr;
//! use netstrata::internet::ipv4::{Ipv4Packet, Protocol};
//! use netstrata::internet::{Ipv4Config, Ipv4Endpoint, PathCache};
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
//! let config = Ipv4Config::new("192.0.2.1/24".parse()?);
//! let mut ip = Ipv4Endpoint::new(config, &mut KeyedRng::from_seed(1));
//! let (mut wire, mut path, now) = (Wire::default(), PathCache::default(), Instant::ZERO);
//! let (src, dst) = (ip.address(), Ipv4Addr::new(198, 51, 100, 7));
//! let mut send = |ip: &mut Ipv4Endpoint, wire: &mut Wire| {
//!     let payload = PacketBuf::from_payload(MAX_HEADROOM, b"data");
//!     ip.send_on_path(now, wire, &mut path, src, dst, Protocol::Udp, payload, false)
//! };
//! assert!(send(&mut ip, &mut wire).is_err()); // no route off the subnet yet
//! ip.routes_mut().set_default_gateway(Ipv4Addr::new(192, 0, 2, 254))?;
//! send(&mut ip, &mut wire)?;
//! send(&mut ip, &mut wire)?;
//! let ident = |p: &PacketBuf| Ipv4Packet::new_unchecked(p.data()).ident();
//! assert_eq!(ident(&wire.0[1]), ident(&wire.0[0]).wrapping_add(1));
//! assert_eq!(Ipv4Packet::new_unchecked(wire.0[1].data()).dst_addr(), dst);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::net::Ipv4Addr;

use crate::epoch::Epoch;
use crate::internet::ident::{IdentCounter, IdentGenerator};
use crate::internet::ipv4::Protocol;
use crate::internet::route::{NoRoute, RouteDecision, RoutingTable};
use crate::link::NeighbourHint;

/// What one flow remembers of how its datagrams leave. The default is
/// empty: the first datagram sent through it fills it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathCache {
    route: CachedRoute,
    neighbour: NeighbourHint,
}

impl Default for PathCache {
    fn default() -> Self {
        let none = Ipv4Addr::UNSPECIFIED;
        PathCache {
            // Epoch::NONE is no routing table's: this never holds.
            route: CachedRoute {
                src: none,
                dst: none,
                protocol: Protocol::Unknown(0),
                epoch: Epoch::NONE,
                decision: RouteDecision {
                    next_hop: none,
                    source: none,
                    broadcast: false,
                },
                ident: IdentCounter::default(),
            },
            neighbour: NeighbourHint::default(),
        }
    }
}

/// The decisions of the internet layer for one (source, destination,
/// protocol), and the routing table's epoch they were made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CachedRoute {
    pub(crate) src: Ipv4Addr,
    pub(crate) dst: Ipv4Addr,
    pub(crate) protocol: Protocol,
    pub(crate) epoch: Epoch,
    pub(crate) decision: RouteDecision,
    pub(crate) ident: IdentCounter,
}

impl CachedRoute {
    /// The decisions for a datagram from `src` (or the route's source) to
    /// `dst`.
    pub(crate) fn decide(
        routes: &RoutingTable,
        idents: &mut IdentGenerator,
        src: Option<Ipv4Addr>,
        dst: Ipv4Addr,
        protocol: Protocol,
    ) -> Result<CachedRoute, NoRoute> {
        let decision = routes.lookup(dst)?;
        let src = src.unwrap_or(decision.source);
        Ok(CachedRoute {
            src,
            dst,
            protocol,
            epoch: routes.epoch(),
            decision,
            ident: idents.counter(src, dst, protocol),
        })
    }
}

impl PathCache {
    /// The decisions for a datagram from `src` to `dst`, with the flow's
    /// neighbour hint: those cached if they were made for this flow while
    /// `routes` stood as it stands, else those made now, which are cached.
    pub(crate) fn get_or_fill(
        &mut self,
        routes: &RoutingTable,
        idents: &mut IdentGenerator,
        (src, dst, protocol): (Ipv4Addr, Ipv4Addr, Protocol),
    ) -> Result<(&CachedRoute, &mut NeighbourHint), NoRoute> {
        let r = &self.route;
        if !(r.epoch == routes.epoch() && r.src == src && r.dst == dst && r.protocol == protocol) {
            self.route = CachedRoute::decide(routes, idents, Some(src), dst, protocol)?;
        }
        Ok((&self.route, &mut self.neighbour))
    }
}
