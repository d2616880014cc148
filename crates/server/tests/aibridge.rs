//! AI Bridge pass-through and its overload layers against a real local upstream that
//! streams over HTTPS, as a model API does, its test CA trusted through `SSL_CERT_FILE`
//! (spec/ops.md §6; decisions.md 7; issue #24).

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::post,
};
use tokio::sync::{Mutex, Notify};

use crate::{
    harness::TestApp,
    tls::{TestCa, Validity, serve_https},
};

/// What the upstream saw, and a gate that holds its streams open.
#[derive(Default)]
struct Upstream {
    seen: Mutex<Vec<(String, HeaderMap)>>,
    release: Notify,
    hold: std::sync::atomic::AtomicBool,
}

async fn upstream_handler(State(up): State<Arc<Upstream>>, req: Request) -> Response {
    let uri = req.uri().to_string();
    up.seen.lock().await.push((uri, req.headers().clone()));
    let hold = up.hold.load(std::sync::atomic::Ordering::SeqCst);
    let up2 = up.clone();
    let stream = async_stream(hold, up2);
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("x-upstream", "yes")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// Three SSE events with pauses between them; with `hold`, the last waits for a release.
fn async_stream(
    hold: bool,
    up: Arc<Upstream>,
) -> impl futures_util::stream::Stream<Item = Result<String, std::io::Error>> {
    futures_util::stream::unfold(0u8, move |i| {
        let up = up.clone();
        async move {
            if i == 3 {
                return None;
            }
            if i == 2 && hold {
                up.release.notified().await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((Ok(format!("data: chunk-{i}\n\n")), i + 1))
        }
    })
}

/// Where the upstream listens, and the CA of its certificate.
struct UpstreamAt {
    base: String,
    ca: TestCa,
}

async fn start_upstream() -> (UpstreamAt, Arc<Upstream>) {
    let up = Arc::new(Upstream::default());
    let app = Router::new()
        .route("/v1/{*rest}", post(upstream_handler))
        .route("/root/v1/{*rest}", post(upstream_handler))
        .with_state(up.clone());
    let ca = TestCa::new("model-api");
    let addr = serve_https(app, ca.leaf(&["localhost"], Validity::Current)).await;
    let base = format!("https://localhost:{}", addr.port());
    (UpstreamAt { base, ca }, up)
}

async fn bridge_app(upstream: &UpstreamAt, concurrency: usize, rate: i64) -> TestApp {
    let base = &upstream.base;
    let mut config = crate::harness::config();
    config.ssl_cert_file = Some(upstream.ca.file.clone());
    config.aibridge_enabled = true;
    config.aibridge_openai_base_url = format!("{base}/v1/");
    config.aibridge_openai_key = Some("sk-upstream-openai".to_owned());
    config.aibridge_anthropic_base_url = format!("{base}/root/");
    config.aibridge_anthropic_key = Some("sk-ant-upstream".to_owned());
    config.aibridge_max_concurrency = concurrency;
    config.aibridge_rate_limit = rate;
    config.aibridge_rate_window = Duration::from_secs(60);
    TestApp::sqlite_with(config).await
}

fn chat<'a>(app: &'a TestApp, token: &str) -> crate::harness::Req<'a> {
    app.post("/api/v2/aibridge/openai/v1/chat/completions?stream=true")
        .header("authorization", &format!("Bearer {token}"))
        .json(&serde_json::json!({"model": "gpt", "stream": true}))
}

#[tokio::test]
async fn streams_through_with_the_upstream_key() {
    let (base, up) = start_upstream().await;
    let app = bridge_app(&base, 0, 0).await;
    let (_, owner) = app.first_user().await;
    let res = chat(&app, &owner)
        .header("cookie", "coder_session_token=leak")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        res.text(),
        "data: chunk-0\n\ndata: chunk-1\n\ndata: chunk-2\n\n"
    );
    assert_eq!(res.header("content-type"), Some("text/event-stream"));
    assert_eq!(res.header("x-upstream"), Some("yes"));
    let (uri, headers) = up.seen.lock().await.pop().unwrap();
    assert_eq!(uri, "/v1/chat/completions?stream=true");
    assert_eq!(headers["authorization"], "Bearer sk-upstream-openai");
    assert!(headers.get("cookie").is_none());
    assert!(headers.get("coder-session-token").is_none());
    // Anthropic: the Gatehouse token in X-Api-Key is replaced by the upstream key.
    let res = app
        .post("/api/v2/aibridge/anthropic/v1/messages")
        .header("x-api-key", &owner)
        .json(&serde_json::json!({}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let (uri, headers) = up.seen.lock().await.pop().unwrap();
    assert_eq!(uri, "/root/v1/messages");
    assert_eq!(headers["x-api-key"], "sk-ant-upstream");
    assert!(headers.get("authorization").is_none());
    // No or a bad Gatehouse token: refused here, nothing forwarded.
    let before = up.seen.lock().await.len();
    let res = app
        .post("/api/v2/aibridge/openai/v1/chat/completions")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let res = chat(&app, "aaaaaaaaaa-bbbbbbbbbbbbbbbbbbbbbb").send().await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(up.seen.lock().await.len(), before);
}

#[tokio::test]
async fn rate_is_per_token_with_retry_after() {
    let (base, _) = start_upstream().await;
    let app = bridge_app(&base, 0, 2).await;
    let (_, owner) = app.first_user().await;
    let other = app
        .token(&owner, serde_json::json!({"token_name": "second"}))
        .await;
    for _ in 0..2 {
        assert_eq!(chat(&app, &owner).send().await.status, StatusCode::OK);
    }
    let res = chat(&app, &owner).send().await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.header("retry-after"), Some("60"));
    // Another token of the same user has its own budget.
    assert_eq!(chat(&app, &other).send().await.status, StatusCode::OK);
    // X-Api-Key is the same token as Bearer: same budget.
    let res = app
        .post("/api/v2/aibridge/anthropic/v1/messages")
        .header("x-api-key", &owner)
        .json(&serde_json::json!({}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn disabled_at_zero() {
    let (base, _) = start_upstream().await;
    let app = bridge_app(&base, 0, 0).await;
    let (_, owner) = app.first_user().await;
    for _ in 0..20 {
        assert_eq!(chat(&app, &owner).send().await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn capacity_is_checked_before_the_rate() {
    let (base, up) = start_upstream().await;
    let app = Arc::new(bridge_app(&base, 1, 1).await);
    let (_, owner) = app.first_user().await;
    let second = app
        .token(&owner, serde_json::json!({"token_name": "second"}))
        .await;
    up.hold.store(true, std::sync::atomic::Ordering::SeqCst);
    // The first stream holds the only slot until the upstream is released.
    let first = {
        let app = app.clone();
        let owner = owner.clone();
        tokio::spawn(async move { chat(&app, &owner).send().await })
    };
    for _ in 0..100 {
        if !up.seen.lock().await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let res = chat(&app, &second).send().await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        res.json()["message"],
        "AI Bridge is currently at capacity. Please try again later."
    );
    up.hold.store(false, std::sync::atomic::Ordering::SeqCst);
    up.release.notify_one();
    let done = first.await.unwrap();
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.text().ends_with("chunk-2\n\n"));
    // The 503 did not spend the second token's budget of one: concurrency runs first.
    assert_eq!(chat(&app, &second).send().await.status, StatusCode::OK);
    assert_eq!(
        chat(&app, &second).send().await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Issue #25: an AI Bridge key is judged by the same user-status policy as the API's keys
/// (one authenticator): a dormant user is reactivated by the request, a suspended one is
/// refused with the API's message, before anything reaches the upstream.
#[tokio::test]
async fn a_bridge_key_follows_the_apis_user_status_policy() {
    let (base, up) = start_upstream().await;
    let app = bridge_app(&base, 0, 0).await;
    let (_, owner) = app.first_user().await;
    let org = app.state.default_org.id;
    let created = app
        .post("/api/v2/users")
        .token(&owner)
        .json(&serde_json::json!({"email": "sleepy@example.com", "username": "sleepy", "password": crate::harness::OWNER_PASSWORD, "organization_ids": [org]}))
        .send()
        .await;
    assert_eq!(created.json()["status"], "dormant");
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let token = app
        .login("sleepy@example.com", crate::harness::OWNER_PASSWORD)
        .await;
    let res = app
        .post("/api/v2/aibridge/anthropic/v1/messages")
        .header("x-api-key", &token)
        .json(&serde_json::json!({}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let user = app
        .get(&format!("/api/v2/users/{id}"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(user.json()["status"], "active");
    let res = app
        .put(&format!("/api/v2/users/{id}/status/suspend"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let before = up.seen.lock().await.len();
    let res = app
        .post("/api/v2/aibridge/anthropic/v1/messages")
        .header("x-api-key", &token)
        .json(&serde_json::json!({}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json()["message"],
        "User is not active (status = \"suspended\"). Contact an admin to reactivate your account."
    );
    assert_eq!(up.seen.lock().await.len(), before, "nothing was forwarded");
}
