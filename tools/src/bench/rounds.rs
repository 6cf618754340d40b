//! Interleaved rounds, the pure part: which target goes when, and the statistics over rounds.
//!
//! On a shared machine the state drifts (other work, page cache, thermal limits), so a target
//! measured in one long window after another's compares two different machines. The benches
//! therefore measure in short rounds, every target once per round, and compare targets round by
//! round: two windows of the same round are adjacent in time and saw nearly the same machine.
//! The rotation keeps any target from always going first (just after the previous round's last
//! target) or last; the median over rounds shrugs off a round that a burst elsewhere spoiled,
//! and the spread says how much the rounds disagreed.

use serde::Serialize;

/// The order of the targets in each round: round `r` starts with target `r mod n` and goes on
/// in index order, wrapping around, so every target takes every position in turn.
pub(crate) fn schedule(targets: usize, rounds: usize) -> Vec<Vec<usize>> {
    (0..rounds)
        .map(|round| {
            (0..targets)
                .map(|position| (round + position) % targets)
                .collect()
        })
        .collect()
}

/// The per-round ratio of a target's figure to a baseline's, paired by round index: `None` for
/// a round where either was not measured, or the baseline measured zero.
pub(crate) fn ratios_by_round(
    target: &[Option<f64>],
    baseline: &[Option<f64>],
) -> Vec<Option<f64>> {
    target
        .iter()
        .zip(baseline)
        .map(|(value, base)| match (value, base) {
            (Some(value), Some(base)) if *base > 0.0 => Some(value / base),
            _ => None,
        })
        .collect()
}

/// A set of per-round figures summed up: its median and how far the rounds spread around it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Spread {
    /// Rounds that gave a figure.
    pub(crate) rounds: usize,
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// First quartile (25 %).
    pub(crate) q1: f64,
    /// Third quartile (75 %).
    pub(crate) q3: f64,
}

impl Spread {
    /// The spread of the figures that are there; `None` when no round gave one.
    pub(crate) fn of(values: &[Option<f64>]) -> Option<Spread> {
        let mut sorted = values.iter().flatten().copied().collect::<Vec<_>>();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        Some(Spread {
            rounds: sorted.len(),
            median: quantile(&sorted, 0.5),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            q1: quantile(&sorted, 0.25),
            q3: quantile(&sorted, 0.75),
        })
    }
}

/// The `q` quantile of sorted values, interpolated linearly between the two nearest ranks (the
/// usual definition, numpy's default): with a handful of rounds, nearest rank would jump from
/// one round's figure to the next, and the median of an even count is the mean of the middle two.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let at = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let below = at.floor() as usize;
            let above = (below + 1).min(n - 1);
            sorted[below] + (at - below as f64) * (sorted[above] - sorted[below])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_rotates_so_every_target_takes_every_position() {
        let order = schedule(3, 4);
        assert_eq!(
            order,
            [vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1], vec![0, 1, 2]]
        );
        // Over a multiple of the target count, each target is first, middle and last as often.
        for target in 0..3 {
            let positions = schedule(3, 6)
                .iter()
                .map(|round| round.iter().position(|&t| t == target).unwrap())
                .fold([0; 3], |mut count, position| {
                    count[position] += 1;
                    count
                });
            assert_eq!(positions, [2, 2, 2], "target {target}");
        }
        assert_eq!(schedule(1, 2), [vec![0], vec![0]]);
        assert!(schedule(0, 2).iter().all(Vec::is_empty));
    }

    #[test]
    fn ratios_pair_the_two_figures_of_the_same_round() {
        let rootcause = [Some(60.0), Some(30.0), None, Some(50.0), Some(10.0)];
        let alertmanager = [Some(40.0), Some(60.0), Some(50.0), None, Some(0.0)];
        assert_eq!(
            ratios_by_round(&rootcause, &alertmanager),
            [Some(1.5), Some(0.5), None, None, None],
            "round by round; a missing figure or a zero baseline gives no ratio"
        );
        // Not the ratio of the sorted figures or of the totals.
        let spread = Spread::of(&ratios_by_round(&rootcause, &alertmanager)).unwrap();
        assert_eq!((spread.rounds, spread.median), (2, 1.0));
    }

    #[test]
    fn the_median_and_quartiles_interpolate_between_ranks() {
        // Six rounds' ratios, out of order. Sorted: 0.8 0.9 1.1 1.2 1.3 2.0.
        // Median: between the 3rd and 4th, (1.1 + 1.2) / 2 = 1.15.
        // q1: rank (6 - 1) * 0.25 = 1.25: 0.9 + 0.25 * (1.1 - 0.9) = 0.95.
        // q3: rank 3.75: 1.2 + 0.75 * (1.3 - 1.2) = 1.275.
        let ratios = [1.2, 0.8, 2.0, 1.1, 0.9, 1.3].map(Some);
        let spread = Spread::of(&ratios).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert_eq!(spread.rounds, 6);
        assert!(close(spread.median, 1.15), "{spread:?}");
        assert!(close(spread.q1, 0.95), "{spread:?}");
        assert!(close(spread.q3, 1.275), "{spread:?}");
        assert_eq!((spread.min, spread.max), (0.8, 2.0));

        // An odd count: the middle figure; missing rounds are left out.
        let spread = Spread::of(&[Some(3.0), None, Some(1.0), Some(2.0)]).unwrap();
        assert_eq!(
            (spread.rounds, spread.median, spread.q1, spread.q3),
            (3, 2.0, 1.5, 2.5)
        );
        let one = Spread::of(&[Some(4.0)]).unwrap();
        assert_eq!(
            (one.median, one.q1, one.q3, one.min, one.max),
            (4.0, 4.0, 4.0, 4.0, 4.0)
        );
        assert_eq!(Spread::of(&[None, None]), None);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
