//! Path-parameter resolution: load the named object as the caller, so "does not exist"
//! and "may not see it" are the same 404 (spec/auth.md §6).

pub mod organization;
pub mod user;
pub mod uuid;
pub mod workspace_agent;
