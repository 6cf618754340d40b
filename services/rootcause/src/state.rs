//! The composition root: [`AppState::start`] wires the parts of the service together, in the
//! one order they depend on each other, and [`AppState::shut_down`] takes them apart again.
//!
//! `serve` and every route test start the service through here, so a test runs the same wiring
//! production runs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::actions::Actions;
use crate::advice::Advice;
use crate::auth::{SessionLimits, Tokens};
use crate::clock::Clock;
use crate::config::Config;
use crate::ingest::Ingest;
use crate::learning::Learning;
use crate::live_risks::LiveRisks;
use crate::live_topology::{LiveTopology, TopologySpec};
use crate::ranking::Ranking;
use crate::sealing::Sealer;
use crate::store::Store;
use crate::telemetry;
use crate::workers::{Spawner, Workers};

/// How often histograms are compacted for `/metrics`.
const TELEMETRY_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// How often the service looks for topology versions that other replicas stored.
const TOPOLOGY_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// How often SQLite's write-ahead log is copied into the database file, off the ingest path.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The service's time.
    pub clock: Clock,
    /// The current topology.
    pub topology: Arc<LiveTopology>,
    /// Renders the service's own Prometheus telemetry at `/metrics`.
    pub telemetry: PrometheusHandle,
    /// Alert intake.
    pub ingest: Ingest,
    /// Incidents ranked as they change.
    pub ranking: Ranking,
    /// Fault history, training jobs and the model registry.
    pub learning: Learning,
    /// Runbooks, similar incidents, approvals, automation and the audit log.
    pub actions: Actions,
    /// The API tokens.
    pub tokens: Tokens,
    /// Risks from fault history, and the business calendar.
    pub risks: Arc<LiveRisks>,
    /// Whether requests need a bearer token ([`Config::auth_required`]).
    pub auth_required: bool,
    /// Requests per second and burst per token (`auth.rate_limit_per_sec`, `_burst`).
    pub rate_limit: (f64, f64),
    /// Bytes of alerts one response carries at most (`http.max_response_bytes`).
    pub max_response_bytes: usize,
}

impl AppState {
    /// Starts the service's parts over an open `store`: the topology (configured, else the
    /// newest stored version, else the bundled default), ranking, the model registry, emergency
    /// actions, and last intake (the correlation engine rebuilt from the store), then the
    /// timers. Every background task belongs to the returned [`Workers`].
    pub async fn start(
        config: &Config,
        store: Store,
        clock: Clock,
    ) -> anyhow::Result<(AppState, Workers)> {
        // First: metrics recorded before the recorder exists are lost, and start-up already
        // records some (the rankings of the incidents restored from the store).
        let telemetry = telemetry::metrics();
        let workers = Workers::new();
        let spawner = workers.spawner();
        let configured = config
            .topology
            .as_deref()
            .map(TopologySpec::parse)
            .transpose()?;
        let topology =
            Arc::new(LiveTopology::start(store.clone(), configured.as_ref(), clock.clone()).await?);
        let advice = Arc::new(Advice::new(&config.actions));
        let ranking = Ranking::start(
            &config.ranking,
            &config.prometheus,
            store.clone(),
            topology.clone(),
            advice.clone(),
            clock.clone(),
            &spawner,
        )?;
        let learning = Learning::start(
            store.clone(),
            ranking.clone(),
            topology.clone(),
            &config.ranking,
            advice.clone(),
            clock.clone(),
            spawner.clone(),
        )
        .await
        .context("cannot start the model registry")?;
        // Before intake starts: the notifier must see the first rankings.
        let sealer = Arc::new(Sealer::new(&config.secret_key_path())?);
        let actions = Actions::start(
            store.clone(),
            advice,
            ranking.clone(),
            &config.actions,
            sealer,
            clock.clone(),
            &spawner,
        )
        .await
        .context("cannot start the emergency actions")?;
        let ingest = Ingest::start(
            store.clone(),
            topology.clone(),
            config.ingest.clone(),
            config.correlation.clone(),
            ranking.clone(),
            clock.clone(),
            &spawner,
        )
        .await
        .context("cannot rebuild the correlation engine from the store")?;
        let sessions = SessionLimits {
            ttl_ms: i64::try_from(config.auth.session_ttl_secs * 1000).unwrap_or(i64::MAX),
            max: config.auth.max_sessions,
            secure: config.auth.secure_cookie,
        };
        let tokens = Tokens::load(store.clone(), clock.clone(), sessions)
            .await
            .context("cannot read the API tokens")?;
        let auth_required = config.auth_required();
        if auth_required && tokens.count() == 0 {
            anyhow::bail!(
                "authentication is on (listen {} is not a loopback address, or auth.mode is \
                 \"always\") and no API token exists: create one first with \
                 `rootcause tokens create NAME --scopes admin` (same --data-dir or \
                 database_url), then start again",
                config.listen
            );
        }
        let risks = Arc::new(LiveRisks::new(config.risk.clone(), config.calendar.clone()));
        let state = AppState {
            store,
            clock,
            topology,
            telemetry,
            ingest,
            ranking,
            learning,
            actions,
            tokens,
            risks,
            auth_required,
            rate_limit: (config.auth.rate_limit_per_sec, config.auth.rate_limit_burst),
            max_response_bytes: config.http.max_response_bytes,
        };
        state.start_timers(
            &spawner,
            Duration::from_secs(config.auth.reload_secs.max(1)),
            Duration::from_secs(config.risk.refresh_secs),
        );
        Ok((state, workers))
    }

    /// Upkeep on timers: API tokens changed by `rootcause tokens`, `/metrics` histograms,
    /// topology versions stored by other replicas, SQLite checkpoints, risks from fault history
    /// (first right away).
    fn start_timers(&self, spawner: &Spawner, token_reload: Duration, risk_refresh: Duration) {
        every(
            spawner,
            token_reload,
            self.tokens.clone(),
            |tokens| async move {
                if let Err(error) = tokens.reload().await {
                    tracing::warn!(%error, "cannot re-read the API tokens");
                }
            },
        );
        every(
            spawner,
            TELEMETRY_UPKEEP_INTERVAL,
            self.telemetry.clone(),
            |telemetry| async move { telemetry.run_upkeep() },
        );
        every(
            spawner,
            TOPOLOGY_REFRESH_INTERVAL,
            self.topology.clone(),
            |topology| async move {
                if let Err(error) = topology.refresh().await {
                    tracing::warn!(%error, "cannot look for newer topology versions");
                }
            },
        );
        // Not the whole state: a timer must not hold an intake handle (see `shut_down`).
        let parts = (
            self.risks.clone(),
            self.store.clone(),
            self.topology.clone(),
            self.clock.clone(),
        );
        every(
            spawner,
            risk_refresh,
            parts,
            |(risks, store, topology, clock)| async move {
                if let Err(error) = risks.refresh(&store, &topology, clock.now_millis()).await {
                    tracing::warn!(%error, "cannot read the fault history for risks");
                }
            },
        );
        every(
            spawner,
            CHECKPOINT_INTERVAL,
            self.store.clone(),
            |store| async move {
                if let Err(error) = store.checkpoint().await {
                    tracing::warn!(%error, "WAL checkpoint failed");
                }
            },
        );
    }

    /// Reads fault history again for the risks (after a resolution or an import, and on the
    /// timer); a failure is logged and the previous reading kept.
    pub async fn refresh_risks(&self) {
        let now = self.clock.now_millis();
        if let Err(error) = self.risks.refresh(&self.store, &self.topology, now).await {
            tracing::warn!(%error, "cannot read the fault history for risks");
        }
    }

    /// Stops the service once the HTTP server has answered its last request, in this order:
    /// 1. shutdown begins ([`Workers::cancel`]; already done when the server began its
    ///    graceful shutdown): timers, the automation runner and its runs, the notifier,
    ///    training jobs, Prometheus pulls, the ranking worker and the event streams stop at
    ///    their next await point;
    /// 2. this state is dropped, and with it the last intake handle: the ingest writer commits
    ///    what it holds and stops;
    /// 3. every background task has ended ([`Workers::wait`]);
    /// 4. the store closes.
    pub async fn shut_down(self, workers: Workers) {
        workers.cancel();
        let store = self.store.clone();
        drop(self);
        workers.wait().await;
        store.close().await;
    }
}

/// Runs `tick` on a clone of `part` every `period` until shutdown begins.
fn every<P, F, T>(spawner: &Spawner, period: Duration, part: P, tick: F)
where
    P: Clone + Send + 'static,
    F: Fn(P) -> T + Send + 'static,
    T: std::future::Future<Output = ()> + Send,
{
    let stop = spawner.token();
    spawner.spawn(async move {
        let mut interval = tokio::time::interval(period);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = interval.tick() => tick(part.clone()).await,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::learning::fixtures::simulated_history;
    use crate::learning::training::TrainRequest;
    use crate::store::JobStatus;
    use crate::store::tests::sqlite_store;

    #[tokio::test]
    async fn shutdown_waits_for_every_task_and_leaves_no_training_job_running() {
        let (store, dir) = sqlite_store().await;
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let (state, workers) = AppState::start(&config, store, Clock::system())
            .await
            .unwrap();
        state
            .learning
            .import(simulated_history(300, 11), "test")
            .await
            .unwrap();
        let job = state.learning.train(TrainRequest::default()).await.unwrap();
        assert!(!workers.is_empty());
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(60), state.shut_down(workers))
            .await
            .expect("shutdown drains every task");
        // The store is closed: what the job left is read from the file.
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let reopened = Store::open(&url, &Default::default()).await.unwrap();
        let stored = reopened.job(job.id).await.unwrap().unwrap();
        match stored.status {
            JobStatus::Succeeded => {}
            JobStatus::Failed => assert!(
                stored
                    .error
                    .as_deref()
                    .unwrap_or_default()
                    .contains("interrupted"),
                "{stored:?}"
            ),
            other => panic!("a job left {other:?} after {:?}", started.elapsed()),
        }
    }
}
