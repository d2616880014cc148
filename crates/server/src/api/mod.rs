//! HTTP handlers, one module per area of the API.

use gatehouse_httpmw::ApiError;
use uuid::Uuid;

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

/// Coder's shared UUID path-parameter rule (spec/auth.md §6.1).
pub fn parse_uuid_param(name: &str, raw: &str) -> Result<Uuid, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::bad_request("Missing UUID in URL.")
            .with_detail(format!("{name:?} URL param missing")));
    }
    Uuid::parse_str(raw).map_err(|e| {
        ApiError::bad_request(format!("Invalid UUID {raw:?}.")).with_detail(e.to_string())
    })
}
