//! Rows as stored. These are not wire types: the server maps them to `gatehouse_sdk`.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

/// Current time at the database's precision (microseconds), so a value survives a round
/// trip through either backend unchanged.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    let micros = now.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(now)
}

/// The Unix epoch: `last_used` of a key that has never been used.
pub fn epoch() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub name: String,
    pub avatar_url: String,
    pub hashed_password: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status: String,
    pub rbac_roles: Json<Vec<String>>,
    pub login_type: String,
    pub deleted: bool,
    pub last_seen_at: DateTime<Utc>,
    pub is_system: bool,
    pub is_service_account: bool,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub name: String,
    /// An encoded password hash (PHC string bytes), or empty for no password login.
    pub hashed_password: Vec<u8>,
    pub status: String,
    pub rbac_roles: Vec<String>,
    pub login_type: String,
    pub organization_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub icon: String,
    pub is_default: bool,
    pub deleted: bool,
    pub default_org_member_roles: Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OrganizationMember {
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub roles: Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApiKey {
    pub id: String,
    pub hashed_secret: Vec<u8>,
    pub user_id: Uuid,
    pub last_used: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub login_type: String,
    pub lifetime_seconds: i64,
    pub ip_address: String,
    pub token_name: String,
    pub scopes: Json<Vec<String>>,
    pub allow_list: Json<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    pub hashed_secret: Vec<u8>,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub login_type: String,
    pub lifetime_seconds: i64,
    pub ip_address: String,
    pub token_name: String,
    pub scopes: Vec<String>,
    pub allow_list: Vec<String>,
}

/// A token list entry: the key plus its owner's username.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApiKeyWithOwner {
    #[sqlx(flatten)]
    pub key: ApiKey,
    pub username: String,
}

/// Everything authentication needs, from one query: the key, its user, the user's org
/// memberships (with each org's default member roles) and group ids.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuthRow {
    #[sqlx(flatten)]
    pub key: ApiKey,
    pub username: String,
    pub email: String,
    pub status: String,
    pub rbac_roles: Json<Vec<String>>,
    pub is_service_account: bool,
    pub user_deleted: bool,
    /// JSON `[{"org": uuid, "roles": [...], "defaults": [...]}]`.
    pub memberships: String,
    /// JSON `[uuid, ...]`.
    pub group_ids: String,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct MembershipJson {
    pub org: Uuid,
    pub roles: Vec<String>,
    pub defaults: Vec<String>,
}

/// Go's zero time `0001-01-01T00:00:00Z`, which Coder stores and sends for "never".
pub fn zero_time() -> DateTime<Utc> {
    chrono::NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(DateTime::UNIX_EPOCH, |n| n.and_utc())
}

#[derive(Debug, Clone)]
pub struct NewOrganization {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub icon: String,
}

/// A membership joined with its user, for member listings.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MemberWithUser {
    #[sqlx(flatten)]
    pub member: OrganizationMember,
    pub username: String,
    pub name: String,
    pub avatar_url: String,
    pub email: String,
    pub status: String,
    pub login_type: String,
    pub last_seen_at: DateTime<Utc>,
    pub user_created_at: DateTime<Utc>,
    pub user_updated_at: DateTime<Utc>,
    pub is_service_account: bool,
    pub rbac_roles: Json<Vec<String>>,
}
