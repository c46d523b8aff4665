//! TCP (RFC 9293).
//!
//! - [`segment`] and [`seq`]: the segment format and sequence numbers.
//! - [`connection`]: one connection's state machine, sans-IO.
//! - [`table`]: [`TcpSockets`], listeners, connections, O(1)
//!   demultiplexing and the timer heap.
//! - [`send_buffer`], [`recv_buffer`]: the byte buffers, with out-of-order
//!   reassembly and SACK block generation on the receive side.
//! - [`rtt`]: the retransmission timeout (RFC 6298).
//! - [`congestion`]: congestion control (NewReno, CUBIC, [`bbr`]).
//! - [`scoreboard`]: what the peer has SACKed (RFC 2018, RFC 6675), and
//!   D-SACKs (RFC 2883).
//! - [`rack`]: the segments in flight and RACK's time-based loss
//!   detection (RFC 8985).
//! - [`prr`]: Proportional Rate Reduction during recovery (RFC 6937).
//! - [`pacing`]: when the next data segment may leave.
//! - [`rate`]: delivery rate estimation, for BBR.
//! - [`hystart`]: HyStart++ (RFC 9406), leaving slow start early.
//! - [`isn`]: initial sequence numbers (RFC 6528).
//! - [`syncookie`]: SYN cookies (RFC 4987), for listeners under a SYN flood.
//! - [`time_wait`]: TIME-WAIT as compact records (RFC 1337, RFC 6191).
//! - [`pmtu`]: path MTU discovery (RFC 1191), hardened against forgery.

pub mod bbr;
pub mod congestion;
pub mod connection;
pub mod hystart;
pub mod isn;
pub mod pacing;
pub mod pmtu;
pub mod prr;
pub mod rack;
pub mod rate;
pub mod recv_buffer;
pub mod rtt;
pub mod scoreboard;
pub mod segment;
pub mod send_buffer;
pub mod seq;
pub mod syncookie;
pub mod table;
pub mod time_wait;

pub use congestion::{Ack, Bbr, CongestionAlgorithm, CongestionControl, Cubic, Delivered, NewReno};
pub use connection::{
    Connection, MemoryPressure, State, TcpConfig, TcpError, TcpInfo, TcpSocketStats,
};
pub use recv_buffer::{Insert, RecvBuffer};
pub use rtt::{RttConfig, RttEstimator};
pub use scoreboard::Scoreboard;
pub use segment::{TcpFlags, TcpOption, TcpOptions, TcpPacket, TcpRepr};
pub use send_buffer::SendBuffer;
pub use seq::SeqNumber;
pub use table::{ListenerHandle, TcpEvent, TcpHandle, TcpLayerStats, TcpLimits, TcpSockets};
