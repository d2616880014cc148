//! The workspace-proxy registry (decisions.md 41): administrators register a proxy's
//! URLs; every member may list them; the site CSP lets their hosts through.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use gatehouse_httpmw::{Actor, ApiError, Json, JsonBody};
use gatehouse_sdk::{
    Response as Envelope,
    workspaces::{
        CreateWorkspaceProxyRequest, CreateWorkspaceProxyResponse, ProxyHealthReport,
        WorkspaceProxies, WorkspaceProxy, WorkspaceProxyStatus,
    },
};
use gatehouse_store::{
    StoreError,
    queries::proxies::{self, NewWorkspaceProxy},
};

use crate::{app::AppState, proxy_hosts::refresh_proxy_hosts, validate};

fn to_json(p: proxies::WorkspaceProxy) -> WorkspaceProxy {
    WorkspaceProxy {
        id: p.id,
        name: p.name,
        display_name: p.display_name,
        icon_url: p.icon,
        healthy: false,
        path_app_url: p.path_app_url,
        wildcard_hostname: p.wildcard_hostname,
        derp_enabled: false,
        derp_only: false,
        status: WorkspaceProxyStatus {
            status: "unregistered".to_owned(),
            report: ProxyHealthReport::default(),
            checked_at: p.updated_at,
        },
        created_at: p.created_at,
        updated_at: p.updated_at,
        deleted: false,
        version: String::new(),
    }
}

fn validate_request(req: &CreateWorkspaceProxyRequest) -> Result<(), ApiError> {
    let invalid = |field: &str, detail: &str| {
        ApiError::bad_request("Validation failed.").with_validation(field, detail)
    };
    validate::username(&req.name).map_err(|d| invalid("name", &d))?;
    if req.name.eq_ignore_ascii_case("primary") {
        return Err(invalid("name", "\"primary\" is the deployment itself"));
    }
    let url = url::Url::parse(&req.path_app_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    if url.is_none() {
        return Err(invalid(
            "path_app_url",
            "must be an absolute http or https URL",
        ));
    }
    let wildcard = &req.wildcard_hostname;
    let wildcard_ok = wildcard.is_empty()
        || (!wildcard.contains(['/', ':', ' '])
            && wildcard.split('.').count() >= 2
            && wildcard
                .split('.')
                .next()
                .is_some_and(|l| l.matches('*').count() == 1)
            && !wildcard
                .split('.')
                .skip(1)
                .any(|l| l.is_empty() || l.contains('*')));
    if !wildcard_ok {
        return Err(invalid(
            "wildcard_hostname",
            "must be a hostname whose first label has one \"*\", e.g. *.eu.example.com",
        ));
    }
    Ok(())
}

/// Every registered workspace proxy.
#[utoipa::path(get, path = "/api/v2/workspaceproxies", tag = "WorkspaceProxies",
    security(("CoderSessionToken" = [])),
    responses((status = 200, body = WorkspaceProxies), (status = 401, body = Envelope), (status = 403, body = Envelope)))]
pub async fn list_proxies(
    State(app): State<AppState>,
    actor: Actor,
) -> Result<Json<WorkspaceProxies>, ApiError> {
    let regions = app.store.workspace_proxies(actor.subject()).await?;
    Ok(Json(
        StatusCode::OK,
        WorkspaceProxies {
            regions: regions.into_iter().map(to_json).collect(),
        },
    ))
}

/// Registers a workspace proxy; its hosts join the site CSP at once on this replica.
#[utoipa::path(post, path = "/api/v2/workspaceproxies", tag = "WorkspaceProxies",
    security(("CoderSessionToken" = [])), request_body = CreateWorkspaceProxyRequest,
    responses((status = 201, body = CreateWorkspaceProxyResponse), (status = 400, body = Envelope),
        (status = 401, body = Envelope), (status = 403, body = Envelope), (status = 409, body = Envelope)))]
pub async fn create_proxy(
    State(app): State<AppState>,
    actor: Actor,
    JsonBody(req): JsonBody<CreateWorkspaceProxyRequest>,
) -> Result<Json<CreateWorkspaceProxyResponse>, ApiError> {
    validate_request(&req)?;
    let display_name = if req.display_name.is_empty() {
        req.name.clone()
    } else {
        req.display_name
    };
    let new = NewWorkspaceProxy {
        name: req.name,
        display_name,
        icon: req.icon,
        path_app_url: req.path_app_url,
        wildcard_hostname: req.wildcard_hostname,
    };
    let proxy = match app
        .store
        .insert_workspace_proxy(actor.subject(), &new)
        .await
    {
        Ok(proxy) => proxy,
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("A workspace proxy named {:?} already exists.", new.name),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    refresh_proxy_hosts(&app.store, &app.csp_hosts.proxies).await?;
    Ok(Json(
        StatusCode::CREATED,
        CreateWorkspaceProxyResponse {
            proxy: to_json(proxy),
        },
    ))
}

/// Removes a workspace proxy, named by id or name.
#[utoipa::path(delete, path = "/api/v2/workspaceproxies/{workspaceproxy}", tag = "WorkspaceProxies",
    security(("CoderSessionToken" = [])), params(("workspaceproxy" = String, Path)),
    responses((status = 200, body = Envelope), (status = 401, body = Envelope), (status = 403, body = Envelope), (status = 404, body = Envelope)))]
pub async fn delete_proxy(
    State(app): State<AppState>,
    actor: Actor,
    Path(raw): Path<String>,
) -> Result<Json<Envelope>, ApiError> {
    app.store
        .delete_workspace_proxy(actor.subject(), &raw)
        .await?;
    refresh_proxy_hosts(&app.store, &app.csp_hosts.proxies).await?;
    Ok(Json(
        StatusCode::OK,
        Envelope::message("Proxy has been deleted!"),
    ))
}
