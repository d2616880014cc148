//! The one authenticator (issue #25): every route group that needs a caller names its
//! [`Scheme`], and [`authenticate`] runs it, applies the user-status policy where the
//! scheme's credential is a user's, records who it was in the request log, and turns a
//! refusal into its answer in one place ([`crate::authn::challenge`]).

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use gatehouse_sdk::error::messages;

use crate::{
    authn::{
        actor::{Actor, AgentActor, Authenticated, Authn, TokenSource},
        agent, api_key,
        challenge::{challenge, insufficient_scope},
        policy::{self, Admission},
        reason::{Challenge, Reason},
        record::{Identity, record_in_log},
        request_info::RequestInfo,
        sources::{bridge_token, presented_token},
        state::{AuthState, AuthzRecording, MCP_PATH, parses_true},
    },
    error::InsufficientScope,
    request_log::RequestLog,
};

/// How a route group's callers authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// A user's API key, session or OAuth2 access token, from Coder's five sources
    /// (spec/auth.md §1); the gate's precheck is reused.
    ApiKey,
    /// A workspace agent's token (spec/auth.md §5.1).
    Agent,
    /// An API key sent where model API clients send theirs (decisions.md 7).
    BridgeKey,
}

/// The state of [`authenticate`]: the configuration and the route group's scheme.
#[derive(Debug, Clone)]
pub struct Authenticator {
    pub state: Arc<AuthState>,
    pub scheme: Scheme,
}

impl Authenticator {
    pub fn new(state: Arc<AuthState>, scheme: Scheme) -> Authenticator {
        Authenticator { state, scheme }
    }
}

/// What a scheme says when the request carried nothing it reads.
fn missing(scheme: Scheme) -> Reason {
    match scheme {
        Scheme::ApiKey => Reason::refused(
            Challenge::Missing,
            messages::SIGNED_OUT,
            "Cookie \"coder_session_token\" or query parameter must be provided.",
        ),
        Scheme::Agent => Reason::refused(
            Challenge::None,
            "Cookie \"coder_session_token\" must be provided.",
            "",
        ),
        Scheme::BridgeKey => Reason::refused(
            Challenge::None,
            messages::SIGNED_OUT,
            "An API key is required in Authorization: Bearer or X-Api-Key.",
        ),
    }
}

/// What an API-key scheme already knows of the request (the gate's precheck), or what it
/// must still validate. Owned: no `&Request` (whose body is not `Sync`) is held across an
/// await.
fn key_of(scheme: Scheme, req: &Request) -> Result<Authn<Arc<Authenticated>>, RequestInfo> {
    match scheme {
        Scheme::BridgeKey => {
            let token = bridge_token(req.headers());
            // The bridge reads `Bearer` first; a precheck that authenticated a `Bearer`
            // token found no earlier API source, so it validated this same token.
            let prechecked = RequestLog::prechecked_in(req.extensions())
                .and_then(|p| p.authenticated_arc())
                .filter(|auth| auth.source == TokenSource::Bearer)
                .cloned();
            match (token, prechecked) {
                (Some((_, TokenSource::Bearer)), Some(auth)) => Ok(Authn::Authenticated(auth)),
                (token, _) => Err(RequestInfo::of(
                    req,
                    token.map(|(t, source)| (t.to_owned(), source)),
                )),
            }
        }
        _ => match RequestLog::prechecked_in(req.extensions()) {
            Some(prechecked) => Ok(prechecked.0.as_ref().clone()),
            None => Err(RequestInfo::of(
                req,
                presented_token(req.headers(), req.uri()),
            )),
        },
    }
}

/// Rejects a request its scheme does not authenticate (401, or the server's failure),
/// else attaches its actor ([`Actor`] or [`AgentActor`]) and runs the route.
pub async fn authenticate(
    State(authenticator): State<Authenticator>,
    mut req: Request,
    next: Next,
) -> Response {
    let Authenticator { state, scheme } = authenticator;
    let mcp = scheme == Scheme::ApiKey && req.uri().path() == MCP_PATH;
    if scheme == Scheme::Agent {
        return match agent::authenticate(&state, req.headers(), req.uri()).await {
            Authn::Authenticated(agent) => {
                record_in_log(req.extensions().get(), Identity::Agent(&agent));
                req.extensions_mut().insert(AgentActor(agent));
                next.run(req).await
            }
            Authn::NotRequested => challenge(&state, false, missing(scheme)).into_response(),
            Authn::Failed(reason) => challenge(&state, false, reason).into_response(),
        };
    }
    // The common case (a prechecked, active user) decides without awaiting anything.
    let outcome = match key_of(scheme, &req) {
        Ok(outcome) => outcome,
        Err(info) => api_key::authenticate(&state, &info).await,
    };
    let admitted = match outcome {
        Authn::Authenticated(auth) => match policy::admit(auth) {
            Admission::Admitted(auth) => Ok(auth),
            Admission::Dormant(auth) => policy::reactivate(&state, auth).await,
            Admission::Refused(reason) => Err(reason),
        },
        Authn::NotRequested => Err(missing(scheme)),
        Authn::Failed(reason) => Err(reason),
    };
    let auth = match admitted {
        Ok(auth) => auth,
        Err(reason) => return challenge(&state, mcp, reason).into_response(),
    };
    record_in_log(req.extensions().get(), Identity::Key(&auth));
    let record = match state.authz_recording {
        AuthzRecording::Off => false,
        AuthzRecording::Always => true,
        AuthzRecording::OnRequest => req
            .headers()
            .get("x-record-authz-checks")
            .and_then(|v| v.to_str().ok())
            .is_some_and(parses_true),
    };
    let (auth, recorder) = if record {
        let recorder = Arc::new(gatehouse_rbac::recorder::AuthzRecorder::new());
        let recorded = auth.edit(|entry| entry.subject.recorder = Some(recorder.clone()));
        (recorded, Some(recorder))
    } else {
        (auth, None)
    };
    let rfc6750 = auth.source.is_rfc6750();
    req.extensions_mut().insert(Actor(auth));
    let mut res = next.run(req).await;
    if let Some(value) = recorder.and_then(|r| HeaderValue::from_str(&r.header_value()).ok()) {
        res.headers_mut().insert("x-authz-checks", value);
    }
    // A scope refusal on a Bearer request says which scope would do (RFC 6750 §3.1).
    if rfc6750
        && let Some(InsufficientScope(scope)) = res.extensions().get::<InsufficientScope>().copied()
        && let Ok(value) = HeaderValue::from_str(&insufficient_scope(&state, scope))
    {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    res
}
