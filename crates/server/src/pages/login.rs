//! `GET/POST /login`: a password sign-in form that sends the browser back to where it was
//! going (the OAuth2 consent page, usually) with a session cookie.

use askama::Template;
use axum::{
    body::Body,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::{
    audit::AuditContext,
    authn::sources::cookie,
    body::{JSON_BODY_LIMIT, body_timed_out, body_too_large},
    client_ip::ClientIp,
    security_headers::{CspHosts, site_csp},
};
use serde::Deserialize;

use crate::{
    api::users::{password_login, refuse_cross_site_login, session_cookie, session_max_age},
    app::AppState,
    pages::login_csrf,
};

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
    /// The access URL's host, for the CSP's websocket sources: never the request's `Host`,
    /// which the client chooses.
    host: Option<&'a str>,
    /// The OIDC button's text, when OIDC is configured.
    oidc_text: Option<&'a str>,
    /// Whether the CSRF cookie is `__Host-` and `Secure` (an https access URL).
    secure: bool,
}

impl<'a> PageContext<'a> {
    fn of(app: &'a AppState, access_host: Option<&'a str>) -> PageContext<'a> {
        PageContext {
            hosts: &app.csp_hosts,
            host: access_host,
            oidc_text: app
                .oidc
                .as_ref()
                .map(|o| o.flags.oidc_sign_in_text.as_str()),
            secure: app.secure_cookies(),
        }
    }
}

/// `host[:port]` of the access URL.
fn access_host(app: &AppState) -> Option<String> {
    let url = url::Url::parse(&app.access_url).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
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
        secure,
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
    if let Ok(cookie) = HeaderValue::from_str(&login_csrf::set_cookie(secure, csrf)) {
        headers.append(header::SET_COOKIE, cookie);
    }
    res
}

pub async fn login_page(State(app): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let host = access_host(&app);
    let ctx = PageContext::of(&app, host.as_deref());
    let redirect = safe_redirect(q.redirect.as_deref());
    let csrf = login_csrf::issue(app.store.sealing_cipher());
    page(&ctx, StatusCode::OK, &redirect, &csrf, "", "")
}

pub async fn login_submit(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    audit: AuditContext,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(refused) = refuse_cross_site_login(&app, &headers) {
        return refused.into_response();
    }
    let host = access_host(&app);
    let ctx = PageContext::of(&app, host.as_deref());
    let redirect = safe_redirect(q.redirect.as_deref());
    // Read here rather than by axum's `Bytes` extractor, whose refusals are plain text.
    let body = match axum::body::to_bytes(body, JSON_BODY_LIMIT).await {
        Ok(body) => body,
        Err(e) if gatehouse_httpmw::body_deadline::timed_out(&e) => {
            return body_timed_out().into_response();
        }
        Err(_) => return body_too_large(None).into_response(),
    };
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
    let cipher = app.store.sealing_cipher();
    let fresh = login_csrf::issue(cipher);
    let from_cookie = cookie(&headers, login_csrf::cookie_name(ctx.secure)).unwrap_or_default();
    if !login_csrf::verify(cipher, field("csrf_token"), from_cookie) {
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
            if let Some(cookie) = session_cookie(&app, &token, session_max_age(&app)) {
                headers.insert(header::SET_COOKIE, cookie);
            }
            gatehouse_httpmw::error::mark_no_store(headers);
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
