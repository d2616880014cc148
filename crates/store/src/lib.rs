//! The Gatehouse data layer: one API over embedded SQLite and PostgreSQL.
//!
//! Every public method takes the acting [`Subject`](gatehouse_rbac::Subject) and
//! authorizes before it reads or writes; background work and authentication act as named
//! system subjects ([`system`]). SQL never leaves this crate.

#![forbid(unsafe_code)]

pub mod auth_cache;
mod authz;
pub mod crypto;
pub mod db;
pub mod error;
pub mod file_cache;
pub mod models;
pub mod objects;
pub mod queries;
pub mod subjects;

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
    /// Validated keys and their subjects (see [`auth_cache`]).
    auth_cache: std::sync::Arc<auth_cache::AuthCache>,
    /// Refresh-token rotations, committed in groups (see [`queries::rotation`]).
    rotations: std::sync::Arc<queries::rotation::RotationQueue>,
}

impl Store {
    /// Wraps a connected database; call [`Store::migrate`] before use.
    pub fn new(db: Db) -> Store {
        // On PostgreSQL the cache stays off until the invalidation listener has
        // subscribed (see [`Store::auth_cache_listener`]).
        let cache_live = matches!(db, Db::Sqlite { .. });
        let query_count = std::sync::Arc::<std::sync::atomic::AtomicU64>::default();
        let rotations = queries::rotation::RotationQueue::new(db.clone(), query_count.clone());
        Store {
            db,
            queries: query_count,
            cipher: None,
            auth_cache: std::sync::Arc::new(auth_cache::AuthCache::new(cache_live)),
            rotations: std::sync::Arc::new(rotations),
        }
    }

    /// Sets the cipher for secrets stored encrypted.
    pub fn with_cipher(mut self, cipher: crypto::TokenCipher) -> Store {
        self.cipher = Some(std::sync::Arc::new(cipher));
        self
    }

    /// The deployment's token key, for sealing values only this deployment may make (the
    /// login form's CSRF token); `None` when none is configured.
    pub fn sealing_cipher(&self) -> Option<&crypto::TokenCipher> {
        self.cipher.as_deref()
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

    /// The authentication cache, for tests and for tools that change the database
    /// behind the store's back.
    pub fn auth_cache(&self) -> &auth_cache::AuthCache {
        &self.auth_cache
    }

    /// On PostgreSQL, the task that keeps this replica's authentication cache in step
    /// with every replica's changes; the cache serves nothing until it runs. `None` on
    /// SQLite, where the store's own writes are the only writes.
    pub fn auth_cache_listener(&self) -> Option<impl std::future::Future<Output = ()> + use<>> {
        match &self.db {
            Db::Postgres(pool) => Some(auth_cache::listener::run(
                pool.clone(),
                self.auth_cache.clone(),
            )),
            Db::Sqlite { .. } => None,
        }
    }

    /// Called after a commit that changed `user`'s keys, status, roles or memberships.
    pub fn auth_changed(&self, user: uuid::Uuid) {
        self.auth_cache.invalidate_user(user);
    }

    /// Called after a commit that changed a build, job, agent, workspace or task of
    /// `owner`'s: whether their workspaces' agent tokens authenticate is decided anew.
    pub(crate) fn agents_changed(&self, owner: uuid::Uuid) {
        self.auth_cache.invalidate_agents_of(owner);
    }

    /// Called after a commit that changed authentication data of users not known here.
    pub(crate) fn auth_changed_all(&self) {
        self.auth_cache.invalidate_all();
    }

    #[inline]
    pub(crate) fn note_query(&self) {
        self.queries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
