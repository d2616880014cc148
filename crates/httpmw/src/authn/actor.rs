//! Who a request acts as, once authenticated: the types every other module reads (the
//! request log, the rate limiter, the audit log, path parameters, handlers). A leaf: it
//! imports nothing of the gate but the error type.

use std::sync::Arc;

use gatehouse_rbac::Subject;
/// The authenticated agent: its row (with its own build) and the subject it acts as,
/// shared with the authentication cache.
pub use gatehouse_store::auth_cache::CachedAgent as AuthenticatedAgent;
use gatehouse_store::{
    Store,
    auth_cache::CachedKey,
    models::{may_sign_in, now},
    system::system_restricted,
};
use uuid::Uuid;

use crate::{authn::reason::Reason, error::ApiError};

/// What one scheme made of a request (omicron's three-way answer): it carried no
/// credential the scheme reads, or one that authenticated, or one that did not (and why).
#[derive(Debug, Clone)]
pub enum Authn<T> {
    NotRequested,
    Authenticated(T),
    Failed(Reason),
}

/// Where a token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Cookie,
    SessionQuery,
    SessionHeader,
    Bearer,
    AccessTokenQuery,
    /// The AI Bridge's `X-Api-Key` (Anthropic's header).
    ApiKeyHeader,
}

impl TokenSource {
    /// The RFC 6750 methods (§2.1 header, §2.3 query), whose clients expect
    /// `WWW-Authenticate: Bearer` challenges.
    pub fn is_rfc6750(self) -> bool {
        matches!(self, TokenSource::Bearer | TokenSource::AccessTokenQuery)
    }
}

/// An authenticated API key: the validated key (its user, organizations and the subject
/// decisions are made for, shared with the authentication cache) and where the token
/// was found. Derefs to the [`CachedKey`], so `auth.key`, `auth.user`, `auth.subject`.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub entry: Arc<CachedKey>,
    pub source: TokenSource,
}

impl std::ops::Deref for Authenticated {
    type Target = CachedKey;

    fn deref(&self) -> &CachedKey {
        &self.entry
    }
}

impl Authenticated {
    /// A private copy to change for this request only (rare paths: a dormant user
    /// reactivated, a recorder attached); the cached entry is never modified.
    pub(crate) fn edit(&self, change: impl FnOnce(&mut CachedKey)) -> Arc<Authenticated> {
        let mut entry = (*self.entry).clone();
        change(&mut entry);
        Arc::new(Authenticated {
            entry: Arc::new(entry),
            source: self.source,
        })
    }

    /// How the request log names this credential's kind.
    pub fn auth_type(&self) -> &'static str {
        if self.key.login_type == "oauth2_provider_app" {
            "oauth2"
        } else {
            "api_key"
        }
    }
}

/// The gate's precheck of an API key (spec/auth.md §1.8), kept for the request.
#[derive(Debug, Clone)]
pub struct Prechecked(pub Arc<Authn<Arc<Authenticated>>>);

impl Prechecked {
    /// The key, when the precheck authenticated one.
    pub fn authenticated(&self) -> Option<&Authenticated> {
        self.authenticated_arc().map(|auth| auth.as_ref())
    }

    /// The key's shared handle, when the precheck authenticated one.
    pub fn authenticated_arc(&self) -> Option<&Arc<Authenticated>> {
        match self.0.as_ref() {
            Authn::Authenticated(auth) => Some(auth),
            _ => None,
        }
    }
}

/// The request's actor on an API-key route, attached by the authenticator.
#[derive(Debug, Clone)]
pub struct Actor(pub Arc<Authenticated>);

impl Actor {
    pub fn subject(&self) -> &Subject {
        &self.0.subject
    }

    pub fn user_id(&self) -> Uuid {
        self.0.key.user_id
    }

    /// Whether the credential this actor connected with would still authenticate, for
    /// connections that outlive their request (a websocket): the same key (id and stored
    /// secret hash) is still there, unexpired, and its user may still sign in. Served by
    /// the authentication cache, so a revoked key, an expiry, a suspension or a deletion is
    /// seen at once. `Err` says why not; a store that cannot answer counts as not, since
    /// a connection that cannot be re-checked should not be trusted for longer.
    pub async fn revalidate(&self, store: &Store) -> Result<(), &'static str> {
        let entry = match store
            .authenticate_key(system_restricted(), &self.0.key.id)
            .await
        {
            Ok(Some(entry)) => entry,
            Ok(None) => return Err("API key was deleted."),
            Err(_) => return Err("API key could not be re-checked."),
        };
        // Two stored hashes, neither presented by a client: no timing to hide.
        if entry.key.hashed_secret != self.0.key.hashed_secret {
            return Err("API key was replaced.");
        }
        if entry.key.expires_at <= now() {
            return Err("API key expired.");
        }
        if !may_sign_in(&entry.user.status) {
            return Err("User is not active.");
        }
        Ok(())
    }
}

/// The actor the authenticator attached. Missing only on a route without the
/// authenticator: a wiring bug, not a client error.
fn attached<T: Clone + Send + Sync + 'static>(
    parts: &axum::http::request::Parts,
    missing: &'static str,
) -> Result<T, ApiError> {
    parts
        .extensions
        .get::<T>()
        .cloned()
        .ok_or_else(|| ApiError::internal(missing))
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        attached(parts, "No authenticated actor on this route.")
    }
}

/// The request's actor on an agent route.
#[derive(Debug, Clone)]
pub struct AgentActor(pub Arc<AuthenticatedAgent>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AgentActor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        attached(parts, "No authenticated agent on this route.")
    }
}
