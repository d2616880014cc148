//! `{workspaceagent}` (spec/auth.md §5.5): the agent, its workspace and the owner's
//! username in one query, as the caller. Not found and not readable are the same 404; a
//! database error is not a 404 (Coder ignored it).

use gatehouse_store::{Store, StoreError, queries::agents::AgentWithWorkspace};

use crate::{authn::actor::Actor, error::ApiError, params::uuid::parse_uuid_param};

pub async fn resolve_workspace_agent(
    store: &Store,
    actor: &Actor,
    raw: &str,
) -> Result<AgentWithWorkspace, ApiError> {
    let id = parse_uuid_param("workspaceagent", raw)?;
    store
        .agent_with_workspace(actor.subject(), id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound | StoreError::Forbidden | StoreError::InsufficientScope(_) => {
                ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "Agent doesn't exist with that id, or you do not have access to it.",
                )
            }
            StoreError::Unavailable(e) => ApiError::unavailable().with_cause(e),
            e => ApiError::internal("Internal error fetching workspace agent.").with_cause(e),
        })
}
