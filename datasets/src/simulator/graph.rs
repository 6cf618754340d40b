//! The topology as the simulator walks it: services numbered in name order, with sorted caller
//! and callee lists. `Topology` iterates in graph order, which depends on how the graph was
//! built; numbering by name makes every random draw land on the same service whatever that
//! order was, which is what keeps simulations reproducible.

use std::collections::{BTreeSet, HashMap};

use rootcause_topology::{Service, ServiceKind, Topology};

/// Services in name order and their neighbours by index.
pub(super) struct Graph<'a> {
    /// Every service, sorted by name; an index into this is a service's number.
    pub services: Vec<&'a Service>,
    /// For each service, the services that call it, ascending.
    pub callers: Vec<Vec<usize>>,
    /// For each service, the services it calls, ascending.
    pub callees: Vec<Vec<usize>>,
}

impl<'a> Graph<'a> {
    pub fn new(topology: &'a Topology) -> Graph<'a> {
        let mut services: Vec<&Service> = topology.services().collect();
        services.sort_by(|a, b| a.name.cmp(&b.name));
        // Lookup only: never iterated, so its order cannot leak into the output.
        let index: HashMap<&str, usize> = services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let mut callers = vec![Vec::new(); services.len()];
        let mut callees = vec![Vec::new(); services.len()];
        for dependency in topology.dependencies() {
            let (Some(&caller), Some(&callee)) = (
                index.get(dependency.caller.as_str()),
                index.get(dependency.callee.as_str()),
            ) else {
                continue;
            };
            if caller != callee {
                callers[callee].push(caller);
                callees[caller].push(callee);
            }
        }
        for list in callers.iter_mut().chain(callees.iter_mut()) {
            list.sort_unstable();
            list.dedup();
        }
        Graph {
            services,
            callers,
            callees,
        }
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn name(&self, node: usize) -> &'a str {
        &self.services[node].name
    }

    pub fn kind(&self, node: usize) -> ServiceKind {
        self.services[node].kind
    }

    pub fn is_datastore(&self, node: usize) -> bool {
        matches!(
            self.kind(node),
            ServiceKind::Database | ServiceKind::Cache | ServiceKind::Queue
        )
    }

    /// `nodes` and everything they call within `hops` hops.
    pub fn with_callees(&self, nodes: &BTreeSet<usize>, hops: usize) -> BTreeSet<usize> {
        let mut reached = nodes.clone();
        let mut frontier: Vec<usize> = nodes.iter().copied().collect();
        for _ in 0..hops {
            if frontier.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for node in frontier {
                for &callee in &self.callees[node] {
                    if reached.insert(callee) {
                        next.push(callee);
                    }
                }
            }
            frontier = next;
        }
        reached
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.services
            .binary_search_by(|s| s.name.as_str().cmp(name))
            .ok()
    }
}
