//! Realism traits: the ways public fault data from other estates is messier than the clean
//! simulator, each drawn per case with its own probability (see the module documentation of
//! [`crate::simulator`] for what each stands for).

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::random::chance;

/// One way a case departs from the clean simulator. See the module documentation of
/// [`crate::simulator`] for the real-world pattern behind each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trait {
    /// Metrics every 300 s over 2 h before and 15 min after the anchor.
    Coarse,
    /// A few low-traffic candidates with mostly missing, heavy-tailed metric samples.
    Sparse,
    /// Some services report per instance (pod, shard); the fault hits one root instance.
    SubResources,
    /// Another metric vocabulary (CloudWatch-, Azure- or APM-like names and units).
    UnseenNames,
    /// No dependency graph.
    NoTopology,
    /// Data begins at most 120 s before the anchor, no normal windows.
    NoBaseline,
    /// Several innocent releases around the anchor.
    Releases,
    /// Intermediate services on propagation paths raise no alerts.
    SilentIntermediaries,
    /// Trace, log and call-edge statistics beside the metrics.
    TracesLogs,
    /// Services report how long they wait for what they call (client-side latency), and some
    /// affected callers show side effects of waiting (retries, error logging) in a resource.
    WaitingCallers,
    /// Call edges as a service mesh's sidecars report them: each call's duration at p99 as its
    /// caller sees it, no delay on the wire measured.
    ServiceMesh,
}

impl Trait {
    /// Every trait, in the order they are drawn and listed.
    pub const ALL: [Trait; 11] = [
        Trait::Coarse,
        Trait::Sparse,
        Trait::SubResources,
        Trait::UnseenNames,
        Trait::NoTopology,
        Trait::NoBaseline,
        Trait::Releases,
        Trait::SilentIntermediaries,
        Trait::TracesLogs,
        Trait::WaitingCallers,
        Trait::ServiceMesh,
    ];

    /// The snake_case name, as written to `case.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trait::Coarse => "coarse",
            Trait::Sparse => "sparse",
            Trait::SubResources => "sub_resources",
            Trait::UnseenNames => "unseen_names",
            Trait::NoTopology => "no_topology",
            Trait::NoBaseline => "no_baseline",
            Trait::Releases => "releases",
            Trait::SilentIntermediaries => "silent_intermediaries",
            Trait::TracesLogs => "traces_logs",
            Trait::WaitingCallers => "waiting_callers",
            Trait::ServiceMesh => "service_mesh",
        }
    }

    /// The trait with this name.
    pub fn from_name(name: &str) -> Option<Trait> {
        Trait::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// Traits added after the first realism release, each drawn (and deciding what it does) from a
/// generator of its own, the one at its position in the array [`Realism::draw`] takes.
pub(super) const LATE_TRAITS: [Trait; 2] = [Trait::WaitingCallers, Trait::ServiceMesh];

/// The generators of the [`LATE_TRAITS`] of case `index`, keyed from `salt`: the first keeps
/// the key it had when it was the only late trait, so its cases stayed as they were.
pub(super) fn late_generators(seed: u64, index: u64, salt: u64) -> [ChaCha8Rng; LATE_TRAITS.len()] {
    [
        super::random::derived(seed, &[index, salt]),
        super::random::derived(seed, &[index, salt, 1]),
    ]
}

/// How often each realism trait appears: one probability per trait, each case drawing its own
/// traits independently (from a generator of its own, so that the draws never disturb the rest
/// of the case's randomness). Probabilities outside `[0, 1]` are clamped.
///
/// [`Realism::none()`] is the clean simulator, byte for byte what it produced before realism
/// existed; [`Realism::default()`] a realistic mix for training.
#[derive(Debug, Clone, PartialEq)]
pub struct Realism {
    /// Probability of [`Trait::Coarse`].
    pub coarse: f64,
    /// Probability of [`Trait::Sparse`].
    pub sparse: f64,
    /// Probability of [`Trait::SubResources`].
    pub sub_resources: f64,
    /// Probability of [`Trait::UnseenNames`].
    pub unseen_names: f64,
    /// Probability of [`Trait::NoTopology`].
    pub no_topology: f64,
    /// Probability of [`Trait::NoBaseline`].
    pub no_baseline: f64,
    /// Probability of [`Trait::Releases`].
    pub releases: f64,
    /// Probability of [`Trait::SilentIntermediaries`].
    pub silent_intermediaries: f64,
    /// Probability of [`Trait::TracesLogs`].
    pub traces_logs: f64,
    /// Probability of [`Trait::WaitingCallers`].
    pub waiting_callers: f64,
    /// Probability of [`Trait::ServiceMesh`] (it changes only cases with
    /// [`Trait::TracesLogs`], the ones with call edges).
    pub service_mesh: f64,
    /// Probability that a case with [`Trait::TracesLogs`] gets a code fault
    /// ([`super::Fault::Exception`] or [`super::Fault::WrongReturn`], equally likely) instead of
    /// the fault drawn from the mix: code faults show only in traces and logs, so they need them.
    pub code_faults: f64,
    /// Probability that a datastore (database, cache, queue) among the candidates of a case
    /// with [`Trait::TracesLogs`] exports nothing of its own (a managed database, a hosted
    /// queue): no metrics, spans or logs, no alert of its own; it shows only in its callers'
    /// client spans, the call-edge series into it.
    pub unexported: f64,
}

impl Realism {
    /// No trait ever: the clean simulator, with the same bytes for the same seed as before
    /// realism existed.
    pub fn none() -> Realism {
        Realism {
            coarse: 0.0,
            sparse: 0.0,
            sub_resources: 0.0,
            unseen_names: 0.0,
            no_topology: 0.0,
            no_baseline: 0.0,
            releases: 0.0,
            silent_intermediaries: 0.0,
            traces_logs: 0.0,
            waiting_callers: 0.0,
            service_mesh: 0.0,
            code_faults: 0.0,
            unexported: 0.0,
        }
    }

    /// Every trait in every case (and a code fault in half of them): for tests of the data
    /// format and of rankers under the worst mess.
    pub fn all() -> Realism {
        Realism {
            coarse: 1.0,
            sparse: 1.0,
            sub_resources: 1.0,
            unseen_names: 1.0,
            no_topology: 1.0,
            no_baseline: 1.0,
            releases: 1.0,
            silent_intermediaries: 1.0,
            traces_logs: 1.0,
            waiting_callers: 1.0,
            service_mesh: 1.0,
            code_faults: 0.5,
            // Not here: it removes whole services, and the format tests need every kind of
            // series this mess makes (per-instance ones of a datastore among them).
            unexported: 0.0,
        }
    }

    /// Only `one` trait, in every case (no code faults): to test what a ranker does with it.
    pub fn only(one: Trait) -> Realism {
        let mut realism = Realism::none();
        realism.set(one, 1.0);
        realism
    }

    /// The probability of `one`.
    pub fn probability(&self, one: Trait) -> f64 {
        match one {
            Trait::Coarse => self.coarse,
            Trait::Sparse => self.sparse,
            Trait::SubResources => self.sub_resources,
            Trait::UnseenNames => self.unseen_names,
            Trait::NoTopology => self.no_topology,
            Trait::NoBaseline => self.no_baseline,
            Trait::Releases => self.releases,
            Trait::SilentIntermediaries => self.silent_intermediaries,
            Trait::TracesLogs => self.traces_logs,
            Trait::WaitingCallers => self.waiting_callers,
            Trait::ServiceMesh => self.service_mesh,
        }
    }

    /// Sets the probability of `one`.
    pub fn set(&mut self, one: Trait, probability: f64) {
        let slot = match one {
            Trait::Coarse => &mut self.coarse,
            Trait::Sparse => &mut self.sparse,
            Trait::SubResources => &mut self.sub_resources,
            Trait::UnseenNames => &mut self.unseen_names,
            Trait::NoTopology => &mut self.no_topology,
            Trait::NoBaseline => &mut self.no_baseline,
            Trait::Releases => &mut self.releases,
            Trait::SilentIntermediaries => &mut self.silent_intermediaries,
            Trait::TracesLogs => &mut self.traces_logs,
            Trait::WaitingCallers => &mut self.waiting_callers,
            Trait::ServiceMesh => &mut self.service_mesh,
        };
        *slot = probability;
    }

    /// Whether no trait and no code fault can ever be drawn.
    pub fn is_none(&self) -> bool {
        Trait::ALL.iter().all(|&t| self.probability(t) <= 0.0)
    }

    /// The traits of one case, in [`Trait::ALL`] order: one draw per trait, always all of them,
    /// so that changing one probability does not reshuffle the others. Each of the
    /// [`LATE_TRAITS`] is drawn from its own generator in `late` (same position), so that
    /// adding it left every case that does not draw it as it was.
    pub(super) fn draw(
        &self,
        rng: &mut ChaCha8Rng,
        late: &mut [ChaCha8Rng; LATE_TRAITS.len()],
    ) -> Vec<Trait> {
        Trait::ALL
            .into_iter()
            .filter(|&t| {
                let from = match LATE_TRAITS.iter().position(|&l| l == t) {
                    Some(k) => &mut late[k],
                    None => &mut *rng,
                };
                chance(from, self.probability(t))
            })
            .collect()
    }
}

impl Default for Realism {
    /// A realistic mix, about one case in three or four showing each trait, so that most cases
    /// have two or three and a few none: `coarse` 0.2, `sparse` 0.3, `sub_resources` 0.3,
    /// `unseen_names` 0.25, `no_topology` 0.2, `no_baseline` 0.2, `releases` 0.35,
    /// `silent_intermediaries` 0.3, `traces_logs` 0.4, `waiting_callers` 0.3, `service_mesh`
    /// 0.3 (of the cases with traces and logs, the ones it changes) and, among cases
    /// with traces and logs, `code_faults` 0.3 and `unexported` 0.3. The data-destroying traits
    /// (coarse windows, no baseline, no topology) are the rarer ones: a ranker must cope with
    /// them, not be trained mostly on them.
    fn default() -> Realism {
        Realism {
            coarse: 0.2,
            sparse: 0.3,
            sub_resources: 0.3,
            unseen_names: 0.25,
            no_topology: 0.2,
            no_baseline: 0.2,
            releases: 0.35,
            silent_intermediaries: 0.3,
            traces_logs: 0.4,
            waiting_callers: 0.3,
            service_mesh: 0.3,
            code_faults: 0.3,
            unexported: 0.3,
        }
    }
}

/// What realism did to one case: its traits and the details a test or a debugging session needs
/// (which services are sparse, which instance the fault hit, ...). Written to `case.json` as
/// `realism` when the case has a trait; rankers never see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RealismReport {
    /// The traits the case drew, in [`Trait::ALL`] order.
    pub traits: Vec<Trait>,
    /// [`Trait::Sparse`]: the low-traffic services, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sparse: Vec<String>,
    /// [`Trait::SubResources`]: instance count per service reporting per instance.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub instances: BTreeMap<String, usize>,
    /// [`Trait::SubResources`]: the root instance the fault hit, when the root reports per
    /// instance (`<service>-<i>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faulty_instance: Option<String>,
    /// [`Trait::UnseenNames`]: the vocabulary (`cloudwatch`, `azure`, `apm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocabulary: Option<String>,
    /// [`Trait::SilentIntermediaries`]: the affected services whose alerts were withheld.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub silenced: Vec<String>,
    /// [`Trait::TracesLogs`]: the fault sits on the root's network path (a delay or loss at its
    /// interface), so calls into and out of it slow down while its own spans do not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub network_fault: bool,
    /// [`super::Fault::Exception`]: the root's log template that went quiet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_template: Option<String>,
    /// [`Trait::WaitingCallers`]: the affected callers whose waiting shows in a resource of
    /// their own (retries, error logging), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub side_effects: Vec<String>,
    /// [`Trait::ServiceMesh`]: how many call edges the mesh reports (0 when the case has no
    /// call edges to report).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mesh_edges: usize,
    /// [`Realism::unexported`]: the datastores that export nothing of their own, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unexported: Vec<String>,
    /// Log templates that appeared with the fault, by service (the root's own failure path for
    /// [`super::Fault::WrongReturn`], its callers' symptoms, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub new_templates: BTreeMap<String, Vec<String>>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl RealismReport {
    /// Whether the case has `one`.
    pub fn has(&self, one: Trait) -> bool {
        self.traits.contains(&one)
    }
}
