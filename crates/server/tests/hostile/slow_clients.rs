//! Clients that hold connections open on purpose (issue #29 item 4), against the real
//! connection loop over TCP: a body that trickles in is cut off with a 408, and one
//! address cannot open more than its share of connections.

use std::time::{Duration, Instant};

use gatehouse_server::{conn_limit::ConnectionCap, serve::ConnectionLimits};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::harness::TestApp;

/// Everything the server sends until it closes the connection, or what came within `wait`.
async fn read_all(stream: &mut TcpStream, wait: Duration) -> String {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

async fn healthz(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    read_all(stream, Duration::from_secs(5)).await
}

#[tokio::test]
async fn a_body_that_trickles_in_is_cut_off_with_a_408() {
    let app = TestApp::sqlite().await;
    let address = app
        .serve_tcp(ConnectionLimits {
            read_header_timeout: Duration::from_secs(5),
            read_body_timeout: Duration::from_millis(500),
            per_address: None,
            ..ConnectionLimits::head_only(Duration::from_secs(5))
        })
        .await;
    let started = Instant::now();
    let mut slow = TcpStream::connect(address).await.unwrap();
    slow.write_all(
        b"POST /api/v2/users/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{",
    )
    .await
    .unwrap();
    let answer = read_all(&mut slow, Duration::from_secs(10)).await;
    let waited = started.elapsed();
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "after {waited:?}: {answer:?}"
    );
    assert!(
        answer.contains("The request body did not arrive in time."),
        "{answer}"
    );
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // The OAuth2 endpoints read their bodies themselves, and answer in their own shape.
    let mut slow = TcpStream::connect(address).await.unwrap();
    slow.write_all(
        b"POST /oauth2/tokens HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant",
    )
    .await
    .unwrap();
    let answer = read_all(&mut slow, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("\"error\":\"invalid_request\""), "{answer}");
    // A whole body is not held up by any of this.
    let mut whole = TcpStream::connect(address).await.unwrap();
    assert!(healthz(&mut whole).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn one_address_holds_only_its_share_of_connections() {
    let app = TestApp::sqlite().await;
    let address = app
        .serve_tcp(ConnectionLimits {
            per_address: ConnectionCap::new(3, Vec::new()),
            ..ConnectionLimits::head_only(Duration::from_secs(30))
        })
        .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(address).await.unwrap());
    }
    // Let the server accept all three before the fourth arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = TcpStream::connect(address).await.unwrap();
    let answer = healthz(&mut over).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer:?}");
    assert!(answer.contains("Too many open connections"), "{answer}");
    // The three are served, and a closed one makes room for a new one.
    let mut first = held.remove(0);
    assert!(healthz(&mut first).await.starts_with("HTTP/1.1 200"));
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut next = TcpStream::connect(address).await.unwrap();
    assert!(healthz(&mut next).await.starts_with("HTTP/1.1 200"));
}
