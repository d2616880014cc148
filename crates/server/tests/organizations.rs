//! Organizations, members and role assignment (issue: authorization everywhere).

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{harness::TestApp, on_both_backends};

on_both_backends!(
    default_organization_by_every_name,
    create_organization_and_creator_is_admin,
    members_are_listed_and_hidden_by_membership,
    org_role_assignment_follows_the_matrix,
    site_role_assignment_changes_what_a_user_may_do,
    removing_a_member_removes_access,
);

pub async fn create_org(app: &TestApp, token: &str, name: &str) -> Value {
    let res = app
        .post("/api/v2/organizations")
        .token(token)
        .json(&json!({"name": name}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()
}

async fn default_organization_by_every_name(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (_, member) = app.user_with_roles(&owner, "mo", &[]).await;
    let id = app.state.default_org.id.to_string();
    for path in [
        "default",
        "coder",
        "CODER",
        id.as_str(),
        "00000000-0000-0000-0000-000000000000",
    ] {
        let res = app
            .get(&format!("/api/v2/organizations/{path}"))
            .token(&member)
            .send()
            .await;
        assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.text());
        let org = res.json();
        assert_eq!(org["id"], id.as_str());
        assert_eq!(org["is_default"], true);
        assert_eq!(
            org["default_org_member_roles"],
            json!(["organization-workspace-access"])
        );
    }
    let keys: Vec<String> = app
        .get("/api/v2/organizations/default")
        .token(&member)
        .send()
        .await
        .json()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "display_name",
            "icon",
            "description",
            "created_at",
            "updated_at",
            "is_default",
            "default_org_member_roles"
        ]
    );
    let res = app
        .get("/api/v2/organizations/nope")
        .token(&member)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let list = app
        .get("/api/v2/organizations")
        .token(&member)
        .send()
        .await
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

async fn create_organization_and_creator_is_admin(app: TestApp) {
    let (owner_id, owner) = app.first_user().await;
    let (_, member) = app.user_with_roles(&owner, "mo", &[]).await;
    let res = app
        .post("/api/v2/organizations")
        .token(&member)
        .json(&json!({"name": "nope"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let org = create_org(&app, &owner, "research").await;
    assert_eq!(org["display_name"], "research");
    assert_eq!(org["is_default"], false);
    let res = app
        .post("/api/v2/organizations")
        .token(&owner)
        .json(&json!({"name": "Research"}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(
        res.json(),
        json!({"message": "Organization already exists with that name."})
    );
    for bad in ["", "has space", "default"] {
        let res = app
            .post("/api/v2/organizations")
            .token(&owner)
            .json(&json!({"name": bad}))
            .send()
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(res.json()["validations"][0]["field"], "name");
    }
    let me = app
        .get("/api/v2/organizations/research/members/me")
        .token(&owner)
        .send()
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    let me = me.json();
    assert_eq!(me["user_id"], owner_id.to_string());
    assert_eq!(
        me["roles"],
        json!([{"name": "organization-admin", "display_name": "Organization Admin", "organization_id": org["id"]}])
    );
    // The member cannot see an organization they are not in.
    assert_eq!(
        app.get("/api/v2/organizations/research")
            .token(&member)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v2/organizations")
            .token(&member)
            .send()
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get("/api/v2/organizations")
            .token(&owner)
            .send()
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

async fn members_are_listed_and_hidden_by_membership(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (_, member) = app.user_with_roles(&owner, "mo", &[]).await;
    let (outsider_id, _) = app.user_with_roles(&owner, "outsider", &[]).await;
    create_org(&app, &owner, "research").await;
    let list = app
        .get("/api/v2/organizations/default/members")
        .token(&member)
        .send()
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let members = list.json();
    let names: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    // The prebuilds system user is a member of the default organization (decisions.md 24).
    assert_eq!(names, ["mo", "outsider", "owner", "prebuilds"]);
    let first = &members[0];
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "username",
            "email",
            "status",
            "login_type",
            "last_seen_at",
            "user_created_at",
            "user_updated_at",
            "global_roles",
            "has_ai_seat",
            "user_id",
            "organization_id",
            "created_at",
            "updated_at",
            "roles"
        ]
    );
    // A user who is not a member of the org is 404 as a member, even to the owner.
    let res = app
        .get(&format!(
            "/api/v2/organizations/research/members/{outsider_id}"
        ))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let res = app
        .get("/api/v2/organizations/default/members/nobody")
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    // Adding works once.
    let res = app
        .post(&format!(
            "/api/v2/organizations/research/members/{outsider_id}"
        ))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["roles"], json!([]));
    let res = app
        .post(&format!(
            "/api/v2/organizations/research/members/{outsider_id}"
        ))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    // A plain member may not add people.
    let res = app
        .post("/api/v2/organizations/default/members/owner")
        .token(&member)
        .send()
        .await;
    assert_eq!(
        res.status,
        StatusCode::NOT_FOUND,
        "members cannot read other users"
    );
}

async fn org_role_assignment_follows_the_matrix(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (_, oua) = app.user_with_roles(&owner, "oua", &[]).await;
    let (mo_id, mo) = app.user_with_roles(&owner, "mo", &[]).await;
    let put = |token: String, user: String, roles: Value| {
        let app = &app;
        async move {
            app.put(&format!(
                "/api/v2/organizations/default/members/{user}/roles"
            ))
            .token(&token)
            .json(&json!({"roles": roles}))
            .send()
            .await
        }
    };
    let res = put(
        owner.clone(),
        "oua".into(),
        json!(["organization-user-admin"]),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["roles"][0]["name"], "organization-user-admin");
    // An organization-user-admin may grant workspace access, not admin.
    let res = put(
        oua.clone(),
        mo_id.to_string(),
        json!(["organization-admin"]),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.json(),
        json!({"message": "You are not allowed to assign the \"organization-admin\" role."})
    );
    let res = put(oua.clone(), mo_id.to_string(), json!(["agents-access"])).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    // Bad names are 400 and say which.
    let res = put(
        owner.clone(),
        "mo".into(),
        json!([
            "organization-emperor",
            format!("organization-admin:{}", app.state.default_org.id),
            "owner"
        ]),
    )
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let fields: Vec<String> = res.json()["validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["detail"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        fields,
        [
            "\"organization-emperor\" is not an organization role".to_owned(),
            format!(
                "role \"organization-admin:{}\" names an organization; give the role name only",
                app.state.default_org.id
            ),
            "\"owner\" is not an organization role".to_owned(),
        ]
    );
    // Nobody changes their own roles; a plain member cannot assign at all.
    let res = put(oua.clone(), "me".into(), json!([])).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let res = put(mo.clone(), "oua".into(), json!([])).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    let roles = app
        .get("/api/v2/organizations/default/members/roles")
        .token(&oua)
        .send()
        .await
        .json();
    let assignable: Vec<(&str, bool)> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap(),
                r["assignable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        assignable.contains(&("organization-admin", false)),
        "{assignable:?}"
    );
    assert!(
        assignable.contains(&("organization-workspace-access", true)),
        "{assignable:?}"
    );
}

async fn site_role_assignment_changes_what_a_user_may_do(app: TestApp) {
    let (owner_id, owner) = app.first_user().await;
    let (_, admin) = app.user_with_roles(&owner, "ua", &["user-admin"]).await;
    let (mo_id, mo) = app.user_with_roles(&owner, "mo", &[]).await;
    assert_eq!(
        app.get(&format!("/api/v2/users/{owner_id}"))
            .token(&mo)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let res = app
        .put(&format!("/api/v2/users/{mo_id}/roles"))
        .token(&admin)
        .json(&json!({"roles": ["auditor"]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.json(),
        json!({"message": "You are not allowed to assign the \"auditor\" role."})
    );
    let res = app
        .put(&format!("/api/v2/users/{mo_id}/roles"))
        .token(&owner)
        .json(&json!({"roles": ["auditor", "member"]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(
        res.json()["roles"],
        json!([{"name": "auditor", "display_name": "Auditor"}])
    );
    // The next request sees the new role: auditors read every user.
    assert_eq!(
        app.get(&format!("/api/v2/users/{owner_id}"))
            .token(&mo)
            .send()
            .await
            .status,
        StatusCode::OK
    );
    let res = app
        .put("/api/v2/users/mo/roles")
        .token(&owner)
        .json(&json!({"roles": ["emperor"]}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json()["validations"][0],
        json!({"field": "roles", "detail": "\"emperor\" is not a site role"})
    );
    let res = app
        .put("/api/v2/users/me/roles")
        .token(&owner)
        .json(&json!({"roles": []}))
        .send()
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["message"], "You cannot change your own roles.");
    let roles = app.get("/api/v2/users/roles").token(&admin).send().await;
    assert_eq!(roles.status, StatusCode::OK);
    let names: Vec<(String, bool)> = roles
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["assignable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("owner".into(), false),
            ("auditor".into(), false),
            ("template-admin".into(), false),
            ("user-admin".into(), false)
        ]
    );
}

async fn removing_a_member_removes_access(app: TestApp) {
    let (_, owner) = app.first_user().await;
    let (mo_id, mo) = app.user_with_roles(&owner, "mo", &[]).await;
    assert_eq!(
        app.get("/api/v2/organizations/default")
            .token(&mo)
            .send()
            .await
            .status,
        StatusCode::OK
    );
    let res = app
        .delete(&format!("/api/v2/organizations/default/members/{mo_id}"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    assert_eq!(
        app.get("/api/v2/organizations/default")
            .token(&mo)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v2/users/me").token(&mo).send().await.json()["organization_ids"],
        json!([])
    );
    let res = app
        .delete(&format!("/api/v2/organizations/default/members/{mo_id}"))
        .token(&owner)
        .send()
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}
