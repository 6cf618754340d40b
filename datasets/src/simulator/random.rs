//! Random draws the simulator needs beyond `rand` 0.8's uniform ones, and seeds derived from
//! names. Deriving a generator from (seed, case, service, metric) instead of sharing one means a
//! series does not change when another service joins the candidates, so a small change in the
//! options changes only what it must.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A uniform draw in `[0, 1)`: the top 53 bits of one word. Straight from `next_u64` rather
/// than through `gen_range`, which costs several times more in unoptimised test builds, and
/// metric noise draws millions of these.
pub(super) fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// True with probability `p`, clamped to `[0, 1]` so that out-of-range options cannot panic.
pub(super) fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    unit(rng) < p.clamp(0.0, 1.0)
}

/// A uniform draw in `[low, high]`, tolerant of `low > high`.
pub(super) fn between(rng: &mut ChaCha8Rng, low: i64, high: i64) -> i64 {
    let (low, high) = if low <= high {
        (low, high)
    } else {
        (high, low)
    };
    rng.gen_range(low..=high)
}

/// A uniform draw in `[low, high)`.
pub(super) fn uniform(rng: &mut ChaCha8Rng, low: f64, high: f64) -> f64 {
    low + (high - low) * unit(rng)
}

/// A standard normal draw (Box–Muller): `rand_distr` is not a dependency of this crate.
pub(super) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u = 1.0 - unit(rng);
    let v = unit(rng);
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// A Poisson draw with mean `mean` (Knuth's method, fine for the small means used here; very
/// large means are capped rather than looping for long).
pub(super) fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> usize {
    if mean.is_nan() || mean <= 0.0 {
        return 0;
    }
    let mean = mean.min(500.0);
    if mean > 30.0 {
        return (mean + mean.sqrt() * normal(rng)).round().max(0.0) as usize;
    }
    let limit = (-mean).exp();
    let mut product = unit(rng);
    let mut count = 0;
    while product > limit {
        product *= unit(rng);
        count += 1;
    }
    count
}

/// Index drawn with probability proportional to `weights` (cumulative, ascending).
pub(super) fn weighted(rng: &mut ChaCha8Rng, cumulative: &[f64]) -> Option<usize> {
    let total = *cumulative.last()?;
    if total <= 0.0 || total.is_nan() {
        return None;
    }
    let target = unit(rng) * total;
    Some(
        cumulative
            .partition_point(|&c| c <= target)
            .min(cumulative.len() - 1),
    )
}

/// A stable hash of a name, for seeds derived from it.
pub(super) fn fnv(bytes: &[u8]) -> u64 {
    crate::hash::stable_hash(&[bytes])
}

/// A generator for one (seed, parts...) combination.
pub(super) fn derived(seed: u64, parts: &[u64]) -> ChaCha8Rng {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    for &part in parts {
        // splitmix64 step: neighbouring inputs give unrelated seeds.
        state = state.wrapping_add(part).wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        state = z ^ (z >> 31);
    }
    ChaCha8Rng::seed_from_u64(state)
}
