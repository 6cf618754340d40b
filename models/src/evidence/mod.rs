//! Evidence: what the data says about each candidate, as numbers a ranker combines and sentences
//! a responder reads.
//!
//! Every feature comes from a fault *mechanism*, never from a system's names: a detector looks
//! for what a kind of fault does to a service (its CPU climbs, calls into it slow down on the
//! wire, a log statement it always printed goes quiet), whatever the service or metric is
//! called. The families of [`Family`](crate::case::Family) and the series names shared by every
//! loader (`span_count`, `self_ms_mean`, `template:<LEVEL> ...`, the edge series `network_ms`,
//! `callee_ms`, `errors`) are all a detector reads.
//!
//! [`extract`] computes, per candidate:
//! - one score per [`Detector`]: a robust z (deviation from a baseline in baseline spreads,
//!   see [`robust_z`]) or a count-based z, 0 when the data has nothing to say;
//! - graph context ([`GraphContext`]): personalized PageRank on the reversed anomaly subgraph
//!   (see [`graph`]), the fraction of its callers and callees that are anomalous, its fan-in,
//!   whether and how early it alerted;
//! - findings behind the strongest scores, which become the hypothesis' evidence sentences.
//!
//! **Baseline.** The samples in the case's `normal_windows` (known fault-free minutes) plus the
//! samples in `[anchor − baseline_s, anchor − lead_s)`. **Abnormal window**: samples in
//! `[anchor − lead_s, anchor + after_s)`: symptoms may show a minute before the recorded anchor
//! (an alert's or an injection's clock lags the fault).
//!
//! One job per file: `types` (detectors, findings, the evidence of a case), `windows` (where the
//! baseline and abnormal samples lie), `moderation` (spreads borrowed across series of a kind),
//! the detectors of `per_series` series, log `templates`, call `edges` and `events` (alerts and
//! changes), and [`graph`] for the graph context; [`extract`] here ties them together.

mod edges;
mod events;
pub mod graph;
mod moderation;
mod per_series;
mod series;
mod standout;
mod templates;
mod types;
mod windows;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::case::{Case, Source};
use edges::edge_detectors;
use events::alert_and_change_detectors;
pub use moderation::MODERATION_WEIGHT;
use moderation::Moderation;
use per_series::series_detectors;
pub use per_series::{FULL_COVERAGE, METRIC_FLOOR};
pub use series::robust_z;
pub use standout::{MIN_SPREAD, standout, strength};
pub use types::{CandidateEvidence, Detector, Evidence, Finding, GraphContext, Origin};
use windows::Windows;

/// Version of what [`extract`] computes: bump it whenever a detector, the graph context or the
/// windows change what they compute. Stored evidence of another schema cannot be trained on:
/// its numbers mean something else.
pub const EVIDENCE_SCHEMA: u32 = 7;

/// Where the windows lie and how far candidates reach.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Seconds before the anchor that may already show the fault.
    pub lead_s: i64,
    /// Seconds after the anchor that are read as the incident.
    pub after_s: i64,
    /// Seconds of recent history before the lead used as baseline (with the normal windows).
    pub baseline_s: i64,
    /// A service whose strongest detector reaches this z counts as anomalous for the graph
    /// context.
    pub anomalous_z: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lead_s: 60,
            after_s: 300,
            baseline_s: 1800,
            anomalous_z: 3.0,
        }
    }
}

/// Highest z any detector reports: beyond it, more deviation says nothing more, and a
/// baseline with no spread must not produce infinities.
pub const MAX_Z: f64 = 1.0e6;

/// Computes the evidence of every candidate of `case`.
pub fn extract(case: &Case, settings: &Settings) -> Evidence {
    let windows = Windows::of(case, settings);
    let index = candidate_index(case);
    let mut found: Vec<Vec<Finding>> = vec![Vec::new(); case.candidates.len()];
    let mut note = |service: &str, detector: Detector, z: f64, sentence: String| {
        if let Some(&i) = index.get(service)
            && z > 0.0
        {
            found[i].push(Finding {
                detector,
                z: z.min(MAX_Z),
                sentence,
            });
        }
    };

    let moderation = Moderation::of(case, &windows);
    let own_latency = series_detectors(case, &windows, &moderation, &mut note);
    edge_detectors(
        case,
        &windows,
        settings.anomalous_z,
        &own_latency,
        &moderation,
        &mut note,
    );
    alert_and_change_detectors(case, settings, &mut note);

    let mut candidates: Vec<CandidateEvidence> = case
        .candidates
        .iter()
        .zip(found)
        .map(|(service, mut findings)| {
            let mut scores = [0.0f64; Detector::COUNT];
            for f in &findings {
                let slot = &mut scores[f.detector as usize];
                *slot = slot.max(f.z);
            }
            findings.sort_by(|a, b| b.z.total_cmp(&a.z));
            // Keep the best finding per detector: the sentences say why each score is what it is.
            let mut seen = [false; Detector::COUNT];
            findings.retain(|f| !std::mem::replace(&mut seen[f.detector as usize], true));
            CandidateEvidence {
                service: service.clone(),
                scores,
                graph: GraphContext::default(),
                findings,
            }
        })
        .collect();

    let first_alert = case
        .alerts
        .iter()
        .filter(|a| a.service.as_deref().is_some_and(|s| index.contains_key(s)))
        .map(|a| a.starts_at)
        .min();
    let mut first_by_service: HashMap<&str, i64> = HashMap::new();
    for alert in &case.alerts {
        if let Some(service) = alert.service.as_deref() {
            let t = first_by_service.entry(service).or_insert(alert.starts_at);
            *t = (*t).min(alert.starts_at);
        }
    }
    for c in &mut candidates {
        if let (Some(&t), Some(first)) = (first_by_service.get(c.service.as_str()), first_alert) {
            c.graph.alerting = true;
            c.graph.alert_delay_min = Some((t - first) as f64 / 60.0);
        }
    }

    let graph = graph::contextualise(case, &mut candidates, settings.anomalous_z);
    Evidence { candidates, graph }
}

/// The candidates of an incident whose alerting services are `alerting`: those services plus
/// their callees up to `hops` away, which may be the silent cause (a database raises no alert
/// of its own when its callers time out). Sorted by name.
pub fn candidates(
    topology: &rootcause_topology::Topology,
    alerting: &[String],
    hops: usize,
) -> Vec<String> {
    let mut out: std::collections::BTreeSet<String> = alerting.iter().cloned().collect();
    for service in alerting {
        if let Ok(reach) = topology.callees(service, hops) {
            out.extend(reach.into_iter().map(|r| r.service.to_string()));
        }
    }
    out.into_iter().collect()
}

/// Each of `case`'s candidates by name, to its position in the candidate list (and in the
/// evidence).
fn candidate_index(case: &Case) -> HashMap<&str, usize> {
    case.candidates
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect()
}

/// Timings below a millisecond are scheduler and clock noise, not a signal: the spread of a
/// series measured in milliseconds (named `*_ms`, as span statistics and edge series are) is
/// at least 1 ms.
fn timing_floor(name: &str) -> f64 {
    let unit_ms = name.ends_with("_ms")
        || name
            .rsplit_once("_ms_p")
            .is_some_and(|(_, q)| q.bytes().all(|b| b.is_ascii_digit()));
    if unit_ms { 1.0 } else { 0.0 }
}

fn source_word(source: Source) -> &'static str {
    match source {
        Source::Metric => "metric",
        Source::Trace => "span statistic",
        Source::Log => "log statistic",
    }
}

fn fmt_value(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests;
