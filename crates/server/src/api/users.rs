//! Users: the first user, password login and logout, lookup, creation and status.

use axum::{
    extract::{FromRequest, Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::{
    Actor, ApiError, Json, JsonBody,
    audit::{AuditAction, AuditContext, AuditResource},
    authn::sources::SESSION_COOKIE,
    client_ip::ClientIp,
    error::mark_no_store,
    params::user::resolve_user,
    rate_limit,
    same_origin::{is_cross_site, origin_of},
};
use gatehouse_rbac::roles::{SITE_ROLE_NAMES, can_assign};
use gatehouse_sdk::{
    Response as Envelope,
    users::{
        CreateFirstUserRequest, CreateFirstUserResponse, CreateUserRequest, LoginType,
        LoginWithPasswordRequest, LoginWithPasswordResponse, User, UserStatus,
    },
};
use gatehouse_store::{FirstUserError, StoreError, models::NewUser, system::system_restricted};
use uuid::Uuid;

use crate::{
    api::{
        apikeys::{KeySpec, issue_key},
        convert,
    },
    app::AppState,
    password, validate,
};

fn validation_failed() -> ApiError {
    ApiError::bad_request("Validation failed.")
}

/// Builds Coder's validator-style error for one field.
fn invalid(err: ApiError, field: &str, tag: &str, value: &str) -> ApiError {
    err.with_validation(
        field,
        format!("Validation failed for tag {tag:?} with value: {value:?}"),
    )
}

/// Whether the first user has been created.
#[utoipa::path(
    get,
    path = "/api/v2/users/first",
    tag = "Users",
    security(()),
    responses(
        (status = 200, description = "The first user exists", body = Envelope),
        (status = 404, description = "No user yet", body = Envelope),
    )
)]
pub async fn first_user_status(State(app): State<AppState>) -> Result<Json<Envelope>, ApiError> {
    if app.store.has_first_user().await? {
        Ok(Json(
            StatusCode::OK,
            Envelope::message("The initial user has already been created!"),
        ))
    } else {
        Ok(Json(
            StatusCode::NOT_FOUND,
            Envelope::message("The initial user has not been created!"),
        ))
    }
}

/// Create the first user: an active owner in the default organization.
#[utoipa::path(
    post,
    path = "/api/v2/users/first",
    tag = "Users",
    security(()),
    request_body = CreateFirstUserRequest,
    responses(
        (status = 201, body = CreateFirstUserResponse),
        (status = 400, body = Envelope),
        (status = 409, body = Envelope),
    )
)]
pub async fn create_first_user(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<CreateFirstUserRequest>,
) -> Result<Json<CreateFirstUserResponse>, ApiError> {
    let mut err = validation_failed();
    let mut bad = false;
    if req.email.is_empty() {
        err = invalid(err, "email", "required", &req.email);
        bad = true;
    } else if !validate::email(&req.email) {
        err = invalid(err, "email", "email", &req.email);
        bad = true;
    }
    if let Err(detail) = validate::username(&req.username) {
        err = err.with_validation("username", detail);
        bad = true;
    }
    if req.password.is_empty() {
        err = invalid(err, "password", "required", "");
        bad = true;
    }
    if bad {
        return Err(err);
    }
    if let Err(detail) = validate::password(&req.password) {
        return Err(ApiError::bad_request("Password is invalid")
            .with_detail(detail.clone())
            .with_validation("password", detail));
    }
    if app.store.has_first_user().await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "The initial user has already been created.",
        ));
    }
    let hashed_password = password::hash(req.password)
        .await
        .map_err(ApiError::internal)?;
    let user = NewUser {
        id: Uuid::now_v7(),
        email: req.email,
        username: req.username,
        name: req.name,
        hashed_password,
        status: "active".to_owned(),
        rbac_roles: vec!["owner".to_owned()],
        login_type: "password".to_owned(),
        organization_ids: vec![app.default_org.id],
    };
    match app.store.create_first_user(user, &app.default_org).await {
        Ok(user) => Ok(Json(
            StatusCode::CREATED,
            CreateFirstUserResponse {
                user_id: user.id,
                organization_id: app.default_org.id,
            },
        )),
        Err(FirstUserError::AlreadyCreated) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "The initial user has already been created.",
        )),
        Err(FirstUserError::Store(e)) => Err(ApiError::from_store(
            e,
            "Internal error creating the first user.",
        )),
    }
}

/// The session cookie lives as long as the session it carries (`--session-duration`), not
/// longer: a browser should not keep sending a key that expired.
pub fn session_max_age(app: &AppState) -> i64 {
    i64::try_from(app.config.session_duration.as_secs()).unwrap_or(i64::MAX)
}

/// 403 for a request that would set a session from another site's page (issue #29: login
/// CSRF signs the victim's browser in as the attacker).
pub fn refuse_cross_site_login(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if is_cross_site(headers, &origin_of(&app.access_url)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Cross-site login requests are not allowed.",
        )
        .with_detail(format!(
            "The browser says this request came from another site; sign in at {}.",
            app.access_url
        )));
    }
    Ok(())
}

pub fn session_cookie(app: &AppState, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = app.secure_cookies();
    let mut cookie =
        format!("{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax");
    if secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).ok()
}

/// Log in with email and password; sets the session cookie and returns the token.
#[utoipa::path(
    post,
    path = "/api/v2/users/login",
    tag = "Authorization",
    security(()),
    request_body = LoginWithPasswordRequest,
    responses(
        (status = 201, body = LoginWithPasswordResponse),
        (status = 400, body = Envelope),
        (status = 401, body = Envelope),
        (status = 403, body = Envelope),
    )
)]
pub async fn login(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    audit: AuditContext,
    headers: HeaderMap,
    body: Request,
) -> Result<Response, ApiError> {
    // Before the body is read: a cross-site page learns nothing, not even a 415.
    refuse_cross_site_login(&app, &headers)?;
    let JsonBody(req) = JsonBody::<LoginWithPasswordRequest>::from_request(body, &()).await?;
    let token = password_login(&app, &req.email, req.password, ip, audit).await?;
    let mut res = Json(
        StatusCode::CREATED,
        LoginWithPasswordResponse {
            session_token: token.clone(),
        },
    )
    .into_response();
    if let Some(cookie) = session_cookie(&app, &token, session_max_age(&app)) {
        res.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    mark_no_store(res.headers_mut());
    Ok(res)
}

/// Checks an email and password and issues a session key (shared by the JSON API and the
/// login page). Every attempt is audited (issue #9), with the account as the actor when
/// the email names one.
pub async fn password_login(
    app: &AppState,
    email: &str,
    password: String,
    ip: String,
    mut audit: AuditContext,
) -> Result<String, ApiError> {
    let mut account = None;
    let outcome = attempt_password_login(app, email, password, ip, &mut account).await;
    let status = match &outcome {
        Ok(_) => StatusCode::CREATED,
        Err(err) => err.status,
    };
    audit.actor = account;
    let resource = AuditResource::new("api_key", account.unwrap_or_else(Uuid::nil), "")
        .with_fields(serde_json::json!({"login_type": "password"}));
    app.auth
        .audit
        .record(audit.entry(AuditAction::Login, resource, status))
        .await;
    outcome
}

async fn attempt_password_login(
    app: &AppState,
    email: &str,
    password: String,
    ip: String,
    account: &mut Option<Uuid>,
) -> Result<String, ApiError> {
    let mut err = validation_failed();
    let mut bad = false;
    if email.is_empty() {
        err = invalid(err, "email", "required", "");
        bad = true;
    } else if !validate::email(email) {
        err = invalid(err, "email", "email", email);
        bad = true;
    }
    if password.is_empty() {
        err = invalid(err, "password", "required", "");
        bad = true;
    }
    if bad {
        return Err(err);
    }
    let backoff = app.limits.login_backoff.as_deref();
    if let Some(Err(wait)) = backoff.map(|b| b.check(email, rate_limit::now())) {
        let secs = wait.as_secs().max(1);
        let mut err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-in attempts for this account.",
        )
        .with_detail(format!("Try again in {secs} seconds."));
        err.retry_after = Some(u32::try_from(secs).unwrap_or(u32::MAX));
        return Err(err);
    }
    let system = system_restricted();
    let incorrect = || {
        if let Some(b) = backoff {
            b.failed(email, rate_limit::now());
        }
        ApiError::new(StatusCode::UNAUTHORIZED, "Incorrect email or password.")
    };
    let user = match app.store.user_by_email(system, email).await {
        Ok(user) => Some(user),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(ApiError::from_store(e, "Internal error.")),
    };
    *account = user.as_ref().map(|u| u.id);
    // Always run the KDF, so a missing account costs the same time as a wrong password.
    let stored = user
        .as_ref()
        .map(|u| u.hashed_password.clone())
        .unwrap_or_default();
    let matches = password::verify(password, stored).await;
    let Some(user) = user.filter(|_| matches) else {
        return Err(incorrect());
    };
    if let Some(b) = backoff {
        b.succeeded(email);
    }
    if user.login_type != "password" {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Incorrect login type, attempting to use \"password\" but user is of login type {:?}.",
                user.login_type
            ),
        ));
    }
    match user.status.as_str() {
        "suspended" => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Your account is suspended. Contact an admin to reactivate your account.",
            ));
        }
        "dormant" => {
            app.store
                .update_user_status(system, user.id, "active")
                .await?;
        }
        _ => {}
    }
    let lifetime = app.config.session_duration;
    let (token, _) = issue_key(
        app,
        system,
        KeySpec {
            user_id: user.id,
            login_type: "password",
            lifetime,
            scopes: vec!["coder:all".to_owned()],
            allow_list: vec!["*:*".to_owned()],
            token_name: String::new(),
            ip,
        },
    )
    .await?;
    Ok(token)
}

/// Log out: deletes the session key and clears the cookie.
#[utoipa::path(
    post,
    path = "/api/v2/users/logout",
    tag = "Authorization",
    responses((status = 200, body = Envelope), (status = 401, body = Envelope))
)]
pub async fn logout(
    State(app): State<AppState>,
    actor: Actor,
    audit: AuditContext,
) -> Result<Response, ApiError> {
    app.store
        .delete_api_key(system_restricted(), actor.user_id(), &actor.0.key.id)
        .await
        .or_else(|e| {
            if matches!(e, StoreError::NotFound) {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    let resource = AuditResource::new("api_key", actor.user_id(), "")
        .with_fields(serde_json::json!({"api_key_id": actor.0.key.id}));
    app.auth
        .audit
        .record(audit.entry(AuditAction::Logout, resource, StatusCode::OK))
        .await;
    let mut res = Json(StatusCode::OK, Envelope::message("Logged out!")).into_response();
    if let Some(cookie) = session_cookie(&app, "", -1) {
        res.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(res)
}

pub(crate) async fn user_json(
    app: &AppState,
    actor: &Actor,
    user: &gatehouse_store::models::User,
) -> Result<User, ApiError> {
    // The caller's own organizations came with the key (one query per request).
    let orgs = if user.id == actor.user_id() {
        app.store.check_user_read(actor.subject(), user.id)?;
        actor.0.organization_ids.clone()
    } else {
        app.store
            .user_organization_ids(actor.subject(), user.id)
            .await?
    };
    Ok(convert::user(user, orgs))
}

/// Get a user by `me`, id or username.
#[utoipa::path(
    get,
    path = "/api/v2/users/{user}",
    tag = "Users",
    params(("user" = String, Path, description = "`me`, a user id or a username")),
    responses(
        (status = 200, body = User),
        (status = 400, body = Envelope),
        (status = 401, body = Envelope),
        (status = 404, body = Envelope),
    )
)]
pub async fn get_user(
    State(app): State<AppState>,
    actor: Actor,
    Path(user): Path<String>,
) -> Result<Json<User>, ApiError> {
    let user = resolve_user(&app.store, &actor, &user).await?;
    Ok(Json(StatusCode::OK, user_json(&app, &actor, &user).await?))
}

/// Create a user (administrators).
#[utoipa::path(
    post,
    path = "/api/v2/users",
    tag = "Users",
    request_body = CreateUserRequest,
    responses(
        (status = 201, body = User),
        (status = 400, body = Envelope),
        (status = 403, body = Envelope),
        (status = 404, body = Envelope),
        (status = 409, body = Envelope),
    )
)]
pub async fn create_user(
    State(app): State<AppState>,
    actor: Actor,
    JsonBody(req): JsonBody<CreateUserRequest>,
) -> Result<Json<User>, ApiError> {
    let login_type = match req.login_type {
        LoginType::Unspecified | LoginType::Password => LoginType::Password,
        LoginType::None => LoginType::None,
        LoginType::Oidc | LoginType::Github => {
            return Err(ApiError::bad_request(format!(
                "The {:?} login type is not configured on this deployment.",
                req.login_type.as_str()
            )));
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "Unsupported login type {:?} for a new user.",
                other.as_str()
            )));
        }
    };
    let mut err = validation_failed();
    let mut bad = false;
    if req.email.is_empty() {
        err = invalid(err, "email", "required", "");
        bad = true;
    } else if !validate::email(&req.email) {
        err = invalid(err, "email", "email", &req.email);
        bad = true;
    }
    if let Err(detail) = validate::username(&req.username) {
        err = err.with_validation("username", detail);
        bad = true;
    }
    let mut organization_ids = req.organization_ids.clone().unwrap_or_default();
    if let Some(legacy) = req.organization_id
        && !organization_ids.contains(&legacy)
    {
        organization_ids.push(legacy);
    }
    if organization_ids.is_empty() {
        err = err.with_validation("organization_ids", "at least one organization is required");
        bad = true;
    }
    for role in &req.roles {
        if !SITE_ROLE_NAMES.contains(&role.as_str()) {
            err = err.with_validation("roles", format!("unknown site role {role:?}"));
            bad = true;
        }
    }
    if bad {
        return Err(err);
    }
    match login_type {
        LoginType::Password if req.password.is_empty() => {
            return Err(validation_failed().with_validation(
                "password",
                "a password is required for the \"password\" login type",
            ));
        }
        LoginType::Password => {
            if let Err(detail) = validate::password(&req.password) {
                return Err(ApiError::bad_request("Password is invalid")
                    .with_detail(detail.clone())
                    .with_validation("password", detail));
            }
        }
        _ if !req.password.is_empty() => {
            return Err(ApiError::bad_request(format!(
                "Password cannot be set for non-password ({:?}) authentication.",
                login_type.as_str()
            )));
        }
        _ => {}
    }
    // The assignment matrix of spec/auth.md §4.7: a user-admin may grant `member` only.
    if let Some(role) = req
        .roles
        .iter()
        .find(|r| !can_assign(actor.subject(), r, None))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("You are not allowed to assign the {role:?} role."),
        ));
    }
    let hashed_password = if req.password.is_empty() {
        Vec::new()
    } else {
        password::hash(req.password)
            .await
            .map_err(ApiError::internal)?
    };
    let mut roles: Vec<String> = req
        .roles
        .iter()
        .filter(|r| *r != "member")
        .cloned()
        .collect();
    roles.sort();
    roles.dedup();
    let new_user = NewUser {
        id: Uuid::now_v7(),
        email: req.email,
        username: req.username,
        name: req.name,
        hashed_password,
        status: req
            .user_status
            .unwrap_or(UserStatus::Dormant)
            .as_str()
            .to_owned(),
        rbac_roles: roles,
        login_type: login_type.as_str().to_owned(),
        organization_ids,
    };
    let user = app
        .store
        .create_user(actor.subject(), new_user)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "Organization does not exist with the provided id.",
            ),
            e => ApiError::from_store(e, "Internal error creating user."),
        })?;
    Ok(Json(
        StatusCode::CREATED,
        user_json(&app, &actor, &user).await?,
    ))
}

/// Suspend a user.
#[utoipa::path(
    put,
    path = "/api/v2/users/{user}/status/suspend",
    tag = "Users",
    params(("user" = String, Path, description = "`me`, a user id or a username")),
    responses((status = 200, body = User), (status = 400, body = Envelope), (status = 403, body = Envelope), (status = 404, body = Envelope))
)]
pub async fn suspend_user(
    State(app): State<AppState>,
    actor: Actor,
    Path(user): Path<String>,
) -> Result<Json<User>, ApiError> {
    let user = resolve_user(&app.store, &actor, &user).await?;
    if user.id == actor.user_id() {
        return Err(ApiError::bad_request("You cannot suspend yourself."));
    }
    if user.rbac_roles.iter().any(|r| r == "owner") {
        return Err(ApiError::bad_request(
            "You cannot suspend a user with the \"owner\" role. You must remove the role first.",
        ));
    }
    let user = app
        .store
        .update_user_status(actor.subject(), user.id, "suspended")
        .await?;
    Ok(Json(StatusCode::OK, user_json(&app, &actor, &user).await?))
}

/// Activate a suspended or dormant user.
#[utoipa::path(
    put,
    path = "/api/v2/users/{user}/status/activate",
    tag = "Users",
    params(("user" = String, Path, description = "`me`, a user id or a username")),
    responses((status = 200, body = User), (status = 403, body = Envelope), (status = 404, body = Envelope))
)]
pub async fn activate_user(
    State(app): State<AppState>,
    actor: Actor,
    Path(user): Path<String>,
) -> Result<Json<User>, ApiError> {
    let user = resolve_user(&app.store, &actor, &user).await?;
    let user = app
        .store
        .update_user_status(actor.subject(), user.id, "active")
        .await?;
    Ok(Json(StatusCode::OK, user_json(&app, &actor, &user).await?))
}
