//! `{user}`: `me`, a UUID, or a username (spec/auth.md §6.2).

use gatehouse_rbac::Subject;
use gatehouse_store::{Store, StoreError, models::User};
use uuid::Uuid;

use crate::{authn::actor::Actor, error::ApiError};

/// Resolves `{user}` as the caller. Unknown and unreadable users are both 404.
pub async fn resolve_user(store: &Store, actor: &Actor, raw: &str) -> Result<User, ApiError> {
    resolve_user_as(store, actor.subject(), actor, raw).await
}

/// Resolves `{user}` acting as `subject` (the member extractor resolves as the system
/// subject, then decides what the caller may see; spec/auth.md §6.4).
pub async fn resolve_user_as(
    store: &Store,
    subject: &Subject,
    actor: &Actor,
    raw: &str,
) -> Result<User, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::bad_request("\"user\" must be provided."));
    }
    // `me` is the authenticated user, already loaded with the key: no query.
    let result = if raw == "me" {
        store
            .check_user_read(subject, actor.user_id())
            .map(|()| User::clone(&actor.0.user))
    } else if let Ok(id) = Uuid::parse_str(raw) {
        store.user_by_id(subject, id).await
    } else {
        store.user_by_username(subject, raw).await
    };
    result.map_err(|err| match err {
        StoreError::NotFound | StoreError::Forbidden => ApiError::not_found(),
        e @ (StoreError::Unavailable(_) | StoreError::InsufficientScope(_)) => ApiError::from(e),
        other => ApiError::internal("Internal error fetching user.").with_cause(other),
    })
}
