//! The incident list (`/`): newest first, filtered by status, service and team, each row with
//! its age, services, alert count, priority and top hypothesis; refreshed live.

use std::collections::BTreeSet;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use rootcause_topology::Topology;
use serde::Deserialize;

use super::shell::{self, Section};
use super::{failure, html};
use crate::live_risks::LiveRisks;
use crate::ranking::Found;
use crate::state::AppState;
use crate::store::{IncidentFilter, Page, StoredIncident};

/// Incidents one page lists.
const PAGE_SIZE: usize = 100;
/// Incidents read to find a page of one team's (teams are a property of the topology's
/// services, not a column of the store).
const TEAM_SCAN: i64 = 2_000;

/// The list's filters, as the query string carries them (empty means any).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filters {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    team: Option<String>,
}

impl Filters {
    fn given(value: &Option<String>) -> Option<&str> {
        value.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
}

pub(super) async fn page(
    State(state): State<AppState>,
    Query(filters): Query<Filters>,
) -> Response {
    let started = Instant::now();
    let status = match Filters::given(&filters.status) {
        None => Some("open"),
        Some("any") => None,
        Some(s @ ("open" | "resolved" | "merged")) => Some(s),
        Some(other) => {
            let message = format!("status must be open, resolved, merged or any, not {other:?}");
            return html(
                StatusCode::BAD_REQUEST,
                shell::problem("Bad filter", &message),
                started,
            );
        }
    };
    let team = Filters::given(&filters.team);
    let rows = match state
        .store
        .list_incidents(&IncidentFilter {
            status: status.map(str::to_owned),
            service: Filters::given(&filters.service).map(str::to_owned),
            page: Page {
                since: None,
                until: None,
                before: None,
                limit: if team.is_some() {
                    TEAM_SCAN
                } else {
                    PAGE_SIZE as i64
                },
            },
        })
        .await
    {
        Ok(rows) => rows,
        Err(error) => return failure(error, started),
    };
    let current = state.topology.current();
    let topology = &current.topology;
    let now = state.clock.now_millis();
    let mut shown = Vec::with_capacity(rows.len());
    for row in rows {
        if shown.len() == PAGE_SIZE {
            break;
        }
        let services = row.service_names();
        if let Some(team) = team {
            let on_team = services
                .iter()
                .any(|s| topology.service(s).and_then(|s| s.team.as_deref()) == Some(team));
            if !on_team {
                continue;
            }
        }
        let top = match state.ranking.latest(row.id as u64) {
            Found::Held((_, Some(ranked))) => ranked.diagnosis.hypotheses.first().cloned(),
            _ => None,
        };
        shown.push((row, services, top));
    }
    let teams: BTreeSet<&str> = topology
        .services()
        .filter_map(|s| s.team.as_deref())
        .collect();
    let main = html! {
        h1 { "Incidents" }
        form.filters method="get" action="/" role="search" aria-label="Filter incidents" {
            label { "Status "
                select name="status" {
                    @for option in ["open", "resolved", "merged", "any"] {
                        option value=(option) selected[status.unwrap_or("any") == option] { (option) }
                    }
                }
            }
            label { "Service "
                input name="service" type="search" value=[Filters::given(&filters.service)]
                    list="service-names" placeholder="any" autocomplete="off";
            }
            datalist #service-names {
                @for service in topology.services() { option value=(service.name) {} }
            }
            label { "Team "
                select name="team" {
                    option value="" { "any" }
                    @for t in &teams { option value=(t) selected[team == Some(*t)] { (t) } }
                }
            }
            button type="submit" { "Filter" }
        }
        p.hint { "Keys: " kbd { "j" } " / " kbd { "k" } " move, " kbd { "Enter" } " opens, "
            kbd { "/" } " filters. The list follows new alerts live." }
        @if shown.is_empty() {
            p.empty { "No incidents match." }
        } @else {
            table.incidents data-keyboard-rows {
                caption.visually-hidden { "Incidents, newest first" }
                thead { tr {
                    th scope="col" { "Incident" } th scope="col" { "Status" }
                    th scope="col" { "Priority" } th scope="col" { "Age" }
                    th scope="col" { "Services" } th scope="col" { "Alerts" }
                    th scope="col" { "Top hypothesis" } th scope="col" { "Fault type" }
                } }
                tbody {
                    @for (row, services, top) in &shown {
                        (incident_row(row, services, top.as_ref(), topology, &state.risks, now))
                    }
                }
            }
        }
    };
    html(
        StatusCode::OK,
        shell::page(
            "Incidents",
            Section::Incidents,
            Some("/console/events"),
            main,
        ),
        started,
    )
}

fn incident_row(
    row: &StoredIncident,
    services: &[String],
    top: Option<&rootcause_models::diagnosis::Hypothesis>,
    topology: &Topology,
    risks: &LiveRisks,
    now: i64,
) -> Markup {
    let priority = risks.priority(
        services,
        topology,
        row.first_activity,
        row.resolved_at.unwrap_or(now),
    );
    let href = format!("/incidents/{}", row.id);
    html! {
        tr data-href=(href) {
            td { a href=(href) { "#" (row.id) } }
            td { (shell::badge(&row.status)) }
            td { (shell::priority(&priority)) }
            td { (shell::when(row.first_activity, now)) }
            td.services {
                @for (i, s) in services.iter().take(6).enumerate() {
                    @if i > 0 { ", " }
                    (s)
                }
                @if services.len() > 6 { " and " (services.len() - 6) " more" }
                @if services.is_empty() { span.muted { "unmapped" } }
            }
            td.number { (row.alert_count) span.muted { " (" (row.firing_count) " firing)" } }
            td {
                @if let Some(h) = top {
                    strong.service { (h.service) } " "
                    (shell::confidence(h.confidence, "confidence"))
                } @else { span.muted { "not ranked" } }
            }
            td { @if let Some(f) = top.and_then(|h| h.fault_type) { (f.as_str()) } @else { "—" } }
        }
    }
}
