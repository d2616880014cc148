//! Authorization inside the store: every public method takes the acting subject and
//! checks before it reads or writes (Coder's `dbauthz`). A subject that may not even read
//! an object gets `NotFound`, one that may read but not act gets `Forbidden`.

use gatehouse_rbac::{Action, Object, Subject, authorize};

use crate::error::{Result, StoreError};

/// Allows or fails with `Forbidden` (for objects whose existence is not secret).
pub(crate) fn check(subject: &Subject, action: Action, object: &Object<'_>) -> Result<()> {
    authorize(subject, action, object).map_err(StoreError::from)
}

/// Allows, or fails with `NotFound` when the subject cannot read the object and
/// `Forbidden` when it can read but not do `action`.
pub(crate) fn check_or_hide(subject: &Subject, action: Action, object: &Object<'_>) -> Result<()> {
    if authorize(subject, action, object).is_ok() {
        return Ok(());
    }
    if action != Action::Read && authorize(subject, Action::Read, object).is_ok() {
        Err(StoreError::Forbidden)
    } else {
        Err(StoreError::NotFound)
    }
}

/// Whether the subject may do `action`; for filtering lists.
pub(crate) fn allowed(subject: &Subject, action: Action, object: &Object<'_>) -> bool {
    authorize(subject, action, object).is_ok()
}
