//! Workspace-agent authentication (spec/auth.md §5.1): the agent token resolves to the
//! agent, its build and the workspace owner's subject limited by the agent scope. No
//! `WWW-Authenticate`, no status checks, no writes.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
/// The authenticated agent: its row (with its own build) and the subject it acts as,
/// shared with the authentication cache.
pub use gatehouse_store::auth_cache::CachedAgent as AuthenticatedAgent;
use gatehouse_store::{StoreError, models::AgentAuthDiagnosis, system::system_restricted};
use uuid::Uuid;

use crate::{
    apikey::{AuthState, token_from_request},
    error::ApiError,
    request_log::RequestLog,
    token::agent_token_hash,
};

#[derive(Debug, Clone)]
pub struct AgentActor(pub Arc<AuthenticatedAgent>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AgentActor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AgentActor>()
            .cloned()
            .ok_or_else(|| ApiError::internal("No authenticated agent on this route."))
    }
}

const NOT_AUTHORIZED: &str = "Workspace agent not authorized.";
const GENERIC_DETAIL: &str = "The agent cannot authenticate until the workspace provision job has been completed. If the job is no longer running, this agent is invalid.";

/// The 401 `detail` for a token that matched an agent but did not authenticate.
fn refusal_detail(d: &AgentAuthDiagnosis) -> &'static str {
    let finished = matches!(
        d.latest_job_status.as_str(),
        "succeeded" | "failed" | "canceled" | "canceling"
    );
    let successor_stop =
        d.latest_build_number == d.build_number + 1 && d.latest_transition == "stop";
    if d.workspace_deleted {
        "The workspace was deleted."
    } else if successor_stop && d.transition == "start" && d.job_status != "succeeded" {
        "The agent's start build did not succeed."
    } else if successor_stop && finished {
        "The workspace stop build has finished."
    } else if d.latest_build_number > d.build_number {
        "A newer build replaced this agent's build."
    } else {
        GENERIC_DETAIL
    }
}

/// Authenticates the agent or answers 401 with the reason.
pub async fn require_agent(
    State(state): State<Arc<AuthState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(raw) = token_from_request(req.headers(), req.uri()) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Cookie \"coder_session_token\" must be provided.",
        )
        .into_response();
    };
    let Ok(token) = Uuid::parse_str(&raw) else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "Workspace agent token invalid.")
            .with_detail(format!(
                "An agent token must be a valid UUIDv4. (len {})",
                raw.len()
            ))
            .into_response();
    };
    let hash = agent_token_hash(token);
    let system = system_restricted();
    let agent = match state.store.authenticate_agent(system, &hash).await {
        Ok(Some(agent)) => agent,
        Ok(None) => {
            let detail = match state.store.diagnose_agent_auth(system, &hash).await {
                Ok(Some(d)) => refusal_detail(&d),
                Ok(None) => GENERIC_DETAIL,
                Err(StoreError::Unavailable(e)) => {
                    return ApiError::unavailable().with_cause(e).into_response();
                }
                Err(e) => {
                    return ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal error checking workspace agent authorization.",
                    )
                    .with_cause(e)
                    .into_response();
                }
            };
            return ApiError::new(StatusCode::UNAUTHORIZED, NOT_AUTHORIZED)
                .with_detail(detail)
                .into_response();
        }
        Err(StoreError::Unavailable(e)) => {
            return ApiError::unavailable().with_cause(e).into_response();
        }
        Err(e @ StoreError::Corrupt(_)) => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error with workspace agent authorization context.",
            )
            .with_cause(e)
            .into_response();
        }
        Err(e) => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error checking workspace agent authorization.",
            )
            .with_cause(e)
            .into_response();
        }
    };
    if let Some(log) = req.extensions().get::<RequestLog>() {
        let row = &agent.row;
        log.set_requestor(row.workspace_owner_id, &row.owner_username);
        log.set_auth_type("agent");
        log.set_agent(row.workspace_id, row.agent_id, &row.agent_name);
    }
    req.extensions_mut().insert(AgentActor(agent));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnosis(transition: &str, status: &str, latest: (i32, &str, &str)) -> AgentAuthDiagnosis {
        AgentAuthDiagnosis {
            agent_deleted: false,
            workspace_deleted: false,
            build_number: 1,
            transition: transition.into(),
            job_status: status.into(),
            latest_build_number: latest.0,
            latest_transition: latest.1.into(),
            latest_job_status: latest.2.into(),
        }
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(
            refusal_detail(&diagnosis("start", "succeeded", (2, "stop", "succeeded"))),
            "The workspace stop build has finished."
        );
        assert_eq!(
            refusal_detail(&diagnosis("start", "failed", (2, "stop", "running"))),
            "The agent's start build did not succeed."
        );
        assert_eq!(
            refusal_detail(&diagnosis("start", "succeeded", (3, "stop", "running"))),
            "A newer build replaced this agent's build."
        );
        assert_eq!(
            refusal_detail(&diagnosis("start", "succeeded", (2, "start", "running"))),
            "A newer build replaced this agent's build."
        );
        let mut deleted = diagnosis("start", "succeeded", (2, "delete", "succeeded"));
        deleted.workspace_deleted = true;
        assert_eq!(refusal_detail(&deleted), "The workspace was deleted.");
    }
}
