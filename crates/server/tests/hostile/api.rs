//! The smaller holes of issue #29 (items 10–12): a role write that changes nothing is
//! still a role write, Coder's workspace filter is applied (not ignored), the audit
//! filter reaches the last day there is, and the dangerous CORS switch leaves the OAuth2
//! and MCP endpoints their own policy.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    harness::TestApp,
    on_both_backends,
    workspaces::{create_workspace, run_jobs, world},
};

on_both_backends!(
    a_no_op_role_write_by_a_member_is_refused_like_a_change,
    the_workspace_filter_is_coders,
    the_audit_filter_reaches_the_last_day_there_is,
);

async fn a_no_op_role_write_by_a_member_is_refused_like_a_change(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (_, alice) = app.user_with_roles(&owner, "alice", &[]).await;
    app.user_with_roles(&owner, "bob", &[]).await;
    for roles in [json!([]), json!(["organization-admin"])] {
        let res = app
            .put("/api/v2/organizations/default/members/bob/roles")
            .token(&alice)
            .json(&json!({"roles": roles}))
            .send()
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{roles}: {}", res.text());
    }
    // Both attempts are audited as what they were: refused writes.
    let audit = app
        .get("/api/v2/audit?q=resource_type:organization_member")
        .token(&owner)
        .send()
        .await
        .json();
    let statuses: Vec<&Value> = audit["audit_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["status_code"])
        .collect();
    assert_eq!(statuses, [&json!(403), &json!(403)], "{audit}");
    // An organization admin's no-op write is still answered.
    let (_, carol) = app.user_with_roles(&owner, "carol", &[]).await;
    let res = app
        .put("/api/v2/organizations/default/members/carol/roles")
        .token(&owner)
        .json(&json!({"roles": ["organization-admin"]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let res = app
        .put("/api/v2/organizations/default/members/bob/roles")
        .token(&carol)
        .json(&json!({"roles": []}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

async fn the_workspace_filter_is_coders(app: TestApp) {
    let w = world(&app, Uuid::new_v4(), 0, false).await;
    create_workspace(&app, &w.owner, &w.template, "alpha").await;
    create_workspace(&app, &w.owner, &w.template, "beta-dev").await;
    run_jobs(&app).await;
    let names = |q: &'static str| {
        let app = &app;
        let owner = w.owner.clone();
        async move {
            let q = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
            let res = app
                .get(&format!("/api/v2/workspaces?q={q}"))
                .token(&owner)
                .send()
                .await;
            assert_eq!(res.status, StatusCode::OK, "{q}: {}", res.text());
            let body = res.json();
            let mut names: Vec<String> = body["workspaces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["name"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            assert_eq!(body["count"], names.len(), "{body}");
            names
        }
    };
    assert_eq!(names("owner:me").await, ["alpha", "beta-dev"]);
    assert_eq!(names("owner:nobody").await, Vec::<String>::new());
    assert_eq!(names("name:DEV").await, ["beta-dev"]);
    assert_eq!(names("alpha").await, ["alpha"]);
    assert_eq!(
        names("template:echo status:running").await,
        ["alpha", "beta-dev"]
    );
    assert_eq!(names("status:stopped").await, Vec::<String>::new());
    assert_eq!(names("template:\"other one\"").await, Vec::<String>::new());
    for bad in ["color:red", "status:sleeping", "owner:"] {
        let res = app
            .get(&format!("/api/v2/workspaces?q={bad}"))
            .token(&w.owner)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}: {}", res.text());
        assert_eq!(res.json()["message"], "Invalid workspace search query.");
        assert_eq!(res.json()["validations"][0]["field"], "q");
    }
}

async fn the_audit_filter_reaches_the_last_day_there_is(app: TestApp) {
    let (_, owner) = app.first_user().await;
    app.login(crate::harness::OWNER_EMAIL, crate::harness::OWNER_PASSWORD)
        .await;
    let count = |q: &'static str| {
        let app = &app;
        let owner = owner.clone();
        async move {
            let res = app
                .get(&format!("/api/v2/audit?q={q}"))
                .token(&owner)
                .send()
                .await;
            (res.status, res.json())
        }
    };
    let (status, all) = count("action:login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(all["count"].as_i64().unwrap() >= 1, "{all}");
    let (status, until) = count("action:login%20date_to:9999-12-31").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(until["count"], all["count"], "{until}");
    let (status, from) = count("action:login%20date_from:0001-01-01").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(from["count"], all["count"], "{from}");
    let (status, body) = count("date_to:10000-01-01").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn the_dangerous_cors_switch_leaves_oauth2_and_mcp_their_own_policy() {
    let mut config = crate::harness::config();
    config.dangerous_allow_cors_requests = true;
    config.experiments = vec!["mcp-server-http".to_owned()];
    let app = TestApp::sqlite_with(config).await;
    let preflight = |path: &'static str, method: &'static str| {
        let app = &app;
        async move {
            app.req(Method::OPTIONS, path)
                .header("origin", "https://inspector.example")
                .header("access-control-request-method", method)
                .header(
                    "access-control-request-headers",
                    "content-type,authorization",
                )
                .send()
                .await
        }
    };
    for path in [
        "/oauth2/tokens",
        "/oauth2/register",
        "/oauth2/revoke",
        "/api/experimental/mcp/http",
    ] {
        let res = preflight(path, "POST").await;
        assert!(res.status.is_success(), "{path}: {}", res.status);
        let methods = res
            .header("access-control-allow-methods")
            .unwrap_or_default();
        assert!(methods.contains("POST"), "{path}: {methods:?}");
        assert_eq!(res.header("access-control-allow-origin"), Some("*"));
    }
    // The rest of the API keeps the global policy: any origin may GET, nothing more.
    let res = preflight("/api/v2/users/me", "GET").await;
    assert!(res.status.is_success(), "{}", res.status);
    let methods = res
        .header("access-control-allow-methods")
        .unwrap_or_default();
    assert!(
        methods.contains("GET") && !methods.contains("POST"),
        "{methods:?}"
    );
}
