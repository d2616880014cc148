//! The in-process cache of validated API keys, workspace-agent tokens and their subjects
//! (the hot path's answer to "one round trip is still one too many").
//!
//! Correctness never rests on a time-to-live:
//! - every store method that changes what an entry was built from (the key, its user's
//!   status, roles, memberships or groups, the OAuth2 grant behind a token) drops the
//!   user's entries *after* its transaction commits, so this replica refuses a revoked
//!   key on the very next request; an agent entry belongs to its workspace's owner, and
//!   is dropped with the owner's entries and by every change to the owner's workspaces'
//!   builds, jobs, agents and tasks (which decide whether the token still authenticates);
//! - on PostgreSQL, triggers `NOTIFY` every replica of the same changes ([`listener`]),
//!   and a replica whose listener is not known to be live serves nothing from the cache;
//! - a fill that raced an invalidation is discarded: fills carry the epoch they started
//!   in, and every invalidation moves the epoch forward under the same lock.
//!
//! A key's own expiry is absolute, so it is checked against the clock on every hit.

pub mod listener;

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock, RwLockReadGuard, RwLockWriteGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use gatehouse_rbac::Subject;
use uuid::Uuid;

use crate::models::{AgentAuthRow, ApiKey, User};

/// The key of a cached agent: SHA-256 of the agent token.
pub type AgentTokenHash = [u8; 32];

/// Bounded so a flood of distinct valid keys cannot grow memory without limit; when full
/// the cache starts over (a refill costs one query per key). An entry takes about 850
/// bytes with its maps (measured by the bench soak), so this holds ~14 MiB: room for
/// every active key of a deployment many times Coder's largest scale test (2,000 users),
/// inside issue #8's 32 MiB growth budget.
const DEFAULT_CAPACITY: usize = 16_384;

/// A validated key with everything a request needs, built once per fill.
#[derive(Debug, Clone)]
pub struct CachedKey {
    pub key: ApiKey,
    /// The key's user, from the same row (no password hash). Shared by the user's cached
    /// keys: a user with many live keys is held once, not once per key.
    pub user: Arc<User>,
    /// The user's organizations, oldest membership first.
    pub organization_ids: Vec<Uuid>,
    /// The user's subject with the key's effective scope.
    pub subject: Subject,
    /// For an OAuth2 access token, its grant's RFC 8707 resource (`""` = the deployment
    /// root); `None` when no token row points at the key.
    pub oauth2_audience: Option<String>,
    /// For an OIDC or GitHub login key, when its user link expires (the zero time:
    /// never); `None` when there is no link. A link refresh drops the user's entries.
    pub link_expiry: Option<chrono::DateTime<chrono::Utc>>,
}

/// An authenticated workspace agent: its row (with its own build) and the subject it acts
/// as (its workspace owner's, limited by the agent scope).
#[derive(Debug)]
pub struct CachedAgent {
    pub row: AgentAuthRow,
    pub subject: Subject,
}

#[derive(Debug, Default)]
struct Entries {
    by_key: HashMap<Box<str>, Arc<CachedKey>>,
    by_user: HashMap<Uuid, Vec<Box<str>>>,
    agents: HashMap<AgentTokenHash, Arc<CachedAgent>>,
    /// Agent tokens by their workspace owner.
    agents_by_owner: HashMap<Uuid, Vec<AgentTokenHash>>,
    /// Site-wide settings read on request paths (the discovery documents ask whether
    /// dynamic registration is on); `None` = never saved. Dropped with everything else,
    /// which is what a change to `site_configs` asks for (its trigger notifies `*`).
    site: HashMap<Box<str>, Option<Box<str>>>,
}

impl Entries {
    fn len(&self) -> usize {
        self.by_key.len() + self.agents.len()
    }

    fn drop_agents_of(&mut self, owner: Uuid) {
        if let Some(hashes) = self.agents_by_owner.remove(&owner) {
            for hash in hashes {
                self.agents.remove(&hash);
            }
        }
    }
}

/// The cache. Cheap to share: the store holds it behind an `Arc`.
#[derive(Debug)]
pub struct AuthCache {
    entries: RwLock<Entries>,
    /// Moves forward on every invalidation, always while the write lock is held.
    epoch: AtomicU64,
    /// Whether hits may be served and fills kept. Off on PostgreSQL until the listener
    /// has subscribed, and again whenever it is not known to be live.
    enabled: AtomicBool,
    capacity: usize,
    invalidations: AtomicU64,
    /// Moves forward whenever the workspace-proxy registry may have changed on another
    /// replica (its notification, or one that may have been missed): the site CSP's
    /// proxy list is reloaded on each change.
    proxies: tokio::sync::watch::Sender<u64>,
}

/// What a fill must hand back to [`AuthCache::insert`]: the epoch it started in.
#[derive(Debug, Clone, Copy)]
pub struct FillTicket(u64);

impl AuthCache {
    pub fn new(enabled: bool) -> AuthCache {
        AuthCache::with_capacity(enabled, DEFAULT_CAPACITY)
    }

    pub fn with_capacity(enabled: bool, capacity: usize) -> AuthCache {
        AuthCache {
            entries: RwLock::default(),
            epoch: AtomicU64::new(0),
            enabled: AtomicBool::new(enabled),
            capacity: capacity.max(1),
            invalidations: AtomicU64::new(0),
            proxies: tokio::sync::watch::Sender::new(0),
        }
    }

    // A panic while holding the lock cannot leave the maps half-updated in a way that
    // matters (every entry is self-contained), so a poisoned lock is used as is.
    fn read(&self) -> RwLockReadGuard<'_, Entries> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Entries> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// The entry for a key id, if cached and the cache is live.
    #[inline]
    pub fn get(&self, key_id: &str) -> Option<Arc<CachedKey>> {
        if !self.is_enabled() {
            return None;
        }
        self.read().by_key.get(key_id).cloned()
    }

    /// The entry for an agent token's hash, if cached and the cache is live.
    #[inline]
    pub fn agent(&self, token_hash: &AgentTokenHash) -> Option<Arc<CachedAgent>> {
        if !self.is_enabled() {
            return None;
        }
        self.read().agents.get(token_hash).cloned()
    }

    /// Keeps an agent fill, on the same terms as [`AuthCache::insert`].
    pub fn insert_agent(
        &self,
        ticket: FillTicket,
        token_hash: AgentTokenHash,
        entry: Arc<CachedAgent>,
    ) {
        let Some(mut entries) = self.write_with_room(ticket) else {
            return;
        };
        let owner = entry.row.workspace_owner_id;
        if entries.agents.insert(token_hash, entry).is_none() {
            entries
                .agents_by_owner
                .entry(owner)
                .or_default()
                .push(token_hash);
        }
    }

    /// `user` as a cached key of the same user already holds it, or newly shared. Entries of
    /// one user are always dropped together, so a held copy equal to a fresh read is the
    /// same row; it is compared, not assumed.
    pub fn share_user(&self, user: User) -> Arc<User> {
        let entries = self.read();
        let held = entries
            .by_user
            .get(&user.id)
            .and_then(|ids| ids.first())
            .and_then(|id| entries.by_key.get(id))
            .filter(|entry| *entry.user == user);
        match held {
            Some(entry) => entry.user.clone(),
            None => Arc::new(user),
        }
    }

    /// A cached site setting: `Some(None)` when known to be unset.
    pub fn site_config(&self, key: &str) -> Option<Option<Box<str>>> {
        if !self.is_enabled() {
            return None;
        }
        self.read().site.get(key).cloned()
    }

    /// Keeps a site setting read since `ticket`, on the same terms as [`AuthCache::insert`].
    pub fn insert_site_config(&self, ticket: FillTicket, key: &str, value: Option<&str>) {
        if let Some(mut entries) = self.write_if_current(ticket) {
            entries.site.insert(key.into(), value.map(Into::into));
        }
    }

    /// The write lock, if a fill that took `ticket` may still be kept: the cache is live
    /// and no invalidation happened since (the rows it read may predate that change).
    fn write_if_current(&self, ticket: FillTicket) -> Option<RwLockWriteGuard<'_, Entries>> {
        if !self.is_enabled() {
            return None;
        }
        let entries = self.write();
        (self.epoch.load(Ordering::Acquire) == ticket.0 && self.is_enabled()).then_some(entries)
    }

    /// As [`AuthCache::write_if_current`], for a fill that adds a key or an agent: a full
    /// cache starts over first.
    fn write_with_room(&self, ticket: FillTicket) -> Option<RwLockWriteGuard<'_, Entries>> {
        let mut entries = self.write_if_current(ticket)?;
        if entries.len() >= self.capacity {
            *entries = Entries::default();
        }
        Some(entries)
    }

    /// Call before reading the rows a fill is built from.
    pub fn ticket(&self) -> FillTicket {
        FillTicket(self.epoch.load(Ordering::Acquire))
    }

    /// Keeps a fill unless an invalidation happened since its ticket was taken (the rows
    /// it read may predate that change) or the cache is not live.
    pub fn insert(&self, ticket: FillTicket, entry: Arc<CachedKey>) {
        let Some(mut entries) = self.write_with_room(ticket) else {
            return;
        };
        let user = entry.key.user_id;
        let id: Box<str> = entry.key.id.as_str().into();
        if entries.by_key.insert(id.clone(), entry).is_none() {
            entries.by_user.entry(user).or_default().push(id);
        }
    }

    /// Drops every entry of `user`, their keys' and their workspaces' agents' (their keys,
    /// roles, memberships or status changed).
    pub fn invalidate_user(&self, user: Uuid) {
        let mut entries = self.write();
        self.bump();
        if let Some(ids) = entries.by_user.remove(&user) {
            for id in ids {
                entries.by_key.remove(&id);
            }
        }
        entries.drop_agents_of(user);
    }

    /// Drops the agents of `owner`'s workspaces (a build, job, agent or task of one of
    /// them changed), keeping the owner's keys.
    pub fn invalidate_agents_of(&self, owner: Uuid) {
        let mut entries = self.write();
        self.bump();
        entries.drop_agents_of(owner);
    }

    /// Drops every agent, keeping keys (a change to builds of owners not known here).
    pub fn invalidate_agents(&self) {
        let mut entries = self.write();
        self.bump();
        entries.agents = HashMap::default();
        entries.agents_by_owner = HashMap::default();
    }

    /// Drops everything (a change whose users are not known, or a missed notification).
    pub fn invalidate_all(&self) {
        let mut entries = self.write();
        self.bump();
        *entries = Entries::default();
        drop(entries);
        self.proxies_changed();
    }

    /// Says the workspace-proxy registry may have changed.
    pub fn proxies_changed(&self) {
        self.proxies.send_modify(|generation| *generation += 1);
    }

    /// Changes whenever [`AuthCache::proxies_changed`] is called.
    pub fn watch_proxies(&self) -> tokio::sync::watch::Receiver<u64> {
        self.proxies.subscribe()
    }

    /// Stops serving and keeping entries, dropping what is held.
    pub fn suspend(&self) {
        let mut entries = self.write();
        self.enabled.store(false, Ordering::Release);
        self.bump();
        *entries = Entries::default();
    }

    /// Starts serving again, from empty.
    pub fn resume(&self) {
        let mut entries = self.write();
        self.bump();
        *entries = Entries::default();
        self.enabled.store(true, Ordering::Release);
        drop(entries);
        // Whatever was notified while the listener was away is lost.
        self.proxies_changed();
    }

    fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.invalidations.fetch_add(1, Ordering::Relaxed);
    }

    /// How many invalidations this cache has seen (tests and metrics).
    pub fn invalidations(&self) -> u64 {
        self.invalidations.load(Ordering::Relaxed)
    }

    /// How many keys and agents are cached.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;
    use gatehouse_rbac::{Scope, Subject};
    use sqlx::types::Json;
    use uuid::Uuid;

    use super::*;

    fn entry(id: &str, user: Uuid) -> Arc<CachedKey> {
        let now = Utc::now();
        Arc::new(CachedKey {
            key: ApiKey {
                id: id.to_owned(),
                hashed_secret: vec![0; 32],
                user_id: user,
                last_used: now,
                expires_at: now,
                created_at: now,
                updated_at: now,
                login_type: "password".to_owned(),
                lifetime_seconds: 60,
                ip_address: String::new(),
                token_name: String::new(),
                scopes: Json(vec![]),
                allow_list: Json(vec![]),
            },
            user: Arc::new(User {
                id: user,
                email: String::new(),
                username: "u".to_owned(),
                name: String::new(),
                avatar_url: String::new(),
                hashed_password: vec![],
                created_at: now,
                updated_at: now,
                status: "active".to_owned(),
                rbac_roles: Json(vec![]),
                login_type: "password".to_owned(),
                deleted: false,
                last_seen_at: now,
                is_system: false,
                is_service_account: false,
            }),
            organization_ids: vec![],
            subject: Subject::for_user(
                user,
                "u".to_owned(),
                &[],
                &[],
                vec![],
                Arc::new(Scope::all()),
            )
            .unwrap(),
            oauth2_audience: None,
            link_expiry: None,
        })
    }

    #[test]
    fn keys_of_one_user_share_the_user_while_it_is_unchanged() {
        let cache = AuthCache::new(true);
        let user = Uuid::new_v4();
        let first = entry("aaaaaaaaaa", user);
        cache.insert(cache.ticket(), first.clone());
        let same = cache.share_user((*first.user).clone());
        assert!(Arc::ptr_eq(&same, &first.user));
        let mut renamed = (*first.user).clone();
        renamed.username = "renamed".to_owned();
        let fresh = cache.share_user(renamed);
        assert!(!Arc::ptr_eq(&fresh, &first.user));
        assert_eq!(fresh.username, "renamed");
        cache.invalidate_user(user);
        assert!(!Arc::ptr_eq(
            &cache.share_user((*first.user).clone()),
            &first.user
        ));
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_discarded() {
        let cache = AuthCache::new(true);
        let user = Uuid::new_v4();
        let ticket = cache.ticket();
        cache.invalidate_user(Uuid::new_v4());
        cache.insert(ticket, entry("aaaaaaaaaa", user));
        assert!(cache.get("aaaaaaaaaa").is_none());
        let ticket = cache.ticket();
        cache.insert(ticket, entry("aaaaaaaaaa", user));
        assert!(cache.get("aaaaaaaaaa").is_some());
    }

    #[test]
    fn invalidating_a_user_drops_only_their_keys() {
        let cache = AuthCache::new(true);
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        for (id, user) in [
            ("a1a1a1a1a1", alice),
            ("a2a2a2a2a2", alice),
            ("b1b1b1b1b1", bob),
        ] {
            cache.insert(cache.ticket(), entry(id, user));
        }
        cache.invalidate_user(alice);
        assert!(cache.get("a1a1a1a1a1").is_none());
        assert!(cache.get("a2a2a2a2a2").is_none());
        assert!(cache.get("b1b1b1b1b1").is_some());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_suspended_cache_serves_and_keeps_nothing() {
        let cache = AuthCache::new(true);
        let user = Uuid::new_v4();
        cache.insert(cache.ticket(), entry("aaaaaaaaaa", user));
        cache.suspend();
        assert!(cache.get("aaaaaaaaaa").is_none());
        cache.insert(cache.ticket(), entry("aaaaaaaaaa", user));
        assert!(cache.is_empty());
        cache.resume();
        assert!(cache.get("aaaaaaaaaa").is_none());
        cache.insert(cache.ticket(), entry("aaaaaaaaaa", user));
        assert!(cache.get("aaaaaaaaaa").is_some());
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let cache = AuthCache::with_capacity(true, 4);
        for i in 0..10 {
            cache.insert(cache.ticket(), entry(&format!("{i:010}"), Uuid::new_v4()));
            assert!(cache.len() <= 4);
        }
        assert!(cache.get("0000000009").is_some());
    }
}
