//! The audit log: entries are appended (as the audit writer) and read page by page (as an
//! auditor). Entries are never updated.

use chrono::{DateTime, Utc};
use gatehouse_rbac::{Action, Object, ResourceType, Subject};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::{Store, authz::check, db::on_db, error::Result};

/// `count` stops at this many matches (codersdk `AuditLogResponse.count_cap`).
pub const AUDIT_COUNT_CAP: i64 = 2000;

/// One entry, as written.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditLog {
    pub id: Uuid,
    pub time: DateTime<Utc>,
    /// The actor; `None` when there is none (a failed sign-in with an unknown email).
    pub user_id: Option<Uuid>,
    /// `Uuid::nil()` for site-level entries.
    pub organization_id: Uuid,
    pub ip: String,
    pub user_agent: String,
    pub resource_type: String,
    pub resource_id: Uuid,
    pub resource_target: String,
    pub action: String,
    pub diff: serde_json::Value,
    pub status_code: i32,
    pub additional_fields: Option<serde_json::Value>,
    pub request_id: Uuid,
}

/// An entry as read: whether its resource still exists is decided when it is read.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditLogRow {
    #[sqlx(flatten)]
    pub entry: AuditLog,
    pub is_deleted: bool,
}

/// What a page of the audit log is filtered on (`q` of `GET /api/v2/audit`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub resource_type: Option<String>,
    pub resource_id: Option<Uuid>,
    pub action: Option<String>,
    /// The actor's username or email, case-insensitively.
    pub username: Option<String>,
    pub email: Option<String>,
    pub request_id: Option<Uuid>,
    pub status_code: Option<i32>,
    pub date_from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub date_to: Option<DateTime<Utc>>,
}

const INSERT: &str = "INSERT INTO audit_logs (id, time, user_id, organization_id, ip, \
     user_agent, resource_type, resource_id, resource_target, action, diff, status_code, \
     additional_fields, request_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// Every filter is one optional parameter, so both dialects share one text.
macro_rules! audit_where {
    () => {
        " WHERE ($1 IS NULL OR a.resource_type = $1) \
     AND ($2 IS NULL OR a.resource_id = $2) \
     AND ($3 IS NULL OR a.action = $3) \
     AND ($4 IS NULL OR a.user_id IN (SELECT u.id FROM users u WHERE lower(u.username) = lower($4))) \
     AND ($5 IS NULL OR a.user_id IN (SELECT u.id FROM users u WHERE lower(u.email) = lower($5))) \
     AND ($6 IS NULL OR a.request_id = $6) \
     AND ($7 IS NULL OR a.status_code = $7) \
     AND ($8 IS NULL OR a.time >= $8) \
     AND ($9 IS NULL OR a.time < $9)"
    };
}

const PAGE_SELECT: &str = concat!(
    "SELECT a.id, a.time, a.user_id, a.organization_id, a.ip, a.user_agent, \
     a.resource_type, a.resource_id, a.resource_target, a.action, a.diff, a.status_code, \
     a.additional_fields, a.request_id, \
     CASE a.resource_type \
       WHEN 'user' THEN COALESCE((SELECT d.deleted FROM users d WHERE d.id = a.resource_id), TRUE) \
       WHEN 'oauth2_provider_app' THEN NOT EXISTS \
         (SELECT 1 FROM oauth2_provider_apps p WHERE p.id = a.resource_id) \
       WHEN 'organization' THEN NOT EXISTS \
         (SELECT 1 FROM organizations o WHERE o.id = a.resource_id) \
       ELSE FALSE END AS is_deleted \
     FROM audit_logs a",
    audit_where!()
);
const PAGE_ORDER: &str = " ORDER BY a.time DESC, a.id DESC LIMIT $10 OFFSET $11";

const COUNT_SELECT: &str = concat!(
    "SELECT COUNT(*) FROM (SELECT 1 FROM audit_logs a",
    audit_where!()
);
const COUNT_CAP: &str = " LIMIT $10) capped";

/// The page and count texts for a reader of every entry (`orgs` is `None`) or of the
/// entries of `orgs` only: `a.organization_id IN (…)`, its parameters numbered after the
/// query's own (the page has eleven, the count ten).
fn page_and_count_sql(orgs: Option<&[Uuid]>) -> (String, String) {
    let Some(orgs) = orgs else {
        return (
            format!("{PAGE_SELECT}{PAGE_ORDER}"),
            format!("{COUNT_SELECT}{COUNT_CAP}"),
        );
    };
    let within = |first: usize| {
        let placeholders: Vec<String> = (first..first + orgs.len())
            .map(|n| format!("${n}"))
            .collect();
        format!(" AND a.organization_id IN ({})", placeholders.join(", "))
    };
    (
        format!("{PAGE_SELECT}{}{PAGE_ORDER}", within(12)),
        format!("{COUNT_SELECT}{}{COUNT_CAP}", within(11)),
    )
}

macro_rules! bind_filter {
    ($query:expr, $filter:expr) => {
        $query
            .bind(&$filter.resource_type)
            .bind($filter.resource_id)
            .bind(&$filter.action)
            .bind(&$filter.username)
            .bind(&$filter.email)
            .bind($filter.request_id)
            .bind($filter.status_code)
            .bind($filter.date_from)
            .bind($filter.date_to)
    };
}

/// Whose entries `subject` may read: everyone's (`None`) with site-wide `audit_log: read`
/// (owners, auditors), else those of the organizations where it holds it
/// (`organization-auditor`: spec/types.md §9.2, "at site or any-org level"); site-level
/// entries are not in any organization. Nowhere: the site-wide refusal.
fn readable_orgs(subject: &Subject) -> Result<Option<Vec<Uuid>>> {
    let everything = Object::of(ResourceType::AuditLog);
    let refused = match check(subject, Action::Read, &everything) {
        Ok(()) => return Ok(None),
        Err(refused) => refused,
    };
    let orgs: Vec<Uuid> = subject
        .member_orgs()
        .filter(|org| check(subject, Action::Read, &everything.in_org(*org)).is_ok())
        .collect();
    if orgs.is_empty() {
        return Err(refused);
    }
    Ok(Some(orgs))
}

impl Store {
    /// Appends one entry.
    pub async fn insert_audit_log(&self, subject: &Subject, entry: &AuditLog) -> Result<()> {
        check(subject, Action::Create, &Object::of(ResourceType::AuditLog))?;
        on_db!(self, write, |pool| {
            sqlx::query(INSERT)
                .bind(entry.id)
                .bind(entry.time)
                .bind(entry.user_id)
                .bind(entry.organization_id)
                .bind(&entry.ip)
                .bind(&entry.user_agent)
                .bind(&entry.resource_type)
                .bind(entry.resource_id)
                .bind(&entry.resource_target)
                .bind(&entry.action)
                .bind(&entry.diff)
                .bind(entry.status_code)
                .bind(&entry.additional_fields)
                .bind(entry.request_id)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// A page of entries, newest first, and how many match (at most
    /// [`AUDIT_COUNT_CAP`]). Reading the log needs site-wide `audit_log: read`.
    pub async fn audit_logs(
        &self,
        subject: &Subject,
        filter: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AuditLogRow>, i64)> {
        let orgs = readable_orgs(subject)?;
        // Built from constants and numbered placeholders only; the ids are bound.
        let (page, count) = page_and_count_sql(orgs.as_deref());
        let rows = on_db!(self, read, |pool| {
            let mut query = bind_filter!(
                sqlx::query_as::<_, AuditLogRow>(AssertSqlSafe(page.as_str())),
                filter
            )
            .bind(limit)
            .bind(offset);
            for org in orgs.iter().flatten() {
                query = query.bind(org);
            }
            query.fetch_all(pool).await
        })?;
        let count = on_db!(self, read, |pool| {
            let mut query = bind_filter!(
                sqlx::query_scalar::<_, i64>(AssertSqlSafe(count.as_str())),
                filter
            )
            .bind(AUDIT_COUNT_CAP);
            for org in orgs.iter().flatten() {
                query = query.bind(org);
            }
            query.fetch_one(pool).await
        })?;
        Ok((rows, count))
    }
}
