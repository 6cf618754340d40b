//! The one wide CSV table of per-service series that both RCAEval's `data.csv` ([`crate::rcaeval`])
//! and the simulator's `metrics.csv` ([`crate::simulator`]) use: a `time` column (unix seconds)
//! and one column per series, named `<service>_<metric>`.
//!
//! How a header splits into service and series is the caller's: RCAEval splits at the first `_`,
//! the simulator by its known metric suffixes (its service names may hold `_`). Everything else
//! is shared:
//!
//! - **Writing** ([`write()`]): rows at the sorted union of all series' times; a cell is empty
//!   where a series has no sample at that time or a non-finite one; numbers in their shortest
//!   exact form. The header goes through the CSV writer, so names that need
//!   quoting are quoted. The output depends only on the columns and their order.
//! - **Reading** ([`read()`]): the `time` column may be anywhere (case-insensitive), integer or
//!   float, floored to whole seconds. Rows are sorted by time (stably) and a row repeating an
//!   earlier time is dropped, keeping the first in file order, so every series' times are
//!   strictly increasing; all series share the resulting grid. A row with a malformed time, or
//!   bytes that are not UTF-8 there, is dropped. Empty cells and `NaN`/`NA`/`null` spellings
//!   read as `NaN`; infinities and malformed numbers read as `NaN`. A column whose non-empty
//!   cells hold no number at all is skipped, and so are further `time` columns, repeated headers
//!   and columns the caller cannot split. Each of these leaves a note naming the file. Only a
//!   file that cannot be read at all (I/O error, no `time` column) is an error.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use rootcause_models::case::{Family, Series, Source};

use crate::LoadError;

/// What a column header names: the series a column becomes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Column {
    pub service: String,
    pub source: Source,
    pub family: Family,
    pub name: String,
}

/// Appends the shortest text that reads back as exactly `v`, without the hundreds of digits
/// `Display` gives very large or very small numbers.
fn push_number(text: &mut String, v: f64) {
    let magnitude = v.abs();
    let _ = if magnitude != 0.0 && !(1e-5..1e16).contains(&magnitude) {
        write!(text, "{v:e}")
    } else {
        write!(text, "{v}")
    };
}

/// Writes `columns` (header, series) as one table to `path` (see the module documentation).
pub(crate) fn write(path: &Path, columns: &[(String, &Series)]) -> Result<(), LoadError> {
    fs::write(path, table(columns, path)?).map_err(|e| LoadError::io(path, e))
}

/// The bytes [`write()`] puts in the file.
fn table(columns: &[(String, &Series)], path: &Path) -> Result<Vec<u8>, LoadError> {
    let fail = |e: csv::Error| LoadError::format(path, e.to_string());
    let grid: Vec<i64> = columns
        .iter()
        .flat_map(|(_, s)| s.times.iter().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut header = csv::Writer::from_writer(Vec::new());
    header.write_field("time").map_err(fail)?;
    for (name, _) in columns {
        header.write_field(name).map_err(fail)?;
    }
    header.write_record(None::<&[u8]>).map_err(fail)?;
    let mut bytes = header
        .into_inner()
        .map_err(|e| LoadError::format(path, e.to_string()))?;

    // Each series on the grid, NaN where it has no sample; the first sample of a time wins.
    let cells: Vec<Vec<f64>> = columns
        .iter()
        .map(|(_, series)| {
            let mut values = vec![f64::NAN; grid.len()];
            let mut filled = vec![false; grid.len()];
            for (t, v) in series.times.iter().zip(&series.values) {
                if let Ok(row) = grid.binary_search(t)
                    && !filled[row]
                {
                    filled[row] = true;
                    values[row] = *v;
                }
            }
            values
        })
        .collect();
    // Times and numbers never need quoting: formatting them directly is much faster than a
    // CSV writer's record per row.
    let mut text = String::with_capacity(grid.len() * (columns.len() * 8 + 12));
    for (row, t) in grid.iter().enumerate() {
        let _ = write!(text, "{t}");
        for column in &cells {
            text.push(',');
            let value = column[row];
            if value.is_finite() {
                push_number(&mut text, value);
            }
        }
        text.push('\n');
    }
    bytes.extend_from_slice(text.as_bytes());
    Ok(bytes)
}

/// Unix seconds, integer or float, floored.
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = text.parse::<i64>() {
        return Some(t);
    }
    let t = text.parse::<f64>().ok()?;
    // i64::MAX as f64 rounds up to 2^63, so the bound must be strict.
    (t.is_finite() && t >= i64::MIN as f64 && t < i64::MAX as f64).then(|| t.floor() as i64)
}

enum Cell {
    Value(f64),
    Empty,
    NonFinite,
    Malformed,
}

fn parse_cell(text: &str) -> Cell {
    let text = text.trim();
    if text.is_empty()
        || matches!(
            text.to_ascii_lowercase().as_str(),
            "na" | "n/a" | "null" | "none" | "-nan"
        )
    {
        return Cell::Empty;
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Cell::Value(v),
        Ok(v) if v.is_nan() => Cell::Empty,
        Ok(_) => Cell::NonFinite,
        Err(_) => Cell::Malformed,
    }
}

/// One column being read.
struct Reading {
    index: usize,
    header: String,
    column: Column,
    values: Vec<f64>,
    numbers: usize,
    non_finite: usize,
    malformed: usize,
    first_malformed: Option<(u64, String)>,
}

/// Reads the table at `path` (see the module documentation). `split` turns a header into the
/// series it names, or says why it names none. Problems with rows, cells and columns become
/// `notes`; only a file that cannot be read at all is an error.
pub(crate) fn read(
    path: &Path,
    split: &mut dyn FnMut(&str) -> Result<Column, String>,
    notes: &mut Vec<String>,
) -> Result<Vec<Series>, LoadError> {
    let file = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    // Byte records with a flexible width: no row can make the reader give up, a bad one is
    // dropped or read as NaN cells below.
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| csv_error(path, e))?;
    let headers: Vec<String> = reader
        .byte_headers()
        .map_err(|e| csv_error(path, e))?
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = String::from_utf8_lossy(h);
            // Kept as written otherwise, as pandas keeps them.
            if i == 0 {
                h.trim_start_matches('\u{feff}').to_string()
            } else {
                h.into_owned()
            }
        })
        .collect();
    let is_time = |h: &str| h.trim().eq_ignore_ascii_case("time");
    let Some(time_index) = headers.iter().position(|h| is_time(h)) else {
        return Err(LoadError::format(path, "no `time` column"));
    };

    let mut columns = Vec::new();
    let mut seen = BTreeSet::new();
    let mut series_keys = BTreeSet::new();
    for (index, header) in headers.iter().enumerate() {
        if index == time_index {
            continue;
        }
        if is_time(header) {
            notes.push(format!(
                "{file}: column {} is another `time` column: skipped",
                index + 1
            ));
            continue;
        }
        if !seen.insert(header.clone()) {
            notes.push(format!("{file}: repeated column {header:?}: skipped"));
            continue;
        }
        match split(header) {
            Ok(column) => {
                let key = (column.service.clone(), column.source, column.name.clone());
                if !series_keys.insert(key) {
                    notes.push(format!(
                        "{file}: column {header:?} repeats series {:?} of {:?}: skipped",
                        column.name, column.service
                    ));
                    continue;
                }
                columns.push(Reading {
                    index,
                    header: header.clone(),
                    column,
                    values: Vec::new(),
                    numbers: 0,
                    non_finite: 0,
                    malformed: 0,
                    first_malformed: None,
                });
            }
            Err(why) => notes.push(format!("{file}: column {header:?} {why}: skipped")),
        }
    }

    let mut times = Vec::new();
    let mut bad_times = 0usize;
    let mut first_bad_time = None;
    let mut fractional = 0usize;
    let mut bad_records = 0usize;
    let mut first_bad_record = None;
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => match e.into_kind() {
                csv::ErrorKind::Io(e) => return Err(LoadError::io(path, e)),
                kind => {
                    // Not expected of byte records with a flexible width; skipped all the same.
                    bad_records += 1;
                    first_bad_record.get_or_insert(format!("{kind:?}"));
                    continue;
                }
            },
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|c| c.trim_ascii().is_empty()) {
            continue;
        }
        let raw_time = record.get(time_index).unwrap_or(b"");
        let Some(time) = std::str::from_utf8(raw_time).ok().and_then(parse_time) else {
            bad_times += 1;
            first_bad_time.get_or_insert((line, String::from_utf8_lossy(raw_time).into_owned()));
            continue;
        };
        if std::str::from_utf8(raw_time)
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .is_some_and(|t| t.fract() != 0.0)
        {
            fractional += 1;
        }
        times.push(time);
        for column in &mut columns {
            let bytes = record.get(column.index).unwrap_or(b"");
            let cell = std::str::from_utf8(bytes).map_or(Cell::Malformed, parse_cell);
            let value = match cell {
                Cell::Value(v) => {
                    column.numbers += 1;
                    v
                }
                Cell::Empty => f64::NAN,
                Cell::NonFinite => {
                    column.non_finite += 1;
                    column.numbers += 1;
                    f64::NAN
                }
                Cell::Malformed => {
                    column.malformed += 1;
                    column
                        .first_malformed
                        .get_or_insert_with(|| (line, String::from_utf8_lossy(bytes).into_owned()));
                    f64::NAN
                }
            };
            column.values.push(value);
        }
    }
    if let Some(first) = first_bad_record {
        notes.push(format!(
            "{file}: {bad_records} unreadable rows dropped (first: {first})"
        ));
    }
    if let Some((line, text)) = first_bad_time {
        notes.push(format!(
            "{file}: {bad_times} rows with a malformed time dropped (first at line {line}: {text:?})"
        ));
    }
    if fractional > 0 {
        notes.push(format!(
            "{file}: {fractional} fractional times floored to whole seconds"
        ));
    }

    // A stable sort keeps file order among equal times, so the first row of a time survives.
    let mut order: Vec<usize> = (0..times.len()).collect();
    if times.windows(2).any(|w| w[0] > w[1]) {
        notes.push(format!("{file}: rows out of time order: sorted"));
        order.sort_by_key(|&i| times[i]);
    }
    let before = order.len();
    order.dedup_by_key(|&mut i| times[i]);
    if order.len() < before {
        notes.push(format!(
            "{file}: {} rows repeating an earlier time dropped",
            before - order.len()
        ));
    }
    let grid: Vec<i64> = order.iter().map(|&i| times[i]).collect();

    let mut series = Vec::with_capacity(columns.len());
    for reading in columns {
        if reading.numbers == 0 && reading.malformed > 0 {
            notes.push(format!(
                "{file}: column {:?} is not numeric: skipped",
                reading.header
            ));
            continue;
        }
        if let Some((line, text)) = &reading.first_malformed {
            notes.push(format!(
                "{file}: column {:?}: {} malformed numbers read as NaN (first at line {line}: {text:?})",
                reading.header, reading.malformed
            ));
        }
        if reading.non_finite > 0 {
            notes.push(format!(
                "{file}: column {:?}: {} infinite values read as NaN",
                reading.header, reading.non_finite
            ));
        }
        let Column {
            service,
            source,
            family,
            name,
        } = reading.column;
        series.push(Series {
            service,
            source,
            family,
            name,
            times: grid.clone(),
            values: order.iter().map(|&i| reading.values[i]).collect(),
        });
    }
    Ok(series)
}

pub(crate) fn csv_error(path: &Path, error: csv::Error) -> LoadError {
    match error.into_kind() {
        csv::ErrorKind::Io(e) => LoadError::io(path, e),
        kind => LoadError::format(path, format!("{kind:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_number(v: f64) -> String {
        let mut text = String::new();
        push_number(&mut text, v);
        text
    }

    fn metric(service: &str, name: &str, times: &[i64], values: &[f64]) -> Series {
        Series {
            service: service.into(),
            source: Source::Metric,
            family: Family::classify(name),
            name: name.into(),
            times: times.to_vec(),
            values: values.to_vec(),
        }
    }

    fn first_underscore(header: &str) -> Result<Column, String> {
        let (service, name) = header.split_once('_').ok_or("has no `_`")?;
        Ok(Column {
            service: service.into(),
            source: Source::Metric,
            family: Family::classify(name),
            name: name.into(),
        })
    }

    #[test]
    fn csv_series_numbers_are_written_exactly_and_short() {
        for v in [
            0.1,
            1.0 / 3.0,
            1e-9,
            1e20,
            1e300,
            -0.0,
            123456.789,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            let text = format_number(v);
            assert_eq!(text.parse::<f64>().ok(), Some(v), "{text}");
            assert!(text.len() < 30, "{text}");
        }
        assert_eq!(format_number(5.0), "5");
        assert_eq!(format_number(12.3), "12.3");
    }

    #[test]
    fn csv_series_write_then_read_round_trips_on_the_union_grid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.csv");
        let a = metric("a", "cpu", &[60, 180], &[1e300, f64::INFINITY]);
        let b = metric("b", "mem", &[120, 180], &[f64::NAN, -2.5]);
        write(&path, &[("a_cpu".into(), &a), ("b_mem".into(), &b)]).expect("write");
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(text, "time,a_cpu,b_mem\n60,1e300,\n120,,\n180,,-2.5\n");
        let mut notes = Vec::new();
        let back = read(&path, &mut first_underscore, &mut notes).expect("read");
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(back[0].times, [60, 120, 180]);
        assert_eq!(back[0].values[0], 1e300);
        assert_eq!(back[1].values[2], -2.5);
    }

    #[test]
    fn csv_series_bad_rows_are_dropped_with_notes_not_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data.csv");
        let mut bytes = b"time,a_cpu,a_mem\n3,3,3\n1,1,1\n".to_vec();
        // A row whose time is not UTF-8, a cell that is not, a short row, a long row.
        bytes.extend_from_slice(b"\xff\xfe,9,9\n2,\xff,2\n4,4\n5,5,5,5,5\n3,7,7\n");
        fs::write(&path, &bytes).expect("write");
        let mut notes = Vec::new();
        let series = read(&path, &mut first_underscore, &mut notes).expect("read");
        let notes = notes.join("\n");
        assert_eq!(series[0].times, [1, 2, 3, 4, 5], "{notes}");
        assert!(series[0].values[1].is_nan());
        assert_eq!(series[0].values[2], 3.0, "first row of a time kept");
        assert!(series[1].values[3].is_nan());
        assert!(notes.contains("1 rows with a malformed time"), "{notes}");
        assert!(notes.contains("out of time order"), "{notes}");
        assert!(notes.contains("1 rows repeating"), "{notes}");
        assert!(notes.contains("\"a_cpu\": 1 malformed"), "{notes}");

        fs::write(&path, "stamp,a_cpu\n1,1\n").expect("write");
        let err = read(&path, &mut first_underscore, &mut Vec::new()).expect_err("no time");
        assert!(err.to_string().contains("no `time` column"), "{err}");
    }
}
