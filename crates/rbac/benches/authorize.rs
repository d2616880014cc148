//! `authorize()` on the shapes of Coder's RBAC benchmark (`coderd/rbac/authz_test.go`
//! `BenchmarkRBACAuthorize`): owner, org admin, member, org member with groups, each with
//! and without a narrowing scope and allow list. Run with `cargo bench -p gatehouse-rbac`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse_rbac::{
    Action, Object, ResourceType, Scope, authorize,
    fixtures::{ACTOR, OBJECT, ORG, SOMEONE_ELSE, scope, user, workspace_allow_list},
};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("authorize");
    let workspace = Object::of(ResourceType::Workspace)
        .with_id(OBJECT)
        .in_org(ORG);
    let own_workspace = workspace.owned_by(ACTOR);
    let others_workspace = workspace.owned_by(SOMEONE_ELSE);
    let narrow = || {
        scope(
            &["workspace:read", "workspace:ssh", "template:read"],
            &workspace_allow_list(10),
        )
    };
    let cases = [
        (
            "owner",
            user(&["owner"], &[], 0, Scope::all()),
            others_workspace,
            Action::Read,
        ),
        (
            "owner_scoped",
            user(&["owner"], &[], 0, narrow()),
            others_workspace,
            Action::Read,
        ),
        (
            "org_admin",
            user(&[], &["organization-admin"], 0, Scope::all()),
            others_workspace,
            Action::Update,
        ),
        (
            "member",
            user(&[], &[], 0, Scope::all()),
            own_workspace,
            Action::Ssh,
        ),
        (
            "member_scoped",
            user(&[], &[], 0, narrow()),
            own_workspace,
            Action::Ssh,
        ),
        (
            "member_denied",
            user(&[], &[], 0, Scope::all()),
            others_workspace,
            Action::Read,
        ),
        (
            "org_member_groups",
            user(
                &["template-admin"],
                &["organization-auditor"],
                20,
                Scope::all(),
            ),
            others_workspace,
            Action::Read,
        ),
        (
            "org_member_groups_scoped",
            user(&["template-admin"], &["organization-auditor"], 20, narrow()),
            others_workspace,
            Action::Read,
        ),
    ];
    for (name, subject, object, action) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(authorize(black_box(subject), *action, black_box(object))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
