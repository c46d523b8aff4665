//! The connection's configuration and the types it shares with the
//! socket layer: states, options, errors, counters and what a segment did.
//!
//! # Example
//!
//! ```
//! use netstrata::transport::tcp::congestion::CongestionAlgorithm;
//! use netstrata::transport::tcp::connection::types::{State, TcpConfig, TcpError};
//! use netstrata::Duration;
//!
//! let config = TcpConfig {
//!     congestion: CongestionAlgorithm::Bbr,
//!     delayed_ack: Duration::from_millis(10),
//!     ..TcpConfig::default()
//! };
//! assert!(config.sack && config.timestamps && config.window_scaling);
//!
//! assert!(State::CloseWait.can_send() && !State::FinWait1.can_send());
//! assert!(!State::SynReceived.is_synchronized());
//! assert_eq!(State::TimeWait.to_string(), "TIME-WAIT");
//! assert_eq!(TcpError::InvalidHandle.to_string(), "no such TCP socket");
//! ```

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::time::Duration;
use crate::transport::tcp::congestion::CongestionAlgorithm;
use crate::transport::tcp::rtt::RttConfig;
use crate::transport::tcp::segment::TcpRepr;
use crate::transport::tcp::seq::SeqNumber;

/// The states of RFC 9293 §3.3.2 (LISTEN belongs to listeners).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Our SYN is sent; waiting for the peer's.
    SynSent,
    /// The peer's SYN arrived and ours is sent; waiting for its ACK.
    SynReceived,
    /// Data flows both ways.
    Established,
    /// We closed; our FIN is queued or sent.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's.
    FinWait2,
    /// The peer closed; we may still send.
    CloseWait,
    /// Both closed at once; waiting for the ACK of our FIN.
    Closing,
    /// The peer closed, then we did; waiting for the ACK of our FIN.
    LastAck,
    /// Both sides closed; lingering 2·MSL for stray segments.
    TimeWait,
    /// Gone.
    Closed,
}

impl State {
    /// Whether both SYNs have been exchanged (RFC 9293 "synchronized").
    pub fn is_synchronized(self) -> bool {
        !matches!(self, State::SynSent | State::SynReceived | State::Closed)
    }

    /// Whether the application may still send.
    pub fn can_send(self) -> bool {
        matches!(self, State::Established | State::CloseWait)
    }
}

impl core::fmt::Display for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
            State::Closed => "CLOSED",
        })
    }
}

/// Options of a TCP socket.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpConfig {
    /// Send buffer size in bytes.
    pub send_buffer: usize,
    /// Receive buffer size in bytes (the largest window advertised).
    pub recv_buffer: usize,
    /// Disable Nagle's algorithm.
    pub nodelay: bool,
    /// Congestion control algorithm.
    pub congestion: CongestionAlgorithm,
    /// HyStart++ (RFC 9406) ends CUBIC's first slow start when the RTT
    /// rises, before the window overshoots (default on).
    pub hystart: bool,
    /// Pace data segments at twice the window per SRTT in slow start and
    /// 1.2 times after (Linux's ratios), instead of sending a window as
    /// one burst (default off, as in Linux without the fq qdisc).
    pub pacing: bool,
    /// Retransmission timer bounds. Default: Linux's (RTO at least
    /// SRTT + 200 ms), which keeps delayed ACKs from causing spurious
    /// timeouts on paths with a steady RTT.
    pub rtt: RttConfig,
    /// SYN (or SYN-ACK) retransmissions before giving up (Linux: 6).
    pub syn_retries: u32,
    /// Data retransmissions of one segment before giving up (Linux's
    /// `tcp_retries2`: 15).
    pub max_retransmissions: u32,
    /// Retransmissions and zero-window probes an orphan gets (a connection
    /// the application has closed) before it is reset: Linux's
    /// `tcp_orphan_retries` (whose 0 means 8). For an orphan the probe
    /// count is the persist timer's backoff, which only a window that
    /// opens resets: a peer that answers every probe with a zero window
    /// (sockstress) cannot keep an orphan and its send buffer alive.
    pub orphan_retries: u32,
    /// Maximum segment lifetime; TIME-WAIT lasts twice this.
    pub msl: Duration,
    /// Longest delay of an ACK.
    pub delayed_ack: Duration,
    /// Idle time before keep-alive probes, `None` for no keep-alive.
    pub keepalive: Option<Duration>,
    /// Time between keep-alive probes.
    pub keepalive_interval: Duration,
    /// Unanswered probes before the connection is declared dead.
    pub keepalive_probes: u32,
    /// Abort if sent data stays unacknowledged this long.
    pub user_timeout: Option<Duration>,
    /// How long a closed connection waits in FIN-WAIT-2 for the peer's FIN
    /// (Linux: 60 s).
    pub fin_wait2_timeout: Duration,
    /// Offer window scaling (RFC 7323).
    pub window_scaling: bool,
    /// Offer timestamps (RFC 7323).
    pub timestamps: bool,
    /// Offer SACK (RFC 2018).
    pub sack: bool,
    /// Least time between two ACKs answering unacceptable segments that
    /// carry no data (out of window, failing PAWS, acknowledging unsent
    /// data); Linux's `tcp_invalid_ratelimit`, 500 ms.
    pub invalid_ack_interval: Duration,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            send_buffer: 256 * 1024,
            recv_buffer: 256 * 1024,
            nodelay: false,
            congestion: CongestionAlgorithm::default(),
            hystart: true,
            pacing: false,
            rtt: RttConfig::linux(),
            syn_retries: 6,
            max_retransmissions: 15,
            orphan_retries: 8,
            msl: Duration::from_secs(30),
            delayed_ack: Duration::from_millis(40),
            keepalive: None,
            keepalive_interval: Duration::from_secs(75),
            keepalive_probes: 9,
            user_timeout: None,
            fin_wait2_timeout: Duration::from_secs(60),
            window_scaling: true,
            timestamps: true,
            sack: true,
            invalid_ack_interval: Duration::from_millis(500),
        }
    }
}

/// Why a TCP call failed, or why a connection ended: one flat list a
/// caller matches on, as `std::io::ErrorKind` is matched (a connection
/// ends refused, reset, timed out or aborted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TcpError {
    /// The handle names no live connection or listener (closed and
    /// released, or never of this interface).
    #[error("no such TCP socket")]
    InvalidHandle,
    /// Nothing to read yet, no room to write, no connection to accept:
    /// try again after the next poll. Not an end of stream, which a read
    /// reports as `Ok(0)`.
    #[error("operation would block")]
    WouldBlock,
    /// The connection is not (yet, or any longer) in a state that allows
    /// the call.
    #[error("not connected (state {0})")]
    NotConnected(State),
    /// The write side was shut down.
    #[error("the write side is shut down")]
    WriteShutdown,
    /// The peer answered our SYN with RST: nothing listens there.
    #[error("connection refused")]
    ConnectionRefused,
    /// The peer reset the connection.
    #[error("connection reset by peer")]
    ConnectionReset,
    /// The peer stopped answering (SYN retries, retransmissions,
    /// keep-alive or user timeout exhausted).
    #[error("connection timed out")]
    TimedOut,
    /// We aborted the connection.
    #[error("connection aborted")]
    ConnectionAborted,
    /// Another listener has the port.
    #[error("address in use: port {0} already has a listener")]
    AddrInUse(u16),
    /// The address is not this interface's.
    #[error("cannot bind to {0}: not an address of this interface")]
    AddrNotAvailable(Ipv4Addr),
    /// The destination is unspecified, broadcast or port 0.
    #[error("cannot connect to {0}: address or port is zero")]
    Unaddressable(SocketAddrV4),
    /// No free ephemeral port for this destination.
    #[error("no free ephemeral port")]
    NoEphemeralPort,
    /// A connection with this 4-tuple exists.
    #[error("connection {0} -> {1} already exists")]
    ConnectionExists(SocketAddrV4, SocketAddrV4),
}

/// Statistics of one connection, for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpSocketStats {
    /// Segments sent.
    pub segs_out: u64,
    /// Segments received.
    pub segs_in: u64,
    /// Payload bytes sent, retransmissions included.
    pub bytes_sent: u64,
    /// Payload bytes acknowledged by the peer.
    pub bytes_acked: u64,
    /// Payload bytes received in order.
    pub bytes_received: u64,
    /// Segments retransmitted (any reason).
    pub retransmits: u64,
    /// Fast retransmissions (entering loss recovery).
    pub fast_retransmits: u64,
    /// Retransmission timeouts.
    pub timeouts: u64,
    /// Duplicate ACKs received.
    pub dup_acks: u64,
    /// SACK blocks received.
    pub sacks_received: u64,
    /// D-SACKs received (spurious retransmissions reported by the peer).
    pub dsacks_received: u64,
    /// Segments received out of order.
    pub out_of_order: u64,
    /// Segments dropped as unacceptable (outside the window, PAWS).
    pub rejected: u64,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// Challenge ACKs not sent because of their rate limit (RFC 5961 §7).
    pub challenge_acks_limited: u64,
    /// Zero-window probes sent.
    pub window_probes: u64,
    /// Connections reset because data arrived after the application had
    /// closed them (Linux's `TCPAbortOnData`).
    pub aborts_on_data: u64,
    /// Retransmissions found lost (by RACK, RFC 8985; see
    /// [`crate::transport::tcp::rack`]).
    pub lost_retransmits: u64,
    /// Congestion reductions undone because their retransmissions proved
    /// unnecessary (D-SACK, RFC 3708; timestamps, RFC 3522).
    pub spurious_undos: u64,
    /// Retransmission timeouts on data the peer had SACKed: it discarded
    /// it (reneging, RFC 2018 §8), and everything was sent again.
    pub sack_reneging: u64,
    /// Tail loss probes sent (RFC 8985 §7.3; Linux's `TCPLossProbes`).
    pub loss_probes: u64,
    /// Losses a tail loss probe repaired (RFC 8985 §7.4), each a window
    /// reduction.
    pub tlp_recoveries: u64,
    /// Unacceptable segments left unanswered by the rate limit of
    /// [`TcpConfig::invalid_ack_interval`].
    pub invalid_acks_limited: u64,
    /// Orphans reset after [`TcpConfig::orphan_retries`].
    pub orphan_timeouts: u64,
    /// Path MTU reductions taken from "fragmentation needed" (RFC 1191).
    pub pmtu_reductions: u64,
    /// "Fragmentation needed" reports about data in flight that changed
    /// nothing (within an RTT of the last reduction, or not lower).
    pub pmtu_reports_ignored: u64,
    /// Segments dropped because the stack's TCP memory was under pressure
    /// or exhausted.
    pub memory_drops: u64,
    /// Out-of-order bytes dropped under memory pressure.
    pub pruned_bytes: u64,
}

impl TcpSocketStats {
    /// Adds every counter of `other` to this one (for totals over
    /// connections).
    pub fn accumulate(&mut self, other: &TcpSocketStats) {
        let TcpSocketStats {
            segs_out,
            segs_in,
            bytes_sent,
            bytes_acked,
            bytes_received,
            retransmits,
            fast_retransmits,
            timeouts,
            dup_acks,
            sacks_received,
            dsacks_received,
            out_of_order,
            rejected,
            challenge_acks,
            window_probes,
            aborts_on_data,
            lost_retransmits,
            spurious_undos,
            sack_reneging,
            loss_probes,
            tlp_recoveries,
            invalid_acks_limited,
            orphan_timeouts,
            pmtu_reductions,
            memory_drops,
            pruned_bytes,
            challenge_acks_limited,
            pmtu_reports_ignored,
        } = *other;
        self.segs_out += segs_out;
        self.segs_in += segs_in;
        self.bytes_sent += bytes_sent;
        self.bytes_acked += bytes_acked;
        self.bytes_received += bytes_received;
        self.retransmits += retransmits;
        self.fast_retransmits += fast_retransmits;
        self.timeouts += timeouts;
        self.dup_acks += dup_acks;
        self.sacks_received += sacks_received;
        self.dsacks_received += dsacks_received;
        self.out_of_order += out_of_order;
        self.rejected += rejected;
        self.challenge_acks += challenge_acks;
        self.window_probes += window_probes;
        self.aborts_on_data += aborts_on_data;
        self.lost_retransmits += lost_retransmits;
        self.spurious_undos += spurious_undos;
        self.sack_reneging += sack_reneging;
        self.loss_probes += loss_probes;
        self.tlp_recoveries += tlp_recoveries;
        self.invalid_acks_limited += invalid_acks_limited;
        self.orphan_timeouts += orphan_timeouts;
        self.pmtu_reductions += pmtu_reductions;
        self.memory_drops += memory_drops;
        self.pruned_bytes += pruned_bytes;
        self.challenge_acks_limited += challenge_acks_limited;
        self.pmtu_reports_ignored += pmtu_reports_ignored;
    }
}

/// A snapshot of a connection's state and estimates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TcpInfo {
    /// Current state.
    pub state: State,
    /// Smoothed RTT, once measured.
    pub srtt: Option<Duration>,
    /// Current retransmission timeout.
    pub rto: Duration,
    /// Congestion window in bytes.
    pub cwnd: usize,
    /// Slow-start threshold in bytes.
    pub ssthresh: usize,
    /// Bytes sent and not yet acknowledged.
    pub bytes_in_flight: usize,
    /// The peer's window in bytes.
    pub peer_window: usize,
    /// Our send MSS (payload bytes per full segment).
    pub mss: usize,
    /// Whether in fast recovery.
    pub in_recovery: bool,
    /// The congestion control algorithm.
    pub congestion: &'static str,
    /// Counters.
    pub stats: TcpSocketStats,
}

/// How close the TCP layer's memory is to its limits (see
/// [`crate::transport::tcp::table::TcpLimits`]); the socket table
/// tells each connection before it acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum MemoryPressure {
    /// Below the pressure threshold.
    #[default]
    Normal,
    /// Above it: windows stop growing beyond four segments, out-of-order
    /// data is dropped, empty send buffers give their memory back.
    Pressure,
    /// At the hard limit: no new data is stored or queued by connections
    /// that already hold some.
    Exhausted,
}

/// A segment to send: the header, and where its payload lies in the send
/// buffer (see [`super::Connection::payload`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    /// The header (ports, sequence numbers, flags, options, payload length).
    pub repr: TcpRepr,
    /// Offset of the payload from the start of the send buffer.
    pub payload_offset: usize,
    /// Payload bytes per segment if this is a super-segment, which a
    /// device that segments cuts into segments of this size (all but the
    /// last full); 0 for an ordinary segment.
    pub segment_size: u16,
}

/// What a segment did to the connection, for the socket layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Processed (or dropped as a duplicate/old segment).
    Ok,
    /// The peer reset the connection, or it ended; remove it once drained.
    Closed,
    /// The segment was unacceptable in SYN-SENT: answer with this RST.
    Reset {
        /// Sequence number of the RST.
        seq: SeqNumber,
    },
}

/// Largest window scale shift (RFC 7323 §2.3).
pub(super) const MAX_WSCALE: u8 = 14;
/// MSS assumed when the peer sends none (RFC 9293 §3.7.1).
pub(super) const DEFAULT_MSS: usize = 536;
/// Segments acknowledged at once at the start of a connection (Linux's
/// quick-ack mode), so slow start is not held back by delayed ACKs.
pub(super) const QUICKACK_SEGMENTS: u32 = 16;
/// What a connection with nothing queued may still queue while the TCP
/// layer's memory is exhausted.
pub(super) const EXHAUSTED_SEND_QUANTUM: usize = 4096;
/// TS.Recent is invalid after 24 days of idleness (RFC 7323 §5.5).
pub(super) const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// The MSS we announce on a link with this MTU (RFC 9293 §3.7.1: MTU less
/// the IPv4 and TCP headers).
pub fn mss_for_mtu(mtu: usize) -> usize {
    mtu.saturating_sub(40).clamp(64, 65495)
}

/// The window scale we offer: the least shift that lets the receive buffer
/// be advertised whole (RFC 7323 §2.3), or 0 without window scaling.
pub fn window_scale_for(config: &TcpConfig) -> u8 {
    if !config.window_scaling {
        return 0;
    }
    let mut s = 0u8;
    while s < MAX_WSCALE && (config.recv_buffer >> s) > 65535 {
        s += 1;
    }
    s
}
