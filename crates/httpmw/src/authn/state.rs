//! What authentication needs from the server's configuration.

use std::sync::Arc;

use gatehouse_store::Store;

use crate::{audit::Auditor, user_link::LinkRefresher};

/// The MCP endpoint's path: a protected resource of its own (decisions.md 25–26).
pub const MCP_PATH: &str = "/api/experimental/mcp/http";

/// The scopes the MCP endpoint's challenge suggests (decisions.md 26).
pub const MCP_CHALLENGE_SCOPE: &str = "user:read workspace:read template:read";

#[derive(Debug, Clone)]
pub struct AuthState {
    pub store: Store,
    /// `<access URL>/.well-known/oauth-protected-resource`, for `WWW-Authenticate`.
    pub resource_metadata_url: String,
    /// The MCP endpoint as an RFC 8707 audience (canonical form, decisions.md 25): a token
    /// bound to it is valid on [`MCP_PATH`] only.
    pub mcp_audience: String,
    /// `--disable-session-expiry-refresh`.
    pub disable_session_expiry_refresh: bool,
    /// Whether requests may have their authz checks recorded (`--dev`).
    pub authz_recording: AuthzRecording,
    /// Refreshes expired OIDC/GitHub user links; `None` when no provider is configured.
    pub links: Option<Arc<dyn LinkRefresher>>,
    /// Where failed authentications with a known key are recorded.
    pub audit: Auditor,
}

impl std::fmt::Debug for dyn LinkRefresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkRefresher")
    }
}

/// When the authz check recorder runs (decisions.md 23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthzRecording {
    /// Not a dev deployment: never.
    #[default]
    Off,
    /// `--dev`: when the request sends `x-record-authz-checks: true`.
    OnRequest,
    /// `--dev --enable-authz-recordings`: every authenticated request.
    Always,
}

/// Go's `strconv.ParseBool` truth values.
pub(crate) fn parses_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "TRUE" | "true" | "True")
}
