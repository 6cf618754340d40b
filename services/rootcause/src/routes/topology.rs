//! `/api/v1/topology`: the whole graph, its versions, diffs, propagation paths and single points
//! of failure.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rootcause_topology::{
    Format, SinglePointOfFailure, Topology, TopologyDiff, TopologyDocument, to_yaml,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{apply_change, blocking, check_range, version_etag};
use crate::error::{ApiError, ApiPath, ApiQuery, ErrorBody, is_json, media_type};
use crate::live_topology::{Current, TopologyVersion};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_topology, put_topology))
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
        .routes(routes!(diff_versions))
        .routes(routes!(propagation_paths))
        .routes(routes!(single_points_of_failure))
}

/// The answer to a change of the topology.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TopologyChange {
    /// True when a new version was stored; false when the graph was already like that.
    pub changed: bool,
    /// The current version after the request.
    pub version: TopologyVersion,
    /// What changed from the previous version (empty when nothing did).
    pub diff: TopologyDiff,
}

/// Output format of a topology document.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DocumentFormat {
    /// `json` (default) or `yaml`; `Accept: application/yaml` also selects YAML.
    format: Option<String>,
}

/// Whether the client asked for YAML (`?format=yaml` or `Accept: application/yaml`).
fn wants_yaml(query: &DocumentFormat, headers: &HeaderMap) -> Result<bool, ApiError> {
    match query.format.as_deref() {
        Some("yaml") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(ApiError::bad_request(
            "invalid_parameter",
            format!("format must be json or yaml, got {other:?}"),
        )),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("yaml"))),
    }
}

/// A version's document in the requested format, with the version as `ETag`.
async fn document_response(
    version: Arc<Current>,
    query: &DocumentFormat,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let yaml = wants_yaml(query, headers)?;
    blocking(move || {
        let document = version.topology.to_document();
        let etag = version_etag(version.version.id);
        if yaml {
            let content_type = (header::CONTENT_TYPE, "application/yaml".to_owned());
            ([content_type, etag], to_yaml(&document)).into_response()
        } else {
            ([etag], Json(document)).into_response()
        }
    })
    .await
}

/// The current topology document. Its `ETag` is the version id; send it back as `If-Match` to
/// change the topology only if nobody else has changed it since.
#[utoipa::path(get, path = "/topology", tag = "topology", params(DocumentFormat),
    responses((status = 200, description = "The current topology", body = TopologyDocument,
               headers(("ETag" = String, description = "The version id, quoted")))))]
async fn get_topology(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DocumentFormat>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    document_response(state.topology.current(), &query, &headers).await
}

/// Note recorded with a change.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ChangeNote {
    /// Free text stored with the new version (who and why).
    pub note: Option<String>,
    /// `PUT /topology` only: store a document without services (refused otherwise, since it
    /// unmaps every alert).
    #[serde(default)]
    pub allow_empty: bool,
}

/// Replaces the whole topology with the document in the body (JSON, or YAML with
/// `content-type: application/yaml`). The document is checked completely first: a broken one is
/// refused with every problem and its path, and nothing is stored. An identical graph stores no
/// new version.
#[utoipa::path(put, path = "/topology", tag = "topology", params(ChangeNote),
    request_body(content(
        (TopologyDocument = "application/json"),
        (TopologyDocument = "application/yaml"),
    )),
    responses(
        (status = 201, description = "Stored as a new version", body = TopologyChange),
        (status = 200, description = "Same graph as the current version; nothing stored", body = TopologyChange),
        (status = 400, description = "Not JSON/YAML", body = ErrorBody),
        (status = 412, description = "If-Match names a version that is no longer current", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 415, description = "Neither JSON nor YAML", body = ErrorBody),
        (status = 422, description = "Breaks the schema or a graph rule; every problem listed with its path", body = ErrorBody),
    ))]
async fn put_topology(
    State(state): State<AppState>,
    ApiQuery(note): ApiQuery<ChangeNote>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let format = document_format(&headers)?;
    let body = body?;
    // Up to the body limit of YAML or JSON: parse and check it on the blocking pool.
    let topology = blocking(move || {
        let text = std::str::from_utf8(&body).map_err(|e| {
            ApiError::bad_request("malformed_document", format!("body is not UTF-8: {e}"))
        })?;
        Topology::parse(text, format).map_err(ApiError::invalid_topology)
    })
    .await??;
    if topology.service_count() == 0 && !note.allow_empty {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_topology",
            "the document has no services: storing it would unmap every alert from now on; \
             send ?allow_empty=true if that is what you mean",
        ));
    }
    let note = note.note.unwrap_or_default();
    apply_change(&state, &headers, note, StatusCode::CREATED, move |t| {
        *t = topology.clone();
        Ok(())
    })
    .await
}

/// The document format a request's content type names.
fn document_format(headers: &HeaderMap) -> Result<Format, ApiError> {
    if headers.get(header::CONTENT_TYPE).is_none() || is_json(headers) {
        return Ok(Format::Json);
    }
    match media_type(headers).as_deref() {
        Some("application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml") => {
            Ok(Format::Yaml)
        }
        other => Err(ApiError::unsupported_media_type(format!(
            "a topology is JSON (application/json) or YAML (application/yaml), not {}",
            other.unwrap_or("?")
        ))),
    }
}

/// Paging through versions.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct VersionPageQuery {
    /// Only versions older than this id (the `next_before` of the previous page).
    before: Option<i64>,
    /// Page size, 1 to 500; default 50.
    limit: Option<u32>,
}

/// A page of versions, newest first.
#[derive(Debug, Serialize, ToSchema)]
struct VersionPage {
    /// The versions.
    items: Vec<TopologyVersion>,
    /// Pass as `before` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<i64>,
}

/// Stored versions of the topology, newest first.
#[utoipa::path(get, path = "/topology/versions", tag = "topology", params(VersionPageQuery),
    responses((status = 200, description = "A page of versions", body = VersionPage),
              (status = 400, description = "Bad paging parameters", body = ErrorBody)))]
async fn list_versions(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<VersionPageQuery>,
) -> Result<Json<VersionPage>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    check_range("limit", limit as usize, 1..=500)?;
    let rows = state.store.topology_versions(query.before, limit).await?;
    let next_before = (rows.len() == limit as usize)
        .then(|| rows.last().map(|row| row.id))
        .flatten();
    Ok(Json(VersionPage {
        items: rows.into_iter().map(TopologyVersion::from).collect(),
        next_before,
    }))
}

/// The document of one stored version.
#[utoipa::path(get, path = "/topology/versions/{id}", tag = "topology",
    params(("id" = i64, Path, description = "Version id"), DocumentFormat),
    responses((status = 200, description = "The document of that version", body = TopologyDocument),
              (status = 404, description = "No such version", body = ErrorBody)))]
async fn get_version(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<DocumentFormat>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let version = load_version(&state, id).await?;
    document_response(version, &query, &headers).await
}

/// A version by id: the current one from memory, any other from the store.
async fn load_version(state: &AppState, id: i64) -> Result<Arc<Current>, ApiError> {
    let current = state.topology.current();
    if current.version.id == id {
        return Ok(current);
    }
    let stored = state
        .store
        .topology_version(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no topology version {id}")))?;
    blocking(move || Current::from_stored(stored))
        .await?
        .map(Arc::new)
        .map_err(|e| ApiError::internal(format!("{e:#}")))
}

/// The two versions to compare.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DiffQuery {
    /// The older version.
    from: i64,
    /// The newer version; default the current one.
    to: Option<i64>,
}

/// What changed between two versions.
#[derive(Debug, Serialize, ToSchema)]
struct VersionDiff {
    /// The older version.
    from: i64,
    /// The newer version.
    to: i64,
    /// The changes.
    diff: TopologyDiff,
}

/// Services and dependencies added, removed or changed from one version to another.
#[utoipa::path(get, path = "/topology/diff", tag = "topology", params(DiffQuery),
    responses((status = 200, description = "The differences", body = VersionDiff),
              (status = 404, description = "A version does not exist", body = ErrorBody)))]
async fn diff_versions(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> Result<Json<VersionDiff>, ApiError> {
    let to = query.to.unwrap_or(state.topology.current().version.id);
    let old = load_version(&state, query.from).await?;
    let new = load_version(&state, to).await?;
    let diff = blocking(move || TopologyDiff::between(&old.topology, &new.topology)).await?;
    Ok(Json(VersionDiff {
        from: query.from,
        to,
        diff,
    }))
}

/// Which propagation paths to find.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PathsQuery {
    /// The suspected root cause.
    root: String,
    /// The service showing symptoms.
    impacted: String,
    /// Longest path in edges, 1 to 10; default 5.
    max_edges: Option<usize>,
    /// Most paths returned, 1 to 100; default 10.
    limit: Option<usize>,
}

/// Ways a fault can travel.
#[derive(Debug, Serialize, ToSchema)]
struct PropagationPaths {
    /// The topology version used.
    version: i64,
    /// Each path from the root cause to the impacted service, shortest first.
    paths: Vec<Vec<String>>,
    /// False when the search stopped at its budget (a very densely connected graph) before
    /// examining every path up to the limit.
    complete: bool,
}

/// The chains of callers through which a fault in `root` reaches `impacted` (symptoms climb
/// from callee to caller), shortest first. Services may be named by alias.
#[utoipa::path(get, path = "/topology/paths", tag = "topology", params(PathsQuery),
    responses((status = 200, description = "The paths (empty when none)", body = PropagationPaths),
              (status = 400, description = "A parameter is missing or out of range", body = ErrorBody),
              (status = 404, description = "A service does not exist", body = ErrorBody)))]
async fn propagation_paths(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PathsQuery>,
) -> Result<Json<PropagationPaths>, ApiError> {
    let max_edges = query.max_edges.unwrap_or(5);
    let limit = query.limit.unwrap_or(10);
    check_range("max_edges", max_edges, 1..=10)?;
    check_range("limit", limit, 1..=100)?;
    let current = state.topology.current();
    let found = blocking(move || {
        let topology = &current.topology;
        let name = |name: &str| {
            topology
                .resolve(name)
                .map(|service| service.name.clone())
                .ok_or_else(|| ApiError::not_found(format!("unknown service {name:?}")))
        };
        let (root, impacted) = (name(&query.root)?, name(&query.impacted)?);
        let found = topology
            .propagation_paths(&root, &impacted, max_edges, limit)
            .expect("both services were just resolved");
        Ok::<_, ApiError>(PropagationPaths {
            version: current.version.id,
            paths: found
                .paths
                .into_iter()
                .map(|path| path.into_iter().map(str::to_owned).collect())
                .collect(),
            complete: found.complete,
        })
    })
    .await??;
    Ok(Json(found))
}

/// Single points of failure of the current version.
#[derive(Debug, Serialize, ToSchema)]
struct SinglePointsOfFailure {
    /// The topology version used.
    version: i64,
    /// Those that cut off most first.
    items: Vec<SinglePointOfFailure>,
}

/// Services whose loss cuts an entry point off from other services (they dominate them in the
/// call graph), or splits the graph (articulation points). Graph shape only: a shared leaf such
/// as one database every flow needs cuts nothing off; see its blast radius instead.
#[utoipa::path(get, path = "/topology/single-points-of-failure", tag = "topology",
    responses((status = 200, description = "Those that cut off most first", body = SinglePointsOfFailure)))]
async fn single_points_of_failure(
    State(state): State<AppState>,
) -> Result<Json<SinglePointsOfFailure>, ApiError> {
    let current = state.topology.current();
    let found = blocking(move || SinglePointsOfFailure {
        version: current.version.id,
        items: current.single_points_of_failure().to_vec(),
    })
    .await?;
    Ok(Json(found))
}
