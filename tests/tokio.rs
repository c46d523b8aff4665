//! The tokio adapter (feature `tokio`) over the in-memory network, on the
//! current-thread and the multi-thread runtime: streams (whole and split),
//! UDP, and hyper 1.x client and server over netstrata's `TcpStream`
//! through hyper-util's `TokioIo`.

mod tokio_support;

use std::convert::Infallible;
use std::net::SocketAddrV4;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use netstrata::tokio::{TcpListener, TcpStream, UdpSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_support::two_stacks;

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

/// Two tasks wait on one UDP socket; one gives up. The other still gets
/// the datagram (every waiting task is woken, not the last to ask).
#[tokio::test(flavor = "current_thread")]
async fn a_reader_that_gives_up_does_not_steal_the_wake_up() {
    let (a, b) = two_stacks();
    let server = std::sync::Arc::new(UdpSocket::bind(&b, addr("192.0.2.2:53")).unwrap());
    let patient = {
        let server = server.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            server.recv_from(&mut buf).await.map(|(n, _)| n)
        })
    };
    tokio::task::yield_now().await;
    let mut buf = [0u8; 64];
    let impatient =
        tokio::time::timeout(Duration::from_millis(20), server.recv_from(&mut buf)).await;
    assert!(impatient.is_err(), "nothing was sent yet");
    let client = UdpSocket::bind(&a, addr("0.0.0.0:0")).unwrap();
    client.send_to(b"late", addr("192.0.2.2:53")).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), patient)
        .await
        .expect("the patient reader was woken")
        .unwrap()
        .unwrap();
    assert_eq!(got, 4);
}

/// What a user sent leaves even if the socket and the stack are dropped
/// at once: a datagram, and a stream's data and FIN (the driver lingers
/// until they are out).
#[tokio::test(flavor = "current_thread")]
async fn data_sent_before_dropping_the_stack_still_arrives() {
    let (a, b) = two_stacks();
    let server = UdpSocket::bind(&b, addr("192.0.2.2:53")).unwrap();
    let listener = TcpListener::bind(&b, addr("192.0.2.2:80")).unwrap();
    let client = UdpSocket::bind(&a, addr("0.0.0.0:0")).unwrap();
    let stream = TcpStream::connect(&a, addr("192.0.2.2:80")).await.unwrap();
    let (mut accepted, _) = listener.accept().await.unwrap();
    client.send_to(b"bye", addr("192.0.2.2:53")).await.unwrap();
    let data = pattern(1 << 20);
    let mut stream = stream;
    // Written into the send buffer in pieces, then everything dropped.
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        stream.write_all(&sent).await.unwrap();
        drop(stream);
        drop(client);
        drop(a);
    });
    let mut buf = [0u8; 16];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), server.recv_from(&mut buf))
        .await
        .expect("the datagram arrived")
        .unwrap();
    assert_eq!(&buf[..n], b"bye");
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), accepted.read_to_end(&mut got))
        .await
        .expect("the stream ended")
        .unwrap();
    writer.await.unwrap();
    assert!(got == data, "got {} of {} bytes", got.len(), data.len());
}
