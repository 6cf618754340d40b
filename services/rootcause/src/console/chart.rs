//! Small evidence charts: a metric around the incident's start, its baseline shaded, drawn as
//! inline SVG on the server (no charting library, nothing to load). Pure.

use maud::{Markup, html};
use rootcause_models::case::{Case, Series};
use rootcause_models::evidence::robust_z;

/// Chart size in SVG units (it scales with the page).
const WIDTH: f64 = 240.0;
const HEIGHT: f64 = 64.0;
/// Seconds of baseline shown before the anchor when the case names no normal window.
const BASELINE_SECS: i64 = 30 * 60;

/// The series of `service` that moved most at the anchor (robust z of the window after it over
/// the baseline before it, up or down), strongest first, at most `most`; series that did not
/// move (|z| < 1) are left out.
pub(super) fn moved_series<'a>(
    case: &'a Case,
    service: &str,
    most: usize,
) -> Vec<(&'a Series, f64)> {
    let mut scored: Vec<(&Series, f64)> = case
        .series
        .iter()
        .filter(|series| series.service == service)
        .filter_map(|series| {
            let (baseline, window) = split(case, series);
            let up = robust_z(&baseline, &window).unwrap_or(0.0);
            let negate = |v: &[f64]| v.iter().map(|x| -x).collect::<Vec<_>>();
            let down = robust_z(&negate(&baseline), &negate(&window)).unwrap_or(0.0);
            let z = if down > up { -down } else { up };
            (z.abs() >= 1.0).then_some((series, z))
        })
        .collect();
    scored.sort_by(|a, b| {
        b.1.abs()
            .total_cmp(&a.1.abs())
            .then(a.0.name.cmp(&b.0.name))
    });
    scored.truncate(most);
    scored
}

/// The baseline samples (the case's normal windows, else the half hour before the anchor) and
/// the samples from the anchor on.
fn split(case: &Case, series: &Series) -> (Vec<f64>, Vec<f64>) {
    let baseline: Vec<f64> = baseline_ranges(case)
        .iter()
        .flat_map(|&(from, to)| series.window(from, to).iter().copied())
        .collect();
    let window = series.window(case.anchor, i64::MAX).to_vec();
    (baseline, window)
}

fn baseline_ranges(case: &Case) -> Vec<(i64, i64)> {
    if case.normal_windows.is_empty() {
        vec![(case.anchor - BASELINE_SECS, case.anchor)]
    } else {
        case.normal_windows.clone()
    }
}

/// The chart of one series: the line, the baseline ranges shaded, a rule at the anchor; `z` is
/// how far it moved, for the caption.
pub(super) fn chart(case: &Case, series: &Series, z: f64) -> Markup {
    let from = series
        .times
        .first()
        .copied()
        .unwrap_or(case.anchor)
        .max(case.anchor - 2 * BASELINE_SECS);
    let to = series
        .times
        .last()
        .copied()
        .unwrap_or(case.anchor)
        .max(case.anchor + 60);
    let points: Vec<(i64, f64)> = series
        .times
        .iter()
        .zip(&series.values)
        .filter(|(t, v)| **t >= from && v.is_finite())
        .map(|(t, v)| (*t, *v))
        .collect();
    let (low, high) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, v)| {
            (lo.min(*v), hi.max(*v))
        });
    let span_t = (to - from).max(1) as f64;
    let span_v = if high > low { high - low } else { 1.0 };
    let x = |t: i64| (t - from) as f64 / span_t * WIDTH;
    let y = |v: f64| HEIGHT - 4.0 - (v - low) / span_v * (HEIGHT - 8.0);
    let line: String = points
        .iter()
        .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
        .collect::<Vec<_>>()
        .join(" ");
    let caption = format!(
        "{} ({:?}): {} {:.1} baseline spreads at the start",
        series.name,
        series.family,
        if z >= 0.0 { "up" } else { "down" },
        z.abs()
    );
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(caption)
                preserveAspectRatio="none" {
                @for (a, b) in baseline_ranges(case) {
                    @let (a, b) = (a.max(from), b.min(to));
                    @if b > a {
                        rect.baseline x=(format!("{:.1}", x(a))) y="0"
                            width=(format!("{:.1}", x(b) - x(a))) height=(HEIGHT) {}
                    }
                }
                line.anchor x1=(format!("{:.1}", x(case.anchor))) x2=(format!("{:.1}", x(case.anchor)))
                    y1="0" y2=(HEIGHT) {}
                @if points.len() == 1 {
                    circle.series cx=(format!("{:.1}", x(points[0].0))) cy=(format!("{:.1}", y(points[0].1))) r="2" {}
                } @else {
                    polyline.series points=(line) {}
                }
            }
            figcaption {
                (series.name) " "
                span.muted { (format!("{} to {}", compact(low), compact(high))) " · "
                    (if z >= 0.0 { "up " } else { "down " }) (format!("{:.1}", z.abs())) "σ" }
            }
        }
    }
}

/// A value in few characters (`1.2k`, `0.035`, `12`).
fn compact(v: f64) -> String {
    if !v.is_finite() {
        return "—".to_owned();
    }
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use rootcause_models::case::{Family, Source};

    use super::*;

    fn series(service: &str, name: &str, values: &[f64]) -> Series {
        Series {
            service: service.to_owned(),
            source: Source::Metric,
            family: Family::Cpu,
            name: name.to_owned(),
            times: (0..values.len() as i64).map(|i| 1_000 + i * 60).collect(),
            values: values.to_vec(),
        }
    }

    fn case(series: Vec<Series>) -> Case {
        Case {
            id: "c".to_owned(),
            system: "s".to_owned(),
            anchor: 1_000 + 20 * 60,
            candidates: vec!["a".to_owned()],
            series,
            edges: Vec::new(),
            alerts: Vec::new(),
            changes: Vec::new(),
            topology: None,
            normal_windows: Vec::new(),
            label: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn the_series_that_moved_most_come_first_and_flat_ones_not_at_all() {
        let flat: Vec<f64> = (0..30).map(|i| 10.0 + f64::from(i % 2)).collect();
        let mut up = flat.clone();
        up[22..].iter_mut().for_each(|v| *v = 40.0);
        let mut down = flat.clone();
        down[22..].iter_mut().for_each(|v| *v = 2.0);
        let case = case(vec![
            series("a", "flat", &flat),
            series("a", "down", &down),
            series("a", "up", &up),
            series("b", "other", &up),
        ]);
        let moved = moved_series(&case, "a", 5);
        let names: Vec<&str> = moved.iter().map(|(s, _)| s.name.as_str()).collect();
        assert_eq!(names, ["up", "down"]);
        assert!(moved[0].1 > 0.0 && moved[1].1 < 0.0, "{moved:?}");
        assert_eq!(moved_series(&case, "a", 1).len(), 1);
    }

    #[test]
    fn a_chart_shades_the_baseline_and_marks_the_start() {
        let mut values: Vec<f64> = (0..30).map(|i| 10.0 + f64::from(i % 2)).collect();
        values[25] = f64::NAN;
        values[22..25].iter_mut().for_each(|v| *v = 40.0);
        let case = case(vec![series("a", "cpu<b>", &values)]);
        let svg = chart(&case, &case.series[0], 12.0).into_string();
        assert!(svg.contains("class=\"baseline\""), "{svg}");
        assert!(svg.contains("class=\"anchor\""), "{svg}");
        assert!(svg.contains("<polyline class=\"series\""), "{svg}");
        assert!(svg.contains("cpu&lt;b&gt;"), "names are escaped: {svg}");
        // 29 finite samples, none drawn from the missing one.
        let points = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(points.split(' ').count(), 29);
        assert!(!svg.contains("NaN"));
    }
}
