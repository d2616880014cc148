//! Where each scheme finds its credential: API keys and agent tokens in Coder's five
//! places (spec/auth.md §1.1), AI Bridge keys where model API clients send them
//! (decisions.md 7).

use axum::http::{HeaderMap, HeaderName, Uri, header};

use crate::authn::actor::TokenSource;

/// The session cookie, also the first token source.
pub const SESSION_COOKIE: &str = "coder_session_token";
// A `HeaderName`, not a `&str`: a lookup by text parses and hashes the name each time.
pub static SESSION_TOKEN_HEADER: HeaderName = HeaderName::from_static("coder-session-token");
static API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if v.len() > 7 && v.is_char_boundary(7) && v[..7].eq_ignore_ascii_case("bearer ") {
        Some(v[7..].trim()).filter(|t| !t.is_empty())
    } else {
        None
    }
}

/// Reads the token in Coder's order (spec/auth.md §1.1): cookie, `coder_session_token`
/// query, `Coder-Session-Token` header, `Authorization: Bearer`, `access_token` query.
pub fn presented_token(headers: &HeaderMap, uri: &Uri) -> Option<(String, TokenSource)> {
    // Most requests carry none of the sources: one pass over the (few) header names
    // instead of a hashed lookup per source.
    if uri.query().is_none()
        && !headers.keys().any(|name| {
            name == header::COOKIE || name == header::AUTHORIZATION || name == SESSION_TOKEN_HEADER
        })
    {
        return None;
    }
    if let Some(v) = cookie(headers, SESSION_COOKIE).filter(|v| !v.is_empty()) {
        return Some((v.to_owned(), TokenSource::Cookie));
    }
    let query = uri.query().unwrap_or_default();
    let query_param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(v) = query_param(SESSION_COOKIE).filter(|v| !v.is_empty()) {
        return Some((v, TokenSource::SessionQuery));
    }
    if let Some(v) = headers
        .get(&SESSION_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    {
        return Some((v.to_owned(), TokenSource::SessionHeader));
    }
    if let Some(t) = bearer(headers) {
        return Some((t.to_owned(), TokenSource::Bearer));
    }
    query_param("access_token")
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .map(|v| (v, TokenSource::AccessTokenQuery))
}

/// The token alone, for callers that do not care where it came from.
pub fn token_from_request(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    presented_token(headers, uri).map(|(token, _)| token)
}

/// The raw credential an AI Bridge client sends (decisions.md 7): `Authorization: Bearer`
/// (OpenAI's clients), then `X-Api-Key` (Anthropic's), then `Coder-Session-Token`; never
/// a cookie or the query.
pub fn bridge_token(headers: &HeaderMap) -> Option<(&str, TokenSource)> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let named = |name: &HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    bearer
        .filter(|t| !t.is_empty())
        .map(|t| (t, TokenSource::Bearer))
        .or_else(|| named(&API_KEY_HEADER).map(|t| (t, TokenSource::ApiKeyHeader)))
        .or_else(|| named(&SESSION_TOKEN_HEADER).map(|t| (t, TokenSource::SessionHeader)))
}

/// A cookie's value from the `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn token_sources_in_coder_order() {
        let uri: Uri = "/x?coder_session_token=query&access_token=%20access%20"
            .parse()
            .unwrap();
        let all = headers(&[
            ("cookie", "a=b; coder_session_token=cookie"),
            ("coder-session-token", "header"),
            ("authorization", "Bearer bearer"),
        ]);
        assert_eq!(token_from_request(&all, &uri).as_deref(), Some("cookie"));
        let no_cookie = headers(&[
            ("coder-session-token", "header"),
            ("authorization", "Bearer b"),
        ]);
        assert_eq!(
            token_from_request(&no_cookie, &uri).as_deref(),
            Some("query")
        );
        let plain: Uri = "/x".parse().unwrap();
        assert_eq!(
            token_from_request(&no_cookie, &plain).as_deref(),
            Some("header")
        );
        let bearer = headers(&[("authorization", "bEaReR   tok  ")]);
        assert_eq!(token_from_request(&bearer, &plain).as_deref(), Some("tok"));
        let basic = headers(&[("authorization", "Basic abc")]);
        assert_eq!(token_from_request(&basic, &plain), None);
        let access: Uri = "/x?access_token=%20a%20".parse().unwrap();
        assert_eq!(token_from_request(&basic, &access).as_deref(), Some("a"));
        let bare = headers(&[("authorization", "Bearer")]);
        assert_eq!(token_from_request(&bare, &plain), None);
    }

    #[test]
    fn the_bridge_reads_bearer_then_x_api_key_then_the_session_header() {
        let all = headers(&[
            ("x-api-key", "k"),
            ("authorization", "Bearer b"),
            ("coder-session-token", "s"),
        ]);
        assert_eq!(bridge_token(&all), Some(("b", TokenSource::Bearer)));
        let no_bearer = headers(&[("x-api-key", "k"), ("coder-session-token", "s")]);
        assert_eq!(
            bridge_token(&no_bearer),
            Some(("k", TokenSource::ApiKeyHeader))
        );
        let session = headers(&[("coder-session-token", "s")]);
        assert_eq!(
            bridge_token(&session),
            Some(("s", TokenSource::SessionHeader))
        );
        let browser = headers(&[("cookie", "coder_session_token=c")]);
        assert_eq!(bridge_token(&browser), None);
    }
}
