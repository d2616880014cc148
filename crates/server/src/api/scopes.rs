//! `GET /api/v2/auth/scopes`: the public scope catalog (unauthenticated).

use axum::http::StatusCode;
use gatehouse_httpmw::Json;
use gatehouse_rbac::PUBLIC_SCOPES;
use gatehouse_sdk::apikeys::ExternalScopes;

/// List the scopes a token may be created with.
#[utoipa::path(
    get,
    path = "/api/v2/auth/scopes",
    tag = "Authorization",
    security(()),
    responses((status = 200, description = "The public scope catalog, sorted", body = ExternalScopes))
)]
pub async fn external_scopes() -> Json<ExternalScopes> {
    Json(
        StatusCode::OK,
        ExternalScopes {
            external: PUBLIC_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        },
    )
}
