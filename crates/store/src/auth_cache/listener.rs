//! Cross-replica invalidation on PostgreSQL: triggers (migration 0007) `NOTIFY` the
//! [`CHANNEL`] with a user id (or `*`) whenever a key, a user, a membership or a group
//! membership changes, and (migration 0012) with `agents:` and the owner's id whenever a
//! build, job, agent, workspace or task decides anew whether an owner's agent tokens
//! authenticate, and (migration 0013) with `proxies` when the workspace-proxy registry
//! changes; from whichever replica or tool made the change. Every replica listens
//! and drops what the change touched.
//!
//! The cache is live only while the listener is known to be subscribed. A replica pings
//! itself through the database every [`PING_EVERY`]; if its own ping has not come back
//! within [`PING_DEADLINE`] (a silently dead connection, a stuck server) the cache is
//! suspended and emptied until the listener is proven live again. So a missed
//! notification can leave an entry stale for at most [`PING_DEADLINE`], and only when the
//! listener connection itself fails; in normal operation a change reaches every replica
//! as soon as PostgreSQL delivers the notification.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sqlx::{PgPool, postgres::PgListener};
use uuid::Uuid;

use super::AuthCache;

/// The channel the migration's triggers notify.
pub const CHANNEL: &str = "gatehouse_auth";
pub const PING_EVERY: Duration = Duration::from_secs(2);
pub const PING_DEADLINE: Duration = Duration::from_secs(6);
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What a notification asks of the cache.
#[derive(Debug, PartialEq, Eq)]
enum Change<'a> {
    User(Uuid),
    /// The agents of this owner's workspaces (migration 0012).
    AgentsOf(Uuid),
    /// The workspace-proxy registry (migration 0013).
    Proxies,
    All,
    Ping(&'a str),
}

fn parse(payload: &str) -> Change<'_> {
    if let Some(nonce) = payload.strip_prefix("ping:") {
        return Change::Ping(nonce);
    }
    if payload == "proxies" {
        return Change::Proxies;
    }
    if let Some(owner) = payload.strip_prefix("agents:") {
        return Uuid::parse_str(owner).map_or(Change::All, Change::AgentsOf);
    }
    // Anything unexpected drops everything: the safe reading of a payload we do not know.
    Uuid::parse_str(payload).map_or(Change::All, Change::User)
}

/// Keeps `cache` in step with every replica's changes; runs until the task is dropped.
pub async fn run(pool: PgPool, cache: Arc<AuthCache>) {
    let nonce = Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    // Milliseconds since `started` at which this replica's last ping came back.
    let last_pong = Arc::new(AtomicU64::new(0));
    let pinger = tokio::spawn(ping(
        pool.clone(),
        cache.clone(),
        nonce.clone(),
        started,
        last_pong.clone(),
    ));
    let _stop_pinger = AbortOnDrop(pinger);
    loop {
        cache.suspend();
        if let Err(e) = listen(&pool, &cache, &nonce, started, &last_pong).await {
            tracing::warn!(error = %e, "auth cache listener lost its connection; cache suspended");
        }
        cache.suspend();
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

async fn listen(
    pool: &PgPool,
    cache: &AuthCache,
    nonce: &str,
    started: Instant,
    last_pong: &AtomicU64,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    // Subscribed: anything from here on reaches us, and what came before is not cached.
    last_pong.store(elapsed_ms(started), Ordering::Release);
    cache.resume();
    tracing::debug!("auth cache listener subscribed");
    loop {
        match listener.try_recv().await? {
            Some(notification) => match parse(notification.payload()) {
                Change::User(user) => cache.invalidate_user(user),
                Change::AgentsOf(owner) => cache.invalidate_agents_of(owner),
                Change::Proxies => cache.proxies_changed(),
                Change::All => cache.invalidate_all(),
                Change::Ping(from) if from == nonce => {
                    last_pong.store(elapsed_ms(started), Ordering::Release);
                    if !cache.is_enabled() {
                        // The pinger suspended us, and the listener has since proven live.
                        cache.resume();
                    }
                }
                Change::Ping(_) => {}
            },
            // The connection dropped and was re-established (re-subscribed) before
            // `try_recv` returned: whatever was sent in between is lost.
            None => cache.invalidate_all(),
        }
    }
}

async fn ping(
    pool: PgPool,
    cache: Arc<AuthCache>,
    nonce: String,
    started: Instant,
    last_pong: Arc<AtomicU64>,
) {
    let payload = format!("ping:{nonce}");
    let mut ticker = tokio::time::interval(PING_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let silent_for = elapsed_ms(started).saturating_sub(last_pong.load(Ordering::Acquire));
        if cache.is_enabled() && silent_for > PING_DEADLINE.as_millis() as u64 {
            tracing::warn!(
                silent_ms = silent_for,
                "auth cache listener missed its pings; cache suspended"
            );
            cache.suspend();
        }
        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&payload)
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %e, "auth cache ping failed");
        }
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_map_to_changes() {
        let user = Uuid::new_v4();
        assert_eq!(parse(&user.to_string()), Change::User(user));
        assert_eq!(parse("*"), Change::All);
        assert_eq!(parse("garbage"), Change::All);
        assert_eq!(parse(&format!("agents:{user}")), Change::AgentsOf(user));
        assert_eq!(parse("agents:garbage"), Change::All);
        assert_eq!(parse("proxies"), Change::Proxies);
        assert_eq!(parse("ping:abc"), Change::Ping("abc"));
    }
}
