//! Gatehouse's HTTP gate: tower layers and axum extractors for request ids, panic
//! recovery, bodies, errors, API-key authentication and path parameters. Nothing here
//! knows about specific handlers.

#![forbid(unsafe_code)]

pub mod access_redirect;
pub mod audit;
pub mod authn;
pub mod backoff;
pub mod body;
pub mod body_deadline;
pub mod client_ip;
pub mod concurrency;
pub mod error;
pub mod experiments;
pub mod gate;
pub mod metrics;
pub mod params;
pub mod rate_limit;
pub mod recover;
pub mod request_id;
pub mod request_log;
pub mod route_info;
pub mod same_origin;
pub mod security_headers;
pub mod token;
pub mod user_link;

pub use authn::{Actor, AuthState};
pub use body::JsonBody;
pub use error::{ApiError, Json, NoStore};
