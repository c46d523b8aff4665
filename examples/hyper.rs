//! hyper 1.x on netstrata's tokio adapter (feature `tokio`): the HTTP/1.1
//! server and client of the Rust ecosystem over netstrata's `TcpStream`,
//! through hyper-util's `TokioIo`.
//!
//! ```text
//! cargo run --features tokio --example hyper
//! hyper (--tap NAME | --tun NAME) --ip A.B.C.D/PREFIX [link options] [--port PORT]
//! ```
//!
//! Without a link, two stacks on the in-memory network: a hyper server on
//! one, a hyper client on the other, a few requests, their answers
//! printed. With a link, the server alone on a TAP or TUN, until killed
//! (`curl http://A.B.C.D:PORT/`): `GET /` answers a line, `GET /bytes/N`
//! N bytes, any `POST` the length of its body. It prints
//! `serving on A.B.C.D:PORT` once it listens.

#[path = "common/mod.rs"]
mod common;

use std::convert::Infallible;
use std::net::SocketAddrV4;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
use netstrata::tokio::{Stack, TcpListener, TcpStream};
use netstrata::{Interface, InterfaceConfig};

const USAGE: &str = "[--port PORT]";

/// What the server answers.
async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let reply = |status, body: Bytes| {
        let mut res = Response::new(Full::new(body));
        *res.status_mut() = status;
        Ok(res)
    };
    if req.method() == Method::POST {
        return match req.into_body().collect().await {
            Ok(body) => reply(
                StatusCode::OK,
                Bytes::from(format!("{} bytes\n", body.to_bytes().len())),
            ),
            Err(_) => reply(StatusCode::BAD_REQUEST, Bytes::new()),
        };
    }
    if path == "/" {
        return reply(
            StatusCode::OK,
            Bytes::from_static(b"hello from hyper on netstrata\n"),
        );
    }
    match path.strip_prefix("/bytes/").map(str::parse::<usize>) {
        Some(Ok(n)) if n <= 1 << 30 => reply(StatusCode::OK, Bytes::from(vec![b'x'; n])),
        _ => reply(StatusCode::NOT_FOUND, Bytes::new()),
    }
}

/// Accepts connections forever, each served by hyper on its own task.
async fn serve(listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("hyper: accept: {e}");
                return;
            }
        };
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer));
            if let Err(e) = conn.await {
                log::debug!("hyper: {peer}: {e}");
            }
        });
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().len() > 1 {
        return on_a_link().await;
    }
    let net = MemoryNetwork::new(1500);
    let host = |n: u32| {
        let port = net.attach();
        let cidr = format!("192.0.2.{n}/24").parse().unwrap();
        let cfg = InterfaceConfig::new(EthernetAddress::local(n), cidr);
        Stack::on_memory(Interface::new(cfg, port.capabilities()), port)
    };
    let (client, server) = (host(1), host(2));
    let addr: SocketAddrV4 = "192.0.2.2:80".parse()?;
    tokio::spawn(serve(TcpListener::bind(&server, addr)?));
    let stream = TcpStream::connect(&client, addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    for (method, path, body) in [
        ("GET", "/", ""),
        ("GET", "/bytes/100000", ""),
        ("POST", "/upload", "some data"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "192.0.2.2")
            .body(Full::new(Bytes::from(body)))?;
        sender.ready().await?;
        let res = sender.send_request(req).await?;
        let status = res.status();
        let got = res.into_body().collect().await?.to_bytes();
        let shown = if got.len() > 40 {
            format!("{} bytes", got.len())
        } else {
            format!("{:?}", String::from_utf8_lossy(&got))
        };
        println!("{method} {path}: {status}, {shown}");
    }
    Ok(())
}

/// The server on a TAP or TUN, until killed.
async fn on_a_link() -> Result<(), Box<dyn std::error::Error>> {
    let (link, rest) = common::parse_args("hyper", USAGE);
    let mut port = 80u16;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => port = common::parse_num("hyper", USAGE, "--port", it.next()),
            other => common::usage_error("hyper", USAGE, &format!("unknown argument {other:?}")),
        }
    }
    let cfg = common::interface_config(&link);
    let stack = match common::open_device(&link)? {
        common::OpenDevice::Tap(tap) => {
            let iface = Interface::new(cfg, tap.capabilities());
            Stack::on_fd(iface, tap)?
        }
        common::OpenDevice::Tun(tun) => {
            let iface = Interface::new(cfg, tun.capabilities());
            Stack::on_fd(iface, tun)?
        }
    };
    let addr = SocketAddrV4::new(link.ip.address(), port);
    let listener = TcpListener::bind(&stack, addr)?;
    println!("serving on {addr}");
    serve(listener).await;
    Ok(())
}
