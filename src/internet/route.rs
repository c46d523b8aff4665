//! The routing table: which next hop and source address reach a
//! destination (RFC 1122 §3.3.1).
//!
//! A host's table holds its directly connected subnets and any number of
//! gateway routes, the default route being `0.0.0.0/0`. Lookup is longest
//! prefix match; entries are kept sorted by prefix length (longest first),
//! so the first match wins. Tables are small (a handful of entries on a
//! host), so the scan is a few comparisons.
//!
//! Not here: route metrics, multipath, policy routing, forwarding.
//!
//! # Example
//!
//! A host on 192.0.2.0/24 with a default gateway, and a more specific route
//! through another router:
//!
//! ```
//! use std::net::Ipv4Addr;
//! use netstrata::internet::route::RoutingTable;
//!
//! let mut table = RoutingTable::new();
//! table.add_connected("192.0.2.10/24".parse()?);
//! table.set_default_gateway(Ipv4Addr::new(192, 0, 2, 1))?;
//! table.add_gateway("198.51.100.0/24".parse()?, Ipv4Addr::new(192, 0, 2, 254))?;
//!
//! let on_link = table.lookup(Ipv4Addr::new(192, 0, 2, 77))?;
//! assert_eq!(on_link.next_hop, Ipv4Addr::new(192, 0, 2, 77));
//! assert_eq!(on_link.source, Ipv4Addr::new(192, 0, 2, 10));
//! let specific = table.lookup(Ipv4Addr::new(198, 51, 100, 5))?;
//! assert_eq!(specific.next_hop, Ipv4Addr::new(192, 0, 2, 254)); // longest prefix
//! let default = table.lookup(Ipv4Addr::new(203, 0, 113, 9))?;
//! assert_eq!(default.next_hop, Ipv4Addr::new(192, 0, 2, 1));
//! assert!(table.lookup(Ipv4Addr::new(192, 0, 2, 255))?.broadcast);
//! // A gateway must be on a connected subnet.
//! assert!(table.add_gateway("10.0.0.0/8".parse()?, Ipv4Addr::new(10, 0, 0, 1)).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::net::Ipv4Addr;

use crate::epoch::Epoch;
use crate::internet::ipv4::Ipv4Cidr;

/// Where a route sends packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The destination is on the link: send to it directly.
    Direct,
    /// Send to this gateway, which must itself be directly reachable.
    Gateway(Ipv4Addr),
}

/// One entry of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destinations this route covers.
    pub destination: Ipv4Cidr,
    /// How to reach them.
    pub via: Via,
    /// The source address to use.
    pub source: Ipv4Addr,
}

/// The result of a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteDecision {
    /// The neighbour to hand the packet to.
    pub next_hop: Ipv4Addr,
    /// The source address to put in the packet.
    pub source: Ipv4Addr,
    /// Whether the destination is a broadcast address of the subnet.
    pub broadcast: bool,
}

/// No route covers the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no route to host {0}: add a route or a default gateway")]
pub struct NoRoute(pub Ipv4Addr);

/// Why a route could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// A gateway must be on a directly connected subnet.
    #[error("gateway {0} is not on a directly connected subnet")]
    GatewayUnreachable(Ipv4Addr),
}

/// A longest-prefix-match routing table.
#[derive(Debug)]
pub struct RoutingTable {
    routes: Vec<Route>,
    /// Fresh at every change (and in a new table or a copy): a flow's
    /// cached decision ([`crate::internet::path::PathCache`]) holds only
    /// while it stands.
    epoch: Epoch,
}

impl Default for RoutingTable {
    fn default() -> Self {
        RoutingTable {
            routes: Vec::new(),
            epoch: Epoch::fresh(),
        }
    }
}

impl Clone for RoutingTable {
    /// A copy with an epoch of its own: restored later, it revives no
    /// decision cached from the table it was copied from.
    fn clone(&self) -> Self {
        RoutingTable {
            routes: self.routes.clone(),
            epoch: Epoch::fresh(),
        }
    }
}

impl RoutingTable {
    /// An empty table.
    pub fn new() -> RoutingTable {
        RoutingTable::default()
    }

    /// Adds the directly connected subnet of an interface address.
    pub fn add_connected(&mut self, addr: Ipv4Cidr) {
        self.insert(Route {
            destination: addr.block(),
            via: Via::Direct,
            source: addr.address(),
        });
    }

    /// Adds the far end of a point-to-point link: `peer` is directly
    /// reachable whatever the prefix of our address `local` (Linux's `ip
    /// addr add LOCAL peer PEER`), and can then be a gateway.
    pub fn add_peer(&mut self, local: Ipv4Addr, peer: Ipv4Addr) {
        self.insert(Route {
            destination: Ipv4Cidr::new(peer, 32).unwrap_or(Ipv4Cidr::ANY),
            via: Via::Direct,
            source: local,
        });
    }

    /// Adds a route through `gateway`, which must be on a connected subnet;
    /// the source address is that subnet's interface address.
    pub fn add_gateway(
        &mut self,
        destination: Ipv4Cidr,
        gateway: Ipv4Addr,
    ) -> Result<(), RouteError> {
        let source = self
            .routes
            .iter()
            .find(|r| r.via == Via::Direct && r.destination.contains(gateway))
            .map(|r| r.source)
            .ok_or(RouteError::GatewayUnreachable(gateway))?;
        self.insert(Route {
            destination: destination.block(),
            via: Via::Gateway(gateway),
            source,
        });
        Ok(())
    }

    /// Adds or replaces the default route.
    pub fn set_default_gateway(&mut self, gateway: Ipv4Addr) -> Result<(), RouteError> {
        self.add_gateway(Ipv4Cidr::ANY, gateway)
    }

    /// Removes every route to exactly `destination`.
    pub fn remove(&mut self, destination: Ipv4Cidr) {
        self.routes.retain(|r| r.destination != destination);
        self.epoch = Epoch::fresh();
    }

    /// The table's state: a value no other table, and no other state of
    /// this one, ever has.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The routes, longest prefix first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    fn insert(&mut self, route: Route) {
        self.routes.retain(|r| r.destination != route.destination);
        let at = self
            .routes
            .iter()
            .position(|r| r.destination.prefix_len() < route.destination.prefix_len())
            .unwrap_or(self.routes.len());
        self.routes.insert(at, route);
        self.epoch = Epoch::fresh();
    }

    /// Finds how to reach `dst`.
    pub fn lookup(&self, dst: Ipv4Addr) -> Result<RouteDecision, NoRoute> {
        if dst.is_broadcast() {
            // Limited broadcast goes out of the first connected subnet.
            let r = self
                .routes
                .iter()
                .find(|r| r.via == Via::Direct)
                .ok_or(NoRoute(dst))?;
            return Ok(RouteDecision {
                next_hop: dst,
                source: r.source,
                broadcast: true,
            });
        }
        let r = self
            .routes
            .iter()
            .find(|r| r.destination.contains(dst))
            .ok_or(NoRoute(dst))?;
        Ok(match r.via {
            Via::Direct => RouteDecision {
                next_hop: dst,
                source: r.source,
                broadcast: r.destination.broadcast() == Some(dst),
            },
            Via::Gateway(gw) => RouteDecision {
                next_hop: gw,
                source: r.source,
                broadcast: false,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = RoutingTable::new();
        t.add_connected(cidr("192.0.2.10/24"));
        t.set_default_gateway(Ipv4Addr::new(192, 0, 2, 1)).unwrap();
        t.add_gateway(cidr("203.0.113.0/25"), Ipv4Addr::new(192, 0, 2, 2))
            .unwrap();
        let d = t.lookup(Ipv4Addr::new(192, 0, 2, 77)).unwrap();
        assert_eq!(d.next_hop, Ipv4Addr::new(192, 0, 2, 77));
        assert_eq!(d.source, Ipv4Addr::new(192, 0, 2, 10));
        assert!(!d.broadcast);
        assert_eq!(
            t.lookup(Ipv4Addr::new(203, 0, 113, 5)).unwrap().next_hop,
            Ipv4Addr::new(192, 0, 2, 2)
        );
        assert_eq!(
            t.lookup(Ipv4Addr::new(198, 51, 100, 1)).unwrap().next_hop,
            Ipv4Addr::new(192, 0, 2, 1)
        );
        assert!(t.lookup(Ipv4Addr::new(192, 0, 2, 255)).unwrap().broadcast);
        assert!(t.lookup(Ipv4Addr::BROADCAST).unwrap().broadcast);
    }

    #[test]
    fn no_route_and_bad_gateway() {
        let mut t = RoutingTable::new();
        assert_eq!(
            t.lookup(Ipv4Addr::new(1, 2, 3, 4)),
            Err(NoRoute(Ipv4Addr::new(1, 2, 3, 4)))
        );
        t.add_connected(cidr("192.0.2.10/24"));
        assert_eq!(
            t.set_default_gateway(Ipv4Addr::new(10, 0, 0, 1)),
            Err(RouteError::GatewayUnreachable(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert!(t.lookup(Ipv4Addr::new(10, 1, 1, 1)).is_err());
        let e = NoRoute(Ipv4Addr::new(10, 1, 1, 1)).to_string();
        assert!(e.contains("no route to host 10.1.1.1"), "{e}");
    }

    #[test]
    fn replacing_default_gateway() {
        let mut t = RoutingTable::new();
        t.add_connected(cidr("192.0.2.10/24"));
        t.set_default_gateway(Ipv4Addr::new(192, 0, 2, 1)).unwrap();
        t.set_default_gateway(Ipv4Addr::new(192, 0, 2, 3)).unwrap();
        assert_eq!(t.routes().len(), 2);
        assert_eq!(
            t.lookup(Ipv4Addr::new(8, 8, 8, 8)).unwrap().next_hop,
            Ipv4Addr::new(192, 0, 2, 3)
        );
    }
}
