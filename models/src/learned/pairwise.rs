//! The pairwise ranking fit: each cause against every other candidate of its incident, as a
//! correction to the cold-start prior, solved by Newton's method.

use ndarray::{Array1, Array2};

use super::examples::{Prepared, TrainError, TrainParams};
use super::{COLD_START_FEATURE, FEATURE_COUNT, Linear};

/// Weight of the cold-start score in a trained scorer before any correction: the inverse of the
/// cold-start's own softmax temperature, so an untrained correction ranks as the cold-start
/// scorer does and gives its confidences.
pub const PRIOR_WEIGHT: f64 = 1.0 / crate::cold_start::TEMPERATURE;

/// Fits the root-cause scorer on `cases` (those whose cause is a candidate).
///
/// Pairwise (RankNet-style): for each case and each other candidate, one row holds the cause's
/// standardised features minus the other's; a logistic regression without intercept then
/// learns weights `w` such that `w · x` orders causes above the rest of *their own* incident.
/// Comparing within incidents is what a ranking needs: a pointwise model also spends its few
/// parameters separating busy incidents from quiet ones, which says nothing about which
/// candidate caused either.
///
/// Without an intercept, a pair written the other way round (the other minus the cause,
/// labelled "below") has the same loss as the pair itself, so each pair is written once at
/// half the penalty: the optimum of every pair written both ways at the full penalty, at half
/// the rows.
pub(super) fn fit_scorer(cases: &[&Prepared], params: &TrainParams) -> Result<Linear, TrainError> {
    let cases: Vec<(&[[f64; FEATURE_COUNT]], usize)> = cases
        .iter()
        .filter_map(|c| c.truth.map(|t| (&c.rows[..], t)))
        .collect();
    let refs: Vec<&[f64]> = cases
        .iter()
        .flat_map(|(rows, _)| rows.iter().map(|r| &r[..]))
        .collect();
    let (mean, scale) = Linear::standardiser(&refs);
    let pairs: usize = cases.iter().map(|(rows, _)| rows.len() - 1).sum();
    if pairs == 0 {
        return Err(TrainError::Fit(
            "no case has a candidate besides its cause: nothing to rank".into(),
        ));
    }
    let mut x = Array2::<f64>::zeros((pairs, FEATURE_COUNT));
    let mut offsets = Array1::<f64>::zeros(pairs);
    let mut at = 0;
    for (rows, truth) in &cases {
        let cause = &rows[*truth];
        for (i, other) in rows.iter().enumerate() {
            if i == *truth {
                continue;
            }
            for j in 0..FEATURE_COUNT {
                x[[at, j]] = (cause[j] - other[j]) / scale[j];
            }
            offsets[at] = PRIOR_WEIGHT * (cause[COLD_START_FEATURE] - other[COLD_START_FEATURE]);
            at += 1;
        }
    }
    let weights = fit_pairwise(
        &x,
        &offsets,
        params.prior_alpha / 2.0,
        params.max_iterations,
    )?;
    Ok(Linear {
        mean,
        scale,
        weights: vec![weights],
        intercepts: vec![0.0],
        prior: PRIOR_WEIGHT,
    })
}

/// `ln(1 + eˣ)` without overflow.
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// `1 / (1 + e⁻ˣ)`.
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Minimises `Σᵢ ln(1 + e^(−(oᵢ + w·xᵢ))) + α/2 · |w|²` over the rows `xᵢ` of `x` (pairs
/// oriented so that `w · xᵢ > 0` is right), each with its fixed offset `oᵢ` (the prior's
/// margin), by Newton's method with a backtracking line search.
///
/// The loss is convex and, with a penalty, strictly so: Newton reaches the optimum to machine
/// precision in a dozen steps, each one pass to form the Hessian (`FEATURE_COUNT` is small), where
/// a quasi-Newton method needs hundreds of passes over the rows on these ill-conditioned
/// features (strength, place and lead of one detector move together) and may stop short.
pub(super) fn fit_pairwise(
    x: &Array2<f64>,
    offsets: &Array1<f64>,
    alpha: f64,
    max_iterations: u64,
) -> Result<Vec<f64>, TrainError> {
    let width = x.ncols();
    let loss = |w: &Array1<f64>| -> f64 {
        (x.dot(w) + offsets)
            .iter()
            .map(|&z| softplus(-z))
            .sum::<f64>()
            + 0.5 * alpha * w.dot(w)
    };
    let mut w = Array1::<f64>::zeros(width);
    let mut current = loss(&w);
    for _ in 0..max_iterations.max(1) {
        let z = x.dot(&w) + offsets;
        // d/dz ln(1 + e⁻ᶻ) = −σ(−z); d²/dz² = σ(z) σ(−z).
        let slope = z.mapv(|z| -sigmoid(-z));
        let curvature = z.mapv(|z| sigmoid(z) * sigmoid(-z));
        // Row by row: the rows are contiguous, the columns of a transposed product are not.
        let mut gradient = &w * alpha;
        for (row, s) in x.rows().into_iter().zip(&slope) {
            gradient.scaled_add(*s, &row);
        }
        let weighted = x * &curvature.insert_axis(ndarray::Axis(1));
        let mut hessian = x.t().dot(&weighted);
        // A feature that never differs within a pair has no curvature; without a penalty the
        // tiny ridge keeps the system solvable and leaves its weight at 0.
        for j in 0..width {
            hessian[[j, j]] += alpha.max(1e-9);
        }
        let step = solve_spd(&hessian, &gradient).ok_or_else(|| {
            TrainError::Fit("the pairwise Hessian is not positive definite".into())
        })?;
        // Newton decrement: half of it estimates how far the loss is above its minimum.
        let decrement = gradient.dot(&step);
        if !decrement.is_finite() {
            return Err(TrainError::Fit("the pairwise fit diverged".into()));
        }
        if decrement < 1e-12 * (1.0 + current.abs()) {
            break;
        }
        let mut t = 1.0;
        loop {
            let candidate = &w - &(&step * t);
            let next = loss(&candidate);
            if next <= current - 1e-4 * t * decrement {
                w = candidate;
                current = next;
                break;
            }
            t *= 0.5;
            if t < 1e-10 {
                // No step decreases the loss any more: as close to the optimum as floating
                // point gets.
                return Ok(w.to_vec());
            }
        }
    }
    Ok(w.to_vec())
}

/// Solves `a · x = b` for a symmetric positive definite `a` by Cholesky decomposition; `None`
/// when `a` is not positive definite.
fn solve_spd(a: &Array2<f64>, b: &Array1<f64>) -> Option<Array1<f64>> {
    let n = b.len();
    let mut l = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum();
            if i == j {
                let d = a[[i, i]] - sum;
                if d.is_nan() || d <= 0.0 {
                    return None;
                }
                l[[i, i]] = d.sqrt();
            } else {
                l[[i, j]] = (a[[i, j]] - sum) / l[[j, j]];
            }
        }
    }
    let mut y = Array1::<f64>::zeros(n);
    for i in 0..n {
        let sum: f64 = (0..i).map(|k| l[[i, k]] * y[k]).sum();
        y[i] = (b[i] - sum) / l[[i, i]];
    }
    let mut x = Array1::<f64>::zeros(n);
    for i in (0..n).rev() {
        let sum: f64 = (i + 1..n).map(|k| l[[k, i]] * x[k]).sum();
        x[i] = (y[i] - sum) / l[[i, i]];
    }
    Some(x)
}
