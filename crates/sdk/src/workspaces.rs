//! Files, templates, versions, provisioner jobs, workspaces, builds, resources and agents
//! (spec/types.md §6–§7), for the subset Gatehouse serves.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::users::MinimalUser;

/// `POST /api/v2/files`: `hash` is the new file's id, as in Coder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UploadResponse {
    pub hash: Uuid,
}

/// `codersdk.ProvisionerJobStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionerJobStatus {
    Pending,
    Running,
    Succeeded,
    Canceling,
    Canceled,
    Failed,
    Unknown,
}

impl ProvisionerJobStatus {
    pub fn parse(s: &str) -> ProvisionerJobStatus {
        match s {
            "pending" => ProvisionerJobStatus::Pending,
            "running" => ProvisionerJobStatus::Running,
            "succeeded" => ProvisionerJobStatus::Succeeded,
            "canceling" => ProvisionerJobStatus::Canceling,
            "canceled" => ProvisionerJobStatus::Canceled,
            "failed" => ProvisionerJobStatus::Failed,
            _ => ProvisionerJobStatus::Unknown,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProvisionerJobInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_version_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_build_id: Option<Uuid>,
}

/// Zero-valued outside the org job routes (spec/types.md §6.5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProvisionerJobMetadata {
    pub template_version_name: String,
    pub template_id: Uuid,
    pub template_name: String,
    pub template_display_name: String,
    pub template_icon: String,
}

/// `codersdk.ProvisionerJob`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProvisionerJob {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error_code: String,
    pub status: ProvisionerJobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<Uuid>,
    pub file_id: Uuid,
    pub tags: BTreeMap<String, String>,
    pub queue_position: i64,
    pub queue_size: i64,
    pub organization_id: Uuid,
    pub initiator_id: Uuid,
    pub input: ProvisionerJobInput,
    #[serde(rename = "type")]
    pub job_type: String,
    pub metadata: ProvisionerJobMetadata,
    pub logs_overflowed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateTemplateVersionRequest {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default)]
    pub template_id: Option<Uuid>,
    #[serde(default)]
    pub storage_method: String,
    #[serde(default)]
    pub file_id: Option<Uuid>,
    #[serde(default)]
    pub provisioner: String,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// `codersdk.TemplateVersion`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TemplateVersion {
    pub id: Uuid,
    pub template_id: Uuid,
    pub organization_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub name: String,
    pub message: String,
    pub job: ProvisionerJob,
    pub readme: String,
    pub created_by: MinimalUser,
    pub archived: bool,
    pub has_external_agent: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateTemplateRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon: String,
    #[serde(default)]
    pub template_version_id: Option<Uuid>,
    #[serde(default)]
    pub disable_everyone_group_access: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TransitionStats {
    #[serde(rename = "P50")]
    pub p50: Option<i64>,
    #[serde(rename = "P95")]
    pub p95: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AutostopRequirement {
    pub days_of_week: Vec<String>,
    pub weeks: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AutostartRequirement {
    pub days_of_week: Vec<String>,
}

/// `codersdk.Template`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Template {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub organization_id: Uuid,
    pub organization_name: String,
    pub organization_display_name: String,
    pub organization_icon: String,
    pub name: String,
    pub display_name: String,
    pub provisioner: String,
    pub active_version_id: Uuid,
    pub active_user_count: i64,
    pub build_time_stats: BTreeMap<String, TransitionStats>,
    pub description: String,
    pub deprecated: bool,
    pub deprecation_message: String,
    pub deleted: bool,
    pub icon: String,
    pub default_ttl_ms: i64,
    pub activity_bump_ms: i64,
    pub time_til_autostop_notify_ms: i64,
    pub autostop_requirement: AutostopRequirement,
    pub autostart_requirement: AutostartRequirement,
    pub created_by_id: Uuid,
    pub created_by_name: String,
    pub allow_user_autostart: bool,
    pub allow_user_autostop: bool,
    pub allow_user_cancel_workspace_jobs: bool,
    pub failure_ttl_ms: i64,
    pub time_til_dormant_ms: i64,
    pub time_til_dormant_autodelete_ms: i64,
    pub require_active_version: bool,
    pub max_port_share_level: String,
    pub cors_behavior: String,
    pub use_classic_parameter_flow: bool,
    pub disable_module_cache: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateWorkspaceRequest {
    #[serde(default)]
    pub template_id: Option<Uuid>,
    #[serde(default)]
    pub template_version_id: Option<Uuid>,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autostart_schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub automatic_updates: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateWorkspaceBuildRequest {
    #[serde(default)]
    pub template_version_id: Option<Uuid>,
    #[serde(default)]
    pub transition: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentHealth {
    pub healthy: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// `codersdk.WorkspaceAgent`, the fields Gatehouse tracks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceAgent {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_connected_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_connected_at: Option<DateTime<Utc>>,
    pub status: String,
    pub lifecycle_state: String,
    pub name: String,
    pub resource_id: Uuid,
    pub architecture: String,
    pub environment_variables: Option<BTreeMap<String, String>>,
    pub operating_system: String,
    pub logs_length: i64,
    pub logs_overflowed: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub directory: String,
    pub version: String,
    pub api_version: String,
    pub apps: Vec<serde_json::Value>,
    pub connection_timeout_seconds: i32,
    pub troubleshooting_url: String,
    pub subsystems: Vec<String>,
    pub health: AgentHealth,
    pub display_apps: Vec<String>,
    pub log_sources: Vec<serde_json::Value>,
    pub scripts: Vec<serde_json::Value>,
    pub startup_script_behavior: String,
}

/// `codersdk.WorkspaceResource`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceResource {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub job_id: Uuid,
    pub workspace_transition: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub name: String,
    pub hide: bool,
    pub icon: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<WorkspaceAgent>,
    pub daily_cost: i32,
}

/// `codersdk.WorkspaceBuild`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceBuild {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub workspace_id: Uuid,
    pub workspace_name: String,
    pub workspace_owner_id: Uuid,
    pub workspace_owner_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workspace_owner_avatar_url: String,
    pub template_version_id: Uuid,
    pub template_version_name: String,
    pub build_number: i32,
    pub transition: String,
    pub initiator_id: Uuid,
    pub initiator_name: String,
    pub job: ProvisionerJob,
    pub reason: String,
    pub resources: Vec<WorkspaceResource>,
    pub deadline: Option<DateTime<Utc>>,
    pub max_deadline: Option<DateTime<Utc>>,
    pub status: String,
    pub daily_cost: i32,
    pub template_version_preset_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceHealth {
    pub healthy: bool,
    pub failing_agents: Vec<Uuid>,
}

/// `codersdk.Workspace`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Workspace {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub owner_id: Uuid,
    pub owner_name: String,
    pub owner_avatar_url: String,
    pub organization_id: Uuid,
    pub organization_name: String,
    pub template_id: Uuid,
    pub template_name: String,
    pub template_display_name: String,
    pub template_icon: String,
    pub template_allow_user_cancel_workspace_jobs: bool,
    pub template_active_version_id: Uuid,
    pub template_require_active_version: bool,
    pub template_use_classic_parameter_flow: bool,
    pub latest_build: WorkspaceBuild,
    pub latest_app_status: Option<serde_json::Value>,
    pub outdated: bool,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autostart_schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<i64>,
    pub last_used_at: DateTime<Utc>,
    pub deleting_at: Option<DateTime<Utc>>,
    pub dormant_at: Option<DateTime<Utc>>,
    pub health: WorkspaceHealth,
    pub automatic_updates: String,
    pub allow_renames: bool,
    pub favorite: bool,
    pub next_start_at: Option<DateTime<Utc>>,
    pub is_prebuild: bool,
    pub task_id: Option<Uuid>,
}

/// `GET /api/v2/workspaces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspacesResponse {
    pub workspaces: Vec<Workspace>,
    pub count: i64,
}

/// `GET /api/v2/workspaceagents/me/manifest`: what an agent needs to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentManifest {
    pub agent_id: Uuid,
    pub agent_name: String,
    pub owner_name: String,
    pub workspace_id: Uuid,
    pub workspace_name: String,
    pub directory: String,
    /// The build the agent belongs to; during shutdown this is the start build, not the
    /// (newer) stop build.
    pub build_id: Uuid,
    pub build_number: i32,
}

/// One stored line of an agent's log (`GET /api/v2/workspaceagents/{id}/logs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceAgentLog {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub output: String,
    pub level: String,
}

/// One line for `PATCH /api/v2/workspaceagents/me/logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentLog {
    #[serde(default)]
    pub level: String,
    pub output: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PatchAgentLogs {
    #[serde(default)]
    pub logs: Vec<AgentLog>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateTaskRequest {
    #[serde(default)]
    pub template_version_id: Option<Uuid>,
    #[serde(default)]
    pub input: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
}

/// `codersdk.Task` (the fields Gatehouse derives).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Task {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub owner_id: Uuid,
    pub owner_name: String,
    pub name: String,
    pub display_name: String,
    pub template_id: Uuid,
    pub template_version_id: Uuid,
    pub template_name: String,
    pub template_display_name: String,
    pub template_icon: String,
    pub workspace_id: Option<Uuid>,
    pub workspace_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_build_number: Option<i32>,
    pub workspace_agent_id: Option<Uuid>,
    pub workspace_agent_lifecycle: Option<String>,
    pub initial_prompt: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TasksListResponse {
    pub tasks: Vec<Task>,
    pub count: i64,
}

/// `CreateSubAgentRequest` (the agent API's proto, in snake_case JSON; decisions.md 37).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateSubAgentRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub directory: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub operating_system: String,
    #[serde(default)]
    pub apps: Vec<serde_json::Value>,
    #[serde(default)]
    pub display_apps: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubAgent {
    pub name: String,
    pub id: Uuid,
    pub auth_token: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AppCreationError {
    pub index: usize,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateSubAgentResponse {
    pub agent: SubAgent,
    pub app_creation_errors: Vec<AppCreationError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListSubAgentsResponse {
    pub agents: Vec<SubAgent>,
}

/// `POST /api/v2/workspaceproxies` (decisions.md 41: the proxy's URLs are given here,
/// not by a proxy registering itself).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateWorkspaceProxyRequest {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub icon: String,
    pub path_app_url: String,
    #[serde(default)]
    pub wildcard_hostname: String,
}

/// A proxy's health as Coder reports it. Gatehouse does not probe proxies, so a proxy is
/// `unregistered` (it never registered itself) and not `healthy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceProxyStatus {
    pub status: String,
    pub report: ProxyHealthReport,
    pub checked_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProxyHealthReport {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// `codersdk.WorkspaceProxy` (spec/types.md §12.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceProxy {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub icon_url: String,
    pub healthy: bool,
    pub path_app_url: String,
    pub wildcard_hostname: String,
    pub derp_enabled: bool,
    pub derp_only: bool,
    pub status: WorkspaceProxyStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted: bool,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateWorkspaceProxyResponse {
    pub proxy: WorkspaceProxy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceProxies {
    pub regions: Vec<WorkspaceProxy>,
}
