//! `/api/v1/services` and `/api/v1/dependencies`: one service at a time (its neighbours, blast
//! radius and single-point-of-failure status), and changes to single services and edges.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rootcause_topology::{
    Criticality, Dependency, Problem, Reach, Service, ServiceKind, SinglePointOfFailure,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::topology::{ChangeNote, TopologyChange};
use super::{apply_change, blocking, check_range};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use crate::live_topology::Current;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_services))
        .routes(routes!(get_service, put_service, delete_service))
        .routes(routes!(put_dependency, delete_dependency))
}

/// A service in a list.
#[derive(Debug, Serialize, ToSchema)]
struct ServiceSummary<'a> {
    /// Name.
    name: &'a str,
    /// Kind.
    kind: ServiceKind,
    /// Owning team.
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<&'a str>,
    /// Criticality.
    #[serde(skip_serializing_if = "Option::is_none")]
    criticality: Option<Criticality>,
    /// Number of direct callers.
    callers: usize,
    /// Number of direct callees.
    callees: usize,
}

/// Every service of the current topology.
#[derive(Debug, Serialize, ToSchema)]
struct ServiceList<'a> {
    /// The topology version used.
    version: i64,
    /// Services sorted by name.
    items: Vec<ServiceSummary<'a>>,
}

/// Every service of the current topology, with its number of callers and callees.
#[utoipa::path(get, path = "/services", tag = "services",
    responses((status = 200, description = "Services sorted by name", body = ServiceList)))]
async fn list_services(State(state): State<AppState>) -> Result<Response, ApiError> {
    let current = state.topology.current();
    blocking(move || list(&current)).await
}

fn list(current: &Current) -> Response {
    let topology = &current.topology;
    let mut items: Vec<ServiceSummary<'_>> = topology
        .services()
        .map(|service| ServiceSummary {
            name: &service.name,
            kind: service.kind,
            team: service.team.as_deref(),
            criticality: service.criticality,
            callers: topology.callers(&service.name, 1).map_or(0, |c| c.len()),
            callees: topology.callees(&service.name, 1).map_or(0, |c| c.len()),
        })
        .collect();
    items.sort_unstable_by(|a, b| a.name.cmp(b.name));
    Json(ServiceList {
        version: current.version.id,
        items,
    })
    .into_response()
}

/// How far to look around a service.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HopsQuery {
    /// Callers and callees up to this many hops away, 1 to 10; default 2.
    hops: Option<usize>,
}

/// Everything a failure of the service can reach.
#[derive(Debug, Serialize, ToSchema)]
struct BlastRadius<'a> {
    /// Number of services.
    count: usize,
    /// Every transitive caller, nearest first.
    services: Vec<Reach<'a>>,
}

/// One service and its surroundings.
#[derive(Debug, Serialize, ToSchema)]
struct ServiceDetail<'a> {
    /// The topology version used.
    version: i64,
    /// The service.
    service: &'a Service,
    /// Services that call it within `hops`, nearest first.
    callers: Vec<Reach<'a>>,
    /// Services it calls within `hops`, nearest first.
    callees: Vec<Reach<'a>>,
    /// What its failure can reach.
    blast_radius: BlastRadius<'a>,
    /// Present when the service is a single point of failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    single_point_of_failure: Option<&'a SinglePointOfFailure>,
}

/// A service (by name or alias) with its callers and callees within `hops`, its blast radius
/// (every transitive caller) and whether it is a single point of failure.
#[utoipa::path(get, path = "/services/{name}", tag = "services",
    params(("name" = String, Path, description = "Service name or alias"), HopsQuery),
    responses((status = 200, description = "The service", body = ServiceDetail),
              (status = 400, description = "hops out of range", body = ErrorBody),
              (status = 404, description = "No such service", body = ErrorBody)))]
async fn get_service(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<HopsQuery>,
) -> Result<Response, ApiError> {
    let hops = query.hops.unwrap_or(2);
    check_range("hops", hops, 1..=10)?;
    let current = state.topology.current();
    blocking(move || detail(&current, &name, hops)).await?
}

fn detail(current: &Current, name: &str, hops: usize) -> Result<Response, ApiError> {
    let topology = &current.topology;
    let service = topology
        .resolve(name)
        .ok_or_else(|| ApiError::not_found(format!("unknown service {name:?}")))?;
    let found = "the service was just resolved";
    let blast = topology.blast_radius(&service.name).expect(found);
    let detail = ServiceDetail {
        version: current.version.id,
        service,
        callers: topology.callers(&service.name, hops).expect(found),
        callees: topology.callees(&service.name, hops).expect(found),
        blast_radius: BlastRadius {
            count: blast.len(),
            services: blast,
        },
        single_point_of_failure: current
            .single_points_of_failure()
            .iter()
            .find(|spof| spof.service == service.name),
    };
    Ok(Json(detail).into_response())
}

/// Adds a service, or replaces the attributes of an existing one (its dependencies stay).
/// Stored as a new topology version; `If-Match` makes it conditional on the current version.
#[utoipa::path(put, path = "/services/{name}", tag = "services",
    params(("name" = String, Path, description = "Service name; must equal the body's name"), ChangeNote),
    request_body = Service,
    responses(
        (status = 201, description = "Stored as a new version", body = TopologyChange),
        (status = 200, description = "Already like that; nothing stored", body = TopologyChange),
        (status = 409, description = "An alias is used by another service", body = ErrorBody),
        (status = 412, description = "If-Match names a version that is no longer current", body = ErrorBody),
        (status = 422, description = "Invalid service", body = ErrorBody),
    ))]
async fn put_service(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(note): ApiQuery<ChangeNote>,
    headers: HeaderMap,
    ApiJson(service): ApiJson<Service>,
) -> Result<Response, ApiError> {
    if service.name != name {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "the service's name must be the name in the URL",
        )
        .with_problems(vec![Problem::at(
            "name",
            format!("expected {name:?}, got {:?}", service.name),
        )]));
    }
    let note = note.note.unwrap_or_else(|| format!("put service {name}"));
    apply_change(
        &state,
        &headers,
        note,
        StatusCode::CREATED,
        move |topology| {
            if topology.service(&service.name).is_some() {
                topology.replace_service(service.clone()).map(drop)
            } else {
                topology.add_service(service.clone())
            }
        },
    )
    .await
}

/// Removes a service and every dependency that touches it.
#[utoipa::path(delete, path = "/services/{name}", tag = "services",
    params(("name" = String, Path, description = "Service name"), ChangeNote),
    responses(
        (status = 200, description = "Stored as a new version", body = TopologyChange),
        (status = 404, description = "No such service", body = ErrorBody),
        (status = 412, description = "If-Match names a version that is no longer current", body = ErrorBody),
    ))]
async fn delete_service(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(note): ApiQuery<ChangeNote>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let note = note
        .note
        .unwrap_or_else(|| format!("delete service {name}"));
    apply_change(&state, &headers, note, StatusCode::OK, move |topology| {
        topology.remove_service(&name)
    })
    .await
}

/// Adds a `caller → callee` dependency, or replaces the attributes of an existing one.
#[utoipa::path(put, path = "/dependencies", tag = "services", params(ChangeNote),
    request_body = Dependency,
    responses(
        (status = 201, description = "Stored as a new version", body = TopologyChange),
        (status = 200, description = "Already like that; nothing stored", body = TopologyChange),
        (status = 404, description = "The caller or callee does not exist", body = ErrorBody),
        (status = 412, description = "If-Match names a version that is no longer current", body = ErrorBody),
        (status = 422, description = "Invalid dependency", body = ErrorBody),
    ))]
async fn put_dependency(
    State(state): State<AppState>,
    ApiQuery(note): ApiQuery<ChangeNote>,
    headers: HeaderMap,
    ApiJson(dependency): ApiJson<Dependency>,
) -> Result<Response, ApiError> {
    let note = note.note.unwrap_or_else(|| {
        format!(
            "put dependency {} -> {}",
            dependency.caller, dependency.callee
        )
    });
    apply_change(
        &state,
        &headers,
        note,
        StatusCode::CREATED,
        move |topology| topology.set_dependency(dependency.clone()),
    )
    .await
}

/// The dependency to remove.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DependencyQuery {
    /// The caller.
    caller: String,
    /// The callee.
    callee: String,
    /// Free text stored with the new version.
    note: Option<String>,
}

/// Removes the `caller → callee` dependency.
#[utoipa::path(delete, path = "/dependencies", tag = "services", params(DependencyQuery),
    responses(
        (status = 200, description = "Stored as a new version", body = TopologyChange),
        (status = 404, description = "No such dependency or service", body = ErrorBody),
        (status = 412, description = "If-Match names a version that is no longer current", body = ErrorBody),
    ))]
async fn delete_dependency(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DependencyQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let note = query
        .note
        .clone()
        .unwrap_or_else(|| format!("delete dependency {} -> {}", query.caller, query.callee));
    apply_change(&state, &headers, note, StatusCode::OK, move |topology| {
        topology.remove_dependency(&query.caller, &query.callee)
    })
    .await
}
