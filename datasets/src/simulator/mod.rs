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
//! two hops, three with silent intermediaries), as a system would fetch them, so a silent root
//! that no alerting service calls is simply absent: an evaluation counts it as a miss, as it
//! would be in production.
//!
//! Everything is derived from the topology and the seed: the same [`Options`] give the same
//! cases, and [`write()`] gives the same bytes.
//!
//! # Realism
//!
//! Public fault data from other estates is messier than all this, and a ranker tuned on two
//! clean systems must hold up there. [`Options::realism`] gives each [`Trait`] a probability;
//! every case draws its own traits from a generator of its own (so the clean draws are
//! untouched, and [`Realism::none()`], the default, gives exactly the clean simulator's bytes),
//! and records them in [`SimulatedCase::realism`] and `case.json`. The traits, and what they
//! stand for:
//!
//! - **coarse**: metrics every 300 s over 2 h before and 15 min after the anchor, so only one
//!   to three samples are abnormal: CloudWatch's five-minute basic monitoring, long scrape
//!   intervals, exports downsampled for a post-mortem.
//! - **sparse**: one to three candidates other than the root are low-traffic: 60–85 % of their
//!   metric samples are missing and the rest are heavy-tailed (jumps of 5–50× the level, one of
//!   them always in the abnormal window). A service called a few times a minute has no p99 in
//!   most scrapes, and one slow request is its whole p99 in the others; a ranker must not blame
//!   it for jumping.
//! - **sub_resources**: some services (the root with probability 0.5, others 0.3) report per
//!   instance (2–5 pods, shards, partitions): `<metric>{instance="<service>-<i>"}`, with no
//!   service-level series. The fault hits one root instance, the others at most echo it a
//!   little; a noise alert's cause is one instance's. Kubernetes metrics are per pod, database
//!   metrics per shard, and a bad node takes down one replica.
//! - **unseen_names**: the case's metrics use another vocabulary (CloudWatch-, Azure Monitor- or
//!   APM-like: `CPUUtilization_Average`, `Available Memory Bytes`, `TargetResponseTime_p99` in
//!   seconds, `availability` in percent of successful requests, which falls as errors rise,
//!   counts per period...), each series with [`Family::classify`](rootcause_models::case::Family::classify)
//!   of its name as any loader of unlabelled metrics would give it, `Other` included: estates
//!   name their metrics as their stack does.
//! - **no_topology**: no dependency graph, and the candidates are every service with a series
//!   or an alert: many datasets and young installations have no service map.
//! - **no_baseline**: data begins 0–120 s before the anchor, on the collector's own clock, and
//!   there are no normal windows; the fault still ramps up inside the window. Monitoring
//!   switched on during the incident, or a retention shorter than the time to open a ticket.
//! - **releases**: two to four innocent rollouts of other candidates within 30 min either side
//!   of the anchor (at least one after it), and with probability 0.3 one of the root an hour
//!   earlier; only a `deploy` fault's own release, minutes before onset, is faulty. Busy estates
//!   release all day, and an incident rarely has only one suspect change.
//! - **silent_intermediaries**: on propagation paths of two hops or more, the services between
//!   the root and the last caller raise no alert (their metrics still show the echo): their
//!   thresholds are per team and often missing. Paths are kept within three hops and candidates
//!   span three hops of callees, so the root stays a candidate whenever an alerting caller
//!   reaches it; should silencing still hide it, the intermediaries alert after all.
//! - **traces_logs**: span, log and call-edge statistics per minute for every candidate over
//!   the last 20 minutes (see `traces`), with the fault where it sits: a slow or starved root
//!   slows its own spans and its callers' durations but only its own self time; a delay or loss
//!   at its network interface (every `loss` fault and half the `latency` ones, recorded as
//!   `network_fault`) slows every call into and out of it on the wire while its own spans and
//!   its own (server-side) `latency_p99_ms` stay flat, and its callers' latency rises; failures show on
//!   the edges into it and, weaker, in its callers' error spans. Tracing and log pipelines are
//!   where most estates' richest evidence is.
//!
//! Cases with traces and logs may instead get a **code fault** ([`Realism::code_faults`]):
//! [`Fault::Exception`] (a log statement printed on every request of one operation goes quiet
//! while traffic holds, error spans rise moderately, callers see failed calls, usually nothing
//! new is logged) or [`Fault::WrongReturn`] (a new ERROR or WARN statement fires tens of times
//! a minute, error spans rise, and callers now and then log a new warning of their own, a
//! symptom). Their resource metrics stay flat and their error metric barely moves: a wrong
//! answer or a caught exception is still a 200. They are labelled `exception` and
//! `wrong_return`, resolved by a restart or a rollback.
//!
//! In cases with traces and logs, each candidate datastore (database, cache, queue) may also
//! **export nothing** of its own ([`Realism::unexported`]; a managed database, a hosted queue):
//! its metric, span and log series and its alerts are dropped, the call edges into it stay. A
//! root goes dark only while an alerting caller still reaches it, so it stays a candidate.

mod alerts;
mod disk;
mod faults;
mod graph;
mod metrics;
mod observe;
mod random;
#[cfg(test)]
mod ranking_tests;
mod realism;
#[cfg(test)]
mod realism_tests;
#[cfg(test)]
mod tests;
mod traces;
mod vocabulary;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use rootcause_models::case::{Case, CaseAlert, CaseChange, EdgeSeries, Label, Series};
use rootcause_topology::Topology;

pub use alerts::{AlertCause, SimulatedAlert};
pub use disk::{load, write};
pub use faults::{Action, Affected, Fault};
pub use metrics::METRICS;
pub use realism::{Realism, RealismReport, Trait};

use alerts::Labeller;
use faults::{RootPicker, Scenario};
use graph::Graph;
use metrics::Effect;
use observe::Observation;
use random::{between, chance, derived, poisson};
use traces::Mechanism;
use vocabulary::VOCABULARIES;

/// Salt of each case's realism generator, kept apart from its main one so that drawing traits
/// never changes what the clean simulator draws.
const REALISM: u64 = 0x7ea1_15e0;

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
    /// all-zero mix injects latency faults only. Code faults ([`Fault::CODE`]) are not drawn
    /// from it but by [`Realism::code_faults`], since they need traces and logs to show.
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
    /// How often each realism trait appears; [`Realism::none()`] by default, the clean
    /// simulator.
    pub realism: Realism,
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
            realism: Realism::none(),
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
    /// Services to rank, sorted: those with an alert and what they call within two hops (three
    /// with [`Trait::SilentIntermediaries`]).
    pub candidates: Vec<String>,
    /// Series of the candidates: metric windows by service then metric ([`METRICS`] order,
    /// unless realism renamed or split them), then span statistics by service, then log
    /// statistics by service (with [`Trait::TracesLogs`]).
    pub series: Vec<Series>,
    /// Call-edge series between candidates (with [`Trait::TracesLogs`]), by caller, callee,
    /// then name.
    pub edges: Vec<EdgeSeries>,
    /// `[from, to)` ranges free of the fault: the window before the onset (none with
    /// [`Trait::NoBaseline`]).
    pub normal_windows: Vec<(i64, i64)>,
    /// The realism traits of the case and what they did.
    pub realism: RealismReport,
}

impl SimulatedCase {
    /// The case as rankers see it, sharing `topology` with the other cases of the run (or
    /// without one, with [`Trait::NoTopology`]).
    pub fn into_case(self, topology: Option<Arc<Topology>>) -> Case {
        let topology = topology.filter(|_| !self.realism.has(Trait::NoTopology));
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
            edges: self.edges,
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
    // Everything realism decides comes from here, never from `rng`: with no trait drawn, the
    // case is exactly the clean simulator's.
    let realism_rng = &mut derived(options.seed, &[index as u64, REALISM]);
    let traits = options.realism.draw(realism_rng);
    let has = |one: Trait| traits.contains(&one);
    let mut report = RealismReport {
        traits: traits.clone(),
        ..RealismReport::default()
    };
    let spacing = options.spacing.max(1);
    let before = options.before.max(0);
    let after = options.after.max(0);
    let anchor = options.start + before + index as i64 * spacing + between(rng, 0, spacing / 4);
    // Coarse monitoring keeps five-minute samples over a longer look-back.
    let (before, after, step) = if has(Trait::Coarse) {
        (2 * 3600, 15 * 60, 300)
    } else {
        (before, after, options.step)
    };
    let mut window = (anchor - before, anchor + after);
    if has(Trait::NoBaseline) {
        window.0 = anchor - between(realism_rng, 0, 120);
    }
    let (mut fault, mut root) = picker.pick(rng)?;
    if has(Trait::TracesLogs) && chance(realism_rng, options.realism.code_faults) {
        let code = Fault::CODE[between(realism_rng, 0, 1) as usize];
        if let Some(node) = picker.root_for(code, realism_rng) {
            (fault, root) = (code, node);
        }
    }
    // Paths of at most three hops, so that an alerting caller at the end of one still reaches
    // the root within the three hops candidates then span.
    let capped;
    let scenario_options = if has(Trait::SilentIntermediaries) {
        capped = Options {
            max_hops: options.max_hops.min(3),
            ..options.clone()
        };
        &capped
    } else {
        options
    };
    let scenario = faults::scenario(graph, fault, root, anchor, scenario_options, rng);
    let labeller = Labeller {
        system,
        seed: options.seed,
    };

    // Per service, the disturbances its metrics show: the fault's first, then noise.
    let mut effects: BTreeMap<usize, Vec<Effect>> = BTreeMap::new();
    for hit in &scenario.hits {
        effects.entry(hit.node).or_default().push(hit.effect);
    }
    // Affected services that passed the fault on: the intermediaries of its paths.
    let silenced: BTreeSet<usize> = if has(Trait::SilentIntermediaries) {
        scenario
            .hits
            .iter()
            .filter_map(|hit| hit.parent)
            .filter(|&parent| parent != 0)
            .map(|parent| scenario.hits[parent].node)
            .collect()
    } else {
        BTreeSet::new()
    };
    let (mut alerts, withheld) = fault_alerts(graph, &scenario, &labeller, options, rng, &silenced);
    alerts.extend(noise_alerts(
        graph,
        window,
        &labeller,
        options,
        rng,
        &mut effects,
    ));

    let mut changes: Vec<CaseChange> = scenario.change.iter().cloned().collect();
    changes.extend(noise_changes(graph, window, options, rng));

    let hops = if has(Trait::SilentIntermediaries) {
        3
    } else {
        2
    };
    let alerting = |alerts: &[SimulatedAlert]| -> BTreeSet<usize> {
        alerts
            .iter()
            .filter_map(|a| graph.position(a.service()))
            .collect()
    };
    let mut candidates = graph.with_callees(&alerting(&alerts), hops);
    if !withheld.is_empty() && !candidates.contains(&root) {
        // Silencing hid the root: the intermediaries alert after all.
        alerts.extend(withheld);
        candidates = graph.with_callees(&alerting(&alerts), hops);
    } else {
        report.silenced = silenced.iter().map(|&n| graph.name(n).to_owned()).collect();
    }
    alerts.sort_by(|a, b| {
        (a.starts_at, a.service(), a.name(), a.ends_at).cmp(&(
            b.starts_at,
            b.service(),
            b.name(),
            b.ends_at,
        ))
    });
    if has(Trait::Releases) {
        changes.extend(releases(graph, root, &candidates, anchor, realism_rng));
    }
    changes.sort_by(|a, b| (a.at, &a.service, &a.kind).cmp(&(b.at, &b.service, &b.kind)));

    let times: Vec<i64> = if has(Trait::NoBaseline) {
        // A collector switched on just before the incident scrapes from when it started, not
        // on the round multiples of its step a long-running one has settled on.
        (0..)
            .map(|k| window.0 + k * step.max(1))
            .take_while(|&t| t <= window.1)
            .collect()
    } else {
        metrics::grid(window.0, window.1, step)
    };

    // How metrics are observed.
    let sparse: BTreeSet<usize> = if has(Trait::Sparse) {
        let others: Vec<usize> = candidates.iter().copied().filter(|&n| n != root).collect();
        let count = between(realism_rng, 1, 3) as usize;
        pick(realism_rng, &others, count)
    } else {
        BTreeSet::new()
    };
    let mut instances: BTreeMap<usize, usize> = BTreeMap::new();
    let mut faulty_instance = 0;
    if has(Trait::SubResources) {
        for &node in &candidates {
            let p = if node == root { 0.5 } else { 0.3 };
            if chance(realism_rng, p) {
                instances.insert(node, between(realism_rng, 2, 5) as usize);
            }
        }
        // At least one service per case reports per instance, or the trait would be a no-op.
        if instances.is_empty() && !candidates.is_empty() {
            let all: Vec<usize> = candidates.iter().copied().collect();
            let node = all[between(realism_rng, 0, all.len() as i64 - 1) as usize];
            instances.insert(node, between(realism_rng, 2, 5) as usize);
        }
        if let Some(&count) = instances.get(&root) {
            faulty_instance = between(realism_rng, 0, count as i64 - 1) as usize;
            report.faulty_instance =
                Some(observe::instance_name(graph.name(root), faulty_instance));
        }
    }
    let vocabulary = has(Trait::UnseenNames)
        .then(|| &VOCABULARIES[between(realism_rng, 0, VOCABULARIES.len() as i64 - 1) as usize]);
    let observation = Observation {
        seed: options.seed,
        case: index as u64,
        anchor,
        times: &times,
        step: step.max(1),
        root,
        sparse: &sparse,
        instances: &instances,
        faulty_instance,
        vocabulary,
    };
    let hit_nodes: BTreeSet<usize> = scenario.hits.iter().map(|h| h.node).collect();
    // With traces, a delay or loss sits at the root's interface rather than inside it half the
    // time (always for loss): its calls slow on the wire (see the edge series below) while the
    // latency it measures itself, server side, stays flat, as Train Ticket's and Bookinfo's
    // network-delay roots do; its callers' latency rises as ever.
    let network = has(Trait::TracesLogs)
        && (fault == Fault::Loss || (fault == Fault::Latency && chance(realism_rng, 0.5)));
    if network && let Some(own) = effects.get_mut(&root).and_then(|list| list.first_mut()) {
        own.latency = 0.0;
    }
    let mut series: Vec<Series> = candidates
        .iter()
        .flat_map(|&node| {
            let disturbances = effects.get(&node).map_or(&[][..], Vec::as_slice);
            observe::metric_series(
                graph,
                node,
                disturbances,
                hit_nodes.contains(&node),
                &observation,
            )
        })
        .collect();
    report.sparse = sparse.iter().map(|&n| graph.name(n).to_owned()).collect();
    report.instances = instances
        .iter()
        .map(|(&n, &count)| (graph.name(n).to_owned(), count))
        .collect();
    report.vocabulary = vocabulary.map(|v| v.name.to_owned());

    let mut edges = Vec::new();
    if has(Trait::TracesLogs) {
        let root_effect = scenario.hits[0].effect;
        let mechanism = if network {
            let p50 = metrics::Baseline::of(graph.services[root], options.seed).latency / 3.5;
            Mechanism::Network {
                delay_ms: (p50 * root_effect.latency).max(20.0),
                loss: if fault == Fault::Loss {
                    root_effect.errors
                } else {
                    0.0
                },
            }
        } else {
            Mechanism::Server
        };
        report.network_fault = network;
        // Statistics of whole minutes, over at most the twenty minutes before the anchor: trace
        // and log stores keep less history than metrics, and a case holds a lot of them.
        let mut minutes = metrics::grid(window.0.max(anchor - 1200), window.1, 60);
        minutes.retain(|&t| t >= window.0);
        let hits: BTreeMap<usize, Effect> =
            scenario.hits.iter().map(|h| (h.node, h.effect)).collect();
        let others: BTreeMap<usize, Vec<Effect>> = effects
            .iter()
            .map(|(&node, list)| {
                let skip = usize::from(hit_nodes.contains(&node));
                (node, list[skip..].to_vec())
            })
            .collect();
        let direct: Vec<usize> = scenario
            .hits
            .iter()
            .filter(|h| h.hops == 1)
            .map(|h| h.node)
            .collect();
        let candidate_list: Vec<usize> = candidates.iter().copied().collect();
        let out = traces::generate(&traces::Input {
            graph,
            seed: options.seed,
            case: index as u64,
            times: &minutes,
            candidates: &candidate_list,
            root,
            fault,
            mechanism,
            share: instances.get(&root).map_or(1.0, |&n| 1.0 / n as f64),
            span_errors: scenario.span_errors,
            hits: &hits,
            direct_callers: &direct,
            others: &others,
        });
        series.extend(out.traces);
        series.extend(out.logs);
        edges = out.edges;
        report.quiet_template = out.quiet_template;
        report.new_templates = out.new_templates;

        // Datastores that export nothing: their own series and alerts go, the calls into them
        // stay. The root goes dark only if its callers' alerts still reach it, so that it
        // stays a candidate as a live incident would derive them.
        let mut dark: BTreeSet<usize> = candidates
            .iter()
            .copied()
            .filter(|&n| graph.is_datastore(n) && chance(realism_rng, options.realism.unexported))
            .collect();
        let still_alerting = |dark: &BTreeSet<usize>| -> BTreeSet<usize> {
            alerting(&alerts)
                .into_iter()
                .filter(|n| !dark.contains(n))
                .collect()
        };
        if dark.contains(&root)
            && !graph
                .with_callees(&still_alerting(&dark), hops)
                .contains(&root)
        {
            dark.remove(&root);
        }
        if !dark.is_empty() {
            let names: BTreeSet<&str> = dark.iter().map(|&n| graph.name(n)).collect();
            series.retain(|s| !names.contains(s.service.as_str()));
            alerts.retain(|a| !names.contains(a.service()));
            report.unexported = names.iter().map(|&n| n.to_owned()).collect();
        }
    }

    let mut candidate_names: Vec<String> = candidates
        .iter()
        .map(|&node| graph.name(node).to_owned())
        .collect();
    if has(Trait::NoTopology) {
        // Without a graph there is no "what they call": what has data is what can be ranked.
        let with_data: BTreeSet<String> = series
            .iter()
            .map(|s| s.service.clone())
            .chain(alerts.iter().map(|a| a.service().to_owned()))
            .chain(candidate_names)
            .collect();
        candidate_names = with_data.into_iter().collect();
    }
    let normal_windows = if has(Trait::NoBaseline) {
        Vec::new()
    } else {
        vec![(times.first().copied().unwrap_or(window.0), anchor)]
    };

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
        candidates: candidate_names,
        series,
        edges,
        normal_windows,
        realism: report,
    })
}

/// Up to `count` distinct entries of `from`, drawn uniformly.
fn pick(rng: &mut ChaCha8Rng, from: &[usize], count: usize) -> BTreeSet<usize> {
    let mut pool = from.to_vec();
    let mut out = BTreeSet::new();
    while out.len() < count && !pool.is_empty() {
        let at = between(rng, 0, pool.len() as i64 - 1) as usize;
        out.insert(pool.swap_remove(at));
    }
    out
}

/// [`Trait::Releases`]: two to four rollouts of other candidates within half an hour either
/// side of the anchor (the last after it), and now and then one of the root an hour before.
/// All innocent: the only faulty release is a `deploy` fault's own.
fn releases(
    graph: &Graph<'_>,
    root: usize,
    candidates: &BTreeSet<usize>,
    anchor: i64,
    rng: &mut ChaCha8Rng,
) -> Vec<CaseChange> {
    let mut pool: Vec<usize> = candidates.iter().copied().filter(|&n| n != root).collect();
    if pool.is_empty() {
        pool = (0..graph.len()).filter(|&n| n != root).collect();
    }
    let mut out = Vec::new();
    let rollout = |node: usize, at: i64, rng: &mut ChaCha8Rng| {
        let name = graph.name(node);
        let (major, minor, patch) = (between(rng, 1, 4), between(rng, 0, 30), between(rng, 0, 20));
        CaseChange {
            service: name.to_owned(),
            kind: "deploy".to_owned(),
            at,
            description: format!(
                "rollout of {name} v{major}.{minor}.{patch} -> v{major}.{minor}.{}",
                patch + 1
            ),
        }
    };
    if pool.is_empty() {
        return out;
    }
    let count = between(rng, 2, 4);
    for k in 0..count {
        let node = pool[between(rng, 0, pool.len() as i64 - 1) as usize];
        let at = if k + 1 == count {
            anchor + between(rng, 60, 1800)
        } else {
            anchor + between(rng, -1800, 1800)
        };
        out.push(rollout(node, at, rng));
    }
    if chance(rng, 0.3) {
        let at = anchor - between(rng, 3000, 4200);
        out.push(rollout(root, at, rng));
    }
    out
}

/// Alerts the fault causes: the root's (unless it is silent) and its callers' symptoms (each
/// possibly missing), flapping now and then. The alerts of `silenced` services are returned
/// apart (second), as withheld.
fn fault_alerts(
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
