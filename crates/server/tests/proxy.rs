//! Outbound requests through a real forward proxy (Debian's tinyproxy), chosen from
//! `HTTPS_PROXY` / `NO_PROXY` as Go (and so Coder) chooses (issue #24). The upstream is a
//! model API over HTTPS on this machine's non-loopback address: loopback is never
//! proxied, so a proxy can only be seen on the way to another address.

use std::{
    net::{IpAddr, SocketAddr},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use gatehouse_server::outbound::proxy::ProxyEnv;

use crate::{
    harness::TestApp,
    tls::{TestCa, Validity, bridge_config, chat, serve_https_at, streaming_upstream},
};

/// This machine's address on its default route (no packet is sent).
fn non_loopback_address() -> IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    probe
        .connect("203.0.113.1:9")
        .expect("the proxy tests need a non-loopback IPv4 address with a route");
    let ip = probe.local_addr().unwrap().ip();
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "{ip}");
    ip
}

struct Tinyproxy {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Tinyproxy {
    fn start() -> Tinyproxy {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "gatehouse-tinyproxy-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("tinyproxy.conf");
        // No ConnectPort line: CONNECT to any port. It drops root for nobody.
        std::fs::write(
            &conf,
            format!(
                "User nobody\nGroup nogroup\nPort {port}\nListen 127.0.0.1\nTimeout 30\n\
                 Allow 127.0.0.1\nLogLevel Connect\nMaxClients 32\n"
            ),
        )
        .unwrap();
        let log = dir.join("tinyproxy.log");
        let child = Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy (Debian's tinyproxy; scripts/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tinyproxy did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Tinyproxy {
            child,
            port,
            log,
            dir,
        }
    }

    /// The CONNECT requests it has relayed so far.
    fn connects(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once("): CONNECT ").map(|(_, rest)| rest.to_owned()))
            .collect()
    }
}

async fn bridge(upstream: SocketAddr, ca: &TestCa, proxy_env: ProxyEnv) -> TestApp {
    let mut config = bridge_config(&upstream.ip().to_string(), upstream.port(), Some(ca));
    config.proxy_env = proxy_env;
    TestApp::sqlite_with(config).await
}

/// A loopback port nothing listens on (the instant it is returned).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
#[ignore = "needs Debian's tinyproxy (scripts/test.sh installs it and runs this)"]
async fn https_proxy_carries_the_ai_bridge_and_no_proxy_bypasses_it() {
    let ca = TestCa::new("proxy");
    let ip = non_loopback_address();
    let bound = serve_https_at(
        "0.0.0.0:0",
        streaming_upstream(),
        ca.leaf(&[&ip.to_string()], Validity::Current),
    )
    .await;
    let upstream = SocketAddr::new(ip, bound.port());
    let proxy = tokio::task::spawn_blocking(Tinyproxy::start).await.unwrap();

    // A bare address, as deployments often write it, is an http:// proxy (Go's rule).
    let app = bridge(
        upstream,
        &ca,
        ProxyEnv {
            https_proxy: Some(format!("127.0.0.1:{}", proxy.port)),
            ..ProxyEnv::default()
        },
    )
    .await;
    let (_, owner) = app.first_user().await;
    let res = chat(&app, &owner).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        res.text(),
        "data: chunk-0\n\ndata: chunk-1\n\ndata: chunk-2\n\n"
    );
    assert_eq!(proxy.connects(), vec![format!("{upstream} HTTP/1.1")]);

    // A proxy that is down fails the request with a JSON error.
    let down = ProxyEnv {
        https_proxy: Some(format!("http://127.0.0.1:{}", free_port())),
        ..ProxyEnv::default()
    };
    let app = bridge(upstream, &ca, down.clone()).await;
    let (_, owner) = app.first_user().await;
    let res = chat(&app, &owner).await;
    assert_eq!(res.status, StatusCode::BAD_GATEWAY, "{}", res.text());
    assert_eq!(res.json()["message"], "AI Bridge upstream request failed.");
    // The tunnel through the proxy is what failed: the request did go to it.
    assert!(
        res.json()["detail"]
            .as_str()
            .unwrap()
            .contains("tunnel error"),
        "{}",
        res.text()
    );

    // The same dead proxy, but NO_PROXY names the upstream (by CIDR here): direct.
    let app = bridge(
        upstream,
        &ca,
        ProxyEnv {
            no_proxy: Some(format!("example.com, {ip}/32")),
            ..down.clone()
        },
    )
    .await;
    let (_, owner) = app.first_user().await;
    let res = chat(&app, &owner).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    // Loopback is never proxied, whatever the variables say (Go's rule).
    let loopback = SocketAddr::new([127, 0, 0, 1].into(), bound.port());
    let mut config = bridge_config("localhost", loopback.port(), Some(&ca));
    config.proxy_env = down;
    let app = TestApp::sqlite_with(config).await;
    let (_, owner) = app.first_user().await;
    let res = chat(&app, &owner).await;
    // The leaf names only the non-loopback address: reached directly, the name is refused
    // by TLS, which proves the request went to localhost and not to the dead proxy.
    assert_eq!(res.status, StatusCode::BAD_GATEWAY, "{}", res.text());
    assert!(
        res.json()["detail"]
            .as_str()
            .unwrap()
            .contains("TLS handshake with localhost failed: its certificate is not valid"),
        "{}",
        res.text()
    );
    assert_eq!(
        proxy.connects().len(),
        1,
        "only the first request was proxied"
    );
}
