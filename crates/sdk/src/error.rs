//! The error envelope of `/api/v2` (spec/types.md §1).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `codersdk.Response`: every JSON error and some successes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Response {
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validations: Vec<ValidationError>,
}

impl Response {
    pub fn message(message: impl Into<String>) -> Response {
        Response {
            message: message.into(),
            detail: String::new(),
            validations: Vec::new(),
        }
    }

    pub fn with_detail(message: impl Into<String>, detail: impl Into<String>) -> Response {
        Response {
            message: message.into(),
            detail: detail.into(),
            validations: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValidationError {
    pub field: String,
    pub detail: String,
}

/// Fixed messages clients match on (spec/auth.md conventions).
pub mod messages {
    pub const SIGNED_OUT: &str =
        "You are signed out or your session has expired. Please sign in again to continue.";
    pub const INTERNAL: &str =
        "An internal error occurred. Please try again or contact the system administrator.";
    pub const NOT_FOUND: &str = "Resource not found or you do not have access to this resource";
    pub const FORBIDDEN: &str = "Forbidden.";
    pub const FORBIDDEN_DETAIL: &str = "You don't have permission to view this content. If you believe this is a mistake, please contact your administrator or try signing in with different credentials.";
    pub const ROUTE_NOT_FOUND: &str = "Route not found.";
    pub const DATABASE_UNAVAILABLE: &str =
        "The database is temporarily unavailable. Please try again.";
}
