//! TCP in the deterministic simulator: byte-exact bulk transfers under
//! seeded faults, and many concurrent connections.
//!
//! Every run is two fresh stacks on the in-memory switch, each behind a
//! [`netstrata::link::FaultInjector`] seeded from the run's seed, on the
//! virtual clock of [`netstrata::sim::Simulation`]. A transfer moves
//! 10 MiB from client to server and 10 MiB back *at the same time* on one
//! connection, then both ends close; every byte is checked against a
//! position-dependent pattern, the data must be in before a generous
//! virtual-time deadline, and both ends must then reach TIME-WAIT or
//! CLOSED, and neither host may have sent an IP fragment. The path
//! ("havoc") has the given loss plus 1% duplication, 1% reordering by
//! 5 ms, 0.5% corruption (one flipped bit, which the checksums must catch)
//! and a 10 ms one-way delay with 2 ms of jitter (which itself reorders
//! back-to-back segments), all per direction.
//!
//! Failures are collected over all seeds of a test and reported together,
//! each with its seed, the path and both ends' `TcpInfo`, so that any of
//! them can be replayed: `run_pair(seed, Some(&Impairments::havoc(loss)),
//! ...)` gives exactly the same run. Set `TCP_SIM_PCAP=/tmp/x` to record
//! each host's frames to `/tmp/x.N.pcap`.
//!
//! Default profile: 10 MiB each way × 50 seeds at each of 0%, 1%, 5%, 10%
//! and 20% loss; 1,000 concurrent connections on a clean and on a lossy
//! path, and 10,000 on a clean one (about 50 s on two cores with the test
//! profile's `opt-level = 2`; unoptimised, each 10 MiB run takes ten times
//! longer). The `long_*` tests run more seeds (`TCP_SIM_SEEDS`, default
//! 500 per loss level, from seed 1000):
//!
//! ```text
//! cargo test --release --test tcp_sim -- --ignored long_
//! ```
//!
//! (`long_havoc_bbr` runs the same with BBR.)
//!
//! Regression tests (`regression_*`) pin the seeds and configurations that
//! found bugs; the ignored ones still fail and say why.

mod tcp_support;

use std::panic::{AssertUnwindSafe, catch_unwind};

use netstrata::Duration;
use netstrata::sim::Simulation;
use netstrata::transport::tcp::{CongestionAlgorithm, State, TcpConfig};
use tcp_support::{
    End, Failure, FailureKind, Impairments, add_host, exchange, mix, open_many, run_pair,
};

const MIB: u64 = 1 << 20;

/// Virtual time allowed for 10 MiB each way at `loss`: about ten times
/// the slowest of 500 seeds (0%: 28 s, 1%: 34 s, 5%: 78 s, 10%: 239 s).
/// At 20% the stack is slow for now (see
/// `regression_rtt_inflation_at_20_percent_loss`: mean 28 min, slowest
/// 116 min over 500 seeds), hence 6 hours.
fn deadline(loss: f64) -> Duration {
    Duration::from_secs(match loss {
        l if l < 0.02 => 300,
        l if l < 0.07 => 900,
        l if l < 0.15 => 2400,
        _ => 6 * 3600,
    })
}

/// Runs 10 MiB each way at `loss` for every seed in `seeds`; panics with
/// every failure (seed, path, both ends' state) at the end.
fn matrix(loss: f64, seeds: std::ops::Range<u64>) {
    matrix_with(&TcpConfig::default(), loss, seeds);
}

/// [`matrix`] with another configuration.
fn matrix_with(cfg: &TcpConfig, loss: f64, seeds: std::ops::Range<u64>) {
    let path = Impairments::havoc(loss);
    let mut failures = Vec::new();
    let (mut worst, mut total, mut runs) = (Duration::ZERO, Duration::ZERO, 0u32);
    let (mut rtx, mut rto) = (0u64, 0u64);
    for seed in seeds.clone() {
        let run = catch_unwind(AssertUnwindSafe(|| {
            run_pair(seed, Some(&path), cfg, 10 * MIB, 10 * MIB, deadline(loss))
        }));
        match run {
            Ok(Ok(o)) => {
                worst = worst.max(o.took);
                total += o.took;
                runs += 1;
                rtx += o.info.iter().map(|i| i.stats.retransmits).sum::<u64>();
                rto += o.info.iter().map(|i| i.stats.timeouts).sum::<u64>();
            }
            Ok(Err(f)) => failures.push(format!("seed {seed}: {f}")),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("seed {seed}: panic: {msg}"));
            }
        }
    }
    eprintln!(
        "loss {:.0}%: {runs} runs of 10 MiB each way; virtual time mean {:?}, max {:?}; \
         per run {:.0} retransmissions, {:.1} timeouts (both ends)",
        loss * 100.0,
        total / runs.max(1),
        worst,
        rtx as f64 / f64::from(runs.max(1)),
        rto as f64 / f64::from(runs.max(1)),
    );
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed on a path with {path}:\n{}",
        failures.len(),
        seeds.end - seeds.start,
        failures.join("\n")
    );
}

#[test]
fn havoc_no_loss_50_seeds() {
    matrix(0.0, 0..50);
}

#[test]
fn havoc_1_percent_loss_50_seeds() {
    matrix(0.01, 0..50);
}

#[test]
fn havoc_5_percent_loss_50_seeds() {
    matrix(0.05, 0..50);
}

#[test]
fn havoc_10_percent_loss_50_seeds() {
    matrix(0.10, 0..50);
}

#[test]
fn havoc_20_percent_loss_50_seeds() {
    matrix(0.20, 0..50);
}

/// As [`matrix`], with every host's device segmenting TCP super-segments
/// in software: the stacks hand down up to 64 KiB at a time, and the
/// faults strike the segments they stand for.
fn matrix_segmented(cfg: &TcpConfig, loss: f64, seeds: std::ops::Range<u64>) {
    let path = Impairments::havoc(loss).with_segmentation();
    for seed in seeds {
        let run = run_pair(seed, Some(&path), cfg, 10 * MIB, 10 * MIB, deadline(loss));
        if let Err(f) = run {
            panic!("seed {seed} on a path with {path}: {f}");
        }
    }
}

#[test]
fn havoc_segmented_1_percent_loss_20_seeds() {
    matrix_segmented(&TcpConfig::default(), 0.01, 0..20);
}

#[test]
fn havoc_segmented_10_percent_loss_20_seeds() {
    matrix_segmented(&TcpConfig::default(), 0.10, 0..20);
}

#[test]
fn havoc_segmented_bbr_5_percent_loss_10_seeds() {
    matrix_segmented(&bbr(), 0.05, 0..10);
}

fn bbr() -> TcpConfig {
    TcpConfig {
        congestion: CongestionAlgorithm::Bbr,
        ..TcpConfig::default()
    }
}

#[test]
fn havoc_bbr_1_percent_loss_20_seeds() {
    matrix_with(&bbr(), 0.01, 0..20);
}

#[test]
fn havoc_bbr_10_percent_loss_20_seeds() {
    matrix_with(&bbr(), 0.10, 0..20);
}

/// Seeds of the long runs: `TCP_SIM_SEEDS` of them (default 500) from
/// `TCP_SIM_FIRST` (default 1000, past the seeds the default tests use),
/// so that one failing seed can be rerun alone.
fn long_seeds() -> std::ops::Range<u64> {
    let env =
        |name: &str, default: u64| std::env::var(name).map_or(default, |v| v.parse().expect(name));
    let first = env("TCP_SIM_FIRST", 1000);
    first..first + env("TCP_SIM_SEEDS", 500)
}

/// BBR through every loss level, `TCP_SIM_SEEDS` seeds each.
#[test]
#[ignore = "long: TCP_SIM_SEEDS seeds (default 500) x 5 loss levels; run with --release"]
fn long_havoc_bbr() {
    for loss in [0.0, 0.01, 0.05, 0.10, 0.20] {
        matrix_with(&bbr(), loss, long_seeds());
    }
}

#[test]
#[ignore = "long: TCP_SIM_SEEDS seeds (default 500); run with --release"]
fn long_havoc_no_loss() {
    matrix(0.0, long_seeds());
}

#[test]
#[ignore = "long: TCP_SIM_SEEDS seeds (default 500); run with --release"]
fn long_havoc_1_percent_loss() {
    matrix(0.01, long_seeds());
}

#[test]
#[ignore = "long: TCP_SIM_SEEDS seeds (default 500); run with --release"]
fn long_havoc_5_percent_loss() {
    matrix(0.05, long_seeds());
}

#[test]
#[ignore = "long: TCP_SIM_SEEDS seeds (default 500); run with --release"]
fn long_havoc_10_percent_loss() {
    matrix(0.10, long_seeds());
}

#[test]
#[ignore = "long: TCP_SIM_SEEDS seeds (default 500); run with --release"]
fn long_havoc_20_percent_loss() {
    matrix(0.20, long_seeds());
}

// ----------------------------------------------------------------------
// Reordering alone.

/// 1% of the frames each way held back 5 ms on a 20 ms path, nothing
/// lost: reordering must not pass for loss for long. RACK mistakes the
/// first reordering of a connection for loss (nothing says yet that the
/// path reorders, and three segments SACKed above the hole are RFC
/// 6675's cue), learns from it, and its D-SACK undoes the reduction; later
/// reorderings wait out a reordering window of a quarter of the minimum
/// RTT. So at most one (undone) retransmission per run, and goodput
/// within 10% of the clean path's. What remains of the cost is the
/// receiver's: with a 256 KiB window, every late segment holds the
/// window's left edge (and the sender) back until it arrives.
///
/// Was, before a late original filling the hole was taken for reordering
/// and before a late original failing PAWS got its D-SACK: 65
/// retransmissions in 5 runs, every one a spurious reduction, and 0.45 of
/// the clean path's goodput at 100 ms.
#[test]
fn reordering_alone_costs_under_10_percent() {
    let clean = Impairments::clean(Duration::from_millis(10));
    let reordering = Impairments {
        reorder: 0.01,
        reorder_delay: Duration::from_millis(5),
        ..clean
    };
    let cfg = TcpConfig::default();
    let seeds = 0..5;
    let (mut clean_time, mut reordered_time) = (Duration::ZERO, Duration::ZERO);
    for seed in seeds.clone() {
        let run = |path: &Impairments| {
            run_pair(seed, Some(path), &cfg, 8 * MIB, 0, Duration::from_secs(60))
                .unwrap_or_else(|f| panic!("seed {seed}, {path}: {f}"))
        };
        clean_time += run(&clean).took;
        let o = run(&reordering);
        reordered_time += o.took;
        let stats = &o.info[0].stats;
        assert!(
            stats.retransmits <= 1 && stats.spurious_undos == stats.retransmits,
            "seed {seed}: {stats:?}"
        );
        assert_eq!(stats.timeouts, 0, "seed {seed}");
    }
    let ratio = clean_time.as_secs_f64() / reordered_time.as_secs_f64();
    eprintln!("goodput with 1% reordered by 5 ms at 20 ms RTT: {ratio:.3} of the clean path's");
    assert!(ratio >= 0.9, "{ratio:.3} of the clean path's goodput");
}

// ----------------------------------------------------------------------
// A bottleneck with a drop-tail queue.

/// The goodput a 2.5 MB/s bottleneck allows: 1448 payload bytes per
/// 1514-byte frame.
const BOTTLENECK_GOODPUT: f64 = 2_500_000.0 * 1448.0 / 1514.0;

/// 8 MiB through a 2.5 MB/s bottleneck whose queue holds `queue` times
/// the bandwidth-delay product, at 40 ms RTT, 5 seeds, with HyStart++ and
/// pacing as given; (goodput in bytes/s, retransmissions per run,
/// timeouts).
fn through_a_bottleneck(queue: f64, hystart: bool, pacing: bool) -> (f64, u64, u64) {
    let cfg = TcpConfig {
        hystart,
        pacing,
        ..TcpConfig::default()
    };
    let o = bottleneck_runs(queue, 0.0, &cfg);
    (o.goodput, o.rtx, o.rto)
}

/// What 5 runs through the bottleneck gave.
struct BottleneckRuns {
    /// Bytes/s.
    goodput: f64,
    /// Per run.
    rtx: u64,
    /// In all.
    rto: u64,
    /// The sender's mean smoothed RTT at the end.
    srtt: Duration,
}

/// 8 MiB through a 2.5 MB/s bottleneck whose queue holds `queue` BDPs, at
/// 40 ms RTT with `loss` on every frame, 5 seeds, with `cfg` (its
/// buffers made large enough that the window, not they, meets the queue).
fn bottleneck_runs(queue: f64, loss: f64, cfg: &TcpConfig) -> BottleneckRuns {
    const RATE: u64 = 2_500_000;
    let rtt = Duration::from_millis(40);
    let bdp = RATE as f64 * rtt.as_secs_f64();
    let path = Impairments {
        loss,
        ..Impairments::clean(rtt / 2).with_bottleneck(RATE, (queue * bdp) as usize)
    };
    let cfg = TcpConfig {
        send_buffer: 4 << 20,
        recv_buffer: 4 << 20,
        ..cfg.clone()
    };
    let (mut took, mut rtx, mut rto, mut srtt) = (Duration::ZERO, 0, 0, Duration::ZERO);
    let seeds = 5;
    for seed in 0..seeds {
        let o = run_pair(
            seed,
            Some(&path),
            &cfg,
            8 * MIB,
            0,
            Duration::from_secs(300),
        )
        .unwrap_or_else(|f| panic!("seed {seed}, {path}: {f}"));
        took += o.took;
        rtx += o.info[0].stats.retransmits;
        rto += o.info[0].stats.timeouts;
        srtt += o.info[0].srtt.unwrap_or_default();
    }
    BottleneckRuns {
        goodput: (seeds * 8 * MIB) as f64 / took.as_secs_f64(),
        rtx: rtx / seeds,
        rto,
        srtt: srtt / seeds as u32,
    }
}

/// Slow start overruns the queue and loses up to half a window at once;
/// the recovery must not make it worse. It did: RFC 6937's PRR let out one
/// segment more than each ACK delivered however many losses the ACKs
/// revealed, so with every other segment lost the sender went on sending
/// twice what got through, and after a timeout nothing reduced the window
/// while the hole at SND.UNA kept losing its retransmissions: 0.47 of
/// the bottleneck's rate, 1,600 retransmissions and 8 timeouts per 8 MiB.
/// Now the extra segment is only for ACKs that advance SND.UNA and reveal
/// no new loss (draft-ietf-tcpm-prr-rfc6937bis), and a lost retransmission
/// after a timeout begins a recovery.
#[test]
fn slow_start_overrunning_a_drop_tail_queue_recovers_at_the_bottleneck_rate() {
    let ceiling = BOTTLENECK_GOODPUT;
    let (goodput, rtx, rto) = through_a_bottleneck(1.0, false, false);
    eprintln!(
        "without HyStart++: {:.3} of the bottleneck, {rtx} retransmissions per run, {rto} timeouts",
        goodput / ceiling
    );
    assert!(goodput >= 0.9 * ceiling, "{goodput:.0} B/s");
    assert!(rtx < 300, "{rtx} retransmissions per run");
    assert_eq!(rto, 0);
}

/// HyStart++ sees the queue build (the RTT of a round rises by more than
/// an eighth) and leaves slow start before the overrun: a third of the
/// retransmissions or fewer (what remains is CUBIC's own probing of the
/// queue once in congestion avoidance).
#[test]
fn hystart_leaves_slow_start_before_the_queue_overflows() {
    let ceiling = BOTTLENECK_GOODPUT;
    let (goodput, rtx, rto) = through_a_bottleneck(1.0, true, false);
    let (_, rtx_without, _) = through_a_bottleneck(1.0, false, false);
    eprintln!(
        "with HyStart++: {:.3} of the bottleneck, {rtx} retransmissions per run (without: {rtx_without}), {rto} timeouts",
        goodput / ceiling
    );
    assert!(goodput >= 0.9 * ceiling, "{goodput:.0} B/s");
    assert!(3 * rtx <= rtx_without, "{rtx} against {rtx_without}");
    assert_eq!(rto, 0);
}

/// Behind a queue of a tenth of the BDP, a window sent as one burst loses
/// its tail however well the window is sized; paced at 1.2 times the
/// window per SRTT it arrives as the bottleneck drains it.
#[test]
fn pacing_fills_a_bottleneck_with_a_shallow_queue() {
    let (paced, _, rto) = through_a_bottleneck(0.1, true, true);
    let (bursty, _, _) = through_a_bottleneck(0.1, true, false);
    eprintln!(
        "queue of 0.1 BDP: {:.3} of the bottleneck paced, {:.3} not",
        paced / BOTTLENECK_GOODPUT,
        bursty / BOTTLENECK_GOODPUT
    );
    assert!(paced >= 0.85 * BOTTLENECK_GOODPUT, "{paced:.0} B/s");
    assert!(paced >= 1.15 * bursty, "{paced:.0} against {bursty:.0} B/s");
    assert_eq!(rto, 0);
}

/// Random loss is not congestion: at 3% loss on every frame behind the
/// bottleneck, CUBIC halves its window for losses no queue caused and
/// stays far below the bottleneck (the Mathis bound), while BBR, pacing at
/// its estimate of the bottleneck bandwidth, delivers nearly all of it.
#[test]
fn bbr_fills_a_bottleneck_that_loses_3_percent_at_random() {
    let cubic = bottleneck_runs(1.0, 0.03, &TcpConfig::default());
    let bbr = bottleneck_runs(1.0, 0.03, &bbr());
    eprintln!(
        "3% loss: BBR {:.3} of the bottleneck, CUBIC {:.3}",
        bbr.goodput / BOTTLENECK_GOODPUT,
        cubic.goodput / BOTTLENECK_GOODPUT
    );
    assert!(
        bbr.goodput >= 0.85 * BOTTLENECK_GOODPUT,
        "{:.0} B/s",
        bbr.goodput
    );
    assert!(bbr.goodput >= 4.0 * cubic.goodput);
    assert_eq!(bbr.rto, 0);
}

/// Behind a queue of two BDPs CUBIC fills it, and the RTT with it; BBR
/// keeps what is in flight near one BDP and the RTT near the path's own,
/// at the same goodput.
#[test]
fn bbr_keeps_the_queue_short() {
    let cubic = bottleneck_runs(2.0, 0.0, &TcpConfig::default());
    let bbr = bottleneck_runs(2.0, 0.0, &bbr());
    eprintln!(
        "queue of 2 BDP: BBR {:.3} of the bottleneck with SRTT {:?}, CUBIC {:.3} with {:?}",
        bbr.goodput / BOTTLENECK_GOODPUT,
        bbr.srtt,
        cubic.goodput / BOTTLENECK_GOODPUT,
        cubic.srtt
    );
    assert!(bbr.goodput >= 0.9 * BOTTLENECK_GOODPUT);
    assert!(bbr.srtt < Duration::from_millis(60), "{:?}", bbr.srtt);
    assert!(cubic.srtt > Duration::from_millis(80), "{:?}", cubic.srtt);
}

// ----------------------------------------------------------------------
// Regressions: seeds and configurations that once failed.

/// One run on a loss-only path (no other fault) with `rtt`.
fn lossy_run(seed: u64, loss: f64, rtt_ms: u64, up: u64, down: u64, timeout: Duration) {
    let path = Impairments {
        loss,
        ..Impairments::clean(Duration::from_millis(rtt_ms / 2))
    };
    if let Err(f) = run_pair(seed, Some(&path), &TcpConfig::default(), up, down, timeout) {
        panic!("seed {seed}, {path}: {f}");
    }
}

/// The server half-closes at once and then receives for a long time. Its
/// FIN was acknowledged (FIN-WAIT-2), but the next segment it sent was a
/// second FIN one sequence number further on, which the peer never
/// acknowledges: the retransmission timer kept running and, after 15
/// backed-off retransmissions (about 925 s), the connection failed with
/// "timed out" while the peer was still sending. Was: seed 3, 500,000
/// bytes one way, 20% loss, 10 ms RTT. Fixed in `Connection::fin_pending`.
#[test]
fn regression_second_fin_in_fin_wait_2() {
    lossy_run(3, 0.20, 10, 500_000, 0, Duration::from_secs(4 * 3600));
}

/// The same bug, seen without loss: once its FIN is acknowledged the
/// half-closed end has nothing in flight and never times out.
#[test]
fn regression_nothing_in_flight_in_fin_wait_2() {
    let (mut sim, a, b) = tcp_support::pair(0, None, &TcpConfig::default());
    let (c, s) = tcp_support::connect(&mut sim, a, b, 80, Duration::from_secs(5)).unwrap();
    let mut ends = [
        End::new(a, c, (4 * MIB, 1), (0, 2)),
        End::new(b, s, (0, 2), (4 * MIB, 1)),
    ];
    // Part of the way: the server has sent its FIN and had it acknowledged.
    let mut steps = 0;
    while sim.iface(b).tcp().info(s).unwrap().state != State::FinWait2 {
        let _ = exchange(&mut sim, &mut ends, Duration::from_micros(10));
        steps += 1;
        assert!(steps < 1000, "never in FIN-WAIT-2");
    }
    let info = sim.iface(b).tcp().info(s).unwrap();
    assert_eq!(info.bytes_in_flight, 0, "{info:?}");
    exchange(&mut sim, &mut ends, Duration::from_secs(60)).unwrap();
    assert_eq!(sim.iface(b).tcp().info(s).unwrap().stats.timeouts, 0);
}

/// A segment that starts before RCV.NXT and ends after it (here the
/// RFC 6675 rescue retransmission of the last MSS before SND.MAX, which
/// overlapped the previous segment by 655 bytes) had its new bytes stored
/// `skip` bytes too early: the receiver delivered 137 wrong bytes where
/// the last 792 of the stream belonged (corrupt at byte 10,484,968 of
/// 10 MiB) and never took the FIN. Was: seed 1018, havoc with no loss
/// (8 of 200 seeds). Fixed in `Connection::receive_data`.
#[test]
fn regression_partially_old_segment_stored_at_wrong_offset() {
    let path = Impairments::havoc(0.0);
    if let Err(f) = run_pair(
        1018,
        Some(&path),
        &TcpConfig::default(),
        10 * MIB,
        10 * MIB,
        deadline(0.0),
    ) {
        panic!("{f}");
    }
}

/// Data segments carried SACK blocks (from the reverse direction's
/// losses) on top of a full MSS of payload, so they exceeded the MTU and
/// were sent as two IP fragments: 64% of one end's data segments here.
/// Besides doubling the frames, a lost fragment lost the segment, and one
/// flipped bit in each fragment could cancel in the TCP checksum: this
/// seed delivered a corrupt byte at 10,039,799. Was: seed 39, havoc with
/// 5% loss. Fixed in `Connection::data_segment`; [`exchange`] now fails
/// any run in which a host sent a fragment.
#[test]
fn regression_sack_blocks_pushed_segments_over_the_mtu() {
    let path = Impairments::havoc(0.05);
    if let Err(f) = run_pair(
        39,
        Some(&path),
        &TcpConfig::default(),
        10 * MIB,
        10 * MIB,
        deadline(0.05),
    ) {
        panic!("{f}");
    }
}

/// RTT samples are taken from the timestamp echo of any ACK that covers
/// new data. When a retransmission's ACK is lost and the segment is sent
/// again after a (backed-off) timeout, the receiver answers the duplicate
/// with its older TS.Recent (RFC 7323 §4.3 only updates it for segments
/// at or before Last.ACK.sent that are acceptable), so the sample spans
/// the whole backoff: SRTT climbs to seconds on a 10 ms path, the RTO to
/// the 120 s ceiling, and at 20% loss a transfer nearly stops. Here 1 MB
/// one way takes 4,632 s of virtual time (SRTT 262 ms at the end; other
/// seeds reach 2.4 s). Taking no timestamp sample from an ACK that follows
/// a timeout brings the same run to 67 s (and 8 seeds to 37–67 s).
/// The receiver's window shrank below an MSS while the sender had nothing
/// in flight; sender SWS avoidance held the data back and the window
/// update that reopened it was lost, so neither side ever sent again (the
/// run stopped at 1.9 of 10 MiB). Fixed by probing on the persist timer.
/// Was: seed 1350 of `long_havoc_20_percent_loss`.
#[test]
fn regression_small_window_deadlock_at_20_percent_havoc() {
    matrix(0.20, 1350..1351);
}

/// Later fixes to the timers (no sample across a timeout, Karn's rule for
/// the backed-off RTO) brought this seed within the 300 s it is given.
#[test]
fn regression_rtt_inflation_at_20_percent_loss() {
    lossy_run(3, 0.20, 10, 1_000_000, 0, Duration::from_secs(300));
}

// ----------------------------------------------------------------------
// Many connections.

/// `n` concurrent connections from host 1 to one listener on host 2 (the
/// client keeps at most 256 connects outstanding; backlog 1024), each
/// moving a different amount of data each way at once, all at the same
/// time; then every handle is closed and, after TIME-WAIT, both stacks
/// must be empty.
fn many_connections(n: usize, path: Option<&Impairments>) {
    let net = netstrata::link::MemoryNetwork::new(1500);
    let mut sim = Simulation::new();
    let cfg = TcpConfig {
        // Small buffers, as a server with many connections would use.
        send_buffer: 16 * 1024,
        recv_buffer: 16 * 1024,
        ..TcpConfig::default()
    };
    let a = add_host(&mut sim, &net, 1, 7, path, &cfg);
    let b = add_host(&mut sim, &net, 2, 7, path, &cfg);
    let pairs = open_many(&mut sim, (a, b), 80, n, 1024, 256, Duration::from_secs(600))
        .unwrap_or_else(|k| panic!("only {k} of {n} connections established"));
    let syn_drops = sim.iface(b).counters().tcp.syn_backlog_drops;
    let opened_at = sim.now();
    assert_eq!(sim.iface(a).tcp().connection_count(), n);
    assert_eq!(sim.iface(b).tcp().connection_count(), n);

    let mut ends = Vec::with_capacity(2 * n);
    for (i, &(c, s)) in pairs.iter().enumerate() {
        let i = i as u64;
        let up = (1 + mix(i) % 4000, mix(i ^ 0x75));
        let down = (1 + mix(i ^ 0xd) % 12_000, mix(i ^ 0xd0));
        ends.push(End::new(a, c, up, down));
        ends.push(End::new(b, s, down, up));
    }
    let bytes: u64 = ends.iter().map(|e| e.send_len).sum();
    if let Err(f) = exchange(&mut sim, &mut ends, Duration::from_secs(600)) {
        panic!("{n} connections: {f}");
    }
    let data_time = sim.now() - opened_at;
    for e in &ends {
        sim.iface(e.host).tcp().close(e.conn).unwrap();
    }
    // TIME-WAIT is 2 MSL (60 s).
    sim.run_until(sim.now() + Duration::from_secs(61));
    for h in [a, b] {
        let tcp = sim.iface(h).tcp();
        assert_eq!(tcp.connection_count(), 0, "host {h} still has connections");
        let stats = tcp.stats();
        assert_eq!(stats.failed, 0, "{stats:?}");
    }
    eprintln!(
        "{n} connections: established by {opened_at} ({syn_drops} SYNs dropped by the backlog), \
         {bytes} bytes in {data_time:?} of virtual time, all closed"
    );
}

#[test]
fn thousand_connections() {
    many_connections(1000, Some(&Impairments::clean(Duration::from_millis(1))));
}

#[test]
fn thousand_connections_under_havoc() {
    many_connections(1000, Some(&Impairments::havoc(0.02)));
}

/// 10,000 connections (about 8 s in the test profile); 1 ms of jitter
/// spreads each burst over a millisecond, as a link's serialisation would
/// (see the regression below for what happens without it).
#[test]
fn ten_thousand_connections() {
    let path = Impairments {
        jitter: Duration::from_millis(1),
        ..Impairments::clean(Duration::from_millis(1))
    };
    many_connections(10_000, Some(&path));
}

/// 10,000 connections that all start sending in the same virtual instant
/// on a path with no jitter: tens of thousands of frames reach the
/// in-memory switch at once and all but 1,024 per port are dropped
/// (incast). The connections that lost frames retransmit in lock step
/// (identical 200 ms minimum RTO, same start, same backoff), so every
/// round is again one burst (and, being deterministic, apparently lets
/// the same ones through first). Once the ARP entry has expired (60 s; it
/// is refreshed only when used in its last 5 s), each round's burst also
/// meets the 64-packet ARP queue: 12,067 packets are dropped there. After
/// 600 s of virtual time 2,119 of the 20,000 ends have not finished (they
/// would eventually time out). With an unbounded ARP queue all finish,
/// after 205 s; with 1 ms of jitter ([`ten_thousand_connections`]) all
/// finish in 7 ms.
#[test]
fn regression_incast_with_lockstep_retransmissions() {
    many_connections(10_000, Some(&Impairments::clean(Duration::from_millis(1))));
}

/// What a failure report looks like (and that it names both ends).
#[test]
fn failure_report_names_both_ends() {
    // A path that loses everything: no connection.
    let path = Impairments {
        loss: 1.0,
        ..Impairments::clean(Duration::from_millis(1))
    };
    let f: Box<Failure> = run_pair(
        1,
        Some(&path),
        &TcpConfig::default(),
        1,
        1,
        Duration::from_secs(5),
    )
    .unwrap_err();
    assert_eq!(f.kind, FailureKind::NoConnection);
    let text = f.to_string();
    assert!(text.contains("end:") && text.contains("peer:"), "{text}");
}
