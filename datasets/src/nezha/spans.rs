//! Trace minute files (`trace/HH_MM_trace.csv[.gz]`): `TraceID, SpanID, ParentID, PodName,
//! OperationName, StartTimeUnixNano, EndTimeUnixNano, Duration` (µs).

use std::collections::HashMap;

use super::files::{self, DateDirs, MinuteFile};
use super::names::Names;
use super::timing::{extent, nanos};
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
    /// Rows whose duration is negative, or whose end minus start does not fit a 64-bit count
    /// of nanoseconds.
    pub bad_durations: usize,
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
        bad_durations: 0,
    };
    let trace_column = files::optional_column(&header, "TraceID");
    let mut trace_starts: HashMap<u64, i64> = HashMap::new();
    let malformed = files::for_each_record(&mut reader, header.len(), |record| {
        match span(record, &columns, &mut out.names) {
            Ok(span) if date.plausible(span.start_ns.div_euclid(1_000_000_000)) => {
                let trace = trace_column
                    .and_then(|c| files::id_of(record.get(c)?))
                    .unwrap_or(span.id);
                let start = trace_starts.entry(trace).or_insert(span.start_ns);
                *start = (*start).min(span.start_ns);
                out.spans.push(span);
            }
            Ok(_) => out.bad_times += 1,
            Err(BadRow::Malformed) => out.malformed += 1,
            Err(BadRow::Duration) => out.bad_durations += 1,
        }
    });
    out.malformed += malformed;
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

/// Why a row gave no span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadRow {
    /// A missing id or pod, or an unreadable number.
    Malformed,
    /// A negative duration, or an end minus start that overflows.
    Duration,
}

fn span(record: &csv::ByteRecord, columns: &Columns, names: &mut Names) -> Result<Span, BadRow> {
    let id = record
        .get(columns.span)
        .and_then(files::id_of)
        .ok_or(BadRow::Malformed)?;
    let pod = files::text(record.get(columns.pod));
    if pod.is_empty() {
        return Err(BadRow::Malformed);
    }
    let start_ns = nanos(files::text(record.get(columns.start))).ok_or(BadRow::Malformed)?;
    let duration_ms = match columns
        .duration
        .and_then(|c| files::text(record.get(c)).parse::<f64>().ok())
        .filter(|us| us.is_finite())
    {
        Some(us) => us / 1e3,
        None => {
            let end = columns.end.and_then(|c| nanos(files::text(record.get(c))));
            let end_ns = end.ok_or(BadRow::Malformed)?;
            // Both are data: a corrupt end (the year 1754, as some log times are) must not
            // overflow.
            let ns = end_ns.checked_sub(start_ns).ok_or(BadRow::Duration)?;
            ns as f64 / 1e6
        }
    };
    if duration_ms < 0.0 {
        return Err(BadRow::Duration);
    }
    Ok(Span {
        id,
        parent: files::id_of(record.get(columns.parent).unwrap_or_default()),
        service: names.id(files::service_of_pod(pod)),
        start_ns,
        duration_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2023-01-29 00:00:00 UTC.
    const DAY: i64 = 1_674_950_400;

    #[test]
    fn negative_or_overflowing_durations_are_bad_rows() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("10_00_trace.csv");
        let start = (DAY + 10 * 3600) * 1_000_000_000;
        let pod = "ts-a-service-5f55b6cf68-aaaaa";
        let rows = [
            // Sound, timed by its end alone (no `Duration`).
            format!(
                "t,00000000000000a1,root,{pod},op,{start},{},\n",
                start + 2_000_000
            ),
            // An end in 1754: end − start overflows.
            format!("t,00000000000000a2,root,{pod},op,{start},-6795364578871345152,\n"),
            // An end before the start.
            format!("t,00000000000000a3,root,{pod},op,{start},{},\n", start - 1),
            // A negative `Duration`.
            format!("t,00000000000000a4,root,{pod},op,{start},{start},-5\n"),
        ];
        let text = format!(
            "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,\
             Duration\n{}",
            rows.concat()
        );
        std::fs::write(&path, text).expect("write trace file");
        let date = DateDirs {
            name: "2023-01-29".to_string(),
            day_start: DAY,
            faults: dir.path().to_path_buf(),
            reference: None,
        };
        let file = MinuteFile {
            minute: DAY + 10 * 3600,
            path,
        };
        let trace = read(&file, false, &date).expect("reads");
        assert_eq!(trace.spans.len(), 1);
        assert_eq!(trace.spans[0].duration_ms, 2.0);
        assert_eq!((trace.bad_durations, trace.malformed), (3, 0));
    }
}
