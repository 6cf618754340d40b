//! Dependencies learned from observed calls, so an operator can build the graph from distributed
//! traces instead of writing it: every cross-service parent → child span pair is one call from
//! the parent's service to the child's.
//!
//! [`ObservedCalls`] only counts; reading spans (OpenTelemetry OTLP/JSON in [`crate::otlp`], a
//! dataset's CSV) is the caller's job.

use std::collections::{BTreeMap, HashMap};

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
    /// Adds `other`'s calls to these: counts and histograms summed, the observed period widened.
    fn absorb(&mut self, other: &EdgeStats) {
        self.calls += other.calls;
        self.errors += other.errors;
        for (&bucket, &count) in &other.latency {
            *self.latency.entry(bucket).or_default() += count;
        }
        self.first = earliest(self.first, other.first);
        self.last = self.last.max(other.last);
    }

    /// The edge `caller` → `callee` these calls make, with `source: traces` and no protocol.
    fn dependency(&self, caller: &str, callee: &str) -> Dependency {
        let seconds = match (self.first, self.last) {
            (Some(first), Some(last)) => (last - first).num_milliseconds() as f64 / 1e3,
            _ => 0.0,
        };
        Dependency {
            caller: caller.to_string(),
            callee: callee.to_string(),
            source: DependencySource::Traces,
            protocol: None,
            call_rate: (seconds > 0.0).then(|| self.calls as f64 / seconds),
            error_rate: Some(self.errors as f64 / self.calls as f64),
            latency_ms: self.median_ms(),
            first_seen: self.first,
            last_seen: self.last,
        }
    }

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
            .map(|((caller, callee), stats)| stats.dependency(caller, callee))
            .collect()
    }

    /// A topology document: `base`'s services and edges (if any), plus every service seen in
    /// the calls (new ones as kind `service` unless [`record_service_kind`] said otherwise) and
    /// the learned edges, merged as [`merge`](ObservedCalls::merge) says. Names that are aliases
    /// in `base` stand for their services.
    ///
    /// [`record_service_kind`]: ObservedCalls::record_service_kind
    pub fn to_document(&self, base: Option<&TopologyDocument>) -> TopologyDocument {
        self.merge(base).document
    }

    /// [`to_document`](ObservedCalls::to_document), with what it added to `base`.
    ///
    /// Names are resolved to `base`'s services first (an alias stands for its service), and the
    /// calls of every name pair that resolves to one edge are summed before anything is
    /// computed: `cart` → `redis` and `cart` → `redis-cart` make one edge whose counts,
    /// latency histogram and observed period are those of both. Calls that resolve to a service
    /// calling itself are dropped.
    ///
    /// An edge `base` lacks is added with `source: traces` and the observed attributes of these
    /// calls. An edge `base` has keeps everything an operator or another source gave it —
    /// `source` (a `static` edge stays `static`), `protocol` — and only its observed attributes
    /// are refreshed:
    ///
    /// - `call_rate`, `error_rate` and `latency_ms` become these calls' figures; a figure they
    ///   cannot give (a call rate from calls all at one instant, a latency with no valid
    ///   duration) keeps its previous value;
    /// - `first_seen` becomes the earlier of the two, `last_seen` the later.
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
        // Every recorded name is a recorded service, so it has a canonical name by now.
        let mut learned: BTreeMap<(&str, &str), EdgeStats> = BTreeMap::new();
        for ((caller, callee), stats) in &self.edges {
            let (caller, callee) = (canonical[caller].as_str(), canonical[callee].as_str());
            if caller != callee {
                learned.entry((caller, callee)).or_default().absorb(stats);
            }
        }
        let mut dependencies_added = Vec::new();
        let position: HashMap<(String, String), usize> = document
            .dependencies
            .iter()
            .enumerate()
            .map(|(i, d)| ((d.caller.clone(), d.callee.clone()), i))
            .collect();
        for (&(caller, callee), stats) in &learned {
            let edge = stats.dependency(caller, callee);
            match position.get(&(caller.to_string(), callee.to_string())) {
                Some(&i) => refresh(&mut document.dependencies[i], edge),
                None => {
                    dependencies_added.push(DependencyKey {
                        caller: caller.to_string(),
                        callee: callee.to_string(),
                    });
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
            dependencies_seen: learned.len(),
        }
    }
}

/// Refreshes the observed attributes of `existing` from `learned` (the same edge, as observed),
/// keeping its source and protocol: see [`ObservedCalls::merge`].
fn refresh(existing: &mut Dependency, learned: Dependency) {
    existing.call_rate = learned.call_rate.or(existing.call_rate);
    existing.error_rate = learned.error_rate.or(existing.error_rate);
    existing.latency_ms = learned.latency_ms.or(existing.latency_ms);
    existing.first_seen = earliest(existing.first_seen, learned.first_seen);
    existing.last_seen = existing.last_seen.max(learned.last_seen);
}

/// The earlier of two instants, either of which may be unknown.
fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
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
        assert_eq!(
            frontend_cart.source,
            DependencySource::Static,
            "declared, not learned"
        );
        assert_eq!(document.dependencies[0].source, DependencySource::Traces);
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

    #[test]
    fn an_existing_edge_keeps_its_source_and_protocol_and_only_its_observations_are_refreshed() {
        let at = |second| call(second, 0.0, false).at;
        let declared = Dependency {
            protocol: Some("grpc".into()),
            call_rate: Some(99.0),
            error_rate: Some(0.5),
            latency_ms: Some(1000.0),
            first_seen: Some(at(-100)),
            last_seen: Some(at(-50)),
            ..Dependency::new("frontend", "cart")
        };
        let from_metrics = Dependency {
            source: DependencySource::Servicegraph,
            protocol: Some("http".into()),
            call_rate: Some(7.0),
            first_seen: Some(at(50)),
            ..Dependency::new("frontend", "search")
        };
        let base = TopologyDocument {
            services: ["frontend", "cart", "search"]
                .map(|name| Service::new(name, ServiceKind::Service))
                .to_vec(),
            dependencies: vec![declared.clone(), from_metrics.clone()],
        };
        let mut calls = ObservedCalls::new();
        calls.record("frontend", "cart", call(0, 20.0, true));
        calls.record("frontend", "cart", call(1, 20.0, false));
        calls.record("frontend", "cart", call(2, 20.0, false));
        // One call: no rate to give, so the previous one stays.
        calls.record("frontend", "search", call(10, 5.0, false));
        calls.record("cart", "redis", call(3, 1.0, false));
        let merged = calls.merge(Some(&base));
        assert!(merged.adds_anything());
        let edges = &merged.document.dependencies;
        assert_eq!(edges.len(), 3);

        let cart = &edges[1];
        assert_eq!(
            (cart.caller.as_str(), cart.callee.as_str()),
            ("frontend", "cart")
        );
        assert_eq!(
            cart.source,
            DependencySource::Static,
            "the operator declared it"
        );
        assert_eq!(cart.protocol.as_deref(), Some("grpc"));
        assert!((cart.call_rate.unwrap() - 1.5).abs() < 1e-9, "{cart:?}");
        assert!(
            (cart.error_rate.unwrap() - 1.0 / 3.0).abs() < 1e-9,
            "{cart:?}"
        );
        assert!(
            (19.0..=21.0).contains(&cart.latency_ms.unwrap()),
            "{cart:?}"
        );
        assert_eq!(cart.first_seen, Some(at(-100)), "the earlier of the two");
        assert_eq!(cart.last_seen, Some(at(2)));

        let search = &edges[2];
        assert_eq!(search.source, DependencySource::Servicegraph);
        assert_eq!(search.protocol.as_deref(), Some("http"));
        assert_eq!(search.call_rate, Some(7.0));
        assert_eq!(search.error_rate, Some(0.0));
        assert_eq!(
            search.first_seen,
            Some(at(10)),
            "nothing earlier was observed"
        );
        assert_eq!(search.last_seen, Some(at(10)));

        let redis = &edges[0];
        assert_eq!(
            redis.source,
            DependencySource::Traces,
            "new edges are learned ones"
        );

        // An older batch does not move `last_seen` back.
        let mut older = ObservedCalls::new();
        older.record("frontend", "cart", call(-80, 20.0, false));
        let refreshed = older.merge(Some(&merged.document));
        assert!(!refreshed.adds_anything());
        let cart = &refreshed.document.dependencies[1];
        assert_eq!(cart.source, DependencySource::Static);
        assert_eq!(
            (cart.first_seen, cart.last_seen),
            (Some(at(-100)), Some(at(2)))
        );
    }

    #[test]
    fn a_name_and_its_alias_sum_their_calls_on_one_edge() {
        let mut cart = Service::new("cart", ServiceKind::Service);
        cart.aliases = vec!["cartservice".into()];
        let base = TopologyDocument {
            services: vec![Service::new("frontend", ServiceKind::Gateway), cart],
            dependencies: vec![],
        };
        let mut calls = ObservedCalls::new();
        // Callee side: one fast call under the name, two slow failed ones under the alias.
        calls.record("frontend", "cart", call(0, 10.0, false));
        calls.record("frontend", "cartservice", call(1, 30.0, true));
        calls.record("frontend", "cartservice", call(2, 30.0, true));
        // Caller side, the alias first this time.
        calls.record("cartservice", "db", call(0, 2.0, true));
        calls.record("cart", "db", call(4, 2.0, false));
        calls.record("cart", "db", call(8, 2.0, false));
        calls.record("cart", "db", call(9, 2.0, false));
        // A name calling its own alias is a call within the service.
        calls.record("cart", "cartservice", call(5, 1.0, false));
        let merged = calls.merge(Some(&base));
        assert_eq!(merged.dependencies_seen, 2);
        assert_eq!(
            merged.dependencies_added,
            [
                DependencyKey {
                    caller: "cart".into(),
                    callee: "db".into()
                },
                DependencyKey {
                    caller: "frontend".into(),
                    callee: "cart".into()
                },
            ]
        );
        let edges = &merged.document.dependencies;
        assert_eq!(edges.len(), 2);

        let db = &edges[0];
        assert!((db.error_rate.unwrap() - 0.25).abs() < 1e-9, "{db:?}");
        assert!((db.call_rate.unwrap() - 4.0 / 9.0).abs() < 1e-9, "{db:?}");
        assert_eq!(db.first_seen, Some(call(0, 0.0, false).at));
        assert_eq!(db.last_seen, Some(call(9, 0.0, false).at));

        let front = &edges[1];
        assert_eq!(
            (front.caller.as_str(), front.callee.as_str()),
            ("frontend", "cart")
        );
        assert!(
            (front.error_rate.unwrap() - 2.0 / 3.0).abs() < 1e-9,
            "{front:?}"
        );
        assert!((front.call_rate.unwrap() - 1.5).abs() < 1e-9, "{front:?}");
        let median = front.latency_ms.unwrap();
        assert!(
            (28.5..=31.5).contains(&median),
            "the histograms are summed: {median}"
        );
        assert_eq!(front.first_seen, Some(call(0, 0.0, false).at));
        assert_eq!(front.last_seen, Some(call(2, 0.0, false).at));
    }
}
