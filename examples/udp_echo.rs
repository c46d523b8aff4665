//! `udp_echo`: echoes every UDP datagram back to its sender until killed.
//!
//! `udp_echo --tap NAME --ip A.B.C.D/P [link options] --port PORT`

#[path = "common/mod.rs"]
mod common;

use netstrata::blocking::UdpSocket;

const USAGE: &str = "--port PORT";

fn main() {
    let (link, rest) = common::parse_args("udp_echo", USAGE);
    let mut port = None::<u16>;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => port = Some(common::parse_num("udp_echo", USAGE, "--port", it.next())),
            other => {
                common::usage_error("udp_echo", USAGE, &format!("unexpected argument {other:?}"))
            }
        }
    }
    let port =
        port.unwrap_or_else(|| common::usage_error("udp_echo", USAGE, "--port PORT is required"));
    let rt = common::open("udp_echo", &link);
    let sock = UdpSocket::bind(&rt, ("0.0.0.0", port)).unwrap_or_else(|e| {
        eprintln!("udp_echo: cannot bind port {port}: {e}");
        std::process::exit(1)
    });
    eprintln!("udp_echo: echoing on {}:{port}", link.ip.address());
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if let Err(e) = sock.send_to(&buf[..n], from) {
                    log::warn!("echo to {from} failed: {e}");
                }
            }
            Err(e) => {
                eprintln!("udp_echo: {e}");
                std::process::exit(1)
            }
        }
    }
}
