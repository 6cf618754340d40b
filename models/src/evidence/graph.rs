//! Graph context of the candidates: a personalized PageRank on the reversed anomaly subgraph,
//! anomalous neighbours, and the paths a fault would take to what alerts.
//!
//! Faults travel against the call direction: a slow database makes its callers slow. A random
//! walk that starts at anomalous services and steps from a caller to its callees therefore
//! drifts toward causes. petgraph's `page_rank` is neither weighted nor personalized, so the
//! walk is a few lines of power iteration here.

use std::collections::{HashMap, VecDeque};

use crate::case::Case;

use super::{CandidateEvidence, Detector};

/// Probability that the walk jumps back to its start distribution at each step.
pub const RESTART: f64 = 0.15;
/// Power iterations at most; the walk converges long before on incident-sized graphs.
const ITERATIONS: usize = 100;
/// Paths kept per candidate, and their longest length in hops.
const PATHS: usize = 3;
const PATH_HOPS: usize = 4;

/// Calls among the candidates: for each candidate index, its callers and callees.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Adjacency {
    /// `callers[i]`: indices of candidates that call candidate `i`.
    pub callers: Vec<Vec<usize>>,
    /// `callees[i]`: indices of candidates that candidate `i` calls.
    pub callees: Vec<Vec<usize>>,
    /// How many services of the whole graph call candidate `i`.
    pub fan_in: Vec<usize>,
}

impl Adjacency {
    /// The calls among `case`'s candidates, from its topology and its edge series.
    ///
    /// The topology's calls are read from its shared [`CallIndex`](rootcause_topology::CallIndex)
    /// by position: ranking a storm of a thousand candidates would otherwise hash names along
    /// every dependency at every ranking.
    pub fn of(case: &Case) -> Adjacency {
        let n = case.candidates.len();
        let mut adjacency = Adjacency {
            callers: vec![Vec::new(); n],
            callees: vec![Vec::new(); n],
            fan_in: vec![0; n],
        };
        let add = |i: usize, j: usize, adjacency: &mut Adjacency| {
            if i != j && !adjacency.callees[i].contains(&j) {
                adjacency.callees[i].push(j);
                adjacency.callers[j].push(i);
            }
        };
        if let Some(topology) = &case.topology {
            let calls = topology.calls();
            let positions: Vec<Option<usize>> = case
                .candidates
                .iter()
                .map(|s| topology.position(s))
                .collect();
            // The candidate at each position of the topology, if any.
            let mut candidate_at = vec![usize::MAX; calls.positions()];
            for (i, position) in positions.iter().enumerate() {
                if let Some(p) = *position {
                    candidate_at[p] = i;
                }
            }
            for (i, position) in positions.into_iter().enumerate() {
                let Some(p) = position else { continue };
                adjacency.fan_in[i] = calls.caller_count(p);
                for &callee in calls.callees(p) {
                    let j = candidate_at[callee as usize];
                    if j != usize::MAX {
                        add(i, j, &mut adjacency);
                    }
                }
            }
        }
        if !case.edges.is_empty() {
            let index = super::candidate_index(case);
            for e in &case.edges {
                if let (Some(&i), Some(&j)) =
                    (index.get(e.caller.as_str()), index.get(e.callee.as_str()))
                {
                    add(i, j, &mut adjacency);
                }
            }
        }
        adjacency
    }
}

/// Personalized PageRank (random walk with restart) over the reversed anomaly subgraph.
///
/// From service `u` the walk steps to a callee `v` with weight `anomaly[v]`, stays at `u` with
/// weight `max(0, anomaly[u] − max anomaly of its callees)` (a service more anomalous than
/// everything it depends on holds the walk), and restarts with probability [`RESTART`] at a
/// service drawn in proportion to `anomaly`. Returns the stationary distribution (sums to 1);
/// uniform restart when nothing is anomalous.
pub fn personalized_pagerank(adjacency: &Adjacency, anomaly: &[f64]) -> Vec<f64> {
    let n = anomaly.len();
    if n == 0 {
        return Vec::new();
    }
    let total: f64 = anomaly.iter().map(|a| a.max(0.0)).sum();
    let restart: Vec<f64> = if total > 0.0 {
        anomaly.iter().map(|a| a.max(0.0) / total).collect()
    } else {
        vec![1.0 / n as f64; n]
    };
    // Out-weights per node, normalised, in one flat list: node `u`'s moves are
    // `moves[starts[u]..starts[u + 1]]` (target, weight); none means the walk restarts. One
    // list rather than one per node: a storm's thousand candidates would otherwise cost a
    // thousand allocations per ranking.
    let mut moves: Vec<(usize, f64)> =
        Vec::with_capacity(n + adjacency.callees.iter().map(Vec::len).sum::<usize>());
    let mut starts: Vec<usize> = Vec::with_capacity(n + 1);
    for u in 0..n {
        let start = moves.len();
        starts.push(start);
        let callee_max = adjacency.callees[u]
            .iter()
            .map(|&v| anomaly[v])
            .fold(0.0, f64::max);
        moves.extend(
            adjacency.callees[u]
                .iter()
                .map(|&v| (v, anomaly[v].max(0.0))),
        );
        moves.push((u, (anomaly[u] - callee_max).max(0.0)));
        let sum: f64 = moves[start..].iter().map(|m| m.1).sum();
        if sum > 0.0 {
            moves[start..].iter_mut().for_each(|m| m.1 /= sum);
            let mut kept = start;
            for k in start..moves.len() {
                if moves[k].1 > 0.0 {
                    moves[kept] = moves[k];
                    kept += 1;
                }
            }
            moves.truncate(kept);
        } else {
            moves.truncate(start);
        }
    }
    starts.push(moves.len());
    let mut rank = restart.clone();
    let mut next = vec![0.0; n];
    for _ in 0..ITERATIONS {
        next.iter_mut()
            .zip(&restart)
            .for_each(|(x, r)| *x = RESTART * r);
        let mut stranded = 0.0;
        for u in 0..n {
            let out = &moves[starts[u]..starts[u + 1]];
            let mass = (1.0 - RESTART) * rank[u];
            if out.is_empty() {
                stranded += mass;
            }
            for &(v, w) in out {
                next[v] += mass * w;
            }
        }
        next.iter_mut()
            .zip(&restart)
            .for_each(|(x, r)| *x += stranded * r);
        let change: f64 = next.iter().zip(&rank).map(|(a, b)| (a - b).abs()).sum();
        std::mem::swap(&mut rank, &mut next);
        if change < 1e-10 {
            break;
        }
    }
    rank
}

/// What [`paths_from`] needs: the calls among the candidates and which are symptomatic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathIndex {
    adjacency: Adjacency,
    symptomatic: Vec<bool>,
}

impl PathIndex {
    /// The shortest caller chains from candidate `start` to up to a few symptomatic services
    /// (see [`paths_from`]), as candidate indices.
    pub fn paths_from(&self, start: usize) -> Vec<Vec<usize>> {
        if start >= self.symptomatic.len() {
            return Vec::new();
        }
        paths_from(start, &self.adjacency, &self.symptomatic)
    }
}

/// Fills every candidate's [`super::GraphContext`] (except the alert fields) and returns what
/// tracing its propagation paths needs.
pub(super) fn contextualise(
    case: &Case,
    candidates: &mut [CandidateEvidence],
    anomalous_z: f64,
) -> PathIndex {
    let adjacency = Adjacency::of(case);
    let strongest: Vec<Option<(Detector, f64)>> = candidates
        .iter()
        .map(CandidateEvidence::strongest)
        .collect();
    let anomaly: Vec<f64> = strongest
        .iter()
        .map(|s| s.map_or(0.0, |(_, z)| z))
        .collect();
    let anomalous: Vec<bool> = anomaly.iter().map(|&a| a >= anomalous_z).collect();
    let rank = personalized_pagerank(&adjacency, &anomaly);
    let top = rank.iter().copied().fold(0.0, f64::max);
    let fraction = |of: &[usize]| {
        if of.is_empty() {
            0.0
        } else {
            of.iter().filter(|&&i| anomalous[i]).count() as f64 / of.len() as f64
        }
    };
    let answers: Vec<f64> = candidates.iter().map(answered_worse).collect();
    let inherits: Vec<bool> = candidates
        .iter()
        .map(|c| may_inherit(c, anomalous_z))
        .collect();
    // A steady statement that stops while the service is still called is its own code ending
    // early: a callee that only answers more slowly makes it wait, not skip a statement, so it
    // explains the stop away only when its calls fail (the caller may be catching them).
    let stopped: Vec<bool> = strongest
        .iter()
        .map(|s| matches!(s, Some((Detector::MissingTemplates, _))))
        .collect();
    let failing: Vec<bool> = candidates
        .iter()
        .map(|c| {
            [
                Detector::InboundCallErrors,
                Detector::SpanErrors,
                Detector::NewErrorTemplates,
            ]
            .iter()
            .any(|&d| c.score(d) >= anomalous_z)
        })
        .collect();
    for (i, c) in candidates.iter_mut().enumerate() {
        c.graph.pagerank = if top > 0.0 { rank[i] / top } else { 0.0 };
        c.graph.anomalous_callers = fraction(&adjacency.callers[i]);
        c.graph.anomalous_callees = fraction(&adjacency.callees[i]);
        // A caller's symptoms are explained by what it calls, not the other way round, when
        // a callee is at least as anomalous (and failing, for a stopped statement), or when
        // the caller's trouble may be inherited and a callee's calls are answered at least as
        // much worse as its own (the same measure on both): its latency includes theirs. A
        // database without an exporter shows only in the calls into it, however much more its
        // caller's latency quantile jumped in z.
        c.graph.callee_more_anomalous = adjacency.callees[i].iter().any(|&j| {
            (anomaly[j] >= anomaly[i] && anomalous[j] && (failing[j] || !stopped[i]))
                || (inherits[i] && answers[j] >= anomalous_z && answers[j] >= answers[i])
        });
        c.graph.fan_in = (adjacency.fan_in[i] as f64).ln_1p();
    }
    // A service that alerts is symptomatic whatever its data shows.
    let symptomatic = candidates
        .iter()
        .zip(&anomalous)
        .map(|(c, &a)| a || c.graph.alerting)
        .collect();
    PathIndex {
        symptomatic,
        adjacency,
    }
}

/// How much slower, or more often failing, a candidate's calls are answered, as its callers see
/// them (z).
fn answered_worse(c: &CandidateEvidence) -> f64 {
    c.score(Detector::InboundCallDuration)
        .max(c.score(Detector::InboundCallErrors))
}

/// Whether a candidate's trouble is what a callee's would cause: its strongest deviation of its
/// own is its latency or its failures, and its interface is not slow on every edge (a delay at
/// its interface slows its calls out too, so a callee answering it slowly says nothing then).
fn may_inherit(c: &CandidateEvidence, anomalous_z: f64) -> bool {
    if c.score(Detector::AllEdgesDelay) >= anomalous_z {
        return false;
    }
    c.strongest().is_some_and(|(d, _)| {
        matches!(
            d,
            Detector::LatencyMetric
                | Detector::SpanDuration
                | Detector::InboundCallDuration
                | Detector::ErrorMetric
                | Detector::SpanErrors
                | Detector::InboundCallErrors
        )
    })
}

/// Shortest caller chains from `start` to up to [`PATHS`] symptomatic services other than
/// itself, breadth first over callers, at most [`PATH_HOPS`] long.
fn paths_from(start: usize, adjacency: &Adjacency, symptomatic: &[bool]) -> Vec<Vec<usize>> {
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut depth: HashMap<usize, usize> = HashMap::from([(start, 0)]);
    let mut queue = VecDeque::from([start]);
    let mut ends = Vec::new();
    while let Some(u) = queue.pop_front() {
        if ends.len() >= PATHS {
            break;
        }
        if u != start && symptomatic[u] {
            ends.push(u);
        }
        if depth[&u] >= PATH_HOPS {
            continue;
        }
        let mut callers = adjacency.callers[u].clone();
        callers.sort_unstable();
        let next = depth[&u] + 1;
        for v in callers {
            if let std::collections::hash_map::Entry::Vacant(e) = depth.entry(v) {
                e.insert(next);
                parent.insert(v, u);
                queue.push_back(v);
            }
        }
    }
    ends.into_iter()
        .map(|end| {
            let mut path = vec![end];
            let mut at = end;
            while let Some(&p) = parent.get(&at) {
                path.push(p);
                at = p;
            }
            path.reverse();
            path
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Adjacency {
        // 0 → 1 → 2 (frontend calls api calls db); 3 isolated.
        Adjacency {
            callers: vec![vec![], vec![0], vec![1], vec![]],
            callees: vec![vec![1], vec![2], vec![], vec![]],
            fan_in: vec![0, 1, 1, 0],
        }
    }

    #[test]
    fn the_walk_drifts_from_symptoms_to_the_anomalous_dependency() {
        let rank = personalized_pagerank(&chain(), &[5.0, 5.0, 6.0, 0.0]);
        assert!((rank.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(rank[2] > rank[1] && rank[1] > rank[0], "{rank:?}");
        assert_eq!(rank[3], 0.0);
    }

    #[test]
    fn a_healthy_dependency_does_not_pull_the_walk() {
        let rank = personalized_pagerank(&chain(), &[5.0, 8.0, 0.0, 0.0]);
        assert!(rank[1] > rank[0] && rank[1] > rank[2], "{rank:?}");
        assert_eq!(rank[2], 0.0);
    }

    #[test]
    fn nothing_anomalous_gives_the_restart_distribution() {
        let rank = personalized_pagerank(&chain(), &[0.0; 4]);
        assert!(rank.iter().all(|r| (r - 0.25).abs() < 1e-9), "{rank:?}");
    }

    #[test]
    fn paths_run_from_the_cause_up_to_symptoms() {
        let paths = paths_from(2, &chain(), &[true, false, false, false]);
        assert_eq!(paths, vec![vec![2, 1, 0]]);
        assert!(paths_from(3, &chain(), &[true, true, true, false]).is_empty());
    }
}
