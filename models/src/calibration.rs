//! Whether confidences mean what they say: a reliability table (mean confidence against
//! observed accuracy per confidence bin) and the expected calibration error.

use serde::Serialize;

/// One confidence bin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bin {
    /// Lower edge (inclusive).
    pub from: f64,
    /// Upper edge (exclusive; the last bin includes 1).
    pub to: f64,
    /// Answers whose confidence fell in the bin.
    pub count: usize,
    /// Their mean confidence.
    pub mean_confidence: f64,
    /// The fraction of them that were right.
    pub accuracy: f64,
}

/// The reliability of a set of (confidence, was right) answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reliability {
    /// Equal-width bins over [0, 1]; empty bins included with count 0.
    pub bins: Vec<Bin>,
    /// Expected calibration error: Σ (count / n) · |accuracy − mean confidence|.
    pub ece: f64,
    /// Mean squared difference between confidence and outcome (Brier score of the answers).
    pub brier: f64,
    /// Answers.
    pub count: usize,
}

impl Reliability {
    /// Bins `answers` (confidence in [0, 1], whether the answer was right) into `bins` bins.
    pub fn new(answers: &[(f64, bool)], bins: usize) -> Reliability {
        let bins = bins.max(1);
        let mut sums = vec![(0usize, 0.0f64, 0usize); bins];
        for &(confidence, right) in answers {
            let c = confidence.clamp(0.0, 1.0);
            let k = ((c * bins as f64) as usize).min(bins - 1);
            sums[k].0 += 1;
            sums[k].1 += c;
            sums[k].2 += usize::from(right);
        }
        let n = answers.len();
        let mut ece = 0.0;
        let table = sums
            .iter()
            .enumerate()
            .map(|(k, &(count, total, right))| {
                let (mean_confidence, accuracy) = if count > 0 {
                    (total / count as f64, right as f64 / count as f64)
                } else {
                    (0.0, 0.0)
                };
                if n > 0 {
                    ece += count as f64 / n as f64 * (accuracy - mean_confidence).abs();
                }
                Bin {
                    from: k as f64 / bins as f64,
                    to: (k + 1) as f64 / bins as f64,
                    count,
                    mean_confidence,
                    accuracy,
                }
            })
            .collect();
        let brier = if n > 0 {
            answers
                .iter()
                .map(|&(c, right)| (c.clamp(0.0, 1.0) - f64::from(u8::from(right))).powi(2))
                .sum::<f64>()
                / n as f64
        } else {
            0.0
        };
        Reliability {
            bins: table,
            ece,
            brier,
            count: n,
        }
    }

    /// The table as text, one row per non-empty bin.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<11}  {:>5}  {:>15}  {:>17}\n",
            "CONFIDENCE", "CASES", "MEAN CONFIDENCE", "OBSERVED ACCURACY"
        );
        for b in self.bins.iter().filter(|b| b.count > 0) {
            out.push_str(&format!(
                "{:<11}  {:>5}  {:>15.3}  {:>17.3}\n",
                format!("{:.1}–{:.1}", b.from, b.to),
                b.count,
                b.mean_confidence,
                b.accuracy
            ));
        }
        out.push_str(&format!(
            "expected calibration error {:.3}, Brier score {:.3}, over {} answers\n",
            self.ece, self.brier, self.count
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calibrated_forecaster_has_no_calibration_error() {
        // 10 answers at 0.8 confidence, 8 right; 10 at 0.2, 2 right.
        let mut answers: Vec<(f64, bool)> = (0..10).map(|i| (0.8, i < 8)).collect();
        answers.extend((0..10).map(|i| (0.2, i < 2)));
        let r = Reliability::new(&answers, 10);
        assert!(r.ece < 1e-12, "{r:?}");
        assert_eq!(r.bins[8].count, 10);
        assert!((r.bins[8].accuracy - 0.8).abs() < 1e-12);
        assert!((r.brier - 0.16).abs() < 1e-12);
        assert!(r.table().contains("0.8–0.9"));
    }

    #[test]
    fn an_overconfident_forecaster_shows_the_gap() {
        let answers: Vec<(f64, bool)> = (0..10).map(|i| (1.0, i < 5)).collect();
        let r = Reliability::new(&answers, 5);
        assert!((r.ece - 0.5).abs() < 1e-12);
        assert_eq!(r.bins[4].count, 10);
    }
}
