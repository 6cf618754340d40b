//! The topology page (`/topology`): search a service to see its callers, callees, blast radius
//! and whether it is a single point of failure, its risk score with its parts, with a map of its
//! neighbourhood; without a search, the estate's structural risks.

use std::collections::BTreeSet;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use rootcause_topology::risks::StructuralRisk;
use rootcause_topology::{Reach, SinglePointOfFailure, Topology};
use serde::Deserialize;

use super::graph::{self, MAX_NODES, Node};
use super::html;
use super::shell::{self, Section};
use crate::risk::overview::serde_name;
use crate::risk::score::{ServiceRisk, service_scores};
use crate::state::AppState;

/// Callers and callees listed, each.
const LISTED: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub(super) struct Search {
    #[serde(default)]
    service: Option<String>,
}

pub(super) async fn page(State(state): State<AppState>, Query(search): Query<Search>) -> Response {
    let started = Instant::now();
    let current = state.topology.current();
    let topology = &current.topology;
    // Single points of failure and risks are computed once per version, on first use: off the
    // async workers, since that takes a while on a large estate.
    let of = current.clone();
    let spofs =
        match tokio::task::spawn_blocking(move || of.single_points_of_failure().to_vec()).await {
            Ok(spofs) => spofs,
            Err(error) => return super::failure(error, started),
        };
    let wanted = search
        .service
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let found = wanted.and_then(|w| topology.resolve(w));
    let (status, body) = match (wanted, found) {
        (Some(w), None) => (
            StatusCode::NOT_FOUND,
            html! { p.warning role="alert" { "No service or alias is called " q { (w) } "." } },
        ),
        (Some(_), Some(service)) => {
            let (of, history, name) =
                (current.clone(), state.risks.history(), service.name.clone());
            let risk = tokio::task::spawn_blocking(move || {
                service_scores(of.structural_risks(), &history.analysis)
                    .into_iter()
                    .find(|r| r.service == name)
            })
            .await;
            match risk {
                Ok(risk) => (
                    StatusCode::OK,
                    service_view(topology, &service.name, &spofs, risk.as_ref()),
                ),
                Err(error) => return super::failure(error, started),
            }
        }
        (None, _) => {
            let of = current.clone();
            match tokio::task::spawn_blocking(move || of.structural_risks().to_vec()).await {
                Ok(risks) => (StatusCode::OK, overview(&risks)),
                Err(error) => return super::failure(error, started),
            }
        }
    };
    let main = html! {
        h1 { "Topology" }
        p.muted { "Version " (current.version.id) " · " (topology.service_count()) " services · "
            (topology.dependency_count()) " calls" }
        form.filters method="get" action="/topology" role="search" aria-label="Find a service" {
            label { "Service "
                input name="service" type="search" list="service-names" value=[wanted] autocomplete="off"
                    placeholder="name or alias";
            }
            datalist #service-names { @for s in topology.services() { option value=(s.name) {} } }
            button type="submit" { "Show" }
        }
        (body)
    };
    html(
        status,
        shell::page("Topology", Section::Topology, None, main),
        started,
    )
}

fn service_view(
    topology: &Topology,
    name: &str,
    spofs: &[SinglePointOfFailure],
    risk: Option<&ServiceRisk>,
) -> Markup {
    let service = topology.service(name).expect("resolved above");
    let callers = topology.callers(name, usize::MAX).unwrap_or_default();
    let callees = topology.callees(name, usize::MAX).unwrap_or_default();
    let blast = topology.blast_radius(name).unwrap_or_default();
    let spof = spofs.iter().find(|s| s.service == name);
    // The map: the service, its direct callers and callees, then two hops out, up to the cap.
    let mut names: Vec<&str> = vec![name];
    for reach in topology.neighbourhood(name, 2).unwrap_or_default() {
        if names.len() < MAX_NODES && !names.contains(&reach.service) {
            names.push(reach.service);
        }
    }
    let nodes: Vec<Node<'_>> = names
        .iter()
        .map(|&n| Node {
            name: n,
            classes: if n == name {
                "node top".to_owned()
            } else {
                "node".to_owned()
            },
            tooltip: n.to_owned(),
            badge: None,
        })
        .collect();
    let direct: BTreeSet<(&str, &str)> = topology
        .dependencies()
        .filter(|d| d.caller == name || d.callee == name)
        .map(|d| (d.caller.as_str(), d.callee.as_str()))
        .collect();
    html! {
        section aria-labelledby="service-title" {
            h2 #service-title { (service.name) }
            dl.facts {
                dt { "Kind" } dd { (format!("{:?}", service.kind).to_lowercase()) }
                dt { "Team" } dd { (service.team.as_deref().unwrap_or("—")) }
                dt { "Criticality" } dd { (service.criticality.map_or("—", |c| c.as_str())) }
                @if !service.aliases.is_empty() { dt { "Aliases" } dd { (service.aliases.join(", ")) } }
                dt { "Blast radius" } dd { (blast.len()) " services can be reached by its failure" }
                dt { "Single point of failure" } dd {
                    @match spof {
                        Some(s) => {
                            strong { "yes" } ": "
                            @if s.articulation_point { "removing it splits the estate; " }
                            @if !s.entry_points.is_empty() { "entry points " (s.entry_points.join(", ")) " reach up to " (s.cut_off) " services only through it" }
                        }
                        None => "no",
                    }
                }
                dt { "Risk score" } dd {
                    @match risk {
                        Some(r) => {
                            (format!("{:.2}", r.score)) " " (shell::badge(&serde_name(&r.severity)))
                            span.muted { (format!(" structure {:.2} · fault trend {:.2} · recurrence {:.2} · change failure {:.2} · failing actions {:.2}",
                                r.parts.structural, r.parts.fault_trend, r.parts.recurrence, r.parts.change_failure, r.parts.failing_actions)) }
                            @if !r.reasons.is_empty() { br; (r.reasons.join("; ")) }
                        }
                        None => "none found (",
                    }
                    @if risk.is_none() { a href="/risks" { "risks" } ")" }
                }
            }
            (graph::draw(topology, &nodes, &direct, html! { span.key.top { "this service" } " · its calls highlighted" }))
            div.columns {
                (reach_list("Callers (who it can hurt)", &callers))
                (reach_list("Callees (what can hurt it)", &callees))
            }
        }
    }
}

fn reach_list(title: &str, reach: &[Reach<'_>]) -> Markup {
    html! {
        section {
            h3 { (title) " · " (reach.len()) }
            @if reach.is_empty() { p.muted { "None." } }
            ul.reach {
                @for r in reach.iter().take(LISTED) {
                    li { a href={ "/topology?service=" (r.service) } { (r.service) } span.muted { " " (r.hops) " hop" @if r.hops != 1 { "s" } } }
                }
            }
            @if reach.len() > LISTED { p.muted { (reach.len() - LISTED) " more." } }
        }
    }
}

fn overview(risks: &[StructuralRisk]) -> Markup {
    html! {
        section aria-labelledby="risks-title" {
            h2 #risks-title { "Structural risks · " (risks.len()) }
            p.muted { "Read from the shape of the estate (also " code { "GET /api/v1/risks" } " and "
                code { "rootcause risks" } "): single points of failure, single replicas, the largest blast radii, dependency cycles, fan-in hot spots." }
            @if risks.is_empty() { p.muted { "None found." } }
            @else {
                table.risks {
                    thead { tr { th scope="col" { "Severity" } th scope="col" { "Kind" } th scope="col" { "Services" } th scope="col" { "Why" } } }
                    tbody { @for r in risks { tr {
                        td { (shell::badge(&serde_name(&r.severity))) " " span.figure { (format!("{:.2}", r.score)) } }
                        td { (serde_name(&r.kind).replace('_', " ")) }
                        td { @for (i, s) in r.services.iter().take(5).enumerate() {
                            @if i > 0 { ", " }
                            a href={ "/topology?service=" (s) } { (s) }
                        } @if r.services.len() > 5 { " …" } }
                        td { (r.why) }
                    } } }
                }
            }
        }
    }
}
