//! Charts of figures, drawn as SVG without script: horizontal bars of a value per name (labels
//! and values as HTML text beside each bar), and columns of a daily series.

use maud::{Markup, html};

/// One bar: its label, its value (drawn against the chart's largest) and the value as shown.
pub(super) struct Bar {
    /// What it counts.
    pub label: String,
    /// Drawn against the largest of the chart, at least 1.
    pub value: f64,
    /// As written beside the bar.
    pub text: String,
}

/// Horizontal bars under a caption; `max` the value of a full bar (the largest when `None`).
pub(super) fn bars(caption: &str, rows: &[Bar], max: Option<f64>) -> Markup {
    let max = max
        .unwrap_or_else(|| rows.iter().map(|r| r.value).fold(0.0, f64::max))
        .max(f64::MIN_POSITIVE);
    html! {
        figure.bars {
            figcaption { (caption) }
            @if rows.is_empty() {
                p.muted { "Nothing in this period." }
            } @else {
                table {
                    @for row in rows {
                        tr {
                            th scope="row" { (row.label) }
                            td.bar {
                                svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true" {
                                    rect x="0" y="0" height="10"
                                        width=(format!("{:.2}", (row.value / max).clamp(0.0, 1.0) * 100.0)) {}
                                }
                            }
                            td.value { (row.text) }
                        }
                    }
                }
            }
        }
    }
}

/// Columns of `(label, value)` in order (a daily series), with the total in the caption.
pub(super) fn columns(caption: &str, points: &[(String, f64)]) -> Markup {
    const WIDTH: f64 = 600.0;
    const HEIGHT: f64 = 90.0;
    let max = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0);
    let step = WIDTH / points.len().max(1) as f64;
    let summary = format!(
        "{caption}: {} in all, at most {} in one day",
        points.iter().map(|p| p.1).sum::<f64>(),
        max
    );
    html! {
        figure.daily {
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(summary)
                preserveAspectRatio="none" {
                @for (i, (label, value)) in points.iter().enumerate() {
                    @let h = value / max * (HEIGHT - 2.0);
                    rect x=(format!("{:.1}", i as f64 * step + step * 0.1))
                        y=(format!("{:.1}", HEIGHT - h)) width=(format!("{:.1}", step * 0.8))
                        height=(format!("{:.1}", h)) {
                        title { (label) ": " (value) }
                    }
                }
            }
            figcaption { (summary) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_drawn_against_the_largest_and_columns_to_scale() {
        let rows = [
            Bar {
                label: "a".into(),
                value: 4.0,
                text: "4".into(),
            },
            Bar {
                label: "<b>".into(),
                value: 1.0,
                text: "1".into(),
            },
        ];
        let markup = bars("Per service", &rows, None).into_string();
        assert!(markup.contains(r#"width="100.00""#) && markup.contains(r#"width="25.00""#));
        assert!(markup.contains("&lt;b&gt;"), "labels are escaped: {markup}");
        let cols = columns("Incidents", &[("d1".into(), 2.0), ("d2".into(), 0.0)]).into_string();
        assert!(cols.contains("2 in all, at most 2 in one day"), "{cols}");
        assert!(cols.contains(r#"height="88.0""#) && cols.contains(r#"height="0.0""#));
    }
}
