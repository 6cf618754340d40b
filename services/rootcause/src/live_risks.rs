//! The estate's risks, kept current: fault history and changes read from the store every
//! `risk.refresh_secs` and right after a resolution or a history import, analysed off the async
//! workers ([`crate::risk::history`]), the per-service scores exported to `/metrics`. Holds the
//! business calendar too, so that everything asking about risk asks one place.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rootcause_topology::Topology;

use crate::config::{CalendarConfig, RiskConfig};
use crate::live_topology::LiveTopology;
use crate::risk::calendar::Calendar;
use crate::risk::history::{self, ChangeRecord, DAY_MS, Fault};
use crate::risk::overview::HistorySnapshot;
use crate::risk::priority::{Priority, priority};
use crate::risk::score::{ServiceRisk, service_scores};
use crate::store::{ChangeFilter, Store, StoreError};
use crate::telemetry::names;

/// Risk settings, the calendar and the latest reading of history.
#[derive(Debug)]
pub struct LiveRisks {
    settings: RiskConfig,
    calendar: Calendar,
    history: ArcSwap<HistorySnapshot>,
    /// One reading at a time: a slower one must not replace a newer one.
    reading: tokio::sync::Mutex<()>,
    /// Services whose score `/metrics` shows, so that one leaving the top is set to zero.
    exported: Mutex<BTreeSet<String>>,
}

impl LiveRisks {
    /// Risks under `settings` with the business calendar of `calendar`; history unread.
    pub fn new(settings: RiskConfig, calendar: CalendarConfig) -> LiveRisks {
        LiveRisks {
            settings,
            calendar: Calendar::new(calendar),
            history: ArcSwap::from_pointee(HistorySnapshot::default()),
            reading: tokio::sync::Mutex::new(()),
            exported: Mutex::new(BTreeSet::new()),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &RiskConfig {
        &self.settings
    }

    /// The business calendar.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// The latest reading of history.
    pub fn history(&self) -> Arc<HistorySnapshot> {
        self.history.load_full()
    }

    /// The priority of an incident on `services` that was open over `[from, to]` (ms): raised
    /// by the business calendar's windows open then that concern one of its services.
    pub fn priority(
        &self,
        services: &[String],
        topology: &Topology,
        from: i64,
        to: i64,
    ) -> Priority {
        priority(
            services,
            topology,
            &self.calendar.between(from, to.max(from) + 1),
        )
    }

    /// Reads history and changes of the look-back before `now` (ms), analyses them and exports
    /// the scores.
    #[tracing::instrument(name = "risk_refresh", skip_all)]
    pub async fn refresh(
        &self,
        store: &Store,
        topology: &LiveTopology,
        now: i64,
    ) -> Result<(), StoreError> {
        let _one_at_a_time = self.reading.lock().await;
        let since = now - i64::from(self.settings.lookback_days) * DAY_MS;
        let facts = store
            .history_since(since.div_euclid(1000), self.settings.max_records)
            .await?;
        let changes = store
            .list_changes(&ChangeFilter {
                service: None,
                since: Some(since),
                until: Some(now),
                limit: i64::from(self.settings.max_records),
            })
            .await?;
        let faults: Vec<Fault> = facts
            .into_iter()
            .filter(|f| !matches!(f.root_cause.as_str(), "external" | "unknown"))
            .map(|f| Fault {
                service: f.root_cause,
                fault_type: f.fault_type,
                at: f.started_at * 1000,
                action: f.action,
                worked: f.worked,
            })
            .collect();
        let changes: Vec<ChangeRecord> = changes
            .into_iter()
            .map(|c| ChangeRecord {
                service: c.mapped.unwrap_or(c.service),
                at: c.at,
            })
            .collect();
        let settings = self.settings.clone();
        let current = topology.current();
        let (analysis, scores) = tokio::task::spawn_blocking(move || {
            let analysis = history::analyse(&faults, &changes, now, &settings);
            let scores = service_scores(current.structural_risks(), &analysis);
            (analysis, scores)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("analysing fault history failed: {e}")))?;
        tracing::debug!(
            faults = analysis.faults,
            changes = analysis.changes,
            risks = analysis.risks.len(),
            "fault history read"
        );
        self.history.store(Arc::new(HistorySnapshot {
            computed_at: Some(now),
            analysis,
        }));
        self.export(&scores);
        Ok(())
    }

    fn export(&self, scores: &[ServiceRisk]) {
        let shown: BTreeSet<String> = scores
            .iter()
            .take(self.settings.metrics_services)
            .map(|r| r.service.clone())
            .collect();
        let mut exported = self.exported.lock().unwrap_or_else(|e| e.into_inner());
        for gone in exported.difference(&shown) {
            metrics::gauge!(names::SERVICE_RISK_SCORE, "service" => gone.clone()).set(0.0);
        }
        for risk in scores.iter().take(self.settings.metrics_services) {
            metrics::gauge!(names::SERVICE_RISK_SCORE, "service" => risk.service.clone())
                .set(risk.score);
        }
        exported.extend(shown);
    }
}
