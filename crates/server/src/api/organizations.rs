//! Organizations, their members and role assignment (spec/auth.md §4.7, §6.3–§6.4).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::{
    Actor, ApiError, Json, JsonBody,
    audit::{AuditAction, AuditContext, AuditResource},
    params::{
        organization::resolve_organization,
        user::{resolve_user, resolve_user_as},
    },
};
use gatehouse_rbac::roles::{self, ORG_ROLE_NAMES, can_assign};
use gatehouse_sdk::{
    Response as Envelope,
    organizations::{
        AssignableRole, CreateOrganizationRequest, OrganizationMember,
        OrganizationMemberWithUserData, UpdateRoles,
    },
    users::Organization,
};
use gatehouse_store::{
    Conflict, StoreError,
    models::{self, MemberWithUser, NewOrganization},
    system::system_restricted,
};
use uuid::Uuid;

use crate::{api::convert, app::AppState, validate};

/// List the organizations you can see.
#[utoipa::path(get, path = "/api/v2/organizations", tag = "Organizations",
    responses((status = 200, body = Vec<Organization>), (status = 401, body = Envelope)))]
pub async fn list_organizations(
    State(app): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<Organization>>, ApiError> {
    let orgs = app.store.list_organizations(actor.subject()).await?;
    Ok(Json(
        StatusCode::OK,
        orgs.iter().map(convert::organization).collect(),
    ))
}

/// Create an organization; you become its first organization-admin.
#[utoipa::path(post, path = "/api/v2/organizations", tag = "Organizations", request_body = CreateOrganizationRequest,
    responses((status = 201, body = Organization), (status = 400, body = Envelope), (status = 403, body = Envelope), (status = 409, body = Envelope)))]
pub async fn create_organization(
    State(app): State<AppState>,
    actor: Actor,
    JsonBody(req): JsonBody<CreateOrganizationRequest>,
) -> Result<Json<Organization>, ApiError> {
    if let Err(detail) = validate::username(&req.name) {
        return Err(ApiError::bad_request("Validation failed.").with_validation("name", detail));
    }
    if req.name.eq_ignore_ascii_case("default") {
        return Err(ApiError::bad_request("Validation failed.").with_validation(
            "name",
            "\"default\" is reserved for the default organization",
        ));
    }
    let new = NewOrganization {
        id: Uuid::now_v7(),
        display_name: if req.display_name.is_empty() {
            req.name.clone()
        } else {
            req.display_name
        },
        name: req.name,
        description: req.description,
        icon: req.icon,
    };
    let org = app
        .store
        .create_organization(actor.subject(), new, actor.user_id())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(Conflict::OrganizationName) => ApiError::new(
                StatusCode::CONFLICT,
                "Organization already exists with that name.",
            ),
            e => ApiError::from(e),
        })?;
    Ok(Json(StatusCode::CREATED, convert::organization(&org)))
}

/// Get an organization by id, name or `default`.
#[utoipa::path(get, path = "/api/v2/organizations/{organization}", tag = "Organizations",
    params(("organization" = String, Path, description = "An organization id, name, or `default`")),
    responses((status = 200, body = Organization), (status = 404, body = Envelope)))]
pub async fn get_organization(
    State(app): State<AppState>,
    actor: Actor,
    Path(organization): Path<String>,
) -> Result<Json<Organization>, ApiError> {
    let org = resolve_organization(&app.store, &actor, &organization).await?;
    Ok(Json(StatusCode::OK, convert::organization(&org)))
}

/// List an organization's members.
#[utoipa::path(get, path = "/api/v2/organizations/{organization}/members", tag = "Members",
    params(("organization" = String, Path, description = "An organization id, name, or `default`")),
    responses((status = 200, body = Vec<OrganizationMemberWithUserData>), (status = 404, body = Envelope)))]
pub async fn list_members(
    State(app): State<AppState>,
    actor: Actor,
    Path(organization): Path<String>,
) -> Result<Json<Vec<OrganizationMemberWithUserData>>, ApiError> {
    let org = resolve_organization(&app.store, &actor, &organization).await?;
    let rows = app
        .store
        .organization_members(actor.subject(), Some(org.id), None)
        .await?;
    Ok(Json(
        StatusCode::OK,
        rows.iter().map(convert::member_with_user).collect(),
    ))
}

/// The member extractor (spec/auth.md §6.4): the user is resolved as the system, the
/// membership as the caller; a user the caller can neither read nor see a membership of
/// is 404, as is a user who is not a member.
async fn resolve_member(
    app: &AppState,
    actor: &Actor,
    organization: &str,
    user: &str,
) -> Result<(models::Organization, MemberWithUser), ApiError> {
    let org = resolve_organization(&app.store, actor, organization).await?;
    let user = resolve_user_as(&app.store, system_restricted(), actor, user).await?;
    let mut rows = app
        .store
        .organization_members(actor.subject(), Some(org.id), Some(user.id))
        .await?;
    match rows.pop() {
        Some(row) => Ok((org, row)),
        None => Err(ApiError::not_found()),
    }
}

/// Get one member of an organization.
#[utoipa::path(get, path = "/api/v2/organizations/{organization}/members/{user}", tag = "Members",
    params(("organization" = String, Path), ("user" = String, Path, description = "`me`, a user id or a username")),
    responses((status = 200, body = OrganizationMemberWithUserData), (status = 404, body = Envelope)))]
pub async fn get_member(
    State(app): State<AppState>,
    actor: Actor,
    Path((organization, user)): Path<(String, String)>,
) -> Result<Json<OrganizationMemberWithUserData>, ApiError> {
    let (_, member) = resolve_member(&app, &actor, &organization, &user).await?;
    Ok(Json(StatusCode::OK, convert::member_with_user(&member)))
}

/// Add a user to an organization.
#[utoipa::path(post, path = "/api/v2/organizations/{organization}/members/{user}", tag = "Members",
    params(("organization" = String, Path), ("user" = String, Path, description = "`me`, a user id or a username")),
    responses((status = 200, body = OrganizationMember), (status = 403, body = Envelope), (status = 404, body = Envelope), (status = 409, body = Envelope)))]
pub async fn add_member(
    State(app): State<AppState>,
    actor: Actor,
    Path((organization, user)): Path<(String, String)>,
) -> Result<Json<OrganizationMember>, ApiError> {
    let org = resolve_organization(&app.store, &actor, &organization).await?;
    let user = resolve_user(&app.store, &actor, &user).await?;
    let member = app
        .store
        .insert_organization_member(actor.subject(), org.id, user.id)
        .await?;
    Ok(Json(StatusCode::OK, convert::member(&member)))
}

/// Remove a user from an organization.
#[utoipa::path(delete, path = "/api/v2/organizations/{organization}/members/{user}", tag = "Members",
    params(("organization" = String, Path), ("user" = String, Path, description = "`me`, a user id or a username")),
    responses((status = 204, description = "Removed"), (status = 403, body = Envelope), (status = 404, body = Envelope)))]
pub async fn remove_member(
    State(app): State<AppState>,
    actor: Actor,
    Path((organization, user)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (org, member) = resolve_member(&app, &actor, &organization, &user).await?;
    app.store
        .delete_organization_member(actor.subject(), org.id, member.member.user_id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Validates role names: every one must be a known role of the right kind (decisions.md 21).
fn validate_roles(roles: &[String], org_roles: bool) -> Result<Vec<String>, ApiError> {
    let known: &[&str] = if org_roles {
        ORG_ROLE_NAMES
    } else {
        roles::SITE_ROLE_NAMES
    };
    let mut err = ApiError::bad_request("Validation failed.");
    let mut bad = false;
    for role in roles {
        if role.contains(':') {
            err = err.with_validation(
                "roles",
                format!("role {role:?} names an organization; give the role name only"),
            );
            bad = true;
        } else if !known.contains(&role.as_str()) {
            let kind = if org_roles {
                "an organization"
            } else {
                "a site"
            };
            err = err.with_validation("roles", format!("{role:?} is not {kind} role"));
            bad = true;
        }
    }
    if bad {
        return Err(err);
    }
    let mut out: Vec<String> = roles
        .iter()
        .filter(|r| !matches!(r.as_str(), "member"))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Replace a member's organization roles.
#[utoipa::path(put, path = "/api/v2/organizations/{organization}/members/{user}/roles", tag = "Members",
    params(("organization" = String, Path), ("user" = String, Path, description = "`me`, a user id or a username")),
    request_body = UpdateRoles,
    responses((status = 200, body = OrganizationMember), (status = 400, body = Envelope), (status = 403, body = Envelope), (status = 404, body = Envelope)))]
pub async fn update_member_roles(
    State(app): State<AppState>,
    actor: Actor,
    audit: AuditContext,
    Path((organization, user)): Path<(String, String)>,
    JsonBody(req): JsonBody<UpdateRoles>,
) -> Result<Json<OrganizationMember>, ApiError> {
    let roles = validate_roles(&req.roles, true)?;
    let (org, member) = resolve_member(&app, &actor, &organization, &user).await?;
    if member.member.user_id == actor.user_id() {
        return Err(ApiError::bad_request(
            "You cannot change your own organization roles.",
        ));
    }
    let result = app
        .store
        .update_organization_member_roles(
            actor.subject(),
            org.id,
            member.member.user_id,
            roles.clone(),
        )
        .await
        .map_err(ApiError::from);
    let resource = AuditResource::new(
        "organization_member",
        member.member.user_id,
        member.username.clone(),
    )
    .in_org(org.id)
    .with_diff(roles_diff(&member.member.roles.0, &roles));
    audit_outcome(&app, &audit, resource, &result).await;
    Ok(Json(StatusCode::OK, convert::member(&result?)))
}

/// Roles that can be granted in an organization, and whether you may grant each.
#[utoipa::path(get, path = "/api/v2/organizations/{organization}/members/roles", tag = "Members",
    params(("organization" = String, Path)),
    responses((status = 200, body = Vec<AssignableRole>), (status = 404, body = Envelope)))]
pub async fn organization_roles(
    State(app): State<AppState>,
    actor: Actor,
    Path(organization): Path<String>,
) -> Result<Json<Vec<AssignableRole>>, ApiError> {
    let org = resolve_organization(&app.store, &actor, &organization).await?;
    let list = ORG_ROLE_NAMES
        .iter()
        .filter_map(|name| roles::builtin(name))
        .map(|def| {
            convert::assignable_role(
                def,
                Some(org.id),
                can_assign(actor.subject(), def.name, Some(org.id)),
            )
        })
        .collect();
    Ok(Json(StatusCode::OK, list))
}

/// Site roles, and whether you may grant each.
#[utoipa::path(get, path = "/api/v2/users/roles", tag = "Members",
    responses((status = 200, body = Vec<AssignableRole>), (status = 403, body = Envelope)))]
pub async fn site_roles(
    State(app): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<AssignableRole>>, ApiError> {
    app.store.check_can_read_site_roles(actor.subject())?;
    let list = roles::SITE_ROLE_NAMES
        .iter()
        .filter(|name| **name != "member")
        .filter_map(|name| roles::builtin(name))
        .map(|def| convert::assignable_role(def, None, can_assign(actor.subject(), def.name, None)))
        .collect();
    Ok(Json(StatusCode::OK, list))
}

/// Replace a user's site roles.
#[utoipa::path(put, path = "/api/v2/users/{user}/roles", tag = "Users",
    params(("user" = String, Path, description = "`me`, a user id or a username")),
    request_body = UpdateRoles,
    responses((status = 200, body = gatehouse_sdk::users::User), (status = 400, body = Envelope), (status = 403, body = Envelope), (status = 404, body = Envelope)))]
pub async fn update_user_roles(
    State(app): State<AppState>,
    actor: Actor,
    audit: AuditContext,
    Path(user): Path<String>,
    JsonBody(req): JsonBody<UpdateRoles>,
) -> Result<Json<gatehouse_sdk::users::User>, ApiError> {
    let roles = validate_roles(&req.roles, false)?;
    let user = resolve_user(&app.store, &actor, &user).await?;
    if user.id == actor.user_id() {
        return Err(ApiError::bad_request("You cannot change your own roles."));
    }
    let result = app
        .store
        .update_user_site_roles(actor.subject(), user.id, roles.clone())
        .await
        .map_err(ApiError::from);
    let resource = AuditResource::new("user", user.id, user.username.clone())
        .with_diff(roles_diff(&user.rbac_roles.0, &roles));
    audit_outcome(&app, &audit, resource, &result).await;
    let updated = result?;
    let orgs = app
        .store
        .user_organization_ids(actor.subject(), updated.id)
        .await?;
    Ok(Json(StatusCode::OK, convert::user(&updated, orgs)))
}

/// The audit diff of a role change (codersdk `AuditDiff`).
fn roles_diff(old: &[String], new: &[String]) -> serde_json::Value {
    serde_json::json!({"roles": {"old": old, "new": new, "secret": false}})
}

/// Records a role change, granted or refused (issue #9: a refused assignment is an
/// attempted privilege escalation worth seeing).
async fn audit_outcome<T>(
    app: &AppState,
    audit: &AuditContext,
    resource: AuditResource,
    result: &Result<T, ApiError>,
) {
    let status = match result {
        Ok(_) => StatusCode::OK,
        Err(err) => err.status,
    };
    app.auth
        .audit
        .record(audit.entry(AuditAction::Write, resource, status))
        .await;
}
