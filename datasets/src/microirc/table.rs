//! One of MicroIRC's wide CSV files: a `timestamp` column (`YYYY-MM-DD HH:MM:SS`, naive UTC),
//! first in some files and last in others, and numeric columns.

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, NaiveDate};

use crate::LoadError;
use crate::csv_series::csv_error;

/// The time column's name.
const TIME_COLUMN: &str = "timestamp";

/// A file's numeric columns on its own time grid.
#[derive(Debug, Clone, Default)]
pub(super) struct Table {
    /// The headers of the columns kept, in file order.
    pub headers: Vec<String>,
    /// Unix seconds of each row, strictly increasing.
    pub times: Vec<i64>,
    /// One column per header, one value per time; `NaN` for an empty or malformed cell.
    pub columns: Vec<Vec<f64>>,
}

/// Parses `YYYY-MM-DD HH:MM:SS` (or with `T`), read as UTC, into unix seconds.
pub(super) fn parse_datetime(text: &[u8]) -> Option<i64> {
    let text = text.trim_ascii();
    if text.len() != 19
        || text[4] != b'-'
        || text[7] != b'-'
        || !matches!(text[10], b' ' | b'T')
        || text[13] != b':'
        || text[16] != b':'
    {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        text[from..to].iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let year = i32::try_from(number(0, 4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, number(5, 7)?, number(8, 10)?)?;
    let time = date.and_hms_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?)?;
    Some(time.and_utc().timestamp())
}

/// `t` as `YYYY-MM-DD HH:MM:SS` UTC, for notes.
pub(super) fn format_time(t: i64) -> String {
    DateTime::from_timestamp(t, 0).map_or_else(
        || t.to_string(),
        |d| d.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// A cell: empty means no data, `NaN`; a malformed or infinite number is `NaN` too, and counted.
fn parse_cell(bytes: &[u8]) -> Result<f64, ()> {
    let bytes = bytes.trim_ascii();
    if bytes.is_empty() {
        return Ok(f64::NAN);
    }
    match std::str::from_utf8(bytes).map(str::parse::<f64>) {
        Ok(Ok(v)) if v.is_finite() => Ok(v),
        _ => Err(()),
    }
}

/// Rows dropped for one reason: how many, and the first one's line and text.
#[derive(Default)]
struct Dropped {
    count: usize,
    first: Option<(u64, String)>,
}

impl Dropped {
    fn add(&mut self, line: u64, what: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some((line, what()));
        }
    }

    fn note(&self, notes: &mut Vec<String>, file: &str, what: &str) {
        if let Some((line, text)) = &self.first {
            notes.push(format!(
                "{file}: {} {what} (first at line {line}: {text})",
                self.count
            ));
        }
    }
}

/// Reads the file at `path`, keeping the columns whose header `keep` accepts. `file` names it in
/// notes. Rows are sorted by time; a row repeating an earlier time is dropped (the first in
/// file order stays), and so is a row whose field count differs from the header's or whose time
/// is malformed; gaps in the time grid are noted. Only a file that cannot be read at all, or has
/// no `timestamp` column, is an error.
pub(super) fn read(
    path: &Path,
    file: &str,
    keep: &dyn Fn(&str) -> bool,
    notes: &mut Vec<String>,
) -> Result<Table, LoadError> {
    // A flexible width, so that a ragged row is seen (and dropped) rather than an error.
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| csv_error(path, e))?;
    let all: Vec<String> = reader
        .byte_headers()
        .map_err(|e| csv_error(path, e))?
        .iter()
        .map(|h| {
            String::from_utf8_lossy(h)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_string()
        })
        .collect();
    let Some(time_index) = all.iter().position(|h| h.eq_ignore_ascii_case(TIME_COLUMN)) else {
        return Err(LoadError::format(path, "no `timestamp` column"));
    };
    let mut seen = HashSet::new();
    let mut kept: Vec<usize> = Vec::new();
    for (i, header) in all.iter().enumerate() {
        if i == time_index || !keep(header) {
            continue;
        }
        if seen.insert(header.as_str()) {
            kept.push(i);
        } else {
            notes.push(format!("{file}: repeated column {header:?} skipped"));
        }
    }

    let mut times = Vec::new();
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); kept.len()];
    let mut ragged = Dropped::default();
    let mut bad_times = Dropped::default();
    let mut malformed = Dropped::default();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(path, e)),
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|c| c.trim_ascii().is_empty()) {
            continue;
        }
        if record.len() != all.len() {
            ragged.add(line, || {
                format!("{} fields under a {}-field header", record.len(), all.len())
            });
            continue;
        }
        let raw_time = record.get(time_index).unwrap_or_default();
        let Some(time) = parse_datetime(raw_time) else {
            bad_times.add(line, || format!("{:?}", String::from_utf8_lossy(raw_time)));
            continue;
        };
        times.push(time);
        for (column, &index) in columns.iter_mut().zip(&kept) {
            let cell = record.get(index).unwrap_or_default();
            let value = parse_cell(cell).unwrap_or_else(|()| {
                malformed.add(line, || {
                    format!("{:?} in {:?}", String::from_utf8_lossy(cell), all[index])
                });
                f64::NAN
            });
            column.push(value);
        }
    }
    ragged.note(
        notes,
        file,
        "rows with a field count unlike the header's dropped",
    );
    bad_times.note(notes, file, "rows with a malformed timestamp dropped");
    malformed.note(notes, file, "malformed numbers read as NaN");

    let order = time_order(&times, file, notes);
    // Most files are in order with no repeats: then the columns stay as read.
    let unchanged = order.len() == times.len() && order.iter().enumerate().all(|(k, &i)| k == i);
    let (times, columns) = if unchanged {
        (times, columns)
    } else {
        (
            order.iter().map(|&i| times[i]).collect(),
            columns
                .iter()
                .map(|c| order.iter().map(|&i| c[i]).collect())
                .collect(),
        )
    };
    note_gaps(&times, file, notes);
    Ok(Table {
        headers: kept.iter().map(|&i| all[i].clone()).collect(),
        times,
        columns,
    })
}

/// The rows to keep, in time order: sorted stably (so among equal times the first in file
/// order comes first) and each time once. Both are noted.
fn time_order(times: &[i64], file: &str, notes: &mut Vec<String>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..times.len()).collect();
    if times.windows(2).any(|w| w[0] > w[1]) {
        notes.push(format!("{file}: rows out of time order: sorted"));
        order.sort_by_key(|&i| times[i]);
    }
    let before = order.len();
    order.dedup_by_key(|i| times[*i]);
    if order.len() < before {
        notes.push(format!(
            "{file}: {} rows repeating an earlier timestamp dropped",
            before - order.len()
        ));
    }
    order
}

/// Notes the steps missing from the file's time grid, whose step is the most common interval
/// between rows.
fn note_gaps(times: &[i64], file: &str, notes: &mut Vec<String>) {
    let mut steps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    steps.sort_unstable();
    let Some(step) = mode(&steps).filter(|&s| s > 0) else {
        return;
    };
    let mut missing = 0;
    let mut gaps = 0;
    let mut longest = (0, 0);
    for w in times.windows(2) {
        let interval = w[1] - w[0];
        // Rounded, so a step of 6 s in a 5 s grid (scrape jitter) is not a missing row.
        let lost = (interval + step / 2) / step - 1;
        if lost > 0 {
            missing += lost;
            gaps += 1;
            if interval > longest.0 {
                longest = (interval, w[0]);
            }
        }
    }
    if missing > 0 {
        notes.push(format!(
            "{file}: {missing} rows missing from the {step} s grid in {gaps} gaps (longest \
             {} s, after {})",
            longest.0,
            format_time(longest.1)
        ));
    }
}

/// The most common value of a sorted slice (the smallest among ties).
fn mode(sorted: &[i64]) -> Option<i64> {
    let mut best: Option<(i64, usize)> = None;
    for run in sorted.chunk_by(|a, b| a == b) {
        if best.is_none_or(|(_, n)| run.len() > n) {
            best = Some((run[0], run.len()));
        }
    }
    best.map(|(v, _)| v)
}
