//! UDP (RFC 768): the datagram format and sockets.

pub mod packet;
mod ring;
pub mod table;

pub use packet::{UdpPacket, UdpRepr};
pub use table::{UdpConfig, UdpError, UdpHandle, UdpLayerStats, UdpSocketStats, UdpSockets};
