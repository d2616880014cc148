//! Tasks: lookup by id then name, deletion, and the `{user}` rule for task routes.

use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{harness::TestApp, on_both_backends};

on_both_backends!(
    task_lookup_rules,
    deleting_a_task_hides_it_and_deletes_its_workspace,
    task_user_param_hides_users_in_no_organization
);

/// An owner, a template usable by everyone, and its version id.
async fn setup(app: &TestApp) -> (String, String) {
    let (_, owner) = app.first_user().await;
    let plan = json!({"resources": [{"name": "dev", "type": "echo_container", "agents": [{"name": "main", "auth_token": Uuid::new_v4()}]}]});
    let file = app
        .post("/api/v2/files")
        .token(&owner)
        .body_with_type("application/json", &plan.to_string())
        .send()
        .await
        .json();
    let version = app
        .post("/api/v2/organizations/default/templateversions")
        .token(&owner)
        .json(&json!({"storage_method": "file", "file_id": file["hash"], "provisioner": "echo"}))
        .send()
        .await
        .json();
    while app.state.provisioner.run_once().await.unwrap() {}
    let res = app
        .post("/api/v2/organizations/default/templates")
        .token(&owner)
        .json(&json!({"name": "agentic", "template_version_id": version["id"]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    (owner, version["id"].as_str().unwrap().to_owned())
}

async fn create_task(
    app: &TestApp,
    token: &str,
    user: &str,
    version: &str,
    name: &str,
) -> crate::harness::TestResponse {
    app.post(&format!("/api/v2/tasks/{user}"))
        .token(token)
        .json(&json!({"template_version_id": version, "input": "fix the bug", "name": name}))
        .send()
        .await
}

async fn task_lookup_rules(app: TestApp) {
    let (owner, version) = setup(&app).await;
    let (_, alice) = app.user_with_roles(&owner, "alice", &[]).await;
    let res = create_task(&app, &alice, "me", &version, "fix-bug").await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let task: Value = res.json();
    assert_eq!(task["name"], "fix-bug");
    assert_eq!(task["initial_prompt"], "fix the bug");
    assert_eq!(task["status"], "pending");
    assert_eq!(task["owner_name"], "alice");
    let id = task["id"].as_str().unwrap().to_owned();
    for path in [id.as_str(), "fix-bug", "FIX-BUG"] {
        let res = app
            .get(&format!("/api/v2/tasks/alice/{path}"))
            .token(&alice)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.text());
        assert_eq!(res.json()["id"], id.as_str());
    }
    while app.state.provisioner.run_once().await.unwrap() {}
    let res = app
        .get(&format!("/api/v2/tasks/me/{id}"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(
        res.json()["status"],
        "initializing",
        "the build ran; the agent has not reported"
    );
    assert_eq!(res.json()["workspace_build_number"], 1);
    assert_eq!(
        app.get(&format!("/api/v2/tasks/alice/{}", Uuid::new_v4()))
            .token(&alice)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // A workspace's name is not a task alias.
    let template = app
        .get("/api/v2/templates")
        .token(&alice)
        .send()
        .await
        .json()[0]["id"]
        .clone();
    let res = app
        .post("/api/v2/users/me/workspaces")
        .token(&alice)
        .json(&json!({"template_id": template, "name": "plain"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(
        app.get("/api/v2/tasks/alice/plain")
            .token(&alice)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // A task named like another task's id loses to the id.
    let res = create_task(&app, &alice, "me", &version, "second").await;
    assert_eq!(res.status, StatusCode::CREATED);
    let res = app
        .get(&format!("/api/v2/tasks/me/{id}"))
        .token(&alice)
        .send()
        .await;
    assert_eq!(res.json()["name"], "fix-bug");
    // Names are unique per owner; an empty task name gets one.
    assert_eq!(
        create_task(&app, &alice, "me", &version, "Fix-Bug")
            .await
            .status,
        StatusCode::CONFLICT
    );
    let res = create_task(&app, &alice, "me", &version, "").await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert!(res.json()["name"].as_str().unwrap().starts_with("task-"));
    // Others' tasks are invisible.
    let (_, bob) = app.user_with_roles(&owner, "bob", &[]).await;
    assert_eq!(
        app.get(&format!("/api/v2/tasks/alice/{id}"))
            .token(&bob)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v2/tasks").token(&bob).send().await.json()["count"],
        0
    );
    assert_eq!(
        app.get("/api/v2/tasks").token(&alice).send().await.json()["count"],
        3
    );
}

async fn deleting_a_task_hides_it_and_deletes_its_workspace(app: TestApp) {
    let (owner, version) = setup(&app).await;
    let task = create_task(&app, &owner, "me", &version, "doomed")
        .await
        .json();
    while app.state.provisioner.run_once().await.unwrap() {}
    let id = task["id"].as_str().unwrap();
    let res = app
        .delete(&format!("/api/v2/tasks/me/{id}"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    for path in [id, "doomed"] {
        assert_eq!(
            app.get(&format!("/api/v2/tasks/me/{path}"))
                .token(&owner)
                .send()
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }
    while app.state.provisioner.run_once().await.unwrap() {}
    let workspace = task["workspace_id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v2/workspaces/{workspace}"))
            .token(&owner)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // The name is free again.
    assert_eq!(
        create_task(&app, &owner, "me", &version, "doomed")
            .await
            .status,
        StatusCode::CREATED
    );
}

async fn task_user_param_hides_users_in_no_organization(app: TestApp) {
    let (owner, version) = setup(&app).await;
    let (_, alice) = app.user_with_roles(&owner, "alice", &[]).await;
    let (_, _dave) = app.user_with_roles(&owner, "dave", &[]).await;
    let (loner_id, _) = app.user_with_roles(&owner, "loner", &[]).await;
    let res = app
        .delete(&format!("/api/v2/organizations/default/members/{loner_id}"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    // Alice sees Dave through their shared organization, so the request gets as far as
    // the permission check on his workspace: 403.
    let res = create_task(&app, &alice, "dave", &version, "for-dave").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    // The loner is in no organization: invisible to Alice, 404.
    let res = create_task(&app, &alice, "loner", &version, "for-loner").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
    // The owner reads users site-wide, so the loner resolves for them.
    let res = app
        .get("/api/v2/tasks/loner/anything")
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let res = create_task(&app, &owner, "loner", &version, "for-loner").await;
    assert_eq!(
        res.status,
        StatusCode::CREATED,
        "owners create for anyone: {}",
        res.text()
    );
}
