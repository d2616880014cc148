//! The workspace-agent scheme (spec/auth.md §5.1): the agent token resolves to the agent,
//! its build and the workspace owner's subject limited by the agent scope. No
//! `WWW-Authenticate`, no status checks, no writes.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, Uri};
use gatehouse_store::{StoreError, models::AgentAuthDiagnosis, system::system_restricted};
use uuid::Uuid;

use crate::{
    authn::{
        actor::{AuthenticatedAgent, Authn},
        reason::{Challenge, Reason},
        sources::token_from_request,
        state::AuthState,
    },
    error::ApiError,
    token::agent_token_hash,
};

const NOT_AUTHORIZED: &str = "Workspace agent not authorized.";
const GENERIC_DETAIL: &str = "The agent cannot authenticate until the workspace provision job has been completed. If the job is no longer running, this agent is invalid.";
const CHECK_FAILED: &str = "Internal error checking workspace agent authorization.";

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

fn broken(e: StoreError, message: &'static str) -> Reason {
    Reason::Broken(match e {
        StoreError::Unavailable(e) => ApiError::unavailable().with_cause(e),
        e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message).with_cause(e),
    })
}

/// Authenticates the agent token the request carries.
pub async fn authenticate(
    state: &AuthState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Authn<Arc<AuthenticatedAgent>> {
    let Some(raw) = token_from_request(headers, uri) else {
        return Authn::NotRequested;
    };
    let Ok(token) = Uuid::parse_str(&raw) else {
        return Authn::Failed(Reason::refused(
            Challenge::None,
            "Workspace agent token invalid.",
            format!("An agent token must be a valid UUIDv4. (len {})", raw.len()),
        ));
    };
    let hash = agent_token_hash(token);
    let system = system_restricted();
    match state.store.authenticate_agent(system, &hash).await {
        Ok(Some(agent)) => Authn::Authenticated(agent),
        Ok(None) => Authn::Failed(match state.store.diagnose_agent_auth(system, &hash).await {
            Ok(diagnosis) => Reason::refused(
                Challenge::None,
                NOT_AUTHORIZED,
                diagnosis.as_ref().map_or(GENERIC_DETAIL, refusal_detail),
            ),
            Err(e) => broken(e, CHECK_FAILED),
        }),
        Err(e @ StoreError::Corrupt(_)) => Authn::Failed(broken(
            e,
            "Internal error with workspace agent authorization context.",
        )),
        Err(e) => Authn::Failed(broken(e, CHECK_FAILED)),
    }
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
