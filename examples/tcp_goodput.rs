//! TCP goodput against packet loss, in the deterministic simulator.
//!
//! Two hosts on the in-memory switch; every frame, in both directions
//! (data and ACKs), is lost with probability `p` and delayed by RTT/2. No
//! other impairment, and no bandwidth limit: goodput is bounded by the
//! 256 KiB receive window (about 2.6 MB/s at 100 ms RTT) and by how well
//! the stack recovers from loss. One connection carries `bytes` bytes one
//! way; goodput is the payload over the virtual time from the established
//! connection to the receiver's end of stream, averaged over the seeds
//! (total bytes / total time).
//!
//! Per cell: goodput (relative to the same stack on the clean path),
//! then per transfer the segments retransmitted, the spurious ones among
//! them (those the receiver reported as duplicates in a D-SACK: on these
//! paths, which never duplicate a frame, every D-SACK is a needless
//! retransmission, though one whose report is lost goes uncounted) and the
//! retransmission timeouts. Beside each row, the Mathis bound (Mathis et
//! al. 1997): MSS/RTT × sqrt(3/2)/sqrt(p), what a Reno-style sender that
//! halves its window once per loss can sustain, capped at the receive
//! window per RTT. It is a yardstick, not a ceiling: it assumes one loss
//! per window, and CUBIC grows faster than Reno in long fat pipes.
//!
//! ```text
//! cargo run --release --example tcp_goodput [-- --seeds 5 --bytes 4194304 --rtt 10 --no-sack --havoc --digest]
//! cargo run --release --example tcp_goodput -- --rate 2500000 --queue 100   # behind a bottleneck
//! ```
//!
//! `--rate B` puts a bottleneck of B bytes/s on the data's way, with a
//! drop-tail queue of `--queue` percent of a bandwidth-delay product
//! (default 100), and gives every stack buffers of four BDPs (at least
//! the default 256 KiB), so that the queue, not the window, limits: what
//! slow start's overshoot, pacing and BBR's model do is then visible. The
//! Mathis bound is then also capped at the bottleneck rate.
//!
//! Prints one markdown table per RTT (0.2, 1, 10 and 100 ms, or only
//! `--rtt MS`). Runs are exactly repeatable. `--no-sack` adds both
//! controllers without SACK. With `--havoc`, every path also duplicates,
//! reorders and corrupts frames as `Impairments::havoc` does (and
//! duplicated frames give D-SACKs too); with `--digest`, a digest of every
//! frame of every run (both hosts, with virtual times) is printed at the
//! end: a change meant to alter no behaviour must leave the output
//! identical.

#[path = "../tests/tcp_support/mod.rs"]
mod tcp_support;

use netstrata::Duration;
use netstrata::transport::tcp::{CongestionAlgorithm, TcpConfig};
use tcp_support::{Impairments, run_pair};

/// The stacks compared.
fn variants() -> Vec<(&'static str, TcpConfig)> {
    let with = |congestion, sack| TcpConfig {
        congestion,
        sack,
        ..TcpConfig::default()
    };
    let mut v = vec![
        ("CUBIC", with(CongestionAlgorithm::Cubic, true)),
        ("NewReno", with(CongestionAlgorithm::NewReno, true)),
        ("BBR", with(CongestionAlgorithm::Bbr, true)),
    ];
    if flag("--no-sack") {
        v.push(("CUBIC, no SACK", with(CongestionAlgorithm::Cubic, false)));
        v.push((
            "NewReno, no SACK",
            with(CongestionAlgorithm::NewReno, false),
        ));
    }
    v
}

const LOSSES: [f64; 6] = [0.0, 0.01, 0.02, 0.05, 0.10, 0.20];

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

/// What the runs of one cell gave.
struct Cell {
    /// Total bytes over total time (bytes/s).
    goodput: f64,
    /// Per transfer: retransmitted segments, spurious ones, timeouts.
    rtx: f64,
    spurious: f64,
    rtos: f64,
    /// Runs that did not finish.
    failed: u64,
}

/// The bottleneck of `--rate` and `--queue` at `rtt`: (rate, queue bytes).
fn bottleneck(rtt: Duration) -> Option<(u64, usize)> {
    let rate = arg("--rate", 0);
    let bdp = rate as f64 * rtt.as_secs_f64();
    (rate > 0).then(|| (rate, (bdp * arg("--queue", 100) as f64 / 100.0) as usize))
}

fn measure(cfg: &TcpConfig, rtt: Duration, loss: f64, seeds: u64, bytes: u64) -> Cell {
    let base = if flag("--havoc") {
        Impairments {
            delay: rtt / 2,
            ..Impairments::havoc(loss)
        }
    } else {
        Impairments::clean(rtt / 2)
    };
    let mut path = Impairments { loss, ..base };
    let mut cfg = cfg.clone();
    if let Some((rate, queue)) = bottleneck(rtt) {
        path = path.with_bottleneck(rate, queue);
        let buffers = ((4.0 * rate as f64 * rtt.as_secs_f64()) as usize).max(cfg.recv_buffer);
        cfg.send_buffer = buffers;
        cfg.recv_buffer = buffers;
    }
    let cfg = &cfg;
    let (mut time, mut moved, mut failed) = (0.0, 0u64, 0);
    let (mut rtx, mut spurious, mut rtos) = (0u64, 0u64, 0u64);
    for seed in 0..seeds {
        match run_pair(
            seed,
            Some(&path),
            cfg,
            bytes,
            0,
            Duration::from_secs(4 * 3600),
        ) {
            Ok(o) => {
                let stats = &o.info[0].stats;
                time += o.took.as_secs_f64();
                moved += bytes;
                rtx += stats.retransmits;
                spurious += stats.dsacks_received;
                rtos += stats.timeouts;
            }
            Err(f) => {
                eprintln!("seed {seed} loss {loss} rtt {rtt:?}: {f}");
                failed += 1;
            }
        }
    }
    let ok = (seeds - failed).max(1) as f64;
    Cell {
        goodput: if time > 0.0 { moved as f64 / time } else { 0.0 },
        rtx: rtx as f64 / ok,
        spurious: spurious as f64 / ok,
        rtos: rtos as f64 / ok,
        failed,
    }
}

/// The Mathis bound for `loss` at `rtt` (bytes/s), capped at the receive
/// window per RTT; `None` without loss.
fn mathis(rtt: Duration, loss: f64) -> f64 {
    let mss = 1448.0; // MTU 1500 with timestamps
    let window = match bottleneck(rtt) {
        Some((rate, _)) => rate as f64 * 1448.0 / 1514.0,
        None => TcpConfig::default().recv_buffer as f64 / rtt.as_secs_f64(),
    };
    if loss == 0.0 {
        return window;
    }
    (mss / rtt.as_secs_f64() * (1.5f64).sqrt() / loss.sqrt()).min(window)
}

fn main() {
    let seeds = arg("--seeds", 5);
    let bytes = arg("--bytes", 4 << 20);
    if flag("--digest") {
        tcp_support::start_frame_digest();
    }
    println!(
        "{bytes} bytes one way, mean of {seeds} seeds; loss applies to every frame in both directions.\n\
         Cells: goodput (relative to the clean path), then per transfer: retransmissions, spurious ones, RTOs."
    );
    if let Some((rate, _)) = bottleneck(Duration::from_millis(1)) {
        println!(
            "Behind a bottleneck of {rate} B/s with a drop-tail queue of {}% of the BDP.",
            arg("--queue", 100)
        );
    }
    let rtts: Vec<Duration> = match arg("--rtt", 0) {
        0 => vec![
            Duration::from_micros(200),
            Duration::from_millis(1),
            Duration::from_millis(10),
            Duration::from_millis(100),
        ],
        ms => vec![Duration::from_millis(ms)],
    };
    for rtt in rtts {
        println!("\n### RTT {} ms\n", rtt.as_secs_f64() * 1e3);
        let vs = variants();
        print!("| loss | Mathis bound |");
        for (name, _) in &vs {
            print!(" {name} |");
        }
        println!();
        print!("|---:|---:|");
        for _ in &vs {
            print!("---:|");
        }
        println!();
        let mut base = vec![0.0; vs.len()];
        for loss in LOSSES {
            print!("| {:.0}% | {} |", loss * 100.0, human(mathis(rtt, loss)));
            for (i, (_, cfg)) in vs.iter().enumerate() {
                let c = measure(cfg, rtt, loss, seeds, bytes);
                if loss == 0.0 {
                    base[i] = c.goodput;
                }
                let rel = if base[i] > 0.0 {
                    c.goodput / base[i]
                } else {
                    0.0
                };
                let note = if c.failed > 0 {
                    format!(" ({} stuck)", c.failed)
                } else {
                    String::new()
                };
                print!(
                    " {} ({:.2}), {:.0}, {:.0}, {:.1}{note} |",
                    human(c.goodput),
                    rel,
                    c.rtx,
                    c.spurious,
                    c.rtos
                );
            }
            println!();
        }
    }
    if let Some(digest) = tcp_support::frame_digest() {
        println!("\ndigest of every frame of every run: {digest:016x}");
    }
}

fn human(bytes_per_sec: f64) -> String {
    if bytes_per_sec >= 1e6 {
        format!("{:.2} MB/s", bytes_per_sec / 1e6)
    } else {
        format!("{:.1} kB/s", bytes_per_sec / 1e3)
    }
}
