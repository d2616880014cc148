//! HTTP handlers, one module per area of the API.

pub mod agent_logs;
pub mod agents;
pub mod aibridge;
pub mod apikeys;
pub mod audit;
pub mod convert;
pub mod debug;
pub mod experiments;
pub mod external_auth;
pub mod files;
pub mod liveness;
pub mod mcp;
pub mod organizations;
pub mod scopes;
pub mod tasks;
pub mod templates;
pub mod users;
pub mod workspace_filter;
pub mod workspace_proxies;
pub mod workspaces;

pub use gatehouse_httpmw::params::uuid::parse_uuid_param;
