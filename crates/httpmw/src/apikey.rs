//! API-key authentication (spec/auth.md §1).
//!
//! Two layers: [`precheck`] resolves any presented credential near the top of the router
//! and never rejects (so limiters can key by user, decisions.md 11); [`require_api_key`]
//! sits on authenticated route groups, rejects missing or invalid credentials with 401,
//! checks the user's status, and attaches the [`Actor`]. Authorization decisions happen
//! later, in the store.

use std::{
    net::IpAddr,
    pin::Pin,
    sync::{Arc, LazyLock},
};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, TimeDelta, Utc};
use gatehouse_rbac::Subject;
use gatehouse_sdk::{error::messages, gofmt::go_time_string};
use gatehouse_store::{
    Store, StoreError,
    auth_cache::CachedKey,
    models::{may_sign_in, now, zero_time},
    system::system_restricted,
};
use uuid::Uuid;

use crate::{
    audit::{AuditAction, AuditContext, AuditResource, Auditor},
    error::{ApiError, InsufficientScope},
    request_id::RequestId,
    request_log::RequestLog,
    token,
    user_link::{LinkRefreshError, LinkRefresher, friendly_name, needs_link},
};

/// The MCP endpoint's path: a protected resource of its own (decisions.md 25–26).
pub const MCP_PATH: &str = "/api/experimental/mcp/http";

/// The scopes the MCP endpoint's challenge suggests (decisions.md 26).
pub const MCP_CHALLENGE_SCOPE: &str = "user:read workspace:read template:read";

/// The session cookie, also the first token source.
pub const SESSION_COOKIE: &str = "coder_session_token";
// A `HeaderName`, not a `&str`: a lookup by text parses and hashes the name each time.
pub static SESSION_TOKEN_HEADER: HeaderName = HeaderName::from_static("coder-session-token");

/// What authentication needs from the server's configuration.
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

/// An authenticated request: the validated key (its user, organizations and the subject
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
    fn edit(&self, change: impl FnOnce(&mut CachedKey)) -> Arc<Authenticated> {
        let mut entry = (*self.entry).clone();
        change(&mut entry);
        Arc::new(Authenticated {
            entry: Arc::new(entry),
            source: self.source,
        })
    }
}

/// The request's actor, attached by [`require_api_key`].
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

/// The result of validating whatever credential a request carried.
#[derive(Debug, Clone)]
pub enum Outcome {
    NoToken,
    Authenticated(Arc<Authenticated>),
}

/// The precheck's stored result (spec/auth.md §1.8).
#[derive(Debug, Clone)]
pub struct Prechecked(pub Arc<Result<Outcome, ApiError>>);

/// Where a token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Cookie,
    SessionQuery,
    SessionHeader,
    Bearer,
    AccessTokenQuery,
}

impl TokenSource {
    /// The RFC 6750 methods (§2.1 header, §2.3 query), whose clients expect
    /// `WWW-Authenticate: Bearer` challenges.
    pub fn is_rfc6750(self) -> bool {
        matches!(self, TokenSource::Bearer | TokenSource::AccessTokenQuery)
    }
}

/// Reads the token in Coder's order (spec/auth.md §1.1): cookie, `coder_session_token`
/// query, `Coder-Session-Token` header, `Authorization: Bearer`, `access_token` query.
pub fn presented_token(headers: &HeaderMap, uri: &Uri) -> Option<(String, TokenSource)> {
    // Most requests carry none of the sources: one pass over the (few) header names
    // instead of a hashed lookup per source.
    if uri.query().is_none()
        && !headers.keys().any(|name| {
            name == header::COOKIE || name == header::AUTHORIZATION || name == SESSION_TOKEN_HEADER
        })
    {
        return None;
    }
    if let Some(v) = cookie(headers, SESSION_COOKIE).filter(|v| !v.is_empty()) {
        return Some((v.to_owned(), TokenSource::Cookie));
    }
    let query = uri.query().unwrap_or_default();
    let query_param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(v) = query_param(SESSION_COOKIE).filter(|v| !v.is_empty()) {
        return Some((v, TokenSource::SessionQuery));
    }
    if let Some(v) = headers
        .get(&SESSION_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    {
        return Some((v.to_owned(), TokenSource::SessionHeader));
    }
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && v.len() > 7
        && v.is_char_boundary(7)
        && v[..7].eq_ignore_ascii_case("bearer ")
    {
        let t = v[7..].trim();
        if !t.is_empty() {
            return Some((t.to_owned(), TokenSource::Bearer));
        }
    }
    query_param("access_token")
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .map(|v| (v, TokenSource::AccessTokenQuery))
}

/// The token alone, for callers that do not care where it came from.
pub fn token_from_request(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    presented_token(headers, uri).map(|(token, _)| token)
}

/// A cookie's value from the `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// Which `WWW-Authenticate` challenge a 401 carries (decisions.md 12).
#[derive(Debug, Clone, Copy)]
enum Challenge {
    Missing,
    Expired,
    Invalid,
    Audience,
}

fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn unauthorized(
    state: &AuthState,
    mcp: bool,
    challenge: Challenge,
    message: &str,
    detail: &str,
) -> ApiError {
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
    // RFC 6750 §3.1: a request with no credentials gets no error code.
    let header = match challenge {
        Challenge::Missing => {
            format!("Bearer realm=\"coder\"{scope}, resource_metadata={metadata}")
        }
        Challenge::Expired | Challenge::Invalid | Challenge::Audience => {
            let description = match challenge {
                Challenge::Expired => "The access token has expired",
                Challenge::Audience => "The access token audience does not match this resource",
                _ => "The access token is invalid",
            };
            format!(
                "Bearer realm=\"coder\", error=\"invalid_token\", error_description={}{scope}, resource_metadata={metadata}",
                go_quote(description)
            )
        }
    };
    let mut err = ApiError::new(StatusCode::UNAUTHORIZED, message).with_detail(detail);
    err.www_authenticate = Some(header);
    err
}

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
    pub fn of(req: &Request) -> RequestInfo {
        RequestInfo::with_token(
            req,
            presented_token(req.headers(), req.uri()),
            RequestLog::request_id_in(req.extensions()),
            crate::client_ip::peer_ip(req.extensions()),
        )
    }

    fn with_token(
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

/// Validates the request's credential (spec/auth.md §1.3, steps 1–9).
pub async fn validate(state: &AuthState, req: &RequestInfo) -> Result<Outcome, ApiError> {
    let Some((raw, source)) = req.token.as_ref() else {
        return Ok(Outcome::NoToken);
    };
    let (id, secret) = token::split(raw).map_err(|e| {
        unauthorized(
            state,
            req.mcp,
            Challenge::Invalid,
            messages::SIGNED_OUT,
            &e.to_string(),
        )
    })?;
    let invalid = || {
        unauthorized(
            state,
            req.mcp,
            Challenge::Invalid,
            messages::SIGNED_OUT,
            "API key is invalid.",
        )
    };
    if !token::plausible_id(id) {
        return Err(invalid());
    }
    let system = system_restricted();
    let entry = match state.store.authenticate_key(system, id).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return Err(invalid()),
        Err(StoreError::Unavailable(e)) => return Err(ApiError::unavailable().with_cause(e)),
        Err(e @ StoreError::Corrupt(_)) => {
            return Err(ApiError::internal("Internal error fetching user's roles.").with_cause(e));
        }
        Err(e) => {
            return Err(ApiError::internal("Internal error fetching API key by id.").with_cause(e));
        }
    };
    if !token::secret_matches(secret, &entry.key.hashed_secret) {
        audit_failure(state, req, &entry, "secret mismatch");
        return Err(unauthorized(
            state,
            req.mcp,
            Challenge::Invalid,
            messages::SIGNED_OUT,
            "API key secret is invalid.",
        ));
    }
    let now = now();
    if entry.key.expires_at <= now {
        audit_failure(state, req, &entry, "expired");
        let detail = format!(
            "API key expired at {}.",
            go_quote(&go_time_string(entry.key.expires_at))
        );
        return Err(unauthorized(
            state,
            req.mcp,
            Challenge::Expired,
            messages::SIGNED_OUT,
            &detail,
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
            audit_failure(state, req, &entry, "audience");
            return Err(unauthorized(
                state,
                req.mcp,
                Challenge::Audience,
                messages::SIGNED_OUT,
                "Token audience validation failed: the token was issued for another resource.",
            ));
        }
    }
    if needs_link(&entry.key.login_type) {
        check_link(state, req.mcp, &entry, now).await?;
    }
    let entry = bookkeeping(state, entry, now, req.ip).await?;
    Ok(Outcome::Authenticated(Arc::new(Authenticated {
        entry,
        source: *source,
    })))
}

/// Records a known key presented and refused (issue #9): the key's owner, the key id
/// (never its secret) and why, off the request path.
fn audit_failure(state: &AuthState, req: &RequestInfo, entry: &CachedKey, reason: &str) {
    let context = AuditContext {
        request_id: req.request_id,
        ip: req.ip.to_string(),
        user_agent: req
            .user_agent
            .as_ref()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default(),
        actor: Some(entry.key.user_id),
    };
    let resource = AuditResource::new("api_key", entry.key.user_id, entry.key.token_name.clone())
        .with_fields(serde_json::json!({
            "api_key_id": entry.key.id,
            "login_type": entry.key.login_type,
            "reason": reason,
        }));
    state.audit.record_in_background(context.entry(
        AuditAction::Login,
        resource,
        StatusCode::UNAUTHORIZED,
    ));
}

/// Both the key and its user link must be valid (spec/auth.md §1.4). The cached entry
/// carries the link's expiry, so a live link costs nothing; an expired one is refreshed
/// once (the refresher drops the cached entry, so the next request sees the new expiry).
async fn check_link(
    state: &AuthState,
    mcp: bool,
    entry: &CachedKey,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let login_type = entry.key.login_type.as_str();
    let Some(expiry) = entry.link_expiry else {
        return Err(unauthorized(
            state,
            mcp,
            Challenge::Invalid,
            messages::SIGNED_OUT,
            "You must re-authenticate with the login provider.",
        ));
    };
    // The zero time: the provider gave no expiry, so the link never expires.
    if expiry == zero_time() || expiry > now {
        return Ok(());
    }
    let not_configured = |why: &str| {
        ApiError::internal(format!(
            "Unable to refresh OAuth token for login type {login_type:?}. {why} Contact an administrator to configure this login type."
        ))
    };
    let Some(links) = state.links.as_ref() else {
        return Err(not_configured("No OAuth2Configs provided."));
    };
    let friendly = friendly_name(login_type);
    match links.refresh(entry.key.user_id, login_type).await {
        Ok(()) => Ok(()),
        Err(LinkRefreshError::NotConfigured) => Err(not_configured("OAuth2Config not provided.")),
        Err(LinkRefreshError::NoRefreshToken(at)) => Err(unauthorized(
            state,
            mcp,
            Challenge::Expired,
            messages::SIGNED_OUT,
            &format!(
                "{friendly} session expired at {}. Try signing in again.",
                go_quote(&go_time_string(at))
            ),
        )),
        Err(LinkRefreshError::Failed(why)) => Err(unauthorized(
            state,
            mcp,
            Challenge::Expired,
            &format!(
                "Could not refresh expired {friendly} token. Try re-authenticating to resolve this issue."
            ),
            &why,
        )),
        Err(LinkRefreshError::Store(StoreError::Unavailable(e))) => {
            Err(ApiError::unavailable().with_cause(e))
        }
        Err(LinkRefreshError::Store(e)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "A database error occurred",
        )
        .with_detail(format!("update user_link: {e}."))),
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
) -> Result<Arc<CachedKey>, ApiError> {
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
        .map_err(|e| match e {
            StoreError::Unavailable(e) => ApiError::unavailable().with_cause(e),
            e => ApiError::internal("API key couldn't update.").with_cause(e),
        })?;
    Ok(Arc::new(updated))
}

/// A precheck that has its answer, or the validation it still waits for.
pub enum Precheck {
    Ready(Prechecked),
    Pending(Pin<Box<dyn Future<Output = Prechecked> + Send>>),
}

/// Resolves the credential once per request and stores the result; never rejects.
/// The gate calls it for every request, before routing, with the client's address.
pub fn precheck(
    state: &Arc<AuthState>,
    req: &Request,
    request_id: RequestId,
    client: IpAddr,
) -> Precheck {
    // Most unauthenticated traffic (health checks, discovery, static pages) carries no
    // credential: one shared answer, nothing to allocate, nothing to wait for.
    static NO_TOKEN: LazyLock<Prechecked> =
        LazyLock::new(|| Prechecked(Arc::new(Ok(Outcome::NoToken))));
    match presented_token(req.headers(), req.uri()) {
        None => Precheck::Ready(NO_TOKEN.clone()),
        token => {
            let info = RequestInfo::with_token(req, token, request_id.0, client);
            let state = state.clone();
            Precheck::Pending(Box::pin(async move {
                Prechecked(Arc::new(validate(&state, &info).await))
            }))
        }
    }
}

/// Rejects requests without a valid credential or an active user, then attaches the actor.
pub async fn require_api_key(
    State(state): State<Arc<AuthState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let outcome = match RequestLog::prechecked_in(req.extensions()) {
        Some(p) => p.0.as_ref().clone(),
        None => {
            let info = RequestInfo::of(&req);
            validate(&state, &info).await
        }
    };
    let mcp = req.uri().path() == MCP_PATH;
    let auth = match outcome {
        Err(err) => return err.into_response(),
        Ok(Outcome::NoToken) => {
            return unauthorized(
                &state,
                mcp,
                Challenge::Missing,
                messages::SIGNED_OUT,
                "Cookie \"coder_session_token\" or query parameter must be provided.",
            )
            .into_response();
        }
        Ok(Outcome::Authenticated(auth)) => auth,
    };
    let auth = match auth.user.status.as_str() {
        "active" => auth,
        // Dormant users come back to life on their first authenticated request
        // (spec/auth.md §1.7 step 2).
        "dormant" => match state
            .store
            .update_user_status(system_restricted(), auth.key.user_id, "active")
            .await
        {
            Ok(_) => auth.edit(|entry| Arc::make_mut(&mut entry.user).status = "active".to_owned()),
            Err(StoreError::Unavailable(e)) => {
                return ApiError::unavailable().with_cause(e).into_response();
            }
            Err(e) => {
                return ApiError::internal("update user status.")
                    .with_cause(e)
                    .into_response();
            }
        },
        status => {
            let message = format!(
                "User is not active (status = {}). Contact an admin to reactivate your account.",
                go_quote(status)
            );
            return unauthorized(&state, mcp, Challenge::Invalid, &message, "").into_response();
        }
    };
    if let Some(log) = req.extensions().get::<crate::request_log::RequestLog>() {
        log.set_requestor(auth.key.user_id, &auth.user.username);
        log.set_api_key_id(&auth.key.id);
        log.set_auth_type(if auth.key.login_type == "oauth2_provider_app" {
            "oauth2"
        } else {
            "api_key"
        });
    }
    let record = match state.authz_recording {
        AuthzRecording::Off => false,
        AuthzRecording::Always => true,
        AuthzRecording::OnRequest => req
            .headers()
            .get("x-record-authz-checks")
            .and_then(|v| v.to_str().ok())
            .is_some_and(parses_true),
    };
    let (auth, recorder) = if record {
        let recorder = Arc::new(gatehouse_rbac::recorder::AuthzRecorder::new());
        let recorded = auth.edit(|entry| entry.subject.recorder = Some(recorder.clone()));
        (recorded, Some(recorder))
    } else {
        (auth, None)
    };
    let rfc6750 = auth.source.is_rfc6750();
    req.extensions_mut().insert(Actor(auth));
    let mut res = next.run(req).await;
    if let Some(value) = recorder.and_then(|r| HeaderValue::from_str(&r.header_value()).ok()) {
        res.headers_mut().insert("x-authz-checks", value);
    }
    // A scope refusal on a Bearer request says which scope would do (RFC 6750 §3.1).
    if rfc6750
        && let Some(InsufficientScope(scope)) = res.extensions().get::<InsufficientScope>().copied()
    {
        let value = format!(
            "Bearer realm=\"coder\", error=\"insufficient_scope\", error_description=\"The request requires higher privileges than provided by the access token\", scope={}, resource_metadata={}",
            go_quote(scope),
            go_quote(&state.resource_metadata_url)
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
    }
    res
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        // Only reachable on a route without `require_api_key`: a wiring bug, not a
        // client error.
        parts
            .extensions
            .get::<Actor>()
            .cloned()
            .ok_or_else(|| ApiError::internal("No authenticated actor on this route."))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn token_sources_in_coder_order() {
        let uri: Uri = "/x?coder_session_token=query&access_token=%20access%20"
            .parse()
            .unwrap();
        let all = headers(&[
            ("cookie", "a=b; coder_session_token=cookie"),
            ("coder-session-token", "header"),
            ("authorization", "Bearer bearer"),
        ]);
        assert_eq!(token_from_request(&all, &uri).as_deref(), Some("cookie"));
        let no_cookie = headers(&[
            ("coder-session-token", "header"),
            ("authorization", "Bearer b"),
        ]);
        assert_eq!(
            token_from_request(&no_cookie, &uri).as_deref(),
            Some("query")
        );
        let plain: Uri = "/x".parse().unwrap();
        assert_eq!(
            token_from_request(&no_cookie, &plain).as_deref(),
            Some("header")
        );
        let bearer = headers(&[("authorization", "bEaReR   tok  ")]);
        assert_eq!(token_from_request(&bearer, &plain).as_deref(), Some("tok"));
        let basic = headers(&[("authorization", "Basic abc")]);
        assert_eq!(token_from_request(&basic, &plain), None);
        let access: Uri = "/x?access_token=%20a%20".parse().unwrap();
        assert_eq!(token_from_request(&basic, &access).as_deref(), Some("a"));
        let bare = headers(&[("authorization", "Bearer")]);
        assert_eq!(token_from_request(&bare, &plain), None);
    }

    #[test]
    fn go_quoting_escapes_quotes_and_backslashes() {
        assert_eq!(go_quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
