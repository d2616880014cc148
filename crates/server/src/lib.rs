//! The Gatehouse server: configuration, router, handlers and the `gatehouse` CLI.

#![forbid(unsafe_code)]

pub mod aibridge;
pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod conn_limit;
pub mod duration;
pub mod echo;
pub mod external_auth;
pub mod head_timeout;
pub mod jobs;
pub mod names;
pub mod oauth_client;
pub mod oidc;
pub mod openapi;
pub mod outbound;
pub mod pages;
pub mod password;
pub mod proxy_hosts;
pub mod router;
pub mod serve;
pub mod shutdown;
pub mod tls_server;
pub mod validate;
