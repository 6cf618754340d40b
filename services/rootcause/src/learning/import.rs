//! Past incidents into history rows: a [`HistoryRecord`] (one JSON line) becomes a case, the
//! case's evidence is extracted, and the row keeps that evidence with the outcome.

use std::sync::Arc;

use rootcause_models::case::Case;
use rootcause_models::evidence::{self, EVIDENCE_SCHEMA, Evidence};
use rootcause_models::history::{HistoryRecord, Outcome, RecordError};
use rootcause_topology::Topology;

use crate::store::{HistoryFacts, NewHistory, StoreError};

/// Why an import was refused (nothing of it is stored).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A record is invalid.
    #[error("record {index}: {error}")]
    Record {
        /// Its 0-based position in the request.
        index: usize,
        /// What is wrong, and where in the record.
        error: RecordError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The extraction task failed.
    #[error("import failed: {0}")]
    Internal(String),
}

/// The history row of one record imported from `source` (`sim`, `nezha`, `jsonl`, ...): key
/// `import:<source>:<record id>`, so importing the same record again replaces its row.
pub fn history_row(
    record: HistoryRecord,
    source: &str,
    fallback: Option<Arc<Topology>>,
    hops: usize,
) -> Result<NewHistory, RecordError> {
    check_texts(&record)?;
    let system = record.system.clone();
    let id = record.id.clone();
    let (case, outcome) = record.into_case(fallback, hops)?;
    Ok(row_of(
        &case,
        outcome,
        format!("import:{source}:{id}"),
        format!("import:{source}"),
        system,
    ))
}

/// Most bytes of a record's id: it becomes part of an indexed key.
const MAX_ID_BYTES: usize = 256;

/// Refuses what the store cannot keep: over-long ids (an index entry has a size limit), NUL
/// characters (PostgreSQL refuses them in text), and actions that are not ids.
fn check_texts(record: &HistoryRecord) -> Result<(), RecordError> {
    let problem = |path: &str, message: String| RecordError {
        path: path.to_owned(),
        message,
    };
    if record.id.is_empty() || record.id.len() > MAX_ID_BYTES {
        return Err(problem(
            "id",
            format!("must be 1 to {MAX_ID_BYTES} bytes, got {}", record.id.len()),
        ));
    }
    for (path, text) in [
        ("id", &record.id),
        ("system", &record.system),
        ("outcome.root_cause", &record.outcome.root_cause),
        ("outcome.fault_type", &record.outcome.fault_type),
    ] {
        if text.contains('\0') || text.len() > 1024 {
            return Err(problem(
                path,
                "must be at most 1024 bytes without NUL characters".to_owned(),
            ));
        }
    }
    if let Some(action) = &record.outcome.action
        && let Some(message) = super::action_problem(action)
    {
        return Err(problem("outcome.action", message));
    }
    Ok(())
}

/// The outcome a dataset label states: its action, when it names one, is what resolved the
/// fault.
pub fn outcome_of(label: &rootcause_models::case::Label) -> Outcome {
    Outcome {
        root_cause: label.root_cause.clone(),
        fault_type: label.fault_type.clone(),
        action: label.action.clone(),
        worked: label.action.as_ref().map(|_| true),
        time_to_mitigate_s: None,
    }
}

/// The history row of a labelled case (a dataset case read directly, without a JSON record).
pub fn case_row(case: &Case, source: &str) -> Option<NewHistory> {
    let outcome = outcome_of(case.label.as_ref()?);
    Some(row_of(
        case,
        outcome,
        format!("import:{source}:{}", case.id),
        format!("import:{source}"),
        case.system.clone(),
    ))
}

fn row_of(
    case: &Case,
    outcome: Outcome,
    key: String,
    source: String,
    system: String,
) -> NewHistory {
    let evidence = evidence::extract(case, &Default::default());
    NewHistory {
        facts: HistoryFacts {
            key,
            source,
            system,
            started_at: case.anchor,
            root_cause: outcome.root_cause,
            fault_type: outcome.fault_type,
            action: outcome.action,
            worked: outcome.worked,
            time_to_mitigate_s: outcome.time_to_mitigate_s,
            evidence_schema: i64::from(EVIDENCE_SCHEMA),
        },
        evidence: evidence_json(evidence),
    }
}

/// Evidence as history keeps it: without the sentences, which training never reads.
pub fn evidence_json(evidence: Evidence) -> String {
    serde_json::to_string(&evidence.without_findings()).expect("evidence serialises")
}
