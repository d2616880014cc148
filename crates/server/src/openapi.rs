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
        (name = "WorkspaceProxies", description = "The workspace-proxy registry the site CSP reads"),
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

/// Documents the answers the gate gives on any operation, whatever its handler says
/// (found by schemathesis): `400` for a malformed path, query or body, and `401` for a
/// missing or bad credential on every operation that needs one. OAuth2 protocol and
/// discovery endpoints answer in the RFC 6749 error shape, the rest in the API's.
pub fn document_gate_answers(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{
        ContentBuilder, Ref, ResponseBuilder, path::Operation, security::SecurityRequirement,
    };

    let answer = |description: &str, schema: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            )
            .build()
    };
    let public = |op: &Operation| {
        op.security
            .as_ref()
            .is_some_and(|s| s.iter().any(|r| *r == SecurityRequirement::default()))
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let protocol = path.starts_with("/oauth2/") || path.starts_with("/.well-known/");
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let is_public = public(op);
            // Client-facing protocol endpoints answer as RFC 6749 §5.2 says; the user's
            // own session endpoints under /oauth2 (revoking an app) answer as the API.
            let schema = if protocol && is_public {
                "OAuth2Error"
            } else {
                "Response"
            };
            let responses = &mut op.responses.responses;
            responses
                .entry("400".to_owned())
                .or_insert_with(|| answer("Malformed path, query or body", schema).into());
            if !is_public {
                responses
                    .entry("401".to_owned())
                    .or_insert_with(|| answer("Missing or invalid credential", schema).into());
            }
            // A JSON body must say it is JSON (issue #29: what a cross-site page posts
            // without a preflight is anything else).
            let json_body = op.request_body.as_ref().is_some_and(|b| match b {
                utoipa::openapi::RefOr::T(b) => b.content.contains_key("application/json"),
                utoipa::openapi::RefOr::Ref(_) => false,
            });
            if json_body && !protocol {
                responses.entry("415".to_owned()).or_insert_with(|| {
                    answer("The body is not declared application/json", schema).into()
                });
            }
        }
    }
}
