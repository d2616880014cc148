//! The decision (spec/auth.md §4.5): `(role_allow || acl_allow) && scope_allow`.

use crate::{
    action::Action,
    object::Object,
    permission::{Permission, Vote},
    role::RoleAssignment,
    subject::Subject,
};

/// A denied check. Handlers turn a role denial into 404 (cannot read) or 403 (can read,
/// cannot act); a scope denial, where the role would allow, into 403 `insufficient_scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// Neither a role nor an ACL allows it.
    #[error("forbidden")]
    Role,
    /// A role allows it, but the credential's scope or allow list does not.
    #[error("forbidden by the credential's scope")]
    Scope,
}

/// Decides whether `subject` may do `action` on `object`. Allocation-free.
pub fn authorize(subject: &Subject, action: Action, object: &Object<'_>) -> Result<(), Denied> {
    if object.any_org && object.org.is_some() {
        return Err(Denied::Role);
    }
    let role_allow = role_allows(&subject.roles, subject, action, object);
    let acl_allow = !role_allow && acl_allows(subject, action, object);
    if !(role_allow || acl_allow) {
        return Err(Denied::Role);
    }
    if scope_allows(subject, action, object) {
        Ok(())
    } else {
        Err(Denied::Scope)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use uuid::Uuid;

    use super::*;
    use crate::{
        AllowList, ResourceType, Scope, ScopeName,
        subject::{Membership, SubjectKind},
    };

    fn user(site: &[&str], orgs: &[(Uuid, &[&str])], scope: Scope) -> Subject {
        let site: Vec<String> = site.iter().map(|s| (*s).to_owned()).collect();
        let memberships: Vec<Membership> = orgs
            .iter()
            .map(|(org, roles)| Membership {
                org: *org,
                roles: roles.iter().map(|s| (*s).to_owned()).collect(),
                default_roles: vec!["organization-workspace-access".to_owned()],
                service_account: false,
            })
            .collect();
        Subject::for_user(
            Uuid::new_v4(),
            "t".into(),
            &site,
            &memberships,
            vec![],
            Arc::new(scope),
        )
        .unwrap()
    }

    fn scoped(names: &[&str], allow: &[&str]) -> Scope {
        let names: Vec<ScopeName> = names.iter().map(|n| ScopeName::parse(n).unwrap()).collect();
        Scope::from_key(&names, &AllowList::parse(allow).unwrap())
    }

    #[test]
    fn worked_example_from_the_module_doc() {
        let org = Uuid::new_v4();
        let w = Uuid::new_v4();
        let v = Uuid::new_v4();
        let mut alice = user(
            &[],
            &[(org, &[])],
            scoped(&["workspace:read"], &[&format!("workspace:{w}")]),
        );
        let ws = |id| Object::of(ResourceType::Workspace).with_id(id).in_org(org);
        alice.id = Uuid::new_v4();
        let owned = |id| ws(id).owned_by(alice.id);
        assert_eq!(authorize(&alice, Action::Read, &owned(w)), Ok(()));
        assert_eq!(
            authorize(&alice, Action::Stop, &owned(w)),
            Err(Denied::Scope),
            "scope must bind"
        );
        assert_eq!(
            authorize(&alice, Action::Read, &owned(v)),
            Err(Denied::Scope),
            "allow list must bind"
        );
        // Without the token's limits her role allows all three.
        alice.scope = Arc::new(Scope::all());
        assert_eq!(authorize(&alice, Action::Stop, &owned(w)), Ok(()));
        assert_eq!(authorize(&alice, Action::Read, &owned(v)), Ok(()));
        // Someone else's workspace in the same org: members have no org-wide workspace read.
        assert_eq!(
            authorize(&alice, Action::Read, &ws(v).owned_by(Uuid::new_v4())),
            Err(Denied::Role)
        );
    }

    #[test]
    fn owner_is_allowed_through_the_site_level_only() {
        let org = Uuid::new_v4();
        let owner = user(&["owner"], &[], Scope::all());
        let other_org_template = Object::of(ResourceType::Template)
            .with_id(Uuid::new_v4())
            .in_org(org);
        assert_eq!(
            authorize(&owner, Action::Update, &other_org_template),
            Ok(())
        );
        // No site-wide user_secret for owners.
        let secret = Object::of(ResourceType::UserSecret)
            .with_id(Uuid::new_v4())
            .owned_by(Uuid::new_v4());
        assert_eq!(authorize(&owner, Action::Read, &secret), Err(Denied::Role));
        // ... but their own, through `member`'s user level.
        let own_secret = Object::of(ResourceType::UserSecret).owned_by(owner.id);
        assert_eq!(authorize(&owner, Action::Read, &own_secret), Ok(()));
    }

    #[test]
    fn negated_org_permission_beats_member_grants_but_not_site_grants() {
        let org = Uuid::new_v4();
        let banned = user(
            &[],
            &[(org, &["organization-workspace-creation-ban"])],
            Scope::all(),
        );
        let create = Object::of(ResourceType::Workspace)
            .in_org(org)
            .owned_by(banned.id);
        assert_eq!(
            authorize(&banned, Action::Create, &create),
            Err(Denied::Role)
        );
        assert_eq!(authorize(&banned, Action::Read, &create), Ok(()));
        let banned_owner = user(
            &["owner"],
            &[(org, &["organization-workspace-creation-ban"])],
            Scope::all(),
        );
        let create = Object::of(ResourceType::Workspace)
            .in_org(org)
            .owned_by(banned_owner.id);
        assert_eq!(authorize(&banned_owner, Action::Create, &create), Ok(()));
    }

    #[test]
    fn acl_grants_need_org_membership() {
        let org = Uuid::new_v4();
        let template = Uuid::new_v4();
        let outsider = user(&["user-admin"], &[], Scope::all());
        let grant: &[Action] = &[Action::Update];
        let acl = [(outsider.id, grant)];
        let obj = Object {
            acl_users: &acl,
            ..Object::of(ResourceType::Template)
                .with_id(template)
                .in_org(org)
        };
        assert_eq!(
            authorize(&outsider, Action::Update, &obj),
            Err(Denied::Role)
        );
        let mut insider = user(&["user-admin"], &[(org, &[])], Scope::all());
        insider.id = outsider.id;
        assert_eq!(authorize(&insider, Action::Update, &obj), Ok(()));
        // The "Everyone" group (id = org id) reaches every member.
        let everyone = [(org, grant)];
        let obj = Object {
            acl_groups: &everyone,
            ..Object::of(ResourceType::Template)
                .with_id(template)
                .in_org(org)
        };
        let member = user(&[], &[(org, &[])], Scope::all());
        assert_eq!(authorize(&member, Action::Update, &obj), Ok(()));
    }

    #[test]
    fn allow_list_entries_bind_type_and_id() {
        let w = Uuid::new_v4();
        let g = Uuid::new_v4();
        let owner = user(
            &["owner"],
            &[],
            scoped(
                &["coder:all"],
                &[
                    &format!("workspace:{w}"),
                    "template:*",
                    &format!("group:{g}"),
                    "user:*",
                ],
            ),
        );
        assert_eq!(
            authorize(
                &owner,
                Action::Read,
                &Object::of(ResourceType::Workspace).with_id(w)
            ),
            Ok(())
        );
        assert_eq!(
            authorize(
                &owner,
                Action::Read,
                &Object::of(ResourceType::Template).with_id(Uuid::new_v4())
            ),
            Ok(())
        );
        assert_eq!(
            authorize(
                &owner,
                Action::Read,
                &Object::of(ResourceType::Group).with_id(g)
            ),
            Ok(())
        );
        assert_eq!(
            authorize(
                &owner,
                Action::Read,
                &Object::of(ResourceType::Group).with_id(w)
            ),
            Err(Denied::Scope)
        );
        assert_eq!(
            authorize(&owner, Action::Create, &Object::of(ResourceType::Group)),
            Err(Denied::Scope)
        );
        let any_type = user(
            &["owner"],
            &[],
            scoped(&["coder:all"], &[&format!("*:{w}")]),
        );
        assert_eq!(
            authorize(
                &any_type,
                Action::Read,
                &Object::of(ResourceType::Group).with_id(w)
            ),
            Ok(())
        );
        assert_eq!(
            authorize(
                &any_type,
                Action::Read,
                &Object::of(ResourceType::Group).with_id(g)
            ),
            Err(Denied::Scope)
        );
    }

    #[test]
    fn empty_scope_denies_everything() {
        let owner = user(&["owner"], &[], Scope::from_key(&[], &AllowList::all()));
        assert_eq!(
            authorize(&owner, Action::Read, &Object::user(owner.id)),
            Err(Denied::Scope)
        );
    }

    #[test]
    fn any_org_takes_the_best_member_org_and_rejects_a_named_org() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let s = user(&[], &[(a, &[]), (b, &["organization-admin"])], Scope::all());
        let any = Object::of(ResourceType::Template).in_any_org();
        assert_eq!(authorize(&s, Action::Create, &any), Ok(()));
        assert_eq!(
            authorize(&s, Action::Create, &any.in_org(a)),
            Err(Denied::Role)
        );
        assert_eq!(s.kind, SubjectKind::User);
        assert_eq!(s.member_orgs().count(), 2);
    }

    #[test]
    fn unknown_roles_are_dropped_and_malformed_ones_are_errors() {
        let ok = Subject::for_user(
            Uuid::new_v4(),
            "t".into(),
            &["no-such-role".into()],
            &[],
            vec![],
            Arc::new(Scope::all()),
        );
        assert_eq!(ok.unwrap().roles.len(), 1, "only `member` remains");
        for bad in ["a:b:c", ":x", "owner:not-a-uuid"] {
            let err = Subject::for_user(
                Uuid::new_v4(),
                "t".into(),
                &[bad.into()],
                &[],
                vec![],
                Arc::new(Scope::all()),
            );
            assert!(err.is_err(), "{bad}");
        }
    }
}
