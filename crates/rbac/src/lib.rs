//! # The Gatehouse policy engine
//!
//! Every request to Gatehouse ends in questions of one shape: *may this **subject** do this
//! **action** on this **object**?*
//!
//! * The **subject** is the actor: a user (through an API key or OAuth2 token), a workspace
//!   agent acting for its owner, or a named system subject for background work. It carries
//!   its **roles**, its **groups** and the **scope** of the credential it presented.
//! * The **object** is what is touched: a resource type (`workspace`, `api_key`, …), and
//!   when known its id, owner and organization, plus per-object ACLs.
//! * The **action** is one verb from a closed list (`read`, `update`, `ssh`, …).
//! * A **role** grants (or, negated, withholds) permissions at four levels: *site* (every
//!   object), *user* (objects the subject owns outside any org), *org* (every object in one
//!   org) and *member* (objects the subject owns inside that org).
//! * A **scope** is a ceiling set by the credential: site-level permissions plus an
//!   **allow list** of `type:id` entries. A request passes only if a role *or* an ACL allows
//!   it *and* the scope allows it.
//!
//! ## Worked example
//!
//! Alice is a `member` of the site and an `organization-member` of org O. She creates a
//! token with scope `workspace:read` and allow list `workspace:W`. With it she asks to
//! `read` workspace W (owner Alice, org O):
//!
//! 1. Site level: `member` grants no site workspace permission → abstain.
//! 2. User level: W belongs to an org, so it does not apply → abstain.
//! 3. Org level: `organization-member` has no org-wide workspace read → abstain.
//! 4. Member level: she owns W and `organization-member` grants `workspace:*` to owners →
//!    **role allows**.
//! 5. Scope: `workspace:read` matches and `workspace:W` admits W → **scope allows**.
//!
//! Allowed. The same token asking to `stop` W is denied by the scope (step 5) even though
//! her role allows it; asking to `read` another workspace V is denied by the allow list.

#![forbid(unsafe_code)]

pub mod action;
pub mod allow_list;
pub mod authorize;
#[doc(hidden)]
pub mod fixtures;
pub mod object;
pub mod permission;
pub mod recorder;
pub mod resource;
pub mod role;
pub mod roles;
pub mod scope;
pub mod subject;
pub mod system;

pub use action::Action;
pub use allow_list::{AllowList, AllowListEntry, AllowListError};
pub use authorize::{Denied, authorize};
pub use object::Object;
pub use permission::Permission;
pub use resource::ResourceType;
pub use role::{RoleAssignment, RoleDef};
pub use scope::{PUBLIC_SCOPES, Scope, ScopeName};
pub use subject::{Subject, SubjectKind};
