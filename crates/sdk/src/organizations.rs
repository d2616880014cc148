//! Organizations, members and roles (spec/types.md §3, §5).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::users::{LoginType, SlimRole, UserStatus};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateOrganizationRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon: String,
}

/// `codersdk.OrganizationMember`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrganizationMember {
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub roles: Vec<SlimRole>,
}

/// `codersdk.OrganizationMemberWithUserData`: user fields first, membership fields last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrganizationMemberWithUserData {
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub avatar_url: String,
    pub email: String,
    pub status: UserStatus,
    pub login_type: LoginType,
    pub last_seen_at: DateTime<Utc>,
    pub user_created_at: DateTime<Utc>,
    pub user_updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_service_account: bool,
    pub global_roles: Vec<SlimRole>,
    pub has_ai_seat: bool,
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub roles: Vec<SlimRole>,
}

/// `codersdk.UpdateRoles`: the complete new set of role names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UpdateRoles {
    #[serde(default)]
    pub roles: Vec<String>,
}

/// `codersdk.Permission`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Permission {
    pub negate: bool,
    pub resource_type: String,
    pub action: String,
}

/// `codersdk.AssignableRoles` (= `Role` fields, then `assignable`, `built_in`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AssignableRole {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub organization_id: String,
    pub display_name: String,
    pub site_permissions: Vec<Permission>,
    pub user_permissions: Vec<Permission>,
    pub organization_permissions: Vec<Permission>,
    pub organization_member_permissions: Vec<Permission>,
    pub assignable: bool,
    pub built_in: bool,
}
