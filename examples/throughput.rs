//! How fast is the data path? Two interfaces on an in-memory pair (MTU
//! 1500, checksums computed and verified in software), both polled from one
//! thread with the real clock, driven through the public API as a user
//! would drive them; every byte is checked. Prints one line of figures,
//! the same line `../shared/anchors/run.sh mem` prints for smoltcp:
//!
//! ```text
//! cargo run --release --example throughput -- [--bytes N] [--buffer B] [--copy] [--segmentation]
//! cargo run --release --example throughput -- --udp [--packets M] [--size S] [--copy]
//! cargo run --release --example throughput -- --threads [--bytes N]
//! cargo run --release --features tokio --example throughput -- --tokio [--bytes N]
//! ```
//!
//! - TCP bulk (default 512 MiB, 256 KiB socket buffers): the sender writes
//!   the data in place into the send buffer (`send_with`) and the receiver
//!   takes it without a copy (`recv_bytes`); under `--copy`, the calls a
//!   `Read`/`Write` user makes: `send` from its buffer, `recv` into one.
//!   Under `--segmentation` each port is wrapped in a
//!   [`netstrata::link::Segmenter`]: TCP hands down super-segments of up
//!   to 64 KiB, cut into frames in software at the device (Linux's GSO):
//!   fewer passes through the layers above, one more copy of every byte.
//! - UDP (`--udp`, default 5 million datagrams of 64 bytes): as many as
//!   the socket takes per call (`send_batch`, and `recv_batch` reading
//!   each in place), or one
//!   datagram per call (`send_to`, `recv_from`) under `--copy`; each
//!   datagram numbered and checked in order.
//! - TCP over threads (`--threads`): each interface run by a socket
//!   [`Runtime`] on its own thread, a sending and a receiving application
//!   thread using the blocking `TcpStream` (`write_all`, `read`), as a
//!   `std::net` user would; default socket buffers. Not the figure
//!   compared with smoltcp (four threads on the machine's cores), but what
//!   the socket API delivers.
//! - TCP on tokio (`--tokio`, feature `tokio`): both stacks driven by
//!   tasks of one current-thread runtime ([`netstrata::tokio`]), a writing
//!   and a reading task; default socket buffers.
//!
//! This program is the edge of the system, so it reads the wall clock; the
//! stack itself never does. Numbers from a debug build are meaningless.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant as WallClock;

use netstrata::blocking::{Runtime, TcpListener, TcpStream};
use netstrata::link::{Device, EthernetAddress, MemoryNetwork, MemoryPort, Segmenter};
use netstrata::transport::tcp::{State, TcpConfig, TcpError};
use netstrata::{Instant, Interface, InterfaceConfig};

const USAGE: &str = "usage: throughput [--bytes N] [--buffer B] [--copy] [--segmentation] \
     | --udp [--packets M] [--size S] [--copy] | --threads [--bytes N] | --tokio [--bytes N]";

/// One host: an interface on its port of the pair (or a device over it).
struct Host<D = MemoryPort> {
    iface: Interface,
    port: D,
}

impl<D: Device> Host<D> {
    fn new(n: u8, port: D, tcp: TcpConfig) -> Host<D> {
        let mut cfg = InterfaceConfig::new(
            EthernetAddress::local(u32::from(n)),
            format!("192.0.2.{n}/24").parse().expect("valid address"),
        );
        cfg.tcp = tcp;
        let iface = Interface::new(cfg, port.capabilities());
        Host { iface, port }
    }

    fn poll(&mut self, now: Instant) -> bool {
        self.iface.poll(now, &mut self.port)
    }
}

/// The real clock as the stack's time.
struct Clock(WallClock);

impl Clock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.0.elapsed().as_micros() as u64)
    }
}

/// Byte `i` of the stream is `PATTERN[i % PERIOD]`; the table is PERIOD +
/// the largest chunk long, so any chunk is one contiguous slice.
const PERIOD: usize = 1_000_003;

fn pattern(max_chunk: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let period: Vec<u8> = (0..PERIOD)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    period
        .iter()
        .cycle()
        .take(PERIOD + max_chunk)
        .copied()
        .collect()
}

fn tcp_bulk(total: u64, buffer: usize, copy: bool, segmentation: bool) {
    let (pa, pb) = MemoryNetwork::pair(1500);
    if segmentation {
        tcp_bulk_on(Segmenter::new(pa), Segmenter::new(pb), total, buffer, copy);
    } else {
        tcp_bulk_on(pa, pb, total, buffer, copy);
    }
}

fn tcp_bulk_on<D: Device>(pa: D, pb: D, total: u64, buffer: usize, copy: bool) {
    let tcp = TcpConfig {
        send_buffer: buffer,
        recv_buffer: buffer,
        ..TcpConfig::default()
    };
    let mut a = Host::new(1, pa, tcp.clone());
    let mut b = Host::new(2, pb, tcp);
    let server = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 5001);
    let listener = b.iface.tcp().listen(server, 1).expect("port is free");
    let clock = Clock(WallClock::now());
    let ha = a.iface.tcp().connect(server).expect("connect");
    let hb = loop {
        let now = clock.now();
        a.poll(now);
        b.poll(now);
        if let Ok(h) = b.iface.tcp().accept(listener) {
            break h;
        }
        assert!(clock.0.elapsed().as_secs() < 5, "handshake timed out");
    };
    while a.iface.tcp().state(ha) != Ok(State::Established) {
        let now = clock.now();
        a.poll(now);
        b.poll(now);
        assert!(clock.0.elapsed().as_secs() < 5, "handshake timed out");
    }

    let pat = pattern(buffer);
    let mut sink = vec![0u8; buffer];
    let (mut sent, mut rcvd) = (0u64, 0u64);
    let start = WallClock::now();
    while rcvd < total {
        while sent < total {
            let off = (sent % PERIOD as u64) as usize;
            let left = (buffer as u64).min(total - sent) as usize;
            let chunk = &pat[off..off + left];
            let took = if copy {
                a.iface.tcp().send(ha, chunk)
            } else {
                a.iface.tcp().send_with(ha, |room| {
                    let n = room.len().min(left);
                    room[..n].copy_from_slice(&chunk[..n]);
                    n
                })
            };
            match took {
                Ok(took) => sent += took as u64,
                Err(TcpError::WouldBlock) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        let now = clock.now();
        a.poll(now);
        b.poll(now);
        let check = |data: &[u8], rcvd: &mut u64| {
            let off = (*rcvd % PERIOD as u64) as usize;
            assert!(
                data == &pat[off..off + data.len()],
                "data mismatch at byte {rcvd}"
            );
            *rcvd += data.len() as u64;
        };
        if copy {
            loop {
                match b.iface.tcp().recv(hb, &mut sink) {
                    Ok(0) | Err(TcpError::WouldBlock) => break,
                    Ok(n) => check(&sink[..n], &mut rcvd),
                    Err(e) => panic!("recv: {e}"),
                }
            }
        } else {
            loop {
                match b.iface.tcp().recv_bytes(hb, usize::MAX) {
                    Ok(data) if !data.is_empty() => check(&data, &mut rcvd),
                    Ok(_) | Err(TcpError::WouldBlock) => break,
                    Err(e) => panic!("recv: {e}"),
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(rcvd, total);
    println!(
        "netstrata tcp_bulk bytes={total} secs={secs:.4} gbit_per_s={:.3}",
        total as f64 * 8.0 / secs / 1e9
    );
    let info = a.iface.tcp().info(ha).expect("the connection");
    let acks = b
        .iface
        .tcp()
        .info(hb)
        .expect("the connection")
        .stats
        .segs_out;
    eprintln!(
        "# buffer={buffer} api={} segments={} acks={acks} retransmissions={} verified=ok",
        if copy {
            "send+recv"
        } else {
            "send_with+recv_bytes"
        },
        info.stats.segs_out,
        info.stats.retransmits
    );
}

fn udp_pps(count: u64, size: usize, single: bool) {
    assert!((8..=1472).contains(&size), "--size must be 8 to 1472");
    let (pa, pb) = MemoryNetwork::pair(1500);
    let mut a = Host::new(1, pa, TcpConfig::default());
    let mut b = Host::new(2, pb, TcpConfig::default());
    let src = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 5000);
    let dst = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 5001);
    let ha = a.iface.udp().bind(src).expect("port is free");
    let hb = b.iface.udp().bind(dst).expect("port is free");
    let clock = Clock(WallClock::now());

    // A first datagram resolves ARP before the clock starts.
    let mut payload = vec![0u8; size];
    payload[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    a.iface.udp().send_to(ha, &payload, dst).expect("queued");
    loop {
        let now = clock.now();
        a.poll(now);
        b.poll(now);
        if b.iface.udp().recv_with(hb, |_, _| ()).is_ok() {
            break;
        }
        assert!(clock.0.elapsed().as_secs() < 5, "ARP timed out");
    }

    // The batch: as many datagrams as a socket's send queue holds.
    const BATCH: usize = 256;
    let mut batch = vec![vec![0u8; size]; BATCH];
    let mut buf = vec![0u8; size];
    let (mut sent, mut rcvd) = (0u64, 0u64);
    let start = WallClock::now();
    while rcvd < count {
        if single {
            while sent < count && a.iface.udp().can_send(ha, size) {
                payload[..8].copy_from_slice(&sent.to_le_bytes());
                a.iface.udp().send_to(ha, &payload, dst).expect("queued");
                sent += 1;
            }
        } else if sent < count {
            let n = (count - sent).min(BATCH as u64) as usize;
            for (i, d) in batch[..n].iter_mut().enumerate() {
                d[..8].copy_from_slice(&(sent + i as u64).to_le_bytes());
            }
            let datagrams = batch[..n].iter().map(|d| (&d[..], dst));
            sent += a.iface.udp().send_batch(ha, datagrams).unwrap_or(0) as u64;
        }
        let now = clock.now();
        a.poll(now);
        b.poll(now);
        let mut check = |d: &[u8]| {
            let seq = u64::from_le_bytes(d[..8].try_into().expect("8 bytes"));
            assert!(
                d.len() == size && seq == rcvd,
                "lost or reordered datagram {rcvd}"
            );
            rcvd += 1;
        };
        if single {
            while let Ok((n, _)) = b.iface.udp().recv_from(hb, &mut buf) {
                check(&buf[..n]);
            }
        } else {
            let _ = b.iface.udp().recv_batch(hb, usize::MAX, |d, _| check(d));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "netstrata udp_pps packets={count} payload={size} secs={secs:.4} pps={:.0}",
        count as f64 / secs
    );
    eprintln!(
        "# api={} verified=ok",
        if single {
            "send_to+recv_from"
        } else {
            "send_batch+recv_batch"
        }
    );
}

fn tcp_threads(total: u64) {
    let net = MemoryNetwork::new(1500);
    let runtime = |n: u8| {
        let port = net.attach();
        let cfg = InterfaceConfig::new(
            EthernetAddress::local(u32::from(n)),
            format!("192.0.2.{n}/24").parse().expect("valid address"),
        );
        let iface = Interface::new(cfg, netstrata::link::Device::capabilities(&port));
        Runtime::on_memory_port(iface, port).expect("a runtime thread")
    };
    let (a, b) = (runtime(1), runtime(2));
    let listener = TcpListener::bind(&b, "192.0.2.2:5001").expect("port is free");
    let pat = pattern(1 << 16);
    let expected = pat.clone();
    let receiver = std::thread::spawn(move || {
        let (s, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 1 << 16];
        let mut rcvd = 0u64;
        loop {
            let n = std::io::Read::read(&mut &s, &mut buf).expect("read");
            if n == 0 {
                return rcvd;
            }
            let off = (rcvd % PERIOD as u64) as usize;
            assert!(
                buf[..n] == expected[off..off + n],
                "data mismatch at byte {rcvd}"
            );
            rcvd += n as u64;
        }
    });
    let stream = TcpStream::connect(&a, "192.0.2.2:5001").expect("connect");
    let start = WallClock::now();
    let mut sent = 0u64;
    while sent < total {
        let off = (sent % PERIOD as u64) as usize;
        let n = ((1u64 << 16).min(total - sent)) as usize;
        std::io::Write::write_all(&mut &stream, &pat[off..off + n]).expect("write");
        sent += n as u64;
    }
    drop(stream);
    let rcvd = receiver.join().expect("the receiver");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(rcvd, total);
    println!(
        "netstrata tcp_threads bytes={total} secs={secs:.4} gbit_per_s={:.3}",
        total as f64 * 8.0 / secs / 1e9
    );
    eprintln!("# api=TcpStream write_all+read, 2 runtime threads, verified=ok");
}

/// TCP through the tokio adapter (feature `tokio`): two stacks driven by
/// tasks on one current-thread runtime, a writing and a reading task
/// using `AsyncWriteExt::write_all` and `AsyncReadExt::read`.
#[cfg(feature = "tokio")]
fn tcp_tokio(total: u64) {
    use netstrata::tokio::{Stack, TcpListener, TcpStream};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async move {
        let net = MemoryNetwork::new(1500);
        let stack = |n: u8| {
            let port = net.attach();
            let cfg = InterfaceConfig::new(
                EthernetAddress::local(u32::from(n)),
                format!("192.0.2.{n}/24").parse().expect("valid address"),
            );
            Stack::on_memory(Interface::new(cfg, port.capabilities()), port)
        };
        let (a, b) = (stack(1), stack(2));
        let addr = "192.0.2.2:5001".parse().expect("an address");
        let listener = TcpListener::bind(&b, addr).expect("port is free");
        let pat = pattern(1 << 16);
        let expected = pat.clone();
        let receiver = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 1 << 16];
            let mut rcvd = 0u64;
            loop {
                let n = s.read(&mut buf).await.expect("read");
                if n == 0 {
                    return rcvd;
                }
                let off = (rcvd % PERIOD as u64) as usize;
                assert!(
                    buf[..n] == expected[off..off + n],
                    "data mismatch at byte {rcvd}"
                );
                rcvd += n as u64;
            }
        });
        let mut stream = TcpStream::connect(&a, addr).await.expect("connect");
        let start = WallClock::now();
        let mut sent = 0u64;
        while sent < total {
            let off = (sent % PERIOD as u64) as usize;
            let n = ((1u64 << 16).min(total - sent)) as usize;
            stream.write_all(&pat[off..off + n]).await.expect("write");
            sent += n as u64;
        }
        drop(stream);
        let rcvd = receiver.await.expect("the receiver");
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(rcvd, total);
        println!(
            "netstrata tcp_tokio bytes={total} secs={secs:.4} gbit_per_s={:.3}",
            total as f64 * 8.0 / secs / 1e9
        );
        eprintln!("# api=tokio TcpStream write_all+read, one current-thread runtime, verified=ok");
    });
}

fn main() {
    if cfg!(debug_assertions) {
        eprintln!("(debug build: run with --release for meaningful numbers)");
    }
    let mut args = std::env::args().skip(1);
    let (mut udp, mut copy, mut threads, mut segmentation) = (false, false, false, false);
    let mut on_tokio = false;
    let (mut bytes, mut buffer, mut packets, mut size) =
        (512u64 << 20, 256usize << 10, 5_000_000u64, 64usize);
    let num = |v: Option<String>| -> u64 {
        v.and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            eprintln!("{USAGE}");
            std::process::exit(2)
        })
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--udp" => udp = true,
            "--copy" => copy = true,
            "--threads" => threads = true,
            "--tokio" => on_tokio = true,
            "--segmentation" => segmentation = true,
            "--bytes" => bytes = num(args.next()),
            "--buffer" => buffer = num(args.next()) as usize,
            "--packets" => packets = num(args.next()),
            "--size" => size = num(args.next()) as usize,
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2)
            }
        }
    }
    if on_tokio {
        #[cfg(feature = "tokio")]
        tcp_tokio(bytes);
        #[cfg(not(feature = "tokio"))]
        {
            eprintln!("--tokio needs the tokio feature (cargo run --features tokio ...)");
            std::process::exit(2)
        }
    } else if threads {
        tcp_threads(bytes);
    } else if udp {
        udp_pps(packets, size, copy);
    } else {
        tcp_bulk(bytes, buffer, copy, segmentation);
    }
}
