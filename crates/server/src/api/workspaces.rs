//! Workspaces and builds.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
};
use chrono::Utc;
use gatehouse_httpmw::{Actor, ApiError, Json, JsonBody, params::user::resolve_user};
use gatehouse_sdk::{
    Response as Envelope,
    workspaces::{
        AgentHealth, CreateWorkspaceBuildRequest, CreateWorkspaceRequest, Workspace,
        WorkspaceAgent, WorkspaceBuild, WorkspaceHealth, WorkspaceResource, WorkspacesResponse,
    },
};
use gatehouse_store::{
    Conflict, PREBUILDS_USER_ID, StoreError, models,
    queries::{
        builds::{BuildWithJob, NewBuild},
        workspaces::NewWorkspace,
    },
    system::system_restricted,
};
use uuid::Uuid;

use crate::{
    api::{convert, parse_uuid_param, workspace_filter::WorkspaceFilter},
    app::AppState,
    validate,
};

pub(crate) fn agent_json(a: &models::WorkspaceAgent) -> WorkspaceAgent {
    // Gatehouse has no agent connection tracking yet: an agent that never connected is
    // `connecting` until its connection timeout passes, then `timeout`.
    let timed_out = a.connection_timeout_seconds > 0
        && (Utc::now() - a.created_at).num_seconds() > i64::from(a.connection_timeout_seconds);
    let status = if a.first_connected_at.is_none() {
        if timed_out { "timeout" } else { "connecting" }
    } else {
        "connected"
    };
    let health = match status {
        "connecting" => AgentHealth {
            healthy: false,
            reason: "agent has not yet connected".into(),
        },
        "timeout" => AgentHealth {
            healthy: false,
            reason: "agent is taking too long to connect".into(),
        },
        _ => AgentHealth {
            healthy: true,
            reason: String::new(),
        },
    };
    WorkspaceAgent {
        id: a.id,
        parent_id: a.parent_id,
        created_at: a.created_at,
        updated_at: a.updated_at,
        first_connected_at: a.first_connected_at,
        last_connected_at: a.last_connected_at,
        status: status.into(),
        lifecycle_state: a.lifecycle_state.clone(),
        name: a.name.clone(),
        resource_id: a.resource_id,
        architecture: a.architecture.clone(),
        environment_variables: None,
        operating_system: a.operating_system.clone(),
        logs_length: 0,
        logs_overflowed: false,
        directory: a.directory.clone(),
        version: a.version.clone(),
        api_version: a.api_version.clone(),
        apps: Vec::new(),
        connection_timeout_seconds: a.connection_timeout_seconds,
        troubleshooting_url: a.troubleshooting_url.clone(),
        subsystems: Vec::new(),
        health,
        display_apps: Vec::new(),
        log_sources: Vec::new(),
        scripts: Vec::new(),
        startup_script_behavior: "non-blocking".into(),
    }
}

pub(crate) async fn build_json(
    app: &AppState,
    subject: &gatehouse_rbac::Subject,
    w: &models::Workspace,
    b: &BuildWithJob,
) -> Result<WorkspaceBuild, ApiError> {
    let system = system_restricted();
    let owner = app.store.user_by_id(system, w.owner_id).await?;
    let initiator = app.store.user_by_id(system, b.build.initiator_id).await?;
    let (version, _) = app
        .store
        .template_version_by_id(system, b.build.template_version_id)
        .await?;
    let resources = app
        .store
        .resources_for_job(subject, w, b.build.job_id)
        .await?;
    Ok(WorkspaceBuild {
        id: b.build.id,
        created_at: b.build.created_at,
        updated_at: b.build.updated_at,
        workspace_id: w.id,
        workspace_name: w.name.clone(),
        workspace_owner_id: w.owner_id,
        workspace_owner_name: owner.username,
        workspace_owner_avatar_url: owner.avatar_url,
        template_version_id: b.build.template_version_id,
        template_version_name: version.name,
        build_number: b.build.build_number,
        transition: b.build.transition.clone(),
        initiator_id: b.build.initiator_id,
        initiator_name: initiator.username,
        job: convert::job(&b.job),
        reason: b.build.reason.clone(),
        resources: resources
            .iter()
            .map(|(r, agents)| WorkspaceResource {
                id: r.id,
                created_at: r.created_at,
                job_id: r.job_id,
                workspace_transition: r.transition.clone(),
                resource_type: r.resource_type.clone(),
                name: r.name.clone(),
                hide: r.hide,
                icon: r.icon.clone(),
                agents: agents.iter().map(agent_json).collect(),
                daily_cost: r.daily_cost,
            })
            .collect(),
        deadline: b.build.deadline,
        max_deadline: b.build.max_deadline,
        status: convert::workspace_status(&b.job.job_status, &b.build.transition).into(),
        daily_cost: b.build.daily_cost,
        template_version_preset_id: None,
    })
}

pub(crate) async fn workspace_json(
    app: &AppState,
    actor: &Actor,
    w: &models::Workspace,
) -> Result<Workspace, ApiError> {
    let system = system_restricted();
    let owner = app.store.user_by_id(system, w.owner_id).await?;
    let org = app
        .store
        .organization_by_id(system, w.organization_id)
        .await?;
    let template = app.store.template_by_id(system, w.template_id).await?;
    let latest = app.store.latest_build(actor.subject(), w).await?;
    let latest_build = build_json(app, actor.subject(), w, &latest).await?;
    let failing_agents: Vec<Uuid> = latest_build
        .resources
        .iter()
        .flat_map(|r| r.agents.iter())
        .filter(|a| a.parent_id.is_none() && !a.health.healthy)
        .map(|a| a.id)
        .collect();
    Ok(Workspace {
        id: w.id,
        created_at: w.created_at,
        updated_at: w.updated_at,
        owner_id: w.owner_id,
        owner_name: owner.username,
        owner_avatar_url: owner.avatar_url,
        organization_id: w.organization_id,
        organization_name: org.name,
        template_id: template.id,
        template_name: template.name.clone(),
        template_display_name: template.display_name.clone(),
        template_icon: template.icon.clone(),
        template_allow_user_cancel_workspace_jobs: template.allow_user_cancel_workspace_jobs,
        template_active_version_id: template.active_version_id,
        template_require_active_version: template.require_active_version,
        template_use_classic_parameter_flow: false,
        outdated: latest_build.template_version_id != template.active_version_id,
        latest_build,
        latest_app_status: None,
        name: w.name.clone(),
        autostart_schedule: w.autostart_schedule.clone(),
        ttl_ms: w.ttl,
        last_used_at: w.last_used_at,
        deleting_at: w.deleting_at,
        dormant_at: w.dormant_at,
        health: WorkspaceHealth {
            healthy: failing_agents.is_empty(),
            failing_agents,
        },
        automatic_updates: w.automatic_updates.clone(),
        allow_renames: false,
        favorite: w.favorite && w.owner_id == actor.user_id(),
        next_start_at: None,
        is_prebuild: w.owner_id == PREBUILDS_USER_ID,
        task_id: None,
    })
}

/// Create a workspace for a user; its first build starts at once.
#[utoipa::path(post, path = "/api/v2/users/{user}/workspaces", tag = "Workspaces",
    params(("user" = String, Path, description = "`me`, a user id or a username")), request_body = CreateWorkspaceRequest,
    responses((status = 201, body = Workspace), (status = 400, body = Envelope), (status = 403, body = Envelope), (status = 404, body = Envelope), (status = 409, body = Envelope)))]
pub async fn create_workspace(
    State(app): State<AppState>,
    actor: Actor,
    Path(user): Path<String>,
    JsonBody(req): JsonBody<CreateWorkspaceRequest>,
) -> Result<Json<Workspace>, ApiError> {
    let owner = resolve_user(&app.store, &actor, &user).await?;
    let template_id = req.template_id.filter(|id| !id.is_nil());
    let version_id = req.template_version_id.filter(|id| !id.is_nil());
    let mut err = ApiError::bad_request("Validation failed.");
    let mut bad = false;
    if let Err(detail) = validate::username(&req.name) {
        err = err.with_validation("name", detail);
        bad = true;
    }
    if template_id.is_some() == version_id.is_some() {
        err = err.with_validation(
            "template_id",
            "give exactly one of template_id and template_version_id",
        );
        bad = true;
    }
    let automatic_updates = if req.automatic_updates.is_empty() {
        "never".to_owned()
    } else {
        req.automatic_updates.clone()
    };
    if !matches!(automatic_updates.as_str(), "always" | "never") {
        err = err.with_validation("automatic_updates", "must be \"always\" or \"never\"");
        bad = true;
    }
    if bad {
        return Err(err);
    }
    let subject = actor.subject();
    let (template, version_id) = match (template_id, version_id) {
        (Some(tid), _) => {
            let template = app.store.template_by_id(subject, tid).await?;
            let active = template.active_version_id;
            (template, active)
        }
        (None, Some(vid)) => {
            let (version, _) = app.store.template_version_by_id(subject, vid).await?;
            let tid = version.template_id.ok_or_else(|| {
                ApiError::bad_request("Validation failed.")
                    .with_validation("template_version_id", "the version belongs to no template")
            })?;
            (app.store.template_by_id(subject, tid).await?, vid)
        }
        (None, None) => return Err(ApiError::bad_request("Validation failed.")),
    };
    app.store.check_template_use(subject, &template)?;
    let (_, job) = app
        .store
        .template_version_by_id(subject, version_id)
        .await?;
    let new = NewWorkspace {
        id: Uuid::now_v7(),
        owner_id: owner.id,
        organization_id: template.organization_id,
        template_id: template.id,
        template_version_id: version_id,
        name: req.name.clone(),
        initiator_id: actor.user_id(),
        automatic_updates,
        ttl_ms: req.ttl_ms,
        autostart_schedule: req.autostart_schedule,
        file_id: job.file_id,
        provisioner: job.provisioner,
    };
    let (workspace, _) = app
        .store
        .create_workspace(subject, new)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(Conflict::WorkspaceName) => ApiError::new(
                StatusCode::CONFLICT,
                format!("Workspace {:?} already exists.", req.name),
            )
            .with_validation("name", "This value is already in use and should be unique."),
            e => ApiError::from(e),
        })?;
    app.jobs.job_queued();
    Ok(Json(
        StatusCode::CREATED,
        workspace_json(&app, &actor, &workspace).await?,
    ))
}

/// Get a workspace.
#[utoipa::path(get, path = "/api/v2/workspaces/{workspace}", tag = "Workspaces",
    params(("workspace" = Uuid, Path)),
    responses((status = 200, body = Workspace), (status = 400, body = Envelope), (status = 404, body = Envelope)))]
pub async fn get_workspace(
    State(app): State<AppState>,
    actor: Actor,
    Path(raw): Path<String>,
) -> Result<Json<Workspace>, ApiError> {
    let id = parse_uuid_param("workspace", &raw)?;
    let workspace = app.store.workspace_by_id(actor.subject(), id).await?;
    Ok(Json(
        StatusCode::OK,
        workspace_json(&app, &actor, &workspace).await?,
    ))
}

/// Get a user's workspace by name.
#[utoipa::path(get, path = "/api/v2/users/{user}/workspace/{workspacename}", tag = "Workspaces",
    params(("user" = String, Path), ("workspacename" = String, Path)),
    responses((status = 200, body = Workspace), (status = 404, body = Envelope)))]
pub async fn get_workspace_by_name(
    State(app): State<AppState>,
    actor: Actor,
    Path((user, name)): Path<(String, String)>,
) -> Result<Json<Workspace>, ApiError> {
    let owner = resolve_user(&app.store, &actor, &user).await?;
    let workspace = app
        .store
        .workspace_by_owner_and_name(actor.subject(), owner.id, &name)
        .await?;
    Ok(Json(
        StatusCode::OK,
        workspace_json(&app, &actor, &workspace).await?,
    ))
}

#[derive(Debug, serde::Deserialize)]
pub struct ListWorkspacesQuery {
    pub q: Option<String>,
}

/// List the workspaces you can see, filtered by Coder's search query.
#[utoipa::path(get, path = "/api/v2/workspaces", tag = "Workspaces",
    params(("q" = Option<String>, Query, description = "Search query: `owner:<username|me>`, `name:<substring>`, `template:<name>`, `status:<latest build status>`; a bare word matches the name")),
    responses((status = 200, body = WorkspacesResponse), (status = 400, description = "Invalid search query, or a malformed path, query or body", body = Envelope)))]
pub async fn list_workspaces(
    State(app): State<AppState>,
    actor: Actor,
    Query(query): Query<ListWorkspacesQuery>,
) -> Result<Json<WorkspacesResponse>, ApiError> {
    let filter = WorkspaceFilter::parse(
        query.q.as_deref().unwrap_or_default(),
        &actor.0.user.username,
    )?;
    let rows = app.store.list_workspaces(actor.subject(), None).await?;
    let mut workspaces = Vec::with_capacity(rows.len());
    for w in &rows {
        let json = workspace_json(&app, &actor, w).await?;
        if filter.matches(&json) {
            workspaces.push(json);
        }
    }
    let count = i64::try_from(workspaces.len()).unwrap_or(i64::MAX);
    Ok(Json(
        StatusCode::OK,
        WorkspacesResponse { workspaces, count },
    ))
}

/// Start, stop or delete a workspace.
#[utoipa::path(post, path = "/api/v2/workspaces/{workspace}/builds", tag = "Builds",
    params(("workspace" = Uuid, Path)), request_body = CreateWorkspaceBuildRequest,
    responses((status = 201, body = WorkspaceBuild), (status = 400, body = Envelope), (status = 403, body = Envelope), (status = 404, body = Envelope), (status = 409, body = Envelope)))]
pub async fn create_build(
    State(app): State<AppState>,
    actor: Actor,
    Path(raw): Path<String>,
    JsonBody(req): JsonBody<CreateWorkspaceBuildRequest>,
) -> Result<Json<WorkspaceBuild>, ApiError> {
    let id = parse_uuid_param("workspace", &raw)?;
    if !matches!(req.transition.as_str(), "start" | "stop" | "delete") {
        return Err(ApiError::bad_request("Validation failed.")
            .with_validation("transition", "must be one of start, stop, delete"));
    }
    let subject = actor.subject();
    let workspace = app.store.workspace_by_id(subject, id).await?;
    let latest = app.store.latest_build(subject, &workspace).await?;
    let version_id = req
        .template_version_id
        .filter(|v| !v.is_nil())
        .unwrap_or(latest.build.template_version_id);
    let (version, job) = app
        .store
        .template_version_by_id(subject, version_id)
        .await?;
    if version.template_id != Some(workspace.template_id) {
        return Err(ApiError::bad_request("Validation failed.").with_validation(
            "template_version_id",
            "the version does not belong to this workspace's template",
        ));
    }
    let build = app
        .store
        .create_build(
            subject,
            &workspace,
            NewBuild {
                transition: &req.transition,
                template_version_id: version_id,
                file_id: job.file_id,
                provisioner: &job.provisioner,
                initiator: actor.user_id(),
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(Conflict::BuildInProgress) => ApiError::new(
                StatusCode::CONFLICT,
                "A workspace build is already active. Wait for it to finish or cancel it first.",
            ),
            StoreError::Forbidden => ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "You do not have permission to {} this workspace.",
                    req.transition
                ),
            ),
            e => ApiError::from(e),
        })?;
    app.jobs.job_queued();
    Ok(Json(
        StatusCode::CREATED,
        build_json(&app, subject, &workspace, &build).await?,
    ))
}

/// Get a build.
#[utoipa::path(get, path = "/api/v2/workspacebuilds/{workspacebuild}", tag = "Builds",
    params(("workspacebuild" = Uuid, Path)),
    responses((status = 200, body = WorkspaceBuild), (status = 400, body = Envelope), (status = 404, body = Envelope)))]
pub async fn get_build(
    State(app): State<AppState>,
    actor: Actor,
    Path(raw): Path<String>,
) -> Result<Json<WorkspaceBuild>, ApiError> {
    let id = parse_uuid_param("workspacebuild", &raw)?;
    let (workspace, build) = app.store.build_by_id(actor.subject(), id).await?;
    Ok(Json(
        StatusCode::OK,
        build_json(&app, actor.subject(), &workspace, &build).await?,
    ))
}

/// List a workspace's builds, newest first.
#[utoipa::path(get, path = "/api/v2/workspaces/{workspace}/builds", tag = "Builds",
    params(("workspace" = Uuid, Path)),
    responses((status = 200, body = Vec<WorkspaceBuild>), (status = 404, body = Envelope)))]
pub async fn list_builds(
    State(app): State<AppState>,
    actor: Actor,
    Path(raw): Path<String>,
) -> Result<Json<Vec<WorkspaceBuild>>, ApiError> {
    let id = parse_uuid_param("workspace", &raw)?;
    let workspace = app.store.workspace_by_id(actor.subject(), id).await?;
    let builds = app.store.builds(actor.subject(), &workspace).await?;
    let mut out = Vec::with_capacity(builds.len());
    for b in &builds {
        out.push(build_json(&app, actor.subject(), &workspace, b).await?);
    }
    Ok(Json(StatusCode::OK, out))
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CancelQuery {
    /// Cancel only if the job is in this state (`running` or `pending`).
    pub expect_status: Option<String>,
}

/// Cancel a build: pending jobs end at once, running ones as soon as their provisioner
/// stops.
#[utoipa::path(patch, path = "/api/v2/workspacebuilds/{workspacebuild}/cancel", tag = "Builds",
    params(("workspacebuild" = Uuid, Path), CancelQuery),
    responses((status = 200, body = Envelope), (status = 400, body = Envelope), (status = 403, body = Envelope), (status = 404, body = Envelope), (status = 412, body = Envelope)))]
pub async fn cancel_build(
    State(app): State<AppState>,
    actor: Actor,
    Path(raw): Path<String>,
    query: Result<axum::extract::Query<CancelQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Envelope>, ApiError> {
    let axum::extract::Query(query) = query.map_err(|e| {
        ApiError::bad_request("Query parameters have invalid values.").with_detail(e.body_text())
    })?;
    let id = parse_uuid_param("workspacebuild", &raw)?;
    let subject = actor.subject();
    let (workspace, build) = app.store.build_by_id(subject, id).await?;
    if let Some(expected) = query.expect_status.as_deref() {
        if !matches!(expected, "running" | "pending") {
            return Err(ApiError::bad_request("Invalid expect_status.")
                .with_validation("expect_status", "must be \"running\" or \"pending\""));
        }
        if build.job.job_status != expected {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                format!(
                    "Job is not in the expected state: expected {expected:?}, got {:?}.",
                    build.job.job_status
                ),
            ));
        }
    }
    let template = app
        .store
        .template_by_id(system_restricted(), workspace.template_id)
        .await?;
    let template_admin = app.store.check_template_update(subject, &template).is_ok();
    if !template.allow_user_cancel_workspace_jobs && !template_admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "User is not allowed to cancel workspace builds.",
        ));
    }
    let canceled = app
        .store
        .cancel_build(subject, &workspace, &build)
        .await
        .map_err(|e| match e {
            StoreError::Forbidden => ApiError::new(
                StatusCode::FORBIDDEN,
                "You do not have permission to cancel this workspace's build.",
            ),
            e => ApiError::from(e),
        })?;
    if !canceled {
        return Err(ApiError::bad_request(
            "Job has already completed or been canceled.",
        ));
    }
    Ok(Json(
        StatusCode::OK,
        Envelope::message("Job has been marked as canceled..."),
    ))
}
