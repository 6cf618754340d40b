//! Robust deviation of a window of samples from a baseline.

use crate::stats::quantile;

use super::MAX_Z;

/// Which way a deviation counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// Only a rise is suspicious (CPU, latency, errors).
    Up,
    /// A change either way is (traffic, disk and network volumes, success rates).
    Both,
}

/// Centre and spread of a baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Baseline {
    /// Finite baseline samples.
    pub count: usize,
    /// Their median (0 when there are none).
    pub median: f64,
    /// Their largest value (−∞ when there are none).
    pub max: f64,
    /// The spread a deviation is measured in; never 0.
    pub sigma: f64,
}

impl Baseline {
    /// The baseline of `samples` (finite values only). `counts` says the samples are event
    /// counts per period, whose natural noise is Poisson: the spread is then at least
    /// `√median` (and at least 1), so a handful of extra events in a quiet minute is no alarm.
    pub fn new(samples: &[f64], counts: bool) -> Baseline {
        Baseline::with_floor(samples, counts, 0.0)
    }

    /// [`Baseline::new`] with the spread floored at `floor` as well: the resolution below
    /// which a change means nothing (a millisecond for span timings).
    pub fn with_floor(samples: &[f64], counts: bool, floor: f64) -> Baseline {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return Baseline {
                count: 0,
                median: 0.0,
                max: f64::NEG_INFINITY,
                sigma: if counts { 1.0 } else { floor.max(f64::EPSILON) },
            };
        }
        let median = quantile(&sorted, 0.5);
        let iqr = quantile(&sorted, 0.75) - quantile(&sorted, 0.25);
        let mut deviations: Vec<f64> = sorted.iter().map(|v| (v - median).abs()).collect();
        deviations.sort_by(f64::total_cmp);
        let mad = quantile(&deviations, 0.5);
        // The spread is the larger robust estimate, floored at 10 % of the level: with one or two
        // baseline samples (a single reference minute) there is no spread to estimate, and a
        // deviation is then judged relative to the level itself.
        let mut sigma = (iqr / 1.349).max(1.4826 * mad).max(0.1 * median.abs());
        if counts {
            sigma = sigma.max(median.max(1.0).sqrt());
        }
        sigma = sigma.max(floor);
        Baseline {
            count: sorted.len(),
            median,
            max: *sorted.last().expect("not empty"),
            sigma: sigma.max(f64::EPSILON),
        }
    }

    /// The deviation of `window` from the baseline in spreads, capped at [`MAX_Z`], with the
    /// sample that reached it: the largest, or the second largest from [`SUSTAINED_FROM`]
    /// samples on; `None` without a baseline or finite samples.
    pub fn z(&self, window: &[f64], direction: Direction) -> Option<(f64, f64)> {
        if self.count == 0 {
            return None;
        }
        let mut scored: Vec<(f64, f64)> = window
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .map(|v| {
                let d = (v - self.median) / self.sigma;
                let z = match direction {
                    Direction::Up => d,
                    Direction::Both => d.abs(),
                };
                (z.clamp(0.0, MAX_Z), v)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        // A fault lasts: with three samples or more, the deviation must hold for two of them
        // (the second largest counts), so a lone scrape spike of an idle service is no alarm.
        let pick = if scored.len() >= SUSTAINED_FROM { 1 } else { 0 };
        scored.get(pick).copied()
    }
}

/// Samples in a window from which a deviation must be sustained over two of them.
pub(super) const SUSTAINED_FROM: usize = 3;

/// The robust z of the largest rise of `window` over `baseline`, as the detectors compute it
/// for a metric: `(x − median) / spread`, with spread the larger of IQR/1.349, 1.4826·MAD and
/// 10 % of the median, capped at [`MAX_Z`]. `None` when either side has no finite sample.
pub fn robust_z(baseline: &[f64], window: &[f64]) -> Option<f64> {
    Baseline::new(baseline, false)
        .z(window, Direction::Up)
        .map(|(z, _)| z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rise_is_measured_in_baseline_spreads() {
        let baseline = [10.0, 11.0, 9.0, 10.0, 12.0, 8.0, 10.0];
        let z = robust_z(&baseline, &[10.0, 20.0]).unwrap();
        // median 10, IQR 1.5 → σ ≈ 1.48 from MAD (1.0 · 1.4826), and the 10 % floor is 1.0.
        assert!((z - 10.0 / 1.4826).abs() < 1e-9, "{z}");
        assert_eq!(robust_z(&baseline, &[5.0]), Some(0.0));
        assert_eq!(robust_z(&[], &[5.0]), None);
        assert_eq!(robust_z(&baseline, &[f64::NAN]), None);
    }

    #[test]
    fn a_flat_baseline_is_judged_relative_to_its_level_and_capped() {
        assert!((robust_z(&[100.0], &[150.0]).unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(robust_z(&[0.0, 0.0], &[1.0]), Some(MAX_Z));
    }

    #[test]
    fn counts_have_poisson_noise() {
        let base = Baseline::new(&[100.0], true);
        assert!((base.sigma - 10.0).abs() < 1e-9);
        let quiet = Baseline::new(&[0.0], true);
        assert_eq!(quiet.z(&[2.0], Direction::Up), Some((2.0, 2.0)));
        let both = Baseline::new(&[100.0], true);
        assert_eq!(both.z(&[50.0], Direction::Both), Some((5.0, 50.0)));
        assert_eq!(both.z(&[50.0], Direction::Up), Some((0.0, 50.0)));
    }
}
