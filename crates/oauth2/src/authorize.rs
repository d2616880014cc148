//! The authorization endpoint (RFC 6749 §3.1, §4.1.1–4.1.2; RFC 7636 §4.3; RFC 8707 §2;
//! RFC 9207; spec/oauth2.md §2): GET shows the consent page, POST (the user's consent)
//! issues a code and redirects back to the client.
//!
//! Until the redirect URI is known to be registered, every error stays on this server
//! (RFC 6749 §4.1.2.1: MUST NOT redirect to an invalid redirection URI); after that, errors
//! go back to the client by redirect, unless the client registered itself: anyone may
//! register any redirect URI, so an error for a dynamically registered client is shown here
//! too, or the authorization server would be an open redirector (RFC 9700 §4.11.2).

use askama::Template;
use axum::{
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use gatehouse_httpmw::{
    audit::{AuditAction, AuditContext, AuditResource},
    authn::{Authenticated, Authn, TokenSource},
    request_log::RequestLog,
};
use gatehouse_rbac::{ScopeName, scope::scopes_cover};
use gatehouse_sdk::oauth2::{CodeChallengeMethod, ErrorCode, ResponseType};
use gatehouse_store::{
    models::{OAuth2App, OAuth2Code, may_sign_in, now},
    queries::oauth2::code_expiry,
    system::oauth2_provider,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;
use uuid::Uuid;

use crate::{
    SharedProvider,
    audience::InvalidResource,
    client::find_app,
    consent::{ConsentPage, error_page, html},
    error::OAuth2Error,
    params::{Params, read_form},
    pkce, redirect_uri, scopes,
    secrets::AppSecret,
};

const MAX_DESCRIPTION: usize = 2048;
const DENIED: &str = "The resource owner or authorization server denied the request";
pub const CSRF_FAILED: &str = "Something is wrong with your CSRF token. Please refresh the page. \
     If this error persists, try clearing your cookies.";

/// Both methods share the validation (spec/oauth2.md §2.2).
#[utoipa::path(
    get,
    path = "/oauth2/authorize",
    tag = "OAuth2",
    operation_id = "oauth2_authorize",
    params(
        ("response_type" = String, Query, description = "`code`"),
        ("client_id" = String, Query, description = "The client id"),
        ("redirect_uri" = Option<String>, Query, description = "A registered redirect URI"),
        ("state" = Option<String>, Query, description = "Opaque client state"),
        ("scope" = Option<String>, Query, description = "Space-separated scopes"),
        ("code_challenge" = String, Query, description = "PKCE S256 challenge"),
        ("code_challenge_method" = Option<String>, Query, description = "`S256`"),
        ("resource" = Option<String>, Query, description = "RFC 8707 resource"),
    ),
    responses(
        (status = 200, description = "The consent page", content_type = "text/html"),
        (status = 302, description = "Back to the client with an error"),
        (status = 303, description = "To the login page"),
        (status = 400, description = "An error page: the client or its redirect URI cannot be trusted with the error (RFC 6749 §4.1.2.1)", content_type = "text/html"),
        (status = 401, description = "An error page: the client is unknown", content_type = "text/html"),
    ),
    security(())
)]
pub async fn authorize(State(provider): State<SharedProvider>, req: Request) -> Response {
    let post = req.method() == Method::POST;
    match run(&provider, req).await {
        Ok(res) => res,
        Err(Stop::OnServer(e)) if !post => error_page(
            e.status,
            &provider.csp_hosts,
            e.code.as_str(),
            &e.description,
        ),
        Err(Stop::OnServer(e)) => e.into_response(),
        Err(Stop::Redirect(res)) => *res,
    }
}

/// POST: the user consented.
#[utoipa::path(
    post,
    path = "/oauth2/authorize",
    tag = "OAuth2",
    operation_id = "oauth2_authorize_consent",
    responses(
        (status = 302, description = "Back to the client with a code or an error"),
        (status = 303, description = "To the login page"),
        (status = 400, description = "Bad CSRF token or redirect URI"),
    ),
    security(())
)]
pub async fn consent(state: State<SharedProvider>, req: Request) -> Response {
    authorize(state, req).await
}

enum Stop {
    /// An error answered here, never redirected.
    OnServer(OAuth2Error),
    /// A finished response (a redirect to the client or to the login page).
    Redirect(Box<Response>),
}

impl From<OAuth2Error> for Stop {
    fn from(e: OAuth2Error) -> Self {
        Stop::OnServer(e)
    }
}

impl From<crate::params::Repeated> for Stop {
    fn from(r: crate::params::Repeated) -> Self {
        Stop::OnServer(r.into())
    }
}

/// Builds redirects to a validated callback (spec/oauth2.md §2.2 rule 8; RFC 9207).
struct Callback<'a> {
    url: Url,
    state: Option<&'a str>,
    issuer: &'a str,
    /// Whether errors may go back to the client by redirect: only for clients an
    /// administrator registered (RFC 9700 §4.11.2).
    redirects_errors: bool,
}

impl Callback<'_> {
    fn url_with(&self, pairs: &[(&str, &str)]) -> String {
        let mut url = self.url.clone();
        let ours = ["code", "error", "error_description", "state", "iss"];
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !ours.contains(&k.as_ref()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in &kept {
                q.append_pair(k, v);
            }
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(state) = self.state {
                q.append_pair("state", state);
            }
            q.append_pair("iss", self.issuer);
        }
        // An empty query (nothing kept and nothing added) would leave a bare `?`.
        url.to_string()
    }

    fn found(&self, pairs: &[(&str, &str)]) -> Response {
        redirect(StatusCode::FOUND, &self.url_with(pairs))
    }

    fn error(&self, code: ErrorCode, description: &str) -> Stop {
        let description = clean_description(description);
        if !self.redirects_errors {
            return Stop::OnServer(OAuth2Error::bad_request(code, description));
        }
        Stop::Redirect(Box::new(self.found(&[
            ("error", code.as_str()),
            ("error_description", &description),
        ])))
    }
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut res = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// RFC 6749 §4.1.2.1: `error_description` is limited to NQSCHAR (%x20-21 / %x23-5B /
/// %x5D-7E).
fn clean_description(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .filter(|c| *c != '\\')
        .map(|c| match c {
            '"' => '\'',
            ' '..='~' => c,
            _ => ' ',
        })
        .collect();
    if out.len() > MAX_DESCRIPTION {
        out.truncate(MAX_DESCRIPTION - " (truncated)".len());
        out.push_str(" (truncated)");
    }
    out
}

/// The signed-in user, if the request carries a usable browser or CLI session. An OAuth2
/// access token is not a session: it must not approve other apps.
fn session(req: &Request) -> Option<std::sync::Arc<Authenticated>> {
    let outcome = RequestLog::prechecked_in(req.extensions())?;
    match outcome.0.as_ref() {
        Authn::Authenticated(auth)
            if may_sign_in(&auth.user.status) && auth.key.login_type != "oauth2_provider_app" =>
        {
            Some(auth.clone())
        }
        _ => None,
    }
}

/// The CSRF token of a session: derived from the key's stored hash, so it needs no cookie
/// and cannot be computed without the database, yet reveals nothing about the secret.
fn csrf_token(auth: &Authenticated) -> String {
    let mut h = Sha256::new();
    h.update(b"gatehouse-oauth2-consent-csrf\0");
    h.update(&auth.key.hashed_secret);
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn run(provider: &SharedProvider, req: Request) -> Result<Response, Stop> {
    let post = req.method() == Method::POST;
    let query = Params::parse(req.uri().query().unwrap_or_default().as_bytes());
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/oauth2/authorize".to_owned(), |p| p.as_str().to_owned());
    let client_id = query
        .one("client_id")?
        .ok_or_else(|| OAuth2Error::invalid_request("Missing client_id parameter"))?;
    let app = find_app(provider, client_id).await?;
    let Some(auth) = session(&req) else {
        let login = format!(
            "/login?redirect={}",
            url::form_urlencoded::byte_serialize(path_and_query.as_bytes()).collect::<String>()
        );
        return Err(Stop::Redirect(Box::new(redirect(
            StatusCode::SEE_OTHER,
            &login,
        ))));
    };
    let callback_raw = callback(&app, query.one("redirect_uri")?)?;
    // Registered URIs were validated when stored; one that no longer passes is corrupt state.
    let callback_url = redirect_uri::validate(callback_raw, app.is_public())
        .map_err(|_| OAuth2Error::server_error().with_cause("stored redirect URI is invalid"))?;
    // A repeated state cannot be echoed; the error is reported without one.
    let state = query.one("state").unwrap_or_default();
    let cb = Callback {
        url: callback_url,
        state,
        issuer: &provider.issuer,
        redirects_errors: !app.dynamically_registered,
    };
    let checked = check_request(provider, &app, &query, &cb)?;
    if !session_covers(&auth, &checked.scope) {
        return Err(cb.error(
            ErrorCode::AccessDenied,
            "the signed-in session may not grant the requested scope",
        ));
    }
    if !post {
        return Ok(consent_page(
            provider,
            &app,
            &auth,
            &checked,
            &cb,
            &path_and_query,
        ));
    }
    let source = auth.source;
    let mut audit = AuditContext::from_parts(req.extensions(), req.headers());
    audit.actor = Some(auth.key.user_id);
    let form = read_form(req.into_body()).await?;
    // CSRF matters only when the browser sent the session by itself (its cookie).
    if source == TokenSource::Cookie {
        let sent = form.one("csrf_token").ok().flatten().unwrap_or_default();
        let expected = csrf_token(&auth);
        if !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
            let mut res = (
                StatusCode::BAD_REQUEST,
                axum::Json(gatehouse_sdk::Response::message(CSRF_FAILED)),
            )
                .into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return Ok(res);
        }
    }
    let code = AppSecret::generate();
    let now = now();
    let row = OAuth2Code {
        id: Uuid::new_v4(),
        app_id: app.id,
        user_id: auth.key.user_id,
        created_at: now,
        expires_at: code_expiry(now),
        secret_prefix: code.prefix.clone(),
        hashed_secret: code.hash(),
        code_challenge: checked.challenge.clone(),
        redirect_uri: query.one("redirect_uri")?.map(str::to_owned),
        resource_uri: checked.resource.clone(),
        scope: scopes::join(&checked.scope),
        state_hash: state.map(|s| hex(&Sha256::digest(s.as_bytes()))),
        used_at: None,
        grant_id: None,
    };
    provider
        .store
        .insert_oauth2_code(oauth2_provider(), &row)
        .await
        .map_err(OAuth2Error::from)?;
    tracing::info!(app_id = %app.id, user_id = %auth.key.user_id, "authorization code issued");
    // The user granted the client access (issue #9): what, to whom, for which resource.
    let resource = AuditResource::new("oauth2_provider_app", app.id, app.name.clone()).with_fields(
        serde_json::json!({
            "grant": "authorization_code",
            "scope": row.scope,
            "resource": row.resource_uri,
        }),
    );
    provider
        .audit
        .record(audit.entry(AuditAction::Create, resource, StatusCode::FOUND))
        .await;
    Ok(cb.found(&[("code", &code.formatted())]))
}

/// The callback to use (spec/oauth2.md §2.2 rule 3). RFC 6749 §3.1.2.3: with several
/// registered URIs the request must name one.
fn callback<'a>(app: &'a OAuth2App, given: Option<&'a str>) -> Result<&'a str, OAuth2Error> {
    match given {
        Some(uri)
            if app
                .redirect_uris
                .iter()
                .any(|r| redirect_uri::matches(r, uri)) =>
        {
            Ok(uri)
        }
        Some(_) => Err(OAuth2Error::invalid_request(
            "The redirect_uri must exactly match one of the app's registered redirect URIs",
        )),
        None if app.redirect_uris.len() == 1 => Ok(app.callback_url()),
        None => Err(OAuth2Error::invalid_request(
            "redirect_uri is required: the app has several registered redirect URIs",
        )),
    }
}

/// A request that passed validation.
struct Checked {
    challenge: String,
    resource: Option<String>,
    scope: Vec<ScopeName>,
}

fn check_request(
    provider: &SharedProvider,
    app: &OAuth2App,
    query: &Params,
    cb: &Callback<'_>,
) -> Result<Checked, Stop> {
    let mut problems: Vec<String> = Vec::new();
    let mut one = |name: &'static str| match query.one(name) {
        Ok(v) => v,
        Err(_) => {
            problems.push(format!("{name}: must not be repeated"));
            None
        }
    };
    let response_type = one("response_type");
    let challenge = one("code_challenge");
    let method = one("code_challenge_method");
    let resource = one("resource");
    let scope = one("scope");
    match response_type.map(|r| (r, ResponseType::parse(r))) {
        None => problems.push("response_type: required".to_owned()),
        Some((_, Some(ResponseType::Code))) => {}
        Some(_) => {
            return Err(cb.error(
                ErrorCode::UnsupportedResponseType,
                "Only response_type=code is supported",
            ));
        }
    }
    // RFC 7636 §4.3; OAuth 2.1: PKCE is required for every client.
    match challenge {
        None => problems.push("code_challenge: required (PKCE with S256)".to_owned()),
        Some(c) if !pkce::well_formed(c) => problems
            .push("code_challenge: must be 43 to 128 characters of [A-Za-z0-9-._~]".to_owned()),
        Some(_) => {}
    }
    // RFC 7636 §4.3: a missing method means `plain`, which is refused; a client must
    // say S256 rather than have it assumed.
    match method.map(|m| (m, CodeChallengeMethod::parse(m))) {
        Some((_, Some(CodeChallengeMethod::S256))) => {}
        None => problems.push(
            "code_challenge_method: required; a missing method means 'plain' (RFC 7636 section 4.3), \
             which is not supported: use 'S256'"
                .to_owned(),
        ),
        Some((_, Some(CodeChallengeMethod::Plain))) => {
            problems.push("code_challenge_method 'plain' is not supported; use 'S256'".to_owned())
        }
        Some((m, None)) => problems.push(format!("unsupported code_challenge_method: {m}")),
    }
    let resource = match resource.map(|r| provider.resources.resolve(r)) {
        None => Ok(None),
        Some(Ok(r)) => Ok(Some(r)),
        Some(Err(InvalidResource::Malformed)) => {
            Err("resource: must be an absolute URI without a fragment (RFC 8707)")
        }
        Some(Err(InvalidResource::Unknown)) => {
            Err("resource: not a resource served by this deployment")
        }
    };
    if !problems.is_empty() {
        if let Err(r) = &resource {
            problems.push((*r).to_owned());
        }
        return Err(cb.error(ErrorCode::InvalidRequest, &problems.join("; ")));
    }
    let resource = resource.map_err(|r| cb.error(ErrorCode::InvalidTarget, r))?;
    let scope =
        scopes::negotiate(scope, &app.scope).map_err(|e| cb.error(e.code, &e.description))?;
    Ok(Checked {
        challenge: challenge.unwrap_or_default().to_owned(),
        resource,
        scope,
    })
}

/// A session may only grant what it holds itself: a token limited to `user:read` cannot
/// approve an app for `coder:all`.
fn session_covers(auth: &Authenticated, requested: &[ScopeName]) -> bool {
    let held: Vec<ScopeName> = auth
        .key
        .scopes
        .iter()
        .filter_map(|s| ScopeName::parse(s).ok())
        .collect();
    requested.iter().all(|r| scopes_cover(&held, *r))
}

fn consent_page(
    provider: &SharedProvider,
    app: &OAuth2App,
    auth: &Authenticated,
    checked: &Checked,
    cb: &Callback<'_>,
    path_and_query: &str,
) -> Response {
    let redirect_host = match cb.url.host_str() {
        Some(h) => match cb.url.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_owned(),
        },
        None => format!("{}:", cb.url.scheme()),
    };
    let form_target = match cb.url.scheme() {
        "http" | "https" => cb.url.origin().ascii_serialization(),
        scheme => format!("{scheme}:"),
    };
    let csrf = csrf_token(auth);
    let cancel = cb.url_with(&[
        ("error", ErrorCode::AccessDenied.as_str()),
        ("error_description", DENIED),
    ]);
    let page = ConsentPage {
        app_name: &app.name,
        app_icon: &app.icon,
        username: &auth.user.username,
        redirect_host: &redirect_host,
        full_access: checked.scope.contains(&ScopeName::All),
        scopes: checked.scope.iter().map(ToString::to_string).collect(),
        csrf_token: &csrf,
        action: path_and_query,
        cancel_url: &cancel,
    };
    html(
        StatusCode::OK,
        page.render(),
        &provider.csp_hosts,
        Some(&form_target),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_nqschar() {
        assert_eq!(clean_description("a \"b\" \\c\u{1}é"), "a 'b' c  ");
        let long = clean_description(&"x".repeat(5000));
        assert_eq!(long.len(), MAX_DESCRIPTION);
        assert!(long.ends_with("(truncated)"));
    }

    #[test]
    fn callback_keeps_registered_query_but_not_ours() {
        let cb = Callback {
            url: Url::parse("https://e.com/cb?keep=1&code=evil&state=evil").unwrap(),
            state: Some("s t"),
            issuer: "https://gh.example",
            redirects_errors: true,
        };
        assert_eq!(
            cb.url_with(&[("code", "c")]),
            "https://e.com/cb?keep=1&code=c&state=s+t&iss=https%3A%2F%2Fgh.example"
        );
    }
}
