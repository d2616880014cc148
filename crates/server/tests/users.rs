//! Users, first user, login, logout (spec/types.md §2).

use axum::http::StatusCode;
use serde_json::json;

use crate::{
    harness::{OWNER_EMAIL, OWNER_PASSWORD, TestApp},
    on_both_backends,
};

on_both_backends!(
    first_user_lifecycle,
    concurrent_first_user_requests_create_one_user,
    first_user_input_is_validated,
    login_sets_cookie_and_logout_revokes,
    login_refuses_wrong_password_and_suspended_users,
    user_lookup_by_me_id_and_username,
    members_cannot_see_or_create_other_users,
    create_user_validates_and_conflicts,
    suspend_rules,
    malformed_bodies_get_400_never_500,
    no_secret_is_stored_in_plain_text,
);

async fn first_user_lifecycle(app: TestApp) {
    let res = app.get("/api/v2/users/first").send().await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(
        res.json(),
        json!({"message": "The initial user has not been created!"})
    );
    let res = app
        .post("/api/v2/users/first")
        .json(&json!({"email": OWNER_EMAIL, "username": "owner", "password": OWNER_PASSWORD, "name": "The Owner"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let body = res.json();
    assert_eq!(
        body["organization_id"],
        app.state.default_org.id.to_string()
    );
    let res = app.get("/api/v2/users/first").send().await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        res.json(),
        json!({"message": "The initial user has already been created!"})
    );
    let res = app
        .post("/api/v2/users/first")
        .json(&json!({"email": "second@example.com", "username": "second", "password": OWNER_PASSWORD}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(
        res.json(),
        json!({"message": "The initial user has already been created."})
    );

    let token = app.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    let me = app
        .get("/api/v2/users/me")
        .token(&token)
        .send()
        .await
        .json();
    assert_eq!(me["id"], body["user_id"]);
    assert_eq!(me["name"], "The Owner");
    assert_eq!(me["status"], "active");
    assert_eq!(me["login_type"], "password");
    assert_eq!(
        me["roles"],
        json!([{"name": "owner", "display_name": "Owner"}])
    );
    assert_eq!(me["organization_ids"], json!([app.state.default_org.id]));
    assert_eq!(me["has_ai_seat"], false);
    // Field order is Coder's.
    let keys: Vec<&String> = me.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "username",
            "name",
            "email",
            "created_at",
            "updated_at",
            "last_seen_at",
            "status",
            "login_type",
            "organization_ids",
            "roles",
            "has_ai_seat"
        ]
    );
}

async fn concurrent_first_user_requests_create_one_user(app: TestApp) {
    let attempts = (0..6).map(|i| {
        app.post("/api/v2/users/first")
            .json(&json!({"email": format!("u{i}@example.com"), "username": format!("u{i}"), "password": OWNER_PASSWORD}))
            .send()
    });
    let results = futures_join_all(attempts).await;
    let created = results
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let conflicts = results
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT)
        .count();
    assert_eq!(created, 1, "{results:?}");
    assert_eq!(conflicts, 5, "{results:?}");
}

async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futs.collect();
    let mut out = Vec::new();
    // Poll concurrently on one task: each request awaits the database independently.
    let mut pinned: Vec<_> = handles.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().flatten());
    out
}

async fn first_user_input_is_validated(app: TestApp) {
    let res = app
        .post("/api/v2/users/first")
        .json(&json!({"email": "not-an-email", "username": "-bad-", "password": ""}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let body = res.json();
    assert_eq!(body["message"], "Validation failed.");
    let fields: Vec<&str> = body["validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "username", "password"]);
    assert_eq!(
        body["validations"][0]["detail"],
        "Validation failed for tag \"email\" with value: \"not-an-email\""
    );
    let res = app
        .post("/api/v2/users/first")
        .json(&json!({"email": OWNER_EMAIL, "username": "owner", "password": "password"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["message"], "Password is invalid");
    assert_eq!(
        app.get("/api/v2/users/first").send().await.status,
        StatusCode::NOT_FOUND
    );
}

async fn login_sets_cookie_and_logout_revokes(app: TestApp) {
    app.first_user().await;
    let res = app
        .post("/api/v2/users/login")
        .json(&json!({"email": OWNER_EMAIL, "password": OWNER_PASSWORD}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let token = res.json()["session_token"].as_str().unwrap().to_owned();
    let cookie = res.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with(&format!("coder_session_token={token};")),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Path=/"),
        "{cookie}"
    );
    let key = app.key_row(&token).await;
    assert_eq!(key["login_type"], "password");
    assert_eq!(key["scopes"], json!(["coder:all"]));
    assert_eq!(key["lifetime_seconds"], 86_400);
    let res = app.post("/api/v2/users/logout").token(&token).send().await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json(), json!({"message": "Logged out!"}));
    assert!(res.header("set-cookie").unwrap().contains("Max-Age=-1"));
    let res = app.get("/api/v2/users/me").token(&token).send().await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["detail"], "API key is invalid.");
}

async fn login_refuses_wrong_password_and_suspended_users(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let res = app
        .post("/api/v2/users/login")
        .json(&json!({"email": OWNER_EMAIL, "password": "wrong-password"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json(),
        json!({"message": "Incorrect email or password."})
    );
    let res = app
        .post("/api/v2/users/login")
        .json(&json!({"email": "nobody@example.com", "password": "wrong-password"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json(),
        json!({"message": "Incorrect email or password."})
    );
    let (id, _) = app.user_with_roles(&owner, "bob", &[]).await;
    app.put(&format!("/api/v2/users/{id}/status/suspend"))
        .token(&owner)
        .send()
        .await;
    let res = app
        .post("/api/v2/users/login")
        .json(&json!({"email": "bob@example.com", "password": OWNER_PASSWORD}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json()["message"],
        "Your account is suspended. Contact an admin to reactivate your account."
    );
    let res = app
        .post("/api/v2/users/login")
        .json(&json!({"email": "", "password": ""}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["message"], "Validation failed.");
}

async fn user_lookup_by_me_id_and_username(app: TestApp) {
    let (owner_id, owner) = app.first_user().await;
    for path in ["me", &owner_id.to_string(), "owner", "OWNER"] {
        let res = app
            .get(&format!("/api/v2/users/{path}"))
            .token(&owner)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
        assert_eq!(res.json()["id"], owner_id.to_string(), "{path}");
    }
    let not_found =
        json!({"message": "Resource not found or you do not have access to this resource"});
    for path in ["nobody", "00000000-0000-0000-0000-000000000001"] {
        let res = app
            .get(&format!("/api/v2/users/{path}"))
            .token(&owner)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(res.json(), not_found);
    }
}

async fn members_cannot_see_or_create_other_users(app: TestApp) {
    let (owner_id, owner) = app.first_user().await;
    let (_, member) = app.user_with_roles(&owner, "carol", &[]).await;
    let res = app
        .get(&format!("/api/v2/users/{owner_id}"))
        .token(&member)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let res = app
        .post("/api/v2/users")
        .token(&member)
        .json(&json!({"email": "x@example.com", "username": "x", "password": OWNER_PASSWORD, "organization_ids": [app.state.default_org.id]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.json()["message"], "Forbidden.");
    // A user-admin may create users but not grant owner.
    let (_, admin) = app
        .user_with_roles(&owner, "useradmin", &["user-admin"])
        .await;
    let res = app
        .post("/api/v2/users")
        .token(&admin)
        .json(&json!({"email": "y@example.com", "username": "y", "password": OWNER_PASSWORD, "organization_ids": [app.state.default_org.id], "roles": ["owner"]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.json()["message"],
        "You are not allowed to assign the \"owner\" role."
    );
    let res = app
        .post("/api/v2/users")
        .token(&admin)
        .json(&json!({"email": "y@example.com", "username": "y", "password": OWNER_PASSWORD, "organization_ids": [app.state.default_org.id]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
}

async fn create_user_validates_and_conflicts(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let org = app.state.default_org.id;
    let res = app
        .post("/api/v2/users")
        .token(&owner)
        .json(&json!({"email": "dave@example.com", "username": "dave", "password": OWNER_PASSWORD, "organization_id": org, "roles": ["auditor"]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let user = res.json();
    assert_eq!(user["status"], "dormant");
    assert_eq!(
        user["roles"],
        json!([{"name": "auditor", "display_name": "Auditor"}])
    );
    assert_eq!(user["last_seen_at"], "0001-01-01T00:00:00Z");
    for (body, field) in [
        (
            json!({"email": "DAVE@example.com", "username": "dave2", "password": OWNER_PASSWORD, "organization_ids": [org]}),
            "email",
        ),
        (
            json!({"email": "dave2@example.com", "username": "Dave", "password": OWNER_PASSWORD, "organization_ids": [org]}),
            "username",
        ),
    ] {
        let res = app
            .post("/api/v2/users")
            .token(&owner)
            .json(&body)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::CONFLICT, "{field}: {}", res.text());
        assert_eq!(res.json(), json!({"message": "User already exists."}));
    }
    let res = app
        .post("/api/v2/users")
        .token(&owner)
        .json(&json!({"email": "e@example.com", "username": "e", "password": OWNER_PASSWORD, "organization_ids": ["7c9e6679-7425-40de-944b-e07fc1f90ae7"]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let res = app
        .post("/api/v2/users")
        .token(&owner)
        .json(&json!({"email": "e@example.com", "username": "e", "password": OWNER_PASSWORD}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["validations"][0]["field"], "organization_ids");
    let res = app
        .post("/api/v2/users")
        .token(&owner)
        .json(&json!({"email": "e@example.com", "username": "e", "password": OWNER_PASSWORD, "organization_ids": [org], "roles": ["emperor"]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["validations"][0]["field"], "roles");
    let res = app
        .post("/api/v2/users")
        .token(&owner)
        .json(&json!({"email": "n@example.com", "username": "n", "login_type": "none", "password": "x", "organization_ids": [org]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json()["message"],
        "Password cannot be set for non-password (\"none\") authentication."
    );
}

async fn suspend_rules(app: TestApp) {
    let (owner_id, owner) = app.first_user().await;
    let res = app
        .put(&format!("/api/v2/users/{owner_id}/status/suspend"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["message"], "You cannot suspend yourself.");
    let (_, second_owner) = app.user_with_roles(&owner, "owner2", &["owner"]).await;
    let res = app
        .put("/api/v2/users/owner/status/suspend")
        .token(&second_owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json()["message"],
        "You cannot suspend a user with the \"owner\" role. You must remove the role first."
    );
    let (_, member) = app.user_with_roles(&owner, "erin", &[]).await;
    let res = app
        .put("/api/v2/users/owner2/status/suspend")
        .token(&member)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    // A member can read themselves but not change their own status.
    let res = app
        .put("/api/v2/users/me/status/activate")
        .token(&member)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
}

async fn malformed_bodies_get_400_never_500(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let cases = [
        ("", "EOF"),
        ("{", "EOF while parsing an object at line 1 column 1"),
        ("[]", "the request body must be a JSON object"),
        ("\"x\"", "the request body must be a JSON object"),
        (
            "{\"lifetime\": \"1h\"}",
            "invalid type: string \"1h\", expected i64 at line 1 column 17",
        ),
        (
            "{\"lifetime\": 1.5}",
            "invalid type: floating point `1.5`, expected i64 at line 1 column 16",
        ),
    ];
    for (body, detail) in cases {
        let res = app
            .post("/api/v2/users/me/keys/tokens")
            .token(&owner)
            .raw_body(body)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            res.json(),
            json!({"message": "Request body must be valid JSON.", "detail": detail}),
            "{body}"
        );
    }
    let big = format!("{{\"token_name\": \"{}\"}}", "a".repeat(1 << 21));
    let res = app
        .post("/api/v2/users/me/keys/tokens")
        .token(&owner)
        .raw_body(&big)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.json(), json!({"message": "Request body too large."}));
}

async fn no_secret_is_stored_in_plain_text(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let token = app.token(&owner, json!({"token_name": "ci"})).await;
    let dump = crate::dump::dump_database(&app).await;
    let (_, secret) = owner.split_once('-').unwrap();
    let (_, token_secret) = token.split_once('-').unwrap();
    assert!(
        !dump.contains(secret),
        "session secret stored in plain text"
    );
    assert!(
        !dump.contains(token_secret),
        "token secret stored in plain text"
    );
    assert!(
        !dump.contains(OWNER_PASSWORD),
        "password stored in plain text"
    );
    // The dump is real: the password's Argon2id PHC string and the token's SHA-256 are
    // there, as hex.
    let dump = dump.to_lowercase();
    assert!(
        dump.contains(&hex(b"$argon2id$")),
        "password hash missing from dump"
    );
    let hash = gatehouse_httpmw::token::hash_secret(token_secret);
    assert!(dump.contains(&hex(&hash)), "token hash missing from dump");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
