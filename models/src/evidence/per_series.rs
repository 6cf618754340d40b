//! The detectors of per-service series: resource metrics, span statistics and log statistics,
//! each against its baseline, thinned where the series is sparse.

use std::collections::{BTreeMap, HashMap};

use super::moderation::{Moderation, is_count_series, series_kind};
use super::series::{Baseline, Direction};
use super::templates::template_detectors;
use super::windows::Windows;
use super::{Detector, MAX_Z, fmt_value, source_word, timing_floor};
use crate::case::{Case, Family, Source};

/// Per-service series detectors: resource metrics, span statistics, log statistics, templates.
/// Returns, per service, how its own (server-side) latency moved, metric or span duration, for
/// the edge detectors to tell a slow callee from a slow wire.
pub(super) fn series_detectors<'a>(
    case: &'a Case,
    windows: &Windows,
    moderation: &Moderation,
    note: &mut impl FnMut(&str, Detector, f64, String),
) -> HashMap<&'a str, OwnLatency> {
    let mut own_latency: HashMap<&str, OwnLatency> = HashMap::new();
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
                if let Some((own_z, own_value)) = own_base.z(abnormal, direction) {
                    let own = own_latency.entry(s.service.as_str()).or_default();
                    own.z = own.z.max(own_z);
                    let rise = own.rises.entry(quantile_of(&s.name)).or_insert(0.0);
                    *rise = rise.max(own_value - own_base.median);
                }
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

/// How a service's own (server-side) latency moved around the incident.
#[derive(Debug, Clone, Default)]
pub(super) struct OwnLatency {
    /// The strongest deviation of its latency series, in their own baselines' spreads.
    pub z: f64,
    /// Per quantile (see [`quantile_of`]; `None` for a series that names none), how far its
    /// latency rose above the baseline median, in the series' own unit.
    pub rises: HashMap<Option<String>, f64>,
}

/// The quantile a series' name carries as a word of its own (`p50` in `latency_p50_ms` and
/// `callee_ms_p50`), so a call's duration can be set beside the callee's own latency at the same
/// quantile.
pub(super) fn quantile_of(name: &str) -> Option<String> {
    name.split(['_', '.', '-'])
        .find(|word| {
            word.len() > 1 && word.starts_with('p') && word[1..].bytes().all(|b| b.is_ascii_digit())
        })
        .map(str::to_owned)
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
pub(super) fn thinned(z: f64, coverage: f64) -> f64 {
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
