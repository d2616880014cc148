//! API-key allow lists: which concrete objects a key may touch (spec/auth.md §3).
//!
//! An entry is `<type>:<id>` where either side may be `*`. A list is kept *normalised*:
//! `*:*` stands alone, `T:*` absorbs every `T:<uuid>`, entries are unique and sorted.

use std::fmt;

use uuid::Uuid;

use crate::resource::ResourceType;

/// The most entries one allow list may hold.
pub const MAX_ALLOW_LIST_ENTRIES: usize = 128;

/// The id side of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AllowId {
    Any,
    Id(Uuid),
}

/// One `<type>:<id>` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllowListEntry {
    pub resource: ResourceType,
    pub id: AllowId,
}

impl AllowListEntry {
    pub const ALL: AllowListEntry = AllowListEntry {
        resource: ResourceType::Wildcard,
        id: AllowId::Any,
    };

    pub fn is_all(&self) -> bool {
        *self == Self::ALL
    }

    /// Parses one entry; the input is trimmed and lowercased first (decisions.md 20).
    pub fn parse(raw: &str) -> Result<AllowListEntry, AllowListError> {
        let entry = raw.trim().to_ascii_lowercase();
        let Some((kind, id)) = entry.split_once(':') else {
            return Err(AllowListError::Shape(entry));
        };
        if kind.is_empty() || id.is_empty() {
            return Err(AllowListError::Shape(entry));
        }
        let resource = ResourceType::parse(kind)
            .ok_or_else(|| AllowListError::UnknownType(kind.to_owned()))?;
        let id = if id == "*" {
            AllowId::Any
        } else {
            AllowId::Id(Uuid::parse_str(id).map_err(|_| AllowListError::BadId {
                resource: kind.to_owned(),
                id: id.to_owned(),
            })?)
        };
        Ok(AllowListEntry { resource, id })
    }

    /// Whether an object of `resource` with `id` (empty for create/list checks) passes
    /// this entry (spec/auth.md §3.5).
    #[inline]
    pub fn admits(&self, resource: ResourceType, id: Option<Uuid>) -> bool {
        if !self.resource.covers(resource) {
            return false;
        }
        match (self.id, id) {
            (AllowId::Any, _) => true,
            (AllowId::Id(want), Some(got)) => want == got,
            (AllowId::Id(_), None) => false,
        }
    }
}

impl fmt::Display for AllowListEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            AllowId::Any => write!(f, "{}:*", self.resource),
            AllowId::Id(id) => write!(f, "{}:{}", self.resource, id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowListError {
    #[error("invalid allow_list entry \"{0}\": want <type>:<id>")]
    Shape(String),
    #[error("unknown resource type \"{0}\"")]
    UnknownType(String),
    #[error("invalid {resource} ID (must be UUID): \"{id}\"")]
    BadId { resource: String, id: String },
    #[error("allow_list has {0} entries; max allowed is {MAX_ALLOW_LIST_ENTRIES}")]
    TooMany(usize),
}

/// A normalised allow list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllowList(Vec<AllowListEntry>);

impl AllowList {
    /// `[*:*]`: everything passes.
    pub fn all() -> AllowList {
        AllowList(vec![AllowListEntry::ALL])
    }

    /// An empty list: nothing passes (the fail-closed result of a disjoint intersection).
    pub fn empty() -> AllowList {
        AllowList(Vec::new())
    }

    /// Parses and normalises raw entries (spec/auth.md §3.2–§3.3).
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<AllowList, AllowListError> {
        if raw.len() > MAX_ALLOW_LIST_ENTRIES {
            return Err(AllowListError::TooMany(raw.len()));
        }
        let entries = raw
            .iter()
            .map(|s| AllowListEntry::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowList::normalise(entries))
    }

    /// Builds a normalised list from entries.
    pub fn normalise(mut entries: Vec<AllowListEntry>) -> AllowList {
        if entries.iter().any(AllowListEntry::is_all) {
            return AllowList::all();
        }
        let typed_wildcards: Vec<ResourceType> = entries
            .iter()
            .filter(|e| e.id == AllowId::Any)
            .map(|e| e.resource)
            .collect();
        entries.retain(|e| e.id == AllowId::Any || !typed_wildcards.contains(&e.resource));
        entries.sort_by(|a, b| {
            a.resource
                .as_str()
                .cmp(b.resource.as_str())
                .then_with(|| id_sort_key(a.id).cmp(&id_sort_key(b.id)))
        });
        entries.dedup();
        AllowList(entries)
    }

    pub fn entries(&self) -> &[AllowListEntry] {
        &self.0
    }

    pub fn is_all(&self) -> bool {
        self.0.iter().any(AllowListEntry::is_all)
    }

    /// Whether an object passes this list (spec/auth.md §3.5).
    #[inline]
    pub fn admits(&self, resource: ResourceType, id: Option<Uuid>) -> bool {
        self.0.iter().any(|e| e.admits(resource, id))
    }

    /// Intersection with another list, taking the more specific side of each overlapping
    /// pair (spec/auth.md §3.4).
    pub fn intersect(&self, other: &AllowList) -> AllowList {
        if self.0.is_empty() || other.0.is_empty() {
            return AllowList::empty();
        }
        match (self.is_all(), other.is_all()) {
            (true, true) => return AllowList::all(),
            (true, false) => return other.clone(),
            (false, true) => return self.clone(),
            (false, false) => {}
        }
        let mut out = Vec::new();
        for a in &self.0 {
            for b in &other.0 {
                let resource = match (a.resource, b.resource) {
                    (ResourceType::Wildcard, r) | (r, ResourceType::Wildcard) => r,
                    (x, y) if x == y => x,
                    _ => continue,
                };
                let id = match (a.id, b.id) {
                    (AllowId::Any, i) | (i, AllowId::Any) => i,
                    (x, y) if x == y => x,
                    _ => continue,
                };
                out.push(AllowListEntry { resource, id });
            }
        }
        AllowList::normalise(out)
    }

    /// The canonical strings, as stored and as sent on the wire.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

fn id_sort_key(id: AllowId) -> String {
    match id {
        AllowId::Any => "*".to_owned(),
        AllowId::Id(u) => u.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1f0c4f54-6b1e-4a0c-9d3e-2f7a8f1b2c3d";
    const B: &str = "2a0c4f54-6b1e-4a0c-9d3e-2f7a8f1b2c3d";

    fn strings(list: &AllowList) -> Vec<String> {
        list.to_strings()
    }

    #[test]
    fn wildcard_collapses_everything() {
        let list = AllowList::parse(&[format!("workspace:{A}"), "*:*".into()]).unwrap();
        assert_eq!(strings(&list), ["*:*"]);
    }

    #[test]
    fn typed_wildcard_absorbs_ids_and_output_is_sorted_and_unique() {
        let list = AllowList::parse(&[
            format!("workspace:{A}"),
            "Workspace:*".into(),
            format!("template:{B}"),
            format!(" template:{B} "),
            format!("template:{A}"),
        ])
        .unwrap();
        assert_eq!(
            strings(&list),
            [
                format!("template:{A}"),
                format!("template:{B}"),
                "workspace:*".into()
            ]
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            AllowList::parse(&["unknown:*"]).unwrap_err().to_string(),
            "unknown resource type \"unknown\""
        );
        assert_eq!(
            AllowList::parse(&["workspace:not-a-uuid"])
                .unwrap_err()
                .to_string(),
            "invalid workspace ID (must be UUID): \"not-a-uuid\""
        );
        assert_eq!(
            AllowList::parse(&["workspace"]).unwrap_err().to_string(),
            "invalid allow_list entry \"workspace\": want <type>:<id>"
        );
        let many: Vec<String> = (0..130).map(|_| "*:*".to_owned()).collect();
        assert_eq!(
            AllowList::parse(&many).unwrap_err().to_string(),
            "allow_list has 130 entries; max allowed is 128"
        );
    }

    #[test]
    fn intersection_table() {
        let p = |v: &[&str]| AllowList::parse(v).unwrap();
        let wa = format!("workspace:{A}");
        let wb = format!("workspace:{B}");
        let ta = format!("template:{A}");
        let (wa, wb, ta) = (wa.as_str(), wb.as_str(), ta.as_str());
        assert_eq!(strings(&p(&["*:*"]).intersect(&p(&[wa]))), [wa]);
        assert_eq!(
            strings(&p(&["workspace:*"]).intersect(&p(&[wa, wb]))),
            [wa, wb]
        );
        assert_eq!(strings(&p(&[wa]).intersect(&p(&[wa, wb]))), [wa]);
        assert!(p(&[wa]).intersect(&p(&[ta])).entries().is_empty());
    }

    #[test]
    fn admission_follows_type_and_id() {
        let a: Uuid = A.parse().unwrap();
        let b: Uuid = B.parse().unwrap();
        let list = AllowList::parse(&[
            format!("workspace:{A}"),
            "template:*".into(),
            format!("*:{B}"),
        ])
        .unwrap();
        assert!(list.admits(ResourceType::Workspace, Some(a)));
        assert!(!list.admits(ResourceType::Workspace, None));
        assert!(list.admits(ResourceType::Template, None));
        assert!(list.admits(ResourceType::Group, Some(b)));
        assert!(!list.admits(ResourceType::Group, Some(a)));
    }
}
