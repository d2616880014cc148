//! The API-key scheme (spec/auth.md §1.3): a `<id>-<secret>` token from any of Coder's
//! five sources, checked against its stored hash, its expiry, its audience (OAuth2
//! access tokens, RFC 8707) and its user link, with the hourly `last_used` write.

use std::{
    net::IpAddr,
    pin::Pin,
    sync::{Arc, LazyLock},
};

use axum::extract::Request;
use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_sdk::{error::messages, gofmt::go_time_string};
use gatehouse_store::{
    StoreError,
    auth_cache::CachedKey,
    models::{now, zero_time},
    system::system_restricted,
};

use crate::{
    authn::{
        actor::{Authenticated, Authn, Prechecked},
        reason::{Challenge, Reason, go_quote},
        record::audit_refusal,
        request_info::RequestInfo,
        sources::presented_token,
        state::AuthState,
    },
    error::ApiError,
    request_id::RequestId,
    token,
    user_link::{LinkRefreshError, friendly_name, needs_link},
};

fn invalid(detail: impl Into<String>) -> Reason {
    Reason::refused(Challenge::Invalid, messages::SIGNED_OUT, detail)
}

fn store_failure(e: StoreError, context: &'static str) -> Reason {
    Reason::Broken(match e {
        StoreError::Unavailable(e) => ApiError::unavailable().with_cause(e),
        e @ StoreError::Corrupt(_) => {
            ApiError::internal("Internal error fetching user's roles.").with_cause(e)
        }
        e => ApiError::internal(context).with_cause(e),
    })
}

/// Validates the request's API key (spec/auth.md §1.3, steps 1–9). The user's status is
/// the caller's to judge ([`crate::authn::policy`]).
pub async fn authenticate(state: &AuthState, req: &RequestInfo) -> Authn<Arc<Authenticated>> {
    let Some((raw, source)) = req.token.as_ref() else {
        return Authn::NotRequested;
    };
    match check(state, req, raw).await {
        Ok(entry) => Authn::Authenticated(Arc::new(Authenticated {
            entry,
            source: *source,
        })),
        Err(reason) => Authn::Failed(reason),
    }
}

async fn check(state: &AuthState, req: &RequestInfo, raw: &str) -> Result<Arc<CachedKey>, Reason> {
    let (id, secret) = token::split(raw).map_err(|e| invalid(e.to_string()))?;
    if !token::plausible_id(id) {
        return Err(invalid("API key is invalid."));
    }
    let entry = match state.store.authenticate_key(system_restricted(), id).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return Err(invalid("API key is invalid.")),
        Err(e) => return Err(store_failure(e, "Internal error fetching API key by id.")),
    };
    if !token::secret_matches(secret, &entry.key.hashed_secret) {
        audit_refusal(state, req, &entry, "secret mismatch");
        return Err(invalid("API key secret is invalid."));
    }
    let now = now();
    if entry.key.expires_at <= now {
        audit_refusal(state, req, &entry, "expired");
        return Err(Reason::refused(
            Challenge::Expired,
            messages::SIGNED_OUT,
            format!(
                "API key expired at {}.",
                go_quote(&go_time_string(entry.key.expires_at))
            ),
        ));
    }
    // RFC 8707 / decisions.md 25: an OAuth2 access token is valid only at its audience.
    // Checked before any write, so a rejected token never slides or records use.
    if entry.key.login_type == "oauth2_provider_app" {
        let valid_here = match entry.oauth2_audience.as_deref() {
            None => false,
            Some(aud) if aud == state.mcp_audience => req.mcp,
            Some(_) => true,
        };
        if !valid_here {
            audit_refusal(state, req, &entry, "audience");
            return Err(Reason::refused(
                Challenge::Audience,
                messages::SIGNED_OUT,
                "Token audience validation failed: the token was issued for another resource.",
            ));
        }
    }
    if needs_link(&entry.key.login_type) {
        check_link(state, &entry, now).await?;
    }
    bookkeeping(state, entry, now, req.ip).await
}

/// Both the key and its user link must be valid (spec/auth.md §1.4). The cached entry
/// carries the link's expiry, so a live link costs nothing; an expired one is refreshed
/// once (the refresher drops the cached entry, so the next request sees the new expiry).
async fn check_link(
    state: &AuthState,
    entry: &CachedKey,
    now: DateTime<Utc>,
) -> Result<(), Reason> {
    let login_type = entry.key.login_type.as_str();
    let Some(expiry) = entry.link_expiry else {
        return Err(invalid("You must re-authenticate with the login provider."));
    };
    // The zero time: the provider gave no expiry, so the link never expires.
    if expiry == zero_time() || expiry > now {
        return Ok(());
    }
    let not_configured = |why: &str| {
        Reason::Broken(ApiError::internal(format!(
            "Unable to refresh OAuth token for login type {login_type:?}. {why} Contact an administrator to configure this login type."
        )))
    };
    let Some(links) = state.links.as_ref() else {
        return Err(not_configured("No OAuth2Configs provided."));
    };
    let friendly = friendly_name(login_type);
    match links.refresh(entry.key.user_id, login_type).await {
        Ok(()) => Ok(()),
        Err(LinkRefreshError::NotConfigured) => Err(not_configured("OAuth2Config not provided.")),
        Err(LinkRefreshError::NoRefreshToken(at)) => Err(Reason::refused(
            Challenge::Expired,
            messages::SIGNED_OUT,
            format!(
                "{friendly} session expired at {}. Try signing in again.",
                go_quote(&go_time_string(at))
            ),
        )),
        Err(LinkRefreshError::Failed(why)) => Err(Reason::refused(
            Challenge::Expired,
            format!(
                "Could not refresh expired {friendly} token. Try re-authenticating to resolve this issue."
            ),
            why,
        )),
        Err(LinkRefreshError::Store(StoreError::Unavailable(e))) => {
            Err(Reason::Broken(ApiError::unavailable().with_cause(e)))
        }
        Err(LinkRefreshError::Store(e)) => Err(Reason::Broken(
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "A database error occurred",
            )
            .with_detail(format!("update user_link: {e}.")),
        )),
    }
}

/// The hourly `last_used` / sliding-expiry write (spec/auth.md §1.5; decisions.md 5:
/// `token` and OAuth2 keys keep a fixed expiry). The common case (nothing to write)
/// hands the cached entry back untouched.
async fn bookkeeping(
    state: &AuthState,
    entry: Arc<CachedKey>,
    now: DateTime<Utc>,
    ip: IpAddr,
) -> Result<Arc<CachedKey>, Reason> {
    let hour = TimeDelta::hours(1);
    let key = &entry.key;
    let stale_use = now - key.last_used > hour;
    let slides = !state.disable_session_expiry_refresh
        && !matches!(key.login_type.as_str(), "token" | "oauth2_provider_app");
    // Stored lifetimes are bounded at creation; `try_` keeps a corrupt row from
    // panicking the request.
    let lifetime = TimeDelta::try_seconds(key.lifetime_seconds).unwrap_or(TimeDelta::zero());
    let slide = slides && key.expires_at - now <= lifetime - hour;
    if !stale_use && !slide {
        return Ok(entry);
    }
    let mut updated = (*entry).clone();
    if stale_use {
        updated.key.last_used = now;
        updated.key.ip_address = ip.to_string();
    }
    if slide {
        updated.key.expires_at = now
            .checked_add_signed(lifetime)
            .unwrap_or(updated.key.expires_at);
    }
    let user = Arc::make_mut(&mut updated.user);
    user.last_seen_at = now;
    user.updated_at = now;
    // The store drops the cached entry once this commits; the next request refills it.
    state
        .store
        .record_api_key_use(
            system_restricted(),
            &updated.key,
            updated.key.last_used,
            updated.key.expires_at,
            &updated.key.ip_address,
        )
        .await
        .map_err(|e| {
            Reason::Broken(match e {
                StoreError::Unavailable(e) => ApiError::unavailable().with_cause(e),
                e => ApiError::internal("API key couldn't update.").with_cause(e),
            })
        })?;
    Ok(Arc::new(updated))
}

/// A precheck that has its answer, or the validation it still waits for.
pub enum Precheck {
    Ready(Prechecked),
    Pending(Pin<Box<dyn Future<Output = Prechecked> + Send>>),
}

/// Resolves the API key once per request and stores the result; never rejects (the
/// limiters key by its user, decisions.md 11). The gate calls it for every request,
/// before routing, with the client's address.
pub fn precheck(
    state: &Arc<AuthState>,
    req: &Request,
    request_id: RequestId,
    client: IpAddr,
) -> Precheck {
    // Most unauthenticated traffic (health checks, discovery, static pages) carries no
    // credential: one shared answer, nothing to allocate, nothing to wait for.
    static NO_TOKEN: LazyLock<Prechecked> =
        LazyLock::new(|| Prechecked(Arc::new(Authn::NotRequested)));
    match presented_token(req.headers(), req.uri()) {
        None => Precheck::Ready(NO_TOKEN.clone()),
        token => {
            let info = RequestInfo::with_token(req, token, request_id.0, client);
            let state = state.clone();
            Precheck::Pending(Box::pin(async move {
                Prechecked(Arc::new(authenticate(&state, &info).await))
            }))
        }
    }
}
