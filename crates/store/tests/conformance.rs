//! One scenario per area; each runs on both backends.

use chrono::{Duration, Utc};
use gatehouse_rbac::ScopeName;
use gatehouse_store::{
    Conflict, FirstUserError, StoreError,
    models::{NewApiKey, NewUser, now},
    system::system_restricted,
};
use uuid::Uuid;

use crate::{on_both_backends, support::TestStore};

on_both_backends!(
    default_organization_is_idempotent,
    first_user_is_created_once,
    users_create_read_and_conflict,
    user_reads_hide_what_the_subject_cannot_see,
    user_status_and_soft_delete,
    api_key_lifecycle,
    auth_row_carries_roles_memberships_and_groups,
    keys_cannot_be_created_for_deleted_users,
    token_listing_filters_by_subject_and_expiry,
    scope_binds_store_access,
    timestamps_round_trip_exactly,
    closed_pool_is_unavailable,
);

fn new_user(name: &str, org: Uuid) -> NewUser {
    NewUser {
        id: Uuid::now_v7(),
        email: format!("{name}@example.com"),
        username: name.to_owned(),
        name: String::new(),
        hashed_password: b"$argon2id$stub".to_vec(),
        status: "active".to_owned(),
        rbac_roles: vec![],
        login_type: "password".to_owned(),
        organization_ids: vec![org],
    }
}

fn new_key(id: &str, user: Uuid, name: &str, login_type: &str) -> NewApiKey {
    NewApiKey {
        id: id.to_owned(),
        hashed_secret: vec![7; 32],
        user_id: user,
        expires_at: now() + Duration::days(1),
        login_type: login_type.to_owned(),
        lifetime_seconds: 86_400,
        ip_address: "127.0.0.1".to_owned(),
        token_name: name.to_owned(),
        scopes: vec!["coder:all".to_owned()],
        allow_list: vec!["*:*".to_owned()],
    }
}

async fn default_organization_is_idempotent(s: TestStore) {
    let again = s
        .ensure_default_organization(system_restricted())
        .await
        .unwrap();
    assert_eq!(again, s.org);
    assert!(s.org.is_default);
    assert_eq!(s.org.name, "coder");
    assert_eq!(
        s.org.default_org_member_roles.0,
        ["organization-workspace-access"]
    );
    assert_eq!(
        s.default_organization(system_restricted()).await.unwrap(),
        s.org
    );
}

async fn first_user_is_created_once(s: TestStore) {
    assert!(!s.has_first_user().await.unwrap());
    let user = s
        .create_first_user(new_user("owner", s.org.id), &s.org)
        .await
        .unwrap();
    assert_eq!(user.rbac_roles.0, ["owner"]);
    assert_eq!(user.status, "active");
    assert!(s.has_first_user().await.unwrap());
    let second = s
        .create_first_user(new_user("second", s.org.id), &s.org)
        .await;
    assert!(
        matches!(second, Err(FirstUserError::AlreadyCreated)),
        "{second:?}"
    );
    let orgs = s
        .user_organization_ids(system_restricted(), user.id)
        .await
        .unwrap();
    assert_eq!(orgs, [s.org.id]);
}

async fn users_create_read_and_conflict(s: TestStore) {
    let sys = system_restricted();
    let alice = s
        .create_user(sys, new_user("alice", s.org.id))
        .await
        .unwrap();
    assert_eq!(s.user_by_id(sys, alice.id).await.unwrap(), alice);
    assert_eq!(s.user_by_username(sys, "ALICE").await.unwrap().id, alice.id);
    assert_eq!(
        s.user_by_email(sys, "Alice@Example.com").await.unwrap().id,
        alice.id
    );
    assert_eq!(alice.last_seen_at, gatehouse_store::models::zero_time());
    let mut dup = new_user("Alice", s.org.id);
    dup.email = "other@example.com".into();
    assert!(matches!(
        s.create_user(sys, dup).await,
        Err(StoreError::Conflict(Conflict::Username))
    ));
    let mut dup = new_user("alice2", s.org.id);
    dup.email = "ALICE@example.com".into();
    assert!(matches!(
        s.create_user(sys, dup).await,
        Err(StoreError::Conflict(Conflict::Email))
    ));
    let ghost_org = new_user("bob", Uuid::new_v4());
    assert!(matches!(
        s.create_user(sys, ghost_org).await,
        Err(StoreError::NotFound)
    ));
    // Nothing half-written: bob does not exist.
    assert!(matches!(
        s.user_by_username(sys, "bob").await,
        Err(StoreError::NotFound)
    ));
}

async fn user_reads_hide_what_the_subject_cannot_see(s: TestStore) {
    let sys = system_restricted();
    let alice = s
        .create_user(sys, new_user("alice", s.org.id))
        .await
        .unwrap();
    let bob = s.create_user(sys, new_user("bob", s.org.id)).await.unwrap();
    let alice_subject = s.subject(alice.id, &[]);
    assert_eq!(
        s.user_by_id(&alice_subject, alice.id).await.unwrap().id,
        alice.id
    );
    assert!(matches!(
        s.user_by_id(&alice_subject, bob.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.user_by_username(&alice_subject, "bob").await,
        Err(StoreError::NotFound)
    ));
    // Can read herself, cannot change her status: forbidden, not hidden.
    assert!(matches!(
        s.update_user_status(&alice_subject, alice.id, "suspended")
            .await,
        Err(StoreError::Forbidden)
    ));
    assert!(matches!(
        s.update_user_status(&alice_subject, bob.id, "suspended")
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.create_user(&alice_subject, new_user("carol", s.org.id))
            .await,
        Err(StoreError::Forbidden)
    ));
    let admin = s.subject(bob.id, &["user-admin"]);
    assert!(s.user_by_id(&admin, alice.id).await.is_ok());
}

async fn user_status_and_soft_delete(s: TestStore) {
    let sys = system_restricted();
    let alice = s
        .create_user(sys, new_user("alice", s.org.id))
        .await
        .unwrap();
    let suspended = s
        .update_user_status(sys, alice.id, "suspended")
        .await
        .unwrap();
    assert_eq!(suspended.status, "suspended");
    assert!(suspended.updated_at >= alice.updated_at);
    s.touch_user_last_seen(sys, alice.id).await.unwrap();
    assert!(s.user_by_id(sys, alice.id).await.unwrap().last_seen_at > alice.last_seen_at);
    s.insert_api_key(sys, new_key("aaaaaaaaaa", alice.id, "", "password"))
        .await
        .unwrap();
    s.delete_user(sys, alice.id).await.unwrap();
    // Deleted users are still found by id (Coder's GetUserByID), not by name; keys are gone.
    assert!(s.user_by_id(sys, alice.id).await.unwrap().deleted);
    assert!(matches!(
        s.user_by_username(sys, "alice").await,
        Err(StoreError::NotFound)
    ));
    assert!(
        s.api_key_for_auth(sys, "aaaaaaaaaa")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.user_organization_ids(sys, alice.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.delete_user(sys, alice.id).await,
        Err(StoreError::NotFound)
    ));
    // The name is free again.
    assert!(
        s.create_user(sys, new_user("alice", s.org.id))
            .await
            .is_ok()
    );
}

async fn api_key_lifecycle(s: TestStore) {
    let sys = system_restricted();
    let alice = s
        .create_user(sys, new_user("alice", s.org.id))
        .await
        .unwrap();
    let key = s
        .insert_api_key(sys, new_key("abcdefghij", alice.id, "ci", "token"))
        .await
        .unwrap();
    assert_eq!(key.last_used, gatehouse_store::models::epoch());
    assert_eq!(key.hashed_secret, vec![7; 32]);
    assert!(matches!(
        s.insert_api_key(sys, new_key("bbbbbbbbbb", alice.id, "ci", "token"))
            .await,
        Err(StoreError::Conflict(Conflict::TokenName))
    ));
    // Session keys have no name, so many may share the empty name.
    s.insert_api_key(sys, new_key("cccccccccc", alice.id, "", "password"))
        .await
        .unwrap();
    s.insert_api_key(sys, new_key("dddddddddd", alice.id, "", "password"))
        .await
        .unwrap();
    assert_eq!(
        s.api_key_by_id(sys, alice.id, "abcdefghij").await.unwrap(),
        key
    );
    assert_eq!(s.api_key_by_name(sys, alice.id, "ci").await.unwrap(), key);
    assert!(matches!(
        s.api_key_by_id(sys, Uuid::new_v4(), "abcdefghij").await,
        Err(StoreError::NotFound)
    ));
    let used = now();
    let later = used + Duration::days(3);
    s.record_api_key_use(sys, &key, used, later, "10.1.2.3")
        .await
        .unwrap();
    let row = s.api_key_by_id(sys, alice.id, "abcdefghij").await.unwrap();
    assert_eq!(
        (row.last_used, row.expires_at, row.ip_address.as_str()),
        (used, later, "10.1.2.3")
    );
    s.expire_api_key(sys, alice.id, "abcdefghij").await.unwrap();
    assert!(
        s.api_key_by_id(sys, alice.id, "abcdefghij")
            .await
            .unwrap()
            .expires_at
            <= now()
    );
    s.delete_api_key(sys, alice.id, "abcdefghij").await.unwrap();
    assert!(matches!(
        s.delete_api_key(sys, alice.id, "abcdefghij").await,
        Err(StoreError::NotFound)
    ));
}

async fn auth_row_carries_roles_memberships_and_groups(s: TestStore) {
    let sys = system_restricted();
    let mut u = new_user("alice", s.org.id);
    u.rbac_roles = vec!["auditor".into()];
    let alice = s.create_user(sys, u).await.unwrap();
    s.insert_api_key(sys, new_key("abcdefghij", alice.id, "", "password"))
        .await
        .unwrap();
    let row = s
        .api_key_for_auth(sys, "abcdefghij")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.username, "alice");
    assert_eq!(row.status, "active");
    assert_eq!(row.rbac_roles.0, ["auditor"]);
    let memberships: Vec<gatehouse_store::models::MembershipJson> =
        serde_json::from_str(&row.memberships).unwrap();
    assert_eq!(memberships.len(), 1);
    assert_eq!(memberships[0].org, s.org.id);
    assert_eq!(memberships[0].defaults, ["organization-workspace-access"]);
    let groups: Vec<Uuid> = serde_json::from_str(&row.group_ids).unwrap();
    assert!(groups.is_empty());
    assert!(
        s.api_key_for_auth(sys, "zzzzzzzzzz")
            .await
            .unwrap()
            .is_none()
    );
}

async fn keys_cannot_be_created_for_deleted_users(s: TestStore) {
    let sys = system_restricted();
    let alice = s
        .create_user(sys, new_user("alice", s.org.id))
        .await
        .unwrap();
    s.delete_user(sys, alice.id).await.unwrap();
    assert!(matches!(
        s.insert_api_key(sys, new_key("abcdefghij", alice.id, "", "password"))
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn token_listing_filters_by_subject_and_expiry(s: TestStore) {
    let sys = system_restricted();
    let alice = s
        .create_user(sys, new_user("alice", s.org.id))
        .await
        .unwrap();
    let bob = s.create_user(sys, new_user("bob", s.org.id)).await.unwrap();
    s.insert_api_key(sys, new_key("aaaaaaaaaa", alice.id, "a1", "token"))
        .await
        .unwrap();
    let mut expired = new_key("bbbbbbbbbb", alice.id, "a2", "token");
    expired.expires_at = now() - Duration::minutes(1);
    s.insert_api_key(sys, expired).await.unwrap();
    s.insert_api_key(sys, new_key("cccccccccc", bob.id, "b1", "token"))
        .await
        .unwrap();
    s.insert_api_key(sys, new_key("dddddddddd", alice.id, "", "password"))
        .await
        .unwrap();
    let alice_subject = s.subject(alice.id, &[]);
    let names = |rows: Vec<gatehouse_store::models::ApiKeyWithOwner>| {
        rows.into_iter()
            .map(|r| r.key.token_name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            s.list_tokens(&alice_subject, alice.id, false, false)
                .await
                .unwrap()
        ),
        ["a1"]
    );
    assert_eq!(
        names(
            s.list_tokens(&alice_subject, alice.id, false, true)
                .await
                .unwrap()
        ),
        ["a1", "a2"]
    );
    assert_eq!(
        names(
            s.list_tokens(&alice_subject, alice.id, true, true)
                .await
                .unwrap()
        ),
        ["a1", "a2"]
    );
    assert_eq!(
        names(s.list_tokens(sys, alice.id, true, false).await.unwrap()),
        ["a1", "b1"]
    );
    let rows = s.list_tokens(sys, bob.id, false, false).await.unwrap();
    assert_eq!(rows[0].username, "bob");
}

async fn scope_binds_store_access(s: TestStore) {
    let sys = system_restricted();
    let alice = s
        .create_user(sys, new_user("alice", s.org.id))
        .await
        .unwrap();
    s.insert_api_key(sys, new_key("aaaaaaaaaa", alice.id, "a1", "token"))
        .await
        .unwrap();
    // A key scoped to `user:read` may read Alice but not her API keys: the role would
    // allow it, so the refusal names the scope that would (not a 404).
    let read_only = s.scoped_subject(alice.id, &[ScopeName::parse("user:read").unwrap()]);
    assert!(s.user_by_id(&read_only, alice.id).await.is_ok());
    assert!(
        s.list_tokens(&read_only, alice.id, false, false)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.api_key_by_id(&read_only, alice.id, "aaaaaaaaaa").await,
        Err(StoreError::InsufficientScope("api_key:read"))
    ));
    assert!(matches!(
        s.insert_api_key(&read_only, new_key("bbbbbbbbbb", alice.id, "a2", "token"))
            .await,
        Err(StoreError::InsufficientScope("api_key:create"))
    ));
    // No scopes at all: nothing, and what the role forbids stays hidden.
    let nothing = s.scoped_subject(alice.id, &[]);
    assert!(matches!(
        s.user_by_id(&nothing, alice.id).await,
        Err(StoreError::InsufficientScope("user:read"))
    ));
    let bob = s.create_user(sys, new_user("bob", s.org.id)).await.unwrap();
    assert!(matches!(
        s.user_by_id(&nothing, bob.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn timestamps_round_trip_exactly(s: TestStore) {
    let sys = system_restricted();
    let alice = s
        .create_user(sys, new_user("alice", s.org.id))
        .await
        .unwrap();
    let key = s
        .insert_api_key(sys, new_key("aaaaaaaaaa", alice.id, "", "password"))
        .await
        .unwrap();
    for t in [
        "2026-01-02T03:04:05Z",
        "2026-01-02T03:04:05.120Z",
        "2026-01-02T03:04:05.123456Z",
    ] {
        let t: chrono::DateTime<Utc> = t.parse().unwrap();
        s.record_api_key_use(sys, &key, t, t, "0.0.0.0")
            .await
            .unwrap();
        let row = s.api_key_by_id(sys, alice.id, "aaaaaaaaaa").await.unwrap();
        assert_eq!(row.expires_at, t);
    }
}

async fn closed_pool_is_unavailable(s: TestStore) {
    s.db().close().await;
    assert!(matches!(
        s.has_first_user().await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        s.api_key_for_auth(system_restricted(), "aaaaaaaaaa").await,
        Err(StoreError::Unavailable(_))
    ));
}

on_both_backends!(file_cache_fetches_once_and_authorizes_every_caller);

async fn file_cache_fetches_once_and_authorizes_every_caller(s: TestStore) {
    use gatehouse_store::file_cache::FileCache;
    let sys = system_restricted();
    let alice = s
        .create_user(sys, new_user("alice", s.org.id))
        .await
        .unwrap();
    let bob = s.create_user(sys, new_user("bob", s.org.id)).await.unwrap();
    let (alice_s, bob_s) = (s.subject(alice.id, &[]), s.subject(bob.id, &[]));
    let (file, _) = s
        .insert_file(&alice_s, alice.id, "application/json", b"{}".to_vec())
        .await
        .unwrap();
    let cache = FileCache::new();

    let before = s.queries();
    let first = cache.acquire(&s, &alice_s, file.id).await.unwrap();
    assert_eq!(s.queries() - before, 1, "first acquire fetches");
    let second = cache.acquire(&s, &alice_s, file.id).await.unwrap();
    assert_eq!(
        s.queries() - before,
        1,
        "second acquire is served from the cache"
    );
    assert_eq!(second.data, b"{}");
    // Bob is refused even though the file is cached, and his refusal is not cached
    // for Alice.
    assert!(matches!(
        cache.acquire(&s, &bob_s, file.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(cache.acquire(&s, &alice_s, file.id).await.is_ok());
    assert_eq!(cache.len(), 1);
    drop(first);
    assert_eq!(cache.len(), 1, "still held");
    drop(second);
    assert!(cache.is_empty(), "the last holder releases the file");

    // A failed fetch leaves nothing behind.
    assert!(matches!(
        cache.acquire(&s, &alice_s, Uuid::new_v4()).await,
        Err(StoreError::NotFound)
    ));
    assert!(cache.is_empty());
}
