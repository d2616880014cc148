//! Users, first user and login (spec/types.md §2, §3.1).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Dormant,
    Suspended,
}

impl UserStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Dormant => "dormant",
            UserStatus::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<UserStatus> {
        match s {
            "active" => Some(UserStatus::Active),
            "dormant" => Some(UserStatus::Dormant),
            "suspended" => Some(UserStatus::Suspended),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoginType {
    #[default]
    #[serde(rename = "")]
    Unspecified,
    Password,
    Github,
    Oidc,
    Token,
    None,
    #[serde(rename = "oauth2_provider_app")]
    OAuth2ProviderApp,
}

impl LoginType {
    pub const fn as_str(self) -> &'static str {
        match self {
            LoginType::Unspecified => "",
            LoginType::Password => "password",
            LoginType::Github => "github",
            LoginType::Oidc => "oidc",
            LoginType::Token => "token",
            LoginType::None => "none",
            LoginType::OAuth2ProviderApp => "oauth2_provider_app",
        }
    }

    pub fn parse(s: &str) -> Option<LoginType> {
        Some(match s {
            "" => LoginType::Unspecified,
            "password" => LoginType::Password,
            "github" => LoginType::Github,
            "oidc" => LoginType::Oidc,
            "token" => LoginType::Token,
            "none" => LoginType::None,
            "oauth2_provider_app" => LoginType::OAuth2ProviderApp,
            _ => return None,
        })
    }
}

/// `codersdk.MinimalUser`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MinimalUser {
    pub id: Uuid,
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub avatar_url: String,
}

/// `codersdk.SlimRole`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SlimRole {
    pub name: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub organization_id: String,
}

/// `codersdk.User`, fields in wire order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub avatar_url: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub status: UserStatus,
    pub login_type: LoginType,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_service_account: bool,
    pub organization_ids: Option<Vec<Uuid>>,
    pub roles: Vec<SlimRole>,
    pub has_ai_seat: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateFirstUserRequest {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub trial: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateFirstUserResponse {
    pub user_id: Uuid,
    pub organization_id: Uuid,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LoginWithPasswordRequest {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LoginWithPasswordResponse {
    pub session_token: String,
}

/// `codersdk.CreateUserRequestWithOrgs`. `organization_id` is the legacy single-org form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateUserRequest {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub login_type: LoginType,
    #[serde(default)]
    pub user_status: Option<UserStatus>,
    #[serde(default)]
    pub organization_ids: Option<Vec<Uuid>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// `codersdk.Organization`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub icon: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub is_default: bool,
    pub default_org_member_roles: Vec<String>,
}
