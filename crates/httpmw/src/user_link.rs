//! An OIDC (or GitHub) login key is good only while its user link is (spec/auth.md §1.4,
//! Coder #17878): the key and the link expire separately, an expired link with a refresh
//! token is refreshed, and a refresh never moves the key's own expiry.

use std::{future::Future, pin::Pin};

use chrono::{DateTime, Utc};
use gatehouse_store::StoreError;
use uuid::Uuid;

/// Refreshes an expired link against its identity provider. The server implements it
/// (it knows the providers); requests for one user share one refresh.
pub trait LinkRefresher: Send + Sync {
    fn refresh<'a>(
        &'a self,
        user_id: Uuid,
        login_type: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), LinkRefreshError>> + Send + 'a>>;
}

#[derive(Debug, thiserror::Error)]
pub enum LinkRefreshError {
    /// No provider is configured for this login type.
    #[error("OAuth2Config not provided.")]
    NotConfigured,
    /// The link is expired and holds no refresh token: a clean sign-out.
    #[error("session expired at {0}")]
    NoRefreshToken(DateTime<Utc>),
    /// The provider refused the refresh (its error, for the response's detail).
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `GitHub` / `OpenID Connect`, as Coder names the providers in its messages.
pub fn friendly_name(login_type: &str) -> &'static str {
    match login_type {
        "github" => "GitHub",
        _ => "OpenID Connect",
    }
}

/// Login types whose keys depend on a user link.
pub fn needs_link(login_type: &str) -> bool {
    matches!(login_type, "oidc" | "github")
}
