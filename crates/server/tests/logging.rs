//! The request log: one event per request with the safe fields, never a secret.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use axum::http::StatusCode;

use crate::harness::{OWNER_PASSWORD, TestApp};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once) a process-wide JSON subscriber writing into a buffer. A thread-local
/// subscriber is not enough: other tests in this binary register the same callsites.
fn capture() -> Capture {
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            let writer = capture.clone();
            let subscriber = tracing_subscriber::fmt()
                .json()
                .with_max_level(tracing::Level::DEBUG)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in this binary");
            capture
        })
        .clone()
}

#[tokio::test]
async fn request_log_has_safe_fields_and_no_secrets() {
    let capture = capture();
    let app = TestApp::sqlite().await;
    let (owner_id, token) = app.first_user().await;
    let secret = token.split_once('-').unwrap().1.to_owned();
    let res = app
        .get(&format!(
            "/api/v2/users/me?limit=5&coder_session_token={token}&ids=a,b"
        ))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
    app.get("/api/v2/users/me")
        .header("cookie", &format!("coder_session_token={token}"))
        .send()
        .await;
    let refused = app
        .get("/api/v2/users/me")
        .header("authorization", &format!("Bearer {token}x"))
        .send()
        .await;
    let refused_id = refused.header("x-coder-request-id").unwrap().to_owned();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(!logs.contains(&secret), "a token secret was logged");
    assert!(!logs.contains(OWNER_PASSWORD), "a password was logged");
    // Other tests log into the same buffer: keep this test's requests (its user, or the
    // malformed token it sent).
    let events: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["target"] == "gatehouse_httpmw::request_log")
        .collect();
    let me = events
        .iter()
        .find(|e| e["fields"]["query"] == "query_limit=5 query_ids_count=2")
        .unwrap_or_else(|| panic!("no request event for /users/me: {logs}"));
    assert_eq!(me["fields"]["message"], "GET");
    assert_eq!(me["fields"]["route"], "/api/v2/users/{user}");
    assert_eq!(me["fields"]["status_code"], 200);
    assert_eq!(me["fields"]["requestor_id"], owner_id.to_string());
    assert_eq!(me["fields"]["auth_type"], "api_key");
    assert_eq!(me["fields"]["service"], "http-api");
    assert_eq!(me["fields"]["request_type"], "http");
    assert_eq!(me["level"], "DEBUG");
    // The refused Bearer request (found by its own request id) is logged as a 401
    // without a requestor.
    let refused = events
        .iter()
        .find(|e| e["fields"]["request_id"] == refused_id.as_str())
        .unwrap_or_else(|| panic!("no event for request {refused_id}"));
    assert_eq!(refused["fields"]["status_code"], 401);
    assert_eq!(refused["fields"]["auth_type"], "none");
}

/// Issue #25: a 500's internal cause is a field of its request's one log event, joined to
/// it by the request id, and never part of the answer. The cause here is real: a key row
/// whose scopes no longer parse.
#[tokio::test]
async fn a_500s_cause_is_in_its_request_event_and_not_in_the_body() {
    let capture = capture();
    let app = TestApp::sqlite().await;
    let (_, token) = app.first_user().await;
    app.exec_at(
        r#"UPDATE api_keys SET scopes = '["no-such-scope"]', updated_at = $1"#,
        chrono::Utc::now(),
    )
    .await;
    let res = app.get("/api/v2/users/me").token(&token).send().await;
    assert_eq!(
        res.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        res.text()
    );
    assert!(!res.text().contains("no-such-scope"), "{}", res.text());
    let request_id = res.header("x-coder-request-id").unwrap().to_owned();
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let events: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| logs_of(e, &request_id))
        .collect();
    assert_eq!(events.len(), 1, "one event for the request: {events:?}");
    let event = &events[0];
    assert_eq!(event["target"], "gatehouse_httpmw::request_log");
    assert_eq!(event["level"], "WARN");
    assert_eq!(event["fields"]["status_code"], 500);
    let cause = event["fields"]["cause"].as_str().unwrap();
    assert!(cause.contains("no-such-scope"), "{cause}");
    // No separate event of Gatehouse's names the cause without the request id (sqlx's
    // own log of the test's UPDATE does, and is not one).
    let unjoined: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("no-such-scope") && !l.contains(&request_id))
        .filter(|l| !l.contains("\"target\":\"sqlx::query\""))
        .collect();
    assert!(unjoined.is_empty(), "{unjoined:?}");
}

/// Whether a log event belongs to the request with this id.
fn logs_of(event: &serde_json::Value, request_id: &str) -> bool {
    event["fields"]["request_id"] == request_id
}

/// An OAuth2 flow logs none of its secrets: client secret, code, verifier, access or
/// refresh token; and a bearer request with the access token is attributed to `oauth2`.
#[tokio::test]
async fn oauth2_secrets_are_never_logged() {
    let capture = capture();
    let app = TestApp::sqlite().await;
    let (_, owner) = app.first_user().await;
    let (client_id, secret) = crate::oauth2::confidential_app(&app, &owner, None).await;
    let (code, verifier) = crate::oauth2::code_for(&app, &owner, &client_id, &[]).await;
    let tokens = crate::oauth2::exchange(&app, &client_id, &secret, &code, &verifier)
        .await
        .json();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let res = app
        .get("/api/v2/users/me?limit=7")
        .header("authorization", &format!("Bearer {access}"))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
    crate::oauth2::refresh_grant(&app, &client_id, &secret, &refresh).await;
    // A client that puts its secret in the URL is refused, and the URL is not logged.
    app.post(&format!("/oauth2/tokens?client_secret={secret}"))
        .send()
        .await;
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    for (what, value) in [
        ("client secret", secret.as_str()),
        ("code", code.as_str()),
        ("verifier", verifier.as_str()),
        ("refresh token", refresh.as_str()),
        ("access token secret", access.split_once('-').unwrap().1),
    ] {
        let needle = value.rsplit('_').next().unwrap();
        assert!(!logs.contains(needle), "the {what} was logged");
    }
    let bearer = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["fields"]["query"] == "query_limit=7")
        .unwrap_or_else(|| panic!("no event for the bearer request: {logs}"));
    assert_eq!(bearer["fields"]["auth_type"], "oauth2");
}

/// Agent-token requests name the workspace and agent in their log event.
#[tokio::test]
async fn agent_requests_name_their_workspace_and_agent() {
    let capture = capture();
    let app = TestApp::sqlite().await;
    let agent_token = uuid::Uuid::new_v4();
    let world = crate::workspaces::world(&app, agent_token, 0, false).await;
    let workspace =
        crate::workspaces::create_workspace(&app, &world.owner, &world.template, "logged").await;
    while app.state.provisioner.run_once().await.unwrap() {}
    let res = crate::workspaces::manifest(&app, agent_token).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        !logs.contains(&agent_token.to_string()),
        "the agent token was logged"
    );
    let event = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| {
            e["fields"]["route"] == "/api/v2/workspaceagents/me/manifest"
                && e["fields"]["workspace_id"] == workspace["id"]
        })
        .unwrap_or_else(|| panic!("no agent request event: {logs}"));
    assert_eq!(event["fields"]["auth_type"], "agent");
    assert_eq!(event["fields"]["request_type"], "agent-rpc");
    assert_eq!(event["fields"]["agent_name"], "main");
    assert!(!event["fields"]["agent_id"].as_str().unwrap().is_empty());
}

/// Issue #25: an AI Bridge request is logged like any other authenticated request: its
/// user and key, found by the request's own id.
#[tokio::test]
async fn ai_bridge_requests_name_their_user() {
    let capture = capture();
    let mut config = crate::harness::config();
    config.aibridge_enabled = true;
    // Nothing listens there: the request is still authenticated (and logged) first.
    config.aibridge_openai_base_url = "http://127.0.0.1:9/v1/".to_owned();
    let app = TestApp::sqlite_with(config).await;
    let (owner_id, token) = app.first_user().await;
    let res = app
        .post("/api/v2/aibridge/openai/v1/chat/completions")
        .header("authorization", &format!("Bearer {token}"))
        .json(&serde_json::json!({"model": "gpt"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_GATEWAY, "{}", res.text());
    let request_id = res.header("x-coder-request-id").unwrap().to_owned();
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let event = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["target"] == "gatehouse_httpmw::request_log" && logs_of(e, &request_id))
        .unwrap_or_else(|| panic!("no event for request {request_id}"));
    assert_eq!(event["fields"]["requestor_id"], owner_id.to_string());
    assert_eq!(event["fields"]["auth_type"], "api_key");
    assert_eq!(
        event["fields"]["api_key_id"],
        token.split('-').next().unwrap()
    );
}
