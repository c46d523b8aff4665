//! Shared by `tests/tcp_sim.rs`, `examples/tcp_goodput.rs` and
//! `benches/tcp.rs`: hosts on the in-memory switch behind seeded fault
//! injectors ([`Impairments`], [`pair`]), a position-dependent byte
//! pattern ([`fill`], [`check`]), and drivers: [`connect`], [`open_many`]
//! (many connections to one listener at a bounded SYN rate) and
//! [`exchange`], which moves streams both ways on any number of
//! connections at once, checks every byte and sees the connections
//! closed; [`run_pair`] is one whole seeded run.
//!
//! Nothing here reads the wall clock: runs are exactly repeatable for a
//! seed, so a failing seed printed by a test is a regression test.
#![allow(dead_code)]

use std::fmt;
use std::net::SocketAddrV4;

use netstrata::link::{
    Device, DeviceCaps, EthernetAddress, FaultConfig, FaultInjector, MAX_SUPER_SEGMENT,
    MemoryNetwork, PcapWriter, Segmenter,
};
use netstrata::sim::{HostId, Simulation};
use netstrata::transport::tcp::{State, TcpConfig, TcpError, TcpHandle, TcpInfo, TcpLayerStats};
use netstrata::{Duration, Instant, Interface, InterfaceConfig};

/// What the path between the two hosts does to every frame, per direction
/// (end to end: each frame crosses the sender's transmit lane and the
/// receiver's receive lane, and the rates here are split between them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairments {
    /// Probability that a frame is lost on its way.
    pub loss: f64,
    /// Probability that a frame is duplicated (on each of its two lanes,
    /// so a few frames arrive three or four times).
    pub duplicate: f64,
    /// Probability that a frame is held back `reorder_delay` (and
    /// overtaken).
    pub reorder: f64,
    /// Extra delay of a reordered frame.
    pub reorder_delay: Duration,
    /// Probability that a frame has a bit flipped (caught by a checksum).
    pub corrupt: f64,
    /// One-way delay.
    pub delay: Duration,
    /// Extra one-way delay of up to `jitter` (the sum of two uniform
    /// halves, one per lane; reorders frames closer together than this).
    pub jitter: Duration,
    /// A bottleneck of this many bytes per second on the sender's transmit
    /// lane, with a drop-tail queue of `buffer` bytes (none by default:
    /// frames leave at once and only the windows limit the rate).
    pub rate: Option<u64>,
    /// The bottleneck's queue in bytes.
    pub buffer: usize,
    /// Each host's device segments TCP super-segments in software
    /// (`Segmenter`, in front of the faults): the stacks hand down
    /// super-segments and the faults strike their segments.
    pub segmentation: bool,
}

impl Impairments {
    /// A clean path with `one_way` delay.
    pub fn clean(one_way: Duration) -> Impairments {
        Impairments {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            corrupt: 0.0,
            delay: one_way,
            jitter: Duration::ZERO,
            rate: None,
            buffer: 0,
            segmentation: false,
        }
    }

    /// `self` with each host's device segmenting TCP super-segments.
    pub fn with_segmentation(self) -> Impairments {
        Impairments {
            segmentation: true,
            ..self
        }
    }

    /// `self` behind a bottleneck of `rate` bytes per second whose queue
    /// holds `buffer` bytes.
    pub fn with_bottleneck(self, rate: u64, buffer: usize) -> Impairments {
        Impairments {
            rate: Some(rate),
            buffer,
            ..self
        }
    }

    /// `loss` plus every other fault: 1% duplication, 1% reordering by
    /// 5 ms, 0.5% corruption, 10 ms one-way delay with 2 ms jitter.
    pub fn havoc(loss: f64) -> Impairments {
        Impairments {
            loss,
            duplicate: 0.01,
            reorder: 0.01,
            reorder_delay: Duration::from_millis(5),
            corrupt: 0.005,
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(2),
            rate: None,
            buffer: 0,
            segmentation: false,
        }
    }

    /// The configurations of a host's transmit and receive lanes. Every
    /// frame crosses the sender's transmit lane and the receiver's receive
    /// lane, so an event of probability `p` per path gets `1 - sqrt(1 - p)`
    /// per lane, which compounds to exactly `p`, and delays are halved.
    /// Corruption is applied on the receive lane only, so that a frame has
    /// at most one bit flipped: two flips can cancel in the Internet
    /// checksum (the same bit of two 16-bit words, one set and one
    /// cleared), which no TCP can detect and which a real link's FCS would
    /// have caught.
    pub fn lanes(&self) -> (FaultConfig, FaultConfig) {
        let split = |p: f64| 1.0 - (1.0 - p).sqrt();
        let tx = FaultConfig::default()
            .with_loss(split(self.loss))
            .with_duplicate(split(self.duplicate))
            .with_reorder(split(self.reorder), self.reorder_delay)
            .with_delay(self.delay / 2)
            .with_jitter(self.jitter / 2)
            // Never drop for want of queue space: loss is what `loss` says.
            .with_max_queue(1 << 20);
        let rx = tx.clone().with_corrupt(self.corrupt);
        let tx = match self.rate {
            Some(rate) => tx.with_rate(rate, self.buffer),
            None => tx,
        };
        (tx, rx)
    }
}

impl fmt::Display for Impairments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loss {:.1}%, dup {:.1}%, reorder {:.1}% by {:?}, corrupt {:.2}%, delay {:?} + jitter {:?}",
            self.loss * 100.0,
            self.duplicate * 100.0,
            self.reorder * 100.0,
            self.reorder_delay,
            self.corrupt * 100.0,
            self.delay,
            self.jitter
        )?;
        if let Some(rate) = self.rate {
            write!(f, ", bottleneck {rate} B/s with {} B of queue", self.buffer)?;
        }
        if self.segmentation {
            write!(f, ", TCP segmentation in the devices")?;
        }
        Ok(())
    }
}

/// Address of host `n`: 192.0.2.n (TEST-NET-1).
pub fn addr(n: u8) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(192, 0, 2, n)
}

/// Adds host 192.0.2.`n` to `net`, behind a fault injector seeded from
/// `seed` if `path` is given; its stack is seeded from `seed` too (ISNs,
/// ephemeral ports) and has TCP options `tcp`.
pub fn add_host(
    sim: &mut Simulation,
    net: &MemoryNetwork,
    n: u8,
    seed: u64,
    path: Option<&Impairments>,
    tcp: &TcpConfig,
) -> HostId {
    add_host_with(sim, net, n, seed, path, |cfg| cfg.tcp = tcp.clone())
}

/// As [`add_host`], with the interface configuration adjusted by `tweak`.
pub fn add_host_with(
    sim: &mut Simulation,
    net: &MemoryNetwork,
    n: u8,
    seed: u64,
    path: Option<&Impairments>,
    tweak: impl FnOnce(&mut InterfaceConfig),
) -> HostId {
    let port = net.attach();
    let segmented = path.is_some_and(|p| p.segmentation);
    let caps = DeviceCaps {
        segmentation: if segmented { MAX_SUPER_SEGMENT } else { 0 },
        ..port.capabilities()
    };
    let mut cfg = InterfaceConfig::new(
        EthernetAddress::local(u32::from(n)),
        format!("192.0.2.{n}/24").parse().unwrap(),
    )
    .with_seed(mix(seed ^ u64::from(n)));
    tweak(&mut cfg);
    let iface = Interface::new(cfg, caps);
    let device: Box<dyn Device + Send> = match path {
        Some(p) => {
            let (tx, rx) = p.lanes();
            Box::new(
                FaultInjector::new(port, mix(seed.wrapping_add(u64::from(n) << 32)))
                    .with_rx(rx)
                    .with_tx(tx),
            )
        }
        None => Box::new(port),
    };
    let device: Box<dyn Device + Send> = if segmented {
        Box::new(Segmenter::new(device))
    } else {
        device
    };
    // Set TCP_SIM_PCAP=prefix to record what each host's stack sends and
    // receives (after the faults) to prefix.N.pcap, for tshark.
    let device = match std::env::var("TCP_SIM_PCAP") {
        Ok(prefix) => {
            let file = std::fs::File::create(format!("{prefix}.{n}.pcap")).expect("pcap file");
            Box::new(PcapWriter::new(device, std::io::BufWriter::new(file), 0))
        }
        Err(_) => device,
    };
    let device = if FRAME_DIGEST.with(|d| d.borrow().is_some()) {
        Box::new(PcapWriter::new(device, DigestSink, 0))
    } else {
        device
    };
    sim.add_host(iface, device)
}

thread_local! {
    /// The digest of every frame recorded on this thread since
    /// [`start_frame_digest`], if recording.
    static FRAME_DIGEST: std::cell::RefCell<Option<std::hash::DefaultHasher>> =
        const { std::cell::RefCell::new(None) };
}

/// From now on, hosts added on this thread feed every frame they send and
/// receive, with its virtual time (as pcap records), into one digest. A
/// change that should not change behaviour (a refactor) must leave the
/// digest of the same runs unchanged.
pub fn start_frame_digest() {
    FRAME_DIGEST.with(|d| *d.borrow_mut() = Some(std::hash::DefaultHasher::new()));
}

/// The digest so far ([`start_frame_digest`]), if recording.
pub fn frame_digest() -> Option<u64> {
    use std::hash::Hasher;
    FRAME_DIGEST.with(|d| d.borrow().as_ref().map(Hasher::finish))
}

/// A pcap destination that feeds the thread's frame digest.
struct DigestSink;

impl std::io::Write for DigestSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::hash::Hasher;
        FRAME_DIGEST.with(|d| {
            if let Some(h) = d.borrow_mut().as_mut() {
                h.write(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hosts 192.0.2.1 and 192.0.2.2, both with options `tcp`, on a path with
/// `path`'s impairments (none if `None`).
pub fn pair(
    seed: u64,
    path: Option<&Impairments>,
    tcp: &TcpConfig,
) -> (Simulation, HostId, HostId) {
    let net = MemoryNetwork::new(1500);
    let mut sim = Simulation::new();
    let a = add_host(&mut sim, &net, 1, seed, path, tcp);
    let b = add_host(&mut sim, &net, 2, seed, path, tcp);
    (sim, a, b)
}

/// SplitMix64's output function: a bijective mix of a 64-bit word.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes bytes `offset..offset + buf.len()` of stream `salt`: byte `i` is
/// byte `i % 8` of `mix(salt + i / 8)`; `mix` is a bijection, so no two
/// 8-byte words of a stream are alike and misplaced data cannot go
/// unnoticed.
pub fn fill(salt: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let word = mix(salt.wrapping_add(pos / 8)).to_le_bytes();
        let start = (pos % 8) as usize;
        let n = (8 - start).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&word[start..start + n]);
        i += n;
        pos += n as u64;
    }
}

/// Checks `data` against bytes `offset..` of stream `salt`; the stream
/// position of the first wrong byte if any. `scratch` is reused.
pub fn check(salt: u64, offset: u64, data: &[u8], scratch: &mut Vec<u8>) -> Result<(), u64> {
    scratch.resize(data.len(), 0);
    fill(salt, offset, scratch);
    if scratch[..] == *data {
        return Ok(());
    }
    let at = data.iter().zip(scratch.iter()).position(|(a, b)| a != b);
    Err(offset + at.unwrap_or(0) as u64)
}

/// Host `server` listens on `port` (backlog 16) and `client` connects;
/// returns (client end, server end), or `None` if no connection within
/// `timeout` of virtual time. Like an application, the client tries again
/// (from a new port) when a connect times out: on a very lossy path all
/// seven SYNs, or their SYN-ACKs, can be lost.
pub fn connect(
    sim: &mut Simulation,
    client: HostId,
    server: HostId,
    port: u16,
    timeout: Duration,
) -> Option<(TcpHandle, TcpHandle)> {
    let server_addr = SocketAddrV4::new(sim.iface(server).ipv4_addr(), port);
    let l = sim
        .iface(server)
        .tcp()
        .listen(server_addr, 16)
        .expect("listen");
    let deadline = sim.now() + timeout;
    let mut result = None;
    'attempts: while sim.now() < deadline {
        let c = sim
            .iface(client)
            .tcp()
            .connect(server_addr)
            .expect("connect");
        let local = sim.iface(client).tcp().local_addr(c).unwrap();
        let mut accepted = None;
        let ok = sim.run_while_not(deadline - sim.now(), |s| {
            while accepted.is_none() {
                let Ok(h) = s.iface(server).tcp().accept(l) else {
                    break;
                };
                if s.iface(server).tcp().peer_addr(h) == Ok(local) {
                    accepted = Some(h);
                } else {
                    // A connection of an abandoned attempt.
                    let _ = s.iface(server).tcp().abort(h);
                }
            }
            let state = s.iface(client).tcp().state(c);
            state == Ok(State::Closed) || accepted.is_some() && state == Ok(State::Established)
        });
        match sim.iface(client).tcp().state(c) {
            Ok(State::Closed) => {
                let error = sim.iface(client).tcp().error(c);
                log::debug!("connect to {server_addr} failed ({error:?}); trying again");
                let _ = sim.iface(client).tcp().close(c);
                continue 'attempts;
            }
            _ if ok => result = Some((c, accepted.unwrap())),
            _ => {}
        }
        break;
    }
    sim.iface(server)
        .tcp()
        .close_listener(l)
        .expect("the listener is open");
    result
}

/// One end of a connection in an [`exchange`]: what it sends and what it
/// expects.
#[derive(Debug, Clone)]
pub struct End {
    /// Its host.
    pub host: HostId,
    /// Its connection.
    pub conn: TcpHandle,
    /// Bytes it sends (then shuts down its write side).
    pub send_len: u64,
    /// Pattern of the stream it sends.
    pub send_salt: u64,
    /// Bytes sent so far.
    pub sent: u64,
    /// Bytes received and checked so far.
    pub received: u64,
    /// Bytes it expects (then the peer's FIN).
    pub recv_len: u64,
    /// Pattern of the stream it expects.
    pub recv_salt: u64,
    shut: bool,
    finished: bool,
}

impl End {
    /// An end that sends `send_len` bytes of stream `send_salt` and
    /// expects `recv_len` bytes of stream `recv_salt`.
    pub fn new(host: HostId, conn: TcpHandle, send: (u64, u64), recv: (u64, u64)) -> End {
        End {
            host,
            conn,
            send_len: send.0,
            send_salt: send.1,
            sent: 0,
            received: 0,
            recv_len: recv.0,
            recv_salt: recv.1,
            shut: false,
            finished: false,
        }
    }
}

/// How an exchange failed.
#[derive(Debug, Clone, PartialEq)]
pub enum FailureKind {
    /// Not finished by the deadline (how many ends were not).
    Stuck {
        /// Ends that had not sent, received and seen EOF.
        unfinished: usize,
    },
    /// A byte differed from the pattern, at this stream position.
    Corrupt {
        /// Stream position of the first wrong byte.
        at: u64,
    },
    /// More bytes than were sent arrived.
    TooLong,
    /// A call on the connection failed (it was reset or timed out).
    Error(String),
    /// The data arrived, but the connection did not close properly
    /// (both ends should reach TIME-WAIT or CLOSED).
    NotClosed,
    /// The connection was not established in time.
    NoConnection,
    /// A host sent IP fragments: some segment was larger than the MTU.
    Fragmented {
        /// Fragments it sent.
        fragments: u64,
    },
}

/// A failed exchange, with everything needed to understand it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong.
    pub kind: FailureKind,
    /// Which end (index into the exchange's ends) it happened at.
    pub end: usize,
    /// Virtual time at failure.
    pub at: Instant,
    /// Bytes (sent, received) by the end and its peer.
    pub progress: [(u64, u64); 2],
    /// The connection of the end and of its peer, if the handles are
    /// still valid.
    pub info: [Option<TcpInfo>; 2],
    /// The TCP layer counters of the end's host and of its peer's.
    pub layer: [TcpLayerStats; 2],
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:?} at end {}, at {}", self.kind, self.end, self.at)?;
        for (i, who) in ["end", "peer"].iter().enumerate() {
            writeln!(
                f,
                "  {who}: sent {} received {}\n    info {:?}\n    layer {:?}",
                self.progress[i].0, self.progress[i].1, self.info[i], self.layer[i]
            )?;
        }
        Ok(())
    }
}

fn failure(sim: &mut Simulation, ends: &[End], end: usize, kind: FailureKind) -> Box<Failure> {
    // Ends come in pairs: 2k and 2k + 1 are the two ends of a connection.
    let pair = [end, end ^ 1].map(|i| i.min(ends.len() - 1));
    Box::new(Failure {
        kind,
        end,
        at: sim.now(),
        progress: pair.map(|i| (ends[i].sent, ends[i].received)),
        info: pair.map(|i| sim.iface(ends[i].host).tcp().info(ends[i].conn).ok()),
        layer: pair.map(|i| sim.iface(ends[i].host).counters().tcp),
    })
}

/// Buffers reused by [`exchange`].
struct Scratch {
    chunk: Vec<u8>,
    check: Vec<u8>,
}

/// One end's application work at the current instant: queue what fits,
/// shut down when all is queued, read and check what arrived.
fn serve(sim: &mut Simulation, e: &mut End, scratch: &mut Scratch) -> Result<(), FailureKind> {
    let tcp = sim.iface(e.host).tcp();
    while e.sent < e.send_len && tcp.send_capacity(e.conn) > 0 {
        let n = ((e.send_len - e.sent) as usize).min(scratch.chunk.len());
        fill(e.send_salt, e.sent, &mut scratch.chunk[..n]);
        let k = tcp
            .send(e.conn, &scratch.chunk[..n])
            .map_err(|err| FailureKind::Error(err.to_string()))?;
        e.sent += k as u64;
        if k < n {
            break;
        }
    }
    if e.sent == e.send_len && !e.shut {
        tcp.shutdown(e.conn)
            .map_err(|err| FailureKind::Error(err.to_string()))?;
        e.shut = true;
    }
    loop {
        match tcp.recv_bytes(e.conn, usize::MAX) {
            Ok(data) if !data.is_empty() => {
                if e.received + data.len() as u64 > e.recv_len {
                    return Err(FailureKind::TooLong);
                }
                check(e.recv_salt, e.received, &data, &mut scratch.check)
                    .map_err(|at| FailureKind::Corrupt { at })?;
                e.received += data.len() as u64;
            }
            Ok(_) | Err(TcpError::WouldBlock) => break,
            Err(err) => return Err(FailureKind::Error(err.to_string())),
        }
    }
    if e.shut && e.received == e.recv_len && tcp.recv_eof(e.conn) {
        e.finished = true;
    }
    Ok(())
}

/// Moves every end's stream at once until each end has sent everything,
/// received everything and seen its peer's FIN, then lets the closes
/// finish. Ends come in pairs (2k and 2k + 1 are the two ends of one
/// connection), and all pairs join the same two hosts. Every received
/// byte is checked against the pattern, and neither host may have sent an
/// IP fragment. Fails if this has not happened `timeout` (virtual time)
/// after the start. Returns the virtual time the data took (to the last
/// EOF).
pub fn exchange(
    sim: &mut Simulation,
    ends: &mut [End],
    timeout: Duration,
) -> Result<Duration, Box<Failure>> {
    let start = sim.now();
    let deadline = start + timeout;
    let mut scratch = Scratch {
        chunk: vec![0u8; 64 * 1024],
        check: Vec::new(),
    };
    let mut active: Vec<usize> = (0..ends.len()).collect();
    while !active.is_empty() {
        for &i in &active {
            if let Err(kind) = serve(sim, &mut ends[i], &mut scratch) {
                return Err(failure(sim, ends, i, kind));
            }
        }
        active.retain(|&i| !ends[i].finished);
        if active.is_empty() {
            break;
        }
        if sim.now() >= deadline {
            let kind = FailureKind::Stuck {
                unfinished: active.len(),
            };
            return Err(failure(sim, ends, active[0], kind));
        }
        sim.step(deadline - sim.now());
    }
    let took = sim.now() - start;
    // Every end sent its FIN and read its peer's: the closes must
    // complete (the last ACKs may need retransmitted FINs).
    let closed = |sim: &mut Simulation, e: &End| {
        matches!(
            sim.iface(e.host).tcp().state(e.conn),
            Ok(State::TimeWait | State::Closed) | Err(_)
        )
    };
    let mut open: Vec<usize> = (0..ends.len()).collect();
    let ok = sim.run_while_not(deadline.saturating_duration_since(sim.now()), |s| {
        open.retain(|&i| !closed(s, &ends[i]));
        open.is_empty()
    });
    if !ok {
        return Err(failure(sim, ends, open[0], FailureKind::NotClosed));
    }
    // TCP sizes its segments to the path: no datagram needs fragmenting.
    for i in 0..ends.len().min(2) {
        let fragments = sim.iface(ends[i].host).counters().ip.tx_fragments;
        if fragments > 0 {
            return Err(failure(sim, ends, i, FailureKind::Fragmented { fragments }));
        }
    }
    Ok(took)
}

/// The outcome of one seeded run of [`run_pair`].
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Virtual time from the established connection to the end of the
    /// data.
    pub took: Duration,
    /// Each end's connection statistics at the end (client, server).
    pub info: [TcpInfo; 2],
}

/// Two fresh hosts with `seed` on `path`, one connection, `len` bytes
/// from client to server and `len_back` from server to client at once,
/// within `timeout` of virtual time.
pub fn run_pair(
    seed: u64,
    path: Option<&Impairments>,
    tcp: &TcpConfig,
    len: u64,
    len_back: u64,
    timeout: Duration,
) -> Result<Outcome, Box<Failure>> {
    let (mut sim, a, b) = pair(seed, path, tcp);
    let Some((c, s)) = connect(&mut sim, a, b, 80, timeout) else {
        let layer = [a, b].map(|h| sim.iface(h).counters().tcp);
        return Err(Box::new(Failure {
            kind: FailureKind::NoConnection,
            end: 0,
            at: sim.now(),
            progress: [(0, 0); 2],
            info: [None, None],
            layer,
        }));
    };
    let up = mix(seed ^ 0x5550);
    let down = mix(seed ^ 0xd0e1);
    let mut ends = [
        End::new(a, c, (len, up), (len_back, down)),
        End::new(b, s, (len_back, down), (len, up)),
    ];
    let took = exchange(&mut sim, &mut ends, timeout)?;
    let info = [0, 1].map(|i| {
        sim.iface(ends[i].host)
            .tcp()
            .info(ends[i].conn)
            .expect("handle still valid")
    });
    Ok(Outcome { took, info })
}

/// Opens `n` connections from host `client` to a listener on `server:port`
/// with the given backlog, never more than `max_pending` connects
/// outstanding (the SYN rate the server can take), accepting as they
/// come. Returns (client end, server end) per connection, or the number
/// established when `timeout` ran out.
pub fn open_many(
    sim: &mut Simulation,
    (client, server): (HostId, HostId),
    port: u16,
    n: usize,
    backlog: usize,
    max_pending: usize,
    timeout: Duration,
) -> Result<Vec<(TcpHandle, TcpHandle)>, usize> {
    let server_addr = SocketAddrV4::new(sim.iface(server).ipv4_addr(), port);
    let l = sim
        .iface(server)
        .tcp()
        .listen(server_addr, backlog)
        .expect("listen");
    let deadline = sim.now() + timeout;
    let mut clients: Vec<TcpHandle> = Vec::with_capacity(n);
    let mut by_port = std::collections::HashMap::with_capacity(n);
    let mut servers: Vec<Option<TcpHandle>> = Vec::with_capacity(n);
    let (mut pending, mut established, mut accepted) = (Vec::new(), 0, 0);
    while established < n || accepted < n {
        let now = sim.now();
        if now >= deadline {
            sim.iface(server)
                .tcp()
                .close_listener(l)
                .expect("the listener is open");
            return Err(established.min(accepted));
        }
        while clients.len() < n && pending.len() < max_pending {
            let c = sim
                .iface(client)
                .tcp()
                .connect(server_addr)
                .expect("connect");
            let local = sim.iface(client).tcp().local_addr(c).unwrap();
            by_port.insert(local.port(), clients.len());
            pending.push(clients.len());
            clients.push(c);
            servers.push(None);
        }
        sim.step(Duration::from_millis(10));
        pending.retain(|&i| {
            let state = sim.iface(client).tcp().state(clients[i]);
            assert!(
                matches!(state, Ok(State::SynSent | State::Established)),
                "connection {i} failed: {state:?}, error {:?}",
                sim.iface(client).tcp().error(clients[i])
            );
            let up = state == Ok(State::Established);
            established += usize::from(up);
            !up
        });
        while let Ok(s) = sim.iface(server).tcp().accept(l) {
            let peer = sim.iface(server).tcp().peer_addr(s).unwrap();
            let i = by_port[&peer.port()];
            assert!(servers[i].replace(s).is_none(), "accepted twice");
            accepted += 1;
        }
    }
    sim.iface(server)
        .tcp()
        .close_listener(l)
        .expect("the listener is open");
    Ok(clients
        .into_iter()
        .zip(servers)
        .map(|(c, s)| (c, s.expect("accepted")))
        .collect())
}
