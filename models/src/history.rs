//! Past incidents as analysts import them: JSON lines, one incident per line, each a
//! [`HistoryRecord`]. A record holds what a [`Case`] holds (alerts, change events, series
//! around the incident, the dependency graph) and the [`Outcome`]: what the cause was, and
//! what was done about it.
//!
//! Times are unix seconds; a sample's time is the end of the period it covers (see
//! [`Series`]). A value that was not observed is `null`. Unknown fields are refused, so a
//! misspelt field is an error rather than data silently left out. A full line (`topology`
//! takes the form of a topology document, as `rootcause-topology` reads and writes it):
//!
//! ```
//! use rootcause_models::history::HistoryRecord;
//!
//! let line = r#"{"id":"INC-1042","system":"shop","started_at":1700000000,"alerts":[{"service":"frontend","name":"HighLatency","signal":"latency","severity":"critical","starts_at":1700000030,"ends_at":1700000900,"labels":{"alertname":"HighLatency","service":"frontend"}}],"changes":[{"service":"checkout","kind":"deploy","at":1699999700,"description":"version 2.3.1"}],"metrics":[{"service":"checkout","name":"cpu_usage","family":"cpu","source":"metric","points":[[1699999880,0.31],[1699999940,null],[1700000000,0.97]]},{"service":"frontend","name":"latency_p99_ms","points":[[1699999880,120.0],[1699999940,118.0],[1700000000,840.0]]}],"edges":[{"caller":"frontend","callee":"checkout","name":"callee_ms","points":[[1699999940,35.0],[1700000000,410.0]]}],"normal_windows":[[1699990000,1699993600]],"candidates":["checkout","frontend"],"topology":{"services":[{"name":"checkout","kind":"service"},{"name":"frontend","kind":"gateway"}],"dependencies":[{"caller":"frontend","callee":"checkout"}]},"outcome":{"root_cause":"checkout","fault_type":"cpu","action":"rollback","worked":true,"time_to_mitigate_s":840.0}}"#;
//! let record: HistoryRecord = serde_json::from_str(line).unwrap();
//! let (case, outcome) = record.into_case(None, 2).unwrap();
//! assert_eq!(case.anchor, 1_700_000_000);
//! assert_eq!(outcome.action.as_deref(), Some("rollback"));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rootcause_topology::{Topology, TopologyDocument};
use serde::{Deserialize, Serialize};

use crate::case::{Case, CaseAlert, CaseChange, EdgeSeries, Family, Label, Series, Source};
use crate::evidence;

/// One past incident, one line of a history file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryRecord {
    /// Unique within its source (the ticket number, say).
    pub id: String,
    /// The system it happened in, for reports only.
    #[serde(default)]
    pub system: String,
    /// Unix seconds at which the incident began: the anchor that splits the normal window
    /// from the abnormal one.
    pub started_at: i64,
    /// Alerts raised around it.
    #[serde(default)]
    pub alerts: Vec<CaseAlert>,
    /// Change events (deploys, configuration changes) around it.
    #[serde(default)]
    pub changes: Vec<CaseChange>,
    /// Per-service series: metrics, and statistics of traces or logs.
    #[serde(default)]
    pub metrics: Vec<MetricWindow>,
    /// Per-call-edge series.
    #[serde(default)]
    pub edges: Vec<EdgeWindow>,
    /// Ranges `[from, to)` of sample times known to be free of faults.
    #[serde(default)]
    pub normal_windows: Vec<(i64, i64)>,
    /// The services a ranking orders; empty: derived (see [`HistoryRecord::into_case`]).
    #[serde(default)]
    pub candidates: Vec<String>,
    /// The dependency graph at the time; `None`: the importer supplies one.
    #[serde(default)]
    pub topology: Option<TopologyDocument>,
    /// What the cause was and what was done.
    pub outcome: Outcome,
}

/// A series of one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricWindow {
    /// The service observed.
    pub service: String,
    /// The name as the source gives it, unique per service and source.
    pub name: String,
    /// What it measures; `None`: classified from the name ([`Family::classify`]).
    #[serde(default)]
    pub family: Option<Family>,
    /// Where it was observed; a metric unless said otherwise.
    #[serde(default = "metric_source")]
    pub source: Source,
    /// `[unix seconds, value or null]`, times strictly increasing.
    pub points: Vec<(i64, Option<f64>)>,
}

fn metric_source() -> Source {
    Source::Metric
}

/// A series of one call edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeWindow {
    /// The calling service.
    pub caller: String,
    /// The called service.
    pub callee: String,
    /// What it measures (`calls`, `callee_ms`, `network_ms`, `errors`, see
    /// [`EdgeSeries::name`]).
    pub name: String,
    /// `[unix seconds, value or null]`, times strictly increasing.
    pub points: Vec<(i64, Option<f64>)>,
}

/// What an incident turned out to be and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// The service the fault began in.
    pub root_cause: String,
    /// The fault type in the importer's words (`cpu`, `bad_deploy`, `network_delay`, ...),
    /// mapped onto a class by [`crate::diagnosis::FaultType::from_label`].
    pub fault_type: String,
    /// The action taken to mitigate it (`restart`, `rollback`, ...).
    #[serde(default)]
    pub action: Option<String>,
    /// Whether that action mitigated it; `None`: not recorded, taken as yes.
    #[serde(default)]
    pub worked: Option<bool>,
    /// Seconds from the start of the incident to its mitigation.
    #[serde(default)]
    pub time_to_mitigate_s: Option<f64>,
}

/// Why a record cannot become a case: where in the record, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RecordError {
    /// The field, as a path (`metrics[3].points[7]`, `outcome.root_cause`).
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
}

impl RecordError {
    fn at(path: impl Into<String>, message: impl Into<String>) -> RecordError {
        RecordError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Largest unix time in seconds a record may hold (the year 5138): a larger one is almost
/// certainly in milliseconds, which would put every sample far from the anchor.
const MAX_UNIX_S: i64 = 100_000_000_000;

fn check_time(path: &str, t: i64) -> Result<(), RecordError> {
    if t <= 0 {
        Err(RecordError::at(
            path,
            format!("{t} is not a positive unix time in seconds"),
        ))
    } else if t >= MAX_UNIX_S {
        Err(RecordError::at(
            path,
            format!("{t} is not unix seconds (milliseconds?)"),
        ))
    } else {
        Ok(())
    }
}

fn check_name(path: String, name: &str) -> Result<(), RecordError> {
    if name.trim().is_empty() {
        Err(RecordError::at(path, "must not be empty"))
    } else {
        Ok(())
    }
}

/// Checks a series' points and splits them into times and values (`null` → NaN).
fn points(path: &str, points: &[(i64, Option<f64>)]) -> Result<(Vec<i64>, Vec<f64>), RecordError> {
    let mut times = Vec::with_capacity(points.len());
    let mut values = Vec::with_capacity(points.len());
    for (j, &(t, v)) in points.iter().enumerate() {
        let at = format!("{path}.points[{j}]");
        check_time(&at, t)?;
        if let Some(&previous) = times.last()
            && t <= previous
        {
            return Err(RecordError::at(
                at,
                format!("times must increase ({previous} then {t})"),
            ));
        }
        if v.is_some_and(|v| !v.is_finite()) {
            return Err(RecordError::at(at, "value must be a finite number or null"));
        }
        times.push(t);
        values.push(v.unwrap_or(f64::NAN));
    }
    Ok((times, values))
}

/// The points of a series, NaN (not observed) as `null`.
fn to_points(times: &[i64], values: &[f64]) -> Vec<(i64, Option<f64>)> {
    times
        .iter()
        .zip(values)
        .map(|(&t, &v)| (t, v.is_finite().then_some(v)))
        .collect()
}

impl HistoryRecord {
    /// The record of `case` (its label aside: `outcome` says what happened), with the case's
    /// topology as a document when it has one. Samples not observed (NaN) become `null`.
    pub fn from_case(case: &Case, outcome: Outcome) -> HistoryRecord {
        HistoryRecord {
            id: case.id.clone(),
            system: case.system.clone(),
            started_at: case.anchor,
            alerts: case.alerts.clone(),
            changes: case.changes.clone(),
            metrics: case
                .series
                .iter()
                .map(|s| MetricWindow {
                    service: s.service.clone(),
                    name: s.name.clone(),
                    family: Some(s.family),
                    source: s.source,
                    points: to_points(&s.times, &s.values),
                })
                .collect(),
            edges: case
                .edges
                .iter()
                .map(|e| EdgeWindow {
                    caller: e.caller.clone(),
                    callee: e.callee.clone(),
                    name: e.name.clone(),
                    points: to_points(&e.times, &e.values),
                })
                .collect(),
            normal_windows: case.normal_windows.clone(),
            candidates: case.candidates.clone(),
            topology: case.topology.as_ref().map(|t| t.to_document()),
            outcome,
        }
    }

    /// The case of the record, labelled from its outcome, and the outcome.
    ///
    /// The topology is the record's own, else `fallback`. The candidates are the record's list
    /// (sorted) when it gives one; otherwise, as the service derives them for a live incident,
    /// the alerting services and their callees up to `hops` away on the topology, plus every
    /// service with series. The label's action is the outcome's only when it did not fail: a
    /// label names what resolved the fault.
    ///
    /// Refused, with the path of the first problem: an empty id, root cause, fault type, name
    /// or action; times that are not positive unix seconds; series times that do not increase;
    /// non-finite values; a series given twice; an empty normal window; an invalid topology.
    pub fn into_case(
        self,
        fallback: Option<Arc<Topology>>,
        hops: usize,
    ) -> Result<(Case, Outcome), RecordError> {
        self.check_outcome()?;
        check_name("id".into(), &self.id)?;
        check_time("started_at", self.started_at)?;
        for (i, a) in self.alerts.iter().enumerate() {
            check_time(&format!("alerts[{i}].starts_at"), a.starts_at)?;
            if let Some(ends) = a.ends_at {
                check_time(&format!("alerts[{i}].ends_at"), ends)?;
            }
            if let Some(service) = &a.service {
                check_name(format!("alerts[{i}].service"), service)?;
            }
        }
        for (i, c) in self.changes.iter().enumerate() {
            check_name(format!("changes[{i}].service"), &c.service)?;
            check_time(&format!("changes[{i}].at"), c.at)?;
        }
        for (i, &(from, to)) in self.normal_windows.iter().enumerate() {
            check_time(&format!("normal_windows[{i}]"), from)?;
            check_time(&format!("normal_windows[{i}]"), to)?;
            if to <= from {
                return Err(RecordError::at(
                    format!("normal_windows[{i}]"),
                    format!("must end after it starts ({from} to {to})"),
                ));
            }
        }
        for (i, c) in self.candidates.iter().enumerate() {
            check_name(format!("candidates[{i}]"), c)?;
        }

        let mut series = Vec::with_capacity(self.metrics.len());
        let mut seen = BTreeMap::new();
        for (i, m) in self.metrics.into_iter().enumerate() {
            let path = format!("metrics[{i}]");
            check_name(format!("{path}.service"), &m.service)?;
            check_name(format!("{path}.name"), &m.name)?;
            if let Some(first) = seen.insert((m.service.clone(), m.source, m.name.clone()), i) {
                return Err(RecordError::at(
                    path,
                    format!("same service, source and name as metrics[{first}]"),
                ));
            }
            let (times, values) = points(&path, &m.points)?;
            series.push(Series {
                family: m.family.unwrap_or_else(|| Family::classify(&m.name)),
                service: m.service,
                source: m.source,
                name: m.name,
                times,
                values,
            });
        }
        let mut edges = Vec::with_capacity(self.edges.len());
        let mut seen = BTreeMap::new();
        for (i, e) in self.edges.into_iter().enumerate() {
            let path = format!("edges[{i}]");
            check_name(format!("{path}.caller"), &e.caller)?;
            check_name(format!("{path}.callee"), &e.callee)?;
            check_name(format!("{path}.name"), &e.name)?;
            let key = (e.caller.clone(), e.callee.clone(), e.name.clone());
            if let Some(first) = seen.insert(key, i) {
                return Err(RecordError::at(
                    path,
                    format!("same caller, callee and name as edges[{first}]"),
                ));
            }
            let (times, values) = points(&path, &e.points)?;
            edges.push(EdgeSeries {
                caller: e.caller,
                callee: e.callee,
                name: e.name,
                times,
                values,
            });
        }

        let topology = match self.topology {
            Some(document) => Some(Arc::new(Topology::from_document(document).map_err(
                |e| match e.problems.first() {
                    Some(p) if !p.path.is_empty() => {
                        RecordError::at(format!("topology.{}", p.path), p.message.clone())
                    }
                    Some(p) => RecordError::at("topology", p.message.clone()),
                    None => RecordError::at("topology", e.to_string()),
                },
            )?)),
            None => fallback,
        };

        let candidates: Vec<String> = if self.candidates.is_empty() {
            let alerting: Vec<String> = self
                .alerts
                .iter()
                .filter_map(|a| a.service.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let mut all: BTreeSet<String> = match &topology {
                Some(t) => evidence::candidates(t, &alerting, hops)
                    .into_iter()
                    .collect(),
                None => alerting.into_iter().collect(),
            };
            all.extend(series.iter().map(|s| s.service.clone()));
            all.into_iter().collect()
        } else {
            let listed: BTreeSet<String> = self.candidates.into_iter().collect();
            listed.into_iter().collect()
        };

        let outcome = self.outcome;
        let label = Label {
            root_cause: outcome.root_cause.clone(),
            fault_type: outcome.fault_type.clone(),
            action: outcome
                .action
                .clone()
                .filter(|_| outcome.worked != Some(false)),
        };
        let case = Case {
            id: self.id,
            system: self.system,
            anchor: self.started_at,
            candidates,
            series,
            edges,
            alerts: self.alerts,
            changes: self.changes,
            topology,
            normal_windows: self.normal_windows,
            label: Some(label),
            notes: Vec::new(),
        };
        Ok((case, outcome))
    }

    fn check_outcome(&self) -> Result<(), RecordError> {
        let o = &self.outcome;
        check_name("outcome.root_cause".into(), &o.root_cause)?;
        check_name("outcome.fault_type".into(), &o.fault_type)?;
        if let Some(action) = &o.action {
            check_name("outcome.action".into(), action)?;
        }
        if let Some(t) = o.time_to_mitigate_s
            && !(t.is_finite() && t >= 0.0)
        {
            return Err(RecordError::at(
                "outcome.time_to_mitigate_s",
                format!("{t} is not a number of seconds"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
