//! TCP (RFC 9293). This issue: the segment format and sequence numbers; the
//! state machine comes next.

pub mod segment;
pub mod seq;

pub use segment::{TcpFlags, TcpOption, TcpOptions, TcpPacket, TcpRepr};
pub use seq::SeqNumber;
