//! `POST /api/v1/traces`: the topology learned from OpenTelemetry traces in OTLP/JSON.
//!
//! Point a Collector's `otlphttp` exporter at it (`traces_endpoint:
//! http://rootcause:8080/api/v1/traces`, `encoding: json`; its default gzip compression is accepted). Each request's
//! spans are matched parent to child (see [`rootcause_topology::otlp`] for the rules), and the
//! calls found are merged into the current topology. A new version is stored only when they add
//! a service or a dependency: refreshed call rates, error rates and latencies alone would store
//! a version for every batch. Merging goes through [`LiveTopology::modify`], like every other
//! change, so concurrent batches (here or on another replica) are applied one after the other
//! on the newest version and cannot lose each other's edges.
//!
//! [`LiveTopology::modify`]: crate::live_topology::LiveTopology::modify

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rootcause_topology::otlp::{ExportTraceServiceRequest, TraceError, TraceReader, TraceSummary};
use rootcause_topology::{
    DependencyKey, Merged, ObservedCalls, Topology, TopologyDocument, TopologyError,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{blocking, expected_version, version_etag};
use crate::error::{ApiError, ApiQuery, ErrorBody, is_json, media_type, parse_json};
use crate::live_topology::Outcome;
use crate::state::AppState;

/// The `source` of versions stored from traces.
const SOURCE: &str = "traces";

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_traces))
}

/// Options of `POST /api/v1/traces`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TracesQuery {
    /// `true`: answer with the document the traces would make, and store nothing.
    dry_run: Option<bool>,
    /// Free text stored with a new version (who and why).
    note: Option<String>,
}

/// What a batch of traces taught.
#[derive(Debug, Serialize, ToSchema)]
struct TracesLearned {
    /// Spans read.
    spans: u64,
    /// Calls between different services found among them.
    calls: u64,
    /// Spans whose parent span was not in the request: their service is noted, but the call
    /// into it is not known (send whole traces, or set `peer.service` on client spans).
    orphans: u64,
    /// Spans of resources without `service.name`; they join no call.
    unnamed: u64,
    /// Services the traces added to the topology (would add, in a dry run), sorted.
    services_added: Vec<String>,
    /// Dependencies the traces added (would add, in a dry run), sorted.
    dependencies_added: Vec<DependencyKey>,
    /// Distinct dependencies observed, new or not.
    dependencies_seen: usize,
    /// True when a new version was stored.
    changed: bool,
    /// The current version after the request: the new one when `changed`.
    version: i64,
    /// In a dry run only: the current topology with the learned services and dependencies
    /// merged in, observed attributes refreshed.
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<TopologyDocument>,
}

impl TracesLearned {
    fn new(summary: TraceSummary, merged: Merged, changed: bool, version: i64) -> Self {
        TracesLearned {
            spans: summary.spans,
            calls: summary.calls,
            orphans: summary.orphans,
            unnamed: summary.unnamed,
            services_added: merged.services_added,
            dependencies_added: merged.dependencies_added,
            dependencies_seen: merged.dependencies_seen,
            changed,
            version,
            document: None,
        }
    }
}

/// Learns services and dependencies from an OTLP/JSON `ExportTraceServiceRequest` and merges
/// them into the current topology: new dependencies get `source: traces`; those the topology
/// already has keep their source and protocol, and their observed attributes are refreshed (see
/// [`ObservedCalls::merge`]).
///
/// A call is a span whose parent span, in the same request, belongs to another service, or a
/// client/producer span naming its peer (`peer.service`, `db.system`, `server.address`, ...): so
/// databases and external services appear too. A new version is stored only when a service or a
/// dependency is added; otherwise the answer says `changed: false` and names the current
/// version. `If-Match` makes the change conditional, as for `PUT /topology`.
#[utoipa::path(post, path = "/traces", tag = "topology", params(TracesQuery),
    request_body(content = Object, content_type = "application/json",
        description = "An OTLP/JSON ExportTraceServiceRequest (`resourceSpans`), as the \
                       OpenTelemetry Collector's otlphttp exporter sends it with `encoding: json`"),
    responses(
        (status = 200, description = "Learned; `changed` says whether a version was stored", body = TracesLearned,
         headers(("ETag" = String, description = "The current version id, quoted"))),
        (status = 400, description = "Not JSON, or a bad If-Match", body = ErrorBody),
        (status = 412, description = "If-Match names a version that is no longer current", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 415, description = "Not OTLP/JSON: protobuf, or an encoding other than gzip", body = ErrorBody),
        (status = 422, description = "JSON that is not OTLP (a bad id or time, ...) or names a service the topology refuses; the problem's path is named", body = ErrorBody),
    ))]
async fn post_traces(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<TracesQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let gzipped = check_content(&headers)?;
    let expected = expected_version(&headers)?;
    let body = body?;
    // Up to the body limit of JSON: parse and match spans on the blocking pool.
    let (calls, summary) = blocking(move || {
        let body = if gzipped { gunzip(&body)? } else { body };
        let request: ExportTraceServiceRequest = parse_json(&body)?;
        let mut reader = TraceReader::new();
        reader.add(&request).map_err(invalid_traces)?;
        let mut calls = ObservedCalls::new();
        let summary = reader.learn(&mut calls);
        Ok::<_, ApiError>((calls, summary))
    })
    .await??;
    tracing::debug!(
        spans = summary.spans,
        calls = summary.calls,
        orphans = summary.orphans,
        unnamed = summary.unnamed,
        "read a batch of traces"
    );

    if query.dry_run.unwrap_or(false) {
        let current = state.topology.current();
        let version = current.version.id;
        let mut merged =
            blocking(move || calls.merge(Some(&current.topology.to_document()))).await?;
        let document = std::mem::take(&mut merged.document);
        let answer = TracesLearned {
            document: Some(document),
            ..TracesLearned::new(summary, merged, false, version)
        };
        return Ok(([version_etag(version)], Json(answer)).into_response());
    }

    let note = query.note.unwrap_or_default();
    let (merged, outcome) = state
        .topology
        .modify(expected, SOURCE, &note, move |topology| {
            merge_into(&calls, topology)
        })
        .await?;
    let changed = matches!(outcome, Outcome::Stored { .. });
    let version = outcome.current().version.id;
    let answer = TracesLearned::new(summary, merged, changed, version);
    Ok(([version_etag(version)], Json(answer)).into_response())
}

/// Merges learned calls into `topology` if they add a service or a dependency (refreshing, along
/// the way, the observed attributes of the dependencies it has, whose source and protocol stay),
/// and leaves it untouched otherwise, so that `modify` finds nothing changed and stores no
/// version.
fn merge_into(calls: &ObservedCalls, topology: &mut Topology) -> Result<Merged, TopologyError> {
    let merged = calls.merge(Some(&topology.to_document()));
    if merged.adds_anything() {
        for service in &merged.document.services {
            if topology.service(&service.name).is_none() {
                topology.add_service(service.clone())?;
            }
        }
        for dependency in &merged.document.dependencies {
            if topology.dependency(&dependency.caller, &dependency.callee) != Some(dependency) {
                topology.set_dependency(dependency.clone())?;
            }
        }
    }
    Ok(merged)
}

/// Most a gzipped body may inflate to: generous for trace batches, small enough that a
/// compression bomb cannot exhaust memory.
const MAX_INFLATED_BYTES: u64 = 256 * 1024 * 1024;

/// Inflates a gzipped body (the Collector's otlphttp exporter compresses by default).
fn gunzip(body: &[u8]) -> Result<Bytes, ApiError> {
    use std::io::Read;
    let mut inflated = Vec::with_capacity(body.len() * 4);
    flate2::read::GzDecoder::new(body)
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut inflated)
        .map_err(|error| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_gzip",
                format!("the body is not valid gzip: {error}"),
            )
        })?;
    if inflated.len() as u64 > MAX_INFLATED_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the gzipped body inflates to more than {MAX_INFLATED_BYTES} bytes"),
        ));
    }
    Ok(Bytes::from(inflated))
}

/// Refuses what is not OTLP/JSON, plain or gzipped, before reading the body; says whether the
/// body is gzipped.
fn check_content(headers: &HeaderMap) -> Result<bool, ApiError> {
    let unsupported = ApiError::unsupported_media_type;
    let encoding = headers.get(header::CONTENT_ENCODING).map(|e| e.as_bytes());
    let gzipped = encoding.is_some_and(|e| e.eq_ignore_ascii_case(b"gzip"));
    if let Some(encoding) = encoding
        && !gzipped
        && !encoding.eq_ignore_ascii_case(b"identity")
    {
        return Err(unsupported(format!(
            "Content-Encoding {} is not accepted; send OTLP/JSON plain or gzipped",
            String::from_utf8_lossy(encoding)
        )));
    }
    if !is_json(headers) {
        return Err(unsupported(format!(
            "only OTLP/JSON is accepted: send it with Content-Type: application/json (got {}); \
             the Collector's otlphttp exporter does with `encoding: json`",
            media_type(headers).as_deref().unwrap_or("none")
        )));
    }
    Ok(gzipped)
}

/// 422 for OTLP/JSON that names a service the topology would refuse.
fn invalid_traces(error: TraceError) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_traces",
        format!("invalid traces: {}", error.problem),
    )
    .with_problems(vec![error.problem])
}

#[cfg(test)]
mod tests;
