//! The authz check recorder (spec/auth.md §4.12, decisions.md 23): in dev mode a request
//! may ask for every check made on its behalf, returned in `x-authz-checks`. Bounded: once
//! the text would pass the cap, recording stops and a `<truncated>` marker is kept.

use std::sync::Mutex;

use crate::{action::Action, object::Object};

/// Most bytes the header value may hold, marker included.
pub const MAX_RECORDED_BYTES: usize = 2000;
const TRUNCATED: &str = "<truncated>";
const SEPARATOR: &str = "; ";

#[derive(Debug, Default)]
pub struct AuthzRecorder {
    state: Mutex<Recorded>,
}

#[derive(Debug, Default)]
struct Recorded {
    text: String,
    truncated: bool,
}

impl AuthzRecorder {
    pub fn new() -> AuthzRecorder {
        AuthzRecorder::default()
    }

    /// Records one decision as
    /// `[organization:<org>::][organization:any::][owner:<owner>::][id:<id>::]<type>.<action>=<bool>`.
    pub fn record(&self, action: Action, object: &Object<'_>, allowed: bool) {
        let mut entry = String::new();
        if let Some(org) = object.org {
            entry.push_str(&format!("organization:{org}::"));
        }
        if object.any_org {
            entry.push_str("organization:any::");
        }
        if let Some(owner) = object.owner {
            entry.push_str(&format!("owner:{owner}::"));
        }
        if let Some(id) = object.id {
            entry.push_str(&format!("id:{id}::"));
        }
        entry.push_str(&format!("{}.{}={allowed}", object.resource, action));
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.truncated {
            return;
        }
        let separator = if state.text.is_empty() {
            0
        } else {
            SEPARATOR.len()
        };
        // Keep room for the marker so the final value never passes the cap.
        let room = MAX_RECORDED_BYTES - SEPARATOR.len() - TRUNCATED.len();
        if state.text.len() + separator + entry.len() > room {
            state.truncated = true;
            return;
        }
        if separator > 0 {
            state.text.push_str(SEPARATOR);
        }
        state.text.push_str(&entry);
    }

    /// The header value: the entries joined with `; `, `nil` when there were none.
    pub fn header_value(&self) -> String {
        let state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (state.text.is_empty(), state.truncated) {
            (true, false) => "nil".to_owned(),
            (true, true) => TRUNCATED.to_owned(),
            (false, false) => state.text.clone(),
            (false, true) => format!("{}{SEPARATOR}{TRUNCATED}", state.text),
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::ResourceType;

    #[test]
    fn entries_follow_coders_format() {
        let rec = AuthzRecorder::new();
        assert_eq!(rec.header_value(), "nil");
        let org = Uuid::nil();
        rec.record(
            Action::Read,
            &Object::of(ResourceType::Workspace)
                .in_org(org)
                .owned_by(org)
                .with_id(org),
            true,
        );
        rec.record(
            Action::Create,
            &Object::of(ResourceType::Template).in_any_org(),
            false,
        );
        let zero = "00000000-0000-0000-0000-000000000000";
        assert_eq!(
            rec.header_value(),
            format!(
                "organization:{zero}::owner:{zero}::id:{zero}::workspace.read=true; organization:any::template.create=false"
            )
        );
    }

    #[test]
    fn output_is_capped_at_an_entry_boundary() {
        let rec = AuthzRecorder::new();
        for _ in 0..1000 {
            rec.record(Action::Read, &Object::user(Uuid::new_v4()), true);
        }
        let value = rec.header_value();
        assert!(value.len() <= MAX_RECORDED_BYTES, "{}", value.len());
        assert!(value.ends_with("; <truncated>"));
        for entry in value.trim_end_matches("; <truncated>").split("; ") {
            assert!(entry.ends_with("user.read=true"), "{entry}");
        }
    }
}
