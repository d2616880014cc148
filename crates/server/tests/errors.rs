//! Cross-cutting answers: unknown routes, request ids, health, database outages.

use axum::http::StatusCode;
use serde_json::json;

use crate::{harness::TestApp, on_both_backends};

on_both_backends!(
    unknown_routes_are_json_404,
    request_ids_are_fresh_uuids,
    health_is_ok,
    database_outage_is_503_not_401
);

async fn unknown_routes_are_json_404(app: TestApp) {
    for path in ["/api/v2/nope", "/api/v2/users/me/nope/deeper", "/whatever"] {
        let res = app.get(path).send().await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(res.json(), json!({"message": "Route not found."}), "{path}");
    }
}

async fn request_ids_are_fresh_uuids(app: TestApp) {
    let a = app
        .get("/healthz")
        .header("x-coder-request-id", "spoofed")
        .send()
        .await;
    let b = app.get("/healthz").send().await;
    let a = a.header("x-coder-request-id").unwrap().to_owned();
    let b = b.header("x-coder-request-id").unwrap().to_owned();
    assert_ne!(a, "spoofed");
    assert_ne!(a, b);
    assert!(uuid::Uuid::parse_str(&a).is_ok());
}

async fn health_is_ok(app: TestApp) {
    let res = app.get("/healthz").send().await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.text(), "OK");
}

async fn database_outage_is_503_not_401(app: TestApp) {
    let (_, owner) = app.first_user().await;
    app.state.store.db().close().await;
    let res = app.get("/api/v2/users/me").token(&owner).send().await;
    assert_eq!(
        res.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        res.text()
    );
    assert_eq!(
        res.json(),
        json!({"message": "The database is temporarily unavailable. Please try again."})
    );
    assert!(res.header("retry-after").is_some());
    let res = app.get("/api/v2/users/first").send().await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
}

/// SQLite locked by another process past the busy timeout: 503, and the server recovers
/// once the lock is gone.
#[tokio::test]
async fn sqlite_locked_is_503_and_recovers() {
    use sqlx::{Connection, sqlite::SqliteConnection};

    let app = TestApp::sqlite_busy(
        crate::harness::config(),
        std::time::Duration::from_millis(200),
    )
    .await;
    app.first_user().await;
    let path = app.sqlite_path.clone().unwrap();
    let mut other = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();

    let login =
        json!({"email": crate::harness::OWNER_EMAIL, "password": crate::harness::OWNER_PASSWORD});
    let res = app.post("/api/v2/users/login").json(&login).send().await;
    assert_eq!(
        res.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        res.text()
    );
    assert_eq!(
        res.json(),
        json!({"message": "The database is temporarily unavailable. Please try again."})
    );
    // Reads still work under WAL while the writer is blocked.
    assert_eq!(
        app.get("/api/v2/users/first").send().await.status,
        StatusCode::OK
    );

    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
    let res = app.post("/api/v2/users/login").json(&login).send().await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
}

/// A panicking handler answers one JSON 500 with a request id, and the server keeps
/// serving.
#[tokio::test]
async fn a_panic_is_one_json_500_and_the_server_keeps_serving() {
    use axum::routing::get;

    async fn boom() -> &'static str {
        panic!("handler exploded")
    }
    let app = TestApp::sqlite().await;
    let router =
        gatehouse_server::router::build_with(app.state.clone(), vec![("/api/v2/boom", get(boom))]);
    let send = |path: &'static str| {
        let router = router.clone();
        async move {
            use http_body_util::BodyExt;
            use tower::ServiceExt;
            let res = router
                .oneshot(
                    axum::http::Request::get(path)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = res.status();
            let headers = res.headers().clone();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            (status, headers, body)
        }
    };
    let (status, headers, body) = send("/api/v2/boom").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        json!({"message": "An internal server error occurred."})
    );
    assert!(headers.get("x-coder-request-id").is_some());
    assert_eq!(headers.get("x-content-type-options").unwrap(), "nosniff");
    let (status, _, body) = send("/healthz").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"OK"[..]));
    // The panic is counted as the 500 it became, and it is no longer in flight.
    let metrics = app.state.metrics.render();
    let has = |line: &str| metrics.lines().any(|l| l == line);
    assert!(
        has(
            r#"coderd_api_requests_processed_total{code="500",method="GET",path="/api/v2/boom"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        has(r#"coderd_api_concurrent_requests{method="GET",path="/api/v2/boom"} 0"#),
        "{metrics}"
    );
}

async fn preflight(app: &TestApp) -> crate::harness::TestResponse {
    app.req("OPTIONS".parse().unwrap(), "/api/v2/users/first")
        .header("origin", "https://elsewhere.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
}

/// Same-origin by default; any origin (GET/OPTIONS, no credentials) when allowed.
#[tokio::test]
async fn cors_is_same_origin_unless_allowed() {
    let app = TestApp::sqlite().await;
    let res = preflight(&app).await;
    assert_eq!(res.header("access-control-allow-origin"), None);
    let res = app
        .get("/api/v2/users/first")
        .header("origin", "https://elsewhere.example")
        .send()
        .await;
    assert_eq!(res.header("access-control-allow-origin"), None);

    let config = gatehouse_server::config::ServerConfig {
        dangerous_allow_cors_requests: true,
        ..crate::harness::config()
    };
    let app = TestApp::sqlite_with(config).await;
    let res = preflight(&app).await;
    assert!(res.status.is_success(), "{}", res.status);
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
    assert!(
        res.header("access-control-allow-methods")
            .unwrap()
            .contains("GET")
    );
    assert_eq!(res.header("access-control-allow-credentials"), None);
    let res = app
        .get("/api/v2/users/first")
        .header("origin", "https://elsewhere.example")
        .send()
        .await;
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
}
