//! The `service_mesh` realism trait: call edges as a service mesh's sidecars report them
//! (Istio's request-duration histogram by source and destination workload), not as spans do.
//!
//! A sidecar reports the duration of each call as its caller sees it: the callee's own
//! (server-side) latency plus the time on the wire both ways. Nothing reports the wire alone, so
//! a delay at a service's network interface can only be told from a slow callee by setting the
//! call's rise beside the callee's own. And a delay at an interface is felt inside it too: a
//! service's own latency includes the calls it makes, which leave and return through the slowed
//! interface, so a delayed service that calls others sees its own latency rise, as Bookinfo's
//! `reviews-v2` does under a delay at its interface.

use std::collections::BTreeMap;

use rootcause_models::case::{EdgeSeries, Series, Source};

/// The mesh's call-duration series of an edge, at the quantile the services report their own
/// latency.
pub(super) const MESH_DURATION: &str = "callee_ms_p99";
/// The services' own latency series the mesh's durations build on.
const OWN_LATENCY: &str = "latency_p99_ms";

/// A delay at the root's network interface: the root, which of its series it is felt in (all,
/// or one instance's), and its size in ms at each time.
pub(super) struct InterfaceDelay<'a, F: Fn(i64) -> f64> {
    /// The root's name.
    pub root: &'a str,
    /// When the root reports per instance, the faulty instance's label (see
    /// `observe::instance_label`): only its series feels the delay.
    pub instance: Option<String>,
    /// The delay added to each call through the interface at time `t`, in ms.
    pub delay_ms: F,
}

/// Rewrites the span-derived call edges of a case as a mesh reports them: per edge its `calls`
/// and `errors` as before and [`MESH_DURATION`] (the callee's own latency at that quantile at
/// each time, plus the wire) in place of `callee_ms` and `network_ms`. With `delay`, the root's
/// own latency first takes the delay of its calls out (when it makes any). Returns the number
/// of edges rewritten.
pub(super) fn as_service_mesh<F: Fn(i64) -> f64>(
    series: &mut [Series],
    edges: &mut Vec<EdgeSeries>,
    delay: Option<InterfaceDelay<'_, F>>,
) -> usize {
    if let Some(delay) = delay {
        let calls_out = edges.iter().any(|e| {
            e.caller == delay.root && e.name == "calls" && e.values.iter().any(|&v| v > 0.0)
        });
        if calls_out {
            for s in series.iter_mut().filter(|s| {
                s.service == delay.root
                    && is_own_latency(s)
                    && delay
                        .instance
                        .as_ref()
                        .is_none_or(|i| s.name.contains(i.as_str()))
            }) {
                for (value, &t) in s.values.iter_mut().zip(&s.times) {
                    if value.is_finite() {
                        *value += (delay.delay_ms)(t);
                    }
                }
            }
        }
    }

    // The callee's own latency as its callers see it: the slowest of its instances.
    let mut own: BTreeMap<&str, Vec<&Series>> = BTreeMap::new();
    for s in series.iter().filter(|s| is_own_latency(s)) {
        own.entry(s.service.as_str()).or_default().push(s);
    }
    let own_at = |service: &str, t: i64| -> Option<f64> {
        own.get(service)?
            .iter()
            .filter_map(|s| at_or_before(s, t))
            .reduce(f64::max)
    };

    let mut by_edge: BTreeMap<(String, String), BTreeMap<String, EdgeSeries>> = BTreeMap::new();
    for e in edges.drain(..) {
        by_edge
            .entry((e.caller.clone(), e.callee.clone()))
            .or_default()
            .insert(e.name.clone(), e);
    }
    let mut rewritten = 0;
    for ((caller, callee), mut named) in by_edge {
        let (Some(callee_ms), Some(network)) =
            (named.remove("callee_ms"), named.remove("network_ms"))
        else {
            edges.extend(named.into_values());
            continue;
        };
        let values = callee_ms
            .times
            .iter()
            .zip(callee_ms.values.iter().zip(&network.values))
            .map(|(&t, (&span, &wire))| {
                if !span.is_finite() {
                    // No calls in that minute: nothing to report.
                    return f64::NAN;
                }
                // A callee that exports nothing of its own still has its calls timed by the
                // caller's sidecar: its span duration stands in for its latency.
                let served = own_at(&callee, t).unwrap_or(span);
                (served + wire).max(0.0)
            })
            .collect();
        edges.extend(named.into_values());
        edges.push(EdgeSeries {
            caller,
            callee,
            name: MESH_DURATION.to_owned(),
            times: callee_ms.times,
            values,
        });
        rewritten += 1;
    }
    edges.sort_by(|a, b| (&a.caller, &a.callee, &a.name).cmp(&(&b.caller, &b.callee, &b.name)));
    rewritten
}

/// Whether `s` is a service's own latency at the mesh's quantile (per instance or not).
fn is_own_latency(s: &Series) -> bool {
    s.source == Source::Metric
        && (s.name == OWN_LATENCY
            || s.name
                .strip_prefix(OWN_LATENCY)
                .is_some_and(|rest| rest.starts_with('{')))
}

/// The last finite sample of `s` at or before `t` (the first one when `t` precedes them all).
fn at_or_before(s: &Series, t: i64) -> Option<f64> {
    let upto = s.times.partition_point(|&x| x <= t);
    s.values[..upto]
        .iter()
        .rev()
        .find(|v| v.is_finite())
        .or_else(|| s.values.iter().find(|v| v.is_finite()))
        .copied()
}
