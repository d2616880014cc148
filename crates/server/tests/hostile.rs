//! The hostile-client suite (issue #9): clients that tamper, replay, downgrade, smuggle and
//! overload on purpose. Each answer must be a precise 4xx (never a 5xx, never a redirect
//! somewhere unregistered) and must leave nothing behind. The older suites cover more of
//! the same ground: code replay and refresh reuse (`oauth2`), audience binding
//! (`oauth2::resource_indicators_bind_the_audience`), consent CSRF
//! (`oauth2::consent_page_and_csrf`), cross-organization objects
//! (`openapi::unprivileged_member_gets_403_or_404_everywhere`) and role escalation
//! (`organizations`, `audit`).

mod aibridge;
mod api;
mod login;
mod mcp;
mod oauth2;
mod slow_clients;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{
    harness::TestApp,
    oauth2::{REDIRECT, confidential_app, exchange, pkce},
    on_both_backends,
};

on_both_backends!(
    every_truncation_and_tampering_of_a_token_is_a_plain_401,
    a_pkce_downgrade_at_the_token_endpoint_is_refused,
    redirect_uri_lookalikes_are_answered_here_never_redirected,
    a_token_never_carries_more_than_its_creator,
    deeply_nested_and_oversized_bodies_are_refused_cleanly,
    an_untrusted_forwarded_for_is_not_believed,
);

async fn me(app: &TestApp, token: &str) -> crate::harness::TestResponse {
    app.get("/api/v2/users/me").token(token).send().await
}

async fn every_truncation_and_tampering_of_a_token_is_a_plain_401(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let token = app.token(&owner, json!({"token_name": "victim"})).await;
    assert_eq!(me(&app, &token).await.status, StatusCode::OK);
    let mut variants: Vec<String> = (1..token.len()).map(|n| token[..n].to_owned()).collect();
    for at in 0..token.len() {
        let mut bytes = token.clone().into_bytes();
        if bytes[at] == b'-' {
            continue;
        }
        bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
        variants.push(String::from_utf8(bytes).unwrap());
    }
    variants.extend([
        format!("{token}x"),
        format!("{token}-x"),
        format!(" {token}"),
        token.to_uppercase(),
        token.replace('-', "_"),
        "-".to_owned(),
        "🦀🦀🦀🦀🦀-🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀".to_owned(),
    ]);
    for variant in &variants {
        let res = me(&app, variant).await;
        assert_eq!(
            res.status,
            StatusCode::UNAUTHORIZED,
            "{variant:?}: {}",
            res.text()
        );
        assert!(res.json()["message"].is_string(), "{variant:?}");
    }
    // The real token still works: tampering locks nobody out.
    assert_eq!(me(&app, &token).await.status, StatusCode::OK);
}

async fn a_pkce_downgrade_at_the_token_endpoint_is_refused(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    let (verifier, challenge) = pkce();
    let approve = |challenge: String| {
        let app = &app;
        let owner = owner.clone();
        let client_id = client_id.clone();
        async move {
            crate::oauth2::approve(
                app,
                &owner,
                &[
                    ("response_type", "code"),
                    ("client_id", &client_id),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                ],
            )
            .await
        }
    };
    let code_of = |loc: url::Url| {
        loc.query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    // Presenting the challenge itself as the verifier is the `plain` method: refused.
    let code = code_of(approve(challenge.clone()).await);
    let res = exchange(&app, &client_id, &secret, &code, &challenge).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(res.json()["error"], "invalid_grant");
    // Leaving the verifier out is a malformed request (RFC 7636 §4.5 makes it required
    // once a challenge was sent): refused before the code is looked at, so whoever holds
    // the verifier can still redeem it.
    let code = code_of(approve(challenge.clone()).await);
    let res = crate::oauth2::token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(res.json()["error"], "invalid_request", "{}", res.text());
    let res = exchange(&app, &client_id, &secret, &code, &verifier).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

async fn redirect_uri_lookalikes_are_answered_here_never_redirected(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (client_id, _) = confidential_app(&app, &owner, None).await;
    let (_, challenge) = pkce();
    assert_eq!(REDIRECT, "https://client.example.com/callback");
    for lookalike in [
        "https://client.example.com./callback",
        "https://client.example.com.evil.example.com/callback",
        "https://client.example.com%40evil.example.com/callback",
        "https://evil.example.com\\@client.example.com/callback",
        "//evil.example.com/callback",
        "https:/evil.example.com/callback",
        "https://client.example.com/callback?next=https://evil.example.com",
        "https://client.example.com/Callback",
        "https://client.example.com:444/callback",
        "https://client.example.com/callback/",
        "javascript:alert(1)//client.example.com/callback",
    ] {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", client_id.as_str()),
                ("redirect_uri", lookalike),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("state", "s"),
            ])
            .finish();
        let res = app
            .post(&format!("/oauth2/authorize?{q}"))
            .token(&owner)
            .send()
            .await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{lookalike}: {}",
            res.text()
        );
        assert!(res.header("location").is_none(), "{lookalike}");
    }
}

async fn a_token_never_carries_more_than_its_creator(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (_, member) = app.user_with_roles(&owner, "mallory", &[]).await;
    // The widest scope there is: the token still acts as the member, no more.
    let wide = app
        .token(
            &member,
            json!({"token_name": "wide", "scopes": ["coder:all"]}),
        )
        .await;
    for (method, path, body) in [
        ("GET", "/api/v2/users/owner", None),
        (
            "POST",
            "/api/v2/organizations",
            Some(json!({"name": "mine"})),
        ),
        (
            "PUT",
            "/api/v2/users/mallory/roles",
            Some(json!({"roles": ["owner"]})),
        ),
        ("GET", "/api/v2/audit", None),
    ] {
        let mut req = app.req(method.parse().unwrap(), path).token(&wide);
        if let Some(body) = &body {
            req = req.json(body);
        }
        let res = req.send().await;
        assert!(
            matches!(
                res.status,
                StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST
            ),
            "{method} {path}: {} {}",
            res.status,
            res.text()
        );
    }
    // Nor can a token mint a token wider than itself.
    let narrow = app
        .token(
            &member,
            json!({"token_name": "narrow", "scopes": ["user:read"]}),
        )
        .await;
    let res = app
        .post("/api/v2/users/me/keys/tokens")
        .token(&narrow)
        .json(&json!({"token_name": "escalated", "scopes": ["coder:all"]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    // The member is still a member.
    let me = me(&app, &member).await.json();
    assert_eq!(me["roles"], json!([]));
}

async fn deeply_nested_and_oversized_bodies_are_refused_cleanly(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!(
        "{{\"token_name\": {}1{}}}",
        "{\"a\":".repeat(50_000),
        "}".repeat(50_000)
    );
    for body in [&deep, &deep_object] {
        let res = app
            .post("/api/v2/users/me/keys/tokens")
            .token(&owner)
            .raw_body(body)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
        assert_eq!(res.json()["message"], "Request body must be valid JSON.");
    }
    // The same through the OAuth2 registration endpoint, in its own error shape (within
    // its 64 KiB body limit, so the parser is what refuses it).
    let deep = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    let res = app
        .post("/oauth2/register")
        .body_with_type("application/json", &deep)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(res.json()["error"], "invalid_client_metadata");
    // Many keys within the size limit: answered, not choked on.
    let wide: serde_json::Map<String, Value> = (0..20_000)
        .map(|i| (format!("k{i}"), Value::from(i)))
        .collect();
    let res = app
        .post("/api/v2/users/me/keys/tokens")
        .token(&owner)
        .json(&Value::Object(wide))
        .send()
        .await;
    assert!(
        res.status.is_success() || res.status.is_client_error(),
        "{}",
        res.status
    );
    // Nothing half-written: the only tokens are the ones that were answered 201.
    let tokens = app
        .get("/api/v2/users/me/keys/tokens")
        .token(&owner)
        .send()
        .await
        .json();
    let created = usize::from(res.status == StatusCode::CREATED);
    assert_eq!(tokens.as_array().unwrap().len(), created, "{tokens}");
}

async fn an_untrusted_forwarded_for_is_not_believed(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let res = app
        .post("/api/v2/users/me/keys/tokens")
        .token(&owner)
        .peer("198.51.100.23:5555")
        .header("x-forwarded-for", "10.0.0.1, 127.0.0.1")
        .header("x-real-ip", "127.0.0.1")
        .json(&json!({"token_name": "smuggled"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    // No proxy is trusted here: the key and the audit log record the real peer.
    let recorded = app
        .text_value("SELECT ip_address FROM api_keys WHERE token_name = 'smuggled'")
        .await;
    assert_eq!(recorded, "198.51.100.23");
    let audit = app
        .get("/api/v2/audit?q=action:create%20resource_type:api_key")
        .token(&owner)
        .send()
        .await
        .json();
    assert_eq!(audit["audit_logs"][0]["ip"], "198.51.100.23");
}
