//! `db-purge` (spec/ops.md §11): a tick at start, then one 10 minutes after each tick
//! finishes, on its own named thread and runtime so profiles and logs attribute its work
//! to `db-purge`, not to request handling (design.md "Background work").

use std::time::{Duration, Instant};

use gatehouse_httpmw::metrics::ApiMetrics;
use gatehouse_store::{
    Store,
    models::now,
    queries::purge::{Purged, Retention},
    system::dbpurge,
};
use tracing::Instrument;

pub const INTERVAL: Duration = Duration::from_secs(600);

/// One purge iteration with its log line and metrics. `None` when another replica held
/// the lock.
pub async fn tick(store: &Store, metrics: &ApiMetrics, retention: Retention) -> Option<Purged> {
    let start = Instant::now();
    match store.purge(dbpurge(), now(), retention).await {
        Ok(Some(p)) => {
            metrics.record_purge(
                true,
                start.elapsed().as_secs_f64(),
                &[
                    ("expired_api_keys", p.expired_api_keys),
                    ("workspace_agent_logs", p.workspace_agent_logs),
                    ("oauth2_codes", p.oauth2_codes),
                    ("oauth2_tokens", p.oauth2_tokens),
                    ("unused_oauth2_clients", p.unused_oauth2_clients),
                ],
            );
            tracing::debug!(
                expired_api_keys = p.expired_api_keys,
                workspace_agent_logs = p.workspace_agent_logs,
                oauth2_codes = p.oauth2_codes,
                oauth2_tokens = p.oauth2_tokens,
                unused_oauth2_clients = p.unused_oauth2_clients,
                duration_ms = start.elapsed().as_millis() as u64,
                "purged old database entries"
            );
            Some(p)
        }
        Ok(None) => {
            tracing::debug!("unable to acquire lock for purging old database entries, skipping");
            None
        }
        Err(e) => {
            metrics.record_purge(false, start.elapsed().as_secs_f64(), &[]);
            tracing::error!(error = %e, "failed to purge old database entries");
            None
        }
    }
}

/// Starts the job on a thread named `db-purge` with its own single-threaded runtime.
pub fn spawn(
    store: Store,
    metrics: ApiMetrics,
    retention: Retention,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("db-purge".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "the purge job could not start its runtime");
                    return;
                }
            };
            let span = tracing::info_span!("job", service = "db-purge", request_type = "job");
            runtime.block_on(
                async move {
                    loop {
                        tick(&store, &metrics, retention).await;
                        tokio::time::sleep(INTERVAL).await;
                    }
                }
                .instrument(span),
            );
        })
}
