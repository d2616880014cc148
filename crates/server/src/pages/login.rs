//! `GET/POST /login`: a password sign-in form that sends the browser back to where it was
//! going (the OAuth2 consent page, usually) with a session cookie.

use askama::Template;
use axum::{
    body::Bytes,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::{
    apikey::cookie,
    audit::AuditContext,
    client_ip::ClientIp,
    security_headers::{CspHosts, site_csp},
};
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::{
    api::users::{password_login, session_cookie},
    app::AppState,
};

/// A double-submit token against login CSRF (signing a victim into the attacker's account).
const CSRF_COOKIE: &str = "gatehouse_login_csrf";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    action: &'a str,
    csrf_token: &'a str,
    email: &'a str,
    message: &'a str,
    /// The OIDC sign-in link, empty when OIDC is not configured.
    oidc_href: &'a str,
    oidc_text: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    pub redirect: Option<String>,
}

/// Only a local path may be a target (decisions.md 32): one leading `/`, not `//` or
/// `/\` (both leave the site in a browser), no control characters.
pub fn safe_redirect(raw: Option<&str>) -> String {
    match raw {
        Some(r)
            if r.starts_with('/')
                && !r.starts_with("//")
                && !r.starts_with("/\\")
                && !r.chars().any(|c| c.is_control()) =>
        {
            r.to_owned()
        }
        _ => "/".to_owned(),
    }
}

struct PageContext<'a> {
    hosts: &'a CspHosts,
    host: Option<&'a str>,
    /// The OIDC button's text, when OIDC is configured.
    oidc_text: Option<&'a str>,
}

fn page(
    ctx: &PageContext<'_>,
    status: StatusCode,
    redirect: &str,
    csrf: &str,
    email: &str,
    message: &str,
) -> Response {
    let PageContext {
        hosts,
        host,
        oidc_text,
    } = *ctx;
    let encoded = url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>();
    let action = format!("/login?redirect={encoded}");
    let oidc_href = oidc_text
        .map(|_| format!("{}?redirect={encoded}", crate::oidc::CALLBACK_PATH))
        .unwrap_or_default();
    let body = LoginPage {
        action: &action,
        csrf_token: csrf,
        email,
        message,
        oidc_href: &oidc_href,
        oidc_text: oidc_text.unwrap_or_default(),
    }
    .render();
    let Ok(body) = body else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut res = (status, body).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&site_csp(hosts, host, &[])) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{CSRF_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Strict"
    )) {
        headers.append(header::SET_COOKIE, cookie);
    }
    res
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|v| v.to_str().ok())
}

pub async fn login_page(
    State(app): State<AppState>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let ctx = PageContext {
        hosts: &app.csp_hosts,
        host: host(&headers),
        oidc_text: app
            .oidc
            .as_ref()
            .map(|o| o.flags.oidc_sign_in_text.as_str()),
    };
    let redirect = safe_redirect(q.redirect.as_deref());
    let csrf = Alphanumeric.sample_string(&mut rand::rng(), 32);
    page(&ctx, StatusCode::OK, &redirect, &csrf, "", "")
}

pub async fn login_submit(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    audit: AuditContext,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = PageContext {
        hosts: &app.csp_hosts,
        host: host(&headers),
        oidc_text: app
            .oidc
            .as_ref()
            .map(|o| o.flags.oidc_sign_in_text.as_str()),
    };
    let redirect = safe_redirect(q.redirect.as_deref());
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let email = field("email").to_owned();
    let fresh = Alphanumeric.sample_string(&mut rand::rng(), 32);
    let sent = field("csrf_token");
    let expected = cookie(&headers, CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
        return page(
            &ctx,
            StatusCode::BAD_REQUEST,
            &redirect,
            &fresh,
            &email,
            "Your sign-in form expired. Please try again.",
        );
    }
    match password_login(&app, &email, field("password").to_owned(), ip, audit).await {
        Ok(token) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
            let headers = res.headers_mut();
            if let Ok(location) = HeaderValue::from_str(&redirect) {
                headers.insert(header::LOCATION, location);
            }
            if let Some(cookie) = session_cookie(&app, &token, 365 * 86_400) {
                headers.insert(header::SET_COOKIE, cookie);
            }
            res
        }
        Err(err) => {
            let message = err.body.message.clone();
            page(&ctx, err.status, &redirect, &fresh, &email, &message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_redirect_targets() {
        assert_eq!(
            safe_redirect(Some("/oauth2/authorize?x=1")),
            "/oauth2/authorize?x=1"
        );
        for bad in [
            "//evil.com",
            "/\\evil.com",
            "https://evil.com",
            "evil",
            "",
            "/a\nb",
        ] {
            assert_eq!(safe_redirect(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_redirect(None), "/");
    }
}
