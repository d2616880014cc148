//! Request bodies: JSON decoded with Coder's error messages (spec/types.md §0.2 rule 14).

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{HeaderMap, StatusCode, header},
};
use serde::de::DeserializeOwned;

use crate::{error::ApiError, request_log::RequestLog};

/// JSON and form bodies are capped at 1 MiB (decisions.md 10).
pub const JSON_BODY_LIMIT: usize = 1 << 20;

/// The 413 of a body over its limit, counted as such in the request's metrics
/// (`requests_too_large_total{reason="request_body"}`).
pub fn body_too_large(log: Option<&RequestLog>) -> ApiError {
    if let Some(log) = log {
        log.record_request_body_limit();
    }
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.")
}

/// The 408 of a body that did not arrive within `--http-read-body-timeout`.
pub fn body_timed_out() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "The request body did not arrive in time.",
    )
}

/// Whether the request says its body is JSON: `application/json` or a `+json` type
/// (RFC 6839), parameters allowed. A missing type is not JSON: a browser sends a body
/// without a preflight only as `text/plain`, a form type, or with no type at all (the
/// Fetch standard's CORS-safelisted request), so requiring JSON is what keeps another
/// site's page from posting to a JSON route in the victim's browser (issue #29).
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype
                .len()
                .checked_sub(5)
                .and_then(|at| subtype.get(at..))
                .is_some_and(|tail| tail.eq_ignore_ascii_case("+json")))
}

/// The 415 of a body that is not declared JSON.
pub fn not_json(headers: &HeaderMap) -> ApiError {
    let sent = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Request body must be JSON: send it with Content-Type: application/json.",
    )
    .with_detail(match sent {
        Some(t) => format!("The request's Content-Type is {t:?}."),
        None => "The request has no Content-Type.".to_owned(),
    })
}

/// A JSON request body. A body not declared `application/json` is 415; malformed JSON or
/// a wrong type is 400 `Request body must be valid JSON.` with the parser's message as
/// detail; an oversized body is 413.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(not_json(req.headers()));
        }
        let log = req.extensions().get::<RequestLog>().cloned();
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                body_too_large(log.as_ref())
            } else if crate::body_deadline::timed_out(&rejection) {
                body_timed_out()
            } else {
                ApiError::bad_request("Request body must be valid JSON.")
                    .with_detail(rejection.body_text())
            }
        })?;
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            None => {
                return Err(
                    ApiError::bad_request("Request body must be valid JSON.").with_detail("EOF")
                );
            }
            // Every request body is an object; serde would otherwise accept `[]` for a
            // struct whose fields all have defaults.
            Some(b'{') => {}
            Some(_) => {
                return Err(ApiError::bad_request("Request body must be valid JSON.")
                    .with_detail("the request body must be a JSON object"));
            }
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|err| {
            ApiError::bad_request("Request body must be valid JSON.").with_detail(err.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn typed(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn json_types_are_json_and_the_simple_request_types_are_not() {
        for t in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
        ] {
            assert!(is_json(&typed(t)), "{t}");
        }
        for t in [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "text/json",
            "+json",
            "application/",
        ] {
            assert!(!is_json(&typed(t)), "{t}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
