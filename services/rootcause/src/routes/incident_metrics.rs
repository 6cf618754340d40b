//! `POST /api/v1/incidents/{id}/metrics`: metric windows posted with an incident, evidence for
//! its ranking.
//!
//! Two shapes are accepted: this API's own (`{"series": [{"service", "name", "points":
//! [[t, v], ...]}]}`) and what Prometheus's `query_range` answers (its `data` object, or the
//! whole answer), so a script can pipe a query's result straight in. A request is all or
//! nothing: every problem is reported with where it is (`series[2].points[7][0]`), and nothing
//! of a refused request is stored.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rootcause_topology::{Problem, Topology};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incident::{IncidentPath, gone_error};
use crate::error::{ApiError, ApiQuery, ErrorBody, parse_json, require_json};
use crate::ranking::PostError;
use crate::state::AppState;
use crate::store::MetricWrite;

/// Most series one request may carry.
pub const MAX_SERIES_PER_REQUEST: usize = 1000;

/// Most points one series may carry (what Prometheus itself answers at most).
pub const MAX_POINTS_PER_SERIES: usize = 11_000;

/// Latest unix time accepted (the end of year 9999): anything later is a unit mistake
/// (milliseconds or nanoseconds sent as seconds).
const MAX_UNIX_SECONDS: f64 = 253_402_300_799.0;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_metrics))
}

/// This API's own shape of posted metrics.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // read from JSON by hand, for problem paths; declared for the OpenAPI document
struct MetricsPost {
    /// The series.
    series: Vec<PostedSeries>,
}

/// One posted series.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
struct PostedSeries {
    /// The topology service it measures (a name or alias).
    service: String,
    /// The metric name (`cpu_usage`, `latency_p99_ms`, ...): its words say what it measures.
    name: String,
    /// `[unix_seconds, value]` pairs in any order; a later duplicate time wins. A value may be
    /// a number, a numeric string (as Prometheus writes them), or `null`/`"NaN"` for no data.
    #[schema(value_type = Vec<Vec<Object>>)]
    points: Vec<(Value, Value)>,
}

/// Options of a post in Prometheus's shape.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct MetricsQuery {
    /// Prometheus shape: the label naming the service (default `service`).
    pub(super) service_label: Option<String>,
    /// Prometheus shape: the metric name for series without `__name__` (the result of an
    /// expression such as `rate(...)` has none).
    pub(super) name: Option<String>,
}

/// What a post stored.
#[derive(Debug, Serialize, ToSchema)]
struct MetricsReceipt {
    /// Series stored.
    accepted_series: usize,
    /// Points stored, after sorting and removing duplicate times.
    accepted_points: usize,
    /// Series stored but unable to show the incident: every point more than
    /// [`RELEVANT_WITHIN_S`] seconds before its first alert, or in the future. Rankings read the
    /// minutes around the first alert, so such a series changes nothing (a clock in
    /// milliseconds, or a window from another day, are the usual causes).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// How long before an incident's first alert a posted series must reach to count.
const RELEVANT_WITHIN_S: i64 = 3600;

/// What is wrong with the timing of each series, if anything: see [`MetricsReceipt::warnings`].
fn timing_warnings(series: &[MetricWrite], first_alert_s: i64, now_s: i64) -> Vec<String> {
    let at = |s: i64| {
        chrono::DateTime::from_timestamp(s, 0).map_or_else(
            || s.to_string(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
    };
    series
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let (first, last) = (*s.times.first()?, *s.times.last()?);
            let why = if last < first_alert_s - RELEVANT_WITHIN_S {
                format!(
                    "every point (the last at {}) is more than an hour before the incident's \
                     first alert ({})",
                    at(last),
                    at(first_alert_s)
                )
            } else if first > now_s + 300 {
                format!("every point (the first at {}) is in the future", at(first))
            } else {
                return None;
            };
            Some(format!(
                "series[{i}] ({} {}): {why}; stored, but rankings read the minutes around the \
                 first alert, so it changes nothing (timestamps are unix seconds)",
                s.service, s.name
            ))
        })
        .collect()
}

/// Adds metric windows to an incident's evidence and re-ranks it. The body is
/// `{"series": [{"service": "cart", "name": "cpu_usage", "points": [[1700000000, 0.5], ...]}]}`
/// or Prometheus's `query_range` answer (`{"resultType": "matrix", "result": [{"metric":
/// {"service": "cart", "__name__": "cpu_usage"}, "values": [[1700000000, "0.5"]]}]}`, alone or
/// inside `data`), the service taken from the label `service_label`. Points are sorted and
/// duplicate times removed; NaN (or null) means no data. Stored durably before the answer.
#[utoipa::path(post, path = "/incidents/{id}/metrics", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id"), MetricsQuery),
    request_body = MetricsPost,
    responses(
        (status = 202, description = "Stored; the incident is re-ranked", body = MetricsReceipt),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 404, description = "No such incident, or merged (code `merged`)",
         body = ErrorBody),
        (status = 413, description = "Too many series or points", body = ErrorBody),
        (status = 422, description = "Invalid series; each problem with its path; nothing stored",
         body = ErrorBody)))]
async fn post_metrics(
    State(state): State<AppState>,
    incident_path: IncidentPath,
    ApiQuery(query): ApiQuery<MetricsQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = incident_path.id;
    require_json(&headers)?;
    let body = body?;
    incident_path.held(state.ranking.find(id).await?)?;
    let value: Value = parse_json(&body)?;
    let topology = state.topology.current();
    let series = super::blocking(move || validate(value, &query, &topology.topology)).await??;
    let now_s = state.clock.now().timestamp();
    let first_alert_s = match state.ranking.latest(id) {
        crate::ranking::Found::Held((snapshot, _)) => snapshot.first_activity / 1000,
        _ => now_s,
    };
    let receipt = MetricsReceipt {
        accepted_series: series.len(),
        accepted_points: series.iter().map(|s| s.times.len()).sum(),
        warnings: timing_warnings(&series, first_alert_s, now_s),
    };
    if !series.is_empty() {
        state
            .ranking
            .post_metrics(id, series)
            .await
            .map_err(|error| incident_path.error(error))?;
    }
    Ok((StatusCode::ACCEPTED, Json(receipt)).into_response())
}

/// One series as found in the body, before its checks.
struct Raw<'a> {
    service: Option<&'a Value>,
    /// Where its service is (`series[3].service`, `data.result[0].metric.service`).
    service_at: String,
    name: Option<Value>,
    name_at: String,
    points: Option<&'a Value>,
    points_at: String,
}

/// Checks a body of either shape; every problem with its path, or the series to store (one
/// per (service, name): within a series a later point at the same second wins, and repeated
/// series, such as one per pod of a service, are averaged per second).
pub(super) fn validate(
    value: Value,
    query: &MetricsQuery,
    topology: &Topology,
) -> Result<Vec<MetricWrite>, ApiError> {
    let mut problems = Vec::new();
    let raws = raw_series(&value, query, &mut problems)?;
    if raws.len() > MAX_SERIES_PER_REQUEST {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_series",
            format!(
                "{} series in one request; at most {MAX_SERIES_PER_REQUEST}: split them",
                raws.len()
            ),
        ));
    }
    // Per (service, name) and second: the sum and count of the finite values of every series
    // that gives one (pods of one service are averaged, as the Prometheus pull does), and
    // whether any series had the point at all (all-NaN points stay "no data").
    let mut merged: BTreeMap<(String, String), BTreeMap<i64, (f64, u32)>> = BTreeMap::new();
    for raw in raws {
        let service = match raw.service {
            Some(Value::String(name)) => match topology.resolve(name) {
                Some(service) => Some(service.name.clone()),
                None => {
                    problems.push(Problem::at(
                        &raw.service_at,
                        format!("unknown service {name:?}: not in the current topology"),
                    ));
                    None
                }
            },
            Some(_) => {
                problems.push(Problem::at(&raw.service_at, "must be a string"));
                None
            }
            None => {
                problems.push(Problem::at(&raw.service_at, "missing: the series' service"));
                None
            }
        };
        let name = match raw.name {
            Some(Value::String(name)) if !name.trim().is_empty() => Some(name),
            Some(Value::String(_)) => {
                problems.push(Problem::at(&raw.name_at, "must not be empty"));
                None
            }
            Some(_) => {
                problems.push(Problem::at(&raw.name_at, "must be a string"));
                None
            }
            None => {
                problems.push(Problem::at(
                    &raw.name_at,
                    "missing: the metric name (for a Prometheus result without __name__, give \
                     ?name=)",
                ));
                None
            }
        };
        let points = match raw.points {
            Some(Value::Array(points)) => points,
            Some(_) => {
                problems.push(Problem::at(
                    &raw.points_at,
                    "must be an array of [time, value]",
                ));
                continue;
            }
            None => {
                problems.push(Problem::at(&raw.points_at, "missing: the samples"));
                continue;
            }
        };
        if points.len() > MAX_POINTS_PER_SERIES {
            problems.push(Problem::at(
                &raw.points_at,
                format!(
                    "{} points; at most {MAX_POINTS_PER_SERIES} per series",
                    points.len()
                ),
            ));
            continue;
        }
        let mut samples = BTreeMap::new();
        for (j, point) in points.iter().enumerate() {
            let at = format!("{}[{j}]", raw.points_at);
            let Some([time, value]) = point
                .as_array()
                .and_then(|p| <&[Value; 2]>::try_from(p.as_slice()).ok())
            else {
                problems.push(Problem::at(&at, "must be a pair [unix_seconds, value]"));
                continue;
            };
            let time = match number(time) {
                Some(t) if t.is_finite() && (0.0..=MAX_UNIX_SECONDS).contains(&t) => {
                    t.floor() as i64
                }
                Some(t) if t.is_finite() => {
                    problems.push(Problem::at(
                        format!("{at}[0]"),
                        format!("{t} is not a unix time in seconds (0 to year 9999)"),
                    ));
                    continue;
                }
                _ => {
                    problems.push(Problem::at(
                        format!("{at}[0]"),
                        "must be a finite unix time in seconds",
                    ));
                    continue;
                }
            };
            let value = match value {
                Value::Null => f64::NAN,
                other => match number(other) {
                    Some(v) if v.is_infinite() => {
                        problems.push(Problem::at(
                            format!("{at}[1]"),
                            "infinite values are not accepted; send NaN or null for no data",
                        ));
                        continue;
                    }
                    Some(v) => v,
                    None => {
                        problems.push(Problem::at(
                            format!("{at}[1]"),
                            "must be a number, a numeric string, \"NaN\" or null",
                        ));
                        continue;
                    }
                },
            };
            // A later point at the same (whole) second wins, as when a value is corrected.
            samples.insert(time, value);
        }
        if let (Some(service), Some(name)) = (service, name) {
            let entry = merged.entry((service, name)).or_default();
            for (time, value) in samples {
                let slot = entry.entry(time).or_insert((0.0, 0));
                if value.is_finite() {
                    slot.0 += value;
                    slot.1 += 1;
                }
            }
        }
    }
    if !problems.is_empty() {
        let message = match problems.as_slice() {
            [one] => format!("invalid metrics: {one}; nothing was stored"),
            many => format!(
                "invalid metrics: {} problems; nothing was stored",
                many.len()
            ),
        };
        return Err(
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_metrics", message)
                .with_problems(problems),
        );
    }
    Ok(merged
        .into_iter()
        .map(|((service, name), samples)| {
            let (times, values) = samples
                .into_iter()
                .map(|(time, (sum, count))| {
                    (
                        time,
                        if count > 0 {
                            sum / f64::from(count)
                        } else {
                            f64::NAN
                        },
                    )
                })
                .unzip();
            MetricWrite {
                service,
                name,
                times,
                values,
            }
        })
        .collect())
}

/// The series of either shape, with the paths of their parts.
fn raw_series<'a>(
    value: &'a Value,
    query: &MetricsQuery,
    problems: &mut Vec<Problem>,
) -> Result<Vec<Raw<'a>>, ApiError> {
    let shape_error = |path: &str, message: &str| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_metrics",
            format!("invalid metrics: {path}: {message}"),
        )
        .with_problems(vec![Problem::at(path, message)])
    };
    let Some(object) = value.as_object() else {
        return Err(shape_error(
            "",
            "expected an object: {\"series\": [...]} or a Prometheus query_range result",
        ));
    };
    // The whole query_range answer: `{"status": "success", "data": {...}}`.
    let (object, prefix) = match object.get("data").and_then(Value::as_object) {
        Some(data) if !object.contains_key("series") => (data, "data."),
        _ => (object, ""),
    };
    if let Some(series) = object.get("series") {
        for key in object.keys().filter(|k| *k != "series") {
            problems.push(Problem::at(key, "unknown field; expected only \"series\""));
        }
        let Some(series) = series.as_array() else {
            return Err(shape_error("series", "must be an array of series"));
        };
        return Ok(series
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let at = format!("series[{i}]");
                let fields = entry.as_object();
                if fields.is_none() {
                    problems.push(Problem::at(
                        &at,
                        "must be an object {service, name, points}",
                    ));
                }
                for key in fields
                    .into_iter()
                    .flat_map(|f| f.keys())
                    .filter(|k| !["service", "name", "points"].contains(&k.as_str()))
                {
                    problems.push(Problem::at(
                        format!("{at}.{key}"),
                        "unknown field; expected service, name and points",
                    ));
                }
                let field = |name: &str| fields.and_then(|f| f.get(name));
                Raw {
                    service: field("service"),
                    service_at: format!("{at}.service"),
                    name: field("name").cloned(),
                    name_at: format!("{at}.name"),
                    points: field("points"),
                    points_at: format!("{at}.points"),
                }
            })
            .collect());
    }
    if object.contains_key("result") || object.contains_key("resultType") {
        match object.get("resultType").and_then(Value::as_str) {
            Some("matrix") => {}
            Some(other) => {
                return Err(shape_error(
                    &format!("{prefix}resultType"),
                    &format!("must be \"matrix\" (a range query's result), got {other:?}"),
                ));
            }
            None => {
                return Err(shape_error(
                    &format!("{prefix}resultType"),
                    "missing: a range query's result has resultType \"matrix\"",
                ));
            }
        }
        let Some(result) = object.get("result").and_then(Value::as_array) else {
            return Err(shape_error(
                &format!("{prefix}result"),
                "must be an array of series",
            ));
        };
        let label = query.service_label.as_deref().unwrap_or("service");
        return Ok(result
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let at = format!("{prefix}result[{i}]");
                let metric = entry.get("metric");
                Raw {
                    service: metric.and_then(|m| m.get(label)),
                    service_at: format!("{at}.metric.{label}"),
                    // `?name=` names the series that have no `__name__`.
                    name: metric
                        .and_then(|m| m.get("__name__"))
                        .cloned()
                        .or_else(|| query.name.clone().map(Value::String)),
                    name_at: format!("{at}.metric.__name__"),
                    points: entry.get("values"),
                    points_at: format!("{at}.values"),
                }
            })
            .collect());
    }
    Err(shape_error(
        "",
        "expected {\"series\": [...]} or a Prometheus query_range result \
         ({\"resultType\": \"matrix\", \"result\": [...]})",
    ))
}

/// A JSON number, or a string holding one (Prometheus writes sample values as strings;
/// `NaN`, `+Inf` and `-Inf` included).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl From<PostError> for ApiError {
    fn from(error: PostError) -> ApiError {
        match error {
            // Without the request's resource: handlers answer through `IncidentPath::error`.
            PostError::Gone(gone) => gone_error(gone, "metrics"),
            error @ PostError::TooManyPoints { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_points",
                error.to_string(),
            ),
            PostError::Store(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_of_one_service_from_several_pods_are_averaged_per_second() {
        let topology = Topology::parse(
            "services:\n  - name: db\n    kind: database\n",
            rootcause_topology::Format::Yaml,
        )
        .unwrap();
        let body = serde_json::json!({"resultType": "matrix", "result": [
            {"metric": {"service": "db", "pod": "db-0"}, "values": [[100, "1"], [160, "NaN"]]},
            {"metric": {"service": "db", "pod": "db-1"}, "values": [[100, "3"], [160, "NaN"]]},
        ]});
        let query = MetricsQuery {
            service_label: None,
            name: Some("cpu".into()),
        };
        let writes = validate(body, &query, &topology).unwrap();
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].times, [100, 160]);
        assert_eq!(writes[0].values[0], 2.0);
        assert!(writes[0].values[1].is_nan());
    }

    #[test]
    fn series_that_cannot_show_the_incident_are_named_with_why() {
        let series = |name: &str, times: Vec<i64>| MetricWrite {
            service: "redis-cart".into(),
            name: name.into(),
            values: vec![0.5; times.len()],
            times,
        };
        let first_alert = 1_800_000_000;
        let posted = [
            series("cpu", vec![first_alert - 600, first_alert + 60]),
            series(
                "old",
                vec![first_alert - 30 * 86_400, first_alert - 29 * 86_400],
            ),
            series("ms", vec![first_alert * 1000]),
        ];
        let warnings = timing_warnings(&posted, first_alert, first_alert + 120);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with("series[1] (redis-cart old): every point"),
            "{warnings:?}"
        );
        assert!(
            warnings[0].contains("more than an hour before"),
            "{warnings:?}"
        );
        assert!(warnings[1].contains("in the future"), "{warnings:?}");
    }
}
