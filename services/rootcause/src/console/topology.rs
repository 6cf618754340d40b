//! The topology page (`/topology`): search a service to see its callers, callees, blast radius
//! and whether it is a single point of failure, with a map of its neighbourhood; without a
//! search, the estate's single points of failure.

use std::collections::BTreeSet;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use rootcause_topology::{Reach, SinglePointOfFailure, Topology};
use serde::Deserialize;

use super::graph::{self, MAX_NODES, Node};
use super::html;
use super::shell::{self, Section};
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
    let spofs = current.single_points_of_failure();
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
        (Some(_), Some(service)) => (StatusCode::OK, service_view(topology, &service.name, spofs)),
        (None, _) => (StatusCode::OK, overview(spofs)),
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

fn service_view(topology: &Topology, name: &str, spofs: &[SinglePointOfFailure]) -> Markup {
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

fn overview(spofs: &[SinglePointOfFailure]) -> Markup {
    html! {
        section aria-labelledby="spof-title" {
            h2 #spof-title { "Single points of failure · " (spofs.len()) }
            @if spofs.is_empty() { p.muted { "None: every service has an alternative path." } }
            @else {
                table {
                    thead { tr { th scope="col" { "Service" } th scope="col" { "Splits the estate" } th scope="col" { "Entry points depending on it" } th scope="col" { "Services cut off" } } }
                    tbody { @for s in spofs { tr {
                        td { a href={ "/topology?service=" (s.service) } { (s.service) } }
                        td { @if s.articulation_point { "yes" } @else { "no" } }
                        td { (s.entry_points.join(", ")) }
                        td.number { (s.cut_off) }
                    } } }
                }
            }
        }
    }
}
