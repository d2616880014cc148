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
        recorder: None,
    }
}

static SYSTEM_RESTRICTED_SUBJECT: LazyLock<Subject> =
    LazyLock::new(|| system_subject("system_restricted", &SYSTEM_RESTRICTED));

/// The subject authentication and start-up bookkeeping run as.
pub fn system_restricted() -> &'static Subject {
    &SYSTEM_RESTRICTED_SUBJECT
}

/// The built-in provisioner daemons: read what a job needs, write job results,
/// resources and agents, and finish builds (spec/auth.md §4.10 `provisionerd`).
static PROVISIONERD: LazyLock<RoleDef> = LazyLock::new(|| RoleDef {
    name: "provisionerd",
    display_name: "Provisioner Daemon",
    site: Vec::leak(vec![
        Permission::allow(ResourceType::Wildcard, Read),
        Permission::allow(ResourceType::ProvisionerJobs, Wildcard),
        Permission::allow(ResourceType::Template, Update),
        Permission::allow(ResourceType::Workspace, Update),
        Permission::allow(ResourceType::Workspace, Delete),
        Permission::allow(ResourceType::Workspace, CreateAgent),
        Permission::allow(ResourceType::Workspace, DeleteAgent),
        Permission::allow(ResourceType::Workspace, UpdateAgent),
        Permission::allow(ResourceType::System, Wildcard),
    ]),
    user: &[],
    org: &[],
    member: &[],
    org_scoped: false,
});

static PROVISIONERD_SUBJECT: LazyLock<Subject> =
    LazyLock::new(|| system_subject("provisionerd", &PROVISIONERD));

/// The subject the built-in echo provisioner runs as.
pub fn provisionerd() -> &'static Subject {
    &PROVISIONERD_SUBJECT
}

/// The file cache's fetcher: reads files and nothing else (spec/ops.md §9.3). Each
/// caller is then authorized against the cached file separately.
static FILE_READER: LazyLock<RoleDef> = LazyLock::new(|| RoleDef {
    name: "file-reader",
    display_name: "File Reader",
    site: Vec::leak(vec![Permission::allow(ResourceType::File, Read)]),
    user: &[],
    org: &[],
    member: &[],
    org_scoped: false,
});

static FILE_READER_SUBJECT: LazyLock<Subject> =
    LazyLock::new(|| system_subject("file_reader", &FILE_READER));

/// The subject the file cache fetches as.
pub fn file_reader() -> &'static Subject {
    &FILE_READER_SUBJECT
}

/// The database purge daemon (spec/ops.md §11, decisions.md 22): delete on exactly
/// `system`, `notification_message`, `api_key` and `aibridge_interception`, nothing else.
static DBPURGE: LazyLock<RoleDef> = LazyLock::new(|| RoleDef {
    name: "dbpurge",
    display_name: "DB Purge Daemon",
    site: Vec::leak(vec![
        Permission::allow(ResourceType::System, Delete),
        Permission::allow(ResourceType::NotificationMessage, Delete),
        Permission::allow(ResourceType::ApiKey, Delete),
        Permission::allow(ResourceType::AibridgeInterception, Delete),
    ]),
    user: &[],
    org: &[],
    member: &[],
    org_scoped: false,
});

static DBPURGE_SUBJECT: LazyLock<Subject> = LazyLock::new(|| {
    let mut subject = system_subject("dbpurge", &DBPURGE);
    subject.friendly_name = "DB Purge".to_owned();
    subject
});

/// The subject the purge job runs as.
pub fn dbpurge() -> &'static Subject {
    &DBPURGE_SUBJECT
}

/// The OAuth2 authorization server's protocol endpoints (token, revoke, register,
/// introspect): they act for a client, not a signed-in user. Manages OAuth2 apps, secrets,
/// codes and grants, mints and deletes the API keys that are access tokens, reads users.
static OAUTH2_PROVIDER: LazyLock<RoleDef> = LazyLock::new(|| RoleDef {
    name: "oauth2-provider",
    display_name: "OAuth2 Provider",
    site: Vec::leak(vec![
        Permission::allow(ResourceType::Oauth2App, Wildcard),
        Permission::allow(ResourceType::Oauth2AppSecret, Wildcard),
        Permission::allow(ResourceType::Oauth2AppCodeToken, Wildcard),
        Permission::allow(ResourceType::ApiKey, Wildcard),
        Permission::allow(ResourceType::User, Read),
        Permission::allow(ResourceType::DeploymentConfig, Read),
    ]),
    user: &[],
    org: &[],
    member: &[],
    org_scoped: false,
});

static OAUTH2_PROVIDER_SUBJECT: LazyLock<Subject> =
    LazyLock::new(|| system_subject("oauth2_provider", &OAUTH2_PROVIDER));

/// The subject the OAuth2 protocol endpoints run as.
pub fn oauth2_provider() -> &'static Subject {
    &OAUTH2_PROVIDER_SUBJECT
}

/// The audit writer: creates audit entries and can do nothing else, so recording who did
/// what never borrows the rights of the request being recorded.
static AUDIT_WRITER: LazyLock<RoleDef> = LazyLock::new(|| RoleDef {
    name: "audit-writer",
    display_name: "Audit Writer",
    site: Vec::leak(vec![Permission::allow(ResourceType::AuditLog, Create)]),
    user: &[],
    org: &[],
    member: &[],
    org_scoped: false,
});

static AUDIT_WRITER_SUBJECT: LazyLock<Subject> =
    LazyLock::new(|| system_subject("audit_writer", &AUDIT_WRITER));

/// The subject audit entries are written as.
pub fn audit_writer() -> &'static Subject {
    &AUDIT_WRITER_SUBJECT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Object, authorize};

    #[test]
    fn purge_subject_may_delete_exactly_four_things() {
        let purge = dbpurge();
        assert_eq!(purge.roles.len(), 1);
        assert_eq!(purge.roles[0].def.name, "dbpurge");
        let allowed = [
            ResourceType::System,
            ResourceType::NotificationMessage,
            ResourceType::ApiKey,
            ResourceType::AibridgeInterception,
        ];
        for resource in ResourceType::ALL {
            for action in Action::ALL {
                let object = Object::of(*resource)
                    .with_id(Uuid::new_v4())
                    .owned_by(Uuid::new_v4());
                let expected = action == Delete && allowed.contains(resource);
                assert_eq!(
                    authorize(purge, action, &object).is_ok(),
                    expected,
                    "dbpurge {action} on {resource}"
                );
            }
        }
    }

    #[test]
    fn audit_writer_may_only_create_audit_entries() {
        for resource in ResourceType::ALL {
            for action in Action::ALL {
                let object = Object::of(*resource).with_id(Uuid::new_v4());
                let expected = action == Create && *resource == ResourceType::AuditLog;
                assert_eq!(
                    authorize(audit_writer(), action, &object).is_ok(),
                    expected,
                    "audit_writer {action} on {resource}"
                );
            }
        }
    }

    #[test]
    fn system_restricted_reads_everything_but_cannot_create_templates() {
        let sys = system_restricted();
        let template = Object::of(ResourceType::Template).with_id(Uuid::new_v4());
        assert!(authorize(sys, Action::Read, &template).is_ok());
        assert!(authorize(sys, Action::Create, &template).is_err());
        assert!(authorize(sys, Action::Update, &Object::of(ResourceType::ApiKey)).is_ok());
    }
}
