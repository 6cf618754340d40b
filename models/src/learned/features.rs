//! Feature rows: what the learned models read of a candidate's evidence, and the names and
//! schema of those rows.

use crate::evidence::{Detector, Evidence, strength};

/// Version of what [`features`] computes from evidence: bump it whenever a row changes, so
/// stored rows or figures of another schema are not mixed with this one's.
pub const FEATURE_SCHEMA: u32 = 7;

/// Number of graph-context features after the per-detector ones.
const GRAPH_FEATURES: usize = 7;
/// Number of features that summarise all detectors: the best lead, the best local lead and
/// the cold-start score.
const SUMMARY_FEATURES: usize = 3;

/// Length of a feature row.
pub const FEATURE_COUNT: usize = 3 * Detector::COUNT + SUMMARY_FEATURES + GRAPH_FEATURES;

/// Index of the cold-start score among the features: the prior of the ranking scorer.
pub const COLD_START_FEATURE: usize = 3 * Detector::COUNT + 2;

/// Names of the row's features, in order.
pub fn feature_names() -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(FEATURE_COUNT);
    for d in Detector::ALL {
        names.push(format!("{}_strength", d.name()));
    }
    for d in Detector::ALL {
        names.push(format!("{}_place", d.name()));
    }
    for d in Detector::ALL {
        names.push(format!("{}_lead", d.name()));
    }
    names.extend(
        [
            "best_lead",
            "best_local_lead",
            "cold_start",
            "pagerank",
            "anomalous_callers",
            "anomalous_callees",
            "callee_more_anomalous",
            "fan_in",
            "alerting",
            "first_to_alert",
        ]
        .map(String::from),
    );
    names
}

/// One feature row per candidate of `evidence`, in its order.
pub fn features(evidence: &Evidence) -> Vec<[f64; FEATURE_COUNT]> {
    let strength: Vec<[f64; Detector::COUNT]> = evidence
        .candidates
        .iter()
        .map(|c| c.scores.map(strength))
        .collect();
    // The best and second-best strength per detector, to know every candidate's best rival.
    let mut top = [0.0f64; Detector::COUNT];
    let mut second = [0.0f64; Detector::COUNT];
    for s in &strength {
        for d in 0..Detector::COUNT {
            if s[d] > top[d] {
                second[d] = top[d];
                top[d] = s[d];
            } else if s[d] > second[d] {
                second[d] = s[d];
            }
        }
    }
    // Each candidate's place on each detector: 1 for the strongest, 1/2 for the next, ...
    let mut place = vec![[0.0f64; Detector::COUNT]; strength.len()];
    for d in 0..Detector::COUNT {
        let mut order: Vec<usize> = (0..strength.len())
            .filter(|&i| strength[i][d] > 0.0)
            .collect();
        order.sort_by(|&a, &b| strength[b][d].total_cmp(&strength[a][d]));
        for (k, &i) in order.iter().enumerate() {
            place[i][d] = 1.0 / (k + 1) as f64;
        }
    }
    // The training-free score: the prior every scorer starts from (see [`fit_scorer`]).
    let prior = crate::cold_start::ColdStart::default().score(evidence);
    // Rows are filled in place: a thousand candidates' rows built and returned by value would
    // be copied twice over.
    let mut rows = vec![[0.0; FEATURE_COUNT]; evidence.candidates.len()];
    for ((((row, c), s), place), &(prior, _)) in rows
        .iter_mut()
        .zip(&evidence.candidates)
        .zip(&strength)
        .zip(&place)
        .zip(&prior)
    {
        for d in 0..Detector::COUNT {
            row[d] = s[d];
            row[Detector::COUNT + d] = place[d];
            let rival = if s[d] >= top[d] { second[d] } else { top[d] };
            row[2 * Detector::COUNT + d] = (s[d] - rival).max(0.0);
        }
        // Whatever the mechanism, a cause usually leads the system on at least one.
        let leads = &row[2 * Detector::COUNT..3 * Detector::COUNT];
        let best_lead = leads.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let best_local_lead = Detector::ALL
            .iter()
            .filter(|d| d.is_local())
            .map(|&d| leads[d as usize])
            .fold(f64::NEG_INFINITY, f64::max);
        let g = &c.graph;
        let tail = [
            best_lead,
            best_local_lead,
            prior,
            g.pagerank,
            g.anomalous_callers,
            g.anomalous_callees,
            f64::from(u8::from(g.callee_more_anomalous)),
            g.fan_in,
            f64::from(u8::from(g.alerting)),
            f64::from(u8::from(g.alert_delay_min == Some(0.0))),
        ];
        row[3 * Detector::COUNT..].copy_from_slice(&tail);
    }
    rows
}
