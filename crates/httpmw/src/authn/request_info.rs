//! What an authenticator reads from a request: the presented credential, the client
//! address and what a refusal's audit entry names.

use std::net::IpAddr;

use axum::{
    extract::Request,
    http::{HeaderValue, header},
};
use uuid::Uuid;

use crate::{
    authn::{actor::TokenSource, state::MCP_PATH},
    request_log::RequestLog,
};

/// What validation reads from a request: the presented token and the client address.
/// Owned, so no `&Request` (whose body is not `Sync`) is held across an await.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub token: Option<(String, TokenSource)>,
    /// Formatted only when written (a key's use, an audit entry), not per request.
    pub ip: IpAddr,
    /// For the audit entry of a failed authentication.
    pub request_id: Uuid,
    pub user_agent: Option<HeaderValue>,
    /// Whether the request is for the MCP endpoint (its own audience and challenge).
    pub mcp: bool,
}

impl RequestInfo {
    /// The request as the gate recorded it (its id, its client address), with `token`.
    pub fn of(req: &Request, token: Option<(String, TokenSource)>) -> RequestInfo {
        RequestInfo::with_token(
            req,
            token,
            RequestLog::request_id_in(req.extensions()),
            crate::client_ip::peer_ip(req.extensions()),
        )
    }

    pub fn with_token(
        req: &Request,
        token: Option<(String, TokenSource)>,
        request_id: Uuid,
        ip: IpAddr,
    ) -> RequestInfo {
        RequestInfo {
            token,
            ip,
            request_id,
            user_agent: req.headers().get(header::USER_AGENT).cloned(),
            mcp: req.uri().path() == MCP_PATH,
        }
    }
}
