//! Scope and allow-list text: RBAC scope names (stored and requested spellings), API-key
//! allow lists, and OAuth2 `scope` parameters (RFC 6749 §3.3) narrowed against a grant.
#![no_main]

use gatehouse_oauth2::scopes;
use gatehouse_rbac::{AllowList, AllowListEntry, ScopeName, scope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, second) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(name) = ScopeName::parse(first) {
        // What parses prints back as something that parses to the same scope.
        assert_eq!(ScopeName::parse(&name.to_string()).ok(), Some(name));
    }
    let _ = ScopeName::parse_request(first);
    if let Ok(entry) = AllowListEntry::parse(first) {
        assert_eq!(AllowListEntry::parse(&entry.to_string()).ok(), Some(entry));
    }
    let entries: Vec<&str> = first.split(',').collect();
    if let Ok(list) = AllowList::parse(&entries) {
        let again = list.to_strings();
        assert_eq!(
            AllowList::parse(&again).map(|l| l.to_strings()).ok(),
            Some(again)
        );
    }
    if let Ok(requested) = scopes::parse_requested(first) {
        let joined = scopes::join(&requested);
        assert_eq!(scopes::parse_stored(&joined), requested);
        // Narrowing never widens: every scope a refresh keeps is covered by the grant
        // (RFC 6749 §6), and nothing is granted from an empty grant.
        let granted = scopes::parse_stored(second);
        if let Ok(narrowed) = scopes::narrow(first, &granted) {
            assert!(
                narrowed.iter().all(|s| scope::scopes_cover(&granted, *s)),
                "{narrowed:?} not covered by {granted:?}"
            );
            assert!(
                !granted.is_empty() || narrowed.is_empty(),
                "{narrowed:?} from nothing"
            );
        }
    }
    let _ = scopes::negotiate(Some(first), second);
});
