//! The audit log (issue #9): authentication failures, tokens created and revoked, role
//! changes and OAuth2 grants are recorded with who, what, when, from where and the request
//! id, and auditors read them at `GET /api/v2/audit`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{
    harness::{OWNER_EMAIL, OWNER_PASSWORD, TestApp},
    oauth2::{code_for, confidential_app, exchange, refresh_grant, token_request},
    on_both_backends,
    organizations::create_org,
};

on_both_backends!(
    sign_ins_and_tokens_are_recorded_with_their_request,
    role_changes_granted_and_refused_are_recorded,
    oauth2_grants_reuse_and_revocation_are_recorded,
    only_auditors_read_the_log_and_search_is_validated,
    organization_auditors_read_their_organizations_entries,
);

const PEER: &str = "203.0.113.7:40000";
const AGENT: &str = "audit-test/1.0";

/// Entries matching `q`, newest first, read as the owner.
async fn entries(app: &TestApp, owner: &str, q: &str) -> Vec<Value> {
    let path = format!(
        "/api/v2/audit?q={}",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    let res = app.get(&path).token(owner).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    assert_eq!(body["count_cap"], 2000);
    body["audit_logs"].as_array().unwrap().clone()
}

/// Waits for entries written off the request path (failed authentications).
async fn eventually(app: &TestApp, owner: &str, q: &str, want: usize) -> Vec<Value> {
    for _ in 0..100 {
        let found = entries(app, owner, q).await;
        if found.len() >= want {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("fewer than {want} audit entries for {q:?}");
}

async fn sign_ins_and_tokens_are_recorded_with_their_request(app: TestApp) {
    let (owner_id, owner) = app.first_user().await;

    // A wrong password for a real account names the account; an unknown email names nobody.
    let wrong = app
        .post("/api/v2/users/login")
        .peer(PEER)
        .header("user-agent", AGENT)
        .json(&json!({"email": OWNER_EMAIL, "password": "not-the-password"}))
        .send()
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let unknown = app
        .post("/api/v2/users/login")
        .json(&json!({"email": "nobody@example.com", "password": OWNER_PASSWORD}))
        .send()
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let failed = entries(&app, &owner, "action:login status_code:401").await;
    assert_eq!(failed.len(), 2, "{failed:#?}");
    let (by_nobody, by_owner) = (&failed[0], &failed[1]);
    assert_eq!(by_nobody["user"], Value::Null);
    assert_eq!(by_owner["user"]["id"], owner_id.to_string());
    assert_eq!(by_owner["resource_type"], "api_key");
    assert_eq!(by_owner["ip"], "203.0.113.7");
    assert_eq!(by_owner["user_agent"], AGENT);
    assert_eq!(
        by_owner["request_id"],
        wrong.header("x-coder-request-id").unwrap()
    );
    assert_eq!(
        by_owner["description"],
        "{user} unsuccessfully attempted to login"
    );
    // The successful sign-in of first_user is there too.
    let signed_in = entries(&app, &owner, "action:login status_code:201").await;
    assert_eq!(signed_in.len(), 1);
    assert_eq!(signed_in[0]["description"], "{user} logged in");

    // A token created, then presented with a tampered secret, then deleted.
    let created = app
        .post("/api/v2/users/me/keys/tokens")
        .token(&owner)
        .peer(PEER)
        .json(&json!({"token_name": "ci"}))
        .send()
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let token = created.json()["key"].as_str().unwrap().to_owned();
    let (key_id, secret) = token.split_once('-').unwrap();
    let create = entries(&app, &owner, "action:create resource_type:api_key").await;
    assert_eq!(create.len(), 1);
    assert_eq!(create[0]["resource_target"], "ci");
    assert_eq!(create[0]["additional_fields"]["api_key_id"], key_id);
    assert_eq!(create[0]["status_code"], 201);
    assert_eq!(create[0]["description"], "{user} created token {target}");
    assert_eq!(
        create[0]["request_id"],
        created.header("x-coder-request-id").unwrap()
    );

    let tampered = format!("{key_id}-{}", "x".repeat(secret.len()));
    let refused = app.get("/api/v2/users/me").token(&tampered).send().await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let mismatch = eventually(&app, &owner, "action:login status_code:401", 3).await;
    let mismatch = mismatch
        .iter()
        .find(|e| e["additional_fields"]["reason"] == "secret mismatch")
        .unwrap_or_else(|| panic!("{mismatch:#?}"));
    assert_eq!(mismatch["additional_fields"]["api_key_id"], key_id);
    assert_eq!(mismatch["user"]["id"], owner_id.to_string());
    assert_eq!(
        mismatch["request_id"],
        refused.header("x-coder-request-id").unwrap()
    );

    let deleted = app
        .delete(&format!("/api/v2/users/me/keys/{key_id}"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let delete = entries(&app, &owner, "action:delete resource_type:api_key").await;
    assert_eq!(delete.len(), 1);
    assert_eq!(delete[0]["resource_target"], "ci");
    assert_eq!(delete[0]["additional_fields"]["api_key_id"], key_id);

    // No secret is ever written to the log.
    let everything = entries(&app, &owner, "").await;
    let text = serde_json::to_string(&everything).unwrap();
    for secret_text in [secret, owner.split_once('-').unwrap().1, OWNER_PASSWORD] {
        assert!(
            !text.contains(secret_text),
            "a secret reached the audit log"
        );
    }
}

async fn role_changes_granted_and_refused_are_recorded(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (alice, _) = app.user_with_roles(&owner, "alice", &[]).await;
    let (_, user_admin) = app
        .user_with_roles(&owner, "useradmin", &["user-admin"])
        .await;
    let granted = app
        .put(&format!("/api/v2/users/{alice}/roles"))
        .token(&owner)
        .json(&json!({"roles": ["auditor"]}))
        .send()
        .await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text());
    // A user admin may not make anyone an owner: refused, and recorded as refused.
    let refused = app
        .put(&format!("/api/v2/users/{alice}/roles"))
        .token(&user_admin)
        .json(&json!({"roles": ["owner"]}))
        .send()
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());

    let changes = entries(
        &app,
        &owner,
        &format!("resource_type:user resource_id:{alice}"),
    )
    .await;
    assert_eq!(changes.len(), 2, "{changes:#?}");
    let (attempt, grant) = (&changes[0], &changes[1]);
    assert_eq!(grant["action"], "write");
    assert_eq!(grant["status_code"], 200);
    assert_eq!(
        grant["diff"],
        json!({"roles": {"old": [], "new": ["auditor"], "secret": false}})
    );
    assert_eq!(grant["user"]["username"], "owner");
    assert_eq!(grant["resource_target"], "alice");
    assert_eq!(grant["description"], "{user} updated user {target}");
    assert_eq!(attempt["status_code"], 403);
    assert_eq!(attempt["user"]["username"], "useradmin");
    assert_eq!(
        attempt["description"],
        "{user} unsuccessfully attempted to write user {target}"
    );

    // Organization roles carry their organization.
    let org = app.state.default_org.id;
    let member = app
        .put(&format!(
            "/api/v2/organizations/{org}/members/{alice}/roles"
        ))
        .token(&owner)
        .json(&json!({"roles": ["organization-auditor"]}))
        .send()
        .await;
    assert_eq!(member.status, StatusCode::OK, "{}", member.text());
    let org_changes = entries(&app, &owner, "resource_type:organization_member").await;
    assert_eq!(org_changes.len(), 1);
    assert_eq!(org_changes[0]["organization_id"], org.to_string());
    assert_eq!(org_changes[0]["organization"]["id"], org.to_string());
    assert_eq!(
        org_changes[0]["diff"]["roles"]["new"],
        json!(["organization-auditor"])
    );
}

async fn oauth2_grants_reuse_and_revocation_are_recorded(app: TestApp) {
    let (owner_id, owner) = app.first_user().await;
    let (client_id, secret) = confidential_app(&app, &owner, None).await;
    let (code, verifier) = code_for(&app, &owner, &client_id, &[]).await;
    let grants = entries(
        &app,
        &owner,
        "resource_type:oauth2_provider_app action:create",
    )
    .await;
    let consent = grants
        .iter()
        .find(|e| e["resource_id"] == client_id.as_str() && e["status_code"] == 302)
        .unwrap_or_else(|| panic!("{grants:#?}"));
    assert_eq!(consent["user"]["id"], owner_id.to_string());
    assert_eq!(consent["additional_fields"]["grant"], "authorization_code");

    let tokens = exchange(&app, &client_id, &secret, &code, &verifier).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text());
    let first_refresh = tokens.json()["refresh_token"].as_str().unwrap().to_owned();
    let rotated = refresh_grant(&app, &client_id, &secret, &first_refresh).await;
    assert_eq!(rotated.status, StatusCode::OK);
    // The rotated token presented again: the grant is revoked, and the log says why.
    let reused = refresh_grant(&app, &client_id, &secret, &first_refresh).await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST);
    let revoked = entries(
        &app,
        &owner,
        "resource_type:oauth2_provider_app action:delete",
    )
    .await;
    assert_eq!(revoked.len(), 1, "{revoked:#?}");
    assert_eq!(
        revoked[0]["additional_fields"]["reason"],
        "rotated refresh token presented again"
    );
    assert_eq!(revoked[0]["user"]["id"], owner_id.to_string());

    // A client with a wrong secret is an authentication failure.
    let bad_client = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first_refresh),
            ("client_id", &client_id),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!(bad_client.status, StatusCode::UNAUTHORIZED);
    let failures = eventually(
        &app,
        &owner,
        "resource_type:oauth2_provider_app action:login",
        1,
    )
    .await;
    assert_eq!(failures[0]["status_code"], 401);
    assert_eq!(
        failures[0]["request_id"],
        bad_client.header("x-coder-request-id").unwrap()
    );

    // The user revoking the app's access.
    let revoke = app
        .delete(&format!("/oauth2/tokens?client_id={client_id}"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT, "{}", revoke.text());
    let revoked = entries(
        &app,
        &owner,
        "resource_type:oauth2_provider_app action:delete",
    )
    .await;
    assert_eq!(revoked.len(), 2, "{revoked:#?}");
}

async fn only_auditors_read_the_log_and_search_is_validated(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (_, auditor) = app.user_with_roles(&owner, "audrey", &["auditor"]).await;
    let (_, member) = app.user_with_roles(&owner, "mike", &[]).await;
    let res = app.get("/api/v2/audit").token(&auditor).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    // The owner's and both users' sign-ins, and the two users created... at least the
    // sign-ins.
    assert!(body["count"].as_i64().unwrap() >= 3, "{body}");
    assert_eq!(
        body["audit_logs"].as_array().unwrap().len() as i64,
        body["count"].as_i64().unwrap()
    );
    let res = app.get("/api/v2/audit").token(&member).send().await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    let res = app.get("/api/v2/audit").send().await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    // Paging.
    let res = app
        .get("/api/v2/audit?limit=1&offset=1")
        .token(&auditor)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["audit_logs"].as_array().unwrap().len(), 1);
    // Searches by the actor's username or email.
    let mine = entries(&app, &owner, "username:mike").await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["user"]["username"], "mike");
    assert_eq!(
        entries(&app, &owner, "email:MIKE@example.com").await.len(),
        1
    );

    for (q, field) in [
        ("colour:red", "colour"),
        ("resource_id:not-a-uuid", "resource_id"),
        ("date_from:yesterday", "date_from"),
    ] {
        let res = app
            .get(&format!("/api/v2/audit?q={q}"))
            .token(&owner)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(res.json()["message"], "Invalid audit search query.");
        assert_eq!(res.json()["validations"][0]["field"], field, "{q}");
    }
    for bad in ["limit=0", "limit=abc", "offset=-1"] {
        let res = app
            .get(&format!("/api/v2/audit?{bad}"))
            .token(&owner)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

/// An organization auditor reads the entries of its organizations and nothing else: not
/// another organization's, not the site's (sign-ins); the count agrees with the page.
async fn organization_auditors_read_their_organizations_entries(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let default_org = app.state.default_org.id.to_string();
    let research = create_org(&app, &owner, "research").await;
    let research_id = research["id"].as_str().unwrap().to_owned();
    let (_, oa) = app.user_with_roles(&owner, "oa", &[]).await;
    let (ra_id, _) = app.user_with_roles(&owner, "ra", &[]).await;
    let set_roles = |org: &'static str, user: &'static str, roles: Value| {
        let app = &app;
        let owner = owner.clone();
        async move {
            let res = app
                .put(&format!("/api/v2/organizations/{org}/members/{user}/roles"))
                .token(&owner)
                .json(&json!({ "roles": roles }))
                .send()
                .await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        }
    };
    // One entry in the default organization, one in research.
    set_roles("default", "oa", json!(["organization-auditor"])).await;
    let res = app
        .post(&format!("/api/v2/organizations/research/members/{ra_id}"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    set_roles("research", "ra", json!(["organization-auditor"])).await;

    let res = app.get("/api/v2/audit").token(&oa).send().await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let body = res.json();
    let seen = body["audit_logs"].as_array().unwrap();
    assert!(!seen.is_empty(), "{body}");
    assert!(
        seen.iter()
            .all(|e| e["organization_id"] == default_org.as_str()),
        "{body}"
    );
    assert!(
        seen.iter()
            .any(|e| e["resource_type"] == "organization_member" && e["resource_target"] == "oa"),
        "{body}"
    );
    assert_eq!(body["count"].as_i64().unwrap(), seen.len() as i64, "{body}");
    // The owner reads both organizations' entries and the site's sign-ins.
    let all = entries(&app, &owner, "").await;
    assert!(
        all.iter()
            .any(|e| e["organization_id"] == research_id.as_str())
    );
    assert!(
        all.iter()
            .any(|e| e["organization_id"] == "00000000-0000-0000-0000-000000000000")
    );
    assert!(all.len() > seen.len());
}
