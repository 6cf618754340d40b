//! Automation runs: the webhook of an approved runbook, called with a timeout and retried with
//! backoff, every attempt's outcome in the audit log.
//!
//! A run is recorded with its approval, before any call. Runs not finished are looked for at
//! start-up and every [`SWEEP_INTERVAL`] (a run whose hand-over was lost, or whose store write
//! failed, is carried on), and each is carried out by one task of this process at a time. A run
//! interrupted mid-call by a crash may so reach its target twice: every call carries
//! `Idempotency-Key: rootcause-run-<id>` for the target to see it. A run older than
//! `actions.run_expiry_secs` is failed as expired, never called late.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::SYSTEM_ACTOR;
use crate::advice::Advice;
use crate::clock::Clock;
use crate::config::outgoing::{check_outgoing_url, origin};
use crate::outgoing::{Delivery, backoff, deliver};
use crate::store::{NewAudit, RunStatus, Store, StoreError, StoredRun};
use crate::workers::Spawner;
use rootcause_correlation::Millis;

/// How often unfinished runs are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// What every run task shares.
#[derive(Clone)]
pub(super) struct Runner {
    store: Store,
    client: reqwest::Client,
    allowed_hosts: Arc<Vec<String>>,
    advice: Arc<Advice>,
    expiry: Duration,
    /// Runs a task of this process is carrying out.
    in_flight: Arc<Mutex<HashSet<i64>>>,
    clock: Clock,
    spawner: Spawner,
}

impl Runner {
    /// A runner calling out through `client` to `allowed_hosts` only, giving up on runs not
    /// carried out `expiry` after their approval.
    pub(super) fn new(
        store: Store,
        client: reqwest::Client,
        allowed_hosts: Vec<String>,
        advice: Arc<Advice>,
        expiry: Duration,
        clock: Clock,
        spawner: Spawner,
    ) -> Runner {
        Runner {
            store,
            client,
            allowed_hosts: Arc::new(allowed_hosts),
            advice,
            expiry,
            in_flight: Arc::default(),
            clock,
            spawner,
        }
    }
}

/// Carries out runs: those left unfinished, then each approved one as it comes.
pub(super) async fn run(runner: Runner, mut queue: mpsc::UnboundedReceiver<i64>) {
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tokio::select! {
            () = runner.spawner.cancelled() => return,
            id = queue.recv() => match id {
                Some(id) => runner.spawn(id),
                None => return,
            },
            _ = sweep.tick() => runner.sweep().await,
        }
    }
}

impl Runner {
    /// Starts a task for every unfinished run no task carries out.
    async fn sweep(&self) {
        match self.store.unfinished_runs().await {
            Ok(runs) => {
                for run in runs {
                    self.spawn(run.id);
                }
            }
            Err(error) => tracing::error!(%error, "cannot look for unfinished automation runs"),
        }
    }

    /// Carries out run `id` in a task of its own, unless one already does.
    fn spawn(&self, id: i64) {
        if !self
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id)
        {
            return;
        }
        let runner = self.clone();
        let span = tracing::info_span!("automation_run", run = id);
        self.spawner.spawn(
            async move {
                tokio::select! {
                    // Cut short at shutdown: the run stays unfinished in the store and the
                    // next process carries it on.
                    () = runner.spawner.cancelled() => {}
                    done = runner.carry_out(id) => if let Err(error) = done {
                        // The run stays unfinished in the store; the next sweep carries it on.
                        tracing::error!(%error, "automation run interrupted by a store error");
                    }
                }
                runner
                    .in_flight
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .remove(&id);
            }
            .instrument(span),
        );
    }

    /// Calls the run's webhook until it succeeds, is refused, or runs out of attempts.
    async fn carry_out(&self, id: i64) -> Result<(), StoreError> {
        let store = &self.store;
        loop {
            let Some(run) = store.run(id).await? else {
                return Ok(());
            };
            if matches!(run.status, RunStatus::Succeeded | RunStatus::Failed) {
                return Ok(());
            }
            let age = self.clock.now_millis().saturating_sub(run.created_at);
            if age > self.expiry.as_millis() as i64 {
                let why = format!(
                    "expired: approved {} min ago and not carried out (actions.run_expiry_secs)",
                    age / 60_000
                );
                return self.finish(&run, RunStatus::Failed, None, Some(&why)).await;
            }
            if run.attempts >= run.max_attempts {
                // Its last attempt was cut short by a restart: the target may have acted.
                let why = format!(
                    "interrupted during its last attempt ({} of {}): outcome unknown, check the \
                     target",
                    run.attempts, run.max_attempts
                );
                return self.finish(&run, RunStatus::Failed, None, Some(&why)).await;
            }
            // The allow-list may have shrunk since the approval.
            if let Err(why) = check_outgoing_url(&run.url, &self.allowed_hosts) {
                return self.finish(&run, RunStatus::Failed, None, Some(&why)).await;
            }
            // Headers (tokens) live in the catalogue, not in the stored run or the audit log;
            // they are sent only to the URL they were written for.
            let catalogue = self.advice.catalogue();
            let automation = catalogue
                .get(&run.action)
                .and_then(|r| r.automation.as_ref());
            let Some(automation) = automation.filter(|a| a.url == run.url) else {
                let why = "the runbook's automation changed or was removed since the approval";
                return self.finish(&run, RunStatus::Failed, None, Some(why)).await;
            };
            let mut headers = automation.headers.clone();
            let run = store.start_attempt(id, self.clock.now_millis()).await?;
            headers.insert("Idempotency-Key".to_owned(), format!("rootcause-run-{id}"));
            headers.insert("X-Rootcause-Attempt".to_owned(), run.attempts.to_string());
            let outcome = deliver(
                &self.client,
                &run.url,
                run.payload.clone(),
                &headers,
                Duration::from_millis(run.timeout_ms),
            )
            .await;
            match outcome {
                Delivery::Delivered(status) => {
                    tracing::info!(status, attempt = run.attempts, "automation run succeeded");
                    return self
                        .finish(&run, RunStatus::Succeeded, Some(status), None)
                        .await;
                }
                Delivery::Refused(status, why) => {
                    tracing::warn!(status, %why, "automation target refused the run");
                    return self
                        .finish(&run, RunStatus::Failed, Some(status), Some(&why))
                        .await;
                }
                Delivery::Retry(status, why) if run.attempts < run.max_attempts => {
                    tracing::warn!(?status, %why, attempt = run.attempts, "automation attempt failed; retrying");
                    let audit = audit(
                        &run,
                        "automation_retry",
                        status,
                        Some(&why),
                        self.clock.now_millis(),
                    );
                    store.retry_run(id, audit.at, status, &why, &audit).await?;
                    tokio::time::sleep(backoff(run.attempts + 1)).await;
                }
                Delivery::Retry(status, why) => {
                    tracing::warn!(?status, %why, "automation run failed after its last attempt");
                    return self
                        .finish(&run, RunStatus::Failed, status, Some(&why))
                        .await;
                }
            }
        }
    }
}

impl Runner {
    /// Records the end of a run with its audit entry.
    async fn finish(
        &self,
        run: &StoredRun,
        status: RunStatus,
        response: Option<u16>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let kind = match status {
            RunStatus::Succeeded => "automation_succeeded",
            _ => "automation_failed",
        };
        let audit = audit(run, kind, response, error, self.clock.now_millis());
        self.store
            .finish_run(run.id, status, audit.at, response, error, &audit)
            .await
    }
}

fn audit(
    run: &StoredRun,
    kind: &str,
    response: Option<u16>,
    error: Option<&str>,
    at: Millis,
) -> NewAudit {
    NewAudit {
        at,
        actor: SYSTEM_ACTOR.to_owned(),
        kind: kind.to_owned(),
        incident: Some(run.incident),
        action: Some(run.action.clone()),
        service: None,
        detail: serde_json::json!({
            "run": run.id,
            // The origin only: a webhook's path or query may hold a token.
            "target": origin(&run.url),
            "attempt": run.attempts,
            "max_attempts": run.max_attempts,
            "response_status": response,
            "error": error,
        }),
    }
}
