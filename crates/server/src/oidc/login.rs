//! `GET /api/v2/users/oidc/callback`: both legs of the sign-in. Without `code` it sends
//! the browser to the provider (state, nonce and a PKCE challenge, each also kept in an
//! HttpOnly cookie); with `code` it checks them, exchanges the code, verifies the ID
//! token, finds or creates the user, stores the link and issues a session key.

use axum::{
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::{
    ApiError,
    audit::{AuditAction, AuditContext, AuditResource},
    client_ip::ClientIp,
};
use gatehouse_store::{
    StoreError,
    models::{NewUser, User},
    queries::links::UserLink,
    system::system_restricted,
};
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    Scope, TokenResponse, core::CoreAuthenticationFlow,
};
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{LOGIN_TYPE, Oidc, expiry_of, token_error};
use crate::{
    api::{
        apikeys::{KeySpec, issue_key},
        users::session_cookie,
    },
    app::AppState,
    oauth_client::{
        FLOW_COOKIE_SECONDS, STATE_COOKIE, VERIFIER_COOKIE, check_state, flow_cookie,
        flow_cookie_value, parsed_query, pkce_verifier, provider_error,
    },
    outbound::error_chain,
    pages::login::safe_redirect,
    validate,
};

const NONCE_COOKIE: &str = "oauth_nonce";
const REDIRECT_COOKIE: &str = "oauth_redirect";

#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    redirect: Option<String>,
}

/// Sign in with OpenID Connect.
#[utoipa::path(
    get,
    path = "/api/v2/users/oidc/callback",
    tag = "Users",
    security(()),
    params(
        ("code" = Option<String>, Query, description = "The provider's authorization code (second leg)"),
        ("state" = Option<String>, Query, description = "The state sent on the first leg"),
        ("redirect" = Option<String>, Query, description = "A local path to land on after sign-in"),
    ),
    responses(
        (status = 307, description = "To the provider (first leg) or to the redirect path (signed in)"),
        (status = 400, body = gatehouse_sdk::Response),
        (status = 401, body = gatehouse_sdk::Response),
        (status = 403, body = gatehouse_sdk::Response),
        (status = 404, body = gatehouse_sdk::Response),
    )
)]
pub async fn callback(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    mut audit: AuditContext,
    query: Result<Query<CallbackQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = parsed_query(query)?;
    let Some(oidc) = app.oidc.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "OIDC sign-in is not configured.",
        ));
    };
    if let Some(error) = &query.error {
        return Err(provider_error(error, query.error_description.as_deref()));
    }
    match query.code.as_deref() {
        None => Ok(start(&app, &oidc, query.redirect.as_deref())),
        Some(code) => {
            let mut account = None;
            let state = query.state.as_deref();
            let result = finish(&app, &oidc, code, state, &headers, ip, &mut account).await;
            // Every completed sign-in leg is audited (issue #9), refused or not.
            let status = match &result {
                Ok(res) => res.status(),
                Err(err) => err.status,
            };
            audit.actor = account;
            let resource = AuditResource::new("api_key", account.unwrap_or_else(Uuid::nil), "")
                .with_fields(serde_json::json!({"login_type": LOGIN_TYPE}));
            app.auth
                .audit
                .record(audit.entry(AuditAction::Login, resource, status))
                .await;
            result
        }
    }
}

fn redirect_to(location: &str) -> Response {
    let mut res = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, value);
    }
    res
}

/// The first leg: off to the provider.
fn start(app: &AppState, oidc: &Oidc, redirect: Option<&str>) -> Response {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = Alphanumeric.sample_string(&mut rand::rng(), 32);
    let nonce = Alphanumeric.sample_string(&mut rand::rng(), 32);
    let mut request = oidc
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            {
                let state = state.clone();
                move || CsrfToken::new(state)
            },
            {
                let nonce = nonce.clone();
                move || Nonce::new(nonce)
            },
        )
        .set_pkce_challenge(challenge);
    for scope in oidc.flags.oidc_scopes.iter().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, _, _) = request.url();
    let mut res = redirect_to(url.as_str());
    let redirect = safe_redirect(redirect);
    for (name, value) in [
        (STATE_COOKIE, state.as_str()),
        (NONCE_COOKIE, nonce.as_str()),
        (VERIFIER_COOKIE, verifier.secret().as_str()),
        (REDIRECT_COOKIE, redirect.as_str()),
    ] {
        let value = url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
        if let Some(cookie) = flow_cookie(app.secure_cookies(), name, &value, FLOW_COOKIE_SECONDS) {
            res.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    res
}

fn bad_request(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

fn forbidden(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, message)
}

/// The second leg: the provider sent the browser back with a code.
async fn finish(
    app: &AppState,
    oidc: &Oidc,
    code: &str,
    state: Option<&str>,
    headers: &HeaderMap,
    ip: String,
    account: &mut Option<Uuid>,
) -> Result<Response, ApiError> {
    check_state(state, headers)?;
    let verifier = pkce_verifier(headers)?;
    let nonce = flow_cookie_value(headers, NONCE_COOKIE).unwrap_or_default();
    let exchange = oidc
        .client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|e| ApiError::internal(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier));
    let tokens = exchange.request_async(&oidc.http).await.map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "Failed to exchange the OIDC code.")
            .with_detail(token_error(&e))
    })?;
    let Some(id_token) = tokens.id_token() else {
        return Err(bad_request("The OIDC provider returned no ID token."));
    };
    let verified = id_token
        .claims(&oidc.client.id_token_verifier(), &Nonce::new(nonce))
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "Failed to verify the OIDC ID token.",
            )
            .with_detail(error_chain(&e))
        })?;
    let subject = verified.subject().as_str().to_owned();
    // The signature, issuer, audience, expiry and nonce are verified; the payload is read
    // as JSON so the configured claim names can be anything the provider sends.
    let mut claims = payload_claims(&id_token.to_string());
    merge_userinfo(oidc, tokens.access_token().secret(), &subject, &mut claims).await;

    let email_field = &oidc.flags.oidc_email_field;
    let email = claims
        .get(email_field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            bad_request(&format!(
                "Your OIDC provider sent no {email_field:?} claim; it is required to sign in."
            ))
        })?;
    if !oidc.flags.oidc_ignore_email_verified
        && claims.get("email_verified").and_then(Value::as_bool) == Some(false)
    {
        return Err(forbidden(format!(
            "Verify the {email:?} email address on your OIDC provider to authenticate!"
        )));
    }
    if !oidc.flags.oidc_email_domain.is_empty() {
        let domain = email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase());
        let allowed = oidc
            .flags
            .oidc_email_domain
            .iter()
            .any(|d| Some(d.trim().to_ascii_lowercase()) == domain);
        if !allowed {
            return Err(forbidden(format!(
                "Your email {email:?} is not in domains {:?}!",
                oidc.flags.oidc_email_domain
            )));
        }
    }

    let link = UserLink {
        user_id: Uuid::nil(),
        login_type: LOGIN_TYPE.to_owned(),
        linked_id: format!("{}||{subject}", oidc.issuer),
        oauth_access_token: tokens.access_token().secret().clone(),
        oauth_refresh_token: tokens
            .refresh_token()
            .map(|t| t.secret().clone())
            .unwrap_or_default(),
        oauth_expiry: expiry_of(tokens.expires_in()),
        claims: Value::Object(claims.clone()),
    };
    let user = find_or_create_user(app, oidc, &email, &claims, &link).await?;
    *account = Some(user.id);
    if user.status == "suspended" {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Your account is suspended. Contact an admin to reactivate your account.",
        ));
    }
    let system = system_restricted();
    if user.status == "dormant" {
        app.store
            .update_user_status(system, user.id, "active")
            .await?;
    }
    let (token, _) = issue_key(
        app,
        system,
        KeySpec {
            user_id: user.id,
            login_type: LOGIN_TYPE,
            lifetime: app.config.session_duration,
            scopes: vec!["coder:all".to_owned()],
            allow_list: vec!["*:*".to_owned()],
            token_name: String::new(),
            ip,
        },
    )
    .await?;
    tracing::info!(user_id = %user.id, "signed in with OIDC");
    let redirect = flow_cookie_value(headers, REDIRECT_COOKIE);
    let mut res = redirect_to(&safe_redirect(redirect.as_deref()));
    let out = res.headers_mut();
    if let Some(cookie) = session_cookie(app, &token, crate::api::users::session_max_age(app)) {
        out.append(header::SET_COOKIE, cookie);
    }
    for name in [STATE_COOKIE, NONCE_COOKIE, VERIFIER_COOKIE, REDIRECT_COOKIE] {
        if let Some(cookie) = flow_cookie(app.secure_cookies(), name, "", 0) {
            out.append(header::SET_COOKIE, cookie);
        }
    }
    gatehouse_httpmw::error::mark_no_store(out);
    Ok(res)
}

/// The ID token's payload (already verified by the caller).
fn payload_claims(jwt: &str) -> Map<String, Value> {
    use base64::Engine;
    jwt.split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
        .unwrap_or_default()
}

/// Claims the ID token lacks are taken from the userinfo endpoint, if the provider has
/// one and it answers for the same subject (OIDC Core §5.3.2). The ID token's own claims
/// win.
async fn merge_userinfo(
    oidc: &Oidc,
    access_token: &str,
    subject: &str,
    claims: &mut Map<String, Value>,
) {
    let Some(url) = oidc.client.user_info_url() else {
        return;
    };
    let response = oidc
        .http
        .0
        .get(url.url().as_str())
        .bearer_auth(access_token)
        .send()
        .await;
    let info = match response {
        Ok(r) if r.status().is_success() => r.json::<Map<String, Value>>().await.ok(),
        _ => None,
    };
    let Some(info) = info else {
        tracing::warn!("the OIDC userinfo endpoint did not answer; using the ID token's claims");
        return;
    };
    if info.get("sub").and_then(Value::as_str) != Some(subject) {
        tracing::warn!("the OIDC userinfo subject differs from the ID token's; ignored");
        return;
    }
    for (k, v) in info {
        claims.entry(k).or_insert(v);
    }
}

async fn find_or_create_user(
    app: &AppState,
    oidc: &Oidc,
    email: &str,
    claims: &Map<String, Value>,
    link: &UserLink,
) -> Result<User, ApiError> {
    let system = system_restricted();
    let linked = app
        .store
        .user_by_linked_id(system, LOGIN_TYPE, &link.linked_id)
        .await?;
    let existing = match linked {
        Some(user) => Some(user),
        None => match app.store.user_by_email(system, email).await {
            Ok(user) => Some(user),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
    };
    if let Some(user) = existing.filter(|u| !u.deleted) {
        if user.login_type != LOGIN_TYPE {
            return Err(forbidden(format!(
                "Incorrect login type, attempting to use {LOGIN_TYPE:?} but user is of login type {:?}.",
                user.login_type
            )));
        }
        app.store
            .upsert_user_link(
                system,
                &UserLink {
                    user_id: user.id,
                    ..link.clone()
                },
            )
            .await?;
        return Ok(user);
    }
    if !oidc.flags.oidc_allow_signups {
        return Err(forbidden(
            "Signups are disabled for OIDC authentication!".to_owned(),
        ));
    }
    let wanted = claims
        .get(&oidc.flags.oidc_username_field)
        .and_then(Value::as_str)
        .unwrap_or_else(|| email.split('@').next().unwrap_or_default());
    let name = claims
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .take(128)
        .collect::<String>();
    let base = username_from(wanted);
    // A taken name gets a short random suffix; a few tries are plenty.
    for attempt in 0..4 {
        let username = if attempt == 0 {
            base.clone()
        } else {
            let suffix = Alphanumeric
                .sample_string(&mut rand::rng(), 4)
                .to_ascii_lowercase();
            format!("{}-{suffix}", &base[..base.len().min(27)])
        };
        if app.store.user_by_username(system, &username).await.is_ok() {
            continue;
        }
        let id = Uuid::now_v7();
        let user = NewUser {
            id,
            email: email.to_owned(),
            username,
            name: name.clone(),
            hashed_password: Vec::new(),
            status: "active".to_owned(),
            rbac_roles: Vec::new(),
            login_type: LOGIN_TYPE.to_owned(),
            organization_ids: vec![app.default_org.id],
        };
        let link = UserLink {
            user_id: id,
            ..link.clone()
        };
        match app
            .store
            .create_user_with_link(system, user, Some(&link))
            .await
        {
            Ok(user) => return Ok(user),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "Could not find a free username for this account.",
    ))
}

/// A valid Coder username from whatever the provider calls the person: lowercase
/// letters and digits, other runs turned into single hyphens, at most 32 characters.
fn username_from(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out: String = out.trim_matches('-').chars().take(32).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if validate::username(&out).is_err() {
        out = format!(
            "user-{}",
            Alphanumeric
                .sample_string(&mut rand::rng(), 6)
                .to_ascii_lowercase()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::username_from;

    #[test]
    fn provider_names_become_valid_usernames() {
        assert_eq!(username_from("Alice.Smith"), "alice-smith");
        assert_eq!(username_from("bob"), "bob");
        assert_eq!(username_from("--x__y--"), "x-y");
        assert_eq!(username_from(&"a".repeat(40)).len(), 32);
        assert!(username_from("me").starts_with("user-"));
        assert!(username_from("ü").starts_with("user-"));
    }
}
