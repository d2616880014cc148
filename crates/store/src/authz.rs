//! Authorization inside the store: every public method takes the acting subject and
//! checks before it reads or writes (Coder's `dbauthz`). A subject that may not even read
//! an object gets `NotFound`, one that may read but not act gets `Forbidden`, and one
//! whose role allows but whose credential's scope does not gets `InsufficientScope`
//! (decisions.md 13, also for reads).

use gatehouse_rbac::{Action, Denied, Object, Subject, scope::covering_scope};

use crate::error::{Result, StoreError};

/// Decides, and records the decision when the request asked for a recording.
fn authorize(subject: &Subject, action: Action, object: &Object<'_>) -> Result<(), Denied> {
    let decision = gatehouse_rbac::authorize(subject, action, object);
    if let Some(recorder) = &subject.recorder {
        recorder.record(action, object, decision.is_ok());
    }
    decision
}

fn scope_error(action: Action, object: &Object<'_>) -> StoreError {
    StoreError::InsufficientScope(covering_scope(object.resource, action))
}

/// Allows or fails with `Forbidden` (for objects whose existence is not secret).
pub(crate) fn check(subject: &Subject, action: Action, object: &Object<'_>) -> Result<()> {
    match authorize(subject, action, object) {
        Ok(()) => Ok(()),
        Err(Denied::Role) => Err(StoreError::Forbidden),
        Err(Denied::Scope) => Err(scope_error(action, object)),
    }
}

/// Allows, or fails with `NotFound` when the subject cannot read the object and
/// `Forbidden` when it can read but not do `action`.
pub(crate) fn check_or_hide(subject: &Subject, action: Action, object: &Object<'_>) -> Result<()> {
    match authorize(subject, action, object) {
        Ok(()) => Ok(()),
        Err(Denied::Scope) => Err(scope_error(action, object)),
        Err(Denied::Role) if action == Action::Read => Err(StoreError::NotFound),
        Err(Denied::Role) => match authorize(subject, Action::Read, object) {
            Ok(()) => Err(StoreError::Forbidden),
            Err(_) => Err(StoreError::NotFound),
        },
    }
}

/// Whether the subject may do `action`; for filtering lists.
pub(crate) fn allowed(subject: &Subject, action: Action, object: &Object<'_>) -> bool {
    authorize(subject, action, object).is_ok()
}
