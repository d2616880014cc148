//! The authentication hot path, in process:
//! * `apikey/parse_hash_compare`: split a token, SHA-256 its secret, constant-time compare;
//! * `request/users_me_<backend>`: a whole authenticated `GET /api/v2/users/me` through the
//!   real router (precheck → key + user + roles in one query → subject → handler → store).
//!
//! Run with `cargo bench -p gatehouse-server --bench auth`. The PostgreSQL variant runs when
//! `TEST_POSTGRES_URL` is set.

#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "benchmark harness"
)]

use std::hint::black_box;

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse_httpmw::token;
use gatehouse_server::{app::AppState, config::ServerConfig, router};
use gatehouse_store::Db;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Rate limits would stop a benchmark's thousands of identical requests.
fn bench_config() -> ServerConfig {
    ServerConfig {
        dangerous_disable_rate_limits: true,
        ..ServerConfig::for_tests()
    }
}

fn parse_hash_compare(c: &mut Criterion) {
    let key = token::generate();
    let presented = key.token();
    c.bench_function("apikey/parse_hash_compare", |b| {
        b.iter(|| {
            let (id, secret) = token::split(black_box(&presented)).unwrap();
            assert!(token::plausible_id(id));
            black_box(token::secret_matches(secret, &key.hashed_secret))
        });
    });
}

async fn app_with_session(db: Db) -> (router::App, String) {
    let state = AppState::start(db, bench_config(), "http://bench.test".into())
        .await
        .unwrap();
    let router = router::build(state);
    let first = Request::post("/api/v2/users/first")
        .body(Body::from(
            r#"{"email":"b@example.com","username":"bench","password":"SomeSecurePassword!"}"#,
        ))
        .unwrap();
    assert_eq!(
        router.clone().oneshot(first).await.unwrap().status(),
        StatusCode::CREATED
    );
    let login = Request::post("/api/v2/users/login")
        .body(Body::from(
            r#"{"email":"b@example.com","password":"SomeSecurePassword!"}"#,
        ))
        .unwrap();
    let res = router.clone().oneshot(login).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let token = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["session_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (router, token)
}

async fn users_me(router: &router::App, token: &str) {
    let req = Request::get("/api/v2/users/me")
        .header("Coder-Session-Token", token)
        .body(Body::empty())
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    black_box(res.into_body().collect().await.unwrap());
}

fn full_request(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let path = std::env::temp_dir().join(format!("gatehouse-bench-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (router, token) =
        rt.block_on(async { app_with_session(Db::sqlite(&path).await.unwrap()).await });
    c.bench_function("request/users_me_sqlite", |b| {
        b.iter(|| rt.block_on(users_me(&router, &token)))
    });
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }

    if let Ok(url) = std::env::var("TEST_POSTGRES_URL") {
        let schema = format!("gh_bench_{}", std::process::id());
        let (router, token) = rt.block_on(async {
            if let Db::Postgres(pool) = Db::postgres(&url, None).await.unwrap() {
                let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            app_with_session(Db::postgres(&url, Some(&schema)).await.unwrap()).await
        });
        c.bench_function("request/users_me_postgres", |b| {
            b.iter(|| rt.block_on(users_me(&router, &token)))
        });
    } else {
        eprintln!("TEST_POSTGRES_URL not set: skipping request/users_me_postgres");
    }
}

async fn send(router: &router::App, req: Request<Body>) -> serde_json::Value {
    let res = router.clone().oneshot(req).await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)
}

/// An owner with a running workspace whose agent uses `agent_token`.
async fn app_with_agent(db: Db, agent_token: uuid::Uuid) -> router::App {
    let state = AppState::start(db, bench_config(), "http://bench.test".into())
        .await
        .unwrap();
    let provisioner = state.provisioner.clone();
    let router = router::build(state);
    send(
        &router,
        Request::post("/api/v2/users/first")
            .body(Body::from(
                r#"{"email":"b@example.com","username":"bench","password":"SomeSecurePassword!"}"#,
            ))
            .unwrap(),
    )
    .await;
    let login = Request::post("/api/v2/users/login")
        .body(Body::from(
            r#"{"email":"b@example.com","password":"SomeSecurePassword!"}"#,
        ))
        .unwrap();
    let session = send(&router, login).await["session_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let authed = |method: &str, path: &str, content_type: &str, body: String| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("Coder-Session-Token", &session)
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let plan = serde_json::json!({"resources": [{"name": "dev", "type": "echo_container", "agents": [{"name": "main", "auth_token": agent_token}]}]});
    let file = send(
        &router,
        authed(
            "POST",
            "/api/v2/files",
            "application/json",
            plan.to_string(),
        ),
    )
    .await;
    let version = send(&router, authed("POST", "/api/v2/organizations/default/templateversions", "application/json",
        serde_json::json!({"storage_method": "file", "file_id": file["hash"], "provisioner": "echo"}).to_string())).await;
    while provisioner.run_once().await.unwrap() {}
    let template = send(
        &router,
        authed(
            "POST",
            "/api/v2/organizations/default/templates",
            "application/json",
            serde_json::json!({"name": "bench", "template_version_id": version["id"]}).to_string(),
        ),
    )
    .await;
    send(
        &router,
        authed(
            "POST",
            "/api/v2/users/me/workspaces",
            "application/json",
            serde_json::json!({"name": "dev", "template_id": template["id"]}).to_string(),
        ),
    )
    .await;
    while provisioner.run_once().await.unwrap() {}
    router
}

fn agent_request(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let path =
        std::env::temp_dir().join(format!("gatehouse-bench-agent-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let token = uuid::Uuid::new_v4();
    let router =
        rt.block_on(async { app_with_agent(Db::sqlite(&path).await.unwrap(), token).await });
    let token = token.to_string();
    c.bench_function("request/agent_manifest_sqlite", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = Request::get("/api/v2/workspaceagents/me/manifest")
                    .header("Coder-Session-Token", &token)
                    .body(Body::empty())
                    .unwrap();
                black_box(send(&router, req).await)
            })
        });
    });
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn rate_limit_check(c: &mut Criterion) {
    use gatehouse_httpmw::rate_limit::{Principal, RateLimiter};
    let limiter = RateLimiter::new(i64::MAX, std::time::Duration::from_secs(60)).unwrap();
    let user = Principal::User(uuid::Uuid::new_v4());
    let mut now = std::time::Duration::from_secs(1_800_000_000);
    c.bench_function("ratelimit/check", |b| {
        b.iter(|| {
            now += std::time::Duration::from_nanos(1);
            black_box(limiter.check(black_box(&user), "/api/v2/users/me", now))
        });
    });
}

fn form_post(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// An OAuth2 client with a grant: (router, client id, secret, access token, refresh token).
async fn app_with_oauth2_grant(db: Db) -> (router::App, String, String, String, String) {
    use base64::Engine;
    use sha2::Digest;
    let (router, session) = app_with_session(db).await;
    let app = send(
        &router,
        Request::post("/api/v2/oauth2-provider/apps")
            .header("Coder-Session-Token", &session)
            .body(Body::from(
                r#"{"name":"bench","redirect_uris":["https://client.example.com/cb"]}"#,
            ))
            .unwrap(),
    )
    .await;
    let client = app["id"].as_str().unwrap().to_owned();
    let secret = send(
        &router,
        Request::post(format!("/api/v2/oauth2-provider/apps/{client}/secrets"))
            .header("Coder-Session-Token", &session)
            .body(Body::empty())
            .unwrap(),
    )
    .await["client_secret_full"]
        .as_str()
        .unwrap()
        .to_owned();
    let verifier = "bench-verifier-0123456789-0123456789-0123456789";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let authorize = Request::post(format!(
        "/oauth2/authorize?response_type=code&client_id={client}&code_challenge={challenge}"
    ))
    .header("Coder-Session-Token", &session)
    .body(Body::empty())
    .unwrap();
    let res = router.clone().oneshot(authorize).await.unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens = send(
        &router,
        form_post(
            "/oauth2/tokens",
            &format!(
                "grant_type=authorization_code&code={code}&code_verifier={verifier}&client_id={client}&client_secret={secret}"
            ),
        ),
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    (router, client, secret, access, refresh)
}

/// The refresh grant (rotation: two writes in one transaction) and a bearer-authenticated
/// `GET /api/v2/users/me` with an OAuth2 access token.
fn oauth2_requests(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let path =
        std::env::temp_dir().join(format!("gatehouse-bench-oauth2-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (router, client, secret, access, mut refresh) =
        rt.block_on(async { app_with_oauth2_grant(Db::sqlite(&path).await.unwrap()).await });
    c.bench_function("request/users_me_oauth2_bearer_sqlite", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = Request::get("/api/v2/users/me")
                    .header("authorization", format!("Bearer {access}"))
                    .body(Body::empty())
                    .unwrap();
                black_box(send(&router, req).await)
            })
        });
    });
    c.bench_function("oauth2/refresh_grant_sqlite", |b| {
        b.iter(|| {
            let body = format!(
                "grant_type=refresh_token&refresh_token={refresh}&client_id={client}&client_secret={secret}"
            );
            let tokens = rt.block_on(send(&router, form_post("/oauth2/tokens", &body)));
            refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        });
    });
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

criterion_group!(
    benches,
    parse_hash_compare,
    full_request,
    agent_request,
    rate_limit_check,
    oauth2_requests
);
criterion_main!(benches);
