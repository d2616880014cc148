//! Permissions: `{negate, resource_type, action}` (spec/auth.md §4.3).

use crate::{action::Action, resource::ResourceType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permission {
    pub negate: bool,
    pub resource: ResourceType,
    pub action: Action,
}

impl Permission {
    pub const fn allow(resource: ResourceType, action: Action) -> Permission {
        Permission {
            negate: false,
            resource,
            action,
        }
    }

    pub const fn deny(resource: ResourceType, action: Action) -> Permission {
        Permission {
            negate: true,
            resource,
            action,
        }
    }

    #[inline]
    pub fn matches(&self, resource: ResourceType, action: Action) -> bool {
        self.resource.covers(resource) && self.action.covers(action)
    }
}

/// The result of one level of the decision (spec/auth.md §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Vote {
    Deny = -1,
    Abstain = 0,
    Allow = 1,
}

impl Vote {
    /// Folds one permission list into the running vote: any negated match wins.
    #[inline]
    pub fn fold(self, perms: &[Permission], resource: ResourceType, action: Action) -> Vote {
        let mut vote = self;
        for p in perms {
            if vote == Vote::Deny {
                break;
            }
            if p.matches(resource, action) {
                vote = if p.negate { Vote::Deny } else { Vote::Allow };
            }
        }
        vote
    }
}
