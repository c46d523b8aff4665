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
//!
//! # Example
//!
//! A SYN to a port nobody listens on is answered with a RST, and the
//! connection ends refused. (Two hosts on a
//! [`Simulation`](crate::sim::Simulation), set up as in the crate's
//! example; [`table`] has a whole exchange.)
//!
//! ```
//! use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
//! use netstrata::sim::Simulation;
//! use netstrata::transport::tcp::{State, TcpError};
//! use netstrata::{Duration, Interface, InterfaceConfig};
//!
//! # let net = MemoryNetwork::new(1500);
//! # let mut sim = Simulation::new();
//! # let mut host = |n: u32| {
//! #     let port = net.attach();
//! #     let cidr = format!("192.0.2.{n}/24").parse().unwrap();
//! #     let cfg = InterfaceConfig::new(EthernetAddress::local(n), cidr).with_seed(n.into());
//! #     sim.add_host(Interface::new(cfg, port.capabilities()), Box::new(port))
//! # };
//! let (a, _b) = (host(1), host(2));
//! let h = sim.iface(a).tcp().connect("192.0.2.2:81".parse()?)?;
//! assert_eq!(sim.iface(a).tcp().state(h)?, State::SynSent);
//! sim.run_while_not(Duration::from_secs(5), |s| s.iface(a).tcp().state(h) == Ok(State::Closed));
//! assert_eq!(sim.iface(a).tcp().error(h)?, Some(TcpError::ConnectionRefused));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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
