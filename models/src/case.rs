//! What a ranker sees of one incident: the time series observed around it (resource metrics,
//! trace and log statistics per service and per call edge), its alerts and change events, the
//! dependency graph, the candidate services, and the label when the true cause is known.
//!
//! Every data source fills the same [`Case`]: the public-dataset loaders and the simulator in
//! `rootcause-datasets`, and the service from an incident. Rankers therefore never know where a
//! case came from, and nothing dataset-specific reaches a model.

use std::collections::BTreeMap;
use std::sync::Arc;

use rootcause_topology::Topology;
use serde::{Deserialize, Serialize};

/// One incident to rank.
#[derive(Debug, Clone, Default)]
pub struct Case {
    /// Stable identifier: `<date>#<nn>` for Nezha, the path relative to the dataset root for
    /// RCAEval and simulated cases.
    pub id: String,
    /// The system the case comes from (`train-ticket`, `online-boutique`, ...), for reports only.
    pub system: String,
    /// Unix seconds at which the fault was injected (or the incident began): the anchor that
    /// splits the normal window from the abnormal one.
    pub anchor: i64,
    /// Services a ranking must order, sorted by name. The true cause is one of them whenever the
    /// data allows it; a ranker must give every candidate a score.
    pub candidates: Vec<String>,
    /// Per-service time series.
    pub series: Vec<Series>,
    /// Per-call-edge time series (`caller → callee`), learned from traces.
    pub edges: Vec<EdgeSeries>,
    /// Alerts raised around the incident.
    pub alerts: Vec<CaseAlert>,
    /// Change events (deploys, configuration changes) around the incident.
    pub changes: Vec<CaseChange>,
    /// The dependency graph the case ran on, given or learned from traces. Shared, because
    /// every case of a dataset usually runs on the same one.
    pub topology: Option<Arc<Topology>>,
    /// Time ranges `[from, to)` of sample times (see [`Series`]) known to be free of faults (a
    /// dataset's reference minutes):
    /// a better baseline than the minutes just before the anchor, which an earlier fault may
    /// still disturb. Empty when the source gives none.
    pub normal_windows: Vec<(i64, i64)>,
    /// The true cause, when known.
    pub label: Option<Label>,
    /// Problems met while loading (missing minutes, rejected rows), reported rather than fatal.
    pub notes: Vec<String>,
}

impl Case {
    /// The series of one service, in load order.
    pub fn series_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Series> + 'a {
        self.series.iter().filter(move |s| s.service == service)
    }
}

/// The known answer of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// The service where the fault was injected.
    pub root_cause: String,
    /// The fault type as the dataset names it (`cpu_contention`, `delay`, `memory`, ...).
    pub fault_type: String,
    /// The action that resolved the fault, when the data records one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// Where a series was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A resource or application metric (CPU, memory, latency, request rate, ...).
    Metric,
    /// A statistic of the service's spans (span count, duration percentiles, error spans).
    Trace,
    /// A statistic of the service's log lines (counts by level, template counts).
    Log,
}

/// What a series measures, so features can be built per fault mechanism without knowing any
/// dataset's metric names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Processor use or throttling.
    Cpu,
    /// Memory use.
    Memory,
    /// Disk space or disk I/O (including read/write syscalls).
    Disk,
    /// Bytes or packets on the network, drops, retransmits.
    Network,
    /// Response time or span duration.
    Latency,
    /// Failed requests, error spans, error or warning log lines.
    Errors,
    /// Request, span or log-line rate.
    Traffic,
    /// Count of one log template (key in the series name).
    Template,
    /// Anything else.
    Other,
}

impl Family {
    /// Classifies a metric by its name, most specific resource first, case-insensitively:
    /// `cpu`, `mem`, `disk`/`fs`/`io`/`syscall`, `latency`/`duration`/`p9x`, `error`/`fail`,
    /// `net`/`receive`/`transmit`/`bytes`, `workload`/`rate`/`count`/`qps`/`ops`.
    pub fn classify(name: &str) -> Family {
        let name = name.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| name.contains(w));
        if has(&["cpu"]) {
            Family::Cpu
        } else if has(&["mem", "rss", "heap", "oom"]) {
            Family::Memory
        } else if has(&[
            "disk",
            "fs_",
            "filesystem",
            "syscall",
            "_io",
            "iops",
            "inode",
        ]) {
            Family::Disk
        } else if has(&[
            "latency",
            "duration",
            "response_time",
            "p50",
            "p90",
            "p95",
            "p99",
        ]) {
            Family::Latency
        } else if has(&["error", "fail", "5xx", "exception", "success"]) {
            Family::Errors
        } else if has(&[
            "net", "receive", "transmit", "bytes", "packet", "drop", "retrans", "socket", "tcp",
        ]) {
            Family::Network
        } else if has(&[
            "workload",
            "rate",
            "count",
            "qps",
            "rps",
            "ops",
            "requests",
            "throughput",
        ]) {
            Family::Traffic
        } else {
            Family::Other
        }
    }
}

/// A time series of one service. Samples are usually regular (a metric every 60 s, trace
/// statistics per minute) but need not be: a known-normal reference minute may lie far from the
/// incident's minutes.
///
/// **A sample's time is the end of the period it covers**: a metric scraped at `t` covers the
/// step before `t`, and a statistic of the minute `[m, m + 60)` is stamped `m + 60`. So every
/// sample stamped before the anchor describes only time before it, and the minute in which a
/// fault begins counts as abnormal.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The service observed.
    pub service: String,
    /// Where it was observed.
    pub source: Source,
    /// What it measures.
    pub family: Family,
    /// The name as the source gives it (`CpuUsageRate(%)`, `latency_p99_ms`,
    /// `template:INFO t.s.TravelServiceImpl#372`), unique per service and source.
    pub name: String,
    /// Unix seconds of each sample, strictly increasing.
    pub times: Vec<i64>,
    /// Samples, one per time; `NaN` where nothing was observed.
    pub values: Vec<f64>,
}

impl Series {
    /// The samples whose time lies in `[from, to)`.
    pub fn window(&self, from: i64, to: i64) -> &[f64] {
        window(&self.times, &self.values, from, to)
    }
}

/// A time series of one call edge.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeSeries {
    /// The calling service.
    pub caller: String,
    /// The called service.
    pub callee: String,
    /// What it measures: `calls` (count per sample period), `callee_ms` (mean duration of the
    /// callee's span), `network_ms` (mean of the caller's span duration minus the callee's: time
    /// spent between the two, on the network or in queues), `errors` (failed calls per period).
    pub name: String,
    /// Unix seconds of each sample, strictly increasing.
    pub times: Vec<i64>,
    /// Samples; `NaN` where nothing was observed.
    pub values: Vec<f64>,
}

impl EdgeSeries {
    /// The samples whose time lies in `[from, to)`.
    pub fn window(&self, from: i64, to: i64) -> &[f64] {
        window(&self.times, &self.values, from, to)
    }
}

fn window<'a>(times: &[i64], values: &'a [f64], from: i64, to: i64) -> &'a [f64] {
    let a = times.partition_point(|&t| t < from);
    let b = times.partition_point(|&t| t < to);
    if a < b { &values[a..b] } else { &[] }
}

/// An alert as a ranker sees it: one occurrence, or `count` occurrences alike (same service,
/// name, signal and severity) that a live incident holds as one, so that what a ranking reads
/// grows with the kinds of alerts an incident has, not with the size of an alert storm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseAlert {
    /// The service the alert was mapped to; `None` if it maps to none.
    pub service: Option<String>,
    /// `alertname`.
    pub name: String,
    /// Signal class (`latency`, `errors`, `cpu`, ...), as the correlation engine names it.
    pub signal: String,
    /// `severity` label (`critical`, `warning`, `info`, ...), empty if absent.
    pub severity: String,
    /// Unix seconds when it began firing (the earliest, for several occurrences).
    pub starts_at: i64,
    /// Unix seconds when it resolved, if it did (`None` for several occurrences).
    pub ends_at: Option<i64>,
    /// All labels (the first occurrence's, for several).
    pub labels: BTreeMap<String, String>,
    /// How many occurrences it stands for; 1 for a single alert.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u64,
}

fn one() -> u64 {
    1
}

fn is_one(count: &u64) -> bool {
    *count == 1
}

/// A change event as a ranker sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseChange {
    /// The service changed.
    pub service: String,
    /// `deploy`, `config`, `scale`, `flag`, ...
    pub kind: String,
    /// Unix seconds when it happened.
    pub at: i64,
    /// Free text (version, ticket).
    pub description: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_follow_the_fault_mechanism_in_the_name() {
        assert_eq!(Family::classify("CpuUsageRate(%)"), Family::Cpu);
        assert_eq!(
            Family::classify("container_memory_working_set_bytes"),
            Family::Memory
        );
        assert_eq!(Family::classify("SyscallRead"), Family::Disk);
        assert_eq!(Family::classify("PodServerLatencyP99(s)"), Family::Latency);
        assert_eq!(Family::classify("NetworkReceiveBytes"), Family::Network);
        assert_eq!(Family::classify("PodWorkload(Ops)"), Family::Traffic);
        assert_eq!(Family::classify("PodSuccessRate(%)"), Family::Errors);
        assert_eq!(Family::classify("uptime"), Family::Other);
    }

    #[test]
    fn window_selects_samples_by_time() {
        let series = Series {
            service: "a".into(),
            source: Source::Metric,
            family: Family::Cpu,
            name: "cpu".into(),
            times: vec![100, 110, 120, 130, 500],
            values: vec![0.0, 1.0, 2.0, 3.0, 4.0],
        };
        assert_eq!(series.window(110, 130), &[1.0, 2.0]);
        assert_eq!(series.window(105, 131), &[1.0, 2.0, 3.0]);
        assert_eq!(series.window(0, 1000), &series.values[..]);
        assert_eq!(series.window(200, 600), &[4.0]);
        assert!(series.window(200, 300).is_empty());
        assert!(series.window(130, 120).is_empty());
    }
}
