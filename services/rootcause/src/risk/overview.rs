//! Everything known about the estate's risks at one moment, as `GET /api/v1/risks` and
//! `rootcause risks` show it (pure): structural and historical risks in one list, per-service
//! scores, the critical windows open and what the next one exposes.

use std::collections::BTreeMap;

use rootcause_topology::risks::StructuralRisk;
use serde::Serialize;
use utoipa::ToSchema;

use super::calendar::{Calendar, Occurrence};
use super::history::HistoryAnalysis;
use super::score::{Exposure, ServiceRisk, exposure, service_scores};

/// Score from which a service counts as exposed in the next window (medium and above).
pub const EXPOSED_FROM: f64 = 0.25;
/// Services named per window at most.
const EXPOSED_LISTED: usize = 10;

/// The fault history as last read.
#[derive(Debug, Default)]
pub struct HistorySnapshot {
    /// When it was read (ms); `None` before the first reading.
    pub computed_at: Option<i64>,
    /// What it says.
    pub analysis: HistoryAnalysis,
}

/// One risk, structural or historical.
#[derive(Debug, Serialize, ToSchema)]
pub struct RiskItem {
    /// `structure` (the topology) or `history` (faults, actions and changes).
    pub source: &'static str,
    /// `single_point_of_failure`, `single_replica`, `blast_radius`, `dependency_cycle`,
    /// `fan_in_hot_spot`, `rising_fault_rate`, `recurring_root_cause`, `failing_action` or
    /// `risky_changes`.
    pub kind: String,
    /// 0 to 1.
    pub score: f64,
    /// `low`, `medium`, `high` or `critical`, from the score.
    pub severity: String,
    /// The service at risk first, then those it affects or shares the risk with.
    pub services: Vec<String>,
    /// Why, in one sentence.
    pub why: String,
    /// The figures behind a historical risk (p-value, counts, rates).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub figures: BTreeMap<String, f64>,
}

/// The risks of the estate.
#[derive(Debug, Serialize, ToSchema)]
pub struct RiskOverview {
    /// The topology version the structural risks were read from.
    pub topology_version: i64,
    /// When the fault history was last read (RFC 3339); null before the first reading.
    pub history_read_at: Option<String>,
    /// Faults and changes that reading covered (`risk.lookback_days`).
    pub faults: usize,
    /// Change events it covered.
    pub changes: usize,
    /// The estate's change failure rate over the look-back; null without changes.
    pub change_failure_rate: Option<f64>,
    /// Every risk, highest score first.
    pub items: Vec<RiskItem>,
    /// Services by risk score with its parts, highest first.
    pub services: Vec<ServiceRisk>,
    /// Critical windows of the business calendar open at `at`.
    pub open_windows: Vec<Occurrence>,
    /// The next window to open after `at`, and the services at risk in it; null without a
    /// calendar.
    pub next_window: Option<Exposure>,
}

/// The overview as of `at` (ms): `structural` risks of topology version `topology_version`,
/// `history` as last read, the `calendar`; at most `limit` per-service scores.
pub fn overview(
    topology_version: i64,
    structural: &[StructuralRisk],
    history: &HistorySnapshot,
    calendar: &Calendar,
    at: i64,
    limit: usize,
) -> RiskOverview {
    let mut scores = service_scores(structural, &history.analysis);
    let next_window = calendar
        .next_after(at)
        .map(|window| exposure(&window, &scores, EXPOSED_FROM, EXPOSED_LISTED));
    scores.truncate(limit);
    let mut items: Vec<RiskItem> = structural
        .iter()
        .map(|r| RiskItem {
            source: "structure",
            kind: serde_name(&r.kind),
            score: r.score,
            severity: serde_name(&r.severity),
            services: r.services.clone(),
            why: r.why.clone(),
            figures: BTreeMap::new(),
        })
        .chain(history.analysis.risks.iter().map(|r| RiskItem {
            source: "history",
            kind: serde_name(&r.kind),
            score: r.score,
            severity: serde_name(&r.severity),
            services: r.services.clone(),
            why: r.why.clone(),
            figures: r.figures.clone(),
        }))
        .collect();
    // Stable: ties keep structural risks first, each list in its own order.
    items.sort_by(|a, b| b.score.total_cmp(&a.score));
    RiskOverview {
        topology_version,
        history_read_at: history.computed_at.map(rfc3339),
        faults: history.analysis.faults,
        changes: history.analysis.changes,
        change_failure_rate: history.analysis.change_failure_rate,
        items,
        services: scores,
        open_windows: calendar.active_at(at),
        next_window,
    }
}

fn rfc3339(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A unit enum's serde name (`single_point_of_failure`, `critical`).
pub fn serde_name(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
