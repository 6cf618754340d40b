//! The risks page (`/risks`): what may fail before it does: the critical windows open now and
//! what the next one exposes, services by risk score with its parts, and every structural and
//! historical risk with its reason.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::bars::{Bar, bars};
use super::html;
use super::shell::{self, Section};
use crate::risk::overview::{overview, serde_name};
use crate::state::AppState;

/// Services listed by score.
const LISTED: usize = 50;

pub(super) async fn page(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let now = state.clock.now_millis();
    let current = state.topology.current();
    let history = state.risks.history();
    let (risks, of, read) = (state.risks.clone(), current.clone(), history.clone());
    // What `GET /api/v1/risks` serves, off the async workers (structural risks are computed on
    // first use of a topology version).
    let view = match tokio::task::spawn_blocking(move || {
        overview(
            of.version.id,
            of.structural_risks(),
            &read,
            risks.calendar(),
            now,
            LISTED,
        )
    })
    .await
    {
        Ok(view) => view,
        Err(error) => return super::failure(error, started),
    };
    let score_bars: Vec<Bar> = view
        .services
        .iter()
        .map(|r| Bar {
            label: r.service.clone(),
            value: r.score,
            text: format!("{:.2}", r.score),
        })
        .collect();
    let main = html! {
        h1 { "Risks" }
        p.muted {
            @match history.computed_at {
                Some(at) => { "Fault history read " (shell::time(at)) ": " (view.faults)
                    " faults and " (view.changes) " changes over the last "
                    (state.risks.settings().lookback_days) " days" }
                None => "Fault history not read yet",
            }
            @if let Some(rate) = view.change_failure_rate {
                " · change failure rate " (format!("{rate:.2}"))
            }
            " · topology version " (view.topology_version)
        }
        section aria-labelledby="windows-title" {
            h2 #windows-title { "Critical windows" }
            @if state.risks.calendar().is_empty() {
                p.muted { "No business calendar is configured ([calendar] in the configuration)." }
            }
            @for w in &view.open_windows {
                p.window role="note" { "Open now: the " (w.name) " (" (w.local_start) ", until "
                    (shell::time(w.end)) "); incidents on its services are raised by "
                    (w.raise_priority) " level(s)." }
            }
            @if let Some(next) = &view.next_window {
                p { "Next: the " strong { (next.window.name) } " at " (next.window.local_start) " ("
                    (shell::time(next.window.start)) ")." }
                @if next.services.is_empty() {
                    p.muted { "No service it concerns carries a medium or higher risk." }
                } @else {
                    ul.exposed { @for s in &next.services { li { (s.why) } } }
                }
            }
        }
        section aria-labelledby="scores-title" {
            h2 #scores-title { "Services by risk" }
            (bars("Risk score of each service, 0 to 1", &score_bars, Some(1.0)))
            table.risk-parts {
                caption.visually-hidden { "Parts of each service's risk score" }
                thead { tr {
                    th scope="col" { "Service" } th scope="col" { "Score" } th scope="col" { "Structure" }
                    th scope="col" { "Fault trend" } th scope="col" { "Recurrence" }
                    th scope="col" { "Change failure" } th scope="col" { "Failing actions" } th scope="col" { "Why" }
                } }
                tbody {
                    @for r in &view.services {
                        tr {
                            td { a href={ "/topology?service=" (r.service) } { (r.service) } }
                            td { (format!("{:.2}", r.score)) " " (shell::badge(&serde_name(&r.severity))) }
                            td { (format!("{:.2}", r.parts.structural)) }
                            td { (format!("{:.2}", r.parts.fault_trend)) }
                            td { (format!("{:.2}", r.parts.recurrence)) }
                            td { (format!("{:.2}", r.parts.change_failure)) }
                            td { (format!("{:.2}", r.parts.failing_actions)) }
                            td { (r.reasons.join("; ")) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="all-title" {
            h2 #all-title { "Every risk" }
            table.risks {
                thead { tr { th scope="col" { "Score" } th scope="col" { "Kind" } th scope="col" { "Why" } } }
                tbody {
                    @for r in &view.items {
                        tr { td { (format!("{:.2}", r.score)) } td { (r.kind.replace('_', " ")) } td { (r.why) } }
                    }
                }
            }
        }
    };
    html(
        StatusCode::OK,
        shell::page("Risks", Section::Risks, None, main),
        started,
    )
}
