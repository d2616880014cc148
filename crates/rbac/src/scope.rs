//! API-key scopes (spec/auth.md §2): names, the public catalog, and expansion into the
//! site-level permissions a scope allows. A scope is a ceiling: the role must allow an
//! action *and* the scope must.

use std::fmt;

use crate::{
    action::Action::{self, *},
    allow_list::AllowList,
    permission::Permission,
    resource::ResourceType::{self, *},
};

/// The seven composite `coder:*` scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Composite {
    WorkspacesCreate,
    WorkspacesOperate,
    WorkspacesDelete,
    WorkspacesAccess,
    TemplatesBuild,
    TemplatesAuthor,
    ApikeysManageSelf,
}

impl Composite {
    pub const ALL: [Composite; 7] = [
        Composite::WorkspacesCreate,
        Composite::WorkspacesOperate,
        Composite::WorkspacesDelete,
        Composite::WorkspacesAccess,
        Composite::TemplatesBuild,
        Composite::TemplatesAuthor,
        Composite::ApikeysManageSelf,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Composite::WorkspacesCreate => "coder:workspaces.create",
            Composite::WorkspacesOperate => "coder:workspaces.operate",
            Composite::WorkspacesDelete => "coder:workspaces.delete",
            Composite::WorkspacesAccess => "coder:workspaces.access",
            Composite::TemplatesBuild => "coder:templates.build",
            Composite::TemplatesAuthor => "coder:templates.author",
            Composite::ApikeysManageSelf => "coder:apikeys.manage_self",
        }
    }

    fn grants(self) -> &'static [(ResourceType, &'static [Action])] {
        match self {
            Composite::WorkspacesCreate => &[
                (Template, &[Read, Use]),
                (Workspace, &[Stop, Start, Create, Update, Read]),
                (OrganizationMember, &[Read]),
            ],
            Composite::WorkspacesOperate => &[
                (Template, &[Read]),
                (Workspace, &[Stop, Start, Read, Update]),
                (OrganizationMember, &[Read]),
            ],
            Composite::WorkspacesDelete => &[
                (Template, &[Read, Use]),
                (Workspace, &[Read, Delete]),
                (OrganizationMember, &[Read]),
            ],
            Composite::WorkspacesAccess => &[
                (Template, &[Read]),
                (OrganizationMember, &[Read]),
                (Workspace, &[Read, Ssh, ApplicationConnect]),
            ],
            Composite::TemplatesBuild => &[
                (Template, &[Read]),
                (File, &[Create, Read]),
                (ProvisionerJobs, &[Read]),
            ],
            Composite::TemplatesAuthor => &[
                (Template, &[Read, Create, Update, Delete, ViewInsights]),
                (File, &[Create, Read]),
            ],
            Composite::ApikeysManageSelf => &[(ApiKey, &[Read, Create, Update, Delete])],
        }
    }
}

/// One stored scope name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeName {
    /// `coder:all`: site `*`/`*`.
    All,
    /// `coder:application_connect`: site `workspace.application_connect`.
    ApplicationConnect,
    Composite(Composite),
    /// `resource:action` or `resource:*`.
    Low(ResourceType, Action),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no scope named \"{0}\"")]
pub struct UnknownScope(pub String);

impl ScopeName {
    /// Parses a stored scope name. Legacy `all`/`application_connect` are not stored names;
    /// see [`ScopeName::parse_request`].
    pub fn parse(raw: &str) -> Result<ScopeName, UnknownScope> {
        match raw {
            "coder:all" => return Ok(ScopeName::All),
            "coder:application_connect" => return Ok(ScopeName::ApplicationConnect),
            _ => {}
        }
        if let Some(c) = Composite::ALL.into_iter().find(|c| c.as_str() == raw) {
            return Ok(ScopeName::Composite(c));
        }
        let unknown = || UnknownScope(raw.to_owned());
        let (resource, action) = raw.split_once(':').ok_or_else(unknown)?;
        let resource = ResourceType::parse(resource).ok_or_else(unknown)?;
        let action = Action::parse(action).ok_or_else(unknown)?;
        if resource == ResourceType::Wildcard || !resource.allows_action(action) {
            return Err(unknown());
        }
        Ok(ScopeName::Low(resource, action))
    }

    /// Parses a name sent to the token endpoint: a public catalog name, or the legacy
    /// `all` / `application_connect`, mapped to their `coder:` names (spec/auth.md §2.3;
    /// unlike Coder, the legacy names are mapped in the list form too, instead of a 500).
    pub fn parse_request(raw: &str) -> Option<ScopeName> {
        match raw {
            "all" => return Some(ScopeName::All),
            "application_connect" => return Some(ScopeName::ApplicationConnect),
            _ => {}
        }
        if !PUBLIC_SCOPES.contains(&raw) {
            return None;
        }
        ScopeName::parse(raw).ok()
    }

    /// Appends this scope's site permissions.
    fn expand_into(self, out: &mut Vec<Permission>) {
        match self {
            ScopeName::All => out.push(Permission::allow(ResourceType::Wildcard, Action::Wildcard)),
            ScopeName::ApplicationConnect => {
                out.push(Permission::allow(Workspace, ApplicationConnect))
            }
            ScopeName::Composite(c) => {
                for (resource, actions) in c.grants() {
                    out.extend(actions.iter().map(|a| Permission::allow(*resource, *a)));
                }
            }
            ScopeName::Low(resource, action) => out.push(Permission::allow(resource, action)),
        }
    }
}

impl fmt::Display for ScopeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeName::All => f.write_str("coder:all"),
            ScopeName::ApplicationConnect => f.write_str("coder:application_connect"),
            ScopeName::Composite(c) => f.write_str(c.as_str()),
            ScopeName::Low(r, a) => write!(f, "{r}:{a}"),
        }
    }
}

/// The public scope catalog of spec/auth.md §2.5, sorted as byte strings
/// (decisions.md 19: one constant feeds every place that lists scopes).
pub const PUBLIC_SCOPES: &[&str] = &[
    "api_key:*",
    "api_key:create",
    "api_key:delete",
    "api_key:read",
    "api_key:update",
    "coder:all",
    "coder:apikeys.manage_self",
    "coder:application_connect",
    "coder:templates.author",
    "coder:templates.build",
    "coder:workspaces.access",
    "coder:workspaces.create",
    "coder:workspaces.delete",
    "coder:workspaces.operate",
    "file:*",
    "file:create",
    "file:read",
    "organization:*",
    "organization:delete",
    "organization:read",
    "organization:update",
    "task:*",
    "task:create",
    "task:delete",
    "task:read",
    "task:update",
    "template:*",
    "template:create",
    "template:delete",
    "template:read",
    "template:update",
    "template:use",
    "user:*",
    "user:read",
    "user:read_personal",
    "user:update_personal",
    "user_secret:*",
    "user_secret:create",
    "user_secret:delete",
    "user_secret:read",
    "user_secret:update",
    "user_skill:*",
    "user_skill:create",
    "user_skill:delete",
    "user_skill:read",
    "user_skill:update",
    "workspace:*",
    "workspace:application_connect",
    "workspace:create",
    "workspace:delete",
    "workspace:read",
    "workspace:ssh",
    "workspace:start",
    "workspace:stop",
    "workspace:update",
];

/// An expanded scope: site permissions plus the effective allow list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub site: Vec<Permission>,
    pub allow_list: AllowList,
}

impl Scope {
    /// The union of the named scopes, intersected with the key's stored allow list
    /// (spec/auth.md §2.2, §3.4). An empty name list denies every check.
    pub fn from_key(names: &[ScopeName], key_allow_list: &AllowList) -> Scope {
        let mut site = Vec::with_capacity(names.len() * 2);
        for name in names {
            name.expand_into(&mut site);
        }
        site.dedup();
        // Every scope expands with `[*:*]`, so the union is `[*:*]` unless there are no
        // scopes, in which case nothing may pass.
        let scope_list = if names.is_empty() {
            AllowList::empty()
        } else {
            AllowList::all()
        };
        Scope {
            site,
            allow_list: scope_list.intersect(key_allow_list),
        }
    }

    /// A workspace agent's scope (spec/auth.md §5.3): everything (or everything but user
    /// data), limited to its workspace, template, template version (listed under type
    /// `template`, as upstream), owner, boundary logs and task.
    pub fn for_agent(
        workspace: uuid::Uuid,
        template: uuid::Uuid,
        template_version: uuid::Uuid,
        owner: uuid::Uuid,
        task: Option<uuid::Uuid>,
        no_user_data: bool,
    ) -> Scope {
        use crate::allow_list::{AllowId, AllowListEntry};
        let site = if no_user_data {
            ResourceType::ALL
                .iter()
                .filter(|r| **r != User)
                .map(|r| Permission::allow(*r, Action::Wildcard))
                .collect()
        } else {
            vec![Permission::allow(ResourceType::Wildcard, Action::Wildcard)]
        };
        let entry = |resource, id| AllowListEntry {
            resource,
            id: AllowId::Id(id),
        };
        let mut entries = vec![
            entry(Workspace, workspace),
            entry(Template, template),
            entry(Template, template_version),
            entry(User, owner),
            AllowListEntry {
                resource: BoundaryLog,
                id: AllowId::Any,
            },
        ];
        if let Some(task) = task {
            entries.push(entry(Task, task));
        }
        Scope {
            site,
            allow_list: AllowList::normalise(entries),
        }
    }

    /// `coder:all` with `[*:*]`: the scope never restricts.
    pub fn all() -> Scope {
        Scope {
            site: vec![Permission::allow(ResourceType::Wildcard, Action::Wildcard)],
            allow_list: AllowList::all(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_sorted_and_every_entry_parses() {
        let mut sorted = PUBLIC_SCOPES.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, PUBLIC_SCOPES);
        for s in PUBLIC_SCOPES {
            let parsed = ScopeName::parse(s).unwrap();
            assert_eq!(parsed.to_string(), *s);
        }
    }

    #[test]
    fn low_level_grammar() {
        assert_eq!(
            ScopeName::parse("workspace:start"),
            Ok(ScopeName::Low(Workspace, Start))
        );
        for bad in [
            "",
            "workspace:",
            ":read",
            "unknown:read",
            "workspace:bogus",
            "a:b:c",
            "*:read",
            "file:delete",
        ] {
            assert!(ScopeName::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn legacy_names_map_in_requests() {
        assert_eq!(ScopeName::parse_request("all"), Some(ScopeName::All));
        assert_eq!(
            ScopeName::parse_request("application_connect"),
            Some(ScopeName::ApplicationConnect)
        );
        // Valid but not public.
        assert_eq!(ScopeName::parse_request("system:read"), None);
    }

    #[test]
    fn empty_scope_list_admits_nothing() {
        let scope = Scope::from_key(&[], &AllowList::all());
        assert!(scope.site.is_empty());
        assert!(scope.allow_list.entries().is_empty());
    }
}

/// The smallest public catalog scope that would allow `action` on `resource`, for the
/// `scope="…"` hint of an `insufficient_scope` challenge (decisions.md 13): the exact
/// `resource:action`, else `resource:*`, else the first composite that grants it, else
/// `coder:all`.
pub fn covering_scope(resource: ResourceType, action: Action) -> &'static str {
    let exact = PUBLIC_SCOPES.iter().find(|s| {
        s.split_once(':')
            .is_some_and(|(r, a)| r == resource.as_str() && a == action.as_str())
    });
    let wildcard = || {
        PUBLIC_SCOPES.iter().find(|s| {
            s.split_once(':')
                .is_some_and(|(r, a)| r == resource.as_str() && a == "*")
        })
    };
    let composite = || {
        Composite::ALL
            .iter()
            .find(|c| {
                c.grants()
                    .iter()
                    .any(|(r, acts)| *r == resource && acts.contains(&action))
            })
            .map(|c| c.as_str())
    };
    exact
        .or_else(wildcard)
        .copied()
        .or_else(composite)
        .unwrap_or("coder:all")
}

/// Whether the permissions of `granted` include every permission of `requested`: the
/// RBAC sense of "covers" (spec/oauth2.md §2.5 rule 17), so `coder:workspaces.access`
/// covers `workspace:read` and `workspace:*` covers `workspace:ssh`.
pub fn scopes_cover(granted: &[ScopeName], requested: ScopeName) -> bool {
    let mut have = Vec::with_capacity(granted.len() * 4);
    for g in granted {
        g.expand_into(&mut have);
    }
    let mut want = Vec::with_capacity(4);
    requested.expand_into(&mut want);
    want.iter().all(|w| {
        have.iter()
            .any(|h| h.resource.covers(w.resource) && h.action.covers(w.action))
    })
}

#[cfg(test)]
mod covering_tests {
    use super::*;

    #[test]
    fn coverage_is_by_permission() {
        let p = |s| ScopeName::parse(s).unwrap();
        assert!(scopes_cover(
            &[p("coder:workspaces.access")],
            p("workspace:read")
        ));
        assert!(!scopes_cover(
            &[p("coder:workspaces.access")],
            p("workspace:delete")
        ));
        assert!(scopes_cover(&[p("workspace:*")], p("workspace:ssh")));
        assert!(!scopes_cover(&[p("workspace:read")], p("workspace:*")));
        assert!(scopes_cover(&[p("coder:all")], p("coder:templates.author")));
        assert!(!scopes_cover(&[p("user:read")], p("coder:all")));
        assert!(!scopes_cover(&[], p("user:read")));
    }

    #[test]
    fn covering_scope_prefers_the_narrowest() {
        assert_eq!(covering_scope(ApiKey, Create), "api_key:create");
        assert_eq!(covering_scope(User, Update), "user:*");
        assert_eq!(
            covering_scope(ProvisionerJobs, Read),
            "coder:templates.build"
        );
        assert_eq!(covering_scope(System, Read), "coder:all");
    }
}
