//! Per-account back-off for password guesses (issue #29). The login rate limit counts
//! requests per address; an attacker with many addresses is held only by a limit on the
//! account itself. After [`FREE_FAILURES`] wrong passwords in a row an account's next
//! attempt must wait, doubling from one second to [`MAX_WAIT`]; a success, or an hour
//! without failures, starts it over. The wait is short on purpose: a lockout that anyone
//! can trigger would let anyone lock a victim out.
//!
//! Counts are per replica (in memory, like the rate limits), keyed by a keyed hash of the
//! normalised email, so an unknown email is throttled exactly like a known one and the
//! answer tells nobody whether an account exists.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::{Mutex, PoisonError},
    time::Duration,
};

pub const FREE_FAILURES: u32 = 5;
pub const MAX_WAIT: Duration = Duration::from_secs(300);
const FIRST_WAIT: Duration = Duration::from_secs(1);
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Enough for every account under attack at once; when full, accounts that are not
/// waiting make room first.
const CAPACITY: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// When the last failure happened (since the Unix epoch).
    last: Duration,
}

#[derive(Debug, Default)]
pub struct LoginBackoff {
    hasher: RandomState,
    accounts: Mutex<HashMap<u64, Failures>>,
}

/// How long an account with `count` failures in a row waits after the last one.
fn wait_after(count: u32) -> Duration {
    match count.checked_sub(FREE_FAILURES) {
        None => Duration::ZERO,
        Some(extra) => FIRST_WAIT
            .checked_mul(1u32.checked_shl(extra).unwrap_or(u32::MAX))
            .map_or(MAX_WAIT, |w| w.min(MAX_WAIT)),
    }
}

impl LoginBackoff {
    fn key(&self, account: &str) -> u64 {
        self.hasher.hash_one(account.trim().to_lowercase())
    }

    /// `Err(wait)` while the account must wait before another attempt.
    pub fn check(&self, account: &str, now: Duration) -> Result<(), Duration> {
        let key = self.key(account);
        let accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(f) = accounts.get(&key) else {
            return Ok(());
        };
        let until = f.last + wait_after(f.count);
        match until.checked_sub(now) {
            Some(left) if !left.is_zero() && now.saturating_sub(f.last) < FORGET_AFTER => Err(left),
            _ => Ok(()),
        }
    }

    /// A wrong password (or an unknown account).
    pub fn failed(&self, account: &str, now: Duration) {
        let key = self.key(account);
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        if accounts.len() >= CAPACITY && !accounts.contains_key(&key) {
            accounts.retain(|_, f| {
                now.saturating_sub(f.last) < FORGET_AFTER && f.count >= FREE_FAILURES
            });
            if accounts.len() >= CAPACITY {
                return;
            }
        }
        let entry = accounts.entry(key).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.saturating_sub(entry.last) >= FORGET_AFTER {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
    }

    pub fn succeeded(&self, account: &str) {
        let key = self.key(account);
        self.accounts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(1_000_000);

    #[test]
    fn waits_double_after_the_free_failures() {
        assert_eq!(wait_after(4), Duration::ZERO);
        assert_eq!(wait_after(5), Duration::from_secs(1));
        assert_eq!(wait_after(7), Duration::from_secs(4));
        assert_eq!(wait_after(40), MAX_WAIT);
        assert_eq!(wait_after(u32::MAX), MAX_WAIT);
    }

    #[test]
    fn an_account_waits_and_a_success_or_an_hour_forgets() {
        let b = LoginBackoff::default();
        for _ in 0..FREE_FAILURES - 1 {
            b.failed("Alice@example.com", T);
        }
        assert_eq!(b.check("alice@example.com", T), Ok(()));
        b.failed("alice@example.com ", T);
        assert_eq!(b.check("ALICE@example.com", T), Err(Duration::from_secs(1)));
        assert_eq!(
            b.check("alice@example.com", T + Duration::from_secs(1)),
            Ok(())
        );
        assert_eq!(
            b.check("bob@example.com", T),
            Ok(()),
            "other accounts are free"
        );
        b.failed("alice@example.com", T);
        assert_eq!(b.check("alice@example.com", T), Err(Duration::from_secs(2)));
        b.succeeded("alice@example.com");
        assert_eq!(b.check("alice@example.com", T), Ok(()));
        for _ in 0..20 {
            b.failed("carol@example.com", T);
        }
        assert_eq!(b.check("carol@example.com", T), Err(MAX_WAIT));
        assert_eq!(b.check("carol@example.com", T + FORGET_AFTER), Ok(()));
        b.failed("carol@example.com", T + FORGET_AFTER);
        assert_eq!(
            b.check("carol@example.com", T + FORGET_AFTER),
            Ok(()),
            "counted anew"
        );
    }
}
