//! The OpenAPI document: a snapshot, and a sweep proving every secured operation
//! answers 401 without credentials while public ones are exactly the checked-in list.

use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::harness::TestApp;

/// Operations that need no credentials (decisions.md 42).
const PUBLIC_OPERATIONS: &[&str] = &[
    "GET /api/v2/auth/scopes",
    "GET /api/v2/users/first",
    "POST /api/v2/users/first",
    "POST /api/v2/users/login",
];

async fn document(app: &TestApp) -> Value {
    let res = app.get("/api/v2/openapi.json").send().await;
    assert_eq!(res.status, StatusCode::OK);
    res.json()
}

#[tokio::test]
async fn openapi_snapshot() {
    let app = TestApp::sqlite().await;
    let doc = document(&app).await;
    insta::assert_json_snapshot!("openapi", doc);
}

#[tokio::test]
async fn every_secured_operation_answers_401_without_credentials() {
    let app = TestApp::sqlite().await;
    let doc = document(&app).await;
    let mut public = Vec::new();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            // An empty requirement object (`security: [{}]`) marks a public operation.
            let is_public = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            if is_public {
                public.push(name);
                continue;
            }
            let concrete = path
                .replace("{user}", "me")
                .replace("{keyid}", "AAAAAAAAAA")
                .replace("{keyname}", "x");
            let method: Method = method.to_uppercase().parse().unwrap();
            let res = app.req(method, &concrete).send().await;
            assert_eq!(
                res.status,
                StatusCode::UNAUTHORIZED,
                "{name}: {}",
                res.text()
            );
            assert!(res.header("www-authenticate").is_some(), "{name}");
            checked += 1;
        }
    }
    public.sort();
    assert_eq!(public, PUBLIC_OPERATIONS);
    assert!(checked >= 10, "only {checked} secured operations found");
}
