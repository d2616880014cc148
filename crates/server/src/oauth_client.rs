//! What Gatehouse does as an OAuth2 *client* in both of its browser flows (OIDC sign-in
//! and external auth): short-lived HttpOnly cookies that carry the state and the PKCE
//! verifier across the provider, and the checks of the second leg (spec/oauth2.md §13.3).

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use gatehouse_httpmw::{ApiError, authn::sources::cookie};
use subtle::ConstantTimeEq;

pub const STATE_COOKIE: &str = "oauth_state";
pub const VERIFIER_COOKIE: &str = "oauth_pkce_verifier";
/// How long a flow may take at the provider.
pub const FLOW_COOKIE_SECONDS: i64 = 600;

/// A flow cookie (`max_age` 0 clears it); `Secure` when the deployment's are
/// ([`crate::app::App::secure_cookies`]).
pub fn flow_cookie(secure: bool, name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
    let mut c = format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax");
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).ok()
}

/// A flow cookie's value, form-decoded; `None` when absent or empty.
pub fn flow_cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    cookie(headers, name).filter(|v| !v.is_empty()).map(|v| {
        url::form_urlencoded::parse(format!("v={v}").as_bytes())
            .next()
            .map_or_else(String::new, |(_, v)| v.into_owned())
    })
}

/// A query that does not parse (a repeated `code`, say) is a 400 in the API's error
/// shape, not axum's plain-text rejection.
pub fn parsed_query<T>(
    query: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    query.map(|q| q.0).map_err(|e| {
        ApiError::bad_request("Query parameters have invalid values.").with_detail(e.body_text())
    })
}

/// The provider sent the browser back with an error (RFC 6749 §4.1.2.1).
pub fn provider_error(error: &str, description: Option<&str>) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("Encountered error in oidc process: {error}"),
    )
    .with_detail(description.unwrap_or_default())
}

/// The second leg's `state` must be the one this browser was given (CSRF).
pub fn check_state(state: Option<&str>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(state) = state.filter(|s| !s.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "State must be provided.",
        ));
    };
    let Some(expected) = flow_cookie_value(headers, STATE_COOKIE) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Cookie state must be provided.",
        ));
    };
    if !bool::from(state.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "State mismatched."));
    }
    Ok(())
}

/// The PKCE verifier cookie of a flow that sent a challenge.
pub fn pkce_verifier(headers: &HeaderMap) -> Result<String, ApiError> {
    flow_cookie_value(headers, VERIFIER_COOKIE)
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "PKCE challenge must be provided."))
}
