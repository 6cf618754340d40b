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
mod standout;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::case::{Case, Family, Source};
use crate::diagnosis::FaultType;
pub use series::robust_z;
use series::{Baseline, Direction};
pub use standout::{MIN_SPREAD, standout};

/// Version of what [`extract`] computes: bump it whenever a detector, the graph context or the
/// windows change what they compute. Stored evidence of another schema cannot be trained on:
/// its numbers mean something else.
pub const EVIDENCE_SCHEMA: u32 = 2;

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
    /// Rise of a latency metric the service reports about itself (server side).
    LatencyMetric,
    /// Rise of a client-side latency metric: the time the service waits for what it calls, a
    /// symptom of its dependencies rather than of the service itself.
    ClientLatency,
    /// Change of an error or success-rate metric, either way.
    ErrorMetric,
    /// Change of a request-rate metric, either way.
    TrafficMetric,
    /// Change, either way, of a metric whose name names no known mechanism: the many metrics a
    /// deployment exports that no classifier has seen still say that something changed.
    OtherMetric,
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
    pub const ALL: [Detector; 22] = [
        Detector::CpuMetric,
        Detector::MemoryMetric,
        Detector::DiskMetric,
        Detector::NetworkMetric,
        Detector::LatencyMetric,
        Detector::ClientLatency,
        Detector::ErrorMetric,
        Detector::TrafficMetric,
        Detector::OtherMetric,
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
            Detector::ClientLatency => "client_latency",
            Detector::ErrorMetric => "error_metric",
            Detector::TrafficMetric => "traffic_metric",
            Detector::OtherMetric => "other_metric",
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
            | Detector::ClientLatency
            | Detector::SpanDuration
            | Detector::InboundCallDuration => FaultType::Network,
            Detector::ErrorMetric
            | Detector::TrafficMetric
            | Detector::OtherMetric
            | Detector::SpanErrors
            | Detector::InboundCallErrors
            | Detector::LogErrors
            | Detector::NewErrorTemplates
            | Detector::MissingTemplates
            | Detector::Alerts => FaultType::Code,
            Detector::RecentChange => FaultType::Deploy,
        }
    }

    /// Where the detector's evidence comes from: a root cause usually shows in several kinds of
    /// telemetry at once, noise in one.
    pub fn origin(self) -> Origin {
        match self {
            Detector::CpuMetric
            | Detector::MemoryMetric
            | Detector::DiskMetric
            | Detector::NetworkMetric
            | Detector::LatencyMetric
            | Detector::ClientLatency
            | Detector::ErrorMetric
            | Detector::TrafficMetric
            | Detector::OtherMetric => Origin::Metrics,
            Detector::SpanSelfTime
            | Detector::SpanDuration
            | Detector::SpanErrors
            | Detector::InboundCallDelay
            | Detector::OutboundCallDelay
            | Detector::AllEdgesDelay
            | Detector::InboundCallDuration
            | Detector::InboundCallErrors => Origin::Calls,
            Detector::LogErrors | Detector::NewErrorTemplates | Detector::MissingTemplates => {
                Origin::Logs
            }
            Detector::Alerts => Origin::Alerts,
            Detector::RecentChange => Origin::Changes,
        }
    }

    /// Whether the detector points *below* the service rather than at it: a client-side
    /// latency is the time the service waits for what it calls, so it rises when a dependency
    /// is slow, whatever the service itself does.
    pub fn points_downstream(self) -> bool {
        matches!(self, Detector::ClientLatency)
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

/// A kind of telemetry evidence comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// Metrics (resource, latency, error and traffic series).
    Metrics,
    /// Spans and calls between services (trace statistics, call-edge series).
    Calls,
    /// Log lines and templates.
    Logs,
    /// Alerts.
    Alerts,
    /// Change events.
    Changes,
}

impl Origin {
    /// Number of origins.
    pub const COUNT: usize = 5;
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
    /// A candidate with these scores, no graph context and no findings: the rankers' unit tests.
    #[cfg(test)]
    pub(crate) fn scored(service: impl Into<String>, scores: [f64; Detector::COUNT]) -> Self {
        CandidateEvidence {
            service: service.into(),
            scores,
            graph: GraphContext::default(),
            findings: Vec::new(),
        }
    }

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

/// The baseline and abnormal sample-time ranges of a case.
///
/// Normally the baseline is the case's known-normal windows and the recent past before the
/// lead. A case with no sample there at all (a system that keeps no history, or data cut at
/// the incident) is judged by change inside what it has: per series, the samples before the
/// anchor are the baseline and those from it on the incident; a series that starts at the
/// anchor or later compares its first third with the rest (a fault ramps up, so its earliest
/// samples are the least disturbed).
#[derive(Debug, Clone)]
struct Windows {
    normal: Vec<(i64, i64)>,
    recent: (i64, i64),
    abnormal: (i64, i64),
    /// No sample of the case lies in the baseline: judge change within each series.
    without_history: bool,
    anchor: i64,
}

impl Windows {
    fn of(case: &Case, settings: &Settings) -> Windows {
        let mut windows = Windows {
            normal: case.normal_windows.clone(),
            recent: (
                case.anchor - settings.lead_s - settings.baseline_s,
                case.anchor - settings.lead_s,
            ),
            abnormal: (
                case.anchor - settings.lead_s,
                case.anchor + settings.after_s,
            ),
            without_history: false,
            anchor: case.anchor,
        };
        let has = |times: &[i64], values: &[f64]| {
            times
                .iter()
                .zip(values)
                .any(|(&t, v)| v.is_finite() && windows.is_baseline(t))
        };
        windows.without_history = !case.series.iter().any(|s| has(&s.times, &s.values))
            && !case.edges.iter().any(|e| has(&e.times, &e.values));
        windows
    }

    /// The windows of one series with sample times `times`: the case's, or in a case without
    /// history, the series' own split (see [`Windows`]).
    fn series(&self, times: &[i64]) -> std::borrow::Cow<'_, Windows> {
        if !self.without_history {
            return std::borrow::Cow::Borrowed(self);
        }
        let before = times.partition_point(|&t| t < self.anchor);
        let cut = if before > 0 {
            self.anchor
        } else {
            let within = times.partition_point(|&t| t < self.abnormal.1);
            let first = within.div_ceil(3).max(1);
            times.get(first).copied().unwrap_or(i64::MAX)
        };
        std::borrow::Cow::Owned(Windows {
            normal: Vec::new(),
            recent: (i64::MIN, cut),
            abnormal: (cut, self.abnormal.1),
            without_history: true,
            anchor: self.anchor,
        })
    }

    fn is_baseline(&self, t: i64) -> bool {
        let inside = |(from, to): (i64, i64)| t >= from && t < to;
        self.normal.iter().any(|&w| inside(w)) || inside(self.recent)
    }

    /// The finite samples whose time lies in a normal window or the recent window, each once
    /// even where the windows overlap.
    fn baseline(&self, times: &[i64], values: &[f64]) -> Vec<f64> {
        let w = self.series(times);
        times
            .iter()
            .zip(values)
            .filter(|(t, v)| v.is_finite() && w.is_baseline(**t))
            .map(|(_, v)| *v)
            .collect()
    }

    /// The series' values in the baseline, in time order, `NaN` kept: runs of consecutive
    /// samples for [`Baseline::history_z`].
    fn history(&self, times: &[i64], values: &[f64]) -> Vec<f64> {
        let w = self.series(times);
        times
            .iter()
            .zip(values)
            .filter(|(t, _)| w.is_baseline(**t))
            .map(|(_, v)| *v)
            .collect()
    }

    fn abnormal<'a>(&self, times: &[i64], values: &'a [f64]) -> (&'a [f64], usize) {
        let w = self.series(times);
        let a = times.partition_point(|&t| t < w.abnormal.0);
        let b = times.partition_point(|&t| t < w.abnormal.1);
        if a < b { (&values[a..b], a) } else { (&[], a) }
    }
}

/// Spreads borrowed across series of one kind, for series whose own history is too short to
/// estimate one (trace statistics with one reference minute, a metric that starts at the
/// incident, a component observed in a few samples).
///
/// Most series of a kind (one metric name, one span statistic, one edge measure) are not
/// affected by an incident, so the spread of their relative changes from baseline to incident,
/// `r = ln((x + ε) / (median + ε))`, estimates how much a series of that kind moves by itself:
/// `ρ = 1.4826 · MAD(r)`. A series' baseline is then moderated toward the spread `ρ · |median|`
/// with the weight of [`MODERATION_WEIGHT`] samples (as moderated statistics borrow variance
/// across genes). With a long history the series' own spread decides.
struct Moderation {
    /// ρ per kind of series.
    relative: HashMap<String, f64>,
}

/// How many samples' worth of weight the borrowed spread has against a series' own.
pub const MODERATION_WEIGHT: f64 = 4.0;
/// Series a kind needs for its own ρ; below that, the source's pooled ρ is used.
const MODERATION_MIN_SERIES: usize = 4;
/// ρ when nothing can be pooled: a quarter of the level.
const DEFAULT_RELATIVE_SPREAD: f64 = 0.25;

impl Moderation {
    fn of(case: &Case, windows: &Windows) -> Moderation {
        let mut by_kind: HashMap<String, Vec<f64>> = HashMap::new();
        let mut by_source: HashMap<&'static str, Vec<f64>> = HashMap::new();
        let mut add = |kind: String, source: &'static str, times: &[i64], values: &[f64]| {
            let mut baseline = windows.baseline(times, values);
            if baseline.is_empty() {
                return;
            }
            baseline.sort_by(f64::total_cmp);
            let median = crate::stats::quantile(&baseline, 0.5);
            let (abnormal, _) = windows.abnormal(times, values);
            let Some(x) = Baseline::sustained(abnormal) else {
                return;
            };
            let level = median.abs().max(x.abs());
            if level <= 0.0 {
                return;
            }
            let eps = 0.01 * level;
            let r = ((x.abs() + eps) / (median.abs() + eps)).ln();
            by_kind.entry(kind).or_default().push(r);
            by_source.entry(source).or_default().push(r);
        };
        for s in &case.series {
            if is_count_series(s) || s.family == Family::Template {
                continue;
            }
            add(series_kind(s), source_word(s.source), &s.times, &s.values);
        }
        for e in &case.edges {
            if let Some(kind) = moderated_edge_kind(&e.name) {
                add(kind.to_owned(), "edge", &e.times, &e.values)
            }
        }
        let dispersion = |rs: &mut Vec<f64>| -> f64 {
            rs.sort_by(f64::total_cmp);
            let m = crate::stats::quantile(rs, 0.5);
            let mut dev: Vec<f64> = rs.iter().map(|r| (r - m).abs()).collect();
            dev.sort_by(f64::total_cmp);
            (1.4826 * crate::stats::quantile(&dev, 0.5)).max(0.05)
        };
        let pooled: HashMap<&str, f64> = by_source
            .iter_mut()
            .filter(|(_, rs)| rs.len() >= MODERATION_MIN_SERIES)
            .map(|(source, rs)| (*source, dispersion(rs)))
            .collect();
        let mut relative = HashMap::new();
        for (kind, mut rs) in by_kind {
            let rho = if rs.len() >= MODERATION_MIN_SERIES {
                dispersion(&mut rs)
            } else {
                let source = kind.split(' ').next().unwrap_or("");
                pooled
                    .get(source)
                    .copied()
                    .unwrap_or(DEFAULT_RELATIVE_SPREAD)
            };
            relative.insert(kind, rho);
        }
        Moderation { relative }
    }

    /// `base` moderated toward the spread its kind shows.
    fn apply(&self, kind: &str, base: Baseline) -> Baseline {
        match self.relative.get(kind) {
            Some(rho) => base.moderated(rho * base.median.abs(), MODERATION_WEIGHT),
            None => base,
        }
    }
}

/// What kind of series this is, for [`Moderation`]: its source and its name without a label
/// part (`cpu_millicores{pod="a-1"}` and `cpu_millicores{pod="b-2"}` are one kind).
fn series_kind(s: &crate::case::Series) -> String {
    let name = s.name.split('{').next().unwrap_or(&s.name);
    format!("{} {name}", source_word(s.source))
}

/// Whether a series counts events per period (span, error, log-line counts), whose noise is
/// Poisson rather than estimated.
fn is_count_series(s: &crate::case::Series) -> bool {
    matches!(s.source, Source::Trace | Source::Log)
        && matches!(
            s.family,
            Family::Traffic | Family::Errors | Family::Template
        )
}

/// Per-service series detectors: resource metrics, span statistics, log statistics, templates.
/// Returns, per service, the strongest deviation of its own (server-side) latency, metric or
/// span duration, for the edge detectors to tell a slow callee from a slow wire.
fn series_detectors<'a>(
    case: &'a Case,
    windows: &Windows,
    moderation: &Moderation,
    note: &mut impl FnMut(&str, Detector, f64, String),
) -> HashMap<&'a str, f64> {
    let mut own_latency: HashMap<&str, f64> = HashMap::new();
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
        let counts = is_count_series(s);
        let floor = if s.source == Source::Metric {
            METRIC_FLOOR * typical.get(s.name.as_str()).copied().unwrap_or(0.0)
        } else {
            timing_floor(&s.name)
        };
        let kind = series_kind(s);
        let mut base = Baseline::with_floor(&baseline, counts, floor);
        if !counts && s.family != Family::Template {
            base = moderation.apply(&kind, base);
        }
        let (detector, direction) = match (s.source, s.family) {
            (Source::Log, Family::Template) => {
                template_detectors(s, &base, windows, &traffic, note);
                continue;
            }
            (Source::Metric, Family::Cpu) => (Detector::CpuMetric, Direction::Up),
            (Source::Metric, Family::Memory) => (Detector::MemoryMetric, Direction::Up),
            (Source::Metric, Family::Disk) => (Detector::DiskMetric, Direction::Both),
            (Source::Metric, Family::Network) => (Detector::NetworkMetric, Direction::Both),
            (Source::Metric, Family::Latency) if is_client_side(&s.name) => {
                (Detector::ClientLatency, Direction::Up)
            }
            (Source::Metric, Family::Latency) => (Detector::LatencyMetric, Direction::Up),
            (Source::Metric, Family::Errors) => (Detector::ErrorMetric, Direction::Both),
            (Source::Metric, Family::Traffic) => (Detector::TrafficMetric, Direction::Both),
            (Source::Metric, Family::Other) => (Detector::OtherMetric, Direction::Both),
            (Source::Trace, Family::Latency) if s.name.starts_with("self") => {
                (Detector::SpanSelfTime, Direction::Up)
            }
            (Source::Trace, Family::Latency) => (Detector::SpanDuration, Direction::Up),
            (Source::Trace, Family::Errors) => (Detector::SpanErrors, Direction::Up),
            (Source::Log, Family::Errors) => (Detector::LogErrors, Direction::Up),
            _ => continue,
        };
        if let Some((z, value)) = base.z(abnormal, direction) {
            let width = abnormal.iter().filter(|v| v.is_finite()).count();
            let history = windows.history(&s.times, &s.values);
            let usual = base.history_z(&history, width, direction);
            let z = thinned((z - usual).max(0.0), coverage(&history, abnormal));
            if matches!(detector, Detector::LatencyMetric | Detector::SpanDuration) {
                // Against the service's own baseline only: the floor a metric gets from the
                // rest of the system (see `typical_peaks`) compares services with each other,
                // while this compares the service's latency with the calls into it.
                let own_base = moderation.apply(
                    &kind,
                    Baseline::with_floor(&baseline, false, timing_floor(&s.name)),
                );
                let own_z = own_base.z(abnormal, direction).map_or(0.0, |(z, _)| z);
                let own = own_latency.entry(s.service.as_str()).or_insert(0.0);
                *own = own.max(own_z);
            }
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
    own_latency
}

/// Relative variance of template counts beyond Poisson noise: a count varies by at least 20 %
/// of its level.
const TEMPLATE_OVERDISPERSION: f64 = 0.04;

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
    let own = windows.series(&s.times);
    let (abnormal, offset) = own.abnormal(&s.times, &s.values);
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
        .filter(|&i| own.is_baseline(s.times[i]))
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
        // The drop as a log ratio, in units of its noise: Poisson's `1/√n` in log terms, and
        // since counts vary by more than Poisson noise (load shifts) at least 20 % of the
        // level. A busy template dipping by a third says little; a steady one vanishing says
        // more the more lines it used to print (25 expected → 0: z 11.6; 100 → 0: z 20.6),
        // and clearly more than the same template thinning out (100 → 20: z 7).
        let z = ((expected + 1.0) / (seen + 1.0)).ln()
            / (1.0 / (expected + 1.0) + TEMPLATE_OVERDISPERSION).sqrt();
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
///
/// A delay on the wire between two services is the fault of one of them, and the evidence says
/// which: a delay injected at a service's network interface slows *every* call in and out of
/// it, while each of its neighbours has just the one slow edge it shares with it. So each slow
/// edge is credited to the endpoint that better explains it (see [`explainer`]), and a service
/// whose slow edges are all explained by a neighbour gets no delay evidence from them.
fn edge_detectors(
    case: &Case,
    windows: &Windows,
    anomalous_z: f64,
    own_latency: &HashMap<&str, f64>,
    moderation: &Moderation,
    note: &mut impl FnMut(&str, Detector, f64, String),
) {
    // Per call edge, the strongest delay over its series (quantiles), with its sentence.
    let mut delays: BTreeMap<(&str, &str), (f64, String)> = BTreeMap::new();
    // Per call edge, the strongest rise of its duration as the caller sees it; and the edges
    // that carry a measured delay at all.
    let mut durations: BTreeMap<(&str, &str), (f64, String)> = BTreeMap::new();
    let mut measured: std::collections::BTreeSet<(&str, &str)> = Default::default();
    for e in &case.edges {
        if edge_kind(&e.name) == Some("network_ms") {
            measured.insert((e.caller.as_str(), e.callee.as_str()));
        }
    }
    for e in &case.edges {
        let baseline = windows.baseline(&e.times, &e.values);
        let (abnormal, _) = windows.abnormal(&e.times, &e.values);
        if abnormal.is_empty() {
            continue;
        }
        let kind = edge_kind(&e.name);
        let counts = matches!(kind, Some("errors" | "calls"));
        let mut base = Baseline::with_floor(&baseline, counts, timing_floor(&e.name));
        if let Some(moderated) = moderated_edge_kind(&e.name) {
            base = moderation.apply(moderated, base);
        }
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
        match kind {
            Some("network_ms") => {
                let slot = delays
                    .entry((e.caller.as_str(), e.callee.as_str()))
                    .or_insert((f64::NEG_INFINITY, String::new()));
                if z > slot.0 {
                    *slot = (z, sentence("delay (ms)"));
                }
            }
            Some("callee_ms") => {
                note(
                    &e.callee,
                    Detector::InboundCallDuration,
                    z,
                    sentence("duration (ms)"),
                );
                let slot = durations
                    .entry((e.caller.as_str(), e.callee.as_str()))
                    .or_insert((f64::NEG_INFINITY, String::new()));
                if z > slot.0 {
                    *slot = (z, sentence("duration (ms)"));
                }
            }
            Some("errors") => note(
                &e.callee,
                Detector::InboundCallErrors,
                z,
                sentence("failed calls"),
            ),
            _ => {}
        }
    }

    // Where no delay is measured (metrics from a service mesh rather than spans), a call that
    // became more unusual than the callee's own latency did was slowed between the two: each
    // deviation in its own baseline's spreads, the call's beyond the callee's own, `z_call −
    // z_own`, counts as a delay.
    for (&(caller, callee), (z_call, sentence)) in &durations {
        if measured.contains(&(caller, callee)) || *z_call <= 0.0 {
            continue;
        }
        let own = own_latency.get(callee).copied().unwrap_or(0.0);
        let z = (z_call - own).max(0.0);
        if z > 0.0 {
            delays.insert(
                (caller, callee),
                (
                    z,
                    format!("{sentence}, while {callee}'s own latency deviated z {own:.1}"),
                ),
            );
        }
    }

    // Every edge observed in the window (with delay or duration data), slow or not.
    let mut observed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut pairs: std::collections::BTreeSet<(&str, &str)> = measured.clone();
    pairs.extend(durations.keys().copied());
    for &(caller, callee) in &pairs {
        *observed.entry(caller).or_default() += 1;
        *observed.entry(callee).or_default() += 1;
    }
    let mut delays_of: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (&(caller, callee), &(z, _)) in &delays {
        delays_of.entry(caller).or_default().push(z);
        delays_of.entry(callee).or_default().push(z);
    }
    let endpoint = |service: &str, z: f64| -> Endpoint {
        // The edge itself is among the service's delays; its other slow edges are those at
        // least a tenth as slow (and anomalous at all).
        let slow_enough = anomalous_z.max(0.1 * z);
        let slow = delays_of
            .get(service)
            .map_or(0, |zs| zs.iter().filter(|&&x| x >= slow_enough).count());
        Endpoint {
            others_slow: slow.saturating_sub(1),
            edges: observed.get(service).copied().unwrap_or(1).max(1),
        }
    };
    let mut credited: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (&(caller, callee), (z, sentence)) in &delays {
        let (to_caller, to_callee) = explainer(endpoint(caller, *z), endpoint(callee, *z));
        if to_callee {
            note(callee, Detector::InboundCallDelay, *z, sentence.clone());
        }
        if to_caller {
            note(caller, Detector::OutboundCallDelay, *z, sentence.clone());
        }
        credited
            .entry(callee)
            .or_default()
            .push(if to_callee { *z } else { 0.0 });
        credited
            .entry(caller)
            .or_default()
            .push(if to_caller { *z } else { 0.0 });
    }
    for (service, mut zs) in credited {
        // Edges observed without any delay count as not slow.
        zs.resize(
            zs.len().max(observed.get(service).copied().unwrap_or(0)),
            0.0,
        );

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

/// One end of a slow call edge, as [`explainer`] weighs it.
#[derive(Debug, Clone, Copy)]
struct Endpoint {
    /// Its other edges that are slow too (at least a tenth as slow as this one).
    others_slow: usize,
    /// Its edges observed in the window.
    edges: usize,
}

/// Which endpoints of a slow edge are credited with its delay: the one whose other edges are
/// slow too (a delay at a service's network interface slows every call in and out of it, while
/// each neighbour has just the one slow edge it shares with it); failing that, the one for which
/// the edge is the larger share of its edges (a leaf behind a busy caller); both when they are
/// alike.
fn explainer(caller: Endpoint, callee: Endpoint) -> (bool, bool) {
    match caller.others_slow.cmp(&callee.others_slow) {
        std::cmp::Ordering::Greater => (true, false),
        std::cmp::Ordering::Less => (false, true),
        std::cmp::Ordering::Equal => {
            let share = |e: Endpoint| (e.others_slow + 1) as f64 / e.edges as f64;
            let (a, b) = (share(caller), share(callee));
            if a > b + 1e-9 {
                (true, false)
            } else if b > a + 1e-9 {
                (false, true)
            } else {
                (true, true)
            }
        }
    }
}

/// The [`Moderation`] kind of an edge series whose spread is borrowed across edges (timings).
fn moderated_edge_kind(name: &str) -> Option<&'static str> {
    match edge_kind(name)? {
        "network_ms" => Some("edge network_ms"),
        "callee_ms" => Some("edge callee_ms"),
        _ => None,
    }
}

/// What an edge series measures: its name, or the name before a quantile suffix
/// (`callee_ms_p90` is a `callee_ms`): `None` for names no detector reads.
fn edge_kind(name: &str) -> Option<&'static str> {
    ["network_ms", "callee_ms", "errors", "calls"]
        .into_iter()
        .find(|kind| {
            name == *kind
                || name
                    .strip_prefix(kind)
                    .and_then(|rest| rest.strip_prefix("_p"))
                    .is_some_and(|q| !q.is_empty() && q.bytes().all(|b| b.is_ascii_digit()))
        })
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
    let unit_ms = name.ends_with("_ms")
        || name
            .rsplit_once("_ms_p")
            .is_some_and(|(_, q)| q.bytes().all(|b| b.is_ascii_digit()));
    if unit_ms { 1.0 } else { 0.0 }
}

/// The share of a series' samples (baseline and incident) that hold a value: a low-traffic
/// component reports a latency or a rate in a minority of scrapes.
fn coverage(history: &[f64], abnormal: &[f64]) -> f64 {
    let total = history.len() + abnormal.len();
    if total == 0 {
        return 0.0;
    }
    let finite = history
        .iter()
        .chain(abnormal)
        .filter(|v| v.is_finite())
        .count();
    finite as f64 / total as f64
}

/// Share of samples from which a series counts in full: below it, its deviation is thinned.
pub const FULL_COVERAGE: f64 = 0.5;

/// A deviation `z` of a series observed in `coverage` of its samples, weighed by how much of it
/// there is: in log terms, `ln(1 + z)` scales with `min(1, coverage / FULL_COVERAGE)`, so a
/// component seen in a quarter of the scrapes counts half as much as a well-observed one
/// however far its few samples jumped.
fn thinned(z: f64, coverage: f64) -> f64 {
    let weight = (coverage / FULL_COVERAGE).clamp(0.0, 1.0);
    if weight >= 1.0 {
        z
    } else {
        (1.0 + z).powf(weight) - 1.0
    }
}

/// Whether a latency metric measures calls the service makes (client side) rather than calls it
/// serves: its name says `client`, `outbound`, `upstream` or `downstream`.
fn is_client_side(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["client", "outbound", "upstream", "downstream"]
        .iter()
        .any(|w| name.contains(w))
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
