//! Scope negotiation (spec/oauth2.md §2.5 [main]; RFC 6749 §3.3): what an app may be
//! granted, given what the client asked for and the app's registered allowlist.

use gatehouse_rbac::{ScopeName, scope::scopes_cover};
use gatehouse_sdk::oauth2::ErrorCode;

use crate::error::OAuth2Error;

fn invalid_scope(description: impl Into<String>) -> OAuth2Error {
    OAuth2Error::bad_request(ErrorCode::InvalidScope, description)
}

/// Parses a space-delimited scope parameter (RFC 6749 §3.3) into catalog names, mapping
/// the legacy aliases and dropping duplicates. Unknown names are refused.
pub fn parse_requested(raw: &str) -> Result<Vec<ScopeName>, OAuth2Error> {
    let mut out: Vec<ScopeName> = Vec::new();
    for name in raw.split(' ').filter(|s| !s.is_empty()) {
        let parsed = ScopeName::parse_request(name)
            .ok_or_else(|| invalid_scope(format!("\"{name}\": unknown or unsupported scope")))?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    Ok(out)
}

/// The catalog names of a stored allowlist or grant (entries we no longer know drop out).
pub fn parse_stored(raw: &str) -> Vec<ScopeName> {
    let mut out: Vec<ScopeName> = Vec::new();
    for parsed in raw.split(' ').filter_map(ScopeName::parse_request) {
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    out
}

pub fn join(names: &[ScopeName]) -> String {
    names
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The scope to grant (never empty): rules 14–17.
pub fn negotiate(requested: Option<&str>, allowlist: &str) -> Result<Vec<ScopeName>, OAuth2Error> {
    let requested = parse_requested(requested.unwrap_or_default())?;
    if allowlist.trim().is_empty() {
        return Ok(if requested.is_empty() {
            vec![ScopeName::All]
        } else {
            requested
        });
    }
    let allowed = parse_stored(allowlist);
    if allowed.is_empty() {
        return Err(invalid_scope(
            "none of the scopes registered for this app are supported by this deployment; \
             ask an administrator to update the app's scopes",
        ));
    }
    if requested.is_empty() {
        return Ok(allowed);
    }
    if let Some(beyond) = requested.iter().find(|r| !scopes_cover(&allowed, **r)) {
        return Err(invalid_scope(format!(
            "\"{beyond}\": the requested scope requests permissions beyond this app's allowed scopes"
        )));
    }
    Ok(requested)
}

/// A refresh may only narrow (spec/oauth2.md §3.3 rule 20; RFC 6749 §6).
pub fn narrow(requested: &str, granted: &[ScopeName]) -> Result<Vec<ScopeName>, OAuth2Error> {
    let requested = parse_requested(requested)?;
    if let Some(wider) = requested.iter().find(|r| !scopes_cover(granted, **r)) {
        return Err(invalid_scope(format!(
            "\"{wider}\": a refresh cannot widen a grant beyond the scope originally granted"
        )));
    }
    Ok(if requested.is_empty() {
        granted.to_vec()
    } else {
        requested
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[ScopeName]) -> String {
        join(v)
    }

    #[test]
    fn negotiation_rules() {
        assert_eq!(names(&negotiate(None, "").unwrap()), "coder:all");
        assert_eq!(names(&negotiate(Some("all"), "").unwrap()), "coder:all");
        assert_eq!(
            names(&negotiate(Some("user:read user:read workspace:read"), "").unwrap()),
            "user:read workspace:read"
        );
        assert_eq!(
            negotiate(Some("bogus:x"), "").unwrap_err().code,
            ErrorCode::InvalidScope
        );
        // Omitted → the allowlist, minus entries we no longer know.
        assert_eq!(
            names(&negotiate(None, "workspace:read stale:thing").unwrap()),
            "workspace:read"
        );
        assert!(negotiate(None, "stale:thing").is_err());
        // Covered by permission, not by string.
        assert_eq!(
            names(&negotiate(Some("workspace:read"), "coder:workspaces.access").unwrap()),
            "workspace:read"
        );
        assert!(negotiate(Some("workspace:delete"), "coder:workspaces.access").is_err());
        // `system:read` is a valid scope but not in the public catalog.
        assert!(negotiate(Some("system:read"), "").is_err());
    }

    #[test]
    fn refresh_only_narrows() {
        let granted = parse_stored("coder:workspaces.access");
        assert_eq!(
            names(&narrow("workspace:read", &granted).unwrap()),
            "workspace:read"
        );
        assert!(narrow("workspace:delete", &granted).is_err());
        assert_eq!(
            names(&narrow("", &granted).unwrap()),
            "coder:workspaces.access"
        );
    }
}
