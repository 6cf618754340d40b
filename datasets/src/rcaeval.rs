//! RCAEval's case format: reading it ([`load()`]) and writing any [`Case`] into it ([`write()`]).
//!
//! RCAEval (Pham et al., "RCAEval: A Benchmark for Root Cause Analysis of Microservice Systems
//! with Telemetry Data", WWW 2025 companion) ships one directory per fault case, laid out as
//! `<system>/<service>_<fault>/<n>/` and holding:
//!
//! - `data.csv`: a `time` column (unix seconds, integer or float) followed by one column per
//!   metric named `<service>_<metric>`;
//! - `inject_time.txt`: the unix second at which the fault was injected.
//!
//! # Reading
//!
//! Every directory under the root, at any depth, that holds both files is a case. Its id is its
//! path relative to the root with `/` separators; cases come back sorted by id. Symbolic links to
//! directories are not followed, so a link loop cannot make the walk endless.
//!
//! - **Columns.** A header is split at its *first* `_` into service and metric, as RCAEval does
//!   (`name.split("_")[0]`): its service names contain no `_`, its metric names may. A header
//!   without `_` cannot name a service and is skipped with a note. Each column becomes one
//!   [`Series`] of source [`Source::Metric`] and family [`Family::classify`] of the metric part.
//!   Metric parts starting with `trace.`, `log.` or `template.` are read back as the trace and
//!   log series [`write()`] produces (see below). Where `label.json` has a `columns` map (every
//!   case [`write()`] produces), the source and family it records for a header are used
//!   instead, so a family the name does not reveal (`log_lines` is traffic, `self_ms_mean`
//!   latency) survives a round trip; plain RCAEval data keeps [`Family::classify`].
//! - **`<x>-db` columns.** RCAEval's evaluation maps a service ending in `-db` to the service it
//!   backs (`x.split("_")[0].replace("-db", "")` in its `main.py`; Sock Shop's `carts-db` counts
//!   as `carts`, and faults are never labelled on the databases). The loader does the same for a
//!   trailing `-db`, so candidates and labels agree with RCAEval's: column `carts-db_cpu` becomes
//!   a series of `carts` named `carts-db_cpu` (the whole header, which keeps it apart from
//!   `carts_cpu`). A case whose `label.json` says `"merge_db_columns": false` (every case
//!   [`write()`] produces) keeps `<x>-db` as a service of its own, because there the column
//!   prefixes are already the case's own service names.
//! - **Cells.** Empty cells and `NaN`/`NA`/`null` spellings read as `NaN`. Infinities read as
//!   `NaN` (RCAEval replaces them too) and malformed numbers (or bytes that are not UTF-8) read
//!   as `NaN`; both leave one note per column. A column with non-empty cells none of which is a
//!   number is skipped with a note, and so are further columns named `time` and repeated headers.
//! - **Rows.** Times are floored to whole seconds. Rows out of order are sorted (stably); a row
//!   whose time repeats an earlier one is dropped, keeping the first in file order; a row with a
//!   malformed time is dropped; rows may be shorter (missing cells are empty) or longer than the
//!   header. Each leaves a note, never an error. All series of a case share the resulting time
//!   grid, with `NaN` where a cell was empty. (`data.csv` is read by the same table reader as the
//!   simulator's `metrics.csv`.)
//! - **Anchor.** The first non-empty line of `inject_time.txt`, integer or float, floored.
//! - **Label.** From `label.json` beside `data.csv` when present (`{"root_cause_service": ...,
//!   "fault_type": ..., "action": ...}`; without `root_cause_service` the case is unlabelled,
//!   and the folder is not consulted). Otherwise from the nearest ancestor folder (below the root,
//!   above the case directory) named `<service>_<fault>`, split at the *last* `_`: service names
//!   may contain `-`, and the fault part is one word (`cpu`, `mem`, `disk`, `delay`, `loss`,
//!   `socket`, `f1`…`f5`): letters, digits and `-`, starting with a letter.
//! - **Candidates.** The services of the columns, sorted; when `label.json` lists `candidates`,
//!   that list. If the labelled root cause is not among them the case gets a note; it is not
//!   added, since that would hand the answer to the ranker. Where `<x>-db` columns merge into
//!   `<x>`, a label naming `<x>-db` names `<x>` too.
//! - **System.** `label.json`'s `system` when present; otherwise the first path component under
//!   the root when the case lies below a system folder (`<system>/<service>_<fault>/<n>`, or any
//!   unlabelled nesting), else the root's own folder name.
//! - **Not read.** RCAEval's multi-source files (`traces.csv`, `logs.csv` and its pre-aggregated
//!   `logts.csv`, `tracets_err.csv`, `tracets_lat.csv` in RE2/RE3) are *not* read: only the
//!   metrics of `data.csv` are. A case holding any of them gets a note saying so. Nor are the
//!   other packagings of RCAEval's data: the Hugging Face release's flat
//!   `re2tt_<service>_<fault>_<n>/metrics.parquet` directories and the `metrics.json` of its
//!   originals. A directory without `data.csv` is not a case.
//!
//! A case that cannot be read at all (`data.csv` unreadable or without a `time` column, an
//! unreadable `inject_time.txt` or `label.json`) is skipped, not silently: [`load()`] prints a
//! warning naming the case and the file to stderr, and the number of cases skipped
//! ([`load_all()`] returns them instead). Loading fails only when no case directory could be
//! read, or the root cannot be walked.
//!
//! # Writing
//!
//! [`write()`] puts each case under `out/<root cause>_<fault>/<n>/` (`n` = 1, 2, ... per folder, in
//! case order), or `out/unlabelled/<n>/`, with:
//!
//! - `data.csv`: `time` = the sorted union of all series' times, then one column per series:
//!   `<service>_<name>` for metrics, `<service>_trace.<name>` for trace statistics,
//!   `<service>_log.<name>` for log statistics and `<service>_template.<key>` for log-template
//!   counts (a name `template:<key>` is written as `template.<key>` and read back as
//!   `template:<key>`). Commas, quotes and line breaks in a name become `;`, `'` and spaces; a
//!   name that then collides with another gets a `~2`, `~3`, ... suffix. `NaN` and infinite
//!   samples are written as empty cells; numbers in their shortest exact form.
//! - `inject_time.txt`: the anchor.
//! - `label.json`: `root_cause_service`, `fault_type`, `action` (if any), `case` (the original
//!   id), `system`, `merge_db_columns: false`, `columns` (each column's `source` and `family`:
//!   `{"ts-auth_log.log_lines": {"source": "log", "family": "traffic"}}`), and when needed
//!   `candidates` (if they differ from the services of the series), `normal_windows` and
//!   `service_names`.
//!
//! RCAEval's naming cannot hold a `_` in a service name. Such names are written with `_` mapped
//! to `-` (in columns, the folder and `root_cause_service`), and `label.json`'s `service_names`
//! maps each written name back to the original, which [`load()`] restores; a mapped name that
//! collides with another service of the case is an error. The fault part of the folder name
//! keeps letters, digits and `-` (`cpu_contention` → `cpu-contention`); `label.json` holds the
//! exact fault type. Call-edge series, alerts, change events and the topology have no place in
//! the format and are not written ([`WriteSummary::edges_skipped`] counts the edge series).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use rootcause_models::case::{Case, Family, Label, Series, Source};
use serde::{Deserialize, Serialize};

use crate::{LoadError, csv_series};

/// The metric file of a case.
const DATA_FILE: &str = "data.csv";
/// The anchor file of a case.
const INJECT_FILE: &str = "inject_time.txt";
/// The label file [`write()`] adds beside `data.csv`.
const LABEL_FILE: &str = "label.json";
/// RCAEval multi-source files this loader does not read.
const UNREAD_FILES: [&str; 5] = [
    "traces.csv",
    "logs.csv",
    "logts.csv",
    "tracets_err.csv",
    "tracets_lat.csv",
];
/// Folder of the cases without a label.
const UNLABELLED: &str = "unlabelled";
/// Column-name prefixes that carry a series' source.
const TRACE_PREFIX: &str = "trace.";
const LOG_PREFIX: &str = "log.";
const TEMPLATE_PREFIX: &str = "template.";
/// Written before a metric name that happens to start with one of the prefixes above.
const METRIC_PREFIX: &str = "metric.";
/// How [`Series::name`] spells a log template's key.
const TEMPLATE_NAME_PREFIX: &str = "template:";

/// What [`write()`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Cases written.
    pub cases: usize,
    /// Cases without a label, written under `unlabelled/`.
    pub unlabelled: usize,
    /// Series written as `data.csv` columns, over all cases.
    pub columns: usize,
    /// Call-edge series left out: RCAEval's `<service>_<metric>` naming has no place for them.
    pub edges_skipped: usize,
    /// Cases in which some service name had its `_` mapped to `-`.
    pub renamed_services: usize,
    /// Columns whose name had to be changed (unsafe characters, or a collision after that).
    pub renamed_columns: usize,
    /// Where each case went, in case order: (original id, directory relative to `out`).
    pub dirs: Vec<(String, String)>,
}

/// `label.json`, as [`write()`] produces it and [`load()`] reads it. Only `root_cause_service` and
/// `fault_type` (and `action`) belong to RCAEval's convention; the rest restores what the
/// format cannot hold.
#[derive(Debug, Default, Serialize, Deserialize)]
struct LabelFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    root_cause_service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fault_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    case: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    merge_db_columns: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    candidates: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    normal_windows: Option<Vec<(i64, i64)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service_names: Option<BTreeMap<String, String>>,
    /// Source and family of each `data.csv` column, by header: RCAEval's names cannot carry
    /// them all (`log_lines` would read back as `Other`, not `Traffic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    columns: Option<BTreeMap<String, ColumnMeta>>,
}

/// Where a `data.csv` column was observed and what it measures, as [`write()`] records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct ColumnMeta {
    source: Source,
    family: Family,
}

/// What [`load_all()`] read: the cases, and the case directories skipped because they could
/// not be read at all.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The cases read, sorted by id.
    pub cases: Vec<Case>,
    /// (case id, why) for every case directory that could not be read, sorted by id.
    pub skipped: Vec<(String, LoadError)>,
}

/// Loads every RCAEval case under `root` (see the module documentation for the rules), sorted
/// by id. A case directory that cannot be read at all is skipped with a warning on stderr that
/// names it, and the number skipped is printed; use [`load_all()`] to get them instead.
///
/// Fails when `root` cannot be walked, or when there are case directories and none of them
/// could be read.
pub fn load(root: &Path) -> Result<Vec<Case>, LoadError> {
    let loaded = load_all(root)?;
    crate::error::warn_skipped("RCAEval", root, &loaded.skipped, loaded.cases.len());
    Ok(loaded.cases)
}

/// [`load()`], returning the skipped case directories rather than printing them.
pub fn load_all(root: &Path) -> Result<Loaded, LoadError> {
    let meta = fs::metadata(root).map_err(|e| LoadError::io(root, e))?;
    if !meta.is_dir() {
        return Err(LoadError::format(root, "not a directory"));
    }
    let mut dirs = Vec::new();
    find_cases(root, &mut dirs)?;
    let root_name = folder_name(root);
    let mut loaded = Loaded::default();
    for dir in &dirs {
        let rel: Vec<String> = dir
            .strip_prefix(root)
            .unwrap_or(dir)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        match load_case(dir, &rel, &root_name) {
            Ok(case) => loaded.cases.push(case),
            Err(error) => loaded.skipped.push((case_id(&rel, &root_name), error)),
        }
    }
    if loaded.cases.is_empty()
        && let Some((id, error)) = loaded.skipped.first()
    {
        return Err(LoadError::format(
            root,
            format!(
                "none of the {} case directories could be read (first, {id}: {error})",
                loaded.skipped.len()
            ),
        ));
    }
    loaded.cases.sort_by(|a, b| a.id.cmp(&b.id));
    loaded.skipped.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(loaded)
}

/// A case's id: its path relative to the root, or the root's folder name for a root that is
/// itself a case.
fn case_id(rel: &[String], root_name: &str) -> String {
    if rel.is_empty() {
        root_name.to_string()
    } else {
        rel.join("/")
    }
}

fn folder_name(path: &Path) -> String {
    let named = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
    };
    named(path)
        .or_else(|| fs::canonicalize(path).ok().and_then(|p| named(&p)))
        .unwrap_or_default()
}

fn find_cases(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    if dir.join(DATA_FILE).is_file() && dir.join(INJECT_FILE).is_file() {
        found.push(dir.to_path_buf());
    }
    let entries = fs::read_dir(dir).map_err(|e| LoadError::io(dir, e))?;
    let mut subdirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LoadError::io(dir, e))?;
        let kind = entry
            .file_type()
            .map_err(|e| LoadError::io(entry.path(), e))?;
        if kind.is_dir() {
            subdirs.push(entry.path());
        }
    }
    subdirs.sort();
    for sub in subdirs {
        find_cases(&sub, found)?;
    }
    Ok(())
}

fn load_case(dir: &Path, rel: &[String], root_name: &str) -> Result<Case, LoadError> {
    let mut notes = Vec::new();
    let id = case_id(rel, root_name);

    let label_path = dir.join(LABEL_FILE);
    let label_file = if label_path.is_file() {
        let text = fs::read_to_string(&label_path).map_err(|e| LoadError::io(&label_path, e))?;
        let parsed: LabelFile = serde_json::from_str(&text)
            .map_err(|e| LoadError::format(&label_path, format!("not a label object: {e}")))?;
        Some(parsed)
    } else {
        None
    };
    let merge_db = label_file
        .as_ref()
        .and_then(|l| l.merge_db_columns)
        .unwrap_or(true);
    let renames = label_file
        .as_ref()
        .and_then(|l| l.service_names.clone())
        .unwrap_or_default();
    let restore = |service: &str| -> String {
        renames
            .get(service)
            .cloned()
            .unwrap_or_else(|| service.to_string())
    };

    let anchor = read_anchor(&dir.join(INJECT_FILE))?;
    let recorded = label_file
        .as_ref()
        .and_then(|l| l.columns.clone())
        .unwrap_or_default();
    let mut series = read_data(&dir.join(DATA_FILE), merge_db, &recorded, &mut notes)?;
    for s in &mut series {
        s.service = restore(&s.service);
    }

    // The nearest `<service>_<fault>` folder strictly between the root and the case directory,
    // as RCAEval's `basename(dirname(dirname(data_path)))`, but tolerant of extra levels.
    let ancestors = rel.len().saturating_sub(1);
    let label_folder = (0..ancestors)
        .rev()
        .find_map(|i| parse_label_folder(&rel[i]).map(|l| (i, l)));

    let label = match &label_file {
        Some(file) => file.root_cause_service.as_ref().map(|root| Label {
            root_cause: restore(root),
            fault_type: file
                .fault_type
                .clone()
                .or_else(|| label_folder.as_ref().map(|(_, (_, f))| f.clone()))
                .unwrap_or_else(|| "unknown".to_string()),
            action: file.action.clone(),
        }),
        None => label_folder.as_ref().map(|(_, (service, fault))| Label {
            root_cause: service.clone(),
            fault_type: fault.clone(),
            action: None,
        }),
    };
    let label = label.map(|mut label| {
        // Labels follow the columns: under RCAEval's mapping `<x>-db` is `<x>`.
        if merge_db
            && let Some(base) = label.root_cause.strip_suffix("-db")
            && !base.is_empty()
        {
            label.root_cause = base.to_string();
        }
        label
    });

    let system = match label_file.as_ref().and_then(|l| l.system.clone()) {
        Some(system) => system,
        None => match &label_folder {
            Some((0, _)) => root_name.to_string(),
            Some(_) => rel[0].clone(),
            None if rel.len() >= 2 => rel[0].clone(),
            None => root_name.to_string(),
        },
    };

    let candidates: Vec<String> = match label_file.as_ref().and_then(|l| l.candidates.clone()) {
        Some(listed) => listed
            .iter()
            .map(|c| restore(c))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        None => series
            .iter()
            .map(|s| s.service.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    if let Some(label) = &label
        && !candidates.contains(&label.root_cause)
    {
        notes.push(format!(
            "root cause {:?} is not among the {} candidate services of data.csv",
            label.root_cause,
            candidates.len()
        ));
    }

    let present: Vec<&str> = UNREAD_FILES
        .iter()
        .copied()
        .filter(|f| dir.join(f).exists())
        .collect();
    if !present.is_empty() {
        notes.push(format!(
            "{} not read: this loader reads only the metrics of data.csv",
            present.join(", ")
        ));
    }

    let normal_windows = label_file
        .as_ref()
        .and_then(|l| l.normal_windows.clone())
        .unwrap_or_default();

    Ok(Case {
        id,
        system,
        anchor,
        candidates,
        series,
        normal_windows,
        label,
        notes,
        ..Case::default()
    })
}

/// `<service>_<fault>` split at the last `_`, or `None` when the name is not a label folder.
fn parse_label_folder(name: &str) -> Option<(String, String)> {
    let (service, fault) = name.rsplit_once('_')?;
    let fault_ok = fault
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && fault.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let service_ok = !service.is_empty() && !service.chars().any(char::is_whitespace);
    (fault_ok && service_ok).then(|| (service.to_string(), fault.to_string()))
}

fn read_anchor(path: &Path) -> Result<i64, LoadError> {
    let text = fs::read_to_string(path).map_err(|e| LoadError::io(path, e))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| LoadError::format(path, "empty: expected unix seconds"))?;
    csv_series::parse_time(line)
        .ok_or_else(|| LoadError::format(path, format!("line {line:?} is not unix seconds")))
}

/// Service, source, family and series name of a column header, or why it has none.
fn split_header(header: &str, merge_db: bool) -> Result<(String, Source, Family, String), String> {
    let Some((service, metric)) = header.split_once('_') else {
        return Err("has no `_` to split into service and metric".to_string());
    };
    if service.is_empty() || metric.is_empty() {
        return Err("has an empty service or metric part".to_string());
    }
    let (source, family, name) = if let Some(rest) = metric.strip_prefix(TRACE_PREFIX) {
        (Source::Trace, Family::classify(rest), rest.to_string())
    } else if let Some(rest) = metric.strip_prefix(LOG_PREFIX) {
        (Source::Log, Family::classify(rest), rest.to_string())
    } else if let Some(rest) = metric.strip_prefix(TEMPLATE_PREFIX) {
        (
            Source::Log,
            Family::Template,
            format!("{TEMPLATE_NAME_PREFIX}{rest}"),
        )
    } else {
        let name = match metric.strip_prefix(METRIC_PREFIX) {
            Some(rest) if has_source_prefix(rest) => rest,
            _ => metric,
        };
        (Source::Metric, Family::classify(name), name.to_string())
    };
    match service.strip_suffix("-db") {
        Some(base) if merge_db && !base.is_empty() => {
            Ok((base.to_string(), source, family, header.to_string()))
        }
        _ => Ok((service.to_string(), source, family, name)),
    }
}

fn has_source_prefix(name: &str) -> bool {
    [TRACE_PREFIX, LOG_PREFIX, TEMPLATE_PREFIX, METRIC_PREFIX]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Reads `data.csv`: the shared table reader, with RCAEval's header split, and the source and
/// family `label.json` records for a column where it records one.
fn read_data(
    path: &Path,
    merge_db: bool,
    recorded: &BTreeMap<String, ColumnMeta>,
    notes: &mut Vec<String>,
) -> Result<Vec<Series>, LoadError> {
    let mut split = |header: &str| {
        let (service, mut source, mut family, name) = split_header(header, merge_db)?;
        if let Some(meta) = recorded.get(header) {
            source = meta.source;
            family = meta.family;
        }
        Ok(csv_series::Column {
            service,
            source,
            family,
            name,
        })
    };
    csv_series::read(path, &mut split, notes)
}

/// Writes `cases` in RCAEval's layout under `out` (see the module documentation). `out` must
/// not exist or be empty, so stale cases from an earlier run cannot mix in. The output depends
/// only on `cases` and their order.
pub fn write(out: &Path, cases: &[Case]) -> Result<WriteSummary, LoadError> {
    if out.exists() {
        let mut entries = fs::read_dir(out).map_err(|e| LoadError::io(out, e))?;
        if entries.next().is_some() {
            return Err(LoadError::format(
                out,
                "output directory is not empty: write into a new one",
            ));
        }
    }
    fs::create_dir_all(out).map_err(|e| LoadError::io(out, e))?;
    let mut summary = WriteSummary::default();
    let mut per_folder: BTreeMap<String, usize> = BTreeMap::new();
    for case in cases {
        let names = service_names(case, out)?;
        let folder = match &case.label {
            Some(label) => format!(
                "{}_{}",
                written_service(&names, &label.root_cause),
                fault_token(&label.fault_type)
            ),
            None => UNLABELLED.to_string(),
        };
        let n = per_folder.entry(folder.clone()).or_insert(0);
        *n += 1;
        let rel = format!("{folder}/{n}");
        let dir = out.join(&folder).join(n.to_string());
        fs::create_dir_all(&dir).map_err(|e| LoadError::io(&dir, e))?;

        let (renamed_columns, column_meta) = write_data(&dir.join(DATA_FILE), case, &names)?;
        let inject = dir.join(INJECT_FILE);
        fs::write(&inject, format!("{}\n", case.anchor)).map_err(|e| LoadError::io(&inject, e))?;

        let series_services: BTreeSet<&str> =
            case.series.iter().map(|s| s.service.as_str()).collect();
        let candidates_differ = case.candidates.len() != series_services.len()
            || case
                .candidates
                .iter()
                .any(|c| !series_services.contains(c.as_str()));
        let service_map: BTreeMap<String, String> = names
            .iter()
            .filter(|(original, written)| original != written)
            .map(|(original, written)| (written.clone(), original.clone()))
            .collect();
        let label_file = LabelFile {
            root_cause_service: case
                .label
                .as_ref()
                .map(|l| written_service(&names, &l.root_cause)),
            fault_type: case.label.as_ref().map(|l| l.fault_type.clone()),
            action: case.label.as_ref().and_then(|l| l.action.clone()),
            case: Some(case.id.clone()),
            system: Some(case.system.clone()),
            merge_db_columns: Some(false),
            candidates: candidates_differ.then(|| {
                case.candidates
                    .iter()
                    .map(|c| written_service(&names, c))
                    .collect()
            }),
            normal_windows: (!case.normal_windows.is_empty()).then(|| case.normal_windows.clone()),
            service_names: (!service_map.is_empty()).then_some(service_map.clone()),
            columns: (!column_meta.is_empty()).then_some(column_meta),
        };
        let label_path = dir.join(LABEL_FILE);
        let json = serde_json::to_string_pretty(&label_file)
            .map_err(|e| LoadError::format(&label_path, e.to_string()))?;
        fs::write(&label_path, json + "\n").map_err(|e| LoadError::io(&label_path, e))?;

        summary.cases += 1;
        summary.unlabelled += usize::from(case.label.is_none());
        summary.columns += case.series.len();
        summary.edges_skipped += case.edges.len();
        summary.renamed_services += usize::from(!service_map.is_empty());
        summary.renamed_columns += renamed_columns;
        summary.dirs.push((case.id.clone(), rel));
    }
    Ok(summary)
}

/// Original service name → the name written, for every service of the case (series,
/// candidates, label).
fn service_names(case: &Case, path: &Path) -> Result<BTreeMap<String, String>, LoadError> {
    let all: BTreeSet<&str> = case
        .series
        .iter()
        .map(|s| s.service.as_str())
        .chain(case.candidates.iter().map(String::as_str))
        .chain(case.label.iter().map(|l| l.root_cause.as_str()))
        .collect();
    let mut names = BTreeMap::new();
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    for service in all {
        if service.is_empty()
            || service == "."
            || service == ".."
            || service
                .chars()
                .any(|c| matches!(c, ',' | '"' | '/' | '\\') || c.is_control())
        {
            return Err(LoadError::format(
                path,
                format!(
                    "case {:?}: service name {service:?} cannot be written in RCAEval's format \
                     (empty, or holds a comma, quote, slash or control character)",
                    case.id
                ),
            ));
        }
        let written = service.replace('_', "-");
        if let Some(other) = taken.insert(written.clone(), service.to_string()) {
            return Err(LoadError::format(
                path,
                format!(
                    "case {:?}: services {other:?} and {service:?} would both be written as \
                     {written:?} (RCAEval's names cannot hold `_`)",
                    case.id
                ),
            ));
        }
        names.insert(service.to_string(), written);
    }
    Ok(names)
}

fn written_service(names: &BTreeMap<String, String>, service: &str) -> String {
    names
        .get(service)
        .cloned()
        .unwrap_or_else(|| service.replace('_', "-"))
}

/// The fault part of a folder name: one word of letters, digits and `-`, starting with a letter,
/// so that the folder splits back at its last `_`.
fn fault_token(fault: &str) -> String {
    let token: String = fault
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let token = token.trim_matches('-').to_string();
    if token.is_empty() {
        "unknown".to_string()
    } else if token.starts_with(|c: char| c.is_ascii_alphabetic()) {
        token
    } else {
        format!("fault-{token}")
    }
}

/// A series name made safe for a CSV header: no comma, quote or line break.
fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ',' => ';',
            '"' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

fn column_name(series: &Series, service: &str) -> String {
    let name = safe_name(&series.name);
    let metric = match series.source {
        Source::Metric if has_source_prefix(&name) => format!("{METRIC_PREFIX}{name}"),
        Source::Metric => name,
        Source::Trace => format!("{TRACE_PREFIX}{name}"),
        Source::Log if series.family == Family::Template => {
            let key = name.strip_prefix(TEMPLATE_NAME_PREFIX).unwrap_or(&name);
            format!("{TEMPLATE_PREFIX}{key}")
        }
        Source::Log => format!("{LOG_PREFIX}{name}"),
    };
    format!("{service}_{metric}")
}

/// Writes `data.csv`; returns how many column names had to change, and each column's source
/// and family for `label.json`.
fn write_data(
    path: &Path,
    case: &Case,
    names: &BTreeMap<String, String>,
) -> Result<(usize, BTreeMap<String, ColumnMeta>), LoadError> {
    let mut used = BTreeSet::from(["time".to_string()]);
    let mut renamed = 0;
    let mut columns = Vec::with_capacity(case.series.len());
    let mut meta = BTreeMap::new();
    for series in &case.series {
        let service = written_service(names, &series.service);
        let base = column_name(series, &service);
        let mut column = base.clone();
        let mut k = 1;
        while !used.insert(column.clone()) {
            k += 1;
            column = format!("{base}~{k}");
        }
        let unsafe_name = safe_name(&series.name) != series.name;
        renamed += usize::from(unsafe_name || k > 1);
        meta.insert(
            column.clone(),
            ColumnMeta {
                source: series.source,
                family: series.family,
            },
        );
        columns.push((column, series));
    }
    csv_series::write(path, &columns)?;
    Ok((renamed, meta))
}

#[cfg(test)]
mod tests;
