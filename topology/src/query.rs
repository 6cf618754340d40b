//! Questions asked of the graph: who calls whom within k hops, how far apart two services are,
//! how a fault travels from a root cause to an impacted service, what a failure can reach, and
//! which services are single points of failure.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap, VecDeque};

use petgraph::Direction;
use petgraph::algo::{all_simple_paths, dominators};
use petgraph::stable_graph::NodeIndex;
use petgraph::visit::{NodeIndexable, Visitable};
use serde::Serialize;

use crate::error::TopologyError;
use crate::graph::Topology;
use crate::model::ServiceKind;

/// A service reached from another one, and how many hops away it is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reach<'a> {
    /// The service reached.
    pub service: &'a str,
    /// Number of edges walked to reach it (1 = a direct neighbour).
    pub hops: usize,
}

/// A service whose loss cuts other services off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinglePointOfFailure<'a> {
    /// The service.
    pub service: &'a str,
    /// Removing it splits the graph (ignoring call direction) into more pieces.
    pub articulation_point: bool,
    /// Entry points that reach some services only through it.
    pub entry_points: Vec<&'a str>,
    /// The services that at least one entry point reaches only through it, sorted.
    pub dependents: Vec<&'a str>,
}

/// Which edges a walk follows.
#[derive(Debug, Clone, Copy)]
enum Walk {
    /// Towards callers (incoming edges): who is affected when this service fails.
    Up,
    /// Towards callees (outgoing edges): what this service needs.
    Down,
    /// Either way: closeness regardless of call direction.
    Undirected,
}

impl Topology {
    /// Services that call `name`, directly or through up to `max_hops - 1` others, nearest first.
    pub fn callers(&self, name: &str, max_hops: usize) -> Result<Vec<Reach<'_>>, TopologyError> {
        Ok(self.reach(self.node(name)?, max_hops, Walk::Up))
    }

    /// Services that `name` calls, directly or through up to `max_hops - 1` others, nearest first.
    pub fn callees(&self, name: &str, max_hops: usize) -> Result<Vec<Reach<'_>>, TopologyError> {
        Ok(self.reach(self.node(name)?, max_hops, Walk::Down))
    }

    /// Services within `max_hops` of `name` ignoring call direction, nearest first.
    pub fn neighbourhood(
        &self,
        name: &str,
        max_hops: usize,
    ) -> Result<Vec<Reach<'_>>, TopologyError> {
        Ok(self.reach(self.node(name)?, max_hops, Walk::Undirected))
    }

    /// Everything a failure of `name` can reach: all its transitive callers, nearest first.
    pub fn blast_radius(&self, name: &str) -> Result<Vec<Reach<'_>>, TopologyError> {
        Ok(self.reach(self.node(name)?, usize::MAX, Walk::Up))
    }

    /// Hop distance between two services ignoring call direction; `None` if not connected.
    pub fn hop_distance(&self, from: &str, to: &str) -> Result<Option<usize>, TopologyError> {
        let (from, to) = (self.node(from)?, self.node(to)?);
        if from == to {
            return Ok(Some(0));
        }
        let mut visited = self.graph.visit_map();
        visited.insert(from.index());
        let mut queue = VecDeque::from([(from, 0usize)]);
        while let Some((node, hops)) = queue.pop_front() {
            for next in self.graph.neighbors_undirected(node) {
                if next == to {
                    return Ok(Some(hops + 1));
                }
                if !visited.put(next.index()) {
                    queue.push_back((next, hops + 1));
                }
            }
        }
        Ok(None)
    }

    /// The ways a fault in `root` can travel to `impacted`: chains of callers, each path listed
    /// from `root` to `impacted`, at most `max_edges` edges long, shortest first, at most `limit`.
    pub fn propagation_paths(
        &self,
        root: &str,
        impacted: &str,
        max_edges: usize,
        limit: usize,
    ) -> Result<Vec<Vec<&str>>, TopologyError> {
        let (root, impacted) = (self.node(root)?, self.node(impacted)?);
        if root == impacted {
            return Ok(vec![vec![self.name(root)]]);
        }
        let mut paths = Vec::new();
        // Symptoms climb from callee to caller, so search the call edges from the impacted
        // service down to the root, one length at a time so the shortest come first.
        for edges in 1..=max_edges {
            if paths.len() >= limit {
                break;
            }
            let intermediate = edges - 1;
            let mut level: Vec<Vec<&str>> = all_simple_paths::<Vec<NodeIndex>, _, RandomState>(
                &self.graph,
                impacted,
                root,
                intermediate,
                Some(intermediate),
            )
            .map(|path| path.into_iter().rev().map(|node| self.name(node)).collect())
            .collect();
            level.sort();
            paths.extend(level.into_iter().take(limit - paths.len()));
        }
        Ok(paths)
    }

    /// Entry points: services nothing calls, and gateways. Sorted by name.
    pub fn entry_points(&self) -> Vec<&str> {
        let mut entries: Vec<&str> = self
            .graph
            .node_indices()
            .filter(|&node| {
                self.graph[node].kind == ServiceKind::Gateway
                    || self
                        .graph
                        .neighbors_directed(node, Direction::Incoming)
                        .next()
                        .is_none()
            })
            .map(|node| self.name(node))
            .collect();
        entries.sort_unstable();
        entries
    }

    /// Single points of failure, most dependents first.
    ///
    /// A service qualifies when some entry point reaches other services only through it (it
    /// dominates them in the call graph seen from that entry point), or when removing it
    /// disconnects the graph (an articulation point, call direction ignored).
    pub fn single_points_of_failure(&self) -> Vec<SinglePointOfFailure<'_>> {
        #[derive(Default)]
        struct Found {
            articulation_point: bool,
            entry_points: BTreeSet<NodeIndex>,
            dependents: BTreeSet<NodeIndex>,
        }
        let mut found: HashMap<NodeIndex, Found> = HashMap::new();

        for node in self.articulation_points() {
            found.entry(node).or_default().articulation_point = true;
        }
        for entry_name in self.entry_points() {
            let start = self.node(entry_name).expect("entry points are services");
            let tree = dominators::simple_fast(&self.graph, start);
            for node in self.graph.node_indices() {
                if node == start {
                    continue;
                }
                let Some(chain) = tree.strict_dominators(node) else {
                    continue; // not reachable from this entry point
                };
                for dominator in chain.filter(|&d| d != start) {
                    let spof = found.entry(dominator).or_default();
                    spof.entry_points.insert(start);
                    spof.dependents.insert(node);
                }
            }
        }

        let names = |nodes: BTreeSet<NodeIndex>| {
            let mut names: Vec<&str> = nodes.into_iter().map(|n| self.name(n)).collect();
            names.sort_unstable();
            names
        };
        let mut spofs: Vec<SinglePointOfFailure<'_>> = found
            .into_iter()
            .map(|(node, f)| SinglePointOfFailure {
                service: self.name(node),
                articulation_point: f.articulation_point,
                entry_points: names(f.entry_points),
                dependents: names(f.dependents),
            })
            .collect();
        spofs.sort_by(|a, b| (b.dependents.len(), a.service).cmp(&(a.dependents.len(), b.service)));
        spofs
    }

    /// Breadth-first walk from `start` (excluded), at most `max_hops` deep, nearest first and
    /// alphabetical within a distance.
    fn reach(&self, start: NodeIndex, max_hops: usize, walk: Walk) -> Vec<Reach<'_>> {
        let mut visited = self.graph.visit_map();
        visited.insert(start.index());
        let mut found = Vec::new();
        let mut frontier = vec![start];
        let mut hops = 0;
        while !frontier.is_empty() && hops < max_hops {
            hops += 1;
            let level_start = found.len();
            let mut next_frontier = Vec::new();
            for node in frontier {
                let mut visit = |next: NodeIndex| {
                    if !visited.put(next.index()) {
                        next_frontier.push(next);
                        found.push(Reach {
                            service: self.name(next),
                            hops,
                        });
                    }
                };
                match walk {
                    Walk::Up => self
                        .graph
                        .neighbors_directed(node, Direction::Incoming)
                        .for_each(&mut visit),
                    Walk::Down => self
                        .graph
                        .neighbors_directed(node, Direction::Outgoing)
                        .for_each(&mut visit),
                    Walk::Undirected => self.graph.neighbors_undirected(node).for_each(&mut visit),
                }
            }
            found[level_start..].sort_unstable_by(|a, b| a.service.cmp(b.service));
            frontier = next_frontier;
        }
        found
    }

    /// Articulation points of the graph with call direction ignored (iterative Tarjan, so deep
    /// graphs cannot overflow the stack). petgraph's own version panics on a `StableGraph`.
    fn articulation_points(&self) -> Vec<NodeIndex> {
        const UNSEEN: usize = usize::MAX;
        let bound = self.graph.node_bound();
        let mut discovered = vec![UNSEEN; bound];
        let mut low = vec![0usize; bound];
        let mut is_articulation = vec![false; bound];
        let mut time = 0;

        for root in self.graph.node_indices() {
            if discovered[root.index()] != UNSEEN {
                continue;
            }
            discovered[root.index()] = time;
            low[root.index()] = time;
            time += 1;
            let mut root_children = 0;
            // (node, its DFS parent, the neighbours still to look at)
            let mut stack = vec![(root, None, self.graph.neighbors_undirected(root))];
            while let Some(top) = stack.last_mut() {
                let (node, parent) = (top.0, top.1);
                match top.2.next() {
                    Some(next) if Some(next) == parent => {}
                    Some(next) if discovered[next.index()] == UNSEEN => {
                        discovered[next.index()] = time;
                        low[next.index()] = time;
                        time += 1;
                        if node == root {
                            root_children += 1;
                        }
                        stack.push((next, Some(node), self.graph.neighbors_undirected(next)));
                    }
                    Some(next) => {
                        low[node.index()] = low[node.index()].min(discovered[next.index()]);
                    }
                    None => {
                        stack.pop();
                        if let Some(parent) = parent {
                            low[parent.index()] = low[parent.index()].min(low[node.index()]);
                            if parent != root && low[node.index()] >= discovered[parent.index()] {
                                is_articulation[parent.index()] = true;
                            }
                        }
                    }
                }
            }
            if root_children > 1 {
                is_articulation[root.index()] = true;
            }
        }
        self.graph
            .node_indices()
            .filter(|node| is_articulation[node.index()])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Format;

    /// ```text
    /// lb ─► web ─► orders ─► db ◄── cart ◄─ web
    ///        │                ▲
    ///        └──► search ─────┘ (search also calls index)
    /// ```
    fn shop() -> Topology {
        Topology::parse(
            r#"
services:
  - {name: lb, kind: gateway}
  - {name: web, kind: service}
  - {name: orders, kind: service}
  - {name: cart, kind: service}
  - {name: search, kind: service}
  - {name: index, kind: database}
  - {name: db, kind: database}
  - {name: batch, kind: service}
dependencies:
  - {caller: lb, callee: web}
  - {caller: web, callee: orders}
  - {caller: web, callee: cart}
  - {caller: web, callee: search}
  - {caller: orders, callee: db}
  - {caller: cart, callee: db}
  - {caller: search, callee: db}
  - {caller: search, callee: index}
  - {caller: batch, callee: db}
"#,
            Format::Yaml,
        )
        .unwrap()
    }

    fn names<'a>(reach: &[Reach<'a>]) -> Vec<(&'a str, usize)> {
        reach.iter().map(|r| (r.service, r.hops)).collect()
    }

    #[test]
    fn callers_and_callees_within_k_hops() {
        let t = shop();
        assert_eq!(
            names(&t.callers("db", 1).unwrap()),
            [("batch", 1), ("cart", 1), ("orders", 1), ("search", 1)]
        );
        assert_eq!(
            names(&t.callers("db", 2).unwrap()),
            [
                ("batch", 1),
                ("cart", 1),
                ("orders", 1),
                ("search", 1),
                ("web", 2)
            ]
        );
        assert_eq!(
            names(&t.callees("web", 2).unwrap()),
            [
                ("cart", 1),
                ("orders", 1),
                ("search", 1),
                ("db", 2),
                ("index", 2)
            ]
        );
        assert!(t.callees("db", 3).unwrap().is_empty());
        assert_eq!(
            t.callers("nope", 1),
            Err(TopologyError::UnknownService("nope".into()))
        );
    }

    #[test]
    fn blast_radius_is_every_transitive_caller() {
        let t = shop();
        assert_eq!(
            names(&t.blast_radius("db").unwrap()),
            [
                ("batch", 1),
                ("cart", 1),
                ("orders", 1),
                ("search", 1),
                ("web", 2),
                ("lb", 3)
            ]
        );
        assert_eq!(names(&t.blast_radius("index").unwrap()).len(), 3);
        assert!(t.blast_radius("lb").unwrap().is_empty());
    }

    #[test]
    fn hop_distance_ignores_direction() {
        let t = shop();
        assert_eq!(t.hop_distance("db", "db").unwrap(), Some(0));
        assert_eq!(t.hop_distance("orders", "cart").unwrap(), Some(2));
        assert_eq!(t.hop_distance("batch", "index").unwrap(), Some(3));
        assert_eq!(t.hop_distance("lb", "batch").unwrap(), Some(4));
        let mut island = shop();
        island
            .add_service(crate::Service::new("island", ServiceKind::Service))
            .unwrap();
        assert_eq!(island.hop_distance("lb", "island").unwrap(), None);
        assert_eq!(
            names(&t.neighbourhood("orders", 2).unwrap()),
            [
                ("db", 1),
                ("web", 1),
                ("batch", 2),
                ("cart", 2),
                ("lb", 2),
                ("search", 2)
            ]
        );
    }

    #[test]
    fn propagation_paths_run_from_root_to_impacted_shortest_first() {
        let t = shop();
        let paths = t.propagation_paths("db", "lb", 4, 10).unwrap();
        assert_eq!(
            paths,
            [
                vec!["db", "cart", "web", "lb"],
                vec!["db", "orders", "web", "lb"],
                vec!["db", "search", "web", "lb"],
            ]
        );
        assert!(t.propagation_paths("db", "lb", 2, 10).unwrap().is_empty());
        assert_eq!(t.propagation_paths("db", "lb", 4, 2).unwrap().len(), 2);
        // Faults do not travel from caller to callee.
        assert!(t.propagation_paths("web", "db", 5, 10).unwrap().is_empty());
        assert_eq!(
            t.propagation_paths("db", "db", 3, 10).unwrap(),
            [vec!["db"]]
        );
    }

    #[test]
    fn single_points_of_failure() {
        let t = shop();
        assert_eq!(t.entry_points(), ["batch", "lb"]);
        let spofs = t.single_points_of_failure();
        let summary: Vec<(&str, bool, Vec<&str>, Vec<&str>)> = spofs
            .iter()
            .map(|s| {
                (
                    s.service,
                    s.articulation_point,
                    s.entry_points.clone(),
                    s.dependents.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "web",
                    true,
                    vec!["lb"],
                    vec!["cart", "db", "index", "orders", "search"]
                ),
                ("search", true, vec!["lb"], vec!["index"]),
                // batch hangs off db alone: an articulation point that dominates nothing.
                ("db", true, vec![], vec![]),
            ]
        );
    }

    #[test]
    fn articulation_points_of_a_chain_and_a_cycle() {
        let chain = Topology::parse(
            "services:\n- {name: a, kind: service}\n- {name: b, kind: service}\n- {name: c, kind: service}\ndependencies:\n- {caller: a, callee: b}\n- {caller: b, callee: c}\n",
            Format::Yaml,
        )
        .unwrap();
        let spofs = chain.single_points_of_failure();
        assert_eq!(spofs.len(), 1);
        assert_eq!(spofs[0].service, "b");
        assert!(spofs[0].articulation_point);

        let cycle = Topology::parse(
            "services:\n- {name: a, kind: gateway}\n- {name: b, kind: service}\n- {name: c, kind: service}\ndependencies:\n- {caller: a, callee: b}\n- {caller: b, callee: c}\n- {caller: c, callee: a}\n",
            Format::Yaml,
        )
        .unwrap();
        // No articulation point in a triangle, but from the gateway c is only reached via b.
        let spofs = cycle.single_points_of_failure();
        assert_eq!(spofs.len(), 1);
        assert_eq!(spofs[0].service, "b");
        assert!(!spofs[0].articulation_point);
        assert_eq!(spofs[0].dependents, ["c"]);
    }
}
