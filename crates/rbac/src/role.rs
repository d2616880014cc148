//! Roles: named bundles of permissions at site, user, org and org-member level.

use uuid::Uuid;

use crate::permission::Permission;

/// A role's definition. Built-in roles are `'static`; custom roles (later) are leaked
/// into the same shape when loaded.
#[derive(Debug, PartialEq, Eq)]
pub struct RoleDef {
    pub name: &'static str,
    pub display_name: &'static str,
    /// Applies to every object.
    pub site: &'static [Permission],
    /// Applies to objects the subject owns that have no organization.
    pub user: &'static [Permission],
    /// For org roles: applies to every object in the role's organization.
    pub org: &'static [Permission],
    /// For org roles: applies to objects in the role's organization that the subject owns.
    pub member: &'static [Permission],
    /// Whether this is an organization role (`name:<org_id>`).
    pub org_scoped: bool,
}

/// A role as held by a subject: the definition plus, for org roles, the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleAssignment {
    pub def: &'static RoleDef,
    pub org: Option<Uuid>,
}

impl RoleAssignment {
    pub fn identifier(&self) -> String {
        match self.org {
            Some(org) => format!("{}:{}", self.def.name, org),
            None => self.def.name.to_owned(),
        }
    }
}

/// Splits `name` or `name:<org_uuid>` (spec/auth.md §1.6 step 2).
pub fn parse_role_identifier(raw: &str) -> Result<(&str, Option<Uuid>), RoleParseError> {
    let mut parts = raw.split(':');
    let name = parts.next().unwrap_or_default();
    let org = parts.next();
    if parts.next().is_some() {
        return Err(RoleParseError(format!(
            "too many colons in role name \"{raw}\""
        )));
    }
    if name.is_empty() {
        return Err(RoleParseError(format!("role name is empty in \"{raw}\"")));
    }
    let org = match org {
        None => None,
        Some(o) => Some(Uuid::parse_str(o).map_err(|e| {
            RoleParseError(format!("invalid organization id in role \"{raw}\": {e}"))
        })?),
    };
    Ok((name, org))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RoleParseError(pub String);
