//! The agent-facing API: authenticated with the agent token, acting as the workspace
//! owner limited by the agent scope.

use axum::{extract::State, http::StatusCode};
use gatehouse_httpmw::{
    ApiError, Json, JsonBody, agent::AgentActor, params::workspace_agent::resolve_workspace_agent,
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
    params(("workspaceagent" = String, Path)),
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
