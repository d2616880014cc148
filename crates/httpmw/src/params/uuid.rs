//! Coder's shared UUID path-parameter rule (spec/auth.md §6.1).

use uuid::Uuid;

use crate::error::ApiError;

pub fn parse_uuid_param(name: &str, raw: &str) -> Result<Uuid, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::bad_request("Missing UUID in URL.")
            .with_detail(format!("{name:?} URL param missing")));
    }
    Uuid::parse_str(raw).map_err(|e| {
        ApiError::bad_request(format!("Invalid UUID {raw:?}.")).with_detail(e.to_string())
    })
}
