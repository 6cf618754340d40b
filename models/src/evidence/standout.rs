//! How far a candidate stands out from the others on each detector: a detector's z means
//! something different in every system (a CPU z of 8 is common in a busy one; one new ERROR
//! template is rare), so candidates are compared with each other at the same moment.

use super::{CandidateEvidence, Detector};

/// Spread floor of [`standout`], in `ln(1 + z)` units: when nearly every candidate scores the
/// same, a candidate must still lead by a clear factor to stand out.
pub const MIN_SPREAD: f64 = 0.5;

/// A detector's z as a strength, `ln(1 + z)` for a positive z and 0 otherwise: comparable
/// across detectors whatever their units. Most candidates of a large incident score nothing on
/// most detectors, so the zeros skip the logarithm.
pub fn strength(z: f64) -> f64 {
    if z > 0.0 { z.ln_1p() } else { 0.0 }
}

/// How far each candidate stands out from the *other* candidates on each detector, indexed
/// `[candidate][detector]`. With `s = ln(1 + z)`: `(s − reference) / spread`, floored at 0,
/// where the reference is the larger of the others' median and the second strongest other
/// candidate, and the spread is 1.4826 · MAD over all candidates, at least [`MIN_SPREAD`].
///
/// The logarithm makes detectors comparable whatever their units; the candidates' spread
/// calibrates each detector to the system's noise at that moment; and measuring against the
/// second strongest *other* candidate says how often the detector fires on several services at
/// once: where a handful of services jump together (latency quantiles of low-traffic services,
/// a batch job's disk reads) none is singled out unless it jumps far more than the rest, while
/// a cause and its one loudest symptom may both stand out, for the other evidence to decide.
pub fn standout(candidates: &[CandidateEvidence]) -> Vec<[f64; Detector::COUNT]> {
    let n = candidates.len();
    let mut out = vec![[0.0; Detector::COUNT]; n];
    if n < 2 {
        return out;
    }
    for d in 0..Detector::COUNT {
        // Most detectors say nothing about most incidents: skip them before any sorting.
        if !candidates.iter().any(|c| c.scores[d] > 0.0) {
            continue;
        }
        let strength: Vec<f64> = candidates.iter().map(|c| strength(c.scores[d])).collect();
        let mut sorted = strength.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        let median = crate::stats::quantile(&sorted, 0.5);
        let mut dev: Vec<f64> = sorted.iter().map(|s| (s - median).abs()).collect();
        dev.sort_unstable_by(f64::total_cmp);
        let spread = (1.4826 * crate::stats::quantile(&dev, 0.5)).max(MIN_SPREAD);
        // The second strongest of the *others*: the third strongest overall for the two
        // strongest candidates, the second strongest for everyone else.
        let top = |k: usize| sorted[n.saturating_sub(k)];
        let (first, second, third) = (top(1), top(2), if n >= 3 { top(3) } else { top(2) });
        let mut first_seen = false;
        for (row, &s) in out.iter_mut().zip(&strength) {
            if s <= 0.0 {
                continue;
            }
            let others_second = if n == 2 {
                // One other candidate: it is the reference.
                if s == first && !first_seen {
                    second
                } else {
                    first
                }
            } else if s >= second {
                third
            } else {
                second
            };
            first_seen |= s == first;
            let reference = median.max(others_second);
            row[d] = ((s - reference) / spread).max(0.0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(zs: &[f64]) -> Vec<CandidateEvidence> {
        zs.iter()
            .enumerate()
            .map(|(i, &z)| {
                let mut scores = [0.0; Detector::COUNT];
                scores[Detector::CpuMetric as usize] = z;
                CandidateEvidence::scored(format!("s{i}"), scores)
            })
            .collect()
    }

    fn cpu(out: &[[f64; Detector::COUNT]]) -> Vec<f64> {
        out.iter()
            .map(|r| r[Detector::CpuMetric as usize])
            .collect()
    }

    #[test]
    fn a_lone_outlier_stands_out_and_a_crowd_does_not() {
        let lone = cpu(&standout(&candidates(&[40.0, 1.0, 0.5, 0.0, 0.8, 0.3])));
        assert!(lone[0] > 3.0, "{lone:?}");
        assert!(lone[1..].iter().all(|&s| s < 1.0), "{lone:?}");
        // Four services jump alike: none is singled out.
        let crowd = cpu(&standout(&candidates(&[40.0, 38.0, 45.0, 41.0, 0.5, 0.3])));
        assert!(crowd.iter().all(|&s| s < 1.0), "{crowd:?}");
    }

    #[test]
    fn a_cause_and_its_loudest_symptom_may_both_stand_out() {
        // Measured against the second strongest *other* candidate, two strong ones both lead
        // the rest; the other evidence decides between them.
        let two = cpu(&standout(&candidates(&[40.0, 30.0, 1.0, 0.5, 0.0, 0.2])));
        assert!(two[0] > 3.0 && two[1] > 3.0, "{two:?}");
        assert!(two[0] > two[1]);
        assert!(
            standout(&candidates(&[3.0]))
                .iter()
                .all(|r| r.iter().all(|&v| v == 0.0))
        );
    }
}
