//! Gatehouse's OAuth2 authorization server (spec/oauth2.md; decisions.md 25–34): metadata
//! (RFC 8414, RFC 9728), dynamic registration (RFC 7591/7592), authorization with consent
//! and PKCE (RFC 6749 §4.1, RFC 7636), the token endpoint with rotating refresh tokens,
//! revocation (RFC 7009), introspection (RFC 7662), resource indicators (RFC 8707) and the
//! management API. An access token is an API key of login type `oauth2_provider_app`; the
//! API-key machinery in `gatehouse-httpmw` authenticates it.

#![forbid(unsafe_code)]

pub mod apps;
pub mod audience;
pub mod authorize;
pub mod client;
pub mod consent;
pub mod error;
pub mod introspect;
pub mod metadata;
pub mod params;
pub mod pkce;
pub mod redirect_uri;
pub mod register;
pub mod revoke;
pub mod scopes;
pub mod secrets;
pub mod token;

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::TimeDelta;
use gatehouse_httpmw::rate_limit::{Bypass, SharedBucket, bypass_of, now, principal_of};
use gatehouse_sdk::oauth2::ErrorCode;
use gatehouse_store::{Store, system::oauth2_provider};

pub use crate::{audience::Resources, error::OAuth2Error};

/// The site setting that stores the DCR switch (decisions.md 2).
pub const DCR_SETTING: &str = "oauth2_dynamic_client_registration_enabled";

/// What the authorization server needs from the deployment.
#[derive(Debug)]
pub struct Provider {
    pub store: Store,
    /// The access URL without a trailing slash: the `issuer`, byte-identical everywhere.
    pub issuer: String,
    pub resources: Resources,
    /// Access-token lifetime (`CODER_SESSION_DURATION`).
    pub access_lifetime: TimeDelta,
    /// Refresh-token lifetime (`CODER_DEFAULT_OAUTH_REFRESH_LIFETIME`).
    pub refresh_lifetime: TimeDelta,
    /// `--oauth2-dynamic-client-registration` when set explicitly; wins over the stored
    /// setting.
    pub dcr_flag: Option<bool>,
    /// Whether the session cookie is `Secure`.
    pub secure_cookies: bool,
    /// Hosts the consent page's CSP lets through besides itself.
    pub csp_hosts: gatehouse_httpmw::security_headers::CspHosts,
    /// Where grants and revocations are recorded.
    pub audit: gatehouse_httpmw::audit::Auditor,
}

pub type SharedProvider = Arc<Provider>;

impl Provider {
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Whether dynamic client registration is on: the flag, else the stored setting, else
    /// on (decisions.md 2). The stored setting comes from the store's cache, which a
    /// change empties at once on every replica (migration 0010's trigger).
    pub async fn dcr_enabled(&self) -> Result<bool, OAuth2Error> {
        if let Some(flag) = self.dcr_flag {
            return Ok(flag);
        }
        let stored = self
            .store
            .site_config(oauth2_provider(), DCR_SETTING)
            .await?;
        Ok(stored.as_deref() != Some("false"))
    }
}

/// RFC 6749 §5.1 / RFC 7009 / RFC 7591: responses carrying tokens or credentials MUST NOT
/// be cached, so every `/oauth2/*` and management response says so (spec/oauth2.md §1.4).
pub const NO_STORE_PREFIXES: &[&str] = &["/oauth2/", "/api/v2/oauth2-provider"];

/// One bucket per principal for a whole route group (decisions.md 6: all of `/oauth2/*`
/// share one, the well-known documents another), answering in the OAuth2 error shape.
pub async fn group_rate_limit(
    State(limit): State<SharedBucket>,
    req: Request,
    next: Next,
) -> Response {
    // Only an owner's bypass counts; anyone else asking is simply limited.
    if bypass_of(&req) == Bypass::Owner {
        return next.run(req).await;
    }
    let decision = limit
        .limiter
        .check(&principal_of(&req), limit.bucket, now());
    if !decision.allowed {
        let mut err = OAuth2Error::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TemporarilyUnavailable,
            format!(
                "Too many requests: at most {} per minute. Try again later.",
                limit.limiter.limit()
            ),
        );
        err.retry_after = Some(limit.limiter.window().as_secs().max(1));
        return err.into_response();
    }
    next.run(req).await
}
