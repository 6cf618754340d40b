//! Trace minute files (`trace/HH_MM_trace.csv[.gz]`): `TraceID, SpanID, ParentID, PodName,
//! OperationName, StartTimeUnixNano, EndTimeUnixNano, Duration` (µs).

use std::collections::HashMap;

use super::files::{self, DateDirs, MinuteFile};
use super::names::Names;
use super::stats::extent;
use crate::LoadError;

/// One span, as much of it as the statistics need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Span {
    /// `SpanID`.
    pub id: u64,
    /// `ParentID`; `None` for roots.
    pub parent: Option<u64>,
    /// The service of `PodName`, as an id of the file's (then the loader's) service names.
    pub service: u32,
    /// `StartTimeUnixNano`.
    pub start_ns: i64,
    /// `Duration` in milliseconds.
    pub duration_ms: f64,
}

/// The spans of one minute file.
#[derive(Debug, Clone)]
pub(super) struct TraceFile {
    /// Which file.
    pub file: MinuteFile,
    /// Whether it is a fault-free reference minute (`construct_data`).
    pub reference: bool,
    /// Spans in file order, duplicates included (files overlap; callers deduplicate).
    pub spans: Vec<Span>,
    /// The time range the file covers (ns), tails trimmed: see [`extent`]. Density is measured
    /// in traces (by their earliest span), not spans: one large trace in a quiet slot would
    /// otherwise look like a busy one.
    pub extent: Option<(i64, i64)>,
    /// The file's own service names, until [`TraceFile::adopt_names`] maps them to the loader's.
    pub names: Names,
    /// Rows with the wrong number of fields or unreadable numbers.
    pub malformed: usize,
    /// Rows whose start time is not on or near the file's date.
    pub bad_times: usize,
}

impl TraceFile {
    /// Re-labels the spans' services with ids of `global`.
    pub fn adopt_names(&mut self, global: &mut Names) {
        let map = global.merge(&self.names);
        for span in &mut self.spans {
            span.service = map[span.service as usize];
        }
        self.names = Names::default();
    }
}

/// Reads one trace minute file.
pub(super) fn read(
    file: &MinuteFile,
    reference: bool,
    date: &DateDirs,
) -> Result<TraceFile, LoadError> {
    let path = &file.path;
    let mut reader = files::csv_reader(path)?;
    let header = files::header(&mut reader, path)?;
    let columns = Columns {
        span: files::column(&header, "SpanID", path)?,
        parent: files::column(&header, "ParentID", path)?,
        pod: files::column(&header, "PodName", path)?,
        start: files::column(&header, "StartTimeUnixNano", path)?,
        end: files::optional_column(&header, "EndTimeUnixNano"),
        duration: files::optional_column(&header, "Duration"),
    };
    let mut out = TraceFile {
        file: file.clone(),
        reference,
        spans: Vec::new(),
        extent: None,
        names: Names::default(),
        malformed: 0,
        bad_times: 0,
    };
    let trace_column = files::optional_column(&header, "TraceID");
    let mut trace_starts: HashMap<u64, i64> = HashMap::new();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(_) => {
                out.malformed += 1;
                continue;
            }
        }
        if record.len() != header.len() {
            out.malformed += 1;
            continue;
        }
        match span(&record, &columns, &mut out.names) {
            Some(span) if date.plausible(span.start_ns.div_euclid(1_000_000_000)) => {
                let trace = trace_column
                    .and_then(|c| files::id_of(record.get(c)?))
                    .unwrap_or(span.id);
                let start = trace_starts.entry(trace).or_insert(span.start_ns);
                *start = (*start).min(span.start_ns);
                out.spans.push(span);
            }
            Some(_) => out.bad_times += 1,
            None => out.malformed += 1,
        }
    }
    out.extent = extent(trace_starts.values().copied());
    Ok(out)
}

struct Columns {
    span: usize,
    parent: usize,
    pod: usize,
    start: usize,
    end: Option<usize>,
    duration: Option<usize>,
}

fn span(record: &csv::ByteRecord, columns: &Columns, names: &mut Names) -> Option<Span> {
    let id = files::id_of(record.get(columns.span)?)?;
    let pod = files::text(record.get(columns.pod));
    if pod.is_empty() {
        return None;
    }
    let start_ns = nanos(files::text(record.get(columns.start)))?;
    let duration_ms = columns
        .duration
        .and_then(|c| files::text(record.get(c)).parse::<f64>().ok())
        .map(|us| us / 1e3)
        .or_else(|| {
            let end_ns = nanos(files::text(record.get(columns.end?)))?;
            Some((end_ns - start_ns) as f64 / 1e6)
        })
        .filter(|ms| ms.is_finite() && *ms >= 0.0)?;
    Some(Span {
        id,
        parent: files::id_of(record.get(columns.parent).unwrap_or_default()),
        service: names.id(files::service_of_pod(pod)),
        start_ns,
        duration_ms,
    })
}

/// Nanoseconds, written as an integer (or, from some exporters, a float).
pub(super) fn nanos(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && t.abs() < 9.2e18)
            .map(|t| t as i64)
    })
}
