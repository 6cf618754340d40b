//! Where the time went: CPU of the target's process and threads, and rootcause's own ingest
//! telemetry scraped from `/metrics` before and after the run.

use super::report::{IngestStats, ThreadCpu};
use std::collections::BTreeMap;
use std::time::Instant;

/// Linux's `USER_HZ`: the unit of the CPU times in `/proc/PID/stat`.
pub(crate) const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// CPU times and rootcause's ingest metrics at one instant.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) at: Instant,
    pub(crate) server_cpu_secs: Option<f64>,
    /// The server's CPU seconds by thread name.
    pub(crate) server_threads: BTreeMap<String, f64>,
    pub(crate) own_cpu_secs: Option<f64>,
    /// Machine-wide busy and I/O-wait CPU seconds.
    pub(crate) machine: Option<(f64, f64)>,
    pub(crate) metrics: Option<IngestTotals>,
}

impl Snapshot {
    pub(crate) async fn take(
        client: &reqwest::Client,
        server_pid: u32,
        metrics_url: Option<&str>,
    ) -> Snapshot {
        let metrics = match metrics_url {
            Some(url) => IngestTotals::fetch(client, url).await,
            None => None,
        };
        Snapshot {
            at: Instant::now(),
            server_cpu_secs: process_cpu_secs(&format!("/proc/{server_pid}/stat")),
            server_threads: thread_cpu_secs(server_pid),
            own_cpu_secs: process_cpu_secs("/proc/self/stat"),
            machine: machine_cpu_secs(),
            metrics,
        }
    }
}

/// User plus system CPU seconds of a process, from its `/proc/PID/stat`.
pub(crate) fn process_cpu_secs(stat_path: &str) -> Option<f64> {
    stat_cpu_secs(&std::fs::read_to_string(stat_path).ok()?)
}

/// CPU seconds of a process's threads, summed by thread name, from `/proc/PID/task/*/stat`.
pub(crate) fn thread_cpu_secs(pid: u32) -> BTreeMap<String, f64> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let name = stat
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map(|(name, _)| name.to_owned());
        if let (Some(name), Some(secs)) = (name, stat_cpu_secs(&stat)) {
            *by_name.entry(name).or_default() += secs;
        }
    }
    by_name
}

/// Cores used per thread name between two readings, busiest first; idle names left out.
pub(crate) fn thread_cores(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    secs: f64,
) -> Vec<ThreadCpu> {
    if secs <= 0.0 {
        return Vec::new();
    }
    let mut cores = after
        .iter()
        .map(|(name, end)| ThreadCpu {
            thread: name.clone(),
            cores: (end - before.get(name).copied().unwrap_or(0.0)) / secs,
        })
        .filter(|t| t.cores >= 0.01)
        .collect::<Vec<_>>();
    cores.sort_by(|a, b| b.cores.total_cmp(&a.cores));
    cores
}

/// User plus system CPU seconds in the text of a `stat` file.
pub(crate) fn stat_cpu_secs(stat: &str) -> Option<f64> {
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let fields = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .collect::<Vec<_>>();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / CLOCK_TICKS_PER_SEC)
}

/// Busy and I/O-wait CPU seconds of the whole machine, from `/proc/stat`.
pub(crate) fn machine_cpu_secs() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|field| field.parse::<f64>().ok())
        .collect::<Option<Vec<_>>>()?;
    // user nice system idle iowait irq softirq steal ...
    let busy = [0, 1, 2, 5, 6]
        .iter()
        .map(|&i| ticks.get(i))
        .sum::<Option<f64>>()?;
    let iowait = *ticks.get(4)?;
    Some((busy / CLOCK_TICKS_PER_SEC, iowait / CLOCK_TICKS_PER_SEC))
}

/// Cumulative ingest histograms of rootcause's `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct IngestTotals {
    pub(crate) commits: f64,
    pub(crate) committed_alerts: f64,
    pub(crate) commit_secs: f64,
    pub(crate) commit_count: f64,
    pub(crate) correlation_secs: f64,
    pub(crate) correlation_count: f64,
}

impl IngestTotals {
    pub(crate) async fn fetch(client: &reqwest::Client, url: &str) -> Option<IngestTotals> {
        let text = client.get(url).send().await.ok()?.text().await.ok()?;
        Some(IngestTotals::parse(&text))
    }

    pub(crate) fn parse(text: &str) -> IngestTotals {
        use rootcause::telemetry::names::{
            CORRELATION_SECONDS, INGEST_BATCH_ALERTS, INGEST_COMMIT_SECONDS,
        };
        let total = |metric: &str, suffix: &str| series_total(text, &format!("{metric}{suffix}"));
        IngestTotals {
            commits: total(INGEST_BATCH_ALERTS, "_count"),
            committed_alerts: total(INGEST_BATCH_ALERTS, "_sum"),
            commit_secs: total(INGEST_COMMIT_SECONDS, "_sum"),
            commit_count: total(INGEST_COMMIT_SECONDS, "_count"),
            correlation_secs: total(CORRELATION_SECONDS, "_sum"),
            correlation_count: total(CORRELATION_SECONDS, "_count"),
        }
    }

    /// What happened between `earlier` and these totals, over `secs` seconds.
    pub(crate) fn since(&self, earlier: &IngestTotals, secs: f64) -> IngestStats {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let commits = self.commits - earlier.commits;
        IngestStats {
            group_commits_per_sec: ratio(commits, secs),
            mean_alerts_per_commit: ratio(
                self.committed_alerts - earlier.committed_alerts,
                commits,
            ),
            mean_commit_ms: 1000.0
                * ratio(
                    self.commit_secs - earlier.commit_secs,
                    self.commit_count - earlier.commit_count,
                ),
            mean_correlation_ms: 1000.0
                * ratio(
                    self.correlation_secs - earlier.correlation_secs,
                    self.correlation_count - earlier.correlation_count,
                ),
            writer_busy: ratio(self.commit_secs - earlier.commit_secs, secs),
        }
    }
}

/// The sum of every sample of `series` (over all its label sets) in Prometheus text format.
pub(crate) fn series_total(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(series)?;
            let rest = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once('}')?.1,
                None => rest,
            };
            // A longer name with the same prefix is another series.
            let value = rest.strip_prefix(' ')?.split_whitespace().next()?;
            value.parse::<f64>().ok()
        })
        .sum()
}
