//! The decision (spec/auth.md §4.5): `(role_allow || acl_allow) && scope_allow`.

use crate::{
    action::Action,
    object::Object,
    permission::{Permission, Vote},
    role::RoleAssignment,
    subject::Subject,
};

/// A denied check. Handlers turn it into 404 (cannot read) or 403 (can read, cannot act).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("forbidden")]
pub struct Denied;

/// Decides whether `subject` may do `action` on `object`. Allocation-free.
pub fn authorize(subject: &Subject, action: Action, object: &Object<'_>) -> Result<(), Denied> {
    if object.any_org && object.org.is_some() {
        return Err(Denied);
    }
    let role_allow = role_allows(&subject.roles, subject, action, object);
    let acl_allow = !role_allow && acl_allows(subject, action, object);
    if !(role_allow || acl_allow) {
        return Err(Denied);
    }
    if scope_allows(subject, action, object) {
        Ok(())
    } else {
        Err(Denied)
    }
}

fn role_allows(
    roles: &[RoleAssignment],
    subject: &Subject,
    action: Action,
    object: &Object<'_>,
) -> bool {
    let resource = object.resource;
    let site = roles
        .iter()
        .fold(Vote::Abstain, |v, r| v.fold(r.def.site, resource, action));
    if site == Vote::Allow {
        return true;
    }
    if site == Vote::Deny {
        return false;
    }
    let owns = object.owner.is_some() && object.owner == Some(subject.id);
    if owns && object.org.is_none() && !object.any_org {
        let user = roles
            .iter()
            .filter(|r| r.org.is_none())
            .fold(Vote::Abstain, |v, r| v.fold(r.def.user, resource, action));
        if user == Vote::Allow {
            return true;
        }
    }
    let org = org_vote(roles, subject, action, object, |r| r.def.org);
    if org == Vote::Allow {
        return true;
    }
    if org == Vote::Deny {
        return false;
    }
    owns && org_vote(roles, subject, action, object, |r| r.def.member) == Vote::Allow
}

/// The org-level vote: the object's org, or the best vote over member orgs for `any_org`.
/// Orgs the subject is not a member of abstain.
fn org_vote(
    roles: &[RoleAssignment],
    subject: &Subject,
    action: Action,
    object: &Object<'_>,
    level: fn(&RoleAssignment) -> &'static [Permission],
) -> Vote {
    let vote_for = |org| {
        roles
            .iter()
            .filter(|r| r.org == Some(org))
            .fold(Vote::Abstain, |v, r| {
                v.fold(level(r), object.resource, action)
            })
    };
    if object.any_org {
        subject
            .member_orgs()
            .map(vote_for)
            .max()
            .unwrap_or(Vote::Abstain)
    } else {
        match object.org {
            Some(org) => vote_for(org),
            None => Vote::Abstain,
        }
    }
}

fn acl_allows(subject: &Subject, action: Action, object: &Object<'_>) -> bool {
    let member = match object.org {
        Some(org) => subject.is_member_of(org),
        None => object.any_org && subject.member_orgs().next().is_some(),
    };
    if !member {
        return false;
    }
    let grants = |actions: &[Action]| actions.iter().any(|a| a.covers(action));
    object
        .acl_users
        .iter()
        .any(|(id, acts)| *id == subject.id && grants(acts))
        || object
            .acl_groups
            .iter()
            .any(|(g, acts)| (subject.groups.contains(g) || object.org == Some(*g)) && grants(acts))
}

fn scope_allows(subject: &Subject, action: Action, object: &Object<'_>) -> bool {
    let scope = &subject.scope;
    // Scopes only carry site permissions, so the site vote decides the scope side.
    Vote::Abstain.fold(&scope.site, object.resource, action) == Vote::Allow
        && scope.allow_list.admits(object.resource, object.id)
}
