//! Sign-in with OpenID Connect against a real provider (oidc-provider, `tests/idp.rs`),
//! and the separate expiry of the key and its OIDC link (spec/auth.md §1.4), on both
//! backends.

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use gatehouse_server::config::{OidcFlags, ServerConfig};
use gatehouse_store::system::system_restricted;
use serde_json::{Value, json};

use crate::{
    harness::{TestApp, config},
    idp::{Idp, gatehouse_client},
};

const CALLBACK: &str = "http://gatehouse.test/api/v2/users/oidc/callback";

/// Gatehouse signing in through `idp` over HTTPS, trusting its CA as a deployment trusts
/// a private one (`SSL_CERT_FILE`).
fn oidc_config(idp: &Idp) -> ServerConfig {
    ServerConfig {
        ssl_cert_file: Some(idp.ca.file.clone()),
        oidc: OidcFlags {
            oidc_issuer_url: Some(idp.issuer.clone()),
            oidc_client_id: Some("gatehouse".into()),
            oidc_client_secret: Some("gatehouse-test-secret-gatehouse-test-secret".into()),
            ..OidcFlags::default()
        },
        ..config()
    }
}

/// The app on SQLite, then (when configured) on PostgreSQL.
async fn backends(config: impl Fn() -> ServerConfig) -> Vec<TestApp> {
    let mut apps = vec![TestApp::sqlite_with(config()).await];
    if let Some(app) = TestApp::postgres_with(config()).await {
        apps.push(app);
    }
    apps
}

/// Signs in through the provider as `login`; returns the session token.
async fn sign_in(app: &TestApp, idp: &Idp, login: &str) -> String {
    let start = app
        .get("/api/v2/users/oidc/callback?redirect=/workspaces")
        .send()
        .await;
    assert_eq!(
        start.status,
        StatusCode::TEMPORARY_REDIRECT,
        "{}",
        start.text()
    );
    let authorize = start.header("location").unwrap().to_owned();
    // The browser keeps the flow cookies (name=value) for the second leg.
    let flow_cookies = start.cookie_pairs();
    let back = idp.sign_in(&authorize, login).await;
    assert!(back.as_str().starts_with(CALLBACK), "{back}");
    let path = format!("{}?{}", back.path(), back.query().unwrap());
    let done = app.get(&path).header("cookie", &flow_cookies).send().await;
    assert_eq!(
        done.status,
        StatusCode::TEMPORARY_REDIRECT,
        "{}",
        done.text()
    );
    assert_eq!(done.header("location"), Some("/workspaces"));
    let cookies = done.set_cookies();
    let session = cookies
        .iter()
        .find_map(|c| c.strip_prefix("coder_session_token="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // The flow cookies are spent.
    assert!(cookies.iter().any(|c| c.starts_with("oauth_state=;")));
    session
}

async fn me(app: &TestApp, token: &str) -> crate::harness::TestResponse {
    app.get("/api/v2/users/me").token(token).send().await
}

#[tokio::test]
async fn sign_in_through_the_provider_creates_the_user_and_a_session() {
    let idp = Idp::start(json!({"clients": [gatehouse_client(CALLBACK)]}));
    for app in backends(|| oidc_config(&idp)).await {
        let token = sign_in(&app, &idp, "alice.smith").await;
        let res = me(&app, &token).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let user = res.json();
        assert_eq!(user["username"], "alice-smith");
        assert_eq!(user["email"], "alice.smith@example.com");
        assert_eq!(user["login_type"], "oidc");
        // The provider saw a PKCE challenge, a nonce and state, then the verifier.
        let requests = idp.requests().await;
        let authorize = requests
            .iter()
            .rev()
            .find(|r| r["path"] == "/auth")
            .unwrap();
        assert_eq!(authorize["query"]["code_challenge_method"], "S256");
        assert!(authorize["query"]["nonce"].as_str().unwrap().len() >= 32);
        let exchange = requests
            .iter()
            .rev()
            .find(|r| r["form"]["grant_type"] == "authorization_code")
            .unwrap();
        assert!(exchange["form"]["code_verifier"].as_str().unwrap().len() >= 43);
        // A second sign-in is the same user, through the link.
        let again = sign_in(&app, &idp, "alice.smith").await;
        assert_ne!(again, token);
        assert_eq!(me(&app, &again).await.json()["id"], user["id"]);
        // Both sign-ins are in the audit log, by the user.
        let filter = gatehouse_store::queries::audit::AuditFilter {
            action: Some("login".to_owned()),
            ..Default::default()
        };
        let (logins, count) = app
            .state
            .store
            .audit_logs(system_restricted(), &filter, 10, 0)
            .await
            .unwrap();
        assert_eq!(count, 2);
        for login in logins {
            let entry = login.entry;
            assert_eq!(
                entry.user_id.unwrap().to_string(),
                user["id"].as_str().unwrap()
            );
            assert_eq!(entry.status_code, 307);
            assert_eq!(entry.additional_fields.unwrap()["login_type"], "oidc");
        }
        // The link keeps the provider's tokens encrypted, never in the clear.
        let link = app
            .state
            .store
            .user_link(
                system_restricted(),
                user["id"].as_str().unwrap().parse().unwrap(),
                "oidc",
            )
            .await
            .unwrap()
            .unwrap();
        assert!(!link.oauth_refresh_token.is_empty());
        let stored = app
            .text_value("SELECT oauth_refresh_token FROM user_links")
            .await;
        assert!(
            !stored.contains(&link.oauth_refresh_token),
            "stored in the clear"
        );
        assert!(stored.len() > link.oauth_refresh_token.len());
    }
}

#[tokio::test]
async fn the_second_leg_checks_state_and_pkce() {
    let idp = Idp::start(json!({"clients": [gatehouse_client(CALLBACK)]}));
    let app = TestApp::sqlite_with(oidc_config(&idp)).await;
    let cases: [(&str, Option<&str>, StatusCode, &str); 4] = [
        (
            "/api/v2/users/oidc/callback?code=x",
            None,
            StatusCode::BAD_REQUEST,
            "State must be provided.",
        ),
        (
            "/api/v2/users/oidc/callback?code=x&state=abc",
            None,
            StatusCode::UNAUTHORIZED,
            "Cookie state must be provided.",
        ),
        (
            "/api/v2/users/oidc/callback?code=x&state=abc",
            Some("oauth_state=abd"),
            StatusCode::UNAUTHORIZED,
            "State mismatched.",
        ),
        (
            "/api/v2/users/oidc/callback?code=x&state=abc",
            Some("oauth_state=abc"),
            StatusCode::BAD_REQUEST,
            "PKCE challenge must be provided.",
        ),
    ];
    for (path, cookie, status, message) in cases {
        let mut req = app.get(path);
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        let res = req.send().await;
        assert_eq!(res.status, status, "{path} {cookie:?}: {}", res.text());
        assert_eq!(res.json()["message"], message);
    }
    // A repeated parameter is refused in the API's error shape.
    let res = app
        .get("/api/v2/users/oidc/callback?code=a&code=b")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json()["message"],
        "Query parameters have invalid values."
    );
    let res = app
        .get("/api/v2/users/oidc/callback?error=access_denied&error_description=no")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({"message": "Encountered error in oidc process: access_denied", "detail": "no"})
    );
}

fn user_id(res: &crate::harness::TestResponse) -> uuid::Uuid {
    res.json()["id"].as_str().unwrap().parse().unwrap()
}

async fn link_of(app: &TestApp, id: uuid::Uuid) -> gatehouse_store::queries::links::UserLink {
    app.state
        .store
        .user_link(system_restricted(), id, "oidc")
        .await
        .unwrap()
        .unwrap()
}

async fn key_expiry(app: &TestApp, token: &str) -> Value {
    app.key_row(token).await["expires_at"].clone()
}

#[tokio::test]
async fn an_expired_link_is_refreshed_and_the_key_expiry_stays() {
    let idp = Idp::start(json!({"clients": [gatehouse_client(CALLBACK)]}));
    for app in backends(|| oidc_config(&idp)).await {
        let token = sign_in(&app, &idp, "bob").await;
        let id = user_id(&me(&app, &token).await);
        let key_before = key_expiry(&app, &token).await;
        let link_before = link_of(&app, id).await;
        // The link expired a minute ago (the key did not).
        let past = Utc::now() - Duration::minutes(1);
        assert_eq!(
            app.exec_at("UPDATE user_links SET oauth_expiry = $1", past)
                .await,
            1
        );
        let refreshes_before = refresh_grants(&idp).await;
        // Concurrent requests share one refresh.
        let (a, b, c, d) = tokio::join!(
            me(&app, &token),
            me(&app, &token),
            me(&app, &token),
            me(&app, &token)
        );
        for res in [&a, &b, &c, &d] {
            assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        }
        assert_eq!(refresh_grants(&idp).await, refreshes_before + 1);
        let link_after = link_of(&app, id).await;
        assert!(
            link_after.oauth_expiry > Utc::now(),
            "the link's expiry moved"
        );
        assert_ne!(
            link_after.oauth_access_token,
            link_before.oauth_access_token
        );
        assert_ne!(
            link_after.oauth_refresh_token, link_before.oauth_refresh_token,
            "rotated"
        );
        assert_eq!(
            key_expiry(&app, &token).await,
            key_before,
            "the key's expiry did not"
        );
        // And the next request needs no refresh at all.
        assert_eq!(me(&app, &token).await.status, StatusCode::OK);
        assert_eq!(refresh_grants(&idp).await, refreshes_before + 1);
    }
}

/// Two replicas sharing PostgreSQL refresh the same expired link at once: the row lock
/// makes them take turns, so the provider sees one refresh, and the second replica uses
/// its result instead of presenting the rotated refresh token again (which a rotating
/// provider treats as theft and answers by revoking the grant).
#[tokio::test]
async fn replicas_refreshing_one_link_take_turns() {
    let idp = Idp::start(json!({"clients": [gatehouse_client(CALLBACK)]}));
    let Some(a) = TestApp::postgres_with(oidc_config(&idp)).await else {
        return;
    };
    let b = a.replica_with(oidc_config(&idp)).await.unwrap();
    let token = sign_in(&a, &idp, "dave").await;
    let past = Utc::now() - Duration::minutes(1);
    assert_eq!(
        a.exec_at("UPDATE user_links SET oauth_expiry = $1", past)
            .await,
        1
    );
    b.state.store.auth_cache().invalidate_all();
    let before = refresh_grants(&idp).await;
    let (on_a, on_b) = tokio::join!(me(&a, &token), me(&b, &token));
    assert_eq!(on_a.status, StatusCode::OK, "{}", on_a.text());
    assert_eq!(on_b.status, StatusCode::OK, "{}", on_b.text());
    assert_eq!(refresh_grants(&idp).await, before + 1);
}

async fn refresh_grants(idp: &Idp) -> usize {
    idp.requests()
        .await
        .iter()
        .filter(|r| r["form"]["grant_type"] == "refresh_token")
        .count()
}

#[tokio::test]
async fn an_expired_link_without_a_refresh_token_signs_out_and_a_refused_refresh_is_401() {
    let idp = Idp::start(json!({"clients": [gatehouse_client(CALLBACK)]}));
    for app in backends(|| oidc_config(&idp)).await {
        let token = sign_in(&app, &idp, "carol").await;
        let past = Utc::now() - Duration::minutes(1);
        // The provider refuses the refresh: a hard 401 naming the provider's error.
        idp.fail_refreshes(1).await;
        app.exec_at("UPDATE user_links SET oauth_expiry = $1", past)
            .await;
        let res = me(&app, &token).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.json(),
            json!({
                "message": "Could not refresh expired OpenID Connect token. Try re-authenticating to resolve this issue.",
                "detail": "invalid_grant: refresh refused by the test harness"
            })
        );
        // No refresh token: a clean sign-out that names when the session ended.
        app.exec_at(
            "UPDATE user_links SET oauth_refresh_token = '', oauth_expiry = $1",
            past,
        )
        .await;
        let res = me(&app, &token).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        let body = res.json();
        assert_eq!(
            body["message"],
            "You are signed out or your session has expired. Please sign in again to continue."
        );
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("OpenID Connect session expired at \"")
                && detail.ends_with("\". Try signing in again."),
            "{detail}"
        );
        // Without a link at all: re-authenticate.
        app.exec_at("DELETE FROM user_links WHERE oauth_expiry = $1", past)
            .await;
        let res = me(&app, &token).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.json()["detail"],
            "You must re-authenticate with the login provider."
        );
    }
}

#[tokio::test]
async fn oidc_misconfiguration_stops_start_up_naming_the_setting() {
    use gatehouse_server::app::AppState;
    use gatehouse_store::db::Db;
    let cases = [
        (
            OidcFlags {
                oidc_issuer_url: Some("http://127.0.0.1:9".into()),
                ..OidcFlags::default()
            },
            "--oidc-client-id (CODER_OIDC_CLIENT_ID)",
        ),
        (
            OidcFlags {
                oidc_issuer_url: Some("http://127.0.0.1:9".into()),
                oidc_client_id: Some("x".into()),
                ..OidcFlags::default()
            },
            "--oidc-issuer-url (CODER_OIDC_ISSUER_URL): discovery",
        ),
        (
            OidcFlags {
                oidc_issuer_url: Some("not a url".into()),
                oidc_client_id: Some("x".into()),
                ..OidcFlags::default()
            },
            "--oidc-issuer-url (CODER_OIDC_ISSUER_URL) \"not a url\"",
        ),
    ];
    for (flags, expected) in cases {
        let path = std::env::temp_dir().join(format!(
            "gatehouse-oidc-{}.db",
            uuid::Uuid::new_v4().simple()
        ));
        let db = Db::sqlite(&path).await.unwrap();
        let err = AppState::start(
            db,
            ServerConfig {
                oidc: flags,
                ..config()
            },
            "http://gatehouse.test".into(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}

#[tokio::test]
async fn the_login_page_offers_oidc_when_configured() {
    let idp = Idp::start(json!({"clients": [gatehouse_client(CALLBACK)]}));
    let app = TestApp::sqlite_with(oidc_config(&idp)).await;
    let page = app.get("/login?redirect=/x").send().await.text();
    assert!(
        page.contains("href=\"/api/v2/users/oidc/callback?redirect=%2Fx\""),
        "{page}"
    );
    let plain = TestApp::sqlite().await;
    assert!(
        !plain
            .get("/login")
            .send()
            .await
            .text()
            .contains("oidc-button")
    );
    let res = plain.get("/api/v2/users/oidc/callback").send().await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

/// Issue #24: every identity provider is https (and so is the provider in every test of
/// this file). Discovery, the token exchange, the keys and userinfo go to the real
/// provider over TLS, its CA trusted through `SSL_CERT_FILE`; without that trust the
/// server does not start, and says why.
#[tokio::test]
async fn sign_in_through_a_provider_over_https() {
    let idp = Idp::start(json!({"clients": [gatehouse_client(CALLBACK)]}));
    for app in backends(|| oidc_config(&idp)).await {
        let token = sign_in(&app, &idp, "carol.tls").await;
        let res = me(&app, &token).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(res.json()["email"], "carol.tls@example.com");
    }
    let untrusting = ServerConfig {
        ssl_cert_file: None,
        ..oidc_config(&idp)
    };
    let refused = gatehouse_server::app::AppState::start(
        gatehouse_server::app::open_sqlite(
            &std::env::temp_dir().join(format!("gatehouse-{}.db", uuid::Uuid::new_v4().simple())),
        )
        .await
        .unwrap(),
        untrusting,
        crate::harness::ACCESS_URL.to_owned(),
    )
    .await
    .expect_err("an untrusted provider stops the start");
    let message = refused.to_string();
    assert!(message.contains("--oidc-issuer-url"), "{message}");
    assert!(
        message.contains(
            "TLS handshake with 127.0.0.1 failed: its certificate is signed by an unknown authority"
        ),
        "{message}"
    );
}
