//! Automation runs: the webhook of an approved runbook, called with a timeout and retried with
//! backoff, every attempt's outcome in the audit log.
//!
//! A run is recorded with its approval, before any call; a run a previous process left pending
//! or running is carried on at start-up. A run interrupted mid-call may so reach its target
//! twice: every call carries `Idempotency-Key: rootcause-run-<id>` for the target to see it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::SYSTEM_ACTOR;
use super::advice::Advice;
use super::outgoing::{Delivery, backoff, check_outgoing_url, deliver};
use crate::ingest::now_millis;
use crate::store::{NewAudit, RunStatus, Store, StoreError, StoredRun};

/// Carries out runs: those left unfinished at start-up, then each approved one as it comes.
pub(super) async fn run(
    store: Store,
    client: reqwest::Client,
    allowed_hosts: Vec<String>,
    advice: Arc<Advice>,
    mut queue: mpsc::UnboundedReceiver<i64>,
) {
    let allowed_hosts = Arc::new(allowed_hosts);
    match store.unfinished_runs().await {
        Ok(runs) => {
            if !runs.is_empty() {
                tracing::info!(runs = runs.len(), "carrying on unfinished automation runs");
            }
            for run in runs {
                spawn(&store, &client, &allowed_hosts, &advice, run.id);
            }
        }
        Err(error) => tracing::error!(%error, "cannot load unfinished automation runs"),
    }
    while let Some(id) = queue.recv().await {
        spawn(&store, &client, &allowed_hosts, &advice, id);
    }
}

fn spawn(
    store: &Store,
    client: &reqwest::Client,
    allowed_hosts: &Arc<Vec<String>>,
    advice: &Arc<Advice>,
    id: i64,
) {
    let (store, client, allowed_hosts, advice) = (
        store.clone(),
        client.clone(),
        allowed_hosts.clone(),
        advice.clone(),
    );
    let span = tracing::info_span!("automation_run", run = id);
    tokio::spawn(
        async move {
            if let Err(error) = carry_out(&store, &client, &allowed_hosts, &advice, id).await {
                // The run stays unfinished in the store and is carried on at the next start.
                tracing::error!(%error, "automation run interrupted by a store error");
            }
        }
        .instrument(span),
    );
}

/// Calls the run's webhook until it succeeds, is refused, or runs out of attempts.
async fn carry_out(
    store: &Store,
    client: &reqwest::Client,
    allowed_hosts: &[String],
    advice: &Advice,
    id: i64,
) -> Result<(), StoreError> {
    loop {
        let Some(run) = store.run(id).await? else {
            return Ok(());
        };
        if matches!(run.status, RunStatus::Succeeded | RunStatus::Failed) {
            return Ok(());
        }
        if run.attempts >= run.max_attempts {
            let why = format!("gave up after {} attempts", run.attempts);
            return finish(store, &run, RunStatus::Failed, None, Some(&why)).await;
        }
        // The allow-list may have shrunk since the approval.
        if let Err(why) = check_outgoing_url(&run.url, allowed_hosts) {
            return finish(store, &run, RunStatus::Failed, None, Some(&why)).await;
        }
        let run = store.start_attempt(id, now_millis()).await?;
        // Headers (tokens) live in the catalogue, not in the stored run or the audit log.
        let headers = advice
            .catalogue()
            .get(&run.action)
            .and_then(|r| r.automation.as_ref())
            .map(|a| a.headers.clone())
            .unwrap_or_default();
        let mut headers = headers;
        headers.insert("Idempotency-Key".to_owned(), format!("rootcause-run-{id}"));
        headers.insert("X-Rootcause-Attempt".to_owned(), run.attempts.to_string());
        let outcome = deliver(
            client,
            &run.url,
            run.payload.clone(),
            &headers,
            Duration::from_millis(run.timeout_ms),
        )
        .await;
        match outcome {
            Delivery::Delivered(status) => {
                tracing::info!(status, attempt = run.attempts, "automation run succeeded");
                return finish(store, &run, RunStatus::Succeeded, Some(status), None).await;
            }
            Delivery::Refused(status, why) => {
                tracing::warn!(status, %why, "automation target refused the run");
                return finish(store, &run, RunStatus::Failed, Some(status), Some(&why)).await;
            }
            Delivery::Retry(status, why) if run.attempts < run.max_attempts => {
                tracing::warn!(?status, %why, attempt = run.attempts, "automation attempt failed; retrying");
                let audit = audit(&run, "automation_retry", status, Some(&why));
                store
                    .retry_run(id, now_millis(), status, &why, &audit)
                    .await?;
                tokio::time::sleep(backoff(run.attempts + 1)).await;
            }
            Delivery::Retry(status, why) => {
                tracing::warn!(?status, %why, "automation run failed after its last attempt");
                return finish(store, &run, RunStatus::Failed, status, Some(&why)).await;
            }
        }
    }
}

async fn finish(
    store: &Store,
    run: &StoredRun,
    status: RunStatus,
    response: Option<u16>,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let kind = match status {
        RunStatus::Succeeded => "automation_succeeded",
        _ => "automation_failed",
    };
    let audit = audit(run, kind, response, error);
    store
        .finish_run(run.id, status, now_millis(), response, error, &audit)
        .await
}

fn audit(run: &StoredRun, kind: &str, response: Option<u16>, error: Option<&str>) -> NewAudit {
    NewAudit {
        at: now_millis(),
        actor: SYSTEM_ACTOR.to_owned(),
        kind: kind.to_owned(),
        incident: Some(run.incident),
        action: Some(run.action.clone()),
        service: None,
        detail: serde_json::json!({
            "run": run.id,
            "url": run.url,
            "attempt": run.attempts,
            "max_attempts": run.max_attempts,
            "response_status": response,
            "error": error,
        }),
    }
}
