//! The workspace-proxy hosts the pages' CSP lets through (decisions.md 41), kept in step
//! with the registry on every replica. The registry's routes are in
//! [`crate::api::workspace_proxies`].

use gatehouse_httpmw::security_headers::{ProxyHost, ProxyHosts};
use gatehouse_store::{Store, StoreError, system::system_restricted};

/// Reloads the CSP's proxy list from the database.
pub async fn refresh_proxy_hosts(store: &Store, hosts: &ProxyHosts) -> Result<(), StoreError> {
    let registered = store.workspace_proxies(system_restricted()).await?;
    hosts.replace(
        registered
            .iter()
            .filter_map(|p| ProxyHost::of(&p.path_app_url, &p.wildcard_hostname))
            .collect(),
    );
    Ok(())
}

/// How often the proxy list is reloaded even without a notification: the backstop for
/// one lost with the listener's connection (SQLite has a single replica and needs none).
const PROXY_BACKSTOP: std::time::Duration = std::time::Duration::from_secs(60);

/// Keeps this replica's CSP proxy list in step with every replica's registrations: on
/// PostgreSQL the registry's trigger (migration 0013) reaches the store's listener, which
/// wakes this task at once; this replica's own changes are applied by their handlers.
pub fn spawn_proxy_refresh(store: Store, hosts: ProxyHosts) -> tokio::task::JoinHandle<()> {
    let mut changed = store.auth_cache().watch_proxies();
    tokio::spawn(async move {
        // The list was loaded when the app started: the first reload is one period on.
        let mut backstop =
            tokio::time::interval_at(tokio::time::Instant::now() + PROXY_BACKSTOP, PROXY_BACKSTOP);
        backstop.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                woke = changed.changed() => {
                    if woke.is_err() {
                        // The store is gone: so is the server.
                        return;
                    }
                }
                _ = backstop.tick() => {}
            }
            if let Err(e) = refresh_proxy_hosts(&store, &hosts).await {
                tracing::debug!(error = %e, "workspace proxy refresh failed");
            }
        }
    })
}
