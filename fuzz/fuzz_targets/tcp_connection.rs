//! One TCP connection ([`Connection`], sans-IO) driven by a fuzzed peer.
//!
//! The input first configures the connection (active or passive open,
//! buffer sizes, options on both sides), and the handshake completes.
//! Then each step is one of: a segment from the peer, a user call (send,
//! recv, close, shutdown, abort, options), a clock advance with the
//! timers run, or an ICMP error. Segment fields are chosen relative to
//! what the connection last sent (its RCV.NXT, its highest sequence
//! number, the peer's last ACK) most of the time, so that they land in
//! or near the windows, and absolutely otherwise. Every segment the
//! connection wants to send is taken after each step.
//!
//! Checked after every step, beyond "no panic":
//! - the bytes received are the peer's stream, byte for byte, whatever
//!   overlaps and reorderings delivered them ([`stream_byte`]), and no
//!   byte is read twice or past the peer's FIN;
//! - each segment sent carries the bytes the application wrote at its
//!   sequence numbers, never past what was written, from the right
//!   ports; a FIN only after a shutdown or close, after the last byte;
//! - `poll_transmit` runs dry within a bound, and `poll_at` does not stay
//!   "now" after the timers ran and everything due was sent;
//! - from `TcpInfo`: cwnd and MSS positive, bytes in flight at most the
//!   unacknowledged data plus SYN and FIN, send and receive queues within
//!   their buffers;
//! - states only move forward (RFC 9293 §3.3.2's diagram), never from
//!   the active-close branch to the passive one or back, and a shut-down
//!   write side stays shut; end of stream, once seen, stays.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use netstrata::buf::Lent;
use netstrata::internet::IcmpErrorKind;
use netstrata::internet::icmpv4::DstUnreachable;
use netstrata::time::{Duration, Instant};
use netstrata::transport::tcp::scoreboard::MAX_SACK_RANGES;
use netstrata::transport::tcp::{
    CongestionAlgorithm, Connection, SeqNumber, State, TcpConfig, TcpFlags, TcpRepr,
};
use netstrata_fuzz::{Input, stream_byte, time_step_millis};

const LOCAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 49152);
const REMOTE: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80);
/// Our initial sequence number: near the wrap, so that wrapping is
/// exercised by every run that moves a few kilobytes.
const ISS: SeqNumber = SeqNumber(0xffff_f000);
/// Buffer sizes to pick from: tiny ones make full windows, zero windows
/// and persist probes common.
const BUFFERS: [usize; 4] = [1024, 8 * 1024, 64 * 1024, 256 * 1024];
const MTUS: [usize; 4] = [1500, 576, 9000, 100];
/// Most bytes of payload in one fuzzed segment.
const MAX_PAYLOAD: usize = 4096;

/// The harness's view of both ends, kept from what it sent and saw.
struct Peer {
    now: Instant,
    /// The peer's initial sequence number.
    irs: SeqNumber,
    /// RCV.NXT as the connection last announced it (its last ACK).
    conn_ack: SeqNumber,
    /// The highest sequence number the connection has sent, plus one.
    conn_snd_max: SeqNumber,
    /// The highest acknowledgment the peer has sent.
    peer_acked: SeqNumber,
    /// The peer's timestamp clock.
    peer_ts: u32,
    /// The last TSval the connection sent.
    conn_tsval: u32,
    /// Bytes the application has written (stream offsets 0..app_sent).
    app_sent: u64,
    /// Bytes the application has read.
    app_read: u64,
    /// The application has shut down its write side (or closed).
    shut: bool,
    /// End of stream was seen.
    eof: bool,
    state: State,
}

fn rank(s: State) -> u8 {
    match s {
        State::SynSent => 0,
        State::SynReceived => 1,
        State::Established => 2,
        State::FinWait1 | State::CloseWait => 3,
        State::FinWait2 | State::Closing | State::LastAck => 4,
        State::TimeWait => 5,
        State::Closed => 6,
    }
}

fn active_close(s: State) -> bool {
    matches!(
        s,
        State::FinWait1 | State::FinWait2 | State::Closing | State::TimeWait
    )
}

fn passive_close(s: State) -> bool {
    matches!(s, State::CloseWait | State::LastAck)
}

fn check_transition(from: State, to: State) {
    if from == to {
        return;
    }
    assert!(rank(to) > rank(from), "state went from {from} to {to}");
    let crossed =
        (active_close(from) && passive_close(to)) || (passive_close(from) && active_close(to));
    assert!(!crossed, "state went from {from} to {to}");
}

impl Peer {
    /// Takes every segment the connection wants to send now, checking each.
    fn drain(&mut self, conn: &mut Connection) {
        // Every segment carries at least a byte or a flag or an ACK: a
        // buffer's worth of full segments, one for each hole between the
        // ranges a peer may SACK (however small its SACKs made them), and a
        // margin bound it.
        let bound = 64 + MAX_SACK_RANGES + 2 * conn.config().send_buffer / conn.mss().max(1);
        let mut sent = 0;
        while let Some(out) = conn.poll_transmit(self.now) {
            sent += 1;
            if tracing() {
                eprintln!("   out: {}", out.repr);
            }
            assert!(
                sent <= bound,
                "poll_transmit did not run dry in {bound} segments"
            );
            self.check_outgoing(conn, &out.repr, out.payload_offset);
        }
    }

    fn check_outgoing(&mut self, conn: &Connection, repr: &TcpRepr, offset: usize) {
        assert_eq!(repr.src_port, LOCAL.port());
        assert_eq!(repr.dst_port, REMOTE.port());
        let seq = repr.seq_number;
        if let Some(ack) = repr.ack_number {
            self.conn_ack = ack;
        }
        if let Some((tsval, _)) = repr.timestamp {
            self.conn_tsval = tsval;
        }
        if repr.flags.contains(TcpFlags::RST) {
            return;
        }
        let end = seq.wrapping_add(repr.segment_len() as u32);
        if end - self.conn_snd_max > 0 {
            self.conn_snd_max = end;
        }
        // Stream offset of the first payload byte (SYN takes ISS).
        let first = seq.wrapping_distance(ISS + 1);
        if repr.payload_len > 0 {
            assert!(!repr.flags.contains(TcpFlags::SYN), "data on a SYN");
            assert!(
                u64::from(first) + repr.payload_len as u64 <= self.app_sent,
                "sent bytes {first}..+{} never written ({} were)",
                repr.payload_len,
                self.app_sent
            );
            let (a, b) = conn.payload(offset, repr.payload_len);
            assert_eq!(
                a.len() + b.len(),
                repr.payload_len,
                "payload not in the send buffer"
            );
            for (i, &b) in a.iter().chain(b).enumerate() {
                let k = first.wrapping_add(i as u32);
                assert_eq!(b, stream_byte(k), "sent byte {k} is wrong");
            }
        }
        if repr.flags.contains(TcpFlags::FIN) {
            assert!(self.shut, "FIN without a shutdown or close");
            let fin_at = u64::from(first) + repr.payload_len as u64;
            assert_eq!(fin_at, self.app_sent, "FIN not after the last byte written");
        }
    }

    /// Checks what the public accessors say after a step.
    fn check(&mut self, conn: &Connection) {
        let info = conn.info();
        assert!(info.cwnd > 0, "cwnd is zero");
        assert!(info.mss > 0, "MSS is zero");
        let config = conn.config();
        assert!(
            conn.send_queue() <= config.send_buffer,
            "send queue past its buffer"
        );
        assert!(
            conn.recv_queue() <= config.recv_buffer,
            "receive queue past its buffer"
        );
        assert!(
            info.bytes_in_flight <= conn.send_queue() + 2,
            "{} bytes in flight, {} unacknowledged",
            info.bytes_in_flight,
            conn.send_queue()
        );
        assert!(
            conn.send_queue() as u64 <= self.app_sent,
            "more queued than written"
        );
        let state = conn.state();
        check_transition(self.state, state);
        self.state = state;
        if self.shut {
            assert!(
                !state.can_send(),
                "write side open again after shutdown ({state})"
            );
        }
        if self.eof {
            assert!(conn.recv_eof(), "end of stream went away");
        }
        self.eof = conn.recv_eof();
    }

    /// Runs the timers and sends until nothing is due now, and checks
    /// that `poll_at` then points at the future (or nowhere).
    fn settle(&mut self, conn: &mut Connection) {
        for _ in 0..4 {
            self.drain(conn);
            match conn.poll_at(self.now) {
                Some(t) if t <= self.now => conn.on_timer(self.now),
                _ => return,
            }
        }
        self.drain(conn);
        if let Some(t) = conn.poll_at(self.now) {
            assert!(
                t > self.now,
                "poll_at stays at {t} (now {}) after the timers ran, in {}",
                self.now,
                conn.state()
            );
        }
    }

    /// What follows every step: settle, then check.
    fn settle_and_check(&mut self, conn: &mut Connection) {
        self.settle(conn);
        self.check(conn);
    }

    /// Reads up to `max` bytes and checks them against the peer's stream.
    fn read(&mut self, conn: &mut Connection, max: usize, zero_copy: bool) {
        let data = if zero_copy {
            match conn.recv_bytes(max) {
                Ok(b) => b.to_vec(),
                _ => return,
            }
        } else {
            let mut buf = vec![0u8; max];
            match conn.recv(&mut buf, &mut Lent::new(4)) {
                Ok(n) => {
                    buf.truncate(n);
                    buf
                }
                Err(_) => return,
            }
        };
        if !data.is_empty() {
            assert!(!self.eof, "data read after end of stream");
        }
        for (i, &b) in data.iter().enumerate() {
            let k = (self.app_read + i as u64) as u32;
            assert_eq!(b, stream_byte(k), "received byte {k} is wrong");
        }
        self.app_read += data.len() as u64;
    }

    /// Writes up to `n` bytes of our stream.
    fn write(&mut self, conn: &mut Connection, n: usize) {
        let data: Vec<u8> = (0..n as u64)
            .map(|i| stream_byte((self.app_sent + i) as u32))
            .collect();
        let room = conn.send_capacity();
        if let Ok(written) = conn.send(&data) {
            assert!(
                written <= n && written <= room,
                "wrote {written} of {n}, room {room}"
            );
            self.app_sent += written as u64;
        }
    }

    /// A segment from the peer, its fields read from `input`.
    /// A segment from the input, its payload, and the size of the buffer
    /// the payload is a slice of.
    fn segment(&self, input: &mut Input) -> (TcpRepr, Bytes, usize) {
        let modes = input.u8();
        let seq = match modes & 3 {
            0 => self.conn_ack.wrapping_add(u32::from(input.u16())),
            1 => self
                .conn_ack
                .wrapping_add(u32::from(input.u16()).wrapping_neg()),
            2 => self.conn_ack,
            _ => SeqNumber(input.u32()),
        };
        let ack = match (modes >> 2) & 3 {
            0 => None,
            1 => Some(self.peer_acked.wrapping_add(u32::from(input.u8()))),
            2 => Some(
                self.conn_snd_max
                    .wrapping_add(u32::from(input.u16()).wrapping_neg()),
            ),
            _ => Some(SeqNumber(input.u32())),
        };
        // ACK is not a flag of TcpRepr; the other seven are.
        let flags = TcpFlags::from_bits(input.u8()).difference(TcpFlags::ACK);
        let options = input.u8();
        let mut repr = TcpRepr {
            src_port: REMOTE.port(),
            dst_port: LOCAL.port(),
            seq_number: seq,
            ack_number: ack,
            flags,
            window_len: input.u16(),
            ..TcpRepr::default()
        };
        if options & 1 != 0 {
            let step = input.u8();
            // Mostly forward, sometimes back (PAWS).
            let tsval = if step & 0x80 == 0 {
                self.peer_ts.wrapping_add(u32::from(step))
            } else {
                self.peer_ts.wrapping_sub(u32::from(step & 0x7f))
            };
            repr.timestamp = Some((tsval, self.conn_tsval));
        }
        let blocks = usize::from((options >> 1) & 3);
        for slot in repr.sack_ranges.iter_mut().take(blocks) {
            let left = self.peer_acked.wrapping_add(u32::from(input.u16()));
            *slot = Some((left, left.wrapping_add(u32::from(input.u16()))));
        }
        if options & 0x08 != 0 {
            repr.max_seg_size = Some(input.u16());
        }
        if options & 0x10 != 0 {
            repr.window_scale = Some(input.u8());
        }
        repr.sack_permitted = options & 0x20 != 0;
        let len = usize::from(input.u16()) % (MAX_PAYLOAD + 1);
        let len = if options & 0x40 != 0 { len } else { len % 64 };
        repr.payload_len = len;
        // The peer's stream: byte k sits at IRS + 1 + k.
        let first = seq.wrapping_distance(self.irs + 1);
        let payload: Vec<u8> = (0..len as u32)
            .map(|i| stream_byte(first.wrapping_add(i)))
            .collect();
        // With options bit 0x80, a slice of a 64 KiB buffer (a reassembled
        // datagram), so the copy-out and the memory accounting run too.
        let truesize = len + if options & 0x80 != 0 { 65536 } else { 0 };
        (repr, Bytes::from(payload), truesize)
    }

    /// Hands a segment to the connection and records what the peer said.
    fn deliver(&mut self, conn: &mut Connection, repr: &TcpRepr, payload: Bytes, truesize: usize) {
        if let Some(ack) = repr.ack_number
            && ack - self.peer_acked > 0
            && self.conn_snd_max - ack >= 0
        {
            self.peer_acked = ack;
        }
        if let Some((tsval, _)) = repr.timestamp
            && tsval.wrapping_sub(self.peer_ts) as i32 > 0
        {
            self.peer_ts = tsval;
        }
        let _ = conn.handle_segment(self.now, repr, payload, truesize);
    }
}

/// The connection's options from two bytes of input.
fn config(a: u8, b: u8) -> TcpConfig {
    TcpConfig {
        send_buffer: BUFFERS[usize::from(a >> 3) & 3],
        recv_buffer: BUFFERS[usize::from(a >> 5) & 3],
        nodelay: a & 2 != 0,
        congestion: match (a & 4 != 0, b & 0x40 != 0) {
            (_, true) => CongestionAlgorithm::Bbr,
            (true, false) => CongestionAlgorithm::NewReno,
            (false, false) => CongestionAlgorithm::Cubic,
        },
        pacing: b & 0x80 != 0,
        keepalive: (a & 0x80 != 0).then(|| Duration::from_secs(10)),
        keepalive_interval: Duration::from_secs(5),
        keepalive_probes: 3,
        window_scaling: b & 1 == 0,
        timestamps: b & 2 == 0,
        sack: b & 4 == 0,
        user_timeout: (b & 8 != 0).then(|| Duration::from_secs(20)),
        ..TcpConfig::default()
    }
}

/// The peer's SYN (or SYN-ACK) options from the input.
fn syn_options(input: &mut Input, repr: &mut TcpRepr, peer_ts: u32) {
    let o = input.u8();
    if o & 1 == 0 {
        repr.max_seg_size = Some(input.u16());
    }
    if o & 2 == 0 {
        repr.window_scale = Some(input.u8());
    }
    repr.sack_permitted = o & 4 == 0;
    if o & 8 == 0 {
        repr.timestamp = Some((peer_ts, 0));
    }
    repr.window_len = input.u16();
}

fn handshake(input: &mut Input) -> Option<(Connection, Peer)> {
    let (a, b) = (input.u8(), input.u8());
    let config = config(a, b);
    let mtu = MTUS[usize::from(b >> 4) & 3];
    let irs = SeqNumber(input.u32());
    let peer_ts = input.u32();
    let mut peer = Peer {
        now: Instant::from_secs(1000),
        irs,
        conn_ack: irs + 1,
        conn_snd_max: ISS,
        peer_acked: ISS + 1,
        peer_ts,
        conn_tsval: 0,
        app_sent: 0,
        app_read: 0,
        shut: false,
        eof: false,
        state: State::SynSent,
    };
    let mut syn = TcpRepr {
        src_port: REMOTE.port(),
        dst_port: LOCAL.port(),
        seq_number: irs,
        flags: TcpFlags::SYN,
        ..TcpRepr::default()
    };
    syn_options(input, &mut syn, peer_ts);
    let ts_offset = input.u32();
    let mut conn = if a & 1 == 0 {
        let mut conn = Connection::connect(peer.now, config, LOCAL, REMOTE, ISS, mtu, ts_offset);
        peer.drain(&mut conn);
        peer.check(&conn);
        // The SYN-ACK.
        syn.ack_number = Some(ISS + 1);
        if let Some((tsval, _)) = syn.timestamp {
            syn.timestamp = Some((tsval, peer.conn_tsval));
        }
        peer.deliver(&mut conn, &syn, Bytes::new(), 0);
        conn
    } else {
        peer.state = State::SynReceived;
        let mut conn =
            Connection::accept(peer.now, config, LOCAL, REMOTE, ISS, mtu, ts_offset, &syn);
        peer.drain(&mut conn);
        peer.check(&conn);
        // The ACK of the SYN-ACK.
        let ack = TcpRepr {
            src_port: REMOTE.port(),
            dst_port: LOCAL.port(),
            seq_number: irs + 1,
            ack_number: Some(ISS + 1),
            window_len: syn.window_len,
            timestamp: syn.timestamp.map(|(tsval, _)| (tsval, peer.conn_tsval)),
            ..TcpRepr::default()
        };
        peer.deliver(&mut conn, &ack, Bytes::new(), 0);
        conn
    };
    peer.settle(&mut conn);
    peer.check(&conn);
    Some((conn, peer))
}

/// Whether to print each step and the connection's whole state, to
/// study a crash: set `NETSTRATA_FUZZ_TRACE=1` and run the binary on it.
fn tracing() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("NETSTRATA_FUZZ_TRACE").is_some())
}

fn step(input: &mut Input, conn: &mut Connection, peer: &mut Peer) {
    let op = input.u8();
    if tracing() {
        eprintln!("-- at {}: op {op:#04x} (kind {})", peer.now, op % 16);
    }
    match op % 16 {
        // Segments are the most common step.
        0..=6 => {
            let (repr, payload, truesize) = peer.segment(input);
            if tracing() {
                eprintln!("   in: {repr}");
            }
            peer.deliver(conn, &repr, payload, truesize);
        }
        7 | 8 => {
            // At most 16 KiB a call: more only slows each run down; a few
            // calls fill the largest buffer.
            let n = usize::from(input.u16()) % (16 * 1024 + 1);
            peer.write(conn, n);
        }
        9 | 10 => {
            let n = usize::from(input.u16());
            peer.read(conn, n, op & 0x10 != 0);
        }
        11 => {
            peer.now += Duration::from_millis(time_step_millis(input.u8()));
            if conn.poll_at(peer.now).is_some_and(|t| t <= peer.now) {
                conn.on_timer(peer.now);
            }
        }
        12 => {
            // Close or shut down (a close with unread data aborts).
            peer.shut = true;
            if op & 0x10 != 0 {
                conn.close(peer.now);
            } else {
                conn.shutdown_write();
            }
        }
        13 => {
            let kind = match input.u8() % 4 {
                0 => IcmpErrorKind::FragmentationNeeded { mtu: input.u16() },
                1 => IcmpErrorKind::Unreachable(DstUnreachable::PortUnreachable),
                2 => IcmpErrorKind::Unreachable(DstUnreachable::from(input.u8())),
                _ => IcmpErrorKind::TimeExceeded(input.u8().into()),
            };
            let seq = peer.peer_acked.wrapping_add(u32::from(input.u16()));
            conn.on_icmp_error(peer.now, kind, seq);
        }
        14 => {
            conn.set_nodelay(op & 0x10 != 0);
            let idle =
                (op & 0x20 != 0).then(|| Duration::from_millis(time_step_millis(input.u8())));
            conn.set_keepalive(peer.now, idle.filter(|d| !d.is_zero()));
        }
        _ => {
            if op & 0xf0 == 0xf0 {
                peer.shut = true;
                conn.abort();
            }
        }
    }
    if tracing() {
        eprintln!("   {conn:?}");
    }
    peer.settle_and_check(conn);
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let Some((mut conn, mut peer)) = handshake(&mut input) else {
        return;
    };
    while !input.is_empty() {
        step(&mut input, &mut conn, &mut peer);
    }
});
