//! What the ranker must do with each realism trait: the cold-start scorer (no training, so
//! nothing here can have been learned from these cases) on simulated cases that have the trait,
//! against BARO (the reference ranker), chance, and the trait's own trap (a sparse component, an
//! innocent release, a silent intermediary).
//!
//! Each test simulates its own cases on a generated estate, so a change to the ranker that
//! breaks one mechanism fails the test named after it. Floors sit below what the ranker reaches
//! (printed by each test) and well above chance.

use std::sync::Arc;

use rootcause_models::baselines::Baro;
use rootcause_models::case::Case;
use rootcause_models::cold_start::ColdStart;
use rootcause_models::ranker::{Ranker, Ranking};
use rootcause_topology::Topology;

use super::realism::{Realism, Trait};
use super::{Options, SimulatedCase, simulate};
use crate::synthetic::{self, Shape};

/// Cases per test: enough for a floor to mean something, few enough for a debug build.
const CASES: usize = 40;

fn estate() -> Topology {
    Topology::from_document(synthetic::generate(&Shape::with_services(40, 5)))
        .expect("generated topologies are valid")
}

/// Simulated cases with `realism`, each with what the simulator knows about it.
fn cases(realism: Realism, seed: u64) -> Vec<(SimulatedCase, Case)> {
    cases_of(realism, seed, CASES)
}

/// `count` simulated cases with `realism`.
fn cases_of(realism: Realism, seed: u64, count: usize) -> Vec<(SimulatedCase, Case)> {
    let topology = estate();
    let shared = Arc::new(topology.clone());
    let options = Options {
        cases: count,
        seed,
        realism,
        ..Options::default()
    };
    simulate(&topology, "realism", &options)
        .into_iter()
        .map(|sim| {
            let case = sim.clone().into_case(Some(shared.clone()));
            (sim, case)
        })
        .collect()
}

/// Share of `cases` whose root cause `ranker` puts first (ties against it).
fn ac1(ranker: &dyn Ranker, cases: &[(SimulatedCase, Case)]) -> f64 {
    let hits = cases
        .iter()
        .filter(|(sim, case)| first(&ranker.rank(case)) == Some(sim.root_cause.as_str()))
        .count();
    hits as f64 / cases.len() as f64
}

/// The first service of a ranking, unless it ties with the second.
fn first(ranking: &Ranking) -> Option<&str> {
    match ranking.services() {
        [a, b, ..] if a.score == b.score => None,
        [a, ..] => Some(a.service.as_str()),
        [] => None,
    }
}

fn chance(cases: &[(SimulatedCase, Case)]) -> f64 {
    cases
        .iter()
        .map(|(_, c)| 1.0 / c.candidates.len().max(1) as f64)
        .sum::<f64>()
        / cases.len() as f64
}

/// Cold-start AC@1 on cases with `only` the trait, printed beside BARO and chance; asserts
/// the cold-start is at least `floor` and at least BARO's.
fn holds_up(name: &str, realism: Realism, seed: u64, floor: f64) -> Vec<(SimulatedCase, Case)> {
    holds_up_on(name, cases(realism, seed), floor)
}

/// [`holds_up`] on the given cases.
fn holds_up_on(
    name: &str,
    cases: Vec<(SimulatedCase, Case)>,
    floor: f64,
) -> Vec<(SimulatedCase, Case)> {
    let (ours, baro) = (ac1(&ColdStart::default(), &cases), ac1(&Baro, &cases));
    println!(
        "{name}: cold-start AC@1 {ours:.3}, BARO {baro:.3}, chance {:.3} over {} cases",
        chance(&cases),
        cases.len()
    );
    assert!(ours >= floor, "{name}: AC@1 {ours:.3} below {floor}");
    assert!(
        ours >= baro,
        "{name}: AC@1 {ours:.3} below BARO's {baro:.3}"
    );
    cases
}

#[test]
fn coarse_five_minute_metrics_with_few_abnormal_samples_still_rank() {
    holds_up("coarse", Realism::only(Trait::Coarse), 21, 0.6);
}

#[test]
fn a_sparse_component_does_not_outrank_a_well_observed_cause_because_its_few_samples_jumped() {
    let cases = holds_up("sparse", Realism::only(Trait::Sparse), 22, 0.5);
    let sparse_first = cases
        .iter()
        .filter(|(sim, case)| {
            first(&ColdStart::default().rank(case))
                .is_some_and(|top| sim.realism.sparse.iter().any(|s| s == top))
        })
        .count();
    println!("sparse: a sparse component first in {sparse_first} of {CASES} cases");
    assert!(
        sparse_first * 10 <= CASES,
        "a sparse component ranked first in {sparse_first} of {CASES} cases"
    );
}

#[test]
fn a_fault_on_one_instance_of_several_points_at_its_service() {
    holds_up("sub_resources", Realism::only(Trait::SubResources), 23, 0.6);
}

#[test]
fn metric_names_no_classifier_has_seen_still_rank() {
    holds_up("unseen_names", Realism::only(Trait::UnseenNames), 24, 0.6);
}

#[test]
fn without_a_topology_the_evidence_alone_ranks() {
    holds_up("no_topology", Realism::only(Trait::NoTopology), 25, 0.6);
}

#[test]
fn without_a_normal_baseline_change_inside_the_window_ranks() {
    holds_up("no_baseline", Realism::only(Trait::NoBaseline), 26, 0.5);
}

#[test]
fn an_innocent_release_does_not_take_the_blame_and_the_faulty_one_does() {
    let cases = holds_up("releases", Realism::only(Trait::Releases), 27, 0.6);
    let (mut innocent_first, mut deploy, mut deploy_found) = (0, 0, 0);
    for (sim, case) in &cases {
        let ranking = ColdStart::default().rank(case);
        let top = first(&ranking);
        let innocent = case
            .changes
            .iter()
            .filter(|c| c.service != sim.root_cause)
            .any(|c| Some(c.service.as_str()) == top);
        innocent_first += usize::from(innocent);
        if sim.fault == super::Fault::Deploy {
            deploy += 1;
            deploy_found += usize::from(top == Some(sim.root_cause.as_str()));
        }
    }
    println!(
        "releases: an innocent release's service first in {innocent_first} of {CASES}; \
         bad deploys found first in {deploy_found} of {deploy}"
    );
    assert!(
        innocent_first * 5 <= CASES,
        "{innocent_first} innocent releases blamed"
    );
    assert!(deploy == 0 || deploy_found * 2 >= deploy);
}

#[test]
fn a_silent_intermediary_ranks_below_the_cause_beneath_it() {
    let cases = holds_up(
        "silent_intermediaries",
        Realism::only(Trait::SilentIntermediaries),
        28,
        0.6,
    );
    let (mut with_silent, mut cause_above) = (0, 0);
    for (sim, case) in &cases {
        if sim.realism.silenced.is_empty() {
            continue;
        }
        with_silent += 1;
        let ranking = ColdStart::default().rank(case);
        let position = |name: &str| ranking.names().iter().position(|n| n == name);
        let root = position(&sim.root_cause);
        if sim
            .realism
            .silenced
            .iter()
            .all(|s| matches!((root, position(s)), (Some(r), Some(p)) if r < p))
        {
            cause_above += 1;
        }
    }
    println!("silent intermediaries: the cause above them in {cause_above} of {with_silent} cases");
    assert!(with_silent > 0 && cause_above * 10 >= with_silent * 7);
}

#[test]
fn code_faults_seen_only_in_traces_and_logs_are_found() {
    let mut realism = Realism::only(Trait::TracesLogs);
    realism.code_faults = 1.0;
    let cases = holds_up("code faults", realism, 29, 0.5);
    assert!(
        cases
            .iter()
            .all(|(sim, _)| super::Fault::CODE.contains(&sim.fault))
    );
}

#[test]
fn a_datastore_that_exports_nothing_is_found_through_the_calls_into_it() {
    let mut realism = Realism::only(Trait::TracesLogs);
    realism.unexported = 1.0;
    // Datastores are few among the roots: more cases, to find enough whose root is dark.
    let all = cases_of(realism, 30, 4 * CASES);
    // What a dark datastore leaves: the calls into it, nothing of its own.
    for (sim, case) in &all {
        for dark in &sim.realism.unexported {
            assert!(
                !case.series.iter().any(|s| &s.service == dark),
                "{}",
                sim.id
            );
            assert!(
                !sim.alerts.iter().any(|a| a.service() == dark),
                "{}",
                sim.id
            );
            assert!(case.edges.iter().any(|e| &e.callee == dark), "{}", sim.id);
        }
    }
    let dark: Vec<(SimulatedCase, Case)> = all
        .into_iter()
        .filter(|(sim, _)| sim.realism.unexported.contains(&sim.root_cause))
        .collect();
    let served = rootcause_models::rankers::default_ranker();
    let (cold, learned, baro) = (
        ac1(&ColdStart::default(), &dark),
        ac1(served.as_ref(), &dark),
        ac1(&Baro, &dark),
    );
    println!(
        "unexported roots: cold-start AC@1 {cold:.3}, served {learned:.3}, BARO {baro:.3}, \
         chance {:.3} over {} cases",
        chance(&dark),
        dark.len()
    );
    // A known weakness, held here so that it only improves: a dark datastore's calls rise with
    // those of every service its fault spreads to, and the spread the evidence borrows across
    // the incident's call edges (`Moderation`) then drowns the rise (cold-start 0.258, served
    // 0.355 when set and 0.258 since the bundled model keeps to the cold-start prior; BARO,
    // which reads no edges, 0).
    assert!(
        dark.len() >= 20,
        "{} cases with an unexported root",
        dark.len()
    );
    let floor = 5.0 * chance(&dark);
    assert!(cold >= 0.2 && cold >= floor, "cold-start AC@1 {cold:.3}");
    assert!(
        learned >= 0.25 && learned > baro,
        "served AC@1 {learned:.3}"
    );
}

#[test]
fn a_caller_waiting_on_the_cause_does_not_take_the_blame_for_its_side_effects() {
    let cases = holds_up(
        "waiting_callers",
        Realism::only(Trait::WaitingCallers),
        31,
        0.6,
    );
    let (mut with_side_effects, mut blamed) = (0, 0);
    for (sim, case) in &cases {
        if sim.realism.side_effects.is_empty() {
            continue;
        }
        with_side_effects += 1;
        let ranking = ColdStart::default().rank(case);
        if first(&ranking).is_some_and(|top| sim.realism.side_effects.iter().any(|s| s == top)) {
            blamed += 1;
        }
    }
    println!(
        "waiting callers: a caller with side effects first in {blamed} of {with_side_effects} cases"
    );
    assert!(with_side_effects > 0 && blamed * 5 <= with_side_effects);
}

#[test]
fn a_delay_at_an_interface_is_told_from_a_slow_callee_with_mesh_metrics_alone() {
    let mut realism = Realism::only(Trait::TracesLogs);
    realism.service_mesh = 1.0;
    // Delays at an interface are a few of the faults: more cases, to find enough of them.
    let all = holds_up_on("service_mesh", cases_of(realism, 32, 4 * CASES), 0.6);
    for (sim, case) in &all {
        assert_eq!(
            case.edges.is_empty(),
            sim.realism.mesh_edges == 0,
            "{}",
            sim.id
        );
        assert!(
            !case.edges.iter().any(|e| e.name == "network_ms"),
            "{}: a mesh measures no delay on the wire",
            sim.id
        );
    }
    // The trap: a delay at the interface of a root that calls others raises its own latency
    // and the calls out of it, so its callee looks slow from its side.
    let delayed: Vec<(SimulatedCase, Case)> = all
        .into_iter()
        .filter(|(sim, case)| {
            sim.realism.network_fault
                && case
                    .edges
                    .iter()
                    .any(|e| e.caller == sim.root_cause && e.name == "calls")
        })
        .collect();
    let found = ac1(&ColdStart::default(), &delayed);
    println!(
        "service_mesh: a delay at the interface of a root that calls others, cold-start AC@1 \
         {found:.3}, BARO {:.3}, chance {:.3} over {} cases",
        ac1(&Baro, &delayed),
        chance(&delayed),
        delayed.len()
    );
    assert!(
        delayed.len() >= 8,
        "{} delayed roots with calls out",
        delayed.len()
    );
    assert!(found >= 0.6, "cold-start AC@1 {found:.3}");
}
