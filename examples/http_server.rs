//! `http_server`: serves the files below a directory over HTTP/1.1 until
//! killed.
//!
//! `http_server --tap NAME --ip A.B.C.D/P [link options] [--port PORT]
//! --root DIR`
//!
//! Listens on the interface's address, port 80 unless given, and logs
//! each request at info level (`-v`). Exits 1 if the stack cannot start
//! or the port cannot be bound, 2 on bad arguments (no `--root`, a root
//! that is not a directory, a bad port).

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;

use netstrata::application::http::StaticFiles;
use netstrata::application::http::server::{Handler, Request, Server, ServerConfig};
use netstrata::blocking::TcpListener;

const TOOL: &str = "http_server";
const USAGE: &str = "[--port PORT] --root DIR";

fn main() {
    let (link, rest) = common::parse_args(TOOL, USAGE);
    let (mut port, mut root) = (80u16, None::<PathBuf>);
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => {
                port = common::parse_num(TOOL, USAGE, "--port", it.next());
                if port == 0 {
                    common::usage_error(TOOL, USAGE, "--port must be 1 to 65535");
                }
            }
            "--root" => {
                let v = it
                    .next()
                    .unwrap_or_else(|| common::usage_error(TOOL, USAGE, "--root needs a value"));
                root = Some(PathBuf::from(v));
            }
            other => common::usage_error(TOOL, USAGE, &format!("unexpected argument {other:?}")),
        }
    }
    let root = root.unwrap_or_else(|| common::usage_error(TOOL, USAGE, "--root DIR is required"));
    if !root.is_dir() {
        common::usage_error(
            TOOL,
            USAGE,
            &format!("{} is not a directory", root.display()),
        );
    }
    let files = StaticFiles::new(&root)
        .unwrap_or_else(|e| common::usage_error(TOOL, USAGE, &format!("{}: {e}", root.display())));
    let rt = common::open(TOOL, &link);
    let ip = link.ip.address();
    let listener = TcpListener::bind(&rt, (ip, port)).unwrap_or_else(|e| {
        eprintln!("{TOOL}: cannot listen on {ip}:{port}: {e}");
        std::process::exit(1)
    });
    // Closures are handlers: this one logs each request around the files.
    let handler = move |req: &mut Request<'_>| {
        let response = files.handle(req);
        log::info!(
            "{} \"{} {} {}\" {}",
            req.peer_addr(),
            req.method(),
            req.target(),
            req.version().as_str(),
            response.status
        );
        response
    };
    let server = Server::spawn(listener, handler, ServerConfig::default()).unwrap_or_else(|e| {
        eprintln!("{TOOL}: {e}");
        std::process::exit(1)
    });
    eprintln!(
        "{TOOL}: serving {} on http://{ip}:{}/",
        root.display(),
        server.local_addr().port()
    );
    // Serve until killed (SIGTERM, SIGINT).
    loop {
        std::thread::park();
    }
}
