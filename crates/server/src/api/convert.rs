//! Store rows → wire types.

use gatehouse_rbac::roles;
use gatehouse_sdk::{
    apikeys::ApiKey,
    users::{LoginType, SlimRole, User, UserStatus},
};
use gatehouse_store::models;
use uuid::Uuid;

pub fn login_type(raw: &str) -> LoginType {
    LoginType::parse(raw).unwrap_or(LoginType::None)
}

pub fn site_role(name: &str) -> SlimRole {
    SlimRole {
        name: name.to_owned(),
        display_name: roles::builtin(name)
            .map(|r| r.display_name.to_owned())
            .unwrap_or_default(),
        organization_id: String::new(),
    }
}

pub fn user(u: &models::User, organization_ids: Vec<Uuid>) -> User {
    User {
        id: u.id,
        username: u.username.clone(),
        name: u.name.clone(),
        avatar_url: u.avatar_url.clone(),
        email: u.email.clone(),
        created_at: u.created_at,
        updated_at: u.updated_at,
        last_seen_at: u.last_seen_at,
        status: UserStatus::parse(&u.status).unwrap_or(UserStatus::Dormant),
        login_type: login_type(&u.login_type),
        is_service_account: u.is_service_account,
        organization_ids: Some(organization_ids),
        roles: u.rbac_roles.iter().map(|r| site_role(r)).collect(),
        has_ai_seat: false,
    }
}

/// The deprecated single `scope`: `application_connect` wins over `all`.
pub fn legacy_scope(scopes: &[String]) -> String {
    if scopes.iter().any(|s| s == "coder:application_connect") {
        "application_connect".to_owned()
    } else if scopes.iter().any(|s| s == "coder:all") {
        "all".to_owned()
    } else {
        String::new()
    }
}

pub fn api_key(k: &models::ApiKey) -> ApiKey {
    ApiKey {
        id: k.id.clone(),
        user_id: k.user_id,
        last_used: k.last_used,
        expires_at: k.expires_at,
        created_at: k.created_at,
        updated_at: k.updated_at,
        login_type: login_type(&k.login_type),
        scope: legacy_scope(&k.scopes),
        scopes: k.scopes.0.clone(),
        token_name: k.token_name.clone(),
        lifetime_seconds: k.lifetime_seconds,
        allow_list: k.allow_list.0.clone(),
    }
}
