//! The OpenAPI document: a snapshot, and a sweep proving every secured operation
//! answers 401 without credentials while public ones are exactly the checked-in list.

use axum::http::StatusCode;
use serde_json::Value;

use crate::harness::TestApp;

/// Operations that need no credentials (decisions.md 42).
const PUBLIC_OPERATIONS: &[&str] = &[
    "GET /.well-known/oauth-authorization-server",
    "GET /.well-known/oauth-protected-resource",
    "GET /api/v2/auth/scopes",
    "GET /api/v2/users/first",
    "GET /api/v2/users/oidc/callback",
    "GET /oauth2/authorize",
    "POST /api/v2/users/first",
    "POST /api/v2/users/login",
    "POST /oauth2/authorize",
    "POST /oauth2/introspect",
    "POST /oauth2/register",
    "POST /oauth2/revoke",
    "POST /oauth2/tokens",
];

async fn document(app: &TestApp) -> Value {
    let res = app.get("/api/v2/openapi.json").send().await;
    assert_eq!(res.status, StatusCode::OK);
    res.json()
}

#[tokio::test]
async fn openapi_snapshot() {
    let app = TestApp::sqlite().await;
    let doc = document(&app).await;
    insta::assert_json_snapshot!("openapi", doc);
}

/// Operations an unprivileged member may call even when they name someone else's
/// objects, because they act on the caller only or list what the caller may see.
const SELF_SERVICE_OPERATIONS: &[&str] = &[
    "DELETE /oauth2/tokens",
    "GET /api/v2/experiments",
    "GET /api/v2/oauth2-provider/apps",
    "GET /api/v2/oauth2-provider/apps/{app}",
    "GET /api/v2/organizations",
    "GET /api/v2/tasks",
    "GET /api/v2/templates",
    "GET /api/v2/users/roles",
    "GET /api/v2/workspaceproxies",
    "GET /api/v2/workspaces",
    "POST /api/v2/files",
    "POST /api/v2/users/logout",
];

crate::on_both_backends!(
    every_secured_operation_answers_401_without_credentials,
    unprivileged_member_gets_403_or_404_everywhere
);

/// Every (method, path) in the document with whether it is public.
fn operations(doc: &Value) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            // An empty requirement object (`security: [{}]`) marks a public operation.
            let public = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(serde_json::Map::is_empty))
            });
            out.push((method.to_uppercase(), path.clone(), public));
        }
    }
    out
}

async fn every_secured_operation_answers_401_without_credentials(app: TestApp) {
    let doc = document(&app).await;
    let mut public = Vec::new();
    let mut checked = 0;
    for (method, path, is_public) in operations(&doc) {
        let name = format!("{method} {path}");
        if is_public {
            public.push(name);
            continue;
        }
        let concrete = path
            .replace("{user}", "me")
            .replace("{keyid}", "AAAAAAAAAA")
            .replace("{keyname}", "x")
            .replace("{organization}", "default")
            .replace("{workspacename}", "dev")
            .replace("{client_id}", "7c9e6679-7425-40de-944b-e07fc1f90ae7");
        let concrete = [
            "{app}",
            "{secret}",
            "{fileID}",
            "{templateversion}",
            "{template}",
            "{workspacebuild}",
            "{workspaceagent}",
            "{workspace}",
        ]
        .iter()
        .fold(concrete, |p, param| {
            p.replace(param, "7c9e6679-7425-40de-944b-e07fc1f90ae7")
        });
        let res = app.req(method.parse().unwrap(), &concrete).send().await;
        assert_eq!(
            res.status,
            StatusCode::UNAUTHORIZED,
            "{name}: {}",
            res.text()
        );
        // ... and the document says so (schemathesis checks answers against it).
        let documented = &doc["paths"][&path][method.to_lowercase()]["responses"];
        assert!(documented["401"].is_object(), "{name}: 401 undocumented");
        assert!(documented["400"].is_object(), "{name}: 400 undocumented");
        // Agent routes answer without a challenge (spec/auth.md §5.1 step 8).
        let agent_route = path.starts_with("/api/v2/workspaceagents/me/");
        assert_eq!(
            res.header("www-authenticate").is_some(),
            !agent_route,
            "{name}"
        );
        checked += 1;
    }
    public.sort();
    assert_eq!(public, PUBLIC_OPERATIONS);
    assert!(checked >= 20, "only {checked} secured operations found");
}

/// Objects of the owner's in an organization the unprivileged member is not in.
struct OwnerObjects {
    file: String,
    version: String,
    template: String,
    workspace: String,
    build: String,
    agent: String,
    oauth2_app: String,
    oauth2_secret: String,
}

async fn owner_objects(app: &TestApp, owner: &str) -> OwnerObjects {
    let plan = serde_json::json!({"resources": [{"name": "dev", "type": "echo_container", "agents": [
        {"name": "main", "auth_token": uuid::Uuid::new_v4()}]}]});
    let file = app
        .post("/api/v2/files")
        .token(owner)
        .body_with_type("application/json", &plan.to_string())
        .send()
        .await
        .json();
    let file = file["hash"].as_str().unwrap().to_owned();
    let version = app
        .post("/api/v2/organizations/research/templateversions")
        .token(owner)
        .json(
            &serde_json::json!({"storage_method": "file", "file_id": file, "provisioner": "echo"}),
        )
        .send()
        .await
        .json();
    let version = version["id"].as_str().unwrap().to_owned();
    while app.state.provisioner.run_once().await.unwrap() {}
    let template = app
        .post("/api/v2/organizations/research/templates")
        .token(owner)
        .json(&serde_json::json!({"name": "secret", "template_version_id": version}))
        .send()
        .await
        .json();
    let template = template["id"].as_str().unwrap().to_owned();
    let workspace = app
        .post("/api/v2/users/me/workspaces")
        .token(owner)
        .json(&serde_json::json!({"template_id": template, "name": "dev"}))
        .send()
        .await
        .json();
    let build = workspace["latest_build"]["id"].as_str().unwrap().to_owned();
    let workspace = workspace["id"].as_str().unwrap().to_owned();
    while app.state.provisioner.run_once().await.unwrap() {}
    let agent = crate::workspaces::first_agent_id(app, owner, &workspace).await;
    let oauth2_app = app
        .post("/api/v2/oauth2-provider/apps")
        .token(owner)
        .json(&serde_json::json!({"name": "owners-app", "redirect_uris": ["https://owner.example.com/cb"]}))
        .send()
        .await
        .json();
    let oauth2_app = oauth2_app["id"].as_str().unwrap().to_owned();
    let oauth2_secret = app
        .post(&format!(
            "/api/v2/oauth2-provider/apps/{oauth2_app}/secrets"
        ))
        .token(owner)
        .send()
        .await
        .json();
    let oauth2_secret = oauth2_secret["id"].as_str().unwrap().to_owned();
    OwnerObjects {
        oauth2_app,
        oauth2_secret,
        file,
        version,
        template,
        workspace,
        build,
        agent,
    }
}

/// A body that passes validation, so the answer is about authorization.
fn body_for(method: &str, path: &str, org: &str, version: &str) -> Option<Value> {
    match (method, path) {
        ("POST", "/api/v2/tasks/{user}") => {
            Some(serde_json::json!({"template_version_id": version, "input": "x"}))
        }
        ("POST", "/api/v2/users") => Some(serde_json::json!({
            "email": "new@example.com", "username": "newbie", "password": crate::harness::OWNER_PASSWORD,
            "organization_ids": [org]
        })),
        ("POST", "/api/v2/organizations") => Some(serde_json::json!({"name": "sneaky"})),
        ("POST", "/api/v2/workspaceproxies") => {
            Some(serde_json::json!({"name": "sneaky", "path_app_url": "https://sneaky.example"}))
        }
        (_, p) if p.ends_with("/roles") => Some(serde_json::json!({"roles": []})),
        (_, p) if p.ends_with("/builds") => Some(serde_json::json!({"transition": "stop"})),
        ("POST" | "PUT", _) => Some(serde_json::json!({})),
        _ => None,
    }
}

async fn unprivileged_member_gets_403_or_404_everywhere(app: TestApp) {
    let (owner_id, owner) = app.first_user().await;
    let (_, member) = app.user_with_roles(&owner, "plain", &[]).await;
    let org = app
        .post("/api/v2/organizations")
        .token(&owner)
        .json(&serde_json::json!({"name": "research"}))
        .send()
        .await
        .json();
    let org_id = org["id"].as_str().unwrap().to_owned();
    let owner_token = app
        .token(&owner, serde_json::json!({"token_name": "owners"}))
        .await;
    let key_id = owner_token.split('-').next().unwrap().to_owned();
    let objects = owner_objects(&app, &owner).await;
    let doc = document(&app).await;
    let mut self_service = Vec::new();
    let mut ops = operations(&doc);
    // Logging out ends the member's session, so it goes last.
    ops.sort_by_key(|(method, path, _)| method == "POST" && path == "/api/v2/users/logout");
    let mut failures = Vec::new();
    for (method, path, is_public) in ops {
        // Agent routes take an agent token, not an API key; the 401 sweep covers them.
        // RFC 7592 routes take a registration access token, not a session.
        if is_public
            || path.starts_with("/api/v2/workspaceagents/me/")
            || path.starts_with("/oauth2/clients/")
        {
            continue;
        }
        let name = format!("{method} {path}");
        let concrete = path
            .replace("{user}", &owner_id.to_string())
            .replace("{keyid}", &key_id)
            .replace("{keyname}", "owners")
            .replace("{organization}", &org_id)
            .replace("{fileID}", &objects.file)
            .replace("{templateversion}", &objects.version)
            .replace("{template}", &objects.template)
            .replace("{workspacebuild}", &objects.build)
            .replace("{workspaceagent}", &objects.agent)
            .replace("{workspacename}", "dev")
            .replace("{workspace}", &objects.workspace)
            .replace("{app}", &objects.oauth2_app)
            .replace("{secret}", &objects.oauth2_secret)
            .replace("{workspaceproxy}", "sneaky");
        // A user withdraws an app by naming it.
        let concrete = if path == "/oauth2/tokens" {
            format!("{concrete}?client_id={}", objects.oauth2_app)
        } else {
            concrete
        };
        let mut req = app.req(method.parse().unwrap(), &concrete).token(&member);
        if let Some(body) = body_for(&method, &path, &org_id, &objects.version) {
            req = req.json(&body);
        }
        let res = req.send().await;
        if SELF_SERVICE_OPERATIONS.contains(&name.as_str()) {
            if !res.status.is_success() {
                failures.push(format!("{name}: {} {}", res.status, res.text()));
            }
            self_service.push(name);
            continue;
        }
        if !matches!(res.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND) {
            failures.push(format!(
                "{name} as an unprivileged member: {} {}",
                res.status,
                res.text()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    self_service.sort();
    assert_eq!(
        self_service, SELF_SERVICE_OPERATIONS,
        "the self-service list is stale"
    );
    // And nothing changed: the owner's token still works, no user or org was created.
    assert_eq!(
        app.get("/api/v2/users/me")
            .token(&owner_token)
            .send()
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v2/users/newbie")
            .token(&owner)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v2/organizations/sneaky")
            .token(&owner)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}
