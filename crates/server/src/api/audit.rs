//! `GET /api/v2/audit` (spec/types.md §9.2): the audit log, newest first, for auditors
//! (an organization auditor reads its organizations' entries).

use std::collections::{HashMap, hash_map::Entry};

use axum::{
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use chrono::{Datelike, NaiveDate, TimeDelta};
use gatehouse_httpmw::{Actor, ApiError, Json};
use gatehouse_sdk::audit::{AuditLog, AuditLogResponse, MinimalOrganization, description};
use gatehouse_store::{
    StoreError,
    queries::audit::{AUDIT_COUNT_CAP, AuditFilter, AuditLogRow},
    system::system_restricted,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::{api::convert, app::AppState};

const DEFAULT_LIMIT: i64 = 100;
const INVALID_QUERY: &str = "Invalid audit search query.";

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Search terms `key:value`: `resource_type`, `resource_id`, `action`, `username`,
    /// `email`, `request_id`, `status_code`, `date_from`, `date_to` (`YYYY-MM-DD`,
    /// inclusive); a bare word is a username.
    pub q: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<String>,
    pub offset: Option<String>,
}

/// The audit log, newest first.
///
/// Every entry with site-wide `audit_log: read` (owners and auditors); an organization's
/// entries with its `audit_log: read` (organization auditors).
#[utoipa::path(
    get,
    path = "/api/v2/audit",
    tag = "Audit",
    params(AuditQuery),
    responses(
        (status = 200, body = AuditLogResponse),
        (status = 400, body = gatehouse_sdk::Response),
        (status = 401, body = gatehouse_sdk::Response),
        (status = 403, body = gatehouse_sdk::Response)
    )
)]
pub async fn audit_logs(
    State(app): State<AppState>,
    actor: Actor,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditLogResponse>, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request("Query parameters have invalid values.").with_detail(e.body_text())
    })?;
    let filter = parse_filter(query.q.as_deref().unwrap_or(""))?;
    let limit = page_number("limit", query.limit.as_deref(), DEFAULT_LIMIT, 1, 1000)?;
    let offset = page_number("offset", query.offset.as_deref(), 0, 0, i64::MAX)?;
    let (rows, count) = app
        .store
        .audit_logs(actor.subject(), &filter, limit, offset)
        .await
        .map_err(|e| ApiError::from_store(e, "Internal error getting audit logs."))?;
    let audit_logs = present(&app, rows).await?;
    Ok(Json(
        StatusCode::OK,
        AuditLogResponse {
            audit_logs,
            count,
            count_cap: AUDIT_COUNT_CAP,
        },
    ))
}

/// Adds each entry's actor and organization, read once per distinct id on the page.
async fn present(app: &AppState, rows: Vec<AuditLogRow>) -> Result<Vec<AuditLog>, ApiError> {
    let system = system_restricted();
    let mut users = HashMap::new();
    let mut organizations = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for AuditLogRow { entry, is_deleted } in rows {
        let user = match entry.user_id {
            Some(id) => {
                if let Entry::Vacant(slot) = users.entry(id) {
                    let found = found_or_none(app.store.user_by_id(system, id).await)?;
                    slot.insert(found.map(|u| convert::user(&u, Vec::new())));
                }
                users.get(&id).cloned().flatten()
            }
            None => None,
        };
        let organization = if entry.organization_id.is_nil() {
            None
        } else {
            let id = entry.organization_id;
            if let Entry::Vacant(slot) = organizations.entry(id) {
                let found = found_or_none(app.store.organization_by_id(system, id).await)?;
                slot.insert(found.map(|o| MinimalOrganization {
                    id: o.id,
                    name: o.name,
                    display_name: o.display_name,
                    icon: o.icon,
                }));
            }
            organizations.get(&id).cloned().flatten()
        };
        out.push(AuditLog {
            description: description(&entry.action, &entry.resource_type, entry.status_code),
            resource_link: String::new(),
            id: entry.id,
            request_id: entry.request_id,
            time: entry.time,
            ip: entry.ip,
            user_agent: entry.user_agent,
            resource_type: entry.resource_type,
            resource_id: entry.resource_id,
            resource_target: entry.resource_target,
            resource_icon: String::new(),
            action: entry.action,
            diff: entry.diff,
            status_code: entry.status_code,
            additional_fields: entry.additional_fields,
            is_deleted,
            organization_id: entry.organization_id,
            organization,
            user,
        });
    }
    Ok(out)
}

/// A deleted actor or organization is `null`; any other failure is the request's.
fn found_or_none<T>(result: Result<T, StoreError>) -> Result<Option<T>, ApiError> {
    match result {
        Ok(found) => Ok(Some(found)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(ApiError::from_store(
            e,
            "Internal error getting audit logs.",
        )),
    }
}

fn invalid(field: &str, detail: String) -> ApiError {
    ApiError::bad_request(INVALID_QUERY).with_validation(field, detail)
}

fn page_number(
    field: &str,
    raw: Option<&str>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(default);
    };
    match raw.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(
            ApiError::bad_request("Query parameters have invalid values.").with_validation(
                field,
                format!("Query param {field:?} must be an integer from {min} to {max}."),
            ),
        ),
    }
}

/// Parses `q`: whitespace-separated `key:value` terms (a bare word is a username).
fn parse_filter(q: &str) -> Result<AuditFilter, ApiError> {
    let mut filter = AuditFilter::default();
    for term in q.split_whitespace() {
        let (key, value) = term.split_once(':').unwrap_or(("username", term));
        let key = key.to_ascii_lowercase();
        if value.is_empty() {
            return Err(invalid(
                &key,
                format!("Query element {term:?} has no value."),
            ));
        }
        let uuid = |value: &str| {
            value
                .parse::<Uuid>()
                .map_err(|_| invalid(&key, format!("Query param {key:?} must be a valid UUID.")))
        };
        // Years past 9999 are refused: SQLite compares timestamps as text, and `+10000-…`
        // sorts before every real date (a `date_to` of 9999-12-31 found nothing).
        let date = |value: &str| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .filter(|d| (1..=9999).contains(&d.year()))
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
                .ok_or_else(|| {
                    invalid(
                        &key,
                        format!("Query param {key:?} must be a date as YYYY-MM-DD."),
                    )
                })
        };
        match key.as_str() {
            "resource_type" => filter.resource_type = Some(value.to_owned()),
            "resource_id" => filter.resource_id = Some(uuid(value)?),
            "action" => filter.action = Some(value.to_owned()),
            "username" => filter.username = Some(value.to_owned()),
            "email" => filter.email = Some(value.to_owned()),
            "request_id" => filter.request_id = Some(uuid(value)?),
            "status_code" => {
                filter.status_code = Some(
                    value
                        .parse::<i32>()
                        .ok()
                        .filter(|c| (100..600).contains(c))
                        .ok_or_else(|| {
                            invalid(
                                &key,
                                format!("Query param {key:?} must be an HTTP status code."),
                            )
                        })?,
                );
            }
            "date_from" => filter.date_from = Some(date(value)?),
            // Inclusive of the whole day; the last day there is ends at the last instant
            // there is.
            "date_to" => {
                let end = date(value)? + TimeDelta::days(1);
                filter.date_to = Some(if end.year() > 9999 {
                    end - TimeDelta::microseconds(1)
                } else {
                    end
                });
            }
            _ => {
                return Err(invalid(
                    &key,
                    format!("{key:?} is not a valid query param."),
                ));
            }
        }
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::parse_filter;

    #[test]
    fn search_terms_become_a_filter() {
        let f = parse_filter("action:login status_code:401 alice date_to:2026-11-28").unwrap();
        assert_eq!(f.action.as_deref(), Some("login"));
        assert_eq!(f.status_code, Some(401));
        assert_eq!(f.username.as_deref(), Some("alice"));
        assert_eq!(f.date_to.unwrap().to_rfc3339(), "2026-11-29T00:00:00+00:00");
        for bad in [
            "resource_id:nope",
            "colour:red",
            "date_from:yesterday",
            "status_code:9",
            "action:",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }
}
