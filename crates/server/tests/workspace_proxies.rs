//! The workspace-proxy registry (decisions.md 41) and the site CSP that reads it
//! (spec/ops.md §7.1.5).

use axum::http::StatusCode;
use serde_json::json;

use crate::{
    harness::{TestApp, TestResponse},
    on_both_backends,
};

on_both_backends!(proxies_are_registered_by_admins_and_join_the_csp);

async fn login_csp(app: &TestApp) -> String {
    let res = app.get("/login").send().await;
    assert_eq!(res.status, StatusCode::OK);
    res.header("content-security-policy").unwrap().to_owned()
}

async fn register(app: &TestApp, token: &str, body: &serde_json::Value) -> TestResponse {
    app.post("/api/v2/workspaceproxies")
        .token(token)
        .json(body)
        .send()
        .await
}

async fn delete_eu(app: &TestApp, token: &str) -> StatusCode {
    app.delete("/api/v2/workspaceproxies/eu")
        .token(token)
        .send()
        .await
        .status
}

async fn proxies_are_registered_by_admins_and_join_the_csp(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (_, member) = app.user_with_roles(&owner, "member", &[]).await;
    let body = json!({
        "name": "eu",
        "display_name": "Europe",
        "path_app_url": "https://eu.proxy.example",
        "wildcard_hostname": "*--apps.eu.proxy.example",
    });
    assert!(!login_csp(&app).await.contains("eu.proxy.example"));

    let res = register(&app, &member, &body).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    let res = register(&app, &owner, &body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let proxy = res.json()["proxy"].clone();
    assert_eq!(proxy["name"], "eu");
    assert_eq!(proxy["display_name"], "Europe");
    assert_eq!(proxy["path_app_url"], "https://eu.proxy.example");
    assert_eq!(proxy["healthy"], false);
    assert_eq!(proxy["status"]["status"], "unregistered");
    let res = register(&app, &owner, &body).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());

    for (field, value) in [
        ("name", json!("primary")),
        ("name", json!("has space")),
        ("path_app_url", json!("eu.proxy.example")),
        ("path_app_url", json!("ftp://eu.proxy.example")),
        ("wildcard_hostname", json!("apps.*.example")),
        ("wildcard_hostname", json!("https://*.example")),
    ] {
        let mut bad = body.clone();
        bad["name"] = json!("other");
        bad[field] = value.clone();
        let res = register(&app, &owner, &bad).await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{field} {value}: {}",
            res.text()
        );
        assert_eq!(
            res.json()["validations"][0]["field"],
            field,
            "{}",
            res.text()
        );
    }

    // Every member may see the registry.
    let res = app
        .get("/api/v2/workspaceproxies")
        .token(&member)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["regions"][0]["id"], proxy["id"]);

    // The CSP lets the proxy's apps be framed and the proxy be reached, at once.
    let csp = login_csp(&app).await;
    assert!(
        csp.contains("frame-src 'self' *.eu.proxy.example;"),
        "{csp}"
    );
    assert!(
        csp.contains(
            "wss://eu.proxy.example ws://eu.proxy.example https://eu.proxy.example http://eu.proxy.example"
        ),
        "{csp}"
    );

    assert_eq!(delete_eu(&app, &member).await, StatusCode::FORBIDDEN);
    assert_eq!(delete_eu(&app, &owner).await, StatusCode::OK);
    assert!(!login_csp(&app).await.contains("eu.proxy.example"));
    assert_eq!(delete_eu(&app, &owner).await, StatusCode::NOT_FOUND);
    let res = app
        .get("/api/v2/workspaceproxies")
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.json()["regions"], json!([]));
}

/// Two replicas on one PostgreSQL database: a proxy registered or removed through one
/// reaches the other's CSP as soon as the registry's notification arrives, well inside
/// the one-minute backstop reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_registered_on_one_replica_reaches_the_others_csp() {
    let Some(a) = TestApp::postgres().await else {
        return;
    };
    let b = a.replica().await.unwrap();
    let _refresh = gatehouse_server::proxy_hosts::spawn_proxy_refresh(
        b.state.store.clone(),
        b.state.csp_hosts.proxies.clone(),
    );
    let (_, owner) = a.first_user().await;
    let body = json!({
        "name": "eu",
        "display_name": "Europe",
        "path_app_url": "https://eu.proxy.example",
        "wildcard_hostname": "*--apps.eu.proxy.example",
    });
    assert!(!login_csp(&b).await.contains("eu.proxy.example"));
    let res = register(&a, &owner, &body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    until_csp(&b, true).await;
    assert_eq!(delete_eu(&a, &owner).await, StatusCode::OK);
    until_csp(&b, false).await;
}

/// Waits (at most 5 s) until `app`'s CSP does or does not name the `eu` proxy.
async fn until_csp(app: &TestApp, names_proxy: bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let csp = login_csp(app).await;
        if csp.contains("eu.proxy.example") == names_proxy {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the other replica's CSP never followed: {csp}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
