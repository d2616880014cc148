//! Form parameters (RFC 6749 §3.1, §3.2): `application/x-www-form-urlencoded` from the
//! query and, for POST, the body, with the two rules the RFC sets for every endpoint:
//! parameters sent without a value are treated as omitted, and request and response
//! parameters MUST NOT be included more than once.

use axum::{body::Body, http::StatusCode};
use gatehouse_httpmw::request_log::record_request_body_limit;
use gatehouse_sdk::oauth2::ErrorCode;

use crate::error::OAuth2Error;

/// Form bodies are capped like JSON bodies (decisions.md 10).
pub const FORM_BODY_LIMIT: usize = 1 << 20;

/// Parameters in order of appearance.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

/// A known parameter was sent more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeated(pub &'static str);

impl Params {
    pub fn parse(raw: &[u8]) -> Params {
        Params(
            url::form_urlencoded::parse(raw)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn extend(&mut self, other: Params) {
        self.0.extend(other.0);
    }

    /// The one non-empty value of `name` (RFC 6749 §3.1: an empty value is omitted).
    pub fn one(&self, name: &'static str) -> Result<Option<&str>, Repeated> {
        let mut found = None;
        for (k, v) in &self.0 {
            if k == name && !v.is_empty() {
                if found.is_some() {
                    return Err(Repeated(name));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found)
    }

    /// Whether `name` was sent at all, even empty.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl From<Repeated> for OAuth2Error {
    fn from(r: Repeated) -> Self {
        let code = if r.0 == "grant_type" {
            ErrorCode::UnsupportedGrantType
        } else {
            ErrorCode::InvalidRequest
        };
        OAuth2Error::bad_request(
            code,
            format!("The \"{}\" parameter was sent more than once", r.0),
        )
    }
}

/// A form endpoint's request: its head, the URL query alone, and the query and body
/// merged (RFC 6749 reads parameters from both; some rules apply to the query alone).
pub async fn read_request(
    req: axum::extract::Request,
) -> Result<(axum::http::request::Parts, Params, Params), OAuth2Error> {
    let (parts, body) = req.into_parts();
    let query = Params::parse(parts.uri.query().unwrap_or_default().as_bytes());
    let mut form = query.clone();
    let body = read_form(body).await.inspect_err(|e| {
        if e.status == StatusCode::PAYLOAD_TOO_LARGE {
            record_request_body_limit(&parts.extensions);
        }
    })?;
    form.extend(body);
    Ok((parts, query, form))
}

/// Reads a form body, at most [`FORM_BODY_LIMIT`] bytes (413 in the OAuth2 shape).
pub async fn read_form(body: Body) -> Result<Params, OAuth2Error> {
    let bytes = read_body(body, FORM_BODY_LIMIT).await?;
    Ok(Params::parse(&bytes))
}

/// A whole body of at most `limit` bytes: 413 past it, 408 when it did not arrive within
/// the server's body deadline, both in the OAuth2 shape.
pub async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, OAuth2Error> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if gatehouse_httpmw::body_deadline::timed_out(&e) {
            OAuth2Error::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::InvalidRequest,
                "The request body did not arrive in time",
            )
        } else {
            OAuth2Error::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InvalidRequest,
                format!("The request body is larger than {limit} bytes"),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_omitted_and_repeats_refused() {
        let p = Params::parse(b"a=1&b=&b=&c=x&c=y&d=%20");
        assert_eq!(p.one("a"), Ok(Some("1")));
        assert_eq!(p.one("b"), Ok(None));
        assert!(p.has("b"));
        assert_eq!(p.one("c"), Err(Repeated("c")));
        assert_eq!(p.one("d"), Ok(Some(" ")));
        assert_eq!(p.one("z"), Ok(None));
    }
}
