//! The token endpoint (RFC 6749 §3.2, §4.1.3, §6; RFC 7636 §4.6; RFC 8707 §2.2;
//! spec/oauth2.md §3; decisions.md 27): `authorization_code` and `refresh_token` grants.

use axum::{
    extract::{Request, State},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use gatehouse_httpmw::{
    audit::{AuditAction, AuditContext, AuditResource},
    token as api_token,
};
use gatehouse_rbac::ScopeName;
use gatehouse_sdk::oauth2::{
    ErrorCode, GrantType, OAuth2Error as ErrorBody, TokenRequest, TokenResponse, TokenType,
};
use gatehouse_store::{
    models::{NewApiKey, NewOAuth2Grant, NewOAuth2Token, OAuth2App, OAuth2Token, may_sign_in, now},
    queries::oauth2::Redeemed,
    system::oauth2_provider,
};
use uuid::Uuid;

use crate::{
    SharedProvider,
    audience::InvalidResource,
    client::authenticated_client_and_token,
    error::OAuth2Error,
    params::{Params, read_request},
    pkce, redirect_uri, scopes,
    secrets::{AppSecret, Presented},
};

const BAD_CODE: &str = "The authorization code is invalid or expired";
const BAD_REFRESH: &str = "The refresh token is invalid or expired";
const BAD_TARGET: &str = "The resource parameter is invalid";

/// Issues tokens. Form-encoded in, JSON out.
#[utoipa::path(
    post,
    path = "/oauth2/tokens",
    tag = "OAuth2",
    operation_id = "oauth2_token",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Tokens issued", body = TokenResponse),
        (status = 400, description = "RFC 6749 §5.2 error", body = ErrorBody),
        (status = 401, description = "Client authentication failed", body = ErrorBody),
    ),
    security(())
)]
pub async fn token(State(provider): State<SharedProvider>, req: Request) -> Response {
    let audit = AuditContext::from_parts(req.extensions(), req.headers());
    match issue(&provider, req, &audit).await {
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => {
            // A client that failed to authenticate (issue #9), off the request path.
            if e.code == ErrorCode::InvalidClient {
                let resource = AuditResource::new("oauth2_provider_app", Uuid::nil(), "")
                    .with_fields(serde_json::json!({"error": e.code.as_str()}));
                provider.audit.record_in_background(audit.entry(
                    AuditAction::Login,
                    resource,
                    e.status,
                ));
            }
            e.into_response()
        }
    }
}

async fn issue(
    provider: &SharedProvider,
    req: Request,
    audit: &AuditContext,
) -> Result<TokenResponse, OAuth2Error> {
    let ip = gatehouse_httpmw::rate_limit::client_ip(&req).to_string();
    let (parts, query, form) = read_request(req).await?;
    let grant = match form.one("grant_type")? {
        None => {
            return Err(OAuth2Error::invalid_request(
                "Missing required parameter: grant_type",
            ));
        }
        Some(raw) => GrantType::parse(raw).ok_or_else(|| {
            OAuth2Error::bad_request(
                ErrorCode::UnsupportedGrantType,
                "The grant type is missing or unsupported",
            )
        })?,
    };
    if !matches!(
        grant,
        GrantType::AuthorizationCode | GrantType::RefreshToken
    ) {
        return Err(OAuth2Error::bad_request(
            ErrorCode::UnsupportedGrantType,
            format!("The grant type \"{grant}\" is not supported"),
        ));
    }
    // The refresh grant reads its token row with the client, in one query. A missing or
    // malformed token is reported by `refresh`, after the client is authenticated.
    let token_prefix = match grant {
        GrantType::RefreshToken => form
            .one("refresh_token")
            .ok()
            .flatten()
            .and_then(Presented::parse)
            .map(|presented| presented.prefix),
        _ => None,
    };
    let (app, secret_id, stored) =
        authenticated_client_and_token(provider, &parts.headers, &query, &form, token_prefix)
            .await?;
    if !app.grant_types.iter().any(|g| g == grant.as_str()) {
        // RFC 6749 §5.2: the client is not registered for this grant.
        return Err(OAuth2Error::bad_request(
            ErrorCode::UnauthorizedClient,
            format!("The client is not allowed to use the \"{grant}\" grant"),
        ));
    }
    let resource = match form.one("resource")? {
        None => None,
        Some(raw) => Some(provider.resources.resolve(raw).map_err(|e| match e {
            InvalidResource::Malformed => OAuth2Error::invalid_request(
                "The resource parameter must be an absolute URI without a fragment",
            ),
            InvalidResource::Unknown => {
                OAuth2Error::bad_request(ErrorCode::InvalidTarget, BAD_TARGET)
            }
        })?),
    };
    match grant {
        GrantType::AuthorizationCode => {
            exchange_code(provider, &form, &app, secret_id, resource, ip).await
        }
        _ => refresh(provider, &form, &app, stored, resource, ip, audit).await,
    }
}

/// The access token (an API key) and refresh token for one issuance.
struct Minted {
    key: NewApiKey,
    access_token: String,
    refresh: AppSecret,
    token_row: NewOAuth2Token,
    expires_at: DateTime<Utc>,
}

fn mint(
    provider: &SharedProvider,
    app: &OAuth2App,
    user_id: Uuid,
    scope: &[ScopeName],
    ip: String,
) -> Minted {
    let now = now();
    let generated = api_token::generate();
    let expires_at = now + provider.access_lifetime;
    let refresh = AppSecret::generate();
    let token_row = NewOAuth2Token {
        id: Uuid::new_v4(),
        hash_prefix: refresh.prefix.clone(),
        refresh_hash: refresh.hash(),
        expires_at: now + provider.refresh_lifetime,
    };
    Minted {
        access_token: generated.token(),
        key: NewApiKey {
            id: generated.id.clone(),
            hashed_secret: generated.hashed_secret.clone(),
            user_id,
            expires_at,
            login_type: "oauth2_provider_app".to_owned(),
            lifetime_seconds: provider.access_lifetime.num_seconds(),
            ip_address: ip,
            token_name: format!("{user_id}_{}_oauth_session_token", app.id),
            scopes: scope.iter().map(ToString::to_string).collect(),
            allow_list: vec!["*:*".to_owned()],
        },
        refresh,
        token_row,
        expires_at,
    }
}

fn response(provider: &SharedProvider, minted: Minted, scope: &[ScopeName]) -> TokenResponse {
    TokenResponse {
        access_token: minted.access_token,
        token_type: TokenType::Bearer,
        expires_in: Some(provider.access_lifetime.num_seconds()),
        refresh_token: Some(minted.refresh.formatted()),
        scope: scopes::join(scope),
        expiry: Some(minted.expires_at),
    }
}

async fn exchange_code(
    provider: &SharedProvider,
    form: &Params,
    app: &OAuth2App,
    secret_id: Option<Uuid>,
    resource: Option<String>,
    ip: String,
) -> Result<TokenResponse, OAuth2Error> {
    let system = oauth2_provider();
    let code = form
        .one("code")?
        .ok_or_else(|| OAuth2Error::invalid_request("Missing required parameter: code"))?;
    // RFC 7636 §4.5: the verifier is required; §4.1 fixes its shape.
    let verifier = form
        .one("code_verifier")?
        .ok_or_else(|| OAuth2Error::invalid_request("Missing required parameter: code_verifier"))?;
    if !pkce::well_formed(verifier) {
        return Err(OAuth2Error::invalid_request(
            "The code_verifier parameter must be 43 to 128 characters from the unreserved \
             character set [A-Za-z0-9-._~] (RFC 7636 §4.1)",
        ));
    }
    let redirect = form.one("redirect_uri")?;
    let presented = Presented::parse(code).ok_or_else(|| OAuth2Error::invalid_grant(BAD_CODE))?;
    let (stored, user_status) = provider
        .store
        .oauth2_code_by_prefix(system, presented.prefix)
        .await?
        .ok_or_else(|| OAuth2Error::invalid_grant(BAD_CODE))?;
    if !(presented.matches(&stored.hashed_secret) & (stored.app_id == app.id)) {
        return Err(OAuth2Error::invalid_grant(BAD_CODE));
    }
    // A user suspended (or deleted) since the code was issued gets no tokens from it.
    if !may_sign_in(&user_status) {
        return Err(OAuth2Error::invalid_grant(BAD_CODE));
    }
    if stored.expires_at <= now() {
        return Err(OAuth2Error::invalid_grant(BAD_CODE));
    }
    if stored.used_at.is_some() {
        // RFC 6749 §4.1.2: a code used twice SHOULD revoke what it issued.
        tracing::warn!(app_id = %app.id, user_id = %stored.user_id, "authorization code replayed; revoking its grant");
        if let Some(grant) = stored.grant_id {
            provider
                .store
                .revoke_oauth2_grant(system, stored.user_id, grant)
                .await?;
        }
        return Err(OAuth2Error::invalid_grant(BAD_CODE));
    }
    // RFC 6749 §4.1.3: identical to the authorization request's redirect_uri, if it had one.
    let redirect_ok = match (&stored.redirect_uri, redirect) {
        (Some(expected), Some(given)) => expected == given,
        (Some(_), None) => false,
        (None, Some(given)) => app
            .redirect_uris
            .iter()
            .any(|r| redirect_uri::matches(r, given)),
        (None, None) => true,
    };
    if !redirect_ok {
        return Err(OAuth2Error::invalid_grant(BAD_CODE));
    }
    if !pkce::verify_s256(verifier, &stored.code_challenge) {
        // The code is burnt so a verifier cannot be guessed against it.
        provider.store.delete_oauth2_code(system, &stored).await?;
        return Err(OAuth2Error::invalid_grant(
            "The PKCE code verifier is invalid",
        ));
    }
    if resource != stored.resource_uri {
        return Err(OAuth2Error::bad_request(
            ErrorCode::InvalidTarget,
            BAD_TARGET,
        ));
    }
    let granted = scopes::parse_stored(&stored.scope);
    if granted.is_empty() {
        return Err(OAuth2Error::invalid_grant(format!(
            "the granted scope {:?} cannot be issued",
            stored.scope
        )));
    }
    // The allowlist may have narrowed during the code's life.
    if !app.scope.trim().is_empty() {
        let allowed = scopes::parse_stored(&app.scope);
        if !granted
            .iter()
            .all(|g| gatehouse_rbac::scope::scopes_cover(&allowed, *g))
        {
            return Err(OAuth2Error::invalid_grant(
                "scope is no longer allowed by this app's registered scopes",
            ));
        }
    }
    let minted = mint(provider, app, stored.user_id, &granted, ip);
    let grant = NewOAuth2Grant {
        id: Uuid::new_v4(),
        app_id: app.id,
        user_id: stored.user_id,
        app_secret_id: secret_id,
        resource_uri: stored.resource_uri.clone(),
        scope: scopes::join(&granted),
    };
    match provider
        .store
        .redeem_oauth2_code(system, &stored, &grant, &minted.key, &minted.token_row)
        .await?
    {
        Redeemed::Issued => Ok(response(provider, minted, &granted)),
        Redeemed::AlreadyUsed => Err(OAuth2Error::invalid_grant(BAD_CODE)),
    }
}

/// `stored` is the token row read with the client: `issue` looked it up whenever the
/// token parses, which `refresh` checks first, so `None` here means no such row.
async fn refresh(
    provider: &SharedProvider,
    form: &Params,
    app: &OAuth2App,
    stored: Option<OAuth2Token>,
    resource: Option<String>,
    ip: String,
    audit: &AuditContext,
) -> Result<TokenResponse, OAuth2Error> {
    let system = oauth2_provider();
    let raw = form
        .one("refresh_token")?
        .ok_or_else(|| OAuth2Error::invalid_request("Missing required parameter: refresh_token"))?;
    let requested_scope = form.one("scope")?;
    let presented = Presented::parse(raw).ok_or_else(|| OAuth2Error::invalid_grant(BAD_REFRESH))?;
    let stored = stored.ok_or_else(|| OAuth2Error::invalid_grant(BAD_REFRESH))?;
    if !(presented.matches(&stored.refresh_hash) & (stored.app_id == app.id)) {
        return Err(OAuth2Error::invalid_grant(BAD_REFRESH));
    }
    if stored.rotated_at.is_some() {
        // RFC 9700 §4.14.2: a rotated refresh token presented again means one of the two
        // holders is an attacker; revoke the whole grant.
        tracing::warn!(app_id = %app.id, user_id = %stored.user_id, "rotated refresh token reused; revoking its grant");
        provider
            .store
            .revoke_oauth2_grant(system, stored.user_id, stored.grant_id)
            .await?;
        let mut audit = audit.clone();
        audit.actor = Some(stored.user_id);
        let resource = AuditResource::new("oauth2_provider_app", app.id, app.name.clone())
            .with_fields(serde_json::json!({
                "revoked": "grant",
                "reason": "rotated refresh token presented again",
            }));
        provider
            .audit
            .record(audit.entry(
                AuditAction::Delete,
                resource,
                axum::http::StatusCode::BAD_REQUEST,
            ))
            .await;
        return Err(OAuth2Error::invalid_grant(BAD_REFRESH));
    }
    if stored.expires_at <= now()
        || stored.api_key_id.is_none()
        || !may_sign_in(&stored.user_status)
    {
        return Err(OAuth2Error::invalid_grant(BAD_REFRESH));
    }
    if resource.is_some() && resource != stored.resource_uri {
        return Err(OAuth2Error::bad_request(
            ErrorCode::InvalidTarget,
            BAD_TARGET,
        ));
    }
    let granted = scopes::parse_stored(&stored.scope);
    let scope = match requested_scope {
        Some(requested) => scopes::narrow(requested, &granted)?,
        None => granted,
    };
    let minted = mint(provider, app, stored.user_id, &scope, ip);
    if !provider
        .store
        .rotate_oauth2_token(system, &stored, &minted.key, &minted.token_row)
        .await?
    {
        return Err(OAuth2Error::invalid_grant(BAD_REFRESH));
    }
    Ok(response(provider, minted, &scope))
}
