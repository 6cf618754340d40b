//! Faults: where one strikes, what it does to the root's metrics, how it travels to callers,
//! and what resolved it.

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;
use rootcause_models::case::CaseChange;
use rootcause_topology::ServiceKind;
use serde::{Deserialize, Serialize};

use super::Options;
use super::alerts::Rule;
use super::graph::Graph;
use super::metrics::Effect;
use super::random::{between, chance, uniform, weighted};

/// A fault type the simulator injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// CPU contention: CPU use climbs to saturation, responses slow down.
    Cpu,
    /// A memory leak: memory use climbs steadily until the pod is under pressure or killed.
    Memory,
    /// Disk I/O saturation or a filling disk.
    Disk,
    /// Injected delay: the service answers slowly.
    Latency,
    /// Packet loss: requests fail or are retried, so errors and latency both rise.
    Loss,
    /// The service fails a share of its requests.
    Errors,
    /// A bad deploy: a rollout shortly before onset, then errors or latency.
    Deploy,
    /// A code fault (only in cases with traces and logs, see [`Fault::CODE`]): an operation
    /// throws part-way, so a log statement it printed on every request goes quiet while the
    /// service is called as often as before, its error spans rise moderately and callers see
    /// failed calls; usually nothing new is logged and its resource metrics stay flat.
    Exception,
    /// A code fault (only in cases with traces and logs): the service answers with a wrong
    /// result, so a new ERROR or WARN log statement fires tens of times a minute, its error
    /// spans rise and some callers log a new warning of their own; resource metrics stay flat.
    WrongReturn,
}

impl Fault {
    /// Every fault type.
    pub const ALL: [Fault; 7] = [
        Fault::Cpu,
        Fault::Memory,
        Fault::Disk,
        Fault::Latency,
        Fault::Loss,
        Fault::Errors,
        Fault::Deploy,
    ];

    /// The code faults, injected only where realism gives a case traces and logs (see
    /// [`super::Realism::code_faults`]): they show in nothing else. Not in [`Fault::ALL`], so
    /// fault mixes built from it (the default options') stay what they were.
    pub const CODE: [Fault; 2] = [Fault::Exception, Fault::WrongReturn];

    /// The name used in labels and files (`cpu`, `memory`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Cpu => "cpu",
            Fault::Memory => "memory",
            Fault::Disk => "disk",
            Fault::Latency => "latency",
            Fault::Loss => "loss",
            Fault::Errors => "errors",
            Fault::Deploy => "deploy",
            Fault::Exception => "exception",
            Fault::WrongReturn => "wrong_return",
        }
    }

    /// The fault type with this name.
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL
            .into_iter()
            .chain(Fault::CODE)
            .find(|f| f.as_str() == name)
    }

    /// Whether this fault can strike a component of this kind: only what the operator deploys
    /// can have a bad deploy, and a third party's CPU, memory or disk is not observed.
    fn strikes(self, kind: ServiceKind) -> bool {
        match self {
            Fault::Deploy | Fault::Exception | Fault::WrongReturn => {
                matches!(kind, ServiceKind::Service | ServiceKind::Gateway)
            }
            Fault::Cpu | Fault::Memory | Fault::Disk => kind != ServiceKind::External,
            Fault::Latency | Fault::Loss | Fault::Errors => true,
        }
    }
}

/// A remediation, by the id the runbook catalogue uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Restart the service's pods.
    Restart,
    /// Add replicas.
    ScaleOut,
    /// Roll back the last deploy or configuration change.
    Rollback,
    /// Switch to a replica or standby (datastores).
    Failover,
    /// Reject or throttle part of the traffic.
    ShedLoad,
    /// Stop calling the failing dependency and degrade gracefully.
    CircuitBreaker,
    /// Free disk space (rotate logs, purge, grow the volume).
    FreeDisk,
}

impl Action {
    /// Every action, the vocabulary of [`rootcause_models::case::Label::action`] for simulated
    /// cases.
    pub const ALL: [Action; 7] = [
        Action::Restart,
        Action::ScaleOut,
        Action::Rollback,
        Action::Failover,
        Action::ShedLoad,
        Action::CircuitBreaker,
        Action::FreeDisk,
    ];

    /// The id (`restart`, `scale_out`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Restart => "restart",
            Action::ScaleOut => "scale_out",
            Action::Rollback => "rollback",
            Action::Failover => "failover",
            Action::ShedLoad => "shed_load",
            Action::CircuitBreaker => "circuit_breaker",
            Action::FreeDisk => "free_disk",
        }
    }

    /// The action with this id.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// A service the fault reached: the root (0 hops) or a caller it propagated to. Ground truth of
/// the propagation, written to `case.json` for evaluations that score more than the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    /// The service.
    pub service: String,
    /// Calls between it and the root (0 for the root).
    pub hops: usize,
    /// Unix seconds when its metrics began to move.
    pub onset: i64,
    /// How strongly it was affected, 1 at the root, smaller further up.
    pub strength: f64,
}

/// One affected service while simulating.
#[derive(Debug, Clone)]
pub(super) struct Hit {
    pub node: usize,
    pub hops: usize,
    pub onset: i64,
    /// When its alerts (if any) would fire: never before those of the service it got the fault
    /// from, since an alert rule on a caller needs the callee's slowness to last first.
    pub detected: i64,
    pub strength: f64,
    pub effect: Effect,
    /// Rules its fault would fire, in firing order.
    pub rules: Vec<Rule>,
    /// The hit (index into [`Scenario::hits`]) it got the fault from; `None` for the root.
    pub parent: Option<usize>,
}

/// What happens in one case.
#[derive(Debug, Clone)]
pub(super) struct Scenario {
    /// The root first, then callers in the order the fault reached them.
    pub hits: Vec<Hit>,
    pub resolved_at: i64,
    pub action: Action,
    pub change: Option<CaseChange>,
    /// Share of the root's spans that fail at full strength, where it differs from the error
    /// ratio its metrics show (code faults).
    pub span_errors: Option<f64>,
}

/// Draws root causes: weighted toward components with callers, since a fault nobody calls
/// into is rarely what an incident is about.
pub(super) struct RootPicker {
    /// Cumulative weights per fault type, in [`Fault::ALL`] order.
    cumulative: Vec<Vec<f64>>,
    fault_mix: Vec<f64>,
}

impl RootPicker {
    pub fn new(graph: &Graph<'_>, options: &Options) -> RootPicker {
        let weight = |node: usize| {
            let callers = graph.callers[node].len();
            let base = if callers == 0 {
                0.15
            } else {
                1.0 + (1.0 + callers as f64).ln()
            };
            if graph.is_datastore(node) {
                base * 1.5
            } else {
                base
            }
        };
        let cumulative = Fault::ALL
            .iter()
            .map(|fault| {
                let mut total = 0.0;
                (0..graph.len())
                    .map(|node| {
                        if fault.strikes(graph.kind(node)) {
                            total += weight(node);
                        }
                        total
                    })
                    .collect()
            })
            .collect();
        let mut total = 0.0;
        let fault_mix = Fault::ALL
            .iter()
            .map(|fault| {
                total += options
                    .fault_mix
                    .iter()
                    .filter(|(f, _)| f == fault)
                    .map(|(_, w)| w.max(0.0))
                    .sum::<f64>();
                total
            })
            .collect();
        RootPicker {
            cumulative,
            fault_mix,
        }
    }

    /// A root that `fault` can strike, drawn by the same weights as [`RootPicker::pick`]; `None`
    /// if it can strike nothing here.
    pub fn root_for(&self, fault: Fault, rng: &mut ChaCha8Rng) -> Option<usize> {
        // Code faults strike what the operator deploys, like a bad deploy.
        let like = match fault {
            Fault::Exception | Fault::WrongReturn => Fault::Deploy,
            other => other,
        };
        let index = Fault::ALL.iter().position(|f| *f == like)?;
        weighted(rng, &self.cumulative[index])
    }

    /// A fault type by the mix and a root it can strike; `None` if nothing can be drawn. A
    /// fault that can strike no service of this topology falls back to latency, which can
    /// strike anything.
    pub fn pick(&self, rng: &mut ChaCha8Rng) -> Option<(Fault, usize)> {
        let fault = weighted(rng, &self.fault_mix).map_or(Fault::Latency, |i| Fault::ALL[i]);
        let index = Fault::ALL.iter().position(|f| *f == fault).unwrap_or(0);
        match weighted(rng, &self.cumulative[index]) {
            Some(root) => Some((fault, root)),
            None => {
                let latency = Fault::ALL.iter().position(|f| *f == Fault::Latency)?;
                weighted(rng, &self.cumulative[latency]).map(|root| (Fault::Latency, root))
            }
        }
    }
}

/// Builds the scenario of a `fault` on `root` starting at `onset`.
pub(super) fn scenario(
    graph: &Graph<'_>,
    fault: Fault,
    root: usize,
    onset: i64,
    options: &Options,
    rng: &mut ChaCha8Rng,
) -> Scenario {
    let severity = uniform(rng, 0.6, 1.0);
    let resolved_at = onset + between(rng, 900, 3600);
    let name = graph.name(root);
    let mut effect = Effect::between(onset, resolved_at, 30.0);
    let mut rules = Vec::new();
    let mut change = None;
    let mut span_errors = None;
    // When callers start to notice: a leak hurts only once memory is tight.
    let mut felt_from = onset;
    let mut detected = onset + between(rng, 30, 120);
    match fault {
        Fault::Cpu => {
            effect.ramp = 60.0;
            effect.cpu = 0.7 + 0.25 * severity;
            effect.latency = 0.5 + 1.5 * severity;
            rules.push(Rule::HighCpuUsage);
            sometimes(&mut rules, rng, 0.3, Rule::CpuThrottlingHigh);
            sometimes(&mut rules, rng, 0.3, Rule::HighLatency);
        }
        Fault::Memory => {
            effect.ramp = 120.0;
            effect.memory = 0.8 + 0.15 * severity;
            effect.latency = 0.5 * severity;
            effect.errors = 0.01 * severity;
            (felt_from, detected) = leak(&mut effect, onset, rng);
            rules.push(Rule::MemoryPressure);
            sometimes(&mut rules, rng, 0.3, Rule::KubePodCrashLooping);
        }
        Fault::Disk if chance(rng, 0.3) => {
            // A filling disk: space climbs until writes stall and fail.
            effect.ramp = 60.0;
            effect.space = 0.85 + 0.14 * severity;
            effect.latency = 0.3 + 0.7 * severity;
            effect.errors = 0.02 * severity;
            (felt_from, detected) = leak(&mut effect, onset, rng);
            rules.push(Rule::FilesystemAlmostFull);
        }
        Fault::Disk => {
            effect.ramp = 45.0;
            effect.disk = 3.0 + 7.0 * severity;
            effect.latency = 0.5 + severity;
            rules.push(Rule::DiskIoSaturation);
            sometimes(&mut rules, rng, 0.3, Rule::HighLatency);
        }
        Fault::Latency => {
            effect.ramp = 20.0;
            effect.latency = 2.0 + 8.0 * severity;
            rules.push(Rule::HighLatency);
        }
        Fault::Loss => {
            effect.ramp = 15.0;
            effect.errors = 0.05 + 0.25 * severity;
            effect.latency = 1.0 + 2.0 * severity;
            effect.traffic = 0.1 + 0.2 * severity;
            rules.push(Rule::PacketLoss);
            sometimes(&mut rules, rng, 0.5, Rule::HighErrorRate);
        }
        Fault::Errors => {
            effect.ramp = 20.0;
            effect.errors = 0.1 + 0.4 * severity;
            rules.push(Rule::HighErrorRate);
            sometimes(&mut rules, rng, 0.2, Rule::KubePodCrashLooping);
            if chance(rng, 0.35) {
                change = Some(CaseChange {
                    service: name.to_owned(),
                    kind: "config".to_owned(),
                    at: onset - between(rng, 30, 600),
                    description: format!("configuration change applied to {name}"),
                });
            }
        }
        Fault::Exception => {
            // Requests on one operation fail part-way: their spans end in error, but the
            // service's own error metric counts responses, most of which a handler still turns
            // into a 200, so it barely moves.
            effect.ramp = 20.0;
            effect.errors = 0.002 + 0.006 * severity;
            span_errors = Some(0.03 + 0.05 * severity);
            sometimes(&mut rules, rng, 0.5, Rule::HighErrorRate);
        }
        Fault::WrongReturn => {
            // A wrong answer is a successful response: the error metric barely moves, the spans
            // that log the failure do.
            effect.ramp = 20.0;
            effect.errors = 0.001 + 0.004 * severity;
            span_errors = Some(0.02 + 0.04 * severity);
            sometimes(&mut rules, rng, 0.5, Rule::HighErrorRate);
        }
        Fault::Deploy => {
            effect.ramp = 30.0;
            if chance(rng, 0.6) {
                effect.errors = 0.1 + 0.4 * severity;
                rules.push(Rule::HighErrorRate);
                sometimes(&mut rules, rng, 0.2, Rule::KubePodCrashLooping);
            } else {
                effect.latency = 1.5 + 4.0 * severity;
                rules.push(Rule::HighLatency);
            }
            let (major, minor, patch) =
                (between(rng, 1, 4), between(rng, 0, 30), between(rng, 0, 20));
            change = Some(CaseChange {
                service: name.to_owned(),
                kind: "deploy".to_owned(),
                at: onset - between(rng, 30, 300),
                description: format!(
                    "rollout of {name} v{major}.{minor}.{patch} -> v{major}.{minor}.{}",
                    patch + 1
                ),
            });
        }
    }
    let root_hit = Hit {
        node: root,
        hops: 0,
        onset,
        detected,
        strength: 1.0,
        effect,
        rules,
        parent: None,
    };
    let hits = propagate(graph, root_hit, fault, felt_from, resolved_at, options, rng);
    let action = action(graph, fault, root, change.is_some(), options, rng);
    Scenario {
        hits,
        resolved_at,
        action,
        change,
        span_errors,
    }
}

/// Makes the effect a leak that fills over 5 to 20 minutes (memory, disk space) and returns
/// (felt from, detected): callers notice once it is half full, and the alert comes 30 to 90 s
/// after that.
fn leak(effect: &mut Effect, onset: i64, rng: &mut ChaCha8Rng) -> (i64, i64) {
    effect.leak = uniform(rng, 300.0, 1200.0);
    let felt_from = onset + (effect.leak / 2.0) as i64;
    (felt_from, felt_from + between(rng, 30, 90))
}

/// Adds `rule` to the root's alerts with probability `p`: the alerts a fault trips only in
/// some cases.
fn sometimes(rules: &mut Vec<Rule>, rng: &mut ChaCha8Rng, p: f64, rule: Rule) {
    if chance(rng, p) {
        rules.push(rule);
    }
}

/// Spreads the fault against the call arrow, breadth first: a caller of an affected service is
/// affected with a probability that decays with its distance from the root, a hop delay later,
/// and less strongly. Callees are never reached: a fault does not travel down the arrow.
fn propagate(
    graph: &Graph<'_>,
    root: Hit,
    fault: Fault,
    felt_from: i64,
    resolved_at: i64,
    options: &Options,
    rng: &mut ChaCha8Rng,
) -> Vec<Hit> {
    let root_node = root.node;
    let root_effect = root.effect;
    // What callers see of the root: slowness, and failures when the root fails requests (a
    // datastore that stalls also makes its callers' queries time out).
    let errors_fault = matches!(
        fault,
        Fault::Loss | Fault::Errors | Fault::Exception | Fault::WrongReturn
    ) || (fault == Fault::Deploy && root_effect.errors > 0.0);
    let datastore = graph.is_datastore(root_node);
    let echo_latency = if root_effect.latency > 0.0 {
        root_effect.latency.max(0.8)
    } else {
        0.3
    };
    let echo_errors = root_effect.errors.max(0.05);

    let mut hits = vec![root];
    let mut reached = vec![false; graph.len()];
    reached[root_node] = true;
    let mut queue = VecDeque::from([0usize]);
    while let Some(at) = queue.pop_front() {
        let (node, hops) = (hits[at].node, hits[at].hops);
        if hops >= options.max_hops {
            continue;
        }
        let p = options.propagation * options.propagation_decay.powi(hops as i32);
        let from = if hops == 0 { felt_from } else { hits[at].onset };
        for &caller in &graph.callers[node] {
            if reached[caller] || hits.len() > options.max_affected {
                continue;
            }
            if !chance(rng, p) {
                continue;
            }
            reached[caller] = true;
            let (low, high) = options.hop_delay;
            let onset = from + between(rng, low.max(1), high.max(1));
            let detected =
                (onset + between(rng, 15, 60)).max(hits[at].detected + between(rng, 5, 30));
            let strength = hits[at].strength * uniform(rng, 0.5, 0.9);
            let errors = errors_fault || (datastore && chance(rng, 0.5)) || chance(rng, 0.15);
            let latency = !errors || root_effect.latency > 0.0 || chance(rng, 0.4);
            let mut effect = Effect::between(
                onset,
                resolved_at + (hops as i64 + 1) * between(rng, 15, 60),
                30.0,
            );
            let mut rules = Vec::new();
            if latency {
                effect.latency = echo_latency * strength;
                rules.push(Rule::HighLatency);
            }
            if errors {
                effect.errors = echo_errors * strength;
                rules.push(Rule::HighErrorRate);
            }
            hits.push(Hit {
                node: caller,
                hops: hops + 1,
                onset,
                detected,
                strength,
                effect,
                rules,
                parent: Some(at),
            });
            queue.push_back(hits.len() - 1);
        }
    }
    hits
}

/// The action that resolved the fault: usually the natural one, otherwise a plausible other
/// (operators do not always pick the textbook fix, and a learned model must cope).
fn action(
    graph: &Graph<'_>,
    fault: Fault,
    root: usize,
    changed: bool,
    options: &Options,
    rng: &mut ChaCha8Rng,
) -> Action {
    let datastore = graph.is_datastore(root);
    // Many callers: shedding load protects them all; few: each breaks its own circuit.
    let busy = graph.callers[root].len() >= 3;
    let (natural, others): (Action, &[Action]) = match fault {
        Fault::Cpu => (Action::ScaleOut, &[Action::Restart, Action::ShedLoad]),
        Fault::Memory => (Action::Restart, &[Action::ScaleOut, Action::Rollback]),
        Fault::Disk => (Action::FreeDisk, &[Action::Restart, Action::Failover]),
        Fault::Latency | Fault::Loss if datastore => {
            (Action::Failover, &[Action::Restart, Action::ShedLoad])
        }
        Fault::Latency | Fault::Loss if busy => {
            (Action::ShedLoad, &[Action::Restart, Action::ScaleOut])
        }
        Fault::Latency | Fault::Loss => {
            (Action::CircuitBreaker, &[Action::Restart, Action::ScaleOut])
        }
        Fault::Errors if changed => (Action::Rollback, &[Action::Restart]),
        Fault::Errors => (Action::Restart, &[Action::Rollback, Action::CircuitBreaker]),
        Fault::Deploy => (Action::Rollback, &[Action::Restart]),
        // A wrong result is a code path that is wrong: only the previous version fixes it.
        Fault::WrongReturn => (Action::Rollback, &[Action::Restart]),
        // An exception is often bad state (a poisoned cache, a stuck connection) that a restart
        // clears; when it is not, the operator rolls back.
        Fault::Exception => (Action::Restart, &[Action::Rollback]),
    };
    if chance(rng, options.natural_action) {
        natural
    } else {
        others[between(rng, 0, others.len() as i64 - 1) as usize]
    }
}
