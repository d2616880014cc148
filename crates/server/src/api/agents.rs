//! The agent-facing API: authenticated with the agent token, acting as the workspace
//! owner limited by the agent scope.

use axum::{extract::State, http::StatusCode};
use gatehouse_httpmw::{
    ApiError, Json, JsonBody, authn::AgentActor, params::workspace_agent::resolve_workspace_agent,
};
use gatehouse_sdk::{
    Response as Envelope,
    workspaces::{AgentManifest, PatchAgentLogs},
};
use gatehouse_store::objects::workspace_object;

use crate::app::AppState;

/// What an agent needs to start; also answers during the workspace's shutdown.
#[utoipa::path(get, path = "/api/v2/workspaceagents/me/manifest", tag = "Agents",
    security(("CoderSessionToken" = [])),
    responses((status = 200, body = AgentManifest), (status = 401, body = Envelope)))]
pub async fn manifest(agent: AgentActor) -> Json<AgentManifest> {
    // Everything comes from the authentication row: one query for the whole request.
    let row = &agent.0.row;
    Json(
        StatusCode::OK,
        AgentManifest {
            agent_id: row.agent_id,
            agent_name: row.agent_name.clone(),
            owner_name: row.owner_username.clone(),
            workspace_id: row.workspace_id,
            workspace_name: row.workspace_name.clone(),
            directory: row.agent_directory.clone(),
            build_id: row.build_id,
            build_number: row.build_number,
        },
    )
}

/// Append log lines (e.g. from shutdown scripts).
#[utoipa::path(patch, path = "/api/v2/workspaceagents/me/logs", tag = "Agents",
    security(("CoderSessionToken" = [])), request_body = PatchAgentLogs,
    responses((status = 200, body = Envelope), (status = 400, body = Envelope), (status = 401, body = Envelope)))]
pub async fn patch_logs(
    State(app): State<AppState>,
    agent: AgentActor,
    JsonBody(req): JsonBody<PatchAgentLogs>,
) -> Result<Json<Envelope>, ApiError> {
    let mut lines = Vec::with_capacity(req.logs.len());
    for (i, log) in req.logs.into_iter().enumerate() {
        let level = if log.level.is_empty() {
            "info".to_owned()
        } else {
            log.level
        };
        if !matches!(
            level.as_str(),
            "trace" | "debug" | "info" | "warn" | "error"
        ) {
            return Err(ApiError::bad_request("Validation failed.").with_validation(
                format!("logs[{i}].level"),
                "must be one of trace, debug, info, warn, error",
            ));
        }
        lines.push((level, log.output));
    }
    let row = &agent.0.row;
    let workspace = app
        .store
        .workspace_by_id(&agent.0.subject, row.workspace_id)
        .await?;
    app.store
        .insert_agent_logs(
            &agent.0.subject,
            &workspace_object(&workspace),
            row.agent_id,
            &lines,
        )
        .await?;
    Ok(Json(StatusCode::OK, Envelope::message("Logs appended.")))
}

/// Get an agent by id.
#[utoipa::path(get, path = "/api/v2/workspaceagents/{workspaceagent}", tag = "Agents",
    params(("workspaceagent" = Uuid, Path)),
    responses((status = 200, body = gatehouse_sdk::workspaces::WorkspaceAgent), (status = 400, body = Envelope), (status = 404, body = Envelope)))]
pub async fn get_agent(
    State(app): State<AppState>,
    actor: gatehouse_httpmw::Actor,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> Result<Json<gatehouse_sdk::workspaces::WorkspaceAgent>, ApiError> {
    let found = resolve_workspace_agent(&app.store, &actor, &raw).await?;
    Ok(Json(
        StatusCode::OK,
        crate::api::workspaces::agent_json(&found.agent),
    ))
}

/// Dev-container agent names (Coder's `provisioner.AgentNameRegex`).
const AGENT_NAME_REGEX: &str = "(?i)^[a-z0-9](-?[a-z0-9])*$";
const DISPLAY_APPS: &[&str] = &[
    "vscode",
    "vscode_insiders",
    "web_terminal",
    "port_forwarding_helper",
    "ssh_helper",
];

fn valid_agent_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .split('-')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// The workspace object the sub-agent API checks against: the agent's own workspace.
fn agent_workspace(row: &gatehouse_store::models::AgentAuthRow) -> gatehouse_rbac::Object<'static> {
    gatehouse_rbac::Object::of(gatehouse_rbac::ResourceType::Workspace)
        .with_id(row.workspace_id)
        .in_org(row.workspace_organization_id)
        .owned_by(row.workspace_owner_id)
}

fn require_top_level(agent: &AgentActor) -> Result<(), ApiError> {
    if agent.0.row.agent_parent_id.is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Only a top-level agent may manage sub-agents.",
        ));
    }
    Ok(())
}

/// Create a dev-container sub-agent (spec/ops.md §13). Its token is returned now and
/// by the list, from an encrypted copy (decisions.md 35).
#[utoipa::path(post, path = "/api/v2/workspaceagents/me/subagents", tag = "Agents",
    security(("CoderSessionToken" = [])), request_body = gatehouse_sdk::workspaces::CreateSubAgentRequest,
    responses((status = 201, body = gatehouse_sdk::workspaces::CreateSubAgentResponse), (status = 400, body = Envelope), (status = 401, body = Envelope), (status = 403, body = Envelope)))]
pub async fn create_sub_agent(
    State(app): State<AppState>,
    agent: AgentActor,
    JsonBody(req): JsonBody<gatehouse_sdk::workspaces::CreateSubAgentRequest>,
) -> Result<Json<gatehouse_sdk::workspaces::CreateSubAgentResponse>, ApiError> {
    use gatehouse_sdk::workspaces::{AppCreationError, CreateSubAgentResponse, SubAgent};
    require_top_level(&agent)?;
    if req.id.is_some() {
        return Err(ApiError::bad_request(
            "Updating a pre-provisioned sub-agent is not supported yet.",
        )
        .with_validation("id", "leave empty to create a new sub-agent"));
    }
    if req.name.is_empty() {
        return Err(ApiError::bad_request("agent name cannot be empty")
            .with_validation("name", "is required"));
    }
    if !valid_agent_name(&req.name) {
        let message = format!(
            "agent name {:?} does not match regex {AGENT_NAME_REGEX:?}",
            req.name
        );
        return Err(ApiError::bad_request(message.clone()).with_validation("name", message));
    }
    let mut err = ApiError::bad_request("Validation failed.");
    let mut bad = false;
    for (i, app_name) in req.display_apps.iter().enumerate() {
        if !DISPLAY_APPS.contains(&app_name.to_ascii_lowercase().as_str()) {
            err = err.with_validation(
                format!("display_apps[{i}]"),
                format!("{app_name:?} is not a valid display app"),
            );
            bad = true;
        }
    }
    if bad {
        return Err(err);
    }
    let row = &agent.0.row;
    let token = uuid::Uuid::new_v4();
    let new = gatehouse_store::queries::agents::NewSubAgent {
        id: uuid::Uuid::now_v7(),
        name: req.name.clone(),
        directory: req.directory,
        architecture: req.architecture,
        operating_system: req.operating_system,
        token,
        token_hash: gatehouse_httpmw::token::agent_token_hash(token).to_vec(),
    };
    app.store
        .insert_sub_agent(&agent.0.subject, &agent_workspace(row), row.agent_id, &new)
        .await?;
    // Apps are reported per app and never fail the request (spec/ops.md §13.3).
    let app_creation_errors = (0..req.apps.len())
        .map(|index| AppCreationError {
            index,
            field: String::new(),
            error: "workspace apps are not supported by Gatehouse yet".into(),
        })
        .collect();
    Ok(Json(
        StatusCode::CREATED,
        CreateSubAgentResponse {
            agent: SubAgent {
                name: new.name,
                id: new.id,
                auth_token: Some(token),
            },
            app_creation_errors,
        },
    ))
}

/// List this agent's sub-agents with their tokens.
#[utoipa::path(get, path = "/api/v2/workspaceagents/me/subagents", tag = "Agents",
    security(("CoderSessionToken" = [])),
    responses((status = 200, body = gatehouse_sdk::workspaces::ListSubAgentsResponse), (status = 401, body = Envelope)))]
pub async fn list_sub_agents(
    State(app): State<AppState>,
    agent: AgentActor,
) -> Result<Json<gatehouse_sdk::workspaces::ListSubAgentsResponse>, ApiError> {
    use gatehouse_sdk::workspaces::{ListSubAgentsResponse, SubAgent};
    require_top_level(&agent)?;
    let row = &agent.0.row;
    let list = app
        .store
        .sub_agents(&agent.0.subject, &agent_workspace(row), row.agent_id)
        .await?;
    let agents = list
        .into_iter()
        .map(|s| SubAgent {
            name: s.name,
            id: s.id,
            auth_token: s.auth_token,
        })
        .collect();
    Ok(Json(StatusCode::OK, ListSubAgentsResponse { agents }))
}

/// Delete one of this agent's sub-agents; its token stops working at once.
#[utoipa::path(delete, path = "/api/v2/workspaceagents/me/subagents/{subagent}", tag = "Agents",
    security(("CoderSessionToken" = [])), params(("subagent" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 400, body = Envelope), (status = 401, body = Envelope), (status = 404, body = Envelope)))]
pub async fn delete_sub_agent(
    State(app): State<AppState>,
    agent: AgentActor,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    require_top_level(&agent)?;
    let id = crate::api::parse_uuid_param("subagent", &raw)?;
    let row = &agent.0.row;
    app.store
        .delete_sub_agent(&agent.0.subject, &agent_workspace(row), row.agent_id, id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
