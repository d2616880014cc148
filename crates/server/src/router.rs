//! The router: every `/api/v2` route and its OpenAPI operation come from one list
//! (`utoipa_axum::routes!`), so the two cannot drift.

use std::sync::Arc;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::from_fn_with_state,
    response::{IntoResponse, Response},
    routing::{MethodRouter, any, get, post},
};
use gatehouse_httpmw::{
    Json,
    authn::{Authenticator, Scheme, authenticate},
    body::JSON_BODY_LIMIT,
    concurrency::{ConcurrencyLimit, concurrency_limit},
    experiments::{MCP_SERVER_HTTP, RequireExperiments, require_experiments},
    gate::{Gate, GateConfig, GateLayer},
    rate_limit::{
        RateLimiter, SharedBucket, rate_limit, rate_limit_by_auth_token, rate_limit_shared,
    },
    request_log::RequestLog,
    route_info::{RouteTable, RouteTableError},
};
use gatehouse_oauth2 as oauth2;
use gatehouse_sdk::{Response as Envelope, error::messages};
use tower::Layer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::{
        agent_logs, agents, aibridge, apikeys, audit, debug, experiments, files, mcp,
        organizations, scopes, tasks, templates, users, workspace_proxies, workspaces,
    },
    app::AppState,
    openapi::ApiDoc,
    pages,
};

/// Routes anyone may call.
fn public_routes(app: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(users::first_user_status, users::create_first_user))
        // Logins are tight: each costs a password hash (decisions.md 6). The sign-in legs
        // count as logins, in the same bucket as the login form.
        .merge(login_limited(
            OpenApiRouter::new()
                .routes(routes!(users::login))
                .routes(routes!(crate::oidc::login::callback)),
            app,
        ))
        .routes(routes!(scopes::external_scopes))
}

/// The global CORS policy (spec/ops.md §7.4.1): same-origin unless
/// `--dangerous-allow-cors-requests`, then any origin for `GET`/`OPTIONS`, without
/// credentials. The OAuth2 and MCP endpoints keep their own policy (decisions.md 30), so
/// the global one wraps every route but theirs: around them it would answer their
/// preflights itself, allowing only `GET` (issue #29).
fn cors(app: &AppState) -> Option<CorsLayer> {
    if !app.config.dangerous_allow_cors_requests {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::any())
            .allow_methods([Method::GET, Method::OPTIONS])
            .allow_headers([
                header::ACCEPT,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-latency-check"),
                HeaderName::from_static("x-csrf-token"),
            ])
            .allow_credentials(false),
    )
}

/// Applies the login limiter (one bucket for every way of signing in), if it is enabled.
fn login_limited(router: OpenApiRouter<AppState>, app: &AppState) -> OpenApiRouter<AppState> {
    match app.limits.login.clone() {
        Some(shared) => router.layer(from_fn_with_state(shared, rate_limit_shared)),
        None => router,
    }
}

/// Applies a rate limiter to a group of routes, if it is enabled.
fn limited(
    router: OpenApiRouter<AppState>,
    limiter: Option<RateLimiter>,
) -> OpenApiRouter<AppState> {
    match limiter {
        Some(limiter) => router.layer(from_fn_with_state(limiter, rate_limit)),
        None => router,
    }
}

/// The OAuth2 protocol endpoints browser-based MCP clients call cross-origin
/// (decisions.md 30), one shared rate bucket per principal (decisions.md 6).
fn oauth2_protocol_routes(app: &AppState, table: &mut Patterns) -> OpenApiRouter<AppState> {
    if !app.config.oauth2_provider_enable {
        return OpenApiRouter::new();
    }
    let routes = OpenApiRouter::new()
        .routes(routes!(oauth2::token::token))
        .route(table.add("/oauth2/token"), post(oauth2::token::token))
        .routes(routes!(oauth2::revoke::revoke))
        .routes(routes!(oauth2::introspect::introspect))
        .routes(routes!(oauth2::register::register))
        .routes(routes!(
            oauth2::register::get_client,
            oauth2::register::update_client,
            oauth2::register::delete_client
        ))
        .layer(oauth2_cors());
    let browser = OpenApiRouter::new().routes(routes!(
        oauth2::authorize::authorize,
        oauth2::authorize::consent
    ));
    group_limited(routes.merge(browser), app.limits.oauth2.clone(), "/oauth2")
}

/// RFC 8414 and RFC 9728 discovery documents: public, cacheable, cross-origin.
fn discovery_routes(app: &AppState, table: &mut Patterns) -> OpenApiRouter<AppState> {
    if !app.config.oauth2_provider_enable {
        return OpenApiRouter::new();
    }
    let routes = OpenApiRouter::new()
        .routes(routes!(oauth2::metadata::authorization_server))
        .route(
            table.add("/.well-known/oauth-authorization-server/{*suffix}"),
            get(oauth2::metadata::authorization_server_suffixed),
        )
        .routes(routes!(oauth2::metadata::protected_resource))
        .route(
            table.add("/.well-known/oauth-protected-resource/{*suffix}"),
            get(oauth2::metadata::protected_resource_suffixed),
        )
        .layer(oauth2_cors());
    group_limited(routes, app.limits.well_known.clone(), "/.well-known")
}

fn group_limited(
    router: OpenApiRouter<AppState>,
    limiter: Option<RateLimiter>,
    bucket: &'static str,
) -> OpenApiRouter<AppState> {
    match limiter {
        Some(limiter) => router.layer(from_fn_with_state(
            SharedBucket { limiter, bucket },
            oauth2::group_rate_limit,
        )),
        None => router,
    }
}

/// decisions.md 30: any origin, no credentials, the headers MCP clients send, and the
/// challenge exposed.
fn oauth2_cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("mcp-session-id"),
        ])
        .expose_headers([header::WWW_AUTHENTICATE])
        .allow_credentials(false)
}

/// The MCP endpoint: API-key authentication first (so a stranger gets the 401 that starts
/// an MCP client's discovery), then the experiment gate (spec/oauth2.md §14 rule 4).
fn mcp_routes(app: &AppState, table: &mut Patterns) -> Router<AppState> {
    if !app.config.oauth2_provider_enable {
        return Router::new();
    }
    let gate = RequireExperiments {
        experiments: app.experiments.clone(),
        required: &[MCP_SERVER_HTTP],
    };
    let routes = Router::new()
        .route(
            table.add(gatehouse_httpmw::authn::MCP_PATH),
            post(mcp::handle)
                .get(mcp::method_not_allowed)
                .delete(mcp::method_not_allowed),
        )
        .route_layer(from_fn_with_state(gate, require_experiments))
        .route_layer(from_fn_with_state(
            Authenticator::new(app.auth.clone(), Scheme::ApiKey),
            authenticate,
        ))
        .layer(oauth2_cors());
    match app.limits.api.clone() {
        Some(limiter) => routes.layer(from_fn_with_state(limiter, rate_limit)),
        None => routes,
    }
}

/// AI Bridge: concurrency first, then the per-token rate, then authentication
/// (spec/ops.md §6; decisions.md 7).
fn aibridge_routes(app: &AppState, table: &mut Patterns) -> Router<AppState> {
    if app.aibridge.is_none() {
        return Router::new();
    }
    let routes = Router::new()
        .route(
            table.add("/api/v2/aibridge/openai/v1/{*rest}"),
            any(aibridge::openai),
        )
        .route(
            table.add("/api/v2/aibridge/anthropic/v1/{*rest}"),
            any(aibridge::anthropic),
        )
        .route_layer(from_fn_with_state(
            Authenticator::new(app.auth.clone(), Scheme::BridgeKey),
            authenticate,
        ));
    let routes = match RateLimiter::new(
        app.config.aibridge_rate_limit,
        app.config.aibridge_rate_window,
    ) {
        Some(limiter) if app.config.aibridge_rate_limit > 0 => {
            routes.route_layer(from_fn_with_state(limiter, rate_limit_by_auth_token))
        }
        _ => routes,
    };
    match ConcurrencyLimit::new(app.config.aibridge_max_concurrency) {
        Some(limit) => routes.route_layer(from_fn_with_state(limit, concurrency_limit)),
        None => routes,
    }
}

/// The OAuth2 management API and the user's own app revocation (session routes).
fn oauth2_management_routes(app: &AppState) -> OpenApiRouter<AppState> {
    let settings = OpenApiRouter::new().routes(routes!(
        oauth2::apps::get_settings,
        oauth2::apps::update_settings
    ));
    if !app.config.oauth2_provider_enable {
        return settings;
    }
    settings
        .routes(routes!(oauth2::apps::list_apps, oauth2::apps::create_app))
        .routes(routes!(
            oauth2::apps::get_app,
            oauth2::apps::update_app,
            oauth2::apps::delete_app
        ))
        .routes(routes!(
            oauth2::apps::list_secrets,
            oauth2::apps::create_secret
        ))
        .routes(routes!(oauth2::apps::delete_secret))
        .routes(routes!(oauth2::apps::revoke_app_for_user))
}

/// Routes that need a valid credential.
fn authenticated_routes(app: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(oauth2_management_routes(app))
        .routes(routes!(experiments::enabled_experiments))
        .routes(routes!(audit::audit_logs))
        .routes(routes!(debug::cpu_profile))
        .routes(routes!(users::logout))
        .routes(routes!(users::create_user))
        .routes(routes!(users::get_user))
        .routes(routes!(users::suspend_user))
        .routes(routes!(users::activate_user))
        .routes(routes!(apikeys::create_token, apikeys::list_tokens))
        .routes(routes!(apikeys::token_config))
        .routes(routes!(apikeys::token_by_name))
        .routes(routes!(apikeys::create_session_key))
        .routes(routes!(apikeys::key_by_id, apikeys::delete_key))
        .routes(routes!(apikeys::expire_key))
        .routes(routes!(
            organizations::list_organizations,
            organizations::create_organization
        ))
        .routes(routes!(organizations::get_organization))
        .routes(routes!(organizations::list_members))
        .routes(routes!(organizations::organization_roles))
        .routes(routes!(
            organizations::get_member,
            organizations::add_member,
            organizations::remove_member
        ))
        .routes(routes!(organizations::update_member_roles))
        .routes(routes!(organizations::site_roles))
        .routes(routes!(organizations::update_user_roles))
        .merge(limited(
            OpenApiRouter::new().routes(routes!(files::get_file)),
            app.limits.files.clone(),
        ))
        .routes(routes!(templates::create_template_version))
        .routes(routes!(templates::get_template_version))
        .routes(routes!(
            templates::create_template,
            templates::list_org_templates
        ))
        .routes(routes!(templates::get_template))
        .routes(routes!(templates::list_templates))
        .routes(routes!(workspaces::create_workspace))
        .routes(routes!(workspaces::get_workspace))
        .routes(routes!(workspaces::get_workspace_by_name))
        .routes(routes!(workspaces::list_workspaces))
        .routes(routes!(workspaces::create_build, workspaces::list_builds))
        .routes(routes!(workspaces::get_build))
        .routes(routes!(workspaces::cancel_build))
        .routes(routes!(agents::get_agent))
        .routes(routes!(agent_logs::agent_logs))
        .routes(routes!(
            workspace_proxies::list_proxies,
            workspace_proxies::create_proxy
        ))
        .routes(routes!(workspace_proxies::delete_proxy))
        .routes(routes!(tasks::list_tasks))
        .routes(routes!(tasks::create_task))
        .routes(routes!(tasks::get_task, tasks::delete_task))
        .merge(
            // Archives and plans may be larger than JSON bodies (decisions.md 10).
            limited(
                OpenApiRouter::new()
                    .routes(routes!(files::upload_file))
                    .layer(DefaultBodyLimit::max(files::FILE_BODY_LIMIT)),
                app.limits.files.clone(),
            ),
        )
        .route_layer(from_fn_with_state(
            Authenticator::new(app.auth.clone(), Scheme::ApiKey),
            authenticate,
        ))
}

/// Routes for workspace agents, authenticated by the agent token.
fn agent_routes(app: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(agents::manifest))
        .routes(routes!(agents::patch_logs))
        .routes(routes!(agents::create_sub_agent, agents::list_sub_agents))
        .routes(routes!(agents::delete_sub_agent))
        .routes(routes!(crate::api::external_auth::agent_token))
        .route_layer(from_fn_with_state(
            Authenticator::new(app.auth.clone(), Scheme::Agent),
            authenticate,
        ))
}

/// The external-auth callbacks (and Coder's legacy `/gitauth/` spelling), for a
/// signed-in user; outside `/api/v2` like Coder's.
fn external_auth_routes(app: &AppState, table: &mut Patterns) -> Router<AppState> {
    Router::new()
        .route(
            table.add("/external-auth/{id}/callback"),
            get(crate::api::external_auth::callback),
        )
        .route(
            table.add("/gitauth/{id}/callback"),
            get(crate::api::external_auth::callback),
        )
        .route_layer(from_fn_with_state(
            Authenticator::new(app.auth.clone(), Scheme::ApiKey),
            authenticate,
        ))
}

/// The OpenAPI document of every routed operation.
pub fn openapi(app: &AppState) -> utoipa::openapi::OpenApi {
    let mut doc = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .merge(public_routes(app))
        .merge(authenticated_routes(app))
        .merge(agent_routes(app))
        .merge(oauth2_protocol_routes(app, &mut Patterns::default()))
        .merge(discovery_routes(app, &mut Patterns::default()))
        .into_openapi();
    crate::openapi::document_gate_answers(&mut doc);
    doc
}

async fn healthz() -> &'static str {
    "OK"
}

/// The router's fallback: no route matched. It tells the gate so, which checks in debug
/// builds that its route table agrees.
async fn route_not_found(log: Option<axum::Extension<RequestLog>>) -> Json<Envelope> {
    if let Some(axum::Extension(log)) = log {
        log.record_route_miss();
    }
    Json(
        StatusCode::NOT_FOUND,
        Envelope::message(messages::ROUTE_NOT_FOUND),
    )
}

/// The whole application: the router inside the gate.
pub type App = Gate<Limited>;

/// The router behind the JSON body limit. Routes with a limit of their own (file
/// uploads) set it inside, which overrides this one.
pub type Limited = <DefaultBodyLimit as Layer<Router>>::Service;

/// The patterns of the routes the OpenAPI document does not describe, collected where
/// each is routed, for the gate's route table ([`gatehouse_httpmw::route_info`]).
#[derive(Default)]
struct Patterns(Vec<&'static str>);

impl Patterns {
    fn add(&mut self, pattern: &'static str) -> &'static str {
        self.0.push(pattern);
        pattern
    }
}

/// Builds the whole application: routes, then the gate's layers around them.
pub fn build(app: AppState) -> App {
    build_with(app, Vec::new())
}

/// As [`build`], with `extra` routes (pattern, handlers) inside the same gate (tests use
/// it to mount a handler that panics).
pub fn build_with(app: AppState, extra: Vec<(&'static str, MethodRouter<AppState>)>) -> App {
    let mut patterns = Patterns::default();
    let (api, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(public_routes(&app))
        .merge(authenticated_routes(&app))
        .merge(agent_routes(&app))
        .split_for_parts();
    // Outside /api/v2: not under the general API limiter (they have their own).
    let (oauth2_routes, oauth2_doc) = OpenApiRouter::new()
        .merge(oauth2_protocol_routes(&app, &mut patterns))
        .merge(discovery_routes(&app, &mut patterns))
        .split_for_parts();
    doc.merge(oauth2_doc);
    crate::openapi::document_gate_answers(&mut doc);
    let doc_json: Arc<str> = serde_json::to_string(&doc)
        .unwrap_or_else(|_| "{}".to_owned())
        .into();
    let serve_doc = move || {
        let doc_json = doc_json.clone();
        async move {
            let mut res: Response = doc_json.to_string().into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            res
        }
    };
    // The general API limit covers every /api/v2 route, per user (or IP) and path.
    let api = match app.limits.api.clone() {
        Some(limiter) => api.layer(from_fn_with_state(limiter, rate_limit)),
        None => api,
    };
    let login_page = Router::new().route(
        patterns.add("/login"),
        get(pages::login::login_page).post(pages::login::login_submit),
    );
    let login_page = match app.limits.login.clone() {
        Some(shared) => login_page.layer(from_fn_with_state(shared, rate_limit_shared)),
        None => login_page,
    };
    let mut router = api
        .merge(aibridge_routes(&app, &mut patterns))
        .merge(login_page)
        .merge(external_auth_routes(&app, &mut patterns))
        .route(patterns.add("/api/v2/openapi.json"), get(serve_doc))
        .route(patterns.add("/healthz"), get(healthz));
    for (pattern, handlers) in extra {
        router = router.route(patterns.add(pattern), handlers);
    }
    if let Some(cors) = cors(&app) {
        router = router.layer(cors);
    }
    // With their own CORS policy: outside the global one.
    let router = router
        .merge(oauth2_routes)
        .merge(mcp_routes(&app, &mut patterns))
        .fallback(route_not_found)
        .with_state(app.clone());
    let routes = route_table(doc.paths.paths.keys().map(String::as_str), &patterns)
        // Every pattern here was just accepted by the router, which refuses the same
        // conflicts the table does: this cannot fail for a router that was built.
        .unwrap_or_else(|e| panic!("the gate's route table refused a routed pattern: {e}"));
    // Around the router, not `Router::layer`, which wraps every route in another boxed
    // service: one more allocation and copy per request for one extension insert.
    let router = DefaultBodyLimit::max(JSON_BODY_LIMIT).layer(router);
    GateLayer::new(GateConfig {
        metrics: app.metrics.clone(),
        routes,
        trusted_proxies: app.trusted_proxies.clone(),
        hsts: app.hsts.clone(),
        no_store_prefixes: oauth2::NO_STORE_PREFIXES,
        auth: Some(app.auth.clone()),
        redirect: app.access_redirect.clone(),
    })
    // Preflights answered by CORS still get a request id, a log line and metrics.
    .layer(router)
}

/// The table of every routed pattern: the documented operations' paths and the rest.
fn route_table<'a>(
    documented: impl Iterator<Item = &'a str>,
    undocumented: &Patterns,
) -> Result<RouteTable, RouteTableError> {
    let mut table = RouteTable::default();
    for pattern in documented.chain(undocumented.0.iter().copied()) {
        table.insert(pattern)?;
    }
    Ok(table)
}

/// The Prometheus endpoint, served on its own address (`--prometheus-address`).
pub fn metrics_router(app: &AppState) -> Router {
    let metrics = app.metrics.clone();
    let render = move || {
        let metrics = metrics.clone();
        async move {
            let mut res: Response = metrics.render().into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            res
        }
    };
    Router::new()
        .route("/", get(render.clone()))
        .route("/metrics", get(render))
}
