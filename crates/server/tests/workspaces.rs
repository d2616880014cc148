//! Templates, workspaces, builds and the agent gate through shutdown (spec/auth.md §5).

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{harness::TestApp, on_both_backends};

on_both_backends!(
    workspace_lifecycle_and_agent_shutdown_window,
    stop_build_that_is_not_the_successor_never_opens_the_window,
    failed_start_never_authenticates,
    template_version_mismatch_closes_the_window,
    deleted_workspace_agents_are_refused,
    bad_plans_and_busy_workspaces_are_refused,
    file_uploads_have_a_body_limit_of_their_own,
    members_reach_only_their_own_workspaces,
    agent_tokens_are_checked,
    agent_routes_cost_one_query,
);

const GENERIC: &str = "The agent cannot authenticate until the workspace provision job has been completed. If the job is no longer running, this agent is invalid.";

fn plan(token: Uuid, stop_delay_ms: u64, fail_start: bool) -> String {
    json!({
        "resources": [{"name": "dev", "type": "echo_container", "agents": [
            {"name": "main", "auth_token": token, "os": "linux", "architecture": "amd64"}
        ]}],
        "apply_delay_ms": {"start": 0, "stop": stop_delay_ms, "delete": 0},
        "fail": {"start": fail_start}
    })
    .to_string()
}

pub(crate) struct World {
    pub(crate) owner: String,
    pub(crate) template: Value,
}

pub(crate) async fn run_jobs(app: &TestApp) {
    while app.state.provisioner.run_once().await.unwrap() {}
}

async fn upload(app: &TestApp, token: &str, body: &str) -> Uuid {
    let res = app
        .post("/api/v2/files")
        .token(token)
        .body_with_type("application/json", body)
        .send()
        .await;
    assert!(
        res.status == StatusCode::CREATED || res.status == StatusCode::OK,
        "{}",
        res.text()
    );
    res.json()["hash"].as_str().unwrap().parse().unwrap()
}

async fn version(app: &TestApp, token: &str, file: Uuid, template: Option<&str>) -> Value {
    let mut body = json!({"storage_method": "file", "file_id": file, "provisioner": "echo"});
    if let Some(t) = template {
        body["template_id"] = json!(t);
    }
    let res = app
        .post("/api/v2/organizations/default/templateversions")
        .token(token)
        .json(&body)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    run_jobs(app).await;
    let v = res.json();
    let res = app
        .get(&format!(
            "/api/v2/templateversions/{}",
            v["id"].as_str().unwrap()
        ))
        .token(token)
        .send()
        .await;
    assert_eq!(res.json()["job"]["status"], "succeeded", "{}", res.text());
    res.json()
}

pub(crate) async fn world(
    app: &TestApp,
    agent_token: Uuid,
    stop_delay_ms: u64,
    fail_start: bool,
) -> World {
    let (_, owner) = app.first_user().await;
    let file = upload(app, &owner, &plan(agent_token, stop_delay_ms, fail_start)).await;
    let v = version(app, &owner, file, None).await;
    let res = app
        .post("/api/v2/organizations/default/templates")
        .token(&owner)
        .json(&json!({"name": "echo", "template_version_id": v["id"]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    World {
        owner,
        template: res.json(),
    }
}

pub(crate) async fn create_workspace(
    app: &TestApp,
    token: &str,
    template: &Value,
    name: &str,
) -> Value {
    let res = app
        .post("/api/v2/users/me/workspaces")
        .token(token)
        .json(&json!({"template_id": template["id"], "name": name}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()
}

pub(crate) async fn build(
    app: &TestApp,
    token: &str,
    workspace: &Value,
    transition: &str,
    version: Option<&str>,
) -> Value {
    let mut body = json!({"transition": transition});
    if let Some(v) = version {
        body["template_version_id"] = json!(v);
    }
    let res = app
        .post(&format!(
            "/api/v2/workspaces/{}/builds",
            workspace["id"].as_str().unwrap()
        ))
        .token(token)
        .json(&body)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()
}

/// The id of the first agent of a workspace's latest build.
pub(crate) async fn first_agent_id(app: &TestApp, token: &str, workspace: &str) -> String {
    let ws = app
        .get(&format!("/api/v2/workspaces/{workspace}"))
        .token(token)
        .send()
        .await
        .json();
    ws["latest_build"]["resources"][0]["agents"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) async fn manifest(app: &TestApp, agent_token: Uuid) -> crate::harness::TestResponse {
    app.get("/api/v2/workspaceagents/me/manifest")
        .header("Coder-Session-Token", &agent_token.to_string())
        .send()
        .await
}

fn assert_refused(res: &crate::harness::TestResponse, detail: &str) {
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    assert_eq!(
        res.json(),
        json!({"message": "Workspace agent not authorized.", "detail": detail})
    );
    assert!(res.header("www-authenticate").is_none());
}

pub(crate) async fn build_status(app: &TestApp, token: &str, build: &Value) -> String {
    let res = app
        .get(&format!(
            "/api/v2/workspacebuilds/{}",
            build["id"].as_str().unwrap()
        ))
        .token(token)
        .send()
        .await;
    res.json()["job"]["status"].as_str().unwrap().to_owned()
}

async fn workspace_lifecycle_and_agent_shutdown_window(app: TestApp) {
    let agent = Uuid::new_v4();
    let w = world(&app, agent, 400, false).await;
    let ws = create_workspace(&app, &w.owner, &w.template, "dev").await;
    assert_eq!(ws["latest_build"]["status"], "pending");
    assert_eq!(ws["latest_build"]["build_number"], 1);
    // The agent of a build that has not run yet does not exist.
    assert_refused(&manifest(&app, agent).await, GENERIC);
    run_jobs(&app).await;
    let ws = app
        .get(&format!(
            "/api/v2/workspaces/{}",
            ws["id"].as_str().unwrap()
        ))
        .token(&w.owner)
        .send()
        .await
        .json();
    assert_eq!(ws["latest_build"]["status"], "running");
    assert_eq!(ws["latest_build"]["job"]["status"], "succeeded");
    assert_eq!(
        ws["latest_build"]["resources"][0]["agents"][0]["name"],
        "main"
    );
    let res = manifest(&app, agent).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["build_number"], 1);
    assert_eq!(res.json()["workspace_name"], "dev");

    // A stop build that stays pending (no daemon has taken it): the start agent still
    // authenticates, against its own build.
    let stop = build(&app, &w.owner, &ws, "stop", None).await;
    assert_eq!(stop["status"], "pending");
    let res = manifest(&app, agent).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["build_number"], 1);
    // Shutdown scripts can post logs.
    let res = app
        .req("PATCH".parse().unwrap(), "/api/v2/workspaceagents/me/logs")
        .header("Coder-Session-Token", &agent.to_string())
        .json(&json!({"logs": [{"level": "info", "output": "shutting down"}]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    // While the stop build runs (its apply delay), still open.
    let provisioner = app.state.provisioner.clone();
    let running = tokio::spawn(async move { provisioner.run_once().await.unwrap() });
    let mut seen_running = false;
    for _ in 0..100 {
        if build_status(&app, &w.owner, &stop).await == "running" {
            seen_running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen_running, "the stop job never ran");
    let res = manifest(&app, agent).await;
    assert_eq!(
        res.status,
        StatusCode::OK,
        "during a running stop: {}",
        res.text()
    );
    assert!(running.await.unwrap());

    // The stop finished: closed, and the reason says so.
    assert_eq!(build_status(&app, &w.owner, &stop).await, "succeeded");
    assert_refused(
        &manifest(&app, agent).await,
        "The workspace stop build has finished.",
    );
    let ws = app
        .get(&format!(
            "/api/v2/workspaces/{}",
            ws["id"].as_str().unwrap()
        ))
        .token(&w.owner)
        .send()
        .await
        .json();
    assert_eq!(ws["latest_build"]["status"], "stopped");

    // Starting again brings the agent back (same token, new build).
    build(&app, &w.owner, &ws, "start", None).await;
    run_jobs(&app).await;
    let res = manifest(&app, agent).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["build_number"], 3);
}

async fn stop_build_that_is_not_the_successor_never_opens_the_window(app: TestApp) {
    let first_agent = Uuid::new_v4();
    let w = world(&app, first_agent, 0, false).await;
    let ws = create_workspace(&app, &w.owner, &w.template, "dev").await;
    run_jobs(&app).await;
    // A second start (no stop in between) while the first agent is up: the first
    // agent's build is no longer the latest, and the latest is a start.
    let second_agent = Uuid::new_v4();
    let file = upload(&app, &w.owner, &plan(second_agent, 0, false)).await;
    let v2 = version(&app, &w.owner, file, w.template["id"].as_str()).await;
    build(&app, &w.owner, &ws, "start", v2["id"].as_str()).await;
    assert_refused(
        &manifest(&app, first_agent).await,
        "A newer build replaced this agent's build.",
    );
    run_jobs(&app).await;
    // Build 3 is a stop of build 2: only build 2's agent gets the window.
    build(&app, &w.owner, &ws, "stop", v2["id"].as_str()).await;
    assert_eq!(manifest(&app, second_agent).await.status, StatusCode::OK);
    assert_refused(
        &manifest(&app, first_agent).await,
        "A newer build replaced this agent's build.",
    );
}

async fn failed_start_never_authenticates(app: TestApp) {
    let agent = Uuid::new_v4();
    let w = world(&app, agent, 0, true).await;
    let ws = create_workspace(&app, &w.owner, &w.template, "dev").await;
    run_jobs(&app).await;
    let ws = app
        .get(&format!(
            "/api/v2/workspaces/{}",
            ws["id"].as_str().unwrap()
        ))
        .token(&w.owner)
        .send()
        .await
        .json();
    assert_eq!(ws["latest_build"]["status"], "failed");
    assert_eq!(
        ws["latest_build"]["job"]["error"],
        "echo: the plan asks the start transition to fail"
    );
    build(&app, &w.owner, &ws, "stop", None).await;
    assert_refused(&manifest(&app, agent).await, GENERIC);
}

async fn template_version_mismatch_closes_the_window(app: TestApp) {
    let agent = Uuid::new_v4();
    let w = world(&app, agent, 0, false).await;
    let ws = create_workspace(&app, &w.owner, &w.template, "dev").await;
    run_jobs(&app).await;
    let file = upload(&app, &w.owner, &plan(Uuid::new_v4(), 0, false)).await;
    let v2 = version(&app, &w.owner, file, w.template["id"].as_str()).await;
    // Coder's query would let the agent in here; Gatehouse checks the versions match.
    build(&app, &w.owner, &ws, "stop", v2["id"].as_str()).await;
    assert_refused(
        &manifest(&app, agent).await,
        "A newer build replaced this agent's build.",
    );
}

async fn deleted_workspace_agents_are_refused(app: TestApp) {
    let agent = Uuid::new_v4();
    let w = world(&app, agent, 0, false).await;
    let ws = create_workspace(&app, &w.owner, &w.template, "dev").await;
    run_jobs(&app).await;
    build(&app, &w.owner, &ws, "delete", None).await;
    run_jobs(&app).await;
    assert_refused(&manifest(&app, agent).await, "The workspace was deleted.");
    let res = app
        .get(&format!(
            "/api/v2/workspaces/{}",
            ws["id"].as_str().unwrap()
        ))
        .token(&w.owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

/// Files may be up to 10 MiB; every other body stops at 1 MiB (spec/ops.md §1.2).
async fn file_uploads_have_a_body_limit_of_their_own(app: TestApp) {
    let w = world(&app, Uuid::new_v4(), 0, false).await;
    let padded = |bytes: usize| {
        let mut plan: Value = serde_json::from_str(&plan(Uuid::nil(), 0, false)).unwrap();
        plan["padding"] = json!("x".repeat(bytes));
        plan.to_string()
    };
    let res = app
        .post("/api/v2/files")
        .token(&w.owner)
        .body_with_type("application/json", &padded(3 << 20))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let res = app
        .post("/api/v2/files")
        .token(&w.owner)
        .body_with_type("application/json", &padded(11 << 20))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.text());
    let res = app
        .post("/api/v2/users/me/keys/tokens")
        .token(&w.owner)
        .body_with_type(
            "application/json",
            &json!({"token_name": "x".repeat(3 << 20)}).to_string(),
        )
        .send()
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.text());
}

async fn bad_plans_and_busy_workspaces_are_refused(app: TestApp) {
    let w = world(&app, Uuid::new_v4(), 0, false).await;
    let bad = json!({"resources": [{"name": "dev", "type": "x", "agents": [{"name": "main", "auth_token": "not-a-uuid"}]}]}).to_string();
    let res = app
        .post("/api/v2/files")
        .token(&w.owner)
        .body_with_type("application/json", &bad)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({"message": "The echo plan is invalid.", "detail": "resources[0].agents[0].auth_token: must be a UUID",
               "validations": [{"field": "resources[0].agents[0].auth_token", "detail": "must be a UUID"}]})
    );
    let res = app
        .post("/api/v2/files")
        .token(&w.owner)
        .body_with_type("text/plain", "hello")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json()["message"],
        "Unsupported content type header \"text/plain\"."
    );
    // Same bytes again: the same file, 200.
    let body = plan(Uuid::nil(), 0, false);
    let a = app
        .post("/api/v2/files")
        .token(&w.owner)
        .body_with_type("application/json", &body)
        .send()
        .await;
    let b = app
        .post("/api/v2/files")
        .token(&w.owner)
        .body_with_type("application/json", &body)
        .send()
        .await;
    assert_eq!((a.status, b.status), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(a.json()["hash"], b.json()["hash"]);

    let ws = create_workspace(&app, &w.owner, &w.template, "dev").await;
    let res = app
        .post(&format!(
            "/api/v2/workspaces/{}/builds",
            ws["id"].as_str().unwrap()
        ))
        .token(&w.owner)
        .json(&json!({"transition": "stop"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    let res = app
        .post(&format!(
            "/api/v2/workspaces/{}/builds",
            ws["id"].as_str().unwrap()
        ))
        .token(&w.owner)
        .json(&json!({"transition": "reboot"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let res = app
        .post("/api/v2/users/me/workspaces")
        .token(&w.owner)
        .json(&json!({"template_id": w.template["id"], "name": "DEV"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    let res = app
        .post("/api/v2/organizations/default/templateversions")
        .token(&w.owner)
        .json(&json!({"storage_method": "file", "provisioner": "terraform"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let fields: Vec<&str> = res.json()["validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap())
        .map(|f| {
            if f == "provisioner" {
                "provisioner"
            } else {
                "file_id"
            }
        })
        .collect();
    assert_eq!(fields, ["provisioner", "file_id"]);
}

async fn members_reach_only_their_own_workspaces(app: TestApp) {
    let w = world(&app, Uuid::new_v4(), 0, false).await;
    let (_, alice) = app.user_with_roles(&w.owner, "alice", &[]).await;
    let (_, bob) = app.user_with_roles(&w.owner, "bob", &[]).await;
    // Members use the template through the Everyone group's ACL.
    let res = app
        .get(&format!(
            "/api/v2/templates/{}",
            w.template["id"].as_str().unwrap()
        ))
        .token(&alice)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let alices = create_workspace(&app, &alice, &w.template, "mine").await;
    let id = alices["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v2/workspaces/{id}"))
            .token(&bob)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let res = app
        .post(&format!("/api/v2/workspaces/{id}/builds"))
        .token(&bob)
        .json(&json!({"transition": "stop"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/api/v2/workspaces")
            .token(&bob)
            .send()
            .await
            .json()["count"],
        0
    );
    assert_eq!(
        app.get("/api/v2/workspaces")
            .token(&alice)
            .send()
            .await
            .json()["count"],
        1
    );
    assert_eq!(
        app.get("/api/v2/workspaces")
            .token(&w.owner)
            .send()
            .await
            .json()["count"],
        1
    );
    // A token confined to another workspace cannot touch this one.
    let other = Uuid::new_v4();
    let confined = app
        .token(
            &alice,
            json!({"allow_list": [format!("workspace:{other}")]}),
        )
        .await;
    let res = app
        .get(&format!("/api/v2/workspaces/{id}"))
        .header("authorization", &format!("Bearer {confined}"))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    assert!(
        res.header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
    let allowed = app
        .token(
            &alice,
            json!({"allow_list": [format!("workspace:{id}"), "template:*", "user:*"]}),
        )
        .await;
    let res = app
        .get(&format!("/api/v2/workspaces/{id}"))
        .header("authorization", &format!("Bearer {allowed}"))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

async fn agent_tokens_are_checked(app: TestApp) {
    let res = app.get("/api/v2/workspaceagents/me/manifest").send().await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json(),
        json!({"message": "Cookie \"coder_session_token\" must be provided."})
    );
    let res = app
        .get("/api/v2/workspaceagents/me/manifest")
        .header("Coder-Session-Token", "abc")
        .send()
        .await;
    assert_eq!(
        res.json(),
        json!({"message": "Workspace agent token invalid.", "detail": "An agent token must be a valid UUIDv4. (len 3)"})
    );
    assert_refused(&manifest(&app, Uuid::new_v4()).await, GENERIC);
    // An API key is not an agent token.
    let (_, owner) = app.first_user().await;
    let res = app
        .get("/api/v2/workspaceagents/me/manifest")
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

/// Agent authentication is at most one query (none once cached, see auth_cache.rs);
/// `{workspaceagent}` extraction is one query.
async fn agent_routes_cost_one_query(app: TestApp) {
    let agent = Uuid::new_v4();
    let w = world(&app, agent, 0, false).await;
    let ws = create_workspace(&app, &w.owner, &w.template, "dev").await;
    run_jobs(&app).await;
    let store = &app.state.store;
    let before = store.queries();
    assert_eq!(manifest(&app, agent).await.status, StatusCode::OK);
    assert!(
        store.queries() - before <= 1,
        "agent authentication + manifest: one query, or none once cached"
    );

    let agent_id = first_agent_id(&app, &w.owner, ws["id"].as_str().unwrap()).await;
    // The session was used above, so this request makes no bookkeeping write.
    let before = store.queries();
    let res = app
        .get(&format!("/api/v2/workspaceagents/{agent_id}"))
        .token(&w.owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["name"], "main");
    assert_eq!(res.json()["status"], "connecting");
    assert_eq!(
        store.queries() - before,
        1,
        "{{workspaceagent}} only: the used session comes from the authentication cache"
    );

    let (_, bob) = app.user_with_roles(&w.owner, "bob", &[]).await;
    let res = app
        .get(&format!("/api/v2/workspaceagents/{agent_id}"))
        .token(&bob)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(
        res.json(),
        json!({"message": "Agent doesn't exist with that id, or you do not have access to it."})
    );
    let res = app
        .get("/api/v2/workspaceagents/not-a-uuid")
        .token(&bob)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["message"], "Invalid UUID \"not-a-uuid\".");
}

on_both_backends!(prebuilt_workspaces_may_be_deleted_with_prebuilt_rights_only);

/// `prebuilt_workspace.delete` deletes prebuilds, and only prebuilds (spec/auth.md §4.13).
async fn prebuilt_workspaces_may_be_deleted_with_prebuilt_rights_only(app: TestApp) {
    let w = world(&app, Uuid::new_v4(), 0, false).await;
    let prebuilds = "c42fdf75-3097-471c-8c33-fb52454d81c0";
    let res = app
        .post(&format!("/api/v2/users/{prebuilds}/workspaces"))
        .token(&w.owner)
        .json(&json!({"template_id": w.template["id"], "name": "pool-1"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let prebuild = res.json();
    assert_eq!(prebuild["is_prebuild"], true);
    let ordinary = create_workspace(&app, &w.owner, &w.template, "mine").await;
    assert_eq!(ordinary["is_prebuild"], false);
    run_jobs(&app).await;

    let (_, template_admin) = app
        .user_with_roles(&w.owner, "ta", &["template-admin"])
        .await;
    let (_, member) = app.user_with_roles(&w.owner, "mem", &[]).await;
    let delete = |token: String, ws: &Value| {
        let path = format!("/api/v2/workspaces/{}/builds", ws["id"].as_str().unwrap());
        let app = &app;
        async move {
            app.post(&path)
                .token(&token)
                .json(&json!({"transition": "delete"}))
                .send()
                .await
        }
    };
    // A template admin may read any workspace but delete only prebuilds.
    let res = delete(template_admin.clone(), &ordinary).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    assert_eq!(
        res.json(),
        json!({"message": "You do not have permission to delete this workspace."})
    );
    assert_eq!(
        delete(member.clone(), &prebuild).await.status,
        StatusCode::NOT_FOUND
    );
    // Prebuilt rights cover delete (and update), not stop.
    let path = format!(
        "/api/v2/workspaces/{}/builds",
        prebuild["id"].as_str().unwrap()
    );
    let res = app
        .post(&path)
        .token(&template_admin)
        .json(&json!({"transition": "stop"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    let res = delete(template_admin.clone(), &prebuild).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    run_jobs(&app).await;
    let res = app
        .get(&format!(
            "/api/v2/workspaces/{}",
            prebuild["id"].as_str().unwrap()
        ))
        .token(&w.owner)
        .send()
        .await;
    assert_eq!(
        res.status,
        StatusCode::NOT_FOUND,
        "the prebuild was deleted"
    );
}

on_both_backends!(sub_agents_are_created_listed_and_deleted_by_their_parent);

async fn sub_agents_are_created_listed_and_deleted_by_their_parent(app: TestApp) {
    let parent = Uuid::new_v4();
    let w = world(&app, parent, 0, false).await;
    create_workspace(&app, &w.owner, &w.template, "dev").await;
    run_jobs(&app).await;
    let as_agent = |token: Uuid, method: &str, path: &str| {
        app.req(method.parse().unwrap(), path)
            .header("Coder-Session-Token", &token.to_string())
    };
    let res = as_agent(parent, "POST", "/api/v2/workspaceagents/me/subagents")
        .json(&json!({"name": "devcontainer", "directory": "/workspaces/app", "architecture": "amd64", "operating_system": "linux",
                      "display_apps": ["vscode", "WEB_TERMINAL"], "apps": [{"slug": "code-server"}]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let created = res.json();
    assert_eq!(created["agent"]["name"], "devcontainer");
    assert_eq!(created["app_creation_errors"][0]["index"], 0);
    let child: Uuid = created["agent"]["auth_token"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let child_id = created["agent"]["id"].as_str().unwrap().to_owned();
    // The child authenticates like its parent, through the parent's build.
    let res = manifest(&app, child).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["agent_name"], "devcontainer");
    assert_eq!(res.json()["build_number"], 1);
    // The list returns the token again, from its encrypted copy; the database has no
    // plain copy.
    let list = as_agent(parent, "GET", "/api/v2/workspaceagents/me/subagents")
        .send()
        .await
        .json();
    assert_eq!(
        list["agents"],
        json!([{"name": "devcontainer", "id": child_id, "auth_token": child}])
    );
    let dump = crate::dump::dump_database(&app).await;
    assert!(
        !dump.contains(&child.to_string()),
        "sub-agent token stored in plain text"
    );
    // A sub-agent may not manage sub-agents.
    let res = as_agent(child, "GET", "/api/v2/workspaceagents/me/subagents")
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // Validation, with Coder's messages.
    for (body, message) in [
        (json!({"name": ""}), "agent name cannot be empty"),
        (
            json!({"name": "dev_container"}),
            "agent name \"dev_container\" does not match regex \"(?i)^[a-z0-9](-?[a-z0-9])*$\"",
        ),
    ] {
        let res = as_agent(parent, "POST", "/api/v2/workspaceagents/me/subagents")
            .json(&body)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(res.json()["message"], message);
    }
    let res = as_agent(parent, "POST", "/api/v2/workspaceagents/me/subagents")
        .json(&json!({"name": "x", "display_apps": ["teleport"]}))
        .send()
        .await;
    assert_eq!(
        res.json()["validations"],
        json!([{"field": "display_apps[0]", "detail": "\"teleport\" is not a valid display app"}])
    );

    // Another owner's agent cannot delete this child.
    let (_, bob) = app.user_with_roles(&w.owner, "bob", &[]).await;
    let bobs_agent = Uuid::new_v4();
    let file = upload(&app, &w.owner, &plan(bobs_agent, 0, false)).await;
    let v2 = version(&app, &w.owner, file, w.template["id"].as_str()).await;
    let res = app
        .post("/api/v2/users/me/workspaces")
        .token(&bob)
        .json(&json!({"template_version_id": v2["id"], "name": "bobs"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    run_jobs(&app).await;
    let res = as_agent(
        bobs_agent,
        "DELETE",
        &format!("/api/v2/workspaceagents/me/subagents/{child_id}"),
    )
    .send()
    .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
    assert_eq!(manifest(&app, child).await.status, StatusCode::OK);

    let res = as_agent(
        parent,
        "DELETE",
        &format!("/api/v2/workspaceagents/me/subagents/{child_id}"),
    )
    .send()
    .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    assert_refused(&manifest(&app, child).await, GENERIC);
    let res = as_agent(
        parent,
        "DELETE",
        &format!("/api/v2/workspaceagents/me/subagents/{child_id}"),
    )
    .send()
    .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(
        as_agent(parent, "GET", "/api/v2/workspaceagents/me/subagents")
            .send()
            .await
            .json()["agents"],
        json!([])
    );
}

on_both_backends!(provisioner_daemons_pick_up_jobs_when_woken);

/// With daemons running (as `gatehouse server` starts them), builds complete on their own.
async fn provisioner_daemons_pick_up_jobs_when_woken(app: TestApp) {
    let (_, owner) = app.first_user().await;
    app.state
        .provisioner
        .clone()
        .spawn_daemons(2, app.state.jobs.clone());
    let file = upload(&app, &owner, &plan(Uuid::new_v4(), 0, false)).await;
    let res = app
        .post("/api/v2/organizations/default/templateversions")
        .token(&owner)
        .json(&json!({"storage_method": "file", "file_id": file, "provisioner": "echo"}))
        .send()
        .await;
    let version = res.json();
    let mut status = String::new();
    for _ in 0..200 {
        let v = app
            .get(&format!(
                "/api/v2/templateversions/{}",
                version["id"].as_str().unwrap()
            ))
            .token(&owner)
            .send()
            .await
            .json();
        status = v["job"]["status"].as_str().unwrap().to_owned();
        if status == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status, "succeeded", "the import was not picked up");
    let template = app
        .post("/api/v2/organizations/default/templates")
        .token(&owner)
        .json(&json!({"name": "auto", "template_version_id": version["id"]}))
        .send()
        .await
        .json();
    let ws = create_workspace(&app, &owner, &template, "auto").await;
    for _ in 0..200 {
        let w = app
            .get(&format!(
                "/api/v2/workspaces/{}",
                ws["id"].as_str().unwrap()
            ))
            .token(&owner)
            .send()
            .await
            .json();
        status = w["latest_build"]["status"].as_str().unwrap().to_owned();
        if status == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status, "running", "the build was not picked up");
}

on_both_backends!(builds_can_be_canceled);

async fn builds_can_be_canceled(app: TestApp) {
    let agent = Uuid::new_v4();
    let w = world(&app, agent, 300, false).await;
    let ws = create_workspace(&app, &w.owner, &w.template, "dev").await;
    run_jobs(&app).await;
    let cancel = |build: &Value, query: &str| {
        let path = format!(
            "/api/v2/workspacebuilds/{}/cancel{query}",
            build["id"].as_str().unwrap()
        );
        let owner = w.owner.clone();
        let app = &app;
        async move {
            app.req("PATCH".parse().unwrap(), &path)
                .token(&owner)
                .send()
                .await
        }
    };
    // A finished build cannot be canceled.
    let first = ws["latest_build"].clone();
    let res = cancel(&first, "").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());

    // A pending stop is canceled at once, which also ends the agent's shutdown window.
    let stop = build(&app, &w.owner, &ws, "stop", None).await;
    assert_eq!(
        cancel(&stop, "?expect_status=running").await.status,
        StatusCode::PRECONDITION_FAILED
    );
    let res = cancel(&stop, "?expect_status=pending").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        res.json(),
        json!({"message": "Job has been marked as canceled..."})
    );
    assert_eq!(build_status(&app, &w.owner, &stop).await, "canceled");
    assert_refused(
        &manifest(&app, agent).await,
        "The workspace stop build has finished.",
    );
    assert!(
        !app.state.provisioner.run_once().await.unwrap(),
        "a canceled job is never picked up"
    );

    // A running stop becomes canceling, then canceled when the provisioner stops.
    let stop = build(&app, &w.owner, &ws, "stop", None).await;
    let provisioner = app.state.provisioner.clone();
    let running = tokio::spawn(async move { provisioner.run_once().await.unwrap() });
    for _ in 0..100 {
        if build_status(&app, &w.owner, &stop).await == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(cancel(&stop, "").await.status, StatusCode::OK);
    assert_eq!(build_status(&app, &w.owner, &stop).await, "canceling");
    assert!(running.await.unwrap());
    assert_eq!(build_status(&app, &w.owner, &stop).await, "canceled");
    let ws = app
        .get(&format!(
            "/api/v2/workspaces/{}",
            ws["id"].as_str().unwrap()
        ))
        .token(&w.owner)
        .send()
        .await
        .json();
    assert_eq!(ws["latest_build"]["status"], "canceled");

    // Someone who cannot see the workspace gets 404.
    let (_, bob) = app.user_with_roles(&w.owner, "bob", &[]).await;
    let path = format!(
        "/api/v2/workspacebuilds/{}/cancel",
        stop["id"].as_str().unwrap()
    );
    assert_eq!(
        app.req("PATCH".parse().unwrap(), &path)
            .token(&bob)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}
