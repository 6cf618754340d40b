//! Accuracy of root-cause rankings: AC@k (the true cause is among the top k) and Avg@k (the mean
//! of AC@1..AC@k), with the chance level of a uniform random guess beside them.
//!
//! Ties count pessimistically: a true cause that shares its score with others is ranked below
//! all of them, so a ranker cannot gain by giving everything the same score.

use serde::Serialize;

/// A candidate and its score; higher scores rank first.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored<'a> {
    /// Candidate service.
    pub service: &'a str,
    /// Score; higher is more likely the root cause. NaN ranks last.
    pub score: f64,
}

/// The 1-based rank of `truth` among `candidates`, ties broken against it; `None` if it is not a
/// candidate at all (which every AC@k counts as a miss).
pub fn pessimistic_rank(candidates: &[Scored<'_>], truth: &str) -> Option<usize> {
    let score_of = |s: &Scored<'_>| {
        if s.score.is_nan() {
            f64::NEG_INFINITY
        } else {
            s.score
        }
    };
    let truth_score = candidates
        .iter()
        .find(|c| c.service == truth)
        .map(score_of)?;
    // Everyone scoring at least as high, the truth itself included.
    Some(
        candidates
            .iter()
            .filter(|c| score_of(c) >= truth_score)
            .count(),
    )
}

/// AC@k and Avg@k over a set of cases.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accuracy {
    /// Rank of the true cause per case (`None`: not ranked).
    ranks: Vec<Option<usize>>,
    /// Number of candidates per case, for the chance level.
    candidates: Vec<usize>,
}

/// Figures for reporting: AC@1, AC@3, AC@5 and Avg@5.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Figures {
    /// True cause ranked first.
    pub ac1: f64,
    /// True cause in the top 3.
    pub ac3: f64,
    /// True cause in the top 5.
    pub ac5: f64,
    /// Mean of AC@1..AC@5.
    pub avg5: f64,
}

impl Accuracy {
    /// No cases yet.
    pub fn new() -> Self {
        Accuracy::default()
    }

    /// Adds one case whose true cause is among its `candidates`: where it was ranked (`None`: the
    /// ranker left it out, a miss).
    pub fn add(&mut self, rank: Option<usize>, candidates: usize) {
        self.ranks.push(rank);
        self.candidates.push(candidates);
    }

    /// Adds one case whose true cause is not among its candidates at all (the data never showed
    /// it): a miss for the ranker and for a random guess alike.
    pub fn add_absent(&mut self) {
        self.ranks.push(None);
        // No candidate can be right: chance of a hit is 0.
        self.candidates.push(0);
    }

    /// Number of cases.
    pub fn cases(&self) -> usize {
        self.ranks.len()
    }

    /// Fraction of cases whose true cause is in the top `k`.
    pub fn ac(&self, k: usize) -> f64 {
        mean(self.ranks.iter().map(|rank| match rank {
            Some(rank) if *rank <= k => 1.0,
            _ => 0.0,
        }))
    }

    /// Mean of AC@1..AC@k.
    pub fn avg(&self, k: usize) -> f64 {
        mean((1..=k).map(|i| self.ac(i)))
    }

    /// What a uniformly random ranking of the same candidates would score on average.
    pub fn chance_ac(&self, k: usize) -> f64 {
        mean(self.candidates.iter().map(|&n| {
            if n == 0 {
                0.0
            } else {
                k.min(n) as f64 / n as f64
            }
        }))
    }

    /// Mean of the chance AC@1..AC@k.
    pub fn chance_avg(&self, k: usize) -> f64 {
        mean((1..=k).map(|i| self.chance_ac(i)))
    }

    /// AC@1, AC@3, AC@5 and Avg@5.
    pub fn figures(&self) -> Figures {
        Figures {
            ac1: self.ac(1),
            ac3: self.ac(3),
            ac5: self.ac(5),
            avg5: self.avg(5),
        }
    }

    /// The same figures for a uniformly random ranking.
    pub fn chance_figures(&self) -> Figures {
        Figures {
            ac1: self.chance_ac(1),
            ac3: self.chance_ac(3),
            ac5: self.chance_ac(5),
            avg5: self.chance_avg(5),
        }
    }
}

/// Mean of the values; 0 for none.
fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(sum, count), v| (sum + v, count + 1));
    if count == 0 { 0.0 } else { sum / count as f64 }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn scored(pairs: &[(&'static str, f64)]) -> Vec<Scored<'static>> {
        pairs
            .iter()
            .map(|&(service, score)| Scored { service, score })
            .collect()
    }

    #[test]
    fn ties_rank_the_truth_last_among_equals() {
        let candidates = scored(&[("a", 0.9), ("b", 0.5), ("c", 0.5), ("d", 0.1)]);
        assert_eq!(pessimistic_rank(&candidates, "a"), Some(1));
        assert_eq!(pessimistic_rank(&candidates, "b"), Some(3));
        assert_eq!(pessimistic_rank(&candidates, "c"), Some(3));
        assert_eq!(pessimistic_rank(&candidates, "d"), Some(4));
        assert_eq!(pessimistic_rank(&candidates, "zzz"), None);
        let flat = scored(&[("a", 1.0), ("b", 1.0), ("c", 1.0)]);
        assert_eq!(
            pessimistic_rank(&flat, "a"),
            Some(3),
            "all-equal scores gain nothing"
        );
        let with_nan = scored(&[("a", f64::NAN), ("b", 0.0)]);
        assert_eq!(pessimistic_rank(&with_nan, "a"), Some(2));
    }

    #[test]
    fn figures_and_chance_level() {
        let mut accuracy = Accuracy::new();
        accuracy.add(Some(1), 10);
        accuracy.add(Some(2), 10);
        accuracy.add(Some(4), 10);
        accuracy.add(None, 10);
        let figures = accuracy.figures();
        assert_eq!(figures.ac1, 0.25);
        assert_eq!(figures.ac3, 0.5);
        assert_eq!(figures.ac5, 0.75);
        // AC@1..5 = .25 .5 .5 .75 .75
        assert!((figures.avg5 - 0.55).abs() < 1e-12);
        let chance = accuracy.chance_figures();
        assert!((chance.ac1 - 0.1).abs() < 1e-12);
        assert!((chance.ac5 - 0.5).abs() < 1e-12);
        assert!((chance.avg5 - 0.3).abs() < 1e-12);
        assert_eq!(Accuracy::new().figures().ac1, 0.0);
    }

    #[test]
    fn a_truth_absent_from_the_candidates_is_a_miss_for_chance_too() {
        let mut accuracy = Accuracy::new();
        accuracy.add(Some(1), 4);
        accuracy.add_absent();
        assert_eq!(accuracy.cases(), 2);
        assert_eq!(accuracy.ac(1), 0.5);
        assert!((accuracy.chance_ac(1) - 0.125).abs() < 1e-12);
        assert!((accuracy.chance_ac(5) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn chance_caps_at_one_when_k_exceeds_the_candidates() {
        let mut accuracy = Accuracy::new();
        accuracy.add(Some(1), 2);
        assert_eq!(accuracy.chance_ac(5), 1.0);
        assert_eq!(accuracy.chance_ac(1), 0.5);
    }

    proptest! {
        #[test]
        fn accuracy_never_falls_as_k_grows(ranks in prop::collection::vec(prop::option::of(1usize..20), 1..50)) {
            let mut accuracy = Accuracy::new();
            for rank in &ranks {
                accuracy.add(*rank, 20);
            }
            for k in 1..20 {
                prop_assert!(accuracy.ac(k) <= accuracy.ac(k + 1));
                prop_assert!(accuracy.chance_ac(k) <= accuracy.chance_ac(k + 1));
                prop_assert!((0.0..=1.0).contains(&accuracy.avg(k)));
            }
        }
    }
}
