//! Rows as stored. These are not wire types: the server maps them to `gatehouse_sdk`.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
/// JSON columns, for crates that build rows without depending on sqlx.
pub use sqlx::types::Json as JsonColumn;
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

/// Whether a user of this status may authenticate (spec/auth.md §1.7): active users, and
/// dormant ones (who come back to life on their next request); not suspended or deleted.
pub fn may_sign_in(status: &str) -> bool {
    matches!(status, "active" | "dormant")
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
    pub user_name: String,
    pub user_avatar_url: String,
    pub user_created_at: DateTime<Utc>,
    pub user_updated_at: DateTime<Utc>,
    pub user_last_seen_at: DateTime<Utc>,
    pub user_login_type: String,
    pub user_is_system: bool,
    /// JSON `[{"org": uuid, "roles": [...], "defaults": [...], "joined": time}]`.
    pub memberships: String,
    /// JSON `[uuid, ...]`.
    pub group_ids: String,
    /// For an OAuth2 access token, its grant's RFC 8707 resource (`""` = the deployment
    /// root); `None` when no token row points at the key.
    pub oauth2_audience: Option<String>,
    /// For an OIDC or GitHub login key, its user link's `oauth_expiry`; `None` when the
    /// link is missing (or the key is of another login type).
    pub link_expiry: Option<DateTime<Utc>>,
}

impl AuthRow {
    /// The key's user, as far as the row carries it. The password hash is not loaded:
    /// `hashed_password` is empty, which never verifies.
    pub fn user(&self) -> User {
        User {
            id: self.key.user_id,
            email: self.email.clone(),
            username: self.username.clone(),
            name: self.user_name.clone(),
            avatar_url: self.user_avatar_url.clone(),
            hashed_password: Vec::new(),
            created_at: self.user_created_at,
            updated_at: self.user_updated_at,
            status: self.status.clone(),
            rbac_roles: self.rbac_roles.clone(),
            login_type: self.user_login_type.clone(),
            deleted: self.user_deleted,
            last_seen_at: self.user_last_seen_at,
            is_system: self.user_is_system,
            is_service_account: self.is_service_account,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct MembershipJson {
    pub org: Uuid,
    pub roles: Vec<String>,
    pub defaults: Vec<String>,
    /// When the membership was created, as the backend renders it (sortable text).
    #[serde(default, deserialize_with = "any_text")]
    pub joined: String,
}

/// Accepts the join time whether the backend renders it as a string or not.
fn any_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::Deserialize;
    let value = serde_json::Value::deserialize(d)?;
    Ok(match value {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    })
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

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct File {
    pub id: Uuid,
    pub hash: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub mimetype: String,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ProvisionerJob {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub error_code: String,
    pub organization_id: Uuid,
    pub initiator_id: Uuid,
    pub provisioner: String,
    pub storage_method: String,
    #[sqlx(rename = "type")]
    pub job_type: String,
    pub input: Json<serde_json::Value>,
    pub worker_id: Option<Uuid>,
    pub file_id: Uuid,
    pub tags: Json<std::collections::BTreeMap<String, String>>,
    /// Derived in the database (a generated column) so SQL can filter on it.
    pub job_status: String,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Template {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub organization_id: Uuid,
    pub deleted: bool,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub icon: String,
    pub provisioner: String,
    pub active_version_id: Uuid,
    pub created_by: Uuid,
    /// `{"<user id>": [actions]}`.
    pub user_acl: Json<std::collections::BTreeMap<Uuid, Vec<String>>>,
    /// `{"<group id>": [actions]}`; the org id is the "Everyone" group.
    pub group_acl: Json<std::collections::BTreeMap<Uuid, Vec<String>>>,
    pub default_ttl_ms: i64,
    pub activity_bump_ms: i64,
    pub allow_user_autostart: bool,
    pub allow_user_autostop: bool,
    pub allow_user_cancel_workspace_jobs: bool,
    pub require_active_version: bool,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TemplateVersion {
    pub id: Uuid,
    pub template_id: Option<Uuid>,
    pub organization_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub name: String,
    pub message: String,
    pub readme: String,
    pub job_id: Uuid,
    pub created_by: Uuid,
    pub archived: bool,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Workspace {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub owner_id: Uuid,
    pub organization_id: Uuid,
    pub template_id: Uuid,
    pub deleted: bool,
    pub name: String,
    pub autostart_schedule: Option<String>,
    pub ttl: Option<i64>,
    pub last_used_at: DateTime<Utc>,
    pub dormant_at: Option<DateTime<Utc>>,
    pub deleting_at: Option<DateTime<Utc>>,
    pub automatic_updates: String,
    pub favorite: bool,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WorkspaceBuild {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub workspace_id: Uuid,
    pub template_version_id: Uuid,
    pub build_number: i32,
    pub transition: String,
    pub initiator_id: Uuid,
    pub job_id: Uuid,
    pub deadline: Option<DateTime<Utc>>,
    pub max_deadline: Option<DateTime<Utc>>,
    pub reason: String,
    pub daily_cost: i32,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WorkspaceResource {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub job_id: Uuid,
    pub transition: String,
    #[sqlx(rename = "type")]
    pub resource_type: String,
    pub name: String,
    pub hide: bool,
    pub icon: String,
    pub daily_cost: i32,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct WorkspaceAgent {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub name: String,
    pub resource_id: Uuid,
    pub architecture: String,
    pub operating_system: String,
    pub directory: String,
    pub version: String,
    pub api_version: String,
    pub lifecycle_state: String,
    pub parent_id: Option<Uuid>,
    pub api_key_scope: String,
    pub deleted: bool,
    pub first_connected_at: Option<DateTime<Utc>>,
    pub last_connected_at: Option<DateTime<Utc>>,
    pub disconnected_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub ready_at: Option<DateTime<Utc>>,
    pub connection_timeout_seconds: i32,
    pub troubleshooting_url: String,
    pub display_order: i32,
}

/// Everything agent authentication needs, from one query: the agent, the build it
/// belongs to (not always the latest, see the shutdown window), the workspace, and the
/// owner's roles, memberships and groups.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AgentAuthRow {
    pub agent_id: Uuid,
    pub agent_name: String,
    pub agent_resource_id: Uuid,
    pub agent_parent_id: Option<Uuid>,
    pub agent_api_key_scope: String,
    pub agent_directory: String,
    pub build_id: Uuid,
    pub build_number: i32,
    pub build_transition: String,
    pub build_template_version_id: Uuid,
    pub build_job_id: Uuid,
    pub workspace_id: Uuid,
    pub workspace_name: String,
    pub workspace_owner_id: Uuid,
    pub workspace_organization_id: Uuid,
    pub workspace_template_id: Uuid,
    pub owner_username: String,
    pub owner_status: String,
    pub owner_rbac_roles: Json<Vec<String>>,
    pub owner_is_service_account: bool,
    /// The workspace's task, if it runs one: the agent scope names it.
    pub task_id: Option<Uuid>,
    /// JSON `[{"org": uuid, "roles": [...], "defaults": [...]}]`.
    pub memberships: String,
    /// JSON `[uuid, ...]`.
    pub group_ids: String,
}

/// Why an agent token that matched an agent was refused (decisions.md 36).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AgentAuthDiagnosis {
    pub agent_deleted: bool,
    pub workspace_deleted: bool,
    pub build_number: i32,
    pub transition: String,
    pub job_status: String,
    pub latest_build_number: i32,
    pub latest_transition: String,
    pub latest_job_status: String,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Task {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub display_name: String,
    pub workspace_id: Option<Uuid>,
    pub template_version_id: Uuid,
    pub prompt: String,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// An OAuth2 client (spec/oauth2.md §8, §9.12).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OAuth2App {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub name: String,
    pub icon: String,
    /// Never empty; the first entry is the primary (`callback_url`).
    pub redirect_uris: Json<Vec<String>>,
    /// `confidential` or `public`.
    pub client_type: String,
    pub dynamically_registered: bool,
    /// Space-separated scope allowlist; empty = unrestricted.
    pub scope: String,
    pub grant_types: Json<Vec<String>>,
    pub response_types: Json<Vec<String>>,
    pub token_endpoint_auth_method: String,
    /// The other RFC 7591 metadata as registered (client_name, client_uri, …).
    pub metadata: Json<serde_json::Value>,
    pub client_id_issued_at: Option<DateTime<Utc>>,
    /// SHA-256 of the RFC 7592 registration access token.
    pub registration_access_token: Option<Vec<u8>>,
}

impl OAuth2App {
    pub fn is_public(&self) -> bool {
        self.client_type == "public"
    }

    pub fn callback_url(&self) -> &str {
        self.redirect_uris.first().map_or("", String::as_str)
    }
}

/// A client secret; only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OAuth2AppSecret {
    pub id: Uuid,
    pub app_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub secret_prefix: String,
    pub hashed_secret: Vec<u8>,
    pub display_secret: String,
}

/// An authorization code (spec/oauth2.md §2.4; decisions.md 27).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OAuth2Code {
    pub id: Uuid,
    pub app_id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub secret_prefix: String,
    pub hashed_secret: Vec<u8>,
    pub code_challenge: String,
    pub redirect_uri: Option<String>,
    pub resource_uri: Option<String>,
    pub scope: String,
    pub state_hash: Option<String>,
    pub used_at: Option<DateTime<Utc>>,
    pub grant_id: Option<Uuid>,
}

/// What a code exchange or refresh creates: the grant (once) and a token row.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOAuth2Grant {
    pub id: Uuid,
    pub app_id: Uuid,
    pub user_id: Uuid,
    pub app_secret_id: Option<Uuid>,
    pub resource_uri: Option<String>,
    pub scope: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewOAuth2Token {
    pub id: Uuid,
    pub hash_prefix: String,
    pub refresh_hash: Vec<u8>,
    pub expires_at: DateTime<Utc>,
}

/// A refresh-token row with its grant.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OAuth2Token {
    pub id: Uuid,
    pub grant_id: Uuid,
    pub hash_prefix: String,
    pub refresh_hash: Vec<u8>,
    pub api_key_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub app_id: Uuid,
    pub user_id: Uuid,
    pub app_secret_id: Option<Uuid>,
    pub resource_uri: Option<String>,
    pub scope: String,
    /// The grant's user's status: a suspended user's refresh token mints nothing.
    pub user_status: String,
}
