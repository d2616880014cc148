//! API-key authentication through the real router (spec/auth.md §1, §8 scenarios 1–23).

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use serde_json::json;

use crate::{harness::TestApp, on_both_backends};

const SIGNED_OUT: &str =
    "You are signed out or your session has expired. Please sign in again to continue.";
const METADATA: &str =
    "resource_metadata=\"http://gatehouse.test/.well-known/oauth-protected-resource\"";

on_both_backends!(
    five_token_sources_authenticate,
    cookie_and_header_beat_an_invalid_bearer,
    missing_credentials_get_a_bare_challenge,
    malformed_tokens_are_refused_with_the_reason,
    unknown_id_and_wrong_secret_are_refused,
    expired_key_is_refused_with_go_formatted_time,
    suspended_user_is_refused_and_reactivated_user_is_let_in,
    dormant_user_is_activated_on_first_request,
    stale_last_used_is_written_at_most_hourly,
    session_keys_slide_and_token_keys_do_not,
    other_users_key_authenticates_only_as_that_user,
);

async fn me_with(
    app: &TestApp,
    f: impl FnOnce(crate::harness::Req<'_>) -> crate::harness::Req<'_>,
) -> crate::harness::TestResponse {
    f(app.get("/api/v2/users/me")).send().await
}

async fn five_token_sources_authenticate(app: TestApp) {
    let (id, token) = app.first_user().await;
    let id = id.to_string();
    let sources: Vec<(&str, crate::harness::TestResponse)> = vec![
        (
            "cookie",
            me_with(&app, |r| {
                r.header("cookie", &format!("other=1; coder_session_token={token}"))
            })
            .await,
        ),
        (
            "query",
            app.get(&format!("/api/v2/users/me?coder_session_token={token}"))
                .send()
                .await,
        ),
        ("header", me_with(&app, |r| r.token(&token)).await),
        (
            "bearer",
            me_with(&app, |r| {
                r.header("authorization", &format!("bearer  {token} "))
            })
            .await,
        ),
        (
            "access_token",
            app.get(&format!("/api/v2/users/me?access_token={token}"))
                .send()
                .await,
        ),
    ];
    for (source, res) in sources {
        assert_eq!(res.status, StatusCode::OK, "{source}: {}", res.text());
        assert_eq!(res.json()["id"], id.as_str(), "{source}");
        assert_eq!(res.json()["username"], "owner", "{source}");
    }
}

async fn cookie_and_header_beat_an_invalid_bearer(app: TestApp) {
    let (_, token) = app.first_user().await;
    let bogus = "Bearer AAAAAAAAAA-BBBBBBBBBBBBBBBBBBBBBB";
    let res = me_with(&app, |r| {
        r.header("cookie", &format!("coder_session_token={token}"))
            .header("authorization", bogus)
    })
    .await;
    assert_eq!(res.status, StatusCode::OK);
    let res = me_with(&app, |r| r.token(&token).header("authorization", bogus)).await;
    assert_eq!(res.status, StatusCode::OK);
    // Basic is not a token source.
    let res = me_with(&app, |r| {
        r.header("authorization", &format!("Basic {token}"))
    })
    .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

async fn missing_credentials_get_a_bare_challenge(app: TestApp) {
    let res = app.get("/api/v2/users/me").send().await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json(),
        json!({"message": SIGNED_OUT, "detail": "Cookie \"coder_session_token\" or query parameter must be provided."})
    );
    // RFC 6750 §3.1: no error code when no credentials were sent.
    assert_eq!(
        res.header("www-authenticate"),
        Some(format!("Bearer realm=\"coder\", {METADATA}").as_str())
    );
    assert_eq!(
        res.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert!(res.text().ends_with("}\n"));
}

async fn malformed_tokens_are_refused_with_the_reason(app: TestApp) {
    let cases = [
        (
            "nodash",
            "Invalid API key format: incorrect amount of API key parts, expected 2 got 1",
        ),
        (
            "a-b-c",
            "Invalid API key format: incorrect amount of API key parts, expected 2 got 3",
        ),
        (
            "123456789-1234567890123456789012",
            "Invalid API key format: invalid API key ID length, expected 10 got 9",
        ),
        (
            "1234567890-123456789012345678901",
            "Invalid API key format: invalid API key secret length, expected 22 got 21",
        ),
        (
            "1f0c4f54-6b1e-4a0c-9d3e-2f7a8f1b2c3d",
            "Invalid API key format: incorrect amount of API key parts, expected 2 got 5",
        ),
    ];
    for (token, detail) in cases {
        let res = me_with(&app, |r| r.token(token)).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(
            res.json(),
            json!({"message": SIGNED_OUT, "detail": detail}),
            "{token}"
        );
        let challenge = res.header("www-authenticate").unwrap();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(
            challenge.contains("error_description=\"The access token is invalid\""),
            "{challenge}"
        );
    }
    for header in [
        "Bearer",
        "Bearer ",
        "Bearer  x",
        "Bearer a Bearer b",
        "invalid-token",
    ] {
        let res = me_with(&app, |r| r.header("authorization", header)).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{header}");
        let challenge = res.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with("Bearer realm=\"coder\""),
            "{challenge}"
        );
    }
}

async fn unknown_id_and_wrong_secret_are_refused(app: TestApp) {
    let (_, token) = app.first_user().await;
    let res = me_with(&app, |r| r.token("ZZZZZZZZZZ-ABCDEFGHIJKLMNOPQRSTUV")).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json(),
        json!({"message": SIGNED_OUT, "detail": "API key is invalid."})
    );
    let (id, _) = token.split_once('-').unwrap();
    let wrong = format!("{id}-{}", "x".repeat(22));
    let res = me_with(&app, |r| r.token(&wrong)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json(),
        json!({"message": SIGNED_OUT, "detail": "API key secret is invalid."})
    );
    // A case-folded token is a different token.
    let res = me_with(&app, |r| r.token(&token.to_uppercase())).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

async fn expired_key_is_refused_with_go_formatted_time(app: TestApp) {
    let (_, token) = app.first_user().await;
    let id = token.split('-').next().unwrap();
    let expired_at = "2025-01-01T00:00:00Z".parse().unwrap();
    app.set_key_times(id, Utc::now(), expired_at).await;
    let res = me_with(&app, |r| r.token(&token)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json(),
        json!({"message": SIGNED_OUT, "detail": "API key expired at \"2025-01-01 00:00:00 +0000 UTC\"."})
    );
    assert_eq!(
        res.header("www-authenticate"),
        Some(format!("Bearer realm=\"coder\", error=\"invalid_token\", error_description=\"The access token has expired\", {METADATA}").as_str())
    );
}

async fn suspended_user_is_refused_and_reactivated_user_is_let_in(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (member_id, member) = app.user_with_roles(&owner, "member1", &[]).await;
    let res = app
        .put(&format!("/api/v2/users/{member_id}/status/suspend"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["status"], "suspended");
    let res = me_with(&app, |r| r.token(&member)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json(),
        json!({"message": "User is not active (status = \"suspended\"). Contact an admin to reactivate your account."})
    );
    assert!(
        res.header("www-authenticate")
            .unwrap()
            .contains("The access token is invalid")
    );
    let res = app
        .put("/api/v2/users/member1/status/activate")
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
    // Reactivated, the user signs in again: what was in circulation when the account was
    // suspended stays revoked (issue #29).
    let res = me_with(&app, |r| r.token(&member)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    assert_eq!(res.json()["detail"], "API key is invalid.");
    let fresh = app
        .login("member1@example.com", crate::harness::OWNER_PASSWORD)
        .await;
    assert_eq!(
        me_with(&app, |r| r.token(&fresh)).await.status,
        StatusCode::OK
    );
}

async fn dormant_user_is_activated_on_first_request(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let org = app.state.default_org.id;
    let res = app
        .post("/api/v2/users")
        .token(&owner)
        .json(&json!({"email": "sleepy@example.com", "username": "sleepy", "password": crate::harness::OWNER_PASSWORD, "organization_ids": [org]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(res.json()["status"], "dormant");
    let token = app
        .login("sleepy@example.com", crate::harness::OWNER_PASSWORD)
        .await;
    let res = me_with(&app, |r| r.token(&token)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["status"], "active");
}

async fn stale_last_used_is_written_at_most_hourly(app: TestApp) {
    let (_, token) = app.first_user().await;
    let id = token.split('-').next().unwrap();
    let far = Utc::now() + Duration::days(300);
    let day_ago = Utc::now() - Duration::days(1);
    app.set_key_times(id, day_ago, far).await;
    assert_eq!(
        me_with(&app, |r| r.token(&token)).await.status,
        StatusCode::OK
    );
    let row = app.key_row(&token).await;
    let last_used: chrono::DateTime<Utc> = row["last_used"].as_str().unwrap().parse().unwrap();
    assert!(
        Utc::now() - last_used < Duration::minutes(1),
        "last_used not refreshed: {row}"
    );
    let expires_at: chrono::DateTime<Utc> = row["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(
        (expires_at - far).num_seconds().abs() <= 1,
        "expires_at moved: {row}"
    );
    // A second request within the hour writes nothing.
    let before = app.key_row(&token).await["updated_at"].clone();
    assert_eq!(
        me_with(&app, |r| r.token(&token)).await.status,
        StatusCode::OK
    );
    assert_eq!(app.key_row(&token).await["updated_at"], before);
}

async fn session_keys_slide_and_token_keys_do_not(app: TestApp) {
    let (_, session) = app.first_user().await;
    let now = Utc::now();
    let soon = now + Duration::minutes(1);
    app.set_key_times(session.split('-').next().unwrap(), now, soon)
        .await;
    assert_eq!(
        me_with(&app, |r| r.token(&session)).await.status,
        StatusCode::OK
    );
    let expires: chrono::DateTime<Utc> = app.key_row(&session).await["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        expires > now + Duration::hours(23),
        "session did not slide: {expires}"
    );

    let token = app
        .token(&session, json!({"lifetime": 86_400_000_000_000i64}))
        .await;
    app.set_key_times(token.split('-').next().unwrap(), now, soon)
        .await;
    assert_eq!(
        me_with(&app, |r| r.token(&token)).await.status,
        StatusCode::OK
    );
    let expires: chrono::DateTime<Utc> = app.key_row(&token).await["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (expires - soon).num_seconds().abs() <= 1,
        "token key slid: {expires}"
    );
}

async fn other_users_key_authenticates_only_as_that_user(app: TestApp) {
    let (owner_id, owner) = app.first_user().await;
    let (member_id, member) = app.user_with_roles(&owner, "alice", &[]).await;
    assert_eq!(
        me_with(&app, |r| r.token(&member)).await.json()["id"],
        member_id.to_string()
    );
    assert_eq!(
        me_with(&app, |r| r.token(&owner)).await.json()["id"],
        owner_id.to_string()
    );
}

on_both_backends!(users_me_costs_one_query);

/// `GET /api/v2/users/me` with a used key: authentication and the answer come from one
/// query.
async fn users_me_costs_one_query(app: TestApp) {
    let (_, token) = app.first_user().await;
    assert_eq!(
        me_with(&app, |r| r.token(&token)).await.status,
        StatusCode::OK
    );
    let before = app.state.store.queries();
    let res = me_with(&app, |r| r.token(&token)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        res.json()["organization_ids"],
        json!([app.state.default_org.id])
    );
    assert_eq!(app.state.store.queries() - before, 1);
}
