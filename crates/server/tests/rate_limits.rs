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

/// Behind a trusted proxy the client's own address is the rate key (decisions.md 8): two
/// clients of one proxy have separate budgets, a client cannot pick its key by writing the
/// header itself, and garbage falls back to the proxy's address.
#[tokio::test]
async fn trusted_proxy_headers_choose_the_rate_key() {
    let app = TestApp::sqlite_with(gatehouse_server::config::ServerConfig {
        api_rate_limit: 2,
        proxy_trusted_headers: vec![axum::http::HeaderName::from_static("x-forwarded-for")],
        proxy_trusted_origins: vec!["10.0.0.0/8".parse().unwrap()],
        ..config()
    })
    .await;
    let send = |peer: &'static str, forwarded: &'static str| {
        let app = &app;
        async move {
            app.get("/api/v2/users/first")
                .peer(peer)
                .header("x-forwarded-for", forwarded)
                .send()
                .await
                .status
        }
    };
    // Two clients behind the proxy: two budgets of two.
    for client in ["198.51.100.1", "198.51.100.2"] {
        for _ in 0..2 {
            assert_ne!(
                send("10.0.0.5:4000", client).await,
                StatusCode::TOO_MANY_REQUESTS
            );
        }
        assert_eq!(
            send("10.0.0.5:4000", client).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    // A client that prepends a fresh address is still keyed on the hop the proxy added.
    assert_eq!(
        send("10.0.0.5:4000", "203.0.113.77, 198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // An untrusted peer's header is ignored: its own address is the key, so changing the
    // header does not buy a new budget.
    for claimed in ["192.0.2.1", "192.0.2.2"] {
        assert_ne!(
            send("192.0.2.200:4000", claimed).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(
        send("192.0.2.200:4000", "192.0.2.3").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Garbage from the proxy counts against the proxy's own address, whatever the garbage.
    for garbage in ["nonsense", "1.2.3.4, <script>"] {
        assert_ne!(
            send("10.0.0.9:4000", garbage).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(
        send("10.0.0.9:4000", "999.0.0.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
