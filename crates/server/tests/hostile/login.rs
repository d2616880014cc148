//! Signing in from a hostile page, and guessing passwords (issue #29 items 2, 7 and 12):
//! a session is only ever set for a request from Gatehouse's own pages or from a client
//! that is not a browser; the login form's token cannot be planted; guesses share one
//! budget and an account under attack backs off.

use axum::http::StatusCode;
use serde_json::json;

use crate::{
    harness::{ACCESS_URL, OWNER_EMAIL, OWNER_PASSWORD, TestApp},
    on_both_backends,
};

on_both_backends!(
    a_login_from_another_site_sets_no_session,
    a_planted_login_form_token_is_refused,
);

fn credentials() -> String {
    json!({"email": OWNER_EMAIL, "password": OWNER_PASSWORD}).to_string()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn a_login_from_another_site_sets_no_session(app: TestApp) {
    app.first_user().await;
    // The text/plain form a hostile page can post without a preflight, and no type at all.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut req = app.post("/api/v2/users/login");
        req = match content_type {
            Some(t) => req.body_with_type(t, &credentials()),
            None => req.raw_body_untyped(&credentials()),
        };
        let res = req.header("origin", "https://evil.example").send().await;
        assert!(res.set_cookies().is_empty(), "{content_type:?}");
        // Cross-site is refused before the body is read; same-site without a type is 415.
        assert_eq!(
            res.status,
            StatusCode::FORBIDDEN,
            "{content_type:?}: {}",
            res.text()
        );
        let res = match content_type {
            Some(t) => app
                .post("/api/v2/users/login")
                .body_with_type(t, &credentials()),
            None => app
                .post("/api/v2/users/login")
                .raw_body_untyped(&credentials()),
        }
        .send()
        .await;
        assert_eq!(
            res.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}: {}",
            res.text()
        );
        assert!(res.set_cookies().is_empty(), "{content_type:?}");
        assert!(
            res.json()["message"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
    }
    // JSON, but from another site by the browser's own account of it.
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let res = app
            .post("/api/v2/users/login")
            .body_with_type("application/json", &credentials())
            .header(name, value)
            .send()
            .await;
        assert_eq!(
            res.status,
            StatusCode::FORBIDDEN,
            "{name}: {value}: {}",
            res.text()
        );
        assert_eq!(
            res.json()["message"],
            "Cross-site login requests are not allowed."
        );
        assert!(res.set_cookies().is_empty());
    }
    // The login form posted from another site: refused the same way.
    let res = app
        .post("/login")
        .header("origin", "https://evil.example")
        .body_with_type(
            "application/x-www-form-urlencoded",
            &form(&[("email", OWNER_EMAIL), ("password", OWNER_PASSWORD)]),
        )
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    assert!(res.set_cookies().is_empty());
    // From Gatehouse's own origin, or from a client that is no browser: signed in, the
    // answer uncacheable, the cookie as long-lived as the session (24 h here).
    for origin in [Some(ACCESS_URL), None] {
        let mut req = app
            .post("/api/v2/users/login")
            .body_with_type("application/json; charset=utf-8", &credentials());
        if let Some(origin) = origin {
            req = req
                .header("origin", origin)
                .header("sec-fetch-site", "same-origin");
        }
        let res = req.send().await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        assert_eq!(res.header("cache-control"), Some("no-store"));
        let cookie = &res.set_cookies()[0];
        assert!(cookie.contains("; Max-Age=86400;"), "{cookie}");
    }
    // Token creation is uncacheable too.
    let owner = app.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    let res = app
        .post("/api/v2/users/me/keys/tokens")
        .token(&owner)
        .json(&json!({"token_name": "ci"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(res.header("cache-control"), Some("no-store"));
}

/// The token and the cookie of a fresh `GET /login`.
async fn login_form(app: &TestApp) -> (String, String) {
    let res = app
        .get("/login")
        .header("host", "evil.example")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
    // The page's CSP names the access URL's host, never the Host the client chose.
    let csp = res.header("content-security-policy").unwrap();
    assert!(!csp.contains("evil.example"), "{csp}");
    assert!(csp.contains("wss://gatehouse.test"), "{csp}");
    let page = res.text();
    let token = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    (token, res.cookie_pairs())
}

async fn a_planted_login_form_token_is_refused(app: TestApp) {
    app.first_user().await;
    let credentials = |token: &str| {
        form(&[
            ("email", OWNER_EMAIL),
            ("password", OWNER_PASSWORD),
            ("csrf_token", token),
        ])
    };
    // The same value in the cookie and the form, but not one this server issued.
    let res = app
        .post("/login?redirect=/oauth2/authorize")
        .header("cookie", "gatehouse_login_csrf=x")
        .body_with_type("application/x-www-form-urlencoded", &credentials("x"))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert!(res.text().contains("Your sign-in form expired"));
    assert!(
        !res.set_cookies()
            .iter()
            .any(|c| c.starts_with("coder_session_token=")),
        "{:?}",
        res.set_cookies()
    );
    // A real token without its cookie, and a real cookie with another form's token.
    let (token, cookie) = login_form(&app).await;
    let (other, _) = login_form(&app).await;
    for (cookie, sent) in [("", token.as_str()), (cookie.as_str(), other.as_str())] {
        let res = app
            .post("/login")
            .header("cookie", cookie)
            .body_with_type("application/x-www-form-urlencoded", &credentials(sent))
            .send()
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    }
    // The form as this server served it signs in.
    let res = app
        .post("/login?redirect=/somewhere")
        .header("cookie", &cookie)
        .body_with_type("application/x-www-form-urlencoded", &credentials(&token))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text());
    assert_eq!(res.header("location"), Some("/somewhere"));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert!(res.set_cookies()[0].starts_with("coder_session_token="));
}

#[tokio::test]
async fn on_https_the_form_cookie_is_host_prefixed_and_secure() {
    let mut config = crate::harness::config();
    config.access_url = url::Url::parse("https://gatehouse.test").ok();
    let app = TestApp::sqlite_with(config).await;
    let res = app.get("/login").send().await;
    let cookie = &res.set_cookies()[0];
    assert!(
        cookie.starts_with("__Host-gatehouse_login_csrf="),
        "{cookie}"
    );
    assert!(
        cookie.contains("; Path=/;") && cookie.contains("; Secure"),
        "{cookie}"
    );
    assert!(!cookie.contains("Domain"), "{cookie}");
}

#[tokio::test]
async fn password_guesses_share_one_budget_and_an_account_backs_off() {
    let app = TestApp::sqlite().await;
    app.first_user().await;
    let (_, _) = app
        .user_with_roles(&app.login(OWNER_EMAIL, OWNER_PASSWORD).await, "bob", &[])
        .await;
    let guess =
        |email: &str, password: &str| json!({"email": email, "password": password}).to_string();
    // Five wrong passwords for the owner: each a plain 401.
    for _ in 0..5 {
        let res = app
            .post("/api/v2/users/login")
            .body_with_type("application/json", &guess(OWNER_EMAIL, "wrong-password"))
            .send()
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    }
    // Now the account waits, even with the right password, and says for how long.
    let res = app
        .post("/api/v2/users/login")
        .body_with_type("application/json", &guess(OWNER_EMAIL, OWNER_PASSWORD))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
    assert_eq!(res.header("retry-after"), Some("1"));
    assert!(res.set_cookies().is_empty());
    // Another account is not held up.
    let res = app
        .post("/api/v2/users/login")
        .body_with_type(
            "application/json",
            &guess("bob@example.com", OWNER_PASSWORD),
        )
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    // One address: the JSON login and the form draw on one budget of 60 a minute.
    let peer = "198.51.100.7:4000";
    for i in 0..30 {
        let res = app
            .post("/api/v2/users/login")
            .peer(peer)
            .body_with_type(
                "application/json",
                &guess(&format!("nobody{i}@example.com"), "x"),
            )
            .send()
            .await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
        let res = app
            .post("/login")
            .peer(peer)
            .body_with_type(
                "application/x-www-form-urlencoded",
                "email=a%40b.c&password=x",
            )
            .send()
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    }
    let res = app
        .post("/api/v2/users/login")
        .peer(peer)
        .body_with_type(
            "application/json",
            &guess("bob@example.com", OWNER_PASSWORD),
        )
        .send()
        .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
}

#[tokio::test]
async fn an_oversized_login_form_is_answered_in_json() {
    let app = TestApp::sqlite().await;
    let res = app
        .post("/login")
        .body_with_type(
            "application/x-www-form-urlencoded",
            &format!("email=a%40b.c&password={}", "x".repeat(2 << 20)),
        )
        .send()
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.text());
    assert_eq!(res.json()["message"], "Request body too large.");
}
