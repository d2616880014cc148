//! The Gatehouse data layer: one API over embedded SQLite and PostgreSQL.
//!
//! Every public method takes the acting [`Subject`](gatehouse_rbac::Subject) and
//! authorizes before it reads or writes; background work and authentication act as named
//! system subjects ([`system`]). SQL never leaves this crate.

#![forbid(unsafe_code)]

mod authz;
pub mod crypto;
pub mod db;
pub mod error;
pub mod file_cache;
pub mod models;
pub mod objects;
pub mod queries;

pub use db::Db;
pub use error::{Conflict, Result, StoreError};
pub use gatehouse_rbac::system;
pub use queries::{organizations::DEFAULT_ORGANIZATION_NAME, users::FirstUserError};

/// The prebuilds system user (decisions.md 24): workspaces it owns are prebuilds.
pub const PREBUILDS_USER_ID: uuid::Uuid =
    uuid::Uuid::from_u128(0xc42fdf75_3097_471c_8c33_fb52454d81c0);

/// The store: a database and the authorization that guards it.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// Database calls made through this store (see [`Store::queries`]).
    queries: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Encrypts secrets that must be read back (sub-agent tokens).
    cipher: Option<std::sync::Arc<crypto::TokenCipher>>,
}

impl Store {
    /// Wraps a connected database; call [`Store::migrate`] before use.
    pub fn new(db: Db) -> Store {
        Store {
            db,
            queries: std::sync::Arc::default(),
            cipher: None,
        }
    }

    /// Sets the cipher for secrets stored encrypted.
    pub fn with_cipher(mut self, cipher: crypto::TokenCipher) -> Store {
        self.cipher = Some(std::sync::Arc::new(cipher));
        self
    }

    pub(crate) fn cipher(&self) -> Result<&crypto::TokenCipher> {
        self.cipher
            .as_deref()
            .ok_or_else(|| StoreError::Corrupt("no token encryption key is configured".to_owned()))
    }

    pub async fn migrate(&self) -> Result<()> {
        self.db.migrate().await
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// How many database calls this store (and its clones) has made: each statement or
    /// transaction block counts once. Tests use it to pin round trips on hot paths.
    pub fn queries(&self) -> u64 {
        self.queries.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn note_query(&self) {
        self.queries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
