//! `ping`: ICMP echo over netstrata on a TAP device, printed like Linux's
//! ping. Exits 0 if any reply came, 1 if none, 2 on bad arguments.
//!
//! `ping --tap NAME --ip A.B.C.D/P [link options] TARGET [-c COUNT]
//! [-i SECONDS] [-s SIZE] [-W TIMEOUT]`

#[path = "common/mod.rs"]
mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const USAGE: &str = "TARGET [-c COUNT] [-i SECONDS] [-s SIZE] [-W TIMEOUT]";

fn main() {
    let (link, rest) = common::parse_args("ping", USAGE);
    let (mut count, mut interval, mut size, mut wait) = (None::<u32>, 1.0f64, 56usize, 1.0f64);
    let mut target = None;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-c" => count = Some(common::parse_num("ping", USAGE, "-c", it.next())),
            "-i" => interval = common::parse_num("ping", USAGE, "-i", it.next()),
            "-s" => size = common::parse_num("ping", USAGE, "-s", it.next()),
            "-W" => wait = common::parse_num("ping", USAGE, "-W", it.next()),
            t if target.is_none() && !t.starts_with('-') => {
                target = Some(t.parse::<Ipv4Addr>().unwrap_or_else(|_| {
                    common::usage_error("ping", USAGE, &format!("invalid target address {t:?}"))
                }))
            }
            other => common::usage_error("ping", USAGE, &format!("unexpected argument {other:?}")),
        }
    }
    let target = target.unwrap_or_else(|| common::usage_error("ping", USAGE, "TARGET is required"));
    if !(interval.is_finite() && interval >= 0.0 && wait.is_finite() && wait > 0.0) {
        common::usage_error("ping", USAGE, "-i and -W take positive numbers of seconds");
    }
    if size > netstrata::internet::ping::MAX_PAYLOAD {
        common::usage_error("ping", USAGE, "-s is at most 65507");
    }
    let rt = common::open("ping", &link);
    println!("PING {target} {size}({}) bytes of data.", size + 28);
    let start = Instant::now();
    let (mut sent, mut received, mut rtts) = (0u32, 0u32, Vec::new());
    let mut seq: u16 = 1;
    loop {
        let t0 = Instant::now();
        sent += 1;
        match rt.ping(target, seq, size, Duration::from_secs_f64(wait)) {
            Ok(r) => {
                received += 1;
                let ms = r.rtt.as_secs_f64() * 1000.0;
                rtts.push(ms);
                println!(
                    "{} bytes from {}: icmp_seq={} ttl={} time={:.2} ms",
                    r.icmp_len, r.from, r.seq_no, r.ttl, ms
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => println!("From {target} icmp_seq={seq} {e}"),
        }
        if count.is_some_and(|c| sent >= c) {
            break;
        }
        seq = seq.wrapping_add(1);
        let next = t0 + Duration::from_secs_f64(interval);
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let elapsed = start.elapsed().as_millis();
    println!("\n--- {target} ping statistics ---");
    println!(
        "{sent} packets transmitted, {received} received, {}% packet loss, time {elapsed}ms",
        (sent - received) * 100 / sent.max(1)
    );
    if !rtts.is_empty() {
        let n = rtts.len() as f64;
        let avg = rtts.iter().sum::<f64>() / n;
        let min = rtts.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = rtts.iter().cloned().fold(0.0, f64::max);
        let mdev = (rtts.iter().map(|r| (r - avg).powi(2)).sum::<f64>() / n).sqrt();
        println!("rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms");
    }
    std::process::exit(if received > 0 { 0 } else { 1 });
}
