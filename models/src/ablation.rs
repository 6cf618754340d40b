//! Telemetry ablation: a case with one source of evidence withheld, so that a system rich in
//! telemetry also stands in for the many estates that have less of it (no logs, no traces, no
//! alerts, no dependency graph, no history before the incident).
//!
//! Withholding happens before ranking, on the case a ranker sees; the label is untouched.

use std::fmt;
use std::str::FromStr;

use crate::case::{Case, Source};

/// A source of evidence that can be withheld from a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Withhold {
    /// Log statistics: line counts by level and template counts.
    Logs,
    /// Trace statistics and every call-edge series (calls between services, however observed:
    /// from spans or from a service mesh).
    Traces,
    /// Alerts.
    Alerts,
    /// The given dependency graph. Calls seen in edge series still connect services, as a
    /// deployment that learns its graph from traces would see them.
    Topology,
    /// Everything observed before the incident: the known-normal windows, and every sample
    /// before `anchor − lead_s` (the lead a ranker allows for symptoms that show early). What
    /// remains is the incident itself, from which a ranker must judge change within the window.
    Baseline,
}

impl Withhold {
    /// Every source, in the order the ablation table lists them.
    pub const ALL: [Withhold; 5] = [
        Withhold::Logs,
        Withhold::Traces,
        Withhold::Alerts,
        Withhold::Topology,
        Withhold::Baseline,
    ];

    /// The name on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Withhold::Logs => "logs",
            Withhold::Traces => "traces",
            Withhold::Alerts => "alerts",
            Withhold::Topology => "topology",
            Withhold::Baseline => "baseline",
        }
    }
}

impl fmt::Display for Withhold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Withhold {
    type Err = String;

    fn from_str(text: &str) -> Result<Withhold, String> {
        Withhold::ALL
            .into_iter()
            .find(|w| w.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown source {text:?}: expected one of {}",
                    Withhold::ALL.map(Withhold::as_str).join(", ")
                )
            })
    }
}

/// Withholds `sources` from `case`. `lead_s` is how long before the anchor the incident may
/// already show (the evidence windows' lead), kept when the baseline is withheld.
pub fn withhold_sources(case: &mut Case, sources: &[Withhold], lead_s: i64) {
    for source in sources {
        match source {
            Withhold::Logs => case.series.retain(|s| s.source != Source::Log),
            Withhold::Traces => {
                case.series.retain(|s| s.source != Source::Trace);
                case.edges.clear();
            }
            Withhold::Alerts => case.alerts.clear(),
            Withhold::Topology => case.topology = None,
            Withhold::Baseline => {
                let from = case.anchor - lead_s;
                case.normal_windows.clear();
                for s in &mut case.series {
                    let keep = s.times.partition_point(|&t| t < from);
                    s.times.drain(..keep);
                    s.values.drain(..keep);
                }
                for e in &mut case.edges {
                    let keep = e.times.partition_point(|&t| t < from);
                    e.times.drain(..keep);
                    e.values.drain(..keep);
                }
                case.series.retain(|s| !s.times.is_empty());
                case.edges.retain(|e| !e.times.is_empty());
            }
        }
    }
}

/// A short description of what a list of withheld sources leaves: `full telemetry`,
/// `without logs`, `without logs, traces`.
pub fn describe(sources: &[Withhold]) -> String {
    if sources.is_empty() {
        "full telemetry".to_string()
    } else {
        format!(
            "without {}",
            sources
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::case::{CaseAlert, EdgeSeries, Family, Series};

    fn series(source: Source, name: &str) -> Series {
        Series {
            service: "a".into(),
            source,
            family: Family::Other,
            name: name.into(),
            times: vec![100, 160, 220, 280],
            values: vec![1.0, 2.0, 3.0, 4.0],
        }
    }

    fn case() -> Case {
        Case {
            anchor: 250,
            candidates: vec!["a".into()],
            series: vec![
                series(Source::Metric, "cpu"),
                series(Source::Trace, "span_count"),
                series(Source::Log, "log_lines"),
            ],
            edges: vec![EdgeSeries {
                caller: "a".into(),
                callee: "b".into(),
                name: "calls".into(),
                times: vec![100, 280],
                values: vec![1.0, 2.0],
            }],
            alerts: vec![CaseAlert {
                service: Some("a".into()),
                name: "HighLatency".into(),
                signal: "latency".into(),
                severity: "critical".into(),
                starts_at: 240,
                ends_at: None,
                labels: Default::default(),
                count: 1,
            }],
            topology: Some(Arc::new(
                rootcause_topology::Topology::parse(
                    "services:\n  - name: a\n    kind: service\n",
                    rootcause_topology::Format::Yaml,
                )
                .unwrap(),
            )),
            normal_windows: vec![(0, 100)],
            ..Case::default()
        }
    }

    #[test]
    fn each_source_is_withheld_and_nothing_else() {
        let mut c = case();
        withhold_sources(&mut c, &[Withhold::Logs], 60);
        assert_eq!(c.series.len(), 2);
        assert!(c.series.iter().all(|s| s.source != Source::Log));
        assert_eq!((c.edges.len(), c.alerts.len()), (1, 1));

        let mut c = case();
        withhold_sources(&mut c, &[Withhold::Traces], 60);
        assert!(c.series.iter().all(|s| s.source != Source::Trace));
        assert!(c.edges.is_empty());
        assert_eq!(c.series.len(), 2);

        let mut c = case();
        withhold_sources(&mut c, &[Withhold::Alerts, Withhold::Topology], 60);
        assert!(c.alerts.is_empty() && c.topology.is_none());
        assert_eq!((c.series.len(), c.edges.len()), (3, 1));
    }

    #[test]
    fn withholding_the_baseline_keeps_the_lead_and_the_incident() {
        let mut c = case();
        withhold_sources(&mut c, &[Withhold::Baseline], 60);
        assert!(c.normal_windows.is_empty());
        // anchor 250 − lead 60 = 190: the samples at 220 and 280 remain.
        for s in &c.series {
            assert_eq!(s.times, [220, 280]);
            assert_eq!(s.values, [3.0, 4.0]);
        }
        assert_eq!(c.edges[0].times, [280]);
    }

    #[test]
    fn names_parse_and_describe() {
        assert_eq!("logs".parse::<Withhold>(), Ok(Withhold::Logs));
        assert!("metrics".parse::<Withhold>().unwrap_err().contains("logs"));
        assert_eq!(describe(&[]), "full telemetry");
        assert_eq!(
            describe(&[Withhold::Logs, Withhold::Traces]),
            "without logs, traces"
        );
    }
}
