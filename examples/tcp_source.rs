//! `tcp_source`: connects, sends a file or N bytes, closes gracefully, and
//! prints bytes, seconds and Gbit/s. Exits 0 only when everything was sent
//! and acknowledged.
//!
//! `tcp_source --tap NAME --ip A.B.C.D/P [link options] --connect IP:PORT
//! (--file FILE | --bytes N)`

#[path = "common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use netstrata::blocking::TcpStream;
use netstrata::transport::tcp::State;

const USAGE: &str = "--connect IP:PORT (--file FILE | --bytes N)";

fn fail(msg: String) -> ! {
    eprintln!("tcp_source: {msg}");
    std::process::exit(1)
}

fn main() {
    let (link, rest) = common::parse_args("tcp_source", USAGE);
    let (mut connect, mut file, mut bytes) = (None::<SocketAddrV4>, None::<String>, None::<u64>);
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--connect" => {
                connect = Some(common::parse_num(
                    "tcp_source",
                    USAGE,
                    "--connect",
                    it.next(),
                ))
            }
            "--file" => {
                file = Some(it.next().cloned().unwrap_or_else(|| {
                    common::usage_error("tcp_source", USAGE, "--file needs a path")
                }))
            }
            "--bytes" => bytes = Some(common::parse_num("tcp_source", USAGE, "--bytes", it.next())),
            other => common::usage_error(
                "tcp_source",
                USAGE,
                &format!("unexpected argument {other:?}"),
            ),
        }
    }
    let dst = connect.unwrap_or_else(|| {
        common::usage_error("tcp_source", USAGE, "--connect IP:PORT is required")
    });
    let mut input: Box<dyn Read> = match (file, bytes) {
        (Some(p), None) => Box::new(
            std::fs::File::open(&p).unwrap_or_else(|e| fail(format!("cannot open {p}: {e}"))),
        ),
        (None, Some(n)) => Box::new(std::io::repeat(0x5a).take(n)),
        _ => common::usage_error(
            "tcp_source",
            USAGE,
            "give exactly one of --file and --bytes",
        ),
    };
    let rt = common::open("tcp_source", &link);
    let mut stream = TcpStream::connect(&rt, dst)
        .unwrap_or_else(|e| fail(format!("cannot connect to {dst}: {e}")));
    eprintln!(
        "tcp_source: connected {} -> {dst}",
        stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    );
    let start = Instant::now();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = input
            .read(&mut buf)
            .unwrap_or_else(|e| fail(format!("read failed: {e}")));
        if n == 0 {
            break;
        }
        stream
            .write_all(&buf[..n])
            .unwrap_or_else(|e| fail(format!("send failed after {total} bytes: {e}")));
        total += n as u64;
    }
    stream
        .shutdown(std::net::Shutdown::Write)
        .unwrap_or_else(|e| fail(format!("shutdown failed: {e}")));
    // The rate counts until the last byte is acknowledged, woken by the
    // acknowledgment itself rather than found by polling.
    stream
        .wait_acked(Some(Duration::from_secs(120)))
        .unwrap_or_else(|e| fail(format!("{total} bytes sent, not all acknowledged: {e}")));
    let secs = start.elapsed().as_secs_f64();
    // Then the FIN acknowledged too: FIN-WAIT-2 or later.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let info = stream
            .info()
            .unwrap_or_else(|e| fail(format!("connection lost: {e}")));
        match info.state {
            State::FinWait2 | State::TimeWait => break,
            State::Closed => fail(format!(
                "connection closed before all data was acknowledged ({total} bytes sent)"
            )),
            _ if Instant::now() > deadline => {
                fail("timed out waiting for the acknowledgment".into())
            }
            _ => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    let info = stream.info().ok();
    println!(
        "{total} bytes in {secs:.3} s = {:.3} Gbit/s",
        total as f64 * 8.0 / secs.max(1e-9) / 1e9
    );
    if let Some(i) = info {
        eprintln!(
            "tcp_source: retransmissions {}, timeouts {}, loss probes {}, cwnd {}, srtt {:?}",
            i.stats.retransmits, i.stats.timeouts, i.stats.loss_probes, i.cwnd, i.srtt
        );
    }
    drop(stream);
    std::thread::sleep(Duration::from_millis(100));
}
