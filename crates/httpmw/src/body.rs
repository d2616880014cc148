//! Request bodies: JSON decoded with Coder's error messages (spec/types.md §0.2 rule 14).

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::StatusCode,
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

/// A JSON request body. Malformed JSON or a wrong type is 400
/// `Request body must be valid JSON.` with the parser's message as detail; an oversized
/// body is 413.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let log = req.extensions().get::<RequestLog>().cloned();
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                body_too_large(log.as_ref())
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
