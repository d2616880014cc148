//! `{organization}`: `default`, the nil UUID, an id, or a name (spec/auth.md §6.3).

use gatehouse_store::{Store, StoreError, models::Organization};
use uuid::Uuid;

use crate::{authn::actor::Actor, error::ApiError};

pub async fn resolve_organization(
    store: &Store,
    actor: &Actor,
    raw: &str,
) -> Result<Organization, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::bad_request("\"organization\" must be provided."));
    }
    let subject = actor.subject();
    let result = match Uuid::parse_str(raw) {
        Ok(id) if id.is_nil() => store.default_organization(subject).await,
        Ok(id) => store.organization_by_id(subject, id).await,
        Err(_) if raw == "default" => store.default_organization(subject).await,
        Err(_) => store.organization_by_name(subject, raw).await,
    };
    result.map_err(|err| match err {
        StoreError::NotFound | StoreError::Forbidden => ApiError::not_found(),
        e @ (StoreError::Unavailable(_) | StoreError::InsufficientScope(_)) => ApiError::from(e),
        other => ApiError::internal(format!("Internal error fetching organization {raw:?}."))
            .with_cause(other),
    })
}
