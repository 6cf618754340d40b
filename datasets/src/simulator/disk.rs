//! Simulated cases on disk, in files other tools read as they are:
//!
//! ```text
//! DIR/topology.json            the topology document, once for all cases
//! DIR/<case-id>/case.json      id, system, anchor, label, candidates (and the ground truth of
//!                              the propagation: affected services, resolution time; with
//!                              realism, `realism`: the traits drawn and what they did, and
//!                              `"topology": false` for a case without a topology)
//! DIR/<case-id>/alerts.json    Alertmanager API v2 postable alerts: POST it to /api/v2/alerts
//! DIR/<case-id>/changes.json   change events
//! DIR/<case-id>/metrics.csv    RCAEval style: `time` (unix s), then `<service>_<metric>` columns
//! DIR/<case-id>/traces.csv     the same for span statistics, when the case has them
//! DIR/<case-id>/logs.csv       the same for log statistics, when the case has them
//! DIR/<case-id>/edges.csv      call-edge series, `<caller>|<callee>|<name>` columns, when any
//! DIR/<case-id>/series.json    how to read the columns the default rules below cannot, if any
//! ```
//!
//! Files are written in a fixed order with deterministic number formatting, so the same cases
//! always give the same bytes. Every CSV is written and read by the same table code as
//! RCAEval's `data.csv` (numbers in their shortest exact form, empty cells for `NaN`; headers
//! quoted as CSV needs, so names holding `,`, `"`, `{` or `=` survive; rows sorted by time and
//! deduplicated on reading). Each file holds series sharing one time grid: metrics may be
//! sampled every five minutes while span and log statistics are per minute.
//!
//! **Columns.** A column of `metrics.csv` is `<service>_<metric>`: split by the known metric
//! suffix ([`METRICS`]), since a simulated service name may hold `_`, else at the longest
//! candidate of `case.json` followed by `_` (metrics under another vocabulary, per-instance
//! `<metric>{instance="<service>-<i>"}`). Its source is the file's (`metrics.csv` metric,
//! `traces.csv` trace, `logs.csv` log; trace and log columns split at the longest candidate
//! too) and its family [`Family::classify`] of the metric part without its `{...}` labels: what
//! any loader of unlabelled metrics would say. A column of `edges.csv` names its caller, callee
//! and series (`calls`, `callee_ms`, `network_ms`, `errors`), split at the last `|` and at the
//! `|` between two candidates.
//!
//! **`series.json`** records every column those rules would read differently from what was
//! written (a span statistic's family, `self_ms_mean` being latency; a template's; a column
//! whose split is ambiguous): `{"logs.csv": {"<column>": {"service": ..., "name": ...,
//! "source": "log", "family": "traffic"}}, "edges.csv": {"<column>": {"caller": ...,
//! "callee": ..., "name": ...}}}`. [`write()`] checks each column against the rules, so a
//! written case always loads back exactly; a column absent from it follows the rules, so
//! renamed or hand-made columns behave as they would from any other loader. Cases of the clean
//! simulator need none and have none.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat};
use rootcause_models::case::{Case, CaseChange, EdgeSeries, Family, Label, Series, Source};
use rootcause_topology::{Topology, TopologyDocument};
use serde::{Deserialize, Serialize};

use super::metrics::METRICS;
use super::{Affected, RealismReport, SimulatedCase, Trait, case_alert};
use crate::{LoadError, csv_series};

const TOPOLOGY: &str = "topology.json";
const CASE: &str = "case.json";
const ALERTS: &str = "alerts.json";
const CHANGES: &str = "changes.json";
const METRICS_FILE: &str = "metrics.csv";
const TRACES_FILE: &str = "traces.csv";
const LOGS_FILE: &str = "logs.csv";
const EDGES_FILE: &str = "edges.csv";
const SERIES_FILE: &str = "series.json";

/// The per-service tables and the source of their series.
const TABLES: [(&str, Source); 3] = [
    (METRICS_FILE, Source::Metric),
    (TRACES_FILE, Source::Trace),
    (LOGS_FILE, Source::Log),
];

/// `case.json`.
#[derive(Debug, Serialize, Deserialize)]
struct CaseFile {
    id: String,
    system: String,
    anchor: i64,
    label: Label,
    candidates: Vec<String>,
    #[serde(default)]
    normal_windows: Vec<(i64, i64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resolved_at: Option<i64>,
    #[serde(default)]
    affected: Vec<Affected>,
    /// False for a case without a topology ([`Trait::NoTopology`]); absent means true.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    topology: bool,
    /// Realism traits and what they did: for debugging, never read back.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    realism: Option<RealismReport>,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// One entry of `series.json`: what a column holds, where the default rules would say
/// otherwise. Fields left out follow the rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct ColumnMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    caller: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    callee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    family: Option<Family>,
}

/// `series.json`: per file, per column.
type SeriesFile = BTreeMap<String, BTreeMap<String, ColumnMeta>>;

/// One element of `alerts.json`: Alertmanager's `postableAlert`.
#[derive(Debug, Serialize, Deserialize)]
struct PostableAlert {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt", default, skip_serializing_if = "Option::is_none")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt", default, skip_serializing_if = "Option::is_none")]
    ends_at: Option<String>,
    #[serde(
        rename = "generatorURL",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    generator_url: String,
}

fn rfc3339(at: i64) -> String {
    DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn unix(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

fn put(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    fs::write(path, bytes).map_err(|e| LoadError::io(path, e))
}

fn json<T: Serialize>(path: &Path, value: &T) -> Result<(), LoadError> {
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| LoadError::format(path, e.to_string()))?;
    text.push('\n');
    put(path, text.as_bytes())
}

/// Writes `cases` and their `topology` under `dir`, creating it if needed and overwriting the
/// files of cases with the same ids. Other files are left alone, so write a new run into an
/// empty directory: a stale case directory would be loaded with the new ones.
pub fn write(
    dir: &Path,
    topology: &TopologyDocument,
    cases: &[SimulatedCase],
) -> Result<(), LoadError> {
    fs::create_dir_all(dir).map_err(|e| LoadError::io(dir, e))?;
    json(&dir.join(TOPOLOGY), topology)?;
    for case in cases {
        // The id names a directory: nothing in it may climb out of `dir`.
        if case.id.is_empty() || case.id.contains(['/', '\\']) || case.id == "." || case.id == ".."
        {
            return Err(LoadError::format(
                dir,
                format!("case id {:?} cannot name a directory", case.id),
            ));
        }
        let case_dir = dir.join(&case.id);
        fs::create_dir_all(&case_dir).map_err(|e| LoadError::io(&case_dir, e))?;
        json(
            &case_dir.join(CASE),
            &CaseFile {
                id: case.id.clone(),
                system: case.system.clone(),
                anchor: case.anchor,
                label: Label {
                    root_cause: case.root_cause.clone(),
                    fault_type: case.fault.as_str().to_owned(),
                    action: Some(case.action.as_str().to_owned()),
                },
                candidates: case.candidates.clone(),
                normal_windows: case.normal_windows.clone(),
                resolved_at: Some(case.resolved_at),
                affected: case.affected.clone(),
                topology: !case.realism.has(Trait::NoTopology),
                realism: (!case.realism.traits.is_empty()).then(|| case.realism.clone()),
            },
        )?;
        let alerts: Vec<PostableAlert> = case
            .alerts
            .iter()
            .map(|a| PostableAlert {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: Some(rfc3339(a.starts_at)),
                ends_at: a.ends_at.map(rfc3339),
                generator_url: a.generator_url.clone(),
            })
            .collect();
        json(&case_dir.join(ALERTS), &alerts)?;
        json(&case_dir.join(CHANGES), &case.changes)?;
        let mut meta = SeriesFile::new();
        for (file, source) in TABLES {
            let columns: Vec<(String, &Series)> = case
                .series
                .iter()
                .filter(|s| s.source == source)
                .map(|s| (format!("{}_{}", s.service, s.name), s))
                .collect();
            // The clean simulator always wrote metrics.csv, even empty; the others only exist
            // when there is something to put in them.
            if columns.is_empty() && source != Source::Metric {
                continue;
            }
            for (column, series) in &columns {
                let read = default_column(source, column, &case.candidates).ok();
                let written = csv_series::Column {
                    service: series.service.clone(),
                    source: series.source,
                    family: series.family,
                    name: series.name.clone(),
                };
                if read.as_ref() != Some(&written) {
                    meta.entry(file.to_owned()).or_default().insert(
                        column.clone(),
                        ColumnMeta {
                            service: Some(written.service),
                            name: Some(written.name),
                            source: Some(written.source),
                            family: Some(written.family),
                            ..ColumnMeta::default()
                        },
                    );
                }
            }
            csv_series::write(&case_dir.join(file), &columns)?;
        }
        if !case.edges.is_empty() {
            let as_series: Vec<Series> = case
                .edges
                .iter()
                .map(|e| Series {
                    service: String::new(),
                    source: Source::Trace,
                    family: Family::Other,
                    name: String::new(),
                    times: e.times.clone(),
                    values: e.values.clone(),
                })
                .collect();
            let mut columns = Vec::with_capacity(as_series.len());
            for (edge, series) in case.edges.iter().zip(&as_series) {
                let column = format!("{}|{}|{}", edge.caller, edge.callee, edge.name);
                let read = default_edge(&column, &case.candidates).ok();
                let written = (edge.caller.clone(), edge.callee.clone(), edge.name.clone());
                if read.as_ref() != Some(&written) {
                    meta.entry(EDGES_FILE.to_owned()).or_default().insert(
                        column.clone(),
                        ColumnMeta {
                            caller: Some(written.0),
                            callee: Some(written.1),
                            name: Some(written.2),
                            ..ColumnMeta::default()
                        },
                    );
                }
                columns.push((column, series));
            }
            csv_series::write(&case_dir.join(EDGES_FILE), &columns)?;
        }
        if !meta.is_empty() {
            json(&case_dir.join(SERIES_FILE), &meta)?;
        }
    }
    Ok(())
}

/// Reads the cases written by [`write()`] under `dir`, in directory-name order, sharing the
/// topology of `topology.json` among them.
///
/// Fails only when `dir` cannot be listed or `topology.json` is unreadable or invalid; a case
/// whose files are missing or malformed is returned with what could be read and a note.
pub fn load(dir: &Path) -> Result<Vec<Case>, LoadError> {
    let entries = fs::read_dir(dir).map_err(|e| LoadError::io(dir, e))?;
    let topology_path = dir.join(TOPOLOGY);
    let topology = match fs::read_to_string(&topology_path) {
        Ok(text) => {
            let document: TopologyDocument = serde_json::from_str(&text)
                .map_err(|e| LoadError::format(&topology_path, e.to_string()))?;
            let topology = Topology::from_document(document)
                .map_err(|e| LoadError::format(&topology_path, e.to_string()))?;
            Some(Arc::new(topology))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(LoadError::io(&topology_path, e)),
    };
    let mut case_dirs: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| LoadError::io(dir, e))?.path();
        if path.join(CASE).is_file() {
            case_dirs.push(path);
        }
    }
    case_dirs.sort();
    Ok(case_dirs
        .iter()
        .map(|case_dir| load_case(case_dir, topology.clone()))
        .collect())
}

fn load_case(dir: &Path, topology: Option<Arc<Topology>>) -> Case {
    let mut notes = Vec::new();
    let mut case = Case {
        id: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..Case::default()
    };
    if topology.is_none() {
        notes.push(format!("{TOPOLOGY} is missing: the case has no topology"));
    }
    let mut topology = topology;
    match read_json::<CaseFile>(&dir.join(CASE)) {
        Ok(file) => {
            case.id = file.id;
            case.system = file.system;
            case.anchor = file.anchor;
            case.label = Some(file.label);
            case.candidates = file.candidates;
            case.normal_windows = file.normal_windows;
            if !file.topology {
                topology = None;
            }
        }
        Err(note) => notes.push(note),
    }
    match read_json::<Vec<PostableAlert>>(&dir.join(ALERTS)) {
        Ok(alerts) => {
            let mut undated = 0;
            for alert in alerts {
                let Some(starts_at) = alert.starts_at.as_deref().and_then(unix) else {
                    undated += 1;
                    continue;
                };
                let ends_at = alert.ends_at.as_deref().and_then(unix);
                case.alerts.push(case_alert(
                    &alert.labels,
                    starts_at,
                    ends_at,
                    topology.as_deref(),
                ));
            }
            if undated > 0 {
                notes.push(format!(
                    "{ALERTS}: {undated} alerts without a valid RFC 3339 startsAt skipped"
                ));
            }
        }
        Err(note) => notes.push(note),
    }
    match read_json::<Vec<CaseChange>>(&dir.join(CHANGES)) {
        Ok(changes) => case.changes = changes,
        Err(note) => notes.push(note),
    }
    let meta = if dir.join(SERIES_FILE).is_file() {
        read_json::<SeriesFile>(&dir.join(SERIES_FILE)).unwrap_or_else(|note| {
            notes.push(note);
            SeriesFile::new()
        })
    } else {
        SeriesFile::new()
    };
    let empty = BTreeMap::new();
    for (file, source) in TABLES {
        let path = dir.join(file);
        // Only metrics.csv is always written.
        if source != Source::Metric && !path.is_file() {
            continue;
        }
        let listed = meta.get(file).unwrap_or(&empty);
        let candidates = &case.candidates;
        let mut split = |column: &str| split_column(source, column, listed.get(column), candidates);
        match csv_series::read(&path, &mut split, &mut notes) {
            Ok(series) => case.series.extend(series),
            Err(e) => notes.push(format!("{file} not read: {e}")),
        }
    }
    let path = dir.join(EDGES_FILE);
    if path.is_file() {
        let listed = meta.get(EDGES_FILE).unwrap_or(&empty);
        let mut names: BTreeMap<String, (String, String, String)> = BTreeMap::new();
        let candidates = &case.candidates;
        let mut split = |column: &str| {
            let (caller, callee, name) = split_edge(column, listed.get(column), candidates)?;
            names.insert(column.to_owned(), (caller, callee, name));
            // The header itself keys the series until it is turned into an edge below.
            Ok(csv_series::Column {
                service: column.to_owned(),
                source: Source::Trace,
                family: Family::Other,
                name: column.to_owned(),
            })
        };
        match csv_series::read(&path, &mut split, &mut notes) {
            Ok(series) => {
                for s in series {
                    if let Some((caller, callee, name)) = names.get(&s.name) {
                        case.edges.push(EdgeSeries {
                            caller: caller.clone(),
                            callee: callee.clone(),
                            name: name.clone(),
                            times: s.times,
                            values: s.values,
                        });
                    }
                }
            }
            Err(e) => notes.push(format!("{EDGES_FILE} not read: {e}")),
        }
    }
    case.topology = topology;
    case.notes = notes;
    case
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, String> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let text = fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))
}

/// A column of a per-service table as the default rules read it (see the module
/// documentation): by the known metric suffix in `metrics.csv`, else at the longest candidate.
fn default_column(
    source: Source,
    column: &str,
    candidates: &[String],
) -> Result<csv_series::Column, String> {
    if source == Source::Metric
        && let Some(known) = METRICS.iter().find_map(|&metric| {
            let service = column.strip_suffix(metric)?.strip_suffix('_')?;
            (!service.is_empty()).then(|| csv_series::Column {
                service: service.to_owned(),
                source,
                family: Family::classify(metric),
                name: metric.to_owned(),
            })
        })
    {
        return Ok(known);
    }
    let service = candidates
        .iter()
        .filter(|c| {
            column
                .strip_prefix(c.as_str())
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|name| !name.is_empty())
        })
        .max_by_key(|c| c.len())
        .ok_or_else(|| "names no known metric or candidate".to_owned())?;
    let name = &column[service.len() + 1..];
    Ok(csv_series::Column {
        service: service.clone(),
        source,
        family: Family::classify(without_labels(name)),
        name: name.to_owned(),
    })
}

/// A metric name without its `{label="value",...}` suffix.
fn without_labels(name: &str) -> &str {
    match name.find('{') {
        Some(at) if name.ends_with('}') => &name[..at],
        _ => name,
    }
}

/// A column of a per-service table: the default rules, overridden by its `series.json` entry.
fn split_column(
    source: Source,
    column: &str,
    meta: Option<&ColumnMeta>,
    candidates: &[String],
) -> Result<csv_series::Column, String> {
    let read = default_column(source, column, candidates);
    let Some(meta) = meta else {
        return read;
    };
    let mut out = match (read, &meta.service, &meta.name) {
        (Ok(read), _, _) => read,
        (Err(_), Some(service), Some(name)) => csv_series::Column {
            service: service.clone(),
            source,
            family: Family::classify(without_labels(name)),
            name: name.clone(),
        },
        (Err(why), _, _) => return Err(why),
    };
    if let Some(service) = &meta.service {
        out.service = service.clone();
    }
    if let Some(name) = &meta.name {
        out.name = name.clone();
    }
    if let Some(source) = meta.source {
        out.source = source;
    }
    if let Some(family) = meta.family {
        out.family = family;
    }
    Ok(out)
}

/// An `edges.csv` column as the default rules read it: the series name after the last `|`,
/// caller and callee at the one `|` before it that separates two candidates (or the only one).
fn default_edge(column: &str, candidates: &[String]) -> Result<(String, String, String), String> {
    let (pair, name) = column
        .rsplit_once('|')
        .ok_or_else(|| "names no caller|callee|series".to_owned())?;
    let splits: Vec<(&str, &str)> = pair
        .match_indices('|')
        .map(|(at, _)| (&pair[..at], &pair[at + 1..]))
        .collect();
    let known = |s: &str| candidates.iter().any(|c| c == s);
    let fitting: Vec<&(&str, &str)> = splits
        .iter()
        .filter(|(a, b)| known(a) && known(b))
        .collect();
    let (caller, callee) = match (fitting.as_slice(), splits.as_slice()) {
        ([one], _) => **one,
        ([], [one]) => *one,
        _ => return Err("names no caller|callee pair of candidates".to_owned()),
    };
    if caller.is_empty() || callee.is_empty() || name.is_empty() {
        return Err("names no caller|callee|series".to_owned());
    }
    Ok((caller.to_owned(), callee.to_owned(), name.to_owned()))
}

/// An `edges.csv` column: the default rules, overridden by its `series.json` entry.
fn split_edge(
    column: &str,
    meta: Option<&ColumnMeta>,
    candidates: &[String],
) -> Result<(String, String, String), String> {
    let read = default_edge(column, candidates);
    let Some(meta) = meta else {
        return read;
    };
    let (caller, callee, name) = match read {
        Ok(read) => read,
        Err(why) => match (&meta.caller, &meta.callee, &meta.name) {
            (Some(a), Some(b), Some(n)) => (a.clone(), b.clone(), n.clone()),
            _ => return Err(why),
        },
    };
    Ok((
        meta.caller.clone().unwrap_or(caller),
        meta.callee.clone().unwrap_or(callee),
        meta.name.clone().unwrap_or(name),
    ))
}
