//! The golden role × resource × action matrix (style.md practice 13a). Regenerate with
//! `INSTA_UPDATE=always cargo test -p gatehouse-rbac`, and read the diff in review: every
//! changed cell is a change in who may do what.

use std::fmt::Write;

use gatehouse_rbac::{
    Action, Object, ResourceType, Scope, authorize,
    fixtures::{ACTOR, OBJECT, ORG, OTHER_ORG, SOMEONE_ELSE, user},
};

/// (label, site roles, org roles in ORG). Every subject is an ordinary member of ORG.
const SUBJECTS: &[(&str, &[&str], &[&str])] = &[
    ("member", &[], &[]),
    ("owner", &["owner"], &[]),
    ("auditor", &["auditor"], &[]),
    ("template-admin", &["template-admin"], &[]),
    ("user-admin", &["user-admin"], &[]),
    ("organization-admin", &[], &["organization-admin"]),
    ("organization-auditor", &[], &["organization-auditor"]),
    ("organization-user-admin", &[], &["organization-user-admin"]),
    (
        "organization-template-admin",
        &[],
        &["organization-template-admin"],
    ),
    (
        "organization-workspace-creation-ban",
        &[],
        &["organization-workspace-creation-ban"],
    ),
    ("agents-access", &[], &["agents-access"]),
];

#[test]
fn role_resource_action_matrix() {
    let shapes: [(&str, Object<'_>); 4] = [
        (
            "org/other",
            Object::of(ResourceType::Wildcard)
                .with_id(OBJECT)
                .in_org(ORG)
                .owned_by(SOMEONE_ELSE),
        ),
        (
            "org/own",
            Object::of(ResourceType::Wildcard)
                .with_id(OBJECT)
                .in_org(ORG)
                .owned_by(ACTOR),
        ),
        (
            "own",
            Object::of(ResourceType::Wildcard)
                .with_id(OBJECT)
                .owned_by(ACTOR),
        ),
        (
            "other-org",
            Object::of(ResourceType::Wildcard)
                .with_id(OBJECT)
                .in_org(OTHER_ORG)
                .owned_by(SOMEONE_ELSE),
        ),
    ];
    let mut out = String::new();
    let legend: Vec<&str> = shapes.iter().map(|(name, _)| *name).collect();
    writeln!(out, "# Cells: {} (✔ allowed, ✘ denied)", legend.join(" | ")).unwrap();
    for (label, site, org_roles) in SUBJECTS {
        let subject = user(site, org_roles, 0, Scope::all());
        writeln!(out, "\n## {label}").unwrap();
        for resource in ResourceType::ALL {
            for action in resource.actions() {
                let cells: String = shapes
                    .iter()
                    .map(|(_, shape)| {
                        let object = Object {
                            resource: *resource,
                            ..*shape
                        };
                        if authorize(&subject, *action, &object).is_ok() {
                            '✔'
                        } else {
                            '✘'
                        }
                    })
                    .collect();
                writeln!(
                    out,
                    "{:<34} {:<20} {cells}",
                    resource.as_str(),
                    action.as_str()
                )
                .unwrap();
            }
        }
    }
    insta::assert_snapshot!("role_matrix", out);
}

#[test]
fn every_action_listed_for_a_type_is_a_real_action() {
    for resource in ResourceType::ALL {
        for action in resource.actions() {
            assert_ne!(*action, Action::Wildcard, "{resource}");
        }
    }
}
