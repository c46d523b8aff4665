//! Differential tests of the shortcuts in a connection's processing: two
//! connections run through the same lossy exchange, one allowed each
//! shortcut and one made to take the full path, must pass through the
//! same states, step for step.

use std::cell::Cell;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::Bytes;

use super::{Connection, Outgoing};
use crate::time::{Duration, Instant};
use crate::transport::tcp::congestion::CongestionAlgorithm;
use crate::transport::tcp::segment::TcpRepr;
use crate::transport::tcp::seq::SeqNumber;
use crate::transport::tcp::{State, TcpConfig, TcpError};

thread_local! {
    /// Makes [`Connection::ack_is_quiet`] say no: every ACK takes the
    /// full processing.
    pub(super) static FULL_ACK_PROCESSING: Cell<bool> = const { Cell::new(false) };
    /// How many ACKs [`Connection::ack_is_quiet`] let through.
    pub(super) static QUIET_ACKS: Cell<u64> = const { Cell::new(0) };
}

const A: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
const B: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80);

/// The byte at `offset` of a side's stream.
/// The data a read returned; `None` at end of stream or if nothing was
/// there yet. Any other error fails the test.
fn readable(r: Result<Bytes, TcpError>) -> Option<Bytes> {
    match r {
        Ok(data) if !data.is_empty() => Some(data),
        Ok(_) | Err(TcpError::WouldBlock) => None,
        Err(e) => panic!("recv: {e}"),
    }
}

fn stream_byte(side: usize, offset: u64) -> u8 {
    (offset.wrapping_mul(31) ^ (offset >> 7) ^ (side as u64 * 0x5a)) as u8
}

/// A SplitMix64 for the link's faults: the test's seed decides them.
struct Faults(u64);

impl Faults {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

struct InFlight {
    at: Instant,
    to: usize,
    repr: TcpRepr,
    payload: Bytes,
}

/// One run: `A` sends `bytes` to `B`, which sends `back` bytes to `A`,
/// over a link that drops `loss` percent of segments, duplicates some and
/// delays some past others. Returns a hash of both connections' full
/// state after every step, and what each side received.
fn run(seed: u64, loss: u64, bytes: u64, back: u64, config: &TcpConfig) -> (Vec<u64>, [u64; 2]) {
    let mut faults = Faults(seed);
    let mut now = Instant::from_millis(1000);
    let mut a = Connection::connect(now, config.clone(), A, B, SeqNumber(0xffff_0000), 1500, 7);
    let syn = a.poll_transmit(now).expect("a SYN").repr;
    let b = Connection::accept(now, config.clone(), B, A, SeqNumber(12345), 1500, 99, &syn);
    let mut conns = [a, b];
    let to_send = [bytes, back];
    let mut sent = [0u64; 2];
    let mut received = [0u64; 2];
    let mut link: Vec<InFlight> = Vec::new();
    let mut trace = Vec::new();
    let fingerprint = |conns: &[Connection; 2]| {
        let mut h = DefaultHasher::new();
        format!("{:?}", conns[0]).hash(&mut h);
        format!("{:?}", conns[1]).hash(&mut h);
        h.finish()
    };
    for _ in 0..200_000 {
        for (side, conn) in conns.iter_mut().enumerate() {
            while sent[side] < to_send[side] {
                let from = sent[side];
                let n = conn.send_with(|room| {
                    let n = room.len().min((to_send[side] - from) as usize);
                    for (i, b) in room[..n].iter_mut().enumerate() {
                        *b = stream_byte(side, from + i as u64);
                    }
                    n
                });
                let n = match n {
                    Ok(n) => n,
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => panic!("send: {e}"),
                };
                sent[side] += n as u64;
            }
            if sent[side] == to_send[side]
                && matches!(conn.state(), State::Established | State::CloseWait)
            {
                conn.shutdown_write();
            }
            if conn.poll_at(now).is_some_and(|t| t <= now) {
                conn.on_timer(now);
            }
            while let Some(Outgoing {
                repr,
                payload_offset,
                ..
            }) = conn.poll_transmit(now)
            {
                let (x, y) = conn.payload(payload_offset, repr.payload_len);
                let payload = Bytes::from([x, y].concat());
                if faults.chance(loss) {
                    continue;
                }
                let delay = if faults.chance(3) { 40 } else { 10 };
                let copies = if faults.chance(1) { 2 } else { 1 };
                for _ in 0..copies {
                    link.push(InFlight {
                        at: now + Duration::from_millis(delay),
                        to: 1 - side,
                        repr,
                        payload: payload.clone(),
                    });
                }
            }
            while let Some(data) = readable(conn.recv_bytes(usize::MAX)) {
                for (i, &byte) in data.iter().enumerate() {
                    let offset = received[side] + i as u64;
                    assert_eq!(byte, stream_byte(1 - side, offset), "byte {offset}");
                }
                received[side] += data.len() as u64;
            }
        }
        trace.push(fingerprint(&conns));
        if received == [back, bytes] && conns.iter().all(|c| c.recv_eof()) {
            break;
        }
        // The next event: the earliest segment due, or a timer.
        let next_segment = link.iter().map(|s| s.at).min();
        let next_timer = conns.iter().filter_map(|c| c.poll_at(now)).min();
        now = match (next_segment, next_timer) {
            (Some(s), Some(t)) => s.min(t),
            (s, t) => s.or(t).unwrap_or_else(|| {
                panic!(
                    "stuck: received {received:?} states {:?} {:?} eof {} {}",
                    conns[0].state(),
                    conns[1].state(),
                    conns[0].recv_eof(),
                    conns[1].recv_eof()
                )
            }),
        }
        .max(now);
        let (due, later): (Vec<_>, Vec<_>) = link.drain(..).partition(|s| s.at <= now);
        link = later;
        for s in due {
            let len = s.payload.len();
            let _ = conns[s.to].handle_segment(now, &s.repr, s.payload, len);
        }
    }
    (trace, received)
}

#[test]
fn the_quiet_ack_shortcut_changes_nothing() {
    let plain = TcpConfig {
        send_buffer: 64 * 1024,
        recv_buffer: 48 * 1024,
        ..TcpConfig::default()
    };
    let mut no_sack = plain.clone();
    no_sack.sack = false;
    no_sack.timestamps = false;
    let mut bbr = plain.clone();
    bbr.congestion = CongestionAlgorithm::Bbr;
    bbr.pacing = true;
    let configs = [plain, no_sack, bbr];
    let mut taken = 0;
    for seed in 0..8u64 {
        let config = &configs[seed as usize % configs.len()];
        let loss = [0, 1, 3, 8][seed as usize % 4];
        let back = if seed % 3 == 0 { 40_000 } else { 0 };
        QUIET_ACKS.set(0);
        FULL_ACK_PROCESSING.set(false);
        let (fast, got) = run(seed, loss, 300_000, back, config);
        let quiet = QUIET_ACKS.get();
        FULL_ACK_PROCESSING.set(true);
        let (full, got_full) = run(seed, loss, 300_000, back, config);
        FULL_ACK_PROCESSING.set(false);
        assert_eq!(got, [back, 300_000], "seed {seed}: not all delivered");
        assert_eq!(got_full, got, "seed {seed}");
        taken += quiet;
        let diverged = fast.iter().zip(&full).position(|(x, y)| x != y);
        assert_eq!(diverged, None, "seed {seed}, loss {loss}%: states differ");
        assert_eq!(fast.len(), full.len(), "seed {seed}");
    }
    assert!(taken > 1000, "the shortcut was taken only {taken} times");
}

/// ACKs a receiver sends for a bulk transfer, each data segment delivered
/// on its own and answered at once, when the sender's SYN carries `mss`
/// (or no MSS option, which leaves the receiver sending 536-byte
/// segments). Returns (data segments, ACKs).
fn acks_for_bulk(mss: Option<u16>) -> (u64, u64) {
    let config = TcpConfig::default();
    let mut now = Instant::from_millis(1000);
    let mut a = Connection::connect(now, config.clone(), A, B, SeqNumber(1), 1500, 7);
    let mut syn = a.poll_transmit(now).expect("a SYN").repr;
    syn.max_seg_size = mss;
    let mut b = Connection::accept(now, config, B, A, SeqNumber(2), 1500, 9, &syn);
    let (mut data, mut acks) = (0, 0);
    let mut to_b: Vec<(TcpRepr, Bytes)> = Vec::new();
    let mut sent = 0u64;
    for _ in 0..20_000 {
        now += Duration::from_micros(100);
        while sent < 2_000_000 {
            let n = a.send_with(|room| {
                room.fill(0x42);
                room.len()
            });
            let n = match n {
                Ok(n) => n,
                Err(TcpError::WouldBlock) => break,
                Err(e) => panic!("send: {e}"),
            };
            sent += n as u64;
        }
        while let Some(out) = a.poll_transmit(now) {
            let (x, y) = a.payload(out.payload_offset, out.repr.payload_len);
            to_b.push((out.repr, Bytes::from([x, y].concat())));
        }
        for (repr, payload) in to_b.drain(..) {
            if !payload.is_empty() && b.state() != State::SynReceived {
                data += 1;
            }
            let len = payload.len();
            let _ = b.handle_segment(now, &repr, payload, len);
            while let Some(out) = b.poll_transmit(now) {
                if out.repr.payload_len == 0 && b.state() == State::Established {
                    acks += 1;
                }
                let _ = a.handle_segment(now, &out.repr, Bytes::new(), 0);
            }
        }
        while readable(b.recv_bytes(usize::MAX)).is_some() {}
        if b.poll_at(now).is_some_and(|t| t <= now) {
            b.on_timer(now);
        }
        if a.poll_at(now).is_some_and(|t| t <= now) {
            a.on_timer(now);
        }
    }
    (data, acks)
}

#[test]
fn a_receiver_acknowledges_every_second_segment_whatever_it_may_send() {
    for mss in [Some(1460), None] {
        let (data, acks) = acks_for_bulk(mss);
        assert!(data > 1000, "{mss:?}: only {data} segments");
        assert!(
            acks * 10 <= data * 6,
            "{mss:?}: {acks} ACKs for {data} segments"
        );
    }
}
