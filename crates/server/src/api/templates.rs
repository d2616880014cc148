//! Template versions (each with an import job) and templates.

use std::collections::BTreeMap;

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use gatehouse_httpmw::{
    Actor, ApiError, Json, JsonBody, params::organization::resolve_organization,
};
use gatehouse_sdk::{
    Response as Envelope,
    workspaces::{
        AutostartRequirement, AutostopRequirement, CreateTemplateRequest,
        CreateTemplateVersionRequest, Template, TemplateVersion, TransitionStats,
    },
};
use gatehouse_store::{
    Conflict, StoreError, models,
    queries::templates::{NewTemplate, NewTemplateVersion},
    system::system_restricted,
};
use uuid::Uuid;

use crate::{
    api::{convert, parse_uuid_param},
    app::AppState,
    validate,
};

pub(crate) async fn version_json(
    app: &AppState,
    v: &models::TemplateVersion,
    job: &models::ProvisionerJob,
) -> Result<TemplateVersion, ApiError> {
    let creator = app
        .store
        .user_by_id(system_restricted(), v.created_by)
        .await?;
    Ok(TemplateVersion {
        id: v.id,
        template_id: v.template_id.unwrap_or_default(),
        organization_id: v.organization_id,
        created_at: v.created_at,
        updated_at: v.updated_at,
        name: v.name.clone(),
        message: v.message.clone(),
        job: convert::job(job),
        readme: v.readme.clone(),
        created_by: convert::minimal_user(&creator),
        archived: v.archived,
        has_external_agent: false,
    })
}

pub(crate) async fn template_json(
    app: &AppState,
    t: &models::Template,
) -> Result<Template, ApiError> {
    let system = system_restricted();
    let org = app
        .store
        .organization_by_id(system, t.organization_id)
        .await?;
    let creator = app.store.user_by_id(system, t.created_by).await?;
    let stats = || TransitionStats {
        p50: None,
        p95: None,
    };
    Ok(Template {
        id: t.id,
        created_at: t.created_at,
        updated_at: t.updated_at,
        organization_id: t.organization_id,
        organization_name: org.name,
        organization_display_name: org.display_name,
        organization_icon: org.icon,
        name: t.name.clone(),
        display_name: t.display_name.clone(),
        provisioner: t.provisioner.clone(),
        active_version_id: t.active_version_id,
        active_user_count: 0,
        build_time_stats: BTreeMap::from([
            ("delete".into(), stats()),
            ("start".into(), stats()),
            ("stop".into(), stats()),
        ]),
        description: t.description.clone(),
        deprecated: false,
        deprecation_message: String::new(),
        deleted: t.deleted,
        icon: t.icon.clone(),
        default_ttl_ms: t.default_ttl_ms,
        activity_bump_ms: t.activity_bump_ms,
        time_til_autostop_notify_ms: 0,
        autostop_requirement: AutostopRequirement {
            days_of_week: Vec::new(),
            weeks: 1,
        },
        autostart_requirement: AutostartRequirement {
            days_of_week: [
                "monday",
                "tuesday",
                "wednesday",
                "thursday",
                "friday",
                "saturday",
                "sunday",
            ]
            .map(String::from)
            .to_vec(),
        },
        created_by_id: t.created_by,
        created_by_name: creator.username,
        allow_user_autostart: t.allow_user_autostart,
        allow_user_autostop: t.allow_user_autostop,
        allow_user_cancel_workspace_jobs: t.allow_user_cancel_workspace_jobs,
        failure_ttl_ms: 0,
        time_til_dormant_ms: 0,
        time_til_dormant_autodelete_ms: 0,
        require_active_version: t.require_active_version,
        max_port_share_level: "owner".into(),
        cors_behavior: "simple".into(),
        use_classic_parameter_flow: false,
        disable_module_cache: false,
    })
}

/// Create a template version from an uploaded file; its import runs on a provisioner.
#[utoipa::path(post, path = "/api/v2/organizations/{organization}/templateversions", tag = "Templates",
    params(("organization" = String, Path)), request_body = CreateTemplateVersionRequest,
    responses((status = 201, body = TemplateVersion), (status = 400, body = Envelope), (status = 403, body = Envelope), (status = 404, body = Envelope)))]
pub async fn create_template_version(
    State(app): State<AppState>,
    actor: Actor,
    Path(organization): Path<String>,
    JsonBody(req): JsonBody<CreateTemplateVersionRequest>,
) -> Result<Json<TemplateVersion>, ApiError> {
    let org = resolve_organization(&app.store, &actor, &organization).await?;
    let mut err = ApiError::bad_request("Validation failed.");
    let mut bad = false;
    if req.storage_method != "file" {
        err = err.with_validation("storage_method", "must be \"file\"");
        bad = true;
    }
    if req.provisioner != "echo" {
        err = err.with_validation(
            "provisioner",
            "Gatehouse runs the built-in \"echo\" provisioner only",
        );
        bad = true;
    }
    let file_id = req.file_id.filter(|id| !id.is_nil());
    if file_id.is_none() {
        err = err.with_validation("file_id", "is required");
        bad = true;
    }
    if bad {
        return Err(err);
    }
    let new = NewTemplateVersion {
        id: Uuid::now_v7(),
        template_id: req.template_id.filter(|id| !id.is_nil()),
        organization_id: org.id,
        name: if req.name.is_empty() {
            crate::names::random_name()
        } else {
            req.name
        },
        message: req.message,
        file_id: file_id.unwrap_or_default(),
        provisioner: req.provisioner,
        created_by: actor.user_id(),
        tags: req.tags.unwrap_or_else(|| {
            BTreeMap::from([
                ("owner".into(), String::new()),
                ("scope".into(), "organization".into()),
            ])
        }),
    };
    let (version, job) = app
        .store
        .create_template_version(actor.subject(), new)
        .await?;
    app.jobs.job_queued();
    Ok(Json(
        StatusCode::CREATED,
        version_json(&app, &version, &job).await?,
    ))
}

/// Get a template version.
#[utoipa::path(get, path = "/api/v2/templateversions/{templateversion}", tag = "Templates",
    params(("templateversion" = Uuid, Path)),
    responses((status = 200, body = TemplateVersion), (status = 400, body = Envelope), (status = 404, body = Envelope)))]
pub async fn get_template_version(
    State(app): State<AppState>,
    actor: Actor,
    Path(raw): Path<String>,
) -> Result<Json<TemplateVersion>, ApiError> {
    let id = parse_uuid_param("templateversion", &raw)?;
    let (version, job) = app
        .store
        .template_version_by_id(actor.subject(), id)
        .await?;
    Ok(Json(
        StatusCode::OK,
        version_json(&app, &version, &job).await?,
    ))
}

/// Create a template from an unattached version.
#[utoipa::path(post, path = "/api/v2/organizations/{organization}/templates", tag = "Templates",
    params(("organization" = String, Path)), request_body = CreateTemplateRequest,
    responses((status = 201, body = Template), (status = 400, body = Envelope), (status = 403, body = Envelope), (status = 404, body = Envelope), (status = 409, body = Envelope)))]
pub async fn create_template(
    State(app): State<AppState>,
    actor: Actor,
    Path(organization): Path<String>,
    JsonBody(req): JsonBody<CreateTemplateRequest>,
) -> Result<Json<Template>, ApiError> {
    let org = resolve_organization(&app.store, &actor, &organization).await?;
    let mut err = ApiError::bad_request("Validation failed.");
    let mut bad = false;
    if let Err(detail) = validate::username(&req.name) {
        err = err.with_validation("name", detail);
        bad = true;
    }
    if req.description.len() >= 128 {
        err = err.with_validation("description", "must be less than 128 bytes");
        bad = true;
    }
    let version_id = req.template_version_id.filter(|id| !id.is_nil());
    if version_id.is_none() {
        err = err.with_validation("template_version_id", "is required");
        bad = true;
    }
    if bad {
        return Err(err);
    }
    let new = NewTemplate {
        id: Uuid::now_v7(),
        organization_id: org.id,
        name: req.name,
        display_name: req.display_name,
        description: req.description,
        icon: req.icon,
        active_version_id: version_id.unwrap_or_default(),
        created_by: actor.user_id(),
        everyone_can_use: !req.disable_everyone_group_access,
    };
    let template = app
        .store
        .create_template(actor.subject(), new)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(Conflict::TemplateName) => ApiError::new(
                StatusCode::CONFLICT,
                "A template with this name already exists in the organization.",
            )
            .with_validation("name", "This value is already in use and should be unique."),
            StoreError::Conflict(Conflict::VersionInUse) => {
                ApiError::bad_request("The template version already belongs to a template.")
                    .with_validation("template_version_id", "already belongs to a template")
            }
            e => ApiError::from(e),
        })?;
    Ok(Json(
        StatusCode::CREATED,
        template_json(&app, &template).await?,
    ))
}

/// Get a template.
#[utoipa::path(get, path = "/api/v2/templates/{template}", tag = "Templates",
    params(("template" = Uuid, Path)),
    responses((status = 200, body = Template), (status = 400, body = Envelope), (status = 404, body = Envelope)))]
pub async fn get_template(
    State(app): State<AppState>,
    actor: Actor,
    Path(raw): Path<String>,
) -> Result<Json<Template>, ApiError> {
    let id = parse_uuid_param("template", &raw)?;
    let template = app.store.template_by_id(actor.subject(), id).await?;
    Ok(Json(StatusCode::OK, template_json(&app, &template).await?))
}

/// List the templates of an organization you can see.
#[utoipa::path(get, path = "/api/v2/organizations/{organization}/templates", tag = "Templates",
    params(("organization" = String, Path)),
    responses((status = 200, body = Vec<Template>), (status = 404, body = Envelope)))]
pub async fn list_org_templates(
    State(app): State<AppState>,
    actor: Actor,
    Path(organization): Path<String>,
) -> Result<Json<Vec<Template>>, ApiError> {
    let org = resolve_organization(&app.store, &actor, &organization).await?;
    let templates = app
        .store
        .list_templates(actor.subject(), Some(org.id))
        .await?;
    let mut out = Vec::with_capacity(templates.len());
    for t in &templates {
        out.push(template_json(&app, t).await?);
    }
    Ok(Json(StatusCode::OK, out))
}

/// List every template you can see.
#[utoipa::path(get, path = "/api/v2/templates", tag = "Templates",
    responses((status = 200, body = Vec<Template>)))]
pub async fn list_templates(
    State(app): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<Template>>, ApiError> {
    let templates = app.store.list_templates(actor.subject(), None).await?;
    let mut out = Vec::with_capacity(templates.len());
    for t in &templates {
        out.push(template_json(&app, t).await?);
    }
    Ok(Json(StatusCode::OK, out))
}
