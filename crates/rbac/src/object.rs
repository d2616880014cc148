//! The object of a check: what is being acted on (spec/auth.md §4.1).

use uuid::Uuid;

use crate::{action::Action, resource::ResourceType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object<'a> {
    pub resource: ResourceType,
    /// `None` for create/list style checks.
    pub id: Option<Uuid>,
    pub owner: Option<Uuid>,
    pub org: Option<Uuid>,
    /// "In any organization I belong to" (never combined with `org`).
    pub any_org: bool,
    pub acl_users: &'a [(Uuid, &'a [Action])],
    pub acl_groups: &'a [(Uuid, &'a [Action])],
}

impl<'a> Object<'a> {
    pub const fn of(resource: ResourceType) -> Object<'a> {
        Object {
            resource,
            id: None,
            owner: None,
            org: None,
            any_org: false,
            acl_users: &[],
            acl_groups: &[],
        }
    }

    pub const fn with_id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    pub const fn owned_by(mut self, owner: Uuid) -> Self {
        self.owner = Some(owner);
        self
    }

    pub const fn in_org(mut self, org: Uuid) -> Self {
        self.org = Some(org);
        self
    }

    pub const fn in_any_org(mut self) -> Self {
        self.any_org = true;
        self
    }

    /// A user object: id = owner = the user id.
    pub const fn user(id: Uuid) -> Object<'a> {
        Object::of(ResourceType::User).with_id(id).owned_by(id)
    }

    /// An API-key object: owner = the key's user. Key ids are not UUIDs, so they never
    /// match an id-specific allow-list entry.
    pub const fn api_key(user_id: Uuid) -> Object<'a> {
        Object::of(ResourceType::ApiKey).owned_by(user_id)
    }
}
