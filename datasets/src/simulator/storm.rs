//! The alert storm and unrelated changes of a case: the alerts the fault causes (the root's and
//! its callers' symptoms, some missing, some flapping), unrelated alerts with the metric
//! movement that fired them, and unrelated change events.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;
use rootcause_models::case::CaseChange;

use super::Options;
use super::alerts::{self, AlertCause, Labeller, SimulatedAlert};
use super::faults::Scenario;
use super::graph::Graph;
use super::metrics::Effect;
use super::random::{between, chance, poisson};

/// Alerts the fault causes: the root's (unless it is silent) and its callers' symptoms (each
/// possibly missing), flapping now and then. The alerts of `silenced` services are returned
/// apart (second), as withheld.
pub(super) fn fault_alerts(
    graph: &Graph<'_>,
    scenario: &Scenario,
    labeller: &Labeller<'_>,
    options: &Options,
    rng: &mut ChaCha8Rng,
    silenced: &BTreeSet<usize>,
) -> (Vec<SimulatedAlert>, Vec<SimulatedAlert>) {
    let (mut out, mut withheld) = (Vec::new(), Vec::new());
    let silent = chance(rng, options.silent_root);
    for hit in &scenario.hits {
        let cause = if hit.hops == 0 {
            AlertCause::Root
        } else {
            AlertCause::Symptom
        };
        let end = hit.effect.end + between(rng, 30, 120);
        for (k, &rule) in hit.rules.iter().enumerate() {
            let dropped = match cause {
                AlertCause::Root => silent,
                _ => chance(rng, options.missing_symptom),
            };
            // Later rules of the same service fire a little after the first.
            let start = hit.detected + if k == 0 { 0 } else { between(rng, 0, 60) };
            let severity = alerts::severity(rng, cause, hit.strength);
            let episodes = alerts::episodes(rng, start, end, options.flapping);
            if dropped {
                continue;
            }
            let target = if silenced.contains(&hit.node) {
                &mut withheld
            } else {
                &mut out
            };
            for (from, to) in episodes {
                target.push(labeller.alert(
                    graph.services[hit.node],
                    rule,
                    severity,
                    (from, Some(to)),
                    cause,
                ));
            }
        }
    }
    (out, withheld)
}

/// Alerts unrelated to the fault, anywhere in the window, each with the metric movement that
/// would have fired it.
pub(super) fn noise_alerts(
    graph: &Graph<'_>,
    window: (i64, i64),
    labeller: &Labeller<'_>,
    options: &Options,
    rng: &mut ChaCha8Rng,
    effects: &mut BTreeMap<usize, Vec<Effect>>,
) -> Vec<SimulatedAlert> {
    let mut out = Vec::new();
    for _ in 0..poisson(rng, options.noise_alerts) {
        let node = between(rng, 0, graph.len() as i64 - 1) as usize;
        let rule = alerts::noise_rule(rng);
        let start = between(rng, window.0, window.1);
        let end = start + between(rng, 120, 1800);
        let severity = alerts::severity(rng, AlertCause::Noise, 0.0);
        if let Some(effect) = alerts::noise_effect(rng, rule, start, end) {
            effects.entry(node).or_default().push(effect);
        }
        for (from, to) in alerts::episodes(rng, start, end, options.flapping) {
            out.push(labeller.alert(
                graph.services[node],
                rule,
                severity,
                (from, Some(to)),
                AlertCause::Noise,
            ));
        }
    }
    out
}

/// Change events unrelated to the fault, on any service, the root included: a learned model must
/// not find that a change never lands on the root unless it caused the fault.
pub(super) fn noise_changes(
    graph: &Graph<'_>,
    window: (i64, i64),
    options: &Options,
    rng: &mut ChaCha8Rng,
) -> Vec<CaseChange> {
    let mut out = Vec::new();
    for _ in 0..poisson(rng, options.noise_changes) {
        let node = between(rng, 0, graph.len() as i64 - 1) as usize;
        let kind = ["deploy", "config", "scale"][between(rng, 0, 2) as usize];
        let at = between(rng, window.0, window.1);
        let name = graph.name(node);
        let description = match kind {
            "deploy" => format!("rollout of {name}"),
            "config" => format!("configuration change applied to {name}"),
            _ => format!("{name} scaled to {} replicas", between(rng, 2, 12)),
        };
        out.push(CaseChange {
            service: name.to_owned(),
            kind: kind.to_owned(),
            at,
            description,
        });
    }
    out
}
