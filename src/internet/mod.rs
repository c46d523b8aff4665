//! The internet layer: IPv4, ICMPv4, routing, fragmentation.
//!
//! - [`ipv4`]: the IPv4 header and address blocks.
//! - [`icmpv4`]: ICMP messages.
//! - [`route`]: the routing table.
//! - [`fragment`]: reassembly and the fragmentation plan.
//! - [`ident`]: identification values per destination.
//! - [`ping`]: ICMP echo sockets.
//! - [`endpoint`]: [`Ipv4Endpoint`], which ties these together, and the
//!   boundary with the transport layer: [`TransportDispatcher`] (what the
//!   transport layer implements) and [`IpSender`] (what this layer offers).

pub mod endpoint;
pub mod fragment;
pub mod icmpv4;
pub mod ident;
pub mod ipv4;
pub mod path;
pub mod ping;
pub mod route;

pub use endpoint::{
    Disposition, IcmpError, IcmpErrorKind, IpMeta, IpSendError, IpSender, IpStats, Ipv4Config,
    Ipv4Endpoint, Ipv4Tx, TransportDispatcher,
};
pub use ipv4::{Ipv4Cidr, Protocol};
pub use path::PathCache;
