//! The one place a refused credential becomes an HTTP answer: 401 with the RFC 6750 /
//! RFC 9728 `WWW-Authenticate` challenge its scheme calls for (decisions.md 12), or the
//! server's own failure as it was.

use axum::http::StatusCode;

use crate::{
    authn::{
        reason::{Challenge, Reason, go_quote},
        state::{AuthState, MCP_CHALLENGE_SCOPE, MCP_PATH},
    },
    error::ApiError,
};

/// The answer for `reason`; `mcp` when the request was for the MCP endpoint (its own
/// resource metadata and suggested scope).
pub fn challenge(state: &AuthState, mcp: bool, reason: Reason) -> ApiError {
    let (challenge, message, detail) = match reason {
        Reason::Broken(err) => return err,
        Reason::Refused {
            challenge,
            message,
            detail,
        } => (challenge, message, detail),
    };
    let mut err = ApiError::new(StatusCode::UNAUTHORIZED, message);
    if !detail.is_empty() {
        err = err.with_detail(detail);
    }
    err.www_authenticate = www_authenticate(state, mcp, challenge);
    err
}

fn www_authenticate(state: &AuthState, mcp: bool, challenge: Challenge) -> Option<String> {
    // RFC 9728 §5.1: point at the metadata of the resource that was called; on the MCP
    // endpoint, that is the path-inserted document, and the challenge suggests a scope.
    let (metadata, scope) = if mcp {
        (
            go_quote(&format!("{}{MCP_PATH}", state.resource_metadata_url)),
            format!(", scope={}", go_quote(MCP_CHALLENGE_SCOPE)),
        )
    } else {
        (go_quote(&state.resource_metadata_url), String::new())
    };
    let description = match challenge {
        Challenge::None => return None,
        // RFC 6750 §3.1: a request with no credentials gets no error code.
        Challenge::Missing => {
            return Some(format!(
                "Bearer realm=\"coder\"{scope}, resource_metadata={metadata}"
            ));
        }
        Challenge::Expired => "The access token has expired",
        Challenge::Audience => "The access token audience does not match this resource",
        Challenge::Invalid => "The access token is invalid",
    };
    Some(format!(
        "Bearer realm=\"coder\", error=\"invalid_token\", error_description={}{scope}, resource_metadata={metadata}",
        go_quote(description)
    ))
}

/// RFC 6750 §3.1: a scope refusal on a Bearer request says which scope would do.
pub fn insufficient_scope(state: &AuthState, scope: &str) -> String {
    format!(
        "Bearer realm=\"coder\", error=\"insufficient_scope\", error_description=\"The request requires higher privileges than provided by the access token\", scope={}, resource_metadata={}",
        go_quote(scope),
        go_quote(&state.resource_metadata_url)
    )
}
