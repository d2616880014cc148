//! Property tests for the allow-list and scope grammar.

use gatehouse_rbac::{AllowList, AllowListEntry, ResourceType, ScopeName, allow_list::AllowId};
use proptest::prelude::*;
use uuid::Uuid;

/// A small pool of ids so that generated lists overlap.
fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        (0u128..4).prop_map(
            |n| Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0000 + n).to_string()
        ),
    ]
}

fn resource() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*"),
        Just("workspace"),
        Just("template"),
        Just("user"),
        Just("WORKSPACE")
    ]
    .prop_map(str::to_owned)
}

fn entry() -> impl Strategy<Value = String> {
    (resource(), id(), any::<bool>()).prop_map(|(r, i, pad)| {
        if pad {
            format!("  {r}:{i} ")
        } else {
            format!("{r}:{i}")
        }
    })
}

fn list() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(entry(), 1..12)
}

fn object() -> impl Strategy<Value = (ResourceType, Option<Uuid>)> {
    (
        prop_oneof![
            Just(ResourceType::Workspace),
            Just(ResourceType::Template),
            Just(ResourceType::User),
            Just(ResourceType::Group)
        ],
        prop_oneof![
            Just(None),
            (0u128..5).prop_map(|n| Some(Uuid::from_u128(
                0x1000_0000_0000_4000_8000_0000_0000_0000 + n
            )))
        ],
    )
}

proptest! {
    #[test]
    fn normalising_is_idempotent_sorted_and_unique(raw in list()) {
        let once = AllowList::parse(&raw).unwrap();
        let again = AllowList::parse(&once.to_strings()).unwrap();
        prop_assert_eq!(&once, &again);
        let strings = once.to_strings();
        let mut sorted = strings.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(strings.len(), sorted.len());
        prop_assert!(strings.iter().all(|s| s == &s.to_lowercase()));
    }

    #[test]
    fn normalising_never_changes_what_is_admitted(raw in list(), (kind, id) in object()) {
        let parsed: Vec<AllowListEntry> = raw.iter().map(|s| AllowListEntry::parse(s).unwrap()).collect();
        let naive = parsed.iter().any(|e| e.admits(kind, id));
        prop_assert_eq!(AllowList::parse(&raw).unwrap().admits(kind, id), naive);
    }

    #[test]
    fn intersection_admits_exactly_what_both_admit(a in list(), b in list(), (kind, id) in object()) {
        let (a, b) = (AllowList::parse(&a).unwrap(), AllowList::parse(&b).unwrap());
        let both = a.admits(kind, id) && b.admits(kind, id);
        prop_assert_eq!(a.intersect(&b).admits(kind, id), both);
        prop_assert_eq!(a.intersect(&b).admits(kind, id), b.intersect(&a).admits(kind, id));
    }

    #[test]
    fn wildcard_admits_everything((kind, id) in object()) {
        prop_assert!(AllowList::all().admits(kind, id));
        prop_assert!(!AllowList::empty().admits(kind, id));
    }

    #[test]
    fn typed_wildcards_absorb_their_ids(n in 0u128..4) {
        let id = Uuid::from_u128(n);
        let list = AllowList::parse(&[format!("workspace:{id}"), "workspace:*".to_owned()]).unwrap();
        prop_assert_eq!(list.entries(), &[AllowListEntry { resource: ResourceType::Workspace, id: AllowId::Any }][..]);
    }

    #[test]
    fn scope_names_round_trip_or_are_refused(resource in "[a-z_*]{0,12}", action in "[a-z_*]{0,12}") {
        let raw = format!("{resource}:{action}");
        match ScopeName::parse(&raw) {
            Ok(name) => prop_assert_eq!(name.to_string(), raw),
            Err(e) => prop_assert_eq!(e.to_string(), format!("no scope named {raw:?}")),
        }
    }
}
