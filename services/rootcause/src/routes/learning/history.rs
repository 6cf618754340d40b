//! Fault history: past incidents imported for training, and what the history holds.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rootcause_models::history::HistoryRecord;
use rootcause_topology::Problem;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiQuery, ErrorBody, media_type, parse_json};
use crate::learning::import::ImportError;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import_history, history_summary))
}

/// Most records one history import may carry.
pub const MAX_RECORDS_PER_IMPORT: usize = 10_000;

/// Options of a history import.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ImportQuery {
    /// Names the source in the rows' keys (`import:<source>:<id>`): records with the same id
    /// from the same source replace each other. Letters, digits, `-` and `_`; default `api`.
    source: Option<String>,
}

/// What an import stored.
#[derive(Debug, Serialize, ToSchema)]
struct ImportReceipt {
    /// Records read.
    records: usize,
    /// New history rows.
    inserted: u64,
    /// Rows replaced (same source and id as before).
    replaced: u64,
}

/// Imports past incidents as fault history: JSON lines (`application/x-ndjson`, one
/// `HistoryRecord` per line: alerts, optional metric and call-edge windows, changes, optional
/// topology, and the outcome) or a JSON array of them (`application/json`). All or nothing:
/// the first invalid record is named by its line and path, and nothing is stored. Each
/// record's evidence is extracted on import; records without a topology are read against the
/// current one.
#[utoipa::path(post, path = "/history", tag = "learning",
    params(ImportQuery),
    request_body(description = "History records: JSON lines (one record per line) or a JSON \
                                array of records",
        content((String = "application/x-ndjson"), (String = "application/jsonl"),
                (Vec<Object> = "application/json"))),
    responses(
        (status = 201, description = "Imported", body = ImportReceipt),
        (status = 400, description = "Malformed JSON (with line)", body = ErrorBody),
        (status = 413, description = "Too many records", body = ErrorBody),
        (status = 415, description = "Neither JSON nor JSON lines", body = ErrorBody),
        (status = 422, description = "An invalid record, with line and path", body = ErrorBody)))]
async fn import_history(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let media = media_type(&headers).unwrap_or_default();
    let lines = matches!(
        media.as_str(),
        "application/x-ndjson" | "application/jsonl" | "application/json-lines"
    );
    if !lines && !crate::error::is_json(&headers) {
        return Err(ApiError::unsupported_media_type(
            "expected application/x-ndjson (JSON lines) or application/json (an array)",
        ));
    }
    let source = query.source.unwrap_or_else(|| "api".to_owned());
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if source.is_empty() || source.len() > 64 || !source.chars().all(allowed) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("source must be 1 to 64 letters, digits, '-' or '_', got {source:?}"),
        ));
    }
    let body = body?;
    let records = crate::routes::blocking(move || parse_records(&body, lines)).await??;
    let count = records.len();
    match state.learning.import(records, &source).await {
        Ok(upsert) => {
            // Before answering, so that the next look at the risks counts these faults.
            state.refresh_risks().await;
            Ok((
                StatusCode::CREATED,
                Json(ImportReceipt {
                    records: count,
                    inserted: upsert.inserted,
                    replaced: upsert.replaced,
                }),
            )
                .into_response())
        }
        Err(ImportError::Record { index, error }) => {
            let line = if lines { Some(index + 1) } else { None };
            let path = if lines {
                error.path.clone()
            } else {
                format!("[{index}].{}", error.path)
            };
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_record",
                format!(
                    "record {} is invalid: {}: {}",
                    index + 1,
                    path,
                    error.message
                ),
            )
            .with_problems(vec![Problem {
                path,
                message: error.message,
                line,
                column: None,
            }]))
        }
        Err(ImportError::Store(error)) => Err(error.into()),
        Err(ImportError::Internal(error)) => Err(ApiError::internal(error)),
    }
}

/// Records from JSON lines (blank lines skipped) or a JSON array / single object.
fn parse_records(body: &[u8], lines: bool) -> Result<Vec<HistoryRecord>, ApiError> {
    let records: Vec<HistoryRecord> = if lines {
        let mut records = Vec::new();
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record = parse_json::<HistoryRecord>(line).map_err(|e| e.on_line(i + 1))?;
            records.push(record);
            if records.len() > MAX_RECORDS_PER_IMPORT {
                break;
            }
        }
        records
    } else {
        match parse_json::<Value>(body)? {
            Value::Array(_) => parse_json(body)?,
            _ => vec![parse_json(body)?],
        }
    };
    if records.len() > MAX_RECORDS_PER_IMPORT {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_records",
            format!("at most {MAX_RECORDS_PER_IMPORT} records per import; split the file"),
        ));
    }
    if records.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "no records in the body",
        ));
    }
    Ok(records)
}

/// What the fault history holds.
#[derive(Debug, Serialize, ToSchema)]
struct HistorySummaryView {
    /// Rows in all.
    total: u64,
    /// Rows per source (`import:sim`, `resolution`, ...).
    by_source: std::collections::BTreeMap<String, u64>,
    /// Rows whose evidence is of an older schema: training skips them until re-imported.
    stale: u64,
    /// The evidence schema of this build.
    evidence_schema: u32,
}

/// How much fault history there is, by source.
#[utoipa::path(get, path = "/history", tag = "learning",
    responses((status = 200, description = "Counts", body = HistorySummaryView)))]
async fn history_summary(State(state): State<AppState>) -> Result<Response, ApiError> {
    let schema = rootcause_models::evidence::EVIDENCE_SCHEMA;
    let summary = state.store.history_summary(i64::from(schema)).await?;
    Ok(Json(HistorySummaryView {
        total: summary.total,
        by_source: summary.by_source,
        stale: summary.stale,
        evidence_schema: schema,
    })
    .into_response())
}
