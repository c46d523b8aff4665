//! UDP (RFC 768): the datagram format and sockets.
//!
//! # Example
//!
//! A socket table needs no network to bind: ports are taken once, and
//! port 0 picks an ephemeral one.
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use netstrata::rand::KeyedRng;
//! use netstrata::transport::ports::EPHEMERAL_FIRST;
//! use netstrata::transport::udp::{UdpConfig, UdpError, UdpSockets};
//!
//! let me = Ipv4Addr::new(192, 0, 2, 1);
//! let mut udp = UdpSockets::new(me, UdpConfig::default(), KeyedRng::from_seed(1));
//! let dns = udp.bind(SocketAddrV4::new(me, 53))?;
//! assert_eq!(udp.bind(SocketAddrV4::new(me, 53)), Err(UdpError::AddrInUse(53)));
//! let other = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 9), 1);
//! assert_eq!(udp.bind(other), Err(UdpError::AddrNotAvailable(*other.ip())));
//!
//! let client = udp.bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
//! assert!(udp.local_addr(client)?.port() >= EPHEMERAL_FIRST);
//! udp.send_to(client, b"query", SocketAddrV4::new(me, 53))?;
//! assert!(udp.has_pending_tx()); // sent at the next dispatch
//! udp.close(dns)?;
//! assert_eq!(udp.close(dns), Err(UdpError::InvalidHandle)); // a stale handle
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod packet;
mod ring;
pub mod table;

pub use packet::{UdpPacket, UdpRepr};
pub use table::{UdpConfig, UdpError, UdpHandle, UdpLayerStats, UdpSocketStats, UdpSockets};
