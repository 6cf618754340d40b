//! The series of a case, from its tables: per workload (latency, success rate, request rate),
//! per pod (CPU, memory, packets) and per call edge.

use rootcause_models::case::{EdgeSeries, Family, Series, Source};

use super::names::{GATEWAY, UNKNOWN, is_candidate_name, split_pair, workload_of_pod};
use super::table::Table;

/// The quantiles Istio's histograms are read at, as the headers' suffixes spell them.
const QUANTILES: [&str; 3] = ["p50", "p90", "p99"];
/// `instance.csv`'s marker of a pod that does not exist at that step.
const ABSENT_POD: f64 = -1.0;

/// The workloads a case ranks, sorted: those named by the columns of `latency.csv`
/// (`<w>&p50`) and `svc_qps.csv` (`<w>`), less the gateway, `unknown` and `*-edge*`.
pub(super) fn candidates(latency: Option<&Table>, qps: Option<&Table>) -> Vec<String> {
    let latency = latency
        .into_iter()
        .flat_map(|t| &t.headers)
        .map(|h| h.rsplit_once('&').map_or(h.as_str(), |(w, _)| w));
    let qps = qps.into_iter().flat_map(|t| &t.headers).map(String::as_str);
    let mut names: Vec<String> = latency
        .chain(qps)
        .filter(|w| is_candidate_name(w))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether `name` is one of the sorted `candidates`.
pub(super) fn is_candidate(candidates: &[String], name: &str) -> bool {
    candidates
        .binary_search_by(|c| c.as_str().cmp(name))
        .is_ok()
}

fn metric(service: &str, family: Family, name: String, times: &[i64], values: Vec<f64>) -> Series {
    Series {
        service: service.to_string(),
        source: Source::Metric,
        family,
        name,
        times: times.to_vec(),
        values,
    }
}

/// `latency.csv`: `<w>&p50|p90|p99`, server-side milliseconds, as `latency_p50_ms` etc.
pub(super) fn latency(
    table: &Table,
    candidates: &[String],
    notes: &mut Vec<String>,
) -> Vec<Series> {
    let mut series = Vec::new();
    for (header, values) in table.headers.iter().zip(&table.columns) {
        let Some((workload, quantile)) = header.rsplit_once('&') else {
            notes.push(format!(
                "latency.csv: column {header:?} has no `&<quantile>`: skipped"
            ));
            continue;
        };
        if !is_candidate(candidates, workload) {
            continue;
        }
        if !QUANTILES.contains(&quantile) {
            notes.push(format!(
                "latency.csv: column {header:?} is no known quantile: skipped"
            ));
            continue;
        }
        let name = format!("latency_{quantile}_ms");
        series.push(metric(
            workload,
            Family::Latency,
            name,
            &table.times,
            values.clone(),
        ));
    }
    series
}

/// A file with one column per workload (`success_rate.csv`, `svc_qps.csv`), as series `name`.
pub(super) fn per_workload(
    table: &Table,
    candidates: &[String],
    (file, name, family): (&str, &str, Family),
    notes: &mut Vec<String>,
) -> Vec<Series> {
    let mut series = Vec::new();
    for (workload, values) in table.headers.iter().zip(&table.columns) {
        if is_candidate(candidates, workload) {
            series.push(metric(
                workload,
                family,
                name.to_string(),
                &table.times,
                values.clone(),
            ));
        } else if is_candidate_name(workload) {
            notes.push(format!(
                "{file}: column {workload:?} is no candidate workload: skipped"
            ));
        }
    }
    series
}

/// What an `instance.csv` column measures.
#[derive(Clone, Copy)]
enum PodMetric {
    Cpu,
    Memory,
    Network,
}

impl PodMetric {
    fn parse(suffix: &str) -> Option<PodMetric> {
        match suffix {
            "cpu" => Some(PodMetric::Cpu),
            "memory" => Some(PodMetric::Memory),
            "network" => Some(PodMetric::Network),
            _ => None,
        }
    }

    fn family(self) -> Family {
        match self {
            PodMetric::Cpu => Family::Cpu,
            PodMetric::Memory => Family::Memory,
            PodMetric::Network => Family::Network,
        }
    }

    fn name(self, pod: &str) -> String {
        let metric = match self {
            PodMetric::Cpu => "cpu_millicores",
            PodMetric::Memory => "memory_mb",
            PodMetric::Network => "transmit_packets_per_s",
        };
        format!("{metric}{{pod=\"{pod}\"}}")
    }

    /// The value in the series' unit: `-1` (no such pod at that step) is `NaN`, and so is any
    /// other negative value, which none of the three can be; the network column holds
    /// packets/s squared by the collector's query.
    fn value(self, stored: f64) -> f64 {
        if stored < 0.0 {
            return f64::NAN;
        }
        match self {
            PodMetric::Network => stored.sqrt(),
            PodMetric::Cpu | PodMetric::Memory => stored,
        }
    }
}

/// `instance.csv`: `<pod>_cpu|memory|network` per pod, as series of the pod's workload named
/// `cpu_millicores{pod="<pod>"}`, `memory_mb{...}`, `transmit_packets_per_s{...}`. A pod absent
/// from the window's first sample is left out: it was created during the window, which here is
/// the experiment's scripted scale-up of the labelled deployment (see the module's caveat), and
/// a pod without history says nothing about a change anyway.
pub(super) fn per_pod(
    table: &Table,
    candidates: &[String],
    notes: &mut Vec<String>,
) -> Vec<Series> {
    let mut series = Vec::new();
    let mut other_pods: Vec<&str> = Vec::new();
    let mut created: Vec<&str> = Vec::new();
    let mut negative = 0usize;
    for (header, values) in table.headers.iter().zip(&table.columns) {
        let parsed = header
            .rsplit_once('_')
            .and_then(|(pod, suffix)| Some((pod, PodMetric::parse(suffix)?)));
        let Some((pod, kind)) = parsed else {
            notes.push(format!(
                "instance.csv: column {header:?} is not `<pod>_cpu|memory|network`: skipped"
            ));
            continue;
        };
        let Some(workload) = workload_of_pod(pod).filter(|w| is_candidate(candidates, w)) else {
            other_pods.push(pod);
            continue;
        };
        if values.first().is_none_or(|&v| v.is_nan() || v < 0.0) {
            created.push(pod);
            continue;
        }
        negative += values
            .iter()
            .filter(|&&v| v < 0.0 && v != ABSENT_POD)
            .count();
        let values = values.iter().map(|&v| kind.value(v)).collect();
        series.push(metric(
            workload,
            kind.family(),
            kind.name(pod),
            &table.times,
            values,
        ));
    }
    other_pods.sort_unstable();
    other_pods.dedup();
    if let Some(first) = other_pods.first() {
        notes.push(format!(
            "instance.csv: {} pods of no candidate workload skipped (first: {first:?})",
            other_pods.len()
        ));
    }
    if negative > 0 {
        notes.push(format!(
            "instance.csv: {negative} negative values other than -1 read as NaN"
        ));
    }
    created.sort_unstable();
    created.dedup();
    if !created.is_empty() {
        notes.push(format!(
            "instance.csv: {} pod(s) absent at the window's start left out (created during the \
             window: {})",
            created.len(),
            created.join(", ")
        ));
    }
    series
}

/// `call.csv`: `<src>_<dst>&p50|p90|p99`, the client-side duration of calls in ms, as the edge
/// series `callee_ms_<q>`. Calls from or to `unknown` are skipped.
pub(super) fn edges(
    call: &Table,
    candidates: &[String],
    notes: &mut Vec<String>,
) -> Vec<EdgeSeries> {
    let known = |name: &str| is_candidate(candidates, name) || name == GATEWAY || name == UNKNOWN;
    let mut edges = Vec::new();
    for (header, values) in call.headers.iter().zip(&call.columns) {
        let parsed = header
            .rsplit_once('&')
            .filter(|(_, q)| QUANTILES.contains(q))
            .ok_or("is not `<caller>_<callee>&p50|p90|p99`")
            .and_then(|(pair, q)| Ok((split_pair(pair, known)?, q)));
        let ((caller, callee), quantile) = match parsed {
            Ok(parsed) => parsed,
            Err(why) => {
                notes.push(format!("call.csv: column {header:?} {why}: skipped"));
                continue;
            }
        };
        if caller == UNKNOWN || callee == UNKNOWN {
            continue;
        }
        edges.push(EdgeSeries {
            caller: caller.to_string(),
            callee: callee.to_string(),
            name: format!("callee_ms_{quantile}"),
            times: call.times.clone(),
            values: values.clone(),
        });
    }
    edges
}
