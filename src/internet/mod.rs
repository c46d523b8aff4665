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
//!
//! # Example
//!
//! The two wire formats of this layer together: an echo request inside an
//! IPv4 datagram, read layer by layer.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use netstrata::internet::icmpv4::{Icmpv4Packet, Icmpv4Repr};
//! use netstrata::internet::ipv4::{Ipv4Packet, Ipv4Repr, Protocol};
//!
//! let datagram = [
//!     0x45, 0x00, 0x00, 0x1e, 0x12, 0x34, 0x00, 0x00, 0x40, 0x01, 0xe4, 0xa7,
//!     192, 0, 2, 1, 192, 0, 2, 2, // IPv4: ICMP from 192.0.2.1 to 192.0.2.2
//!     8, 0, 0x8f, 0x93, 0x00, 0x01, 0x00, 0x02, b'h', b'i', // echo request
//! ];
//! let packet = Ipv4Packet::new_checked(&datagram[..])?;
//! let ip = Ipv4Repr::parse(&packet, true)?;
//! assert_eq!((ip.protocol, ip.dst_addr), (Protocol::Icmp, Ipv4Addr::new(192, 0, 2, 2)));
//! let icmp = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(packet.payload())?, true)?;
//! assert!(matches!(icmp, Icmpv4Repr::EchoRequest { ident: 1, seq_no: 2, data: b"hi" }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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
