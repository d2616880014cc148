//! Actions a subject may take on an object (spec/auth.md §4.2).

use std::fmt;

/// One RBAC action. `Wildcard` (`*`) only appears in permissions, never in a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Wildcard,
    Create,
    Read,
    Update,
    Delete,
    Use,
    Ssh,
    ApplicationConnect,
    ViewInsights,
    Start,
    Stop,
    Assign,
    Unassign,
    ReadPersonal,
    UpdatePersonal,
    CreateAgent,
    DeleteAgent,
    UpdateAgent,
    Share,
}

impl Action {
    /// Every concrete action, in the order spec/auth.md §4.2 lists them.
    pub const ALL: [Action; 18] = [
        Action::Create,
        Action::Read,
        Action::Update,
        Action::Delete,
        Action::Use,
        Action::Ssh,
        Action::ApplicationConnect,
        Action::ViewInsights,
        Action::Start,
        Action::Stop,
        Action::Assign,
        Action::Unassign,
        Action::ReadPersonal,
        Action::UpdatePersonal,
        Action::CreateAgent,
        Action::DeleteAgent,
        Action::UpdateAgent,
        Action::Share,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Wildcard => "*",
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Use => "use",
            Action::Ssh => "ssh",
            Action::ApplicationConnect => "application_connect",
            Action::ViewInsights => "view_insights",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Assign => "assign",
            Action::Unassign => "unassign",
            Action::ReadPersonal => "read_personal",
            Action::UpdatePersonal => "update_personal",
            Action::CreateAgent => "create_agent",
            Action::DeleteAgent => "delete_agent",
            Action::UpdateAgent => "update_agent",
            Action::Share => "share",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        if s == "*" {
            return Some(Action::Wildcard);
        }
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Whether a permission with this action covers `requested`.
    #[inline]
    pub fn covers(self, requested: Action) -> bool {
        self == Action::Wildcard || self == requested
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
