//! What authentication leaves behind, in one place: the request log's fields for whoever
//! authenticated (every scheme), and the audit entry of a known key that was refused.

use axum::http::StatusCode;
use gatehouse_store::auth_cache::CachedKey;

use crate::{
    audit::{AuditAction, AuditContext, AuditResource},
    authn::{
        actor::{Authenticated, AuthenticatedAgent},
        request_info::RequestInfo,
        state::AuthState,
    },
    request_log::RequestLog,
};

/// Who the request log names, by scheme.
pub enum Identity<'a> {
    Key(&'a Authenticated),
    Agent(&'a AuthenticatedAgent),
}

/// Fills in the request log's requestor fields (spec/ops.md §4.1; decisions.md 39).
pub fn record_in_log(log: Option<&RequestLog>, identity: Identity<'_>) {
    let Some(log) = log else {
        return;
    };
    match identity {
        Identity::Key(auth) => {
            log.set_requestor(auth.key.user_id, &auth.user.username);
            log.set_api_key_id(&auth.key.id);
            log.set_auth_type(auth.auth_type());
        }
        Identity::Agent(agent) => {
            let row = &agent.row;
            log.set_requestor(row.workspace_owner_id, &row.owner_username);
            log.set_auth_type("agent");
            log.set_agent(row.workspace_id, row.agent_id, &row.agent_name);
        }
    }
}

/// Records a known key presented and refused (issue #9): the key's owner, the key id
/// (never its secret) and why, off the request path.
pub fn audit_refusal(state: &AuthState, req: &RequestInfo, entry: &CachedKey, reason: &str) {
    let context = AuditContext {
        request_id: req.request_id,
        ip: req.ip.to_string(),
        user_agent: req
            .user_agent
            .as_ref()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default(),
        actor: Some(entry.key.user_id),
    };
    let resource = AuditResource::new("api_key", entry.key.user_id, entry.key.token_name.clone())
        .with_fields(serde_json::json!({
            "api_key_id": entry.key.id,
            "login_type": entry.key.login_type,
            "reason": reason,
        }));
    state.audit.record_in_background(context.entry(
        AuditAction::Login,
        resource,
        StatusCode::UNAUTHORIZED,
    ));
}
