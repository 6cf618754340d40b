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
    let topology = estate();
    let shared = Arc::new(topology.clone());
    let options = Options {
        cases: CASES,
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
    let cases = cases(realism, seed);
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
