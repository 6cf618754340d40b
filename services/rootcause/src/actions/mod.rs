//! Emergency actions: the runbook catalogue, suggestions on every hypothesis (computed by the
//! ranking job from [`Advice`]), similar past incidents, human approval of actions with their
//! automation run after it, outgoing notifications, and the append-only audit log.
//!
//! Nothing runs without a person: an action's automation webhook is called only once a
//! responder approved the action for the incident. Approvals, rejections, automation attempts
//! and catalogue changes are written to the audit log in the same transaction as the state they
//! describe; the suggestions shown with each new top hypothesis, and notifications, are written
//! by the notifier as it follows the rankings.

mod automation;
mod notify;
mod secrets;

pub use secrets::masked;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rootcause_models::actions::{
    Catalogue, CatalogueError, Runbook, Suggestion, incident_vector, runbook_applies,
};
use rootcause_models::evidence::{EVIDENCE_SCHEMA, Evidence};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::advice::{Advice, Similar, history_key, past_incident};
use crate::clock::Clock;
use crate::config::ActionsConfig;
use crate::config::outgoing::{check_outgoing_url, origin};
use crate::ranking::{Found, Gone, Ranking};
use crate::sealing::{SealError, Sealer};
use crate::store::{
    Decision, NewAudit, NewDecision, NewRun, Store, StoreError, StoredCatalogue, StoredDecision,
    StoredRun,
};
use crate::workers::Spawner;
use rootcause_correlation::Millis;

/// Who the service itself is in the audit log.
pub const SYSTEM_ACTOR: &str = "rootcause";

/// What `GET /api/v1/runbooks` shows instead of a header value (a token), and what a `PUT`
/// may send back to keep the stored value.
pub const MASK: &str = "***";

/// The actions service: cheap to clone, shared by the handlers.
#[derive(Clone)]
pub struct Actions {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    advice: Arc<Advice>,
    ranking: Ranking,
    allowed_hosts: Vec<String>,
    /// Approved runs to carry out.
    runs: mpsc::UnboundedSender<i64>,
    /// The stored catalogue version in force (`None`: the bundled one standing in), changed
    /// together with the catalogue under this lock so that readers see one version's number
    /// with that version's runbooks.
    version: tokio::sync::Mutex<Option<StoredCatalogue>>,
    /// Seals header values before they are stored.
    sealer: Arc<Sealer>,
    clock: Clock,
}

/// Why a catalogue was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueRejection {
    /// Not a valid catalogue: where and why.
    #[error("{0}")]
    Invalid(CatalogueError),
    /// Its secrets cannot be sealed (the key file cannot be read or written).
    #[error(transparent)]
    Sealing(#[from] SealError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a decision was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// The incident is unknown or merged.
    #[error(transparent)]
    Gone(#[from] Gone),
    /// No runbook with this id.
    #[error("no runbook {action:?} in the catalogue; runbooks: {known}")]
    UnknownAction {
        /// The id asked for.
        action: String,
        /// The ids there are.
        known: String,
    },
    /// The runbook does not apply to the service (its selector excludes it, or it needs a
    /// recent change there that did not happen): its automation is not called.
    #[error("runbook {action:?} does not apply to {service}: {why}")]
    NotApplicable {
        /// The runbook.
        action: String,
        /// The service it was approved for.
        service: String,
        /// Why.
        why: String,
    },
    /// The runbook's automation may not be called.
    #[error("runbook {action:?} cannot run its automation: {why}")]
    NotAllowed {
        /// The runbook.
        action: String,
        /// Why.
        why: String,
    },
    /// Already decided (a second approval, or a rejection of an approved action).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A responder's decision on an action, as the API takes it.
#[derive(Debug, Clone)]
pub struct DecisionRequest {
    /// Who decided.
    pub actor: String,
    /// Why.
    pub comment: String,
    /// The service the action is for; default: the top hypothesis that suggests it, else the
    /// top hypothesis.
    pub service: Option<String>,
}

/// A recorded decision and the automation run it started.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The decision.
    pub decision: StoredDecision,
    /// The automation run, for an approved runbook with automation.
    pub run: Option<StoredRun>,
}

impl Actions {
    /// Puts the catalogue in force (the configured file, else the stored one, else the
    /// bundled defaults), loads the fault history into the similar-incident index, carries on
    /// automation runs a previous process left unfinished, and starts the notifier.
    pub async fn start(
        store: Store,
        advice: Arc<Advice>,
        ranking: Ranking,
        config: &ActionsConfig,
        sealer: Arc<Sealer>,
        clock: Clock,
        spawner: &Spawner,
    ) -> anyhow::Result<Actions> {
        let (catalogue, version) = initial_catalogue(&store, config, &sealer, &clock).await?;
        advice.set_catalogue(catalogue);
        // Before the first ranking, so that suggestions see the history from the start and a
        // resolution recorded meanwhile is never overwritten by an older copy of its row.
        load_history(&store, &advice).await;
        let (runs, queue) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            store: store.clone(),
            advice: advice.clone(),
            ranking: ranking.clone(),
            allowed_hosts: config.allowed_hosts.clone(),
            runs,
            version: tokio::sync::Mutex::new(version),
            sealer,
            clock: clock.clone(),
        });
        // No redirects: a redirect would take a call to a host the allow-list never saw.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the HTTP client for webhooks")?;
        let runner = automation::Runner::new(
            store.clone(),
            client.clone(),
            inner.allowed_hosts.clone(),
            inner.advice.clone(),
            Duration::from_secs(config.run_expiry_secs),
            clock.clone(),
            spawner.clone(),
        );
        spawner.spawn(automation::run(runner, queue));
        spawner.spawn(notify::run(
            store,
            client,
            ranking.published(),
            config.clone(),
            clock,
            spawner.clone(),
        ));
        Ok(Actions { inner })
    }

    /// The catalogue in force, and its stored version (`None` for the bundled catalogue
    /// standing in for a stored one this build refuses).
    pub async fn catalogue(&self) -> (Arc<Catalogue>, Option<StoredCatalogue>) {
        let version = self.inner.version.lock().await;
        (self.inner.advice.catalogue(), version.clone())
    }

    /// Replaces the catalogue: validates it (schema, and automation hosts against the
    /// allow-list), stores it as a new version with its audit entry, puts it in force and
    /// re-ranks the incidents held so that their suggestions come from it.
    pub async fn replace_catalogue(
        &self,
        text: &str,
        actor: &str,
    ) -> Result<StoredCatalogue, CatalogueRejection> {
        let mut version = self.inner.version.lock().await;
        let mut catalogue = checked_catalogue(text, &self.inner.allowed_hosts)
            .map_err(CatalogueRejection::Invalid)?;
        let previous = self.inner.advice.catalogue();
        let kept =
            secrets::unmask(&mut catalogue, &previous).map_err(CatalogueRejection::Invalid)?;
        let stored = save(
            &self.inner.store,
            &self.inner.sealer,
            &catalogue,
            actor,
            self.inner.clock.now_millis(),
            automation_changes(&catalogue, &previous, &kept),
        )
        .await?;
        self.inner.advice.set_catalogue(catalogue);
        *version = Some(stored.clone());
        drop(version);
        self.inner.ranking.rerank_all();
        Ok(stored)
    }

    /// The past incidents most like incident `id` now, most similar first.
    pub async fn similar(&self, id: u64, limit: usize) -> Result<Found<Vec<Similar>>, StoreError> {
        let case = match self.inner.ranking.case_of(id).await? {
            Found::Held(case) => case,
            Found::Merged(survivor) => return Ok(Found::Merged(survivor)),
            Found::Unknown => return Ok(Found::Unknown),
        };
        let advice = self.inner.advice.clone();
        let ranker = self.inner.ranking.ranker();
        tokio::task::spawn_blocking(move || {
            let settings = ranker.evidence_settings().unwrap_or_default();
            let evidence = rootcause_models::evidence::extract(&case, &settings);
            Found::Held(advice.similar(&evidence, limit, &history_key(id)))
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("finding similar incidents failed: {e}")))
    }

    /// Records a responder's decision on runbook `action` for incident `incident`, with its
    /// audit entry, in one transaction; an approval of a runbook with automation also records
    /// the run, which starts once the transaction is committed.
    ///
    /// Runs as a task of its own: a client that goes away, or a request timeout, must not
    /// drop the work between the commit and handing the run to the runner.
    pub async fn decide(
        &self,
        incident: u64,
        action: &str,
        decision: Decision,
        request: DecisionRequest,
    ) -> Result<Decided, DecideError> {
        let this = self.clone();
        let action = action.to_owned();
        tokio::spawn(this.decide_now(incident, action, decision, request))
            .await
            .map_err(|e| StoreError::Corrupt(format!("recording the decision failed: {e}")))?
    }

    async fn decide_now(
        self,
        incident: u64,
        action: String,
        decision: Decision,
        request: DecisionRequest,
    ) -> Result<Decided, DecideError> {
        let ranked = self
            .inner
            .ranking
            .hypotheses(incident)
            .await?
            .held(incident)?;
        let catalogue = self.inner.advice.catalogue();
        let runbook = catalogue
            .get(&action)
            .ok_or_else(|| DecideError::UnknownAction {
                action: action.to_owned(),
                known: catalogue
                    .runbooks
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        // The hypothesis the action is for: the one named, else the most likely one that
        // suggests it, else the most likely one.
        let hypotheses = &ranked.diagnosis.hypotheses;
        let suggesting = |i: usize| {
            ranked
                .actions
                .get(i)
                .and_then(|list| list.iter().find(|s| s.action == action))
        };
        let index = match &request.service {
            Some(service) => hypotheses.iter().position(|h| &h.service == service),
            None => (0..hypotheses.len())
                .find(|&i| suggesting(i).is_some())
                .or((!hypotheses.is_empty()).then_some(0)),
        };
        let service = request
            .service
            .clone()
            .or_else(|| index.map(|i| hypotheses[i].service.clone()));
        let suggestion: Option<&Suggestion> = index.and_then(suggesting);
        let now = self.inner.clock.now_millis();
        let run = match (&decision, &runbook.automation) {
            (Decision::Approved, Some(automation)) => {
                check_outgoing_url(&automation.url, &self.inner.allowed_hosts).map_err(|why| {
                    DecideError::NotAllowed {
                        action: action.to_owned(),
                        why,
                    }
                })?;
                // A webhook acts on a service: never on one the runbook excludes, and never on
                // no service at all.
                let Some(target) = service.as_deref() else {
                    return Err(DecideError::NotApplicable {
                        action: action.to_owned(),
                        service: "(no service)".to_owned(),
                        why: "the incident has no hypothesis yet; name a service".to_owned(),
                    });
                };
                let case = self.inner.ranking.case_of(incident).await?.held(incident)?;
                if !runbook_applies(runbook, &case, target) {
                    return Err(DecideError::NotApplicable {
                        action: action.to_owned(),
                        service: target.to_owned(),
                        why: "its service selector excludes the service, or it needs a recent \
                              change there"
                            .to_owned(),
                    });
                }
                let payload = automation_payload(
                    incident,
                    runbook,
                    service.as_deref(),
                    &request,
                    now,
                    suggestion,
                    ranked.revision,
                );
                Some(NewRun {
                    url: automation.url.clone(),
                    payload: payload.to_string(),
                    max_attempts: automation.retries + 1,
                    timeout_ms: automation.timeout_ms,
                })
            }
            _ => None,
        };
        let audit = NewAudit {
            at: now,
            actor: request.actor.clone(),
            kind: match decision {
                Decision::Approved => "action_approved",
                Decision::Rejected => "action_rejected",
            }
            .to_owned(),
            incident: Some(incident),
            action: Some(action.to_owned()),
            service: service.clone(),
            detail: serde_json::json!({
                "comment": request.comment,
                "risk": runbook.risk,
                "suggested": suggestion.is_some(),
                "confidence": suggestion.map(|s| s.confidence),
                "reason": suggestion.map(|s| s.reason.as_str()),
                "revision": ranked.revision,
                "model": ranked.diagnosis.model,
                "automation": run.as_ref().map(|r| origin(&r.url)),
            }),
        };
        let record = NewDecision {
            incident,
            action: action.to_owned(),
            service,
            decision,
            actor: request.actor,
            comment: request.comment,
            at: now,
        };
        let (decision, run) = self
            .inner
            .store
            .decide(&record, run.as_ref(), &audit)
            .await?;
        if let Some(run) = &run {
            let _ = self.inner.runs.send(run.id);
        }
        Ok(Decided { decision, run })
    }
}

/// What an automation webhook receives: enough to act without calling back.
fn automation_payload(
    incident: u64,
    runbook: &Runbook,
    service: Option<&str>,
    request: &DecisionRequest,
    now: i64,
    suggestion: Option<&Suggestion>,
    revision: u64,
) -> serde_json::Value {
    serde_json::json!({
        "incident": incident,
        "action": runbook.id,
        "title": runbook.title,
        "risk": runbook.risk,
        "steps": runbook.steps,
        "service": service,
        "approved_by": request.actor,
        "comment": request.comment,
        "approved_at": chrono::DateTime::from_timestamp_millis(now)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "suggestion": suggestion,
        "ranking_revision": revision,
    })
}

/// What an audit entry says of a replaced catalogue's automations: for each runbook with one,
/// its URL, the previous URL when it changed, and which header values were kept (never the
/// values).
fn automation_changes(
    catalogue: &Catalogue,
    previous: &Catalogue,
    kept: &BTreeMap<String, Vec<String>>,
) -> Value {
    let entries: Vec<Value> = catalogue
        .runbooks
        .iter()
        .filter_map(|runbook| {
            let automation = runbook.automation.as_ref()?;
            let before = previous
                .get(&runbook.id)
                .and_then(|r| r.automation.as_ref())
                .map(|a| a.url.as_str());
            Some(serde_json::json!({
                "runbook": runbook.id,
                "url": automation.url,
                "previous_url": before.filter(|b| *b != automation.url),
                "headers": automation.headers.keys().collect::<Vec<_>>(),
                "kept_headers": kept.get(&runbook.id).cloned().unwrap_or_default(),
            }))
        })
        .collect();
    Value::Array(entries)
}

/// Parses and validates a catalogue, then checks every automation host against the
/// allow-list.
pub fn checked_catalogue(
    text: &str,
    allowed_hosts: &[String],
) -> Result<Catalogue, CatalogueError> {
    let catalogue = Catalogue::parse(text)?;
    for (i, runbook) in catalogue.runbooks.iter().enumerate() {
        if let Some(automation) = &runbook.automation
            && let Err(why) = check_outgoing_url(&automation.url, allowed_hosts)
        {
            return Err(CatalogueError::new(
                format!("runbooks[{i}].automation.url"),
                why,
            ));
        }
    }
    Ok(catalogue)
}

fn digest(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The catalogue to start with: the configured file (stored as a new version when it differs
/// from the stored one), else the stored one, else the bundled defaults (stored, so that the
/// audit log shows where the catalogue in force came from). Secrets stored in plain text by an
/// earlier version are sealed first.
async fn initial_catalogue(
    store: &Store,
    config: &ActionsConfig,
    sealer: &Sealer,
    clock: &Clock,
) -> anyhow::Result<(Catalogue, Option<StoredCatalogue>)> {
    seal_plain_secrets(store, sealer, clock).await?;
    let stored = store.current_catalogue().await?;
    let (text, actor) = match &config.runbooks {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("actions.runbooks: cannot read {}", path.display()))?,
            "config",
        ),
        None => match &stored {
            Some(stored) => match secrets::opened(&stored.yaml, &config.allowed_hosts, sealer) {
                Ok(catalogue) => return Ok((catalogue, Some(stored.clone()))),
                Err(error) => {
                    // A stored catalogue this build (or allow-list, or key) refuses must not
                    // keep the service down: the bundled one stands in until an operator
                    // replaces it.
                    tracing::error!(
                        version = stored.id,
                        %error,
                        "the stored runbook catalogue is refused; using the bundled runbooks"
                    );
                    return Ok((Catalogue::bundled(), None));
                }
            },
            None => (
                rootcause_models::actions::BUNDLED_RUNBOOKS.to_owned(),
                "bundled",
            ),
        },
    };
    let catalogue = checked_catalogue(&text, &config.allowed_hosts).map_err(|error| {
        anyhow::anyhow!(
            "runbook catalogue {}: {error}",
            config
                .runbooks
                .as_ref()
                .map_or("(bundled)".to_owned(), |p| p.display().to_string())
        )
    })?;
    let digest = digest(&catalogue.to_yaml());
    if let Some(stored) = stored.as_ref().filter(|s| s.digest == digest) {
        return Ok((catalogue, Some(stored.clone())));
    }
    if let Some(replaced) = stored.as_ref().filter(|s| s.actor != "config") {
        tracing::warn!(
            version = replaced.id,
            by = %replaced.actor,
            "actions.runbooks replaces the runbook catalogue stored through the API"
        );
    }
    let previous = stored
        .as_ref()
        .and_then(|s| secrets::opened(&s.yaml, &config.allowed_hosts, sealer).ok())
        .unwrap_or_else(|| Catalogue {
            runbooks: Vec::new(),
        });
    let automations = automation_changes(&catalogue, &previous, &BTreeMap::new());
    let saved = save(
        store,
        sealer,
        &catalogue,
        actor,
        clock.now_millis(),
        automations,
    )
    .await?;
    Ok((catalogue, Some(saved)))
}

/// Seals the header values that stored catalogue versions hold in plain text (written before
/// secrets were sealed), rewriting those versions in place with one audit entry: the secrets
/// then no longer sit readable in the database.
async fn seal_plain_secrets(store: &Store, sealer: &Sealer, clock: &Clock) -> anyhow::Result<()> {
    let mut rewritten = Vec::new();
    for version in store.catalogue_versions().await? {
        // Parsed without the allow-list: an old version naming a host no longer allowed still
        // holds a secret worth sealing.
        let Ok(catalogue) = Catalogue::parse(&version.yaml) else {
            continue;
        };
        if let Some(sealed) = secrets::sealed_plain(&catalogue, sealer)? {
            rewritten.push((version.id, sealed.to_yaml()));
        }
    }
    if rewritten.is_empty() {
        return Ok(());
    }
    let versions: Vec<i64> = rewritten.iter().map(|(id, _)| *id).collect();
    let audit = NewAudit {
        at: clock.now_millis(),
        actor: SYSTEM_ACTOR.to_owned(),
        kind: "secrets_sealed".to_owned(),
        incident: None,
        action: None,
        service: None,
        detail: serde_json::json!({
            "catalogue_versions": versions,
            "key_file": sealer.path().display().to_string(),
        }),
    };
    store.rewrite_catalogues(&rewritten, &audit).await?;
    tracing::warn!(
        ?versions,
        key_file = %sealer.path().display(),
        "sealed automation header secrets stored in plain text by an earlier version; copies \
         of the database made before now still hold them"
    );
    Ok(())
}

/// Stores `catalogue` as a new version by `actor`, its header values sealed, with its audit
/// entry. The digest is of the catalogue itself (sealing differs each time).
async fn save(
    store: &Store,
    sealer: &Sealer,
    catalogue: &Catalogue,
    actor: &str,
    now: Millis,
    automations: Value,
) -> Result<StoredCatalogue, CatalogueRejection> {
    let digest = digest(&catalogue.to_yaml());
    let yaml = secrets::sealed(catalogue, sealer)?.to_yaml();
    let audit = NewAudit {
        at: now,
        actor: actor.to_owned(),
        kind: "runbooks_replaced".to_owned(),
        incident: None,
        action: None,
        service: None,
        detail: serde_json::json!({
            "digest": digest,
            "runbooks": catalogue.runbooks.iter().map(|r| &r.id).collect::<Vec<_>>(),
            "automations": automations,
        }),
    };
    Ok(store
        .save_catalogue(&yaml, &digest, actor, now, &audit)
        .await?)
}

/// Loads the fault history into the similar-incident index. A failure is logged, not fatal:
/// suggestions then lack the similar-incident votes until incidents are resolved.
async fn load_history(store: &Store, advice: &Arc<Advice>) {
    let advice = advice.clone();
    let started = std::time::Instant::now();
    let rows = match store.history_for_training(i64::from(EVIDENCE_SCHEMA)).await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::error!(%error, "cannot load the fault history for similar incidents");
            return;
        }
    };
    let count = rows.len();
    let loaded = tokio::task::spawn_blocking(move || {
        let mut unreadable = 0;
        for (row, evidence) in rows {
            match serde_json::from_str::<Evidence>(&evidence) {
                Ok(evidence) => {
                    advice.remember(past_incident(&row.facts), incident_vector(&evidence))
                }
                Err(_) => unreadable += 1,
            }
        }
        unreadable
    })
    .await;
    match loaded {
        Ok(unreadable) => tracing::info!(
            incidents = count - unreadable,
            unreadable,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "similar-incident index loaded"
        ),
        Err(error) => tracing::error!(%error, "loading the similar-incident index failed"),
    }
}
