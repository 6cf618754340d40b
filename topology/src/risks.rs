//! Structural risks: what in the shape of the estate makes one fault hurt many, read from the
//! topology alone (no history, no clock). Each risk has a kind, a severity, the services it
//! concerns and one sentence of why.
//!
//! - **Single point of failure**: an entry point reaches some services only through it, or
//!   removing it splits the estate ([`Topology::single_points_of_failure`]). Severity grows with
//!   the share of the estate it cuts off and with the criticality it cuts off.
//! - **Single replica**: a critical or high-criticality service, or any datastore, declared with
//!   one replica (label `replicas: "1"`) and no fallback (label `fallback`).
//! - **Blast radius**: the (at most five) services whose failure reaches the most criticality
//!   (each transitive caller weighed by its criticality: critical 4, high 3, medium or
//!   undeclared 2, low 1), when that is at least a quarter of the estate's.
//! - **Dependency cycle**: services that call each other in a loop (a strongly connected
//!   component of two or more), where a slow answer feeds back as retries.
//! - **Fan-in hot spot**: a service called directly by many more services than is usual here
//!   (at least [`FAN_IN_FLOOR`] callers and two standard deviations above the mean).

use std::collections::BTreeMap;

use petgraph::algo::tarjan_scc;
use petgraph::graph::DiGraph;
use serde::Serialize;

use crate::{Criticality, ServiceKind, SinglePointOfFailure, Topology};

/// Fewest direct callers a fan-in hot spot has.
pub const FAN_IN_FLOOR: usize = 5;
/// Share of the estate's criticality a blast radius must reach to be listed.
const BLAST_SHARE: f64 = 0.25;
/// Most blast-radius risks listed (the largest).
const BLAST_LISTED: usize = 5;

/// What kind of structural risk.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskKind {
    /// See the module documentation.
    SinglePointOfFailure,
    /// See the module documentation.
    SingleReplica,
    /// See the module documentation.
    BlastRadius,
    /// See the module documentation.
    DependencyCycle,
    /// See the module documentation.
    FanInHotSpot,
}

/// How bad a risk is, from its score.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Score below 0.25.
    Low,
    /// 0.25 to 0.5.
    Medium,
    /// 0.5 to 0.75.
    High,
    /// 0.75 and above.
    Critical,
}

impl Severity {
    /// The severity of a score in `[0, 1]`.
    pub fn of(score: f64) -> Severity {
        match score {
            s if s >= 0.75 => Severity::Critical,
            s if s >= 0.5 => Severity::High,
            s if s >= 0.25 => Severity::Medium,
            _ => Severity::Low,
        }
    }
}

/// One structural risk.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StructuralRisk {
    /// What kind.
    pub kind: RiskKind,
    /// 0 to 1; risks are listed highest first.
    pub score: f64,
    /// From the score.
    pub severity: Severity,
    /// The service at risk first, then those it affects or shares the risk with.
    pub services: Vec<String>,
    /// Why, in one sentence.
    pub why: String,
}

impl StructuralRisk {
    fn new(kind: RiskKind, score: f64, services: Vec<String>, why: String) -> Self {
        let score = score.clamp(0.0, 1.0);
        StructuralRisk {
            kind,
            score,
            severity: Severity::of(score),
            services,
            why,
        }
    }
}

/// The weight of a service's criticality in blast radii.
pub fn criticality_weight(criticality: Option<Criticality>) -> f64 {
    match criticality {
        Some(Criticality::Critical) => 4.0,
        Some(Criticality::High) => 3.0,
        Some(Criticality::Medium) | None => 2.0,
        Some(Criticality::Low) => 1.0,
    }
}

impl Topology {
    /// Every structural risk of the estate, highest score first (ties by kind, then service),
    /// given its single points of failure ([`Topology::single_points_of_failure`], which callers
    /// usually hold already).
    pub fn structural_risks(&self, spofs: &[SinglePointOfFailure]) -> Vec<StructuralRisk> {
        let mut risks = Vec::new();
        let weight_of =
            |name: &str| criticality_weight(self.service(name).and_then(|s| s.criticality));
        let total: f64 = self
            .services()
            .map(|s| criticality_weight(s.criticality))
            .sum();
        let count = self.service_count().max(1) as f64;

        for spof in spofs {
            let cut: f64 = spof.examples.iter().map(|s| weight_of(s)).sum::<f64>()
                * (spof.cut_off as f64 / spof.examples.len().max(1) as f64);
            let share = (spof.cut_off as f64 / count).min(1.0);
            let score = 0.5 + 0.25 * share + 0.25 * (cut / total.max(1.0)).min(1.0);
            let mut why = format!("{} is a single point of failure: ", spof.service);
            if !spof.entry_points.is_empty() {
                why.push_str(&format!(
                    "{} reach{} up to {} service{} only through it",
                    spof.entry_points.join(", "),
                    if spof.entry_points.len() == 1 {
                        "es"
                    } else {
                        ""
                    },
                    spof.cut_off,
                    if spof.cut_off == 1 { "" } else { "s" },
                ));
            }
            if spof.articulation_point {
                if !spof.entry_points.is_empty() {
                    why.push_str(", and ");
                }
                why.push_str("removing it splits the estate in two or more parts");
            }
            let mut services = vec![spof.service.clone()];
            services.extend(spof.examples.iter().cloned());
            risks.push(StructuralRisk::new(
                RiskKind::SinglePointOfFailure,
                score,
                services,
                why,
            ));
        }

        for service in self.services() {
            let datastore = matches!(service.kind, ServiceKind::Database | ServiceKind::Cache);
            let important = matches!(
                service.criticality,
                Some(Criticality::Critical | Criticality::High)
            );
            let one = service.labels.get("replicas").map(String::as_str) == Some("1");
            if one && (datastore || important) && !service.labels.contains_key("fallback") {
                let what = if datastore { "datastore" } else { "service" };
                let callers = self
                    .callers(&service.name, usize::MAX)
                    .map_or(0, |c| c.len());
                let score =
                    0.5 + 0.25 * weight_of(&service.name) / 4.0 + 0.25 * (callers as f64 / count);
                risks.push(StructuralRisk::new(
                    RiskKind::SingleReplica,
                    score,
                    vec![service.name.clone()],
                    format!(
                        "{} is a {}{what} with one replica and no declared fallback: one crash \
                         takes it out for {callers} services that depend on it",
                        service.name,
                        service
                            .criticality
                            .map_or(String::new(), |c| format!("{} ", c.as_str())),
                    ),
                ));
            }
        }

        let mut blasts: Vec<(f64, &str, usize)> = self
            .services()
            .map(|s| {
                let reach = self.blast_radius(&s.name).unwrap_or_default();
                let weighed: f64 =
                    weight_of(&s.name) + reach.iter().map(|r| weight_of(r.service)).sum::<f64>();
                (weighed / total.max(1.0), s.name.as_str(), reach.len())
            })
            .filter(|(share, _, reached)| *share >= BLAST_SHARE && *reached > 0)
            .collect();
        blasts.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        for (share, name, reached) in blasts.into_iter().take(BLAST_LISTED) {
            risks.push(StructuralRisk::new(
                RiskKind::BlastRadius,
                0.2 + 0.6 * share,
                vec![name.to_owned()],
                format!(
                    "a failure of {name} can reach {reached} services, {:.0} % of the estate's \
                     criticality",
                    share * 100.0
                ),
            ));
        }

        let mut names: Vec<&str> = self.services().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        let mut graph: DiGraph<(), ()> = DiGraph::new();
        let nodes: Vec<_> = names.iter().map(|_| graph.add_node(())).collect();
        let position: BTreeMap<&str, usize> =
            names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        for d in self.dependencies() {
            graph.add_edge(
                nodes[position[d.caller.as_str()]],
                nodes[position[d.callee.as_str()]],
                (),
            );
        }
        for component in tarjan_scc(&graph) {
            if component.len() < 2 {
                continue;
            }
            let mut members: Vec<String> = component
                .iter()
                .map(|n| names[n.index()].to_owned())
                .collect();
            members.sort();
            let weight: f64 = members.iter().map(|m| weight_of(m)).sum();
            risks.push(StructuralRisk::new(
                RiskKind::DependencyCycle,
                0.35 + 0.3 * (weight / total.max(1.0)).min(1.0),
                members.clone(),
                format!(
                    "{} call each other in a cycle: a slow answer anywhere in it comes back as \
                     load (retries, held connections) on the service that caused it",
                    members.join(", ")
                ),
            ));
        }

        let fan_in: Vec<(&str, usize)> = self
            .services()
            .map(|s| {
                (
                    s.name.as_str(),
                    self.callers(&s.name, 1).map_or(0, |c| c.len()),
                )
            })
            .collect();
        let mean = fan_in.iter().map(|(_, n)| *n as f64).sum::<f64>() / fan_in.len().max(1) as f64;
        let sd = (fan_in
            .iter()
            .map(|(_, n)| (*n as f64 - mean).powi(2))
            .sum::<f64>()
            / fan_in.len().max(1) as f64)
            .sqrt();
        for (name, n) in fan_in {
            if n >= FAN_IN_FLOOR && n as f64 >= mean + 2.0 * sd {
                risks.push(StructuralRisk::new(
                    RiskKind::FanInHotSpot,
                    0.25 + 0.5 * (n as f64 / count).min(1.0),
                    vec![name.to_owned()],
                    format!(
                        "{name} is called directly by {n} services (the estate's mean is {mean:.1}): \
                         its slowness or saturation is felt by all of them at once"
                    ),
                ));
            }
        }

        risks.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.kind.cmp(&b.kind))
                .then(a.services.cmp(&b.services))
        });
        risks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, Topology};

    fn topology(yaml: &str) -> Topology {
        Topology::parse(yaml, Format::Yaml).unwrap()
    }

    fn risks_of(topology: &Topology) -> Vec<StructuralRisk> {
        topology.structural_risks(&topology.single_points_of_failure())
    }

    fn of_kind(risks: &[StructuralRisk], kind: RiskKind) -> Vec<Vec<&str>> {
        risks
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.services.iter().map(String::as_str).collect())
            .collect()
    }

    /// A gateway in front of a payment service that alone reaches the bank adapter and the
    /// ledger database (one replica); orders and stock call each other; a cache six services
    /// call.
    const ESTATE: &str = r#"
services:
  - {name: gateway, kind: gateway, criticality: critical}
  - {name: payments, kind: service, criticality: critical}
  - {name: bank-adapter, kind: service, criticality: high}
  - {name: ledger-db, kind: database, criticality: critical, labels: {replicas: "1"}}
  - {name: orders, kind: service}
  - {name: stock, kind: service}
  - {name: catalog, kind: service, criticality: low}
  - {name: search, kind: service, criticality: low}
  - {name: reviews, kind: service, criticality: low}
  - {name: users, kind: service}
  - {name: cache, kind: cache, labels: {replicas: "1", fallback: "users"}}
dependencies:
  - {caller: gateway, callee: payments}
  - {caller: gateway, callee: orders}
  - {caller: gateway, callee: catalog}
  - {caller: gateway, callee: search}
  - {caller: gateway, callee: reviews}
  - {caller: gateway, callee: users}
  - {caller: payments, callee: bank-adapter}
  - {caller: payments, callee: ledger-db}
  - {caller: orders, callee: stock}
  - {caller: stock, callee: orders}
  - {caller: orders, callee: cache}
  - {caller: catalog, callee: cache}
  - {caller: search, callee: cache}
  - {caller: reviews, callee: cache}
  - {caller: users, callee: cache}
  - {caller: payments, callee: cache}
"#;

    #[test]
    fn known_spofs_cycles_hot_spots_and_single_replicas_are_found_with_reasons() {
        let risks = risks_of(&topology(ESTATE));
        let spofs = of_kind(&risks, RiskKind::SinglePointOfFailure);
        assert!(
            spofs
                .iter()
                .any(|s| s[0] == "payments" && s.contains(&"ledger-db")),
            "{spofs:?}"
        );
        assert!(
            spofs
                .iter()
                .any(|s| s[0] == "orders" && s.contains(&"stock")),
            "{spofs:?}"
        );
        assert_eq!(spofs.len(), 2, "{spofs:?}");
        assert_eq!(
            of_kind(&risks, RiskKind::DependencyCycle),
            vec![vec!["orders", "stock"]]
        );
        assert_eq!(of_kind(&risks, RiskKind::FanInHotSpot), vec![vec!["cache"]]);
        // The ledger has one replica and no fallback; the cache declares a fallback.
        assert_eq!(
            of_kind(&risks, RiskKind::SingleReplica),
            vec![vec!["ledger-db"]]
        );
        let ledger = risks
            .iter()
            .find(|r| r.kind == RiskKind::SingleReplica)
            .unwrap();
        assert!(
            ledger.why.contains("critical datastore with one replica"),
            "{}",
            ledger.why
        );
        assert!(ledger.severity >= Severity::High, "{ledger:?}");
        // Highest first, every risk with a sentence.
        assert!(risks.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(
            risks
                .iter()
                .all(|r| !r.why.is_empty() && (0.0..=1.0).contains(&r.score))
        );
    }

    #[test]
    fn the_blast_radius_weighs_what_it_reaches_by_criticality() {
        let risks = risks_of(&topology(ESTATE));
        let blasts = of_kind(&risks, RiskKind::BlastRadius);
        // The cache reaches every caller of its callers: the whole estate but the bank side.
        assert!(blasts.iter().any(|b| b[0] == "cache"), "{blasts:?}");
        // A low-criticality leaf-caller reaches only the gateway: under a quarter.
        assert!(!blasts.iter().any(|b| b[0] == "catalog"), "{blasts:?}");
    }

    #[test]
    fn a_chain_without_cycles_or_replicas_declared_has_no_cycle_or_replica_risk() {
        let chain = topology(
            "services:\n  - {name: a, kind: gateway}\n  - {name: b, kind: service}\n  - {name: c, kind: database}\ndependencies:\n  - {caller: a, callee: b}\n  - {caller: b, callee: c}\n",
        );
        let risks = risks_of(&chain);
        assert!(of_kind(&risks, RiskKind::DependencyCycle).is_empty());
        assert!(of_kind(&risks, RiskKind::SingleReplica).is_empty());
        assert!(of_kind(&risks, RiskKind::FanInHotSpot).is_empty());
        assert_eq!(
            of_kind(&risks, RiskKind::SinglePointOfFailure)[0][0],
            "b",
            "{risks:?}"
        );
    }
}
