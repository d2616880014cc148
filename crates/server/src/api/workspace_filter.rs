//! Coder's workspace search query (`GET /api/v2/workspaces?q=…`, codersdk's
//! `WorkspaceFilter`; issue #29): space-separated terms, each `key:value` or a bare word
//! that matches the name; a value may be quoted. `coder list` sends `owner:me`. Supported:
//! `owner` (a username or `me`), `name` (case-insensitive substring), `template` (a
//! template name) and `status` (the latest build's). Anything else is a 400 naming the
//! term, never a filter silently ignored.

use gatehouse_httpmw::ApiError;
use gatehouse_sdk::workspaces::Workspace;

/// The latest build's statuses (codersdk `WorkspaceStatus`).
const STATUSES: &[&str] = &[
    "pending",
    "starting",
    "running",
    "stopping",
    "stopped",
    "failed",
    "canceling",
    "canceled",
    "deleting",
    "deleted",
];

#[derive(Debug, Default, PartialEq, Eq)]
pub struct WorkspaceFilter {
    pub owner: Option<String>,
    pub name: Option<String>,
    pub template: Option<String>,
    pub status: Option<String>,
}

fn invalid(detail: String) -> ApiError {
    ApiError::bad_request("Invalid workspace search query.").with_validation("q", &detail)
}

/// Splits on spaces outside double quotes; quotes are dropped.
fn terms(q: &str) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in q.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(invalid("an opening quote has no closing quote".to_owned()));
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

impl WorkspaceFilter {
    /// Parses `q`; `me` as an owner becomes `me_username`.
    pub fn parse(q: &str, me_username: &str) -> Result<WorkspaceFilter, ApiError> {
        let mut filter = WorkspaceFilter::default();
        for term in terms(q)? {
            let (key, value) = match term.split_once(':') {
                Some((key, value)) => (key.to_ascii_lowercase(), value.to_owned()),
                None => ("name".to_owned(), term.clone()),
            };
            if value.is_empty() {
                return Err(invalid(format!("{term:?}: the value is empty")));
            }
            let value = if key == "status" {
                value.to_ascii_lowercase()
            } else {
                value
            };
            let slot = match key.as_str() {
                "owner" => &mut filter.owner,
                "name" => &mut filter.name,
                "template" => &mut filter.template,
                "status" => {
                    if !STATUSES.contains(&value.as_str()) {
                        return Err(invalid(format!(
                            "{value:?} is not a workspace status; one of {}",
                            STATUSES.join(", ")
                        )));
                    }
                    &mut filter.status
                }
                _ => {
                    return Err(invalid(format!(
                        "{key:?} is not a workspace filter; use owner, name, template or status"
                    )));
                }
            };
            if slot.is_some() {
                return Err(invalid(format!("{key:?} is given more than once")));
            }
            *slot = Some(if key == "owner" && value.eq_ignore_ascii_case("me") {
                me_username.to_owned()
            } else {
                value
            });
        }
        Ok(filter)
    }

    pub fn matches(&self, w: &Workspace) -> bool {
        let eq = |want: &Option<String>, have: &str| {
            want.as_deref()
                .is_none_or(|want| want.eq_ignore_ascii_case(have))
        };
        eq(&self.owner, &w.owner_name)
            && eq(&self.template, &w.template_name)
            && eq(&self.status, &w.latest_build.status)
            && self
                .name
                .as_deref()
                .is_none_or(|name| w.name.to_lowercase().contains(&name.to_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coders_query_syntax() {
        assert_eq!(
            WorkspaceFilter::parse("owner:me", "alice").unwrap(),
            WorkspaceFilter {
                owner: Some("alice".to_owned()),
                ..WorkspaceFilter::default()
            }
        );
        assert_eq!(
            WorkspaceFilter::parse("  dev  template:\"go app\" status:Running OWNER:bob", "a")
                .unwrap(),
            WorkspaceFilter {
                owner: Some("bob".to_owned()),
                name: Some("dev".to_owned()),
                template: Some("go app".to_owned()),
                status: Some("running".to_owned()),
            }
        );
        assert_eq!(
            WorkspaceFilter::parse("", "a").unwrap(),
            WorkspaceFilter::default()
        );
        for bad in [
            "color:blue",
            "status:sleeping",
            "owner:",
            "owner:a owner:b",
            "name:\"open",
        ] {
            let err = WorkspaceFilter::parse(bad, "a").unwrap_err();
            assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
