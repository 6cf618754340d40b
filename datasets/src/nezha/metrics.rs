//! Per-pod metric files (`metric/<pod>_metric.csv`), read once per date and averaged per
//! service, so every case of the date only slices a window out of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rootcause_models::case::{Family, Series, Source};

use super::files::{self, DateDirs, service_of_pod};
use crate::LoadError;

/// The suffix that marks a pod's metric file. Other CSV files in the directory (the frontend
/// SLI `front_service.csv`) describe no pod and are not read.
const POD_SUFFIX: &str = "_metric.csv";

/// One metric of one service: the mean over the service's pods at each time.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    times: Vec<i64>,
    values: Vec<f64>,
}

/// All metrics of one date.
#[derive(Debug, Clone, Default)]
pub(super) struct DateMetrics {
    /// Service → its metrics, in the files' column order.
    services: BTreeMap<String, Vec<Column>>,
    /// The earliest sample time of the date.
    first: Option<i64>,
    /// Rows rejected while reading, for every case's notes.
    pub notes: Vec<String>,
}

impl DateMetrics {
    /// The services that have a metric file, sorted: the candidates of every case of the date.
    pub fn services(&self) -> Vec<String> {
        self.services.keys().cloned().collect()
    }

    /// The samples at times in `[from, to)`, one series per service and metric.
    pub fn window(&self, from: i64, to: i64) -> Vec<Series> {
        let mut series = Vec::new();
        for (service, columns) in &self.services {
            for column in columns {
                let a = column.times.partition_point(|&t| t < from);
                let b = column.times.partition_point(|&t| t < to);
                if a >= b {
                    continue;
                }
                series.push(Series {
                    service: service.clone(),
                    source: Source::Metric,
                    family: Family::classify(&column.name),
                    name: column.name.clone(),
                    times: column.times[a..b].to_vec(),
                    values: column.values[a..b].to_vec(),
                });
            }
        }
        series
    }

    /// Seconds of the window `[from, ...)` before the first sample of the date, when the date's
    /// metrics start more than one sample step late.
    pub fn late_start(&self, from: i64) -> Option<i64> {
        self.first
            .filter(|&first| first > from + 60)
            .map(|first| first - from)
    }
}

/// The pod metric files of a date directory: pod name → path (gzipped preferred).
pub(super) fn pod_files(dir: &Path) -> Result<BTreeMap<String, PathBuf>, LoadError> {
    let mut pods = BTreeMap::new();
    for path in files::read_dir(dir)? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let gz = name.ends_with(".gz");
        let Some(pod) = name
            .strip_suffix(".gz")
            .unwrap_or(name)
            .strip_suffix(POD_SUFFIX)
        else {
            continue;
        };
        if gz || !pods.contains_key(pod) {
            pods.insert(pod.to_string(), path.clone());
        }
    }
    Ok(pods)
}

/// Reads every pod metric file of `date` and averages pods per service.
pub(super) fn read(date: &DateDirs) -> Result<DateMetrics, LoadError> {
    let dir = date.faults.join("metric");
    let mut pods_by_service: BTreeMap<String, Vec<PodTable>> = BTreeMap::new();
    let mut notes = Vec::new();
    for (pod, path) in pod_files(&dir)? {
        let table = read_pod(&path, date)?;
        if table.malformed > 0 || table.bad_times > 0 {
            notes.push(format!(
                "metric {}: {} malformed rows and {} rows with an unusable TimeStamp skipped",
                display_name(&path),
                table.malformed,
                table.bad_times
            ));
        }
        pods_by_service
            .entry(service_of_pod(&pod).to_string())
            .or_default()
            .push(table);
    }
    let first = pods_by_service
        .values()
        .flatten()
        .filter_map(|t| t.times.first().copied())
        .min();
    let services = pods_by_service
        .into_iter()
        .map(|(service, pods)| (service, average(&pods)))
        .collect();
    Ok(DateMetrics {
        services,
        first,
        notes,
    })
}

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// One pod's numeric columns, rows in file order.
#[derive(Debug, Default)]
struct PodTable {
    times: Vec<i64>,
    columns: Vec<(String, Vec<f64>)>,
    malformed: usize,
    bad_times: usize,
}

fn read_pod(path: &Path, date: &DateDirs) -> Result<PodTable, LoadError> {
    let mut reader = files::csv_reader(path)?;
    let header = files::header(&mut reader, path)?;
    let time_column = files::column(&header, "TimeStamp", path)?;
    let mut table = PodTable::default();
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); header.len()];
    // A column is a metric when at least one of its cells is a number; `Time` and `PodName`
    // never are.
    let mut numeric = vec![false; header.len()];
    let malformed = files::for_each_record(&mut reader, header.len(), |record| {
        let Some(time) =
            parse_seconds(files::text(record.get(time_column))).filter(|&t| date.plausible(t))
        else {
            table.bad_times += 1;
            return;
        };
        table.times.push(time);
        for (c, cell) in record.iter().enumerate() {
            let text = files::text(Some(cell));
            let value = parse_cell(text);
            numeric[c] |= value.is_some() && !text.is_empty();
            values[c].push(value.unwrap_or(f64::NAN));
        }
    });
    table.malformed += malformed;
    for (c, (name, column)) in header.iter().zip(values).enumerate() {
        if c == time_column || !numeric[c] {
            continue;
        }
        table
            .columns
            .push((name.clone(), no_requests_as_nan(name, column)));
    }
    Ok(table)
}

/// A latency of exactly 0 means the pod served no requests in that step, not that it answered
/// instantly: record it as not observed.
fn no_requests_as_nan(name: &str, mut column: Vec<f64>) -> Vec<f64> {
    if Family::classify(name) == Family::Latency {
        for value in &mut column {
            if *value == 0.0 {
                *value = f64::NAN;
            }
        }
    }
    column
}

/// Unix seconds, written as an integer or a decimal.
fn parse_seconds(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|t| t.is_finite())
            .map(|t| t.floor() as i64)
    })
}

/// A number (`NaN` included), `Some(NaN)` for an empty cell, `None` for text.
fn parse_cell(text: &str) -> Option<f64> {
    if text.is_empty() {
        return Some(f64::NAN);
    }
    text.parse::<f64>()
        .ok()
        .map(|v| if v.is_finite() { v } else { f64::NAN })
}

/// The mean over pods at each sample time, ignoring pods that observed nothing then.
fn average(pods: &[PodTable]) -> Vec<Column> {
    let mut names: Vec<&str> = Vec::new();
    for pod in pods {
        for (name, _) in &pod.columns {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    names
        .into_iter()
        .map(|name| {
            let mut sums: BTreeMap<i64, (f64, u32)> = BTreeMap::new();
            for pod in pods {
                let Some((_, values)) = pod.columns.iter().find(|(n, _)| n == name) else {
                    continue;
                };
                for (&time, &value) in pod.times.iter().zip(values) {
                    let slot = sums.entry(time).or_insert((0.0, 0));
                    if value.is_finite() {
                        slot.0 += value;
                        slot.1 += 1;
                    }
                }
            }
            Column {
                name: name.to_string(),
                times: sums.keys().copied().collect(),
                values: sums
                    .values()
                    .map(|&(sum, n)| if n > 0 { sum / f64::from(n) } else { f64::NAN })
                    .collect(),
            }
        })
        .collect()
}
