//! Security headers (spec/ops.md §7; decisions.md 9): HSTS for https deployments, the CSP
//! of HTML pages with the workspace-app host.

use axum::{body::Body, http::Request};
use gatehouse_server::{app::AppState, router};
use gatehouse_store::Db;
use tower::ServiceExt;

/// A temporary SQLite file, removed with its WAL files when dropped.
struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new() -> TempDb {
        TempDb(std::env::temp_dir().join(format!(
            "gatehouse-sec-{}.db",
            uuid::Uuid::new_v4().simple()
        )))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

async fn app_at(
    access_url: &str,
    configure: impl FnOnce(&mut gatehouse_server::config::ServerConfig),
) -> (router::App, TempDb) {
    let mut config = crate::harness::config();
    configure(&mut config);
    let db = TempDb::new();
    let state = AppState::start(
        Db::sqlite(&db.0).await.unwrap(),
        config,
        access_url.to_owned(),
    )
    .await
    .unwrap();
    (router::build(state), db)
}

async fn get(router: &router::App, path: &str) -> axum::http::Response<Body> {
    router
        .clone()
        .oneshot(
            Request::get(path)
                .header("host", "coder.example.com")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn hsts_on_https_deployments_only() {
    let (https, _https_db) = app_at("https://coder.example.com", |c| {
        c.strict_transport_security = 31_536_000;
        c.strict_transport_security_options = vec!["includeSubDomains".into()];
    })
    .await;
    let res = get(&https, "/healthz").await;
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let (http, _http_db) = app_at("http://coder.example.com", |c| {
        c.strict_transport_security = 100
    })
    .await;
    assert!(
        get(&http, "/healthz")
            .await
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
    let mut config = crate::harness::config();
    config.strict_transport_security = 1;
    config.strict_transport_security_options = vec!["bogus".into()];
    let db = TempDb::new();
    let err = AppState::start(
        Db::sqlite(&db.0).await.unwrap(),
        config,
        "https://c.example".into(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("bogus"), "{err}");
}

#[tokio::test]
async fn page_csp_names_the_app_host() {
    let (app, _db) = app_at("http://coder.example.com", |c| {
        c.wildcard_access_url = Some("*.apps.example.com".into());
    })
    .await;
    let res = get(&app, "/login").await;
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-src 'self' *.apps.example.com"), "{csp}");
    assert!(csp.contains("connect-src 'self' wss://coder.example.com ws://coder.example.com https://*.apps.example.com"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(res.headers().get("x-frame-options").is_none());
}
