//! Dependencies learned from observed calls, so an operator can build the graph from distributed
//! traces instead of writing it: every cross-service parent → child span pair is one call from
//! the parent's service to the child's.
//!
//! [`ObservedCalls`] only counts; reading spans (OpenTelemetry OTLP/JSON, a dataset's CSV) is
//! the caller's job.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

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
    /// Services seen in spans, calling or not.
    services: BTreeMap<String, ()>,
}

impl ObservedCalls {
    /// Nothing observed yet.
    pub fn new() -> Self {
        ObservedCalls::default()
    }

    /// Notes that `service` exists (it emitted a span), even if it calls nobody.
    pub fn record_service(&mut self, service: &str) {
        if !self.services.contains_key(service) {
            self.services.insert(service.to_string(), ());
        }
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
    /// the calls (new ones as kind `service`), with learned edges added or, where `base` already
    /// has the edge, its observed attributes refreshed while its protocol is kept.
    pub fn to_document(&self, base: Option<&TopologyDocument>) -> TopologyDocument {
        let mut document = base.cloned().unwrap_or_default();
        let known: std::collections::HashSet<String> = document
            .services
            .iter()
            .flat_map(|s| std::iter::once(s.name.clone()).chain(s.aliases.iter().cloned()))
            .collect();
        for service in self.services() {
            if !known.contains(service) {
                document
                    .services
                    .push(Service::new(service, ServiceKind::Service));
            }
        }
        let canonical = |name: &str| -> String {
            document
                .services
                .iter()
                .find(|s| s.name == name || s.aliases.iter().any(|a| a == name))
                .map_or_else(|| name.to_string(), |s| s.name.clone())
        };
        let learned: Vec<Dependency> = self
            .dependencies()
            .into_iter()
            .map(|mut d| {
                d.caller = canonical(&d.caller);
                d.callee = canonical(&d.callee);
                d
            })
            .filter(|d| d.caller != d.callee)
            .collect();
        for edge in learned {
            match document
                .dependencies
                .iter_mut()
                .find(|d| d.caller == edge.caller && d.callee == edge.callee)
            {
                Some(existing) => {
                    let protocol = existing.protocol.take();
                    *existing = Dependency { protocol, ..edge };
                }
                None => document.dependencies.push(edge),
            }
        }
        document.services.sort_by(|a, b| a.name.cmp(&b.name));
        document
            .dependencies
            .sort_by(|a, b| (&a.caller, &a.callee).cmp(&(&b.caller, &b.callee)));
        document
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
}
