//! A packetdrill-style harness: scripts of segments in and out of one
//! [`TcpSockets`], checked field by field against a virtual clock.
//!
//! The stack under test is host 192.0.2.1; the script plays the peer,
//! 192.0.2.2, and talks to it through a fake internet layer that records
//! every IPv4 payload the stack sends. A script is text, one event a line:
//!
//! ```text
//! 0     connect                         // a user call
//! 0     > S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 3>
//! +50   < S. 0:0(0) ack 1 win 65535 <mss 1460,TS val 700 ecr 0>
//! +0    > . 1:1(0) ack 1 <TS val 50 ecr 700>
//! +0    state ESTABLISHED
//! ```
//!
//! **Time** is in milliseconds of virtual time: `N` is absolute (the script
//! starts at 0), `+N` is relative to the previous line, `Ns` / `+Ns` are
//! seconds, and `*` (outbound lines only) means "whenever the next segment
//! goes out". Before each line the clock advances to its time, firing
//! every timer on the way at its exact deadline (the sockets' `poll_at`).
//!
//! **Segments** are written as packetdrill writes them: `<` is a segment
//! the peer sends (injected), `>` one the stack must send. Then the flags
//! (`S`yn, `F`in, `R`st, `P`sh, `U`rg, `E`ce, c`W`r, and `.` for ACK),
//! `start:end(len)`, `ack N`, `win N` (the raw 16-bit field), and options
//! in angle brackets: `mss N`, `sackOK`, `wscale N`, `TS val N ecr N`,
//! `sack L:R L:R ...` (`nop` and `eol` are accepted and ignored). A
//! trailing `badcsum` corrupts an injected segment's checksum.
//!
//! Sequence numbers are **relative**, as in packetdrill: the stack's
//! numbers count from its ISS (learned from its first SYN or SYN-ACK; one
//! with another ISS starts a new connection on the same ports), the
//! peer's from [`PEER_ISN`] (chosen just below 2^32, so every script also
//! crosses the sequence number wrap). Timestamps the stack sends count
//! from its timestamp offset, so `TS val 50` means "sent at 50 ms"; the
//! peer's are written as sent. SACK blocks and ACKs use the numbering of
//! the side they acknowledge. A connection whose ISS is not known (a
//! closed port) uses absolute numbers.
//!
//! **Matching** an outbound line: it must be the next segment the stack
//! sent, sent exactly at the line's time, with exactly these flags,
//! sequence numbers and length; `ack`, `win` and `<options>` are checked
//! when given (the options then must match exactly: none missing, none
//! extra; `TS val *` is a wildcard). Payload bytes are always checked
//! against what the user sent. `> none` asserts that nothing was sent up
//! to its time. Any segment sent that no outbound line accounts for fails
//! the script at the next line (and at the end of [`Script::run`]).
//!
//! **Injected** segments carry `len` bytes of a known pattern at their
//! stream offset; `win` defaults to the previous injected segment's
//! (65535 at first) and options to none.
//!
//! **User calls** act on the current connection, the one between our port
//! and the peer's (8080 and 50000 unless changed with `local N` / `peer N`,
//! which also choose the ports outbound lines expect, and may come between
//! two segments sent at once):
//! `connect`, `listen [backlog]`, `accept` / `accept none`,
//! `send N [= M]` (M: how much is accepted), `recv N [= M]`, `recv eof`,
//! `shutdown`, `close`, `abort`, `nodelay`, `keepalive MS|off`,
//! `icmp fragneeded MTU SEQ` and `icmp portunreach SEQ` (a router's or
//! host's ICMP error quoting our segment at relative SEQ), and the checks
//! `state NAME` (as RFC 9293 spells it, or `gone` for a released handle),
//! `error NAME|none`, `conns N` (connections in any state), `df on|off`
//! (the last segment's Don't Fragment flag) and `event yes|no` (whether
//! the connection is on the table's event list, which is then emptied).

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

use netstrata::buf::{MAX_HEADROOM, PacketBuf};
use netstrata::internet::icmpv4::DstUnreachable;
use netstrata::internet::route::{NoRoute, RouteDecision};
use netstrata::internet::{IcmpError, IcmpErrorKind, IpMeta, IpSendError, IpSender, Protocol};
use netstrata::link::ChecksumOffload;
use netstrata::transport::tcp::{
    ListenerHandle, SeqNumber, TcpConfig, TcpError, TcpEvent, TcpFlags, TcpHandle, TcpLimits,
    TcpPacket, TcpRepr, TcpSockets,
};
use netstrata::{Duration, Instant};

/// The stack's address.
pub const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The scripted peer's address.
pub const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The peer's initial sequence number: 1280 below the wrap.
pub const PEER_ISN: u32 = 0xFFFF_FB00;
/// Link MTU: our MSS is 1460.
pub const MTU: usize = 1500;

/// Byte `i` of what the user sends.
pub fn ours(i: u64) -> u8 {
    (i.wrapping_mul(7) ^ (i >> 8)) as u8
}

/// Byte `i` of what the peer sends.
pub fn theirs(i: u64) -> u8 {
    (i.wrapping_mul(13).wrapping_add(5) ^ (i >> 9)) as u8
}

/// The internet layer below the sockets: records what is sent.
#[derive(Default)]
struct FakeIp {
    sent: Vec<(Instant, Ipv4Addr, Ipv4Addr, Vec<u8>)>,
    /// Whether the last segment sent had Don't Fragment.
    last_dont_frag: Option<bool>,
}

impl IpSender for FakeIp {
    fn route(&self, dst: Ipv4Addr) -> Result<RouteDecision, NoRoute> {
        Ok(RouteDecision {
            next_hop: dst,
            source: US,
            broadcast: false,
        })
    }
    fn mtu(&self) -> usize {
        MTU
    }
    fn checksum_offload(&self) -> ChecksumOffload {
        ChecksumOffload::default()
    }
    fn alloc(&mut self, capacity: usize) -> PacketBuf {
        PacketBuf::with_headroom(MAX_HEADROOM, capacity)
    }
    fn recycle(&mut self, _packet: PacketBuf) {}
    fn send(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: Protocol,
        packet: PacketBuf,
        dont_frag: bool,
    ) -> Result<(), IpSendError> {
        assert_eq!(protocol, Protocol::Tcp);
        self.last_dont_frag = Some(dont_frag);
        self.sent.push((now, src, dst, packet.data().to_vec()));
        Ok(())
    }
}

/// What the script knows of one connection (by our port, the peer's port).
#[derive(Debug, Default)]
struct Conn {
    /// Our ISS, once seen.
    iss: Option<u32>,
    /// Our timestamp clock at time 0, once seen.
    ts_base: Option<u32>,
    handle: Option<TcpHandle>,
    /// Bytes the user has queued (offset of the next `send`).
    app_sent: u64,
    /// Bytes the user has read.
    app_read: u64,
    /// Window of the last injected segment.
    peer_win: Option<u16>,
}

/// A segment the stack sent, not yet matched.
#[derive(Debug)]
struct Sent {
    at: Instant,
    repr: TcpRepr,
    payload: Vec<u8>,
}

/// Options as a script writes them; every field `None`/empty is absent.
#[derive(Debug, Default, Clone, PartialEq)]
struct Opts {
    mss: Option<u16>,
    wscale: Option<u8>,
    sack_ok: bool,
    /// `(val, ecr)`, `None` inside for a wildcard.
    ts: Option<(Option<i64>, Option<i64>)>,
    sacks: Vec<(i64, i64)>,
}

/// One segment line, parsed.
#[derive(Debug)]
struct SegLine {
    flags: TcpFlags,
    ack_flag: bool,
    seq: i64,
    end: i64,
    len: usize,
    ack: Option<i64>,
    win: Option<u16>,
    opts: Option<Opts>,
    bad_checksum: bool,
}

/// A running script: the sockets under test, the clock, and what has been
/// seen.
pub struct Script {
    /// The sockets under test (for checks a script line cannot express).
    pub tcp: TcpSockets,
    ip: FakeIp,
    /// The virtual clock.
    pub now: Instant,
    /// Time of the previous line.
    last: Instant,
    config: TcpConfig,
    local_port: u16,
    peer_port: u16,
    conns: HashMap<(u16, u16), Conn>,
    listeners: HashMap<u16, ListenerHandle>,
    queue: VecDeque<Sent>,
    trace: Vec<String>,
    /// Injected segments are delivered in allocations of at least this
    /// many bytes (as a reassembled datagram would be); 0 for their size.
    pub pad_to: usize,
}

impl Default for Script {
    fn default() -> Self {
        Script::new(TcpConfig::default())
    }
}

fn millis(t: Instant) -> String {
    let us = t.total_micros();
    if us % 1000 == 0 {
        format!("{}", us / 1000)
    } else {
        format!("{}.{:03}", us / 1000, us % 1000)
    }
}

/// `x - base` as a signed relative number.
fn rel(x: u32, base: u32) -> i64 {
    i64::from(x.wrapping_sub(base) as i32)
}

fn abs(x: i64, base: u32) -> u32 {
    base.wrapping_add(x as u32)
}

impl Script {
    /// Sockets with `config` for every connection, at time 0.
    pub fn new(config: TcpConfig) -> Script {
        Script::with_limits(config, TcpLimits::default())
    }

    /// As [`Script::new`], with layer-wide `limits`.
    pub fn with_limits(config: TcpConfig, limits: TcpLimits) -> Script {
        Script {
            tcp: TcpSockets::new(
                US,
                MTU,
                config.clone(),
                limits,
                netstrata::rand::KeyedRng::from_seed(0x5eed),
            ),
            ip: FakeIp::default(),
            now: Instant::ZERO,
            last: Instant::ZERO,
            config,
            local_port: 8080,
            peer_port: 50000,
            conns: HashMap::new(),
            listeners: HashMap::new(),
            queue: VecDeque::new(),
            trace: Vec::new(),
            pad_to: 0,
        }
    }

    /// The current connection's handle.
    #[track_caller]
    pub fn handle(&self) -> TcpHandle {
        self.conns
            .get(&(self.local_port, self.peer_port))
            .and_then(|c| c.handle)
            .expect("no handle for the current connection (connect or accept first)")
    }

    /// Runs a script; panics with the offending line and a trace of the
    /// segments so far on the first mismatch.
    #[track_caller]
    pub fn run(&mut self, script: &str) {
        self.run_lines(script);
        self.collect();
        if let Some(s) = self.queue.front() {
            let msg = format!(
                "end of script: unexpected segment at {}: {}",
                millis(s.at),
                self.render_out(&s.repr)
            );
            self.fail(&msg);
        }
    }

    /// Runs a script, then takes every segment sent and not matched by an
    /// outbound line; returns how many there were (for tests that count
    /// rather than script what goes out).
    #[track_caller]
    pub fn run_and_count_sent(&mut self, script: &str) -> usize {
        self.run_lines(script);
        self.collect();
        let n = self.queue.len();
        self.queue.clear();
        n
    }

    #[track_caller]
    fn run_lines(&mut self, script: &str) {
        for (n, raw) in script.lines().enumerate() {
            let line = raw.split("//").next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if let Err(e) = self.line(line) {
                self.fail(&format!("line {}: `{line}`: {e}", n + 1));
            }
        }
    }

    #[track_caller]
    fn fail(&self, msg: &str) -> ! {
        let from = self.trace.len().saturating_sub(60);
        panic!(
            "{msg}\n--- trace (time ms, segments relative) ---\n{}\n",
            self.trace[from..].join("\n")
        );
    }

    fn line(&mut self, line: &str) -> Result<(), String> {
        let (time, rest) = line.split_once(char::is_whitespace).ok_or("no event")?;
        let rest = rest.trim();
        let at = self.parse_time(time)?;
        if let Some(body) = rest.strip_prefix('>') {
            let body = body.trim();
            if body == "none" {
                let at = at.ok_or("`> none` needs a time")?;
                self.advance(at)?;
                self.last = at;
                return self.expect_quiet();
            }
            let seg = parse_segment(body)?;
            self.expect(at, &seg, body)
        } else if let Some(body) = rest.strip_prefix('<') {
            let at = at.ok_or("`*` only for outbound segments")?;
            self.advance(at)?;
            self.last = at;
            self.expect_quiet()?;
            let seg = parse_segment(body.trim())?;
            self.inject(&seg);
            Ok(())
        } else {
            let at = at.ok_or("`*` only for outbound segments")?;
            self.advance(at)?;
            self.last = at;
            // Choosing the connection is no event: segments may be
            // pending across it.
            if !(rest.starts_with("peer ") || rest.starts_with("local ")) {
                self.expect_quiet()?;
            }
            self.trace.push(format!("{:>9}   {rest}", millis(at)));
            self.action(rest)?;
            self.dispatch();
            Ok(())
        }
    }

    fn parse_time(&self, t: &str) -> Result<Option<Instant>, String> {
        if t == "*" {
            return Ok(None);
        }
        let (relative, t) = match t.strip_prefix('+') {
            Some(t) => (true, t),
            None => (false, t),
        };
        let micros = if let Some(s) = t.strip_suffix('s') {
            let secs: f64 = s.parse().map_err(|_| format!("bad time `{t}`"))?;
            (secs * 1e6).round() as u64
        } else {
            let ms: f64 = t.parse().map_err(|_| format!("bad time `{t}`"))?;
            (ms * 1e3).round() as u64
        };
        let d = Duration::from_micros(micros);
        let at = if relative {
            self.last + d
        } else {
            Instant::ZERO + d
        };
        if at < self.now {
            return Err(format!(
                "time {} is before the clock ({})",
                millis(at),
                millis(self.now)
            ));
        }
        Ok(Some(at))
    }

    // ------------------------------------------------------------------
    // The clock.

    fn dispatch(&mut self) {
        self.tcp.dispatch(self.now, &mut self.ip);
        self.collect();
    }

    /// Runs every timer up to `to`, each at its deadline, then sets the
    /// clock to `to`.
    fn advance(&mut self, to: Instant) -> Result<(), String> {
        let mut spins = 0;
        loop {
            self.dispatch();
            match self.tcp.poll_at(self.now) {
                Some(t) if t <= self.now => {
                    spins += 1;
                    if spins > 1000 {
                        return Err(format!(
                            "busy loop at {}: poll_at keeps saying now",
                            millis(self.now)
                        ));
                    }
                }
                Some(t) if t <= to => {
                    spins = 0;
                    self.now = t;
                }
                _ => break,
            }
        }
        self.now = to;
        self.dispatch();
        Ok(())
    }

    /// Moves what the fake IP layer recorded onto the queue of unmatched
    /// segments.
    fn collect(&mut self) {
        for (at, src, dst, bytes) in std::mem::take(&mut self.ip.sent) {
            assert_eq!((src, dst), (US, PEER), "segment to a stranger");
            let packet = TcpPacket::new_checked(&bytes[..]).expect("we sent a truncated segment");
            let repr = TcpRepr::parse(&packet, US, PEER, true).expect("we sent a bad segment");
            let payload = packet.payload().to_vec();
            let conn = self
                .conns
                .entry((repr.src_port, repr.dst_port))
                .or_default();
            if repr.flags.contains(TcpFlags::SYN) && conn.iss != Some(repr.seq_number.0) {
                // A first SYN, or a new connection on the same ports.
                *conn = Conn {
                    iss: Some(repr.seq_number.0),
                    handle: conn.handle.take(),
                    ..Conn::default()
                };
            }
            if let Some((tsval, _)) = repr.timestamp
                && conn.ts_base.is_none()
            {
                conn.ts_base = Some(tsval.wrapping_sub(at.total_millis() as u32));
            }
            let line = format!("{:>9} > {}", millis(at), self.render_out(&repr));
            self.trace.push(line);
            self.queue.push_back(Sent { at, repr, payload });
        }
    }

    fn expect_quiet(&mut self) -> Result<(), String> {
        match self.queue.front() {
            None => Ok(()),
            Some(s) => Err(format!(
                "unexpected segment sent at {}: {}",
                millis(s.at),
                self.render_out(&s.repr)
            )),
        }
    }

    // ------------------------------------------------------------------
    // Segments.

    fn conn(&mut self) -> &mut Conn {
        self.conns
            .entry((self.local_port, self.peer_port))
            .or_default()
    }

    fn bases(&self, ports: (u16, u16)) -> (u32, u32) {
        let c = self.conns.get(&ports);
        (
            c.and_then(|c| c.iss).unwrap_or(0),
            c.and_then(|c| c.ts_base).unwrap_or(0),
        )
    }

    /// A segment the stack sent, in script syntax.
    fn render_out(&self, r: &TcpRepr) -> String {
        let (iss, ts) = self.bases((r.src_port, r.dst_port));
        render(r, iss, PEER_ISN, ts, 0)
    }

    fn render_in(&self, r: &TcpRepr) -> String {
        let (iss, ts) = self.bases((r.dst_port, r.src_port));
        render(r, PEER_ISN, iss, 0, ts)
    }

    fn inject(&mut self, seg: &SegLine) {
        let (local, peer) = (self.local_port, self.peer_port);
        let (iss, ts_base) = self.bases((local, peer));
        let conn = self.conn();
        let win = seg.win.or(conn.peer_win).unwrap_or(65535);
        conn.peer_win = Some(win);
        let opts = seg.opts.clone().unwrap_or_default();
        let mut sack_ranges = [None; 3];
        for (slot, (l, r)) in sack_ranges.iter_mut().zip(&opts.sacks) {
            *slot = Some((SeqNumber(abs(*l, iss)), SeqNumber(abs(*r, iss))));
        }
        let repr = TcpRepr {
            src_port: peer,
            dst_port: local,
            seq_number: SeqNumber(abs(seg.seq, PEER_ISN)),
            ack_number: seg
                .ack_flag
                .then(|| SeqNumber(abs(seg.ack.unwrap_or(0), iss))),
            flags: seg.flags,
            window_len: win,
            urgent_pointer: 0,
            max_seg_size: opts.mss,
            window_scale: opts.wscale,
            sack_permitted: opts.sack_ok,
            sack_ranges,
            timestamp: opts
                .ts
                .map(|(v, e)| (v.unwrap_or(0) as u32, abs(e.unwrap_or(0), ts_base))),
            payload_len: seg.len,
        };
        let hlen = repr.header_len();
        let mut bytes = vec![0u8; hlen + seg.len];
        let offset = (seg.seq - 1 + i64::from(seg.flags.contains(TcpFlags::SYN))).max(0) as u64;
        for (i, b) in bytes[hlen..].iter_mut().enumerate() {
            *b = theirs(offset + i as u64);
        }
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut bytes[..]),
            PEER,
            US,
            true,
        );
        if seg.bad_checksum {
            bytes[17] ^= 0x40;
        }
        let line = format!(
            "{:>9} < {}{}",
            millis(self.now),
            self.render_in(&repr),
            if seg.bad_checksum { " badcsum" } else { "" }
        );
        self.trace.push(line);
        let meta = IpMeta {
            src: PEER,
            dst: US,
            protocol: Protocol::Tcp,
            ttl: 64,
            broadcast: false,
            checksum_verified: false,
        };
        // In an allocation of `pad_to` bytes if asked: a segment that was
        // part of a large buffer (a reassembled datagram).
        let mut packet = PacketBuf::with_headroom(0, self.pad_to.max(bytes.len()));
        packet.extend_from_slice(&bytes);
        self.tcp.receive(self.now, &meta, packet, &mut self.ip);
        self.dispatch();
    }

    fn expect(&mut self, at: Option<Instant>, want: &SegLine, text: &str) -> Result<(), String> {
        match at {
            Some(at) => {
                self.advance(at)?;
                self.last = at;
            }
            None => {
                // Whenever the next segment goes out (within an hour).
                let limit = self.now + Duration::from_secs(3600);
                let mut steps = 0;
                while self.queue.is_empty() {
                    steps += 1;
                    match self.tcp.poll_at(self.now) {
                        Some(t) if t <= limit && steps < 10_000 => self.advance(t.max(self.now))?,
                        _ => return Err("nothing was sent".into()),
                    }
                }
            }
        }
        let Some(got) = self.queue.pop_front() else {
            return Err(format!("nothing sent by {}", millis(self.now)));
        };
        if at.is_none() {
            self.last = got.at;
        }
        let shown = self.render_out(&got.repr);
        let mut diffs = Vec::new();
        if let Some(at) = at
            && got.at != at
        {
            diffs.push(format!("sent at {} ms", millis(got.at)));
        }
        let (iss, ts_base) = self.bases((got.repr.src_port, got.repr.dst_port));
        let r = &got.repr;
        if r.src_port != self.local_port || r.dst_port != self.peer_port {
            diffs.push(format!("ports {} > {}", r.src_port, r.dst_port));
        }
        if r.flags != want.flags || r.ack_number.is_some() != want.ack_flag {
            diffs.push("flags".into());
        }
        if rel(r.seq_number.0, iss) != want.seq || r.payload_len != want.len {
            diffs.push("sequence numbers or length".into());
        }
        if let (Some(a), Some(w)) = (r.ack_number, want.ack)
            && rel(a.0, PEER_ISN) != w
        {
            diffs.push("ack".into());
        }
        if want.win.is_some_and(|w| w != r.window_len) {
            diffs.push("window".into());
        }
        if let Some(o) = &want.opts {
            let sacks: Vec<(i64, i64)> = r
                .sack_ranges
                .iter()
                .flatten()
                .map(|(a, b)| (rel(a.0, PEER_ISN), rel(b.0, PEER_ISN)))
                .collect();
            let ts_ok = match (o.ts, r.timestamp) {
                (None, None) => true,
                (Some((v, e)), Some((gv, ge))) => {
                    v.is_none_or(|v| v == rel(gv, ts_base)) && e.is_none_or(|e| e == i64::from(ge))
                }
                _ => false,
            };
            if o.mss != r.max_seg_size
                || o.wscale != r.window_scale
                || o.sack_ok != r.sack_permitted
                || !ts_ok
                || o.sacks != sacks
            {
                diffs.push("options".into());
            }
        }
        // The payload is what the user sent at this offset.
        let offset = rel(r.seq_number.0, iss) - 1;
        if r.payload_len > 0 && offset >= 0 {
            let expected: Vec<u8> = (0..r.payload_len)
                .map(|i| ours(offset as u64 + i as u64))
                .collect();
            if expected != got.payload {
                diffs.push("payload bytes".into());
            }
        }
        if diffs.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "expected `> {text}`\n             got `> {shown}` at {} ms ({} differ)",
                millis(got.at),
                diffs.join(", ")
            ))
        }
    }

    // ------------------------------------------------------------------
    // User calls.

    fn action(&mut self, text: &str) -> Result<(), String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let num = |i: usize| -> Result<u64, String> {
            words
                .get(i)
                .ok_or(format!("`{text}`: missing number"))?
                .parse::<u64>()
                .map_err(|_| format!("`{text}`: bad number"))
        };
        // `verb N = M`: M, or N if absent.
        let result = |n: u64| -> Result<u64, String> {
            match words.get(2) {
                Some(&"=") => num(3),
                None => Ok(n),
                _ => Err(format!("`{text}`: expected `= M`")),
            }
        };
        let now = self.now;
        let remote = SocketAddrV4::new(PEER, self.peer_port);
        let e = |e: TcpError| format!("{e:?}");
        match words[0] {
            "peer" => self.peer_port = num(1)? as u16,
            "local" => self.local_port = num(1)? as u16,
            "connect" => {
                let h = self
                    .tcp
                    .connect_with(remote, Some(self.local_port), self.config.clone())
                    .map_err(|e| format!("{e:?}"))?;
                *self.conn() = Conn {
                    handle: Some(h),
                    ..Conn::default()
                };
            }
            "listen" => {
                let backlog = if words.len() > 1 {
                    num(1)? as usize
                } else {
                    16
                };
                let l = self
                    .tcp
                    .listen_with(
                        SocketAddrV4::new(US, self.local_port),
                        backlog,
                        self.config.clone(),
                    )
                    .map_err(|e| format!("{e:?}"))?;
                self.listeners.insert(self.local_port, l);
            }
            "accept" => {
                let l = *self
                    .listeners
                    .get(&self.local_port)
                    .ok_or("no listener on this port")?;
                let got = self.tcp.accept(l);
                if words.get(1) == Some(&"none") {
                    return match got {
                        Err(_) => Ok(()),
                        Ok(h) => Err(format!("accepted {:?}", self.tcp.peer_addr(h))),
                    };
                }
                let h = got.map_err(|e| format!("accept: {e:?}"))?;
                let peer = self.tcp.peer_addr(h).map_err(e)?;
                if peer != remote {
                    return Err(format!("accepted {peer}, not {remote}"));
                }
                self.conn().handle = Some(h);
            }
            "send" => {
                let n = num(1)?;
                let want = result(n)?;
                let h = self.handle();
                let from = self.conn().app_sent;
                let data: Vec<u8> = (from..from + n).map(ours).collect();
                let k = self.tcp.send(h, &data).map_err(e)? as u64;
                self.conn().app_sent += k;
                if k != want {
                    return Err(format!("send took {k} bytes, not {want}"));
                }
            }
            "recv" if words.get(1) == Some(&"eof") => {
                if !self.tcp.recv_eof(self.handle()) {
                    return Err("not at end of stream".into());
                }
            }
            "recv" => {
                let n = num(1)?;
                let want = result(n)?;
                let h = self.handle();
                let mut buf = vec![0u8; n as usize];
                let k = self.tcp.recv(h, &mut buf).map_err(e)?;
                let from = self.conn().app_read;
                if k as u64 != want {
                    return Err(format!("recv returned {k} bytes, not {want}"));
                }
                for (i, b) in buf[..k].iter().enumerate() {
                    if *b != theirs(from + i as u64) {
                        return Err(format!("received byte {} is wrong", from + i as u64));
                    }
                }
                self.conn().app_read += k as u64;
            }
            "shutdown" => self.tcp.shutdown(self.handle()).map_err(e)?,
            "close" => self.tcp.close(self.handle()).map_err(e)?,
            "abort" => self.tcp.abort(self.handle()).map_err(e)?,
            "nodelay" => self.tcp.set_nodelay(self.handle(), true).map_err(e)?,
            "keepalive" => {
                let idle = match words.get(1) {
                    Some(&"off") => None,
                    _ => Some(Duration::from_millis(num(1)?)),
                };
                self.tcp.set_keepalive(self.handle(), idle).map_err(e)?;
            }
            "state" => {
                let want = words.get(1).ok_or("state of what?")?;
                let got = match self.tcp.state(self.handle()) {
                    Ok(s) => s.to_string(),
                    Err(TcpError::InvalidHandle) => "gone".to_string(),
                    Err(x) => format!("{x:?}"),
                };
                if got != *want {
                    return Err(format!("state is {got}"));
                }
            }
            "error" => {
                let want = words.get(1).ok_or("which error?")?;
                let got = match self.tcp.error(self.handle()).map_err(e)? {
                    Some(x) => format!("{x:?}"),
                    None => "none".to_string(),
                };
                if got != *want {
                    return Err(format!("error is {got}"));
                }
            }
            "icmp" if matches!(words.get(1), Some(&"fragneeded" | &"portunreach")) => {
                // `icmp fragneeded MTU SEQ`: a router's "fragmentation
                // needed" quoting our segment at SEQ (relative);
                // `icmp portunreach SEQ`: a host's "port unreachable".
                let (kind, seq) = if words[1] == "fragneeded" {
                    let mtu = num(2)? as u16;
                    (IcmpErrorKind::FragmentationNeeded { mtu }, num(3)? as u32)
                } else {
                    let unreachable = DstUnreachable::PortUnreachable;
                    (IcmpErrorKind::Unreachable(unreachable), num(2)? as u32)
                };
                let iss = self.conn().iss.ok_or("ISS not known yet")?;
                let mut quote = [0u8; 8];
                quote[..2].copy_from_slice(&self.local_port.to_be_bytes());
                quote[2..4].copy_from_slice(&self.peer_port.to_be_bytes());
                quote[4..].copy_from_slice(&iss.wrapping_add(seq).to_be_bytes());
                let error = IcmpError {
                    reporter: Ipv4Addr::new(198, 51, 100, 1),
                    kind,
                    protocol: Protocol::Tcp,
                    local_addr: US,
                    local_port: self.local_port,
                    remote_addr: PEER,
                    remote_port: self.peer_port,
                    transport_header: quote,
                };
                self.tcp.icmp_error(now, &error);
            }
            "event" => {
                // `event yes|no`: whether the connection is on the event
                // list (which this empties).
                let want = words.get(1) == Some(&"yes");
                let h = self.conn().handle.ok_or("no connection")?;
                let mut events = Vec::new();
                self.tcp.take_events(&mut events);
                let got = events.contains(&TcpEvent::Connection(h));
                if got != want {
                    return Err(format!("event list {events:?}"));
                }
            }
            "df" => {
                // `df on|off`: whether the last segment sent had DF set.
                let want = words.get(1) == Some(&"on");
                let got = self.ip.last_dont_frag.ok_or("nothing sent yet")?;
                if got != want {
                    return Err(format!("DF is {}", if got { "on" } else { "off" }));
                }
            }
            "conns" => {
                let n = num(1)? as usize;
                if self.tcp.connection_count() != n {
                    return Err(format!("{} connections", self.tcp.connection_count()));
                }
            }
            other => return Err(format!("unknown call `{other}`")),
        }
        Ok(())
    }
}

fn render(r: &TcpRepr, seq_base: u32, ack_base: u32, val_base: u32, ecr_base: u32) -> String {
    let mut s = String::new();
    for (f, c) in [
        (TcpFlags::SYN, 'S'),
        (TcpFlags::FIN, 'F'),
        (TcpFlags::RST, 'R'),
        (TcpFlags::PSH, 'P'),
        (TcpFlags::URG, 'U'),
        (TcpFlags::ECE, 'E'),
        (TcpFlags::CWR, 'W'),
    ] {
        if r.flags.contains(f) {
            s.push(c);
        }
    }
    if r.ack_number.is_some() {
        s.push('.');
    }
    let seq = rel(r.seq_number.0, seq_base);
    s += &format!(" {seq}:{}({})", seq + r.payload_len as i64, r.payload_len);
    if let Some(a) = r.ack_number {
        s += &format!(" ack {}", rel(a.0, ack_base));
    }
    s += &format!(" win {}", r.window_len);
    let mut opts = Vec::new();
    if let Some(m) = r.max_seg_size {
        opts.push(format!("mss {m}"));
    }
    if r.sack_permitted {
        opts.push("sackOK".into());
    }
    if let Some((v, e)) = r.timestamp {
        opts.push(format!(
            "TS val {} ecr {}",
            v.wrapping_sub(val_base),
            e.wrapping_sub(ecr_base)
        ));
    }
    if let Some(w) = r.window_scale {
        opts.push(format!("wscale {w}"));
    }
    let sacks: Vec<String> = r
        .sack_ranges
        .iter()
        .flatten()
        .map(|(a, b)| format!("{}:{}", rel(a.0, ack_base), rel(b.0, ack_base)))
        .collect();
    if !sacks.is_empty() {
        opts.push(format!("sack {}", sacks.join(" ")));
    }
    if !opts.is_empty() {
        s += &format!(" <{}>", opts.join(","));
    }
    s
}

fn parse_segment(text: &str) -> Result<SegLine, String> {
    let (text, bad_checksum) = match text.trim_end().strip_suffix("badcsum") {
        Some(t) => (t, true),
        None => (text, false),
    };
    let (head, opts, tail) = match text.find('<') {
        Some(i) => {
            let j = text[i..].find('>').ok_or("unclosed `<`")? + i;
            (&text[..i], Some(&text[i + 1..j]), &text[j + 1..])
        }
        None => (text, None, ""),
    };
    let mut words = head.split_whitespace();
    let flag_word = words.next().ok_or("no flags")?;
    let mut flags = TcpFlags::empty();
    let mut ack_flag = false;
    for c in flag_word.chars() {
        match c {
            'S' => flags.insert(TcpFlags::SYN),
            'F' => flags.insert(TcpFlags::FIN),
            'R' => flags.insert(TcpFlags::RST),
            'P' => flags.insert(TcpFlags::PSH),
            'U' => flags.insert(TcpFlags::URG),
            'E' => flags.insert(TcpFlags::ECE),
            'W' => flags.insert(TcpFlags::CWR),
            '.' => ack_flag = true,
            _ => return Err(format!("bad flag `{c}`")),
        }
    }
    let range = words.next().ok_or("no sequence range")?;
    let (seq, end, len) = parse_range(range)?;
    let mut seg = SegLine {
        flags,
        ack_flag,
        seq,
        end,
        len,
        ack: None,
        win: None,
        opts: None,
        bad_checksum,
    };
    let num = |w: Option<&str>| -> Result<i64, String> {
        w.ok_or("missing number")?
            .parse()
            .map_err(|_| "bad number".to_string())
    };
    while let Some(w) = words.next() {
        match w {
            "ack" => seg.ack = Some(num(words.next())?),
            "win" => seg.win = Some(num(words.next())? as u16),
            _ => return Err(format!("unexpected `{w}`")),
        }
    }
    if seg.ack.is_some() && !seg.ack_flag {
        return Err("`ack N` without the `.` flag".into());
    }
    if let Some(o) = opts {
        seg.opts = Some(parse_options(o)?);
    }
    if !tail.trim().is_empty() {
        return Err(format!("unexpected `{}`", tail.trim()));
    }
    Ok(seg)
}

/// `start:end(len)`.
fn parse_range(w: &str) -> Result<(i64, i64, usize), String> {
    let bad = || format!("bad range `{w}` (want start:end(len))");
    let (se, len) = w
        .strip_suffix(')')
        .ok_or_else(bad)?
        .split_once('(')
        .ok_or_else(bad)?;
    let (s, e) = se.split_once(':').ok_or_else(bad)?;
    let s: i64 = s.parse().map_err(|_| bad())?;
    let e: i64 = e.parse().map_err(|_| bad())?;
    let len: usize = len.parse().map_err(|_| bad())?;
    if e - s != len as i64 {
        return Err(format!("range `{w}`: end - start is not len"));
    }
    Ok((s, e, len))
}

fn parse_options(text: &str) -> Result<Opts, String> {
    let mut o = Opts::default();
    let wild = |w: Option<&str>| -> Result<Option<i64>, String> {
        match w {
            Some("*") => Ok(None),
            Some(n) => n.parse().map(Some).map_err(|_| format!("bad number `{n}`")),
            None => Err("missing number".into()),
        }
    };
    for item in text.split(',') {
        let words: Vec<&str> = item.split_whitespace().collect();
        match words.as_slice() {
            [] | ["nop"] | ["eol"] => {}
            ["mss", n] => o.mss = Some(n.parse().map_err(|_| "bad mss")?),
            ["wscale", n] => o.wscale = Some(n.parse().map_err(|_| "bad wscale")?),
            ["sackOK"] => o.sack_ok = true,
            ["TS", "val", v, "ecr", e] => o.ts = Some((wild(Some(v))?, wild(Some(e))?)),
            ["sack", blocks @ ..] => {
                for b in blocks {
                    let (l, r) = b.split_once(':').ok_or("bad sack block")?;
                    o.sacks.push((
                        l.parse().map_err(|_| "bad sack block")?,
                        r.parse().map_err(|_| "bad sack block")?,
                    ));
                }
            }
            _ => return Err(format!("bad option `{item}`")),
        }
    }
    Ok(o)
}
