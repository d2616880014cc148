//! Subjects and objects shaped like Coder's RBAC benchmark cases, shared by the benchmark,
//! the allocation test and the golden matrix. Ids are fixed so output is stable.

use std::sync::Arc;

use uuid::Uuid;

use crate::{AllowList, Scope, ScopeName, Subject, subject::Membership};

pub const ORG: Uuid = Uuid::from_u128(0x0e0e_0000_0000_4000_8000_0000_0000_0001);
pub const OTHER_ORG: Uuid = Uuid::from_u128(0x0e0e_0000_0000_4000_8000_0000_0000_0002);
pub const ACTOR: Uuid = Uuid::from_u128(0xacac_0000_0000_4000_8000_0000_0000_0001);
pub const SOMEONE_ELSE: Uuid = Uuid::from_u128(0x5e5e_0000_0000_4000_8000_0000_0000_0001);
pub const OBJECT: Uuid = Uuid::from_u128(0x0b0b_0000_0000_4000_8000_0000_0000_0001);

/// A user subject: site roles, org roles in [`ORG`] (plus the org's default roles),
/// some groups, and a scope.
pub fn user(site: &[&str], org_roles: &[&str], groups: usize, scope: Scope) -> Subject {
    let site: Vec<String> = site.iter().map(|s| (*s).to_owned()).collect();
    let memberships = [Membership {
        org: ORG,
        roles: org_roles.iter().map(|s| (*s).to_owned()).collect(),
        default_roles: vec!["organization-workspace-access".to_owned()],
        service_account: false,
    }];
    let groups = (0..groups)
        .map(|i| Uuid::from_u128(0x6060_0000_0000_4000_8000_0000_0000_0000 + i as u128))
        .collect();
    Subject::for_user(
        ACTOR,
        "bench".to_owned(),
        &site,
        &memberships,
        groups,
        Arc::new(scope),
    )
    .unwrap_or_else(|e| unreachable!("fixture roles parse: {e}"))
}

/// A scope from catalog names and allow-list entries.
pub fn scope(names: &[&str], allow: &[String]) -> Scope {
    let names: Vec<ScopeName> = names
        .iter()
        .filter_map(|n| ScopeName::parse(n).ok())
        .collect();
    let allow = AllowList::parse(allow).unwrap_or_else(|e| unreachable!("fixture allow list: {e}"));
    Scope::from_key(&names, &allow)
}

/// An allow list of `n` workspace ids, the last of which is [`OBJECT`].
pub fn workspace_allow_list(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let id = if i + 1 == n {
                OBJECT
            } else {
                Uuid::from_u128(0xa110_0000_0000_4000_8000_0000_0000_0000 + i as u128)
            };
            format!("workspace:{id}")
        })
        .collect()
}
