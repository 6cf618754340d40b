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
    /// The spread a rise is measured in; never 0.
    pub sigma: f64,
    /// The spread a fall is measured in; never 0.
    pub sigma_down: f64,
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
            let sigma = if counts { 1.0 } else { floor.max(f64::EPSILON) };
            return Baseline {
                count: 0,
                median: 0.0,
                max: f64::NEG_INFINITY,
                sigma,
                sigma_down: sigma,
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
        let mut core = (iqr / 1.349).max(1.4826 * mad).max(0.1 * median.abs());
        if counts {
            core = core.max(median.max(1.0).sqrt());
        }
        core = core.max(floor).max(f64::EPSILON);
        // Real metrics are heavy-tailed: a latency quantile that jumps to a histogram's last
        // bucket every few minutes has a narrow middle and a wide tail. A deviation is measured
        // in the spread of the tail it lies in (the 90th or 10th percentile's distance from the
        // median, which equals σ for a normal distribution), so a jump the baseline itself
        // shows every few minutes is no alarm however narrow the middle.
        let tail = |q: f64| (quantile(&sorted, q) - median).abs() / TAIL_Z;
        Baseline {
            count: sorted.len(),
            median,
            max: *sorted.last().expect("not empty"),
            sigma: core.max(tail(0.9)),
            sigma_down: core.max(tail(0.1)),
        }
    }

    /// The baseline with its spreads moderated toward `prior` (the spread series of its kind
    /// typically show, see `Moderation`), as if `weight` samples of that spread had been seen
    /// besides its own: `σ² = (n·σ_own² + weight·prior²) / (n + weight)`. A long history keeps
    /// its own spread; one or two samples cannot estimate a spread at all, and borrow it.
    pub fn moderated(mut self, prior: f64, weight: f64) -> Baseline {
        if self.count == 0 || !(prior.is_finite() && prior > 0.0) {
            return self;
        }
        let n = self.count as f64;
        let blend = |own: f64| ((n * own * own + weight * prior * prior) / (n + weight)).sqrt();
        self.sigma = blend(self.sigma).max(f64::EPSILON);
        self.sigma_down = blend(self.sigma_down).max(f64::EPSILON);
        self
    }

    /// The value of `window` a deviation is judged by (see [`Baseline::z`]): the largest, or
    /// the second largest from [`SUSTAINED_FROM`] finite samples on; `None` without one.
    pub fn sustained(window: &[f64]) -> Option<f64> {
        let mut finite: Vec<f64> = window.iter().copied().filter(|v| v.is_finite()).collect();
        finite.sort_by(|a, b| b.total_cmp(a));
        let pick = if finite.len() >= SUSTAINED_FROM { 1 } else { 0 };
        finite.get(pick).copied()
    }

    /// The deviation the baseline itself reaches, by the same rule as [`Baseline::z`], over
    /// every run of `width` consecutive samples of `history` (the baseline in time order, `NaN`
    /// where nothing was observed): how high this series goes by itself, at no incident. A
    /// series that jumps every few minutes (a batch job, a histogram's overflow bucket, an idle
    /// pod's scrape spikes) shows it here, and its incident deviation counts only beyond it.
    /// 0 when the history is too short for a run.
    pub fn history_z(&self, history: &[f64], width: usize, direction: Direction) -> f64 {
        let finite = history.iter().filter(|v| v.is_finite()).count();
        // Runs at most a third of the history, so that there are several to compare.
        let width = width.min(finite / 3);
        if width == 0 || self.count == 0 {
            return 0.0;
        }
        // Each sample's deviation once (NaN where nothing was observed), then per run the value
        // `z` would pick: the largest, or the second largest in a run of three samples or more.
        // On the scale of [`Baseline::z`], widened alike, so the two compare.
        let widen = self.prediction_widening();
        let z: Vec<f64> = history
            .iter()
            .map(|&v| {
                if !v.is_finite() {
                    return f64::NAN;
                }
                let d = match direction {
                    Direction::Up => (v - self.median) / self.sigma,
                    Direction::Both if v >= self.median => (v - self.median) / self.sigma,
                    Direction::Both => (self.median - v) / self.sigma_down,
                } / widen;
                d.clamp(0.0, MAX_Z)
            })
            .collect();
        let second = width >= SUSTAINED_FROM;
        z.windows(width)
            .map(|run| {
                let (mut top, mut next) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
                for &x in run.iter().filter(|x| x.is_finite()) {
                    if x > top {
                        next = top;
                        top = x;
                    } else if x > next {
                        next = x;
                    }
                }
                let picked = if second { next } else { top };
                if picked.is_finite() { picked } else { 0.0 }
            })
            .fold(0.0, f64::max)
    }

    /// How much wider a new sample's spread is than the baseline's own, because the median it
    /// is compared with is itself estimated from `count` samples: `sqrt(1 + (π/2) / count)`,
    /// the prediction interval of a median (1.60 with one baseline sample, 1.04 with twenty).
    /// A series with one reference minute says less about what is normal than one with an hour.
    fn prediction_widening(&self) -> f64 {
        (1.0 + std::f64::consts::FRAC_PI_2 / self.count.max(1) as f64).sqrt()
    }

    /// The deviation of `window` from the baseline in spreads, capped at [`MAX_Z`], with the
    /// sample that reached it: the largest, or the second largest from [`SUSTAINED_FROM`]
    /// samples on; `None` without a baseline or finite samples.
    pub fn z(&self, window: &[f64], direction: Direction) -> Option<(f64, f64)> {
        if self.count == 0 {
            return None;
        }
        let widen = self.prediction_widening();
        let mut scored: Vec<(f64, f64)> = window
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .map(|v| {
                let z = match direction {
                    Direction::Up => (v - self.median) / self.sigma,
                    Direction::Both if v >= self.median => (v - self.median) / self.sigma,
                    Direction::Both => (self.median - v) / self.sigma_down,
                } / widen;
                (z.clamp(0.0, MAX_Z), v)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        // A fault lasts: in a window of three samples or more, the deviation must hold for two
        // of them (the second largest counts), so a lone scrape spike of an idle service is no
        // alarm. Samples missing from the window count as not deviating: a component observed
        // in a few samples of it cannot show that its one jump lasted.
        let pick = if window.len() >= SUSTAINED_FROM { 1 } else { 0 };
        match scored.get(pick) {
            Some(&found) => Some(found),
            None => scored.last().map(|&(_, v)| (0.0, v)),
        }
    }
}

/// The standard normal's 90th percentile: a tail quantile's distance from the median in σ.
const TAIL_Z: f64 = 1.281_551_565_5;

/// Samples in a window from which a deviation must be sustained over two of them.
pub(super) const SUSTAINED_FROM: usize = 3;

/// The robust z of the largest rise of `window` over `baseline`, as the detectors compute it
/// for a metric: `(x − median) / spread`, with spread the larger of IQR/1.349, 1.4826·MAD,
/// 10 % of the median and the upper tail's (90th percentile − median)/1.2816, capped at
/// [`MAX_Z`]. `None` when either side has no finite sample.
pub fn robust_z(baseline: &[f64], window: &[f64]) -> Option<f64> {
    Baseline::new(baseline, false)
        .z(window, Direction::Up)
        .map(|(z, _)| z)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prediction widening of a baseline of `n` samples.
    fn widen(n: usize) -> f64 {
        (1.0 + std::f64::consts::FRAC_PI_2 / n as f64).sqrt()
    }

    #[test]
    fn a_rise_is_measured_in_baseline_spreads() {
        let baseline = [10.0, 11.0, 9.0, 10.0, 12.0, 8.0, 10.0];
        let z = robust_z(&baseline, &[10.0, 20.0]).unwrap();
        // median 10, IQR 1.5 → σ ≈ 1.48 from MAD (1.0 · 1.4826), and the 10 % floor is 1.0;
        // widened for a median estimated from 7 samples.
        assert!((z - 10.0 / 1.4826 / widen(7)).abs() < 1e-9, "{z}");
        assert_eq!(robust_z(&baseline, &[5.0]), Some(0.0));
        assert_eq!(robust_z(&[], &[5.0]), None);
        assert_eq!(robust_z(&baseline, &[f64::NAN]), None);
    }

    #[test]
    fn the_same_rise_counts_for_less_over_a_shorter_baseline() {
        let long: Vec<f64> = (0..60).map(|i| 100.0 + f64::from(i % 3) - 1.0).collect();
        let (z_long, _) = Baseline::new(&long, false)
            .z(&[150.0], Direction::Up)
            .unwrap();
        let (z_one, _) = Baseline::new(&[100.0], false)
            .z(&[150.0], Direction::Up)
            .unwrap();
        // Both spreads are the 10 % floor (10): only the uncertainty of the median differs.
        assert!((z_long - 5.0 / widen(60)).abs() < 1e-9, "{z_long}");
        assert!((z_one - 5.0 / widen(1)).abs() < 1e-9, "{z_one}");
        assert!(z_one < 0.7 * z_long, "{z_one} vs {z_long}");
    }

    #[test]
    fn a_flat_baseline_is_judged_relative_to_its_level_and_capped() {
        assert!((robust_z(&[100.0], &[150.0]).unwrap() - 5.0 / widen(1)).abs() < 1e-9);
        assert_eq!(robust_z(&[0.0, 0.0], &[1.0]), Some(MAX_Z));
    }

    #[test]
    fn counts_have_poisson_noise() {
        let base = Baseline::new(&[100.0], true);
        assert!((base.sigma - 10.0).abs() < 1e-9);
        let close = |got: Option<(f64, f64)>, z: f64, v: f64| {
            let (gz, gv) = got.unwrap();
            assert!((gz - z).abs() < 1e-9 && gv == v, "{gz} {gv}");
        };
        let quiet = Baseline::new(&[0.0], true);
        close(quiet.z(&[2.0], Direction::Up), 2.0 / widen(1), 2.0);
        let both = Baseline::new(&[100.0], true);
        close(both.z(&[50.0], Direction::Both), 5.0 / widen(1), 50.0);
        assert_eq!(both.z(&[50.0], Direction::Up), Some((0.0, 50.0)));
    }
}
