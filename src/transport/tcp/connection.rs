//! One TCP connection: the state machine of RFC 9293 with the extensions a
//! modern stack needs.
//!
//! A [`Connection`] is sans-IO. Segments come in through
//! [`Connection::handle_segment`], user commands through `send`, `recv`,
//! `shutdown`, `close` and `abort`, and expired timers through
//! [`Connection::on_timer`]; everything the connection wants to send comes
//! out of [`Connection::poll_transmit`], one segment at a time, and
//! [`Connection::poll_at`] says when it next needs attention. The time is
//! always passed in.
//!
//! Implemented, with the sections they follow:
//! - the state machine and segment arrival processing of RFC 9293 §3.10,
//!   including simultaneous open and close, half-close, and TIME-WAIT of
//!   2·MSL;
//! - RFC 5961 protections against blind in-window attacks: RST and SYN
//!   in the window get a (rate-limited) challenge ACK, ACKs outside
//!   `[SND.UNA - MAX.SND.WND, SND.NXT]` are refused;
//! - window scaling and timestamps with PAWS (RFC 7323), SACK in both
//!   directions (RFC 2018) with D-SACK detection (RFC 2883);
//! - the retransmission timer of RFC 6298 (Karn's rule, backoff);
//! - fast retransmit and recovery: SACK-based loss recovery (RFC 6675)
//!   when the peer supports SACK, NewReno (RFC 6582) otherwise; congestion
//!   control behind [`CongestionControl`] (CUBIC by default, RFC 9438);
//! - flow control with silly window syndrome avoidance on both sides
//!   (RFC 9293 §3.8.6.2), zero-window probing with the persist timer;
//! - Nagle's algorithm in Minshall's variant (only one small segment
//!   outstanding) and delayed ACKs (every second full-sized segment or
//!   40 ms); a small pushed segment is acknowledged at once, which breaks
//!   the Nagle/delayed-ACK stall of write-write-read exchanges;
//! - keep-alive (RFC 9293 §3.8.4, off by default) and a user timeout
//!   (RFC 5482's semantics, local only).
//!
//! Not implemented: urgent data (the URG flag is ignored, RFC 6093 §4
//! recommends against using it), ECN, TCP Fast Open, MD5/AO signatures.

use std::net::SocketAddrV4;

use bytes::{Buf, Bytes};

use crate::internet::IcmpErrorKind;
use crate::internet::icmpv4::DstUnreachable;
use crate::ratelimit::TokenBucket;
use crate::time::{Duration, Instant};
use crate::transport::tcp::congestion::{CongestionAlgorithm, CongestionControl};
use crate::transport::tcp::pmtu::PathMtu;
use crate::transport::tcp::recv_buffer::RecvBuffer;
use crate::transport::tcp::rtt::{RttConfig, RttEstimator};
use crate::transport::tcp::rxt_log::RetransmitLog;
use crate::transport::tcp::scoreboard::{NextSeg, Scoreboard};
use crate::transport::tcp::segment::{HEADER_LEN, TcpFlags, TcpRepr};
use crate::transport::tcp::send_buffer::SendBuffer;
use crate::transport::tcp::seq::SeqNumber;
use crate::transport::tcp::time_wait::{TimeWaitRecord, TimeWaitTimestamps};

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

/// Why a connection ended abnormally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TcpError {
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
}

/// Statistics of one connection, for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpStats {
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
    /// Retransmissions found lost during recovery and sent again
    /// (RFC 8985's rule; see [`super::rxt_log`]).
    pub lost_retransmits: u64,
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

impl TcpStats {
    /// Adds every counter of `other` to this one (for totals over
    /// connections).
    pub fn accumulate(&mut self, other: &TcpStats) {
        let TcpStats {
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
    pub stats: TcpStats,
}

/// Why a user call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TcpSocketError {
    /// The connection is not (yet, or any longer) in a state that allows
    /// the call.
    #[error("not connected (state {0})")]
    NotConnected(State),
    /// The write side was shut down.
    #[error("the write side is shut down")]
    WriteShutdown,
    /// The connection ended abnormally.
    #[error(transparent)]
    Failed(#[from] TcpError),
}

/// How close the TCP layer's memory is to its limits (see
/// [`super::sockets::TcpLimits`]); the socket table tells each connection
/// before it acts.
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
/// buffer (copy it with [`Connection::copy_payload`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    /// The header (ports, sequence numbers, flags, options, payload length).
    pub repr: TcpRepr,
    /// Offset of the payload from the start of the send buffer.
    pub payload_offset: usize,
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

const DUP_THRESH: u32 = 3;
/// Largest window scale shift (RFC 7323 §2.3).
const MAX_WSCALE: u8 = 14;
/// MSS assumed when the peer sends none (RFC 9293 §3.7.1).
const DEFAULT_MSS: usize = 536;
/// Segments acknowledged at once at the start of a connection (Linux's
/// quick-ack mode), so slow start is not held back by delayed ACKs.
const QUICKACK_SEGMENTS: u32 = 16;
/// What a connection with nothing queued may still queue while the TCP
/// layer's memory is exhausted.
const EXHAUSTED_SEND_QUANTUM: usize = 4096;
/// TS.Recent is invalid after 24 days of idleness (RFC 7323 §5.5).
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

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

/// One TCP connection.
#[derive(Debug)]
pub struct Connection {
    config: TcpConfig,
    state: State,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    error: Option<TcpError>,

    // Send sequence space (RFC 9293 §3.3.1).
    iss: SeqNumber,
    snd_una: SeqNumber,
    snd_nxt: SeqNumber,
    /// The highest sequence number sent (SND.NXT before a go-back-N).
    snd_max: SeqNumber,
    snd_wnd: usize,
    max_snd_wnd: usize,
    snd_wl1: SeqNumber,
    snd_wl2: SeqNumber,
    snd_wscale: u8,
    send_buf: SendBuffer,
    /// The application shut down writing: a FIN follows the data.
    fin_queued: bool,
    /// Whether a SYN is still unacknowledged (occupies `iss`).
    syn_unacked: bool,
    /// End of the last small (sub-MSS) segment sent, for Nagle/Minshall.
    snd_sml: SeqNumber,
    /// MSS option we send (link MTU minus 40).
    our_mss: usize,
    /// Largest payload per segment toward the peer, without options: the
    /// smaller of `syn_mss` and what the path MTU allows.
    peer_mss: usize,
    /// The MSS the peer announced (RFC 9293 §3.7.1), within our own.
    syn_mss: usize,
    /// Path MTU discovery (RFC 1191).
    pmtu: PathMtu,

    // Receive sequence space.
    irs: SeqNumber,
    rcv_nxt: SeqNumber,
    /// Right edge of the window we last advertised.
    rcv_adv: SeqNumber,
    rcv_wscale: u8,
    recv_buf: RecvBuffer,
    /// The peer's FIN sequence number, once seen (possibly ahead of data).
    fin_seq: Option<SeqNumber>,
    fin_received: bool,

    // Options.
    wscale_ok: bool,
    ts_ok: bool,
    sack_ok: bool,
    ts_recent: u32,
    ts_recent_at: Instant,
    ts_offset: u32,
    last_ack_sent: SeqNumber,

    // Loss recovery and congestion control.
    rtt: RttEstimator,
    /// A segment being timed without timestamps: (its end, when sent).
    rtt_probe: Option<(SeqNumber, Instant)>,
    cc: Box<dyn CongestionControl>,
    scoreboard: Scoreboard,
    dupacks: u32,
    /// `Some(recovery point)` while in fast recovery.
    recovery: Option<SeqNumber>,
    /// RFC 6582 `recover`: no new recovery until SND.UNA passes it.
    recover: SeqNumber,
    /// Highest sequence retransmitted in this recovery (RFC 6675 HighRxt).
    high_rxt: SeqNumber,
    /// The retransmissions of the current recovery, to find lost ones.
    rxt_log: RetransmitLog,
    /// NewReno: retransmit the segment at SND.UNA now.
    rtx_una: bool,
    /// RFC 6675 RescueRxt: the one rescue retransmission of a recovery.
    rescue_rxt: Option<SeqNumber>,
    /// Retransmissions of the current SND.UNA (or of the SYN).
    retries: u32,

    // Timers (absolute deadlines).
    rto_at: Option<Instant>,
    /// Tail loss probe timer (RFC 8985 §7).
    tlp_at: Option<Instant>,
    /// When, outside recovery, data above SND.UNA was first seen SACKed:
    /// RACK's reordering timer runs from here (see `rack_deadline`).
    hole_seen_at: Option<Instant>,
    /// Send a tail loss probe now.
    tlp_due: bool,
    /// A probe is out and no ACK has advanced since.
    tlp_outstanding: bool,
    delack_at: Option<Instant>,
    persist_at: Option<Instant>,
    persist_backoff: u32,
    keepalive_at: Option<Instant>,
    keepalive_sent: u32,
    time_wait_at: Option<Instant>,
    /// When SND.UNA last advanced (or data was first outstanding).
    progress_at: Instant,

    // Pending output.
    ack_now: bool,
    /// Full-sized segments received since the last ACK.
    unacked_segs: u32,
    quickack: u32,
    /// Send a zero-window or keep-alive probe.
    probe_now: bool,
    /// Send a RST (after abort).
    rst_now: bool,
    /// Send (or resend) our SYN or SYN-ACK.
    syn_due: bool,
    /// The application closed (not just shut down writing).
    closed_by_user: bool,
    /// Zero-window probes sent since the peer last answered.
    probes_unanswered: u32,
    /// When a segment with data last went out (for the restart window).
    last_data_sent: Instant,
    /// A duplicate segment to report in the next ACK (D-SACK).
    dsack: Option<(SeqNumber, SeqNumber)>,
    /// Our timestamp clock when the last retransmission timeout fired:
    /// echoes older than it give no RTT sample.
    rto_ts: Option<u32>,
    /// Rate limit of challenge ACKs (RFC 5961 §7).
    challenge: TokenBucket,
    /// When an ACK last answered an unacceptable segment without data.
    invalid_ack_at: Option<Instant>,
    /// The TCP layer's memory state, as its socket table last said.
    memory_pressure: MemoryPressure,
    stats: TcpStats,
}

fn seq_le(a: SeqNumber, b: SeqNumber) -> bool {
    b - a >= 0
}

fn seq_lt(a: SeqNumber, b: SeqNumber) -> bool {
    b - a > 0
}

fn distance(from: SeqNumber, to: SeqNumber) -> usize {
    to.wrapping_distance(from) as usize
}

impl Connection {
    fn new(
        config: TcpConfig,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNumber,
        mtu: usize,
        ts_offset: u32,
        now: Instant,
    ) -> Connection {
        let our_mss = mss_for_mtu(mtu);
        let rcv_wscale = window_scale_for(&config);
        let rtt = RttEstimator::new(config.rtt);
        let cc = config.congestion.build(DEFAULT_MSS);
        Connection {
            send_buf: SendBuffer::new(config.send_buffer),
            recv_buf: RecvBuffer::new(config.recv_buffer),
            state: State::Closed,
            local,
            remote,
            error: None,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNumber(0),
            snd_wl2: iss,
            snd_wscale: 0,
            fin_queued: false,
            syn_unacked: true,
            snd_sml: iss,
            our_mss,
            peer_mss: DEFAULT_MSS,
            syn_mss: DEFAULT_MSS,
            pmtu: PathMtu::new(our_mss + 40),
            irs: SeqNumber(0),
            rcv_nxt: SeqNumber(0),
            rcv_adv: SeqNumber(0),
            rcv_wscale,
            fin_seq: None,
            fin_received: false,
            wscale_ok: false,
            ts_ok: false,
            sack_ok: false,
            ts_recent: 0,
            ts_recent_at: now,
            ts_offset,
            last_ack_sent: SeqNumber(0),
            rtt,
            rtt_probe: None,
            cc,
            scoreboard: Scoreboard::new(),
            dupacks: 0,
            recovery: None,
            recover: iss,
            high_rxt: iss,
            rxt_log: RetransmitLog::new(),
            rtx_una: false,
            rescue_rxt: None,
            retries: 0,
            rto_at: None,
            tlp_at: None,
            hole_seen_at: None,
            tlp_due: false,
            tlp_outstanding: false,
            delack_at: None,
            persist_at: None,
            persist_backoff: 0,
            keepalive_at: None,
            keepalive_sent: 0,
            time_wait_at: None,
            progress_at: now,
            ack_now: false,
            unacked_segs: 0,
            quickack: QUICKACK_SEGMENTS,
            probe_now: false,
            rst_now: false,
            syn_due: false,
            closed_by_user: false,
            probes_unanswered: 0,
            last_data_sent: now,
            dsack: None,
            rto_ts: None,
            challenge: TokenBucket::new(10, 10),
            invalid_ack_at: None,
            memory_pressure: MemoryPressure::Normal,
            stats: TcpStats::default(),
            config,
        }
    }

    /// An active open (RFC 9293 §3.10.1): the SYN goes out at the next
    /// [`Connection::poll_transmit`].
    pub fn connect(
        now: Instant,
        config: TcpConfig,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNumber,
        mtu: usize,
        ts_offset: u32,
    ) -> Connection {
        let mut c = Connection::new(config, local, remote, iss, mtu, ts_offset, now);
        c.state = State::SynSent;
        c.syn_due = true;
        c
    }

    /// A passive open: `syn` arrived at a listener (RFC 9293 §3.10.7.2);
    /// the SYN-ACK goes out at the next poll.
    #[allow(clippy::too_many_arguments)]
    pub fn accept(
        now: Instant,
        config: TcpConfig,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: SeqNumber,
        mtu: usize,
        ts_offset: u32,
        syn: &TcpRepr,
    ) -> Connection {
        let mut c = Connection::new(config, local, remote, iss, mtu, ts_offset, now);
        c.state = State::SynReceived;
        c.take_syn_options(now, syn);
        c.irs = syn.seq_number;
        c.rcv_nxt = syn.seq_number + 1;
        c.rcv_adv = c.rcv_nxt;
        c.snd_wnd = usize::from(syn.window_len);
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = syn.seq_number;
        c.syn_due = true;
        c
    }

    /// Turns a passive open ([`Connection::accept`] of the SYN a cookie
    /// remembers, see [`super::syncookie`]) into one whose SYN-ACK (ISN
    /// `iss`) was sent with a SYN cookie, so the peer's ACK, handled next,
    /// completes the handshake. Should that ACK not, the connection gives
    /// up at its first timeout rather than resend a SYN-ACK it never sent.
    pub fn with_cookie_syn_ack_sent(self, now: Instant) -> Connection {
        let mut c = self;
        let iss = c.iss;
        c.syn_due = false;
        c.snd_nxt = iss + 1;
        c.snd_max = iss + 1;
        // What the cookie SYN-ACK advertised: never scaled (RFC 7323 §2.2).
        c.rcv_adv = c.rcv_nxt + c.recv_buf.window().min(65535);
        c.retries = c.config.syn_retries;
        c.rto_at = Some(now + c.rtt.rto());
        c
    }

    /// What remains of this connection in TIME-WAIT (see
    /// [`super::time_wait`]), taken when it is released there.
    pub fn time_wait_record(&self, now: Instant) -> TimeWaitRecord {
        let advertised = if seq_lt(self.rcv_nxt, self.rcv_adv) {
            distance(self.rcv_nxt, self.rcv_adv)
        } else {
            0
        };
        let window = (advertised >> self.rcv_wscale).min(65535) as u16;
        TimeWaitRecord {
            snd_nxt: self.snd_max,
            rcv_nxt: self.rcv_nxt,
            window,
            timestamps: self.ts_ok.then_some(TimeWaitTimestamps {
                recent: self.ts_recent,
                recent_at: self.ts_recent_at,
                offset: self.ts_offset,
            }),
            expires: self
                .time_wait_at
                .unwrap_or(now + self.config.msl * 2)
                .max(now),
            duration: self.config.msl * 2,
            ack_interval: self.config.invalid_ack_interval,
            acked_at: self.invalid_ack_at,
        }
    }

    /// Records the options of the peer's SYN and decides what is in use.
    fn take_syn_options(&mut self, now: Instant, syn: &TcpRepr) {
        self.syn_mss = syn
            .max_seg_size
            .map_or(DEFAULT_MSS, usize::from)
            .clamp(64, self.our_mss);
        self.peer_mss = self.syn_mss.min(self.pmtu.mtu() - 40);
        // Window scaling only if both sides offer it (RFC 7323 §2.2).
        self.wscale_ok = self.config.window_scaling && syn.window_scale.is_some();
        if self.wscale_ok {
            self.snd_wscale = syn.window_scale.unwrap_or(0).min(MAX_WSCALE);
        } else {
            self.snd_wscale = 0;
            self.rcv_wscale = 0;
        }
        self.ts_ok = self.config.timestamps && syn.timestamp.is_some();
        if let Some((tsval, _)) = syn.timestamp.filter(|_| self.ts_ok) {
            self.ts_recent = tsval;
            self.ts_recent_at = now;
        }
        self.sack_ok = self.config.sack && syn.sack_permitted;
        self.cc.set_mss(self.mss());
    }

    /// Payload bytes in a full-sized segment (options other than SACK
    /// deducted, as Linux does).
    pub fn mss(&self) -> usize {
        let ts = if self.ts_ok { 12 } else { 0 };
        self.peer_mss.saturating_sub(ts).max(1)
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The local address.
    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }

    /// The peer's address.
    pub fn remote(&self) -> SocketAddrV4 {
        self.remote
    }

    /// The error that ended the connection, if it ended abnormally.
    pub fn error(&self) -> Option<TcpError> {
        self.error
    }

    /// Counters and estimates.
    pub fn info(&self) -> TcpInfo {
        TcpInfo {
            state: self.state,
            srtt: self.rtt.srtt(),
            rto: self.rtt.rto(),
            cwnd: self.cc.cwnd(),
            ssthresh: self.cc.ssthresh(),
            bytes_in_flight: self.flight_size(),
            peer_window: self.snd_wnd,
            mss: self.mss(),
            in_recovery: self.recovery.is_some(),
            congestion: self.cc.name(),
            stats: self.stats,
        }
    }

    /// Sets Nagle's algorithm off (`true`) or on.
    pub fn set_nodelay(&mut self, nodelay: bool) {
        self.config.nodelay = nodelay;
    }

    /// Sets the keep-alive idle time (`None` disables keep-alive).
    pub fn set_keepalive(&mut self, now: Instant, idle: Option<Duration>) {
        self.config.keepalive = idle;
        self.keepalive_sent = 0;
        self.keepalive_at = idle.filter(|_| self.keepalive_applies()).map(|d| now + d);
    }

    /// Whether keep-alive probes make sense: the connection is synchronized
    /// and not lingering in TIME-WAIT (where a probe would go unanswered by
    /// design, and a timer would have nothing to send).
    fn keepalive_applies(&self) -> bool {
        self.state.is_synchronized() && self.state != State::TimeWait
    }

    /// The options in force.
    pub fn config(&self) -> &TcpConfig {
        &self.config
    }

    fn flight_size(&self) -> usize {
        distance(self.snd_una, self.snd_max)
    }

    fn ts_now(&self, now: Instant) -> u32 {
        (now.total_millis() as u32).wrapping_add(self.ts_offset)
    }

    fn fail(&mut self, error: TcpError) {
        log::debug!(
            "{} -> {}: {error} in {}",
            self.local,
            self.remote,
            self.state
        );
        self.error = Some(error);
        self.enter_closed();
    }

    fn enter_closed(&mut self) {
        self.state = State::Closed;
        self.rto_at = None;
        self.tlp_at = None;
        self.tlp_due = false;
        self.hole_seen_at = None;
        self.delack_at = None;
        self.persist_at = None;
        self.keepalive_at = None;
        self.time_wait_at = None;
        self.ack_now = false;
        self.probe_now = false;
    }

    fn enter_time_wait(&mut self, now: Instant) {
        self.state = State::TimeWait;
        self.rto_at = None;
        self.persist_at = None;
        self.keepalive_at = None;
        self.time_wait_at = Some(now + self.config.msl * 2);
    }

    // ------------------------------------------------------------------
    // User commands.

    /// Queues as much of `data` as fits in the send buffer; returns how
    /// much. Zero means the buffer is full.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, TcpSocketError> {
        if let Some(e) = self.error {
            return Err(e.into());
        }
        if self.fin_queued {
            return Err(TcpSocketError::WriteShutdown);
        }
        match self.state {
            State::Established | State::CloseWait | State::SynSent | State::SynReceived => {}
            s => return Err(TcpSocketError::NotConnected(s)),
        }
        let n = data.len().min(self.send_capacity());
        Ok(self.send_buf.write(&data[..n]))
    }

    /// Free space in the send buffer.
    pub fn send_capacity(&self) -> usize {
        if self.fin_queued || (self.state.is_synchronized() && !self.state.can_send()) {
            return 0;
        }
        match self.memory_pressure {
            // With the stack's memory exhausted, a connection still sending
            // queues no more until it drains; one with nothing queued may
            // queue a little (as Linux grants every socket a page), so
            // that every connection makes progress.
            MemoryPressure::Exhausted if !self.send_buf.is_empty() => 0,
            MemoryPressure::Exhausted => self.send_buf.free().min(EXHAUSTED_SEND_QUANTUM),
            _ => self.send_buf.free(),
        }
    }

    /// Bytes queued but not yet acknowledged.
    pub fn send_queue(&self) -> usize {
        self.send_buf.len()
    }

    /// Copies received data into `buf`. `Ok(0)` with a non-empty `buf`
    /// means end of stream (the peer closed) — unless
    /// [`Connection::can_recv`] is false and the stream is still open, in
    /// which case nothing is there yet (check [`Connection::recv_eof`]).
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TcpSocketError> {
        let n = self.recv_buf.read(buf);
        if n == 0 {
            if let Some(e) = self.error {
                return Err(e.into());
            }
            return Ok(0);
        }
        self.after_read();
        Ok(n)
    }

    /// Takes the next chunk of received data without copying.
    pub fn recv_bytes(&mut self, max: usize) -> Result<Option<Bytes>, TcpSocketError> {
        match self.recv_buf.read_bytes(max) {
            Some(b) => {
                self.after_read();
                Ok(Some(b))
            }
            None => match self.error {
                Some(e) => Err(e.into()),
                None => Ok(None),
            },
        }
    }

    fn after_read(&mut self) {
        // Window update if the right edge can move far enough (receiver
        // SWS avoidance, RFC 9293 §3.8.6.2.2).
        if self.state.is_synchronized() && self.window_update_worthwhile() {
            self.ack_now = true;
        }
    }

    /// The right edge the free space allows, held back under memory
    /// pressure: to four segments' worth under pressure (as Linux clamps
    /// its window), not at all once memory is exhausted. What was already
    /// advertised is never taken back (that is `window_to_advertise`'s
    /// rule).
    fn free_space_edge(&self) -> SeqNumber {
        let edge = self.rcv_nxt + self.recv_buf.window();
        let cap = match self.memory_pressure {
            MemoryPressure::Normal => return edge,
            MemoryPressure::Pressure => self.rcv_nxt + 4 * self.our_mss,
            MemoryPressure::Exhausted => self.rcv_nxt,
        };
        if seq_lt(cap, edge) { cap } else { edge }
    }

    fn window_update_worthwhile(&self) -> bool {
        // The edge an update could advertise: the free space, but no more
        // than the window field carries (65535 << Rcv.Wind.Shift, RFC 7323
        // §2.3). Beyond that reading moves nothing, and an ACK would be a
        // duplicate ACK to the peer.
        let max = 65535usize << self.rcv_wscale;
        let free = distance(self.rcv_nxt, self.free_space_edge());
        let edge = self.rcv_nxt + free.min(max);
        let grow = edge - self.rcv_adv;
        // RFC 9293 §3.8.6.2.2: worth it once the edge moves by
        // min(Fr·RCV.BUFF, MSS), Fr = 1/2 — the threshold
        // `window_to_advertise` applies, so the update is never held back
        // while the ACK that carries it could already open the window.
        let threshold = (self.recv_buf.capacity() / 2).min(self.our_mss).max(1);
        grow > 0 && grow as usize >= threshold
    }

    /// Bytes ready to read.
    pub fn recv_queue(&self) -> usize {
        self.recv_buf.readable()
    }

    /// Whether data is ready to read.
    pub fn can_recv(&self) -> bool {
        self.recv_buf.readable() > 0
    }

    /// Whether the peer closed its side and every byte has been read.
    pub fn recv_eof(&self) -> bool {
        self.fin_received && self.recv_buf.readable() == 0
    }

    /// Shuts down the write side: a FIN follows the queued data
    /// (RFC 9293 §3.10.4). Reading continues.
    pub fn shutdown_write(&mut self, _now: Instant) {
        if self.fin_queued {
            return;
        }
        match self.state {
            State::SynSent => self.enter_closed(),
            // RFC 9293 §3.10.4: in SYN-RECEIVED the FIN waits until the
            // handshake completes (the ACK of our SYN then moves the
            // connection straight to FIN-WAIT-1).
            State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
    }

    /// Closes the connection. Unread received data makes this an abort
    /// (RST), as RFC 2525 §2.17 recommends and Linux does.
    pub fn close(&mut self, now: Instant) {
        if self.recv_buf.readable() > 0 && self.state.is_synchronized() {
            self.abort();
            return;
        }
        self.closed_by_user = true;
        self.shutdown_write(now);
        if self.state == State::FinWait2 {
            self.arm_fin_wait2(now);
        }
    }

    /// An orphaned connection waits in FIN-WAIT-2 for the peer's FIN at
    /// most [`TcpConfig::fin_wait2_timeout`] (Linux's `tcp_fin_timeout`);
    /// RFC 9293 would wait forever, which lets a peer pin memory.
    fn arm_fin_wait2(&mut self, now: Instant) {
        if self.closed_by_user && self.state == State::FinWait2 {
            self.time_wait_at = Some(now + self.config.fin_wait2_timeout);
        }
    }

    /// Fits the segment size to the path MTU; returns whether it shrank.
    fn apply_path_mtu(&mut self) -> bool {
        let mss = self.syn_mss.min(self.pmtu.mtu() - 40);
        let shrank = mss < self.peer_mss;
        if mss != self.peer_mss {
            self.peer_mss = mss;
            self.cc.set_mss(self.mss());
        }
        shrank
    }

    /// The memory this connection's buffers hold: the send ring's
    /// allocation and what received data keeps alive.
    pub fn memory(&self) -> usize {
        self.send_buf.memory() + self.recv_buf.memory()
    }

    /// Tells the connection how close the TCP layer's memory is to its
    /// limits. When the pressure eases, a window held back for it is
    /// offered at once (the peer's segments shed meanwhile would otherwise
    /// wait for its retransmission timer or a window probe).
    pub fn set_memory_pressure(&mut self, pressure: MemoryPressure) {
        let eased = pressure < self.memory_pressure;
        self.memory_pressure = pressure;
        if eased {
            self.after_read();
        }
    }

    /// Whether segments go with Don't Fragment (unless a path MTU below
    /// 552 was reported; see [`super::pmtu`]).
    pub fn dont_fragment(&self) -> bool {
        self.pmtu.dont_fragment()
    }

    /// Gives up on a connection whose peer still answers (an orphan over
    /// its retry limit): a RST tells the peer, which may be alive.
    fn abort_timed_out(&mut self) {
        self.error = Some(TcpError::TimedOut);
        self.abort();
    }

    /// Aborts: a RST goes out and the connection is gone (RFC 9293
    /// §3.10.5).
    pub fn abort(&mut self) {
        if matches!(
            self.state,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
        ) {
            self.rst_now = true;
        }
        self.error.get_or_insert(TcpError::ConnectionAborted);
        self.enter_closed();
    }

    /// Whether `seg` would complete this passive open's handshake: an
    /// acceptable segment acknowledging our SYN-ACK (RFC 9293 §3.10.7.4,
    /// fifth), or the SYN-ACK of a simultaneous open. A blind segment with
    /// the wrong numbers would not.
    pub fn completes_handshake(&self, seg: &TcpRepr) -> bool {
        if self.state != State::SynReceived || seg.flags.contains(TcpFlags::RST) {
            return false;
        }
        let Some(ack) = seg.ack_number else {
            return false;
        };
        if !(seq_lt(self.snd_una, ack) && seq_le(ack, self.snd_max)) {
            return false;
        }
        if seg.flags.contains(TcpFlags::SYN) {
            seg.seq_number + 1 == self.rcv_nxt
        } else {
            self.acceptable(seg)
        }
    }

    /// SYN-ACKs retransmitted so far, while the handshake of a passive
    /// open is not complete (0 otherwise).
    pub fn syn_ack_retries(&self) -> u32 {
        if self.state == State::SynReceived {
            self.retries
        } else {
            0
        }
    }

    /// Whether the connection can be forgotten (closed and nothing left to
    /// send).
    pub fn is_finished(&self) -> bool {
        self.state == State::Closed && !self.rst_now
    }

    // ------------------------------------------------------------------
    // Segment arrival, RFC 9293 §3.10.7.

    /// Processes a segment for this connection. `payload` keeps an
    /// allocation of `truesize` bytes alive (the received frame's
    /// [`crate::buf::PacketBuf::truesize`]), which is what storing it costs.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        payload: Bytes,
        truesize: usize,
    ) -> Handled {
        self.stats.segs_in += 1;
        match self.state {
            State::Closed => Handled::Closed,
            State::SynSent => self.handle_syn_sent(now, seg),
            _ => self.handle_synchronized(now, seg, (payload, truesize)),
        }
    }

    fn handle_syn_sent(&mut self, now: Instant, seg: &TcpRepr) -> Handled {
        // First: the ACK (RFC 9293 §3.10.7.3).
        if let Some(ack) = seg.ack_number
            && (seq_le(ack, self.iss) || seq_lt(self.snd_max, ack))
        {
            if seg.flags.contains(TcpFlags::RST) {
                return Handled::Ok;
            }
            return Handled::Reset { seq: ack };
        }
        if seg.flags.contains(TcpFlags::RST) {
            if seg.ack_number.is_some() {
                self.fail(TcpError::ConnectionRefused);
                return Handled::Closed;
            }
            return Handled::Ok;
        }
        if !seg.flags.contains(TcpFlags::SYN) {
            return Handled::Ok;
        }
        self.take_syn_options(now, seg);
        self.irs = seg.seq_number;
        self.rcv_nxt = seg.seq_number + 1;
        self.rcv_adv = self.rcv_nxt;
        if let Some(ack) = seg.ack_number {
            // Our SYN is acknowledged: established.
            self.on_syn_acked(now, ack, seg, usize::from(seg.window_len));
            self.state = State::Established;
            self.ack_now = true;
            log::debug!("{} -> {}: established (active)", self.local, self.remote);
        } else {
            // Simultaneous open (RFC 9293 §3.5, figure 8).
            self.state = State::SynReceived;
            self.snd_nxt = self.iss;
            self.snd_wnd = usize::from(seg.window_len);
            self.snd_wl1 = seg.seq_number;
            self.syn_due = true;
        }
        Handled::Ok
    }

    /// Our SYN is acknowledged by `seg`. `window` is the peer's window in
    /// bytes (unscaled in a SYN-ACK, RFC 7323 §2.2).
    fn on_syn_acked(&mut self, now: Instant, ack: SeqNumber, seg: &TcpRepr, window: usize) {
        self.syn_unacked = false;
        self.snd_una = ack;
        if seq_lt(self.snd_nxt, ack) {
            self.snd_nxt = ack;
        }
        self.snd_wnd = window;
        self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
        self.snd_wl1 = seg.seq_number;
        self.snd_wl2 = ack;
        self.snd_sml = ack;
        self.recover = self.iss;
        self.high_rxt = ack;
        // RTT of the handshake, unless the SYN was retransmitted (Karn).
        if self.retries == 0 {
            if let Some((_, sent)) = self.rtt_probe {
                self.rtt.sample(now - sent);
            }
        } else {
            // RFC 6298 §5.7: the SYN (or SYN-ACK) was retransmitted, so the
            // RTO is at least 3 s as data transfer begins.
            self.rtt.apply_syn_loss_fallback();
        }
        self.rtt_probe = None;
        self.retries = 0;
        self.rtt.reset_backoff();
        self.rto_at = None;
        self.progress_at = now;
        self.keepalive_at = self.config.keepalive.map(|d| now + d);
    }

    fn rcv_wnd(&self) -> usize {
        let adv = self.rcv_adv - self.rcv_nxt;
        (adv.max(0) as usize).max(self.recv_buf.window())
    }

    /// RFC 9293 §3.10.7.4, first check: is the segment in the window?
    fn acceptable(&self, seg: &TcpRepr) -> bool {
        let len = seg.segment_len();
        // A RST must fall in the window we advertised (RFC 5961 §3.2), not
        // in the larger free space data is accepted into: that would widen
        // the range a blind attacker has to hit.
        let wnd = if seg.flags.contains(TcpFlags::RST) {
            (self.rcv_adv - self.rcv_nxt).max(0) as usize
        } else {
            self.rcv_wnd()
        };
        let seq = seg.seq_number;
        let in_window = |s: SeqNumber| seq_le(self.rcv_nxt, s) && seq_lt(s, self.rcv_nxt + wnd);
        match (len, wnd) {
            (0, 0) => seq == self.rcv_nxt,
            (0, _) => in_window(seq),
            (_, 0) => false,
            (_, _) => in_window(seq) || in_window(seq + (len - 1)),
        }
    }

    fn handle_synchronized(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        payload: (Bytes, usize),
    ) -> Handled {
        let rst = seg.flags.contains(TcpFlags::RST);
        // PAWS (RFC 7323 §5.3 R1).
        if self.ts_ok
            && !rst
            && let Some((tsval, _)) = seg.timestamp
            && (tsval.wrapping_sub(self.ts_recent) as i32) < 0
            && now - self.ts_recent_at < PAWS_IDLE
        {
            self.stats.rejected += 1;
            self.ack_invalid(now, seg);
            return Handled::Ok;
        }
        // The peer's SYN again in SYN-RECEIVED (RFC 9293 §3.5). It lies
        // left of the window, so it is recognised before the window test:
        // alone, it is a retransmission because our SYN-ACK was lost, and
        // gets the SYN-ACK again (as Linux does); acknowledging our SYN, it
        // is the SYN-ACK of a simultaneous open, which completes the
        // handshake (figure 8, line 6).
        if self.state == State::SynReceived
            && !rst
            && seg.flags.contains(TcpFlags::SYN)
            && seg.seq_number + 1 == self.rcv_nxt
        {
            match seg.ack_number {
                None => {
                    self.syn_due = true;
                    return Handled::Ok;
                }
                Some(ack) if seq_lt(self.snd_una, ack) && seq_le(ack, self.snd_max) => {
                    // The window of a SYN is never scaled (RFC 7323 §2.2).
                    self.on_syn_acked(now, ack, seg, usize::from(seg.window_len));
                    self.state = if self.fin_queued {
                        State::FinWait1
                    } else {
                        State::Established
                    };
                    return Handled::Ok;
                }
                Some(_) => {}
            }
        }
        if !self.acceptable(seg) {
            self.stats.rejected += 1;
            if seg.flags.contains(TcpFlags::SYN) && !rst {
                // RFC 5961 §4.2: a SYN gets a challenge ACK wherever it
                // falls (under the challenge ACK limit), as in the window.
                self.challenge_ack(now);
            } else if !rst {
                self.ack_invalid(now, seg);
                // Wholly old data (a spurious retransmission, most often):
                // report it in a D-SACK block (RFC 2883 §4), as for data
                // partly old in `receive_data`.
                if self.sack_ok && seg.payload_len > 0 && seq_lt(seg.seq_number, self.rcv_nxt) {
                    let end = seg.seq_number + seg.payload_len;
                    let end = if seq_lt(self.rcv_nxt, end) {
                        self.rcv_nxt
                    } else {
                        end
                    };
                    self.dsack = Some((seg.seq_number, end));
                }
            }
            // A retransmitted FIN in TIME-WAIT restarts the timer.
            if self.state == State::TimeWait && seg.flags.contains(TcpFlags::FIN) {
                self.time_wait_at = Some(now + self.config.msl * 2);
            }
            return Handled::Ok;
        }
        // RFC 1337: a RST does not end TIME-WAIT, where an old or forged
        // RST would otherwise assassinate it.
        if rst && self.state == State::TimeWait {
            return Handled::Ok;
        }
        // RST (RFC 5961 §3.2).
        if rst {
            if seg.seq_number == self.rcv_nxt {
                return match self.state {
                    State::SynReceived if self.error.is_none() => {
                        self.fail(TcpError::ConnectionRefused);
                        Handled::Closed
                    }
                    State::Closing | State::LastAck => {
                        self.enter_closed();
                        Handled::Closed
                    }
                    _ => {
                        self.fail(TcpError::ConnectionReset);
                        Handled::Closed
                    }
                };
            }
            self.challenge_ack(now);
            return Handled::Ok;
        }
        // SYN in a synchronized state (RFC 5961 §4.2).
        if seg.flags.contains(TcpFlags::SYN) {
            self.challenge_ack(now);
            return Handled::Ok;
        }
        let Some(ack) = seg.ack_number else {
            return Handled::Ok;
        };
        if self.state == State::SynReceived {
            if seq_lt(self.snd_una, ack) && seq_le(ack, self.snd_max) {
                let window = usize::from(seg.window_len) << self.snd_wscale;
                self.on_syn_acked(now, ack, seg, window);
                self.state = if self.fin_queued {
                    State::FinWait1
                } else {
                    State::Established
                };
                log::debug!("{} <- {}: established (passive)", self.local, self.remote);
            } else {
                return Handled::Reset { seq: ack };
            }
        }
        if !self.process_ack(now, seg, ack) {
            return Handled::Ok;
        }
        if self.state == State::Closed {
            return Handled::Closed;
        }
        // Keep-alive: the peer is alive.
        self.keepalive_sent = 0;
        self.keepalive_at = self
            .config
            .keepalive
            .filter(|_| self.keepalive_applies())
            .map(|d| now + d);

        // Segment text (§3.10.7.4, seventh).
        if seg.payload_len > 0 {
            // New data for a connection the application has closed can
            // never be read: reset, as RFC 1122 §4.2.2.13 allows and
            // Linux does (TCPAbortOnData), so the peer stops sending
            // into the void instead of filling our buffer until the
            // FIN-WAIT-2 timeout.
            if self.closed_by_user
                && matches!(self.state, State::FinWait1 | State::FinWait2)
                && seg.seq_number + seg.payload_len > self.rcv_nxt
            {
                log::debug!("data after close: abort");
                self.stats.aborts_on_data += 1;
                self.abort();
                return Handled::Closed;
            }
            match self.state {
                State::Established | State::FinWait1 | State::FinWait2 => {
                    self.receive_data(now, seg, payload);
                }
                _ => {}
            }
        }
        // FIN (eighth).
        if seg.flags.contains(TcpFlags::FIN) {
            self.fin_seq = Some(seg.seq_number + seg.payload_len);
            self.ack_now = true;
        }
        self.maybe_take_fin(now);
        if self.state == State::Closed {
            Handled::Closed
        } else {
            Handled::Ok
        }
    }

    /// Answers an unacceptable segment with an ACK (RFC 9293 §3.10.7.4),
    /// at most one per [`TcpConfig::invalid_ack_interval`] unless the
    /// segment carries data, as Linux limits them (`tcp_invalid_ratelimit`,
    /// `tcp_oow_rate_limited`): forged or looping pure ACKs and SYNs would
    /// otherwise be answered one for one, which reflects traffic at a
    /// victim and sustains ACK storms between confused peers. Data and FIN
    /// are exempt: a spurious retransmission needs its (D-SACK) answer, a
    /// retransmitted FIN its ACK, and neither loops.
    fn ack_invalid(&mut self, now: Instant, seg: &TcpRepr) {
        // Data or a FIN (Linux: end_seq != seq), but not a SYN.
        let data = seg.segment_len() > 0 && !seg.flags.contains(TcpFlags::SYN);
        let limited = self
            .invalid_ack_at
            .is_some_and(|t| now - t < self.config.invalid_ack_interval);
        if data || !limited {
            self.ack_now = true;
            if !data {
                self.invalid_ack_at = Some(now);
            }
        } else {
            self.stats.invalid_acks_limited += 1;
        }
    }

    fn challenge_ack(&mut self, now: Instant) {
        if self.challenge.try_take(now) {
            self.stats.challenge_acks += 1;
            self.ack_now = true;
        } else {
            self.stats.challenge_acks_limited += 1;
        }
    }

    /// The ACK field (§3.10.7.4, fifth). Returns false if the segment is to
    /// be dropped.
    fn process_ack(&mut self, now: Instant, seg: &TcpRepr, ack: SeqNumber) -> bool {
        // Acks something not yet sent: ACK and drop.
        if seq_lt(self.snd_max, ack) {
            self.ack_invalid(now, seg);
            return false;
        }
        // Too old (RFC 5961 §5.2).
        if seq_lt(ack, self.snd_una - self.max_snd_wnd.min(1 << 30)) {
            self.challenge_ack(now);
            return false;
        }
        self.probes_unanswered = 0;
        // The segment is acceptable and so is its ACK: only now may its
        // timestamp become TS.Recent (RFC 7323 §4.3 rule 3, in the order
        // Linux applies it). Taken before the ACK was validated, a blind
        // in-window segment with a far-future timestamp would make every
        // later segment of the real peer fail PAWS.
        if self.ts_ok
            && let Some((tsval, _)) = seg.timestamp
            && (tsval.wrapping_sub(self.ts_recent) as i32) >= 0
            && seq_le(seg.seq_number, self.last_ack_sent)
        {
            self.ts_recent = tsval;
            self.ts_recent_at = now;
        }
        let window = usize::from(seg.window_len) << self.snd_wscale;
        let window_changed = window != self.snd_wnd;
        let sack: [(SeqNumber, SeqNumber); 3] = {
            let mut out = [(SeqNumber(0), SeqNumber(0)); 3];
            for (o, r) in out.iter_mut().zip(seg.sack_ranges.iter()) {
                if let Some(r) = r {
                    *o = *r;
                }
            }
            out
        };
        let n_sack = seg.sack_ranges.iter().filter(|r| r.is_some()).count();
        let mut newly_sacked = 0;
        if self.sack_ok && n_sack > 0 {
            self.stats.sacks_received += n_sack as u64;
            let info = self
                .scoreboard
                .on_ack(ack, sack[..n_sack].iter().copied(), self.snd_max);
            newly_sacked = info.newly_sacked;
            if info.dsack {
                self.stats.dsacks_received += 1;
            }
        } else if self.sack_ok {
            self.scoreboard.on_ack(
                ack,
                crate::transport::tcp::scoreboard::NO_SACK,
                self.snd_max,
            );
        }

        if seq_lt(self.snd_una, ack) {
            self.on_new_ack(now, seg, ack);
        } else if ack == self.snd_una
            && self.snd_una != self.snd_max
            && ((seg.payload_len == 0
                && !seg.flags.intersects(TcpFlags::SYN | TcpFlags::FIN)
                && !window_changed)
                || newly_sacked > 0)
        {
            // A duplicate ACK (RFC 5681 §2; RFC 6675 §2 with SACK).
            self.stats.dup_acks += 1;
            self.dupacks += 1;
            self.on_dupack(now);
        }
        self.track_hole(now);
        if self.rack_deadline().is_some_and(|t| t <= now) {
            self.enter_recovery(now);
        }
        if self.sack_ok && self.recovery.is_some() {
            // RFC 8985 §6.2 step 4: no reordering window in recovery
            // unless reordering has been seen (a D-SACK).
            let reo_wnd = if self.stats.dsacks_received > 0 {
                self.rtt.srtt().map_or(Duration::ZERO, |srtt| srtt / 4)
            } else {
                Duration::ZERO
            };
            let lost = self
                .rxt_log
                .on_ack(self.snd_una, &self.scoreboard, now, reo_wnd);
            if lost > 0 {
                log::trace!(
                    "{} -> {}: {lost} retransmission(s) lost",
                    self.local,
                    self.remote
                );
                self.stats.lost_retransmits += lost as u64;
            }
        }

        // Window update (§3.10.7.4: SND.WL1/WL2 rule).
        if seq_lt(self.snd_wl1, seg.seq_number)
            || (self.snd_wl1 == seg.seq_number && seq_le(self.snd_wl2, ack))
        {
            self.snd_wnd = window;
            self.max_snd_wnd = self.max_snd_wnd.max(window);
            self.snd_wl1 = seg.seq_number;
            self.snd_wl2 = ack;
            if window > 0 {
                // Try to send at once; if the window is still too small,
                // `poll_new_data` arms the persist timer again.
                self.persist_at = None;
            }
            // The probes' backoff ends only when the window admits the
            // next segment, as Linux's `tcp_ack_probe` judges it: a peer
            // answering every probe with a window of a few bytes must not
            // keep an orphan alive by restarting its count each time.
            let room = (self.snd_una + window) - self.snd_nxt;
            if room >= self.unsent_data().min(self.mss()).max(1) as i32 {
                self.persist_backoff = 0;
            }
        }
        true
    }

    fn on_new_ack(&mut self, now: Instant, seg: &TcpRepr, ack: SeqNumber) {
        let mut acked = distance(self.snd_una, ack);
        let fin_seq = self.fin_sent_seq();
        let fin_acked = fin_seq.is_some_and(|f| seq_lt(f, ack));
        if fin_acked {
            acked -= 1;
        }
        let data_acked = acked.min(self.send_buf.len());
        self.send_buf.consume(data_acked);
        if self.memory_pressure != MemoryPressure::Normal {
            self.send_buf.release_if_empty();
        }
        self.stats.bytes_acked += data_acked as u64;
        self.snd_una = ack;
        if seq_lt(self.snd_nxt, ack) {
            self.snd_nxt = ack;
        }
        self.dupacks = 0;
        self.retries = 0;
        self.progress_at = now;

        // RTT: timestamps echo (RFC 7323 §4.1), else the timed segment
        // (Karn: never a retransmitted one; the probe is dropped on
        // retransmission).
        let mut sample = None;
        if self.ts_ok
            && let Some((_, tsecr)) = seg.timestamp
            && tsecr != 0
        {
            // Karn's rule for timestamps: an echo of a segment sent before
            // the last timeout measures the backoff, not the path (the
            // receiver echoes an old TS.Recent for a duplicate, RFC 7323
            // §4.3), and would inflate SRTT to seconds under heavy loss.
            let after_timeout = self
                .rto_ts
                .is_none_or(|t| (tsecr.wrapping_sub(t) as i32) >= 0);
            let ms = self.ts_now(now).wrapping_sub(tsecr);
            if after_timeout && ms < 60_000 {
                sample = Some(Duration::from_millis(u64::from(ms)));
            }
        } else if let Some((end, sent)) = self.rtt_probe
            && seq_le(end, ack)
        {
            sample = Some(now - sent);
            self.rtt_probe = None;
        }
        if let Some(rtt) = sample {
            self.rtt.sample(rtt);
        }
        // Karn (RFC 6298 §3, note after §5.7): only a valid sample (taken
        // above) collapses a backed-off RTO; the ACK of a retransmission
        // leaves it in force.
        self.rtt.on_new_ack();

        let flight = self.flight_size();
        match self.recovery {
            Some(point) if seq_le(point, ack) => {
                // Full ACK: recovery ends (RFC 6582 §3.2 step 3; RFC 6675 §5).
                self.recovery = None;
                self.rxt_log.clear();
                self.rtx_una = false;
                self.cc.on_recovery_exit(now);
            }
            Some(_) => {
                // Partial ACK: the next hole is lost too (RFC 6582 §3.2
                // step 3 partial); with SACK the scoreboard decides.
                if !self.sack_ok {
                    self.rtx_una = true;
                }
            }
            None => self
                .cc
                .on_ack(now, data_acked, self.rtt.srtt(), flight + acked),
        }

        // The retransmission timer (RFC 6298 §5.2–5.3).
        self.tlp_outstanding = false;
        if self.snd_una == self.snd_max {
            self.rto_at = None;
            self.tlp_at = None;
        } else {
            self.rto_at = Some(now + self.rtt.rto());
            self.schedule_tlp(now);
        }

        if fin_acked {
            match self.state {
                State::FinWait1 => {
                    self.state = State::FinWait2;
                    self.arm_fin_wait2(now);
                }
                State::Closing => self.enter_time_wait(now),
                State::LastAck => self.enter_closed(),
                _ => {}
            }
        }
    }

    /// RACK's reordering timer for original transmissions (RFC 8985
    /// §6.2-§6.3), in the simple form a range-based scoreboard allows:
    /// data above the hole at SND.UNA was sent after it, so once some of
    /// it has been SACKed for a reordering window (a quarter of SRTT)
    /// without the hole being filled, the hole is lost, however few
    /// duplicate ACKs made it back. RFC 6675 alone needs three segments
    /// SACKed, which a small window or lost ACKs may never produce; the
    /// retransmission timeout then had to repair the loss.
    fn rack_deadline(&self) -> Option<Instant> {
        if !self.sack_ok || self.recovery.is_some() || seq_lt(self.snd_una, self.recover) {
            return None;
        }
        let seen = self.hole_seen_at?;
        let reo_wnd = self
            .rtt
            .srtt()
            .map_or(Duration::from_millis(1), |srtt| srtt / 4);
        Some(seen + reo_wnd)
    }

    /// Notes when data above SND.UNA is first seen SACKed outside
    /// recovery, for [`Self::rack_deadline`].
    fn track_hole(&mut self, now: Instant) {
        let hole = self.sack_ok
            && self.recovery.is_none()
            && self.snd_una != self.snd_max
            && !self.scoreboard.is_empty();
        if !hole {
            self.hole_seen_at = None;
        } else if self.hole_seen_at.is_none() {
            self.hole_seen_at = Some(now);
        }
    }

    fn on_dupack(&mut self, now: Instant) {
        if self.recovery.is_some() {
            return;
        }
        // Early retransmit (RFC 5827 §3.1): with fewer than four segments
        // outstanding and nothing new to send, three duplicate ACKs can
        // never come; lower the threshold to the outstanding segments - 1.
        let mss = self.mss();
        let outstanding = self.flight_size().div_ceil(mss) as u32;
        let thresh = if outstanding < 4 && self.unsent_data() == 0 {
            outstanding.saturating_sub(1).max(1)
        } else {
            DUP_THRESH
        };
        let lost = if self.sack_ok {
            self.dupacks >= thresh || self.scoreboard.is_lost(self.snd_una, mss)
        } else {
            self.dupacks >= thresh
        };
        // RFC 6582 §3.2 step 2: not again for losses of a window already
        // recovered (`recover` is the highest sequence sent when the last
        // recovery or timeout began).
        if lost && seq_le(self.recover, self.snd_una) {
            self.enter_recovery(now);
        }
    }

    fn enter_recovery(&mut self, now: Instant) {
        log::trace!(
            "{} -> {}: fast retransmit at {}",
            self.local,
            self.remote,
            self.snd_una
        );
        self.stats.fast_retransmits += 1;
        self.recovery = Some(self.snd_max);
        self.recover = self.snd_max;
        self.hole_seen_at = None;
        self.high_rxt = self.snd_una;
        self.rxt_log.clear();
        self.rescue_rxt = None;
        self.tlp_at = None;
        self.cc.on_congestion_event(now, self.flight_size());
        self.rtx_una = true;
        self.rtt_probe = None;
    }

    /// The sequence number of our FIN, if sent.
    fn fin_sent_seq(&self) -> Option<SeqNumber> {
        if !self.fin_queued {
            return None;
        }
        let fin = self.snd_una + self.send_buf.len() + usize::from(self.syn_unacked);
        seq_lt(fin, self.snd_max).then_some(fin)
    }

    fn receive_data(&mut self, now: Instant, seg: &TcpRepr, (payload, truesize): (Bytes, usize)) {
        // Trim to what we have room for: the offset space of the receive
        // buffer starts at IRS + 1.
        let rel = seg.seq_number - self.rcv_nxt;
        let skip = if rel < 0 { (-rel) as usize } else { 0 };
        // The offset of the first byte kept: old bytes (RFC 9293 §3.10.7.4,
        // "straddle the boundary") are skipped, and what follows them goes
        // at RCV.NXT, not where the segment began.
        let offset = self.recv_buf.next_expected() + rel.max(0) as u64;
        if skip > 0 && self.sack_ok {
            // Report the duplicate in a D-SACK block (RFC 2883 §4).
            let end = seg.seq_number + skip.min(payload.len());
            self.dsack = Some((seg.seq_number, end));
        }
        if skip >= payload.len() {
            self.ack_now = true; // a pure duplicate: ACK it at once
            return;
        }
        if self.memory_pressure != MemoryPressure::Normal && self.shed_for_memory(rel > 0) {
            self.ack_now = true;
            return;
        }
        let mut data = payload;
        data.advance(skip);
        let r = self.recv_buf.insert_pinned(offset, data, truesize);
        let advanced = r.new_in_order_bytes;
        self.rcv_nxt += advanced;
        self.stats.bytes_received += advanced as u64;
        if r.out_of_order {
            self.stats.out_of_order += 1;
            // Out of order: ACK at once so the sender sees the hole
            // (RFC 5681 §4.2), with SACK blocks.
            self.ack_now = true;
        } else if r.fills_gap || r.duplicate || skip > 0 || r.beyond_window > 0 || r.dropped {
            // Filled (part of) a hole, or carried old bytes: ACK at once.
            self.ack_now = true;
        } else {
            self.unacked_segs += 1;
            let full = seg.payload_len >= self.mss().min(self.our_mss);
            let pushed_small = !full && seg.flags.contains(TcpFlags::PSH);
            if self.quickack > 0 {
                self.quickack -= 1;
                self.ack_now = true;
            } else if self.unacked_segs >= 2 || pushed_small {
                self.ack_now = true;
            } else if self.delack_at.is_none() {
                self.delack_at = Some(now + self.config.delayed_ack);
            }
        }
    }

    /// Under memory pressure: out-of-order data held is dropped first
    /// (Linux prunes its out-of-order queue the same way), and so is a new
    /// out-of-order segment; once memory is exhausted, any data is dropped
    /// unless nothing is held (so that every connection can make
    /// progress). Returns whether to drop the segment at hand; the peer
    /// sends it again.
    fn shed_for_memory(&mut self, out_of_order: bool) -> bool {
        if self.recv_buf.out_of_order_bytes() > 0 {
            self.stats.pruned_bytes += self.recv_buf.out_of_order_bytes() as u64;
            self.recv_buf.prune_out_of_order();
        }
        let drop = out_of_order
            || (self.memory_pressure == MemoryPressure::Exhausted && !self.recv_buf.is_empty());
        if drop {
            self.stats.memory_drops += 1;
        }
        drop
    }

    fn maybe_take_fin(&mut self, now: Instant) {
        let Some(fin) = self.fin_seq else { return };
        if self.fin_received || fin != self.rcv_nxt {
            return;
        }
        self.fin_received = true;
        self.rcv_nxt += 1;
        self.ack_now = true;
        match self.state {
            State::SynReceived | State::Established => self.state = State::CloseWait,
            // Our FIN is not acknowledged yet (that would be FIN-WAIT-2).
            State::FinWait1 => self.state = State::Closing,
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    /// An ICMP error quoting a segment of ours that started at `seq`.
    ///
    /// Errors that don't quote a sequence number in `[SND.UNA, SND.MAX)`
    /// are ignored (RFC 5927 §4.1). While connecting, port and protocol
    /// unreachable are hard errors that refuse the connection (RFC 1122
    /// §4.2.3.9, as Linux does); in a synchronized state every error is
    /// soft and the connection carries on (RFC 5927 §4.2, RFC 5461).
    /// "Fragmentation needed" lowers the MSS to the path MTU (RFC 1191
    /// §6.3, with the limits of [`super::pmtu`]) and resends what was in
    /// flight (§6.5).
    pub fn on_icmp_error(&mut self, now: Instant, kind: IcmpErrorKind, seq: SeqNumber) {
        if !(seq_le(self.snd_una, seq) && seq_lt(seq, self.snd_max)) {
            return;
        }
        match kind {
            IcmpErrorKind::Unreachable(
                DstUnreachable::PortUnreachable | DstUnreachable::ProtoUnreachable,
            ) if self.state == State::SynSent => self.fail(TcpError::ConnectionRefused),
            IcmpErrorKind::FragmentationNeeded { mtu }
                if self.state.is_synchronized()
                    && self.pmtu.on_fragmentation_needed(
                        now,
                        usize::from(mtu),
                        self.rtt.srtt(),
                    ) =>
            {
                log::debug!(
                    "{} -> {}: path MTU {} (reported {mtu})",
                    self.local,
                    self.remote,
                    self.pmtu.mtu()
                );
                self.stats.pmtu_reductions += 1;
                if self.apply_path_mtu() && self.snd_una != self.snd_max {
                    // What was in flight was too big (RFC 1191 §6.5); the
                    // congestion window stays, as on Linux: no congestion.
                    self.go_back_n();
                }
            }
            IcmpErrorKind::FragmentationNeeded { .. } => self.stats.pmtu_reports_ignored += 1,
            _ => {}
        }
    }

    // ------------------------------------------------------------------
    // Timers.

    /// The earliest instant this connection needs attention, `now` if it
    /// has something to send.
    pub fn poll_at(&self, now: Instant) -> Option<Instant> {
        if self.rst_now || self.ack_now || self.probe_now || self.tlp_due || self.wants_to_send() {
            return Some(now);
        }
        [
            self.rto_at,
            self.tlp_at,
            self.rack_deadline(),
            self.delack_at,
            self.persist_at,
            self.keepalive_at,
            self.time_wait_at,
            self.user_timeout_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn user_timeout_at(&self) -> Option<Instant> {
        let t = self.config.user_timeout?;
        // Not once closed: the connection that timed out keeps its unACKed
        // data, and an expired deadline would make `poll_at` say "now"
        // forever.
        (self.state != State::Closed && self.snd_una != self.snd_max).then(|| self.progress_at + t)
    }

    /// Handles every timer that has expired at `now`.
    pub fn on_timer(&mut self, now: Instant) {
        if self.time_wait_at.is_some_and(|t| t <= now) {
            self.time_wait_at = None;
            self.enter_closed();
            return;
        }
        if self.user_timeout_at().is_some_and(|t| t <= now) {
            self.fail(TcpError::TimedOut);
            return;
        }
        if self.delack_at.is_some_and(|t| t <= now) {
            self.delack_at = None;
            self.ack_now = true;
        }
        if self.rto_at.is_some_and(|t| t <= now) {
            self.on_rto(now);
        } else if self.tlp_at.is_some_and(|t| t <= now) {
            self.tlp_at = None;
            self.tlp_due = true;
        }
        if self.rack_deadline().is_some_and(|t| t <= now) {
            self.enter_recovery(now);
        }
        if self.persist_at.is_some_and(|t| t <= now) {
            self.persist_at = None;
            // The peer answers probes while it lives; one that never does
            // is as dead as one that never acknowledges data.
            if self.probes_unanswered >= self.config.max_retransmissions {
                self.fail(TcpError::TimedOut);
                return;
            }
            if self.closed_by_user && self.persist_backoff > self.config.orphan_retries {
                log::debug!(
                    "{} -> {}: orphan in a zero window for {} probes: reset",
                    self.local,
                    self.remote,
                    self.persist_backoff - 1
                );
                self.stats.orphan_timeouts += 1;
                self.abort_timed_out();
                return;
            }
            self.probes_unanswered += 1;
            self.probe_now = true;
            self.stats.window_probes += 1;
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            if self.keepalive_sent >= self.config.keepalive_probes {
                self.fail(TcpError::TimedOut);
                return;
            }
            self.keepalive_sent += 1;
            self.probe_now = true;
            self.keepalive_at = Some(now + self.config.keepalive_interval);
        }
    }

    fn on_rto(&mut self, now: Instant) {
        self.rto_at = None;
        match self.state {
            State::SynSent | State::SynReceived => {
                if self.stats.segs_out > 0 {
                    if self.retries >= self.config.syn_retries {
                        self.fail(TcpError::TimedOut);
                        return;
                    }
                    self.retries += 1;
                    self.stats.timeouts += 1;
                    // Back off, doubling (RFC 6298 §5.5); the 3 s of §5.7
                    // applies once the handshake completes.
                    self.rtt.on_timeout();
                    self.cc.on_handshake_loss();
                    self.rtt_probe = None;
                }
                self.snd_nxt = self.iss;
                self.syn_due = true;
                return;
            }
            State::Closed | State::TimeWait => return,
            _ => {}
        }
        if self.snd_una == self.snd_max {
            return;
        }
        if self.retries >= self.config.max_retransmissions {
            self.fail(TcpError::TimedOut);
            return;
        }
        if self.closed_by_user && self.retries >= self.config.orphan_retries {
            self.stats.orphan_timeouts += 1;
            self.abort_timed_out();
            return;
        }
        log::trace!(
            "{} -> {}: retransmission timeout, RTO {:?}",
            self.local,
            self.remote,
            self.rtt.rto()
        );
        self.retries += 1;
        self.stats.timeouts += 1;
        self.tlp_at = None;
        self.tlp_due = false;
        self.tlp_outstanding = false;
        self.rto_ts = Some(self.ts_now(now));
        self.cc.on_retransmit_timeout(now, self.flight_size());
        self.rtt.on_timeout();
        self.rtt_probe = None;
        self.go_back_n();
        self.rto_at = Some(now + self.rtt.rto());
    }

    /// Go back N: everything from SND.UNA is sent again as the window
    /// allows (RFC 6298 §5.4), after a timeout or when the path MTU shrank
    /// under the flight. Any fast recovery ends (its pipe accounting does
    /// not hold across it), `recover` marks the highest sent (RFC 6582
    /// §4), and the SACK scoreboard starts afresh (RFC 6675 §5.1).
    fn go_back_n(&mut self) {
        self.recover = self.snd_max;
        self.recovery = None;
        self.rtx_una = false;
        self.dupacks = 0;
        self.snd_nxt = self.snd_una;
        self.high_rxt = self.snd_una;
        self.rxt_log.clear();
        self.hole_seen_at = None;
        self.scoreboard.on_retransmit_timeout();
    }

    // ------------------------------------------------------------------
    // Output.

    fn unsent_data(&self) -> usize {
        // Data from SND.NXT to the end of the send buffer.
        let sent =
            distance(self.snd_una, self.snd_nxt).saturating_sub(usize::from(self.syn_unacked));
        self.send_buf.len().saturating_sub(sent)
    }

    fn fin_pending(&self) -> bool {
        // The FIN is due once all data is sent, and not yet sent at this
        // position (after go-back-N it is resent). Only in the states where
        // it is unacknowledged (RFC 9293 §3.3.2): once acknowledged
        // (FIN-WAIT-2, TIME-WAIT) SND.NXT equals this position again.
        self.fin_queued
            && matches!(
                self.state,
                State::FinWait1 | State::Closing | State::LastAck
            )
            && self.unsent_data() == 0
            && {
                let fin = self.snd_una + self.send_buf.len();
                self.snd_nxt == fin
            }
    }

    fn send_window(&self) -> usize {
        // Usable window: min(cwnd, peer window) minus what is in flight.
        let in_flight = if self.recovery.is_some() && self.sack_ok {
            self.scoreboard
                .pipe(self.snd_una, self.snd_max, self.high_rxt, self.mss())
        } else if self.recovery.is_some() {
            // NewReno: each duplicate ACK is a segment that left the network.
            distance(self.snd_una, self.snd_nxt).saturating_sub(self.dupacks as usize * self.mss())
        } else {
            distance(self.snd_una, self.snd_nxt)
        };
        // Limited transmit (RFC 3042): each of the first two duplicate ACKs
        // lets one new segment out beyond the congestion window, so a small
        // window still produces the three duplicates fast retransmit needs.
        let limited = if self.recovery.is_none() {
            self.dupacks.min(2) as usize * self.mss()
        } else {
            0
        };
        let cwnd_room = (self.cc.cwnd() + limited).saturating_sub(in_flight);
        let peer_room = (self.snd_una + self.snd_wnd) - self.snd_nxt;
        cwnd_room.min(peer_room.max(0) as usize)
    }

    fn wants_to_send(&self) -> bool {
        match self.state {
            // The handshake is driven by `syn_due`, set from the timer.
            State::SynSent | State::SynReceived => self.syn_due,
            State::Established
            | State::CloseWait
            | State::FinWait1
            | State::Closing
            | State::LastAck => {
                self.rtx_una
                    || (self.unsent_data() > 0
                        && self.send_window() > 0
                        && self.nagle_allows(self.unsent_data().min(self.send_window())))
                    || self.fin_pending()
            }
            _ => false,
        }
    }

    fn nagle_allows(&self, len: usize) -> bool {
        let mss = self.mss();
        // Nagle and sender SWS avoidance hold back new data only (RFC 9293
        // §3.7.4, §3.8.6.2.1): data resent after a timeout (go-back-N,
        // SND.NXT below the highest sent) goes as soon as the window allows,
        // or a lost small segment — the outstanding one Minshall's rule
        // waits for — would never be retransmitted.
        if len >= mss || self.config.nodelay || seq_lt(self.snd_nxt, self.snd_max) {
            return true;
        }
        // All queued data fits: send it if no small segment is
        // outstanding (Minshall) — or if the FIN follows it.
        let all = len >= self.unsent_data();
        if !all {
            // Receiver-side SWS: the peer's window limits us to a small
            // piece; wait for it to open unless it is at least half its max.
            return len >= self.max_snd_wnd / 2 && len > 0;
        }
        self.fin_queued || seq_le(self.snd_sml, self.snd_una)
    }

    fn window_to_advertise(&mut self) -> u16 {
        let mut edge = self.free_space_edge();
        // Never shrink the window (RFC 9293 §3.8.6.2.2), and do not move
        // the edge by less than min(buffer/2, MSS) (receiver SWS avoidance).
        if seq_lt(edge, self.rcv_adv) {
            edge = self.rcv_adv;
        } else {
            let grow = distance(self.rcv_adv, edge);
            let threshold = (self.recv_buf.capacity() / 2).min(self.our_mss);
            if grow < threshold && seq_lt(self.rcv_nxt, self.rcv_adv) {
                edge = self.rcv_adv;
            }
        }
        let wnd = distance(self.rcv_nxt, edge);
        let scaled = (wnd >> self.rcv_wscale).min(65535);
        // Record what the peer may use: the scaled value, rounded down.
        self.rcv_adv = self.rcv_nxt + (scaled << self.rcv_wscale);
        scaled as u16
    }

    fn base_repr(&mut self, now: Instant, seq: SeqNumber, flags: TcpFlags) -> TcpRepr {
        let syn = flags.contains(TcpFlags::SYN);
        let window_len = if syn {
            // Never scaled in a SYN (RFC 7323 §2.2).
            let w = self.recv_buf.window().min(65535);
            self.rcv_adv = self.rcv_nxt + w;
            w as u16
        } else {
            self.window_to_advertise()
        };
        let ack_number = (self.state != State::SynSent).then_some(self.rcv_nxt);
        let mut repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq_number: seq,
            ack_number,
            flags,
            window_len,
            ..TcpRepr::default()
        };
        if syn {
            repr.max_seg_size = Some(self.our_mss.min(65535) as u16);
            let offer_all = self.state == State::SynSent;
            if self.config.sack && (offer_all || self.sack_ok) {
                repr.sack_permitted = true;
            }
            if self.config.window_scaling && (offer_all || self.wscale_ok) {
                repr.window_scale = Some(self.rcv_wscale);
            }
            if self.config.timestamps && (offer_all || self.ts_ok) {
                repr.timestamp =
                    Some((self.ts_now(now), if offer_all { 0 } else { self.ts_recent }));
            }
        } else {
            if self.ts_ok {
                repr.timestamp = Some((self.ts_now(now), self.ts_recent));
            }
            if self.sack_ok && ack_number.is_some() {
                let mut ranges = [(0u64, 0u64); 3];
                let n = self.recv_buf.sack_ranges(&mut ranges);
                let base = self.recv_buf.next_expected();
                let mut slots = repr.sack_ranges.iter_mut();
                if let Some(d) = self.dsack.take()
                    && let Some(slot) = slots.next()
                {
                    *slot = Some(d);
                }
                for (slot, (start, end)) in slots.zip(&ranges[..n]) {
                    let left = self.rcv_nxt + (start - base) as usize;
                    let right = self.rcv_nxt + (end - base) as usize;
                    *slot = Some((left, right));
                }
            }
        }
        if let Some(a) = ack_number {
            self.last_ack_sent = a;
        }
        repr
    }

    fn finish_output(&mut self, repr: &TcpRepr) {
        self.stats.segs_out += 1;
        if repr.ack_number.is_some() {
            self.ack_now = false;
            self.delack_at = None;
            self.unacked_segs = 0;
        }
    }

    /// The next segment to send at `now`, if any. Call until `None`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Outgoing> {
        if self.pmtu.age(now) {
            self.apply_path_mtu();
        }
        if self.rst_now {
            self.rst_now = false;
            let repr = TcpRepr {
                src_port: self.local.port(),
                dst_port: self.remote.port(),
                seq_number: self.snd_nxt,
                ack_number: None,
                flags: TcpFlags::RST,
                ..TcpRepr::default()
            };
            self.stats.segs_out += 1;
            return Some(Outgoing {
                repr,
                payload_offset: 0,
            });
        }
        match self.state {
            State::Closed => return None,
            State::SynSent | State::SynReceived => return self.poll_handshake(now),
            State::TimeWait => return self.poll_ack(now),
            _ => {}
        }
        if let Some(out) = self.poll_retransmit(now) {
            return Some(out);
        }
        if let Some(out) = self.poll_new_data(now) {
            return Some(out);
        }
        if self.tlp_due {
            self.tlp_due = false;
            if let Some(out) = self.tail_loss_probe(now) {
                return Some(out);
            }
        }
        if self.probe_now {
            self.probe_now = false;
            // A zero-window or keep-alive probe: one old sequence number,
            // which the peer must answer with an ACK (RFC 9293 §3.8.6.1,
            // §3.8.4).
            let seq = self.snd_una - 1;
            let repr = self.base_repr(now, seq, TcpFlags::empty());
            self.finish_output(&repr);
            if self.snd_wnd == 0 && self.unsent_data() > 0 {
                self.arm_persist(now);
            }
            return Some(Outgoing {
                repr,
                payload_offset: 0,
            });
        }
        self.poll_ack(now)
    }

    fn poll_ack(&mut self, now: Instant) -> Option<Outgoing> {
        if !self.ack_now {
            return None;
        }
        let repr = self.base_repr(now, self.snd_nxt_for_ack(), TcpFlags::empty());
        self.finish_output(&repr);
        Some(Outgoing {
            repr,
            payload_offset: 0,
        })
    }

    fn snd_nxt_for_ack(&self) -> SeqNumber {
        // A pure ACK carries SND.NXT; after go-back-N use the highest.
        self.snd_max
    }

    fn poll_handshake(&mut self, now: Instant) -> Option<Outgoing> {
        if !self.syn_due {
            // An ACK owed in SYN-RECEIVED, for an unacceptable segment
            // (RFC 9293 §3.10.7.4): send it, or `poll_at` would keep
            // reporting it due.
            if self.state == State::SynReceived {
                return self.poll_ack(now);
            }
            // Nothing else goes out before the handshake completes.
            self.ack_now = false;
            self.probe_now = false;
            return None;
        }
        self.syn_due = false;
        // A SYN in SYN-SENT, a SYN-ACK in SYN-RECEIVED.
        let repr = self.base_repr(now, self.iss, TcpFlags::SYN);
        self.snd_nxt = self.iss + 1;
        self.snd_max = self.iss + 1;
        if self.retries == 0 {
            self.rtt_probe = Some((self.iss + 1, now));
        }
        self.rto_at = Some(now + self.rtt.rto());
        self.finish_output(&repr);
        self.ack_now = false;
        Some(Outgoing {
            repr,
            payload_offset: 0,
        })
    }

    fn poll_retransmit(&mut self, now: Instant) -> Option<Outgoing> {
        self.recovery?;
        let mss = self.mss();
        let (seq, len) = if self.sack_ok {
            if self.rtx_una {
                // The first retransmission of the recovery (RFC 6675 §5
                // step 4.3), stopping short of SACKed data.
                self.rtx_una = false;
                self.scoreboard
                    .head_segment(self.snd_una, self.snd_max, mss)
                    .unwrap_or((self.snd_una, mss))
            } else {
                // Lost retransmissions are not in flight.
                let pipe = self
                    .scoreboard
                    .pipe(self.snd_una, self.snd_max, self.high_rxt, mss)
                    .saturating_sub(self.rxt_log.lost_bytes());
                if pipe >= self.cc.cwnd() {
                    return None;
                }
                if let Some((seq, len)) = self.rxt_log.next_lost(self.snd_una, mss) {
                    let out = self.data_segment(now, seq, len, true)?;
                    let end = seq + out.repr.payload_len;
                    self.rxt_log.on_retransmit(seq, end, self.snd_max, now);
                    return Some(out);
                }
                let new_data =
                    self.unsent_data() > 0 && (self.snd_una + self.snd_wnd) - self.snd_nxt > 0;
                match self.scoreboard.next_seg(
                    self.snd_una,
                    self.snd_max,
                    self.high_rxt,
                    self.rescue_rxt,
                    mss,
                    new_data,
                ) {
                    NextSeg::Retransmit { seq, len } => (seq, len),
                    NextSeg::Rescue { seq, len } => {
                        // RFC 6675 §4 rule 4: RescueRxt = RecoveryPoint, and
                        // HighRxt is not advanced by a rescue, so holes
                        // found later below it are still repaired by SACK.
                        self.rescue_rxt = self.recovery.or(Some(self.snd_max));
                        let out = self.data_segment(now, seq, len, true)?;
                        let end = seq + out.repr.payload_len;
                        self.rxt_log.on_retransmit(seq, end, self.snd_max, now);
                        return Some(out);
                    }
                    NextSeg::NewData | NextSeg::None => return None,
                }
            }
        } else {
            if !self.rtx_una {
                return None;
            }
            self.rtx_una = false;
            (self.snd_una, mss)
        };
        let out = self.data_segment(now, seq, len, true)?;
        let end = seq + out.repr.payload_len;
        if seq_lt(self.high_rxt, end) {
            self.high_rxt = end;
        }
        if self.sack_ok {
            self.rxt_log.on_retransmit(seq, end, self.snd_max, now);
        }
        Some(out)
    }

    fn poll_new_data(&mut self, now: Instant) -> Option<Outgoing> {
        // Skip ranges the peer already SACKed when resending after an RTO
        // (the ranges are sorted and disjoint: one pass).
        if self.sack_ok && seq_lt(self.snd_nxt, self.snd_max) {
            for (start, end) in self.scoreboard.ranges() {
                if seq_le(start, self.snd_nxt) && seq_lt(self.snd_nxt, end) {
                    self.snd_nxt = end;
                }
            }
        }
        // Restart window after idleness (RFC 5681 §4.1): a sender idle for
        // longer than an RTO must not burst a stale congestion window.
        if self.snd_una == self.snd_max && now - self.last_data_sent > self.rtt.rto() {
            self.cc.on_idle_restart(now);
        }
        let unsent = self.unsent_data();
        let window = self.send_window();
        if unsent > 0 {
            if self.snd_wnd == 0 && self.snd_una == self.snd_max {
                // Zero window: probe on the persist timer.
                self.arm_persist(now);
                return None;
            }
            let len = unsent.min(window).min(self.mss());
            if len > 0 && self.nagle_allows(len.min(unsent)) {
                let retransmission = seq_lt(self.snd_nxt, self.snd_max);
                return self.data_segment(now, self.snd_nxt, len, retransmission);
            }
            // Held back by the peer's small window (sender SWS avoidance)
            // with nothing in flight: only the peer's window update can
            // release the data, and a lost one is never sent again (a pure
            // ACK is not retransmitted). Probe on the persist timer, whose
            // answer carries the current window, as for a zero window
            // (RFC 9293 §3.8.6.2.1's override timeout serves the same end;
            // Linux arms its probe timer the same way).
            if len > 0 && len < unsent && self.snd_una == self.snd_max {
                self.arm_persist(now);
            }
            return None;
        }
        if self.fin_pending() {
            let seq = self.snd_nxt;
            let repr = self.base_repr(now, seq, TcpFlags::FIN);
            self.snd_nxt = seq + 1;
            if self.snd_una == self.snd_max {
                // Nothing was outstanding: the user timeout starts now.
                self.progress_at = now;
            }
            if seq_lt(self.snd_max, self.snd_nxt) {
                self.snd_max = self.snd_nxt;
            }
            if self.rto_at.is_none() {
                self.rto_at = Some(now + self.rtt.rto());
            }
            self.finish_output(&repr);
            return Some(Outgoing {
                repr,
                payload_offset: 0,
            });
        }
        None
    }

    /// Arms the tail loss probe timer (RFC 8985 §7.2): two smoothed RTTs
    /// after the last send or ACK, plus a worst-case delayed ACK when only
    /// one segment is out, and never later than the retransmission timer.
    fn schedule_tlp(&mut self, now: Instant) {
        self.tlp_at = None;
        if !self.sack_ok || self.recovery.is_some() || self.tlp_outstanding {
            return;
        }
        let Some(srtt) = self.rtt.srtt() else { return };
        if self.snd_una == self.snd_max || !self.state.is_synchronized() {
            return;
        }
        let mut pto = srtt * 2;
        if self.flight_size() <= self.mss() {
            pto += Duration::from_millis(200);
        } else {
            pto += Duration::from_millis(2);
        }
        let at = now + pto;
        if self.rto_at.is_none_or(|rto| at < rto) {
            self.tlp_at = Some(at);
        }
    }

    /// Sends the tail loss probe (RFC 8985 §7.3): a new segment if one may
    /// go, else the last segment sent again, so that a loss at the tail of
    /// a flight is reported by SACK and repaired by fast recovery rather
    /// than by the retransmission timer.
    fn tail_loss_probe(&mut self, now: Instant) -> Option<Outgoing> {
        if self.snd_una == self.snd_max || self.recovery.is_some() {
            return None;
        }
        let mss = self.mss();
        let peer_room = (self.snd_una + self.snd_wnd) - self.snd_nxt;
        let out = if self.unsent_data() > 0 && peer_room > 0 {
            let len = self.unsent_data().min(mss).min(peer_room as usize);
            self.data_segment(now, self.snd_nxt, len, false)
        } else {
            // The last data segment (the FIN rides along if it is due).
            let data_end = self.snd_una + self.send_buf.len();
            let start = if distance(self.snd_una, data_end) > mss {
                data_end - mss
            } else {
                self.snd_una
            };
            self.data_segment(now, start, distance(start, data_end), true)
        }?;
        self.tlp_outstanding = true;
        self.tlp_at = None;
        self.rto_at = Some(now + self.rtt.rto());
        Some(out)
    }

    fn arm_persist(&mut self, now: Instant) {
        if self.persist_at.is_none() {
            let backoff = 1u32 << self.persist_backoff.min(10);
            let t = (self.rtt.rto() * backoff).min(self.config.rtt.max_rto);
            self.persist_backoff += 1;
            self.persist_at = Some(now + t);
        }
    }

    /// Builds a data segment of up to `len` bytes at `seq` (which must lie
    /// in the send buffer).
    fn data_segment(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        len: usize,
        retransmission: bool,
    ) -> Option<Outgoing> {
        let offset = distance(self.snd_una, seq).checked_sub(usize::from(self.syn_unacked))?;
        let avail = self.send_buf.len().saturating_sub(offset);
        let len = len.min(avail);
        let fin_follows = self.fin_queued && offset + len == self.send_buf.len();
        if len == 0 && !fin_follows {
            return None;
        }
        let mut flags = TcpFlags::empty();
        if offset + len == self.send_buf.len() {
            flags.insert(TcpFlags::PSH);
        }
        // Piggyback the FIN when it is allowed at this point.
        let send_fin = fin_follows && {
            let room = (self.snd_una + self.snd_wnd) - (seq + len);
            room > 0 || self.snd_wnd == 0
        };
        if send_fin {
            flags.insert(TcpFlags::FIN);
        }
        let mut repr = self.base_repr(now, seq, flags);
        // Options beyond the timestamps (SACK blocks) come out of the
        // payload: options and data together never exceed the peer's MSS
        // (RFC 9293 §3.7.1, RFC 6691 §2), or the datagram would exceed the
        // MTU and be fragmented. A shortened segment carries neither the
        // FIN nor PSH (more data follows it).
        //
        // SACK blocks give way first, down to none, before a segment is
        // cut below half a segment's worth: with a tiny MSS (a peer may
        // announce 64) a full set of blocks would leave a few bytes a
        // segment, thousands of segments for one window (found by fuzzing).
        let room = |repr: &TcpRepr| (self.peer_mss + HEADER_LEN).saturating_sub(repr.header_len());
        let want = len.min(self.mss() / 2);
        while room(&repr) < want {
            let Some(last) = repr.sack_ranges.iter_mut().rev().find(|r| r.is_some()) else {
                break;
            };
            *last = None;
        }
        let room = room(&repr);
        let shortened = len > room && room > 0;
        let (len, send_fin) = if shortened {
            repr.flags.remove(TcpFlags::FIN);
            repr.flags.remove(TcpFlags::PSH);
            (room, false)
        } else {
            (len, send_fin)
        };
        repr.payload_len = len;
        let end = seq + len + usize::from(send_fin);
        if seq_lt(self.snd_nxt, end) || seq == self.snd_nxt {
            self.snd_nxt = end;
        }
        if self.snd_una == self.snd_max {
            // Nothing was outstanding: the user timeout (RFC 5482) counts
            // from now, not from the last ACK, however long ago.
            self.progress_at = now;
        }
        if seq_lt(self.snd_max, end) {
            self.snd_max = end;
        }
        if len < self.mss() && !shortened {
            self.snd_sml = end;
        }
        if retransmission {
            self.stats.retransmits += 1;
        } else if self.rtt_probe.is_none() && !self.ts_ok {
            self.rtt_probe = Some((end, now));
        }
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rtt.rto());
        }
        if !retransmission {
            self.schedule_tlp(now);
        }
        self.stats.bytes_sent += len as u64;
        self.last_data_sent = now;
        self.finish_output(&repr);
        Some(Outgoing {
            repr,
            payload_offset: offset,
        })
    }

    /// Copies `dst.len()` payload bytes starting `offset` bytes into the
    /// send buffer (an [`Outgoing::payload_offset`]).
    pub fn copy_payload(&self, offset: usize, dst: &mut [u8]) -> usize {
        self.send_buf.copy_to(offset, dst)
    }
}
