//! TCP goodput against packet loss, in the deterministic simulator.
//!
//! Two hosts on the in-memory switch; every frame, in both directions
//! (data and ACKs), is lost with probability `p` and delayed by RTT/2. No
//! other impairment, and no bandwidth limit: goodput is bounded by the
//! 256 KiB receive window (about 2.6 MB/s at 100 ms RTT) and by how well
//! the stack recovers from loss. One connection carries `bytes` bytes one
//! way; goodput is the payload over the virtual time from the established
//! connection to the receiver's end of stream, averaged over the seeds
//! (total bytes / total time). Also printed, per transfer: segments
//! retransmitted and retransmission timeouts at the sender.
//!
//! ```text
//! cargo run --release --example tcp_goodput [-- --seeds 5 --bytes 4194304 --havoc --digest]
//! ```
//!
//! Prints one markdown table per RTT. Runs are exactly repeatable. With
//! `--havoc`, every path also duplicates, reorders and corrupts frames as
//! `Impairments::havoc` does; with `--digest`, a digest of every frame of
//! every run (both hosts, with virtual times) is printed at the end: a
//! change meant to alter no behaviour must leave the output identical.

#[path = "../tests/tcp_support/mod.rs"]
mod tcp_support;

use netstrata::Duration;
use netstrata::transport::tcp::{CongestionAlgorithm, TcpConfig};
use tcp_support::{Impairments, run_pair};

/// The stacks compared.
fn variants() -> Vec<(&'static str, TcpConfig)> {
    let cubic = TcpConfig::default();
    let newreno = TcpConfig {
        congestion: CongestionAlgorithm::NewReno,
        ..TcpConfig::default()
    };
    let no_sack = TcpConfig {
        sack: false,
        ..TcpConfig::default()
    };
    let newreno_no_sack = TcpConfig {
        sack: false,
        congestion: CongestionAlgorithm::NewReno,
        ..TcpConfig::default()
    };
    vec![
        ("SACK+CUBIC", cubic),
        ("SACK+NewReno", newreno),
        ("CUBIC, no SACK", no_sack),
        ("NewReno, no SACK", newreno_no_sack),
    ]
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

/// Mean goodput (bytes/s), retransmissions and timeouts per transfer, and
/// the number of runs that did not finish.
fn measure(
    cfg: &TcpConfig,
    rtt: Duration,
    loss: f64,
    seeds: u64,
    bytes: u64,
) -> (f64, f64, f64, u64) {
    let base = if flag("--havoc") {
        Impairments {
            delay: rtt / 2,
            ..Impairments::havoc(loss)
        }
    } else {
        Impairments::clean(rtt / 2)
    };
    let path = Impairments { loss, ..base };
    let (mut time, mut moved, mut rtx, mut rto, mut failed) = (0.0, 0u64, 0u64, 0u64, 0);
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
                time += o.took.as_secs_f64();
                moved += bytes;
                rtx += o.info[0].stats.retransmits;
                rto += o.info[0].stats.timeouts;
            }
            Err(f) => {
                eprintln!("seed {seed} loss {loss} rtt {rtt:?}: {f}");
                failed += 1;
            }
        }
    }
    let ok = (seeds - failed).max(1) as f64;
    let goodput = if time > 0.0 { moved as f64 / time } else { 0.0 };
    (goodput, rtx as f64 / ok, rto as f64 / ok, failed)
}

fn main() {
    let seeds = arg("--seeds", 5);
    let bytes = arg("--bytes", 4 << 20);
    if flag("--digest") {
        tcp_support::start_frame_digest();
    }
    println!(
        "{bytes} bytes one way, mean of {seeds} seeds; loss applies to every frame in both directions."
    );
    for rtt_ms in [100u64, 10] {
        let rtt = Duration::from_millis(rtt_ms);
        println!("\n### RTT {rtt_ms} ms\n");
        let vs = variants();
        print!("| loss |");
        for (name, _) in &vs {
            print!(" {name}: goodput (rel.), rtx, RTOs |");
        }
        println!();
        print!("|---:|");
        for _ in &vs {
            print!("---:|");
        }
        println!();
        let mut base = vec![0.0; vs.len()];
        for loss in LOSSES {
            print!("| {:.0}% |", loss * 100.0);
            for (i, (_, cfg)) in vs.iter().enumerate() {
                let (g, rtx, rto, failed) = measure(cfg, rtt, loss, seeds, bytes);
                if loss == 0.0 {
                    base[i] = g;
                }
                let rel = if base[i] > 0.0 { g / base[i] } else { 0.0 };
                let note = if failed > 0 {
                    format!(" ({failed} stuck)")
                } else {
                    String::new()
                };
                print!(" {} ({:.2}), {rtx:.0}, {rto:.0}{note} |", human(g), rel);
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
