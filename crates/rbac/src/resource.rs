//! Resource types and the actions valid for each (spec/auth.md §4.2).

use std::fmt;

use crate::action::Action::{self, *};

macro_rules! resources {
    ($($variant:ident = $name:literal => [$($action:ident),* $(,)?]),* $(,)?) => {
        /// An RBAC resource type. `Wildcard` (`*`) only appears in permissions and allow lists.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ResourceType {
            Wildcard,
            $($variant,)*
        }

        impl ResourceType {
            /// Every concrete resource type.
            pub const ALL: &'static [ResourceType] = &[$(ResourceType::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    ResourceType::Wildcard => "*",
                    $(ResourceType::$variant => $name,)*
                }
            }

            /// The actions that make sense for this type; `*` has none of its own.
            pub const fn actions(self) -> &'static [Action] {
                match self {
                    ResourceType::Wildcard => &[],
                    $(ResourceType::$variant => &[$($action),*],)*
                }
            }
        }
    };
}

resources! {
    User = "user" => [Create, Read, Update, Delete, ReadPersonal, UpdatePersonal],
    Workspace = "workspace" => [Create, Read, Update, Delete, Start, Stop, Ssh, ApplicationConnect, CreateAgent, DeleteAgent, UpdateAgent, Share],
    WorkspaceDormant = "workspace_dormant" => [Create, Read, Update, Delete, Start, Stop, Ssh, ApplicationConnect, CreateAgent, DeleteAgent, UpdateAgent, Share],
    PrebuiltWorkspace = "prebuilt_workspace" => [Update, Delete],
    Task = "task" => [Create, Read, Update, Delete],
    Chat = "chat" => [Create, Read, Update, Delete, Share],
    Template = "template" => [Create, Use, Read, Update, Delete, ViewInsights],
    File = "file" => [Create, Read],
    Organization = "organization" => [Create, Read, Update, Delete],
    OrganizationMember = "organization_member" => [Create, Read, Update, Delete],
    Group = "group" => [Create, Read, Update, Delete],
    GroupMember = "group_member" => [Read],
    ApiKey = "api_key" => [Create, Read, Update, Delete],
    AssignRole = "assign_role" => [Assign, Unassign, Read],
    AssignOrgRole = "assign_org_role" => [Assign, Unassign, Create, Read, Update, Delete],
    System = "system" => [Create, Read, Update, Delete],
    ProvisionerDaemon = "provisioner_daemon" => [Create, Read, Update, Delete],
    ProvisionerJobs = "provisioner_jobs" => [Create, Read, Update],
    Oauth2App = "oauth2_app" => [Create, Read, Update, Delete],
    Oauth2AppSecret = "oauth2_app_secret" => [Create, Read, Update, Delete],
    Oauth2AppCodeToken = "oauth2_app_code_token" => [Create, Read, Delete],
    WorkspaceProxy = "workspace_proxy" => [Create, Read, Update, Delete],
    License = "license" => [Create, Read, Delete],
    AuditLog = "audit_log" => [Create, Read],
    ConnectionLog = "connection_log" => [Read, Update],
    DeploymentConfig = "deployment_config" => [Read, Update],
    DeploymentStats = "deployment_stats" => [Read],
    Replicas = "replicas" => [Read],
    DebugInfo = "debug_info" => [Read],
    TailnetCoordinator = "tailnet_coordinator" => [Create, Read, Update, Delete],
    NotificationMessage = "notification_message" => [Create, Read, Update, Delete],
    NotificationTemplate = "notification_template" => [Read, Update],
    NotificationPreference = "notification_preference" => [Read, Update],
    InboxNotification = "inbox_notification" => [Create, Read, Update],
    WebpushSubscription = "webpush_subscription" => [Create, Read, Delete],
    CryptoKey = "crypto_key" => [Create, Read, Update, Delete],
    IdpsyncSettings = "idpsync_settings" => [Read, Update],
    WorkspaceAgentResourceMonitor = "workspace_agent_resource_monitor" => [Create, Read, Update],
    WorkspaceAgentDevcontainers = "workspace_agent_devcontainers" => [Create],
    UserSecret = "user_secret" => [Create, Read, Update, Delete],
    UserSkill = "user_skill" => [Create, Read, Update, Delete],
    UsageEvent = "usage_event" => [Create, Read, Update],
    AibridgeInterception = "aibridge_interception" => [Create, Read, Update, Delete],
    BoundaryLog = "boundary_log" => [Create, Read, Delete],
    BoundaryUsage = "boundary_usage" => [Read, Update, Delete],
    AiSeat = "ai_seat" => [Create, Read, Update, Delete],
    AiGatewayKey = "ai_gateway_key" => [Create, Read, Delete],
    WorkspaceBuildOrchestration = "workspace_build_orchestration" => [Create, Read, Update, Delete],
}

impl ResourceType {
    pub fn parse(s: &str) -> Option<ResourceType> {
        if s == "*" {
            return Some(ResourceType::Wildcard);
        }
        ResourceType::ALL.iter().copied().find(|r| r.as_str() == s)
    }

    /// Whether `action` is valid for this type (`*` is valid for every type).
    pub fn allows_action(self, action: Action) -> bool {
        action == Action::Wildcard || self.actions().contains(&action)
    }

    /// Whether a permission on this type covers an object of type `requested`.
    #[inline]
    pub fn covers(self, requested: ResourceType) -> bool {
        self == ResourceType::Wildcard || self == requested
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in ResourceType::ALL {
            assert_eq!(ResourceType::parse(r.as_str()), Some(*r));
            assert!(!r.actions().is_empty(), "{r} has no actions");
        }
        assert_eq!(ResourceType::parse("*"), Some(ResourceType::Wildcard));
        assert_eq!(ResourceType::parse("bogus"), None);
    }

    #[test]
    fn aibridge_interception_has_delete_for_the_purge_subject() {
        assert!(ResourceType::AibridgeInterception.allows_action(Action::Delete));
    }
}
