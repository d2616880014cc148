//! Scopes and allow lists bind end to end (decisions.md 13, spec/auth.md §2–§3).

use axum::http::StatusCode;
use serde_json::json;

use crate::{harness::TestApp, on_both_backends};

on_both_backends!(
    user_read_token_reads_me_but_cannot_create_tokens,
    allow_list_confines_a_token_to_named_objects,
    application_connect_token_cannot_use_the_management_api,
    scope_refusal_challenge_only_for_bearer_requests,
);

const FORBIDDEN_DETAIL: &str = "You don't have permission to view this content. If you believe this is a mistake, please contact your administrator or try signing in with different credentials.";

fn challenge(scope: &str) -> String {
    format!(
        "Bearer realm=\"coder\", error=\"insufficient_scope\", error_description=\"The request requires higher privileges than provided by the access token\", scope=\"{scope}\", resource_metadata=\"http://gatehouse.test/.well-known/oauth-protected-resource\""
    )
}

async fn user_read_token_reads_me_but_cannot_create_tokens(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let token = app
        .token(
            &owner,
            json!({"scopes": ["user:read"], "token_name": "reader"}),
        )
        .await;
    let bearer = format!("Bearer {token}");
    let res = app
        .get("/api/v2/users/me")
        .header("authorization", &bearer)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let res = app
        .post("/api/v2/users/me/keys/tokens")
        .header("authorization", &bearer)
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.json(),
        json!({"message": "Forbidden.", "detail": FORBIDDEN_DETAIL})
    );
    assert_eq!(
        res.header("www-authenticate"),
        Some(challenge("api_key:create").as_str())
    );
    // Reads the role allows but the scope does not are 403 too, not 404.
    let res = app
        .get("/api/v2/users/me/keys/tokens/reader")
        .header("authorization", &bearer)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.header("www-authenticate"),
        Some(challenge("api_key:read").as_str())
    );
}

async fn allow_list_confines_a_token_to_named_objects(app: TestApp) {
    let (owner_id, owner) = app.first_user().await;
    let (member_id, _) = app.user_with_roles(&owner, "olive", &[]).await;
    let token = app
        .token(&owner, json!({"allow_list": [format!("user:{owner_id}")]}))
        .await;
    let bearer = format!("Bearer {token}");
    assert_eq!(
        app.get("/api/v2/users/me")
            .header("authorization", &bearer)
            .send()
            .await
            .status,
        StatusCode::OK
    );
    // The owner's role may read Olive; the token's allow list may not.
    let res = app
        .get(&format!("/api/v2/users/{member_id}"))
        .header("authorization", &bearer)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.header("www-authenticate"),
        Some(challenge("user:read").as_str())
    );
    // Without the allow list the owner's session reads her.
    assert_eq!(
        app.get(&format!("/api/v2/users/{member_id}"))
            .token(&owner)
            .send()
            .await
            .status,
        StatusCode::OK
    );
}

async fn application_connect_token_cannot_use_the_management_api(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let token = app
        .token(&owner, json!({"scope": "application_connect"}))
        .await;
    let bearer = format!("Bearer {token}");
    for (method, path) in [
        ("GET", "/api/v2/users/me"),
        ("GET", "/api/v2/users/me/keys/tokens/tokenconfig"),
        ("POST", "/api/v2/users/me/keys"),
        ("PUT", "/api/v2/users/me/status/activate"),
    ] {
        let res = app
            .req(method.parse().unwrap(), path)
            .header("authorization", &bearer)
            .send()
            .await;
        assert_eq!(
            res.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            res.text()
        );
        assert!(
            res.header("www-authenticate")
                .unwrap()
                .contains("insufficient_scope"),
            "{method} {path}"
        );
    }
    // Listing is filtered, not refused: nothing is visible.
    let res = app
        .get("/api/v2/users/me/keys/tokens?include_all=true")
        .header("authorization", &bearer)
        .send()
        .await;
    assert_eq!(
        res.status,
        StatusCode::FORBIDDEN,
        "resolving `me` needs user:read"
    );
}

async fn scope_refusal_challenge_only_for_bearer_requests(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let token = app.token(&owner, json!({"scopes": ["user:read"]})).await;
    let res = app
        .post("/api/v2/users/me/keys/tokens")
        .token(&token)
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.header("www-authenticate"), None);
    let res = app
        .post(&format!(
            "/api/v2/users/me/keys/tokens?access_token={token}"
        ))
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.header("www-authenticate"),
        Some(challenge("api_key:create").as_str())
    );
}
