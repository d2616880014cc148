//! The rbac crate's integration tests: no allocation per check, and the golden
//! role × resource × action matrix.

#![allow(clippy::unwrap_used, reason = "test code")]

mod alloc;
mod matrix;

/// The allocation counter is process-wide, so tests in this binary run one at a time.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
