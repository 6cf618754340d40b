//! Learning from fault history: confirmed resolutions and imported past incidents become
//! labelled history; training jobs turn history into versioned models, which are promoted only
//! when they are not worse than the active model on held-out cases.
//!
//! History keeps each incident's *evidence* (what [`rootcause_models::evidence::extract`] found,
//! without the sentences), not its raw data: training reads nothing else, 10,000 incidents fit
//! in a few hundred megabytes at most, and an incident's metrics need not be kept for years.
//! The price: evidence of an older [`EVIDENCE_SCHEMA`] cannot be trained on; such rows are
//! counted as stale and their incidents must be imported again.

#[cfg(test)]
pub(crate) mod fixtures;
pub mod import;
pub mod training;

use std::sync::{Arc, Mutex};

use anyhow::Context;
use rootcause_models::case::Label;
use rootcause_models::evidence::{EVIDENCE_SCHEMA, Evidence};
use rootcause_models::history::HistoryRecord;
use rootcause_models::learned::{self, Example, LearnedModel};
use rootcause_models::ranker::Ranker;
use rootcause_models::rankers;
use rootcause_topology::Topology;
use tracing::Instrument;

use crate::advice::{Advice, past_incident};
use crate::clock::Clock;
use crate::config::RankingConfig;
use crate::live_topology::LiveTopology;
use crate::ranking::{Gone, Ranking};
use crate::store::{
    HistoryFacts, HistorySummary, HistoryUpsert, JobStatus, ModelStatus, NewHistory, NewModel,
    NewResolution, Store, StoreError, StoredJob, StoredModel, StoredResolution,
};
use crate::workers::Spawner;
use import::{ImportError, history_row};
use rootcause_correlation::Millis;
use training::{HistoryExample, TrainRequest};

/// Root causes a resolution may name besides the services of the graph.
pub const OUTSIDE_CAUSES: [&str; 2] = ["external", "unknown"];

/// What is wrong with an action id, if anything: actions are ids such as `restart` or
/// `scale_out` (the runbooks' ids), each a class of the action model, so free text is refused.
pub fn action_problem(action: &str) -> Option<String> {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    if action.is_empty() || action.len() > 64 || !action.chars().all(ok) {
        Some(format!(
            "must be an action id of 1 to 64 lowercase letters, digits, '_' or '-' (restart, \
             rollback, scale_out, ...), got {action:?}"
        ))
    } else {
        None
    }
}

/// The learning service: cheap to clone, shared by the handlers.
#[derive(Clone)]
pub struct Learning {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    ranking: Ranking,
    /// Resolved and imported incidents join its similar-incident index.
    advice: Arc<Advice>,
    topology: Arc<LiveTopology>,
    hops: usize,
    /// The job running in this process: (id, stage, fraction done). One at a time: the store
    /// refuses a second live job, and this tells its progress between stored stages.
    running: Mutex<Option<(i64, String, f64)>>,
    /// Held while the registry's active model and the ranker change together, so that an
    /// activation and a job's promotion cannot interleave and leave them disagreeing.
    registry: tokio::sync::Mutex<()>,
    clock: Clock,
    /// Runs training jobs.
    spawner: Spawner,
}

/// Why a resolution was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The incident is unknown or merged.
    #[error(transparent)]
    Gone(#[from] Gone),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why activating a model failed.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    /// The stored model cannot be loaded by this build.
    #[error("model {id} cannot be used: {reason}")]
    Unusable {
        /// The model.
        id: i64,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Learning {
    /// Fails the jobs a previous process left unfinished and makes the registry's active model
    /// the ranker; with an empty registry, registers the configured model when it is a learned
    /// one (the bundled model by default), so that every later model is compared with it.
    pub async fn start(
        store: Store,
        ranking: Ranking,
        topology: Arc<LiveTopology>,
        config: &RankingConfig,
        advice: Arc<Advice>,
        clock: Clock,
        spawner: Spawner,
    ) -> anyhow::Result<Learning> {
        let interrupted = store.fail_interrupted_jobs(clock.now_millis()).await?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "training jobs interrupted by a restart were failed"
            );
        }
        match store.active_model().await? {
            Some((row, body)) => match LearnedModel::from_json(&body) {
                Ok(model) => {
                    if config.model != RankingConfig::default().model {
                        tracing::warn!(
                            configured = %config.model,
                            active = row.id,
                            "ranking.model is not used: the model registry has an active model"
                        );
                    }
                    ranking.set_ranker(Arc::new(learned::Learned { model }));
                }
                // A service that cannot rank with its active model still ranks, with the
                // configured one, and says so on every start until another is activated.
                Err(error) => tracing::error!(
                    %error,
                    active = row.id,
                    version = %row.version,
                    fallback = %config.model,
                    "the active model cannot be loaded by this build; ranking with ranking.model \
                     until another is activated (POST /api/v1/models/{{id}}/activate)"
                ),
            },
            None => {
                if let Some(model) = configured_model(&config.model)? {
                    let figures = serde_json::json!({
                        "feature_schema": learned::FEATURE_SCHEMA,
                        "evidence_schema": EVIDENCE_SCHEMA,
                        "training_cases": model.provenance.cases,
                        "training_rows": model.provenance.rows,
                        "provenance": model.provenance.figures,
                    });
                    let source = if config.model == "default" {
                        "bundled".to_owned()
                    } else {
                        format!("file:{}", config.model)
                    };
                    store
                        .insert_model(
                            &NewModel {
                                version: model.version.clone(),
                                source,
                                feature_schema: i64::from(learned::FEATURE_SCHEMA),
                                figures: figures.to_string(),
                                reason: "the configured model when the registry was empty"
                                    .to_owned(),
                                body: model.to_json(),
                                job_id: None,
                            },
                            true,
                            clock.now_millis(),
                        )
                        .await?;
                }
            }
        }
        Ok(Learning {
            inner: Arc::new(Inner {
                store,
                ranking,
                advice,
                topology,
                hops: config.hops,
                running: Mutex::new(None),
                registry: tokio::sync::Mutex::new(()),
                clock,
                spawner,
            }),
        })
    }

    /// The current topology as a shared graph, for records that bring none.
    fn graph(&self) -> Arc<Topology> {
        self.inner.topology.current().topology.clone()
    }

    /// Imports past incidents (all or nothing): their evidence is extracted now, on the
    /// blocking pool, and stored with their outcome under `import:<source>:<id>`.
    pub async fn import(
        &self,
        records: Vec<HistoryRecord>,
        source: &str,
    ) -> Result<HistoryUpsert, ImportError> {
        let graph = self.graph();
        let hops = self.inner.hops;
        let source = source.to_owned();
        let rows = tokio::task::spawn_blocking(move || {
            records
                .into_iter()
                .enumerate()
                .map(|(i, record)| {
                    history_row(record, &source, Some(graph.clone()), hops)
                        .map_err(|error| ImportError::Record { index: i, error })
                })
                .collect::<Result<Vec<NewHistory>, ImportError>>()
        })
        .await
        .map_err(|e| ImportError::Internal(e.to_string()))??;
        let upserted = self
            .inner
            .store
            .upsert_history(&rows, self.inner.clock.now_millis())
            .await?;
        // The rows' evidence is stored as JSON; the index reads it back on the blocking pool,
        // before the import is answered, so that the next ranking finds them.
        let advice = self.inner.advice.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for row in &rows {
                if let Ok(evidence) = serde_json::from_str::<Evidence>(&row.evidence) {
                    advice.remember(
                        past_incident(&row.facts),
                        rootcause_models::actions::incident_vector(&evidence),
                    );
                }
            }
        })
        .await;
        Ok(upserted)
    }

    /// Records the confirmed resolution of incident `id` and adds the incident, with the
    /// evidence its rankings see now, to the history (key `incident:<id>`: a later resolution
    /// replaces it).
    pub async fn resolve(
        &self,
        id: u64,
        mut resolution: NewResolution,
    ) -> Result<StoredResolution, ResolveError> {
        let case = self.inner.ranking.case_of(id).await?.held(id)?;
        let now = self.inner.clock.now_millis();
        if resolution.time_to_mitigate_s.is_none() && case.anchor > 0 {
            resolution.time_to_mitigate_s = Some((now / 1000 - case.anchor).max(0) as f64);
        }
        let resolution_for_row = resolution.clone();
        let (row, vector) = tokio::task::spawn_blocking(move || {
            let evidence = rootcause_models::evidence::extract(&case, &Default::default());
            let vector = rootcause_models::actions::incident_vector(&evidence);
            let row = NewHistory {
                facts: HistoryFacts {
                    key: format!("incident:{id}"),
                    source: "resolution".to_owned(),
                    system: String::new(),
                    started_at: case.anchor,
                    root_cause: resolution_for_row.root_cause,
                    fault_type: resolution_for_row.fault_type,
                    action: resolution_for_row.action,
                    worked: resolution_for_row.worked,
                    time_to_mitigate_s: resolution_for_row.time_to_mitigate_s,
                    evidence_schema: i64::from(EVIDENCE_SCHEMA),
                },
                evidence: import::evidence_json(evidence),
            };
            (row, vector)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("extracting evidence failed: {e}")))?;
        let stored = self
            .inner
            .store
            .insert_resolution(&resolution, Some(&row), now)
            .await?;
        self.inner
            .advice
            .remember(past_incident(&row.facts), vector);
        Ok(stored)
    }

    /// Queues a training job and starts it; `StoreError::Conflict` when one is live.
    pub async fn train(&self, request: TrainRequest) -> Result<StoredJob, StoreError> {
        let params = serde_json::to_string(&request).expect("serialises");
        let job = self
            .inner
            .store
            .create_job(request.force, &params, self.inner.clock.now_millis())
            .await?;
        *self.inner.running.lock().expect("not poisoned") = Some((job.id, "queued".into(), 0.0));
        let inner = self.inner.clone();
        let id = job.id;
        let span = tracing::info_span!("training_job", job = id);
        let spawner = self.inner.spawner.clone();
        spawner.spawn(
            async move {
                // The work runs in a task of its own so that a panic in it fails the job
                // instead of leaving it "running" (and every later request refused) until a
                // restart.
                let mut work = tokio::spawn({
                    let inner = inner.clone();
                    async move { inner.run_job(id, request).await }
                });
                // At shutdown the job is recorded as interrupted rather than waited for (it may
                // take minutes); a training thread already running ends with the process.
                let outcome = tokio::select! {
                    () = inner.spawner.cancelled() => {
                        work.abort();
                        Err(anyhow::anyhow!("interrupted: the service shut down"))
                    }
                    done = &mut work => match done {
                        Ok(outcome) => outcome,
                        Err(error) => Err(anyhow::anyhow!("the training job failed: {error}")),
                    },
                };
                let (status, error, model_id, summary) = match outcome {
                    Ok((model_id, summary)) => (JobStatus::Succeeded, None, model_id, summary),
                    Err(error) => {
                        let error = format!("{error:#}");
                        tracing::warn!(%error, "training job failed");
                        (JobStatus::Failed, Some(error), None, "{}".to_owned())
                    }
                };
                // A busy database must not leave the job live forever: retry a few times.
                for attempt in 1..=5 {
                    match inner
                        .store
                        .finish_job(
                            id,
                            status,
                            error.as_deref(),
                            model_id,
                            &summary,
                            inner.clock.now_millis(),
                        )
                        .await
                    {
                        Ok(()) => break,
                        Err(error) => {
                            tracing::error!(%error, attempt, "cannot record the end of a training job");
                            tokio::time::sleep(std::time::Duration::from_secs(attempt)).await;
                        }
                    }
                }
                let mut running = inner.running.lock().expect("not poisoned");
                if running.as_ref().is_some_and(|r| r.0 == id) {
                    *running = None;
                }
            }
            .instrument(span),
        );
        Ok(job)
    }

    /// A job as stored, with the live progress of the one running in this process.
    pub async fn job(&self, id: i64) -> Result<Option<StoredJob>, StoreError> {
        let mut job = self.inner.store.job(id).await?;
        if let Some(job) = job.as_mut()
            && let Some((running, stage, progress)) =
                self.inner.running.lock().expect("not poisoned").clone()
            && running == id
            && matches!(job.status, JobStatus::Queued | JobStatus::Running)
        {
            job.stage = stage;
            job.progress = progress;
        }
        Ok(job)
    }

    /// Makes stored model `id` the active one and ranks with it from now on.
    pub async fn activate(
        &self,
        id: i64,
        reason: &str,
    ) -> Result<Option<StoredModel>, ActivateError> {
        let Some(body) = self.inner.store.model_body(id).await? else {
            return Ok(None);
        };
        let model = LearnedModel::from_json(&body).map_err(|e| ActivateError::Unusable {
            id,
            reason: e.to_string(),
        })?;
        let _registry = self.inner.registry.lock().await;
        let row = self
            .inner
            .store
            .activate_model(id, reason, self.inner.clock.now_millis())
            .await?;
        if row.is_some() {
            self.inner
                .ranking
                .set_ranker(Arc::new(learned::Learned { model }));
        }
        Ok(row)
    }
}

impl Inner {
    fn progress(&self, id: i64, stage: &str, fraction: f64) {
        *self.running.lock().expect("not poisoned") = Some((id, stage.to_owned(), fraction));
    }

    /// The job's work; returns the stored model's id and the job summary (JSON).
    async fn run_job(
        self: &Arc<Self>,
        id: i64,
        request: TrainRequest,
    ) -> anyhow::Result<(Option<i64>, String)> {
        self.store.start_job(id, self.clock.now_millis()).await?;
        let compared_with = {
            let _registry = self.registry.lock().await;
            (
                self.store.active_model().await?.map(|(row, _)| row.id),
                self.ranking.ranker(),
            )
        };
        let me = self.clone();
        let report = Arc::new(move |stage: &str, fraction: f64| me.progress(id, stage, fraction));
        let (mut trained, history) =
            train_on_history(&self.store, compared_with.1, request, report).await?;
        self.progress(id, "storing the model", 0.95);
        let _registry = self.registry.lock().await;
        let active_now = self.store.active_model().await?.map(|(row, _)| row.id);
        if trained.decision.promote && active_now != compared_with.0 && !request.force {
            trained.decision = training::Decision {
                promote: false,
                reason: format!(
                    "another model ({}) was activated while the job ran; the comparison was \
                     with the one before it: train again to compare with it",
                    active_now.map_or_else(|| "none".to_owned(), |id| id.to_string())
                ),
            };
        }
        let stored = store_model(&self.store, &trained, Some(id), self.clock.now_millis()).await?;
        if trained.decision.promote {
            self.ranking.set_ranker(Arc::new(learned::Learned {
                model: trained.model.clone(),
            }));
        }
        let summary = serde_json::json!({
            "model": stored.id,
            "version": stored.version,
            "promoted": trained.decision.promote,
            "reason": trained.decision.reason,
            "history": {
                "rows": history.total,
                "stale_rows": history.stale,
                "training_cases": trained.figures.training_cases,
                "held_out_cases": trained.figures.held_out_cases,
                "unusable_cases": trained.figures.unusable_cases,
            },
            "cross_validation": trained.figures.cross_validation.overall,
            "chance": trained.figures.cross_validation.chance,
            "held_out": trained.figures.held_out,
            "actions": trained.figures.actions,
        });
        Ok((Some(stored.id), summary.to_string()))
    }
}

/// Hears a job's stage and the fraction done.
pub type Progress = Arc<dyn Fn(&str, f64) + Send + Sync>;

/// What a training job does before it stores anything: reads the history of this build's
/// evidence schema, and trains and scores a candidate against `active` (on the blocking pool).
pub async fn train_on_history(
    store: &Store,
    active: Arc<dyn Ranker>,
    request: TrainRequest,
    progress: Progress,
) -> anyhow::Result<(training::Trained, HistorySummary)> {
    progress("loading history", 0.02);
    let summary = store.history_summary(i64::from(EVIDENCE_SCHEMA)).await?;
    let rows = store
        .history_for_training(i64::from(EVIDENCE_SCHEMA))
        .await?;
    let trained = tokio::task::spawn_blocking(move || {
        progress("reading evidence", 0.05);
        let history = rows
            .into_iter()
            .map(|(row, evidence)| history_example(row, &evidence))
            .collect::<anyhow::Result<Vec<_>>>()?;
        training::run(&history, &*active, &request, &*progress).map_err(anyhow::Error::from)
    })
    .await
    .context("the training task failed")??;
    Ok((trained, summary))
}

/// Stores a trained model in the registry: active if its decision promotes it. Training is
/// deterministic, so a job may produce a version the registry already holds (same history,
/// same settings): then that entry is kept, and activated if the decision promotes it.
pub async fn store_model(
    store: &Store,
    trained: &training::Trained,
    job: Option<i64>,
    now: Millis,
) -> anyhow::Result<StoredModel> {
    let existing = store
        .list_models()
        .await?
        .into_iter()
        .find(|m| m.version == trained.model.version);
    if let Some(existing) = existing {
        if trained.decision.promote && existing.status != ModelStatus::Active {
            let reason = format!(
                "trained again by job {}: {}",
                job.map_or_else(|| "-".to_owned(), |id| id.to_string()),
                trained.decision.reason
            );
            if let Some(row) = store.activate_model(existing.id, &reason, now).await? {
                return Ok(row);
            }
        }
        return Ok(existing);
    }
    let figures = serde_json::to_string(&trained.figures)?;
    Ok(store
        .insert_model(
            &NewModel {
                version: trained.model.version.clone(),
                source: job.map_or_else(|| "bench".to_owned(), |id| format!("job:{id}")),
                feature_schema: i64::from(learned::FEATURE_SCHEMA),
                figures,
                reason: trained.decision.reason.clone(),
                body: trained.model.to_json(),
                job_id: job,
            },
            trained.decision.promote,
            now,
        )
        .await?)
}

/// A stored history row as a training example.
pub fn history_example(
    row: crate::store::StoredHistory,
    evidence: &str,
) -> anyhow::Result<HistoryExample> {
    let row = row.facts;
    let evidence: Evidence = serde_json::from_str(evidence)
        .with_context(|| format!("history row {} has unreadable evidence", row.key))?;
    // An action that did not work teaches the action model nothing.
    let action = row.action.clone().filter(|_| row.worked != Some(false));
    let example = Example::from_evidence(evidence, &row.root_cause, &row.fault_type, action);
    Ok(HistoryExample {
        key: row.key,
        label: Label {
            root_cause: row.root_cause,
            fault_type: row.fault_type,
            action: row.action,
        },
        example,
    })
}

/// The learned model a `ranking.model` setting names, if it names one.
fn configured_model(spec: &str) -> anyhow::Result<Option<LearnedModel>> {
    match spec {
        "default" => Ok(Some(rankers::bundled_model())),
        "cold-start" => Ok(None),
        path => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read model file {path}"))?;
            Ok(Some(
                LearnedModel::from_json(&text).with_context(|| format!("model file {path}"))?,
            ))
        }
    }
}
