//! Properties of the graph queries on random topologies, checked against naive definitions.

use std::collections::{BTreeSet, HashSet};

use proptest::prelude::*;

use crate::{Dependency, Format, Service, ServiceKind, Topology, to_json};

/// A random topology: `n` services named s0.., random distinct edges without self-loops.
fn topologies() -> impl Strategy<Value = Topology> {
    (2usize..24)
        .prop_flat_map(|n| (Just(n), prop::collection::vec((0..n, 0..n), 0..n * 3)))
        .prop_map(|(n, pairs)| {
            let mut topology = Topology::new();
            for i in 0..n {
                let kind = if i % 5 == 0 {
                    ServiceKind::Database
                } else {
                    ServiceKind::Service
                };
                topology
                    .add_service(Service::new(format!("s{i}"), kind))
                    .unwrap();
            }
            for (a, b) in pairs {
                // Duplicates and self-loops are refused, which is exactly what we want here.
                let _ = topology.add_dependency(Dependency::new(format!("s{a}"), format!("s{b}")));
            }
            topology
        })
}

fn names(topology: &Topology) -> Vec<String> {
    let mut names: Vec<String> = topology.services().map(|s| s.name.clone()).collect();
    names.sort();
    names
}

/// Services reachable from `start` following call edges, never entering `removed`.
fn reachable_down(topology: &Topology, start: &str, removed: Option<&str>) -> HashSet<String> {
    let mut seen = HashSet::from([start.to_owned()]);
    let mut stack = vec![start.to_owned()];
    while let Some(node) = stack.pop() {
        for dependency in topology.dependencies().filter(|d| d.caller == node) {
            if Some(dependency.callee.as_str()) != removed && seen.insert(dependency.callee.clone())
            {
                stack.push(dependency.callee.clone());
            }
        }
    }
    seen
}

proptest! {
    #[test]
    fn documents_round_trip(topology in topologies()) {
        let json = to_json(&topology.to_document());
        let again = Topology::parse(&json, Format::Json).unwrap();
        prop_assert_eq!(again.to_document(), topology.to_document());
        prop_assert_eq!(again.digest(), topology.digest());
    }

    #[test]
    fn blast_radius_is_everything_that_can_reach_the_service(topology in topologies()) {
        for target in names(&topology) {
            let expected: BTreeSet<String> = names(&topology)
                .into_iter()
                .filter(|s| *s != target && reachable_down(&topology, s, None).contains(&target))
                .collect();
            let radius = topology.blast_radius(&target).unwrap();
            let found: BTreeSet<String> = radius.iter().map(|r| r.service.to_owned()).collect();
            prop_assert_eq!(&found, &expected);
            prop_assert!(radius.windows(2).all(|w| w[0].hops <= w[1].hops), "nearest first");
            for within in topology.callers(&target, 2).unwrap() {
                prop_assert!(within.hops <= 2);
                prop_assert!(radius.contains(&within));
            }
        }
    }

    #[test]
    fn hop_distance_is_symmetric_and_agrees_with_the_neighbourhood(topology in topologies()) {
        let all = names(&topology);
        for a in &all {
            let around = topology.neighbourhood(a, usize::MAX).unwrap();
            for b in &all {
                let distance = topology.hop_distance(a, b).unwrap();
                prop_assert_eq!(distance, topology.hop_distance(b, a).unwrap());
                let listed = around.iter().find(|r| r.service == b).map(|r| r.hops);
                if a == b {
                    prop_assert_eq!(distance, Some(0));
                } else {
                    prop_assert_eq!(distance, listed);
                }
            }
        }
    }

    #[test]
    fn propagation_paths_are_simple_caller_chains(topology in topologies()) {
        let all = names(&topology);
        for root in &all {
            for impacted in &all {
                let paths = topology.propagation_paths(root, impacted, 4, 20).unwrap();
                for path in &paths {
                    prop_assert_eq!(path.first().copied(), Some(root.as_str()));
                    prop_assert_eq!(path.last().copied(), Some(impacted.as_str()));
                    prop_assert!(path.len() <= 5);
                    let distinct: HashSet<&&str> = path.iter().collect();
                    prop_assert_eq!(distinct.len(), path.len());
                    for pair in path.windows(2) {
                        // A fault moves from a callee to a service that calls it.
                        prop_assert!(topology.dependency(pair[1], pair[0]).is_some());
                    }
                }
                prop_assert!(paths.windows(2).all(|w| w[0].len() <= w[1].len()), "shortest first");
            }
        }
    }

    #[test]
    fn a_single_point_of_failure_really_cuts_its_dependents_off(topology in topologies()) {
        for spof in topology.single_points_of_failure() {
            for dependent in &spof.dependents {
                let cut_off = spof.entry_points.iter().any(|entry| {
                    reachable_down(&topology, entry, None).contains(*dependent)
                        && !reachable_down(&topology, entry, Some(spof.service)).contains(*dependent)
                });
                prop_assert!(cut_off, "{} does not cut {} off", spof.service, dependent);
            }
        }
    }
}

/// Connected components ignoring direction, without the `removed` service.
fn components(topology: &Topology, removed: Option<&str>) -> usize {
    let mut seen: HashSet<String> = HashSet::new();
    let mut count = 0;
    for start in names(topology) {
        if Some(start.as_str()) == removed || seen.contains(&start) {
            continue;
        }
        count += 1;
        let mut stack = vec![start.clone()];
        seen.insert(start);
        while let Some(node) = stack.pop() {
            for d in topology.dependencies() {
                let next = if d.caller == node {
                    &d.callee
                } else if d.callee == node {
                    &d.caller
                } else {
                    continue;
                };
                if Some(next.as_str()) != removed && seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
    }
    count
}

proptest! {
    #[test]
    fn articulation_points_are_exactly_the_services_whose_removal_splits_the_graph(
        topology in topologies()
    ) {
        let flagged: BTreeSet<String> = topology
            .single_points_of_failure()
            .into_iter()
            .filter(|s| s.articulation_point)
            .map(|s| s.service.to_owned())
            .collect();
        let whole = components(&topology, None);
        let expected: BTreeSet<String> = names(&topology)
            .into_iter()
            .filter(|s| components(&topology, Some(s)) > whole)
            .collect();
        prop_assert_eq!(flagged, expected);
    }
}
