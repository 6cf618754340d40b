//! The original labels: `<date>-fault_list.json`, `{hour: [{inject_time, inject_timestamp,
//! inject_pod, inject_type}]}`.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDateTime;
use serde::Deserialize;

use super::files::{DateDirs, service_of_pod};
use crate::LoadError;

/// One injected fault.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Fault {
    /// `<date>#<nn>`.
    pub id: String,
    /// Unix seconds of `inject_time`.
    pub anchor: i64,
    /// The pod the fault was injected into.
    pub pod: String,
    /// The pod's service.
    pub service: String,
    /// `inject_type`, as published.
    pub fault_type: String,
}

#[derive(Debug, Deserialize)]
struct RawFault {
    inject_time: String,
    inject_pod: String,
    inject_type: String,
}

/// The faults of one date, in injection order, numbered from `00`.
///
/// The anchor is `inject_time` read as UTC, never `inject_timestamp`: on one date most published
/// timestamps are 8 hours off (a local-time bug), while `inject_time` agrees with the data.
/// Faults are numbered by injection time (ties keep file order), which is also the order of
/// the hour keys and of the entries within an hour.
pub(super) fn read(date: &DateDirs) -> Result<Vec<Fault>, LoadError> {
    let path = date.fault_list();
    let text = std::fs::read_to_string(&path).map_err(|e| LoadError::io(&path, e))?;
    let hours: BTreeMap<String, Vec<RawFault>> = serde_json::from_str(&text)
        .map_err(|e| LoadError::format(&path, format!("not a fault list: {e}")))?;
    let mut faults = Vec::new();
    for (hour, entries) in hours {
        for (i, raw) in entries.into_iter().enumerate() {
            let anchor = parse_time(&raw.inject_time).ok_or_else(|| {
                LoadError::format(
                    &path,
                    format!(
                        "hour {hour} entry {i}: inject_time `{}` is not `YYYY-MM-DD HH:MM:SS`",
                        raw.inject_time
                    ),
                )
            })?;
            faults.push(fault(raw, anchor, &path)?);
        }
    }
    faults.sort_by_key(|f| f.anchor);
    for (n, fault) in faults.iter_mut().enumerate() {
        fault.id = format!("{}#{n:02}", date.name);
    }
    Ok(faults)
}

fn fault(raw: RawFault, anchor: i64, path: &Path) -> Result<Fault, LoadError> {
    let pod = raw.inject_pod.trim().to_string();
    if pod.is_empty() {
        return Err(LoadError::format(
            path,
            format!("fault at {} names no pod", raw.inject_time),
        ));
    }
    Ok(Fault {
        id: String::new(),
        anchor,
        service: service_of_pod(&pod).to_string(),
        pod,
        fault_type: raw.inject_type.trim().to_string(),
    })
}

/// `YYYY-MM-DD HH:MM:SS` (or with a `T`), as UTC unix seconds.
fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|t| t.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inject_time_is_read_as_utc() {
        assert_eq!(parse_time("2023-01-29 08:43:04"), Some(1_674_981_784));
        assert_eq!(parse_time("2023-01-29T08:43:04"), Some(1_674_981_784));
        assert_eq!(parse_time("yesterday"), None);
    }
}
