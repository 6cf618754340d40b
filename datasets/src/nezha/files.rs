//! Where the Nezha files are and how to open them: dates, minute files, CSV with or without gzip.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use flate2::read::MultiGzDecoder;

use crate::LoadError;

/// Decompressed reads are small and many; a larger buffer keeps gzip and CSV fed.
const READ_BUFFER: usize = 256 * 1024;

/// One day of the dataset: its fault-injection directory and, if present, its fault-free
/// reference directory.
#[derive(Debug, Clone)]
pub(super) struct DateDirs {
    /// `YYYY-MM-DD`, as the directory is named.
    pub name: String,
    /// Unix seconds of that day's midnight, UTC.
    pub day_start: i64,
    /// `rca_data/<date>`.
    pub faults: PathBuf,
    /// `construct_data/<date>`, when it exists.
    pub reference: Option<PathBuf>,
}

impl DateDirs {
    /// Whether a time (unix seconds) can belong to this day's data. Anything else is a corrupt
    /// timestamp (the dataset has log times in the year 1754): a day either side leaves room for
    /// time zones and runs across midnight.
    pub fn plausible(&self, seconds: i64) -> bool {
        (self.day_start - 86_400..self.day_start + 2 * 86_400).contains(&seconds)
    }

    /// The fault list, `rca_data/<date>/<date>-fault_list.json`.
    pub fn fault_list(&self) -> PathBuf {
        self.faults.join(format!("{}-fault_list.json", self.name))
    }
}

/// The dates under `root/rca_data`, sorted; directories not named as a date are ignored.
pub(super) fn dates(root: &Path) -> Result<Vec<DateDirs>, LoadError> {
    let rca = root.join("rca_data");
    let construct = root.join("construct_data");
    let mut dates = Vec::new();
    for entry in read_dir(&rca)? {
        let Some(name) = entry
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let Ok(day) = NaiveDate::parse_from_str(&name, "%Y-%m-%d") else {
            continue;
        };
        if !entry.is_dir() {
            continue;
        }
        let reference = construct.join(&name);
        dates.push(DateDirs {
            day_start: day
                .and_hms_opt(0, 0, 0)
                .map_or(0, |t| t.and_utc().timestamp()),
            faults: entry,
            reference: reference.is_dir().then_some(reference),
            name,
        });
    }
    if dates.is_empty() {
        return Err(LoadError::format(
            &rca,
            "no date directories (YYYY-MM-DD) found",
        ));
    }
    dates.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(dates)
}

/// The entries of a directory, sorted, as full paths.
pub(super) fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LoadError::io(dir, e))?;
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(|e| LoadError::io(dir, e))?.path());
    }
    paths.sort();
    Ok(paths)
}

/// A per-minute file (`HH_MM_trace.csv.gz`).
#[derive(Debug, Clone)]
pub(super) struct MinuteFile {
    /// Unix seconds of the minute the file is named for.
    pub minute: i64,
    /// The file.
    pub path: PathBuf,
}

/// The `HH_MM_<kind>.csv[.gz]` files of `dir`, sorted by minute. When both a plain and a gzipped
/// file exist for one minute, the gzipped one is read: they hold the same content.
pub(super) fn minute_files(
    dir: &Path,
    kind: &str,
    day_start: i64,
) -> Result<Vec<MinuteFile>, LoadError> {
    let suffix = format!("_{kind}.csv");
    let mut files: Vec<MinuteFile> = Vec::new();
    for path in read_dir(dir)? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let stem = name.strip_suffix(".gz").unwrap_or(name);
        let Some(label) = stem.strip_suffix(&suffix) else {
            continue;
        };
        let Some(minute) = minute_of_day(label) else {
            continue;
        };
        let file = MinuteFile {
            minute: day_start + minute,
            path: path.clone(),
        };
        match files.iter_mut().find(|f| f.minute == file.minute) {
            Some(existing) if name.ends_with(".gz") => *existing = file,
            Some(_) => {}
            None => files.push(file),
        }
    }
    files.sort_by_key(|f| f.minute);
    Ok(files)
}

/// Seconds since midnight of `HH_MM`.
fn minute_of_day(label: &str) -> Option<i64> {
    let (hours, minutes) = label.split_once('_')?;
    let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
    ((0..24).contains(&hours) && (0..60).contains(&minutes)).then_some(hours * 3600 + minutes * 60)
}

/// `HH_MM` of a time, for notes on minutes that have no file.
pub(super) fn minute_label(seconds: i64) -> String {
    let of_day = seconds.rem_euclid(86_400);
    format!("{:02}_{:02}", of_day / 3600, of_day % 3600 / 60)
}

/// A CSV reader on `path`, decompressing `.gz`. Rows may have any number of fields: callers
/// count the malformed ones rather than stopping at the first.
pub(super) fn csv_reader(path: &Path) -> Result<csv::Reader<Box<dyn Read + Send>>, LoadError> {
    let file = File::open(path).map_err(|e| LoadError::io(path, e))?;
    let input: Box<dyn Read + Send> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(BufReader::with_capacity(
            READ_BUFFER,
            MultiGzDecoder::new(BufReader::with_capacity(READ_BUFFER, file)),
        ))
    } else {
        Box::new(BufReader::with_capacity(READ_BUFFER, file))
    };
    Ok(csv::ReaderBuilder::new()
        .flexible(true)
        .buffer_capacity(READ_BUFFER)
        .from_reader(input))
}

/// The header of a CSV file, as strings.
pub(super) fn header(
    reader: &mut csv::Reader<Box<dyn Read + Send>>,
    path: &Path,
) -> Result<Vec<String>, LoadError> {
    let header = reader
        .headers()
        .map_err(|e| LoadError::format(path, format!("unreadable header: {e}")))?;
    Ok(header.iter().map(|h| h.trim().to_string()).collect())
}

/// The index of a required column, found case-insensitively.
pub(super) fn column(header: &[String], name: &str, path: &Path) -> Result<usize, LoadError> {
    optional_column(header, name)
        .ok_or_else(|| LoadError::format(path, format!("no `{name}` column")))
}

/// The index of a column, found case-insensitively.
pub(super) fn optional_column(header: &[String], name: &str) -> Option<usize> {
    header.iter().position(|h| h.eq_ignore_ascii_case(name))
}

/// The service a pod belongs to, the pod name without what Kubernetes appends to the workload's:
///
/// - a StatefulSet pod (`ts-db-0`) ends in its ordinal, a decimal: one segment is dropped;
/// - a Deployment pod (`ts-contacts-service-866bd68c97-xcqfx`) ends in the ReplicaSet hash and a
///   random five-character suffix: two segments are dropped. The suffix is drawn from an
///   alphabet without vowels, `0`, `1` and `3` (`bcdfghjklmnpqrstvwxz2456789`), so it can be all
///   digits (`ts-basic-service-5dc8d4f9fd-46997` in the published data): a last segment of five
///   such digits is read as that suffix, not as an ordinal (no StatefulSet has 24 567 replicas).
///
/// Names with too few segments are already service names.
pub(super) fn service_of_pod(pod: &str) -> &str {
    let last = pod.rsplit('-').next().unwrap_or_default();
    let digits = !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit());
    let random_suffix = last.len() == 5 && last.bytes().all(|b| b"2456789".contains(&b));
    let segments = if digits && !random_suffix { 1 } else { 2 };
    let mut cut = pod;
    for _ in 0..segments {
        match cut.rfind('-') {
            Some(i) if i > 0 => cut = &cut[..i],
            _ => return pod,
        }
    }
    cut
}

/// A span or log id: 16 hex digits fit a `u64`; anything else is hashed, so that ids in other
/// formats still deduplicate and join. `None` for empty ids and `root`.
pub(super) fn id_of(field: &[u8]) -> Option<u64> {
    let field = field.trim_ascii();
    if field.is_empty() || field.eq_ignore_ascii_case(b"root") {
        return None;
    }
    if field.len() <= 16
        && let Ok(text) = std::str::from_utf8(field)
        && let Ok(id) = u64::from_str_radix(text, 16)
    {
        return Some(id);
    }
    Some(fingerprint(&[field]))
}

/// A stable hash of some byte strings, for ids and duplicate rows.
pub(super) use crate::hash::stable_hash as fingerprint;

/// Calls `row` with every record of `reader` that has `width` fields, and returns how many rows
/// were malformed (unreadable, or with the wrong number of fields): those are skipped.
pub(super) fn for_each_record(
    reader: &mut csv::Reader<Box<dyn Read + Send>>,
    width: usize,
    mut row: impl FnMut(&csv::ByteRecord),
) -> usize {
    let mut malformed = 0;
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) if record.len() == width => row(&record),
            Ok(true) | Err(_) => malformed += 1,
            Ok(false) => return malformed,
        }
    }
}

/// A field as trimmed UTF-8 text (invalid bytes make it empty).
pub(super) fn text(field: Option<&[u8]>) -> &str {
    field
        .and_then(|f| std::str::from_utf8(f).ok())
        .map_or("", str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_pods_drop_the_replica_set_hash_and_suffix() {
        assert_eq!(
            service_of_pod("ts-contacts-service-866bd68c97-xcqfx"),
            "ts-contacts-service"
        );
        assert_eq!(
            service_of_pod("ts-ui-dashboard-5477b965f-lwprp"),
            "ts-ui-dashboard"
        );
        // A random suffix that happens to be all digits (as in the published data).
        assert_eq!(
            service_of_pod("ts-basic-service-5dc8d4f9fd-46997"),
            "ts-basic-service"
        );
        assert_eq!(service_of_pod("frontend"), "frontend");
        assert_eq!(service_of_pod("frontend-xcqfx"), "frontend-xcqfx");
    }

    #[test]
    fn stateful_set_pods_drop_only_their_ordinal() {
        assert_eq!(service_of_pod("x-db-0"), "x-db");
        assert_eq!(service_of_pod("redis-0"), "redis");
        assert_eq!(service_of_pod("ts-order-mysql-12"), "ts-order-mysql");
        // Five digits with a 0, 1 or 3 cannot be a random suffix.
        assert_eq!(service_of_pod("kafka-10000"), "kafka");
    }

    #[test]
    fn ids_parse_as_hex_or_hash_and_root_is_none() {
        assert_eq!(id_of(b"00000000000000ff"), Some(255));
        assert_eq!(id_of(b"root"), None);
        assert_eq!(id_of(b" "), None);
        assert_eq!(id_of(b"not-hex-id"), id_of(b"not-hex-id"));
        assert_ne!(id_of(b"not-hex-id"), id_of(b"not-hex-id2"));
    }

    #[test]
    fn minute_labels_round_trip() {
        assert_eq!(minute_of_day("08_43"), Some(8 * 3600 + 43 * 60));
        assert_eq!(minute_of_day("24_00"), None);
        assert_eq!(minute_label(1_674_950_400 + 8 * 3600 + 43 * 60), "08_43");
    }
}
