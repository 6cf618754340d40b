//! The incident page (`/incidents/{id}`): its header, the dependency map, the ranked hypotheses
//! with their evidence charts and suggested actions, then (in [`super::incident_parts`]) the
//! decisions and audit trail, recent changes, similar past incidents, the resolution form, the
//! timeline and the alerts. Live: the page's script follows the incident's event stream and
//! re-renders when a new ranking arrives.

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use rootcause_models::case::Case;
use rootcause_models::diagnosis::{Hypothesis, Role};
use serde::Deserialize;

use super::incident_parts::{self, ALERTS_SHOWN, Facts};
use super::shell::{self, Section};
use super::{chart, failure, graph, html};
use crate::ranking::{Found, Ranked};
use crate::state::AppState;
use crate::store::{AuditFilter, ChangeFilter, Decision, StoredDecision, StoredIncident};

/// Hypotheses listed unless the page is asked for all.
const HYPOTHESES_SHOWN: usize = 10;
/// Hypotheses shown in full (evidence charts, suggested actions open); the rest are compact.
const CHARTED: usize = 3;
const CHARTS_EACH: usize = 2;
/// Audit entries read.
const AUDIT_READ: i64 = 500;
/// How far before the incident's first alert changes are listed.
const CHANGES_BEFORE_MS: i64 = 2 * 3600 * 1000;

/// `?all=1` lists every hypothesis.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Options {
    #[serde(default)]
    all: Option<String>,
}

pub(super) async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(options): Query<Options>,
) -> Response {
    let started = Instant::now();
    let Some(id) = id.parse::<i64>().ok().filter(|id| *id > 0) else {
        return not_found(&id, started);
    };
    let row = match state.store.incident(id).await {
        Ok(Some(row)) => row,
        Ok(None) => return not_found(&id.to_string(), started),
        Err(error) => return failure(error, started),
    };
    if let Some(survivor) = row.merged_into {
        return (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/incidents/{survivor}"))],
        )
            .into_response();
    }
    let incident = id as u64;
    let (ranked, case) = tokio::join!(
        state.ranking.hypotheses(incident),
        state.ranking.case_of(incident)
    );
    let ranked = match ranked {
        Ok(Found::Held(ranked)) => Some(ranked),
        Ok(_) => None,
        Err(error) => return failure(error, started),
    };
    let case = match case {
        Ok(Found::Held(case)) => Some(case),
        Ok(_) => None,
        Err(error) => return failure(error, started),
    };
    let facts = match gather(&state, &row).await {
        Ok(facts) => facts,
        Err(error) => return failure(error, started),
    };
    let main = render(
        &state,
        &row,
        ranked.as_deref(),
        case.as_ref(),
        &facts,
        options.all.is_some(),
    );
    let live = format!("/api/v1/incidents/{id}/events");
    html(
        StatusCode::OK,
        shell::page(
            &format!("Incident #{id}"),
            Section::Incidents,
            Some(&live),
            main,
        ),
        started,
    )
}

fn not_found(id: &str, started: Instant) -> Response {
    html(
        StatusCode::NOT_FOUND,
        shell::problem("No such incident", &format!("There is no incident {id}.")),
        started,
    )
}

/// Everything the page shows besides the ranking, read concurrently.
async fn gather(state: &AppState, row: &StoredIncident) -> Result<Facts, crate::store::StoreError> {
    let id = row.id;
    let incident = id as u64;
    let store = &state.store;
    let audit_filter = AuditFilter {
        incident: Some(incident),
        kind: None,
        after: None,
        limit: AUDIT_READ,
    };
    let change_filter = ChangeFilter {
        service: None,
        since: Some(row.first_activity - CHANGES_BEFORE_MS),
        until: None,
        limit: 50,
    };
    let (
        alerts,
        timeline,
        decisions,
        runs,
        audit,
        resolutions,
        feedback,
        changes,
        similar,
        catalogue,
    ) = tokio::join!(
        store.incident_alerts(id, ALERTS_SHOWN + 1),
        store.incident_timeline(id),
        store.decisions(incident),
        store.runs(incident),
        store.audit(&audit_filter),
        store.resolutions(id),
        store.feedback(id),
        store.list_changes(&change_filter),
        state.actions.similar(incident, 5),
        state.actions.catalogue(),
    );
    Ok(Facts {
        alerts: alerts?,
        timeline: timeline?,
        decisions: decisions?,
        runs: runs?,
        audit: audit?,
        resolutions: resolutions?,
        feedback: feedback?,
        changes: changes?,
        similar: match similar? {
            Found::Held(similar) => similar,
            _ => Vec::new(),
        },
        runbooks: catalogue
            .0
            .runbooks
            .iter()
            .map(|r| (r.id.clone(), r.title.clone()))
            .collect(),
    })
}

fn render(
    state: &AppState,
    row: &StoredIncident,
    ranked: Option<&Ranked>,
    case: Option<&Case>,
    facts: &Facts,
    all: bool,
) -> Markup {
    let now = state.clock.now_millis();
    let current = state.topology.current();
    let topology = &current.topology;
    let services = row.service_names();
    let priority = state.risks.priority(
        &services,
        topology,
        row.first_activity,
        row.resolved_at.unwrap_or(now),
    );
    let hypotheses: &[Hypothesis] = ranked.map_or(&[], |r| &r.diagnosis.hypotheses);
    let teams: Vec<&str> = {
        let mut teams: Vec<&str> = services
            .iter()
            .filter_map(|s| topology.service(s).and_then(|s| s.team.as_deref()))
            .collect();
        teams.sort_unstable();
        teams.dedup();
        teams
    };
    html! {
        header.incident data-incident=(row.id) data-revision=[ranked.map(|r| r.revision)] {
            h1 { "Incident #" (row.id) " " (shell::badge(&row.status)) " "
                (shell::priority(&priority)) }
            @if let Some(window) = &priority.window {
                p.window role="note" {
                    @if priority.level < priority.base { "Raised from P" (priority.base) " to P" (priority.level) ": " }
                    @else { "Already P" (priority.level) "; " }
                    "the " (window.name) " (" (window.local_start) ", " (shell::time(window.start))
                    " to " (shell::time(window.end)) ") concerns its services." }
            }
            dl.facts {
                dt { "Started" } dd { (shell::time(row.first_activity)) " (" (shell::when(row.first_activity, now)) ")" }
                dt { "Last activity" } dd { (shell::time(row.last_activity)) }
                @if let Some(at) = row.resolved_at { dt { "Resolved" } dd { (shell::time(at)) } }
                dt { "Scope" } dd { (services.len()) " services · " (row.alert_count) " alerts (" (row.firing_count) " firing)" }
                @if !teams.is_empty() { dt { "Teams" } dd { (teams.join(", ")) } }
                @if let Some(r) = ranked {
                    dt { "Ranked by" } dd { (r.diagnosis.model) " · revision " (r.revision) " · " (r.ranked_at.format("%H:%M:%SZ")) }
                }
            }
        }
        section aria-labelledby="map-title" {
            h2 #map-title { "Dependency map" }
            (graph::map(topology, &services, hypotheses))
        }
        section aria-labelledby="hypotheses-title" {
            h2 #hypotheses-title { "Hypotheses"
                @if let Some(window) = &priority.window { " " span.window-tag { "during the " (window.name) } } }
            @match ranked {
                None => p.muted { "Not ranked yet." },
                Some(r) => {
                    @if r.diagnosis.unknown {
                        p.warning role="note" { "The top confidence is below " (format!("{:.0} %", r.diagnosis.threshold * 100.0))
                            ": the cause may be something the evidence does not cover." }
                    }
                    (hypothesis_list(row.id, r, case, &facts.decisions, all))
                }
            }
        }
        (incident_parts::rest(row, hypotheses, facts, now))
    }
}

fn hypothesis_list(
    incident: i64,
    ranked: &Ranked,
    case: Option<&Case>,
    decisions: &[StoredDecision],
    all: bool,
) -> Markup {
    let hypotheses = &ranked.diagnosis.hypotheses;
    let shown = if all {
        hypotheses.len()
    } else {
        HYPOTHESES_SHOWN.min(hypotheses.len())
    };
    let decided: HashMap<&str, Decision> = decisions
        .iter()
        .map(|d| (d.record.action.as_str(), d.record.decision))
        .collect();
    html! {
        ol.hypotheses {
            @for (i, h) in hypotheses.iter().take(shown).enumerate() {
                li class={ "hypothesis" @if i == 0 { " top" } } data-service=(h.service) {
                    div.head {
                        span.rank { "#" (i + 1) }
                        strong.service { (h.service) }
                        (shell::confidence(h.confidence, "confidence"))
                        (shell::badge(role_name(h.role)))
                        @if let Some(f) = h.fault_type {
                            span.fault { (f.as_str())
                                @if let Some(c) = h.fault_type_confidence { span.muted { " " (format!("{:.0} %", c * 100.0)) } } }
                        }
                    }
                    @if !h.evidence.is_empty() {
                        ul.evidence { @for sentence in h.evidence.iter().take(if i < CHARTED { 5 } else { 3 }) { li { (sentence) } } }
                    }
                    @if !h.paths.is_empty() {
                        p.paths { "Path: "
                            @for (k, path) in h.paths.iter().take(2).enumerate() {
                                @if k > 0 { "; " }
                                span.path { (path.join(" → ")) }
                            }
                        }
                    }
                    @if let (Some(case), true) = (case, i < CHARTED) {
                        @let moved = chart::moved_series(case, &h.service, CHARTS_EACH);
                        @if !moved.is_empty() {
                            div.charts { @for (series, z) in moved { (chart::chart(case, series, z)) } }
                        }
                    }
                    div.verdict {
                        (shell::post_button("Confirm cause", &format!("/api/v1/incidents/{incident}/feedback"),
                            &serde_json::json!({"service": h.service, "verdict": "confirm"})))
                        (shell::post_button("Not the cause", &format!("/api/v1/incidents/{incident}/feedback"),
                            &serde_json::json!({"service": h.service, "verdict": "reject"})))
                    }
                    @if let Some(actions) = ranked.actions.get(i).filter(|a| !a.is_empty()) {
                        details.actions open[i < CHARTED] {
                            summary { "Suggested actions for " (h.service) " · " (actions.len()) }
                            ul {
                                @for s in actions {
                                    li.action data-action=(s.action) {
                                        strong { (s.title) } " "
                                        span class={ "risk " (s.risk.as_str()) } { (s.risk.as_str()) " risk" } " "
                                        (shell::confidence(Some(s.confidence), "advisability"))
                                        @if s.automated { " " span.badge.automated { "automated" } }
                                        p.reason { (s.reason) }
                                        @match decided.get(s.action.as_str()) {
                                            Some(d) => (shell::badge(d.as_str())),
                                            None => {
                                                (shell::post_button("Approve", &format!("/api/v1/incidents/{incident}/actions/{}/approve", s.action),
                                                    &serde_json::json!({"service": h.service})))
                                                (shell::post_button("Reject", &format!("/api/v1/incidents/{incident}/actions/{}/reject", s.action),
                                                    &serde_json::json!({"service": h.service})))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if shown < hypotheses.len() {
            p { a href={ "/incidents/" (incident) "?all=1" } { "Show all " (hypotheses.len()) " hypotheses" } }
        }
        @if ranked.candidates > hypotheses.len() {
            p.muted { "The " (hypotheses.len()) " most likely of " (ranked.candidates) " candidates ranked (ranking.hypotheses_listed)." }
        }
    }
}

pub(super) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Origin => "origin",
        Role::Symptom => "symptom",
        Role::Silent => "silent",
    }
}
