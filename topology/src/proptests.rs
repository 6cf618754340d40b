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
    fn propagation_paths_are_every_simple_caller_chain_shortest_first(topology in topologies()) {
        let all = names(&topology);
        for root in &all {
            for impacted in &all {
                let found = topology.propagation_paths(root, impacted, 4, 100_000).unwrap();
                prop_assert!(found.complete);
                let expected = naive_paths(&topology, root, impacted, 4);
                let got: BTreeSet<Vec<String>> = found
                    .paths
                    .iter()
                    .map(|p| p.iter().map(|s| s.to_string()).collect())
                    .collect();
                prop_assert_eq!(got.len(), found.paths.len(), "no path twice");
                prop_assert_eq!(&got, &expected);
                prop_assert!(found.paths.windows(2).all(|w| w[0].len() <= w[1].len()), "shortest first");
                // A limit keeps the first paths of the full answer.
                let limited = topology.propagation_paths(root, impacted, 4, 3).unwrap();
                let keep = found.paths.len().min(3);
                prop_assert_eq!(&limited.paths[..], &found.paths[..keep]);
            }
        }
    }

    #[test]
    fn single_points_of_failure_are_exactly_the_services_that_cut_entry_points_off(
        topology in topologies()
    ) {
        let spofs = topology.single_points_of_failure();
        for service in names(&topology) {
            let mut best = 0;
            let mut cutting_entries = Vec::new();
            for entry in topology.entry_points() {
                if entry == service {
                    continue;
                }
                let with = reachable_down(&topology, entry, None);
                if !with.contains(&service) {
                    continue;
                }
                let without = reachable_down(&topology, entry, Some(&service));
                let cut = with.len() - without.len() - 1;
                if cut > 0 {
                    cutting_entries.push(entry.to_owned());
                    best = best.max(cut);
                }
            }
            let listed = spofs.iter().find(|s| s.service == service);
            match listed {
                Some(spof) => {
                    prop_assert_eq!(&spof.entry_points, &cutting_entries);
                    prop_assert_eq!(spof.cut_off, best);
                    prop_assert_eq!(spof.examples.len(), best.min(crate::SPOF_EXAMPLES));
                    for example in &spof.examples {
                        let cut_from_some_entry = cutting_entries.iter().any(|entry| {
                            !reachable_down(&topology, entry, Some(&service)).contains(example)
                        });
                        prop_assert!(cut_from_some_entry, "{} is not cut off by {}", example, service);
                    }
                }
                None => prop_assert!(cutting_entries.is_empty(), "{} is missing", service),
            }
        }
    }
}

/// Every simple path of at most `max_edges` call edges from `impacted` down to `root`, listed
/// root first (the naive definition).
fn naive_paths(
    topology: &Topology,
    root: &str,
    impacted: &str,
    max_edges: usize,
) -> BTreeSet<Vec<String>> {
    fn walk(
        topology: &Topology,
        path: &mut Vec<String>,
        root: &str,
        max_edges: usize,
        out: &mut BTreeSet<Vec<String>>,
    ) {
        let last = path.last().unwrap().clone();
        if last == root {
            out.insert(path.iter().rev().cloned().collect());
            return;
        }
        if path.len() > max_edges {
            return;
        }
        for dependency in topology.dependencies().filter(|d| d.caller == last) {
            if !path.contains(&dependency.callee) {
                path.push(dependency.callee.clone());
                walk(topology, path, root, max_edges, out);
                path.pop();
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(
        topology,
        &mut vec![impacted.to_owned()],
        root,
        max_edges,
        &mut out,
    );
    out
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
