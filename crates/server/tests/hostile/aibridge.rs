//! AI Bridge against a path-traversing, token-smuggling caller (issue #29 items 1 and 6): the
//! deployment's key reaches only paths under the provider's base, Gatehouse's credentials
//! never reach the upstream, and the upstream's cookies never reach the browser.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Request, State},
    http::StatusCode,
    response::Response,
};
use tokio::sync::Mutex;

use crate::harness::TestApp;

/// Every request the upstream saw, wherever it was sent: (path and query, auth header).
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

async fn record(State(seen): State<Seen>, req: Request) -> Response {
    let auth = req
        .headers()
        .get("authorization")
        .or_else(|| req.headers().get("x-api-key"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    seen.lock().await.push((req.uri().to_string(), auth));
    Response::builder()
        .header("set-cookie", "upstream_session=1; Path=/")
        .header("x-upstream", "yes")
        .body(axum::body::Body::from("{}"))
        .unwrap()
}

/// The bridge in front of an HTTPS upstream, as model APIs are: its certificate comes from
/// a test CA the server trusts through `SSL_CERT_FILE`.
async fn bridge() -> (TestApp, Seen, crate::tls::TestCa) {
    let seen = Seen::default();
    let upstream = Router::new().fallback(record).with_state(seen.clone());
    let ca = crate::tls::TestCa::new("model-api");
    let addr = crate::tls::serve_https(
        upstream,
        ca.leaf(&["127.0.0.1"], crate::tls::Validity::Current),
    )
    .await;
    let mut config = crate::harness::config();
    config.aibridge_enabled = true;
    config.aibridge_openai_base_url = format!("https://{addr}/gw/openai/v1/");
    config.aibridge_openai_key = Some("sk-deployment-openai".to_owned());
    config.aibridge_anthropic_base_url = format!("https://{addr}/gw/anthropic/");
    config.aibridge_anthropic_key = Some("sk-ant-deployment".to_owned());
    config.ssl_cert_file = Some(ca.file.clone());
    (TestApp::sqlite_with(config).await, seen, ca)
}

#[tokio::test]
async fn a_path_that_climbs_out_of_the_base_never_leaves_with_the_key() {
    let (app, seen, _ca) = bridge().await;
    let (_, owner) = app.first_user().await;
    for provider in ["openai", "anthropic"] {
        for tail in [
            "%2e%2e/%2e%2e/%2e%2e/internal-admin",
            "../../../internal-admin",
            "..%2f..%2f..%2finternal-admin",
            "..%5c..%5cinternal-admin",
            "%2E%2E/internal-admin",
            ".%2e/internal-admin",
            "models/%2e/../../x",
            "%252e%252e/%252e%252e/internal-admin",
            "a%2fb",
            "a//b",
        ] {
            let path = format!("/api/v2/aibridge/{provider}/v1/{tail}");
            let res = app.get(&path).header("x-api-key", &owner).send().await;
            assert_eq!(
                res.status,
                StatusCode::BAD_REQUEST,
                "{path}: {}",
                res.text()
            );
            assert_eq!(res.json()["message"], "Invalid AI Bridge path.", "{path}");
        }
    }
    assert_eq!(
        *seen.lock().await,
        Vec::new(),
        "nothing reached the upstream"
    );
    // What lies under the base still goes through, with the deployment's key.
    let res = app
        .get("/api/v2/aibridge/openai/v1/models")
        .header("x-api-key", &owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let res = app
        .get("/api/v2/aibridge/anthropic/v1/models")
        .header("x-api-key", &owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        *seen.lock().await,
        vec![
            (
                "/gw/openai/v1/models".to_owned(),
                Some("Bearer sk-deployment-openai".to_owned())
            ),
            (
                "/gw/anthropic/v1/models".to_owned(),
                Some("sk-ant-deployment".to_owned())
            ),
        ]
    );
}

#[tokio::test]
async fn credentials_stay_here_and_upstream_cookies_stay_there() {
    let (app, seen, _ca) = bridge().await;
    let (_, owner) = app.first_user().await;
    let res = app
        .get(&format!(
            "/api/v2/aibridge/openai/v1/models?coder_session_token={owner}&limit=5&access_token={owner}"
        ))
        .header("authorization", &format!("Bearer {owner}"))
        .header("connection", "x-private-hop")
        .header("x-private-hop", "secret")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.header("x-upstream"), Some("yes"));
    assert!(res.set_cookies().is_empty(), "{:?}", res.set_cookies());
    let seen = seen.lock().await;
    assert_eq!(seen[0].0, "/gw/openai/v1/models?limit=5");
    assert!(!seen[0].0.contains(&owner));
}
