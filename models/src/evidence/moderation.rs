//! Moderation: spreads borrowed across series of one kind for series whose own history is too
//! short to estimate one, and what makes two series one kind.

use std::collections::HashMap;

use super::series::Baseline;
use super::source_word;
use super::windows::Windows;
use crate::case::{Case, Family, Source};

/// Spreads borrowed across series of one kind, for series whose own history is too short to
/// estimate one (trace statistics with one reference minute, a metric that starts at the
/// incident, a component observed in a few samples).
///
/// Most series of a kind (one metric name, one span statistic, one edge measure) are not
/// affected by an incident, so the spread of their relative changes from baseline to incident,
/// `r = ln((x + ε) / (median + ε))`, estimates how much a series of that kind moves by itself:
/// `ρ = 1.4826 · MAD(r)`. A series' baseline is then moderated toward the spread `ρ · |median|`
/// with the weight of [`MODERATION_WEIGHT`] samples (as moderated statistics borrow variance
/// across genes). With a long history the series' own spread decides.
pub(super) struct Moderation {
    /// ρ per kind of series.
    relative: HashMap<String, f64>,
}

/// How many samples' worth of weight the borrowed spread has against a series' own.
pub const MODERATION_WEIGHT: f64 = 4.0;
/// Series a kind needs for its own ρ; below that, the source's pooled ρ is used.
const MODERATION_MIN_SERIES: usize = 4;
/// ρ when nothing can be pooled: a quarter of the level.
const DEFAULT_RELATIVE_SPREAD: f64 = 0.25;

impl Moderation {
    pub(super) fn of(case: &Case, windows: &Windows) -> Moderation {
        let mut by_kind: HashMap<String, Vec<f64>> = HashMap::new();
        let mut by_source: HashMap<&'static str, Vec<f64>> = HashMap::new();
        let mut add = |kind: String, source: &'static str, times: &[i64], values: &[f64]| {
            let mut baseline = windows.baseline(times, values);
            if baseline.is_empty() {
                return;
            }
            baseline.sort_by(f64::total_cmp);
            let median = crate::stats::quantile(&baseline, 0.5);
            let (abnormal, _) = windows.abnormal(times, values);
            let Some(x) = Baseline::sustained(abnormal) else {
                return;
            };
            let level = median.abs().max(x.abs());
            if level <= 0.0 {
                return;
            }
            let eps = 0.01 * level;
            let r = ((x.abs() + eps) / (median.abs() + eps)).ln();
            by_kind.entry(kind).or_default().push(r);
            by_source.entry(source).or_default().push(r);
        };
        for s in &case.series {
            if is_count_series(s) || s.family == Family::Template {
                continue;
            }
            add(series_kind(s), source_word(s.source), &s.times, &s.values);
        }
        for e in &case.edges {
            if let Some(kind) = moderated_edge_kind(&e.name) {
                add(kind.to_owned(), "edge", &e.times, &e.values)
            }
        }
        let dispersion = |rs: &mut Vec<f64>| -> f64 {
            rs.sort_by(f64::total_cmp);
            let m = crate::stats::quantile(rs, 0.5);
            let mut dev: Vec<f64> = rs.iter().map(|r| (r - m).abs()).collect();
            dev.sort_by(f64::total_cmp);
            (1.4826 * crate::stats::quantile(&dev, 0.5)).max(0.05)
        };
        let pooled: HashMap<&str, f64> = by_source
            .iter_mut()
            .filter(|(_, rs)| rs.len() >= MODERATION_MIN_SERIES)
            .map(|(source, rs)| (*source, dispersion(rs)))
            .collect();
        let mut relative = HashMap::new();
        for (kind, mut rs) in by_kind {
            let rho = if rs.len() >= MODERATION_MIN_SERIES {
                dispersion(&mut rs)
            } else {
                let source = kind.split(' ').next().unwrap_or("");
                pooled
                    .get(source)
                    .copied()
                    .unwrap_or(DEFAULT_RELATIVE_SPREAD)
            };
            relative.insert(kind, rho);
        }
        Moderation { relative }
    }

    /// `base` moderated toward the spread its kind shows.
    pub(super) fn apply(&self, kind: &str, base: Baseline) -> Baseline {
        match self.relative.get(kind) {
            Some(rho) => base.moderated(rho * base.median.abs(), MODERATION_WEIGHT),
            None => base,
        }
    }
}

/// What kind of series this is, for [`Moderation`]: its source and its name without a label
/// part (`cpu_millicores{pod="a-1"}` and `cpu_millicores{pod="b-2"}` are one kind).
pub(super) fn series_kind(s: &crate::case::Series) -> String {
    let name = s.name.split('{').next().unwrap_or(&s.name);
    format!("{} {name}", source_word(s.source))
}

/// Whether a series counts events per period (span, error, log-line counts), whose noise is
/// Poisson rather than estimated.
pub(super) fn is_count_series(s: &crate::case::Series) -> bool {
    matches!(s.source, Source::Trace | Source::Log)
        && matches!(
            s.family,
            Family::Traffic | Family::Errors | Family::Template
        )
}

/// The [`Moderation`] kind of an edge series whose spread is borrowed across edges (timings).
pub(super) fn moderated_edge_kind(name: &str) -> Option<&'static str> {
    match edge_kind(name)? {
        "network_ms" => Some("edge network_ms"),
        "callee_ms" => Some("edge callee_ms"),
        _ => None,
    }
}

/// What an edge series measures: its name, or the name before a quantile suffix
/// (`callee_ms_p90` is a `callee_ms`): `None` for names no detector reads.
pub(super) fn edge_kind(name: &str) -> Option<&'static str> {
    ["network_ms", "callee_ms", "errors", "calls"]
        .into_iter()
        .find(|kind| {
            name == *kind
                || name
                    .strip_prefix(kind)
                    .and_then(|rest| rest.strip_prefix("_p"))
                    .is_some_and(|q| !q.is_empty() && q.bytes().all(|b| b.is_ascii_digit()))
        })
}
