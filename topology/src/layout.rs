//! A layered drawing of a small directed graph (the Sugiyama method), for the console's
//! dependency map: callers above the services they call, so a fault's propagation path reads
//! from the bottom (the cause) up to what users see.
//!
//! The four classic steps, each kept simple and deterministic:
//! 1. **Cycles broken**: edges that close a cycle (back edges of a depth-first search) are drawn
//!    reversed, so every edge points down.
//! 2. **Layers** by longest path from the sources: a caller sits at least one layer above each of
//!    its callees.
//! 3. **Long edges** get a dummy point on every layer they cross, so they bend around nodes
//!    instead of cutting through them, and take part in step 4.
//! 4. **Order within layers** by barycentre sweeps, down and up, keeping the order with the
//!    fewest edge crossings seen.
//! 5. **Positions**: each vertex pulled toward the mean position of its neighbours, in its
//!    layer's order and kept a box apart (bends need less room), so edges run as straight as
//!    the order allows.
//!
//! Pure: positions are in abstract units ([`Drawing::width`] × [`Drawing::height`]).

/// Horizontal distance between neighbours in a layer.
pub const COLUMN: f64 = 160.0;
/// Vertical distance between layers.
pub const ROW: f64 = 90.0;
/// Sweeps of the ordering step (each one down and one up).
const SWEEPS: usize = 12;

/// A point of a drawing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Left to right.
    pub x: f64,
    /// Top to bottom.
    pub y: f64,
}

/// Where each node and edge of a graph is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawing {
    /// The centre of node `i`.
    pub nodes: Vec<Point>,
    /// The layer of node `i` (0 at the top).
    pub layers: Vec<usize>,
    /// Edge `i` as a polyline from its caller to its callee, through one point per layer it
    /// crosses.
    pub edges: Vec<Vec<Point>>,
    /// Extent of the drawing.
    pub width: f64,
    /// Extent of the drawing.
    pub height: f64,
}

/// Lays out `node_count` nodes joined by `edges` (`(caller, callee)` indices). Self-loops and
/// repeated edges are drawn once each as a short stub or the same line. Deterministic: the same
/// input gives the same drawing.
pub fn layered(node_count: usize, edges: &[(usize, usize)]) -> Drawing {
    // 1. Cycles: reverse back edges so the graph is acyclic.
    let reversed = back_edges(node_count, edges);
    let downward: Vec<(usize, usize)> = edges
        .iter()
        .zip(&reversed)
        .map(|(&(a, b), &back)| if back { (b, a) } else { (a, b) })
        .collect();
    // 2. Layers: longest path from the sources.
    let layer = longest_path_layers(node_count, &downward);
    // 3. Long edges through one dummy vertex per crossed layer.
    let mut vertex_layer = layer.clone();
    let mut chains: Vec<Vec<usize>> = Vec::with_capacity(edges.len());
    let mut links: Vec<(usize, usize)> = Vec::new();
    for &(a, b) in &downward {
        let mut chain = vec![a];
        if a != b {
            for l in layer[a] + 1..layer[b] {
                vertex_layer.push(l);
                chain.push(vertex_layer.len() - 1);
            }
            chain.push(b);
        }
        links.extend(chain.windows(2).map(|w| (w[0], w[1])));
        chains.push(chain);
    }
    // 4. Order within layers.
    let depth = vertex_layer.iter().max().map_or(0, |&m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (v, &l) in vertex_layer.iter().enumerate() {
        rows[l].push(v);
    }
    let rows = order(rows, &links, vertex_layer.len());
    // 5. Positions.
    let xs = positions(&rows, &links, node_count, vertex_layer.len());
    let at: Vec<Point> = xs
        .iter()
        .zip(&vertex_layer)
        .map(|(&x, &l)| Point {
            x,
            y: ROW / 2.0 + l as f64 * ROW,
        })
        .collect();
    let width = xs.iter().copied().fold(0.0, f64::max) + COLUMN / 2.0;
    let edges = chains
        .into_iter()
        .zip(&reversed)
        .map(|(chain, &back)| {
            let mut points: Vec<Point> = chain.iter().map(|&v| at[v]).collect();
            if back {
                points.reverse();
            }
            points
        })
        .collect();
    Drawing {
        nodes: at[..node_count].to_vec(),
        layers: layer,
        edges,
        width: if node_count == 0 { 0.0 } else { width },
        height: depth as f64 * ROW,
    }
}

/// Passes of the position step.
const PASSES: usize = 8;

/// The x of every vertex: rows keep their order, real nodes (`< real`) a column apart, a bend
/// just clear of a node's box (half a column and a sixteenth), two bends a quarter; each pass pulls every vertex toward the
/// mean x of its neighbours, once pushing overlaps right and once left, and takes the middle
/// (both respect the gaps, so their mean does too).
fn positions(
    rows: &[Vec<usize>],
    links: &[(usize, usize)],
    real: usize,
    vertices: usize,
) -> Vec<f64> {
    let mut neighbours: Vec<Vec<usize>> = vec![Vec::new(); vertices];
    for &(a, b) in links.iter().filter(|(a, b)| a != b) {
        neighbours[a].push(b);
        neighbours[b].push(a);
    }
    let gap = |a: usize, b: usize| match (a < real, b < real) {
        (true, true) => COLUMN,
        (false, false) => COLUMN / 4.0,
        _ => COLUMN / 2.0 + COLUMN / 16.0,
    };
    let mut x = vec![0.0; vertices];
    for row in rows {
        for i in 1..row.len() {
            x[row[i]] = x[row[i - 1]] + gap(row[i - 1], row[i]);
        }
    }
    for pass in 0..PASSES {
        let sweep: Vec<&Vec<usize>> = if pass % 2 == 0 {
            rows.iter().collect()
        } else {
            rows.iter().rev().collect()
        };
        for row in sweep {
            let wanted: Vec<f64> = row
                .iter()
                .map(|&v| match neighbours[v].len() {
                    0 => x[v],
                    n => neighbours[v].iter().map(|&u| x[u]).sum::<f64>() / n as f64,
                })
                .collect();
            let mut right = wanted.clone();
            for i in 1..row.len() {
                right[i] = right[i].max(right[i - 1] + gap(row[i - 1], row[i]));
            }
            let mut left = wanted;
            for i in (1..row.len()).rev() {
                left[i - 1] = left[i - 1].min(left[i] - gap(row[i - 1], row[i]));
            }
            for (i, &v) in row.iter().enumerate() {
                x[v] = (left[i] + right[i]) / 2.0;
            }
        }
    }
    let least = x.iter().copied().fold(f64::INFINITY, f64::min);
    x.iter().map(|v| v - least + COLUMN / 2.0).collect()
}

/// Which edges close a cycle: the back edges of a depth-first search from each node in index
/// order (iterative, so a long chain cannot overflow the stack).
fn back_edges(node_count: usize, edges: &[(usize, usize)]) -> Vec<bool> {
    let mut out: Vec<Vec<(usize, usize)>> = vec![Vec::new(); node_count];
    for (i, &(a, b)) in edges.iter().enumerate() {
        out[a].push((b, i));
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; node_count];
    let mut back = vec![false; edges.len()];
    for start in 0..node_count {
        if mark[start] != Mark::New {
            continue;
        }
        mark[start] = Mark::Open;
        let mut stack = vec![(start, 0usize)];
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            if let Some(&(to, edge)) = out[node].get(*next) {
                *next += 1;
                match mark[to] {
                    Mark::New => {
                        mark[to] = Mark::Open;
                        stack.push((to, 0));
                    }
                    Mark::Open => back[edge] = to != node,
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    back
}

/// Each node's layer: 0 for nodes nothing calls, else one below its lowest caller. `edges` must
/// be acyclic apart from self-loops, which are ignored.
fn longest_path_layers(node_count: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut indegree = vec![0usize; node_count];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); node_count];
    for &(a, b) in edges.iter().filter(|(a, b)| a != b) {
        out[a].push(b);
        indegree[b] += 1;
    }
    let mut layer = vec![0usize; node_count];
    let mut ready: Vec<usize> = (0..node_count).filter(|&v| indegree[v] == 0).collect();
    ready.reverse();
    while let Some(v) = ready.pop() {
        for &w in &out[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indegree[w] -= 1;
            if indegree[w] == 0 {
                ready.push(w);
            }
        }
    }
    layer
}

/// Orders the vertices of each layer by barycentre sweeps (down using callers' positions, up
/// using callees'), keeping the best order seen ([`score`]).
fn order(mut rows: Vec<Vec<usize>>, links: &[(usize, usize)], vertices: usize) -> Vec<Vec<usize>> {
    let mut up: Vec<Vec<usize>> = vec![Vec::new(); vertices];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); vertices];
    for &(a, b) in links {
        down[a].push(b);
        up[b].push(a);
    }
    let mut best = rows.clone();
    let mut fewest = score(&rows, links, vertices);
    for sweep in 0..SWEEPS {
        if sweep % 2 == 0 {
            for l in 1..rows.len() {
                let (above, below) = rows.split_at_mut(l);
                reorder(&mut below[0], &above[l - 1], &up);
            }
        } else {
            for l in (0..rows.len().saturating_sub(1)).rev() {
                let (above, below) = rows.split_at_mut(l + 1);
                reorder(&mut above[l], &below[0], &down);
            }
        }
        let now = score(&rows, links, vertices);
        if now < fewest {
            fewest = now;
            best = rows.clone();
        }
    }
    best
}

/// Sorts `row` by the mean position of each vertex's neighbours in `fixed`; a vertex without
/// neighbours there keeps its place.
fn reorder(row: &mut [usize], fixed: &[usize], neighbours: &[Vec<usize>]) {
    let mut position = std::collections::HashMap::with_capacity(fixed.len());
    for (i, &v) in fixed.iter().enumerate() {
        position.insert(v, i as f64);
    }
    let mut keyed: Vec<(f64, usize, usize)> = row
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let near: Vec<f64> = neighbours[v]
                .iter()
                .filter_map(|n| position.get(n).copied())
                .collect();
            let key = if near.is_empty() {
                i as f64
            } else {
                near.iter().sum::<f64>() / near.len() as f64
            };
            (key, i, v)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (slot, (_, _, v)) in row.iter_mut().zip(keyed) {
        *slot = v;
    }
}

/// How good an order is: first the crossings, then how far links run sideways (the sum of the
/// differences of their ends' places), so of two orders without crossings the one that keeps
/// neighbours together wins.
fn score(rows: &[Vec<usize>], links: &[(usize, usize)], vertices: usize) -> (usize, usize) {
    let mut place = vec![0usize; vertices];
    for row in rows {
        for (i, &v) in row.iter().enumerate() {
            place[v] = i;
        }
    }
    let sideways = links
        .iter()
        .map(|&(a, b)| place[a].abs_diff(place[b]))
        .sum();
    (crossings(rows, links, vertices), sideways)
}

/// Pairs of links between the same two adjacent layers that cross.
fn crossings(rows: &[Vec<usize>], links: &[(usize, usize)], vertices: usize) -> usize {
    let mut place = vec![(0usize, 0usize); vertices];
    for (l, row) in rows.iter().enumerate() {
        for (i, &v) in row.iter().enumerate() {
            place[v] = (l, i);
        }
    }
    // (upper layer, position above, position below) of every link.
    let spans: Vec<(usize, usize, usize)> = links
        .iter()
        .map(|&(a, b)| (place[a].0, place[a].1, place[b].1))
        .collect();
    let mut count = 0;
    for (i, &(l1, a1, b1)) in spans.iter().enumerate() {
        for &(l2, a2, b2) in &spans[i + 1..] {
            if l1 == l2 && ((a1 < a2 && b1 > b2) || (a1 > a2 && b1 < b2)) {
                count += 1;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_are_drawn_above_their_callees_and_long_edges_bend_through_each_layer() {
        // 0 → 1 → 2 → 3, and 0 → 3 directly: the long edge crosses layers 1 and 2.
        let drawing = layered(4, &[(0, 1), (1, 2), (2, 3), (0, 3)]);
        assert_eq!(drawing.layers, vec![0, 1, 2, 3]);
        for (&(a, b), line) in [(0, 1), (1, 2), (2, 3), (0, 3)].iter().zip(&drawing.edges) {
            assert!(drawing.nodes[a].y < drawing.nodes[b].y);
            assert_eq!(line.first(), Some(&drawing.nodes[a]));
            assert_eq!(line.last(), Some(&drawing.nodes[b]));
        }
        assert_eq!(
            drawing.edges[3].len(),
            4,
            "one point per layer: {:?}",
            drawing.edges[3]
        );
        // The long edge's bends are not drawn through the nodes of the layers it crosses.
        for bend in &drawing.edges[3][1..3] {
            assert!(drawing.nodes.iter().all(|n| n != bend), "{bend:?}");
        }
    }

    #[test]
    fn long_edges_run_close_to_their_ends_instead_of_around_the_drawing() {
        // A front end calling five services, one of which it also reaches through another:
        // 0 → 1..=5, 1 → 6, 0 → 6. The bend of 0 → 6 stays within a column of its ends.
        let edges = [(0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (1, 6), (0, 6)];
        let drawing = layered(7, &edges);
        let ends = [drawing.nodes[0].x, drawing.nodes[6].x];
        let (low, high) = (ends[0].min(ends[1]), ends[0].max(ends[1]));
        let bend = drawing.edges[6][1];
        assert!(
            bend.x >= low - COLUMN && bend.x <= high + COLUMN,
            "{bend:?} far from {ends:?}"
        );
        // The parent sits over its children, not at one side.
        let children: f64 = (1..=5).map(|i| drawing.nodes[i].x).sum::<f64>() / 5.0;
        assert!(
            (drawing.nodes[0].x - children).abs() < COLUMN,
            "{:?}",
            drawing.nodes
        );
    }

    #[test]
    fn a_cycle_is_drawn_with_one_edge_pointing_back_up() {
        let drawing = layered(3, &[(0, 1), (1, 2), (2, 0)]);
        let ys: Vec<f64> = drawing.nodes.iter().map(|p| p.y).collect();
        assert!(ys[0] < ys[1] && ys[1] < ys[2], "{ys:?}");
        // The edge 2 → 0 still runs from its caller to its callee, upwards.
        let back = &drawing.edges[2];
        assert_eq!(back.first(), Some(&drawing.nodes[2]));
        assert_eq!(back.last(), Some(&drawing.nodes[0]));
    }

    #[test]
    fn ordering_removes_crossings_the_input_order_has() {
        // Two callers, each calling the other's callee in input order: 0 → 3, 1 → 2. Drawn in
        // index order the two edges cross; the sweeps swap one layer.
        let edges = [(0, 3), (1, 2)];
        let drawing = layered(4, &edges);
        let lines: Vec<(f64, f64)> = edges
            .iter()
            .map(|&(a, b)| (drawing.nodes[a].x, drawing.nodes[b].x))
            .collect();
        let cross = (lines[0].0 < lines[1].0) != (lines[0].1 < lines[1].1);
        assert!(!cross, "{lines:?}");
    }

    #[test]
    fn a_wide_graph_of_fifty_nodes_is_laid_out_without_overlaps() {
        // A front end, 7 mid-tier services and 42 leaves, each leaf called by two mids.
        let mut edges = Vec::new();
        for mid in 1..8 {
            edges.push((0, mid));
        }
        for leaf in 8..50 {
            edges.push((1 + leaf % 7, leaf));
            edges.push((1 + (leaf * 3) % 7, leaf));
        }
        let drawing = layered(50, &edges);
        let mut seen = std::collections::HashSet::new();
        for p in &drawing.nodes {
            assert!(seen.insert((p.x as i64, p.y as i64)), "two nodes at {p:?}");
            assert!(p.x > 0.0 && p.x < drawing.width && p.y < drawing.height);
        }
        assert_eq!(drawing.layers.iter().max(), Some(&2));
    }

    #[test]
    fn self_loops_and_empty_graphs_do_not_break_the_layout() {
        let drawing = layered(2, &[(0, 0), (0, 1)]);
        assert_eq!(drawing.layers, vec![0, 1]);
        assert_eq!(drawing.edges[0].len(), 1);
        let empty = layered(0, &[]);
        assert!(empty.nodes.is_empty() && empty.width == 0.0);
    }
}
