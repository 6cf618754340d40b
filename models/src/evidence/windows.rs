//! Where a case's baseline and abnormal samples lie: the case's windows, or in a case without
//! history, each series' own split.

use super::{Case, Settings};

/// The baseline and abnormal sample-time ranges of a case.
///
/// Normally the baseline is the case's known-normal windows and the recent past before the
/// lead. A case with no sample there at all (a system that keeps no history, or data cut at
/// the incident) is judged by change inside what it has: per series, the samples before the
/// anchor are the baseline and those from it on the incident; a series that starts at the
/// anchor or later compares its first third with the rest (a fault ramps up, so its earliest
/// samples are the least disturbed).
#[derive(Debug, Clone)]
pub(super) struct Windows {
    normal: Vec<(i64, i64)>,
    recent: (i64, i64),
    abnormal: (i64, i64),
    /// No sample of the case lies in the baseline: judge change within each series.
    without_history: bool,
    anchor: i64,
}

impl Windows {
    pub(super) fn of(case: &Case, settings: &Settings) -> Windows {
        let mut windows = Windows {
            normal: case.normal_windows.clone(),
            recent: (
                case.anchor - settings.lead_s - settings.baseline_s,
                case.anchor - settings.lead_s,
            ),
            abnormal: (
                case.anchor - settings.lead_s,
                case.anchor + settings.after_s,
            ),
            without_history: false,
            anchor: case.anchor,
        };
        let has = |times: &[i64], values: &[f64]| {
            times
                .iter()
                .zip(values)
                .any(|(&t, v)| v.is_finite() && windows.is_baseline(t))
        };
        windows.without_history = !case.series.iter().any(|s| has(&s.times, &s.values))
            && !case.edges.iter().any(|e| has(&e.times, &e.values));
        windows
    }

    /// The windows of one series with sample times `times`: the case's, or in a case without
    /// history, the series' own split (see [`Windows`]).
    pub(super) fn series(&self, times: &[i64]) -> std::borrow::Cow<'_, Windows> {
        if !self.without_history {
            return std::borrow::Cow::Borrowed(self);
        }
        let before = times.partition_point(|&t| t < self.anchor);
        let cut = if before > 0 {
            self.anchor
        } else {
            let within = times.partition_point(|&t| t < self.abnormal.1);
            let first = within.div_ceil(3).max(1);
            times.get(first).copied().unwrap_or(i64::MAX)
        };
        std::borrow::Cow::Owned(Windows {
            normal: Vec::new(),
            recent: (i64::MIN, cut),
            abnormal: (cut, self.abnormal.1),
            without_history: true,
            anchor: self.anchor,
        })
    }

    pub(super) fn is_baseline(&self, t: i64) -> bool {
        let inside = |(from, to): (i64, i64)| t >= from && t < to;
        self.normal.iter().any(|&w| inside(w)) || inside(self.recent)
    }

    /// The finite samples whose time lies in a normal window or the recent window, each once
    /// even where the windows overlap.
    pub(super) fn baseline(&self, times: &[i64], values: &[f64]) -> Vec<f64> {
        let w = self.series(times);
        times
            .iter()
            .zip(values)
            .filter(|(t, v)| v.is_finite() && w.is_baseline(**t))
            .map(|(_, v)| *v)
            .collect()
    }

    /// The series' values in the baseline, in time order, `NaN` kept: runs of consecutive
    /// samples for [`Baseline::history_z`](super::series::Baseline::history_z).
    pub(super) fn history(&self, times: &[i64], values: &[f64]) -> Vec<f64> {
        let w = self.series(times);
        times
            .iter()
            .zip(values)
            .filter(|(t, _)| w.is_baseline(**t))
            .map(|(_, v)| *v)
            .collect()
    }

    pub(super) fn abnormal<'a>(&self, times: &[i64], values: &'a [f64]) -> (&'a [f64], usize) {
        let w = self.series(times);
        let a = times.partition_point(|&t| t < w.abnormal.0);
        let b = times.partition_point(|&t| t < w.abnormal.1);
        if a < b { (&values[a..b], a) } else { (&[], a) }
    }
}
