//! `authorize()` allocates nothing: counted with an instrumented global allocator, in a
//! test binary of its own so no other test allocates meanwhile.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::alloc::System;

use gatehouse_rbac::{
    Action, Object, ResourceType, Scope, authorize,
    fixtures::{ACTOR, OBJECT, ORG, SOMEONE_ELSE, scope, user, workspace_allow_list},
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn authorize_does_not_allocate() {
    let narrow = scope(
        &["workspace:read", "template:read"],
        &workspace_allow_list(10),
    );
    let subjects = [
        user(&["owner"], &[], 0, Scope::all()),
        user(&[], &["organization-admin"], 0, Scope::all()),
        user(&[], &[], 5, narrow.clone()),
        user(&["template-admin"], &["organization-auditor"], 20, narrow),
    ];
    let workspace = Object::of(ResourceType::Workspace)
        .with_id(OBJECT)
        .in_org(ORG);
    let objects = [
        workspace.owned_by(ACTOR),
        workspace.owned_by(SOMEONE_ELSE),
        Object::of(ResourceType::Template).in_any_org(),
    ];
    let mut decisions = 0usize;
    let region = Region::new(GLOBAL);
    for subject in &subjects {
        for object in &objects {
            for action in Action::ALL {
                decisions += usize::from(authorize(subject, action, object).is_ok());
            }
        }
    }
    let change = region.change();
    assert!(decisions > 0);
    assert_eq!(change.allocations, 0, "authorize allocated: {change:?}");
    assert_eq!(change.reallocations, 0, "authorize reallocated: {change:?}");
}
