//! Discovery: authorization server metadata (RFC 8414) and protected resource metadata
//! (RFC 9728; decisions.md 26). Both stay cacheable (spec/oauth2.md §1.4 rule 14).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use gatehouse_rbac::PUBLIC_SCOPES;
use gatehouse_sdk::{
    Response as Envelope,
    error::messages,
    oauth2::{
        AuthorizationServerMetadata, CodeChallengeMethod, GrantType, ProtectedResourceMetadata,
        ResponseType, TokenEndpointAuthMethod,
    },
};

use crate::{SharedProvider, audience::MCP_PATH, error::OAuth2Error};

fn scopes_supported() -> Vec<String> {
    PUBLIC_SCOPES.iter().map(|s| (*s).to_owned()).collect()
}

async fn build_metadata(
    provider: &SharedProvider,
) -> Result<AuthorizationServerMetadata, OAuth2Error> {
    use TokenEndpointAuthMethod::{ClientSecretBasic, ClientSecretPost};
    let registration = provider
        .dcr_enabled()
        .await?
        .then(|| provider.endpoint("/oauth2/register"));
    Ok(AuthorizationServerMetadata {
        issuer: provider.issuer.clone(),
        authorization_endpoint: provider.endpoint("/oauth2/authorize"),
        token_endpoint: provider.endpoint("/oauth2/tokens"),
        registration_endpoint: registration,
        revocation_endpoint: Some(provider.endpoint("/oauth2/revoke")),
        revocation_endpoint_auth_methods_supported: TokenEndpointAuthMethod::ALL.to_vec(),
        introspection_endpoint: Some(provider.endpoint("/oauth2/introspect")),
        introspection_endpoint_auth_methods_supported: vec![ClientSecretBasic, ClientSecretPost],
        response_types_supported: vec![ResponseType::Code],
        grant_types_supported: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        code_challenge_methods_supported: vec![CodeChallengeMethod::S256],
        scopes_supported: scopes_supported(),
        // `none` stays listed while DCR is off: existing public clients still exchange.
        token_endpoint_auth_methods_supported: TokenEndpointAuthMethod::ALL.to_vec(),
        authorization_response_iss_parameter_supported: true,
    })
}

/// RFC 8414 §3: the authorization server's metadata.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "OAuth2",
    operation_id = "oauth2_authorization_server_metadata",
    responses((status = 200, description = "RFC 8414 metadata", body = AuthorizationServerMetadata)),
    security(())
)]
pub async fn authorization_server(State(provider): State<SharedProvider>) -> Response {
    match build_metadata(&provider).await {
        Ok(doc) => axum::Json(doc).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The same document under any path suffix (spec/oauth2.md §1.1 rule 1).
pub async fn authorization_server_suffixed(
    State(provider): State<SharedProvider>,
    Path(_suffix): Path<String>,
) -> Response {
    authorization_server(State(provider)).await
}

fn resource_document(provider: &SharedProvider, resource: &str, query: bool) -> Response {
    let mut methods = vec!["header".to_owned()];
    if query {
        methods.push("query".to_owned());
    }
    axum::Json(ProtectedResourceMetadata {
        resource: resource.to_owned(),
        authorization_servers: vec![provider.issuer.clone()],
        scopes_supported: scopes_supported(),
        bearer_methods_supported: methods,
    })
    .into_response()
}

/// RFC 9728 §3: the deployment root as a protected resource.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-protected-resource",
    tag = "OAuth2",
    operation_id = "oauth2_protected_resource_metadata",
    responses((status = 200, description = "RFC 9728 metadata", body = ProtectedResourceMetadata)),
    security(())
)]
pub async fn protected_resource(State(provider): State<SharedProvider>) -> Response {
    resource_document(&provider, &provider.issuer, true)
}

/// RFC 9728 §3.1: the path-inserted form describes the resource at that path, so the
/// returned `resource` equals the URL the client derived it from (§3.3). Only the MCP
/// endpoint is a protected resource with a path.
pub async fn protected_resource_suffixed(
    State(provider): State<SharedProvider>,
    Path(suffix): Path<String>,
) -> Response {
    let path = format!("/{}", suffix.trim_end_matches('/'));
    if path == MCP_PATH {
        // MCP: tokens travel in the Authorization header only.
        return resource_document(&provider, &provider.endpoint(MCP_PATH), false);
    }
    (
        StatusCode::NOT_FOUND,
        axum::Json(Envelope::message(messages::ROUTE_NOT_FOUND)),
    )
        .into_response()
}
