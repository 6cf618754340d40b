//! Past incidents like this one, and what resolved them.
//!
//! An incident is summarised by [`incident_vector`]: how strongly and how widely each fault
//! mechanism shows across its candidates, with no service names, so incidents of different
//! systems (or of a system whose services were renamed) compare. [`SimilarIndex`] finds the
//! nearest past incidents by brute force, which over ten thousand incidents of 41 numbers
//! costs a fraction of a millisecond and needs no index to keep up to date.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::target::{ActionVote, Votes};
use crate::evidence::{Detector, Evidence, MAX_Z};

/// Length of an [`incident_vector`]: per detector its strongest value and its spread, plus the
/// share of candidates alerting.
pub const VECTOR_LEN: usize = 2 * Detector::COUNT + 1;

/// A detector score from which a candidate counts as clearly unusual for that detector.
const CLEAR_Z: f64 = 3.0;

/// Incident-level features of an evidence: per detector, the strongest `ln(1 + z)` over
/// candidates, and the share of candidates where that detector reaches 3; plus the share of
/// candidates alerting. Fixed length ([`VECTOR_LEN`]); no names. The logarithm keeps one
/// extreme z from outweighing every other dimension.
pub fn incident_vector(evidence: &Evidence) -> Vec<f64> {
    let mut vector = vec![0.0; VECTOR_LEN];
    let n = evidence.candidates.len();
    if n == 0 {
        return vector;
    }
    let (strongest, rest) = vector.split_at_mut(Detector::COUNT);
    let (clear, alerting) = rest.split_at_mut(Detector::COUNT);
    for candidate in &evidence.candidates {
        for (d, &z) in candidate.scores.iter().enumerate() {
            let z = if z.is_nan() { 0.0 } else { z.clamp(0.0, MAX_Z) };
            strongest[d] = f64::max(strongest[d], z.ln_1p());
            if z >= CLEAR_Z {
                clear[d] += 1.0;
            }
        }
        if candidate.graph.alerting {
            alerting[0] += 1.0;
        }
    }
    for share in clear.iter_mut().chain(alerting.iter_mut()) {
        *share /= n as f64;
    }
    vector
}

/// A resolved past incident as the index keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastIncident {
    /// Unique key (`incident:42`, or an imported history row's id).
    pub key: String,
    /// The system it happened on.
    pub system: String,
    /// Unix seconds when it began.
    pub started_at: i64,
    /// The service that caused it.
    pub root_cause: String,
    /// Its fault type, as recorded.
    pub fault_type: Option<String>,
    /// The action taken (a runbook id), if recorded.
    pub action: Option<String>,
    /// Whether that action worked, if known.
    pub worked: Option<bool>,
    /// Seconds from the start to mitigation, if known.
    pub time_to_mitigate_s: Option<f64>,
}

/// A past incident found similar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour<'a> {
    /// The past incident.
    pub past: &'a PastIncident,
    /// In (0, 1]; 1 for identical features.
    pub similarity: f64,
}

/// Past incidents with their feature vectors, searched by brute force.
///
/// **Distance**: Euclidean over the dimensions standardised by the index's current mean and
/// standard deviation, so a dimension that varies little between incidents still counts;
/// a dimension with no spread says nothing and is ignored. **Similarity**:
/// `exp(−distance / √dims)`, `dims` the dimensions used: the distance per dimension, in
/// standard deviations, so one standard deviation on average gives 0.37, whatever the length.
#[derive(Debug, Clone, Default)]
pub struct SimilarIndex {
    entries: Vec<PastIncident>,
    /// Entry `i`'s vector at `[i * dims, (i + 1) * dims)`: one allocation, scanned in order.
    data: Vec<f64>,
    /// Vector length, set by the first insertion.
    dims: usize,
    by_key: HashMap<String, usize>,
    /// Per dimension, sum of values and of squares, for the mean and standard deviation.
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
}

/// Least standard deviation a dimension is scaled by. The features are log-z strengths (about
/// 0 to 5) and shares (0 to 1): with a handful of past incidents a dimension's spread can be
/// tiny or nil, and dividing by it would make any difference there decide the distance (or, a
/// dimension ignored for lack of spread, make every incident "identical" to the only past one).
const SPREAD_FLOOR: f64 = 0.25;

impl SimilarIndex {
    /// An empty index.
    pub fn new() -> SimilarIndex {
        SimilarIndex::default()
    }

    /// Adds a past incident, or replaces the entry with the same key. The first vector sets
    /// the length; later ones are cut or padded with zeros to it, and non-finite values count
    /// as 0.
    pub fn insert(&mut self, past: PastIncident, vector: Vec<f64>) {
        if self.entries.is_empty() && self.dims == 0 {
            self.dims = vector.len();
            self.sum = vec![0.0; self.dims];
            self.sum_sq = vec![0.0; self.dims];
        }
        let dims = self.dims;
        let clean = |j: usize| {
            vector
                .get(j)
                .copied()
                .filter(|x| x.is_finite())
                .unwrap_or(0.0)
        };
        let row = match self.by_key.get(&past.key) {
            Some(&i) => {
                for j in 0..dims {
                    let old = self.data[i * dims + j];
                    self.sum[j] -= old;
                    self.sum_sq[j] -= old * old;
                }
                self.entries[i] = past;
                i
            }
            None => {
                let i = self.entries.len();
                self.by_key.insert(past.key.clone(), i);
                self.entries.push(past);
                self.data.resize(self.data.len() + dims, 0.0);
                i
            }
        };
        for j in 0..dims {
            let x = clean(j);
            self.data[row * dims + j] = x;
            self.sum[j] += x;
            self.sum_sq[j] += x * x;
        }
    }

    /// Number of past incidents.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index holds no incident.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `k` most similar entries, most similar first (ties by key), skipping entries for
    /// which `skip(key)` is true.
    pub fn nearest(
        &self,
        vector: &[f64],
        k: usize,
        skip: impl Fn(&str) -> bool,
    ) -> Vec<Neighbour<'_>> {
        if k == 0 || self.entries.is_empty() {
            return Vec::new();
        }
        // Unused dimensions get a scale of 0, so the loop below runs over whole rows, in
        // order, without an index per dimension.
        let inv_sd = self.scales();
        let used = inv_sd.iter().filter(|&&s| s > 0.0).count();
        let query: Vec<f64> = (0..self.dims)
            .map(|j| {
                vector
                    .get(j)
                    .copied()
                    .filter(|x| x.is_finite())
                    .unwrap_or(0.0)
            })
            .collect();
        // Best k so far as (squared distance, entry), sorted ascending; an entry is compared
        // only while it can still get in, so most entries cost one pass and no allocation.
        let mut best: Vec<(f64, usize)> = Vec::with_capacity(k + 1);
        for (i, past) in self.entries.iter().enumerate() {
            let row = &self.data[i * self.dims..(i + 1) * self.dims];
            let bound = if best.len() == k {
                best[k - 1].0
            } else {
                f64::INFINITY
            };
            let d2 = squared_distance(row, &query, &inv_sd);
            if d2 > bound || skip(&past.key) {
                continue;
            }
            let at = best.partition_point(|&(bd, bi)| {
                bd < d2 || (bd == d2 && self.entries[bi].key < past.key)
            });
            if at < k {
                best.insert(at, (d2, i));
                best.truncate(k);
            }
        }
        let dims = used.max(1) as f64;
        best.into_iter()
            .map(|(d2, i)| Neighbour {
                past: &self.entries[i],
                similarity: (-d2.sqrt() / dims.sqrt()).exp().max(f64::MIN_POSITIVE),
            })
            .collect()
    }

    /// Per dimension, one over its standard deviation, floored at [`SPREAD_FLOOR`].
    fn scales(&self) -> Vec<f64> {
        let n = self.entries.len() as f64;
        (0..self.dims)
            .map(|j| {
                let mean = self.sum[j] / n;
                let var = (self.sum_sq[j] / n - mean * mean).max(0.0);
                let sd = var.sqrt();
                1.0 / sd.max(SPREAD_FLOOR)
            })
            .collect()
    }

    /// What resolved these neighbours: the actions of entries whose action did not fail
    /// (`worked != Some(false)`), each with its similarity-weighted share of all the neighbours
    /// (those without a recorded action included), largest share first.
    pub fn votes(neighbours: &[Neighbour]) -> Votes {
        let total: f64 = neighbours.iter().map(|n| weight(n.similarity)).sum();
        let mut actions: Vec<ActionVote> = Vec::new();
        for n in neighbours {
            let Some(action) = n.past.action.as_deref() else {
                continue;
            };
            if n.past.worked == Some(false) {
                continue;
            }
            let w = weight(n.similarity);
            match actions.iter_mut().find(|v| v.action == action) {
                Some(vote) => {
                    vote.share += w;
                    vote.count += 1;
                }
                None => actions.push(ActionVote {
                    action: action.to_owned(),
                    share: w,
                    count: 1,
                }),
            }
        }
        for vote in &mut actions {
            vote.share = if total > 0.0 {
                (vote.share / total).clamp(0.0, 1.0)
            } else {
                0.0
            };
        }
        actions.sort_by(|a, b| {
            b.share
                .total_cmp(&a.share)
                .then_with(|| a.action.cmp(&b.action))
        });
        Votes {
            incidents: neighbours.len(),
            actions,
        }
    }
}

/// `Σ ((x − q) s)²` over equal-length slices. Four independent sums, because one sum waits
/// on the previous addition at every step, which made this loop four times slower.
fn squared_distance(row: &[f64], query: &[f64], scale: &[f64]) -> f64 {
    let mut lanes = [0.0; 4];
    let mut chunks = row
        .chunks_exact(4)
        .zip(query.chunks_exact(4))
        .zip(scale.chunks_exact(4));
    for ((x, q), s) in &mut chunks {
        for l in 0..4 {
            let d = (x[l] - q[l]) * s[l];
            lanes[l] += d * d;
        }
    }
    let tail = row.len() - row.len() % 4;
    let mut sum = lanes.iter().sum::<f64>();
    for j in tail..row.len() {
        let d = (row[j] - query[j]) * scale[j];
        sum += d * d;
    }
    sum
}

/// A similarity as a weight: non-finite or negative ones count for nothing.
fn weight(similarity: f64) -> f64 {
    if similarity.is_finite() {
        similarity.max(0.0)
    } else {
        0.0
    }
}
