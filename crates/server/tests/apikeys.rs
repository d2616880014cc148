//! Tokens and scopes (spec/auth.md §1.12, §2.3, §2.5, §3).

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{harness::TestApp, on_both_backends};

const HOUR_NS: i64 = 3_600_000_000_000;

on_both_backends!(
    token_defaults_and_readback,
    legacy_scopes_are_accepted_in_both_forms,
    scope_list_is_validated_and_canonicalised,
    allow_list_is_validated_normalised_and_capped,
    lifetime_limits,
    duplicate_token_names_conflict,
    list_get_expire_and_delete,
    members_manage_only_their_own_tokens,
    scope_catalog_is_public_and_sorted,
    session_key_endpoint,
);

async fn create(app: &TestApp, token: &str, body: Value) -> crate::harness::TestResponse {
    app.post("/api/v2/users/me/keys/tokens")
        .token(token)
        .json(&body)
        .send()
        .await
}

async fn token_defaults_and_readback(app: TestApp) {
    let (owner_id, owner) = app.first_user().await;
    let token = app.token(&owner, json!({})).await;
    let id = token.split('-').next().unwrap();
    // Read as the owner's session: reading with the token itself would mark it used.
    let key = app
        .get(&format!("/api/v2/users/me/keys/{id}"))
        .token(&owner)
        .send()
        .await
        .json();
    assert_eq!(key["id"], token.split('-').next().unwrap());
    assert_eq!(key["user_id"], owner_id.to_string());
    assert_eq!(key["login_type"], "token");
    assert_eq!(key["scope"], "all");
    assert_eq!(key["scopes"], json!(["coder:all"]));
    assert_eq!(key["allow_list"], json!(["*:*"]));
    assert_eq!(key["lifetime_seconds"], 7 * 86_400);
    assert_eq!(key["last_used"], "1970-01-01T00:00:00Z");
    let name = key["token_name"].as_str().unwrap();
    assert!(
        name.contains('_') && name.ends_with(|c: char| c.is_ascii_digit()),
        "{name}"
    );
    assert!(key.get("hashed_secret").is_none());
    let fields: Vec<&String> = key.as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        [
            "id",
            "user_id",
            "last_used",
            "expires_at",
            "created_at",
            "updated_at",
            "login_type",
            "scope",
            "scopes",
            "token_name",
            "lifetime_seconds",
            "allow_list"
        ]
    );
    // The new token authenticates.
    assert_eq!(
        app.get("/api/v2/users/me")
            .token(&token)
            .send()
            .await
            .status,
        StatusCode::OK
    );
}

async fn legacy_scopes_are_accepted_in_both_forms(app: TestApp) {
    let (_, owner) = app.first_user().await;
    for (body, scope, scopes) in [
        (
            json!({"scope": "application_connect"}),
            "application_connect",
            json!(["coder:application_connect"]),
        ),
        (json!({"scope": "all"}), "all", json!(["coder:all"])),
        // Coder answers 500 here; Gatehouse maps the legacy name (spec/auth.md §2.3 step 4).
        (json!({"scopes": ["all"]}), "all", json!(["coder:all"])),
        (
            json!({"scopes": ["application_connect", "workspace:read"]}),
            "application_connect",
            json!(["coder:application_connect", "workspace:read"]),
        ),
        (
            json!({"scopes": [], "scope": "application_connect"}),
            "application_connect",
            json!(["coder:application_connect"]),
        ),
    ] {
        let token = app.token(&owner, body.clone()).await;
        let id = token.split('-').next().unwrap();
        let key = app
            .get(&format!("/api/v2/users/me/keys/{id}"))
            .token(&owner)
            .send()
            .await
            .json();
        assert_eq!(key["scope"], scope, "{body}");
        assert_eq!(key["scopes"], scopes, "{body}");
        assert_eq!(key["allow_list"], json!(["*:*"]), "{body}");
    }
}

async fn scope_list_is_validated_and_canonicalised(app: TestApp) {
    let (_, owner) = app.first_user().await;
    for bad in [
        "system:read",
        "workspace:bogus",
        "a:b:c",
        "",
        "coder:nothing",
    ] {
        let res = create(&app, &owner, json!({"scopes": [bad]})).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            res.json(),
            json!({"message": "Failed to create API key.", "detail": format!("invalid or unsupported API key scope: {bad:?}")})
        );
    }
    let token = app
        .token(
            &owner,
            json!({"scopes": ["workspace:read", "coder:workspaces.operate", "workspace:read"]}),
        )
        .await;
    let id = token.split('-').next().unwrap();
    let key = app
        .get(&format!("/api/v2/users/me/keys/{id}"))
        .token(&owner)
        .send()
        .await
        .json();
    assert_eq!(
        key["scopes"],
        json!(["workspace:read", "coder:workspaces.operate"])
    );
    assert_eq!(key["scope"], "");
}

async fn allow_list_is_validated_normalised_and_capped(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let a = "1f0c4f54-6b1e-4a0c-9d3e-2f7a8f1b2c3d";
    let token = app
        .token(&owner, json!({"allow_list": [format!(" Workspace:{a} "), "template:*", format!("template:{a}"), format!("workspace:{}", a.to_uppercase())]}))
        .await;
    let id = token.split('-').next().unwrap();
    let key = app
        .get(&format!("/api/v2/users/me/keys/{id}"))
        .token(&owner)
        .send()
        .await
        .json();
    assert_eq!(
        key["allow_list"],
        json!(["template:*", format!("workspace:{a}")])
    );
    let token = app
        .token(
            &owner,
            json!({"allow_list": [format!("workspace:{a}"), "*:*"]}),
        )
        .await;
    let id = token.split('-').next().unwrap();
    let key = app
        .get(&format!("/api/v2/users/me/keys/{id}"))
        .token(&owner)
        .send()
        .await
        .json();
    assert_eq!(key["allow_list"], json!(["*:*"]));
    for (entry, detail) in [
        ("unknown:*", "unknown resource type \"unknown\"".to_owned()),
        (
            "workspace:not-a-uuid",
            "invalid workspace ID (must be UUID): \"not-a-uuid\"".to_owned(),
        ),
        (
            "workspace",
            "invalid allow_list entry \"workspace\": want <type>:<id>".to_owned(),
        ),
    ] {
        let res = create(&app, &owner, json!({"allow_list": [entry]})).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{entry}");
        assert_eq!(
            res.json(),
            json!({"message": "Failed to create API key.", "detail": detail})
        );
    }
    let many: Vec<String> = (0..129).map(|_| "*:*".to_owned()).collect();
    let res = create(&app, &owner, json!({"allow_list": many})).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json()["detail"],
        "allow_list has 129 entries; max allowed is 128"
    );
}

async fn lifetime_limits(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let res = create(&app, &owner, json!({"lifetime": -1})).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json(),
        json!({"message": "Failed to validate create API key request.", "detail": "lifetime must be positive number greater than 0"})
    );
    // Owners are held to the admin maximum (7 days).
    let res = create(&app, &owner, json!({"lifetime": 169 * HOUR_NS})).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["detail"], "lifetime must be less than 168h0m0s");
    let token = app.token(&owner, json!({"lifetime": 2 * HOUR_NS})).await;
    assert_eq!(
        app.get(&format!(
            "/api/v2/users/me/keys/{}",
            token.split('-').next().unwrap()
        ))
        .token(&owner)
        .send()
        .await
        .json()["lifetime_seconds"],
        7200
    );
    let (_, member) = app.user_with_roles(&owner, "mia", &[]).await;
    assert_eq!(
        create(&app, &member, json!({"lifetime": 1000 * HOUR_NS}))
            .await
            .status,
        StatusCode::CREATED
    );
    let res = app
        .get("/api/v2/users/me/keys/tokens/tokenconfig")
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.json(), json!({"max_token_lifetime": 168 * HOUR_NS}));
}

async fn duplicate_token_names_conflict(app: TestApp) {
    let (_, owner) = app.first_user().await;
    app.token(&owner, json!({"token_name": "ci"})).await;
    let res = create(&app, &owner, json!({"token_name": "ci"})).await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(
        res.json(),
        json!({"message": "A token with name \"ci\" already exists.", "validations": [{"field": "name", "detail": "This value is already in use and should be unique."}]})
    );
}

async fn list_get_expire_and_delete(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let empty = app
        .get("/api/v2/users/me/keys/tokens")
        .token(&owner)
        .send()
        .await;
    assert_eq!(empty.json(), json!([]));
    let t1 = app.token(&owner, json!({"token_name": "one"})).await;
    let t2 = app.token(&owner, json!({"token_name": "two"})).await;
    let list = app
        .get("/api/v2/users/me/keys/tokens")
        .token(&owner)
        .send()
        .await
        .json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["token_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one", "two"]);
    assert_eq!(list[0]["username"], "owner");
    let res = app
        .get("/api/v2/users/me/keys/tokens/two")
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["id"], t2.split('-').next().unwrap());
    assert_eq!(
        app.get("/api/v2/users/me/keys/tokens/nope")
            .token(&owner)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let id1 = t1.split('-').next().unwrap();
    let res = app
        .put(&format!("/api/v2/users/me/keys/{id1}/expire"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v2/users/me").token(&t1).send().await.status,
        StatusCode::UNAUTHORIZED
    );
    // Expiring again changes nothing; expired tokens are listed only on request.
    assert_eq!(
        app.put(&format!("/api/v2/users/me/keys/{id1}/expire"))
            .token(&owner)
            .send()
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/v2/users/me/keys/tokens")
            .token(&owner)
            .send()
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get("/api/v2/users/me/keys/tokens?include_expired=true")
            .token(&owner)
            .send()
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        app.get("/api/v2/users/me/keys/tokens?include_expired=maybe")
            .token(&owner)
            .send()
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let id2 = t2.split('-').next().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v2/users/me/keys/{id2}"))
            .token(&owner)
            .send()
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/v2/users/me").token(&t2).send().await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.delete(&format!("/api/v2/users/me/keys/{id2}"))
            .token(&owner)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.put("/api/v2/users/me/keys/ZZZZZZZZZZ/expire")
            .token(&owner)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn members_manage_only_their_own_tokens(app: TestApp) {
    let (owner_id, owner) = app.first_user().await;
    let (member_id, member) = app.user_with_roles(&owner, "nina", &[]).await;
    let owner_token = app.token(&owner, json!({"token_name": "owners"})).await;
    let owner_key = owner_token.split('-').next().unwrap();
    // The member cannot see the owner, so everything about the owner's keys is 404.
    let res = app
        .post(&format!("/api/v2/users/{owner_id}/keys/tokens"))
        .token(&member)
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("/api/v2/users/{owner_id}/keys/{owner_key}"))
            .token(&member)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/api/v2/users/{owner_id}/keys/{owner_key}"))
            .token(&member)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Asking for the owner's key under the member's own path is also 404.
    assert_eq!(
        app.get(&format!("/api/v2/users/me/keys/{owner_key}"))
            .token(&member)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // The owner may create and list tokens for the member.
    let res = app
        .post(&format!("/api/v2/users/{member_id}/keys/tokens"))
        .token(&owner)
        .json(&json!({"token_name": "for-nina"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let list = app
        .get("/api/v2/users/me/keys/tokens")
        .token(&member)
        .send()
        .await
        .json();
    assert_eq!(list[0]["token_name"], "for-nina");
    // include_all shows a member only their own tokens; an owner sees all.
    let all = app
        .get("/api/v2/users/me/keys/tokens?include_all=true")
        .token(&member)
        .send()
        .await
        .json();
    assert_eq!(all.as_array().unwrap().len(), 1);
    let all = app
        .get("/api/v2/users/me/keys/tokens?include_all=true")
        .token(&owner)
        .send()
        .await
        .json();
    assert_eq!(all.as_array().unwrap().len(), 2);
}

async fn scope_catalog_is_public_and_sorted(app: TestApp) {
    let res = app.get("/api/v2/auth/scopes").send().await;
    assert_eq!(res.status, StatusCode::OK);
    let external: Vec<String> = serde_json::from_value(res.json()["external"].clone()).unwrap();
    let mut sorted = external.clone();
    sorted.sort();
    assert_eq!(external, sorted);
    assert_eq!(external, gatehouse_rbac::PUBLIC_SCOPES);
    assert!(external.contains(&"coder:all".to_owned()));
    assert!(!external.contains(&"all".to_owned()));
    assert!(!external.iter().any(|s| s.contains("workspace_execution")));
}

async fn session_key_endpoint(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let res = app.post("/api/v2/users/me/keys").token(&owner).send().await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert!(res.header("set-cookie").is_none());
    let key = res.json()["key"].as_str().unwrap().to_owned();
    let row = app.key_row(&key).await;
    assert_eq!(row["login_type"], "password");
    assert_eq!(row["lifetime_seconds"], 7 * 86_400);
}
