//! The detectors of call edges: delay on the wire credited to the endpoint that explains it,
//! callee duration and failed calls as callers see them.

use std::collections::{BTreeMap, HashMap};

use super::moderation::{Moderation, edge_kind, moderated_edge_kind};
use super::per_series::{OwnLatency, quantile_of};
use super::series::{Baseline, Direction};
use super::windows::Windows;
use super::{Detector, MAX_Z, fmt_value, timing_floor};
use crate::case::Case;

/// Edge detectors: delay on the wire in and out, callee duration and errors as callers see them.
///
/// A delay on the wire between two services is the fault of one of them, and the evidence says
/// which: a delay injected at a service's network interface slows *every* call in and out of
/// it, while each of its neighbours has just the one slow edge it shares with it. So each slow
/// edge is credited to the endpoint that better explains it (see [`explainer`]), and a service
/// whose slow edges are all explained by a neighbour gets no delay evidence from them.
pub(super) fn edge_detectors(
    case: &Case,
    windows: &Windows,
    anomalous_z: f64,
    own_latency: &HashMap<&str, OwnLatency>,
    moderation: &Moderation,
    note: &mut impl FnMut(&str, Detector, f64, String),
) {
    // Per call edge, the strongest delay over its series (quantiles), with its sentence.
    let mut delays: BTreeMap<(&str, &str), Delay> = BTreeMap::new();
    // Per call edge, the strongest rise of its duration as the caller sees it; and the edges
    // that carry a measured delay at all.
    let mut durations: BTreeMap<(&str, &str), (f64, String)> = BTreeMap::new();
    // Per call edge, the strongest share of a duration's rise that the callee's own latency at
    // the same quantile does not explain, as a deviation (see below).
    let mut unexplained: BTreeMap<(&str, &str), Delay> = BTreeMap::new();
    let mut measured: std::collections::BTreeSet<(&str, &str)> = Default::default();
    for e in &case.edges {
        if edge_kind(&e.name) == Some("network_ms") {
            measured.insert((e.caller.as_str(), e.callee.as_str()));
        }
    }
    for e in &case.edges {
        let baseline = windows.baseline(&e.times, &e.values);
        let (abnormal, _) = windows.abnormal(&e.times, &e.values);
        if abnormal.is_empty() {
            continue;
        }
        let kind = edge_kind(&e.name);
        let counts = matches!(kind, Some("errors" | "calls"));
        let mut base = Baseline::with_floor(&baseline, counts, timing_floor(&e.name));
        if let Some(moderated) = moderated_edge_kind(&e.name) {
            base = moderation.apply(moderated, base);
        }
        let Some((z, value)) = base.z(abnormal, Direction::Up) else {
            continue;
        };
        let sentence = |what: &str| {
            format!(
                "{what} on calls {} → {} rose to {} (baseline {}, z {:.1})",
                e.caller,
                e.callee,
                fmt_value(value),
                fmt_value(base.median),
                z.min(MAX_Z)
            )
        };
        match kind {
            Some("network_ms") => {
                let slot = delays
                    .entry((e.caller.as_str(), e.callee.as_str()))
                    .or_insert(Delay::NONE);
                if z > slot.z {
                    *slot = Delay {
                        z,
                        ms: Some(value - base.median),
                        sentence: sentence("delay (ms)"),
                    };
                }
            }
            Some("callee_ms") => {
                let edge = (e.caller.as_str(), e.callee.as_str());
                // Where no delay on the wire is measured (a service mesh's call durations, as
                // the caller sees them), a call's rise is set beside the callee's own latency
                // at the same quantile: the share the callee's rise explains is the callee's,
                // the rest was on the wire.
                let rise = value - base.median;
                let own_rise = own_latency
                    .get(e.callee.as_str())
                    .and_then(|own| own.rises.get(&quantile_of(&e.name)))
                    .filter(|_| !measured.contains(&edge) && rise > 0.0);
                let wire_share =
                    own_rise.map(|&own| ((rise - own.max(0.0)) / rise).clamp(0.0, 1.0));
                let callee_z = z * (1.0 - wire_share.unwrap_or(0.0));
                let said = sentence("duration (ms)");
                note(
                    &e.callee,
                    Detector::InboundCallDuration,
                    callee_z,
                    match own_rise {
                        Some(own) => format!(
                            "{said}, of which {}'s own latency explains {} ms",
                            e.callee,
                            fmt_value(own.max(0.0).min(rise))
                        ),
                        None => said.clone(),
                    },
                );
                if let (Some(share), Some(own)) = (wire_share, own_rise) {
                    let slot = unexplained.entry(edge).or_insert(Delay::NONE);
                    if z * share > slot.z {
                        let ms = rise - own.max(0.0);
                        *slot = Delay {
                            z: z * share,
                            ms: Some(ms),
                            sentence: format!(
                                "{said}, {} ms more than {}'s own latency rose",
                                fmt_value(ms),
                                e.callee
                            ),
                        };
                    }
                }
                let slot = durations
                    .entry(edge)
                    .or_insert((f64::NEG_INFINITY, String::new()));
                if z > slot.0 {
                    *slot = (z, said);
                }
            }
            Some("errors") => note(
                &e.callee,
                Detector::InboundCallErrors,
                z,
                sentence("failed calls"),
            ),
            _ => {}
        }
    }

    // Where no delay is measured (metrics from a service mesh rather than spans), a call whose
    // duration rose more than the callee's own latency did was slowed between the two. Where
    // the callee reports its latency at the call's quantile, the two rises are set side by side
    // in their unit: the call's deviation counts as a delay in the share of its rise the
    // callee's own does not explain (both deviations are often off the scale, so comparing them
    // says nothing). Otherwise each deviation is taken in its own baseline's spreads, the
    // call's beyond the callee's own, `z_call − z_own`.
    for (&(caller, callee), (z_call, sentence)) in &durations {
        if measured.contains(&(caller, callee)) || *z_call <= 0.0 {
            continue;
        }
        if let Some(delay) = unexplained.get(&(caller, callee)) {
            if delay.z > 0.0 {
                delays.insert((caller, callee), delay.clone());
            }
            continue;
        }
        let own = own_latency.get(callee).map_or(0.0, |own| own.z);
        let z = (z_call - own).max(0.0);
        if z > 0.0 {
            delays.insert(
                (caller, callee),
                Delay {
                    z,
                    ms: None,
                    sentence: format!(
                        "{sentence}, while {callee}'s own latency deviated z {own:.1}"
                    ),
                },
            );
        }
    }

    // Every edge observed in the window (with delay or duration data), slow or not.
    let mut observed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut pairs: std::collections::BTreeSet<(&str, &str)> = measured.clone();
    pairs.extend(durations.keys().copied());
    for &(caller, callee) in &pairs {
        *observed.entry(caller).or_default() += 1;
        *observed.entry(callee).or_default() += 1;
    }
    let mut delays_of: BTreeMap<&str, Vec<&Delay>> = BTreeMap::new();
    for (&(caller, callee), delay) in &delays {
        delays_of.entry(caller).or_default().push(delay);
        delays_of.entry(callee).or_default().push(delay);
    }
    let endpoint = |service: &str, this: &Delay| -> Endpoint {
        // The edge itself is among the service's delays; its other slow edges are those
        // anomalous at all and slowed by about as much as this one. A delay at an interface
        // adds the same milliseconds to every call through it (give or take a direction: see
        // [`SAME_DELAY_SHARE`]); where the two delays are not both measured in milliseconds, at
        // least a tenth of this one's deviation.
        let slow = delays_of.get(service).map_or(0, |all| {
            all.iter()
                .filter(|delay| {
                    delay.z >= anomalous_z
                        && match (delay.ms, this.ms) {
                            (Some(ms), Some(this_ms)) => ms >= SAME_DELAY_SHARE * this_ms,
                            _ => delay.z >= 0.1 * this.z,
                        }
                })
                .count()
        });
        Endpoint {
            others_slow: slow.saturating_sub(1),
            edges: observed.get(service).copied().unwrap_or(1).max(1),
        }
    };
    let mut credited: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (&(caller, callee), delay) in &delays {
        let z = delay.z;
        let (to_caller, to_callee) = explainer(endpoint(caller, delay), endpoint(callee, delay));
        if to_callee {
            note(
                callee,
                Detector::InboundCallDelay,
                z,
                delay.sentence.clone(),
            );
        }
        if to_caller {
            note(
                caller,
                Detector::OutboundCallDelay,
                z,
                delay.sentence.clone(),
            );
        }
        credited
            .entry(callee)
            .or_default()
            .push(if to_callee { z } else { 0.0 });
        credited
            .entry(caller)
            .or_default()
            .push(if to_caller { z } else { 0.0 });
    }
    for (service, mut zs) in credited {
        // Edges observed without any delay count as not slow.
        zs.resize(
            zs.len().max(observed.get(service).copied().unwrap_or(0)),
            0.0,
        );

        // One edge cannot say that every edge is slow: its other end shares it.
        if zs.len() < 2 {
            continue;
        }
        zs.sort_by(f64::total_cmp);
        // A low quantile, so one slow edge shared with the true cause does not count: the
        // service must be slow on (nearly) all of them.
        let low = crate::stats::quantile(&zs, 0.25);
        note(
            service,
            Detector::AllEdgesDelay,
            low,
            format!(
                "calls on {} of its edges slowed on the wire (lower-quartile z {:.1})",
                zs.len(),
                low
            ),
        );
    }
}

/// A delay on the wire of one call edge.
#[derive(Debug, Clone)]
struct Delay {
    /// Its deviation.
    z: f64,
    /// How far it rose, in milliseconds, where that is measured.
    ms: Option<f64>,
    /// What was seen.
    sentence: String,
}

impl Delay {
    /// No delay yet: any delay found replaces it.
    const NONE: Delay = Delay {
        z: f64::NEG_INFINITY,
        ms: None,
        sentence: String::new(),
    };
}

/// The share of an edge's delay (in milliseconds) another edge of the same service must show to
/// count as slowed by the same cause. A delay at an interface adds the same time to each packet
/// through it, but calls cross it in one direction or both, and quantiles of different edges
/// weigh it differently (Bookinfo's `reviews-v2`: 630 and 1,880 ms through one interface), so
/// a factor of four is allowed; a delay that leaked into a neighbour's calls (a caller's
/// timeouts, a queue behind the slow call) adds tens of milliseconds where the cause's adds
/// seconds.
const SAME_DELAY_SHARE: f64 = 0.25;

/// One end of a slow call edge, as [`explainer`] weighs it.
#[derive(Debug, Clone, Copy)]
struct Endpoint {
    /// Its other edges that are slow too (at least a tenth as slow as this one).
    others_slow: usize,
    /// Its edges observed in the window.
    edges: usize,
}

/// Which endpoints of a slow edge are credited with its delay: the one whose other edges are
/// slow too (a delay at a service's network interface slows every call in and out of it, while
/// each neighbour has just the one slow edge it shares with it); failing that, the one for which
/// the edge is the larger share of its edges (a leaf behind a busy caller); both when they are
/// alike.
fn explainer(caller: Endpoint, callee: Endpoint) -> (bool, bool) {
    match caller.others_slow.cmp(&callee.others_slow) {
        std::cmp::Ordering::Greater => (true, false),
        std::cmp::Ordering::Less => (false, true),
        std::cmp::Ordering::Equal => {
            let share = |e: Endpoint| (e.others_slow + 1) as f64 / e.edges as f64;
            let (a, b) = (share(caller), share(callee));
            if a > b + 1e-9 {
                (true, false)
            } else if b > a + 1e-9 {
                (false, true)
            } else {
                (true, true)
            }
        }
    }
}
