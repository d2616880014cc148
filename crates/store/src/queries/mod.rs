//! SQL, one module per area. Every public method authorizes its subject first.

pub mod agents;
pub mod apikeys;
pub mod audit;
pub mod builds;
mod columns;
pub mod jobs;
pub mod links;
pub mod members;
pub mod oauth2;
pub mod organizations;
pub mod proxies;
pub mod purge;
pub(crate) mod rotation;
pub mod site_config;
mod subject_sql;
pub mod tasks;
pub mod templates;
pub mod users;
pub mod workspaces;
