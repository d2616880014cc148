//! `ApiError`: the one place an error becomes an HTTP response for `/api/v2`.
//!
//! The client sees `{message, detail?, validations?}` (Coder's `codersdk.Response`); the
//! internal cause, when there is one, goes to the request's log event ([`ErrorCause`])
//! and never to the client.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use gatehouse_sdk::{Response as Envelope, ValidationError, error::messages};
use gatehouse_store::{Conflict, StoreError};

/// Boxed so `Result<T, ApiError>` stays small on the happy path.
#[derive(Debug, Clone)]
pub struct ApiError(Box<ApiErrorParts>);

#[derive(Debug, Clone)]
pub struct ApiErrorParts {
    pub status: StatusCode,
    pub body: Envelope,
    pub www_authenticate: Option<String>,
    pub retry_after: Option<u32>,
    /// Logged, never sent.
    pub cause: Option<String>,
    /// Set when the credential's scope, not the role, refused: the catalog scope that
    /// would allow it. The authentication layer turns it into an RFC 6750 challenge.
    pub insufficient_scope: Option<&'static str>,
}

/// Response extension carrying an error's internal cause to the gate, which writes it as
/// the `cause` field of the request's one log event (with its request id); it is never
/// sent.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

impl ErrorCause {
    /// Attaches `cause` to `res` for the gate's log event.
    pub fn attach(res: &mut Response, cause: String) {
        res.extensions_mut().insert(ErrorCause(cause));
    }
}

/// Response extension carrying [`ApiErrorParts::insufficient_scope`] to the
/// authentication layer.
#[derive(Debug, Clone, Copy)]
pub struct InsufficientScope(pub &'static str);

impl std::ops::Deref for ApiError {
    type Target = ApiErrorParts;

    fn deref(&self) -> &ApiErrorParts {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ApiErrorParts {
        &mut self.0
    }
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError(Box::new(ApiErrorParts {
            status,
            body: Envelope::message(message),
            www_authenticate: None,
            retry_after: None,
            cause: None,
            insufficient_scope: None,
        }))
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> ApiError {
        self.body.detail = detail.into();
        self
    }

    pub fn with_validation(
        mut self,
        field: impl Into<String>,
        detail: impl Into<String>,
    ) -> ApiError {
        self.body.validations.push(ValidationError {
            field: field.into(),
            detail: detail.into(),
        });
        self
    }

    pub fn with_cause(mut self, cause: impl std::fmt::Display) -> ApiError {
        self.cause = Some(cause.to_string());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, messages::NOT_FOUND)
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, messages::FORBIDDEN)
            .with_detail(messages::FORBIDDEN_DETAIL)
    }

    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, messages::INTERNAL).with_detail(detail)
    }

    pub fn unavailable() -> ApiError {
        let mut err = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            messages::DATABASE_UNAVAILABLE,
        );
        err.retry_after = Some(5);
        err
    }

    /// Maps a store error, with `context` as the 500 detail (the cause is logged only).
    pub fn from_store(err: StoreError, context: &str) -> ApiError {
        match err {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Forbidden => ApiError::forbidden(),
            StoreError::CannotAssign(role) => ApiError::new(
                StatusCode::FORBIDDEN,
                format!("You are not allowed to assign the {role:?} role."),
            ),
            StoreError::InsufficientScope(scope) => {
                let mut err = ApiError::forbidden();
                err.insufficient_scope = Some(scope);
                err
            }
            StoreError::Unavailable(e) => ApiError::unavailable().with_cause(e),
            StoreError::Conflict(c) => ApiError::new(StatusCode::CONFLICT, conflict_message(c)),
            other => ApiError::internal(context).with_cause(other),
        }
    }
}

fn conflict_message(c: Conflict) -> &'static str {
    match c {
        Conflict::Username | Conflict::Email => "User already exists.",
        Conflict::TokenName => "A token with this name already exists.",
        Conflict::FirstUser => "The initial user has already been created.",
        Conflict::OrganizationName => "Organization already exists with that name.",
        Conflict::Membership => "User is already an organization member.",
        Conflict::TemplateName => "A template with this name already exists in the organization.",
        Conflict::WorkspaceName => "A workspace with this name already exists.",
        Conflict::TaskName => "A task with this name already exists.",
        Conflict::VersionInUse => "The template version already belongs to a template.",
        Conflict::BuildInProgress => "A build is already in progress for this workspace.",
        Conflict::Other => "The resource already exists.",
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        ApiError::from_store(err, "Internal error accessing the database.")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let parts = *self.0;
        let mut res = json_response(parts.status, &parts.body);
        if let Some(cause) = parts.cause {
            ErrorCause::attach(&mut res, cause);
        }
        if let Some(value) = parts
            .www_authenticate
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(scope) = parts.insufficient_scope {
            res.extensions_mut().insert(InsufficientScope(scope));
        }
        if let Some(secs) = parts.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// Writes JSON as Coder does: `application/json; charset=utf-8`, `<`, `>`, `&` escaped,
/// one trailing newline. Escaped while serializing (they can only occur inside strings),
/// so a response is written in one pass, not searched and copied again.
pub fn json_response<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    let out = match html_safe_json(body) {
        Ok(out) => out,
        Err(err) => {
            tracing::warn!(error = %err, "response did not serialize");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "{\"message\":\"An internal server error occurred.\"}\n",
            )
                .into_response();
        }
    };
    let mut res = (status, out).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res
}

/// `body` as compact JSON with Go's HTML-safe escapes, and a trailing newline.
fn html_safe_json<T: serde::Serialize>(body: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    body.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out, HtmlSafe,
    ))?;
    out.push(b'\n');
    Ok(out)
}

/// serde_json's compact output with Go's HTML-safe escapes (`json.Marshal`'s default).
struct HtmlSafe;

impl serde_json::ser::Formatter for HtmlSafe {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut unwritten = 0;
        for (i, byte) in bytes.iter().enumerate() {
            let escaped: &[u8] = match byte {
                b'<' => b"\\u003c",
                b'>' => b"\\u003e",
                b'&' => b"\\u0026",
                _ => continue,
            };
            writer.write_all(&bytes[unwritten..i])?;
            writer.write_all(escaped)?;
            unwritten = i + 1;
        }
        writer.write_all(&bytes[unwritten..])
    }
}

/// A JSON response with a status, written like every other API response.
pub struct Json<T>(pub StatusCode, pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        json_response(self.0, &self.1)
    }
}

/// A response that carries a secret (a session or API token): no cache, shared or
/// private, may keep it (RFC 9111 §5.2.2.5; RFC 6749 §5.1 asks the same of token
/// responses).
pub struct NoStore<R>(pub R);

impl<R: IntoResponse> IntoResponse for NoStore<R> {
    fn into_response(self) -> Response {
        let mut res = self.0.into_response();
        mark_no_store(res.headers_mut());
        res
    }
}

pub fn mark_no_store(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        axum::http::header::PRAGMA,
        axum::http::HeaderValue::from_static("no-cache"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_html_safe_as_go_writes_them() {
        let body = serde_json::json!({
            "<key>": "a & b <c> d",
            "n": 1,
            "quoted": "\"<\"\u{e9}&",
        });
        let written = String::from_utf8(html_safe_json(&body).unwrap()).unwrap();
        assert_eq!(
            written,
            "{\"\\u003ckey\\u003e\":\"a \\u0026 b \\u003cc\\u003e d\",\"n\":1,\"quoted\":\"\\\"\\u003c\\\"\u{e9}\\u0026\"}\n"
        );
        // Nothing to escape: exactly serde_json's compact output.
        let plain = serde_json::json!({"message": "ok", "list": [1, 2]});
        assert_eq!(
            html_safe_json(&plain).unwrap(),
            format!("{}\n", serde_json::to_string(&plain).unwrap()).into_bytes()
        );
    }
}
