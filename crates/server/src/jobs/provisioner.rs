//! The built-in echo provisioner: in-process daemons that take pending jobs and carry
//! them out from the uploaded echo plan, so the whole workspace lifecycle runs without
//! Terraform. Acts as the `provisionerd` system subject.

use std::{sync::Arc, time::Duration};

use gatehouse_httpmw::token::agent_token_hash;
use gatehouse_store::{
    Store, StoreError,
    queries::builds::{NewAgent, NewResource},
    system::provisionerd,
};
use tokio::sync::Notify;
use tracing::Instrument;
use uuid::Uuid;

use crate::echo;

/// Daemons wake on this when a job is queued here; they also poll, for jobs queued by
/// other replicas.
#[derive(Debug, Clone, Default)]
pub struct JobSignal(Arc<Notify>);

impl JobSignal {
    pub fn job_queued(&self) {
        self.0.notify_waiters();
    }
}

const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A running job not updated for this long is hung (Coder's hung-job detector); the
/// daemons beat more often than this while they work.
pub const HUNG_AFTER: Duration = Duration::from_secs(5 * 60);
const HEARTBEAT: Duration = Duration::from_secs(30);
const HUNG_MESSAGE: &str = "Build has been detected as hung for 5 minutes and will be terminated.";
/// On SQLite the server is the only process on the database: what was running when it
/// stopped will never finish.
const RESTART_MESSAGE: &str =
    "The server stopped while this job was running; it did not finish. Start a new build.";

#[derive(Debug, Clone)]
pub struct Provisioner {
    store: Store,
    worker_id: Uuid,
}

impl Provisioner {
    pub fn new(store: Store) -> Provisioner {
        Provisioner {
            store,
            worker_id: Uuid::new_v4(),
        }
    }

    /// Takes and runs one pending job. `Ok(false)` when there was none.
    pub async fn run_once(&self) -> Result<bool, StoreError> {
        let subject = provisionerd();
        let Some(job) = self.store.acquire_job(subject, self.worker_id).await? else {
            return Ok(false);
        };
        let file = self.store.file_by_id(subject, job.file_id).await?;
        let plan = echo::parse(&file.data);
        match job.job_type.as_str() {
            "workspace_build" => {
                let build = self.store.build_for_job(subject, job.id).await?;
                let plan = match plan {
                    Ok(plan) => plan,
                    Err(e) => {
                        let message = format!("echo plan is invalid: {} {}", e.field, e.detail);
                        self.store
                            .complete_build_job(subject, job.id, Some(&message), &[])
                            .await?;
                        return Ok(true);
                    }
                };
                let delay = plan.apply_delay_ms.get(&build.transition).unwrap_or(0);
                self.work_for(job.id, Duration::from_millis(delay)).await?;
                if plan.fail.get(&build.transition).unwrap_or(false) {
                    let message = format!(
                        "echo: the plan asks the {} transition to fail",
                        build.transition
                    );
                    self.store
                        .complete_build_job(subject, job.id, Some(&message), &[])
                        .await?;
                } else {
                    // Agents exist only while a workspace runs: start builds create them.
                    let resources: Vec<NewResource> = if build.transition == "start" {
                        plan.resources
                            .iter()
                            .map(|r| NewResource {
                                resource_type: r.resource_type.clone(),
                                name: r.name.clone(),
                                agents: r
                                    .agents
                                    .iter()
                                    .map(|a| NewAgent {
                                        name: a.name.clone(),
                                        auth_token_hash: agent_token_hash(a.auth_token).to_vec(),
                                        operating_system: a.os.clone(),
                                        architecture: a.architecture.clone(),
                                        directory: a.directory.clone(),
                                    })
                                    .collect(),
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    self.store
                        .complete_build_job(subject, job.id, None, &resources)
                        .await?;
                }
            }
            _ => {
                let error = plan
                    .err()
                    .map(|e| format!("echo plan is invalid: {} {}", e.field, e.detail));
                self.store
                    .complete_import_job(subject, job.id, error.as_deref())
                    .await?;
            }
        }
        tracing::info!(job_id = %job.id, job_type = %job.job_type, "provisioner job done");
        Ok(true)
    }

    /// Spends `duration` on a job, beating so the hung-job detector leaves it alone.
    async fn work_for(&self, job_id: Uuid, duration: Duration) -> Result<(), StoreError> {
        let until = tokio::time::Instant::now() + duration;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            tokio::time::sleep(left.min(HEARTBEAT)).await;
            self.store.touch_job(provisionerd(), job_id).await?;
        }
    }

    /// Fails jobs no provisioner is working on any more: on SQLite at start-up, every job
    /// left running (no other process shares the file); on every backend, jobs silent for
    /// [`HUNG_AFTER`]. Their builds end failed, so the workspace can be built again.
    pub async fn fail_abandoned_jobs(&self, at_start_up: bool) -> Result<u64, StoreError> {
        let now = gatehouse_store::models::now();
        let (cutoff, message) = if at_start_up && self.store.db().backend() == "sqlite" {
            (now, RESTART_MESSAGE)
        } else {
            let hung = chrono::TimeDelta::from_std(HUNG_AFTER).unwrap_or(chrono::TimeDelta::MAX);
            (now - hung, HUNG_MESSAGE)
        };
        let ended = self
            .store
            .fail_hung_jobs(provisionerd(), cutoff, message)
            .await?;
        if ended > 0 {
            tracing::warn!(
                jobs = ended,
                reason = message,
                "provisioner jobs ended as abandoned"
            );
        }
        Ok(ended)
    }

    /// Starts `count` daemons on a thread named `provisioner` with its own runtime, so
    /// their work is attributed to `provisioner`, not to request handling (design.md
    /// "Background work"). They stop once the app's [`JobSignal`] is gone.
    pub fn spawn_daemons(self, count: usize, signal: JobSignal) {
        if count == 0 {
            return;
        }
        let weak = std::sync::Arc::downgrade(&signal.0);
        drop(signal);
        let spawned = std::thread::Builder::new()
            .name("provisioner".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "the provisioner could not start its runtime");
                        return;
                    }
                };
                let daemons = (0..count).map(|n| {
                    let daemon = Provisioner::new(self.store.clone());
                    let weak = weak.clone();
                    let span = tracing::info_span!(
                        "provisioner",
                        service = "provisioner",
                        daemon = n,
                        worker_id = %daemon.worker_id
                    );
                    async move {
                        let mut last_sweep = tokio::time::Instant::now();
                        loop {
                            // One daemon looks for hung jobs, twice a minute.
                            if n == 0 && last_sweep.elapsed() >= HEARTBEAT {
                                last_sweep = tokio::time::Instant::now();
                                if let Err(e) = daemon.fail_abandoned_jobs(false).await {
                                    tracing::warn!(error = %e, "hung-job sweep failed");
                                }
                            }
                            match daemon.run_once().await {
                                Ok(true) => continue,
                                Ok(false) => {}
                                Err(e) => tracing::warn!(error = %e, "provisioner job failed"),
                            }
                            let Some(signal) = weak.upgrade() else {
                                return;
                            };
                            let _ = tokio::time::timeout(POLL_INTERVAL, signal.notified()).await;
                        }
                    }
                    .instrument(span)
                });
                let local = tokio::task::LocalSet::new();
                for d in daemons {
                    local.spawn_local(d);
                }
                runtime.block_on(local);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "the provisioner thread did not start");
        }
    }
}
