//! The MCP endpoint against a client that batches to multiply its budget (issue #29 item
//! 9): batches exist only in protocol 2025-03-26, and there only a few messages long.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestApp, TestResponse};

const PATH: &str = "/api/experimental/mcp/http";

async fn post(app: &TestApp, token: &str, version: Option<&str>, body: &Value) -> TestResponse {
    let mut req = app
        .post(PATH)
        .header("authorization", &format!("Bearer {token}"))
        .header("accept", "application/json, text/event-stream")
        .json(body);
    if let Some(version) = version {
        req = req.header("mcp-protocol-version", version);
    }
    req.send().await
}

fn calls(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                       "params": {"name": "coder_get_authenticated_user", "arguments": {}}})
            })
            .collect(),
    )
}

#[tokio::test]
async fn batches_are_refused_where_the_protocol_has_none_and_capped_where_it_has() {
    let mut config = crate::harness::config();
    config.experiments = vec!["mcp-server-http".to_owned()];
    let app = TestApp::sqlite_with(config).await;
    let (_, owner) = app.first_user().await;
    for version in ["2025-06-18", "2025-11-25"] {
        let res = post(&app, &owner, Some(version), &calls(2)).await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{version}: {}",
            res.text()
        );
        assert_eq!(res.json()["error"]["code"], -32600, "{}", res.text());
        assert_eq!(res.json()["id"], Value::Null);
    }
    // 2025-03-26, also when no version is sent (Streamable HTTP §2.7): a short batch is
    // answered message by message, a long one is refused whole.
    for version in [Some("2025-03-26"), None] {
        let res = post(&app, &owner, version, &calls(2)).await;
        assert_eq!(res.status, StatusCode::OK, "{version:?}: {}", res.text());
        assert_eq!(res.json().as_array().unwrap().len(), 2);
        for n in [17, 8_000] {
            let res = post(&app, &owner, version, &calls(n)).await;
            assert_eq!(res.status, StatusCode::BAD_REQUEST, "{n}: {}", res.text());
            assert_eq!(res.json()["error"]["code"], -32600);
            assert!(res.body.len() < 512, "{} bytes", res.body.len());
        }
    }
    // One message still works, and a body that is not declared JSON does not.
    let one = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let res = post(&app, &owner, Some("2025-06-18"), &one).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let res = app
        .post(PATH)
        .header("authorization", &format!("Bearer {owner}"))
        .body_with_type("text/plain", &one.to_string())
        .send()
        .await;
    assert_eq!(
        res.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        res.text()
    );
}
