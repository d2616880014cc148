//! Outbound TLS against real TLS peers (issue #24): a throwaway CA and its certificates
//! (rcgen), an HTTPS upstream served with rustls over TCP, and the server trusting the
//! CA the way a deployment would (`SSL_CERT_FILE`). A refused certificate is named in
//! the answer by its cause.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::{Router, body::Body, http::StatusCode, response::Response, routing::post};
use gatehouse_server::config::ServerConfig;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::harness::TestApp;

/// A CA, and what it (or a stranger) signs.
pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    pub der: CertificateDer<'static>,
    /// The CA certificate in PEM, in a file of its own: what `SSL_CERT_FILE` names.
    pub file: PathBuf,
}

/// A leaf certificate and its key, ready for a rustls server (or, as PEM, for Node's).
pub struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
}

pub enum Validity {
    Current,
    Expired,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Gatehouse test CA {name}"));
        let key = KeyPair::generate().unwrap();
        let cert = params.clone().self_signed(&key).unwrap();
        let file = std::env::temp_dir().join(format!(
            "gatehouse-test-ca-{}.pem",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&file, cert.pem()).unwrap();
        TestCa {
            der: cert.der().clone(),
            params,
            key,
            file,
        }
    }

    pub fn leaf(&self, names: &[&str], validity: Validity) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        if let Validity::Expired = validity {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        Leaf {
            chain: vec![cert.der().clone(), self.der.clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Serves `app` over HTTPS with `leaf` on a loopback port.
pub async fn serve_https(app: Router, leaf: Leaf) -> SocketAddr {
    serve_https_at("127.0.0.1:0", app, leaf).await
}

/// Serves `app` over HTTPS with `leaf` on `bind`.
pub async fn serve_https_at(bind: &str, app: Router, leaf: Leaf) -> SocketAddr {
    use hyper_util::{rt::TokioIo, service::TowerToHyperService};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain, leaf.key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                // A refused handshake ends here: the client saw why.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                    .await;
            });
        }
    });
    address
}

/// A model API that streams three server-sent events.
pub fn streaming_upstream() -> Router {
    Router::new().route(
        "/v1/{*rest}",
        post(|| async {
            let events = futures_util::stream::unfold(0u8, |i| async move {
                if i == 3 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((
                    Ok::<_, std::io::Error>(format!("data: chunk-{i}\n\n")),
                    i + 1,
                ))
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(events))
                .unwrap()
        }),
    )
}

/// The AI Bridge to an OpenAI-style upstream at `https://{host}:{port}/v1/`, trusting
/// `trust` (`SSL_CERT_FILE`) or, without it, the system's store.
pub fn bridge_config(host: &str, port: u16, trust: Option<&TestCa>) -> ServerConfig {
    let mut config = crate::harness::config();
    config.aibridge_enabled = true;
    config.aibridge_openai_base_url = format!("https://{host}:{port}/v1/");
    config.aibridge_openai_key = Some("sk-upstream".to_owned());
    config.ssl_cert_file = trust.map(|ca| ca.file.clone());
    config
}

async fn bridge_to(address: SocketAddr, host: &str, trust: Option<&TestCa>) -> TestApp {
    TestApp::sqlite_with(bridge_config(host, address.port(), trust)).await
}

pub async fn chat(app: &TestApp, token: &str) -> crate::harness::TestResponse {
    app.post("/api/v2/aibridge/openai/v1/chat/completions")
        .header("authorization", &format!("Bearer {token}"))
        .json(&serde_json::json!({"model": "gpt", "stream": true}))
        .send()
        .await
}

#[tokio::test]
async fn the_ai_bridge_streams_from_an_https_upstream_it_trusts() {
    let ca = TestCa::new("bridge");
    let address = serve_https(
        streaming_upstream(),
        ca.leaf(&["localhost", "127.0.0.1"], Validity::Current),
    )
    .await;
    let app = bridge_to(address, "127.0.0.1", Some(&ca)).await;
    let (_, owner) = app.first_user().await;
    let res = chat(&app, &owner).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.header("content-type"), Some("text/event-stream"));
    assert_eq!(
        res.text(),
        "data: chunk-0\n\ndata: chunk-1\n\ndata: chunk-2\n\n"
    );
    // The CA in a directory (`SSL_CERT_DIR`) is trusted the same way.
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-ca-dir-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&ca.file, dir.join("test-ca.pem")).unwrap();
    std::fs::write(dir.join("README"), "not a certificate").unwrap();
    let mut config = bridge_config("localhost", address.port(), None);
    config.ssl_cert_dir = vec![dir.clone()];
    let app = TestApp::sqlite_with(config).await;
    let (_, owner) = app.first_user().await;
    let res = chat(&app, &owner).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_refused_certificate_is_named_by_its_cause() {
    let ca = TestCa::new("trusted");
    let stranger = TestCa::new("stranger");
    for (leaf, host, expected) in [
        (
            stranger.leaf(&["127.0.0.1"], Validity::Current),
            "127.0.0.1",
            "TLS handshake with 127.0.0.1 failed: its certificate is signed by an unknown authority",
        ),
        (
            ca.leaf(&["127.0.0.1"], Validity::Expired),
            "127.0.0.1",
            "TLS handshake with 127.0.0.1 failed: its certificate has expired",
        ),
        (
            ca.leaf(&["other.example"], Validity::Current),
            "localhost",
            "TLS handshake with localhost failed: its certificate is not valid for the name localhost",
        ),
    ] {
        let address = serve_https(streaming_upstream(), leaf).await;
        let app = bridge_to(address, host, Some(&ca)).await;
        let (_, owner) = app.first_user().await;
        let res = chat(&app, &owner).await;
        assert_eq!(res.status, StatusCode::BAD_GATEWAY, "{}", res.text());
        let body = res.json();
        assert_eq!(body["message"], "AI Bridge upstream request failed.");
        assert!(
            body["detail"].as_str().unwrap().starts_with(expected),
            "{expected}: {body}"
        );
    }
    // Without SSL_CERT_FILE the test CA is not trusted: the system's store is.
    let address = serve_https(
        streaming_upstream(),
        ca.leaf(&["127.0.0.1"], Validity::Current),
    )
    .await;
    let app = bridge_to(address, "127.0.0.1", None).await;
    let (_, owner) = app.first_user().await;
    let res = chat(&app, &owner).await;
    assert_eq!(res.status, StatusCode::BAD_GATEWAY, "{}", res.text());
    assert!(
        res.json()["detail"]
            .as_str()
            .unwrap()
            .contains("unknown authority"),
        "{}",
        res.text()
    );
}

// ---- The server's own HTTPS listener ----

use gatehouse_server::{
    config::{TlsClientAuth, TlsFlags, TlsMinVersion},
    serve::ConnectionLimits,
    tls_server::TlsServer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A leaf's certificate and key in files of their own, as `--tls-cert-file` names them.
fn pair_files(leaf: &Leaf, name: &str, dir: &std::path::Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    (cert, key)
}

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("gatehouse-tls-{}", uuid::Uuid::new_v4().simple()))
}

async fn serve_tls(app: &TestApp, server: &TlsServer) -> SocketAddr {
    app.serve_tcp(ConnectionLimits {
        tls: Some(server.acceptor.clone()),
        ..ConnectionLimits::head_only(Duration::from_secs(5))
    })
    .await
}

fn client_config(
    ca: &TestCa,
    versions: &[&'static rustls::SupportedProtocolVersion],
    identity: Option<&Leaf>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match identity {
        Some(leaf) => builder
            .with_client_auth_cert(leaf.chain.clone(), leaf.key.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    // Every connection makes a full handshake: a resumed session shows the certificate of
    // the session it resumes, not the one the server would serve now.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// Connects with `sni`, sends `GET /healthz` and returns the peer's leaf and the answer's
/// first line, or the error that ended the exchange.
async fn healthz_over_tls(
    address: SocketAddr,
    sni: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<(CertificateDer<'static>, String), std::io::Error> {
    let tcp = tokio::net::TcpStream::connect(address).await?;
    let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    tls.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await?;
    Ok((leaf, answer.lines().next().unwrap_or_default().to_owned()))
}

fn flags(pairs: &[(PathBuf, PathBuf)]) -> TlsFlags {
    TlsFlags {
        tls_enable: true,
        tls_cert_file: pairs.iter().map(|p| p.0.clone()).collect(),
        tls_key_file: pairs.iter().map(|p| p.1.clone()).collect(),
        ..TlsFlags::default()
    }
}

#[tokio::test]
async fn https_is_served_with_the_certificate_the_client_names() {
    let ca = TestCa::new("listener");
    let dir = temp_dir();
    let a = ca.leaf(&["a.test"], Validity::Current);
    let b = ca.leaf(&["b.test", "*.b.test"], Validity::Current);
    let pairs = [pair_files(&a, "a", &dir), pair_files(&b, "b", &dir)];
    let server = TlsServer::new(&flags(&pairs)).unwrap();
    let app = TestApp::sqlite().await;
    let address = serve_tls(&app, &server).await;
    let config = client_config(
        &ca,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        None,
    );
    for (sni, leaf) in [("a.test", &a), ("b.test", &b), ("x.b.test", &b)] {
        let (served, status) = healthz_over_tls(address, sni, config.clone())
            .await
            .unwrap();
        assert_eq!(served, leaf.chain[0], "{sni}");
        assert_eq!(status, "HTTP/1.1 200 OK", "{sni}");
    }
    // A real client: curl, trusting the test CA (off the runtime's thread, which serves).
    let mut curl = std::process::Command::new("curl");
    curl.args(["-s", "--noproxy", "*", "--max-time", "10", "--cacert"])
        .arg(&ca.file)
        .arg("--resolve")
        .arg(format!("b.test:{}:127.0.0.1", address.port()))
        .arg(format!("https://b.test:{}/healthz", address.port()));
    let out = tokio::task::spawn_blocking(move || curl.output().expect("curl"))
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK", "{out:?}");
    // Plain HTTP on the TLS port is dropped, and the port keeps serving.
    let mut plain = tokio::net::TcpStream::connect(address).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
    assert!(healthz_over_tls(address, "a.test", config).await.is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn tls13_only_refuses_a_tls12_client() {
    let ca = TestCa::new("min-version");
    let dir = temp_dir();
    let leaf = ca.leaf(&["a.test"], Validity::Current);
    let pairs = [pair_files(&leaf, "a", &dir)];
    let server = TlsServer::new(&TlsFlags {
        tls_min_version: TlsMinVersion::Tls13,
        ..flags(&pairs)
    })
    .unwrap();
    let app = TestApp::sqlite().await;
    let address = serve_tls(&app, &server).await;
    let tls12 = client_config(&ca, &[&rustls::version::TLS12], None);
    assert!(healthz_over_tls(address, "a.test", tls12).await.is_err());
    let tls13 = client_config(&ca, &[&rustls::version::TLS13], None);
    assert_eq!(
        healthz_over_tls(address, "a.test", tls13).await.unwrap().1,
        "HTTP/1.1 200 OK"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_client_certificate_is_required_and_verified() {
    let ca = TestCa::new("server");
    let clients = TestCa::new("clients");
    let stranger = TestCa::new("stranger");
    let dir = temp_dir();
    let leaf = ca.leaf(&["a.test"], Validity::Current);
    let pairs = [pair_files(&leaf, "a", &dir)];
    let server = TlsServer::new(&TlsFlags {
        tls_client_auth: TlsClientAuth::RequireAndVerify,
        tls_client_ca_file: Some(clients.file.clone()),
        ..flags(&pairs)
    })
    .unwrap();
    let app = TestApp::sqlite().await;
    let address = serve_tls(&app, &server).await;
    let versions: &[&'static rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];
    let alice = clients.leaf(&["alice"], Validity::Current);
    let mallory = stranger.leaf(&["mallory"], Validity::Current);
    let ok = healthz_over_tls(
        address,
        "a.test",
        client_config(&ca, versions, Some(&alice)),
    )
    .await;
    assert_eq!(ok.unwrap().1, "HTTP/1.1 200 OK");
    for identity in [None, Some(&mallory)] {
        let refused =
            healthz_over_tls(address, "a.test", client_config(&ca, versions, identity)).await;
        assert!(
            refused
                .as_ref()
                .map_or(true, |(_, status)| status.is_empty()),
            "{refused:?}"
        );
    }
    // Unverified client certificates are not offered.
    let err = TlsServer::new(&TlsFlags {
        tls_client_auth: TlsClientAuth::RequireAny,
        ..flags(&pairs)
    })
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("--tls-client-auth require-any"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_replaced_certificate_is_served_without_a_restart() {
    let ca = TestCa::new("reload");
    let dir = temp_dir();
    let first = ca.leaf(&["a.test"], Validity::Current);
    let pairs = [pair_files(&first, "a", &dir)];
    let server = TlsServer::new(&flags(&pairs)).unwrap();
    server.watch();
    let app = TestApp::sqlite().await;
    let address = serve_tls(&app, &server).await;
    let config = client_config(&ca, &[&rustls::version::TLS13], None);
    assert_eq!(
        healthz_over_tls(address, "a.test", config.clone())
            .await
            .unwrap()
            .0,
        first.chain[0]
    );
    let renewed = ca.leaf(&["a.test"], Validity::Current);
    // A broken write first (the key of another certificate): the old pair stays in service.
    let other = ca.leaf(&["a.test"], Validity::Current);
    std::fs::write(&pairs[0].0, &renewed.cert_pem).unwrap();
    std::fs::write(&pairs[0].1, &other.key_pem).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        healthz_over_tls(address, "a.test", config.clone())
            .await
            .unwrap()
            .0,
        first.chain[0]
    );
    std::fs::write(&pairs[0].1, &renewed.key_pem).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (served, status) = healthz_over_tls(address, "a.test", config.clone())
            .await
            .unwrap();
        assert_eq!(status, "HTTP/1.1 200 OK");
        if served == renewed.chain[0] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_tls_settings_are_refused_with_the_flag_named() {
    let ca = TestCa::new("bad");
    let dir = temp_dir();
    let a = ca.leaf(&["a.test"], Validity::Current);
    let b = ca.leaf(&["b.test"], Validity::Current);
    let (a_cert, a_key) = pair_files(&a, "a", &dir);
    let (_, b_key) = pair_files(&b, "b", &dir);
    let refused = |flags: TlsFlags| TlsServer::new(&flags).err().unwrap().to_string();
    let missing = dir.join("missing.crt");
    assert!(refused(flags(&[(missing.clone(), a_key.clone())])).starts_with("--tls-cert-file"));
    assert!(
        refused(flags(&[(a_cert.clone(), dir.join("missing.key"))])).starts_with("--tls-key-file")
    );
    let mismatch = refused(flags(&[(a_cert.clone(), b_key.clone())]));
    assert!(
        mismatch.contains("is not the key of --tls-cert-file"),
        "{mismatch}"
    );
    assert!(
        refused(TlsFlags {
            tls_key_file: Vec::new(),
            ..flags(&[(a_cert.clone(), a_key.clone())])
        })
        .contains("pairs")
    );
    assert!(refused(TlsFlags::default()).contains("--tls-cert-file"));
    let no_ca = refused(TlsFlags {
        tls_client_auth: TlsClientAuth::VerifyIfGiven,
        ..flags(&[(a_cert, a_key)])
    });
    assert!(no_ca.contains("needs --tls-client-ca-file"), "{no_ca}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends a request head over plain TCP and returns the answer's head.
async fn plain_head(address: SocketAddr, head: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[tokio::test]
async fn requests_for_other_hosts_go_to_the_access_url_when_asked() {
    let mut config = crate::harness::config();
    config.access_url = url::Url::parse("http://dev.example.com:8080").ok();
    config.redirect_to_access_url = true;
    config.wildcard_access_url = Some("*.apps.example.com".to_owned());
    let app = TestApp::sqlite_with(config).await;
    let address = app
        .serve_tcp(ConnectionLimits::head_only(Duration::from_secs(5)))
        .await;
    let head = |host: &str, path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    let answer = plain_head(address, &head("10.1.2.3:8080", "/api/v2/buildinfo")).await;
    assert!(answer.starts_with("http/1.1 307"), "{answer}");
    assert!(
        answer.contains("\r\nlocation: http://dev.example.com:8080/api/v2/buildinfo"),
        "{answer}"
    );
    // The access URL's host, a workspace-app host and the health check are answered here.
    for (host, path) in [
        ("dev.example.com:8080", "/api/v2/buildinfo"),
        ("ws--app.apps.example.com", "/healthz"),
        ("10.1.2.3", "/healthz"),
    ] {
        let answer = plain_head(address, &head(host, path)).await;
        assert!(
            !answer.starts_with("http/1.1 307"),
            "{host}{path}: {answer}"
        );
    }
}
