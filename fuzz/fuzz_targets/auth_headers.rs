//! Credentials as a client presents them: the session cookie, the `coder_session_token`
//! and `access_token` query parameters, `Coder-Session-Token`, `Authorization: Bearer`
//! (RFC 6750) and `Authorization: Basic` client credentials (RFC 6749 §2.3.1), then the
//! API-token shape check. Nothing may panic; whatever is extracted must be consistent.
#![no_main]

use gatehouse_httpmw::{
    authn::sources::{cookie, presented_token},
    token,
};
use gatehouse_oauth2::{client::credentials, params::Params};
use http::{HeaderMap, HeaderValue, Uri, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Fields separated by NUL: cookie, query, session header, authorization.
    let mut fields = data.split(|b| *b == 0);
    let mut headers = HeaderMap::new();
    for name in [
        header::COOKIE,
        http::HeaderName::from_static("coder-session-token"),
        header::AUTHORIZATION,
    ] {
        if let Some(value) = fields.next().and_then(|f| HeaderValue::from_bytes(f).ok()) {
            headers.append(name, value);
        }
    }
    let query = fields.next().unwrap_or_default();
    let uri = std::str::from_utf8(query)
        .ok()
        .and_then(|q| format!("/api/v2/users/me?{q}").parse::<Uri>().ok())
        .unwrap_or_else(|| Uri::from_static("/api/v2/users/me"));

    if let Some((presented, _source)) = presented_token(&headers, &uri) {
        assert!(!presented.is_empty(), "an empty token was extracted");
        if let Ok((id, secret)) = token::split(&presented) {
            assert_eq!(format!("{id}-{secret}"), presented);
            let _ = token::plausible_id(id);
            // Comparing against any stored hash never panics, whatever its length.
            let _ = token::secret_matches(secret, &[]);
            let _ = token::secret_matches(secret, &token::hash_secret(secret));
        }
    }
    if let Some(value) = cookie(&headers, "coder_session_token") {
        assert!(!value.starts_with('"') || value.len() <= 1 || !value.ends_with('"'));
    }
    let params = Params::parse(query);
    let _ = credentials(&headers, &Params::parse(b""), &params);
});
