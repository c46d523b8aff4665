//! The internet layer: IPv4, ICMPv4, routing, fragmentation.

pub mod ipv4;
pub mod route;
