//! The server's one integration-test binary: modules mirror the routes.

#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test code: a panic is the failure report"
)]

/// What `on_both_backends!` builds for each scenario.
type TestBackend = harness::TestApp;
pub(crate) use gatehouse_test_support::on_both_backends;

mod agent_logs;
mod aibridge;
mod apikeys;
mod audit;
mod auth;
mod auth_cache;
mod cli;
mod debug;
mod dump;
mod errors;
mod external_auth;
mod faults;
mod harness;
mod hostile;
mod idp;
mod logging;
mod metrics;
mod oauth2;
mod oidc;
mod openapi;
mod organizations;
mod proxy;
mod purge;
mod rate_limits;
mod recorder;
mod scopes;
mod security_headers;
mod tasks;
mod tls;
mod users;
mod workspace_proxies;
mod workspaces;
