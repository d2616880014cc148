//! `OAuth2Error`: the one place a protocol error becomes a response (RFC 6749 §5.2):
//! `{"error", "error_description"}` as JSON, with the challenge RFC 6749 §5.2 and RFC 6750
//! §3 require. The internal cause is logged, never sent.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use gatehouse_sdk::oauth2::{ErrorCode, OAuth2Error as Body};
use gatehouse_store::StoreError;

pub const INVALID_CLIENT: &str = "The client credentials are invalid";

#[derive(Debug, Clone)]
pub struct OAuth2Error {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub description: String,
    /// Logged with the response, never sent.
    pub cause: Option<String>,
    pub retry_after: Option<u64>,
}

impl OAuth2Error {
    pub fn new(status: StatusCode, code: ErrorCode, description: impl Into<String>) -> Self {
        OAuth2Error {
            status,
            code,
            description: description.into(),
            cause: None,
            retry_after: None,
        }
    }

    pub fn bad_request(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuth2Error::new(StatusCode::BAD_REQUEST, code, description)
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        OAuth2Error::bad_request(ErrorCode::InvalidRequest, description)
    }

    /// RFC 6749 §5.2: failed client authentication is 401 with a challenge.
    pub fn invalid_client() -> Self {
        OAuth2Error::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidClient,
            INVALID_CLIENT,
        )
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        OAuth2Error::bad_request(ErrorCode::InvalidGrant, description)
    }

    pub fn server_error() -> Self {
        OAuth2Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServerError,
            "Internal server error",
        )
    }

    pub fn with_cause(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }
}

impl From<StoreError> for OAuth2Error {
    fn from(err: StoreError) -> Self {
        match err {
            // decisions.md 14: an outage is a 503 the client may retry, never a 401.
            StoreError::Unavailable(e) => {
                let mut out = OAuth2Error::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::TemporarilyUnavailable,
                    "The database is temporarily unavailable. Please try again.",
                )
                .with_cause(e);
                out.retry_after = Some(1);
                out
            }
            e => OAuth2Error::server_error().with_cause(e),
        }
    }
}

impl IntoResponse for OAuth2Error {
    fn into_response(self) -> Response {
        let cause = self.cause;
        let body = Body {
            error: self.code,
            error_description: self.description,
            error_uri: None,
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(cause) = cause {
            gatehouse_httpmw::error::ErrorCause::attach(&mut res, cause);
        }
        let headers = res.headers_mut();
        match (self.status, self.code) {
            // RFC 6749 §5.2: a 401 carries the scheme the client should authenticate with.
            (StatusCode::UNAUTHORIZED, ErrorCode::InvalidClient) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"coder\""),
                );
            }
            // RFC 7592 §2: the registration access token is a Bearer token (RFC 6750 §3).
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, ErrorCode::InvalidToken) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"coder\", error=\"invalid_token\""),
                );
            }
            _ => {}
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
