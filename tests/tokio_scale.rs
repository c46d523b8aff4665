//! The tokio adapter at scale: 10,000 connections that each sent half a
//! request and wait, held by one task apiece on one thread, while a
//! legitimate client is answered at once; and the heap each idle
//! connection costs, measured with a counting allocator (this file's
//! only test, so that nothing else allocates meanwhile).

mod counting;
mod tokio_support;

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use counting::held;
use netstrata::tokio::{TcpListener, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_support::two_stacks;

const IDLE: usize = 10_000;

#[tokio::test(flavor = "current_thread")]
async fn ten_thousand_idle_connections_and_a_prompt_answer() {
    let (clients, server) = two_stacks();
    let addr: SocketAddrV4 = "192.0.2.2:80".parse().unwrap();
    let listener = TcpListener::listen(&server, addr, 2 * IDLE).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    // The server: a task per connection, each reading a line and
    // answering it.
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut line = Vec::new();
                let mut byte = [0u8; 1];
                while s.read(&mut byte).await.unwrap_or(0) == 1 {
                    line.push(byte[0]);
                    if byte[0] == b'\n' {
                        let _ = s.write_all(&line).await;
                        line.clear();
                    }
                }
            });
        }
    });
    let before = held();
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        let mut c = TcpStream::connect(&clients, addr).await.unwrap();
        c.write_all(b"GET / HT").await.unwrap();
        idle.push(c);
    }
    // Every connection reached the server and its half line was read.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while accepted.load(Ordering::Relaxed) < IDLE {
        assert!(tokio::time::Instant::now() < deadline, "not all accepted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let grown = held() - before;
    // Both ends of each connection live in this process, and its task.
    let per_connection = grown / IDLE as isize;
    eprintln!(
        "{IDLE} idle connections: heap +{grown} bytes, {per_connection} per connection (both ends, the server's task, the client's stream)"
    );
    // A legitimate client is answered at once.
    let started = tokio::time::Instant::now();
    let mut c = TcpStream::connect(&clients, addr).await.unwrap();
    c.write_all(b"ping\n").await.unwrap();
    let mut echo = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(2), c.read_exact(&mut echo))
        .await
        .expect("answered within 2 s")
        .unwrap();
    assert_eq!(&echo, b"ping\n");
    eprintln!(
        "the legitimate client was answered in {:?}",
        started.elapsed()
    );
    // The idle ones are still there and still served.
    let last = idle.last_mut().unwrap();
    last.write_all(b"TP/1.1\n").await.unwrap();
    let mut rest = [0u8; 15];
    last.read_exact(&mut rest).await.unwrap();
    assert_eq!(&rest, b"GET / HTTP/1.1\n");
    assert!(
        per_connection < 32 * 1024,
        "{per_connection} bytes per idle connection"
    );
}
