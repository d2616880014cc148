//! The OpenAPI document's frame: title, security scheme, tags. Operations come from the
//! router.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Gatehouse API", description = "Coder-compatible control-plane API: users, keys and the request gate."),
    modifiers(&SessionTokenScheme),
    security(("CoderSessionToken" = [])),
    tags(
        (name = "Users", description = "Users and their API keys"),
        (name = "Authorization", description = "Login, logout and scopes"),
        (name = "Organizations", description = "Organizations"),
        (name = "Members", description = "Organization members and role assignment"),
        (name = "Files", description = "Uploaded files: echo plans and archives"),
        (name = "Templates", description = "Templates and template versions"),
        (name = "Workspaces", description = "Workspaces"),
        (name = "Builds", description = "Workspace builds"),
        (name = "Agents", description = "The workspace-agent API (agent token)"),
        (name = "Tasks", description = "AI tasks and the workspaces that run them"),
    )
)]
pub struct ApiDoc;

struct SessionTokenScheme;

impl Modify for SessionTokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "CoderSessionToken",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("Coder-Session-Token"))),
        );
    }
}
