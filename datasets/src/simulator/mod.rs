//! The fault simulator: labelled incidents on any topology, for training and evaluating rankers
//! where no public dataset has the system's shape or size.
//!
//! Each case injects one fault (`cpu`, `memory`, `disk`, `latency`, `loss`, `errors`, `deploy`)
//! into one service, weighted toward services and datastores that have callers. The fault moves
//! the root's own metrics (its resource signal), then spreads against the call arrow: each
//! caller of an affected service is affected with a probability that decays with its distance
//! from the root, a hop delay later and less strongly, and shows latency and errors, never the
//! root's resource signal. Callees of the root stay healthy: that asymmetry is the evidence a
//! ranker should find. Around it come the imperfections of real alert storms: unrelated alerts
//! anywhere, a root that raises no alert, missing symptom alerts, alerts that resolve and fire
//! again, unrelated changes anywhere.
//!
//! Nothing but the evidence should single out the root: unrelated alerts and changes land on it
//! as on any other service, and its alerts draw their severity by the same rule as its callers'
//! symptoms (see `alerts::severity`), so a ranker cannot learn that a change or an `info` alert
//! rules a service out.
//!
//! Metrics are simulated for the candidates only (alerting services and what they call within
//! two hops), as a system would fetch them, so a silent root that no alerting service calls is
//! simply absent: an evaluation counts it as a miss, as it would be in production.
//!
//! Everything is derived from the topology and the seed: the same [`Options`] give the same
//! cases, and [`write()`] gives the same bytes.

mod alerts;
mod disk;
mod faults;
mod graph;
mod metrics;
mod random;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use rootcause_models::case::{Case, CaseAlert, CaseChange, Label, Series};
use rootcause_topology::Topology;

pub use alerts::{AlertCause, SimulatedAlert};
pub use disk::{load, write};
pub use faults::{Action, Affected, Fault};
pub use metrics::METRICS;

use alerts::Labeller;
use faults::{RootPicker, Scenario};
use graph::Graph;
use metrics::Effect;
use random::{between, chance, derived, poisson};

/// What to simulate. Probabilities outside `[0, 1]` are clamped; times are unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Number of cases.
    pub cases: usize,
    /// Random seed: the same seed and options give the same cases.
    pub seed: u64,
    /// Unix seconds at which the first case's metric window begins (give or take the anchor's
    /// random shift).
    pub start: i64,
    /// Seconds between the anchors of consecutive cases (each anchor also moves by a random
    /// quarter of this), so that cases fall at different times of day.
    pub spacing: i64,
    /// Relative weight of each fault type; a type left out is never injected. An empty or
    /// all-zero mix injects latency faults only.
    pub fault_mix: Vec<(Fault, f64)>,
    /// Mean number of unrelated alerts per case (Poisson), on services anywhere in the topology.
    pub noise_alerts: f64,
    /// Mean number of unrelated change events per case (Poisson), on services anywhere in the
    /// topology, the root included (as likely as any other service): a change on the root is
    /// evidence only when the fault is a bad deploy.
    pub noise_changes: f64,
    /// Probability that the root cause raises no alert at all.
    pub silent_root: f64,
    /// Probability that an alert flaps: resolves and fires again once or twice.
    pub flapping: f64,
    /// Probability that an affected caller's symptom alert does not fire.
    pub missing_symptom: f64,
    /// Probability that a direct caller of the root is affected.
    pub propagation: f64,
    /// Factor applied to that probability per further hop (0.6: 0.85, 0.51, 0.31, ...).
    pub propagation_decay: f64,
    /// Farthest hop the fault reaches.
    pub max_hops: usize,
    /// Most callers affected in one case, so a failing database shared by thousands does not
    /// produce a storm no system would page for.
    pub max_affected: usize,
    /// Range of the delay, in seconds, before a caller feels a callee's fault.
    pub hop_delay: (i64, i64),
    /// Probability that the natural action for the fault resolved it, not another one.
    pub natural_action: f64,
    /// Seconds of metrics before the anchor.
    pub before: i64,
    /// Seconds of metrics after the anchor.
    pub after: i64,
    /// Seconds between metric samples (at least 1).
    pub step: i64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            cases: 100,
            seed: 1,
            // 2026-01-01T00:00:00Z
            start: 1_767_225_600,
            spacing: 4 * 3600,
            fault_mix: Fault::ALL.iter().map(|&f| (f, 1.0)).collect(),
            noise_alerts: 3.0,
            noise_changes: 0.5,
            silent_root: 0.15,
            flapping: 0.1,
            missing_symptom: 0.1,
            propagation: 0.85,
            propagation_decay: 0.6,
            max_hops: 4,
            max_affected: 100,
            hop_delay: (15, 90),
            natural_action: 0.85,
            before: 30 * 60,
            after: 10 * 60,
            step: 60,
        }
    }
}

/// One simulated incident, with everything the simulator knows about it. Convert it with
/// [`SimulatedCase::into_case`] to what rankers see.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedCase {
    /// `case-0001`, ...: also its directory name on disk.
    pub id: String,
    /// The system name given to [`simulate`].
    pub system: String,
    /// Unix seconds of the fault's onset.
    pub anchor: i64,
    /// The service the fault was injected into.
    pub root_cause: String,
    /// What was injected.
    pub fault: Fault,
    /// What resolved it.
    pub action: Action,
    /// Unix seconds when the fault was resolved.
    pub resolved_at: i64,
    /// The root (first, 0 hops) and every caller the fault reached, in the order it reached
    /// them.
    pub affected: Vec<Affected>,
    /// The alert storm, by start time.
    pub alerts: Vec<SimulatedAlert>,
    /// Change events, by time: the bad deploy or configuration change if any, and unrelated ones.
    pub changes: Vec<CaseChange>,
    /// Services to rank, sorted: those with an alert and what they call within two hops.
    pub candidates: Vec<String>,
    /// Metric windows of the candidates, by service then metric ([`METRICS`] order).
    pub series: Vec<Series>,
    /// `[from, to)` ranges free of the fault: the window before the onset.
    pub normal_windows: Vec<(i64, i64)>,
}

impl SimulatedCase {
    /// The case as rankers see it, sharing `topology` with the other cases of the run.
    pub fn into_case(self, topology: Option<Arc<Topology>>) -> Case {
        let alerts = self
            .alerts
            .iter()
            .map(|a| case_alert(&a.labels, a.starts_at, a.ends_at, topology.as_deref()))
            .collect();
        Case {
            id: self.id,
            system: self.system,
            anchor: self.anchor,
            candidates: self.candidates,
            series: self.series,
            edges: Vec::new(),
            alerts,
            changes: self.changes,
            topology,
            normal_windows: self.normal_windows,
            label: Some(Label {
                root_cause: self.root_cause,
                fault_type: self.fault.as_str().to_owned(),
                action: Some(self.action.as_str().to_owned()),
            }),
            notes: Vec::new(),
        }
    }
}

/// An alert as a ranker sees it: mapped to a service by its `service` label (resolved through
/// the topology's names and aliases when there is one), its signal from its name.
fn case_alert(
    labels: &BTreeMap<String, String>,
    starts_at: i64,
    ends_at: Option<i64>,
    topology: Option<&Topology>,
) -> CaseAlert {
    let label = labels.get("service");
    let service = match topology {
        Some(topology) => label
            .and_then(|s| topology.resolve(s))
            .map(|s| s.name.clone()),
        None => label.cloned(),
    };
    let name = labels.get("alertname").cloned().unwrap_or_default();
    CaseAlert {
        service,
        signal: alerts::signal_of(labels).to_owned(),
        name,
        severity: labels.get("severity").cloned().unwrap_or_default(),
        starts_at,
        ends_at,
        labels: labels.clone(),
    }
}

/// Simulates `options.cases` incidents on `topology`, named after `system`.
///
/// Deterministic: each case draws from its own ChaCha8 generator, seeded from `options.seed`
/// and the case's index (so case 7 does not change when case 3's draws do), and services are
/// visited in name order, never in the graph's storage order. An empty topology gives no cases.
pub fn simulate(topology: &Topology, system: &str, options: &Options) -> Vec<SimulatedCase> {
    let graph = Graph::new(topology);
    if graph.len() == 0 {
        return Vec::new();
    }
    let picker = RootPicker::new(&graph, options);
    let width = options.cases.to_string().len().max(4);
    (0..options.cases)
        .filter_map(|index| simulate_case(&graph, &picker, system, options, index, width))
        .collect()
}

fn simulate_case(
    graph: &Graph<'_>,
    picker: &RootPicker,
    system: &str,
    options: &Options,
    index: usize,
    width: usize,
) -> Option<SimulatedCase> {
    let rng = &mut derived(options.seed, &[index as u64]);
    let spacing = options.spacing.max(1);
    let before = options.before.max(0);
    let after = options.after.max(0);
    let anchor = options.start + before + index as i64 * spacing + between(rng, 0, spacing / 4);
    let window = (anchor - before, anchor + after);
    let (fault, root) = picker.pick(rng)?;
    let scenario = faults::scenario(graph, fault, root, anchor, options, rng);
    let labeller = Labeller {
        system,
        seed: options.seed,
    };

    // Per service, the disturbances its metrics show.
    let mut effects: BTreeMap<usize, Vec<Effect>> = BTreeMap::new();
    for hit in &scenario.hits {
        effects.entry(hit.node).or_default().push(hit.effect);
    }
    let mut alerts = fault_alerts(graph, &scenario, &labeller, options, rng);
    alerts.extend(noise_alerts(
        graph,
        window,
        &labeller,
        options,
        rng,
        &mut effects,
    ));
    alerts.sort_by(|a, b| {
        (a.starts_at, a.service(), a.name(), a.ends_at).cmp(&(
            b.starts_at,
            b.service(),
            b.name(),
            b.ends_at,
        ))
    });

    let mut changes: Vec<CaseChange> = scenario.change.iter().cloned().collect();
    changes.extend(noise_changes(graph, window, options, rng));
    changes.sort_by(|a, b| (a.at, &a.service, &a.kind).cmp(&(b.at, &b.service, &b.kind)));

    let alerting: BTreeSet<usize> = alerts
        .iter()
        .filter_map(|a| graph.position(a.service()))
        .collect();
    let candidates = graph.with_callees(&alerting, 2);
    let times = metrics::grid(window.0, window.1, options.step);
    let series = candidates
        .iter()
        .flat_map(|&node| {
            let disturbances = effects.get(&node).map_or(&[][..], Vec::as_slice);
            metrics::service_series(
                graph.services[node],
                options.seed,
                index as u64,
                &times,
                disturbances,
            )
        })
        .collect();

    Some(SimulatedCase {
        id: format!("case-{:0width$}", index + 1),
        system: system.to_owned(),
        anchor,
        root_cause: graph.name(root).to_owned(),
        fault,
        action: scenario.action,
        resolved_at: scenario.resolved_at,
        affected: scenario
            .hits
            .iter()
            .map(|hit| Affected {
                service: graph.name(hit.node).to_owned(),
                hops: hit.hops,
                onset: hit.onset,
                strength: (hit.strength * 1000.0).round() / 1000.0,
            })
            .collect(),
        alerts,
        changes,
        candidates: candidates
            .iter()
            .map(|&node| graph.name(node).to_owned())
            .collect(),
        series,
        normal_windows: vec![(times.first().copied().unwrap_or(window.0), anchor)],
    })
}

/// Alerts the fault causes: the root's (unless it is silent) and its callers' symptoms (each
/// possibly missing), flapping now and then.
fn fault_alerts(
    graph: &Graph<'_>,
    scenario: &Scenario,
    labeller: &Labeller<'_>,
    options: &Options,
    rng: &mut ChaCha8Rng,
) -> Vec<SimulatedAlert> {
    let mut out = Vec::new();
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
            for (from, to) in episodes {
                out.push(labeller.alert(
                    graph.services[hit.node],
                    rule,
                    severity,
                    (from, Some(to)),
                    cause,
                ));
            }
        }
    }
    out
}

/// Alerts unrelated to the fault, anywhere in the window, each with the metric movement that
/// would have fired it.
fn noise_alerts(
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
fn noise_changes(
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
