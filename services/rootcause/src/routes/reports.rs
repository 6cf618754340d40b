//! `GET /api/v1/reports/stability`: how fault management performed over a period
//! ([`crate::stability`]), as JSON or CSV.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check_range, millis_of};
use crate::error::{ApiError, ApiQuery, ErrorBody};
use crate::stability::{StabilityReport, gather};
use crate::state::AppState;

/// The period when none is given: the last 30 days.
const DEFAULT_PERIOD_MS: i64 = 30 * 24 * 3600 * 1000;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stability_report))
}

/// The period and form of the report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReportQuery {
    /// RFC 3339 start (default: 30 days before `until`).
    since: Option<String>,
    /// RFC 3339 end (default: now).
    until: Option<String>,
    /// Most incidents read, newest first (1 to 10,000, default 2,000); `truncated` says when
    /// the period held more.
    limit: Option<usize>,
    /// `json` (default) or `csv` (`section,name,value` rows).
    format: Option<String>,
}

/// The report with whether it covers every incident of the period.
#[derive(Debug, Serialize, ToSchema)]
struct ReportView {
    /// The figures.
    #[serde(flatten)]
    report: StabilityReport,
    /// True when the period held more incidents than `limit`: the figures cover the newest.
    truncated: bool,
}

/// The stability report over a period: MTTA (to the first decision, feedback or resolution),
/// MTTR (time to mitigate: as recorded by resolutions, else until all alerts ended), incidents
/// per service and team, alerts-to-incidents noise reduction, change failure rate (a change
/// followed within 24 h by an incident the changed service caused) overall and per service,
/// production AC@1, AC@3, AC@5 and Avg@5 of the hypotheses shown to responders before each
/// resolution, and the success rate of the actions taken.
#[utoipa::path(get, path = "/reports/stability", tag = "learning", params(ReportQuery),
    responses((status = 200, description = "The report (JSON, or CSV with `format=csv`)", body = ReportView),
              (status = 400, description = "Bad period, limit or format", body = ErrorBody)))]
async fn stability_report(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("format must be json or csv, got {other:?}"),
            ));
        }
    };
    let limit = query.limit.unwrap_or(2_000);
    check_range("limit", limit, 1..=10_000)?;
    let until =
        millis_of("until", query.until.as_deref())?.unwrap_or_else(|| state.clock.now_millis());
    let since = millis_of("since", query.since.as_deref())?.unwrap_or(until - DEFAULT_PERIOD_MS);
    if since > until {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "since must not be after until",
        ));
    }
    let (report, truncated) = gather(&state, since, until, limit).await?;
    if csv {
        return Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            report.to_csv(),
        )
            .into_response());
    }
    Ok(Json(ReportView { report, truncated }).into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use super::super::tests::app;

    #[tokio::test]
    async fn a_resolved_incident_shows_in_the_report_with_its_accuracy_and_times() {
        let app = app().await;
        let (id, ranking) = app.cache_failure("HighLatency").await;
        let top = ranking["hypotheses"][0]["service"]
            .as_str()
            .unwrap()
            .to_owned();
        // The suggestion is audited just after the ranking is published; wait for it.
        let audited = format!("/api/v1/audit?incident={id}&kind=suggested");
        for _ in 0..500 {
            let entries = app.get(&audited).await.json();
            if entries["items"].as_array().is_some_and(|i| !i.is_empty()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let resolved = app
            .post_json(
                &format!("/api/v1/incidents/{id}/resolution"),
                &json!({"root_cause": top, "fault_type": "cpu", "action": "restart", "worked": true,
                        "time_to_mitigate_s": 420.0}),
            )
            .await;
        assert_eq!(resolved.status, StatusCode::CREATED, "{}", resolved.text);
        let report = app.get("/api/v1/reports/stability").await;
        assert_eq!(report.status, StatusCode::OK, "{}", report.text);
        let r = report.json();
        assert_eq!(r["incidents"], 1, "{r:#}");
        assert_eq!(r["alerts"], 2);
        assert_eq!(r["judged"], 1);
        assert_eq!(r["ac1"], 1.0);
        assert_eq!(r["mttr"]["mean_s"], 420.0);
        assert_eq!(r["mtta"]["count"], 1);
        assert_eq!(r["action_success_rate"], 1.0);
        assert_eq!(r["truncated"], false);
        let csv = app.get("/api/v1/reports/stability?format=csv").await;
        assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
        assert!(csv.text.contains("overall,ac1,1.0000"), "{}", csv.text);
        for bad in [
            "?format=xml",
            "?limit=0",
            "?since=yesterday",
            "?since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z",
        ] {
            let answer = app.get(&format!("/api/v1/reports/stability{bad}")).await;
            assert_eq!(
                answer.status,
                StatusCode::BAD_REQUEST,
                "{bad}: {}",
                answer.text
            );
        }
    }
}
