//! The per-packet cost of the stack.
//!
//! - `wire/emit_parse_udp64`: emit Ethernet, IPv4 and UDP headers in front
//!   of a 64-byte payload (both checksums computed), then parse all three
//!   back with checksum verification. No `Interface`, no allocation.
//! - `rx/udp{64,1472}`: the whole receive path, frame to socket: a batch of
//!   valid frames addressed to the interface goes through
//!   [`Interface::poll`] (Ethernet, IPv4 with header checksum, UDP with
//!   checksum, demultiplexing, copying the payload into the socket's
//!   queue) and is read back in place with `recv_with`. The batch is cloned outside the timed region
//!   (`iter_batched`), so the copy a real device makes is not counted.
//!   Receiving needs no ARP; the socket is drained every iteration, so its
//!   queue never fills.
//! - `tx/udp{64,1472}`: the send path: `send_to` (which copies the payload
//!   into the socket's queue) and a poll that copies it into a pooled
//!   frame, pushes UDP, IPv4 and Ethernet headers and hands each frame to
//!   a device that drops it.
//!   The neighbour is a static ARP entry.
//! - `frame_buffer/{pooled,allocated}`: the life of a received TCP
//!   segment's buffer under `recv_bytes`, without the protocol: a 1514-byte
//!   frame's buffer is taken, filled, frozen, its payload handed out as a
//!   slice and dropped by the application. `pooled` is the stack's way
//!   (from a [`BufferPool`], the slice lent and taken back by a [`Lent`]);
//!   `allocated` gives each frame a fresh buffer, freed with its slice.
//!
//! Throughput is reported in packets (elements) per second.

mod support;

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use netstrata::Instant;
use netstrata::buf::{BufferPool, Lent, MAX_HEADROOM, PacketBuf, frame_buffer_size};
use netstrata::internet::ipv4;
use netstrata::link::ethernet;
use netstrata::transport::udp::packet as udp;
use std::net::SocketAddrV4;
use support::{RX_IP, RX_PORT, emit_headers, parse_frame, payload, receiver, sender, udp_frame};

/// Frames per receive iteration (and datagrams per send iteration): one
/// poll's worth, as a NIC hands over a burst.
const BATCH: usize = 128;

fn bench_wire(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire");
    g.throughput(Throughput::Elements(1));
    // One buffer, reused: the headers pushed in front of the payload are
    // pulled off again after parsing, which restores the headroom, so the
    // loop measures header work only (no allocation, warm cache).
    let mut p = PacketBuf::from_payload(MAX_HEADROOM, &payload(64));
    let headers = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN;
    g.bench_function("emit_parse_udp64", |b| {
        b.iter(|| {
            emit_headers(&mut p);
            let parsed = parse_frame(black_box(p.data()));
            assert!(parsed.is_some() && p.pull_header(headers));
            parsed
        })
    });
    g.finish();
}

fn bench_rx(c: &mut Criterion) {
    let mut g = c.benchmark_group("rx");
    g.throughput(Throughput::Elements(BATCH as u64));
    for len in [64usize, 1472] {
        let (mut iface, socket, mut device) = receiver(BATCH);
        let frame = udp_frame(len);
        assert!(
            parse_frame(frame.data()).is_some(),
            "bench frame is invalid"
        );
        let batch: Vec<PacketBuf> = vec![frame; BATCH];
        let now = Instant::from_secs(1);
        g.bench_function(format!("udp{len}"), |b| {
            b.iter_batched(
                || batch.clone(),
                |frames| {
                    device.load(frames);
                    iface.poll(now, &mut device);
                    let mut n = 0;
                    while iface
                        .udp()
                        .recv_with(socket, |d, _| black_box(d.len()))
                        .is_ok()
                    {
                        n += 1;
                    }
                    assert_eq!(n, BATCH, "datagrams lost");
                },
                BatchSize::LargeInput,
            )
        });
        let c = iface.counters();
        assert_eq!(c.udp.rx_queue_full + c.udp.rx_bad_checksum, 0);
        assert_eq!(c.link.rx_frames, c.udp.rx_datagrams);
    }
    g.finish();
}

fn bench_tx(c: &mut Criterion) {
    let mut g = c.benchmark_group("tx");
    g.throughput(Throughput::Elements(BATCH as u64));
    for len in [64usize, 1472] {
        let (mut iface, socket, mut device) = sender(BATCH);
        let data = payload(len);
        let dst = SocketAddrV4::new(RX_IP, RX_PORT);
        let now = Instant::from_secs(1);
        g.bench_function(format!("udp{len}"), |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    iface
                        .udp()
                        .send_to(socket, black_box(&data), dst)
                        .expect("send queue has room");
                }
                iface.poll(now, &mut device);
            })
        });
        let c = iface.counters();
        assert_eq!(c.udp.tx_errors, 0);
        assert_eq!(device.tx_frames, c.link.tx_frames);
    }
    g.finish();
}

fn bench_frame_buffer(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_buffer");
    g.throughput(Throughput::Elements(BATCH as u64));
    let frame = [0x5au8; 1514];
    // One poll's worth of frames: filled, frozen, the payload handed out,
    // then dropped by the application before its next read.
    let handle = |mut p: PacketBuf, lent: Option<&mut Lent>| {
        p.extend_from_slice(&frame);
        p.pull_header(66);
        let payload = p.freeze();
        if let Some(lent) = lent {
            lent.lend(&payload);
        }
        black_box(payload)
    };
    g.bench_function("pooled", |b| {
        let mut pool = BufferPool::new(2 * BATCH, frame_buffer_size(1500));
        let mut lent = Lent::new(2 * BATCH);
        b.iter(|| {
            let slices: Vec<_> = (0..BATCH)
                .map(|_| handle(pool.alloc(0, frame.len()), Some(&mut lent)))
                .collect();
            drop(slices);
            lent.reclaim(|bufs| pool.recycle_all(bufs));
        });
        assert_eq!(pool.stats().0, BATCH as u64, "the pool kept allocating");
    });
    g.bench_function("allocated", |b| {
        b.iter(|| {
            let slices: Vec<_> = (0..BATCH)
                .map(|_| handle(PacketBuf::with_headroom(0, frame.len()), None))
                .collect();
            drop(slices);
        });
    });
    g.finish();
}

criterion_group!(benches, bench_wire, bench_rx, bench_tx, bench_frame_buffer);
criterion_main!(benches);
