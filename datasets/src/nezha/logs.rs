//! Log minute files (`log/HH_MM_log.csv[.gz]`): `Timestamp, TimeUnixNano, Node, PodName,
//! Container, TraceID, SpanID, Log`, where `Log` is the raw docker JSON line (`{"log": "...",
//! "stream": ..., "time": ...}`).

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime};
use serde::Deserialize;

use super::files::{self, DateDirs, MinuteFile};
use super::names::Names;
use super::template::{self, Level};
use super::timing::{extent, nanos};
use crate::LoadError;

/// One log line, as much of it as the statistics need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct LogLine {
    /// When it was written.
    pub time_ns: i64,
    /// The service of `PodName` (an id of the file's, then the loader's, service names).
    pub service: u32,
    /// The span it was written in, if any.
    pub span: Option<u64>,
    /// Its level, if it states one.
    pub level: Option<Level>,
    /// Its template (an id of the file's, then the loader's, template keys).
    pub template: u32,
    /// Whether it reports an exception or a stack trace.
    pub exception: bool,
    /// A hash of the whole row: overlapping files repeat rows, which have no id of their own.
    pub fingerprint: u64,
}

/// The lines of one minute file.
#[derive(Debug, Clone)]
pub(super) struct LogFile {
    /// Which file.
    pub file: MinuteFile,
    /// Whether it is a fault-free reference minute (`construct_data`).
    pub reference: bool,
    /// Lines in file order, duplicates included.
    pub lines: Vec<LogLine>,
    /// The time range the lines cover (ns), tails trimmed: see [`extent`].
    pub extent: Option<(i64, i64)>,
    /// The file's own service names, until [`LogFile::adopt_names`].
    pub services: Names,
    /// The file's own template keys, until [`LogFile::adopt_names`].
    pub templates: Names,
    /// Rows with the wrong number of fields.
    pub malformed: usize,
    /// Rows whose `TimeUnixNano` was unusable but whose `Timestamp` (or docker `time`) was.
    pub recovered_times: usize,
    /// Rows with no usable time at all.
    pub bad_times: usize,
}

impl LogFile {
    /// Re-labels services and templates with ids of the loader's tables.
    pub fn adopt_names(&mut self, services: &mut Names, templates: &mut Names) {
        let service_map = services.merge(&self.services);
        let template_map = templates.merge(&self.templates);
        for line in &mut self.lines {
            line.service = service_map[line.service as usize];
            line.template = template_map[line.template as usize];
        }
        self.services = Names::default();
        self.templates = Names::default();
    }
}

struct Columns {
    timestamp: Option<usize>,
    nanos: Option<usize>,
    pod: usize,
    span: Option<usize>,
    log: usize,
}

/// The docker JSON envelope of a line.
#[derive(Deserialize)]
struct Docker<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
}

/// Reads one log minute file.
pub(super) fn read(
    file: &MinuteFile,
    reference: bool,
    date: &DateDirs,
) -> Result<LogFile, LoadError> {
    let path = &file.path;
    let mut reader = files::csv_reader(path)?;
    let header = files::header(&mut reader, path)?;
    let columns = Columns {
        timestamp: files::optional_column(&header, "Timestamp"),
        nanos: files::optional_column(&header, "TimeUnixNano"),
        pod: files::column(&header, "PodName", path)?,
        span: files::optional_column(&header, "SpanID"),
        log: files::column(&header, "Log", path)?,
    };
    if columns.timestamp.is_none() && columns.nanos.is_none() {
        return Err(LoadError::format(
            path,
            "neither a `TimeUnixNano` nor a `Timestamp` column",
        ));
    }
    let mut out = LogFile {
        file: file.clone(),
        reference,
        lines: Vec::new(),
        extent: None,
        services: Names::default(),
        templates: Names::default(),
        malformed: 0,
        recovered_times: 0,
        bad_times: 0,
    };
    let malformed = files::for_each_record(&mut reader, header.len(), |record| {
        read_row(record, &columns, date, &mut out);
    });
    out.malformed += malformed;
    out.extent = extent(out.lines.iter().map(|l| l.time_ns));
    Ok(out)
}

fn read_row(record: &csv::ByteRecord, columns: &Columns, date: &DateDirs, out: &mut LogFile) {
    let pod = files::text(record.get(columns.pod));
    let raw = String::from_utf8_lossy(record.get(columns.log).unwrap_or_default());
    let docker = serde_json::from_str::<Docker>(&raw).ok();
    let message = docker
        .as_ref()
        .map_or(raw.as_ref(), |d| d.log.as_ref())
        .trim();
    let docker_time = docker.as_ref().and_then(|d| d.time.as_deref());
    let Some(time_ns) = time_of(record, columns, docker_time, date, out) else {
        out.bad_times += 1;
        return;
    };
    if pod.is_empty() {
        out.malformed += 1;
        return;
    }
    let mined = template::mine(message);
    out.lines.push(LogLine {
        time_ns,
        service: out.services.id(files::service_of_pod(pod)),
        span: columns.span.and_then(|c| files::id_of(record.get(c)?)),
        level: mined.level,
        template: out.templates.id(&mined.key),
        exception: mentions_exception(message),
        fingerprint: files::fingerprint(&record.iter().collect::<Vec<_>>()),
    });
}

/// The line's time: `TimeUnixNano` when it falls on the file's date, else the `Timestamp` text,
/// else the docker envelope's `time`. Some rows carry a `TimeUnixNano` in the year 1754 beside
/// a sound `Timestamp`; those rows are kept (they are mostly ERROR lines) and counted.
fn time_of(
    record: &csv::ByteRecord,
    columns: &Columns,
    docker_time: Option<&str>,
    date: &DateDirs,
    out: &mut LogFile,
) -> Option<i64> {
    let plausible = |ns: &i64| date.plausible(ns.div_euclid(1_000_000_000));
    if let Some(ns) = columns
        .nanos
        .and_then(|c| nanos(files::text(record.get(c))))
        .filter(plausible)
    {
        return Some(ns);
    }
    let recovered = columns
        .timestamp
        .and_then(|c| parse_timestamp(files::text(record.get(c))))
        .filter(plausible)
        .or_else(|| docker_time.and_then(parse_timestamp).filter(plausible))?;
    if columns.nanos.is_some() {
        out.recovered_times += 1;
    }
    Some(recovered)
}

/// RFC 3339, or the same without an offset (read as UTC), in nanoseconds.
fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return time.timestamp_nanos_opt();
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .and_then(|t| t.and_utc().timestamp_nanos_opt())
}

/// Whether a line reports an exception or carries a stack trace, in the spellings of the common
/// runtimes (Java and .NET exceptions, Python tracebacks, Go and Rust panics).
pub(super) fn mentions_exception(message: &str) -> bool {
    const MARKERS: [&str; 5] = [
        "exception",
        "caused by:",
        "\tat ",
        "traceback (most recent call last)",
        "panic",
    ];
    let lower = message.to_ascii_lowercase();
    MARKERS.iter().any(|marker| lower.contains(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_without_offset_are_utc() {
        assert_eq!(
            parse_timestamp("2023-01-29T09:20:29.295"),
            Some(1_674_984_029_295_000_000)
        );
        assert_eq!(
            parse_timestamp("2023-01-29T09:20:29.295Z"),
            Some(1_674_984_029_295_000_000)
        );
        assert_eq!(parse_timestamp("1754"), None);
    }

    #[test]
    fn exceptions_and_stack_traces_are_recognised() {
        assert!(mentions_exception(
            "ERROR x#1 threw exception [Request processing failed]"
        ));
        assert!(mentions_exception("java.lang.NullPointerException: null"));
        assert!(mentions_exception("Traceback (most recent call last):"));
        assert!(!mentions_exception("INFO x#2 [getTickets] done"));
    }
}
