//! Building a user's RBAC subject from the rows authentication reads (spec/auth.md §1.6).
//! Shared by API-key and agent authentication: an agent acts as its workspace's owner.

use std::sync::Arc;

use gatehouse_rbac::{AllowList, Scope, ScopeName, Subject, subject::Membership};
use uuid::Uuid;

use crate::models::{AgentAuthRow, AuthRow, MembershipJson};

/// The parts of a row that make a user's subject.
pub struct UserRow<'a> {
    pub id: Uuid,
    pub username: &'a str,
    pub site_roles: &'a [String],
    /// JSON from the store's membership aggregate.
    pub memberships: &'a str,
    /// JSON array of group ids.
    pub group_ids: &'a str,
    pub service_account: bool,
}

/// A user's subject with `scope`, and their organizations in membership order.
pub fn user_subject(row: UserRow<'_>, scope: Arc<Scope>) -> Result<(Subject, Vec<Uuid>), String> {
    let mut memberships: Vec<MembershipJson> =
        serde_json::from_str(row.memberships).map_err(|e| format!("memberships: {e}"))?;
    memberships.sort_by(|a, b| a.joined.cmp(&b.joined).then(a.org.cmp(&b.org)));
    let organization_ids = memberships.iter().map(|m| m.org).collect();
    let memberships: Vec<Membership> = memberships
        .into_iter()
        .map(|m| Membership {
            org: m.org,
            roles: m.roles,
            default_roles: m.defaults,
            service_account: row.service_account,
        })
        .collect();
    let groups: Vec<Uuid> =
        serde_json::from_str(row.group_ids).map_err(|e| format!("groups: {e}"))?;
    let subject = Subject::for_user(
        row.id,
        row.username.to_owned(),
        row.site_roles,
        &memberships,
        groups,
        scope,
    )
    .map_err(|e| e.to_string())?;
    Ok((subject, organization_ids))
}

/// The subject of an API key's user with the key's effective scope (spec/auth.md §2.2,
/// §3.4), and the user's organizations in membership order.
pub fn key_subject(row: &AuthRow) -> Result<(Subject, Vec<Uuid>), String> {
    let names = row
        .key
        .scopes
        .iter()
        .map(|s| ScopeName::parse(s).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let allow_list = AllowList::parse(&row.key.allow_list).map_err(|e| e.to_string())?;
    let scope = Arc::new(Scope::from_key(&names, &allow_list));
    user_subject(
        UserRow {
            id: row.key.user_id,
            username: &row.username,
            site_roles: &row.rbac_roles,
            memberships: &row.memberships,
            group_ids: &row.group_ids,
            service_account: row.is_service_account,
        },
        scope,
    )
}

/// The subject a workspace agent acts as: its workspace owner's, limited by the agent
/// scope (spec/auth.md §5.1).
pub fn agent_subject(row: &AgentAuthRow) -> Result<Subject, String> {
    let scope = Scope::for_agent(
        row.workspace_id,
        row.workspace_template_id,
        row.build_template_version_id,
        row.workspace_owner_id,
        row.task_id,
        row.agent_api_key_scope == "no_user_data",
    );
    let owner = UserRow {
        id: row.workspace_owner_id,
        username: &row.owner_username,
        site_roles: &row.owner_rbac_roles,
        memberships: &row.memberships,
        group_ids: &row.group_ids,
        service_account: row.owner_is_service_account,
    };
    user_subject(owner, Arc::new(scope)).map(|(subject, _)| subject)
}
