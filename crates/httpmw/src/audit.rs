//! The audit trail (issue #9): who did what to which resource, when, from where, with
//! which outcome, under which request id; readable by auditors at `GET /api/v2/audit`.
//!
//! Changes (tokens created and revoked, roles assigned, OAuth2 grants) are recorded by
//! their handler after the change commits, and the handler waits for the write. Failed
//! authentications with a known key are recorded off the request path, at most
//! [`BACKGROUND_LIMIT`] writes at a time: a flood of bad credentials must not turn into
//! a flood of blocked requests or unbounded memory. What does not fit is counted in the
//! log at warn, never silently.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, StatusCode, header, request::Parts},
};
use gatehouse_rbac::system::audit_writer;
use gatehouse_store::{Store, models::now, queries::audit::AuditLog};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::{authn::actor::Actor, client_ip::peer_ip, request_log::RequestLog};

/// Audit writes of failed authentications in flight at once.
pub const BACKGROUND_LIMIT: usize = 64;

/// User agents are recorded up to this many bytes.
const USER_AGENT_LIMIT: usize = 512;

#[derive(Debug, Clone)]
pub struct Auditor {
    store: Store,
    background: Arc<Semaphore>,
    dropped: Arc<AtomicU64>,
}

impl Auditor {
    pub fn new(store: Store) -> Auditor {
        Auditor {
            store,
            background: Arc::new(Semaphore::new(BACKGROUND_LIMIT)),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Writes one entry and waits for it. A failed write is logged, not returned: the
    /// change it records has already happened.
    pub async fn record(&self, entry: AuditLog) {
        if let Err(error) = self.store.insert_audit_log(audit_writer(), &entry).await {
            tracing::error!(
                %error,
                request_id = %entry.request_id,
                action = %entry.action,
                resource_type = %entry.resource_type,
                "audit entry not written"
            );
        }
    }

    /// Writes one entry off the request path, or drops it (counted, at warn) when
    /// [`BACKGROUND_LIMIT`] writes are already waiting.
    pub fn record_in_background(&self, entry: AuditLog) {
        let Ok(permit) = self.background.clone().try_acquire_owned() else {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                request_id = %entry.request_id,
                dropped_total = dropped,
                "audit backlog full: entry for a failed authentication dropped"
            );
            return;
        };
        let auditor = self.clone();
        tokio::spawn(async move {
            auditor.record(entry).await;
            drop(permit);
        });
    }
}

/// Where a request came from, as the audit log records it.
#[derive(Debug, Clone)]
pub struct AuditContext {
    pub request_id: Uuid,
    pub ip: String,
    pub user_agent: String,
    /// The authenticated caller, if any.
    pub actor: Option<Uuid>,
}

impl AuditContext {
    pub fn of(parts: &Parts) -> AuditContext {
        AuditContext::from_parts(&parts.extensions, &parts.headers)
    }

    pub fn from_parts(extensions: &axum::http::Extensions, headers: &HeaderMap) -> AuditContext {
        AuditContext {
            request_id: RequestLog::request_id_in(extensions),
            ip: peer_ip(extensions).to_string(),
            user_agent: user_agent(headers),
            actor: extensions.get::<Actor>().map(Actor::user_id),
        }
    }

    /// An entry for `action` on a resource, by this request's caller.
    pub fn entry(
        &self,
        action: AuditAction,
        resource: AuditResource,
        status: StatusCode,
    ) -> AuditLog {
        AuditLog {
            id: Uuid::now_v7(),
            time: now(),
            user_id: self.actor,
            organization_id: resource.organization_id.unwrap_or_else(Uuid::nil),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            resource_type: resource.kind.to_owned(),
            resource_id: resource.id,
            resource_target: resource.target,
            action: action.as_str().to_owned(),
            diff: resource.diff.unwrap_or_else(|| serde_json::json!({})),
            status_code: i32::from(status.as_u16()),
            additional_fields: resource.additional_fields,
            request_id: self.request_id,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuditContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(AuditContext::of(parts))
    }
}

fn user_agent(headers: &HeaderMap) -> String {
    let raw = headers
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .unwrap_or_default();
    let mut end = raw.len().min(USER_AGENT_LIMIT);
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    raw[..end].to_owned()
}

/// codersdk `AuditAction`, the subset Gatehouse records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    Create,
    Write,
    Delete,
    Login,
    Logout,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "create",
            AuditAction::Write => "write",
            AuditAction::Delete => "delete",
            AuditAction::Login => "login",
            AuditAction::Logout => "logout",
        }
    }
}

/// The resource an entry is about.
#[derive(Debug, Clone)]
pub struct AuditResource {
    /// codersdk `ResourceType` (`api_key`, `user`, `organization_member`, …).
    pub kind: &'static str,
    pub id: Uuid,
    /// Its name, as the UI shows it.
    pub target: String,
    pub organization_id: Option<Uuid>,
    /// Changed fields: `{"field": {"old": …, "new": …, "secret": false}}`.
    pub diff: Option<serde_json::Value>,
    pub additional_fields: Option<serde_json::Value>,
}

impl AuditResource {
    pub fn new(kind: &'static str, id: Uuid, target: impl Into<String>) -> AuditResource {
        AuditResource {
            kind,
            id,
            target: target.into(),
            organization_id: None,
            diff: None,
            additional_fields: None,
        }
    }

    pub fn in_org(mut self, organization_id: Uuid) -> AuditResource {
        self.organization_id = Some(organization_id);
        self
    }

    pub fn with_diff(mut self, diff: serde_json::Value) -> AuditResource {
        self.diff = Some(diff);
        self
    }

    pub fn with_fields(mut self, fields: serde_json::Value) -> AuditResource {
        self.additional_fields = Some(fields);
        self
    }
}
