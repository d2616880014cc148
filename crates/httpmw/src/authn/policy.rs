//! The one user-status policy for every scheme whose credential is a user's own (API
//! keys, OAuth2 access tokens, AI Bridge keys; spec/auth.md §1.7): an active user passes,
//! a dormant one is reactivated by the request, anyone else is refused. Agent tokens act
//! for a workspace, not as its owner's sign-in, and are not judged by it (spec/auth.md
//! §5.1 step 8).

use std::sync::Arc;

use gatehouse_store::{StoreError, system::system_restricted};

use crate::{
    authn::{
        actor::Authenticated,
        reason::{Challenge, Reason, go_quote},
        state::AuthState,
    },
    error::ApiError,
};

/// What the policy says of the user behind a key, decided without a round trip.
pub enum Admission {
    Admitted(Arc<Authenticated>),
    /// Dormant: admitted once [`reactivate`] has made the user active.
    Dormant(Arc<Authenticated>),
    Refused(Reason),
}

/// The policy's decision for `auth`.
pub fn admit(auth: Arc<Authenticated>) -> Admission {
    match auth.user.status.as_str() {
        "active" => Admission::Admitted(auth),
        // Dormant users come back to life on their first authenticated request
        // (spec/auth.md §1.7 step 2).
        "dormant" => Admission::Dormant(auth),
        status => Admission::Refused(Reason::refused(
            Challenge::Invalid,
            format!(
                "User is not active (status = {}). Contact an admin to reactivate your account.",
                go_quote(status)
            ),
            "",
        )),
    }
}

/// Makes a dormant user active; the request then acts as the active user.
pub async fn reactivate(
    state: &AuthState,
    auth: Arc<Authenticated>,
) -> Result<Arc<Authenticated>, Reason> {
    match state
        .store
        .update_user_status(system_restricted(), auth.key.user_id, "active")
        .await
    {
        Ok(_) => Ok(auth.edit(|entry| Arc::make_mut(&mut entry.user).status = "active".to_owned())),
        Err(StoreError::Unavailable(e)) => {
            Err(Reason::Broken(ApiError::unavailable().with_cause(e)))
        }
        Err(e) => Err(Reason::Broken(
            ApiError::internal("update user status.").with_cause(e),
        )),
    }
}
