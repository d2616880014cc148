//! Tasks: a prompt and the workspace that runs it (spec/auth.md §6.4–§6.5, spec/types.md §8).

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use gatehouse_httpmw::{Actor, ApiError, Json, JsonBody, params::user::resolve_user_as};
use gatehouse_sdk::{
    Response as Envelope,
    workspaces::{CreateTaskRequest, Task, TasksListResponse},
};
use gatehouse_store::{
    Conflict, StoreError, models,
    queries::{
        builds::NewBuild,
        workspaces::{NewTask, NewWorkspace},
    },
    system::system_restricted,
};
use uuid::Uuid;

use crate::{api::workspaces::build_json, app::AppState, validate};

/// `{user}` for task routes (spec/auth.md §6.4, all organizations): resolved as the
/// system; visible when the caller can read the user, or can see one of their
/// memberships. A user in no organization is therefore visible only to those who can read
/// users site-wide; everyone else gets 404.
pub async fn resolve_member_user(
    app: &AppState,
    actor: &Actor,
    raw: &str,
) -> Result<models::User, ApiError> {
    let user = resolve_user_as(&app.store, system_restricted(), actor, raw).await?;
    match app.store.user_by_id(actor.subject(), user.id).await {
        Ok(_) => return Ok(user),
        Err(StoreError::NotFound | StoreError::Forbidden | StoreError::InsufficientScope(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let visible = app
        .store
        .organization_members(actor.subject(), None, Some(user.id))
        .await?;
    if visible.is_empty() {
        Err(ApiError::not_found())
    } else {
        Ok(user)
    }
}

/// `{task}`: a UUID first (falling back to the name, since a task may be named like a
/// UUID), then the owner's task by name, case-insensitively (spec/auth.md §6.5).
async fn resolve_task(
    app: &AppState,
    actor: &Actor,
    owner: Uuid,
    raw: &str,
) -> Result<models::Task, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::bad_request("\"task\" must be provided."));
    }
    let subject = actor.subject();
    if let Ok(id) = Uuid::parse_str(raw) {
        match app.store.task_by_id(subject, id).await {
            Ok(task) if task.owner_id == owner => return Ok(task),
            Ok(_) | Err(StoreError::NotFound | StoreError::Forbidden) => {}
            Err(e) => return Err(e.into()),
        }
    }
    app.store
        .task_by_owner_and_name(subject, owner, raw)
        .await
        .map_err(|e| match e {
            StoreError::NotFound | StoreError::Forbidden => ApiError::not_found(),
            StoreError::Unavailable(_) | StoreError::InsufficientScope(_) => ApiError::from(e),
            e => ApiError::internal("Internal error fetching task.").with_cause(e),
        })
}

/// The task status of the `tasks_with_status` view, without app health (Gatehouse has
/// no apps yet, so that step counts as active).
fn task_status(build_job_status: &str, transition: &str, lifecycle: Option<&str>) -> &'static str {
    let build = match (transition, build_job_status) {
        (_, "failed" | "canceling" | "canceled") => "error",
        ("stop" | "delete", "succeeded") => "paused",
        ("start", "pending") => "pending",
        ("start", "running" | "succeeded") => "active",
        _ => "unknown",
    };
    if build != "active" {
        return build;
    }
    match lifecycle {
        None | Some("created" | "starting") => "initializing",
        Some("ready" | "start_timeout" | "start_error") => "active",
        Some(_) => "unknown",
    }
}

async fn task_json(app: &AppState, actor: &Actor, t: &models::Task) -> Result<Task, ApiError> {
    let system = system_restricted();
    let owner = app.store.user_by_id(system, t.owner_id).await?;
    let (version, _) = app
        .store
        .template_version_by_id(system, t.template_version_id)
        .await?;
    let template = match version.template_id {
        Some(id) => Some(app.store.template_by_id(system, id).await?),
        None => None,
    };
    let mut task = Task {
        id: t.id,
        organization_id: t.organization_id,
        owner_id: t.owner_id,
        owner_name: owner.username,
        name: t.name.clone(),
        display_name: t.display_name.clone(),
        template_id: template.as_ref().map(|t| t.id).unwrap_or_default(),
        template_version_id: t.template_version_id,
        template_name: template
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default(),
        template_display_name: template
            .as_ref()
            .map(|t| t.display_name.clone())
            .unwrap_or_default(),
        template_icon: template
            .as_ref()
            .map(|t| t.icon.clone())
            .unwrap_or_default(),
        workspace_id: t.workspace_id,
        workspace_name: String::new(),
        workspace_status: None,
        workspace_build_number: None,
        workspace_agent_id: None,
        workspace_agent_lifecycle: None,
        initial_prompt: t.prompt.clone(),
        status: "pending".into(),
        created_at: t.created_at,
        updated_at: t.created_at,
    };
    if let Some(workspace_id) = t.workspace_id
        && let Ok(workspace) = app.store.workspace_by_id(system, workspace_id).await
    {
        let latest = app.store.latest_build(system, &workspace).await?;
        let build = build_json(app, actor.subject(), &workspace, &latest).await?;
        let agent = build.resources.iter().flat_map(|r| r.agents.iter()).next();
        task.status = task_status(
            &latest.job.job_status,
            &latest.build.transition,
            agent.map(|a| a.lifecycle_state.as_str()),
        )
        .into();
        task.workspace_name = workspace.name.clone();
        task.workspace_status = Some(build.status.clone());
        task.workspace_build_number = Some(build.build_number);
        task.workspace_agent_id = agent.map(|a| a.id);
        task.workspace_agent_lifecycle = agent.map(|a| a.lifecycle_state.clone());
        task.updated_at = workspace.updated_at;
    }
    Ok(task)
}

/// Create a task (and the workspace that runs it) for a user.
#[utoipa::path(post, path = "/api/v2/tasks/{user}", tag = "Tasks",
    params(("user" = String, Path, description = "`me`, a user id or a username")), request_body = CreateTaskRequest,
    responses((status = 201, body = Task), (status = 400, body = Envelope), (status = 403, body = Envelope), (status = 404, body = Envelope), (status = 409, body = Envelope)))]
pub async fn create_task(
    State(app): State<AppState>,
    actor: Actor,
    Path(user): Path<String>,
    JsonBody(req): JsonBody<CreateTaskRequest>,
) -> Result<Json<Task>, ApiError> {
    let owner = resolve_member_user(&app, &actor, &user).await?;
    let name = if req.name.is_empty() {
        format!("task-{}", &Uuid::new_v4().simple().to_string()[..8])
    } else {
        req.name
    };
    let mut err = ApiError::bad_request("Validation failed.");
    let mut bad = false;
    if let Err(detail) = validate::username(&name) {
        err = err.with_validation("name", detail);
        bad = true;
    }
    let version_id = req.template_version_id.filter(|v| !v.is_nil());
    if version_id.is_none() {
        err = err.with_validation("template_version_id", "is required");
        bad = true;
    }
    if bad {
        return Err(err);
    }
    let subject = actor.subject();
    let (version, job) = app
        .store
        .template_version_by_id(subject, version_id.unwrap_or_default())
        .await?;
    let template_id = version.template_id.ok_or_else(|| {
        ApiError::bad_request("Validation failed.")
            .with_validation("template_version_id", "the version belongs to no template")
    })?;
    let template = app.store.template_by_id(subject, template_id).await?;
    app.store.check_template_use(subject, &template)?;
    let workspace = NewWorkspace {
        id: Uuid::now_v7(),
        owner_id: owner.id,
        organization_id: template.organization_id,
        template_id: template.id,
        template_version_id: version.id,
        name: name.clone(),
        initiator_id: actor.user_id(),
        automatic_updates: "never".into(),
        ttl_ms: None,
        autostart_schedule: None,
        file_id: job.file_id,
        provisioner: job.provisioner,
    };
    let task = NewTask {
        id: Uuid::now_v7(),
        name: name.clone(),
        display_name: req.display_name,
        prompt: req.input,
    };
    let task_id = task.id;
    app.store
        .create_workspace_with_task(subject, workspace, Some(task))
        .await
        .map_err(|e| match e {
            StoreError::Conflict(Conflict::TaskName | Conflict::WorkspaceName) => ApiError::new(
                StatusCode::CONFLICT,
                format!("A task or workspace named {name:?} already exists."),
            )
            .with_validation("name", "This value is already in use and should be unique."),
            e => ApiError::from(e),
        })?;
    app.jobs.job_queued();
    let task = app.store.task_by_id(subject, task_id).await?;
    Ok(Json(
        StatusCode::CREATED,
        task_json(&app, &actor, &task).await?,
    ))
}

/// Get a task by id or name.
#[utoipa::path(get, path = "/api/v2/tasks/{user}/{task}", tag = "Tasks",
    params(("user" = String, Path), ("task" = String, Path, description = "A task id or name")),
    responses((status = 200, body = Task), (status = 400, body = Envelope), (status = 404, body = Envelope)))]
pub async fn get_task(
    State(app): State<AppState>,
    actor: Actor,
    Path((user, task)): Path<(String, String)>,
) -> Result<Json<Task>, ApiError> {
    let owner = resolve_member_user(&app, &actor, &user).await?;
    let task = resolve_task(&app, &actor, owner.id, &task).await?;
    Ok(Json(StatusCode::OK, task_json(&app, &actor, &task).await?))
}

/// Delete a task: it disappears at once and its workspace is deleted by a build.
#[utoipa::path(delete, path = "/api/v2/tasks/{user}/{task}", tag = "Tasks",
    params(("user" = String, Path), ("task" = String, Path)),
    responses((status = 202, body = Envelope), (status = 403, body = Envelope), (status = 404, body = Envelope)))]
pub async fn delete_task(
    State(app): State<AppState>,
    actor: Actor,
    Path((user, task)): Path<(String, String)>,
) -> Result<Json<Envelope>, ApiError> {
    let owner = resolve_member_user(&app, &actor, &user).await?;
    let task = resolve_task(&app, &actor, owner.id, &task).await?;
    let subject = actor.subject();
    app.store.delete_task(subject, &task).await?;
    if let Some(workspace_id) = task.workspace_id
        && let Ok(workspace) = app.store.workspace_by_id(subject, workspace_id).await
    {
        let latest = app.store.latest_build(subject, &workspace).await?;
        let (_, job) = app
            .store
            .template_version_by_id(subject, latest.build.template_version_id)
            .await?;
        let new = NewBuild {
            transition: "delete",
            template_version_id: latest.build.template_version_id,
            file_id: job.file_id,
            provisioner: &job.provisioner,
            initiator: actor.user_id(),
        };
        match app.store.create_build(subject, &workspace, new).await {
            // A build in flight: the task is gone; the workspace is deleted later.
            Ok(_) | Err(StoreError::Conflict(Conflict::BuildInProgress)) => app.jobs.job_queued(),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(
        StatusCode::ACCEPTED,
        Envelope::message("Task deleted."),
    ))
}

/// List the tasks you can see.
#[utoipa::path(get, path = "/api/v2/tasks", tag = "Tasks", responses((status = 200, body = TasksListResponse)))]
pub async fn list_tasks(
    State(app): State<AppState>,
    actor: Actor,
) -> Result<Json<TasksListResponse>, ApiError> {
    let rows = app.store.list_tasks(actor.subject()).await?;
    let mut tasks = Vec::with_capacity(rows.len());
    for t in &rows {
        tasks.push(task_json(&app, &actor, t).await?);
    }
    let count = i64::try_from(tasks.len()).unwrap_or(i64::MAX);
    Ok(Json(StatusCode::OK, TasksListResponse { tasks, count }))
}

#[cfg(test)]
mod tests {
    use super::task_status;

    #[test]
    fn status_follows_the_view() {
        assert_eq!(task_status("failed", "start", None), "error");
        assert_eq!(task_status("succeeded", "stop", None), "paused");
        assert_eq!(task_status("pending", "start", None), "pending");
        assert_eq!(
            task_status("succeeded", "start", Some("created")),
            "initializing"
        );
        assert_eq!(task_status("succeeded", "start", Some("ready")), "active");
        assert_eq!(task_status("running", "delete", None), "unknown");
    }
}
