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
//! - **waiting_callers**: every candidate reports `client_wait_p99_ms`, how long it waits
//!   for what it calls (a service mesh's client-side latency): an affected caller's rises with
//!   the latency echo it feels, the root's own stays at its baseline. Half of the affected
//!   callers that wait (a latency echo, not only errors) also show a side effect of waiting in
//!   a resource of their own (retries burn CPU, error logging and retry queues write to disk,
//!   as strong as the wait), recorded as `side_effects`: a local-looking anomaly on a service
//!   that is only a symptom, as callers of a failing service show in real estates' syscall
//!   writes.
//! - **service_mesh** (cases with traces and logs): the call edges come from a service mesh's
//!   sidecars instead of spans (see `mesh`): per edge `calls`, `errors` and `callee_ms_p99`,
//!   the call's duration as its caller sees it (the callee's own `latency_p99_ms` plus the
//!   wire), and no delay on the wire measured. A root delayed at its interface that calls
//!   others sees its own latency rise by the delay of its calls out, as a real one does (its
//!   calls leave and return through the slowed interface), so the calls into it rise by more
//!   than its own latency did, by the delay on their wire: what a mesh-only estate such as
//!   Bookinfo leaves to tell it from its callee.
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
//!
//! This file holds the options, the simulated case and [`simulate`]; a case is put together in
//! `assemble`, its alert storm and unrelated changes drawn in `storm`.

mod alerts;
mod assemble;
mod disk;
mod faults;
mod graph;
pub mod history;
mod mesh;
mod metrics;
mod observe;
mod random;
#[cfg(test)]
mod ranking_tests;
mod realism;
#[cfg(test)]
mod realism_tests;
mod storm;
#[cfg(test)]
mod tests;
mod traces;
mod vocabulary;

use std::collections::BTreeMap;
use std::sync::Arc;

use rootcause_models::case::{Case, CaseAlert, CaseChange, EdgeSeries, Label, Series};
use rootcause_topology::Topology;

pub use alerts::{AlertCause, SimulatedAlert};
pub use disk::{load, write};
pub use faults::{Action, Affected, Fault};
pub use metrics::METRICS;
pub use realism::{Realism, RealismReport, Trait};

use assemble::simulate_case;
use faults::RootPicker;
use graph::Graph;

/// Salt of each case's realism generator, kept apart from its main one so that drawing traits
/// never changes what the clean simulator draws.
const REALISM: u64 = 0x7ea1_15e0;
/// Salt of each case's generator for the traits added after the first realism release (see
/// [`Realism`]'s draw): its own, so that adding them changed no case that does not draw them.
const LATE_REALISM: u64 = 0x1a7e_15e0;

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
        count: 1,
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
