//! `data/label.txt`: one block per case, times in UTC+8.

use std::collections::HashMap;

use super::names::CaseName;
use super::table::parse_datetime;

/// Label times are Asia/Shanghai wall-clock times (UTC+8); the metrics are UTC.
pub(super) const LABEL_UTC_OFFSET_S: i64 = 8 * 3600;

/// What `label.txt` says about one case.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct LabelEntry {
    /// `start create` shifted to UTC, unix seconds: the injection time.
    pub inject: Option<i64>,
    /// The deployments the block says were scaled (`deployment.apps/<w> scaled`).
    pub scaled: Vec<String>,
    /// Problems with the block, for the case's notes.
    pub problems: Vec<String>,
}

/// Parses `label.txt` into the entry of each case name. A block starts at a line that is a case
/// name (`details_cpu_load_1`) and runs to the next one; within it only `<time> start create.`
/// (the injection) and `deployment.apps/<w> scaled` are used, the rest (the Chaos Mesh object,
/// the scale and delete times) is not needed. Lines before the first block are ignored. A case
/// named twice keeps its first block, with a note.
pub(super) fn parse(text: &str) -> HashMap<String, LabelEntry> {
    let mut entries: HashMap<String, LabelEntry> = HashMap::new();
    // The block being read; `None` before the first block and inside a repeated one.
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if CaseName::parse(line).is_some() {
            current = match entries.get_mut(line) {
                Some(first) => {
                    first.problems.push(
                        "label.txt has another block for this case: the first is used".into(),
                    );
                    None
                }
                None => {
                    entries.insert(line.to_string(), LabelEntry::default());
                    Some(line.to_string())
                }
            };
            continue;
        }
        let Some(entry) = current.as_ref().and_then(|name| entries.get_mut(name)) else {
            continue;
        };
        read_line(line, entry);
    }
    entries
}

/// Takes what a block line says into `entry`.
fn read_line(line: &str, entry: &mut LabelEntry) {
    if let Some(deployment) = line
        .strip_prefix("deployment.apps/")
        .and_then(|rest| rest.strip_suffix(" scaled"))
    {
        entry.scaled.push(deployment.trim().to_string());
        return;
    }
    if !line.contains("start create") {
        return;
    }
    // `YYYY-MM-DD HH:MM:SS start create.`: all 19 characters of the time (upstream's
    // `line[:18]` drops the last digit of the seconds).
    let time = line
        .get(..19)
        .and_then(|t| parse_datetime(t.as_bytes()))
        .filter(|_| line[19..].trim_start().starts_with("start create"));
    match (time, entry.inject) {
        (Some(t), None) => entry.inject = Some(t - LABEL_UTC_OFFSET_S),
        (Some(_), Some(_)) => entry
            .problems
            .push("label.txt block has two `start create` lines: the first is used".into()),
        (None, _) => entry.problems.push(format!(
            "label.txt: malformed `start create` line {line:?} ignored"
        )),
    }
}
