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
    app.get("/api/v2/users/me")
        .header("authorization", &format!("Bearer {token}x"))
        .send()
        .await;

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
    assert_eq!(me["level"], "DEBUG");
    // The refused Bearer request is logged as a 401 without a requestor.
    let refused = events
        .iter()
        .find(|e| e["fields"]["status_code"] == 401)
        .unwrap();
    assert_eq!(refused["fields"]["auth_type"], "none");
}
