//! Risks read from fault history and changes (pure: records and the time of reading in, risks
//! out; no I/O, no clock).
//!
//! - **Rising fault rate**: per service, the Laplace trend test over the faults it caused in the
//!   last `trend_window_days` (services with at least `trend_min_faults`), corrected for the
//!   number of services tested (Benjamini-Hochberg); flagged at `q ≤ alpha`. Score
//!   `(1 − q) · min(1, faults / 8)`: a trend resting on few faults stays moderate.
//! - **Recurring root cause**: the same service and fault type confirmed twice or more within
//!   `recurrence_days`. Score `1 − 0.75^(count − 1)`: 0.25 for two (a pair happens by chance
//!   often enough), 0.44 for three, 0.76 for six.
//! - **Failing action**: an action that did not work, shrunk toward the estate's failure rate
//!   ([`shrunk_rate`]), at least `action_failure_threshold` over at least `action_min_attempts`
//!   judged uses. Score: that shrunk rate. It counts against a service only where it was used
//!   on that service at least `action_min_attempts` times and failed there as often (its
//!   failures there shrunk toward the action's rate): a runbook that fails everywhere is the
//!   runbook's risk, not every service's.
//! - **Risky changes**: a service whose changes were followed within
//!   [`CHANGE_BLAME_WINDOW_MS`] by a fault it caused more often than the estate's changes (a
//!   one-sided binomial test against the estate's rate, corrected for the services tested,
//!   `q ≤ alpha`), and whose rate shrunk toward the estate's is at least
//!   `change_failure_threshold`, over at least `change_min_changes` changes. Its next change is
//!   flagged when it arrives. Score: that shrunk rate.

use std::collections::BTreeMap;

use rootcause_topology::risks::Severity;
use serde::Serialize;
use utoipa::ToSchema;

use super::stats::{benjamini_hochberg, binomial_upper_tail, laplace, shrunk_rate};
use crate::config::RiskConfig;

/// A day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
/// How long after a change a fault of the changed service counts against the change.
pub const CHANGE_BLAME_WINDOW_MS: i64 = DAY_MS;
/// Faults from which a trend's score is no longer held down by how few they are.
const TREND_FULL_EVIDENCE: f64 = 8.0;

/// A confirmed fault: its root cause, when it began and what was done.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// The service that caused it.
    pub service: String,
    /// Its fault type.
    pub fault_type: String,
    /// When it began (ms).
    pub at: i64,
    /// The action taken.
    pub action: Option<String>,
    /// Whether that action worked, when recorded.
    pub worked: Option<bool>,
}

/// A change event.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// The changed service.
    pub service: String,
    /// When (ms).
    pub at: i64,
}

/// A service's changes and how many of them failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeOutcome {
    /// Change events.
    pub changes: usize,
    /// Those followed within [`CHANGE_BLAME_WINDOW_MS`] by a fault the service caused.
    pub failed: usize,
}

/// Per changed service, its changes and those that failed: followed within
/// [`CHANGE_BLAME_WINDOW_MS`] by a fault whose cause is that service (`faults` as cause and
/// start time).
pub fn change_outcomes<'a>(
    changes: impl IntoIterator<Item = &'a ChangeRecord>,
    faults: impl IntoIterator<Item = (&'a str, i64)>,
) -> BTreeMap<String, ChangeOutcome> {
    let mut times: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (service, at) in faults {
        times.entry(service).or_default().push(at);
    }
    for list in times.values_mut() {
        list.sort_unstable();
    }
    let mut outcomes: BTreeMap<String, ChangeOutcome> = BTreeMap::new();
    for change in changes {
        let failed = times.get(change.service.as_str()).is_some_and(|list| {
            let first = list.partition_point(|&t| t < change.at);
            list.get(first)
                .is_some_and(|&t| t <= change.at + CHANGE_BLAME_WINDOW_MS)
        });
        let outcome = outcomes.entry(change.service.clone()).or_default();
        outcome.changes += 1;
        outcome.failed += usize::from(failed);
    }
    outcomes
}

/// What kind of historical risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HistoricalKind {
    /// See the module documentation.
    RisingFaultRate,
    /// See the module documentation.
    RecurringRootCause,
    /// See the module documentation.
    FailingAction,
    /// See the module documentation.
    RiskyChanges,
}

/// One risk read from history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HistoricalRisk {
    /// What kind.
    pub kind: HistoricalKind,
    /// 0 to 1.
    pub score: f64,
    /// From the score.
    #[schema(value_type = String)]
    pub severity: Severity,
    /// The service at risk first (for a failing action: the services it was used on).
    pub services: Vec<String>,
    /// Why, in one sentence.
    pub why: String,
    /// The figures behind it (`p_value`, `q_value`, `faults`, `changes`, `failed`, ...).
    pub figures: BTreeMap<String, f64>,
}

impl HistoricalRisk {
    fn new(
        kind: HistoricalKind,
        score: f64,
        services: Vec<String>,
        why: String,
        figures: &[(&str, f64)],
    ) -> Self {
        let score = score.clamp(0.0, 1.0);
        HistoricalRisk {
            kind,
            score,
            severity: Severity::of(score),
            services,
            why,
            figures: figures.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        }
    }
}

/// The trend test of one service's faults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct TrendFinding {
    /// Faults in the window.
    pub faults: usize,
    /// In its first half.
    pub earlier: usize,
    /// In its second half.
    pub recent: usize,
    /// One-sided p-value of a rising rate (Laplace test).
    pub p_value: f64,
    /// After the Benjamini-Hochberg correction over the services tested.
    pub q_value: f64,
    /// Flagged.
    pub rising: bool,
}

/// What history says about one service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct ServiceHistory {
    /// Faults it caused in the look-back.
    pub faults: usize,
    /// Its trend test, when it had enough faults in the window.
    pub trend: Option<TrendFinding>,
    /// Most faults of one type it caused within the recurrence window.
    pub recurrences: usize,
    /// Its changes in the look-back.
    pub changes: usize,
    /// Those followed by a fault it caused.
    pub failed_changes: usize,
    /// Its shrunk change failure rate, with at least `change_min_changes` changes.
    pub change_failure_rate: Option<f64>,
    /// Whether its next change is flagged.
    pub risky_changes: bool,
    /// The highest shrunk failure rate of a flagged action used on its faults.
    pub failing_action: Option<f64>,
}

/// Everything history says, as of one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct HistoryAnalysis {
    /// Highest score first.
    pub risks: Vec<HistoricalRisk>,
    /// Per service that caused a fault or was changed.
    pub services: BTreeMap<String, ServiceHistory>,
    /// Faults read (in the look-back).
    pub faults: usize,
    /// Changes read (in the look-back).
    pub changes: usize,
    /// The estate's change failure rate; null without changes.
    pub change_failure_rate: Option<f64>,
}

/// Reads `faults` and `changes` as of `now` (ms) under `settings`.
pub fn analyse(
    faults: &[Fault],
    changes: &[ChangeRecord],
    now: i64,
    settings: &RiskConfig,
) -> HistoryAnalysis {
    let since = now - i64::from(settings.lookback_days) * DAY_MS;
    let faults: Vec<&Fault> = faults
        .iter()
        .filter(|f| (since..=now).contains(&f.at))
        .collect();
    let changes: Vec<&ChangeRecord> = changes
        .iter()
        .filter(|c| (since..=now).contains(&c.at))
        .collect();
    let mut analysis = HistoryAnalysis {
        faults: faults.len(),
        changes: changes.len(),
        ..HistoryAnalysis::default()
    };
    for fault in &faults {
        analysis
            .services
            .entry(fault.service.clone())
            .or_default()
            .faults += 1;
    }
    rising_fault_rates(&faults, now, settings, &mut analysis);
    recurring_root_causes(&faults, now, settings, &mut analysis);
    failing_actions(&faults, settings, &mut analysis);
    risky_changes(&faults, &changes, settings, &mut analysis);
    analysis.risks.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.kind.cmp(&b.kind))
            .then(a.services.cmp(&b.services))
    });
    analysis
}

fn rising_fault_rates(
    faults: &[&Fault],
    now: i64,
    settings: &RiskConfig,
    out: &mut HistoryAnalysis,
) {
    let days = settings.trend_window_days;
    let start = now - i64::from(days) * DAY_MS;
    let mut times: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for fault in faults.iter().filter(|f| f.at >= start) {
        times
            .entry(&fault.service)
            .or_default()
            .push(fault.at as f64);
    }
    // The window ends just after `now`, so a fault at `now` is inside it.
    let tested: Vec<(&str, _)> = times
        .into_iter()
        .filter(|(_, t)| t.len() >= settings.trend_min_faults)
        .filter_map(|(service, t)| Some((service, laplace(&t, start as f64, (now + 1) as f64)?)))
        .collect();
    let q_values = benjamini_hochberg(&tested.iter().map(|(_, t)| t.p_value).collect::<Vec<_>>());
    for ((service, trend), q) in tested.iter().zip(q_values) {
        let rising = q <= settings.alpha && trend.recent > trend.earlier;
        let entry = out.services.entry((*service).to_owned()).or_default();
        entry.trend = Some(TrendFinding {
            faults: trend.events,
            earlier: trend.earlier,
            recent: trend.recent,
            p_value: trend.p_value,
            q_value: q,
            rising,
        });
        if !rising {
            continue;
        }
        let score = (1.0 - q) * (trend.events as f64 / TREND_FULL_EVIDENCE).min(1.0);
        out.risks.push(HistoricalRisk::new(
            HistoricalKind::RisingFaultRate,
            score,
            vec![(*service).to_owned()],
            format!(
                "{service}'s fault rate is rising: {} faults in the first half of the last {days} \
                 days, {} in the second (Laplace trend test p = {}, q = {} over {} services \
                 tested)",
                trend.earlier,
                trend.recent,
                probability(trend.p_value),
                probability(q),
                tested.len()
            ),
            &[
                ("faults", trend.events as f64),
                ("earlier", trend.earlier as f64),
                ("recent", trend.recent as f64),
                ("statistic", trend.statistic),
                ("p_value", trend.p_value),
                ("q_value", q),
                ("services_tested", tested.len() as f64),
            ],
        ));
    }
}

/// A p- or q-value in few characters: `0.0123`, or `3.1e-6` when smaller than 0.0001.
fn probability(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

fn recurring_root_causes(
    faults: &[&Fault],
    now: i64,
    settings: &RiskConfig,
    out: &mut HistoryAnalysis,
) {
    let days = settings.recurrence_days;
    let start = now - i64::from(days) * DAY_MS;
    let mut groups: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for fault in faults.iter().filter(|f| f.at >= start) {
        *groups
            .entry((&fault.service, &fault.fault_type))
            .or_default() += 1;
    }
    for ((service, fault_type), count) in groups {
        let entry = out.services.entry(service.to_owned()).or_default();
        entry.recurrences = entry.recurrences.max(count);
        if count < 2 {
            continue;
        }
        out.risks.push(HistoricalRisk::new(
            HistoricalKind::RecurringRootCause,
            1.0 - 0.75_f64.powi(count as i32 - 1),
            vec![service.to_owned()],
            format!(
                "{service} was the root cause of {count} {fault_type} faults in the last {days} days"
            ),
            &[("count", count as f64), ("days", f64::from(days))],
        ));
    }
}

fn failing_actions(faults: &[&Fault], settings: &RiskConfig, out: &mut HistoryAnalysis) {
    #[derive(Default)]
    struct Uses<'a> {
        attempts: usize,
        failures: usize,
        /// Per service: uses and failures there.
        services: BTreeMap<&'a str, (usize, usize)>,
    }
    let mut actions: BTreeMap<&str, Uses> = BTreeMap::new();
    for fault in faults {
        let (Some(action), Some(worked)) = (fault.action.as_deref(), fault.worked) else {
            continue;
        };
        let uses = actions.entry(action).or_default();
        uses.attempts += 1;
        uses.failures += usize::from(!worked);
        let there = uses.services.entry(&fault.service).or_default();
        there.0 += 1;
        there.1 += usize::from(!worked);
    }
    let attempts: usize = actions.values().map(|u| u.attempts).sum();
    let failures: usize = actions.values().map(|u| u.failures).sum();
    if attempts == 0 {
        return;
    }
    let prior = failures as f64 / attempts as f64;
    for (action, uses) in actions {
        let rate = shrunk_rate(uses.failures, uses.attempts, prior);
        if uses.attempts < settings.action_min_attempts || rate < settings.action_failure_threshold
        {
            continue;
        }
        let mut services: Vec<(&str, (usize, usize))> = uses.services.into_iter().collect();
        services.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(b.1.0.cmp(&a.1.0)).then(a.0.cmp(b.0)));
        for (service, (used, failed)) in &services {
            let there = shrunk_rate(*failed, *used, rate);
            if *used >= settings.action_min_attempts && there >= settings.action_failure_threshold {
                let entry = out.services.entry((*service).to_owned()).or_default();
                entry.failing_action = Some(entry.failing_action.unwrap_or(0.0).max(there));
            }
        }
        let names: Vec<String> = services.iter().map(|(s, _)| (*s).to_owned()).collect();
        let shown = match names.len() {
            0..=5 => names.join(", "),
            n => format!("{} and {} more", names[..5].join(", "), n - 5),
        };
        out.risks.push(HistoricalRisk::new(
            HistoricalKind::FailingAction,
            rate,
            names.clone(),
            format!(
                "{action} did not work {} of {} times in the last {} days (most on {shown}); \
                 its failure rate weighed against the estate's {prior:.2} is {rate:.2}",
                uses.failures, uses.attempts, settings.lookback_days
            ),
            &[
                ("attempts", uses.attempts as f64),
                ("failures", uses.failures as f64),
                ("failure_rate", rate),
            ],
        ));
    }
}

fn risky_changes(
    faults: &[&Fault],
    changes: &[&ChangeRecord],
    settings: &RiskConfig,
    out: &mut HistoryAnalysis,
) {
    let outcomes = change_outcomes(
        changes.iter().copied(),
        faults.iter().map(|f| (f.service.as_str(), f.at)),
    );
    let total: usize = outcomes.values().map(|o| o.changes).sum();
    let failed: usize = outcomes.values().map(|o| o.failed).sum();
    if total == 0 {
        return;
    }
    let prior = failed as f64 / total as f64;
    out.change_failure_rate = Some(prior);
    let tested: Vec<(&String, ChangeOutcome)> = outcomes
        .iter()
        .filter(|(_, o)| o.changes >= settings.change_min_changes)
        .map(|(s, o)| (s, *o))
        .collect();
    let q_values = benjamini_hochberg(
        &tested
            .iter()
            .map(|(_, o)| binomial_upper_tail(o.failed, o.changes, prior))
            .collect::<Vec<_>>(),
    );
    let q_of: BTreeMap<&String, f64> = tested.iter().map(|(s, _)| *s).zip(q_values).collect();
    for (service, outcome) in &outcomes {
        let rate = shrunk_rate(outcome.failed, outcome.changes, prior);
        let q = q_of.get(service).copied();
        let risky =
            q.is_some_and(|q| q <= settings.alpha) && rate >= settings.change_failure_threshold;
        let entry = out.services.entry(service.clone()).or_default();
        entry.changes = outcome.changes;
        entry.failed_changes = outcome.failed;
        entry.change_failure_rate = q.map(|_| rate);
        entry.risky_changes = risky;
        let (true, Some(q)) = (risky, q) else {
            continue;
        };
        out.risks.push(HistoricalRisk::new(
            HistoricalKind::RiskyChanges,
            rate,
            vec![service.clone()],
            format!(
                "{service}'s changes were followed by a fault it caused {} of {} times in the \
                 last {} days: change failure rate {rate:.2} against the estate's {prior:.2} \
                 (binomial test q = {} over {} services); its next change is flagged",
                outcome.failed,
                outcome.changes,
                settings.lookback_days,
                probability(q),
                tested.len()
            ),
            &[
                ("changes", outcome.changes as f64),
                ("failed", outcome.failed as f64),
                ("change_failure_rate", rate),
                ("estate_change_failure_rate", prior),
                ("q_value", q),
            ],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(service: &str, fault_type: &str, day: f64) -> Fault {
        Fault {
            service: service.to_owned(),
            fault_type: fault_type.to_owned(),
            at: (day * DAY_MS as f64) as i64,
            action: None,
            worked: None,
        }
    }

    /// 90 days of history as of day 90: `rising` fails more and more often (once a week, then
    /// also every day of the last ten), `flat` once every four days throughout, and eight quiet
    /// services once each.
    fn planted() -> Vec<Fault> {
        let mut faults = Vec::new();
        for week in 0..13 {
            faults.push(fault("rising", "cpu", f64::from(week) * 7.0 + 0.5));
        }
        for day in 80..90 {
            faults.push(fault("rising", "latency", f64::from(day) + 0.3));
        }
        for day in (1..90).step_by(4) {
            faults.push(fault("flat", "memory", f64::from(day) + 0.7));
        }
        for i in 0..8 {
            faults.push(fault(
                &format!("quiet-{i}"),
                "cpu",
                f64::from(i) * 9.0 + 3.0,
            ));
        }
        faults
    }

    #[test]
    fn a_planted_rising_trend_is_found_and_a_flat_one_is_not_flagged() {
        let settings = RiskConfig::default();
        let analysis = analyse(&planted(), &[], 90 * DAY_MS, &settings);
        let rising = analysis.services["rising"].trend.unwrap();
        assert!(rising.rising, "{rising:?}");
        assert!(rising.q_value < 0.05 && rising.recent > rising.earlier);
        let flat = analysis.services["flat"].trend.unwrap();
        assert!(!flat.rising && flat.p_value > 0.2, "{flat:?}");
        let flagged: Vec<&HistoricalRisk> = analysis
            .risks
            .iter()
            .filter(|r| r.kind == HistoricalKind::RisingFaultRate)
            .collect();
        assert_eq!(flagged.len(), 1);
        assert_eq!(flagged[0].services, ["rising"]);
        assert!(
            flagged[0].why.contains("Laplace trend test"),
            "{}",
            flagged[0].why
        );
        assert!(analysis.services["quiet-0"].trend.is_none());
    }

    #[test]
    fn a_flat_rate_over_many_seeds_is_rarely_flagged() {
        // Faults at random times with a constant rate: the corrected test should flag no more
        // than about alpha of these estates (each of 20 services with a flat rate).
        let settings = RiskConfig::default();
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut estates_flagged = 0;
        for _ in 0..200 {
            let mut faults = Vec::new();
            for s in 0..20 {
                for _ in 0..12 {
                    faults.push(fault(&format!("s{s}"), "cpu", next() * 90.0));
                }
            }
            let analysis = analyse(&faults, &[], 90 * DAY_MS, &settings);
            if analysis
                .risks
                .iter()
                .any(|r| r.kind == HistoricalKind::RisingFaultRate)
            {
                estates_flagged += 1;
            }
        }
        assert!(
            estates_flagged <= 20,
            "{estates_flagged} of 200 flat estates flagged"
        );
    }

    #[test]
    fn a_root_cause_confirmed_three_times_recurs() {
        let faults = vec![
            fault("db", "memory", 70.0),
            fault("db", "memory", 80.0),
            fault("db", "memory", 85.0),
            fault("db", "cpu", 86.0),
            fault("db", "memory", 10.0), // outside the 30 days
        ];
        let analysis = analyse(&faults, &[], 90 * DAY_MS, &RiskConfig::default());
        let recurring: Vec<&HistoricalRisk> = analysis
            .risks
            .iter()
            .filter(|r| r.kind == HistoricalKind::RecurringRootCause)
            .collect();
        assert_eq!(recurring.len(), 1);
        assert!((recurring[0].score - (1.0 - 0.75_f64.powi(2))).abs() < 1e-12);
        assert!(recurring[0].why.contains("3 memory faults"));
        assert_eq!(analysis.services["db"].recurrences, 3);
    }

    #[test]
    fn an_action_that_mostly_failed_is_flagged_and_one_that_worked_is_not() {
        let mut faults = Vec::new();
        for (i, worked) in [false, false, false, true, false].into_iter().enumerate() {
            let mut f = fault("api", "cpu", 50.0 + i as f64);
            f.action = Some("restart".into());
            f.worked = Some(worked);
            faults.push(f);
        }
        for i in 0..6 {
            let mut f = fault("db", "disk", 40.0 + f64::from(i));
            f.action = Some("failover".into());
            f.worked = Some(true);
            faults.push(f);
        }
        let analysis = analyse(&faults, &[], 90 * DAY_MS, &RiskConfig::default());
        let flagged: Vec<&HistoricalRisk> = analysis
            .risks
            .iter()
            .filter(|r| r.kind == HistoricalKind::FailingAction)
            .collect();
        assert_eq!(flagged.len(), 1);
        assert!(
            flagged[0]
                .why
                .starts_with("restart did not work 4 of 5 times")
        );
        // Prior 4/11; (4 + 4·4/11) / 9 = 0.61.
        assert!((flagged[0].score - (4.0 + 16.0 / 11.0) / 9.0).abs() < 1e-9);
        assert!(analysis.services["api"].failing_action.is_some());
        assert!(analysis.services["db"].failing_action.is_none());
    }

    #[test]
    fn a_failing_action_counts_only_against_services_it_failed_on_repeatedly() {
        let mut faults = Vec::new();
        // restart fails on twelve services once each, and on `api` three times in three.
        for i in 0..12 {
            let mut f = fault(&format!("s{i}"), "cpu", 10.0 + f64::from(i));
            f.action = Some("restart".into());
            f.worked = Some(false);
            faults.push(f);
        }
        for i in 0..3 {
            let mut f = fault("api", "cpu", 40.0 + f64::from(i));
            f.action = Some("restart".into());
            f.worked = Some(false);
            faults.push(f);
        }
        let analysis = analyse(&faults, &[], 90 * DAY_MS, &RiskConfig::default());
        assert!(analysis.services["api"].failing_action.is_some());
        assert!(analysis.services["s0"].failing_action.is_none());
        let risk = analysis
            .risks
            .iter()
            .find(|r| r.kind == HistoricalKind::FailingAction)
            .unwrap();
        assert!(
            risk.why
                .contains("most on api, s0, s1, s10, s11 and 8 more"),
            "{}",
            risk.why
        );
    }

    #[test]
    fn a_planted_risky_change_service_is_flagged_and_a_safe_one_is_not() {
        let mut faults = Vec::new();
        let mut changes = Vec::new();
        let change = |service: &str, day: f64| ChangeRecord {
            service: service.into(),
            at: (day * DAY_MS as f64) as i64,
        };
        for week in 0..12 {
            let day = 2.0 + f64::from(week) * 7.0;
            changes.push(change("payments", day));
            for (i, other) in ["catalog", "search", "web", "cart"].iter().enumerate() {
                changes.push(change(other, day + 1.0 + i as f64 * 0.2));
            }
            if week % 3 != 0 {
                // Two hours after the deploy: 8 of its 12 changes.
                faults.push(fault("payments", "bad_deploy", day + 2.0 / 24.0));
            }
        }
        // A catalog fault three days after its change does not count against it.
        faults.push(fault("catalog", "cpu", 6.0));
        // One failed change of search's: not enough to stand out from the estate.
        faults.push(fault("search", "bad_deploy", 3.5));
        let analysis = analyse(&faults, &changes, 90 * DAY_MS, &RiskConfig::default());
        let payments = &analysis.services["payments"];
        assert_eq!((payments.changes, payments.failed_changes), (12, 8));
        assert!(payments.risky_changes);
        let catalog = &analysis.services["catalog"];
        assert_eq!((catalog.changes, catalog.failed_changes), (12, 0));
        assert!(!catalog.risky_changes);
        assert!(!analysis.services["search"].risky_changes);
        let prior = 9.0 / 60.0;
        assert_eq!(analysis.change_failure_rate, Some(prior));
        let risk = analysis
            .risks
            .iter()
            .find(|r| r.kind == HistoricalKind::RiskyChanges)
            .unwrap();
        assert_eq!(risk.services, ["payments"]);
        assert!((risk.score - (8.0 + 4.0 * prior) / 16.0).abs() < 1e-9);
        assert!(risk.figures["q_value"] < 0.05, "{risk:?}");
    }

    #[test]
    fn change_outcomes_count_a_fault_within_a_day_after_the_change() {
        let changes = [
            ChangeRecord {
                service: "a".into(),
                at: 1_000,
            },
            ChangeRecord {
                service: "a".into(),
                at: 10 * DAY_MS,
            },
        ];
        let faults = [("a", 500), ("a", 1_000 + DAY_MS), ("a", 12 * DAY_MS)];
        let outcomes = change_outcomes(&changes, faults);
        assert_eq!(
            outcomes["a"],
            ChangeOutcome {
                changes: 2,
                failed: 1
            }
        );
    }
}
