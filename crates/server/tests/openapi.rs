//! The OpenAPI document: a snapshot; a sweep proving every secured operation answers 401
//! without credentials while public ones are exactly the checked-in list; and a sweep of
//! every route the router registers (issue #25), pinning in a checked-in golden file what
//! an unprivileged member gets and what the credential meant for the route gets.

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

crate::on_both_backends!(every_secured_operation_answers_401_without_credentials);

crate::on_both_backends!(super::EverythingOn; every_route_answers_a_member_and_its_owner_as_pinned);

/// An app with every route registered ([`everything_on`]).
struct EverythingOn(TestApp);

impl gatehouse_test_support::Backends for EverythingOn {
    async fn sqlite() -> EverythingOn {
        let (config, _ca) = everything_on().await;
        EverythingOn(TestApp::sqlite_with(config).await)
    }

    async fn postgres() -> Option<EverythingOn> {
        let (config, _ca) = everything_on().await;
        TestApp::postgres_with(config).await.map(EverythingOn)
    }
}

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
    agent_token: uuid::Uuid,
    task: String,
    subagent: String,
    client_id: String,
    registration_token: String,
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
    let agent_token = uuid::Uuid::new_v4();
    let plan = serde_json::json!({"resources": [{"name": "dev", "type": "echo_container", "agents": [
        {"name": "main", "auth_token": agent_token}]}]});
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
    let task = app
        .post("/api/v2/tasks/me")
        .token(owner)
        .json(
            &serde_json::json!({"template_version_id": version, "input": "sweep", "name": "sweep"}),
        )
        .send()
        .await
        .json();
    let subagent = app
        .post("/api/v2/workspaceagents/me/subagents")
        .header("Coder-Session-Token", &agent_token.to_string())
        .json(&serde_json::json!({"name": "devcontainer", "directory": "/workspaces/app", "architecture": "amd64", "operating_system": "linux"}))
        .send()
        .await
        .json();
    let registered = app
        .post("/oauth2/register")
        .json(&serde_json::json!({"client_name": "sweep", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .json();
    OwnerObjects {
        agent_token,
        task: task["id"].as_str().unwrap().to_owned(),
        subagent: subagent["agent"]["id"].as_str().unwrap().to_owned(),
        client_id: registered["client_id"].as_str().unwrap().to_owned(),
        registration_token: registered["registration_access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
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

/// Routes the OpenAPI document does not describe, with the methods they answer: pages,
/// discovery's path-inserted documents, the MCP endpoint, the AI Bridge, external auth's
/// callbacks. Together with the document's operations they must be every route the
/// router registers. The third column is the answer the route's own caller gets when it
/// is not a 2xx, as the document would say it for a documented one.
const UNDOCUMENTED_OPERATIONS: &[(&str, &str, Option<u16>)] = &[
    (
        "GET",
        "/.well-known/oauth-authorization-server/{*suffix}",
        None,
    ),
    (
        "GET",
        "/.well-known/oauth-protected-resource/{*suffix}",
        None,
    ),
    // Streamable HTTP without a server-initiated stream (MCP 2025-03-26, "GET").
    ("GET", "/api/experimental/mcp/http", Some(405)),
    ("POST", "/api/experimental/mcp/http", None),
    ("GET", "/api/v2/openapi.json", None),
    ("POST", "/api/v2/aibridge/anthropic/v1/{*rest}", None),
    ("POST", "/api/v2/aibridge/openai/v1/{*rest}", None),
    ("GET", "/external-auth/{id}/callback", None),
    ("GET", "/gitauth/{id}/callback", None),
    ("GET", "/healthz", None),
    ("GET", "/login", None),
    // The sweep posts JSON without the form's CSRF token: the form is shown again.
    ("POST", "/login", Some(400)),
    // The alias of /oauth2/tokens; the sweep sends no grant (RFC 6749 §5.2).
    ("POST", "/oauth2/token", Some(400)),
];

/// Everything on, so every route is registered: the AI Bridge (to a real model API over
/// HTTPS, trusted through its test CA), the MCP endpoint, one external-auth provider.
/// The CA goes with the config: its file must exist until the app has started.
async fn everything_on() -> (gatehouse_server::config::ServerConfig, crate::tls::TestCa) {
    let ca = crate::tls::TestCa::new("sweep");
    let upstream = crate::tls::serve_https(
        axum::Router::new().route(
            "/{*rest}",
            axum::routing::post(|| async { axum::Json(serde_json::json!({"ok": true})) }),
        ),
        ca.leaf(&["localhost"], crate::tls::Validity::Current),
    )
    .await;
    let base = format!("https://localhost:{}", upstream.port());
    let mut config = crate::harness::config();
    config.ssl_cert_file = Some(ca.file.clone());
    config.aibridge_enabled = true;
    config.aibridge_openai_base_url = format!("{base}/v1/");
    config.aibridge_anthropic_base_url = format!("{base}/");
    config.experiments = vec!["mcp-server-http".to_owned()];
    config.external_auth = gatehouse_server::external_auth::config::parse(vec![
        ("CODER_EXTERNAL_AUTH_0_ID".to_owned(), "git".to_owned()),
        (
            "CODER_EXTERNAL_AUTH_0_CLIENT_ID".to_owned(),
            "git".to_owned(),
        ),
        (
            "CODER_EXTERNAL_AUTH_0_AUTH_URL".to_owned(),
            "https://git.example.com/auth".to_owned(),
        ),
        (
            "CODER_EXTERNAL_AUTH_0_TOKEN_URL".to_owned(),
            "https://git.example.com/token".to_owned(),
        ),
    ])
    .unwrap();
    (config, ca)
}

/// Who a route is meant for, and so which credential the "owner" column uses.
fn credential_for(path: &str) -> &'static str {
    if path.starts_with("/api/v2/workspaceagents/me/") {
        "agent"
    } else if path.starts_with("/oauth2/clients/") {
        "registration"
    } else {
        "owner"
    }
}

async fn every_route_answers_a_member_and_its_owner_as_pinned(app: EverythingOn) {
    let EverythingOn(app) = app;
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
    let mut ops: Vec<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .chain(
            UNDOCUMENTED_OPERATIONS
                .iter()
                .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned())),
        )
        .collect();
    // Every route the router registers is swept, and nothing it does not.
    let swept: std::collections::BTreeSet<&str> = ops.iter().map(|(_, p)| p.as_str()).collect();
    let registered: std::collections::BTreeSet<&str> = app.router.route_patterns().collect();
    assert_eq!(swept, registered, "routes and the sweep disagree");
    // Calls that delete go last, the deepest path first (a secret before its app), and
    // the logout after them, so every call finds what it names and the owner's column is
    // the same every run.
    ops.sort_by(|(ma, pa), (mb, pb)| {
        let key = |m: &str, p: &str| (p == "/api/v2/users/logout", m == "DELETE");
        key(ma, pa)
            .cmp(&key(mb, pb))
            .then_with(|| match ma == "DELETE" && mb == "DELETE" {
                true => pb.cmp(pa),
                false => pa.cmp(pb),
            })
            .then_with(|| ma.cmp(mb))
    });
    let concrete = |path: &str| {
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
            .replace("{workspaceproxy}", "sneaky")
            .replace("{client_id}", &objects.client_id)
            .replace("{task}", &objects.task)
            .replace("{subagent}", &objects.subagent)
            .replace("{id}", "git")
            .replace("{*rest}", "chat/completions")
            .replace("{*suffix}", "api/experimental/mcp/http");
        match path {
            // A user withdraws an app by naming it.
            "/oauth2/tokens" => format!("{concrete}?client_id={}", objects.oauth2_app),
            // The shortest profile (the default is 30 s).
            "/api/v2/debug/pprof/profile" => format!("{concrete}?seconds=1"),
            _ => concrete,
        }
    };
    let call = |method: &str, path: &str, who: &str| {
        let mut req = app.req(method.parse().unwrap(), &concrete(path));
        req = match who {
            "member" => req.token(&member),
            "agent" => req.header("Coder-Session-Token", &objects.agent_token.to_string()),
            "registration" => req.header(
                "authorization",
                &format!("Bearer {}", objects.registration_token),
            ),
            _ => req.token(&owner),
        };
        if let Some(body) = body_for(method, path, &org_id, &objects.version) {
            req = req.json(&body);
        }
        req.send()
    };
    // The member first: nothing it does may change what the owner sees.
    let mut member_status = Vec::new();
    for (method, path) in &ops {
        member_status.push(call(method, path, "member").await.status);
    }
    let mut golden = String::new();
    let mut failures = Vec::new();
    for ((method, path), member) in ops.iter().zip(member_status) {
        let who = credential_for(path);
        let mut res = call(method, path, who).await;
        // One profile at a time per process: another test's may be running (409).
        for _ in 0..100 {
            if res.status != axum::http::StatusCode::CONFLICT || !path.contains("/pprof/") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            res = call(method, path, who).await;
        }
        let documented = doc["paths"][path.as_str()][method.to_lowercase()]["responses"]
            [res.status.as_str()]
        .is_object()
            || UNDOCUMENTED_OPERATIONS
                .iter()
                .any(|(m, p, s)| m == method && p == path && *s == Some(res.status.as_u16()));
        if !(res.status.is_success() || res.status.is_redirection() || documented) {
            failures.push(format!(
                "{method} {path} as {who}: {} (neither 2xx nor documented) {}",
                res.status,
                res.text()
            ));
        }
        golden.push_str(&format!(
            "{method} {path}: member {} / {who} {}\n",
            member.as_u16(),
            res.status.as_u16()
        ));
    }
    assert!(failures.is_empty(), "{failures:#?}");
    insta::assert_snapshot!("route_sweep", golden);
}
