//! The cost of TCP, in the virtual-clock simulator driven as fast as it
//! goes.
//!
//! - `tcp_segment/idle_{0,1000,10000,100000}`: one full-sized segment on
//!   an established connection, with 0, 1,000, 10,000 or 100,000 idle
//!   established connections between the same two stacks (those spread
//!   over listening ports 10,000 at a time, as one client address has
//!   16,384 ephemeral ports per destination). One iteration is `send` of
//!   1448 bytes (Nagle off), polling both stacks until quiet (the sender
//!   emits the segment, the receiver demultiplexes it, stores it and ACKs
//!   every second one, the sender takes the ACK) and `recv` of the data:
//!   the whole per-segment cost of both ends. It should not grow with the
//!   idle connections: demultiplexing is a hash lookup, and idle
//!   connections have no timers in the heap and are on no ready list.
//! - `tcp_bulk/one_connection_16MiB`: a fresh pair of stacks on the
//!   in-memory switch, a handshake and 16 MiB one way with the default
//!   options (256 KiB buffers, SACK, CUBIC), then both ends close; reported
//!   in bytes per second of wall-clock time. Neither side checks the bytes
//!   (`tests/tcp_sim.rs` does), so this is the stack's own cost, copying
//!   in and out of its buffers included.
//!
//! ```text
//! cargo bench --bench tcp
//! ```

#[path = "../tests/tcp_support/mod.rs"]
mod tcp_support;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netstrata::Duration;
use netstrata::sim::{HostId, Simulation};
use netstrata::transport::tcp::{State, TcpConfig, TcpError, TcpHandle};
use tcp_support::{connect, open_many, pair};

/// Two stacks with `idle` idle connections and one more, Nagle off, ready
/// for segments from host 1 to host 2.
fn with_idle(idle: usize) -> (Simulation, HostId, HostId, TcpHandle, TcpHandle) {
    const PER_PORT: usize = 10_000;
    let (mut sim, a, b) = pair(1, None, &TcpConfig::default());
    for (i, port) in (81u16..).take(idle.div_ceil(PER_PORT)).enumerate() {
        let n = PER_PORT.min(idle - i * PER_PORT);
        let conns = open_many(
            &mut sim,
            (a, b),
            port,
            n,
            1024,
            256,
            Duration::from_secs(600),
        )
        .expect("idle connections");
        assert_eq!(conns.len(), n);
    }
    let (c, s) = connect(&mut sim, a, b, 80, Duration::from_secs(10)).expect("connection");
    sim.iface(a).tcp().set_nodelay(c, true).unwrap();
    // Let every handshake timer lapse: the idle connections then have
    // nothing scheduled.
    sim.run_until(sim.now() + Duration::from_secs(5));
    (sim, a, b, c, s)
}

fn bench_per_segment(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("tcp_segment");
    g.throughput(Throughput::Elements(1));
    let data = [0x5au8; 1448];
    let mut buf = vec![0u8; 64 * 1024];
    for idle in [0usize, 1000, 10_000, 100_000] {
        let (mut sim, a, b, c, s) = with_idle(idle);
        let heaps = |sim: &mut Simulation| {
            [a, b].map(|h| {
                let tcp = sim.iface(h).tcp();
                (tcp.connection_count(), tcp.timer_heap_len())
            })
        };
        eprintln!(
            "idle {idle}: (connections, timer heap entries) per host before: {:?}",
            heaps(&mut sim)
        );
        let mut moved = 0u64;
        g.bench_function(format!("idle_{idle}"), |bch| {
            bch.iter(|| {
                let n = match sim.iface(a).tcp().send(c, &data) {
                    Ok(n) => n,
                    Err(TcpError::WouldBlock) => 0,
                    Err(e) => panic!("send: {e}"),
                };
                sim.settle();
                loop {
                    match sim.iface(b).tcp().recv(s, &mut buf) {
                        Ok(0) | Err(TcpError::WouldBlock) => break,
                        Ok(k) => black_box(&buf[..k]),
                        Err(e) => panic!("recv: {e}"),
                    };
                }
                if n < data.len() {
                    // The odd segment waits for the delayed ACK: let it fire.
                    let t = sim.now() + Duration::from_millis(50);
                    sim.run_until(t);
                }
                moved += n as u64;
            })
        });
        assert_eq!(sim.iface(b).tcp().state(s), Ok(State::Established));
        eprintln!(
            "idle {idle}: {moved} bytes moved; (connections, timer heap entries) per host after: {:?}",
            heaps(&mut sim)
        );
    }
    g.finish();
}

/// Moves `len` bytes from host `a`'s `c` to host `b`'s `s`, closes both,
/// and runs until both ends are done.
fn bulk(
    sim: &mut Simulation,
    (a, c): (HostId, TcpHandle),
    (b, s): (HostId, TcpHandle),
    len: usize,
) {
    let data = vec![0xa5u8; 64 * 1024];
    let (mut sent, mut received) = (0usize, 0usize);
    let mut shut = false;
    loop {
        while sent < len {
            let n = (len - sent).min(data.len());
            let k = match sim.iface(a).tcp().send(c, &data[..n]) {
                Ok(k) => k,
                Err(TcpError::WouldBlock) => 0,
                Err(e) => panic!("send: {e}"),
            };
            sent += k;
            if k < n {
                break;
            }
        }
        if sent == len && !shut {
            sim.iface(a).tcp().shutdown(c).unwrap();
            shut = true;
        }
        while let Ok(chunk) = sim.iface(b).tcp().recv_bytes(s, usize::MAX) {
            if chunk.is_empty() {
                break;
            }
            received += chunk.len();
            black_box(&chunk);
        }
        if received == len && sim.iface(b).tcp().recv_eof(s) {
            break;
        }
        sim.step(Duration::from_secs(1));
    }
    sim.iface(b).tcp().close(s).unwrap();
    sim.iface(a).tcp().close(c).unwrap();
}

fn bench_bulk(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("tcp_bulk");
    const LEN: usize = 16 << 20;
    g.throughput(Throughput::Bytes(LEN as u64));
    g.sample_size(10);
    g.bench_function("one_connection_16MiB", |bch| {
        bch.iter(|| {
            let (mut sim, a, b) = pair(2, None, &TcpConfig::default());
            let (c, s) = connect(&mut sim, a, b, 80, Duration::from_secs(10)).unwrap();
            bulk(&mut sim, (a, c), (b, s), LEN);
            sim.now()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_per_segment, bench_bulk);
criterion_main!(benches);
