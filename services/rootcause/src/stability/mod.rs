//! The stability report: how fault management performed over a period, from what the store
//! holds about each incident (pure: the records in, the figures out; no I/O, no clock).
//!
//! - **MTTA**: from an incident's opening to the first human response (a decision on an action,
//!   feedback on a hypothesis, or a recorded resolution, whichever came first).
//! - **MTTR** (time to mitigate): the resolution's `time_to_mitigate_s` where recorded, else from
//!   the first alert to the moment the incident resolved (all its alerts ended).
//! - **Noise reduction**: alerts received in the period's incidents against the incidents a
//!   responder had to look at (`1 − incidents / alerts`).
//! - **Change failure rate**: the share of change events followed, within
//!   [`CHANGE_BLAME_WINDOW_MS`], by an incident whose confirmed root cause is the changed service.
//! - **Production accuracy**: for incidents resolved with a service as the cause, whether it was
//!   the top hypothesis shown to responders (the latest `suggested` audit entry before the
//!   resolution: its top five), as AC@1, AC@3, AC@5 and Avg@5.
//! - **Action success rate**: of the resolutions that name an action and say whether it worked,
//!   the share that worked.

use std::collections::BTreeMap;

mod records;

pub use records::gather;

use serde::Serialize;
use utoipa::ToSchema;

use crate::risk::history::change_outcomes;
pub use crate::risk::history::{CHANGE_BLAME_WINDOW_MS, ChangeRecord};

/// What the report reads of one incident.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentRecord {
    /// Id.
    pub id: i64,
    /// When it was opened (ms).
    pub opened_at: i64,
    /// Its first alert's start (ms).
    pub first_activity: i64,
    /// When all its alerts had ended (ms), if they have.
    pub resolved_at: Option<i64>,
    /// Its services.
    pub services: Vec<String>,
    /// Alert occurrences in it.
    pub alert_count: i64,
    /// The first human response (ms), if any.
    pub first_response_at: Option<i64>,
    /// The latest recorded resolution, if any.
    pub resolution: Option<ResolutionRecord>,
}

/// What the report reads of a resolution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolutionRecord {
    /// The confirmed root cause (a service, `external` or `unknown`).
    pub root_cause: String,
    /// The action taken.
    pub action: Option<String>,
    /// Whether it worked.
    pub worked: Option<bool>,
    /// Seconds from the start to mitigation, as recorded.
    pub time_to_mitigate_s: Option<f64>,
    /// The hypotheses shown to responders last before the resolution, most likely first.
    pub shown: Vec<String>,
}

/// Mean and median of durations, in seconds, and how many there were.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Durations {
    /// How many incidents have one.
    pub count: usize,
    /// Mean seconds; null without any.
    pub mean_s: Option<f64>,
    /// Median seconds; null without any.
    pub median_s: Option<f64>,
}

impl Durations {
    fn of(mut seconds: Vec<f64>) -> Durations {
        if seconds.is_empty() {
            return Durations::default();
        }
        seconds.sort_by(f64::total_cmp);
        let n = seconds.len();
        let median = if n % 2 == 1 {
            seconds[n / 2]
        } else {
            (seconds[n / 2 - 1] + seconds[n / 2]) / 2.0
        };
        Durations {
            count: n,
            mean_s: Some(seconds.iter().sum::<f64>() / n as f64),
            median_s: Some(median),
        }
    }
}

/// A count per name.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Count {
    /// Service or team.
    pub name: String,
    /// Incidents it was part of.
    pub incidents: usize,
}

/// Incidents opened on one day (UTC).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DayCount {
    /// The day's start (ms, UTC midnight).
    pub day: i64,
    /// Incidents opened that day.
    pub incidents: usize,
    /// Their alert occurrences.
    pub alerts: i64,
}

/// Most days the daily series covers (the period's last).
pub const MAX_DAYS: i64 = 366;

/// Changes of one service.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServiceChanges {
    /// The service.
    pub service: String,
    /// Change events.
    pub changes: usize,
    /// Those followed by an incident it caused.
    pub failed: usize,
    /// `failed / changes`.
    pub failure_rate: f64,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StabilityReport {
    /// Start of the period (ms).
    pub since: i64,
    /// End of the period (ms).
    pub until: i64,
    /// Incidents opened in the period.
    pub incidents: usize,
    /// Alert occurrences in them.
    pub alerts: i64,
    /// `1 − incidents / alerts`; null without alerts.
    pub noise_reduction: Option<f64>,
    /// Time to the first human response.
    pub mtta: Durations,
    /// Time to mitigate.
    pub mttr: Durations,
    /// Incidents and alerts per day (UTC), every day of the period (its last [`MAX_DAYS`]).
    pub daily: Vec<DayCount>,
    /// Incidents per service, most first.
    pub by_service: Vec<Count>,
    /// Incidents per team (the topology's `team`), most first.
    pub by_team: Vec<Count>,
    /// Change events in the period.
    pub changes: usize,
    /// Those followed by an incident the changed service caused.
    pub failed_changes: usize,
    /// `failed_changes / changes`; null without changes.
    pub change_failure_rate: Option<f64>,
    /// Per changed service, the highest failure rate first.
    pub changes_by_service: Vec<ServiceChanges>,
    /// Resolutions naming a service as the cause, with the hypotheses shown before them.
    pub judged: usize,
    /// Share of those whose cause was the top hypothesis shown.
    pub ac1: Option<f64>,
    /// Share whose cause was among the first three shown.
    pub ac3: Option<f64>,
    /// Share whose cause was among the first five shown.
    pub ac5: Option<f64>,
    /// Mean of AC@1 to AC@5.
    pub avg5: Option<f64>,
    /// Resolutions that name an action and say whether it worked.
    pub actions_judged: usize,
    /// Share of those that worked.
    pub action_success_rate: Option<f64>,
}

/// The report over `[since, until]` of `incidents` (those opened in it count) and `changes`,
/// with `team_of` a service's team.
pub fn report(
    since: i64,
    until: i64,
    incidents: &[IncidentRecord],
    changes: &[ChangeRecord],
    team_of: impl Fn(&str) -> Option<String>,
) -> StabilityReport {
    let incidents: Vec<&IncidentRecord> = incidents
        .iter()
        .filter(|i| (since..=until).contains(&i.opened_at))
        .collect();
    let alerts: i64 = incidents.iter().map(|i| i.alert_count).sum();
    let mtta = Durations::of(
        incidents
            .iter()
            .filter_map(|i| Some((i.first_response_at? - i.opened_at).max(0) as f64 / 1000.0))
            .collect(),
    );
    let mttr = Durations::of(
        incidents
            .iter()
            .filter_map(|i| {
                i.resolution
                    .as_ref()
                    .and_then(|r| r.time_to_mitigate_s)
                    .or_else(|| Some((i.resolved_at? - i.first_activity).max(0) as f64 / 1000.0))
            })
            .collect(),
    );
    let mut services: BTreeMap<String, usize> = BTreeMap::new();
    let mut teams: BTreeMap<String, usize> = BTreeMap::new();
    for incident in &incidents {
        let mut own_teams: Vec<String> = Vec::new();
        for service in &incident.services {
            *services.entry(service.clone()).or_default() += 1;
            if let Some(team) = team_of(service)
                && !own_teams.contains(&team)
            {
                own_teams.push(team);
            }
        }
        for team in own_teams {
            *teams.entry(team).or_default() += 1;
        }
    }
    let changes: Vec<&ChangeRecord> = changes
        .iter()
        .filter(|c| (since..=until).contains(&c.at))
        .collect();
    let per_service = change_outcomes(
        changes.iter().copied(),
        incidents.iter().filter_map(|i| {
            i.resolution
                .as_ref()
                .map(|r| (r.root_cause.as_str(), i.opened_at))
        }),
    );
    let failed_changes: usize = per_service.values().map(|o| o.failed).sum();
    let mut changes_by_service: Vec<ServiceChanges> = per_service
        .into_iter()
        .map(|(service, o)| ServiceChanges {
            service,
            changes: o.changes,
            failed: o.failed,
            failure_rate: o.failed as f64 / o.changes as f64,
        })
        .collect();
    changes_by_service.sort_by(|a, b| {
        b.failure_rate
            .total_cmp(&a.failure_rate)
            .then(b.changes.cmp(&a.changes))
            .then(a.service.cmp(&b.service))
    });
    let judged: Vec<usize> = incidents
        .iter()
        .filter_map(|i| i.resolution.as_ref())
        .filter(|r| !matches!(r.root_cause.as_str(), "external" | "unknown") && !r.shown.is_empty())
        .map(|r| {
            r.shown
                .iter()
                .position(|s| *s == r.root_cause)
                .map_or(usize::MAX, |p| p + 1)
        })
        .collect();
    let share = |k: usize| {
        (!judged.is_empty())
            .then(|| judged.iter().filter(|&&rank| rank <= k).count() as f64 / judged.len() as f64)
    };
    let actions: Vec<bool> = incidents
        .iter()
        .filter_map(|i| i.resolution.as_ref())
        .filter(|r| r.action.is_some())
        .filter_map(|r| r.worked)
        .collect();
    StabilityReport {
        since,
        until,
        incidents: incidents.len(),
        alerts,
        noise_reduction: (alerts > 0).then(|| 1.0 - incidents.len() as f64 / alerts as f64),
        mtta,
        mttr,
        daily: daily(since, until, &incidents),
        by_service: most_first(services),
        by_team: most_first(teams),
        changes: changes.len(),
        failed_changes,
        change_failure_rate: (!changes.is_empty())
            .then(|| failed_changes as f64 / changes.len() as f64),
        changes_by_service,
        judged: judged.len(),
        ac1: share(1),
        ac3: share(3),
        ac5: share(5),
        avg5: share(1).map(|_| (1..=5).filter_map(share).sum::<f64>() / 5.0),
        actions_judged: actions.len(),
        action_success_rate: (!actions.is_empty())
            .then(|| actions.iter().filter(|w| **w).count() as f64 / actions.len() as f64),
    }
}

fn daily(since: i64, until: i64, incidents: &[&IncidentRecord]) -> Vec<DayCount> {
    const DAY: i64 = 86_400_000;
    let last = until.div_euclid(DAY);
    let first = since.div_euclid(DAY).max(last - MAX_DAYS + 1);
    let mut days: Vec<DayCount> = (first..=last)
        .map(|d| DayCount {
            day: d * DAY,
            incidents: 0,
            alerts: 0,
        })
        .collect();
    for incident in incidents {
        let index = incident.opened_at.div_euclid(DAY) - first;
        if let Some(day) = usize::try_from(index).ok().and_then(|i| days.get_mut(i)) {
            day.incidents += 1;
            day.alerts += incident.alert_count;
        }
    }
    days
}

fn most_first(counts: BTreeMap<String, usize>) -> Vec<Count> {
    let mut list: Vec<Count> = counts
        .into_iter()
        .map(|(name, incidents)| Count { name, incidents })
        .collect();
    list.sort_by(|a, b| b.incidents.cmp(&a.incidents).then(a.name.cmp(&b.name)));
    list
}

impl StabilityReport {
    /// The report as CSV: `section,name,value` rows.
    pub fn to_csv(&self) -> String {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
        let mut rows: Vec<(String, String, String)> = vec![
            ("period".into(), "since_ms".into(), self.since.to_string()),
            ("period".into(), "until_ms".into(), self.until.to_string()),
            (
                "overall".into(),
                "incidents".into(),
                self.incidents.to_string(),
            ),
            ("overall".into(), "alerts".into(), self.alerts.to_string()),
            (
                "overall".into(),
                "noise_reduction".into(),
                opt(self.noise_reduction),
            ),
            (
                "overall".into(),
                "mtta_mean_s".into(),
                opt(self.mtta.mean_s),
            ),
            (
                "overall".into(),
                "mtta_median_s".into(),
                opt(self.mtta.median_s),
            ),
            (
                "overall".into(),
                "mttr_mean_s".into(),
                opt(self.mttr.mean_s),
            ),
            (
                "overall".into(),
                "mttr_median_s".into(),
                opt(self.mttr.median_s),
            ),
            ("overall".into(), "changes".into(), self.changes.to_string()),
            (
                "overall".into(),
                "change_failure_rate".into(),
                opt(self.change_failure_rate),
            ),
            ("overall".into(), "judged".into(), self.judged.to_string()),
            ("overall".into(), "ac1".into(), opt(self.ac1)),
            ("overall".into(), "ac3".into(), opt(self.ac3)),
            ("overall".into(), "ac5".into(), opt(self.ac5)),
            ("overall".into(), "avg5".into(), opt(self.avg5)),
            (
                "overall".into(),
                "action_success_rate".into(),
                opt(self.action_success_rate),
            ),
        ];
        rows.extend(self.by_service.iter().map(|c| {
            (
                "incidents_by_service".into(),
                c.name.clone(),
                c.incidents.to_string(),
            )
        }));
        rows.extend(self.by_team.iter().map(|c| {
            (
                "incidents_by_team".into(),
                c.name.clone(),
                c.incidents.to_string(),
            )
        }));
        rows.extend(self.changes_by_service.iter().map(|c| {
            (
                "change_failure_rate_by_service".into(),
                c.service.clone(),
                format!("{:.4}", c.failure_rate),
            )
        }));
        let quote = |field: &str| {
            if field.contains([',', '"', '\n']) {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                field.to_owned()
            }
        };
        let mut out = String::from("section,name,value\n");
        for (section, name, value) in rows {
            out.push_str(&format!(
                "{},{},{}\n",
                quote(&section),
                quote(&name),
                quote(&value)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn incident(id: i64, opened: i64, services: &[&str], alerts: i64) -> IncidentRecord {
        IncidentRecord {
            id,
            opened_at: opened,
            first_activity: opened - MIN,
            services: services.iter().map(|s| (*s).to_owned()).collect(),
            alert_count: alerts,
            ..IncidentRecord::default()
        }
    }

    fn resolved(
        root: &str,
        shown: &[&str],
        action: Option<(&str, bool)>,
        ttm: Option<f64>,
    ) -> Option<ResolutionRecord> {
        Some(ResolutionRecord {
            root_cause: root.to_owned(),
            action: action.map(|(a, _)| a.to_owned()),
            worked: action.map(|(_, w)| w),
            time_to_mitigate_s: ttm,
            shown: shown.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    /// Four incidents in the period (one outside it), computed by hand below.
    fn history() -> (Vec<IncidentRecord>, Vec<ChangeRecord>) {
        let mut a = incident(1, 10 * MIN, &["db", "api"], 40);
        a.first_response_at = Some(12 * MIN); // 120 s
        a.resolution = resolved("db", &["db", "api"], Some(("failover", true)), Some(600.0));
        let mut b = incident(2, 100 * MIN, &["api", "web"], 25);
        b.first_response_at = Some(106 * MIN); // 360 s
        b.resolution = resolved(
            "api",
            &["web", "cache", "api"],
            Some(("restart", false)),
            None,
        );
        b.resolved_at = Some(130 * MIN); // 31 min after its first alert: 1,860 s
        let mut c = incident(3, 200 * MIN, &["cache"], 15);
        c.resolved_at = Some(210 * MIN); // 660 s, no resolution recorded
        let mut d = incident(4, 300 * MIN, &["web"], 20);
        d.resolution = resolved("unknown", &["web"], None, Some(300.0));
        let outside = incident(5, 10_000 * MIN, &["db"], 1_000);
        let changes = vec![
            ChangeRecord {
                service: "db".into(),
                at: 5 * MIN,
            }, // db caused incident 1: failed
            ChangeRecord {
                service: "api".into(),
                at: 90 * MIN,
            }, // api caused incident 2: failed
            ChangeRecord {
                service: "api".into(),
                at: 250 * MIN,
            }, // nothing after: fine
            ChangeRecord {
                service: "web".into(),
                at: 95 * MIN,
            }, // incident 2 was api's: fine
        ];
        (vec![a, b, c, d, outside], changes)
    }

    #[test]
    fn the_report_matches_a_hand_computed_history() {
        let (incidents, changes) = history();
        let team = |s: &str| match s {
            "db" | "cache" => Some("data".to_owned()),
            "api" | "web" => Some("web".to_owned()),
            _ => None,
        };
        let r = report(0, 1_000 * MIN, &incidents, &changes, team);
        assert_eq!(r.incidents, 4);
        assert_eq!(r.alerts, 100);
        // One day: the period is 1,000 minutes from midnight.
        assert_eq!(r.daily.len(), 1);
        assert_eq!((r.daily[0].incidents, r.daily[0].alerts), (4, 100));
        assert!((r.noise_reduction.unwrap() - 0.96).abs() < 1e-12);
        // MTTA: 120 s and 360 s.
        assert_eq!(
            r.mtta,
            Durations {
                count: 2,
                mean_s: Some(240.0),
                median_s: Some(240.0)
            }
        );
        // MTTR: 600 (recorded), 1,860 (to resolution), 660 (to resolution), 300 (recorded).
        assert_eq!(r.mttr.count, 4);
        assert!((r.mttr.mean_s.unwrap() - 855.0).abs() < 1e-9);
        assert_eq!(r.mttr.median_s, Some(630.0));
        assert_eq!(
            r.by_service[0],
            Count {
                name: "api".into(),
                incidents: 2
            }
        );
        assert_eq!(
            r.by_team,
            vec![
                Count {
                    name: "web".into(),
                    incidents: 3
                },
                Count {
                    name: "data".into(),
                    incidents: 2
                }
            ]
        );
        assert_eq!((r.changes, r.failed_changes), (4, 2));
        assert_eq!(r.change_failure_rate, Some(0.5));
        assert_eq!(r.changes_by_service[0].service, "db");
        assert_eq!(r.changes_by_service[1].failure_rate, 0.5);
        // Judged: incident 1 (rank 1) and 2 (rank 3); 4's cause is unknown.
        assert_eq!(r.judged, 2);
        assert_eq!((r.ac1, r.ac3), (Some(0.5), Some(1.0)));
        assert_eq!(r.ac5, Some(1.0));
        assert!((r.avg5.unwrap() - (0.5 + 0.5 + 1.0 + 1.0 + 1.0) / 5.0).abs() < 1e-12);
        assert_eq!((r.actions_judged, r.action_success_rate), (2, Some(0.5)));
        let csv = r.to_csv();
        assert!(csv.starts_with("section,name,value\n"));
        assert!(csv.contains("overall,mttr_median_s,630.0000\n"), "{csv}");
        assert!(csv.contains("incidents_by_team,web,3\n"));
    }

    #[test]
    fn an_empty_period_has_counts_of_zero_and_no_rates() {
        let (incidents, changes) = history();
        let r = report(20_000 * MIN, 30_000 * MIN, &incidents, &changes, |_| None);
        assert_eq!((r.incidents, r.alerts, r.changes, r.judged), (0, 0, 0, 0));
        assert_eq!(
            (
                r.noise_reduction,
                r.change_failure_rate,
                r.ac1,
                r.mtta.mean_s
            ),
            (None, None, None, None)
        );
    }
}
