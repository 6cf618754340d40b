//! Reference rankers from the literature, for the evaluation table: N-Sigma and BARO, computed
//! the way RCAEval (Pham et al., WWW 2025) computes them for its benchmark.
//!
//! Both score every series of a case by how far its samples after the anchor rise above the
//! samples before it, and give a service the maximum over its series:
//! - **N-Sigma**: z = (x − mean) / standard deviation of the normal samples;
//! - **BARO** (Pham et al., FSE 2024), robust: z = (x − median) / interquartile range.
//!
//! The case is prepared as RCAEval's benchmark script (`main.py`) prepares a real-system case:
//! - series named `*latency-50` are left out (`main.py` keeps the 90th percentile only), and so
//!   are `*lat_50` and `*lat_99` (RCAEval's Sock Shop preparation, `preprocess_sock_shop`, keeps
//!   `lat_90`);
//! - missing samples are filled forward, then with 0, over the whole series;
//! - only the last [`RCAEVAL_ROWS`] samples before the anchor and the first [`RCAEVAL_ROWS`] from
//!   it are kept (`length * 60 // 2` *rows* with its default length of 10 minutes: on RCAEval's
//!   one-second data, five minutes either side);
//! - a series constant before the anchor or constant after it is left out (RCAEval drops such
//!   columns before scaling).
//!
//! Then, as scikit-learn's scalers do, a spread below 10 machine epsilons counts as 1; the score
//! is the signed maximum, so only rises count. A candidate without any scored series scores
//! `NaN` and ranks last. Ties are left as they are; the evaluation counts them against the true
//! cause, where RCAEval keeps them in column order.
//!
//! Where this differs from RCAEval: it reads every series of a case, including the trace and
//! log statistics and leaves edge series out (RCAEval's `data.csv` holds what the dataset put
//! there), and it reads numbers exactly where pandas' CSV parser may round the last digit (see
//! `bench/peers/README.md`).

use std::collections::HashMap;

use crate::case::{Case, Series};
use crate::ranker::{Ranker, Ranking};
use crate::stats::quantile;

/// How the normal samples are summarised into a centre and a spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    /// Mean and standard deviation.
    Standard,
    /// Median and interquartile range.
    Robust,
}

/// N-Sigma: the maximum standard score of a service's series after the anchor.
#[derive(Debug, Clone, Copy, Default)]
pub struct NSigma;

/// BARO: the maximum robust score (median / IQR) of a service's series after the anchor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Baro;

impl Ranker for NSigma {
    fn name(&self) -> &str {
        "nsigma"
    }

    fn rank(&self, case: &Case) -> Ranking {
        rank_by_max_score(case, Scale::Standard)
    }
}

impl Ranker for Baro {
    fn name(&self) -> &str {
        "baro"
    }

    fn rank(&self, case: &Case) -> Ranking {
        rank_by_max_score(case, Scale::Robust)
    }
}

/// Samples kept on each side of the anchor, as RCAEval's `main.py` keeps `length * 60 // 2` rows
/// with `length` = 10.
pub const RCAEVAL_ROWS: usize = 300;

/// Metric-name endings RCAEval's preparation leaves out (see the module documentation).
const DROPPED_SUFFIXES: [&str; 3] = ["latency-50", "lat_50", "lat_99"];

fn rank_by_max_score(case: &Case, scale: Scale) -> Ranking {
    let mut best: HashMap<&str, f64> = case
        .candidates
        .iter()
        .map(|c| (c.as_str(), f64::NAN))
        .collect();
    for series in &case.series {
        let Some(slot) = best.get_mut(series.service.as_str()) else {
            continue;
        };
        if DROPPED_SUFFIXES.iter().any(|s| series.name.ends_with(s)) {
            continue;
        }
        if let Some(score) = series_score(series, case.anchor, scale)
            && (slot.is_nan() || score > *slot)
        {
            *slot = score;
        }
    }
    Ranking::from_scores(best.into_iter().map(|(s, score)| (s.to_string(), score)))
}

/// The largest score of the (at most [`RCAEVAL_ROWS`]) samples at or after `anchor`, against the
/// (at most [`RCAEVAL_ROWS`]) samples before it; `None` when either side is empty or constant.
fn series_score(series: &Series, anchor: i64, scale: Scale) -> Option<f64> {
    let filled = fill_forward_then_zero(&series.values);
    let split = series.times.partition_point(|&t| t < anchor);
    let (normal, abnormal) = filled.split_at(split);
    let normal = &normal[normal.len().saturating_sub(RCAEVAL_ROWS)..];
    let abnormal = &abnormal[..abnormal.len().min(RCAEVAL_ROWS)];
    let constant = |values: &[f64]| values.iter().all(|v| *v == values[0]);
    if normal.is_empty() || abnormal.is_empty() || constant(normal) || constant(abnormal) {
        return None;
    }
    let (centre, spread) = match scale {
        Scale::Standard => mean_and_std(normal),
        Scale::Robust => median_and_iqr(normal),
    };
    // scikit-learn's rule (`_handle_zeros_in_scale`): a spread below 10 machine epsilons is no
    // spread at all. Rounding noise in a flat series (0.00496 next to 0.004960000000000001)
    // would otherwise score ~1e17.
    let spread = if spread < 10.0 * f64::EPSILON || !spread.is_finite() {
        1.0
    } else {
        spread
    };
    abnormal
        .iter()
        .map(|x| (x - centre) / spread)
        .reduce(f64::max)
}

fn fill_forward_then_zero(values: &[f64]) -> Vec<f64> {
    let mut last = None;
    values
        .iter()
        .map(|&v| {
            if v.is_finite() {
                last = Some(v);
                v
            } else {
                last.unwrap_or(0.0)
            }
        })
        .collect()
}

fn mean_and_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    // Population deviation, as scikit-learn's StandardScaler.
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, variance.sqrt())
}

fn median_and_iqr(values: &[f64]) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let q = |p: f64| quantile(&sorted, p);
    (q(0.5), q(0.75) - q(0.25))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Family, Source};

    fn series(service: &str, values: &[f64]) -> Series {
        Series {
            service: service.into(),
            source: Source::Metric,
            family: Family::Cpu,
            name: "cpu".into(),
            times: (0..values.len() as i64).map(|i| i * 60).collect(),
            values: values.to_vec(),
        }
    }

    fn case(series: Vec<Series>) -> Case {
        Case {
            id: "c".into(),
            anchor: 300,
            candidates: vec!["a".into(), "b".into(), "silent".into()],
            series,
            ..Case::default()
        }
    }

    #[test]
    fn the_service_whose_series_rises_most_ranks_first_and_silent_ones_last() {
        let case = case(vec![
            series("a", &[1.0, 1.1, 0.9, 1.0, 1.05, 1.2, 1.1]),
            series("b", &[1.0, 1.1, 0.9, 1.0, 1.05, 9.0, 8.0]),
            series("unknown", &[0.0, 0.0, 0.0, 0.0, 0.0, 99.0, 99.0]),
        ]);
        for ranker in [&NSigma as &dyn Ranker, &Baro] {
            let ranking = ranker.rank(&case);
            assert_eq!(ranking.names(), ["b", "a", "silent"], "{}", ranker.name());
            assert!(ranking.services()[2].score.is_nan());
        }
    }

    #[test]
    fn robust_scores_ignore_a_single_spike_in_the_baseline() {
        // One huge spike before the anchor inflates the standard deviation of "a" so N-Sigma
        // misses its later rise, while the median/IQR of BARO does not.
        let case = case(vec![
            series("a", &[1.0, 1.2, 100.0, 0.8, 1.1, 30.0, 1.0]),
            series("b", &[1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 5.0]),
        ]);
        assert_eq!(Baro.rank(&case).names()[0], "a");
        assert_eq!(NSigma.rank(&case).names()[0], "b");
    }

    #[test]
    fn series_constant_on_either_side_of_the_anchor_are_left_out() {
        // Flat at 0 before the fault: without the rule its raw value would be its score.
        let case = case(vec![
            series("a", &[0.0, 0.0, 0.0, 0.0, 0.0, 500.0, 400.0]),
            series("b", &[1.0, 1.1, 0.9, 1.0, 1.05, 1.3, 1.2]),
            // Flat after the anchor.
            series("silent", &[1.0, 1.1, 0.9, 1.0, 1.05, 9.0, 9.0]),
        ]);
        for ranker in [&NSigma as &dyn Ranker, &Baro] {
            let ranking = ranker.rank(&case);
            assert_eq!(ranking.names()[0], "b", "{}", ranker.name());
            assert!(ranking.services()[1].score.is_nan());
        }
    }

    #[test]
    fn a_spread_of_rounding_noise_counts_as_no_spread() {
        // The median/IQR of "a" before the anchor is rounding noise; its rise is tiny.
        let noisy = 0.004_960_000_000_000_001;
        let case = case(vec![
            series(
                "a",
                &[0.00496, noisy, 0.00496, noisy, 0.00496, 0.005, 0.005],
            ),
            series("b", &[1.0, 1.1, 0.9, 1.0, 1.05, 3.0, 2.0]),
        ]);
        assert_eq!(Baro.rank(&case).names()[0], "b");
    }

    #[test]
    fn only_rcaeval_rows_either_side_of_the_anchor_count() {
        // A rise 301 samples after the anchor is outside RCAEval's window; so is a spike
        // 301 samples before it, which would otherwise inflate the spread.
        let n = 1000;
        let anchor = 500;
        let mut values: Vec<f64> = (0..n).map(|i| 1.0 + 0.01 * (i % 7) as f64).collect();
        values[anchor - 301] = 1000.0;
        values[anchor + 301] = 50.0;
        values[anchor + 10] = 3.0;
        let a = Series {
            times: (0..n as i64).collect(),
            values,
            ..series("a", &[])
        };
        let scored = series_score(&a, anchor as i64, Scale::Robust).unwrap();
        let iqr = 0.04; // of the 300 normal samples, values 1.00..1.06 in steps of 0.01
        assert!((scored - (3.0 - 1.03) / iqr).abs() < 0.3, "{scored}");
    }

    #[test]
    fn the_median_latency_columns_rcaeval_drops_are_left_out() {
        let mut dropped = series("a", &[1.0, 1.1, 0.9, 1.0, 1.05, 90.0, 80.0]);
        dropped.name = "latency-50".into();
        let mut kept = series("b", &[1.0, 1.1, 0.9, 1.0, 1.05, 2.0, 2.5]);
        kept.name = "latency-90".into();
        let ranking = Baro.rank(&case(vec![dropped, kept]));
        assert_eq!(ranking.names()[0], "b");
        assert!(ranking.services()[1].score.is_nan());
    }

    #[test]
    fn gaps_are_filled_forward_then_with_zero() {
        assert_eq!(
            fill_forward_then_zero(&[f64::NAN, 2.0, f64::NAN, 3.0]),
            [0.0, 2.0, 2.0, 3.0]
        );
    }

    #[test]
    fn median_and_iqr_interpolate_like_numpy() {
        assert_eq!(median_and_iqr(&[4.0, 1.0, 3.0, 2.0]), (2.5, 1.5));
    }
}
