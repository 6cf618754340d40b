//! Per-minute statistics of one case's spans and log lines: per service (span count, duration
//! percentiles, self time, error spans; line counts by level, exceptions, templates) and per
//! call edge (calls, callee time, network time, errors).
//!
//! Samples are binned by the minute `[m, m + 60)` holding each span's or line's own time, not by
//! the file it came from (minute files overlap and are labelled by roughly their end), and
//! stamped `m + 60`: a sample's time is the end of the period it covers, as for metrics, so a
//! sample stamped before an anchor holds nothing from after it. Only minutes the loaded files
//! cover for at least [`Stats::min_coverage_s`] seconds are kept, and counts are per-minute rates
//! over the covered part (`count × 60 / covered seconds`): the first and last minute of a run of
//! files are partly covered, and a raw count there would read as a traffic collapse.

use std::collections::{BTreeMap, HashMap, HashSet};

use rootcause_models::case::{EdgeSeries, Family, Series, Source};
use rootcause_models::stats::quantile;

use super::logs::{LogFile, LogLine};
use super::names::Names;
use super::spans::{Span, TraceFile};
use super::template::Level;
use super::timing::NANOS;

/// Gaps up to this long between the extents of two files are the files' boundaries (one ends a
/// second or two before the next begins), not missing data.
const JOIN_GAP_NS: i64 = 5 * NANOS;

/// The statistics of one case.
#[derive(Debug, Default)]
pub(super) struct CaseStats {
    /// Trace and log series per service, sorted by service.
    pub series: Vec<Series>,
    /// Edge series, sorted by caller then callee.
    pub edges: Vec<EdgeSeries>,
    /// The sample times of the minutes the reference files cover, as `[from, to)` ranges:
    /// each kept reference minute `[m, m + 60)` gives `(m, m + 60]`, the times of the samples
    /// whose period ends inside it (its own statistics' `m + 60` among them).
    pub normal_windows: Vec<(i64, i64)>,
    /// Trace and log minutes dropped for being stamped at or after [`Stats::until`].
    pub cut_minutes: usize,
    /// Spans dropped as duplicates.
    pub duplicate_spans: usize,
    /// Log lines dropped as duplicates.
    pub duplicate_lines: usize,
}

/// The inputs of one case's statistics.
pub(super) struct Stats<'a> {
    /// The trace files of the case's minutes and the reference minute.
    pub traces: Vec<&'a TraceFile>,
    /// The log files of the case's minutes and the reference minute.
    pub logs: Vec<&'a LogFile>,
    /// Service names of the spans' and lines' ids.
    pub services: &'a Names,
    /// Template keys of the lines' ids.
    pub templates: &'a Names,
    /// Seconds of a minute the files must cover for the minute to be a sample.
    pub min_coverage_s: f64,
    /// Minutes stamped at or after this time (the next fault's anchor) are left out, except the
    /// reference minutes, which are fault-free wherever they lie.
    pub until: Option<i64>,
}

impl Stats<'_> {
    /// Computes every statistic.
    pub fn build(&self) -> CaseStats {
        let (spans, duplicate_spans) = dedup_spans(&self.traces);
        let (lines, duplicate_lines) = dedup_lines(&self.logs);
        let error_spans: HashSet<u64> = lines
            .iter()
            .filter(|l| l.level.is_some_and(Level::is_error))
            .filter_map(|l| l.span)
            .collect();
        let reference_traces = Bins::new(
            self.traces
                .iter()
                .filter(|f| f.reference)
                .filter_map(|f| f.extent),
            self.min_coverage_s,
        );
        let reference_logs = Bins::new(
            self.logs
                .iter()
                .filter(|f| f.reference)
                .filter_map(|f| f.extent),
            self.min_coverage_s,
        );
        let mut trace_bins = Bins::new(
            self.traces.iter().filter_map(|f| f.extent),
            self.min_coverage_s,
        );
        let mut log_bins = Bins::new(
            self.logs.iter().filter_map(|f| f.extent),
            self.min_coverage_s,
        );
        let mut cut_minutes = 0;
        if let Some(until) = self.until {
            cut_minutes += trace_bins.cut(until, &reference_traces.times);
            cut_minutes += log_bins.cut(until, &reference_logs.times);
        }
        let mut series = trace_series(&spans, &error_spans, &trace_bins, self.services);
        series.extend(log_series(&lines, &log_bins, self.services, self.templates));
        series.sort_by(|a, b| a.service.cmp(&b.service));
        CaseStats {
            series,
            edges: edge_series(&spans, &error_spans, &trace_bins, self.services),
            normal_windows: normal_windows(&reference_traces.times, &reference_logs.times),
            cut_minutes,
            duplicate_spans,
            duplicate_lines,
        }
    }
}

/// The sample times `(m, m + 60]` of the kept reference minutes `[m, m + 60)`, given by their
/// stamps `m + 60`, joined into `[from, to)` ranges.
fn normal_windows(traces: &[i64], logs: &[i64]) -> Vec<(i64, i64)> {
    let mut stamps: Vec<i64> = traces.iter().chain(logs).copied().collect();
    stamps.sort_unstable();
    stamps.dedup();
    let mut windows: Vec<(i64, i64)> = Vec::new();
    for stamp in stamps {
        let (from, to) = (stamp - 59, stamp + 1);
        match windows.last_mut() {
            Some((_, end)) if *end == from => *end = to,
            _ => windows.push((from, to)),
        }
    }
    windows
}

/// Spans of all files, each `SpanID` once (the first seen).
fn dedup_spans<'a>(files: &[&'a TraceFile]) -> (Vec<&'a Span>, usize) {
    first_of_each(files.iter().flat_map(|f| &f.spans), |span| span.id)
}

/// Lines of all files, each identical row once.
fn dedup_lines<'a>(files: &[&'a LogFile]) -> (Vec<&'a LogLine>, usize) {
    first_of_each(files.iter().flat_map(|f| &f.lines), |line| line.fingerprint)
}

/// The first of `items` with each key, in order, and how many later ones repeated a key: the
/// minute files overlap, so a span or a log row can be in two of them.
fn first_of_each<'a, T, K: Eq + std::hash::Hash>(
    items: impl Iterator<Item = &'a T>,
    key: impl Fn(&T) -> K,
) -> (Vec<&'a T>, usize) {
    let mut seen = HashSet::new();
    let mut kept = Vec::new();
    let mut duplicates = 0;
    for item in items {
        if seen.insert(key(item)) {
            kept.push(item);
        } else {
            duplicates += 1;
        }
    }
    (kept, duplicates)
}

/// The union of time ranges (ns), each taken to last one second past its last timestamp, with
/// gaps of up to [`JOIN_GAP_NS`] closed; sorted.
fn merge(extents: impl Iterator<Item = (i64, i64)>) -> Vec<(i64, i64)> {
    let mut intervals: Vec<(i64, i64)> = extents.map(|(a, b)| (a, b + NANOS)).collect();
    intervals.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (start, end) in intervals {
        match merged.last_mut() {
            Some((_, last_end)) if start <= *last_end + JOIN_GAP_NS => {
                *last_end = (*last_end).max(end);
            }
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Seconds covered by the union of some files' [`extent`]s (ns), as [`Bins`] counts them.
pub(super) fn covered_seconds(extents: impl Iterator<Item = (i64, i64)>) -> f64 {
    merge(extents)
        .iter()
        .map(|(start, end)| (end - start) as f64 / NANOS as f64)
        .sum()
}

/// The minutes kept as samples and how much of each the files cover.
#[derive(Debug, Default)]
struct Bins {
    /// Minute ends (unix seconds), increasing: the samples' times.
    times: Vec<i64>,
    /// `60 / covered seconds` per minute: turns a count into a per-minute rate.
    scale: Vec<f64>,
}

impl Bins {
    /// Minutes covered at least `min_coverage_s` by the union of the files' [`extent`]s (ns),
    /// each taken to last one second past its last timestamp.
    fn new(extents: impl Iterator<Item = (i64, i64)>, min_coverage_s: f64) -> Bins {
        let mut covered: BTreeMap<i64, i64> = BTreeMap::new();
        for (start, end) in merge(extents) {
            let mut minute = start.div_euclid(60 * NANOS) * 60 * NANOS;
            while minute < end {
                let overlap = end.min(minute + 60 * NANOS) - start.max(minute);
                *covered.entry(minute / NANOS).or_default() += overlap;
                minute += 60 * NANOS;
            }
        }
        let mut bins = Bins::default();
        for (minute, ns) in covered {
            let seconds = (ns as f64 / NANOS as f64).min(60.0);
            if seconds >= min_coverage_s && seconds > 0.0 {
                bins.times.push(minute + 60);
                bins.scale.push(60.0 / seconds);
            }
        }
        bins
    }

    /// The index of the kept minute holding `ns`, if it was kept.
    fn of(&self, ns: i64) -> Option<usize> {
        self.times
            .binary_search(&(ns.div_euclid(60 * NANOS) * 60 + 60))
            .ok()
    }

    /// Drops the minutes stamped at or after `until`, except those in `keep` (sorted); returns
    /// how many were dropped.
    fn cut(&mut self, until: i64, keep: &[i64]) -> usize {
        let before = self.times.len();
        let kept: Vec<(i64, f64)> = self
            .times
            .iter()
            .zip(&self.scale)
            .filter(|(t, _)| **t < until || keep.binary_search(t).is_ok())
            .map(|(&t, &s)| (t, s))
            .collect();
        (self.times, self.scale) = kept.into_iter().unzip();
        before - self.times.len()
    }

    fn len(&self) -> usize {
        self.times.len()
    }

    /// Counts as per-minute rates.
    fn rates(&self, counts: impl Iterator<Item = f64>) -> Vec<f64> {
        counts.zip(&self.scale).map(|(c, s)| c * s).collect()
    }
}

#[derive(Debug, Default, Clone)]
struct SpanMinute {
    durations: Vec<f64>,
    self_ms: f64,
    errors: f64,
}

/// Per service: `span_count`, `duration_p50_ms`, `duration_p90_ms`, `duration_p99_ms`,
/// `self_ms_mean`, `error_spans`.
fn trace_series(
    spans: &[&Span],
    error_spans: &HashSet<u64>,
    bins: &Bins,
    services: &Names,
) -> Vec<Series> {
    let children = children_ms(spans);
    let mut per_service: HashMap<u32, Vec<SpanMinute>> = HashMap::new();
    for span in spans {
        let Some(bin) = bins.of(span.start_ns) else {
            continue;
        };
        let minutes = per_service
            .entry(span.service)
            .or_insert_with(|| vec![SpanMinute::default(); bins.len()]);
        let minute = &mut minutes[bin];
        minute.durations.push(span.duration_ms);
        // Children running in parallel can add up to more than their parent.
        let own = span.duration_ms - children.get(&span.id).copied().unwrap_or(0.0);
        minute.self_ms += own.max(0.0);
        minute.errors += f64::from(u8::from(error_spans.contains(&span.id)));
    }
    let mut series = Vec::new();
    for (service, mut minutes) in by_name(per_service, services) {
        for minute in &mut minutes {
            minute.durations.sort_unstable_by(f64::total_cmp);
        }
        let make = |family, name: &str, values| {
            stat_series(&service, Source::Trace, family, name, &bins.times, values)
        };
        let count = |m: &SpanMinute| m.durations.len() as f64;
        series.push(make(
            Family::Traffic,
            "span_count",
            bins.rates(minutes.iter().map(count)),
        ));
        for (name, q) in [
            ("duration_p50_ms", 0.5),
            ("duration_p90_ms", 0.9),
            ("duration_p99_ms", 0.99),
        ] {
            let values = minutes.iter().map(|m| quantile(&m.durations, q)).collect();
            series.push(make(Family::Latency, name, values));
        }
        let self_mean = minutes.iter().map(|m| mean(m.self_ms, count(m))).collect();
        series.push(make(Family::Latency, "self_ms_mean", self_mean));
        series.push(make(
            Family::Errors,
            "error_spans",
            bins.rates(minutes.iter().map(|m| m.errors)),
        ));
    }
    series
}

/// Summed duration of each span's direct children among `spans`.
fn children_ms(spans: &[&Span]) -> HashMap<u64, f64> {
    let mut sums: HashMap<u64, f64> = HashMap::new();
    for span in spans {
        if let Some(parent) = span.parent {
            *sums.entry(parent).or_default() += span.duration_ms;
        }
    }
    sums
}

#[derive(Debug, Default, Clone, Copy)]
struct EdgeMinute {
    calls: f64,
    callee_ms: f64,
    network_ms: f64,
    errors: f64,
}

/// Per caller → callee pair (parent span's service → child span's, when they differ): `calls`,
/// `callee_ms`, `network_ms`, `errors`, binned by the child's start.
fn edge_series(
    spans: &[&Span],
    error_spans: &HashSet<u64>,
    bins: &Bins,
    services: &Names,
) -> Vec<EdgeSeries> {
    let by_id: HashMap<u64, &Span> = spans.iter().map(|s| (s.id, *s)).collect();
    let mut per_edge: BTreeMap<(String, String), Vec<EdgeMinute>> = BTreeMap::new();
    for child in spans {
        let Some(parent) = child.parent.and_then(|p| by_id.get(&p)) else {
            continue;
        };
        if parent.service == child.service {
            continue;
        }
        let Some(bin) = bins.of(child.start_ns) else {
            continue;
        };
        let key = (
            services.name(parent.service).to_string(),
            services.name(child.service).to_string(),
        );
        let minute = &mut per_edge
            .entry(key)
            .or_insert_with(|| vec![EdgeMinute::default(); bins.len()])[bin];
        minute.calls += 1.0;
        minute.callee_ms += child.duration_ms;
        minute.network_ms += parent.duration_ms - child.duration_ms;
        minute.errors += f64::from(u8::from(error_spans.contains(&child.id)));
    }
    let mut edges = Vec::new();
    for ((caller, callee), minutes) in per_edge {
        let make = |name: &str, values| EdgeSeries {
            caller: caller.clone(),
            callee: callee.clone(),
            name: name.to_string(),
            times: bins.times.clone(),
            values,
        };
        edges.push(make("calls", bins.rates(minutes.iter().map(|m| m.calls))));
        edges.push(make(
            "callee_ms",
            minutes.iter().map(|m| mean(m.callee_ms, m.calls)).collect(),
        ));
        edges.push(make(
            "network_ms",
            minutes
                .iter()
                .map(|m| mean(m.network_ms, m.calls))
                .collect(),
        ));
        edges.push(make("errors", bins.rates(minutes.iter().map(|m| m.errors))));
    }
    edges
}

#[derive(Debug, Default, Clone)]
struct LogMinute {
    lines: f64,
    errors: f64,
    warnings: f64,
    exceptions: f64,
    templates: HashMap<u32, f64>,
}

/// Per service: `log_lines`, `log_error`, `log_warn`, `log_exception` and one
/// `template:<key>` series per template the service printed in any kept minute.
fn log_series(lines: &[&LogLine], bins: &Bins, services: &Names, templates: &Names) -> Vec<Series> {
    let mut per_service: HashMap<u32, Vec<LogMinute>> = HashMap::new();
    for line in lines {
        let Some(bin) = bins.of(line.time_ns) else {
            continue;
        };
        let minute = &mut per_service
            .entry(line.service)
            .or_insert_with(|| vec![LogMinute::default(); bins.len()])[bin];
        minute.lines += 1.0;
        minute.errors += f64::from(u8::from(line.level.is_some_and(Level::is_error)));
        minute.warnings += f64::from(u8::from(line.level == Some(Level::Warn)));
        minute.exceptions += f64::from(u8::from(line.exception));
        *minute.templates.entry(line.template).or_default() += 1.0;
    }
    let mut series = Vec::new();
    for (service, minutes) in by_name(per_service, services) {
        let counts = |name: &str, family, count: fn(&LogMinute) -> f64| {
            let values = bins.rates(minutes.iter().map(count));
            stat_series(&service, Source::Log, family, name, &bins.times, values)
        };
        series.push(counts("log_lines", Family::Traffic, |m| m.lines));
        series.push(counts("log_error", Family::Errors, |m| m.errors));
        series.push(counts("log_warn", Family::Errors, |m| m.warnings));
        series.push(counts("log_exception", Family::Errors, |m| m.exceptions));
        let mut keys: Vec<(&str, u32)> = minutes
            .iter()
            .flat_map(|m| m.templates.keys())
            .map(|&id| (templates.name(id), id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        keys.sort_unstable();
        for (key, id) in keys {
            let values = bins.rates(
                minutes
                    .iter()
                    .map(|m| m.templates.get(&id).copied().unwrap_or(0.0)),
            );
            series.push(stat_series(
                &service,
                Source::Log,
                Family::Template,
                &format!("template:{key}"),
                &bins.times,
                values,
            ));
        }
    }
    series
}

/// Per-service accumulators keyed by service name, sorted.
fn by_name<T>(per_service: HashMap<u32, T>, services: &Names) -> Vec<(String, T)> {
    let mut named: Vec<(String, T)> = per_service
        .into_iter()
        .map(|(id, value)| (services.name(id).to_string(), value))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

fn stat_series(
    service: &str,
    source: Source,
    family: Family,
    name: &str,
    times: &[i64],
    values: Vec<f64>,
) -> Series {
    Series {
        service: service.to_string(),
        source,
        family,
        name: name.to_string(),
        times: times.to_vec(),
        values,
    }
}

fn mean(sum: f64, count: f64) -> f64 {
    if count > 0.0 { sum / count } else { f64::NAN }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nezha::timing::extent;

    #[test]
    fn extents_trim_sparse_tails_but_not_quiet_middles() {
        let s = |seconds: i64| seconds * NANOS;
        // Two stray events, a dense run from 100 s to 160 s with a silent slot at 130 s, one
        // stray event after.
        let mut times = vec![s(0), s(40)];
        for second in (100..160).filter(|t| !(130..140).contains(t)) {
            times.extend([s(second), s(second)]);
        }
        times.push(s(200));
        assert_eq!(extent(times.iter().copied()), Some((s(100), s(159))));
        assert_eq!(extent([s(5), s(65)].into_iter()), Some((s(5), s(65))));
        assert_eq!(extent(std::iter::empty()), None);
    }

    #[test]
    fn partly_covered_minutes_are_dropped_or_scaled() {
        let minute = 1_700_000_040 * NANOS; // a minute start
        // One file covering the minute's last 50 s and the next minute's first 9 s, a second
        // file starting 2 s after the first ends.
        let extents = [
            (minute + 10 * NANOS, minute + 68 * NANOS),
            (minute + 71 * NANOS, minute + 119 * NANOS),
        ];
        let bins = Bins::new(extents.into_iter(), 30.0);
        // Stamped at the minutes' ends.
        assert_eq!(bins.times, vec![minute / NANOS + 60, minute / NANOS + 120]);
        assert_eq!(bins.of(minute + 10 * NANOS), Some(0));
        assert_eq!(bins.of(minute + 60 * NANOS), Some(1));
        assert_eq!(bins.of(minute + 120 * NANOS), None);
        assert!((bins.scale[0] - 60.0 / 50.0).abs() < 1e-9);
        assert!(
            (bins.scale[1] - 1.0).abs() < 1e-9,
            "the 2 s gap is a file boundary"
        );
        let short = Bins::new([(minute, minute + 8 * NANOS)].into_iter(), 30.0);
        assert!(short.times.is_empty());
    }
}
