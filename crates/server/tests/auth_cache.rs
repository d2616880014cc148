//! The authentication cache (#8): a used key or agent token is served from memory, and
//! every change to what it was built from — revocation, expiry, suspension, a role or
//! membership change; for an agent, a build, its job, the workspace — is refused on the
//! very next request, on one replica (both backends) and across two replicas sharing
//! PostgreSQL.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::{
    harness::{OWNER_PASSWORD, TestApp, TestResponse},
    on_both_backends,
    workspaces::{World, build, build_status, create_workspace, manifest, run_jobs, world},
};

on_both_backends!(
    a_used_key_costs_no_query,
    a_revoked_key_is_refused_on_the_next_request,
    an_expired_key_is_refused_on_the_next_request,
    a_suspended_user_is_refused_on_the_next_request,
    a_removed_role_is_gone_on_the_next_request,
    a_removed_membership_is_gone_on_the_next_request,
    a_used_agent_token_costs_no_query,
    a_cached_agent_is_refused_once_its_stop_build_finishes,
    a_cached_agent_is_refused_once_its_workspace_is_deleted,
    a_cached_agent_is_refused_once_a_newer_build_starts,
);

async fn me(app: &TestApp, token: &str) -> TestResponse {
    app.get("/api/v2/users/me").token(token).send().await
}

/// The owner's session and a fresh API token of theirs, already served from the cache.
async fn owner_with_used_token(app: &TestApp) -> (String, String) {
    let (_, owner) = app.first_user().await;
    let token = app.token(&owner, json!({"token_name": "ci"})).await;
    warm(app, &token).await;
    (owner, token)
}

fn key_id(token: &str) -> &str {
    token.split('-').next().unwrap()
}

/// Uses `token` until it is served from the cache, and proves it: `users/me` costs no
/// database call. The first use is recorded (a write that drops the entry), and on
/// PostgreSQL that write's notification comes back a moment later and drops the refill
/// once more, so it takes a few requests.
async fn warm(app: &TestApp, token: &str) {
    for _ in 0..200 {
        let before = app.state.store.queries();
        let res = me(app, token).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        if app.state.store.queries() == before {
            assert!(app.state.store.auth_cache().get(key_id(token)).is_some());
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("a used key is never answered from the cache");
}

async fn a_used_key_costs_no_query(app: TestApp) {
    let (_, owner) = app.first_user().await;
    warm(&app, &owner).await;
    // A wrong secret for a cached id is still refused: the cache holds the hash.
    let forged = format!("{}-{}", key_id(&owner), "A".repeat(22));
    let res = me(&app, &forged).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["detail"], "API key secret is invalid.");
}

async fn a_revoked_key_is_refused_on_the_next_request(app: TestApp) {
    let (owner, token) = owner_with_used_token(&app).await;
    let res = app
        .delete(&format!("/api/v2/users/me/keys/{}", key_id(&token)))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    let res = me(&app, &token).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["detail"], "API key is invalid.");
}

async fn an_expired_key_is_refused_on_the_next_request(app: TestApp) {
    let (owner, token) = owner_with_used_token(&app).await;
    let res = app
        .put(&format!("/api/v2/users/me/keys/{}/expire", key_id(&token)))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    let res = me(&app, &token).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(
        res.json()["detail"]
            .as_str()
            .unwrap()
            .starts_with("API key expired at"),
        "{}",
        res.text()
    );
}

async fn a_suspended_user_is_refused_on_the_next_request(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (bob_id, bob) = app.user_with_roles(&owner, "bob", &[]).await;
    warm(&app, &bob).await;
    let res = app
        .put(&format!("/api/v2/users/{bob_id}/status/suspend"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_suspended(&app, &bob).await;
    // Reactivated, the key stays revoked (issue #29): the cache must not serve the
    // entry it held while the user was suspended.
    let res = app
        .put(&format!("/api/v2/users/{bob_id}/status/activate"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let res = me(&app, &bob).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    assert_eq!(res.json()["detail"], "API key is invalid.");
}

async fn assert_suspended(app: &TestApp, token: &str) {
    let res = me(app, token).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    assert_eq!(
        res.json()["message"],
        "User is not active (status = \"suspended\"). Contact an admin to reactivate your account."
    );
}

/// A user-admin may create users; the moment the role is taken away, they may not.
async fn create_user(app: &TestApp, token: &str) -> StatusCode {
    let name = format!("u{}", &Uuid::new_v4().simple().to_string()[..8]);
    app.post("/api/v2/users")
        .token(token)
        .json(&json!({
            "email": format!("{name}@example.com"),
            "username": name,
            "password": OWNER_PASSWORD,
            "organization_ids": [app.state.default_org.id],
        }))
        .send()
        .await
        .status
}

async fn a_removed_role_is_gone_on_the_next_request(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (carol_id, carol) = app.user_with_roles(&owner, "carol", &["user-admin"]).await;
    warm(&app, &carol).await;
    assert_eq!(create_user(&app, &carol).await, StatusCode::CREATED);
    let res = app
        .put(&format!("/api/v2/users/{carol_id}/roles"))
        .token(&owner)
        .json(&json!({"roles": []}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(create_user(&app, &carol).await, StatusCode::FORBIDDEN);
}

async fn a_removed_membership_is_gone_on_the_next_request(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (bob_id, bob) = app.user_with_roles(&owner, "bob", &[]).await;
    let res = app
        .post("/api/v2/organizations")
        .token(&owner)
        .json(&json!({"name": "acme"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let res = app
        .post(&format!("/api/v2/organizations/acme/members/{bob_id}"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    warm(&app, &bob).await;
    let res = app
        .get("/api/v2/organizations/acme")
        .token(&bob)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let res = app
        .delete(&format!("/api/v2/organizations/acme/members/{bob_id}"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    let res = app
        .get("/api/v2/organizations/acme")
        .token(&bob)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
}

/// Waits until `replica` has dropped its entry for `token` on a notification from the
/// database, and returns how long that took.
async fn propagation(replica: &TestApp, token: &str, since: Instant) -> Duration {
    let cache = replica.state.store.auth_cache();
    dropped_within(since, || cache.get(key_id(token)).is_some()).await
}

/// Waits (at most 5 s) until `still_cached` turns false, and returns how long that took.
async fn dropped_within(since: Instant, still_cached: impl Fn() -> bool) -> Duration {
    let deadline = since + Duration::from_secs(5);
    while still_cached() {
        assert!(
            Instant::now() < deadline,
            "the change never reached the other replica"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    since.elapsed()
}

/// Two replicas on one PostgreSQL database: a change made through either one (or
/// behind both, in SQL) reaches the other's cache, and the other's very next request
/// is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_every_replica_sharing_postgres() {
    let Some(a) = TestApp::postgres().await else {
        return;
    };
    let b = a.replica().await.unwrap();
    let (_, owner) = a.first_user().await;

    // Revocation on A.
    let token = a.token(&owner, json!({"token_name": "ci"})).await;
    warm(&b, &token).await;
    let changed = Instant::now();
    let res = a
        .delete(&format!("/api/v2/users/me/keys/{}", key_id(&token)))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    let took = propagation(&b, &token, changed).await;
    let res = me(&b, &token).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    eprintln!("revocation reached the other replica in {took:?}");

    // Suspension on A.
    let (bob_id, bob) = a.user_with_roles(&owner, "bob", &[]).await;
    warm(&b, &bob).await;
    let changed = Instant::now();
    let res = a
        .put(&format!("/api/v2/users/{bob_id}/status/suspend"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    propagation(&b, &bob, changed).await;
    assert_suspended(&b, &bob).await;

    // A role change on B reaches A.
    let (carol_id, carol) = a.user_with_roles(&owner, "carol", &["user-admin"]).await;
    warm(&a, &carol).await;
    assert_eq!(create_user(&a, &carol).await, StatusCode::CREATED);
    let changed = Instant::now();
    let res = b
        .put(&format!("/api/v2/users/{carol_id}/roles"))
        .token(&owner)
        .json(&json!({"roles": []}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    propagation(&a, &carol, changed).await;
    assert_eq!(create_user(&a, &carol).await, StatusCode::FORBIDDEN);

    // A change no replica made (an operator's SQL) reaches both.
    let (_, dave) = a.user_with_roles(&owner, "dave", &[]).await;
    warm(&a, &dave).await;
    warm(&b, &dave).await;
    let changed = Instant::now();
    let gatehouse_store::Db::Postgres(pool) = a.state.store.db() else {
        unreachable!("a PostgreSQL app")
    };
    sqlx::query("UPDATE users SET status = 'suspended' WHERE username = 'dave'")
        .execute(pool)
        .await
        .unwrap();
    propagation(&a, &dave, changed).await;
    propagation(&b, &dave, changed).await;
    assert_suspended(&a, &dave).await;
    assert_suspended(&b, &dave).await;
}

/// The dynamic-registration setting is cached like a key: reading it again costs no
/// query, and a change through one replica reaches the other's very next registration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_settings_are_cached_and_reach_every_replica() {
    let Some(a) = TestApp::postgres().await else {
        return;
    };
    let b = a.replica().await.unwrap();
    b.wait_for_auth_cache().await;
    let (_, owner) = a.first_user().await;
    assert_eq!(register(&b).await.status, StatusCode::CREATED);
    // Other tests share the database's notification channel, and a `*` from one of them
    // empties this cache too: retry until one request is served from it.
    let mut served_from_cache = false;
    for _ in 0..50 {
        let before = b.state.store.queries();
        let res = b
            .get("/.well-known/oauth-authorization-server")
            .send()
            .await;
        assert_eq!(res.status, StatusCode::OK);
        assert!(res.json()["registration_endpoint"].is_string());
        if b.state.store.queries() == before {
            served_from_cache = true;
            break;
        }
    }
    assert!(served_from_cache, "the setting is read on every request");

    let changed = Instant::now();
    let res = a
        .put("/api/v2/oauth2-provider/settings")
        .token(&owner)
        .json(&json!({"dynamic_client_registration_enabled": false}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let deadline = changed + Duration::from_secs(5);
    while b
        .state
        .store
        .auth_cache()
        .site_config("oauth2_dynamic_client_registration_enabled")
        .is_some()
    {
        assert!(
            Instant::now() < deadline,
            "the change never reached the other replica"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(register(&b).await.status, StatusCode::FORBIDDEN);
    let res = b
        .get("/.well-known/oauth-authorization-server")
        .send()
        .await;
    assert!(
        res.json().get("registration_endpoint").is_none(),
        "{}",
        res.text()
    );
}

async fn register(app: &TestApp) -> TestResponse {
    app.post("/oauth2/register")
        .json(&json!({"redirect_uris": ["https://client.example/cb"]}))
        .send()
        .await
}

fn agent_hash(token: Uuid) -> [u8; 32] {
    gatehouse_httpmw::token::agent_token_hash(token)
}

/// Uses an agent token until it is served from the cache, and proves it: the manifest
/// costs no database call. On PostgreSQL the notifications of the build that made the
/// agent may come back after the first fill and drop it, so it takes a few requests.
async fn warm_agent(app: &TestApp, token: Uuid) {
    for _ in 0..200 {
        let before = app.state.store.queries();
        let res = manifest(app, token).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        if app.state.store.queries() == before {
            assert!(
                app.state
                    .store
                    .auth_cache()
                    .agent(&agent_hash(token))
                    .is_some()
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("a used agent token is never answered from the cache");
}

/// A running workspace whose agent's token has been used (and so is cached); its stop
/// builds take `stop_delay_ms` to apply.
async fn running_agent(app: &TestApp, stop_delay_ms: u64) -> (World, serde_json::Value, Uuid) {
    let agent = Uuid::new_v4();
    let w = world(app, agent, stop_delay_ms, false).await;
    let ws = create_workspace(app, &w.owner, &w.template, "dev").await;
    run_jobs(app).await;
    warm_agent(app, agent).await;
    (w, ws, agent)
}

fn assert_agent_refused(res: &TestResponse, detail: &str) {
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    assert_eq!(
        res.json(),
        json!({"message": "Workspace agent not authorized.", "detail": detail})
    );
}

async fn a_used_agent_token_costs_no_query(app: TestApp) {
    let (_, ws, agent) = running_agent(&app, 0).await;
    let res = manifest(&app, agent).await;
    assert_eq!(res.json()["workspace_id"], ws["id"], "{}", res.text());
    assert_eq!(res.json()["build_number"], 1);
    // Another token is not served from this entry.
    let stranger = Uuid::new_v4();
    assert_eq!(
        manifest(&app, stranger).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn a_cached_agent_is_refused_once_its_stop_build_finishes(app: TestApp) {
    let (w, ws, agent) = running_agent(&app, 0).await;
    // The pending stop opens the shutdown window: the start's agent still authenticates,
    // and the new build was seen (the entry was rebuilt, not served stale).
    build(&app, &w.owner, &ws, "stop", None).await;
    assert!(
        app.state
            .store
            .auth_cache()
            .agent(&agent_hash(agent))
            .is_none()
    );
    assert_eq!(manifest(&app, agent).await.status, StatusCode::OK);
    warm_agent(&app, agent).await;
    run_jobs(&app).await;
    assert_agent_refused(
        &manifest(&app, agent).await,
        "The workspace stop build has finished.",
    );
}

async fn a_cached_agent_is_refused_once_its_workspace_is_deleted(app: TestApp) {
    let (w, ws, agent) = running_agent(&app, 0).await;
    // A delete build opens no shutdown window: the agent is refused at once.
    build(&app, &w.owner, &ws, "delete", None).await;
    assert_agent_refused(
        &manifest(&app, agent).await,
        "A newer build replaced this agent's build.",
    );
    run_jobs(&app).await;
    assert_agent_refused(&manifest(&app, agent).await, "The workspace was deleted.");
}

async fn a_cached_agent_is_refused_once_a_newer_build_starts(app: TestApp) {
    let (w, ws, agent) = running_agent(&app, 0).await;
    // A start on top of a start: the first build's agent is replaced at once, before
    // the new build has even run.
    build(&app, &w.owner, &ws, "start", None).await;
    assert_agent_refused(
        &manifest(&app, agent).await,
        "A newer build replaced this agent's build.",
    );
}

/// Waits until `replica` has dropped its cached agent on a notification.
async fn agent_propagation(replica: &TestApp, token: Uuid, since: Instant) -> Duration {
    let cache = replica.state.store.auth_cache();
    dropped_within(since, || cache.agent(&agent_hash(token)).is_some()).await
}

/// Two replicas on one PostgreSQL database: a build finished by either one, or an
/// agent retired behind both in SQL, reaches the other's cached agent, and the other's
/// very next agent request is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_changes_reach_every_replica_sharing_postgres() {
    let Some(a) = TestApp::postgres().await else {
        return;
    };
    let b = a.replica().await.unwrap();
    let (w, ws, agent) = running_agent(&a, 1500).await;

    // A stop build finished on A closes the window on B: B's agent is cached while the
    // stop runs, and dropped when it ends.
    let stop = build(&a, &w.owner, &ws, "stop", None).await;
    let provisioner = a.state.provisioner.clone();
    let running = tokio::spawn(async move { provisioner.run_once().await.unwrap() });
    while build_status(&a, &w.owner, &stop).await != "running" {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    warm_agent(&b, agent).await;
    assert!(running.await.unwrap());
    let changed = Instant::now();
    let took = agent_propagation(&b, agent, changed).await;
    assert_agent_refused(
        &manifest(&b, agent).await,
        "The workspace stop build has finished.",
    );
    eprintln!("a finished stop build reached the other replica in {took:?}");

    // Started again; an operator retires the agent in SQL: both replicas drop it.
    build(&a, &w.owner, &ws, "start", None).await;
    run_jobs(&a).await;
    warm_agent(&a, agent).await;
    warm_agent(&b, agent).await;
    let changed = Instant::now();
    let gatehouse_store::Db::Postgres(pool) = a.state.store.db() else {
        unreachable!("a PostgreSQL app")
    };
    sqlx::query("UPDATE workspace_agents SET deleted = TRUE WHERE auth_token_hash = $1")
        .bind(agent_hash(agent).as_slice())
        .execute(pool)
        .await
        .unwrap();
    agent_propagation(&a, agent, changed).await;
    agent_propagation(&b, agent, changed).await;
    for replica in [&a, &b] {
        assert_eq!(
            manifest(replica, agent).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}
