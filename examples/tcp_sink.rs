//! `tcp_sink`: accepts one TCP connection, stores or discards everything
//! it receives, prints bytes, seconds and Gbit/s, and exits when the peer
//! closes.
//!
//! `tcp_sink --tap NAME --ip A.B.C.D/P [link options] --port PORT [-o FILE]`

#[path = "common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::time::Instant;

use netstrata::blocking::TcpListener;

const USAGE: &str = "--port PORT [-o FILE]";

fn main() {
    let (link, rest) = common::parse_args("tcp_sink", USAGE);
    let (mut port, mut out) = (None::<u16>, None::<String>);
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => port = Some(common::parse_num("tcp_sink", USAGE, "--port", it.next())),
            "-o" => {
                out =
                    Some(it.next().cloned().unwrap_or_else(|| {
                        common::usage_error("tcp_sink", USAGE, "-o needs a file")
                    }))
            }
            other => {
                common::usage_error("tcp_sink", USAGE, &format!("unexpected argument {other:?}"))
            }
        }
    }
    let port =
        port.unwrap_or_else(|| common::usage_error("tcp_sink", USAGE, "--port PORT is required"));
    let mut file = out.map(|p| {
        std::io::BufWriter::new(std::fs::File::create(&p).unwrap_or_else(|e| {
            eprintln!("tcp_sink: cannot create {p}: {e}");
            std::process::exit(1)
        }))
    });
    let rt = common::open("tcp_sink", &link);
    let listener = TcpListener::bind(&rt, ("0.0.0.0", port)).unwrap_or_else(|e| {
        eprintln!("tcp_sink: cannot listen on port {port}: {e}");
        std::process::exit(1)
    });
    eprintln!("tcp_sink: listening on {}:{port}", link.ip.address());
    let (mut stream, peer) = listener.accept().unwrap_or_else(|e| {
        eprintln!("tcp_sink: accept failed: {e}");
        std::process::exit(1)
    });
    eprintln!("tcp_sink: connection from {peer}");
    let start = Instant::now();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total: u64 = 0;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                if let Some(f) = file.as_mut()
                    && let Err(e) = f.write_all(&buf[..n])
                {
                    eprintln!("tcp_sink: write failed: {e}");
                    std::process::exit(1)
                }
            }
            Err(e) => {
                eprintln!("tcp_sink: receive failed after {total} bytes: {e}");
                std::process::exit(1)
            }
        }
    }
    if let Some(mut f) = file
        && let Err(e) = f.flush()
    {
        eprintln!("tcp_sink: write failed: {e}");
        std::process::exit(1)
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{total} bytes in {secs:.3} s = {:.3} Gbit/s",
        total as f64 * 8.0 / secs.max(1e-9) / 1e9
    );
    drop(stream);
    // Let the FIN/ACK exchange finish before the stack goes.
    std::thread::sleep(std::time::Duration::from_millis(200));
}
