//! HTTP handlers, one module per area of the API.

pub mod agents;
pub mod apikeys;
pub mod convert;
pub mod files;
pub mod organizations;
pub mod scopes;
pub mod tasks;
pub mod templates;
pub mod users;
pub mod workspaces;

pub use gatehouse_httpmw::params::uuid::parse_uuid_param;
