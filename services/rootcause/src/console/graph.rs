//! The dependency map of an incident: its alerting services, its most likely causes and the
//! services on their propagation paths, laid out in layers (callers above callees, see
//! [`rootcause_topology::layout`]) and drawn as inline SVG. The top hypothesis and its path are
//! highlighted; services without alerts are drawn as silent.

use std::collections::{BTreeSet, HashMap};

use maud::{Markup, html};
use rootcause_models::diagnosis::Hypothesis;
use rootcause_topology::Topology;
use rootcause_topology::layout::{self, Point};

/// Most services drawn: beyond it the map keeps the top paths, the hypotheses and the first
/// alerting services, and says how many it left out.
pub(super) const MAX_NODES: usize = 80;
/// Hypotheses whose services are drawn.
const HYPOTHESES_DRAWN: usize = 5;
/// Node box size, in SVG units.
const BOX_W: f64 = 144.0;
const BOX_H: f64 = 34.0;
/// Characters of a service name shown in its box (the full name is its tooltip).
const NAME_CHARS: usize = 18;

/// The map of an incident whose alerting services are `alerting` and whose hypotheses are
/// `hypotheses` (most likely first).
pub(super) fn map(topology: &Topology, alerting: &[String], hypotheses: &[Hypothesis]) -> Markup {
    let top_paths: &[Vec<String>] = hypotheses.first().map_or(&[], |h| &h.paths);
    // A path runs from the cause to the symptom, so each step is a call from the later
    // service to the earlier one: (caller, callee).
    let path_calls: BTreeSet<(&str, &str)> = top_paths
        .iter()
        .flat_map(|path| path.windows(2))
        .map(|pair| (pair[1].as_str(), pair[0].as_str()))
        .collect();
    // Most important first, so the cap drops the least important.
    let mut names: Vec<&str> = Vec::new();
    let wanted = top_paths
        .iter()
        .flatten()
        .map(String::as_str)
        .chain(
            hypotheses
                .iter()
                .take(HYPOTHESES_DRAWN)
                .map(|h| h.service.as_str()),
        )
        .chain(alerting.iter().map(String::as_str));
    for name in wanted {
        if !names.contains(&name) && topology.service(name).is_some() {
            names.push(name);
        }
    }
    let left_out = names.len().saturating_sub(MAX_NODES);
    names.truncate(MAX_NODES);
    if names.is_empty() {
        return html! { p.muted { "None of the incident's services is in the topology." } };
    }
    let top = hypotheses.first().map(|h| h.service.as_str());
    let on_path: BTreeSet<&str> = top_paths.iter().flatten().map(String::as_str).collect();
    let ranks: HashMap<&str, usize> = hypotheses
        .iter()
        .take(HYPOTHESES_DRAWN)
        .enumerate()
        .map(|(i, h)| (h.service.as_str(), i + 1))
        .collect();
    let nodes: Vec<Node<'_>> = names
        .iter()
        .map(|&name| {
            let alerts = alerting.iter().any(|s| s == name);
            let rank = ranks.get(name).copied();
            let mut tooltip = format!(
                "{name} ({})",
                if alerts {
                    "alerting"
                } else {
                    "silent: no alert"
                }
            );
            if let Some(r) = rank {
                tooltip.push_str(&format!(", hypothesis {r}"));
            }
            Node {
                name,
                classes: node_classes(alerts, top == Some(name), on_path.contains(name)),
                tooltip,
                badge: rank.map(|r| format!("#{r}")),
            }
        })
        .collect();
    let caption = html! {
        span.key.top { "top hypothesis" } " "
        span.key.path { "its propagation path" } " "
        span.key.alerting { "alerting" } " "
        span.key.silent { "silent (no alert)" }
        @if left_out > 0 { " · " (left_out) " more services not drawn" }
    };
    draw(topology, &nodes, &path_calls, caption)
}

/// A service to draw.
pub(super) struct Node<'a> {
    /// Its name.
    pub(super) name: &'a str,
    /// CSS classes of its box (`node` and what it is).
    pub(super) classes: String,
    /// What hovering shows.
    pub(super) tooltip: String,
    /// A short mark in its corner (`#1`).
    pub(super) badge: Option<String>,
}

/// Draws `nodes` and the calls between them (those in `highlighted` as `on-path`), callers
/// above callees; each box links to the service on the topology page.
pub(super) fn draw(
    topology: &Topology,
    nodes: &[Node<'_>],
    highlighted: &BTreeSet<(&str, &str)>,
    caption: Markup,
) -> Markup {
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.name, i)).collect();
    let calls: Vec<(usize, usize)> = topology
        .dependencies()
        .filter_map(|d| {
            Some((
                *index.get(d.caller.as_str())?,
                *index.get(d.callee.as_str())?,
            ))
        })
        .collect();
    let drawing = layout::layered(nodes.len(), &calls);
    let (width, height) = (drawing.width.max(BOX_W + 16.0), drawing.height);
    html! {
        figure.graph {
            div.scroll {
                svg width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) } role="img"
                    aria-label={ "Dependency map: " (nodes.len()) " services, callers above the services they call" } {
                    defs {
                        marker #arrow viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse"
                            markerWidth="9" markerHeight="9" orient="auto-start-reverse" {
                            path d="M 0 0 L 10 5 L 0 10 z" {}
                        }
                    }
                    @for (&(a, b), line) in calls.iter().zip(&drawing.edges) {
                        @let on = highlighted.contains(&(nodes[a].name, nodes[b].name));
                        polyline class={ "call" @if on { " on-path" } }
                            points=(edge_points(line)) marker-end="url(#arrow)" {
                            title { (nodes[a].name) " calls " (nodes[b].name) }
                        }
                    }
                    @for (node, p) in nodes.iter().zip(&drawing.nodes) {
                        a href={ "/topology?service=" (node.name) } {
                            g class=(node.classes) data-service=(node.name) {
                                title { (node.tooltip) }
                                rect x=(p.x - BOX_W / 2.0) y=(p.y - BOX_H / 2.0) width=(BOX_W)
                                    height=(BOX_H) rx="6" {}
                                text x=(p.x) y=(p.y + 4.0) text-anchor="middle" { (short(node.name)) }
                                @if let Some(badge) = &node.badge {
                                    text.rank x=(p.x + BOX_W / 2.0 - 4.0) y=(p.y - BOX_H / 2.0 + 11.0)
                                        text-anchor="end" { (badge) }
                                }
                            }
                        }
                    }
                }
            }
            figcaption { (caption) }
        }
    }
}

fn node_classes(alerting: bool, top: bool, on_path: bool) -> String {
    let mut classes = vec!["node", if alerting { "alerting" } else { "silent" }];
    if top {
        classes.push("top");
    }
    if on_path {
        classes.push("on-path");
    }
    classes.join(" ")
}

/// An edge from the bottom of its caller's box to the top of its callee's (or the reverse for
/// an edge drawn upwards), through its bends.
fn edge_points(line: &[Point]) -> String {
    let n = line.len();
    line.iter()
        .enumerate()
        .map(|(i, p)| {
            let down = n >= 2 && line[n - 1].y >= line[0].y;
            let half = BOX_H / 2.0;
            let y = match (i, down) {
                (0, true) => p.y + half,
                (0, false) => p.y - half,
                (i, true) if i == n - 1 => p.y - half,
                (i, false) if i == n - 1 => p.y + half,
                _ => p.y,
            };
            format!("{:.1},{:.1}", p.x, y)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn short(name: &str) -> String {
    if name.chars().count() <= NAME_CHARS {
        name.to_owned()
    } else {
        let head: String = name.chars().take(NAME_CHARS - 1).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use rootcause_models::diagnosis::{FaultType, Role};
    use rootcause_topology::bundled;

    use super::*;

    fn hypothesis(service: &str, paths: &[&[&str]]) -> Hypothesis {
        Hypothesis {
            service: service.to_owned(),
            score: 1.0,
            confidence: Some(0.8),
            role: Role::Origin,
            fault_type: Some(FaultType::Cpu),
            fault_type_confidence: Some(0.9),
            evidence: Vec::new(),
            paths: paths
                .iter()
                .map(|p| p.iter().map(|s| (*s).to_owned()).collect())
                .collect(),
        }
    }

    #[test]
    fn the_top_hypothesis_and_its_path_are_highlighted_and_silent_services_marked() {
        let topology = bundled::find("online-boutique").unwrap().topology();
        let alerting = vec!["frontend".to_owned(), "cartservice".to_owned()];
        let hypotheses = [hypothesis(
            "redis-cart",
            &[&["redis-cart", "cartservice", "frontend"]],
        )];
        let svg = map(&topology, &alerting, &hypotheses).into_string();
        assert!(
            svg.contains("class=\"node silent top on-path\" data-service=\"redis-cart\""),
            "{svg}"
        );
        assert!(svg.contains("class=\"node alerting on-path\" data-service=\"cartservice\""));
        assert_eq!(svg.matches("class=\"call on-path\"").count(), 2, "{svg}");
        assert!(svg.contains("cartservice calls redis-cart"));
    }
}
