//! The rbac crate's integration tests: the golden role × resource × action matrix and
//! property tests. (The no-allocation test is its own binary, `tests/alloc.rs`.)

#![allow(clippy::unwrap_used, reason = "test code")]

mod matrix;
mod properties;
