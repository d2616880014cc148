//! The subject of a check: who is acting, with which roles, groups and scope.

use std::sync::Arc;

use uuid::Uuid;

use crate::{role::RoleAssignment, scope::Scope};

/// What kind of actor a subject is; used for logs and for system-subject names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    User,
    System(&'static str),
}

#[derive(Debug, Clone)]
pub struct Subject {
    pub kind: SubjectKind,
    pub id: Uuid,
    pub friendly_name: String,
    pub roles: Vec<RoleAssignment>,
    pub groups: Vec<Uuid>,
    pub scope: Arc<Scope>,
    /// Dev mode only: where this request's checks are recorded.
    pub recorder: Option<Arc<crate::recorder::AuthzRecorder>>,
}

impl Subject {
    /// Whether the subject is a member of `org` (derived from its roles, never its scope).
    #[inline]
    pub fn is_member_of(&self, org: Uuid) -> bool {
        self.roles.iter().any(|r| r.org == Some(org))
    }

    pub fn has_site_role(&self, name: &str) -> bool {
        self.roles
            .iter()
            .any(|r| r.org.is_none() && r.def.name == name)
    }

    /// The organizations the subject belongs to, without duplicates.
    pub fn member_orgs(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.roles.iter().enumerate().filter_map(|(i, r)| {
            let org = r.org?;
            (!self.roles[..i].iter().any(|p| p.org == Some(org))).then_some(org)
        })
    }
}

/// One organization membership as stored: the org, the membership's own roles and the
/// org's default member roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub org: Uuid,
    pub roles: Vec<String>,
    pub default_roles: Vec<String>,
    pub service_account: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SubjectError(pub String);

impl Subject {
    /// Builds a user's subject (spec/auth.md §1.6): site roles plus `member`, and for each
    /// membership its roles, the implied `organization-member` and the org's defaults.
    /// Unknown role names are dropped; a malformed role identifier is an error.
    pub fn for_user(
        id: Uuid,
        friendly_name: String,
        site_roles: &[String],
        memberships: &[Membership],
        groups: Vec<Uuid>,
        scope: Arc<Scope>,
    ) -> Result<Subject, SubjectError> {
        let mut roles = Vec::with_capacity(site_roles.len() + 1 + memberships.len() * 3);
        let mut push = |name: &str, org: Option<Uuid>| {
            if let Some(def) = crate::roles::builtin(name)
                && def.org_scoped == org.is_some()
                && !roles
                    .iter()
                    .any(|r: &RoleAssignment| r.def.name == def.name && r.org == org)
            {
                roles.push(RoleAssignment { def, org });
            }
        };
        for raw in site_roles.iter().map(String::as_str).chain(["member"]) {
            let (name, org) =
                crate::role::parse_role_identifier(raw).map_err(|e| SubjectError(e.0))?;
            push(name, org);
        }
        for m in memberships {
            let implied = if m.service_account {
                "organization-service-account"
            } else {
                "organization-member"
            };
            for raw in m
                .roles
                .iter()
                .chain(&m.default_roles)
                .map(String::as_str)
                .chain([implied])
            {
                let (name, _) =
                    crate::role::parse_role_identifier(raw).map_err(|e| SubjectError(e.0))?;
                push(name, Some(m.org));
            }
        }
        Ok(Subject {
            kind: SubjectKind::User,
            id,
            friendly_name,
            roles,
            groups,
            scope,
            recorder: None,
        })
    }
}
