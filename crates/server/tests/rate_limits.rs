//! Rate limits (spec/ops.md §2.1–§2.2, decisions.md 6), through the real router.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{TestApp, config};

async fn app_with_api_limit(limit: i64) -> TestApp {
    TestApp::sqlite_with(gatehouse_server::config::ServerConfig {
        api_rate_limit: limit,
        ..config()
    })
    .await
}

#[tokio::test]
async fn api_limit_per_user_and_path_with_headers() {
    let app = app_with_api_limit(3).await;
    let (_, owner) = app.first_user().await;
    let (_, member) = app.user_with_roles(&owner, "m", &[]).await;
    for expected_remaining in ["2", "1", "0"] {
        let res = app.get("/api/v2/users/me").token(&member).send().await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(
            res.header("x-ratelimit-remaining"),
            Some(expected_remaining)
        );
        assert!(
            res.header("x-ratelimit-reset")
                .unwrap()
                .parse::<u64>()
                .unwrap()
                > 1_700_000_000
        );
    }
    let res = app.get("/api/v2/users/me").token(&member).send().await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        res.json(),
        json!({"message": "You've been rate limited for sending more than 3 requests in 1m0s."})
    );
    assert_eq!(res.header("retry-after"), Some("60"));
    // Another path, and another user, have their own budgets.
    assert_eq!(
        app.get("/api/v2/users/m")
            .token(&member)
            .send()
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v2/users/me")
            .token(&owner)
            .send()
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bypass_header_is_for_owners_only() {
    // Two: setting up logs in twice from the same address.
    let app = app_with_api_limit(2).await;
    let (_, owner) = app.first_user().await;
    let (_, member) = app.user_with_roles(&owner, "m", &[]).await;
    for _ in 0..5 {
        let res = app
            .get("/api/v2/users/me")
            .token(&owner)
            .header("X-Coder-Bypass-Ratelimit", "true")
            .send()
            .await;
        assert_eq!(res.status, StatusCode::OK);
    }
    let res = app
        .get("/api/v2/users/me")
        .token(&member)
        .header("X-Coder-Bypass-Ratelimit", "1")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::PRECONDITION_REQUIRED);
    assert_eq!(
        res.json(),
        json!({"message": "\"X-Coder-Bypass-Ratelimit\" provided but user is not owner"})
    );
    // Unauthenticated requests with the header are simply limited by IP: the setup
    // already used one of this address's two requests on this path.
    let res = app
        .get("/api/v2/users/first")
        .header("X-Coder-Bypass-Ratelimit", "true")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let third = app
        .get("/api/v2/users/first")
        .header("X-Coder-Bypass-Ratelimit", "true")
        .send()
        .await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn limits_can_be_turned_off() {
    for cfg in [
        gatehouse_server::config::ServerConfig {
            api_rate_limit: -1,
            ..config()
        },
        gatehouse_server::config::ServerConfig {
            api_rate_limit: 1,
            dangerous_disable_rate_limits: true,
            ..config()
        },
    ] {
        let app = TestApp::sqlite_with(cfg).await;
        for _ in 0..10 {
            let res = app.get("/api/v2/users/first").send().await;
            assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
            assert_eq!(res.header("x-ratelimit-limit"), None);
        }
    }
}

#[tokio::test]
async fn file_uploads_have_their_own_tight_limit() {
    let app = TestApp::sqlite().await;
    let (_, owner) = app.first_user().await;
    for i in 0..12 {
        let res = app
            .post("/api/v2/files")
            .token(&owner)
            .body_with_type("application/json", &format!("{{\"n\": {i}}}"))
            .send()
            .await;
        assert!(res.status.is_success(), "upload {i}: {}", res.text());
        assert_eq!(res.header("x-ratelimit-limit"), Some("12"));
    }
    let res = app
        .post("/api/v2/files")
        .token(&owner)
        .body_with_type("application/json", "{}")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        res.json()["message"],
        "You've been rate limited for sending more than 12 requests in 1m0s."
    );
}
