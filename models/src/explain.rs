//! Turning scores and evidence into a [`Diagnosis`]: confidences, roles, sentences and paths.

use crate::diagnosis::{Diagnosis, FaultType, Hypothesis, Role};
use crate::evidence::Evidence;

/// Evidence sentences kept per hypothesis.
const SENTENCES: usize = 5;
/// Hypotheses, from the top, whose propagation paths are traced: responders read the first
/// few, and tracing paths for every one of a thousand candidates would cost more than ranking.
pub const TRACED: usize = 20;

/// `exp(x / t)` normalised to sum to 1 (empty for no scores).
pub fn softmax(scores: &[f64], temperature: f64) -> Vec<f64> {
    let t = temperature.max(1e-6);
    let top = scores
        .iter()
        .copied()
        .filter(|s| s.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = scores
        .iter()
        .map(|&s| {
            if s.is_finite() {
                ((s - top) / t).exp()
            } else {
                0.0
            }
        })
        .collect();
    let sum: f64 = exp.iter().sum();
    if sum > 0.0 {
        exp.iter().map(|e| e / sum).collect()
    } else {
        vec![0.0; scores.len()]
    }
}

/// How a ranker's scores become a diagnosis.
#[derive(Debug, Clone, Copy)]
pub struct Explaining<'a> {
    /// The model's name in the diagnosis.
    pub model: &'a str,
    /// Confidences are a softmax of the scores at this temperature.
    pub temperature: f64,
    /// A top confidence below this answers `unknown`.
    pub unknown_threshold: f64,
    /// A candidate whose strongest detector reaches this z is anomalous (else silent, unless it
    /// alerts).
    pub anomalous_z: f64,
}

/// Builds the diagnosis of `evidence` from per-candidate `scores` (in candidate order) and the
/// fault class of candidate `i`, `fault_of(i)` (with its probability when a classifier gives
/// one), listing the `listed` most likely hypotheses (`usize::MAX` for all). Confidences are
/// over every candidate either way: only the explanations and fault classes of the unlisted
/// ones are left out, which a storm of a thousand candidates would otherwise compute at every
/// ranking for nobody to read. `fault_of` is asked only of listed candidates that are
/// anomalous or alerting.
pub fn diagnosis(
    how: &Explaining,
    evidence: &Evidence,
    scores: &[f64],
    fault_of: &dyn Fn(usize) -> (Option<FaultType>, Option<f64>),
    listed: usize,
) -> Diagnosis {
    let Explaining {
        model,
        temperature,
        unknown_threshold,
        anomalous_z,
    } = *how;
    let confidences = softmax(scores, temperature);
    let mut order: Vec<usize> = (0..evidence.candidates.len()).collect();
    let key = |i: usize| {
        if scores[i].is_nan() {
            f64::NEG_INFINITY
        } else {
            scores[i]
        }
    };
    order.sort_by(|&a, &b| {
        key(b).total_cmp(&key(a)).then_with(|| {
            evidence.candidates[a]
                .service
                .cmp(&evidence.candidates[b].service)
        })
    });
    // Judged on the most likely candidate whether or not anything is listed.
    let top = order.first().map_or(0.0, |&i| confidences[i]);
    order.truncate(listed);
    let hypotheses: Vec<Hypothesis> = order
        .into_iter()
        .enumerate()
        .map(|(place, i)| {
            let c = &evidence.candidates[i];
            let anomalous = c.anomaly() >= anomalous_z || c.graph.alerting;
            let role = if !anomalous {
                Role::Silent
            } else if c.graph.callee_more_anomalous {
                Role::Symptom
            } else {
                Role::Origin
            };
            let mut sentences: Vec<String> = c
                .findings
                .iter()
                .take(SENTENCES)
                .map(|f| f.sentence.clone())
                .collect();
            if c.graph.anomalous_callers > 0.0 {
                // Rounded as `{:.0}` would (half to even), without its exact decimal expansion,
                // which costs more than the rest of a silent candidate's explanation.
                let percent = (100.0 * c.graph.anomalous_callers).round_ties_even() as u32;
                sentences.push(format!("{percent} % of its callers are anomalous"));
            }
            if c.graph.callee_more_anomalous {
                sentences.push("a service it depends on is at least as anomalous".to_string());
            }
            if sentences.is_empty() {
                sentences.push("no anomaly in its data; a dependency of alerting services".into());
            }
            let (fault_type, fault_type_confidence) =
                if anomalous { fault_of(i) } else { (None, None) };
            Hypothesis {
                service: c.service.clone(),
                score: scores[i],
                confidence: Some(confidences[i]),
                role,
                fault_type,
                fault_type_confidence,
                evidence: sentences,
                paths: if place < TRACED {
                    evidence.paths(i)
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    Diagnosis {
        model: model.to_string(),
        unknown: top < unknown_threshold,
        threshold: unknown_threshold,
        hypotheses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let p = softmax(&[2.0, 1.0, 0.0, f64::NAN], 1.0);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(p[0] > p[1] && p[1] > p[2]);
        assert_eq!(p[3], 0.0);
        assert!(softmax(&[], 1.0).is_empty());
    }
}
