//! The OAuth2 authorization server through the real router (spec/oauth2.md; decisions.md
//! 25–34), on both backends.

use axum::http::StatusCode;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::{
    harness::{ACCESS_URL, TestApp, TestResponse},
    on_both_backends,
};

pub const REDIRECT: &str = "https://client.example.com/callback";
const MCP_URL: &str = "http://gatehouse.test/api/experimental/mcp/http";

pub fn pkce() -> (String, String) {
    let verifier = format!("v{}", uuid::Uuid::new_v4().simple()) + "-._~0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// An admin-created confidential app and one secret.
pub async fn confidential_app(app: &TestApp, owner: &str, scope: Option<&str>) -> (String, String) {
    let mut body = json!({"name": "test-app", "redirect_uris": [REDIRECT]});
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    let res = app
        .post("/api/v2/oauth2-provider/apps")
        .token(owner)
        .json(&body)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let id = res.json()["id"].as_str().unwrap().to_owned();
    let res = app
        .post(&format!("/api/v2/oauth2-provider/apps/{id}/secrets"))
        .token(owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let secret = res.json()["client_secret_full"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, secret)
}

/// Approves an authorization request as the holder of `session` (header session: CSRF
/// exempt) and returns the redirect.
pub async fn approve(app: &TestApp, session: &str, query: &[(&str, &str)]) -> Url {
    let res = app
        .post(&format!("/oauth2/authorize?{}", form(query)))
        .token(session)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FOUND, "{}", res.text());
    Url::parse(res.header("location").unwrap()).unwrap()
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A code for `client_id` with PKCE; returns (code, verifier).
pub async fn code_for(
    app: &TestApp,
    session: &str,
    client_id: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
    ];
    query.extend_from_slice(extra);
    let loc = approve(app, session, &query).await;
    assert_eq!(param(&loc, "state").as_deref(), Some("xyz"));
    assert_eq!(param(&loc, "iss").as_deref(), Some(ACCESS_URL));
    let code = param(&loc, "code").unwrap_or_else(|| panic!("no code in {loc}"));
    (code, verifier)
}

pub async fn token_request(app: &TestApp, pairs: &[(&str, &str)]) -> TestResponse {
    app.post("/oauth2/tokens")
        .body_with_type("application/x-www-form-urlencoded", &form(pairs))
        .send()
        .await
}

fn assert_oauth_error(res: &TestResponse, status: StatusCode, code: &str) {
    assert_eq!(res.status, status, "{}", res.text());
    assert_eq!(res.json()["error"], code, "{}", res.text());
}

pub async fn exchange(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    code: &str,
    verifier: &str,
) -> TestResponse {
    token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("client_id", client_id),
            ("client_secret", secret),
        ],
    )
    .await
}

/// The refresh-token grant by a confidential client (RFC 6749 §6).
pub async fn refresh_grant(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    refresh_token: &str,
) -> TestResponse {
    token_request(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
            ("client_secret", secret),
        ],
    )
    .await
}

async fn me_with_bearer(app: &TestApp, token: &str) -> TestResponse {
    app.get("/api/v2/users/me")
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await
}

async fn full_flow_with_refresh_rotation(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    let (code, verifier) = code_for(&app, &owner, &client_id, &[("redirect_uri", REDIRECT)]).await;
    // RFC 6749 §4.1.3: redirect_uri must be repeated when it was sent.
    let res = exchange(&app, &client_id, &secret, &code, &verifier).await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_grant");
    let (code, verifier) = code_for(&app, &owner, &client_id, &[]).await;
    let res = exchange(&app, &client_id, &secret, &code, &verifier).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let body = res.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "coder:all");
    assert_eq!(body["expires_in"], 86400);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert!(refresh.starts_with("coder_") && refresh.len() == 57);
    // RFC 6750 §2.1 and §2.3.
    let res = me_with_bearer(&app, &access).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["username"], "owner");
    let res = app
        .get(&format!("/api/v2/users/me?access_token={access}"))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);

    // Refresh rotates both tokens; the old access token dies.
    let res = refresh_grant(&app, &client_id, &secret, &refresh).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let rotated = res.json();
    let access2 = rotated["access_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated["refresh_token"], refresh.as_str());
    assert_eq!(
        me_with_bearer(&app, &access).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me_with_bearer(&app, &access2).await.status, StatusCode::OK);

    // A confidential client must authenticate to refresh; the token survives the attempt.
    let res = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rotated["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_oauth_error(&res, StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(
        res.header("www-authenticate"),
        Some("Basic realm=\"coder\"")
    );
    assert_eq!(me_with_bearer(&app, &access2).await.status, StatusCode::OK);

    // RFC 9700 §4.14.2: the rotated-out refresh token again revokes the whole grant.
    let res = refresh_grant(&app, &client_id, &secret, &refresh).await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        me_with_bearer(&app, &access2).await.status,
        StatusCode::UNAUTHORIZED
    );
    let res = refresh_grant(
        &app,
        &client_id,
        &secret,
        rotated["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_grant");
}

async fn code_is_single_use_and_replay_revokes(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    let (code, verifier) = code_for(&app, &owner, &client_id, &[]).await;
    let first = exchange(&app, &client_id, &secret, &code, &verifier).await;
    assert_eq!(first.status, StatusCode::OK);
    let access = first.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me_with_bearer(&app, &access).await.status, StatusCode::OK);
    let replay = exchange(&app, &client_id, &secret, &code, &verifier).await;
    assert_oauth_error(&replay, StatusCode::BAD_REQUEST, "invalid_grant");
    // RFC 6749 §4.1.2: the tokens the code produced are revoked.
    assert_eq!(
        me_with_bearer(&app, &access).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Alias path, and two grants for one (user, app) live side by side.
    let (code_a, verifier_a) = code_for(&app, &owner, &client_id, &[]).await;
    let (code_b, verifier_b) = code_for(&app, &owner, &client_id, &[]).await;
    let a = exchange(&app, &client_id, &secret, &code_a, &verifier_a).await;
    let b = app
        .post("/oauth2/token")
        .body_with_type(
            "application/x-www-form-urlencoded",
            &form(&[
                ("grant_type", "authorization_code"),
                ("code", &code_b),
                ("code_verifier", &verifier_b),
                ("client_id", &client_id),
                ("client_secret", &secret),
            ]),
        )
        .send()
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(b.status, StatusCode::OK, "{}", b.text());
    for res in [&a, &b] {
        let t = res.json()["access_token"].as_str().unwrap().to_owned();
        assert_eq!(me_with_bearer(&app, &t).await.status, StatusCode::OK);
    }
}

async fn pkce_is_required_and_verified(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    // Authorization-time failures go back to the client by redirect.
    let (_, challenge) = pkce();
    for (extra, expected) in [
        (
            vec![
                ("code_challenge_method", "plain"),
                ("code_challenge", challenge.as_str()),
            ],
            "code_challenge_method 'plain' is not supported; use 'S256'",
        ),
        (vec![], "code_challenge: required"),
        // RFC 7636 §4.3: no method means `plain`, which is refused rather than assumed S256.
        (
            vec![("code_challenge", challenge.as_str())],
            "code_challenge_method: required",
        ),
        (
            vec![("code_challenge", "short")],
            "code_challenge: must be 43 to 128",
        ),
    ] {
        let mut q = vec![
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("state", "s1"),
        ];
        q.extend(extra);
        let loc = approve(&app, &owner, &q).await;
        assert!(loc.as_str().starts_with(REDIRECT), "{loc}");
        assert_eq!(param(&loc, "error").as_deref(), Some("invalid_request"));
        assert!(
            param(&loc, "error_description").unwrap().contains(expected),
            "{loc}"
        );
        assert_eq!(param(&loc, "state").as_deref(), Some("s1"));
        assert_eq!(param(&loc, "code"), None);
    }
    let loc = approve(
        &app,
        &owner,
        &[("response_type", "token"), ("client_id", &client_id)],
    )
    .await;
    assert_eq!(
        param(&loc, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(param(&loc, "state"), None);

    let (code, verifier) = code_for(&app, &owner, &client_id, &[]).await;
    let res = exchange(&app, &client_id, &secret, &code, "tooshort").await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_request");
    let (wrong, _) = pkce();
    let res = exchange(&app, &client_id, &secret, &code, &wrong).await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        res.json()["error_description"],
        "The PKCE code verifier is invalid"
    );
    // The code was burnt: the right verifier no longer works.
    let res = exchange(&app, &client_id, &secret, &code, &verifier).await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_grant");
}

async fn token_endpoint_rejects_bad_clients_and_requests(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    let (code, verifier) = code_for(&app, &owner, &client_id, &[]).await;
    for bad_secret in [
        "1234_4321",
        "notcoder_aaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "coder_1234",
        "coder__1234",
        "coder_aaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    ] {
        let res = exchange(&app, &client_id, bad_secret, &code, &verifier).await;
        assert_oauth_error(&res, StatusCode::UNAUTHORIZED, "invalid_client");
        assert_eq!(
            res.json()["error_description"],
            "The client credentials are invalid"
        );
    }
    // A secret of another app does not authenticate this one.
    let (_, other_secret) = confidential_app(&app, &owner, None).await;
    let res = exchange(&app, &client_id, &other_secret, &code, &verifier).await;
    assert_oauth_error(&res, StatusCode::UNAUTHORIZED, "invalid_client");
    for unknown in ["not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
        let res = exchange(&app, unknown, &secret, &code, &verifier).await;
        assert_oauth_error(&res, StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let res = token_request(&app, &[("code", &code)]).await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_request");
    for grant in ["password", "client_credentials", "bogus"] {
        let res = token_request(&app, &[("grant_type", grant), ("client_id", &client_id)]).await;
        assert_oauth_error(&res, StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let res = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("grant_type", "refresh_token"),
        ],
    )
    .await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "unsupported_grant_type");
    // OAuth 2.1 §2.4.1: no secrets in the URL.
    let res = app
        .post(&format!("/oauth2/tokens?client_secret={secret}"))
        .body_with_type(
            "application/x-www-form-urlencoded",
            &form(&[
                ("grant_type", "authorization_code"),
                ("client_id", &client_id),
            ]),
        )
        .send()
        .await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_request");
    // HTTP Basic works, and may not be combined with a body secret.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    let res = app
        .post("/oauth2/tokens")
        .header("authorization", &format!("Basic {basic}"))
        .body_with_type(
            "application/x-www-form-urlencoded",
            &form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("client_secret", &secret),
            ]),
        )
        .send()
        .await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_request");
    let res = app
        .post("/oauth2/tokens")
        .header("authorization", &format!("Basic {basic}"))
        .body_with_type(
            "application/x-www-form-urlencoded",
            &form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
            ]),
        )
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    // Oversized forms: 413 in the OAuth2 shape.
    let big = format!("grant_type=authorization_code&x={}", "a".repeat(1_100_000));
    let res = app
        .post("/oauth2/tokens")
        .body_with_type("application/x-www-form-urlencoded", &big)
        .send()
        .await;
    assert_oauth_error(&res, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request");
}

async fn redirect_uri_rules(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let res = app
        .post("/api/v2/oauth2-provider/apps")
        .token(&owner)
        .json(&json!({"name": "loopback", "redirect_uris": ["http://127.0.0.1:3000/callback", REDIRECT]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let client_id = res.json()["id"].as_str().unwrap().to_owned();
    let (_, challenge) = pkce();
    // Never redirected to an unregistered URI: answered here instead.
    for bad in [
        "https://evil.example.com/callback",
        "https://client.example.com/callback/../x",
        "https://client.example.com/callback2",
        "http://client.example.com/callback",
        "https://client.example.com@evil.example.com/callback",
        "https://client.example.com/callback#x",
    ] {
        let q = form(&[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", bad),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        let res = app
            .post(&format!("/oauth2/authorize?{q}"))
            .token(&owner)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}: {}", res.text());
        assert!(res.header("location").is_none());
        assert!(
            res.json()["error_description"]
                .as_str()
                .unwrap()
                .contains("must exactly match")
        );
        let res = app
            .get(&format!("/oauth2/authorize?{q}"))
            .token(&owner)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert!(res.header("content-type").unwrap().starts_with("text/html"));
    }
    // Several registered URIs: the request must name one (RFC 6749 §3.1.2.3).
    let q = form(&[
        ("response_type", "code"),
        ("client_id", &client_id),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let res = app
        .post(&format!("/oauth2/authorize?{q}"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    // RFC 8252 §7.3: a loopback redirect matches on any port.
    let loc = approve(
        &app,
        &owner,
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", "http://127.0.0.1:51515/callback"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert!(
        loc.as_str()
            .starts_with("http://127.0.0.1:51515/callback?code="),
        "{loc}"
    );
}

async fn resource_indicators_bind_the_audience(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    // Bound to the MCP endpoint: refused on the rest of the API with a 401 challenge.
    let (code, verifier) = code_for(&app, &owner, &client_id, &[("resource", MCP_URL)]).await;
    let res = exchange(&app, &client_id, &secret, &code, &verifier).await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_target");
    let (code, verifier) = code_for(&app, &owner, &client_id, &[("resource", MCP_URL)]).await;
    let res = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("resource", MCP_URL),
        ],
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let tokens = res.json();
    let access = tokens["access_token"].as_str().unwrap();
    let res = me_with_bearer(&app, access).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let challenge = res.header("www-authenticate").unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("audience does not match"), "{challenge}");
    // A refresh may not move the token to another resource.
    let res = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("resource", ACCESS_URL),
        ],
    )
    .await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_target");
    // Bound to the root: valid on the API.
    let (code, verifier) = code_for(
        &app,
        &owner,
        &client_id,
        &[("resource", "http://gatehouse.test/")],
    )
    .await;
    let res = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("resource", "http://gatehouse.test"),
        ],
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        me_with_bearer(&app, res.json()["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::OK
    );
    // A resource this deployment does not serve: invalid_target by redirect.
    let (_, ch) = pkce();
    let loc = approve(
        &app,
        &owner,
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("code_challenge", &ch),
            ("code_challenge_method", "S256"),
            ("resource", "https://api.example.com"),
        ],
    )
    .await;
    assert_eq!(param(&loc, "error").as_deref(), Some("invalid_target"));
    let loc = approve(
        &app,
        &owner,
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("code_challenge", &ch),
            ("code_challenge_method", "S256"),
            ("resource", "http://gatehouse.test/#frag"),
        ],
    )
    .await;
    assert_eq!(param(&loc, "error").as_deref(), Some("invalid_target"));
}

async fn scopes_bind_the_issued_key(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (client_id, secret) =
        confidential_app(&app, &owner, Some("user:read workspace:read")).await;
    let (_, ch) = pkce();
    let loc = approve(
        &app,
        &owner,
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("code_challenge", &ch),
            ("code_challenge_method", "S256"),
            ("scope", "user:read workspace:delete"),
        ],
    )
    .await;
    assert_eq!(param(&loc, "error").as_deref(), Some("invalid_scope"));
    let loc = approve(
        &app,
        &owner,
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("code_challenge", &ch),
            ("code_challenge_method", "S256"),
            ("scope", "nonsense"),
        ],
    )
    .await;
    assert_eq!(param(&loc, "error").as_deref(), Some("invalid_scope"));
    let (code, verifier) = code_for(&app, &owner, &client_id, &[("scope", "user:read")]).await;
    let res = exchange(&app, &client_id, &secret, &code, &verifier).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["scope"], "user:read");
    let access = res.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me_with_bearer(&app, &access).await.status, StatusCode::OK);
    let res = app
        .post("/api/v2/users/me/keys/tokens")
        .header("authorization", &format!("Bearer {access}"))
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    assert!(
        res.header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
    // Omitted scope: the app's allowlist. A refresh may narrow, never widen.
    let (code, verifier) = code_for(&app, &owner, &client_id, &[]).await;
    let res = exchange(&app, &client_id, &secret, &code, &verifier).await;
    assert_eq!(res.json()["scope"], "user:read workspace:read");
    let refresh = res.json()["refresh_token"].as_str().unwrap().to_owned();
    let res = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("scope", "coder:all"),
        ],
    )
    .await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_scope");
    let res = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("scope", "workspace:read"),
        ],
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["scope"], "workspace:read");
    // A session limited to user:read cannot approve a wider grant for anyone.
    let narrow = app.token(&owner, json!({"scopes": ["user:read"]})).await;
    let loc = approve(
        &app,
        &narrow,
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("code_challenge", &ch),
            ("code_challenge_method", "S256"),
            ("scope", "workspace:read"),
        ],
    )
    .await;
    assert_eq!(param(&loc, "error").as_deref(), Some("access_denied"));
}

async fn dynamic_registration_and_client_configuration(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let res = app
        .post("/oauth2/register")
        .json(&json!({"redirect_uris": ["http://127.0.0.1:8976/cb"], "client_name": "MCP Inspector", "token_endpoint_auth_method": "none"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let public = res.json();
    assert!(public.get("client_secret").is_none());
    assert!(public.get("client_secret_expires_at").is_none());
    assert_eq!(public["token_endpoint_auth_method"], "none");
    assert_eq!(
        public["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    let client_id = public["client_id"].as_str().unwrap().to_owned();
    let rat = public["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        public["registration_client_uri"],
        format!("{ACCESS_URL}/oauth2/clients/{client_id}")
    );
    // A public client exchanges with PKCE alone.
    let (verifier, challenge) = pkce();
    let loc = approve(
        &app,
        &owner,
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("redirect_uri", "http://127.0.0.1:1234/cb"),
        ],
    )
    .await;
    let code = param(&loc, "code").unwrap();
    let res = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
            ("redirect_uri", "http://127.0.0.1:1234/cb"),
        ],
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    let res = app
        .post("/oauth2/register")
        .json(&json!({"redirect_uris": ["https://app.example.com/cb"]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let confidential = res.json();
    assert!(
        confidential["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("coder_")
    );
    assert_eq!(confidential["client_secret_expires_at"], 0);
    assert_eq!(
        confidential["token_endpoint_auth_method"],
        "client_secret_basic"
    );

    for (body, code) in [
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example.com/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["http://evil.example.com/cb"], "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example.com/cb"], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example.com/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example.com/cb"], "logo_uri": "javascript:x"}),
            "invalid_client_metadata",
        ),
    ] {
        let res = app.post("/oauth2/register").json(&body).send().await;
        assert_oauth_error(&res, StatusCode::BAD_REQUEST, code);
    }
    let res = app
        .post("/oauth2/register")
        .raw_body("{not json")
        .send()
        .await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_client_metadata");

    // RFC 7592.
    let path = format!("/oauth2/clients/{client_id}");
    let res = app
        .get(&path)
        .header("authorization", &format!("Bearer {rat}"))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(res.json().get("registration_access_token").is_none());
    for auth in [
        None,
        Some("Bearer wrong".to_owned()),
        Some(format!("Basic {rat}")),
    ] {
        let mut req = app.get(&path);
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await;
        assert_oauth_error(&res, StatusCode::UNAUTHORIZED, "invalid_token");
    }
    let other = confidential["client_id"].as_str().unwrap();
    let res = app
        .get(&format!("/oauth2/clients/{other}"))
        .header("authorization", &format!("Bearer {rat}"))
        .send()
        .await;
    assert_oauth_error(&res, StatusCode::UNAUTHORIZED, "invalid_token");
    let res = app
        .put(&path)
        .header("authorization", &format!("bearer {rat}"))
        .json(&json!({"redirect_uris": ["http://127.0.0.1:9/cb2"], "client_name": "Renamed", "token_endpoint_auth_method": "none"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["client_name"], "Renamed");
    let res = app
        .put(&path)
        .header("authorization", &format!("Bearer {rat}"))
        .json(&json!({"redirect_uris": ["http://127.0.0.1:9/cb2"]}))
        .send()
        .await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_client_metadata");
    let res = app
        .delete(&path)
        .header("authorization", &format!("Bearer {rat}"))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let res = app
        .get(&path)
        .header("authorization", &format!("Bearer {rat}"))
        .send()
        .await;
    assert_oauth_error(&res, StatusCode::UNAUTHORIZED, "invalid_token");

    // Turned off: 403 and no registration_endpoint.
    let res = app
        .put("/api/v2/oauth2-provider/settings")
        .token(&owner)
        .json(&json!({"dynamic_client_registration_enabled": false}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["dynamic_client_registration_enabled"], false);
    let res = app
        .post("/oauth2/register")
        .json(&json!({"redirect_uris": ["https://a.example.com/cb"]}))
        .send()
        .await;
    assert_oauth_error(&res, StatusCode::FORBIDDEN, "invalid_request");
    let meta = app
        .get("/.well-known/oauth-authorization-server")
        .send()
        .await
        .json();
    assert!(meta.get("registration_endpoint").is_none());
}

async fn revocation_follows_rfc7009(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    let (other_id, other_secret) = confidential_app(&app, &owner, None).await;
    let issue = || async {
        let (code, verifier) = code_for(&app, &owner, &client_id, &[]).await;
        exchange(&app, &client_id, &secret, &code, &verifier)
            .await
            .json()
    };
    let revoke = |token: String, id: String, sec: Option<String>| {
        let app = &app;
        async move {
            let mut pairs = vec![("token".to_owned(), token), ("client_id".to_owned(), id)];
            if let Some(s) = sec {
                pairs.push(("client_secret".to_owned(), s));
            }
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            app.post("/oauth2/revoke")
                .body_with_type("application/x-www-form-urlencoded", &body)
                .send()
                .await
        }
    };
    let tokens = issue().await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    // Another app's credentials: 200, nothing revoked.
    let res = revoke(
        refresh.clone(),
        other_id.clone(),
        Some(other_secret.clone()),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(me_with_bearer(&app, &access).await.status, StatusCode::OK);
    // Without the secret: 401, nothing revoked.
    let res = revoke(refresh.clone(), client_id.clone(), None).await;
    assert_oauth_error(&res, StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(me_with_bearer(&app, &access).await.status, StatusCode::OK);
    // Malformed and unknown tokens: 200 (§2.2).
    for junk in ["garbage", "coder_x_y", "aaaaaaaaaa-bbbbbbbbbbbbbbbbbbbbbb"] {
        let res = revoke(junk.to_owned(), client_id.clone(), Some(secret.clone())).await;
        assert_eq!(res.status, StatusCode::OK, "{junk}");
    }
    // A session token is never revoked here.
    let res = revoke(owner.clone(), client_id.clone(), Some(secret.clone())).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/v2/users/me")
            .token(&owner)
            .send()
            .await
            .status,
        StatusCode::OK
    );
    // Revoking the refresh token kills the access token too.
    let res = revoke(refresh.clone(), client_id.clone(), Some(secret.clone())).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body.is_empty());
    assert_eq!(
        me_with_bearer(&app, &access).await.status,
        StatusCode::UNAUTHORIZED
    );
    // And the other way round.
    let tokens = issue().await;
    let res = revoke(
        tokens["access_token"].as_str().unwrap().to_owned(),
        client_id.clone(),
        Some(secret.clone()),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    let res = refresh_grant(
        &app,
        &client_id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_grant");
    let res = app
        .post("/oauth2/revoke")
        .body_with_type(
            "application/x-www-form-urlencoded",
            &form(&[("client_id", &client_id), ("client_secret", &secret)]),
        )
        .send()
        .await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_request");
}

async fn introspection_shows_own_tokens_only(app: TestApp) {
    let (owner_id, owner) = app.first_user().await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    let (other_id, other_secret) = confidential_app(&app, &owner, None).await;
    let tokens = fresh_tokens(&app, &owner, &client_id, &secret).await;
    let introspect = |token: &str, id: &str, sec: &str| {
        let body = form(&[("token", token), ("client_id", id), ("client_secret", sec)]);
        let app = &app;
        async move {
            app.post("/oauth2/introspect")
                .body_with_type("application/x-www-form-urlencoded", &body)
                .send()
                .await
        }
    };
    let res = introspect(
        tokens["access_token"].as_str().unwrap(),
        &client_id,
        &secret,
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], client_id.as_str());
    assert_eq!(body["sub"], owner_id.to_string());
    assert_eq!(body["username"], "owner");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["iss"], ACCESS_URL);
    assert_eq!(body["aud"], ACCESS_URL);
    let res = introspect(
        tokens["refresh_token"].as_str().unwrap(),
        &client_id,
        &secret,
    )
    .await;
    assert_eq!(res.json()["active"], true);
    for (token, id, sec) in [
        (
            tokens["access_token"].as_str().unwrap(),
            other_id.as_str(),
            other_secret.as_str(),
        ),
        (owner.as_str(), client_id.as_str(), secret.as_str()),
        ("junk", client_id.as_str(), secret.as_str()),
    ] {
        let res = introspect(token, id, sec).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.json(), json!({"active": false}));
    }
    let res = introspect(
        tokens["access_token"].as_str().unwrap(),
        &client_id,
        "coder_aaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    )
    .await;
    assert_oauth_error(&res, StatusCode::UNAUTHORIZED, "invalid_client");
}

async fn management_api_and_cascading_revocation(app: TestApp) {
    let (owner_id, owner) = app.first_user().await;
    let (_, member) = app.user_with_roles(&owner, "member", &[]).await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    // Members may read apps but not manage them.
    let res = app
        .get(&format!("/api/v2/oauth2-provider/apps/{client_id}"))
        .token(&member)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let app_json = res.json();
    assert_eq!(app_json["client_type"], "confidential");
    assert_eq!(app_json["callback_url"], REDIRECT);
    assert_eq!(
        app_json["endpoints"]["token"],
        format!("{ACCESS_URL}/oauth2/tokens")
    );
    assert_eq!(app_json["endpoints"]["device_authorization"], "");
    let res = app
        .post("/api/v2/oauth2-provider/apps")
        .token(&member)
        .json(&json!({"name": "x", "redirect_uris": [REDIRECT]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    for (path, status) in [
        (
            "/api/v2/oauth2-provider/apps/00000000-0000-0000-0000-000000000000".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v2/oauth2-provider/apps/not-a-uuid".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let res = app.get(&path).token(&owner).send().await;
        assert_eq!(res.status, status, "{path}");
        assert_eq!(res.header("cache-control"), Some("no-store"));
        if status == StatusCode::NOT_FOUND {
            assert_eq!(res.json()["message"], "OAuth2 application not found.");
        }
    }
    let res = app
        .post("/api/v2/oauth2-provider/apps")
        .token(&owner)
        .json(&json!({"name": "bad", "redirect_uris": ["javascript:alert(1)"]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let res = app
        .put(&format!("/api/v2/oauth2-provider/apps/{client_id}"))
        .token(&owner)
        .json(&json!({"name": "renamed", "icon": "/icon.png"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["name"], "renamed");
    assert_eq!(res.json()["redirect_uris"], json!([REDIRECT]));

    // Secrets: listed truncated; another app's secret id is refused.
    let res = app
        .get(&format!("/api/v2/oauth2-provider/apps/{client_id}/secrets"))
        .token(&owner)
        .send()
        .await;
    let listed = res.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        listed[0]["client_secret_truncated"].as_str().unwrap().len(),
        6
    );
    assert!(secret.ends_with(listed[0]["client_secret_truncated"].as_str().unwrap()));
    let secret_id = listed[0]["id"].as_str().unwrap().to_owned();
    let (other_id, _) = confidential_app(&app, &owner, None).await;
    let res = app
        .delete(&format!(
            "/api/v2/oauth2-provider/apps/{other_id}/secrets/{secret_id}"
        ))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json()["message"],
        "App ID does not match secret app ID."
    );

    // The user's authorized apps, and revoking one app's grants.
    let tokens = fresh_tokens(&app, &owner, &client_id, &secret).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let res = app
        .get(&format!("/api/v2/oauth2-provider/apps?user_id={owner_id}"))
        .token(&owner)
        .send()
        .await;
    let ids: Vec<Value> = res
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(client_id)]);
    let res = app
        .get("/api/v2/oauth2-provider/apps?user_id=nope")
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let res = app
        .delete(&format!("/oauth2/tokens?client_id={client_id}"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    assert_eq!(
        me_with_bearer(&app, &access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let res = app
        .get(&format!("/api/v2/oauth2-provider/apps?user_id={owner_id}"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.json(), json!([]));

    // Deleting the secret revokes tokens issued under it; an outstanding code then fails.
    let tokens = fresh_tokens(&app, &owner, &client_id, &secret).await;
    let (pending_code, pending_verifier) = code_for(&app, &owner, &client_id, &[]).await;
    let res = app
        .delete(&format!(
            "/api/v2/oauth2-provider/apps/{client_id}/secrets/{secret_id}"
        ))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(
        me_with_bearer(&app, tokens["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let res = exchange(&app, &client_id, &secret, &pending_code, &pending_verifier).await;
    assert_oauth_error(&res, StatusCode::UNAUTHORIZED, "invalid_client");

    // Deleting the app revokes everything.
    let res = app
        .post(&format!("/api/v2/oauth2-provider/apps/{client_id}/secrets"))
        .token(&owner)
        .send()
        .await;
    let secret = res.json()["client_secret_full"]
        .as_str()
        .unwrap()
        .to_owned();
    let tokens = fresh_tokens(&app, &owner, &client_id, &secret).await;
    let res = app
        .delete(&format!("/api/v2/oauth2-provider/apps/{client_id}"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(
        me_with_bearer(&app, tokens["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let res = refresh_grant(
        &app,
        &client_id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_oauth_error(&res, StatusCode::UNAUTHORIZED, "invalid_client");
    // A public app may not get a secret.
    let res = app.post("/oauth2/register").json(&json!({"redirect_uris": ["http://localhost/cb"], "token_endpoint_auth_method": "none"})).send().await;
    let public_id = res.json()["client_id"].as_str().unwrap().to_owned();
    let res = app
        .post(&format!("/api/v2/oauth2-provider/apps/{public_id}/secrets"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
}

async fn discovery_documents(app: TestApp) {
    let res = app
        .get("/.well-known/oauth-authorization-server")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.header("cache-control").is_none());
    let meta = res.json();
    assert_eq!(meta["issuer"], ACCESS_URL);
    assert_eq!(
        meta["token_endpoint"],
        format!("{ACCESS_URL}/oauth2/tokens")
    );
    assert_eq!(
        meta["registration_endpoint"],
        format!("{ACCESS_URL}/oauth2/register")
    );
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        meta["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        meta["introspection_endpoint"],
        format!("{ACCESS_URL}/oauth2/introspect")
    );
    let scopes = meta["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&json!("workspace:read")) && !scopes.contains(&json!("system:read")));
    let suffixed = app
        .get("/.well-known/oauth-authorization-server/anything")
        .send()
        .await
        .json();
    assert_eq!(suffixed, meta);
    let root = app
        .get("/.well-known/oauth-protected-resource")
        .send()
        .await
        .json();
    assert_eq!(root["resource"], ACCESS_URL);
    assert_eq!(root["authorization_servers"], json!([ACCESS_URL]));
    assert_eq!(root["bearer_methods_supported"], json!(["header", "query"]));
    let mcp = app
        .get("/.well-known/oauth-protected-resource/api/experimental/mcp/http")
        .send()
        .await
        .json();
    assert_eq!(mcp["resource"], MCP_URL);
    let res = app
        .get("/.well-known/oauth-protected-resource/api/v2")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    // CORS for browser-based clients, no credentials.
    let res = app
        .req(axum::http::Method::OPTIONS, "/oauth2/tokens")
        .header("origin", "https://inspector.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,mcp-protocol-version",
        )
        .send()
        .await;
    assert!(res.status.is_success(), "{:?}", res.status);
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
    assert!(res.header("access-control-allow-credentials").is_none());
    let res = app.get("/oauth2/nowhere").send().await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(res.header("pragma"), Some("no-cache"));
}

async fn consent_page_and_csrf(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (client_id, _) = confidential_app(&app, &owner, Some("user:read")).await;
    let (_, challenge) = pkce();
    let q = form(&[
        ("response_type", "code"),
        ("client_id", &client_id),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", "st"),
    ]);
    // No session: to the login page, coming back here afterwards.
    let res = app.get(&format!("/oauth2/authorize?{q}")).send().await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let login = res.header("location").unwrap();
    assert!(
        login.starts_with("/login?redirect=%2Foauth2%2Fauthorize%3F"),
        "{login}"
    );
    // An unknown client is refused before anything else.
    let res = app
        .get("/oauth2/authorize?client_id=00000000-0000-0000-0000-000000000000")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let cookie = format!("coder_session_token={owner}");
    let res = app
        .get(&format!("/oauth2/authorize?{q}"))
        .header("cookie", &cookie)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let page = res.text();
    assert!(
        page.contains("test-app")
            && page.contains("client.example.com")
            && page.contains("user:read")
    );
    let csp = res.header("content-security-policy").unwrap();
    assert!(
        csp.contains("form-action 'self' https://client.example.com"),
        "{csp}"
    );
    let csrf = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    // The browser session (cookie) must carry the form's CSRF token.
    let post = |token: Option<&str>| {
        let body = token
            .map(|t| form(&[("csrf_token", t)]))
            .unwrap_or_default();
        app.post(&format!("/oauth2/authorize?{q}"))
            .header("cookie", &cookie)
            .body_with_type("application/x-www-form-urlencoded", &body)
            .send()
    };
    let res = post(None).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(res.json()["message"].as_str().unwrap().contains("CSRF"));
    let res = post(Some("0000")).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let res = post(Some(&csrf)).await;
    assert_eq!(res.status, StatusCode::FOUND, "{}", res.text());
    assert!(
        res.header("location")
            .unwrap()
            .starts_with(&format!("{REDIRECT}?code=coder_"))
    );
}

async fn login_page_signs_in_and_returns(app: TestApp) {
    app.first_user().await;
    let target = "/oauth2/authorize?client_id=x&state=1";
    let res = app
        .get(&format!("/login?redirect={}", urlencode(target)))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(
        res.header("content-security-policy")
            .unwrap()
            .contains("form-action 'self'")
    );
    let csrf_cookie = res
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = csrf_cookie.split_once('=').unwrap().1.to_owned();
    let page = res.text();
    assert!(
        page.contains(&format!(
            "action=\"/login?redirect={}\"",
            urlencode(target).replace('&', "&#38;")
        )),
        "{page}"
    );
    let submit = |redirect: &str, body: String, cookie: Option<String>| {
        let mut req = app
            .post(&format!("/login?redirect={}", urlencode(redirect)))
            .body_with_type("application/x-www-form-urlencoded", &body);
        if let Some(c) = cookie {
            req = req.header("cookie", &c);
        }
        req.send()
    };
    let creds = |password: &str, token: &str| {
        form(&[
            ("email", crate::harness::OWNER_EMAIL),
            ("password", password),
            ("csrf_token", token),
        ])
    };
    // Without the form's CSRF cookie, nobody is signed in.
    let res = submit(target, creds(crate::harness::OWNER_PASSWORD, &csrf), None).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(res.header("location").is_none());
    let res = submit(
        target,
        creds("wrong-password!", &csrf),
        Some(csrf_cookie.clone()),
    )
    .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(res.text().contains("Incorrect email or password."));
    let res = submit(
        target,
        creds(crate::harness::OWNER_PASSWORD, &csrf),
        Some(csrf_cookie.clone()),
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text());
    assert_eq!(res.header("location"), Some(target));
    let session = res.header("set-cookie").unwrap();
    assert!(session.starts_with("coder_session_token=") && session.contains("HttpOnly"));
    let token = session
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;
    assert_eq!(
        app.get("/api/v2/users/me").token(token).send().await.status,
        StatusCode::OK
    );
    // Only local paths: anything else lands on `/`.
    for evil in [
        "//evil.example.com/x",
        "https://evil.example.com",
        "/\\evil.example.com",
    ] {
        let res = submit(
            evil,
            creds(crate::harness::OWNER_PASSWORD, &csrf),
            Some(csrf_cookie.clone()),
        )
        .await;
        assert_eq!(res.header("location"), Some("/"), "{evil}");
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn expiry_races_and_nothing_half_issued(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    const OAUTH_KEYS: &str =
        "SELECT COUNT(*) FROM api_keys WHERE login_type = 'oauth2_provider_app'";
    // Failures leave nothing behind.
    let (code, _) = code_for(&app, &owner, &client_id, &[]).await;
    let (wrong, _) = pkce();
    assert_eq!(
        exchange(&app, &client_id, &secret, &code, &wrong)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.count(OAUTH_KEYS).await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM oauth2_provider_grants")
            .await,
        0
    );
    // An expired code.
    let (code, verifier) = code_for(&app, &owner, &client_id, &[]).await;
    let past = chrono::Utc::now() - chrono::TimeDelta::minutes(11);
    app.exec_at("UPDATE oauth2_provider_app_codes SET expires_at = $1", past)
        .await;
    let res = exchange(&app, &client_id, &secret, &code, &verifier).await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        res.json()["error_description"],
        "The authorization code is invalid or expired"
    );
    assert_eq!(app.count(OAUTH_KEYS).await, 0);
    // Two redemptions of one code at once: exactly one wins.
    let (code, verifier) = code_for(&app, &owner, &client_id, &[]).await;
    let (a, b) = tokio::join!(
        exchange(&app, &client_id, &secret, &code, &verifier),
        exchange(&app, &client_id, &secret, &code, &verifier)
    );
    let wins = [a.status, b.status]
        .iter()
        .filter(|s| **s == StatusCode::OK)
        .count();
    assert_eq!(wins, 1, "{} / {}", a.text(), b.text());
    assert!(app.count(OAUTH_KEYS).await <= 1);
    // An expired refresh token.
    let tokens = fresh_tokens(&app, &owner, &client_id, &secret).await;
    app.exec_at(
        "UPDATE oauth2_provider_app_tokens SET expires_at = $1",
        past,
    )
    .await;
    let res = refresh_grant(
        &app,
        &client_id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        res.json()["error_description"],
        "The refresh token is invalid or expired"
    );
}

async fn a_suspended_user_cannot_refresh(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (user_id, member) = app.user_with_roles(&owner, "member", &[]).await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    let (code, verifier) = code_for(&app, &member, &client_id, &[]).await;
    let tokens = exchange(&app, &client_id, &secret, &code, &verifier)
        .await
        .json();
    let res = app
        .put(&format!("/api/v2/users/{user_id}/status/suspend"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        me_with_bearer(&app, tokens["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let res = refresh_grant(
        &app,
        &client_id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_oauth_error(&res, StatusCode::BAD_REQUEST, "invalid_grant");
}

/// A code issued to `owner` and exchanged: the token response.
async fn fresh_tokens(app: &TestApp, owner: &str, client_id: &str, secret: &str) -> Value {
    let (code, verifier) = code_for(app, owner, client_id, &[]).await;
    exchange(app, client_id, secret, &code, &verifier)
        .await
        .json()
}

/// Two refreshes of one token at once: one rotates; the other is refused, and however the
/// two interleave the chain is left whole (one live refresh token, one live access token).
async fn concurrent_refreshes_rotate_once(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    let tokens = fresh_tokens(&app, &owner, &client_id, &secret).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (a, b) = tokio::join!(
        refresh_grant(&app, &client_id, &secret, refresh),
        refresh_grant(&app, &client_id, &secret, refresh)
    );
    let winners: Vec<_> = [&a, &b]
        .into_iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert_eq!(winners.len(), 1, "{} / {}", a.text(), b.text());
    let loser = if a.status == StatusCode::OK { &b } else { &a };
    assert_oauth_error(loser, StatusCode::BAD_REQUEST, "invalid_grant");
    let live_rows = app
        .count("SELECT COUNT(*) FROM oauth2_provider_app_tokens WHERE rotated_at IS NULL")
        .await;
    let live_keys = app
        .count("SELECT COUNT(*) FROM api_keys WHERE login_type = 'oauth2_provider_app'")
        .await;
    // The loser either lost the claim (the chain goes on) or presented a token that had
    // just been rotated, which RFC 9700 §4.14.2 treats as theft (the grant is revoked).
    assert!(
        (live_rows, live_keys) == (1, 1) || (live_rows, live_keys) == (0, 0),
        "rows {live_rows}, keys {live_keys}"
    );
    let access = winners[0].json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected = if live_keys == 1 {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    assert_eq!(me_with_bearer(&app, &access).await.status, expected);
}

/// A rotation whose new access token cannot be written (its id collides) fails as a
/// whole: the old access token still works, the refresh token is still unused, and the
/// next write goes through.
async fn a_rotation_failing_part_way_changes_nothing(app: TestApp) {
    use gatehouse_store::system::oauth2_provider;
    let (_, owner) = app.first_user().await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    let tokens = fresh_tokens(&app, &owner, &client_id, &secret).await;
    let access = tokens["access_token"].as_str().unwrap();
    let prefix = app
        .text_value("SELECT hash_prefix FROM oauth2_provider_app_tokens")
        .await;
    let store = &app.state.store;
    let old = store
        .oauth2_token_by_prefix(oauth2_provider(), &prefix)
        .await
        .unwrap()
        .unwrap();
    let taken_id = owner.split('-').next().unwrap();
    let (key, row) = successor(&old, taken_id);
    let err = store
        .rotate_oauth2_token(oauth2_provider(), &old, &key, &row)
        .await
        .unwrap_err();
    assert!(
        matches!(err, gatehouse_store::StoreError::Conflict(_)),
        "{err:?}"
    );
    assert_eq!(me_with_bearer(&app, access).await.status, StatusCode::OK);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM oauth2_provider_app_tokens WHERE rotated_at IS NULL")
            .await,
        1
    );
    let res = refresh_grant(
        &app,
        &client_id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let access2 = res.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        me_with_bearer(&app, access).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me_with_bearer(&app, &access2).await.status, StatusCode::OK);
}

/// A new access key and refresh-token row for rotating `old` in a store-level test. The
/// key's secret is never presented, so its hash is arbitrary.
fn successor(
    old: &gatehouse_store::models::OAuth2Token,
    key_id: &str,
) -> (
    gatehouse_store::models::NewApiKey,
    gatehouse_store::models::NewOAuth2Token,
) {
    let now = chrono::Utc::now();
    let key = gatehouse_store::models::NewApiKey {
        id: key_id.to_owned(),
        hashed_secret: vec![0; 32],
        user_id: old.user_id,
        expires_at: now + chrono::TimeDelta::hours(1),
        login_type: "oauth2_provider_app".to_owned(),
        lifetime_seconds: 3600,
        ip_address: "127.0.0.1".to_owned(),
        token_name: format!("successor {key_id}"),
        scopes: vec!["all".to_owned()],
        allow_list: vec!["*:*".to_owned()],
    };
    let row = gatehouse_store::models::NewOAuth2Token {
        id: uuid::Uuid::new_v4(),
        hash_prefix: key_id.to_owned(),
        refresh_hash: vec![0; 32],
        expires_at: now + chrono::TimeDelta::days(1),
    };
    (key, row)
}

/// Grants of one client, each with its stored token row and access token.
async fn grants(
    app: &TestApp,
    owner: &str,
    client_id: &str,
    secret: &str,
    count: usize,
) -> Vec<(gatehouse_store::models::OAuth2Token, String)> {
    use gatehouse_store::system::oauth2_provider;
    let mut out = Vec::new();
    for _ in 0..count {
        let tokens = fresh_tokens(app, owner, client_id, secret).await;
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let prefix = refresh.split('_').nth(1).unwrap();
        let row = app
            .state
            .store
            .oauth2_token_by_prefix(oauth2_provider(), prefix)
            .await
            .unwrap()
            .unwrap();
        out.push((row, tokens["access_token"].as_str().unwrap().to_owned()));
    }
    out
}

/// Rotations waiting at the same moment are committed together: six grants and a second
/// rotation of the first cost two database calls (the second of one row waits for the
/// next commit, and finds it rotated). Each reports its own outcome, and every rotated
/// grant's old access token is dead.
async fn rotations_waiting_together_share_one_commit(app: TestApp) {
    use gatehouse_store::system::oauth2_provider;
    let (_, owner) = app.first_user().await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    let grants = grants(&app, &owner, &client_id, &secret, 6).await;
    let store = &app.state.store;
    let mut rotations: Vec<_> = grants
        .iter()
        .enumerate()
        .map(|(i, (row, _))| (row, successor(row, &format!("succ{i:06}"))))
        .collect();
    rotations.push((&grants[0].0, successor(&grants[0].0, "again00000")));
    let before = store.queries();
    let results = futures_util::future::join_all(rotations.iter().map(|(row, (key, new_row))| {
        store.rotate_oauth2_token(oauth2_provider(), row, key, new_row)
    }))
    .await;
    let calls = store.queries() - before;
    let claimed: Vec<bool> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(claimed, [true, true, true, true, true, true, false]);
    assert_eq!(calls, 2);
    for (_, access) in &grants {
        assert_eq!(
            me_with_bearer(&app, access).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM oauth2_provider_app_tokens WHERE rotated_at IS NULL")
            .await,
        6
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM api_keys WHERE token_name LIKE 'successor %'")
            .await,
        6
    );
}

/// A rotation that cannot be written fails alone: the batch it broke is committed again
/// one rotation at a time, so the others waiting with it go through.
async fn a_broken_rotation_fails_alone_in_its_batch(app: TestApp) {
    use gatehouse_store::{StoreError, system::oauth2_provider};
    let (_, owner) = app.first_user().await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    let grants = grants(&app, &owner, &client_id, &secret, 3).await;
    let store = &app.state.store;
    // The middle rotation's new key id is the owner's session key's: it collides.
    let taken = owner.split('-').next().unwrap();
    let keys = [
        successor(&grants[0].0, "ok00000000"),
        successor(&grants[1].0, taken),
        successor(&grants[2].0, "ok00000002"),
    ];
    let results = futures_util::future::join_all(grants.iter().zip(&keys).map(
        |((row, _), (key, new_row))| {
            store.rotate_oauth2_token(oauth2_provider(), row, key, new_row)
        },
    ))
    .await;
    assert!(matches!(results[0], Ok(true)), "{:?}", results[0]);
    assert!(
        matches!(results[1], Err(StoreError::Conflict(_))),
        "{:?}",
        results[1]
    );
    assert!(matches!(results[2], Ok(true)), "{:?}", results[2]);
    // The broken one changed nothing: its access token still works.
    assert_eq!(
        me_with_bearer(&app, &grants[1].1).await.status,
        StatusCode::OK
    );
    assert_eq!(
        me_with_bearer(&app, &grants[0].1).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM oauth2_provider_app_tokens WHERE rotated_at IS NULL")
            .await,
        3
    );
}

async fn one_rate_bucket_for_the_oauth2_tree(app: TestApp) {
    let revoke = form(&[("client_id", "x"), ("token", "y")]);
    for _ in 0..60 {
        let res = app
            .post("/oauth2/revoke")
            .body_with_type("application/x-www-form-urlencoded", &revoke)
            .send()
            .await;
        assert_ne!(res.status, StatusCode::TOO_MANY_REQUESTS);
    }
    // The bucket is shared by every /oauth2 route, and RFC 7592 paths do not get their own.
    for path in [
        "/oauth2/tokens",
        "/oauth2/clients/7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "/oauth2/revoke",
    ] {
        let res = app
            .post(path)
            .body_with_type("application/x-www-form-urlencoded", &revoke)
            .send()
            .await;
        assert_oauth_error(
            &res,
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
        );
        assert!(res.header("retry-after").is_some());
        assert_eq!(res.header("cache-control"), Some("no-store"));
    }
    // Discovery has its own bucket.
    let res = app
        .get("/.well-known/oauth-authorization-server")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
}

async fn provider_disabled_hides_routes(_app: TestApp) {
    let mut config = crate::harness::config();
    config.oauth2_provider_enable = false;
    let app = TestApp::sqlite_with(config).await;
    let (_, owner) = app.first_user().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-protected-resource",
        "/oauth2/authorize",
    ] {
        let res = app.get(path).send().await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(res.json()["message"], "Route not found.");
    }
    let res = app.post("/oauth2/register").json(&json!({})).send().await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let res = app
        .get("/api/v2/oauth2-provider/apps")
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let res = app
        .get("/api/v2/oauth2-provider/settings")
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
}

/// The refresh grant's reads (the client with its secret, the token row with its grant)
/// are one query, and the rotation one more: two database calls in all. Background jobs
/// may count calls of their own in between, so the fewest of a few grants is compared.
async fn a_refresh_grant_is_two_database_calls(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    let (code, verifier) = code_for(&app, &owner, &client_id, &[]).await;
    let res = exchange(&app, &client_id, &secret, &code, &verifier).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let mut refresh = res.json()["refresh_token"].as_str().unwrap().to_owned();
    let mut fewest = u64::MAX;
    for _ in 0..5 {
        let before = app.state.store.queries();
        let res = refresh_grant(&app, &client_id, &secret, &refresh).await;
        let calls = app.state.store.queries() - before;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        refresh = res.json()["refresh_token"].as_str().unwrap().to_owned();
        fewest = fewest.min(calls);
    }
    assert_eq!(fewest, 2);
}

on_both_backends!(
    full_flow_with_refresh_rotation,
    a_refresh_grant_is_two_database_calls,
    code_is_single_use_and_replay_revokes,
    pkce_is_required_and_verified,
    token_endpoint_rejects_bad_clients_and_requests,
    redirect_uri_rules,
    resource_indicators_bind_the_audience,
    scopes_bind_the_issued_key,
    dynamic_registration_and_client_configuration,
    revocation_follows_rfc7009,
    introspection_shows_own_tokens_only,
    management_api_and_cascading_revocation,
    discovery_documents,
    consent_page_and_csrf,
    login_page_signs_in_and_returns,
    expiry_races_and_nothing_half_issued,
    one_rate_bucket_for_the_oauth2_tree,
    a_suspended_user_cannot_refresh,
    concurrent_refreshes_rotate_once,
    a_rotation_failing_part_way_changes_nothing,
    rotations_waiting_together_share_one_commit,
    a_broken_rotation_fails_alone_in_its_batch,
);

#[tokio::test]
async fn provider_disabled() {
    provider_disabled_hides_routes(TestApp::sqlite().await).await;
}

mod mcp {
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use super::{code_for, confidential_app, exchange, token_request};
    use crate::harness::{TestApp, TestResponse};

    const PATH: &str = "/api/experimental/mcp/http";

    async fn with_mcp() -> TestApp {
        let mut config = crate::harness::config();
        config.experiments = vec!["mcp-server-http".to_owned()];
        TestApp::sqlite_with(config).await
    }

    async fn rpc(app: &TestApp, bearer: &str, body: &Value) -> TestResponse {
        app.post(PATH)
            .header("authorization", &format!("Bearer {bearer}"))
            .header("accept", "application/json, text/event-stream")
            .json(body)
            .send()
            .await
    }

    #[tokio::test]
    async fn unauthenticated_call_starts_discovery() {
        let app = with_mcp().await;
        let res = app
            .post(PATH)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}))
            .send()
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.header("www-authenticate"),
            Some(
                "Bearer realm=\"coder\", scope=\"user:read workspace:read template:read\", resource_metadata=\"http://gatehouse.test/.well-known/oauth-protected-resource/api/experimental/mcp/http\""
            )
        );
    }

    #[tokio::test]
    async fn experiment_gate_answers_after_authentication() {
        let app = TestApp::sqlite().await;
        let (_, owner) = app.first_user().await;
        let res = rpc(
            &app,
            &owner,
            &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert_eq!(
            res.json()["message"],
            "MCP HTTP Server functionality requires enabling the 'mcp-server-http' experiment."
        );
        let res = app.get("/api/v2/experiments").token(&owner).send().await;
        assert_eq!(res.json(), json!([]));
    }

    #[tokio::test]
    async fn tools_run_as_the_caller() {
        let app = with_mcp().await;
        let (_, owner) = app.first_user().await;
        let res = rpc(&app, &owner, &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let init = res.json();
        assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
        assert_eq!(init["result"]["serverInfo"]["name"], "Coder");
        assert!(res.header("mcp-session-id").is_none());
        let res = rpc(
            &app,
            &owner,
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
        assert_eq!(res.status, StatusCode::ACCEPTED);
        let res = rpc(
            &app,
            &owner,
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await;
        let listed = res.json();
        let names: Vec<&str> = listed["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "coder_get_authenticated_user",
                "coder_list_workspaces",
                "coder_list_templates"
            ]
        );
        let res = rpc(&app, &owner, &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "coder_get_authenticated_user", "arguments": {}}})).await;
        let result = &res.json()["result"];
        assert_eq!(result["isError"], false);
        let user: Value =
            serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(user["username"], "owner");
        let res = rpc(&app, &owner, &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "coder_list_workspaces", "arguments": {"owner": "nobody"}}})).await;
        assert_eq!(res.json()["result"]["isError"], true);
        let res = rpc(&app, &owner, &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "coder_list_workspaces"}})).await;
        assert_eq!(res.json()["result"]["content"][0]["text"], "[]");
        let res = rpc(
            &app,
            &owner,
            &json!({"jsonrpc": "2.0", "id": 6, "method": "nope"}),
        )
        .await;
        assert_eq!(res.json()["error"]["code"], -32601);
        let res = app.post(PATH).token(&owner).raw_body("{oops").send().await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert_eq!(res.json()["error"]["code"], -32700);
        let res = app
            .post(&format!("{PATH}?toolset=bogus"))
            .token(&owner)
            .json(&json!({}))
            .send()
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST);
        assert_eq!(res.json()["message"], "Invalid toolset: bogus");
        let res = app.get(PATH).token(&owner).send().await;
        assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(res.header("allow"), Some("POST"));
    }

    #[tokio::test]
    async fn a_token_for_the_mcp_resource_works_there_only() {
        let app = with_mcp().await;
        let (_, owner) = app.first_user().await;
        let (client_id, secret) =
            confidential_app(&app, &owner, Some("user:read workspace:read template:read")).await;
        let mcp_url = format!("{}{PATH}", crate::harness::ACCESS_URL);
        let (code, verifier) = code_for(&app, &owner, &client_id, &[("resource", &mcp_url)]).await;
        let res = token_request(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("resource", &mcp_url),
            ],
        )
        .await;
        let access = res.json()["access_token"].as_str().unwrap().to_owned();
        let res = rpc(&app, &access, &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "coder_get_authenticated_user"}})).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(res.json()["result"]["isError"], false);
        let res = app
            .get("/api/v2/users/me")
            .header("authorization", &format!("Bearer {access}"))
            .send()
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        // A root-bound token is valid at the MCP endpoint too.
        let (code, verifier) = code_for(&app, &owner, &client_id, &[]).await;
        let root = exchange(&app, &client_id, &secret, &code, &verifier)
            .await
            .json();
        let res = rpc(
            &app,
            root["access_token"].as_str().unwrap(),
            &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
        assert_eq!(res.status, StatusCode::OK);
    }
}
