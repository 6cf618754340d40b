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
use crate::risk::score::{exposure, service_scores};
use crate::state::AppState;

/// Services listed by score.
const LISTED: usize = 50;

pub(super) async fn page(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let now = state.clock.now_millis();
    let current = state.topology.current();
    let of = current.clone();
    let structural = match tokio::task::spawn_blocking(move || of.structural_risks().to_vec()).await
    {
        Ok(risks) => risks,
        Err(error) => return super::failure(error, started),
    };
    let history = state.risks.history();
    let scores = service_scores(&structural, &history.analysis);
    let calendar = state.risks.calendar();
    let open = calendar.active_at(now);
    let next = calendar
        .next_after(now)
        .map(|w| exposure(&w, &scores, 0.25, 10));
    let score_bars: Vec<Bar> = scores
        .iter()
        .take(LISTED)
        .map(|r| Bar {
            label: r.service.clone(),
            value: r.score,
            text: format!("{:.2}", r.score),
        })
        .collect();
    let mut every: Vec<(f64, String, &str)> = structural
        .iter()
        .map(|r| (r.score, kind_name(&r.kind), r.why.as_str()))
        .chain(
            history
                .analysis
                .risks
                .iter()
                .map(|r| (r.score, kind_name(&r.kind), r.why.as_str())),
        )
        .collect();
    every.sort_by(|a, b| b.0.total_cmp(&a.0));
    let main = html! {
        h1 { "Risks" }
        p.muted {
            @match history.computed_at {
                Some(at) => { "Fault history read " (shell::time(at)) ": " (history.analysis.faults)
                    " faults and " (history.analysis.changes) " changes over the last "
                    (state.risks.settings().lookback_days) " days" }
                None => "Fault history not read yet",
            }
            @if let Some(rate) = history.analysis.change_failure_rate {
                " · change failure rate " (format!("{rate:.2}"))
            }
            " · topology version " (current.version.id)
        }
        section aria-labelledby="windows-title" {
            h2 #windows-title { "Critical windows" }
            @if calendar.is_empty() {
                p.muted { "No business calendar is configured ([calendar] in the configuration)." }
            }
            @for w in &open {
                p.window role="note" { "Open now: the " (w.name) " (" (w.local_start) ", until "
                    (shell::time(w.end)) "); incidents on its services are raised by "
                    (w.raise_priority) " level(s)." }
            }
            @if let Some(next) = &next {
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
                    @for r in scores.iter().take(LISTED) {
                        tr {
                            td { a href={ "/topology?service=" (r.service) } { (r.service) } }
                            td { (format!("{:.2}", r.score)) " " (shell::badge(&format!("{:?}", r.severity).to_lowercase())) }
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
                    @for (score, kind, why) in &every {
                        tr { td { (format!("{score:.2}")) } td { (kind) } td { (why) } }
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

/// A risk kind in words (`single point of failure`).
fn kind_name(kind: &impl serde::Serialize) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default()
}
