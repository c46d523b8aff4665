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
//! - loss recovery: with SACK, RACK-TLP (RFC 8985) with Proportional Rate
//!   Reduction (RFC 6937 as updated by draft-ietf-tcpm-prr-rfc6937bis);
//!   NewReno (RFC 6582) otherwise; undo of spurious reductions by D-SACK
//!   (RFC 3708) and F-RTO (RFC 5682);
//! - congestion control behind [`CongestionControl`] (CUBIC with HyStart++
//!   by default, RFC 9438 and RFC 9406; NewReno; BBR v1), and pacing
//!   (always with BBR, `TcpConfig::pacing` otherwise);
//! - flow control with silly window syndrome avoidance on both sides
//!   (RFC 9293 §3.8.6.2), zero-window probing with the persist timer;
//! - Nagle's algorithm in Minshall's variant (only one small segment
//!   outstanding) and delayed ACKs (every second full-sized segment or
//!   40 ms); a small pushed segment is acknowledged at once, which breaks
//!   the Nagle/delayed-ACK stall of write-write-read exchanges;
//! - keep-alive (RFC 9293 §3.8.4, off by default) and a user timeout
//!   (RFC 5482's semantics, local only).
//!
//! The code follows the protocol: this file holds the connection, its
//! parts and the user's commands; [`types`] the configuration and the
//! types shared with the socket layer; `input` segment arrival
//! (RFC 9293 §3.10.7); `output` what to send; `timers` the timers; and
//! `recovery` loss detection and recovery. A connection is a set of named
//! parts: the send and receive sequence spaces (`SendSpace`,
//! `RecvSpace`), the options agreed (`Options`), segment sizes
//! (`PathState`), what is due to be sent (`Pending`), the timers
//! (`Timers`), the loss-recovery state (`recovery::Recovery`), the RTT
//! estimator and the congestion controller.
//!
//! Not implemented: urgent data (the URG flag is ignored, RFC 6093 §4
//! recommends against using it), ECN, TCP Fast Open, MD5/AO signatures.
//!
//! # Example
//!
//! Two connections, and nothing between them but this loop: each segment one
//! polls out goes straight into the other, payload and all. The handshake
//! is done, then data flows, without a clock ever being read.
//!
//! ```
//! use std::net::SocketAddrV4;
//! use bytes::Bytes;
//! use netstrata::buf::Lent;
//! use netstrata::transport::tcp::seq::SeqNumber;
//! use netstrata::transport::tcp::{Connection, State, TcpConfig};
//! use netstrata::Instant;
//!
//! let now = Instant::from_secs(1);
//! let a: SocketAddrV4 = "192.0.2.1:49152".parse()?;
//! let b: SocketAddrV4 = "192.0.2.2:80".parse()?;
//! let mut client = Connection::connect(now, TcpConfig::default(), a, b, SeqNumber(100), 1500, 0);
//! let syn = client.poll_transmit(now).expect("a SYN");
//! let mut server =
//!     Connection::accept(now, TcpConfig::default(), b, a, SeqNumber(500), 1500, 0, &syn.repr);
//! // Moves every segment `from` has to send into `to`.
//! let pump = |from: &mut Connection, to: &mut Connection| {
//!     while let Some(out) = from.poll_transmit(now) {
//!         let (head, tail) = from.payload(out.payload_offset, out.repr.payload_len);
//!         let payload = Bytes::from([head, tail].concat());
//!         to.handle_segment(now, &out.repr, payload, 0);
//!     }
//! };
//! pump(&mut server, &mut client); // SYN-ACK
//! assert_eq!(client.state(), State::Established);
//! client.send(b"hello")?;
//! pump(&mut client, &mut server); // ACK, data
//! assert_eq!(server.state(), State::Established);
//! let mut buf = [0; 16];
//! let n = server.recv(&mut buf, &mut Lent::new(8))?;
//! assert_eq!(&buf[..n], b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod input;
mod output;
mod recovery;
#[cfg(test)]
mod tests;
mod timers;
pub mod types;

use std::net::SocketAddrV4;

use bytes::Bytes;

use crate::buf::Lent;
use crate::internet::ipv4;
use crate::ratelimit::TokenBucket;
use crate::time::{Duration, Instant};
use crate::transport::tcp::congestion::{CongestionControl, CwndUsage};
use crate::transport::tcp::pacing::Pacer;
use crate::transport::tcp::pmtu::PathMtu;
use crate::transport::tcp::recv_buffer::RecvBuffer;
use crate::transport::tcp::rtt::RttEstimator;
use crate::transport::tcp::segment::TcpRepr;
use crate::transport::tcp::send_buffer::SendBuffer;
use crate::transport::tcp::seq::SeqNumber;
use crate::transport::tcp::time_wait::{TimeWaitRecord, TimeWaitTimestamps};

use recovery::Recovery;
use timers::Timers;
use types::{DEFAULT_MSS, EXHAUSTED_SEND_QUANTUM, QUICKACK_SEGMENTS};
pub use types::{
    Handled, MemoryPressure, Outgoing, State, TcpConfig, TcpError, TcpInfo, TcpSocketStats,
    mss_for_mtu, window_scale_for,
};

/// One TCP connection.
#[derive(Debug)]
pub struct Connection {
    config: TcpConfig,
    state: State,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    error: Option<TcpError>,
    snd: SendSpace,
    rcv: RecvSpace,
    opts: Options,
    path: PathState,
    pending: Pending,
    timers: Timers,
    rec: Recovery,
    rtt: RttEstimator,
    /// A segment being timed without timestamps: (its end, when sent).
    rtt_probe: Option<(SeqNumber, Instant)>,
    cc: Box<dyn CongestionControl>,
    /// The application closed (not just shut down writing).
    closed_by_user: bool,
    /// When a segment with data last went out (for the restart window).
    last_data_sent: Instant,
    /// Rate limit of challenge ACKs (RFC 5961 §7).
    challenge: TokenBucket,
    /// When an ACK last answered an unacceptable segment without data.
    invalid_ack_at: Option<Instant>,
    /// The TCP layer's memory state, as its socket table last said.
    memory_pressure: MemoryPressure,
    stats: TcpSocketStats,
}

/// The send sequence space (RFC 9293 §3.3.1) and the data in it.
#[derive(Debug)]
struct SendSpace {
    iss: SeqNumber,
    una: SeqNumber,
    nxt: SeqNumber,
    /// The highest sequence number sent (SND.NXT before a go-back-N).
    max: SeqNumber,
    wnd: usize,
    max_wnd: usize,
    wl1: SeqNumber,
    wl2: SeqNumber,
    wscale: u8,
    buf: SendBuffer,
    /// The application shut down writing: a FIN follows the data.
    fin_queued: bool,
    /// Whether a SYN is still unacknowledged (occupies `iss`).
    syn_unacked: bool,
    /// End of the last small (sub-MSS) segment sent, for Nagle/Minshall.
    sml: SeqNumber,
    /// SND.NXT when the current round trip began: an ACK beyond it begins
    /// the next (RFC 9406 §4.2 `windowEnd`).
    round_end: SeqNumber,
    /// Whether the congestion window has been limiting what is sent, and
    /// what was outstanding when the sender last looked.
    usage: CwndUsage,
}

impl SendSpace {
    fn new(iss: SeqNumber, buffer: usize) -> SendSpace {
        SendSpace {
            iss,
            una: iss,
            nxt: iss,
            max: iss,
            wnd: 0,
            max_wnd: 0,
            wl1: SeqNumber(0),
            wl2: iss,
            wscale: 0,
            buf: SendBuffer::new(buffer),
            fin_queued: false,
            syn_unacked: true,
            sml: iss,
            round_end: iss,
            usage: CwndUsage::default(),
        }
    }
}

/// The receive sequence space (RFC 9293 §3.3.1) and the data in it.
#[derive(Debug)]
struct RecvSpace {
    irs: SeqNumber,
    nxt: SeqNumber,
    /// Right edge of the window we last advertised.
    adv: SeqNumber,
    wscale: u8,
    buf: RecvBuffer,
    /// The peer's FIN sequence number, once seen (possibly ahead of data).
    fin_seq: Option<SeqNumber>,
    fin_received: bool,
    /// A duplicate segment to report in the next ACK (D-SACK).
    dsack: Option<(SeqNumber, SeqNumber)>,
    /// The acknowledgment number we last sent (RFC 7323 §4.3's
    /// Last.ACK.sent).
    last_ack_sent: SeqNumber,
}

impl RecvSpace {
    fn new(wscale: u8, buffer: usize) -> RecvSpace {
        RecvSpace {
            irs: SeqNumber(0),
            nxt: SeqNumber(0),
            adv: SeqNumber(0),
            wscale,
            buf: RecvBuffer::new(buffer),
            fin_seq: None,
            fin_received: false,
            dsack: None,
            last_ack_sent: SeqNumber(0),
        }
    }
}

/// What the handshake agreed (RFC 7323, RFC 2018), and the timestamp
/// state of RFC 7323 §4.3.
#[derive(Debug)]
struct Options {
    wscale_ok: bool,
    ts_ok: bool,
    sack_ok: bool,
    ts_recent: u32,
    ts_recent_at: Instant,
    /// Added to our clock in the timestamps we send (RFC 7323 §5.4).
    ts_offset: u32,
}

/// Segment sizes: ours, the peer's, and what the path allows.
#[derive(Debug)]
struct PathState {
    /// MSS option we send (link MTU minus 40).
    our_mss: usize,
    /// Largest payload per segment toward the peer, without options: the
    /// smaller of `syn_mss` and what the path MTU allows.
    peer_mss: usize,
    /// The MSS the peer announced (RFC 9293 §3.7.1), within our own.
    syn_mss: usize,
    /// Path MTU discovery (RFC 1191).
    pmtu: PathMtu,
    /// When the next data segment may leave, with pacing on.
    pacer: Pacer,
    /// The largest IP datagram the device cuts into segments (TCP
    /// segmentation offload), or 0: new data then goes in super-segments
    /// ([`Connection::set_segmentation`]).
    segmentation: usize,
}

/// Segments without data that are due, and the delayed-ACK count.
#[derive(Debug)]
struct Pending {
    /// Send an ACK.
    ack: bool,
    /// Full-sized segments received since the last ACK.
    unacked_segs: u32,
    /// ACKs still to send at once (Linux's quick-ack mode).
    quickack: u32,
    /// Send a zero-window or keep-alive probe.
    probe: bool,
    /// Send a RST (after abort).
    rst: bool,
    /// Send (or resend) our SYN or SYN-ACK.
    syn: bool,
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
        // The ISS is random (RFC 6528) unless the stack was seeded on purpose;
        // it seeds the controller's random choices too.
        let seed = u64::from(iss.0) << 32 | u64::from(ts_offset);
        let cc = config
            .congestion
            .build_with(DEFAULT_MSS, config.hystart, seed);
        Connection {
            state: State::Closed,
            local,
            remote,
            error: None,
            snd: SendSpace::new(iss, config.send_buffer),
            rcv: RecvSpace::new(window_scale_for(&config), config.recv_buffer),
            opts: Options {
                wscale_ok: false,
                ts_ok: false,
                sack_ok: false,
                ts_recent: 0,
                ts_recent_at: now,
                ts_offset,
            },
            path: PathState {
                our_mss,
                peer_mss: DEFAULT_MSS,
                syn_mss: DEFAULT_MSS,
                // The link's own MTU, even below the 104 bytes a segment
                // of the floor size needs: segments on such a link are
                // cut to fit rather than fragmented (or, with Don't
                // Fragment, not sent at all; found by fuzzing, MTU 68).
                pmtu: PathMtu::new(mtu.clamp(ipv4::MIN_MTU, ipv4::MAX_DATAGRAM_LEN)),
                pacer: Pacer::new(),
                segmentation: 0,
            },
            pending: Pending {
                ack: false,
                unacked_segs: 0,
                quickack: QUICKACK_SEGMENTS,
                probe: false,
                rst: false,
                syn: false,
            },
            timers: Timers::new(now),
            rec: Recovery::new(iss),
            rtt: RttEstimator::new(config.rtt),
            rtt_probe: None,
            cc,
            closed_by_user: false,
            last_data_sent: now,
            challenge: TokenBucket::new(10, 10),
            invalid_ack_at: None,
            memory_pressure: MemoryPressure::Normal,
            stats: TcpSocketStats::default(),
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
        c.pending.syn = true;
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
        c.rcv.irs = syn.seq_number;
        c.rcv.nxt = syn.seq_number + 1;
        c.rcv.adv = c.rcv.nxt;
        c.snd.wnd = usize::from(syn.window_len);
        c.snd.max_wnd = c.snd.wnd;
        c.snd.wl1 = syn.seq_number;
        c.pending.syn = true;
        c
    }

    /// Turns a passive open ([`Connection::accept`] of the SYN a cookie
    /// remembers, see [`crate::transport::tcp::syncookie`]) into one whose
    /// SYN-ACK (ISN `iss`) was sent with a SYN cookie, so the peer's ACK,
    /// handled next, completes the handshake. Should that ACK not, the
    /// connection gives up at its first timeout rather than resend a
    /// SYN-ACK it never sent.
    pub fn with_cookie_syn_ack_sent(self, now: Instant) -> Connection {
        let mut c = self;
        let iss = c.snd.iss;
        c.pending.syn = false;
        c.snd.nxt = iss + 1;
        c.snd.max = iss + 1;
        // What the cookie SYN-ACK advertised: never scaled (RFC 7323 §2.2).
        c.rcv.adv = c.rcv.nxt + c.rcv.buf.window().min(65535);
        c.timers.retries = c.config.syn_retries;
        c.timers.rto = Some(now + c.rtt.rto());
        c
    }

    /// What remains of this connection in TIME-WAIT (see
    /// [`crate::transport::tcp::time_wait`]), taken when it is released
    /// there.
    pub fn time_wait_record(&self, now: Instant) -> TimeWaitRecord {
        let advertised = if self.rcv.nxt < self.rcv.adv {
            distance(self.rcv.nxt, self.rcv.adv)
        } else {
            0
        };
        let window = (advertised >> self.rcv.wscale).min(65535) as u16;
        TimeWaitRecord {
            snd_nxt: self.snd.max,
            rcv_nxt: self.rcv.nxt,
            window,
            timestamps: self.opts.ts_ok.then_some(TimeWaitTimestamps {
                recent: self.opts.ts_recent,
                recent_at: self.opts.ts_recent_at,
                offset: self.opts.ts_offset,
            }),
            expires: self
                .timers
                .time_wait
                .unwrap_or(now + self.config.msl * 2)
                .max(now),
            duration: self.config.msl * 2,
            ack_interval: self.config.invalid_ack_interval,
            acked_at: self.invalid_ack_at,
        }
    }

    /// Lets new data go in super-segments of up to `max_datagram` bytes
    /// (an IP datagram), which the device below cuts into full-sized
    /// segments: what TCP segmentation offload takes. 0 turns it off.
    /// The segments on the wire are those the connection would have sent
    /// one by one; only the number of times it is asked is smaller.
    pub fn set_segmentation(&mut self, max_datagram: usize) {
        self.path.segmentation = max_datagram.min(usize::from(u16::MAX));
    }

    /// Payload bytes in a full-sized segment (options other than SACK
    /// deducted, as Linux does).
    pub fn mss(&self) -> usize {
        let ts = if self.opts.ts_ok { 12 } else { 0 };
        self.path.peer_mss.saturating_sub(ts).max(1)
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
            peer_window: self.snd.wnd,
            mss: self.mss(),
            in_recovery: self.rec.in_recovery(),
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
        self.timers.keepalive_sent = 0;
        self.timers.keepalive = idle.filter(|_| self.keepalive_applies()).map(|d| now + d);
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
        distance(self.snd.una, self.snd.max)
    }

    fn ts_now(&self, now: Instant) -> u32 {
        (now.total_millis() as u32).wrapping_add(self.opts.ts_offset)
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
        self.timers.stop_all();
        self.rec.on_closed();
        self.pending.ack = false;
        self.pending.probe = false;
    }

    fn enter_time_wait(&mut self, now: Instant) {
        self.state = State::TimeWait;
        self.timers.rto = None;
        self.timers.persist = None;
        self.timers.keepalive = None;
        self.timers.tlp = None;
        // A loss probe may have been half sent when the last ACK came.
        self.rec.on_closed();
        self.timers.time_wait = Some(now + self.config.msl * 2);
    }

    /// Queues as much of `data` as fits in the send buffer; returns how
    /// much. Zero means the buffer is full.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, TcpError> {
        self.check_can_send()?;
        if data.is_empty() {
            return Ok(0);
        }
        let n = data.len().min(self.send_room()?);
        Ok(self.snd.buf.write(&data[..n]))
    }

    /// Queues data written in place: `f` gets free space of the send
    /// buffer as one slice (its contents are stale) and returns how many
    /// bytes it wrote there; returns that count, which the connection then
    /// sends as if [`Connection::send`] had copied it in. The data is
    /// written once, where it will be sent from. The slice is at most
    /// [`Connection::send_capacity`] bytes, and shorter when the buffer's
    /// ring wraps: call again for the rest. `f` is not called when there is
    /// no room. Fails as [`Connection::send`] does.
    pub fn send_with(&mut self, f: impl FnOnce(&mut [u8]) -> usize) -> Result<usize, TcpError> {
        self.check_can_send()?;
        let room = self.send_room()?;
        Ok(self.snd.buf.write_with(room, f))
    }

    /// Free space in the send buffer, or [`TcpError::WouldBlock`] if none.
    fn send_room(&self) -> Result<usize, TcpError> {
        match self.send_capacity() {
            0 => Err(TcpError::WouldBlock),
            room => Ok(room),
        }
    }

    /// Whether the user may queue data: no error, not shut down for
    /// writing, and a state that sends.
    fn check_can_send(&self) -> Result<(), TcpError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.snd.fin_queued {
            return Err(TcpError::WriteShutdown);
        }
        match self.state {
            State::Established | State::CloseWait | State::SynSent | State::SynReceived => Ok(()),
            s => Err(TcpError::NotConnected(s)),
        }
    }

    /// Free space in the send buffer.
    pub fn send_capacity(&self) -> usize {
        if self.snd.fin_queued || (self.state.is_synchronized() && !self.state.can_send()) {
            return 0;
        }
        match self.memory_pressure {
            // With the stack's memory exhausted, a connection still sending
            // queues no more until it drains; one with nothing queued may
            // queue a little (as Linux grants every socket a page), so
            // that every connection makes progress.
            MemoryPressure::Exhausted if !self.snd.buf.is_empty() => 0,
            MemoryPressure::Exhausted => self.snd.buf.free().min(EXHAUSTED_SEND_QUANTUM),
            _ => self.snd.buf.free(),
        }
    }

    /// Bytes queued but not yet acknowledged.
    pub fn send_queue(&self) -> usize {
        self.snd.buf.len()
    }

    /// Copies received data into `buf`. `Ok(0)` with a non-empty `buf`
    /// means end of stream (the peer closed and everything was read);
    /// [`TcpError::WouldBlock`] that nothing is there yet. The frames the
    /// data came in go to `lent`, for the buffer pool.
    pub fn recv(&mut self, buf: &mut [u8], lent: &mut Lent) -> Result<usize, TcpError> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.rcv.buf.read(buf, lent) {
            0 => self.nothing_to_read().map(|()| 0),
            n => {
                self.after_read();
                Ok(n)
            }
        }
    }

    /// Why a read found nothing: `Ok` at end of stream, the error that
    /// ended the connection, or [`TcpError::WouldBlock`].
    fn nothing_to_read(&self) -> Result<(), TcpError> {
        match self.error {
            Some(e) => Err(e),
            // Closed with no error and no FIN (none will come either).
            None if self.recv_eof() || self.state == State::Closed => Ok(()),
            None => Err(TcpError::WouldBlock),
        }
    }

    /// The last segment's bytes, if the connection did not keep them (it
    /// copied a small piece, or they had been received already): the frame
    /// they are a slice of may go back to the buffer pool.
    pub fn take_unkept_payload(&mut self) -> Option<Bytes> {
        self.rcv.buf.take_unkept()
    }

    /// Takes the next chunk of received data, at most `max` bytes, without
    /// copying. Empty at end of stream (or with `max` 0); fails as
    /// [`Connection::recv`] does.
    pub fn recv_bytes(&mut self, max: usize) -> Result<Bytes, TcpError> {
        if max == 0 {
            return Ok(Bytes::new());
        }
        match self.rcv.buf.read_bytes(max) {
            Some(b) => {
                self.after_read();
                Ok(b)
            }
            None => self.nothing_to_read().map(|()| Bytes::new()),
        }
    }

    fn after_read(&mut self) {
        // Window update if the right edge can move far enough (receiver
        // SWS avoidance, RFC 9293 §3.8.6.2.2).
        if self.state.is_synchronized() && self.window_update_worthwhile() {
            self.pending.ack = true;
        }
    }

    /// The right edge the free space allows, held back under memory
    /// pressure: to four segments' worth under pressure (as Linux clamps
    /// its window), not at all once memory is exhausted. What was already
    /// advertised is never taken back (that is `window_to_advertise`'s
    /// rule).
    fn free_space_edge(&self) -> SeqNumber {
        let edge = self.rcv.nxt + self.rcv.buf.window();
        let cap = match self.memory_pressure {
            MemoryPressure::Normal => return edge,
            MemoryPressure::Pressure => self.rcv.nxt + 4 * self.path.our_mss,
            MemoryPressure::Exhausted => self.rcv.nxt,
        };
        if cap < edge { cap } else { edge }
    }

    fn window_update_worthwhile(&self) -> bool {
        // The edge an update could advertise: the free space, but no more
        // than the window field carries (65535 << Rcv.Wind.Shift, RFC 7323
        // §2.3). Beyond that reading moves nothing, and an ACK would be a
        // duplicate ACK to the peer.
        let max = 65535usize << self.rcv.wscale;
        let free = distance(self.rcv.nxt, self.free_space_edge());
        let edge = self.rcv.nxt + free.min(max);
        let grow = edge - self.rcv.adv;
        // RFC 9293 §3.8.6.2.2: worth it once the edge moves by
        // min(Fr·RCV.BUFF, MSS), Fr = 1/2 — the threshold
        // `window_to_advertise` applies, so the update is never held back
        // while the ACK that carries it could already open the window.
        let threshold = (self.rcv.buf.capacity() / 2).min(self.path.our_mss).max(1);
        grow > 0 && grow as usize >= threshold
    }

    /// Bytes ready to read.
    pub fn recv_queue(&self) -> usize {
        self.rcv.buf.readable()
    }

    /// Whether data is ready to read.
    pub fn can_recv(&self) -> bool {
        self.rcv.buf.readable() > 0
    }

    /// Whether the peer closed its side and every byte has been read.
    pub fn recv_eof(&self) -> bool {
        self.rcv.fin_received && self.rcv.buf.readable() == 0
    }

    /// Shuts down the write side: a FIN follows the queued data
    /// (RFC 9293 §3.10.4). Reading continues.
    pub fn shutdown_write(&mut self) {
        if self.snd.fin_queued {
            return;
        }
        match self.state {
            State::SynSent => self.enter_closed(),
            // RFC 9293 §3.10.4: in SYN-RECEIVED the FIN waits until the
            // handshake completes (the ACK of our SYN then moves the
            // connection straight to FIN-WAIT-1).
            State::SynReceived => self.snd.fin_queued = true,
            State::Established => {
                self.snd.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.snd.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
    }

    /// Closes the connection. Unread received data makes this an abort
    /// (RST), as RFC 2525 §2.17 recommends and Linux does.
    pub fn close(&mut self, now: Instant) {
        if self.rcv.buf.readable() > 0 && self.state.is_synchronized() {
            self.abort();
            return;
        }
        self.closed_by_user = true;
        self.shutdown_write();
        if self.state == State::FinWait2 {
            self.arm_fin_wait2(now);
        }
    }

    /// An orphaned connection waits in FIN-WAIT-2 for the peer's FIN at
    /// most [`TcpConfig::fin_wait2_timeout`] (Linux's `tcp_fin_timeout`);
    /// RFC 9293 would wait forever, which lets a peer pin memory.
    fn arm_fin_wait2(&mut self, now: Instant) {
        if self.closed_by_user && self.state == State::FinWait2 {
            self.timers.time_wait = Some(now + self.config.fin_wait2_timeout);
        }
    }

    /// Fits the segment size to the path MTU; returns whether it shrank.
    fn apply_path_mtu(&mut self) -> bool {
        let mss = self.path.syn_mss.min(self.path.pmtu.mtu() - 40);
        let shrank = mss < self.path.peer_mss;
        if mss != self.path.peer_mss {
            self.path.peer_mss = mss;
            self.cc.set_mss(self.mss());
        }
        shrank
    }

    /// The memory this connection's buffers hold: the send ring's
    /// allocation, what received data keeps alive, and RACK's records of
    /// the segments in flight.
    pub fn memory(&self) -> usize {
        self.snd.buf.memory() + self.rcv.buf.memory() + self.rec.rack.memory()
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
    /// 552 was reported; see [`crate::transport::tcp::pmtu`]).
    pub fn dont_fragment(&self) -> bool {
        self.path.pmtu.dont_fragment()
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
            self.pending.rst = true;
        }
        self.error.get_or_insert(TcpError::ConnectionAborted);
        self.enter_closed();
    }

    /// SYN-ACKs retransmitted so far, while the handshake of a passive
    /// open is not complete (0 otherwise).
    pub fn syn_ack_retries(&self) -> u32 {
        if self.state == State::SynReceived {
            self.timers.retries
        } else {
            0
        }
    }

    /// Whether the connection can be forgotten (closed and nothing left to
    /// send).
    pub fn is_finished(&self) -> bool {
        self.state == State::Closed && !self.pending.rst
    }

    /// The up to `len` payload bytes starting `offset` bytes into the send
    /// buffer (an [`Outgoing::payload_offset`]), in place: two slices, as
    /// the buffer is a ring (the second is empty unless it wraps). A
    /// caller copies them straight into the frame it builds.
    pub fn payload(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        self.snd.buf.slices(offset, len)
    }
}
