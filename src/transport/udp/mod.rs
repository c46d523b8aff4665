//! UDP (RFC 768): the datagram format and sockets.

pub mod packet;
mod ring;
pub mod socket;

pub use packet::{UdpPacket, UdpRepr};
pub use socket::{UdpConfig, UdpError, UdpHandle, UdpLayerStats, UdpSocketStats, UdpSockets};
