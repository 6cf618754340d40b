//! The detectors of log templates: a failure template the baseline never shows, or a steady one
//! that goes quiet while the service is called as often as before.

use std::collections::BTreeMap;

use super::Detector;
use super::series::Baseline;
use super::windows::Windows;

/// Relative variance of template counts beyond Poisson noise: a count varies by at least 20 %
/// of its level.
const TEMPLATE_OVERDISPERSION: f64 = 0.04;

/// A template's series: a new ERROR/WARN template, or an expected one gone missing.
pub(super) fn template_detectors(
    s: &crate::case::Series,
    base: &Baseline,
    windows: &Windows,
    traffic: &BTreeMap<&str, (&crate::case::Series, u8)>,
    note: &mut impl FnMut(&str, Detector, f64, String),
) {
    let key = s.name.strip_prefix("template:").unwrap_or(&s.name);
    let level = key.split_whitespace().next().unwrap_or("");
    let failure_level = matches!(level, "ERROR" | "WARN" | "FATAL");
    let own = windows.series(&s.times);
    let (abnormal, offset) = own.abnormal(&s.times, &s.values);
    let observed: f64 = abnormal.iter().filter(|v| v.is_finite()).sum();

    if failure_level && (base.count == 0 || base.max <= 0.0) {
        if observed > 0.0 {
            // A template never seen before: its count in Poisson z against a floor of one line.
            let z = observed.sqrt() * 2.0;
            note(
                &s.service,
                Detector::NewErrorTemplates,
                z,
                format!("new log template `{key}`: {observed:.0} lines, none in the baseline"),
            );
        }
        return;
    }
    if failure_level || base.count == 0 || base.median < 1.0 {
        return;
    }
    // Lines per unit of traffic (span or log-line rate) of the service at a sample time: a
    // quiet service prints less of everything, a called-but-failing one stops one statement.
    let busy = traffic.get(s.service.as_str()).map(|(t, _)| *t);
    let traffic_at = |time: i64| -> Option<f64> {
        match busy {
            None => Some(1.0),
            Some(t) => t
                .times
                .binary_search(&time)
                .ok()
                .map(|j| t.values[j])
                .filter(|v| v.is_finite() && *v > 0.0),
        }
    };
    let rates = |range: std::ops::Range<usize>| -> Vec<(f64, f64)> {
        range
            .filter(|&i| s.values[i].is_finite())
            .filter_map(|i| traffic_at(s.times[i]).map(|t| (s.values[i], t)))
            .collect()
    };
    let reference: Vec<f64> = (0..s.times.len())
        .filter(|&i| own.is_baseline(s.times[i]))
        .flat_map(|i| rates(i..i + 1))
        .map(|(count, t)| count / t)
        .collect();
    let samples = rates(offset..offset + abnormal.len());
    // A statement that stops running stops from some minute on. For every split k, the rate
    // before it (baseline and the window's first k samples) predicts the lines after it, so
    // the minutes before the fault neither dilute the gap nor are missing from the baseline.
    let mut best: Option<(f64, f64, f64)> = None;
    for k in 0..samples.len() {
        let mut before: Vec<f64> = reference.clone();
        before.extend(samples[..k].iter().map(|(count, t)| count / t));
        before.sort_by(f64::total_cmp);
        if before.is_empty() {
            continue;
        }
        let rate = crate::stats::quantile(&before, 0.5);
        let expected: f64 = samples[k..].iter().map(|(_, t)| rate * t).sum();
        let seen: f64 = samples[k..].iter().map(|(count, _)| count).sum();
        // A template printed less than once a minute says nothing by its absence.
        if expected < (samples.len() - k) as f64 || seen >= expected {
            continue;
        }
        // The drop as a log ratio, in units of its noise: Poisson's `1/√n` in log terms, and
        // since counts vary by more than Poisson noise (load shifts) at least 20 % of the
        // level. A busy template dipping by a third says little; a steady one vanishing says
        // more the more lines it used to print (25 expected → 0: z 11.6; 100 → 0: z 20.6),
        // and clearly more than the same template thinning out (100 → 20: z 7).
        let z = ((expected + 1.0) / (seen + 1.0)).ln()
            / (1.0 / (expected + 1.0) + TEMPLATE_OVERDISPERSION).sqrt();
        if best.is_none_or(|b| z > b.0) {
            best = Some((z, seen, expected));
        }
    }
    if let Some((z, seen, expected)) = best {
        note(
            &s.service,
            Detector::MissingTemplates,
            z,
            format!(
                "log template `{key}` went quiet: {seen:.0} lines where {expected:.0} were expected from its usual rate"
            ),
        );
    }
}
