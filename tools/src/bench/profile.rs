//! Where the time went: CPU of the target's process and threads, and rootcause's own ingest
//! telemetry scraped from `/metrics` at both ends of each measured window, summed over a
//! target's windows.

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

/// What a target used over its measured windows (its rounds), summed window by window: the
/// time between rounds, when the other targets were loaded, is left out.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    /// Windows added.
    pub(crate) windows: usize,
    /// Their length, from snapshot to snapshot.
    pub(crate) secs: f64,
    pub(crate) server_cpu_secs: Option<f64>,
    /// The server's CPU seconds by thread name.
    pub(crate) server_threads: BTreeMap<String, f64>,
    pub(crate) own_cpu_secs: Option<f64>,
    pub(crate) machine_busy_secs: Option<f64>,
    pub(crate) machine_iowait_secs: Option<f64>,
    /// The growth of rootcause's ingest histograms.
    pub(crate) metrics: Option<IngestTotals>,
}

impl Usage {
    /// Adds the window between two snapshots. A figure missing from any window is missing from
    /// the sum: part of it would read as a lower rate.
    pub(crate) fn add(&mut self, before: &Snapshot, after: &Snapshot) {
        let first = self.windows == 0;
        let sum = |total: Option<f64>, b: Option<f64>, a: Option<f64>| {
            let delta = a.zip(b).map(|(a, b)| a - b);
            if first {
                delta
            } else {
                total.zip(delta).map(|(total, delta)| total + delta)
            }
        };
        self.server_cpu_secs = sum(
            self.server_cpu_secs,
            before.server_cpu_secs,
            after.server_cpu_secs,
        );
        self.own_cpu_secs = sum(self.own_cpu_secs, before.own_cpu_secs, after.own_cpu_secs);
        self.machine_busy_secs = sum(
            self.machine_busy_secs,
            before.machine.map(|m| m.0),
            after.machine.map(|m| m.0),
        );
        self.machine_iowait_secs = sum(
            self.machine_iowait_secs,
            before.machine.map(|m| m.1),
            after.machine.map(|m| m.1),
        );
        for (name, end) in &after.server_threads {
            let start = before.server_threads.get(name).copied().unwrap_or(0.0);
            *self.server_threads.entry(name.clone()).or_default() += end - start;
        }
        let growth = before
            .metrics
            .as_ref()
            .zip(after.metrics.as_ref())
            .map(|(b, a)| a.minus(b));
        self.metrics = if first {
            growth
        } else {
            self.metrics.take().zip(growth).map(|(t, g)| t.plus(&g))
        };
        self.secs += after.at.duration_since(before.at).as_secs_f64();
        self.windows += 1;
    }

    /// CPU seconds over the windows, in cores.
    pub(crate) fn cores(&self, cpu_secs: Option<f64>) -> Option<f64> {
        cpu_secs.filter(|_| self.secs > 0.0).map(|s| s / self.secs)
    }

    /// Cores per server thread name, busiest first.
    pub(crate) fn thread_cores(&self) -> Vec<ThreadCpu> {
        thread_cores(&BTreeMap::new(), &self.server_threads, self.secs)
    }

    /// The group-commit writer over the windows, from rootcause's `/metrics`.
    pub(crate) fn ingest(&self) -> Option<IngestStats> {
        let growth = self.metrics.as_ref()?;
        Some(growth.since(&IngestTotals::default(), self.secs))
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

    /// The growth from `earlier` to these totals.
    pub(crate) fn minus(&self, earlier: &IngestTotals) -> IngestTotals {
        IngestTotals {
            commits: self.commits - earlier.commits,
            committed_alerts: self.committed_alerts - earlier.committed_alerts,
            commit_secs: self.commit_secs - earlier.commit_secs,
            commit_count: self.commit_count - earlier.commit_count,
            correlation_secs: self.correlation_secs - earlier.correlation_secs,
            correlation_count: self.correlation_count - earlier.correlation_count,
        }
    }

    /// These totals and `other`'s, added.
    pub(crate) fn plus(&self, other: &IngestTotals) -> IngestTotals {
        IngestTotals {
            commits: self.commits + other.commits,
            committed_alerts: self.committed_alerts + other.committed_alerts,
            commit_secs: self.commit_secs + other.commit_secs,
            commit_count: self.commit_count + other.commit_count,
            correlation_secs: self.correlation_secs + other.correlation_secs,
            correlation_count: self.correlation_count + other.correlation_count,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn snapshot(at: Instant, cpu: f64, worker: f64, commits: f64) -> Snapshot {
        Snapshot {
            at,
            server_cpu_secs: Some(cpu),
            server_threads: BTreeMap::from([("worker".to_owned(), worker)]),
            own_cpu_secs: Some(cpu / 10.0),
            machine: Some((2.0 * cpu, 0.0)),
            metrics: Some(IngestTotals {
                commits,
                committed_alerts: 1000.0 * commits,
                commit_secs: commits / 100.0,
                commit_count: commits,
                ..IngestTotals::default()
            }),
        }
    }

    #[test]
    fn usage_sums_the_windows_and_leaves_the_gaps_between_them_out() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut usage = Usage::default();
        // Two 5 s windows 10 s apart. In between, while other targets were loaded, the server
        // used 2 CPU seconds and committed 10 groups in the background: not counted.
        usage.add(
            &snapshot(at(0), 0.0, 0.0, 0.0),
            &snapshot(at(5), 4.0, 3.0, 50.0),
        );
        usage.add(
            &snapshot(at(15), 6.0, 4.0, 60.0),
            &snapshot(at(20), 10.0, 6.0, 110.0),
        );
        assert_eq!((usage.windows, usage.secs), (2, 10.0));
        assert_eq!(usage.cores(usage.server_cpu_secs), Some(0.8));
        assert_eq!(usage.cores(usage.machine_busy_secs), Some(1.6));
        assert_eq!(
            usage.thread_cores(),
            [ThreadCpu {
                thread: "worker".to_owned(),
                cores: 0.5
            }]
        );
        let ingest = usage.ingest().unwrap();
        assert_eq!(ingest.group_commits_per_sec, 10.0);
        assert_eq!(ingest.mean_alerts_per_commit, 1000.0);
        assert_eq!(ingest.mean_commit_ms, 10.0);
        assert_eq!(ingest.writer_busy, 0.1);

        // A figure missing from one window is missing from the sum.
        let mut blind = snapshot(at(25), 10.0, 6.0, 110.0);
        blind.machine = None;
        usage.add(&blind, &snapshot(at(30), 12.0, 7.0, 120.0));
        assert_eq!(usage.cores(usage.machine_busy_secs), None);
        assert_eq!(usage.cores(usage.server_cpu_secs), Some(10.0 / 15.0));
    }
}
