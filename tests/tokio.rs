//! The tokio adapter (feature `tokio`) over the in-memory network, on the
//! current-thread and the multi-thread runtime: streams (whole and split),
//! UDP, and hyper 1.x client and server over netstrata's `TcpStream`
//! through hyper-util's `TokioIo`.

use std::convert::Infallible;
use std::net::SocketAddrV4;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use netstrata::link::{Device, EthernetAddress, MemoryNetwork};
use netstrata::tokio::{Stack, TcpListener, TcpStream, UdpSocket};
use netstrata::{Interface, InterfaceConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Two stacks on one in-memory switch: 192.0.2.1 and 192.0.2.2.
fn two_stacks() -> (Stack, Stack) {
    let net = MemoryNetwork::new(1500);
    let host = |n: u32| {
        let port = net.attach();
        let cidr = format!("192.0.2.{n}/24").parse().unwrap();
        let cfg = InterfaceConfig::new(EthernetAddress::local(n), cidr);
        Stack::on_memory(Interface::new(cfg, port.capabilities()), port)
    };
    (host(1), host(2))
}

fn addr(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 ^ i as u8)
        .collect()
}

/// A server echoes 4 MiB through split halves on two tasks; the client
/// writes and reads at once on two tasks of its own.
async fn echo_4_mib() {
    let (a, b) = two_stacks();
    let listener = TcpListener::bind(&b, addr("192.0.2.2:7")).unwrap();
    let server = tokio::spawn(async move {
        let (stream, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip().to_string(), "192.0.2.1");
        let (mut r, mut w) = stream.into_split();
        tokio::io::copy(&mut r, &mut w).await.unwrap()
    });
    let c = TcpStream::connect(&a, addr("192.0.2.2:7")).await.unwrap();
    assert_eq!(c.peer_addr().unwrap().to_string(), "192.0.2.2:7");
    let data = pattern(4 << 20);
    let (mut r, mut w) = c.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        // Dropping the write half sends the FIN.
    });
    let mut echoed = Vec::new();
    r.read_to_end(&mut echoed).await.unwrap();
    writer.await.unwrap();
    assert_eq!(server.await.unwrap(), data.len() as u64);
    assert!(echoed == data, "echo differs");
}

#[tokio::test(flavor = "current_thread")]
async fn echo_on_the_current_thread_runtime() {
    echo_4_mib().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_on_the_multi_thread_runtime() {
    echo_4_mib().await;
}

async fn udp_round_trips() {
    let (a, b) = two_stacks();
    let server = UdpSocket::bind(&b, addr("192.0.2.2:53")).unwrap();
    let client = UdpSocket::bind(&a, addr("0.0.0.0:0")).unwrap();
    let echo = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        for _ in 0..100 {
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            let SocketAddr::V4(from) = from else { panic!() };
            server.send_to(&buf[..n], from).await.unwrap();
        }
    });
    let mut buf = [0u8; 2048];
    for i in 0..100u32 {
        let msg = i.to_be_bytes().repeat(i as usize % 300 + 1);
        client.send_to(&msg, addr("192.0.2.2:53")).await.unwrap();
        let (n, from) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!(from.to_string(), "192.0.2.2:53");
        assert_eq!(&buf[..n], &msg[..]);
    }
    echo.await.unwrap();
}

use std::net::SocketAddr;

#[tokio::test(flavor = "current_thread")]
async fn udp_on_the_current_thread_runtime() {
    udp_round_trips().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_on_the_multi_thread_runtime() {
    udp_round_trips().await;
}

/// A refused connection and an unbound port are errors, not hangs.
#[tokio::test(flavor = "current_thread")]
async fn connect_to_a_closed_port_is_refused() {
    let (a, _b) = two_stacks();
    let e = TcpStream::connect(&a, addr("192.0.2.2:9"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    let _l = TcpListener::bind(&a, addr("192.0.2.1:80")).unwrap();
    let e = TcpListener::bind(&a, addr("192.0.2.1:80")).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
}

/// hyper's HTTP/1.1 server and client, each over a netstrata stream.
async fn hyper_both_ways() {
    let (a, b) = two_stacks();
    let listener = TcpListener::bind(&b, addr("192.0.2.2:80")).unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    let path = req.uri().path().to_string();
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let reply = format!("{path} got {} bytes", body.len());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(reply))))
                });
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                    .unwrap();
            });
        }
    });
    let stream = TcpStream::connect(&a, addr("192.0.2.2:80")).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    for i in 0..10usize {
        let body = Bytes::from(vec![b'x'; i * 10_000]);
        let req = Request::post(format!("/upload/{i}"))
            .header("host", "192.0.2.2")
            .body(Full::new(body))
            .unwrap();
        // hyper takes the next request once the connection task is ready
        // for it (it may run on another thread).
        sender.ready().await.unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(res.status(), 200);
        let got = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(got, format!("/upload/{i} got {} bytes", i * 10_000));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn hyper_on_the_current_thread_runtime() {
    hyper_both_ways().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_on_the_multi_thread_runtime() {
    hyper_both_ways().await;
}
