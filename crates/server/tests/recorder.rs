//! The authz check recorder: dev mode only, opt-in per request, bounded.

use axum::http::StatusCode;

use crate::harness::{TestApp, config};

async fn app(dev: bool, always: bool) -> TestApp {
    let mut config = config();
    config.dev = dev;
    config.enable_authz_recordings = always;
    TestApp::sqlite_with(config).await
}

#[tokio::test]
async fn off_without_dev_mode() {
    let app = app(false, true).await;
    let (_, owner) = app.first_user().await;
    let res = app
        .get("/api/v2/users/me")
        .token(&owner)
        .header("x-record-authz-checks", "true")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("x-authz-checks"), None);
}

#[tokio::test]
async fn dev_mode_records_when_asked() {
    let app = app(true, false).await;
    let (owner_id, owner) = app.first_user().await;
    let res = app.get("/api/v2/users/me").token(&owner).send().await;
    assert_eq!(res.header("x-authz-checks"), None, "not asked");
    let res = app
        .get("/api/v2/users/me")
        .token(&owner)
        .header("x-record-authz-checks", "t")
        .send()
        .await;
    let checks = res.header("x-authz-checks").unwrap();
    assert!(
        checks.starts_with(&format!("owner:{owner_id}::id:{owner_id}::user.read=true")),
        "{checks}"
    );
    let res = app
        .get("/api/v2/users/me")
        .token(&owner)
        .header("x-record-authz-checks", "nope")
        .send()
        .await;
    assert_eq!(res.header("x-authz-checks"), None);
    // Logging out runs as the system, so this request made no checks of its own.
    let res = app
        .post("/api/v2/users/logout")
        .token(&owner)
        .header("x-record-authz-checks", "1")
        .send()
        .await;
    assert_eq!(res.header("x-authz-checks"), Some("nil"));
}

#[tokio::test]
async fn dev_mode_with_recordings_enabled_records_every_request() {
    let app = app(true, true).await;
    let (_, owner) = app.first_user().await;
    let res = app
        .get("/api/v2/users/me/keys/tokens/nothing")
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let checks = res.header("x-authz-checks").unwrap();
    assert!(checks.contains("user.read=true"), "{checks}");
}
