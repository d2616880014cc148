//! The audit log (spec/types.md §9; codersdk/audit.go).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::users::User;

/// The organization of an org-level entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MinimalOrganization {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub icon: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditLog {
    pub id: Uuid,
    pub request_id: Uuid,
    pub time: DateTime<Utc>,
    /// The client address; `""` when unknown.
    pub ip: String,
    pub user_agent: String,
    pub resource_type: String,
    pub resource_id: Uuid,
    pub resource_target: String,
    pub resource_icon: String,
    pub action: String,
    /// Changed fields: `{"field": {"old": …, "new": …, "secret": bool}}`.
    #[schema(value_type = Object)]
    pub diff: serde_json::Value,
    pub status_code: i32,
    #[schema(value_type = Option<Object>)]
    pub additional_fields: Option<serde_json::Value>,
    /// With literal `{user}` / `{target}` placeholders for the UI to fill.
    pub description: String,
    pub resource_link: String,
    pub is_deleted: bool,
    /// The zero UUID for site-level entries.
    pub organization_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<MinimalOrganization>,
    /// The actor; `null` when there is none (a failed sign-in with an unknown email).
    pub user: Option<User>,
}

/// `GET /api/v2/audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditLogResponse {
    pub audit_logs: Vec<AuditLog>,
    pub count: i64,
    pub count_cap: i64,
}

/// codersdk `AuditAction.Friendly`.
pub fn friendly_action(action: &str) -> &str {
    match action {
        "create" => "created",
        "write" => "updated",
        "delete" => "deleted",
        "start" => "started",
        "stop" => "stopped",
        "login" => "logged in",
        "logout" => "logged out",
        "register" => "registered",
        other => other,
    }
}

/// codersdk `ResourceType.FriendlyString`, for the types Gatehouse records.
pub fn friendly_resource(resource_type: &str) -> &str {
    match resource_type {
        "api_key" => "token",
        "user" => "user",
        "organization" => "organization",
        "organization_member" => "organization member",
        "oauth2_provider_app" => "OAuth2 app",
        "oauth2_provider_app_secret" => "OAuth2 app secret",
        "workspace" => "workspace",
        "template" => "template",
        other => other,
    }
}

/// The entry's sentence (Coder's `auditLogDescription`): `{user} created token {target}`,
/// `{user} unsuccessfully attempted to login`, `{user} logged in`.
pub fn description(action: &str, resource_type: &str, status_code: i32) -> String {
    let mut out = String::from("{user} ");
    if status_code >= 400 {
        out.push_str("unsuccessfully attempted to ");
        out.push_str(action);
    } else {
        out.push_str(friendly_action(action));
    }
    // Sign-ins and sign-outs have no target.
    if resource_type == "api_key" && matches!(action, "login" | "logout" | "register") {
        return out;
    }
    out.push(' ');
    out.push_str(friendly_resource(resource_type));
    out.push_str(" {target}");
    out
}

#[cfg(test)]
mod tests {
    use super::description;

    #[test]
    fn descriptions_read_as_coder_writes_them() {
        assert_eq!(
            description("create", "api_key", 201),
            "{user} created token {target}"
        );
        assert_eq!(description("login", "api_key", 201), "{user} logged in");
        assert_eq!(
            description("login", "api_key", 401),
            "{user} unsuccessfully attempted to login"
        );
        assert_eq!(
            description("write", "organization_member", 200),
            "{user} updated organization member {target}"
        );
    }
}
