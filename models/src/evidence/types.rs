//! The evidence types: the detectors and the kinds of telemetry they read, a detector's
//! findings, a candidate's graph context and scores, and the evidence of a whole case.

use serde::{Deserialize, Serialize};

use super::graph;
use crate::diagnosis::FaultType;

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
    /// (`network_ms` of inbound edges): delay on the wire or in queues before the service. Where
    /// nothing measures the wire (a mesh's call durations), the share of a call's rise the
    /// service's own latency at that quantile does not explain.
    InboundCallDelay,
    /// The same on calls the service makes (`network_ms` of outbound edges).
    OutboundCallDelay,
    /// The lower quartile over all the service's edges, in and out, of that delay's rise: a delay
    /// injected at a service's network interface slows every edge it has, while a neighbour's
    /// delay slows only the one edge they share. A service with one edge has none: its other end
    /// shares it.
    AllEdgesDelay,
    /// Rise of the duration of this service's spans as its callers see them (`callee_ms`); of
    /// a mesh's call durations, which include the wire, the share its own latency explains.
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
    /// Whether an anomalous callee is at least as anomalous as the service itself (and failing,
    /// when the service's strongest anomaly is a statement that stopped), or, when the service's
    /// own trouble is latency or failures a callee could cause, a callee's calls are answered at
    /// least as much worse as the service's own: it is then a symptom.
    pub callee_more_anomalous: bool,
    /// Number of services that call it, as `ln(1 + n)`.
    pub fan_in: f64,
    /// Whether it has alerts in the incident.
    pub alerting: bool,
    /// Minutes between the incident's first alert and this service's first, 0 for the first;
    /// `None` when it did not alert.
    pub alert_delay_min: Option<f64>,
}

/// Everything [`extract`](super::extract) found about one candidate.
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

    /// The strongest detector of the service's own behaviour and its score, if any scored above
    /// 0: a client-side latency is what the service waits for, an anomaly of its dependencies
    /// (see [`Detector::points_downstream`]), not of the service.
    pub fn strongest(&self) -> Option<(Detector, f64)> {
        Detector::ALL
            .iter()
            .filter(|d| !d.points_downstream())
            .map(|&d| (d, self.score(d)))
            .filter(|(_, z)| *z > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The score of [`CandidateEvidence::strongest`] (0 when nothing is unusual).
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
