//! The Internet checksum: the fast implementation against the plain
//! RFC 1071 16-bit loop, on an IPv4 header (20 bytes), a minimum frame
//! (64), a full 1500-byte MTU packet and a 64 KiB buffer (about a maximal
//! IPv4 datagram).
//!
//! Run with `cargo bench --bench checksum`; criterion reports GB/s
//! (`Throughput::Bytes`).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use netstrata::checksum::{checksum, checksum_reference};

/// Deterministic, non-trivial contents (all-zero data could hide carry
/// handling costs).
fn data(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

fn bench_checksum(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    for len in [20usize, 64, 1500, 65536] {
        let buf = data(len);
        assert_eq!(checksum(&buf), checksum_reference(&buf));
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("fast", len), &buf, |b, buf| {
            b.iter(|| checksum(black_box(buf)))
        });
        g.bench_with_input(BenchmarkId::new("reference", len), &buf, |b, buf| {
            b.iter(|| checksum_reference(black_box(buf)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_checksum);
criterion_main!(benches);
