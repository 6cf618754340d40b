//! The statistics risks rest on: the Laplace trend test for a rising event rate, the
//! Benjamini-Hochberg correction for testing many services at once, and rates shrunk toward the
//! estate's so that a service with two changes, both failed, does not read as failing every time.

/// How many observations' worth of the estate's rate a shrunk rate starts from.
pub const PRIOR_WEIGHT: f64 = 4.0;

/// `P(Z > z)` for a standard normal `Z`.
pub fn normal_upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' Chebyshev fit, relative error below
/// 1.2e-7 everywhere), enough for p-values.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The Laplace test of a trend in the times of events in `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Events in the window.
    pub events: usize,
    /// Events in its first half.
    pub earlier: usize,
    /// Events in its second half.
    pub recent: usize,
    /// The test statistic: standard normal when the rate is constant, large when it rises.
    pub statistic: f64,
    /// One-sided p-value of a rising rate.
    pub p_value: f64,
}

/// The Laplace test (Cox and Lewis, 1966): for a Poisson process of constant rate observed over
/// `[start, end)`, the mean event time sits at the window's middle with variance `T²/(12n)`;
/// events crowding toward the end push `U = (mean − middle) / (T·√(1/12n))` up. `None` without
/// events or with an empty window; events outside the window are ignored.
pub fn laplace(times: &[f64], start: f64, end: f64) -> Option<Trend> {
    let length = end - start;
    if length <= 0.0 {
        return None;
    }
    let inside: Vec<f64> = times
        .iter()
        .copied()
        .filter(|t| (start..end).contains(t))
        .collect();
    let n = inside.len();
    if n == 0 {
        return None;
    }
    let middle = start + length / 2.0;
    let mean = inside.iter().sum::<f64>() / n as f64;
    let statistic = (mean - middle) / (length * (1.0 / (12.0 * n as f64)).sqrt());
    let recent = inside.iter().filter(|&&t| t >= middle).count();
    Some(Trend {
        events: n,
        earlier: n - recent,
        recent,
        statistic,
        p_value: normal_upper_tail(statistic),
    })
}

/// `P(X ≥ hits)` for `X ~ Binomial(trials, rate)`: how surprising `hits` is if the true rate is
/// `rate` (summed in log space, exact for any `trials`).
pub fn binomial_upper_tail(hits: usize, trials: usize, rate: f64) -> f64 {
    if hits == 0 {
        return 1.0;
    }
    if hits > trials || rate <= 0.0 {
        return 0.0;
    }
    if rate >= 1.0 {
        return 1.0;
    }
    let ln_choose = |k: usize| -> f64 {
        (1..=k)
            .map(|i| ((trials - k + i) as f64 / i as f64).ln())
            .sum()
    };
    // Terms from `hits` up, each from the one before: pmf(k+1) = pmf(k)·(n−k)/(k+1)·p/(1−p).
    let mut log_term =
        ln_choose(hits) + hits as f64 * rate.ln() + (trials - hits) as f64 * (1.0 - rate).ln();
    let mut total = 0.0;
    for k in hits..=trials {
        total += log_term.exp();
        log_term += ((trials - k) as f64 / (k + 1) as f64).ln() + rate.ln() - (1.0 - rate).ln();
    }
    total.min(1.0)
}

/// Benjamini-Hochberg adjusted p-values (q-values), in the order given: flagging those at or
/// below `alpha` keeps the expected share of false flags among all flags at most `alpha`.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![1.0; m];
    let mut running = 1.0_f64;
    for (rank, &index) in order.iter().enumerate().rev() {
        running = running.min(p_values[index] * m as f64 / (rank + 1) as f64);
        adjusted[index] = running.min(1.0);
    }
    adjusted
}

/// `hits` out of `trials`, shrunk toward `prior` by [`PRIOR_WEIGHT`] observations: with few
/// trials it stays near the estate's rate, with many it approaches the service's own.
pub fn shrunk_rate(hits: usize, trials: usize, prior: f64) -> f64 {
    (hits as f64 + PRIOR_WEIGHT * prior) / (trials as f64 + PRIOR_WEIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_tail_matches_tabulated_values() {
        for (z, p) in [
            (0.0, 0.5),
            (1.644_853_6, 0.05),
            (2.326_347_9, 0.01),
            (-1.959_964, 0.975),
        ] {
            assert!((normal_upper_tail(z) - p).abs() < 1e-6, "z {z}");
        }
    }

    #[test]
    fn evenly_spread_events_show_no_trend_and_crowded_late_ones_do() {
        let even: Vec<f64> = (0..20).map(|i| f64::from(i) * 5.0 + 2.5).collect();
        let flat = laplace(&even, 0.0, 100.0).unwrap();
        assert!(flat.statistic.abs() < 1e-9 && (flat.p_value - 0.5).abs() < 1e-6);
        assert_eq!((flat.earlier, flat.recent), (10, 10));
        let late: Vec<f64> = (0..12).map(|i| 70.0 + f64::from(i) * 2.5).collect();
        let rising = laplace(&late, 0.0, 100.0).unwrap();
        // Mean 83.75 against 50, T·√(1/144) = 8.33: U = 4.05.
        assert!((rising.statistic - 4.05).abs() < 1e-9, "{rising:?}");
        assert!(rising.p_value < 1e-4);
        assert!(laplace(&[150.0], 0.0, 100.0).is_none());
    }

    #[test]
    fn benjamini_hochberg_matches_a_hand_computed_example() {
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.5]);
        // Sorted 0.01, 0.03, 0.04, 0.5: p·m/rank 0.04, 0.06, 0.0533, 0.5, then the running
        // minimum from the largest: 0.04, 0.0533, 0.0533, 0.5.
        let expected = [0.04, 0.053_333_333, 0.053_333_333, 0.5];
        for (got, want) in q.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{q:?}");
        }
    }

    #[test]
    fn the_binomial_tail_matches_hand_computed_values() {
        // P(X ≥ 2 | 3, 0.5) = (3 + 1) / 8.
        assert!((binomial_upper_tail(2, 3, 0.5) - 0.5).abs() < 1e-12);
        // P(X ≥ 5 | 13, 0.11) = Σ C(13, i) 0.11^i 0.89^(13−i) for i ≥ 5 = 0.009687 (exact sum).
        assert!((binomial_upper_tail(5, 13, 0.11) - 0.009_686_811).abs() < 1e-8);
        assert_eq!(binomial_upper_tail(0, 10, 0.3), 1.0);
        assert_eq!(binomial_upper_tail(11, 10, 0.3), 0.0);
        assert!(binomial_upper_tail(900, 1000, 0.5) < 1e-100);
    }

    #[test]
    fn a_shrunk_rate_needs_many_trials_to_leave_the_prior() {
        assert!((shrunk_rate(2, 2, 0.1) - 2.4 / 6.0).abs() < 1e-12);
        assert!((shrunk_rate(40, 100, 0.1) - 40.4 / 104.0).abs() < 1e-12);
    }
}
