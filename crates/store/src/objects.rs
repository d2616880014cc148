//! Row → RBAC object mappings (spec/auth.md §4.1), including per-object ACLs.

use std::collections::BTreeMap;

use gatehouse_rbac::{Action, Object, ResourceType};
use uuid::Uuid;

use crate::models::{File, Template, TemplateVersion, Workspace};

/// ACL entries parsed from a row's JSON, owned so an [`Object`] can borrow them.
#[derive(Debug, Default)]
pub struct Acl {
    users: Vec<(Uuid, Vec<Action>)>,
    groups: Vec<(Uuid, Vec<Action>)>,
}

impl Acl {
    pub fn from_maps(
        users: &BTreeMap<Uuid, Vec<String>>,
        groups: &BTreeMap<Uuid, Vec<String>>,
    ) -> Acl {
        let parse = |m: &BTreeMap<Uuid, Vec<String>>| {
            m.iter()
                .map(|(id, acts)| (*id, acts.iter().filter_map(|a| Action::parse(a)).collect()))
                .collect()
        };
        Acl {
            users: parse(users),
            groups: parse(groups),
        }
    }

    /// Runs `f` with `base` carrying this ACL.
    pub fn with<R>(&self, base: Object<'_>, f: impl FnOnce(&Object<'_>) -> R) -> R {
        let users: Vec<(Uuid, &[Action])> = self
            .users
            .iter()
            .map(|(id, a)| (*id, a.as_slice()))
            .collect();
        let groups: Vec<(Uuid, &[Action])> = self
            .groups
            .iter()
            .map(|(id, a)| (*id, a.as_slice()))
            .collect();
        let object = Object {
            acl_users: &users,
            acl_groups: &groups,
            ..base
        };
        f(&object)
    }
}

pub fn file_object<'a>(f: &File) -> Object<'a> {
    Object::of(ResourceType::File)
        .with_id(f.id)
        .owned_by(f.created_by)
}

pub fn template_base<'a>(t: &Template) -> Object<'a> {
    Object::of(ResourceType::Template)
        .with_id(t.id)
        .in_org(t.organization_id)
}

pub fn template_acl(t: &Template) -> Acl {
    Acl::from_maps(&t.user_acl, &t.group_acl)
}

/// A version attached to no template is guarded like creating a template in its org.
pub fn orphan_version_object<'a>(v: &TemplateVersion) -> Object<'a> {
    Object::of(ResourceType::Template).in_org(v.organization_id)
}

pub fn workspace_object<'a>(w: &Workspace) -> Object<'a> {
    let kind = if w.dormant_at.is_some() {
        ResourceType::WorkspaceDormant
    } else {
        ResourceType::Workspace
    };
    Object::of(kind)
        .with_id(w.id)
        .in_org(w.organization_id)
        .owned_by(w.owner_id)
}
