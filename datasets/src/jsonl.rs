//! Past incidents in rootcause's own history format: JSON lines, one
//! [`HistoryRecord`] per line (alerts, changes, metrics, edges, topology and outcome; see
//! `rootcause_models::history`), as `POST /api/v1/history` and `rootcause history import`
//! take them. Evaluating on them scores a ranker in the product's own setting, on any archive of
//! past incidents.
//!
//! - **Path**: one `.jsonl` file, or a directory whose `*.jsonl` files (not recursive) are read in
//!   name order.
//! - **Cases**: one per non-empty line, labelled with the record's outcome (its action only when
//!   it worked); the id is the record's `id`.
//! - **Graph**: a record's own `topology`, else the one the caller supplies (`eval --topology`),
//!   else none.
//! - **Candidates**: the record's `candidates`, else its alerting services and their callees
//!   within `hops` of the graph (the silent dependency a front end's only alert points at), plus
//!   every service with a series.
//! - A line that is not a valid record fails the load with its file, line number and the field
//!   at fault: an archive with a broken line is fixed, not silently scored without it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rootcause_models::case::Case;
use rootcause_models::history::HistoryRecord;
use rootcause_topology::Topology;

use crate::LoadError;

/// Loads every record under `path` as a case. `topology` is the graph of records that carry
/// none; `hops` how far below the alerting services candidates reach.
pub fn load(
    path: &Path,
    topology: Option<Arc<Topology>>,
    hops: usize,
) -> Result<Vec<Case>, LoadError> {
    let mut cases = Vec::new();
    for file in files(path)? {
        let text = std::fs::read_to_string(&file).map_err(|e| LoadError::io(&file, e))?;
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = |message: String| {
                LoadError::format(&file, format!("line {}: {message}", index + 1))
            };
            let deserializer = &mut serde_json::Deserializer::from_str(line);
            let record: HistoryRecord = serde_path_to_error::deserialize(deserializer)
                .map_err(|e| at(format!("{}: {}", e.path(), e.inner())))?;
            let (case, _) = record
                .into_case(topology.clone(), hops)
                .map_err(|e| at(e.to_string()))?;
            cases.push(case);
        }
    }
    Ok(cases)
}

/// The file itself, or the directory's `*.jsonl` files in name order.
fn files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| LoadError::io(path, e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| LoadError::io(path, e))? {
        let entry = entry.map_err(|e| LoadError::io(path, e))?;
        let p = entry.path();
        if p.extension().is_some_and(|x| x == "jsonl") && p.is_file() {
            found.push(p);
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(LoadError::format(
            path,
            "no *.jsonl files in this directory",
        ));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"id":"INC-1","system":"shop","started_at":1700000000,"alerts":[{"service":"frontend","name":"SloBurn","signal":"latency","severity":"critical","starts_at":1700000030,"ends_at":null,"labels":{}}],"metrics":[{"service":"db","name":"cpu_usage","points":[[1699999880,0.3],[1700000060,0.9]]}],"outcome":{"root_cause":"db","fault_type":"cpu","action":"restart","worked":false}}"#;

    fn graph() -> Arc<Topology> {
        Arc::new(
            Topology::parse(
                "services:\n  - {name: frontend, kind: gateway}\n  - {name: api, kind: service}\n  \
                 - {name: db, kind: database}\n  - {name: other, kind: service}\n\
                 dependencies:\n  - {caller: frontend, callee: api}\n  - {caller: api, callee: db}\n",
                rootcause_topology::Format::Yaml,
            )
            .unwrap(),
        )
    }

    #[test]
    fn records_become_labelled_cases_with_candidates_below_the_alerts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.jsonl");
        std::fs::write(&file, format!("{LINE}\n\n")).unwrap();
        let cases = load(&file, Some(graph()), 2).unwrap();
        assert_eq!(cases.len(), 1);
        let case = &cases[0];
        assert_eq!(case.id, "INC-1");
        assert_eq!(case.candidates, ["api", "db", "frontend"]);
        let label = case.label.as_ref().unwrap();
        assert_eq!(label.root_cause, "db");
        // The action did not work: it is not what resolved the incident.
        assert_eq!(label.action, None);
        // Without a graph, the alerting service and the services with series.
        let cases = load(dir.path(), None, 2).unwrap();
        assert_eq!(cases[0].candidates, ["db", "frontend"]);
    }

    #[test]
    fn a_broken_line_names_its_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.jsonl");
        let broken = LINE.replace("\"started_at\":1700000000", "\"started_at\":\"soon\"");
        std::fs::write(&file, format!("{LINE}\n{broken}\n")).unwrap();
        let err = load(&file, None, 2).unwrap_err().to_string();
        assert!(err.contains("b.jsonl") && err.contains("line 2"), "{err}");
        assert!(err.contains("started_at"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        assert!(load(empty.path(), None, 2).is_err());
    }
}
