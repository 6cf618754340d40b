//! Simulated cases on disk, in files other tools read as they are:
//!
//! ```text
//! DIR/topology.json            the topology document, once for all cases
//! DIR/<case-id>/case.json      id, system, anchor, label, candidates (and the ground truth of
//!                              the propagation: affected services, resolution time)
//! DIR/<case-id>/alerts.json    Alertmanager API v2 postable alerts: POST it to /api/v2/alerts
//! DIR/<case-id>/changes.json   change events
//! DIR/<case-id>/metrics.csv    RCAEval style: `time` (unix s), then `<service>_<metric>` columns
//! ```
//!
//! Files are written in a fixed order with deterministic number formatting, so the same cases
//! always give the same bytes. `metrics.csv` is written and read by the same table code as
//! RCAEval's `data.csv` (numbers in their shortest exact form; rows sorted by time and
//! deduplicated on reading); only the header split differs, by the known metric suffix
//! ([`METRICS`]), since a simulated service name may hold `_`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat};
use rootcause_models::case::{Case, CaseChange, Family, Label, Series, Source};
use rootcause_topology::{Topology, TopologyDocument};
use serde::{Deserialize, Serialize};

use super::metrics::METRICS;
use super::{Affected, SimulatedCase, case_alert};
use crate::{LoadError, csv_series};

const TOPOLOGY: &str = "topology.json";
const CASE: &str = "case.json";
const ALERTS: &str = "alerts.json";
const CHANGES: &str = "changes.json";
const METRICS_FILE: &str = "metrics.csv";

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
}

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
        let columns: Vec<(String, &Series)> = case
            .series
            .iter()
            .map(|s| (format!("{}_{}", s.service, s.name), s))
            .collect();
        csv_series::write(&case_dir.join(METRICS_FILE), &columns)?;
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
    match read_json::<CaseFile>(&dir.join(CASE)) {
        Ok(file) => {
            case.id = file.id;
            case.system = file.system;
            case.anchor = file.anchor;
            case.label = Some(file.label);
            case.candidates = file.candidates;
            case.normal_windows = file.normal_windows;
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
    match csv_series::read(&dir.join(METRICS_FILE), &mut split_column, &mut notes) {
        Ok(series) => case.series = series,
        Err(e) => notes.push(format!("{METRICS_FILE} not read: {e}")),
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

/// Splits a `<service>_<metric>` column by the known metric suffix: service names may contain
/// `_` themselves.
fn split_column(column: &str) -> Result<csv_series::Column, String> {
    METRICS
        .iter()
        .find_map(|&metric| {
            let service = column.strip_suffix(metric)?.strip_suffix('_')?;
            (!service.is_empty()).then(|| csv_series::Column {
                service: service.to_owned(),
                source: Source::Metric,
                family: Family::classify(metric),
                name: metric.to_owned(),
            })
        })
        .ok_or_else(|| "names no known metric".to_owned())
}
