//! The stability report page (`/reports?days=N`): how fault management performed over the last
//! N days (the figures of `GET /api/v1/reports/stability`), with charts: incidents per day,
//! per service and per team, and the change failure rate per service.

use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::bars::{Bar, bars, columns};
use super::html;
use super::shell::{self, Section};
use crate::stability::gather;
use crate::state::AppState;

/// Incidents read for one report page at most (the newest).
const READ: usize = 2_000;
/// Bars per chart.
const BARS: usize = 15;

#[derive(Debug, Default, Deserialize)]
pub(super) struct Period {
    #[serde(default)]
    days: Option<String>,
}

pub(super) async fn page(State(state): State<AppState>, Query(period): Query<Period>) -> Response {
    let started = Instant::now();
    let days = match period
        .days
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        None => 30,
        Some(text) => match text.parse::<i64>() {
            Ok(d @ 1..=366) => d,
            _ => {
                let message = format!("days must be a whole number from 1 to 366, not {text:?}");
                return html(
                    StatusCode::BAD_REQUEST,
                    shell::problem("Bad period", &message),
                    started,
                );
            }
        },
    };
    let until = state.clock.now_millis();
    let since = until - days * 86_400_000;
    let (report, truncated) = match gather(&state, since, until, READ).await {
        Ok(found) => found,
        Err(error) => return super::failure(error, started),
    };
    let rate = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.2}"));
    let minutes = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{:.1} min", v / 60.0));
    let count_bars = |counts: &[crate::stability::Count]| -> Vec<Bar> {
        counts
            .iter()
            .take(BARS)
            .map(|c| Bar {
                label: c.name.clone(),
                value: c.incidents as f64,
                text: c.incidents.to_string(),
            })
            .collect()
    };
    let change_bars: Vec<Bar> = report
        .changes_by_service
        .iter()
        .take(BARS)
        .map(|c| Bar {
            label: c.service.clone(),
            value: c.failure_rate,
            text: format!("{:.2} ({} of {})", c.failure_rate, c.failed, c.changes),
        })
        .collect();
    let daily: Vec<(String, f64)> = report
        .daily
        .iter()
        .map(|d| (shell::time(d.day)[..10].to_owned(), d.incidents as f64))
        .collect();
    let main = html! {
        h1 { "Stability report" }
        form.filters method="get" action="/reports" aria-label="Period" {
            label { "Last " input name="days" type="number" min="1" max="366" value=(days); " days" }
            button type="submit" { "Show" }
            a href={ "/api/v1/reports/stability?format=csv&since=" (rfc3339(since)) "&until=" (rfc3339(until)) } { "CSV" }
        }
        @if truncated {
            p.warning role="note" { "The period holds more than " (READ) " incidents: the figures cover the newest." }
        }
        dl.facts.report {
            dt { "Incidents" } dd { (report.incidents) " from " (report.alerts) " alerts (noise reduction " (rate(report.noise_reduction)) ")" }
            dt { "MTTA" } dd { (minutes(report.mtta.mean_s)) " mean, " (minutes(report.mtta.median_s)) " median (" (report.mtta.count) ")" }
            dt { "MTTR" } dd { (minutes(report.mttr.mean_s)) " mean, " (minutes(report.mttr.median_s)) " median (" (report.mttr.count) ")" }
            dt { "Change failure rate" } dd { (rate(report.change_failure_rate)) " (" (report.failed_changes) " of " (report.changes) " changes)" }
            dt { "Top hypothesis right" } dd { "AC@1 " (rate(report.ac1)) " · AC@3 " (rate(report.ac3)) " · AC@5 " (rate(report.ac5))
                " · Avg@5 " (rate(report.avg5)) " (" (report.judged) " resolutions judged)" }
            dt { "Actions that worked" } dd { (rate(report.action_success_rate)) " (" (report.actions_judged) " judged)" }
        }
        (columns("Incidents per day", &daily))
        div.report-charts {
            (bars("Incidents per service", &count_bars(&report.by_service), None))
            (bars("Incidents per team", &count_bars(&report.by_team), None))
            (bars("Change failure rate per service", &change_bars, Some(1.0)))
        }
    };
    html(
        StatusCode::OK,
        shell::page("Stability report", Section::Reports, None, main),
        started,
    )
}

fn rfc3339(millis: i64) -> Markup {
    html! { (chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ")) }
}
