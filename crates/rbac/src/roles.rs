//! The built-in roles (spec/auth.md §4.7), compiled once at first use.
//!
//! Organization sharing is taken as `everyone` and the member "elevation" is included, the
//! simpler port spec/auth.md §4.7 allows for `organization-member`.

use std::sync::LazyLock;

use crate::{
    action::Action::{self, *},
    permission::Permission,
    resource::ResourceType::{self, *},
    role::RoleDef,
};

fn leak(perms: Vec<Permission>) -> &'static [Permission] {
    Vec::leak(perms)
}

fn all_of(resource: ResourceType) -> Vec<Permission> {
    vec![Permission::allow(resource, Action::Wildcard)]
}

fn some(resource: ResourceType, actions: &[Action]) -> Vec<Permission> {
    actions
        .iter()
        .map(|a| Permission::allow(resource, *a))
        .collect()
}

fn every_type_except(excluded: &[ResourceType]) -> Vec<Permission> {
    ResourceType::ALL
        .iter()
        .filter(|r| !excluded.contains(r))
        .map(|r| Permission::allow(*r, Action::Wildcard))
        .collect()
}

fn concat(parts: Vec<Vec<Permission>>) -> &'static [Permission] {
    leak(parts.into_iter().flatten().collect())
}

const DORMANT_ACTIONS: &[Action] = &[
    Read,
    Delete,
    Create,
    Update,
    Stop,
    CreateAgent,
    DeleteAgent,
    UpdateAgent,
];

fn def(
    name: &'static str,
    display_name: &'static str,
    site: &'static [Permission],
    user: &'static [Permission],
) -> RoleDef {
    RoleDef {
        name,
        display_name,
        site,
        user,
        org: &[],
        member: &[],
        org_scoped: false,
    }
}

fn org_def(
    name: &'static str,
    display_name: &'static str,
    site: &'static [Permission],
    org: &'static [Permission],
    member: &'static [Permission],
) -> RoleDef {
    RoleDef {
        name,
        display_name,
        site,
        user: &[],
        org,
        member,
        org_scoped: true,
    }
}

pub static OWNER: LazyLock<RoleDef> = LazyLock::new(|| {
    def(
        "owner",
        "Owner",
        concat(vec![
            every_type_except(&[
                WorkspaceDormant,
                PrebuiltWorkspace,
                Workspace,
                UserSecret,
                UserSkill,
                UsageEvent,
                BoundaryUsage,
                BoundaryLog,
                AiSeat,
                AiGatewayKey,
            ]),
            all_of(Workspace),
            some(WorkspaceDormant, DORMANT_ACTIONS),
            some(UserSkill, &[Read, Delete]),
            some(AiGatewayKey, &[Create, Read, Delete]),
            some(PrebuiltWorkspace, &[Update, Delete]),
            some(BoundaryLog, &[Read]),
        ]),
        &[],
    )
});

pub static MEMBER: LazyLock<RoleDef> = LazyLock::new(|| {
    def(
        "member",
        "Member",
        concat(vec![
            some(AssignRole, &[Read]),
            some(Oauth2App, &[Read]),
            some(WorkspaceProxy, &[Read]),
        ]),
        concat(vec![
            every_type_except(&[
                WorkspaceDormant,
                PrebuiltWorkspace,
                Workspace,
                User,
                OrganizationMember,
                BoundaryUsage,
                BoundaryLog,
                AibridgeInterception,
                Chat,
                AiSeat,
            ]),
            some(User, &[Read, ReadPersonal, UpdatePersonal]),
            some(AibridgeInterception, &[Create, Update]),
            some(BoundaryLog, &[Create]),
        ]),
    )
});

pub static AUDITOR: LazyLock<RoleDef> = LazyLock::new(|| {
    let read = [
        AssignOrgRole,
        AuditLog,
        ConnectionLog,
        User,
        Group,
        GroupMember,
        Organization,
        OrganizationMember,
        DeploymentStats,
        DeploymentConfig,
        AibridgeInterception,
        BoundaryLog,
    ];
    def(
        "auditor",
        "Auditor",
        concat(vec![
            read.iter().map(|r| Permission::allow(*r, Read)).collect(),
            some(Template, &[Read, ViewInsights]),
        ]),
        &[],
    )
});

pub static TEMPLATE_ADMIN: LazyLock<RoleDef> = LazyLock::new(|| {
    def(
        "template-admin",
        "Template Admin",
        concat(vec![
            all_of(Template),
            some(File, &[Create, Read]),
            some(Workspace, &[Read]),
            some(WorkspaceDormant, &[Read]),
            some(PrebuiltWorkspace, &[Update, Delete]),
            some(ProvisionerDaemon, &[Create, Read, Update, Delete]),
            [
                AssignOrgRole,
                User,
                Group,
                GroupMember,
                Organization,
                OrganizationMember,
            ]
            .iter()
            .map(|r| Permission::allow(*r, Read))
            .collect(),
        ]),
        &[],
    )
});

pub static USER_ADMIN: LazyLock<RoleDef> = LazyLock::new(|| {
    def(
        "user-admin",
        "User Admin",
        concat(vec![
            some(AssignRole, &[Assign, Unassign, Read]),
            some(AssignOrgRole, &[Assign, Unassign, Read]),
            all_of(User),
            some(Group, &[Create, Read, Update, Delete]),
            some(GroupMember, &[Read]),
            some(Organization, &[Read]),
            some(OrganizationMember, &[Create, Read, Update, Delete]),
            some(IdpsyncSettings, &[Read, Update]),
        ]),
        &[],
    )
});

pub static ORGANIZATION_ADMIN: LazyLock<RoleDef> = LazyLock::new(|| {
    org_def(
        "organization-admin",
        "Organization Admin",
        concat(vec![some(User, &[Read])]),
        concat(vec![
            every_type_except(&[
                Workspace,
                WorkspaceDormant,
                PrebuiltWorkspace,
                AssignRole,
                UserSecret,
                BoundaryLog,
                BoundaryUsage,
                AiSeat,
                WorkspaceBuildOrchestration,
            ]),
            Workspace
                .actions()
                .iter()
                .filter(|a| !matches!(a, Ssh | ApplicationConnect))
                .map(|a| Permission::allow(Workspace, *a))
                .collect(),
            some(WorkspaceDormant, DORMANT_ACTIONS),
            some(PrebuiltWorkspace, &[Update, Delete]),
        ]),
        &[],
    )
});

pub static ORGANIZATION_AUDITOR: LazyLock<RoleDef> = LazyLock::new(|| {
    org_def(
        "organization-auditor",
        "Organization Auditor",
        &[],
        concat(vec![
            [
                AuditLog,
                ConnectionLog,
                Group,
                GroupMember,
                Organization,
                OrganizationMember,
            ]
            .iter()
            .map(|r| Permission::allow(*r, Read))
            .collect(),
            some(Template, &[Read, ViewInsights]),
        ]),
        &[],
    )
});

pub static ORGANIZATION_USER_ADMIN: LazyLock<RoleDef> = LazyLock::new(|| {
    org_def(
        "organization-user-admin",
        "Organization User Admin",
        concat(vec![some(User, &[Read])]),
        concat(vec![
            some(AssignOrgRole, &[Assign, Unassign, Read]),
            some(Organization, &[Read]),
            some(OrganizationMember, &[Create, Read, Update, Delete]),
            all_of(Group),
            all_of(GroupMember),
            some(IdpsyncSettings, &[Read, Update]),
        ]),
        &[],
    )
});

pub static ORGANIZATION_TEMPLATE_ADMIN: LazyLock<RoleDef> = LazyLock::new(|| {
    org_def(
        "organization-template-admin",
        "Organization Template Admin",
        &[],
        concat(vec![
            all_of(Template),
            some(File, &[Create, Read]),
            some(Workspace, &[Read]),
            some(WorkspaceDormant, &[Read]),
            some(PrebuiltWorkspace, &[Update, Delete]),
            [Organization, OrganizationMember, Group, GroupMember]
                .iter()
                .map(|r| Permission::allow(*r, Read))
                .collect(),
            some(ProvisionerDaemon, &[Create, Read, Update, Delete]),
            some(ProvisionerJobs, &[Read, Update, Create]),
        ]),
        &[],
    )
});

pub static ORGANIZATION_WORKSPACE_CREATION_BAN: LazyLock<RoleDef> = LazyLock::new(|| {
    org_def(
        "organization-workspace-creation-ban",
        "Organization Workspace Creation Ban",
        &[],
        leak(
            [Create, Delete, CreateAgent, DeleteAgent]
                .iter()
                .map(|a| Permission::deny(Workspace, *a))
                .collect(),
        ),
        &[],
    )
});

fn workspace_access_member_perms() -> Vec<Permission> {
    [
        all_of(Workspace),
        some(WorkspaceDormant, DORMANT_ACTIONS),
        some(File, &[Create, Read]),
        some(ProvisionerDaemon, &[Create, Read]),
        all_of(Task),
    ]
    .into_iter()
    .flatten()
    .collect()
}

pub static ORGANIZATION_WORKSPACE_ACCESS: LazyLock<RoleDef> = LazyLock::new(|| {
    org_def(
        "organization-workspace-access",
        "Organization Workspace Access",
        &[],
        &[],
        leak(workspace_access_member_perms()),
    )
});

pub static AGENTS_ACCESS: LazyLock<RoleDef> = LazyLock::new(|| {
    org_def(
        "agents-access",
        "Agents Access",
        &[],
        &[],
        concat(vec![some(Chat, &[Create, Read, Share, Update])]),
    )
});

pub static ORGANIZATION_MEMBER: LazyLock<RoleDef> = LazyLock::new(|| {
    org_def(
        "organization-member",
        "Organization Member",
        &[],
        concat(vec![
            some(ProvisionerDaemon, &[Read]),
            some(Organization, &[Read]),
            some(AssignOrgRole, &[Read]),
            some(OrganizationMember, &[Read]),
            some(Group, &[Read]),
        ]),
        concat(vec![
            some(OrganizationMember, &[Read]),
            some(GroupMember, &[Read]),
            some(AibridgeInterception, &[Create, Update]),
            all_of(ApiKey),
            some(NotificationMessage, &[Read, Update]),
            all_of(NotificationPreference),
            all_of(InboxNotification),
            workspace_access_member_perms(),
        ]),
    )
});

/// Looks up a built-in role by name.
pub fn builtin(name: &str) -> Option<&'static RoleDef> {
    let def: &'static RoleDef = match name {
        "owner" => &OWNER,
        "member" => &MEMBER,
        "auditor" => &AUDITOR,
        "template-admin" => &TEMPLATE_ADMIN,
        "user-admin" => &USER_ADMIN,
        "organization-admin" => &ORGANIZATION_ADMIN,
        "organization-auditor" => &ORGANIZATION_AUDITOR,
        "organization-user-admin" => &ORGANIZATION_USER_ADMIN,
        "organization-template-admin" => &ORGANIZATION_TEMPLATE_ADMIN,
        "organization-workspace-creation-ban" => &ORGANIZATION_WORKSPACE_CREATION_BAN,
        "organization-workspace-access" => &ORGANIZATION_WORKSPACE_ACCESS,
        "agents-access" => &AGENTS_ACCESS,
        "organization-member" => &ORGANIZATION_MEMBER,
        _ => return None,
    };
    Some(def)
}

/// Site roles an administrator may grant through `POST /api/v2/users` or role updates.
pub const SITE_ROLE_NAMES: &[&str] =
    &["owner", "member", "auditor", "template-admin", "user-admin"];

/// Organization roles an administrator may grant on a membership (the implied
/// `organization-member` is not among them).
pub const ORG_ROLE_NAMES: &[&str] = &[
    "organization-admin",
    "organization-auditor",
    "organization-user-admin",
    "organization-template-admin",
    "organization-workspace-creation-ban",
    "organization-workspace-access",
    "agents-access",
];

/// Roles a user-admin (site) or organization-user-admin may grant.
const MEMBER_LEVEL_ROLES: &[&str] = &[
    "member",
    "organization-member",
    "organization-workspace-access",
    "agents-access",
];

/// Whether `subject` may grant or revoke `role` (in `org` for org roles), per the
/// assignment matrix of spec/auth.md §4.7. Permission to assign at all
/// (`assign_role` / `assign_org_role`) is checked separately, with the scope.
pub fn can_assign(subject: &crate::Subject, role: &str, org: Option<uuid::Uuid>) -> bool {
    if matches!(subject.kind, crate::SubjectKind::System(_)) || subject.has_site_role("owner") {
        return true;
    }
    let holds = |name: &str, in_org: Option<uuid::Uuid>| {
        subject
            .roles
            .iter()
            .any(|r| r.def.name == name && r.org == in_org)
    };
    match org {
        None => holds("user-admin", None) && MEMBER_LEVEL_ROLES.contains(&role),
        Some(org) => {
            (holds("organization-admin", Some(org)) && ORG_ROLE_NAMES.contains(&role))
                || ((holds("user-admin", None) || holds("organization-user-admin", Some(org)))
                    && MEMBER_LEVEL_ROLES.contains(&role))
        }
    }
}
