//! The store conformance suite: scenarios for the store's core (organizations, users and
//! their status, API keys and the authentication row, scopes binding store access,
//! timestamps, a closed pool), each run on SQLite and on PostgreSQL, in a fresh database or
//! schema per test. It calls 24 of the store's 119 public methods directly; 89 more are
//! reached only through the server's HTTP tests, which run on both backends too, and
//! `scripts/store_coverage.py --list` names the rest (issue #25: the count, not "every
//! method").

#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test code: a panic is the failure report"
)]

/// What `on_both_backends!` builds for each scenario.
type TestBackend = support::TestStore;
pub(crate) use gatehouse_test_support::on_both_backends;

mod conformance;
mod support;
