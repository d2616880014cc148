//! Token introspection (RFC 7662; decisions.md 29): for confidential clients, about their
//! own tokens only; everything else is `{"active": false}`.

use axum::{
    extract::{Request, State},
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::token as api_token;
use gatehouse_sdk::oauth2::{IntrospectionResponse, OAuth2Error as ErrorBody, TokenType};
use gatehouse_store::{models::now, system::oauth2_provider};

use crate::{
    SharedProvider, client::authenticated_client, error::OAuth2Error, params::read_request,
    revoke::find_grant, secrets::Presented,
};

#[derive(utoipa::ToSchema, serde::Deserialize)]
#[allow(dead_code)]
struct IntrospectionRequest {
    token: String,
    token_type_hint: Option<String>,
}

/// RFC 7662 §2.
#[utoipa::path(
    post,
    path = "/oauth2/introspect",
    tag = "OAuth2",
    operation_id = "oauth2_introspect",
    request_body(content = IntrospectionRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "RFC 7662 §2.2", body = IntrospectionResponse),
        (status = 401, description = "Client authentication failed", body = ErrorBody),
    ),
    security(())
)]
pub async fn introspect(State(provider): State<SharedProvider>, req: Request) -> Response {
    match run(&provider, req).await {
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn run(
    provider: &SharedProvider,
    req: Request,
) -> Result<IntrospectionResponse, OAuth2Error> {
    let (parts, query, form) = read_request(req).await?;
    let (app, _) = authenticated_client(provider, &parts.headers, &query, &form).await?;
    // §2.1: the endpoint MUST require authorization; a public client has none to give.
    if app.is_public() {
        return Err(OAuth2Error::invalid_client());
    }
    let token = form
        .one("token")?
        .ok_or_else(|| OAuth2Error::invalid_request("missing token parameter"))?;
    let inactive = IntrospectionResponse::default();
    let Some(row) = find_grant(provider, token).await? else {
        return Ok(inactive);
    };
    let now = now();
    if row.app_id != app.id || row.rotated_at.is_some() || row.expires_at <= now {
        return Ok(inactive);
    }
    let Some(key_id) = row.api_key_id.as_deref() else {
        return Ok(inactive);
    };
    let Some(key) = provider
        .store
        .api_key_for_auth(oauth2_provider(), key_id)
        .await?
    else {
        return Ok(inactive);
    };
    let is_refresh = Presented::parse(token).is_some();
    if !is_refresh && (api_token::split(token).is_err() || key.key.expires_at <= now) {
        return Ok(inactive);
    }
    let (scope, exp, iat, token_type) = if is_refresh {
        (row.scope.clone(), row.expires_at, row.created_at, None)
    } else {
        (
            key.key.scopes.join(" "),
            key.key.expires_at,
            key.key.created_at,
            Some(TokenType::Bearer),
        )
    };
    Ok(IntrospectionResponse {
        active: true,
        scope: Some(scope),
        client_id: Some(app.id.to_string()),
        username: Some(key.username.clone()),
        token_type,
        exp: Some(exp.timestamp()),
        iat: Some(iat.timestamp()),
        sub: Some(row.user_id.to_string()),
        aud: Some(
            provider
                .resources
                .audience_of(row.resource_uri.as_deref())
                .to_owned(),
        ),
        iss: Some(provider.issuer.clone()),
    })
}
