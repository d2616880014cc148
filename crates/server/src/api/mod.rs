//! HTTP handlers, one module per area of the API.

pub mod apikeys;
pub mod convert;
pub mod organizations;
pub mod scopes;
pub mod users;
