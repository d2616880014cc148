//! Dynamic client registration (RFC 7591) and client configuration (RFC 7592;
//! spec/oauth2.md §6; decisions.md 2, 15, 28).

use axum::{
    body::Body,
    extract::{Path, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::request_log::record_request_body_limit;
use gatehouse_sdk::oauth2::{
    ClientRegistrationRequest, ClientRegistrationResponse, ErrorCode, GrantType,
    OAuth2Error as ErrorBody, ResponseType, TokenEndpointAuthMethod,
};
use gatehouse_store::{
    StoreError,
    models::{JsonColumn as Json, OAuth2App, now},
    queries::oauth2::NewOAuth2Secret,
    system::oauth2_provider,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    SharedProvider,
    error::OAuth2Error,
    redirect_uri::{self, MAX_URIS},
    scopes,
    secrets::{self, AppSecret, matches_hash},
};

const MAX_SCOPE_BYTES: usize = 4096;
const MAX_SCOPE_NAMES: usize = 100;
/// Registration is unauthenticated, so what one client may make the server store is
/// bounded field by field (issue #29): names and versions, contacts, a JWK set, and the
/// whole body. Unknown fields are never stored.
const MAX_TEXT_BYTES: usize = 256;
const MAX_CONTACTS: usize = 10;
const MAX_JWKS_BYTES: usize = 16 << 10;
pub const REGISTRATION_BODY_LIMIT: usize = 64 << 10;

fn invalid_metadata(description: impl Into<String>) -> OAuth2Error {
    OAuth2Error::bad_request(ErrorCode::InvalidClientMetadata, description)
}

fn invalid_redirect(description: impl Into<String>) -> OAuth2Error {
    OAuth2Error::bad_request(ErrorCode::InvalidRedirectUri, description)
}

/// Registration metadata after validation and defaults.
struct Validated {
    name: String,
    icon: String,
    redirect_uris: Vec<String>,
    method: TokenEndpointAuthMethod,
    grant_types: Vec<GrantType>,
    response_types: Vec<ResponseType>,
    scope: String,
    metadata: Map<String, Value>,
}

fn check_text(field: &str, value: Option<&str>) -> Result<(), OAuth2Error> {
    match value {
        Some(v) if v.len() > MAX_TEXT_BYTES => Err(invalid_metadata(format!(
            "{field} is longer than {MAX_TEXT_BYTES} bytes"
        ))),
        _ => Ok(()),
    }
}

fn check_http_url(field: &str, value: &Option<String>) -> Result<(), OAuth2Error> {
    if let Some(v) = value {
        if v.len() > redirect_uri::MAX_URI_LEN {
            return Err(invalid_metadata(format!(
                "{field} is longer than {} bytes",
                redirect_uri::MAX_URI_LEN
            )));
        }
        let ok = url::Url::parse(v)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !ok {
            return Err(invalid_metadata(format!(
                "{field} must be an absolute http(s) URL"
            )));
        }
    }
    Ok(())
}

/// A display name of at most 64 characters (spec/oauth2.md §6 rule 4).
fn display_name(req: &ClientRegistrationRequest) -> String {
    let host = |u: &str| {
        url::Url::parse(u)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
    };
    if let Some(name) = req
        .client_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        if name.chars().count() <= 64 {
            return name.to_owned();
        }
        let digest = Sha256::digest(name.as_bytes());
        let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        let head: String = name.chars().take(55).collect();
        return format!("{head}-{hex}");
    }
    if let Some(h) = req.client_uri.as_deref().and_then(host) {
        return format!("Client ({h})");
    }
    if let Some(h) = req.redirect_uris.first().and_then(|u| host(u)) {
        return format!("Client ({h})");
    }
    "Dynamically Registered Client".to_owned()
}

fn validate(req: &ClientRegistrationRequest) -> Result<Validated, OAuth2Error> {
    let method = match req.token_endpoint_auth_method.as_deref() {
        None => TokenEndpointAuthMethod::ClientSecretBasic,
        Some(raw) => TokenEndpointAuthMethod::parse(raw).ok_or_else(|| {
            invalid_metadata(format!("unsupported token_endpoint_auth_method {raw:?}"))
        })?,
    };
    let public = method == TokenEndpointAuthMethod::None;
    if req.redirect_uris.is_empty() {
        return Err(invalid_redirect("redirect_uris is required"));
    }
    if req.redirect_uris.len() > MAX_URIS {
        return Err(invalid_redirect(format!(
            "at most {MAX_URIS} redirect_uris are allowed"
        )));
    }
    for uri in &req.redirect_uris {
        redirect_uri::validate(uri, public)
            .map_err(|e| invalid_redirect(format!("{uri:?}: {e}")))?;
    }
    let grant_types = match &req.grant_types {
        None => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        Some(list) => {
            let mut out = Vec::new();
            for g in list {
                match GrantType::parse(g) {
                    Some(g @ (GrantType::AuthorizationCode | GrantType::RefreshToken)) => {
                        if !out.contains(&g) {
                            out.push(g);
                        }
                    }
                    _ => return Err(invalid_metadata(format!("unsupported grant type {g:?}"))),
                }
            }
            if !out.contains(&GrantType::AuthorizationCode) {
                return Err(invalid_metadata(
                    "grant_types must include authorization_code",
                ));
            }
            out
        }
    };
    let response_types = match &req.response_types {
        None => vec![ResponseType::Code],
        Some(list) if list.iter().all(|r| r == "code") && !list.is_empty() => {
            vec![ResponseType::Code]
        }
        Some(_) => {
            return Err(invalid_metadata(
                "only the \"code\" response type is supported",
            ));
        }
    };
    check_text("client_name", req.client_name.as_deref())?;
    check_text("software_id", req.software_id.as_deref())?;
    check_text("software_version", req.software_version.as_deref())?;
    if let Some(contacts) = &req.contacts {
        if contacts.len() > MAX_CONTACTS {
            return Err(invalid_metadata(format!(
                "at most {MAX_CONTACTS} contacts are allowed"
            )));
        }
        for contact in contacts {
            check_text("contacts", Some(contact))?;
        }
    }
    if let Some(jwks) = &req.jwks
        && serde_json::to_vec(jwks).map_or(usize::MAX, |v| v.len()) > MAX_JWKS_BYTES
    {
        return Err(invalid_metadata(format!(
            "jwks is larger than {MAX_JWKS_BYTES} bytes"
        )));
    }
    check_http_url("client_uri", &req.client_uri)?;
    check_http_url("logo_uri", &req.logo_uri)?;
    check_http_url("tos_uri", &req.tos_uri)?;
    check_http_url("policy_uri", &req.policy_uri)?;
    check_http_url("jwks_uri", &req.jwks_uri)?;
    // RFC 7591 §2: jwks and jwks_uri MUST NOT both be present.
    if req.jwks.is_some() && req.jwks_uri.is_some() {
        return Err(invalid_metadata(
            "jwks and jwks_uri must not both be present",
        ));
    }
    let scope = match req.scope.as_deref() {
        None => String::new(),
        Some(raw) => {
            if raw.len() > MAX_SCOPE_BYTES {
                return Err(invalid_metadata(format!(
                    "scope is longer than {MAX_SCOPE_BYTES} bytes"
                )));
            }
            if raw.split(' ').filter(|s| !s.is_empty()).count() > MAX_SCOPE_NAMES {
                return Err(invalid_metadata(format!(
                    "scope names more than {MAX_SCOPE_NAMES} scopes"
                )));
            }
            // RFC 7591 §2: the server may narrow the requested scope to what it supports.
            scopes::join(&scopes::parse_stored(raw))
        }
    };
    let mut metadata = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            metadata.insert(k.to_owned(), v);
        }
    };
    put("client_name", req.client_name.clone().map(Value::String));
    put("client_uri", req.client_uri.clone().map(Value::String));
    put("logo_uri", req.logo_uri.clone().map(Value::String));
    put("tos_uri", req.tos_uri.clone().map(Value::String));
    put("policy_uri", req.policy_uri.clone().map(Value::String));
    put("jwks_uri", req.jwks_uri.clone().map(Value::String));
    put("jwks", req.jwks.clone());
    put("software_id", req.software_id.clone().map(Value::String));
    put(
        "software_version",
        req.software_version.clone().map(Value::String),
    );
    put(
        "contacts",
        req.contacts
            .clone()
            .map(|c| Value::Array(c.into_iter().map(Value::String).collect())),
    );
    Ok(Validated {
        name: display_name(req),
        icon: req.logo_uri.clone().unwrap_or_default(),
        redirect_uris: req.redirect_uris.clone(),
        method,
        grant_types,
        response_types,
        scope,
        metadata,
    })
}

async fn read_json(body: Body) -> Result<ClientRegistrationRequest, OAuth2Error> {
    let bytes = crate::params::read_body(body, REGISTRATION_BODY_LIMIT).await?;
    parse_metadata(&bytes)
}

/// RFC 7591 §2: the body as client metadata, before validation.
pub fn parse_metadata(bytes: &[u8]) -> Result<ClientRegistrationRequest, OAuth2Error> {
    serde_json::from_slice(bytes).map_err(|e| {
        invalid_metadata(format!(
            "The request body is not valid client metadata: {e}"
        ))
    })
}

/// Whether a registration body would be accepted (parsed and validated, nothing stored):
/// the path hostile metadata takes, for the fuzzer.
pub fn check_metadata(bytes: &[u8]) -> Result<(), OAuth2Error> {
    validate(&parse_metadata(bytes)?).map(|_| ())
}

fn text(meta: &Value, key: &str) -> Option<String> {
    meta.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The client's registration as RFC 7591 §3.2.1 / RFC 7592 §3 show it.
fn describe(
    provider: &SharedProvider,
    app: &OAuth2App,
    secret: Option<String>,
    registration_access_token: Option<String>,
) -> ClientRegistrationResponse {
    let meta = &app.metadata.0;
    ClientRegistrationResponse {
        client_id: app.id,
        client_secret_expires_at: secret.as_ref().map(|_| 0),
        client_secret: secret,
        client_id_issued_at: app
            .client_id_issued_at
            .unwrap_or(app.created_at)
            .timestamp(),
        redirect_uris: app.redirect_uris.0.clone(),
        client_name: text(meta, "client_name"),
        client_uri: text(meta, "client_uri"),
        logo_uri: text(meta, "logo_uri"),
        tos_uri: text(meta, "tos_uri"),
        policy_uri: text(meta, "policy_uri"),
        jwks_uri: text(meta, "jwks_uri"),
        jwks: meta.get("jwks").cloned(),
        software_id: text(meta, "software_id"),
        software_version: text(meta, "software_version"),
        grant_types: app
            .grant_types
            .iter()
            .filter_map(|g| GrantType::parse(g))
            .collect(),
        response_types: app
            .response_types
            .iter()
            .filter_map(|r| ResponseType::parse(r))
            .collect(),
        token_endpoint_auth_method: TokenEndpointAuthMethod::parse(&app.token_endpoint_auth_method)
            .unwrap_or(TokenEndpointAuthMethod::ClientSecretBasic),
        scope: Some(app.scope.clone()).filter(|s| !s.is_empty()),
        contacts: meta
            .get("contacts")
            .and_then(|c| serde_json::from_value(c.clone()).ok()),
        registration_access_token,
        registration_client_uri: provider.endpoint(&format!("/oauth2/clients/{}", app.id)),
    }
}

fn apply(app: &mut OAuth2App, v: Validated) {
    app.name = v.name;
    app.icon = v.icon;
    app.redirect_uris = Json(v.redirect_uris);
    app.token_endpoint_auth_method = v.method.as_str().to_owned();
    app.grant_types = Json(
        v.grant_types
            .iter()
            .map(|g| g.as_str().to_owned())
            .collect(),
    );
    app.response_types = Json(
        v.response_types
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
    );
    app.scope = v.scope;
    app.metadata = Json(Value::Object(v.metadata));
}

/// RFC 7591 §3.1.
#[utoipa::path(
    post,
    path = "/oauth2/register",
    tag = "OAuth2",
    operation_id = "oauth2_register",
    request_body = ClientRegistrationRequest,
    responses(
        (status = 201, description = "Registered", body = ClientRegistrationResponse),
        (status = 400, description = "RFC 7591 §3.2.2 error", body = ErrorBody),
        (status = 403, description = "Registration is disabled", body = ErrorBody),
    ),
    security(())
)]
pub async fn register(State(provider): State<SharedProvider>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let registered = run_register(&provider, body).await;
    if let Err(e) = &registered
        && e.status == StatusCode::PAYLOAD_TOO_LARGE
    {
        record_request_body_limit(&parts.extensions);
    }
    match registered {
        Ok(body) => (StatusCode::CREATED, axum::Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn run_register(
    provider: &SharedProvider,
    body: Body,
) -> Result<ClientRegistrationResponse, OAuth2Error> {
    if !provider.dcr_enabled().await? {
        return Err(OAuth2Error::new(
            StatusCode::FORBIDDEN,
            ErrorCode::InvalidRequest,
            "Dynamic client registration is disabled on this deployment",
        ));
    }
    let req = read_json(body).await?;
    let v = validate(&req)?;
    let public = v.method == TokenEndpointAuthMethod::None;
    let now = now();
    let token = secrets::registration_token();
    let mut app = OAuth2App {
        id: Uuid::new_v4(),
        created_at: now,
        updated_at: now,
        name: String::new(),
        icon: String::new(),
        redirect_uris: Json(Vec::new()),
        client_type: if public { "public" } else { "confidential" }.to_owned(),
        dynamically_registered: true,
        scope: String::new(),
        grant_types: Json(Vec::new()),
        response_types: Json(Vec::new()),
        token_endpoint_auth_method: String::new(),
        metadata: Json(Value::Null),
        client_id_issued_at: Some(now),
        registration_access_token: Some(secrets::hash(&token).to_vec()),
    };
    apply(&mut app, v);
    let secret = (!public).then(AppSecret::generate);
    let row = secret.as_ref().map(|s| {
        let full = s.formatted();
        NewOAuth2Secret {
            id: Uuid::new_v4(),
            secret_prefix: s.prefix.clone(),
            hashed_secret: s.hash(),
            display_secret: format!("{}{}", "*".repeat(full.len() - 6), &full[full.len() - 6..]),
        }
    });
    let app = provider
        .store
        .insert_oauth2_app(oauth2_provider(), &app, row.as_ref())
        .await?;
    tracing::info!(client_id = %app.id, client_type = %app.client_type, "registered OAuth2 client");
    Ok(describe(
        provider,
        &app,
        secret.map(|s| s.formatted()),
        Some(token),
    ))
}

/// RFC 7592 §2: the registration access token guards the client's configuration.
async fn configured_client(
    provider: &SharedProvider,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<OAuth2App, OAuth2Error> {
    let invalid = |d: &str| OAuth2Error::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidToken, d);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("A Bearer registration access token is required"))?;
    let id = Uuid::parse_str(client_id).map_err(|_| invalid("Client not found"))?;
    let app = match provider.store.oauth2_app(oauth2_provider(), id).await {
        Ok(app) => app,
        Err(StoreError::NotFound) => return Err(invalid("Client not found")),
        Err(e) => return Err(e.into()),
    };
    let ok = app
        .registration_access_token
        .as_deref()
        .is_some_and(|stored| matches_hash(token, stored));
    if !(ok && app.dynamically_registered) {
        return Err(invalid("Invalid registration access token"));
    }
    Ok(app)
}

/// RFC 7592 §2.1.
#[utoipa::path(
    get,
    path = "/oauth2/clients/{client_id}",
    tag = "OAuth2",
    operation_id = "oauth2_client_configuration",
    params(("client_id" = String, Path, description = "The client id")),
    responses(
        (status = 200, description = "The registration", body = ClientRegistrationResponse),
        (status = 401, description = "Invalid registration access token", body = ErrorBody),
    ),
    security(("registration_access_token" = []))
)]
pub async fn get_client(
    State(provider): State<SharedProvider>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match configured_client(&provider, &headers, &client_id).await {
        Ok(app) => axum::Json(describe(&provider, &app, None, None)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// RFC 7592 §2.2: replaces the metadata; the client type cannot change.
#[utoipa::path(
    put,
    path = "/oauth2/clients/{client_id}",
    tag = "OAuth2",
    operation_id = "oauth2_update_client",
    params(("client_id" = String, Path, description = "The client id")),
    request_body = ClientRegistrationRequest,
    responses(
        (status = 200, description = "Updated", body = ClientRegistrationResponse),
        (status = 400, description = "Invalid metadata", body = ErrorBody),
        (status = 401, description = "Invalid registration access token", body = ErrorBody),
    ),
    security(("registration_access_token" = []))
)]
pub async fn update_client(
    State(provider): State<SharedProvider>,
    Path(client_id): Path<String>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let result = async {
        let mut app = configured_client(&provider, &parts.headers, &client_id).await?;
        let v = validate(&read_json(body).await?)?;
        let public = v.method == TokenEndpointAuthMethod::None;
        if public != app.is_public() {
            return Err(invalid_metadata(
                "token_endpoint_auth_method cannot change the client between public and confidential",
            ));
        }
        apply(&mut app, v);
        let app = provider.store.update_oauth2_app(oauth2_provider(), &app).await?;
        Ok::<_, OAuth2Error>(describe(&provider, &app, None, None))
    }
    .await;
    match result {
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

/// RFC 7592 §2.3: deletes the client and revokes everything issued to it.
#[utoipa::path(
    delete,
    path = "/oauth2/clients/{client_id}",
    tag = "OAuth2",
    operation_id = "oauth2_delete_client",
    params(("client_id" = String, Path, description = "The client id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Invalid registration access token", body = ErrorBody),
    ),
    security(("registration_access_token" = []))
)]
pub async fn delete_client(
    State(provider): State<SharedProvider>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let app = configured_client(&provider, &headers, &client_id).await?;
        provider
            .store
            .delete_oauth2_app(oauth2_provider(), app.id)
            .await?;
        Ok::<_, OAuth2Error>(())
    }
    .await;
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}
