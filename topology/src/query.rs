//! Questions asked of the graph: who calls whom within k hops, how far apart two services are,
//! how a fault travels from a root cause to an impacted service, what a failure can reach, and
//! which services are single points of failure.

use std::collections::{BTreeSet, HashMap, VecDeque};

use petgraph::Direction;
use petgraph::algo::dominators;
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

/// Most partial paths [`Topology::propagation_paths`] extends before it stops looking.
pub const PATH_SEARCH_BUDGET: usize = 100_000;

/// The result of a propagation-path search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropagationPaths<'a> {
    /// Each path from the root cause to the impacted service, shortest first.
    pub paths: Vec<Vec<&'a str>>,
    /// False when the search budget ran out before every path up to the limit was examined.
    pub complete: bool,
}

/// Most cut-off services [`SinglePointOfFailure::examples`] lists.
pub const SPOF_EXAMPLES: usize = 10;

/// A service whose loss cuts other services off.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinglePointOfFailure {
    /// The service.
    pub service: String,
    /// Removing it splits the graph (ignoring call direction) into more pieces.
    pub articulation_point: bool,
    /// Entry points that reach some services only through it, sorted.
    pub entry_points: Vec<String>,
    /// The most services any one of those entry points reaches only through it.
    pub cut_off: usize,
    /// Up to ten of those services, the nearest first (those it directly cuts off).
    pub examples: Vec<String>,
}

/// Up to `limit` nodes below `node` in a dominator tree, breadth first.
fn nearest_dominated(children: &[Vec<NodeIndex>], node: NodeIndex, limit: usize) -> Vec<NodeIndex> {
    let mut found = Vec::new();
    let mut queue = VecDeque::from([node]);
    while let Some(next) = queue.pop_front() {
        for &child in &children[next.index()] {
            if found.len() == limit {
                return found;
            }
            found.push(child);
            queue.push_back(child);
        }
    }
    found
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
    /// from `root` to `impacted`, at most `max_edges` edges long, shortest first (alphabetical
    /// within a length), at most `limit` of them.
    ///
    /// The number of simple paths can grow exponentially with their length, so the search
    /// extends at most [`PATH_SEARCH_BUDGET`] partial paths and says whether it finished.
    pub fn propagation_paths(
        &self,
        root: &str,
        impacted: &str,
        max_edges: usize,
        limit: usize,
    ) -> Result<PropagationPaths<'_>, TopologyError> {
        let (root, impacted) = (self.node(root)?, self.node(impacted)?);
        let mut found = PropagationPaths {
            paths: Vec::new(),
            complete: true,
        };
        if root == impacted {
            found.paths.push(vec![self.name(root)]);
            return Ok(found);
        }
        // Symptoms climb from callee to caller, so the search follows call edges from the
        // impacted service down to the root. Knowing every node's distance to the root prunes
        // each branch that cannot arrive in time.
        let to_root = self.distances_up(root, max_edges);
        let mut budget = PATH_SEARCH_BUDGET;
        let shortest = to_root[impacted.index()];
        for length in shortest..=max_edges {
            if found.paths.len() >= limit || !found.complete {
                break;
            }
            let mut on_path = self.graph.visit_map();
            on_path.insert(impacted.index());
            let mut path = vec![impacted];
            let mut frames = vec![self.next_steps(impacted, 0, length, root, &to_root)];
            while let Some(frame) = frames.last_mut() {
                let Some(next) = frame.pop() else {
                    frames.pop();
                    if let Some(node) = path.pop() {
                        on_path.set(node.index(), false);
                    }
                    continue;
                };
                if on_path.contains(next.index()) {
                    continue;
                }
                if budget == 0 {
                    found.complete = false;
                    break;
                }
                budget -= 1;
                if next == root {
                    let mut complete_path: Vec<&str> =
                        path.iter().map(|&node| self.name(node)).collect();
                    complete_path.push(self.name(root));
                    complete_path.reverse();
                    found.paths.push(complete_path);
                    if found.paths.len() >= limit {
                        break;
                    }
                    continue;
                }
                let steps = self.next_steps(next, path.len(), length, root, &to_root);
                on_path.insert(next.index());
                path.push(next);
                frames.push(steps);
            }
        }
        Ok(found)
    }

    /// Callees of `node` (reached with `used` edges) that can still reach `root` in exactly
    /// `length` edges in all, in reverse alphabetical order so that popping yields them A–Z.
    fn next_steps(
        &self,
        node: NodeIndex,
        used: usize,
        length: usize,
        root: NodeIndex,
        to_root: &[usize],
    ) -> Vec<NodeIndex> {
        let left = length - used - 1;
        let mut steps: Vec<NodeIndex> = self
            .graph
            .neighbors_directed(node, Direction::Outgoing)
            .filter(|&next| {
                if next == root {
                    left == 0
                } else {
                    left > 0 && to_root[next.index()] <= left
                }
            })
            .collect();
        steps.sort_unstable_by(|a, b| self.name(*b).cmp(self.name(*a)));
        steps
    }

    /// Hop counts from `start` towards its callers, up to `max_hops`; `usize::MAX` beyond or
    /// unreached. Indexed by node index.
    fn distances_up(&self, start: NodeIndex, max_hops: usize) -> Vec<usize> {
        let mut distance = vec![usize::MAX; self.graph.node_bound()];
        distance[start.index()] = 0;
        let mut queue = VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            let hops = distance[node.index()];
            if hops == max_hops {
                continue;
            }
            for caller in self.graph.neighbors_directed(node, Direction::Incoming) {
                if distance[caller.index()] == usize::MAX {
                    distance[caller.index()] = hops + 1;
                    queue.push_back(caller);
                }
            }
        }
        distance
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

    /// Single points of failure, those that cut off most first.
    ///
    /// A service qualifies when some entry point reaches other services only through it (it
    /// dominates them in the call graph seen from that entry point), or when removing it
    /// disconnects the graph (an articulation point, call direction ignored). This is about the
    /// shape of the graph only: a shared leaf (one database every flow needs) cuts nothing off
    /// and shows up in its blast radius instead.
    ///
    /// Cost: one dominator tree per entry point, O(entry points × (services + dependencies)),
    /// and memory linear in the graph.
    pub fn single_points_of_failure(&self) -> Vec<SinglePointOfFailure> {
        #[derive(Default)]
        struct Found {
            articulation_point: bool,
            entry_points: BTreeSet<NodeIndex>,
            cut_off: usize,
            examples: Vec<NodeIndex>,
        }
        let mut found: HashMap<NodeIndex, Found> = HashMap::new();
        for node in self.articulation_points() {
            found.entry(node).or_default().articulation_point = true;
        }

        let bound = self.graph.node_bound();
        let mut children: Vec<Vec<NodeIndex>> = vec![Vec::new(); bound];
        let mut size = vec![0usize; bound];
        for entry_name in self.entry_points() {
            let entry = self.node(entry_name).expect("entry points are services");
            let tree = dominators::simple_fast(&self.graph, entry);
            // The dominator tree as child lists (alphabetical), and each node's subtree size.
            let mut order = vec![entry];
            let mut next = 0;
            children.iter_mut().for_each(Vec::clear);
            for node in self.graph.node_indices() {
                if let Some(parent) = tree.immediate_dominator(node) {
                    children[parent.index()].push(node);
                }
            }
            while next < order.len() {
                let node = order[next];
                next += 1;
                let kids = &mut children[node.index()];
                kids.sort_unstable_by(|a, b| self.name(*a).cmp(self.name(*b)));
                order.extend(kids.iter().copied());
            }
            for &node in order.iter().rev() {
                size[node.index()] = 1 + children[node.index()]
                    .iter()
                    .map(|c| size[c.index()])
                    .sum::<usize>();
            }
            for &node in &order[1..] {
                let cut_off = size[node.index()] - 1;
                if cut_off == 0 {
                    continue;
                }
                let spof = found.entry(node).or_default();
                spof.entry_points.insert(entry);
                if cut_off > spof.cut_off {
                    spof.cut_off = cut_off;
                    spof.examples = nearest_dominated(&children, node, SPOF_EXAMPLES);
                }
            }
        }

        let names = |nodes: &mut dyn Iterator<Item = NodeIndex>| -> Vec<String> {
            nodes.map(|node| self.name(node).to_owned()).collect()
        };
        let mut spofs: Vec<SinglePointOfFailure> = found
            .into_iter()
            .map(|(node, f)| {
                let mut entry_points = names(&mut f.entry_points.into_iter());
                entry_points.sort_unstable();
                SinglePointOfFailure {
                    service: self.name(node).to_owned(),
                    articulation_point: f.articulation_point,
                    entry_points,
                    cut_off: f.cut_off,
                    examples: names(&mut f.examples.into_iter()),
                }
            })
            .collect();
        spofs.sort_by(|a, b| (b.cut_off, &a.service).cmp(&(a.cut_off, &b.service)));
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
        let paths = |root, impacted, max_edges, limit| {
            let found = t
                .propagation_paths(root, impacted, max_edges, limit)
                .unwrap();
            assert!(found.complete);
            found.paths
        };
        assert_eq!(
            paths("db", "lb", 4, 10),
            [
                vec!["db", "cart", "web", "lb"],
                vec!["db", "orders", "web", "lb"],
                vec!["db", "search", "web", "lb"],
            ]
        );
        assert!(paths("db", "lb", 2, 10).is_empty());
        assert_eq!(paths("db", "lb", 4, 2).len(), 2);
        // Faults do not travel from caller to callee.
        assert!(paths("web", "db", 5, 10).is_empty());
        assert_eq!(paths("db", "db", 3, 10), [vec!["db"]]);
        assert_eq!(
            paths("index", "web", 3, 10),
            [vec!["index", "search", "web"]]
        );
    }

    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    #[test]
    fn single_points_of_failure() {
        let t = shop();
        assert_eq!(t.entry_points(), ["batch", "lb"]);
        let spofs = t.single_points_of_failure();
        type Summary<'a> = (&'a str, bool, Vec<&'a str>, usize, Vec<&'a str>);
        let summary: Vec<Summary<'_>> = spofs
            .iter()
            .map(|s| {
                (
                    s.service.as_str(),
                    s.articulation_point,
                    strs(&s.entry_points),
                    s.cut_off,
                    strs(&s.examples),
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
                    5,
                    // Nearest first: what web directly cuts off, then what search does.
                    vec!["cart", "db", "orders", "search", "index"]
                ),
                ("search", true, vec!["lb"], 1, vec!["index"]),
                // batch hangs off db alone: an articulation point that dominates nothing.
                ("db", true, vec![], 0, vec![]),
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
        assert_eq!(spofs[0].examples, ["c"]);
        assert_eq!(spofs[0].cut_off, 1);
    }
}
