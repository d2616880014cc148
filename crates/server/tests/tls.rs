//! Outbound TLS against real TLS peers (issue #24): a throwaway CA and its certificates
//! (rcgen), an HTTPS upstream served with rustls over TCP, and the server trusting the
//! CA the way a deployment would (`SSL_CERT_FILE`). A refused certificate is named in
//! the answer by its cause.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::{Router, body::Body, http::StatusCode, response::Response, routing::post};
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
    use hyper_util::{rt::TokioIo, service::TowerToHyperService};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain, leaf.key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
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
fn streaming_upstream() -> Router {
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

async fn bridge_to(address: SocketAddr, host: &str, trust: Option<&TestCa>) -> TestApp {
    let mut config = crate::harness::config();
    config.aibridge_enabled = true;
    config.aibridge_openai_base_url = format!("https://{host}:{}/v1/", address.port());
    config.aibridge_openai_key = Some("sk-upstream".to_owned());
    config.ssl_cert_file = trust.map(|ca| ca.file.clone());
    TestApp::sqlite_with(config).await
}

async fn chat(app: &TestApp, token: &str) -> crate::harness::TestResponse {
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
    let mut config = crate::harness::config();
    config.aibridge_enabled = true;
    config.aibridge_openai_base_url = format!("https://localhost:{}/v1/", address.port());
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
