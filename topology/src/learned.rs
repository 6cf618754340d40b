//! Dependencies learned from observed calls, so an operator can build the graph from distributed
//! traces instead of writing it: every cross-service parent → child span pair is one call from
//! the parent's service to the child's.
//!
//! [`ObservedCalls`] only counts; reading spans (OpenTelemetry OTLP/JSON in [`crate::otlp`], a
//! dataset's CSV) is the caller's job.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::diff::DependencyKey;
use crate::model::{Dependency, DependencySource, Service, ServiceKind, TopologyDocument};

/// One observed call from a caller to a callee.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObservedCall {
    /// When the call started.
    pub at: DateTime<Utc>,
    /// How long the callee took, in milliseconds.
    pub latency_ms: f64,
    /// Whether the call failed.
    pub error: bool,
}

/// Ratio between latency histogram buckets: medians are exact to within 5 %.
const BUCKET_RATIO: f64 = 1.1;

#[derive(Debug, Clone, Default)]
struct EdgeStats {
    calls: u64,
    errors: u64,
    /// Latency histogram: bucket index → calls.
    latency: BTreeMap<i32, u64>,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

fn bucket_of(latency_ms: f64) -> i32 {
    // Everything under 1 µs lands in the lowest bucket.
    (latency_ms.max(1e-3).ln() / BUCKET_RATIO.ln()).floor() as i32
}

fn bucket_value(bucket: i32) -> f64 {
    // The geometric middle of the bucket.
    BUCKET_RATIO.powf(bucket as f64 + 0.5)
}

impl EdgeStats {
    fn median_ms(&self) -> Option<f64> {
        let total: u64 = self.latency.values().sum();
        let mut seen = 0;
        for (&bucket, &count) in &self.latency {
            seen += count;
            if seen * 2 >= total {
                return Some(bucket_value(bucket));
            }
        }
        None
    }
}

/// Calls between services, aggregated per edge.
#[derive(Debug, Clone, Default)]
pub struct ObservedCalls {
    edges: BTreeMap<(String, String), EdgeStats>,
    /// Services seen in spans, calling or not, with the kind to give them if they are new (a
    /// database seen only from its callers' client spans); `None` for an ordinary service.
    services: BTreeMap<String, Option<ServiceKind>>,
}

/// A document with observed calls merged in (see [`ObservedCalls::merge`]), and what the merge
/// added to its base.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The base's services and edges plus the learned ones.
    pub document: TopologyDocument,
    /// Services the base did not have, sorted.
    pub services_added: Vec<String>,
    /// Edges the base did not have, sorted.
    pub dependencies_added: Vec<DependencyKey>,
    /// Distinct edges observed, once aliases are resolved to their services.
    pub dependencies_seen: usize,
}

impl Merged {
    /// Whether the merge added a service or an edge (rather than only refreshing the observed
    /// attributes of edges the base already had).
    pub fn adds_anything(&self) -> bool {
        !self.services_added.is_empty() || !self.dependencies_added.is_empty()
    }
}

impl ObservedCalls {
    /// Nothing observed yet.
    pub fn new() -> Self {
        ObservedCalls::default()
    }

    /// Notes that `service` exists (it emitted a span), even if it calls nobody.
    pub fn record_service(&mut self, service: &str) {
        if !self.services.contains_key(service) {
            self.services.insert(service.to_string(), None);
        }
    }

    /// Notes that `service` exists and is of `kind` (a database or queue known only from its
    /// callers' spans), should the document it is merged into not have it yet; the services of a
    /// base document keep their kind.
    pub fn record_service_kind(&mut self, service: &str, kind: ServiceKind) {
        self.services.insert(service.to_string(), Some(kind));
    }

    /// Records one call. Calls within a service (`caller == callee`) are not dependencies and
    /// are ignored; the service is still noted.
    pub fn record(&mut self, caller: &str, callee: &str, call: ObservedCall) {
        self.record_service(caller);
        self.record_service(callee);
        if caller == callee {
            return;
        }
        let stats = self
            .edges
            .entry((caller.to_string(), callee.to_string()))
            .or_default();
        stats.calls += 1;
        stats.errors += u64::from(call.error);
        if call.latency_ms.is_finite() && call.latency_ms >= 0.0 {
            *stats.latency.entry(bucket_of(call.latency_ms)).or_default() += 1;
        }
        stats.first = Some(stats.first.map_or(call.at, |first| first.min(call.at)));
        stats.last = Some(stats.last.map_or(call.at, |last| last.max(call.at)));
    }

    /// Number of distinct edges seen.
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// Number of calls seen in total.
    pub fn call_count(&self) -> u64 {
        self.edges.values().map(|e| e.calls).sum()
    }

    /// Services seen, sorted.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    /// The learned edges, sorted by caller then callee, with `source: traces`, the call rate
    /// over the edge's own observed period (calls per second; `None` for a single call), the
    /// error rate, the median latency and when the edge was first and last seen.
    pub fn dependencies(&self) -> Vec<Dependency> {
        self.edges
            .iter()
            .map(|((caller, callee), stats)| {
                let seconds = match (stats.first, stats.last) {
                    (Some(first), Some(last)) => (last - first).num_milliseconds() as f64 / 1e3,
                    _ => 0.0,
                };
                Dependency {
                    caller: caller.clone(),
                    callee: callee.clone(),
                    source: DependencySource::Traces,
                    protocol: None,
                    call_rate: (seconds > 0.0).then(|| stats.calls as f64 / seconds),
                    error_rate: Some(stats.errors as f64 / stats.calls as f64),
                    latency_ms: stats.median_ms(),
                    first_seen: stats.first,
                    last_seen: stats.last,
                }
            })
            .collect()
    }

    /// A topology document: `base`'s services and edges (if any), plus every service seen in
    /// the calls (new ones as kind `service` unless [`record_service_kind`] said otherwise), with
    /// learned edges added or, where `base` already has the edge, its observed attributes
    /// refreshed while its protocol is kept. Names that are aliases in `base` stand for their
    /// services.
    ///
    /// [`record_service_kind`]: ObservedCalls::record_service_kind
    pub fn to_document(&self, base: Option<&TopologyDocument>) -> TopologyDocument {
        self.merge(base).document
    }

    /// [`to_document`](ObservedCalls::to_document), with what it added to `base`.
    pub fn merge(&self, base: Option<&TopologyDocument>) -> Merged {
        let mut document = base.cloned().unwrap_or_default();
        let mut canonical: HashMap<String, String> = HashMap::new();
        for service in &document.services {
            for name in std::iter::once(&service.name).chain(&service.aliases) {
                canonical.insert(name.clone(), service.name.clone());
            }
        }
        let mut services_added = Vec::new();
        for (service, kind) in &self.services {
            if !canonical.contains_key(service) {
                let kind = kind.unwrap_or(ServiceKind::Service);
                document.services.push(Service::new(service, kind));
                canonical.insert(service.clone(), service.clone());
                services_added.push(service.clone());
            }
        }
        let learned: Vec<Dependency> = self
            .dependencies()
            .into_iter()
            .map(|mut d| {
                d.caller = canonical[&d.caller].clone();
                d.callee = canonical[&d.callee].clone();
                d
            })
            .filter(|d| d.caller != d.callee)
            .collect();
        // Two names of one service (a name and its alias) give one edge; the first one's
        // observations stand for it.
        let mut seen = HashSet::new();
        let mut dependencies_added = Vec::new();
        let mut position: HashMap<(String, String), usize> = document
            .dependencies
            .iter()
            .enumerate()
            .map(|(i, d)| ((d.caller.clone(), d.callee.clone()), i))
            .collect();
        for edge in learned {
            let key = (edge.caller.clone(), edge.callee.clone());
            if !seen.insert(key.clone()) {
                continue;
            }
            match position.get(&key) {
                Some(&i) => {
                    let existing = &mut document.dependencies[i];
                    let protocol = existing.protocol.take();
                    *existing = Dependency { protocol, ..edge };
                }
                None => {
                    dependencies_added.push(DependencyKey {
                        caller: key.0.clone(),
                        callee: key.1.clone(),
                    });
                    position.insert(key, document.dependencies.len());
                    document.dependencies.push(edge);
                }
            }
        }
        document.services.sort_by(|a, b| a.name.cmp(&b.name));
        document
            .dependencies
            .sort_by(|a, b| (&a.caller, &a.callee).cmp(&(&b.caller, &b.callee)));
        services_added.sort();
        dependencies_added.sort();
        Merged {
            document,
            services_added,
            dependencies_added,
            dependencies_seen: seen.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Topology;

    fn call(second: i64, latency_ms: f64, error: bool) -> ObservedCall {
        ObservedCall {
            at: DateTime::from_timestamp(1_700_000_000 + second, 0).unwrap(),
            latency_ms,
            error,
        }
    }

    #[test]
    fn calls_aggregate_into_edges_with_rate_errors_and_median_latency() {
        let mut calls = ObservedCalls::new();
        for i in 0..10 {
            calls.record("frontend", "cart", call(i, 10.0 + i as f64, i == 0));
        }
        calls.record("cart", "redis", call(3, 1.0, false));
        calls.record("cart", "cart", call(3, 1.0, false));
        calls.record_service("lonely");
        let edges = calls.dependencies();
        assert_eq!(edges.len(), 2);
        let cart = &edges[1];
        assert_eq!(
            (cart.caller.as_str(), cart.callee.as_str()),
            ("frontend", "cart")
        );
        assert_eq!(cart.source, DependencySource::Traces);
        assert!((cart.call_rate.unwrap() - 10.0 / 9.0).abs() < 1e-9);
        assert!((cart.error_rate.unwrap() - 0.1).abs() < 1e-9);
        let median = cart.latency_ms.unwrap();
        assert!((13.5..=15.5).contains(&median), "median {median}");
        assert_eq!(edges[0].call_rate, None, "one call has no rate");
        assert_eq!(
            calls.services().collect::<Vec<_>>(),
            ["cart", "frontend", "lonely", "redis"]
        );
    }

    #[test]
    fn learned_edges_extend_a_base_document_and_keep_its_protocols() {
        let base = TopologyDocument {
            services: vec![
                Service::new("frontend", ServiceKind::Gateway),
                Service::new("cart", ServiceKind::Service),
            ],
            dependencies: vec![Dependency {
                protocol: Some("grpc".into()),
                ..Dependency::new("frontend", "cart")
            }],
        };
        let mut calls = ObservedCalls::new();
        calls.record("frontend", "cart", call(0, 5.0, false));
        calls.record("cart", "redis", call(1, 1.0, false));
        let document = calls.to_document(Some(&base));
        let topology = Topology::from_document(document.clone()).expect("valid document");
        assert_eq!(topology.service_count(), 3);
        assert_eq!(topology.dependency_count(), 2);
        let frontend_cart = &document.dependencies[1];
        assert_eq!(frontend_cart.protocol.as_deref(), Some("grpc"));
        assert_eq!(frontend_cart.source, DependencySource::Traces);
        assert_eq!(document.services[0].kind, ServiceKind::Service, "cart kept");
        assert_eq!(document.services[1].kind, ServiceKind::Gateway);
    }

    #[test]
    fn a_merge_names_what_it_added_and_resolves_aliases() {
        let mut cart = Service::new("cart", ServiceKind::Service);
        cart.aliases = vec!["cartservice".into()];
        let base = TopologyDocument {
            services: vec![Service::new("frontend", ServiceKind::Gateway), cart],
            dependencies: vec![Dependency::new("frontend", "cart")],
        };
        let mut calls = ObservedCalls::new();
        calls.record("frontend", "cartservice", call(0, 5.0, false));
        calls.record("cartservice", "redis", call(1, 1.0, true));
        calls.record_service_kind("redis", ServiceKind::Cache);
        calls.record_service_kind("cart", ServiceKind::Database);
        let merged = calls.merge(Some(&base));
        assert_eq!(merged.services_added, ["redis"]);
        assert_eq!(
            merged.dependencies_added,
            [DependencyKey {
                caller: "cart".into(),
                callee: "redis".into()
            }]
        );
        assert_eq!(merged.dependencies_seen, 2);
        assert!(merged.adds_anything());
        let kinds: Vec<_> = merged
            .document
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("cart", ServiceKind::Service),
                ("frontend", ServiceKind::Gateway),
                ("redis", ServiceKind::Cache)
            ],
            "a kind hint applies to new services only"
        );
        assert_eq!(merged.document.dependencies[0].error_rate, Some(1.0));
        assert_eq!(merged.document, calls.to_document(Some(&base)));

        // The same calls over the merged document add nothing: only attributes are refreshed.
        let again = calls.merge(Some(&merged.document));
        assert!(!again.adds_anything());
        assert_eq!(again.document, merged.document);
    }
}
