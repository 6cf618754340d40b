//! What `bench ranking` measured, round by round, and the report as text and JSON.
//!
//! One storm's percentiles swing with whatever else the shared machine does during its second
//! or two, so each size is measured in several rounds (a fresh server each) and reported by the
//! median of the rounds' figures, with their spread and the percentiles of every round's
//! latencies pooled beside it.

use std::fmt::Write as _;

use serde::Serialize;

use super::rounds::Spread;

/// One storm on one fresh server: every alert's latency and the server's own figures.
#[derive(Debug)]
pub(super) struct Row {
    pub(super) latencies_ms: Vec<f64>,
    /// The part of each latency spent before the server published the ranking (from the
    /// ranking's `ranked_at`, millisecond resolution): the rest is delivery to the listener.
    pub(super) published_ms: Vec<f64>,
    /// Round trips of the alert posts (the 202s).
    pub(super) acks_ms: Vec<f64>,
    pub(super) rankings: f64,
    pub(super) ranking_mean_ms: f64,
    pub(super) candidates: usize,
}

/// One round's figures for one topology size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct RoundFigures {
    /// The round, from 1.
    pub(super) round: usize,
    /// The size's place in the round's order, from 1.
    pub(super) position: usize,
    pub(super) p50_ms: f64,
    pub(super) p90_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) max_ms: f64,
    /// p99 of the part spent before the server published the ranking.
    pub(super) published_p99_ms: f64,
    /// Rankings the server computed (changes arriving during one are coalesced).
    pub(super) rankings: f64,
    pub(super) ranking_mean_ms: f64,
    /// Hypotheses in the final ranking.
    pub(super) candidates: usize,
    /// Median round trip of the alert posts.
    pub(super) ack_p50_ms: f64,
}

impl Row {
    /// The row's figures as round `round` (from 0), loaded at `position` (from 0).
    pub(super) fn figures(&self, round: usize, position: usize) -> RoundFigures {
        let p = |q| percentile(&self.latencies_ms, q);
        RoundFigures {
            round: round + 1,
            position: position + 1,
            p50_ms: p(0.5),
            p90_ms: p(0.9),
            p99_ms: p(0.99),
            max_ms: p(1.0),
            published_p99_ms: percentile(&self.published_ms, 0.99),
            rankings: self.rankings,
            ranking_mean_ms: self.ranking_mean_ms,
            candidates: self.candidates,
            ack_p50_ms: percentile(&self.acks_ms, 0.5),
        }
    }
}

/// The latency percentiles of every round's alerts together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Pooled {
    pub(super) p50_ms: f64,
    pub(super) p90_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) max_ms: f64,
}

/// One topology size over all rounds: each round's figures, each figure's median over the
/// rounds with its spread, and the pooled percentiles.
#[derive(Debug, Serialize)]
pub(super) struct SizeReport {
    pub(super) services: usize,
    /// Alerts per storm (per round).
    pub(super) alerts: usize,
    pub(super) rounds: Vec<RoundFigures>,
    pub(super) p50_ms: Spread,
    pub(super) p90_ms: Spread,
    pub(super) p99_ms: Spread,
    pub(super) max_ms: Spread,
    pub(super) published_p99_ms: Spread,
    pub(super) rankings: Spread,
    pub(super) ranking_mean_ms: Spread,
    pub(super) candidates: Spread,
    pub(super) ack_p50_ms: Spread,
    pub(super) pooled: Pooled,
}

impl SizeReport {
    /// Sums up the rounds of one size; `latencies_ms` are every round's alert latencies.
    pub(super) fn new(
        services: usize,
        alerts: usize,
        rounds: Vec<RoundFigures>,
        latencies_ms: &[f64],
    ) -> SizeReport {
        let spread = |figure: fn(&RoundFigures) -> f64| {
            let values = rounds.iter().map(|r| Some(figure(r))).collect::<Vec<_>>();
            Spread::of(&values).unwrap_or_default()
        };
        SizeReport {
            services,
            alerts,
            p50_ms: spread(|r| r.p50_ms),
            p90_ms: spread(|r| r.p90_ms),
            p99_ms: spread(|r| r.p99_ms),
            max_ms: spread(|r| r.max_ms),
            published_p99_ms: spread(|r| r.published_p99_ms),
            rankings: spread(|r| r.rankings),
            ranking_mean_ms: spread(|r| r.ranking_mean_ms),
            candidates: spread(|r| r.candidates as f64),
            ack_p50_ms: spread(|r| r.ack_p50_ms),
            pooled: Pooled {
                p50_ms: percentile(latencies_ms, 0.5),
                p90_ms: percentile(latencies_ms, 0.9),
                p99_ms: percentile(latencies_ms, 0.99),
                max_ms: percentile(latencies_ms, 1.0),
            },
            rounds,
        }
    }
}

/// What `bench ranking` measured, and under which conditions.
#[derive(Debug, Serialize)]
pub(super) struct RankingReport {
    /// `ranking`: which bench wrote the JSON.
    pub(super) bench: &'static str,
    /// CPU cores of the machine, shared by the server and this client.
    pub(super) cores: usize,
    pub(super) settings: RankingSettings,
    /// The sizes (services) in the order each round measured them, round 1 first.
    pub(super) order: Vec<Vec<usize>>,
    pub(super) sizes: Vec<SizeReport>,
}

/// How `bench ranking` was run.
#[derive(Debug, Serialize)]
pub(super) struct RankingSettings {
    pub(super) rounds: usize,
    /// Alerts per storm.
    pub(super) alerts: usize,
    /// Pause between an alert's 202 and the next alert.
    pub(super) interval_ms: u64,
    /// Topology sizes, as asked.
    pub(super) services: Vec<usize>,
    /// Alerts the incident held before the storm (`--preload`).
    pub(super) preload: usize,
    /// The limit on the median per-round p99, when one was set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_p99_ms: Option<f64>,
}

impl RankingReport {
    /// The sizes whose median per-round p99 is above `limit`.
    pub(super) fn over(&self, limit: f64) -> Vec<usize> {
        self.sizes
            .iter()
            .filter(|size| size.p99_ms.median > limit)
            .map(|size| size.services)
            .collect()
    }
}

/// The `q` quantile (nearest rank: an observed value) of unsorted values; 0 when empty.
pub(super) fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The report as text: the medians over rounds, then each round's p50 and p99 with the spread.
pub(super) fn render(report: &RankingReport) -> String {
    let mut out = format!(
        "\nalert 202 -> hypotheses event covering it (ms), alerts sent one by one; {} rounds, \
         each a fresh server per size, the sizes' order rotated every round; each figure the \
         median over the rounds{}\n\n",
        report.settings.rounds,
        if report.settings.preload > 0 {
            format!(
                "; the incident held {} alerts before the storm",
                super::report::thousands(report.settings.preload as u64)
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "{:>8}  {:>6}  {:>7}  {:>7}  {:>7}  {:>7}  {:>10}  {:>8}  {:>10}  {:>10}  {:>9}",
        "SERVICES",
        "ALERTS",
        "P50",
        "P90",
        "P99",
        "MAX",
        "PUBLISHED",
        "RANKINGS",
        "RANK MEAN",
        "CANDIDATES",
        "202 P50"
    );
    for size in &report.sizes {
        let _ = writeln!(
            out,
            "{:>8}  {:>6}  {:>7.2}  {:>7.2}  {:>7.2}  {:>7.2}  {:>10.1}  {:>8.0}  {:>10.2}  {:>10.0}  {:>9.2}",
            size.services,
            size.alerts,
            size.p50_ms.median,
            size.p90_ms.median,
            size.p99_ms.median,
            size.max_ms.median,
            size.published_p99_ms.median,
            size.rankings.median,
            size.ranking_mean_ms.median,
            size.candidates.median,
            size.ack_p50_ms.median,
        );
    }
    let _ = write!(out, "\nper round (ms)  ");
    for round in 1..=report.settings.rounds {
        let _ = write!(out, "  {:>7}", format!("R{round}"));
    }
    let _ = writeln!(
        out,
        "  {:>7}  {:>13}  {:>13}  {:>13}",
        "MEDIAN", "Q1-Q3", "MIN-MAX", "ALL ROUNDS"
    );
    out.push_str("p50:\n");
    render_rounds(
        &mut out,
        report,
        |r| r.p50_ms,
        |s| (&s.p50_ms, s.pooled.p50_ms),
    );
    out.push_str("p99:\n");
    render_rounds(
        &mut out,
        report,
        |r| r.p99_ms,
        |s| (&s.p99_ms, s.pooled.p99_ms),
    );
    out.push_str(
        "\nPUBLISHED: p99 of the part spent before the server published the ranking (ms\n\
         resolution; the rest is delivering the event to the listener); RANKINGS: rankings the\n\
         server computed (changes arriving during one are coalesced);\n\
         RANK MEAN: its mean time per ranking; CANDIDATES: of the final ranking; 202 P50: alert\n\
         post round trip (commit included); ALL ROUNDS: the percentile of every round's alerts\n\
         together.\n",
    );
    out
}

/// One figure of each size, round by round, then its median, spread and pooled value.
fn render_rounds(
    out: &mut String,
    report: &RankingReport,
    figure: fn(&RoundFigures) -> f64,
    summary: fn(&SizeReport) -> (&Spread, f64),
) {
    for size in &report.sizes {
        let _ = write!(out, "  {:>5} services", size.services);
        let mut cells = vec![None; report.settings.rounds];
        for round in &size.rounds {
            if let Some(cell) = cells.get_mut(round.round - 1) {
                *cell = Some(figure(round));
            }
        }
        for cell in cells {
            let cell = cell.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}"));
            let _ = write!(out, "  {cell:>7}");
        }
        let (spread, pooled) = summary(size);
        let _ = writeln!(
            out,
            "  {:>7.2}  {:>13}  {:>13}  {pooled:>13.2}",
            spread.median,
            format!("{:.2}-{:.2}", spread.q1, spread.q3),
            format!("{:.2}-{:.2}", spread.min, spread.max),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values = (1..=200).map(f64::from).collect::<Vec<_>>();
        assert_eq!(percentile(&values, 0.5), 100.0);
        assert_eq!(percentile(&values, 0.99), 198.0);
        assert_eq!(percentile(&values, 1.0), 200.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    /// A storm of 100 alerts whose latencies are `base + 1 ... base + 100` ms.
    fn row(base: f64) -> Row {
        Row {
            latencies_ms: (1..=100).rev().map(|i| base + f64::from(i)).collect(),
            published_ms: vec![base; 100],
            acks_ms: vec![1.5; 100],
            rankings: 90.0,
            ranking_mean_ms: 2.0,
            candidates: 967,
        }
    }

    fn report() -> RankingReport {
        // Round 2 ran on a busy machine: every latency 100 ms longer.
        let rows = [row(0.0), row(100.0), row(10.0)];
        let rounds = rows
            .iter()
            .enumerate()
            .map(|(round, row)| row.figures(round, round % 2))
            .collect::<Vec<_>>();
        let pooled = rows
            .iter()
            .flat_map(|r| r.latencies_ms.clone())
            .collect::<Vec<_>>();
        RankingReport {
            bench: "ranking",
            cores: 2,
            settings: RankingSettings {
                rounds: 3,
                alerts: 100,
                interval_ms: 0,
                services: vec![1000],
                preload: 0,
                max_p99_ms: Some(100.0),
            },
            order: vec![vec![1000]; 3],
            sizes: vec![SizeReport::new(1000, 100, rounds, &pooled)],
        }
    }

    #[test]
    fn each_figure_is_the_median_over_rounds_with_its_spread() {
        let report = report();
        let size = &report.sizes[0];
        // Per round p50: 50, 150, 60; p99: 99, 199, 109.
        let p50 = size.rounds.iter().map(|r| r.p50_ms).collect::<Vec<_>>();
        assert_eq!(p50, [50.0, 150.0, 60.0]);
        assert_eq!(size.rounds[1].position, 2);
        assert_eq!(
            (size.p50_ms.median, size.p50_ms.min, size.p50_ms.max),
            (60.0, 50.0, 150.0)
        );
        // Quartiles of 50 60 150: 55 and 105.
        assert_eq!((size.p50_ms.q1, size.p50_ms.q3), (55.0, 105.0));
        assert_eq!(size.p99_ms.median, 109.0);
        assert_eq!(size.published_p99_ms.median, 10.0);
        assert_eq!(size.candidates.median, 967.0);
        // Pooled, the busy round's tail is the whole p99: 300 latencies, rank 297 of
        // 1..100, 11..110, 101..200 sorted.
        assert_eq!(size.pooled.p99_ms, 197.0);
        // The limit applies to the median p99, which the busy round alone does not move.
        assert_eq!(report.over(100.0), [1000]);
        assert!(report.over(110.0).is_empty());
    }

    #[test]
    fn the_json_holds_settings_rounds_and_spreads() {
        let json = serde_json::to_value(report()).unwrap();
        assert_eq!(json["bench"], "ranking");
        assert_eq!(json["settings"]["rounds"], 3);
        assert_eq!(json["settings"]["services"], serde_json::json!([1000]));
        assert_eq!(json["order"][2], serde_json::json!([1000]));
        let size = &json["sizes"][0];
        assert_eq!(size["services"], 1000);
        assert_eq!(size["rounds"].as_array().unwrap().len(), 3);
        assert_eq!(size["rounds"][0]["round"], 1);
        assert_eq!(size["rounds"][0]["p99_ms"], 99.0);
        assert_eq!(size["p99_ms"]["median"], 109.0);
        assert_eq!(size["p50_ms"]["rounds"], 3);
        assert_eq!(size["pooled"]["max_ms"], 200.0);
    }

    #[test]
    fn the_table_shows_medians_and_each_round() {
        let text = render(&report());
        let median_row = text
            .lines()
            .find(|l| l.trim_start().starts_with("1000"))
            .unwrap();
        let cells = median_row.split_whitespace().collect::<Vec<_>>();
        assert_eq!(cells[..5], ["1000", "100", "60.00", "100.00", "109.00"]);
        let p99 = text.lines().skip_while(|l| *l != "p99:").nth(1).unwrap();
        let cells = p99.split_whitespace().collect::<Vec<_>>();
        assert_eq!(
            cells,
            [
                "1000",
                "services",
                "99.00",
                "199.00",
                "109.00",
                "109.00",
                "104.00-154.00",
                "99.00-199.00",
                "197.00"
            ]
        );
    }
}
