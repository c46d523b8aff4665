//! netstrata's side of `../shared/anchors/run.sh tap`: one TCP connection
//! to the kernel over a TAP (or a TUN), driven the way the reference
//! program drives smoltcp, so that the two figures compare stacks and not
//! harnesses: one thread polls the interface, moves the data through the
//! core's socket calls (written in place, read without a copy) and sleeps
//! on the device when nothing is due. No socket runtime, no second thread.
//!
//! ```text
//! tap_bench LINK send --connect 198.18.1.1:5001 [--bytes N]
//! tap_bench LINK recv --connect 198.18.1.1:5002 [--bytes N]
//! ```
//!
//! `send` writes N bytes (default 512 MiB) of 0x5a to a `socat` that
//! listens and discards; `recv` reads what a listening `socat` sends from
//! `/dev/zero` until it closes, checks every byte is zero, and that N
//! came. The time counts from the connection's establishment to the ACK
//! of our FIN (`send`) or the peer's FIN (`recv`), as the reference's
//! does. Prints one line: bytes, seconds, Gbit/s.
//!
//! This is a program at the edge of the system: it reads the wall clock.

mod common;

use std::net::SocketAddrV4;
use std::time::Instant as WallClock;

use netstrata::link::{Device, TapSleeper};
use netstrata::transport::tcp::{State, TcpError};
use netstrata::{Duration, Instant, Interface, InterfaceConfig};

const USAGE: &str = "send|recv --connect A.B.C.D:PORT [--bytes N]";

fn main() {
    let (link, rest) = common::parse_args("tap_bench", USAGE);
    let mut it = rest.iter();
    let (mut send, mut connect, mut bytes) = (None, None, 512u64 << 20);
    while let Some(a) = it.next() {
        match a.as_str() {
            "send" => send = Some(true),
            "recv" => send = Some(false),
            "--connect" => {
                connect = Some(common::parse_num::<SocketAddrV4>(
                    "tap_bench",
                    USAGE,
                    "--connect",
                    it.next(),
                ));
            }
            "--bytes" => bytes = common::parse_num("tap_bench", USAGE, "--bytes", it.next()),
            other => common::usage_error(
                "tap_bench",
                USAGE,
                &format!("unexpected argument {other:?}"),
            ),
        }
    }
    let send = send.unwrap_or_else(|| common::usage_error("tap_bench", USAGE, "send or recv?"));
    let connect =
        connect.unwrap_or_else(|| common::usage_error("tap_bench", USAGE, "--connect is required"));
    let cfg = common::interface_config(&link);
    let result = match common::open_device(&link) {
        Ok(common::OpenDevice::Tap(tap)) => {
            let sleeper = tap.sleeper();
            run(cfg, tap, &sleeper, send, connect, bytes)
        }
        Ok(common::OpenDevice::Tun(tun)) => {
            let sleeper = tun.sleeper();
            run(cfg, tun, &sleeper, send, connect, bytes)
        }
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok((done, secs)) => println!(
            "{done} bytes in {secs:.3} s = {:.3} Gbit/s",
            done as f64 * 8.0 / secs / 1e9
        ),
        Err(e) => {
            eprintln!("tap_bench: {e}");
            std::process::exit(1)
        }
    }
}

/// Runs the transfer; returns the bytes moved and the seconds it took.
fn run<D: Device>(
    cfg: InterfaceConfig,
    mut dev: D,
    sleeper: &TapSleeper,
    send: bool,
    to: SocketAddrV4,
    total: u64,
) -> Result<(u64, f64), String> {
    let mut iface = Interface::new(cfg, dev.capabilities());
    let clock = WallClock::now();
    let now = || Instant::from_micros(clock.elapsed().as_micros() as u64);
    let h = iface
        .tcp()
        .connect(to)
        .map_err(|e| format!("connect to {to}: {e}"))?;
    let mut start = None;
    let mut done = 0u64;
    loop {
        let t = now();
        iface.poll(t, &mut dev);
        let tcp = iface.tcp();
        let state = tcp.state(h).map_err(|e| e.to_string())?;
        if start.is_none() && state == State::Established {
            start = Some(WallClock::now());
        }
        if start.is_none() && state == State::Closed {
            return Err(format!("connection to {to} failed"));
        }
        if send {
            while done < total {
                let n = tcp.send_with(h, |room| {
                    let n = room.len().min((total - done) as usize);
                    room[..n].fill(0x5a);
                    n
                });
                match n {
                    Ok(n) => done += n as u64,
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => return Err(e.to_string()),
                }
            }
            if done == total && state == State::Established {
                tcp.shutdown(h).map_err(|e| e.to_string())?;
            }
            // Our FIN was acknowledged, and every byte before it.
            if matches!(state, State::FinWait2 | State::TimeWait) {
                break;
            }
            if state == State::Closed {
                return Err(format!("connection closed after {done} bytes"));
            }
        } else {
            loop {
                let b = match tcp.recv_bytes(h, usize::MAX) {
                    Ok(b) if !b.is_empty() => b,
                    Ok(_) | Err(TcpError::WouldBlock) => break,
                    Err(e) => return Err(e.to_string()),
                };
                if b.iter().any(|&x| x != 0) {
                    return Err("unexpected data (the peer sends /dev/zero)".into());
                }
                done += b.len() as u64;
            }
            if tcp.recv_eof(h) {
                break;
            }
            if state == State::Closed {
                return Err(format!("connection closed after {done} bytes"));
            }
        }
        let t = now();
        match iface.poll_at(t) {
            Some(due) if due <= t => {}
            due => {
                let wait = due.map_or(Duration::from_millis(100), |d| d - t);
                sleeper.wait(Some(wait)).map_err(|e| e.to_string())?;
            }
        }
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    if done != total {
        return Err(format!("{done} bytes moved, {total} expected"));
    }
    Ok((done, secs))
}
