//! The authorization server against clients that registered themselves with hostile intent
//! (issue #29 items 3, 5 and 8): no open redirect through it, no megabytes stored per
//! registration, nothing left of them once unused, and no tokens for a suspended user.

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::{
    harness::TestApp,
    oauth2::{confidential_app, exchange, pkce},
    on_both_backends,
};

on_both_backends!(
    errors_for_self_registered_clients_are_shown_here,
    registration_stores_what_it_must_and_no_more,
    unused_self_registered_clients_are_purged,
    a_code_is_not_redeemed_for_a_suspended_user,
);

const PHISH: &str = "https://evil.example/phish";

async fn register(app: &TestApp, body: Value) -> crate::harness::TestResponse {
    app.post("/oauth2/register").json(&body).send().await
}

async fn registered(app: &TestApp, redirect: &str) -> String {
    let res = register(
        app,
        json!({"redirect_uris": [redirect], "client_name": "x"}),
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()["client_id"].as_str().unwrap().to_owned()
}

async fn errors_for_self_registered_clients_are_shown_here(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let client_id = registered(&app, PHISH).await;
    let (_, challenge) = pkce();
    let cookie = format!("coder_session_token={owner}");
    for query in [
        format!("client_id={client_id}"),
        format!("client_id={client_id}&response_type=token"),
        format!("client_id={client_id}&response_type=code&code_challenge={challenge}"),
        format!(
            "client_id={client_id}&response_type=code&code_challenge={challenge}&code_challenge_method=S256&scope=nonsense"
        ),
    ] {
        // Signed in (the leg after /login) with the browser's cookie.
        let res = app
            .get(&format!("/oauth2/authorize?{query}"))
            .header("cookie", &cookie)
            .send()
            .await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            res.text()
        );
        assert!(res.header("location").is_none(), "{query}");
        assert_eq!(
            res.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{query}"
        );
        // The consent POST likewise answers here.
        let res = app
            .post(&format!("/oauth2/authorize?{query}"))
            .token(&owner)
            .send()
            .await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            res.text()
        );
        assert!(res.header("location").is_none(), "{query}");
    }
    // Not signed in: to the login page, which is on this server.
    let res = app
        .get(&format!("/oauth2/authorize?client_id={client_id}"))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(res.header("location").unwrap().starts_with("/login?"));
    // An app an administrator registered still gets its errors by redirect (RFC 6749
    // §4.1.2.1).
    let (admin_app, _) = confidential_app(&app, &owner, None).await;
    let res = app
        .get(&format!("/oauth2/authorize?client_id={admin_app}"))
        .header("cookie", &cookie)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FOUND, "{}", res.text());
    assert!(
        res.header("location")
            .unwrap()
            .starts_with("https://client.example.com/callback?error=invalid_request"),
        "{:?}",
        res.header("location")
    );
}

async fn registration_stores_what_it_must_and_no_more(app: TestApp) {
    let redirect = json!(["https://client.example/cb"]);
    // The body itself: at most 64 KiB.
    let res = register(
        &app,
        json!({"redirect_uris": redirect, "client_name": "x".repeat(900_000)}),
    )
    .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.text());
    for (field, value) in [
        ("client_name", json!("x".repeat(257))),
        ("software_id", json!("x".repeat(257))),
        ("software_version", json!("x".repeat(257))),
        (
            "client_uri",
            json!(format!("https://a.example/{}", "x".repeat(2048))),
        ),
        (
            "logo_uri",
            json!(format!("https://a.example/{}", "x".repeat(2048))),
        ),
        (
            "contacts",
            json!(
                (0..11)
                    .map(|i| format!("c{i}@example.com"))
                    .collect::<Vec<_>>()
            ),
        ),
        ("contacts", json!(["x".repeat(257)])),
        (
            "jwks",
            json!({"keys": [{"kty": "oct", "k": "x".repeat(17_000)}]}),
        ),
    ] {
        let mut body = json!({"redirect_uris": redirect});
        body[field] = value;
        let res = register(&app, body).await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{field}: {}",
            res.text()
        );
        assert_eq!(res.json()["error"], "invalid_client_metadata", "{field}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM oauth2_provider_apps").await,
        0,
        "nothing refused was stored"
    );
    // Within the caps, accepted; fields RFC 7591 does not define are not kept.
    let res = register(
        &app,
        json!({
            "redirect_uris": redirect,
            "client_name": "n".repeat(256),
            "contacts": (0..10).map(|i| format!("c{i}@example.com")).collect::<Vec<_>>(),
            "x_padding": "p".repeat(40_000),
        }),
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert!(res.json().get("x_padding").is_none());
    let stored = app
        .text_value("SELECT CAST(metadata AS TEXT) FROM oauth2_provider_apps")
        .await;
    assert!(!stored.contains("x_padding"), "{stored}");
    assert!(stored.len() < 2_000, "{} bytes stored", stored.len());
}

async fn unused_self_registered_clients_are_purged(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let unused = registered(&app, "https://unused.example/cb").await;
    let used = registered(&app, "https://used.example/cb").await;
    let fresh = registered(&app, "https://fresh.example/cb").await;
    let (admin_app, _) = confidential_app(&app, &owner, None).await;
    // `used` has a pending code.
    let (_, challenge) = pkce();
    crate::oauth2::approve(
        &app,
        &owner,
        &[
            ("response_type", "code"),
            ("client_id", &used),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    // Everything but `fresh` registered two days ago.
    let two_days_ago = Utc::now() - Duration::days(2);
    app.exec_at(
        "UPDATE oauth2_provider_apps SET created_at = $1 \
         WHERE CAST(redirect_uris AS TEXT) NOT LIKE '%fresh.example%'",
        two_days_ago,
    )
    .await;
    let purged = gatehouse_server::jobs::purge::tick(
        &app.state.store,
        &app.state.metrics,
        app.state.retention(),
    )
    .await
    .unwrap();
    assert_eq!(purged.unused_oauth2_clients, 1);
    let remaining = |id: &str| {
        let id = id.to_owned();
        let app = &app;
        let owner = owner.clone();
        async move {
            app.get(&format!("/api/v2/oauth2-provider/apps/{id}"))
                .token(&owner)
                .send()
                .await
                .status
        }
    };
    assert_eq!(remaining(&unused).await, StatusCode::NOT_FOUND);
    assert_eq!(remaining(&used).await, StatusCode::OK);
    assert_eq!(remaining(&fresh).await, StatusCode::OK);
    assert_eq!(remaining(&admin_app).await, StatusCode::OK);
}

async fn a_code_is_not_redeemed_for_a_suspended_user(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (member_id, member) = app.user_with_roles(&owner, "mallory", &[]).await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    let (code, verifier) = crate::oauth2::code_for(&app, &member, &client_id, &[]).await;
    let (refreshable, verifier2) = crate::oauth2::code_for(&app, &member, &client_id, &[]).await;
    let res = exchange(&app, &client_id, &secret, &refreshable, &verifier2).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let refresh = res.json()["refresh_token"].as_str().unwrap().to_owned();
    let res = app
        .put(&format!("/api/v2/users/{member_id}/status/suspend"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    // Suspended: the code issued before gets no tokens, nor does the refresh token.
    let res = exchange(&app, &client_id, &secret, &code, &verifier).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(res.json()["error"], "invalid_grant");
    let res = crate::oauth2::refresh_grant(&app, &client_id, &secret, &refresh).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    // Reactivated: what was in circulation at the suspension stays revoked.
    let res = app
        .put(&format!("/api/v2/users/{member_id}/status/activate"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let res = exchange(&app, &client_id, &secret, &code, &verifier).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    let res = crate::oauth2::refresh_grant(&app, &client_id, &secret, &refresh).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    let res = app.get("/api/v2/users/me").token(&member).send().await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
}

/// RFC 7636 §4.3: a challenge without its method is a `plain` challenge, which is refused,
/// rather than taken for S256 (a client that meant `plain` would have its verifier
/// compared to a hash and be told it was wrong, and a downgrade would go unnoticed).
#[tokio::test]
async fn a_challenge_without_its_method_is_refused() {
    let app = TestApp::sqlite().await;
    let (_, owner) = app.first_user().await;
    let (client_id, _) = confidential_app(&app, &owner, None).await;
    let (_, challenge) = pkce();
    let loc = crate::oauth2::approve(
        &app,
        &owner,
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("code_challenge", &challenge),
            ("state", "s"),
        ],
    )
    .await;
    let pairs: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(
        pairs.get("error").map(String::as_str),
        Some("invalid_request"),
        "{loc}"
    );
    assert!(
        pairs["error_description"].contains("code_challenge_method: required"),
        "{loc}"
    );
    assert!(!pairs.contains_key("code"), "{loc}");
}
