//! Token revocation (RFC 7009; spec/oauth2.md §5; decisions.md 28). Revoking either token
//! of a grant revokes the grant: its access and refresh tokens die together (§2.1).

use axum::{
    extract::{Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::{
    audit::{AuditAction, AuditContext, AuditResource},
    token as api_token,
};
use gatehouse_sdk::oauth2::{OAuth2Error as ErrorBody, TokenRevocationRequest};
use gatehouse_store::{models::OAuth2Token, system::oauth2_provider};

use crate::{
    SharedProvider,
    client::authenticated_client,
    error::OAuth2Error,
    params::read_request,
    secrets::{Presented, matches_hash},
};

/// RFC 7009 §2.1.
#[utoipa::path(
    post,
    path = "/oauth2/revoke",
    tag = "OAuth2",
    operation_id = "oauth2_revoke",
    request_body(content = TokenRevocationRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (RFC 7009 §2.2)"),
        (status = 400, description = "Missing token", body = ErrorBody),
        (status = 401, description = "Client authentication failed", body = ErrorBody),
    ),
    security(())
)]
pub async fn revoke(State(provider): State<SharedProvider>, req: Request) -> Response {
    let audit = AuditContext::from_parts(req.extensions(), req.headers());
    match run(&provider, req, audit).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn run(
    provider: &SharedProvider,
    req: Request,
    mut audit: AuditContext,
) -> Result<(), OAuth2Error> {
    let (parts, query, form) = read_request(req).await?;
    // RFC 7009 §2.1: the client authenticates first; nothing is revoked otherwise.
    let (app, _) = authenticated_client(provider, &parts.headers, &query, &form).await?;
    let token = form
        .one("token")?
        .ok_or_else(|| OAuth2Error::invalid_request("missing token parameter"))?;
    // `token_type_hint` is only a hint (§2.1); the token's shape decides.
    if let Some(found) = find_grant(provider, token).await?
        && found.app_id == app.id
    {
        provider
            .store
            .revoke_oauth2_grant(oauth2_provider(), found.user_id, found.grant_id)
            .await?;
        audit.actor = Some(found.user_id);
        let resource = AuditResource::new("oauth2_provider_app", app.id, app.name.clone())
            .with_fields(serde_json::json!({"revoked": "grant", "by": "client (RFC 7009)"}));
        provider
            .audit
            .record(audit.entry(AuditAction::Delete, resource, StatusCode::OK))
            .await;
    }
    // §2.2: unknown, malformed or foreign tokens are answered 200 all the same.
    Ok(())
}

/// The live token row a presented access or refresh token belongs to, if its secret
/// verifies. Shared with introspection.
pub(crate) async fn find_grant(
    provider: &SharedProvider,
    token: &str,
) -> Result<Option<OAuth2Token>, OAuth2Error> {
    let system = oauth2_provider();
    if let Some(presented) = Presented::parse(token) {
        let row = provider
            .store
            .oauth2_token_by_prefix(system, presented.prefix)
            .await?;
        return Ok(row.filter(|r| presented.matches(&r.refresh_hash)));
    }
    let Ok((id, secret)) = api_token::split(token) else {
        return Ok(None);
    };
    let Some(key) = provider.store.api_key_for_auth(system, id).await? else {
        return Ok(None);
    };
    // A normal session token is never revoked here (spec/oauth2.md §5 rule 6).
    if key.key.login_type != "oauth2_provider_app" || !matches_hash(secret, &key.key.hashed_secret)
    {
        return Ok(None);
    }
    Ok(provider.store.oauth2_token_by_api_key(system, id).await?)
}
