//! [`CallIndex`]: every service's direct callees and number of callers as dense arrays, built
//! once per topology and shared, for code that reads the neighbours of hundreds of services at
//! a time. Ranking an alert storm does: walking the graph's own edge lists and hashing names
//! for each of a thousand candidates cost more than the rest of the ranking together.

use petgraph::Direction;
use petgraph::stable_graph::StableDiGraph;
use petgraph::visit::NodeIndexable;

use crate::model::{Dependency, Service};

/// The calls of one topology, by service position (see
/// [`Topology::position`](crate::Topology::position)).
#[derive(Debug, Clone, Default)]
pub struct CallIndex {
    /// `callees[starts[p]..starts[p + 1]]` are the positions service `p` calls.
    starts: Vec<u32>,
    callees: Vec<u32>,
    /// How many services call service `p`.
    caller_counts: Vec<u32>,
}

impl CallIndex {
    pub(crate) fn of(graph: &StableDiGraph<Service, Dependency>) -> CallIndex {
        let bound = graph.node_bound();
        let mut starts = Vec::with_capacity(bound + 1);
        let mut callees = Vec::with_capacity(graph.edge_count());
        let mut caller_counts = vec![0u32; bound];
        for position in 0..bound {
            starts.push(callees.len() as u32);
            let node = graph.from_index(position);
            if !graph.contains_node(node) {
                continue;
            }
            for callee in graph.neighbors_directed(node, Direction::Outgoing) {
                callees.push(callee.index() as u32);
                caller_counts[callee.index()] += 1;
            }
        }
        starts.push(callees.len() as u32);
        CallIndex {
            starts,
            callees,
            caller_counts,
        }
    }

    /// One more than the highest position: the length of an array indexed by position.
    pub fn positions(&self) -> usize {
        self.caller_counts.len()
    }

    /// The positions of the services `position` calls directly (none for a position out of
    /// range).
    pub fn callees(&self, position: usize) -> &[u32] {
        match (self.starts.get(position), self.starts.get(position + 1)) {
            (Some(&start), Some(&end)) => &self.callees[start as usize..end as usize],
            _ => &[],
        }
    }

    /// How many services call `position` directly (0 for a position out of range).
    pub fn caller_count(&self, position: usize) -> usize {
        self.caller_counts.get(position).map_or(0, |&n| n as usize)
    }
}
