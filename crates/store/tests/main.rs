//! The store conformance suite: every public store method, run on SQLite and (when
//! `TEST_POSTGRES_URL` is set) on PostgreSQL, in a fresh database or schema per test.

#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test code: a panic is the failure report"
)]

mod conformance;
mod support;
