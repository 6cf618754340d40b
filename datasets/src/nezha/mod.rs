//! The Nezha fault-injection dataset (Yu et al., ESEC/FSE 2023), in the layout its repository
//! publishes:
//!
//! ```text
//! rca_data/<date>/<date>-fault_list.json   labels {hour: [{inject_time, inject_pod, ...}]}
//! rca_data/<date>/metric/<pod>_metric.csv  one file per pod, the whole day, TimeStamp in unix s
//! rca_data/<date>/trace/HH_MM_trace.csv    spans of about one minute
//! rca_data/<date>/log/HH_MM_log.csv        log lines of about one minute
//! construct_data/<date>/{trace,log}/       one fault-free reference minute per date
//! ```
//!
//! Any CSV may also be gzipped (`.csv.gz`). [`load`] turns every fault of the fault lists into a
//! [`Case`]:
//!
//! - **anchor**: `inject_time` read as UTC (`inject_timestamp` is 8 h off on some dates);
//! - **id**: `<date>#<nn>`, numbered per date in injection order from `00`;
//! - **label**: the injected pod's service (the pod name without its StatefulSet ordinal, or
//!   without the ReplicaSet hash and random suffix of a Deployment pod: see
//!   `files::service_of_pod`) and `inject_type` as published;
//! - **candidates**: the services with a pod metric file on that date. `front_service.csv`, the
//!   frontend's success rate and latency, belongs to no pod: it is not read, since a case has no
//!   place for system-wide indicators and a series under an invented service name would read as
//!   one more suspect;
//! - **time convention**: a sample's time is the end of the period it covers (see
//!   [`rootcause_models::case::Series`]): metric samples keep their `TimeStamp` (the end of the
//!   scrape step), and a trace or log statistic of the minute `[m, m + 60)` is stamped `m + 60`;
//! - **metric series**: every numeric column of the pod files, averaged over the service's pods,
//!   sampled in `[anchor − before, anchor + after)`; a latency of 0 (no requests) is `NaN`. The
//!   window ends earlier, at the next fault's anchor on the same date (exclusive), when that
//!   comes first, with a note on the case: faults are 4 to 10 minutes apart, so this is the
//!   usual case with the default 10 minutes. The window before the anchor is not cut at the
//!   previous fault: its after-effects are part of the recent past a detector sees in service
//!   too, and `normal_windows` give a clean baseline;
//! - **trace series** per service and minute: `span_count` (traffic), `duration_p50_ms`,
//!   `duration_p90_ms`, `duration_p99_ms`, `self_ms_mean` (latency; self time is a span's
//!   duration minus its direct children's), `error_spans` (errors: spans with an ERROR log line);
//! - **edge series** per caller → callee (parent span's service → child's) and minute: `calls`,
//!   `callee_ms`, `network_ms` (parent minus child duration), `errors`;
//! - **log series** per service and minute: `log_lines` (traffic), `log_error`, `log_warn`,
//!   `log_exception` (errors) and `template:<key>` per [`template`] key;
//! - **which minutes**: the trace and log files named from one minute before the anchor's minute
//!   to three after (a neighbouring fault's own minutes excluded; missing expected minutes are
//!   noted), plus the date's reference minute. Spans are deduplicated by `SpanID` and repeated
//!   log rows dropped (files overlap), then binned by the minute holding their own time. Counts
//!   are per-minute rates over the part of the minute the files cover, and minutes covered less
//!   than [`Options::min_minute_coverage_s`] are left out, as are the case's minutes stamped at
//!   or after the next fault's anchor (noted): the statistics' times are irregular;
//! - **normal windows**: the sample times `(m, m + 60]` of each kept reference minute
//!   `[m, m + 60)`, i.e. the samples whose period ends inside it, its statistics' `m + 60` among
//!   them;
//! - **topology**: learned once, shared by all cases. Its structure (services and edges) comes
//!   from every cross-service parent → child span pair of every trace file, fault minutes
//!   included, plus every candidate. Its edges' attributes (`call_rate` per second of reference
//!   time, `error_rate`, median `latency_ms`, first and last seen) come from the fault-free
//!   reference minutes alone: over the fault minutes they would show, in every case's shared
//!   graph, where the other cases' faults were. An edge no reference minute shows has none.
//!
//! Problems confined to a case (a missing minute file, rejected rows, duplicates dropped) are
//! notes on the case; only an unreadable or missing directory, fault list or header fails.

mod faults;
mod files;
mod logs;
mod metrics;
mod names;
mod spans;
mod stats;
pub mod template;
#[cfg(test)]
mod tests;
mod timing;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::DateTime;
use rootcause_models::case::{Case, Label};
use rootcause_topology::{
    Dependency, ObservedCall, ObservedCalls, Service, ServiceKind, Topology, TopologyDocument,
};

use self::faults::Fault;
use self::files::{DateDirs, MinuteFile};
use self::logs::LogFile;
use self::metrics::DateMetrics;
use self::names::Names;
use self::spans::{Span, TraceFile};
use self::stats::Stats;
use crate::LoadError;

/// How a case is cut out of the dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Seconds of metrics before the anchor: the baseline a metric detector sees. Not cut at
    /// the previous fault, whose after-effects are part of the recent past.
    pub metric_before_s: i64,
    /// Seconds of metrics from the anchor on: faults last about three minutes, and their
    /// after-effects a little longer. Cut at the next fault's anchor on the same date.
    pub metric_after_s: i64,
    /// Seconds of a minute the trace or log files must cover for that minute to become a
    /// sample of the statistics series. The first and last minute of a run of files are only
    /// partly covered; below this their counts are too noisy even as rates.
    pub min_minute_coverage_s: f64,
}

impl Default for Options {
    /// 30 minutes of metrics before the anchor and 10 after; minutes count when at least half
    /// covered.
    fn default() -> Self {
        Options {
            metric_before_s: 1800,
            metric_after_s: 600,
            min_minute_coverage_s: 30.0,
        }
    }
}

/// The minute files a fault is expected to have, relative to its anchor's minute: the inject
/// minute and the two after it. A missing one is noted on the case.
const EXPECTED_MINUTES: [i64; 3] = [0, 1, 2];
/// The first minute file read, relative to the anchor's minute: a file covers roughly the
/// minute before its name, and symptoms sometimes start before `inject_time`.
const FIRST_MINUTE: i64 = -1;
/// The last minute file read, relative to the anchor's minute: faults last about three minutes.
const LAST_MINUTE: i64 = 3;

/// Loads every case of the Nezha dataset at `root`.
pub fn load(root: &Path, options: &Options) -> Result<Vec<Case>, LoadError> {
    let dataset = Dataset::read(root)?;
    let document = dataset.topology_document();
    let topology = Topology::from_document(document)
        .map_err(|e| LoadError::format(root, format!("learned topology is invalid: {e}")))?;
    let topology = Arc::new(topology);
    let system = system_name(root);
    let mut cases = Vec::new();
    for date in &dataset.dates {
        for fault in &date.faults {
            let mut case = dataset.case(date, fault, options);
            case.system = system.clone();
            case.topology = Some(Arc::clone(&topology));
            cases.push(case);
        }
    }
    Ok(cases)
}

/// The system name: the root directory's name without a leading `nezha-`, or `nezha`. The data
/// itself never names the system.
fn system_name(root: &Path) -> String {
    let name = root
        .canonicalize()
        .ok()
        .as_deref()
        .unwrap_or(root)
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .unwrap_or_default();
    let trimmed = name
        .strip_prefix("nezha-")
        .or_else(|| name.strip_prefix("nezha_"))
        .unwrap_or(&name);
    if trimmed.is_empty() {
        "nezha".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Everything read from the dataset, each file once.
struct Dataset {
    dates: Vec<DateData>,
    services: Names,
    templates: Names,
}

struct DateData {
    dirs: DateDirs,
    faults: Vec<Fault>,
    metrics: DateMetrics,
    traces: Vec<TraceFile>,
    logs: Vec<LogFile>,
}

/// One file to parse.
struct Job {
    date: usize,
    file: MinuteFile,
    reference: bool,
    trace: bool,
}

enum Parsed {
    Trace(TraceFile),
    Log(LogFile),
}

impl Dataset {
    fn read(root: &Path) -> Result<Dataset, LoadError> {
        if !root.is_dir() {
            return Err(LoadError::io(
                root,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
            ));
        }
        let mut dates = Vec::new();
        let mut jobs = Vec::new();
        for (index, dirs) in files::dates(root)?.into_iter().enumerate() {
            jobs.extend(minute_jobs(index, &dirs)?);
            dates.push(DateData {
                faults: faults::read(&dirs)?,
                metrics: metrics::read(&dirs)?,
                dirs,
                traces: Vec::new(),
                logs: Vec::new(),
            });
        }
        let mut dataset = Dataset {
            dates,
            services: Names::default(),
            templates: Names::default(),
        };
        let parsed = parallel(&jobs, |job| {
            let dirs = &dataset.dates[job.date].dirs;
            Ok(if job.trace {
                Parsed::Trace(spans::read(&job.file, job.reference, dirs)?)
            } else {
                Parsed::Log(logs::read(&job.file, job.reference, dirs)?)
            })
        })?;
        for (job, parsed) in jobs.iter().zip(parsed) {
            let date = &mut dataset.dates[job.date];
            match parsed {
                Parsed::Trace(mut file) => {
                    file.adopt_names(&mut dataset.services);
                    date.traces.push(file);
                }
                Parsed::Log(mut file) => {
                    file.adopt_names(&mut dataset.services, &mut dataset.templates);
                    date.logs.push(file);
                }
            }
        }
        Ok(dataset)
    }

    /// Every trace file's cross-service parent → child pairs as edges, plus every service with
    /// a metric file. The edges' observed attributes come from the reference minutes alone: see
    /// [`ReferenceCalls`].
    fn topology_document(&self) -> TopologyDocument {
        let mut calls = ObservedCalls::new();
        let mut reference = ReferenceCalls::default();
        for date in &self.dates {
            self.for_each_span(date, false, |child, parent, _| {
                let callee = self.services.name(child.service);
                calls.record_service(callee);
                if let Some(parent) = parent {
                    let call = ObservedCall {
                        at: DateTime::from_timestamp_nanos(child.start_ns),
                        latency_ms: child.duration_ms,
                        // The attributes are replaced below; only the edge matters here.
                        error: false,
                    };
                    calls.record(self.services.name(parent.service), callee, call);
                }
            });
            self.for_each_span(date, true, |child, parent, error| {
                if let Some(parent) = parent.filter(|p| p.service != child.service) {
                    reference.record(parent.service, child, error);
                }
            });
            reference.seconds += stats::covered_seconds(
                date.traces
                    .iter()
                    .filter(|f| f.reference)
                    .filter_map(|f| f.extent),
            );
        }
        let mut document = calls.to_document(None);
        for dependency in &mut document.dependencies {
            reference.describe(dependency, &self.services);
        }
        let known: HashSet<String> = document.services.iter().map(|s| s.name.clone()).collect();
        let candidates: BTreeSet<String> = self
            .dates
            .iter()
            .flat_map(|d| d.metrics.services())
            .collect();
        for candidate in candidates {
            if !known.contains(&candidate) {
                document
                    .services
                    .push(Service::new(candidate, ServiceKind::Service));
            }
        }
        document.services.sort_by(|a, b| a.name.cmp(&b.name));
        document
    }

    /// Calls `visit` with every span of the date's trace files (the reference files alone if
    /// `reference`), each `SpanID` once, in start order, with its parent among the same files
    /// and whether it has an ERROR log line in the same (fault or reference) log files.
    fn for_each_span(
        &self,
        date: &DateData,
        reference: bool,
        mut visit: impl FnMut(&Span, Option<&Span>, bool),
    ) {
        let mut spans = HashMap::new();
        for span in date
            .traces
            .iter()
            .filter(|f| !reference || f.reference)
            .flat_map(|f| &f.spans)
        {
            spans.entry(span.id).or_insert(*span);
        }
        let errors: HashSet<u64> = date
            .logs
            .iter()
            .filter(|f| !reference || f.reference)
            .flat_map(|f| &f.lines)
            .filter(|l| l.level.is_some_and(template::Level::is_error))
            .filter_map(|l| l.span)
            .collect();
        let mut ordered: Vec<_> = spans.values().collect();
        // Recording is order-independent, but a stable order keeps the learned document
        // reproducible if that ever changes.
        ordered.sort_by_key(|s| (s.start_ns, s.id));
        for child in ordered {
            let parent = child.parent.and_then(|p| spans.get(&p));
            visit(child, parent, errors.contains(&child.id));
        }
    }

    fn case(&self, date: &DateData, fault: &Fault, options: &Options) -> Case {
        let next = next_fault(date, fault);
        let minutes = CaseMinutes::of(date, fault);
        let traces: Vec<&TraceFile> = date
            .traces
            .iter()
            .filter(|f| minutes.wants(&f.file, f.reference))
            .collect();
        let logs: Vec<&LogFile> = date
            .logs
            .iter()
            .filter(|f| minutes.wants(&f.file, f.reference))
            .collect();
        let mut notes = minutes.missing(&traces, &logs);
        notes.extend(file_notes(&traces, &logs));
        let stats = Stats {
            traces,
            logs,
            services: &self.services,
            templates: &self.templates,
            min_coverage_s: options.min_minute_coverage_s,
            until: next.map(|f| f.anchor),
        }
        .build();
        if stats.duplicate_spans > 0 || stats.duplicate_lines > 0 {
            notes.push(format!(
                "{} duplicate spans (same SpanID) and {} duplicate log rows in overlapping \
                 files dropped",
                stats.duplicate_spans, stats.duplicate_lines
            ));
        }
        notes.extend(date_notes(date, fault, options));
        let from = fault.anchor - options.metric_before_s;
        let mut to = fault.anchor + options.metric_after_s;
        if let Some(next) = next.filter(|next| next.anchor < to) {
            to = next.anchor;
            notes.push(format!(
                "metric window cut at the next fault {} ({} s after the anchor, not {} s)",
                next.id,
                next.anchor - fault.anchor,
                options.metric_after_s
            ));
        }
        if let Some(next) = next.filter(|_| stats.cut_minutes > 0) {
            notes.push(format!(
                "{} trace or log minutes ending at or after the next fault {} left out",
                stats.cut_minutes, next.id
            ));
        }
        let mut series = date.metrics.window(from, to);
        series.extend(stats.series);
        Case {
            id: fault.id.clone(),
            anchor: fault.anchor,
            candidates: date.metrics.services(),
            series,
            edges: stats.edges,
            normal_windows: stats.normal_windows,
            label: Some(Label {
                root_cause: fault.service.clone(),
                fault_type: fault.fault_type.clone(),
                action: None,
            }),
            notes,
            ..Case::default()
        }
    }
}

/// Cross-service calls of the fault-free reference minutes (`construct_data`), the only source
/// of the learned edges' attributes. The fault minutes would leak labels into every case: the
/// topology is shared, and an edge's error rate or latency over all fault windows is raised
/// exactly where some case's root cause sits.
#[derive(Debug, Default)]
struct ReferenceCalls {
    /// Caller and callee service ids → the calls.
    edges: HashMap<(u32, u32), ReferenceEdge>,
    /// Seconds the reference trace files cover, over all dates.
    seconds: f64,
}

#[derive(Debug, Default)]
struct ReferenceEdge {
    calls: u64,
    errors: u64,
    latencies_ms: Vec<f64>,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
}

impl ReferenceCalls {
    fn record(&mut self, caller: u32, child: &Span, error: bool) {
        let edge = self.edges.entry((caller, child.service)).or_default();
        edge.calls += 1;
        edge.errors += u64::from(error);
        edge.latencies_ms.push(child.duration_ms);
        edge.first_ns = Some(
            edge.first_ns
                .map_or(child.start_ns, |t| t.min(child.start_ns)),
        );
        edge.last_ns = Some(
            edge.last_ns
                .map_or(child.start_ns, |t| t.max(child.start_ns)),
        );
    }

    /// Sets the observed attributes of `dependency` from the reference calls: calls per second
    /// of reference time (all dates' reference minutes, whether the edge was called in them or
    /// not), the error rate, the median latency and when the edge was first and last seen; all
    /// `None` when no reference minute shows the edge.
    fn describe(&self, dependency: &mut Dependency, services: &Names) {
        let edge = services
            .find(&dependency.caller)
            .zip(services.find(&dependency.callee))
            .and_then(|key| self.edges.get(&key));
        let Some(edge) = edge.filter(|e| e.calls > 0) else {
            dependency.call_rate = None;
            dependency.error_rate = None;
            dependency.latency_ms = None;
            dependency.first_seen = None;
            dependency.last_seen = None;
            return;
        };
        let mut latencies = edge.latencies_ms.clone();
        latencies.sort_unstable_by(f64::total_cmp);
        let median = rootcause_models::stats::quantile(&latencies, 0.5);
        dependency.call_rate = (self.seconds > 0.0).then(|| edge.calls as f64 / self.seconds);
        dependency.error_rate = Some(edge.errors as f64 / edge.calls as f64);
        dependency.latency_ms = median.is_finite().then_some(median);
        dependency.first_seen = edge.first_ns.map(DateTime::from_timestamp_nanos);
        dependency.last_seen = edge.last_ns.map(DateTime::from_timestamp_nanos);
    }
}

/// The first fault of the date injected after `fault`: the end of `fault`'s data. Faults injected
/// at the same second cannot be told apart and cut nothing.
fn next_fault<'a>(date: &'a DateData, fault: &Fault) -> Option<&'a Fault> {
    date.faults
        .iter()
        .filter(|other| other.anchor > fault.anchor)
        .min_by_key(|other| other.anchor)
}

/// The minute files one case reads: those named for the minutes from [`FIRST_MINUTE`] to
/// [`LAST_MINUTE`] around its anchor's minute, except a neighbouring fault's
/// [`EXPECTED_MINUTES`] (they would mix its symptoms into this case), plus the reference minutes.
struct CaseMinutes {
    /// The anchor's minute (unix seconds).
    minute: i64,
    /// Other faults' expected minutes.
    taken: HashSet<i64>,
}

impl CaseMinutes {
    fn of(date: &DateData, fault: &Fault) -> CaseMinutes {
        let minute_of = |f: &Fault| f.anchor.div_euclid(60) * 60;
        let taken = date
            .faults
            .iter()
            .filter(|other| other.id != fault.id)
            .flat_map(|other| EXPECTED_MINUTES.map(|k| minute_of(other) + k * 60))
            .collect();
        CaseMinutes {
            minute: minute_of(fault),
            taken,
        }
    }

    fn wants(&self, file: &MinuteFile, reference: bool) -> bool {
        let range = self.minute + FIRST_MINUTE * 60..=self.minute + LAST_MINUTE * 60;
        reference || (range.contains(&file.minute) && !self.taken.contains(&file.minute))
    }

    /// Notes for the expected minutes that have no trace or log file.
    fn missing(&self, traces: &[&TraceFile], logs: &[&LogFile]) -> Vec<String> {
        let mut notes = Vec::new();
        for k in EXPECTED_MINUTES {
            let expected = self.minute + k * 60;
            let label = files::minute_label(expected);
            if !traces
                .iter()
                .any(|f| !f.reference && f.file.minute == expected)
            {
                notes.push(format!("no trace file for minute {label}"));
            }
            if !logs
                .iter()
                .any(|f| !f.reference && f.file.minute == expected)
            {
                notes.push(format!("no log file for minute {label}"));
            }
        }
        notes
    }
}

/// Notes on what the date lacks for this case: a reference minute, early metrics, the root
/// cause's metric file; and the metric rows the date rejected.
fn date_notes(date: &DateData, fault: &Fault, options: &Options) -> Vec<String> {
    let mut notes = Vec::new();
    if date.dirs.reference.is_none() {
        notes.push(format!(
            "no construct_data/{}: no fault-free reference minute",
            date.dirs.name
        ));
    }
    if let Some(late) = date
        .metrics
        .late_start(fault.anchor - options.metric_before_s)
    {
        notes.push(format!(
            "metrics start {}s before the anchor, not {}s",
            options.metric_before_s - late,
            options.metric_before_s
        ));
    }
    if !date.metrics.services().contains(&fault.service) {
        notes.push(format!(
            "root cause {} (pod {}) has no metric file, so it is not a candidate",
            fault.service, fault.pod
        ));
    }
    notes.extend(date.metrics.notes.iter().cloned());
    notes
}

/// The trace and log minute files of a date, fault minutes first.
fn minute_jobs(date: usize, dirs: &DateDirs) -> Result<Vec<Job>, LoadError> {
    let mut jobs = Vec::new();
    for (kind, trace) in [("trace", true), ("log", false)] {
        let dir = dirs.faults.join(kind);
        for file in files::minute_files(&dir, kind, dirs.day_start)? {
            jobs.push(Job {
                date,
                file,
                reference: false,
                trace,
            });
        }
        let Some(reference) = &dirs.reference else {
            continue;
        };
        let dir = reference.join(kind);
        if !dir.is_dir() {
            continue;
        }
        for file in files::minute_files(&dir, kind, dirs.day_start)? {
            jobs.push(Job {
                date,
                file,
                reference: true,
                trace,
            });
        }
    }
    Ok(jobs)
}

/// Notes for the rows a case's files rejected or repaired.
fn file_notes(traces: &[&TraceFile], logs: &[&LogFile]) -> Vec<String> {
    let mut notes = Vec::new();
    for file in traces {
        if file.malformed > 0 || file.bad_times > 0 || file.bad_durations > 0 {
            notes.push(format!(
                "trace {}: {} malformed rows, {} rows with an implausible start time and {} rows \
                 with a negative or overflowing duration skipped",
                short(&file.file.path),
                file.malformed,
                file.bad_times,
                file.bad_durations
            ));
        }
    }
    for file in logs {
        if file.malformed > 0 || file.bad_times > 0 {
            notes.push(format!(
                "log {}: {} malformed rows and {} rows without a usable time skipped",
                short(&file.file.path),
                file.malformed,
                file.bad_times
            ));
        }
        if file.recovered_times > 0 {
            notes.push(format!(
                "log {}: {} rows with an implausible TimeUnixNano timed by their Timestamp instead",
                short(&file.file.path),
                file.recovered_times
            ));
        }
    }
    notes
}

/// A data file's path from its dataset directory on (`rca_data/<date>/log/HH_MM_log.csv.gz`),
/// short enough for a note.
fn short(path: &Path) -> String {
    let parts: Vec<_> = path.components().collect();
    let tail = &parts[parts.len().saturating_sub(4)..];
    tail.iter()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// `work` applied to every item on a few threads, results in item order; the first error wins.
/// Files are independent and decompression dominates, so this scales with cores.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> Result<R, LoadError> + Sync,
) -> Result<Vec<R>, LoadError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<R, LoadError>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = work(item);
                    results.lock().expect("no worker panics holding the lock")[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no worker panics holding the lock")
        .into_iter()
        .map(|r| r.expect("every item is taken by a worker"))
        .collect()
}
