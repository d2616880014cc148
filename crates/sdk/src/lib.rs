//! Gatehouse wire types, shared by the server, the CLI and tests, and a typed client.
//! Field names and order copy Coder's `codersdk` (spec/types.md).

#![forbid(unsafe_code)]

pub mod apikeys;
pub mod audit;
pub mod client;
pub mod error;
pub mod gofmt;
pub mod oauth2;
pub mod organizations;
pub mod users;
pub mod workspaces;

pub use error::{Response, ValidationError};
