//! What `bench ingest` measured, and the report as text and JSON.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

use super::rounds::{Spread, ratios_by_round};

/// The name of rootcause on SQLite in the report.
pub(crate) const SQLITE: &str = "rootcause (SQLite)";

/// The name of rootcause on PostgreSQL in the report.
pub(crate) const POSTGRES: &str = "rootcause (PostgreSQL)";

/// The ingest goals (issue 20): the median per-round ratio of each rootcause target's alerts/s
/// to Alertmanager's. Reported as met or not, never enforced: timing on shared hardware is not a
/// pass/fail test.
pub(crate) const RATIO_GOALS: [(&str, f64); 2] = [(SQLITE, 1.5), (POSTGRES, 1.0)];

/// What was measured, and under which conditions.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// `ingest`: which bench wrote the JSON.
    pub(crate) bench: &'static str,
    /// CPU cores of the machine, shared by every target and the load generator.
    pub(crate) cores: usize,
    pub(crate) settings: Settings,
    /// The targets in the order each round loaded them, round 1 first.
    pub(crate) order: Vec<Vec<String>>,
    pub(crate) durability: Vec<String>,
    pub(crate) targets: Vec<TargetReport>,
    pub(crate) ratios: Vec<Ratio>,
    pub(crate) goals: Vec<Goal>,
}

/// How the run was made.
#[derive(Debug, Serialize)]
pub(crate) struct Settings {
    pub(crate) rounds: usize,
    /// Measured seconds per target and round.
    pub(crate) round_secs: u64,
    /// Load before each measured window, not counted.
    pub(crate) warm_up_secs: u64,
    pub(crate) concurrency: usize,
    pub(crate) alerts_per_request: usize,
}

/// One row of the table.
#[derive(Debug, Serialize)]
pub(crate) struct TargetReport {
    pub(crate) target: String,
    pub(crate) status: Status,
    /// Why the target was not run, or what failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
    /// Each round's window, round 1 first (fewer when the target failed midway).
    pub(crate) rounds: Vec<RoundMeasurement>,
    /// The median and spread of the rounds' alerts/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) alerts_per_sec_by_round: Option<Spread>,
    /// Over all its windows together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) measurement: Option<Measurement>,
}

/// Whether a target was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    Ran,
    NotRun,
    Failed,
}

impl TargetReport {
    /// A target that was measured: its rounds and their sum; `failure` when it stopped midway,
    /// which fails the run as a target that could not start does.
    pub(crate) fn measured(
        target: String,
        rounds: Vec<RoundMeasurement>,
        measurement: Measurement,
        failure: Option<String>,
    ) -> TargetReport {
        let rates = rounds
            .iter()
            .map(|r| Some(r.alerts_per_sec))
            .collect::<Vec<_>>();
        if let Some(error) = &failure {
            eprintln!("*** {target}: FAILED: {error}");
        }
        TargetReport {
            status: if failure.is_some() {
                Status::Failed
            } else {
                Status::Ran
            },
            note: failure.map(|error| format!("failed: {error}")),
            alerts_per_sec_by_round: Spread::of(&rates),
            target,
            rounds,
            measurement: Some(measurement),
        }
    }

    /// A target that could not be started.
    pub(crate) fn failed(target: String, error: &anyhow::Error) -> TargetReport {
        eprintln!("*** {target}: FAILED: {error:#}");
        TargetReport {
            target,
            status: Status::Failed,
            note: Some(format!("failed: {error:#}")),
            rounds: Vec::new(),
            alerts_per_sec_by_round: None,
            measurement: None,
        }
    }

    /// A target that was not asked for, or is not installed.
    pub(crate) fn not_run(target: &str, why: &str) -> TargetReport {
        eprintln!("*** {target}: NOT RUN: {why}");
        TargetReport {
            target: target.to_owned(),
            status: Status::NotRun,
            note: Some(format!("not run: {why}")),
            rounds: Vec::new(),
            alerts_per_sec_by_round: None,
            measurement: None,
        }
    }

    /// Alerts/s over all its windows.
    pub(crate) fn alerts_per_sec(&self) -> Option<f64> {
        self.measurement.as_ref().map(|m| m.alerts_per_sec)
    }

    /// Alerts/s of each of `rounds` rounds, by round index; `None` where it was not measured.
    pub(crate) fn rates_by_round(&self, rounds: usize) -> Vec<Option<f64>> {
        let mut rates = vec![None; rounds];
        for round in &self.rounds {
            if let Some(rate) = rates.get_mut(round.round - 1) {
                *rate = Some(round.alerts_per_sec);
            }
        }
        rates
    }
}

/// One target's figures in one round's measured window.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RoundMeasurement {
    /// The round, from 1.
    pub(crate) round: usize,
    /// The target's place in the round's order, from 1.
    pub(crate) position: usize,
    pub(crate) acknowledged_alerts: u64,
    pub(crate) alerts_per_sec: f64,
    pub(crate) requests: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) errors: u64,
}

/// A rootcause target's throughput over Alertmanager's, round by round and overall.
#[derive(Debug, Serialize)]
pub(crate) struct Ratio {
    pub(crate) target: String,
    pub(crate) baseline: String,
    /// The ratio in each round (the two windows of a round are close in time), round 1 first;
    /// `null` where either side was not measured.
    pub(crate) per_round: Vec<Option<f64>>,
    /// The median of the per-round ratios and their spread; absent when no round has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) by_round: Option<Spread>,
    /// Alerts/s over all the target's windows over the baseline's (the pre-rounds figure).
    pub(crate) overall: Option<f64>,
}

/// An ingest goal and whether the run met it.
#[derive(Debug, Serialize)]
pub(crate) struct Goal {
    pub(crate) target: String,
    pub(crate) baseline: String,
    /// The median per-round ratio the goal asks for.
    pub(crate) min_median_ratio: f64,
    /// The one measured; absent when either side was not measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) median_ratio: Option<f64>,
    /// Absent when not measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) met: Option<bool>,
}

/// The numbers of one target over its measured windows (all its rounds together).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Measurement {
    pub(crate) acknowledged_alerts: u64,
    /// Measured seconds, every round's window added.
    pub(crate) duration_secs: f64,
    pub(crate) alerts_per_sec: f64,
    pub(crate) requests: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_error: Option<String>,
    /// CPU the target's process used, in cores (Linux only).
    pub(crate) server_cpu_cores: Option<f64>,
    /// The same by thread name (`sqlx-sqlite-wor`, `tokio-runtime-w`, ...), busiest first.
    pub(crate) server_threads: Vec<ThreadCpu>,
    /// CPU this load generator used, in cores (Linux only).
    pub(crate) generator_cpu_cores: Option<f64>,
    /// CPU the whole machine used, every process included, in cores (Linux only).
    pub(crate) machine_busy_cores: Option<f64>,
    /// CPU time the machine spent idle waiting for disk I/O, in cores (Linux only).
    pub(crate) machine_iowait_cores: Option<f64>,
    /// rootcause's own view, from `/metrics`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ingest: Option<IngestStats>,
}

/// CPU of the threads of one name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ThreadCpu {
    pub(crate) thread: String,
    pub(crate) cores: f64,
}

/// The group-commit writer over the measured windows, from rootcause's `/metrics`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IngestStats {
    pub(crate) group_commits_per_sec: f64,
    pub(crate) mean_alerts_per_commit: f64,
    pub(crate) mean_commit_ms: f64,
    pub(crate) mean_correlation_ms: f64,
    /// Share of the windows the database spent committing groups (1.0: a commit always runs).
    pub(crate) writer_busy: f64,
}

/// The load every target gets.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    pub(crate) concurrency: usize,
    pub(crate) batch: usize,
    pub(crate) services: Arc<[String]>,
}

/// Each rootcause target's alerts/s over Alertmanager's: round by round (paired by round, so
/// each ratio compares two windows close in time), their median and spread, and overall.
pub(crate) fn ratios(targets: &[TargetReport], rounds: usize) -> Vec<Ratio> {
    let Some(baseline) = targets
        .iter()
        .find(|t| t.target.starts_with("Alertmanager"))
    else {
        return Vec::new();
    };
    let baseline_rates = baseline.rates_by_round(rounds);
    targets
        .iter()
        .filter(|t| t.target.starts_with("rootcause"))
        .map(|t| {
            let per_round = ratios_by_round(&t.rates_by_round(rounds), &baseline_rates);
            Ratio {
                target: t.target.clone(),
                baseline: baseline.target.clone(),
                by_round: Spread::of(&per_round),
                per_round,
                overall: t
                    .alerts_per_sec()
                    .zip(baseline.alerts_per_sec())
                    .filter(|(_, base)| *base > 0.0)
                    .map(|(rate, base)| rate / base),
            }
        })
        .collect()
}

/// The [`RATIO_GOALS`], each judged on its target's median per-round ratio.
pub(crate) fn goals(ratios: &[Ratio]) -> Vec<Goal> {
    RATIO_GOALS
        .iter()
        .map(|&(target, min_median_ratio)| {
            let ratio = ratios.iter().find(|r| r.target == target);
            let median_ratio = ratio.and_then(|r| r.by_round.as_ref()).map(|s| s.median);
            Goal {
                target: target.to_owned(),
                baseline: ratio.map_or_else(|| "Alertmanager".to_owned(), |r| r.baseline.clone()),
                min_median_ratio,
                median_ratio,
                met: median_ratio.map(|median| median >= min_median_ratio),
            }
        })
        .collect()
}

/// The report as text: conditions, the table, the rounds, ratios, goals, and where the time
/// went.
pub(crate) fn render(report: &Report) -> String {
    let mut out = String::new();
    let settings = &report.settings;
    let _ = writeln!(
        out,
        "\nrootcause bench ingest: POST /api/v2/alerts, {} rounds of {} s per target (each after \
         a {} s warm-up), the order rotated every round; {} tasks x {} alerts per request (half \
         new firing, half resolving)",
        settings.rounds,
        settings.round_secs,
        settings.warm_up_secs,
        settings.concurrency,
        settings.alerts_per_request
    );
    let _ = writeln!(
        out,
        "machine: {} cores, shared by the targets and this load generator; every target runs \
         throughout, only the one measured gets load",
        report.cores
    );
    out.push_str("durability:\n");
    for line in &report.durability {
        let _ = writeln!(out, "  {line}");
    }
    out.push('\n');
    render_table(&mut out, &report.targets);
    render_rounds(&mut out, report);
    if !report.ratios.is_empty() {
        out.push('\n');
    }
    for ratio in &report.ratios {
        let overall = ratio
            .overall
            .map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}x"));
        let _ = match &ratio.by_round {
            Some(s) => writeln!(
                out,
                "{} / {} alerts/s: median {:.2}x over {} rounds (Q1-Q3 {:.2}-{:.2}x, min-max \
                 {:.2}-{:.2}x); overall {overall}",
                ratio.target, ratio.baseline, s.median, s.rounds, s.q1, s.q3, s.min, s.max
            ),
            None => writeln!(
                out,
                "{} / {} alerts/s: n/a (not measured)",
                ratio.target, ratio.baseline
            ),
        };
    }
    render_goals(&mut out, &report.goals);
    render_details(&mut out, &report.targets);
    out
}

/// Each round's alerts/s per target and the per-round ratios, with their median and spread.
pub(crate) fn render_rounds(out: &mut String, report: &Report) {
    let rounds = report.settings.rounds;
    let measured = report
        .targets
        .iter()
        .filter(|t| !t.rounds.is_empty())
        .collect::<Vec<_>>();
    if measured.is_empty() {
        return;
    }
    let width = measured
        .iter()
        .map(|t| t.target.len())
        .max()
        .unwrap_or(0)
        .max(20)
        + 2;
    let _ = write!(
        out,
        "\nper round (each figure one {} s window; the order of round r starts at the r-th \
         target, wrapping)\n{:<width$}",
        report.settings.round_secs, ""
    );
    for round in 1..=rounds {
        let _ = write!(out, "  {:>9}", format!("R{round}"));
    }
    let _ = writeln!(out, "  {:>9}  {:>17}  {:>17}", "MEDIAN", "Q1-Q3", "MIN-MAX");
    out.push_str("alerts/s:\n");
    let rate = |r: f64| thousands(r.round() as u64);
    for target in &measured {
        let cells = target.rates_by_round(rounds);
        row(
            out,
            &target.target,
            width,
            &cells,
            target.alerts_per_sec_by_round.as_ref(),
            rate,
        );
    }
    let compared = report.ratios.iter().filter(|r| r.by_round.is_some());
    for (i, ratio) in compared.enumerate() {
        if i == 0 {
            let _ = writeln!(out, "ratio to {} in the same round:", ratio.baseline);
        }
        let times = |r: f64| format!("{r:.2}x");
        row(
            out,
            &ratio.target,
            width,
            &ratio.per_round,
            ratio.by_round.as_ref(),
            times,
        );
    }
}

/// One line of the per-round table: the cells, then the median, quartiles and extremes.
fn row(
    out: &mut String,
    name: &str,
    width: usize,
    cells: &[Option<f64>],
    spread: Option<&Spread>,
    show: impl Fn(f64) -> String,
) {
    let _ = write!(out, "  {name:<0$}", width - 2);
    for cell in cells {
        let _ = write!(out, "  {:>9}", cell.map_or_else(|| "-".to_owned(), &show));
    }
    if let Some(s) = spread {
        let pair = |a: f64, b: f64| format!("{}-{}", show(a), show(b));
        let _ = write!(
            out,
            "  {:>9}  {:>17}  {:>17}",
            show(s.median),
            pair(s.q1, s.q3),
            pair(s.min, s.max)
        );
    }
    out.push('\n');
}

/// The ingest goals, met or not.
pub(crate) fn render_goals(out: &mut String, goals: &[Goal]) {
    if goals.is_empty() {
        return;
    }
    out.push_str("\ntargets (median of the per-round ratios; reported, not enforced):\n");
    for goal in goals {
        let verdict = match goal.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not measured",
        };
        let _ = write!(
            out,
            "  {} >= {:.1}x {}'s rate: {verdict}",
            goal.target, goal.min_median_ratio, goal.baseline
        );
        if let Some(ratio) = goal.median_ratio {
            let _ = write!(out, " ({ratio:.2}x)");
        }
        out.push('\n');
    }
}

pub(crate) fn render_table(out: &mut String, targets: &[TargetReport]) {
    let width = targets
        .iter()
        .map(|t| t.target.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "{:<width$}  {:>13}  {:>8}  {:>10}  {:>8}  {:>8}  {:>8}  {:>6}",
        "TARGET", "ALERTS ACKED", "MEASURED", "ALERTS/S", "REQUESTS", "P50 MS", "P99 MS", "ERRORS"
    );
    for target in targets {
        match (&target.measurement, &target.note) {
            (Some(m), _) => {
                let _ = writeln!(
                    out,
                    "{:<width$}  {:>13}  {:>6.1} s  {:>10}  {:>8}  {:>8.1}  {:>8.1}  {:>6}",
                    target.target,
                    thousands(m.acknowledged_alerts),
                    m.duration_secs,
                    thousands(m.alerts_per_sec.round() as u64),
                    thousands(m.requests),
                    m.p50_ms,
                    m.p99_ms,
                    thousands(m.errors),
                );
            }
            (None, note) => {
                let note = note.as_deref().unwrap_or("not run");
                let first_line = note.lines().next().unwrap_or(note);
                let _ = writeln!(out, "{:<width$}  {first_line}", target.target);
            }
        }
    }
}

pub(crate) fn render_details(out: &mut String, targets: &[TargetReport]) {
    out.push_str("\nwhere the time went (measured windows together):\n");
    for target in targets {
        let Some(m) = &target.measurement else {
            continue;
        };
        let cores = |c: Option<f64>| c.map_or_else(|| "?".to_owned(), |c| format!("{c:.2}"));
        let _ = write!(
            out,
            "  {}: CPU in cores: server {}, load generator {}, whole machine {} (+ {} I/O wait)",
            target.target,
            cores(m.server_cpu_cores),
            cores(m.generator_cpu_cores),
            cores(m.machine_busy_cores),
            cores(m.machine_iowait_cores),
        );
        if let Some(i) = &m.ingest {
            let _ = write!(
                out,
                "; {:.0} group commits/s of {:.0} alerts, {:.1} ms each in the database \
                 (correlation {:.1} ms, beside it), database busy committing {:.0}%",
                i.group_commits_per_sec,
                i.mean_alerts_per_commit,
                i.mean_commit_ms,
                i.mean_correlation_ms,
                i.writer_busy * 100.0
            );
        }
        out.push('\n');
        if m.server_threads.len() > 1 {
            let threads = m
                .server_threads
                .iter()
                .map(|t| format!("{} {:.2}", t.thread, t.cores))
                .collect::<Vec<_>>();
            let _ = writeln!(out, "    server threads: {}", threads.join(", "));
        }
        if let Some(error) = &m.first_error {
            let _ = writeln!(out, "    {} errors; the first: {error}", m.errors);
        }
    }
    for target in targets.iter().filter(|t| t.status == Status::Failed) {
        if let Some(note) = &target.note {
            let _ = writeln!(out, "  {}: {note}", target.target);
        }
    }
}

/// Where a bench's report goes: `--json`, `--json-out` (flattened into each bench's options).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReportOutput {
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as JSON to FILE (the table still goes to stdout), for CI to keep.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<std::path::PathBuf>,
}

/// Prints a bench's report: the table, or its JSON with `--json`; and writes the JSON to
/// `--json-out` when given.
pub(crate) fn emit(
    report: &impl Serialize,
    table: impl FnOnce() -> String,
    output: &ReportOutput,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let text = serde_json::to_string_pretty(report)?;
    if output.json {
        println!("{text}");
    } else {
        print!("{}", table());
    }
    if let Some(path) = &output.json_out {
        std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("==> wrote {}", path.display());
    }
    Ok(())
}

/// The multi-threaded async runtime every bench drives its targets from.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(alerts: u64, secs: f64) -> Measurement {
        Measurement {
            acknowledged_alerts: alerts,
            duration_secs: secs,
            alerts_per_sec: alerts as f64 / secs,
            requests: alerts / 500,
            p50_ms: 50.0,
            p99_ms: 90.0,
            errors: 0,
            first_error: None,
            server_cpu_cores: Some(0.9),
            server_threads: vec![ThreadCpu {
                thread: "tokio-rt-worker".to_owned(),
                cores: 0.6,
            }],
            generator_cpu_cores: Some(0.1),
            machine_busy_cores: Some(1.9),
            machine_iowait_cores: Some(0.0),
            ingest: None,
        }
    }

    /// A measured target: `(round, position, alerts/s)` per window of 5 s, in the order given.
    fn target(name: &str, windows: &[(usize, usize, f64)]) -> TargetReport {
        let rounds = windows
            .iter()
            .map(|&(round, position, rate)| RoundMeasurement {
                round,
                position,
                acknowledged_alerts: (rate * 5.0) as u64,
                alerts_per_sec: rate,
                requests: (rate * 5.0 / 500.0) as u64,
                p50_ms: 50.0,
                p99_ms: 90.0,
                errors: 0,
            })
            .collect::<Vec<_>>();
        let alerts = rounds.iter().map(|r| r.acknowledged_alerts).sum();
        let measurement = measurement(alerts, 5.0 * rounds.len() as f64);
        TargetReport::measured(name.to_owned(), rounds, measurement, None)
    }

    /// Four rounds of three targets, positions rotated; PostgreSQL lost round 3.
    fn targets() -> Vec<TargetReport> {
        vec![
            target(
                SQLITE,
                &[(1, 1, 60.0), (2, 3, 90.0), (3, 2, 40.0), (4, 1, 75.0)],
            ),
            target(POSTGRES, &[(2, 1, 30.0), (1, 2, 50.0), (4, 2, 50.0)]),
            target(
                "Alertmanager 0.25.0",
                &[(1, 3, 40.0), (2, 2, 60.0), (3, 1, 50.0), (4, 3, 50.0)],
            ),
        ]
    }

    #[test]
    fn ratios_pair_the_windows_of_the_same_round() {
        let ratios = ratios(&targets(), 4);
        assert_eq!(ratios.len(), 2);
        let sqlite = &ratios[0];
        assert_eq!(
            (sqlite.target.as_str(), sqlite.baseline.as_str()),
            (SQLITE, "Alertmanager 0.25.0")
        );
        // 60/40, 90/60, 40/50, 75/50.
        assert_eq!(
            sqlite.per_round,
            [Some(1.5), Some(1.5), Some(0.8), Some(1.5)]
        );
        // Sorted 0.8 1.5 1.5 1.5: median 1.5; q1 at rank 0.75: 0.8 + 0.75 * 0.7 = 1.325.
        let spread = sqlite.by_round.as_ref().unwrap();
        assert_eq!((spread.rounds, spread.median, spread.q3), (4, 1.5, 1.5));
        assert!((spread.q1 - 1.325).abs() < 1e-12, "{spread:?}");
        assert_eq!((spread.min, spread.max), (0.8, 1.5));
        // The totals' ratio beside it: 265 / 200.
        assert_eq!(sqlite.overall, Some(1.325));

        // PostgreSQL's windows were listed out of round order and round 3 is missing: each
        // ratio still pairs the same round's windows (50/40, 30/60, -, 50/50).
        let postgres = &ratios[1];
        assert_eq!(postgres.per_round, [Some(1.25), Some(0.5), None, Some(1.0)]);
        assert_eq!(postgres.by_round.as_ref().unwrap().median, 1.0);

        let without_baseline = &targets()[..2];
        assert!(super::ratios(without_baseline, 4).is_empty());
    }

    #[test]
    fn goals_are_judged_on_the_median_ratio() {
        let goals = goals(&ratios(&targets(), 4));
        let verdicts = goals
            .iter()
            .map(|g| (g.target.as_str(), g.min_median_ratio, g.median_ratio, g.met))
            .collect::<Vec<_>>();
        assert_eq!(
            verdicts,
            [
                (SQLITE, 1.5, Some(1.5), Some(true)),
                (POSTGRES, 1.0, Some(1.0), Some(true)),
            ]
        );
        let unmeasured = super::goals(&[]);
        assert!(unmeasured.iter().all(|g| g.met.is_none()));
        assert_eq!(unmeasured[0].baseline, "Alertmanager");
    }

    fn report() -> Report {
        let targets = targets();
        let ratios = ratios(&targets, 4);
        Report {
            bench: "ingest",
            cores: 2,
            settings: Settings {
                rounds: 4,
                round_secs: 5,
                warm_up_secs: 1,
                concurrency: 8,
                alerts_per_request: 500,
            },
            order: vec![vec![SQLITE.to_owned(), POSTGRES.to_owned()]; 4],
            durability: vec!["in memory".to_owned()],
            targets,
            goals: goals(&ratios),
            ratios,
        }
    }

    #[test]
    fn the_json_holds_settings_rounds_ratios_and_goals() {
        let json = serde_json::to_value(report()).unwrap();
        assert_eq!(json["bench"], "ingest");
        assert_eq!(json["cores"], 2);
        assert_eq!(
            json["settings"],
            serde_json::json!({"rounds": 4, "round_secs": 5, "warm_up_secs": 1,
                               "concurrency": 8, "alerts_per_request": 500})
        );
        assert_eq!(json["order"].as_array().unwrap().len(), 4);
        let sqlite = &json["targets"][0];
        assert_eq!(sqlite["target"], SQLITE);
        assert_eq!(sqlite["status"], "ran");
        assert_eq!(
            sqlite["rounds"][1],
            serde_json::json!({"round": 2, "position": 3, "acknowledged_alerts": 450,
                               "alerts_per_sec": 90.0, "requests": 0, "p50_ms": 50.0,
                               "p99_ms": 90.0, "errors": 0})
        );
        assert_eq!(sqlite["alerts_per_sec_by_round"]["median"], 67.5);
        assert_eq!(sqlite["measurement"]["acknowledged_alerts"], 1325);
        assert_eq!(sqlite["measurement"]["server_threads"][0]["cores"], 0.6);
        let postgres = &json["ratios"][1];
        assert_eq!(
            postgres["per_round"],
            serde_json::json!([1.25, 0.5, null, 1.0])
        );
        let by_round = postgres["by_round"].as_object().unwrap();
        let keys = by_round.keys().map(String::as_str).collect::<Vec<_>>();
        assert_eq!(keys, ["max", "median", "min", "q1", "q3", "rounds"]);
        assert_eq!(json["goals"][0]["met"], true);
        assert_eq!(json["goals"][1]["min_median_ratio"], 1.0);
    }

    #[test]
    fn the_table_shows_rounds_ratios_and_goals() {
        let text = render(&report());
        assert!(text.contains("4 rounds of 5 s per target"), "{text}");
        let lines = text.lines().collect::<Vec<_>>();
        let header = lines.iter().position(|l| *l == "alerts/s:").unwrap();
        let sqlite_rates = lines[header + 1];
        let cells = sqlite_rates.split_whitespace().collect::<Vec<_>>();
        assert_eq!(
            cells[2..7],
            ["60", "90", "40", "75", "68"],
            "{sqlite_rates}"
        );
        assert!(text.contains("ratio to Alertmanager 0.25.0 in the same round:"));
        assert!(text.contains(
            "rootcause (PostgreSQL) / Alertmanager 0.25.0 alerts/s: median 1.00x over 3 rounds"
        ));
        assert!(
            text.contains("rootcause (SQLite) >= 1.5x Alertmanager 0.25.0's rate: met (1.50x)")
        );
        assert!(!text.contains("NOT met"));
    }
}
