//! Evidence: what the data says about each candidate, as numbers a ranker combines and sentences
//! a responder reads.
//!
//! Every feature comes from a fault *mechanism*, never from a system's names: a detector looks
//! for what a kind of fault does to a service (its CPU climbs, calls into it slow down on the
//! wire, a log statement it always printed goes quiet), whatever the service or metric is
//! called. The families of [`Family`] and the series names shared by every loader (`span_count`,
//! `self_ms_mean`, `template:<LEVEL> ...`, the edge series `network_ms`, `callee_ms`, `errors`)
//! are all a detector reads.
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

pub mod graph;
mod series;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::case::{Case, Family, Source};
use crate::diagnosis::FaultType;
pub use series::robust_z;
use series::{Baseline, Direction};

/// Version of what [`extract`] computes: bump it whenever a detector, the graph context or the
/// windows change what they compute. Stored evidence of another schema cannot be trained on:
/// its numbers mean something else.
pub const EVIDENCE_SCHEMA: u32 = 1;

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

/// A per-mechanism detector. Each scores a candidate in z units (0: nothing unusual; about 3:
/// clearly unusual), and names the fault class the mechanism points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// Rise of a CPU metric (usage, throttling) over its baseline.
    CpuMetric,
    /// Rise of a memory metric.
    MemoryMetric,
    /// Change of a disk metric (space, I/O, read/write syscalls), either way.
    DiskMetric,
    /// Change of a network metric (bytes, packets, drops), either way.
    NetworkMetric,
    /// Rise of a latency metric the service reports about itself.
    LatencyMetric,
    /// Change of an error or success-rate metric, either way.
    ErrorMetric,
    /// Change of a request-rate metric, either way.
    TrafficMetric,
    /// Rise of the mean self time of the service's spans (duration minus direct children):
    /// time lost inside the service itself, as CPU starvation or slow code cause.
    SpanSelfTime,
    /// Rise of the service's span duration percentiles.
    SpanDuration,
    /// Rise of spans that logged an error.
    SpanErrors,
    /// Rise of the time between callers' spans and this service's spans on calls *into* it
    /// (`network_ms` of inbound edges): delay on the wire or in queues before the service.
    InboundCallDelay,
    /// The same on calls the service makes (`network_ms` of outbound edges).
    OutboundCallDelay,
    /// The lower quartile over all the service's edges, in and out, of that delay's rise: a delay
    /// injected at a service's network interface slows every edge it has, while a neighbour's
    /// delay slows only the one edge they share.
    AllEdgesDelay,
    /// Rise of the duration of this service's spans as its callers see them (`callee_ms`).
    InboundCallDuration,
    /// Rise of failed calls into the service.
    InboundCallErrors,
    /// Rise of error, warning or exception log lines.
    LogErrors,
    /// ERROR or WARN log templates the baseline never shows: a new failure path.
    NewErrorTemplates,
    /// Log templates the baseline shows steadily that go missing, while the service is called
    /// as often as before (expected counts scale with its span or log rate): a code path that
    /// now ends early, as an exception does.
    MissingTemplates,
    /// Firing alerts on the service (count, critical weighted double).
    Alerts,
    /// A change event (deploy, configuration) on the service shortly before the anchor.
    RecentChange,
}

impl Detector {
    /// Every detector, in feature order.
    pub const ALL: [Detector; 20] = [
        Detector::CpuMetric,
        Detector::MemoryMetric,
        Detector::DiskMetric,
        Detector::NetworkMetric,
        Detector::LatencyMetric,
        Detector::ErrorMetric,
        Detector::TrafficMetric,
        Detector::SpanSelfTime,
        Detector::SpanDuration,
        Detector::SpanErrors,
        Detector::InboundCallDelay,
        Detector::OutboundCallDelay,
        Detector::AllEdgesDelay,
        Detector::InboundCallDuration,
        Detector::InboundCallErrors,
        Detector::LogErrors,
        Detector::NewErrorTemplates,
        Detector::MissingTemplates,
        Detector::Alerts,
        Detector::RecentChange,
    ];

    /// Number of detectors.
    pub const COUNT: usize = Detector::ALL.len();

    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Detector::CpuMetric => "cpu_metric",
            Detector::MemoryMetric => "memory_metric",
            Detector::DiskMetric => "disk_metric",
            Detector::NetworkMetric => "network_metric",
            Detector::LatencyMetric => "latency_metric",
            Detector::ErrorMetric => "error_metric",
            Detector::TrafficMetric => "traffic_metric",
            Detector::SpanSelfTime => "span_self_time",
            Detector::SpanDuration => "span_duration",
            Detector::SpanErrors => "span_errors",
            Detector::InboundCallDelay => "inbound_call_delay",
            Detector::OutboundCallDelay => "outbound_call_delay",
            Detector::AllEdgesDelay => "all_edges_delay",
            Detector::InboundCallDuration => "inbound_call_duration",
            Detector::InboundCallErrors => "inbound_call_errors",
            Detector::LogErrors => "log_errors",
            Detector::NewErrorTemplates => "new_error_templates",
            Detector::MissingTemplates => "missing_templates",
            Detector::Alerts => "alerts",
            Detector::RecentChange => "recent_change",
        }
    }

    /// The fault class this mechanism points to.
    pub fn fault_type(self) -> FaultType {
        match self {
            Detector::CpuMetric | Detector::SpanSelfTime => FaultType::Cpu,
            Detector::MemoryMetric => FaultType::Memory,
            Detector::DiskMetric => FaultType::Disk,
            Detector::NetworkMetric
            | Detector::InboundCallDelay
            | Detector::OutboundCallDelay
            | Detector::AllEdgesDelay
            | Detector::LatencyMetric
            | Detector::SpanDuration
            | Detector::InboundCallDuration => FaultType::Network,
            Detector::ErrorMetric
            | Detector::TrafficMetric
            | Detector::SpanErrors
            | Detector::InboundCallErrors
            | Detector::LogErrors
            | Detector::NewErrorTemplates
            | Detector::MissingTemplates
            | Detector::Alerts => FaultType::Code,
            Detector::RecentChange => FaultType::Deploy,
        }
    }

    /// Whether the detector is a direct sign of a fault mechanism *in* the service, rather than
    /// a symptom that spreads to callers (latency and errors do; CPU, a delay on every edge, a
    /// new log template or a change mostly do not). The cold-start scorer trusts these more.
    pub fn is_local(self) -> bool {
        matches!(
            self,
            Detector::CpuMetric
                | Detector::MemoryMetric
                | Detector::DiskMetric
                | Detector::NetworkMetric
                | Detector::SpanSelfTime
                | Detector::AllEdgesDelay
                | Detector::NewErrorTemplates
                | Detector::MissingTemplates
                | Detector::RecentChange
        )
    }
}

/// Why a detector scored what it did: the series or edge and the values compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The detector.
    pub detector: Detector,
    /// Its score.
    pub z: f64,
    /// A sentence a responder can check against the data.
    pub sentence: String,
}

/// A candidate's place in the incident's graph.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphContext {
    /// Personalized PageRank on the reversed anomaly subgraph, scaled so the case's top
    /// candidate has 1.
    pub pagerank: f64,
    /// Fraction of its callers (among the candidates) that are anomalous; 0 without callers.
    pub anomalous_callers: f64,
    /// Fraction of its callees that are anomalous; 0 without callees.
    pub anomalous_callees: f64,
    /// Whether an anomalous callee is at least as anomalous as the service itself.
    pub callee_more_anomalous: bool,
    /// Number of services that call it, as `ln(1 + n)`.
    pub fan_in: f64,
    /// Whether it has alerts in the incident.
    pub alerting: bool,
    /// Minutes between the incident's first alert and this service's first, 0 for the first;
    /// `None` when it did not alert.
    pub alert_delay_min: Option<f64>,
}

/// Everything [`extract`] found about one candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateEvidence {
    /// The candidate.
    pub service: String,
    /// One score per [`Detector::ALL`], ≥ 0.
    pub scores: [f64; Detector::COUNT],
    /// Its graph context.
    pub graph: GraphContext,
    /// The findings behind its non-zero scores, strongest first.
    pub findings: Vec<Finding>,
}

impl CandidateEvidence {
    /// The score of one detector.
    pub fn score(&self, detector: Detector) -> f64 {
        self.scores[detector as usize]
    }

    /// The strongest detector and its score, if any scored above 0.
    pub fn strongest(&self) -> Option<(Detector, f64)> {
        Detector::ALL
            .iter()
            .map(|&d| (d, self.score(d)))
            .filter(|(_, z)| *z > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The strongest score over all detectors (0 when nothing is unusual).
    pub fn anomaly(&self) -> f64 {
        self.strongest().map_or(0.0, |(_, z)| z)
    }
}

/// The evidence of a whole case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// One entry per candidate, in the case's candidate order.
    pub candidates: Vec<CandidateEvidence>,
    /// Calls among the candidates and which are symptomatic (anomalous or alerting), from which
    /// [`Evidence::paths`] are traced on demand: a responder reads the paths of the top few
    /// hypotheses, and tracing them for a thousand candidates would cost more than ranking.
    #[serde(skip)]
    pub graph: graph::PathIndex,
}

impl Evidence {
    /// The evidence without its findings and path index: stored history keeps only what
    /// training reads (scores and graph context), not the sentences written for a responder.
    pub fn without_findings(mut self) -> Evidence {
        for c in &mut self.candidates {
            c.findings = Vec::new();
        }
        self.graph = graph::PathIndex::default();
        self
    }

    /// Propagation paths of candidate `i`: from it through its callers to alerting or anomalous
    /// services, cause first, the shortest few.
    pub fn paths(&self, i: usize) -> Vec<Vec<String>> {
        self.graph
            .paths_from(i)
            .into_iter()
            .map(|p| {
                p.into_iter()
                    .map(|j| self.candidates[j].service.clone())
                    .collect()
            })
            .collect()
    }
}

/// Highest z any detector reports: beyond it, more deviation says nothing more, and a
/// baseline with no spread must not produce infinities.
pub const MAX_Z: f64 = 1.0e6;

/// Computes the evidence of every candidate of `case`.
pub fn extract(case: &Case, settings: &Settings) -> Evidence {
    let windows = Windows::of(case, settings);
    let index: HashMap<&str, usize> = case
        .candidates
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
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

    series_detectors(case, &windows, &mut note);
    edge_detectors(case, &windows, &mut note);
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

/// The baseline and abnormal sample-time ranges of a case.
struct Windows {
    normal: Vec<(i64, i64)>,
    recent: (i64, i64),
    abnormal: (i64, i64),
}

impl Windows {
    fn of(case: &Case, settings: &Settings) -> Windows {
        Windows {
            normal: case.normal_windows.clone(),
            recent: (
                case.anchor - settings.lead_s - settings.baseline_s,
                case.anchor - settings.lead_s,
            ),
            abnormal: (
                case.anchor - settings.lead_s,
                case.anchor + settings.after_s,
            ),
        }
    }

    fn is_baseline(&self, t: i64) -> bool {
        let inside = |(from, to): (i64, i64)| t >= from && t < to;
        self.normal.iter().any(|&w| inside(w)) || inside(self.recent)
    }

    /// The finite samples whose time lies in a normal window or the recent window, each once
    /// even where the windows overlap.
    fn baseline(&self, times: &[i64], values: &[f64]) -> Vec<f64> {
        times
            .iter()
            .zip(values)
            .filter(|(t, v)| v.is_finite() && self.is_baseline(**t))
            .map(|(_, v)| *v)
            .collect()
    }

    fn abnormal<'a>(&self, times: &[i64], values: &'a [f64]) -> (&'a [f64], usize) {
        let a = times.partition_point(|&t| t < self.abnormal.0);
        let b = times.partition_point(|&t| t < self.abnormal.1);
        if a < b { (&values[a..b], a) } else { (&[], a) }
    }
}

/// Per-service series detectors: resource metrics, span statistics, log statistics, templates.
fn series_detectors(
    case: &Case,
    windows: &Windows,
    note: &mut impl FnMut(&str, Detector, f64, String),
) {
    // Traffic of each service per abnormal sample time, to scale expected template counts.
    let mut traffic: BTreeMap<&str, (&crate::case::Series, u8)> = BTreeMap::new();
    for s in &case.series {
        let rank = match (s.source, s.name.as_str()) {
            (Source::Trace, "span_count") => 2,
            (Source::Log, "log_lines") => 1,
            _ => continue,
        };
        let slot = traffic.entry(s.service.as_str()).or_insert((s, rank));
        if rank > slot.1 {
            *slot = (s, rank);
        }
    }

    let typical = typical_peaks(case, windows);
    for s in &case.series {
        let baseline = windows.baseline(&s.times, &s.values);
        let (abnormal, _) = windows.abnormal(&s.times, &s.values);
        if abnormal.is_empty() {
            continue;
        }
        let counts = matches!(s.source, Source::Trace | Source::Log)
            && matches!(
                s.family,
                Family::Traffic | Family::Errors | Family::Template
            );
        let floor = if s.source == Source::Metric {
            METRIC_FLOOR * typical.get(s.name.as_str()).copied().unwrap_or(0.0)
        } else {
            timing_floor(&s.name)
        };
        let base = Baseline::with_floor(&baseline, counts, floor);
        let (detector, direction) = match (s.source, s.family) {
            (Source::Log, Family::Template) => {
                template_detectors(s, &base, windows, &traffic, note);
                continue;
            }
            (Source::Metric, Family::Cpu) => (Detector::CpuMetric, Direction::Up),
            (Source::Metric, Family::Memory) => (Detector::MemoryMetric, Direction::Up),
            (Source::Metric, Family::Disk) => (Detector::DiskMetric, Direction::Both),
            (Source::Metric, Family::Network) => (Detector::NetworkMetric, Direction::Both),
            (Source::Metric, Family::Latency) => (Detector::LatencyMetric, Direction::Up),
            (Source::Metric, Family::Errors) => (Detector::ErrorMetric, Direction::Both),
            (Source::Metric, Family::Traffic) => (Detector::TrafficMetric, Direction::Both),
            (Source::Trace, Family::Latency) if s.name.starts_with("self") => {
                (Detector::SpanSelfTime, Direction::Up)
            }
            (Source::Trace, Family::Latency) => (Detector::SpanDuration, Direction::Up),
            (Source::Trace, Family::Errors) => (Detector::SpanErrors, Direction::Up),
            (Source::Log, Family::Errors) => (Detector::LogErrors, Direction::Up),
            _ => continue,
        };
        if let Some((z, value)) = base.z(abnormal, direction) {
            note(
                &s.service,
                detector,
                z,
                format!(
                    "{} {} {} to {} (baseline median {}, z {:.1})",
                    source_word(s.source),
                    s.name,
                    if value >= base.median { "rose" } else { "fell" },
                    fmt_value(value),
                    fmt_value(base.median),
                    z.min(MAX_Z)
                ),
            );
        }
    }
}

/// A template's series: a new ERROR/WARN template, or an expected one gone missing.
fn template_detectors(
    s: &crate::case::Series,
    base: &Baseline,
    windows: &Windows,
    traffic: &BTreeMap<&str, (&crate::case::Series, u8)>,
    note: &mut impl FnMut(&str, Detector, f64, String),
) {
    let key = s.name.strip_prefix("template:").unwrap_or(&s.name);
    let level = key.split_whitespace().next().unwrap_or("");
    let failure_level = matches!(level, "ERROR" | "WARN" | "FATAL");
    let (abnormal, offset) = windows.abnormal(&s.times, &s.values);
    let observed: f64 = abnormal.iter().filter(|v| v.is_finite()).sum();

    if failure_level && (base.count == 0 || base.max <= 0.0) {
        if observed > 0.0 {
            // A template never seen before: its count in Poisson z against a floor of one line.
            let z = observed.sqrt() * 2.0;
            note(
                &s.service,
                Detector::NewErrorTemplates,
                z,
                format!("new log template `{key}`: {observed:.0} lines, none in the baseline"),
            );
        }
        return;
    }
    if failure_level || base.count == 0 || base.median < 1.0 {
        return;
    }
    // Lines per unit of traffic (span or log-line rate) of the service at a sample time: a
    // quiet service prints less of everything, a called-but-failing one stops one statement.
    let busy = traffic.get(s.service.as_str()).map(|(t, _)| *t);
    let traffic_at = |time: i64| -> Option<f64> {
        match busy {
            None => Some(1.0),
            Some(t) => t
                .times
                .binary_search(&time)
                .ok()
                .map(|j| t.values[j])
                .filter(|v| v.is_finite() && *v > 0.0),
        }
    };
    let rates = |range: std::ops::Range<usize>| -> Vec<(f64, f64)> {
        range
            .filter(|&i| s.values[i].is_finite())
            .filter_map(|i| traffic_at(s.times[i]).map(|t| (s.values[i], t)))
            .collect()
    };
    let reference: Vec<f64> = (0..s.times.len())
        .filter(|&i| windows.is_baseline(s.times[i]))
        .flat_map(|i| rates(i..i + 1))
        .map(|(count, t)| count / t)
        .collect();
    let samples = rates(offset..offset + abnormal.len());
    // A statement that stops running stops from some minute on. For every split k, the rate
    // before it (baseline and the window's first k samples) predicts the lines after it, so
    // the minutes before the fault neither dilute the gap nor are missing from the baseline.
    let mut best: Option<(f64, f64, f64)> = None;
    for k in 0..samples.len() {
        let mut before: Vec<f64> = reference.clone();
        before.extend(samples[..k].iter().map(|(count, t)| count / t));
        before.sort_by(f64::total_cmp);
        if before.is_empty() {
            continue;
        }
        let rate = crate::stats::quantile(&before, 0.5);
        let expected: f64 = samples[k..].iter().map(|(_, t)| rate * t).sum();
        let seen: f64 = samples[k..].iter().map(|(count, _)| count).sum();
        // A template printed less than once a minute says nothing by its absence.
        if expected < (samples.len() - k) as f64 || seen >= expected {
            continue;
        }
        // Counts vary by more than Poisson noise (load shifts): the spread is at least 20 % of
        // the expected count, so a busy template dipping by a third says little, while a
        // steady one vanishing says up to z 5.
        let z = (expected - seen) / (expected + 1.0).sqrt().max(0.2 * expected);
        if best.is_none_or(|b| z > b.0) {
            best = Some((z, seen, expected));
        }
    }
    if let Some((z, seen, expected)) = best {
        note(
            &s.service,
            Detector::MissingTemplates,
            z,
            format!(
                "log template `{key}` went quiet: {seen:.0} lines where {expected:.0} were expected from its usual rate"
            ),
        );
    }
}

/// Edge detectors: delay on the wire in and out, callee duration and errors as callers see them.
fn edge_detectors(
    case: &Case,
    windows: &Windows,
    note: &mut impl FnMut(&str, Detector, f64, String),
) {
    let mut delays: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for e in &case.edges {
        let baseline = windows.baseline(&e.times, &e.values);
        let (abnormal, _) = windows.abnormal(&e.times, &e.values);
        if abnormal.is_empty() {
            continue;
        }
        let counts = e.name == "errors" || e.name == "calls";
        let base = Baseline::with_floor(&baseline, counts, timing_floor(&e.name));
        let Some((z, value)) = base.z(abnormal, Direction::Up) else {
            continue;
        };
        let sentence = |what: &str| {
            format!(
                "{what} on calls {} → {} rose to {} (baseline {}, z {:.1})",
                e.caller,
                e.callee,
                fmt_value(value),
                fmt_value(base.median),
                z.min(MAX_Z)
            )
        };
        match e.name.as_str() {
            "network_ms" => {
                note(
                    &e.callee,
                    Detector::InboundCallDelay,
                    z,
                    sentence("delay (ms)"),
                );
                note(
                    &e.caller,
                    Detector::OutboundCallDelay,
                    z,
                    sentence("delay (ms)"),
                );
                delays.entry(&e.callee).or_default().push(z);
                delays.entry(&e.caller).or_default().push(z);
            }
            "callee_ms" => note(
                &e.callee,
                Detector::InboundCallDuration,
                z,
                sentence("duration (ms)"),
            ),
            "errors" => note(
                &e.callee,
                Detector::InboundCallErrors,
                z,
                sentence("failed calls"),
            ),
            _ => {}
        }
    }
    for (service, mut zs) in delays {
        zs.sort_by(f64::total_cmp);
        // A low quantile, so one slow edge shared with the true cause does not count: the
        // service must be slow on (nearly) all of them.
        let low = crate::stats::quantile(&zs, 0.25);
        note(
            service,
            Detector::AllEdgesDelay,
            low,
            format!(
                "calls on {} of its edges slowed on the wire (lower-quartile z {:.1})",
                zs.len(),
                low
            ),
        );
    }
}

/// Alerts on a candidate, and change events on it shortly before the anchor.
fn alert_and_change_detectors(
    case: &Case,
    settings: &Settings,
    note: &mut impl FnMut(&str, Detector, f64, String),
) {
    let mut per_service: BTreeMap<&str, (f64, Vec<&str>)> = BTreeMap::new();
    for a in &case.alerts {
        let Some(service) = a.service.as_deref() else {
            continue;
        };
        let weight = if a.severity.eq_ignore_ascii_case("critical") {
            2.0
        } else {
            1.0
        };
        let slot = per_service.entry(service).or_default();
        slot.0 += weight;
        slot.1.push(&a.name);
        // An alert is a threshold detector someone set on one signal: it is also evidence on
        // the mechanism it watches (a CPU alert on the CPU detector), so the fault type follows
        // the alerts when no metric window was sent.
        if let Some(detector) = signal_detector(&a.signal) {
            note(
                service,
                detector,
                weight * 1.5,
                format!("alert {} ({} signal, {})", a.name, a.signal, a.severity),
            );
        }
    }
    for (service, (weight, mut names)) in per_service {
        names.sort_unstable();
        names.dedup();
        // A warning alert counts 1.5 z units and a critical one 3, so one critical alert (or
        // two warnings) reads as "clearly anomalous".
        note(
            service,
            Detector::Alerts,
            weight * 1.5,
            format!("alerting: {}", names.join(", ")),
        );
    }
    // A change can cause the incident only if it came first: one made after the incident
    // began (up to the lead allowed for clock lag) is more likely the response (a rollback, a
    // scale-out) and is no evidence against the service.
    let window = (
        case.anchor - settings.baseline_s,
        case.anchor + settings.lead_s,
    );
    for change in &case.changes {
        if change.at < window.0 || change.at >= window.1 {
            continue;
        }
        // A change just before the anchor is the classic bad deploy; older ones fade over the
        // baseline window.
        let age = (case.anchor - change.at).max(0) as f64;
        let z = 6.0 * (-age / (settings.baseline_s as f64 / 3.0)).exp();
        let minutes = (case.anchor - change.at) as f64 / 60.0;
        note(
            &change.service,
            Detector::RecentChange,
            z,
            format!(
                "{} {:.0} min {} the incident{}",
                change.kind,
                minutes.abs(),
                if minutes >= 0.0 { "before" } else { "after" },
                if change.description.is_empty() {
                    String::new()
                } else {
                    format!(": {}", change.description)
                }
            ),
        );
    }
}

/// Fraction of a metric's typical peak (see [`typical_peaks`]) below which its changes are
/// noise.
pub const METRIC_FLOOR: f64 = 0.01;

/// Per metric name, the median over services of the largest magnitude the metric reaches
/// around the incident: what the metric typically measures in this system. A service whose
/// metric sits at 0 in its baseline (an idle pod's CPU) has no spread to measure a change in,
/// so its spread is floored at [`METRIC_FLOOR`] of that: an idle pod moving to 0.05 % CPU is
/// not an anomaly in a system whose pods run at 30 %, whatever its own baseline says.
fn typical_peaks<'a>(case: &'a Case, windows: &Windows) -> BTreeMap<&'a str, f64> {
    let mut peaks: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for s in case.series.iter().filter(|s| s.source == Source::Metric) {
        let baseline = windows.baseline(&s.times, &s.values);
        let (abnormal, _) = windows.abnormal(&s.times, &s.values);
        let peak = baseline
            .iter()
            .chain(abnormal)
            .filter(|v| v.is_finite())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        peaks.entry(&s.name).or_default().push(peak);
    }
    peaks
        .into_iter()
        .map(|(name, mut v)| {
            v.sort_by(f64::total_cmp);
            (name, crate::stats::quantile(&v, 0.5))
        })
        .collect()
}

/// Timings below a millisecond are scheduler and clock noise, not a signal: the spread of a
/// series measured in milliseconds (named `*_ms`, as span statistics and edge series are) is
/// at least 1 ms.
fn timing_floor(name: &str) -> f64 {
    if name.ends_with("_ms") { 1.0 } else { 0.0 }
}

/// The detector whose mechanism an alert's signal class (as the correlation engine names it)
/// watches; `None` for classes that name no mechanism (`saturation`, `availability`, `custom`).
fn signal_detector(signal: &str) -> Option<Detector> {
    Some(match signal {
        "cpu" => Detector::CpuMetric,
        "memory" => Detector::MemoryMetric,
        "disk" => Detector::DiskMetric,
        "network" => Detector::NetworkMetric,
        "latency" => Detector::LatencyMetric,
        "errors" => Detector::ErrorMetric,
        "traffic" => Detector::TrafficMetric,
        _ => return None,
    })
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
