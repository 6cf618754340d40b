//! What `bench ingest` measured, and the report as text and JSON.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// The ingest target of the design: alerts per second on SQLite on a 2-core machine.
pub(crate) const TARGET_ALERTS_PER_SEC: u64 = 50_000;

/// What was measured, and under which conditions.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) cores: usize,
    pub(crate) duration_secs: u64,
    pub(crate) warm_up_secs: u64,
    pub(crate) concurrency: usize,
    pub(crate) alerts_per_request: usize,
    pub(crate) durability: Vec<String>,
    pub(crate) targets: Vec<TargetReport>,
    pub(crate) ratios: Vec<Ratio>,
}

/// One row of the table.
#[derive(Debug, Serialize)]
pub(crate) struct TargetReport {
    pub(crate) target: String,
    pub(crate) status: Status,
    /// Why the target was not run, or what failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) measurement: Option<Measurement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    Ran,
    NotRun,
    Failed,
}

impl TargetReport {
    pub(crate) fn from_result(target: String, result: anyhow::Result<Measurement>) -> TargetReport {
        match result {
            Ok(measurement) => TargetReport {
                target,
                status: Status::Ran,
                note: None,
                measurement: Some(measurement),
            },
            Err(error) => {
                eprintln!("*** {target}: FAILED: {error:#}");
                TargetReport {
                    target,
                    status: Status::Failed,
                    note: Some(format!("failed: {error:#}")),
                    measurement: None,
                }
            }
        }
    }

    pub(crate) fn not_run(target: &str, why: &str) -> TargetReport {
        eprintln!("*** {target}: NOT RUN: {why}");
        TargetReport {
            target: target.to_owned(),
            status: Status::NotRun,
            note: Some(format!("not run: {why}")),
            measurement: None,
        }
    }

    pub(crate) fn alerts_per_sec(&self) -> Option<f64> {
        self.measurement.as_ref().map(|m| m.alerts_per_sec)
    }
}

/// A rootcause target's throughput over Alertmanager's.
#[derive(Debug, Serialize)]
pub(crate) struct Ratio {
    pub(crate) target: String,
    pub(crate) baseline: String,
    /// Absent when either side was not measured.
    pub(crate) ratio: Option<f64>,
}

/// The numbers of one target over the measured window.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Measurement {
    pub(crate) acknowledged_alerts: u64,
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

/// The group-commit writer over the measured window, from rootcause's `/metrics`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IngestStats {
    pub(crate) group_commits_per_sec: f64,
    pub(crate) mean_alerts_per_commit: f64,
    pub(crate) mean_commit_ms: f64,
    pub(crate) mean_correlation_ms: f64,
    /// Share of the window the database spent committing groups (1.0: a commit always runs).
    pub(crate) writer_busy: f64,
}

/// The load every target gets.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    pub(crate) duration: Duration,
    pub(crate) concurrency: usize,
    pub(crate) batch: usize,
    pub(crate) services: Arc<[String]>,
}

/// The report as text: conditions, the table, ratios, and where the time went.
pub(crate) fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nrootcause bench ingest: POST /api/v2/alerts, {} s per target after a {} s warm-up, \
         {} tasks x {} alerts per request (half new firing, half resolving)",
        report.duration_secs, report.warm_up_secs, report.concurrency, report.alerts_per_request
    );
    let _ = writeln!(
        out,
        "machine: {} cores, shared by the target and this load generator",
        report.cores
    );
    out.push_str("durability:\n");
    for line in &report.durability {
        let _ = writeln!(out, "  {line}");
    }
    out.push('\n');
    render_table(&mut out, &report.targets);
    if !report.ratios.is_empty() {
        out.push('\n');
    }
    for ratio in &report.ratios {
        let value = ratio
            .ratio
            .map_or_else(|| "n/a (not measured)".to_owned(), |r| format!("{r:.2}x"));
        let _ = writeln!(
            out,
            "{} / {} alerts/s: {value}",
            ratio.target, ratio.baseline
        );
    }
    render_targets(&mut out, report);
    render_details(&mut out, &report.targets);
    out
}

/// The ingest targets of the design (DESIGN §11), met or not, for the SQLite default.
pub(crate) fn render_targets(out: &mut String, report: &Report) {
    let Some(sqlite) = report
        .targets
        .iter()
        .find(|t| t.target == "rootcause (SQLite)")
    else {
        return;
    };
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    out.push_str("\ntargets:\n");
    match sqlite.alerts_per_sec() {
        Some(rate) => {
            let _ = writeln!(
                out,
                "  rootcause (SQLite) >= {TARGET_ALERTS_PER_SEC} alerts/s: {} ({rate:.0})",
                verdict(rate >= TARGET_ALERTS_PER_SEC as f64)
            );
        }
        None => out.push_str("  rootcause (SQLite): not measured\n"),
    }
    let ratio = report
        .ratios
        .iter()
        .find(|r| r.target == sqlite.target)
        .and_then(|r| r.ratio);
    match ratio {
        Some(ratio) => {
            let _ = writeln!(
                out,
                "  rootcause (SQLite) >= Alertmanager's rate: {} ({ratio:.2}x)",
                verdict(ratio >= 1.0)
            );
        }
        None => out.push_str("  rootcause (SQLite) >= Alertmanager's rate: not measured\n"),
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
        "TARGET", "ALERTS ACKED", "DURATION", "ALERTS/S", "REQUESTS", "P50 MS", "P99 MS", "ERRORS"
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
    out.push_str("\nwhere the time went (measured window):\n");
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
