//! Named least-privilege system subjects (spec/auth.md §4.10).

use std::sync::{Arc, LazyLock};

use uuid::Uuid;

use crate::{
    action::Action::*,
    permission::Permission,
    resource::ResourceType,
    role::{RoleAssignment, RoleDef},
    scope::Scope,
    subject::{Subject, SubjectKind},
};

/// Used by authentication: reads anything, writes only what authentication needs.
static SYSTEM_RESTRICTED: LazyLock<RoleDef> = LazyLock::new(|| {
    let perms = vec![
        Permission::allow(ResourceType::Wildcard, Read),
        Permission::allow(ResourceType::ApiKey, Wildcard),
        Permission::allow(ResourceType::User, Wildcard),
        Permission::allow(ResourceType::System, Wildcard),
        Permission::allow(ResourceType::Organization, Create),
        Permission::allow(ResourceType::OrganizationMember, Create),
        Permission::allow(ResourceType::OrganizationMember, Delete),
        Permission::allow(ResourceType::AssignRole, Wildcard),
        Permission::allow(ResourceType::AssignOrgRole, Wildcard),
    ];
    RoleDef {
        name: "system",
        display_name: "System",
        site: Vec::leak(perms),
        user: &[],
        org: &[],
        member: &[],
        org_scoped: false,
    }
});

fn system_subject(name: &'static str, def: &'static RoleDef) -> Subject {
    Subject {
        kind: SubjectKind::System(name),
        id: Uuid::nil(),
        friendly_name: def.display_name.to_owned(),
        roles: vec![RoleAssignment { def, org: None }],
        groups: Vec::new(),
        scope: Arc::new(Scope::all()),
    }
}

static SYSTEM_RESTRICTED_SUBJECT: LazyLock<Subject> =
    LazyLock::new(|| system_subject("system_restricted", &SYSTEM_RESTRICTED));

/// The subject authentication and start-up bookkeeping run as.
pub fn system_restricted() -> &'static Subject {
    &SYSTEM_RESTRICTED_SUBJECT
}
