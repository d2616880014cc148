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

pub fn organization(o: &models::Organization) -> gatehouse_sdk::users::Organization {
    gatehouse_sdk::users::Organization {
        id: o.id,
        name: o.name.clone(),
        display_name: o.display_name.clone(),
        icon: o.icon.clone(),
        description: o.description.clone(),
        created_at: o.created_at,
        updated_at: o.updated_at,
        is_default: o.is_default,
        default_org_member_roles: o.default_org_member_roles.0.clone(),
    }
}

pub fn org_role(name: &str, org: Uuid) -> SlimRole {
    SlimRole {
        name: name.to_owned(),
        display_name: roles::builtin(name)
            .map(|r| r.display_name.to_owned())
            .unwrap_or_default(),
        organization_id: org.to_string(),
    }
}

pub fn member(m: &models::OrganizationMember) -> gatehouse_sdk::organizations::OrganizationMember {
    gatehouse_sdk::organizations::OrganizationMember {
        user_id: m.user_id,
        organization_id: m.organization_id,
        created_at: m.created_at,
        updated_at: m.updated_at,
        roles: m
            .roles
            .iter()
            .map(|r| org_role(r, m.organization_id))
            .collect(),
    }
}

pub fn member_with_user(
    m: &models::MemberWithUser,
) -> gatehouse_sdk::organizations::OrganizationMemberWithUserData {
    gatehouse_sdk::organizations::OrganizationMemberWithUserData {
        username: m.username.clone(),
        name: m.name.clone(),
        avatar_url: m.avatar_url.clone(),
        email: m.email.clone(),
        status: UserStatus::parse(&m.status).unwrap_or(UserStatus::Dormant),
        login_type: login_type(&m.login_type),
        last_seen_at: m.last_seen_at,
        user_created_at: m.user_created_at,
        user_updated_at: m.user_updated_at,
        is_service_account: m.is_service_account,
        global_roles: m.rbac_roles.iter().map(|r| site_role(r)).collect(),
        has_ai_seat: false,
        user_id: m.member.user_id,
        organization_id: m.member.organization_id,
        created_at: m.member.created_at,
        updated_at: m.member.updated_at,
        roles: m
            .member
            .roles
            .iter()
            .map(|r| org_role(r, m.member.organization_id))
            .collect(),
    }
}

fn permissions(
    perms: &[gatehouse_rbac::Permission],
) -> Vec<gatehouse_sdk::organizations::Permission> {
    perms
        .iter()
        .map(|p| gatehouse_sdk::organizations::Permission {
            negate: p.negate,
            resource_type: p.resource.as_str().to_owned(),
            action: p.action.as_str().to_owned(),
        })
        .collect()
}

pub fn assignable_role(
    def: &gatehouse_rbac::RoleDef,
    org: Option<Uuid>,
    assignable: bool,
) -> gatehouse_sdk::organizations::AssignableRole {
    gatehouse_sdk::organizations::AssignableRole {
        name: def.name.to_owned(),
        organization_id: org.map(|o| o.to_string()).unwrap_or_default(),
        display_name: def.display_name.to_owned(),
        site_permissions: permissions(def.site),
        user_permissions: permissions(def.user),
        organization_permissions: permissions(def.org),
        organization_member_permissions: permissions(def.member),
        assignable,
        built_in: true,
    }
}

pub fn job(j: &models::ProvisionerJob) -> gatehouse_sdk::workspaces::ProvisionerJob {
    use gatehouse_sdk::workspaces::{
        ProvisionerJobInput, ProvisionerJobMetadata, ProvisionerJobStatus,
    };
    let input: ProvisionerJobInput = serde_json::from_value(j.input.0.clone()).unwrap_or_default();
    gatehouse_sdk::workspaces::ProvisionerJob {
        id: j.id,
        created_at: j.created_at,
        started_at: j.started_at,
        completed_at: j.completed_at,
        canceled_at: j.canceled_at,
        error: j.error.clone().unwrap_or_default(),
        error_code: j.error_code.clone(),
        status: ProvisionerJobStatus::parse(&j.job_status),
        worker_id: j.worker_id,
        file_id: j.file_id,
        tags: j.tags.0.clone(),
        queue_position: 0,
        queue_size: 0,
        organization_id: j.organization_id,
        initiator_id: j.initiator_id,
        input,
        job_type: j.job_type.clone(),
        metadata: ProvisionerJobMetadata::default(),
        logs_overflowed: false,
    }
}

pub fn minimal_user(u: &models::User) -> gatehouse_sdk::users::MinimalUser {
    gatehouse_sdk::users::MinimalUser {
        id: u.id,
        username: u.username.clone(),
        name: u.name.clone(),
        avatar_url: u.avatar_url.clone(),
    }
}

/// `ConvertWorkspaceStatus` (spec/types.md §7.3).
pub fn workspace_status(job_status: &str, transition: &str) -> &'static str {
    match (job_status, transition) {
        ("pending", _) => "pending",
        ("running", "start") => "starting",
        ("running", "stop") => "stopping",
        ("running", "delete") => "deleting",
        ("succeeded", "start") => "running",
        ("succeeded", "stop") => "stopped",
        ("succeeded", "delete") => "deleted",
        ("canceling", _) => "canceling",
        ("canceled", _) => "canceled",
        _ => "failed",
    }
}
