//! A simulated fault history: months of faults and changes on a topology, with planted risks,
//! for the risk features to be tested and shown on (not for training rankers: its records carry
//! one alert each and no metrics).
//!
//! - Every service fails now and then at a flat rate; the services in `rising` fail more and
//!   more often (their rate grows exponentially to twenty times the flat one by the end).
//! - Every service is changed now and then; a change to a service in `risky_changes` is
//!   followed two hours later by a fault it caused with probability 0.6, any other change with
//!   probability 0.05.
//! - Each fault is mitigated by the action its fault type calls for; `failing_action`, when
//!   given, works three times in ten, any other action 17 times in 20.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rootcause_models::case::{CaseAlert, CaseChange};
use rootcause_models::history::{HistoryRecord, Outcome};
use rootcause_topology::Topology;

use super::random::{chance, uniform};

const DAY: i64 = 86_400;
const WEEK: f64 = 7.0 * 86_400.0;
/// How many times the flat rate a rising service's fault rate reaches by the end.
const RISE: f64 = 20.0;

/// What to generate.
#[derive(Debug, Clone)]
pub struct HistoryPlan {
    /// Days of history, ending at `end`.
    pub days: u32,
    /// Unix seconds of its end.
    pub end: i64,
    /// Seed: the same plan gives the same history.
    pub seed: u64,
    /// Faults per service per week at the flat rate.
    pub faults_per_week: f64,
    /// Changes per service per week.
    pub changes_per_week: f64,
    /// Services whose fault rate rises.
    pub rising: Vec<String>,
    /// Services whose changes often cause faults.
    pub risky_changes: Vec<String>,
    /// An action that mostly fails.
    pub failing_action: Option<String>,
}

/// The generated history: past incidents and every change event.
#[derive(Debug, Clone)]
pub struct GeneratedHistory {
    /// One record per fault, oldest first.
    pub records: Vec<HistoryRecord>,
    /// Every change, oldest first (those that caused a fault are in its record too).
    pub changes: Vec<CaseChange>,
}

/// Fault types drawn for faults not caused by a change, with the action each calls for and the
/// alert it raises.
const FAULTS: [(&str, &str, &str); 4] = [
    ("cpu", "scale_out", "HighCpuUsage"),
    ("memory", "restart", "HighMemoryUsage"),
    ("network_delay", "failover", "HighLatency"),
    ("exception", "restart", "HighErrorRate"),
];

/// Generates the history of `plan` on `topology`.
pub fn generate(topology: &Topology, plan: &HistoryPlan) -> GeneratedHistory {
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    let start = plan.end - i64::from(plan.days) * DAY;
    let span = (plan.end - start) as f64;
    let mut faults: Vec<(i64, String, &str, Option<CaseChange>)> = Vec::new();
    let mut changes: Vec<CaseChange> = Vec::new();
    let services: Vec<String> = topology.services().map(|s| s.name.clone()).collect();
    for service in &services {
        let rising = plan.rising.contains(service);
        // Thinning: candidates at the highest rate, each kept with rate(t) / highest.
        let peak = plan.faults_per_week * if rising { RISE } else { 1.0 } / WEEK;
        let mut t = start as f64;
        loop {
            t += -uniform(&mut rng, f64::MIN_POSITIVE, 1.0).ln() / peak;
            if t >= plan.end as f64 {
                break;
            }
            let rate = if rising {
                let x = (t - start as f64) / span;
                plan.faults_per_week * RISE.powf(x) / WEEK
            } else {
                peak
            };
            if chance(&mut rng, rate / peak) {
                let kind = FAULTS[(uniform(&mut rng, 0.0, 4.0) as usize).min(3)].0;
                faults.push((t as i64, service.clone(), kind, None));
            }
        }
        let risky = plan.risky_changes.contains(service);
        let mut t = start as f64;
        loop {
            t += -uniform(&mut rng, f64::MIN_POSITIVE, 1.0).ln() / (plan.changes_per_week / WEEK);
            if t >= plan.end as f64 {
                break;
            }
            let change = CaseChange {
                service: service.clone(),
                kind: "deploy".to_owned(),
                at: t as i64,
                description: format!("release {}", changes.len() + 1),
            };
            let at = change.at + 2 * 3600;
            if at < plan.end && chance(&mut rng, if risky { 0.6 } else { 0.05 }) {
                faults.push((at, service.clone(), "bad_deploy", Some(change.clone())));
            }
            changes.push(change);
        }
    }
    faults.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    changes.sort_by(|a, b| a.at.cmp(&b.at).then(a.service.cmp(&b.service)));
    let records = faults
        .into_iter()
        .enumerate()
        .map(|(i, (at, service, kind, change))| {
            let (action, alert) = FAULTS
                .iter()
                .find(|f| f.0 == kind)
                .map_or(("rollback", "HighErrorRate"), |f| (f.1, f.2));
            let works = if plan.failing_action.as_deref() == Some(action) {
                0.3
            } else {
                0.85
            };
            let worked = chance(&mut rng, works);
            let minutes = uniform(&mut rng, 5.0, 60.0);
            let labels: BTreeMap<String, String> = [
                ("alertname".to_owned(), alert.to_owned()),
                ("service".to_owned(), service.clone()),
                ("severity".to_owned(), "critical".to_owned()),
            ]
            .into_iter()
            .collect();
            HistoryRecord {
                id: format!("fault-{:05}", i + 1),
                system: String::new(),
                started_at: at,
                alerts: vec![CaseAlert {
                    service: Some(service.clone()),
                    name: alert.to_owned(),
                    signal: super::alerts::signal_of(&labels).to_owned(),
                    severity: "critical".to_owned(),
                    starts_at: at,
                    ends_at: Some(at + (minutes * 60.0) as i64),
                    labels: labels.clone(),
                    count: 1,
                }],
                changes: change.into_iter().collect(),
                metrics: Vec::new(),
                edges: Vec::new(),
                normal_windows: Vec::new(),
                candidates: Vec::new(),
                topology: None,
                outcome: Outcome {
                    root_cause: service,
                    fault_type: kind.to_owned(),
                    action: Some(action.to_owned()),
                    worked: Some(worked),
                    time_to_mitigate_s: Some((minutes * 60.0).round()),
                },
            }
        })
        .collect();
    GeneratedHistory { records, changes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> HistoryPlan {
        HistoryPlan {
            days: 90,
            end: 1_800_000_000,
            seed: 7,
            faults_per_week: 0.3,
            changes_per_week: 1.0,
            rising: vec!["cartservice".into()],
            risky_changes: vec!["checkoutservice".into()],
            failing_action: Some("restart".into()),
        }
    }

    #[test]
    fn the_same_plan_gives_the_same_history_with_its_risks_planted() {
        let topology = rootcause_topology::bundled::find("online-boutique")
            .unwrap()
            .topology();
        let a = generate(&topology, &plan());
        let b = generate(&topology, &plan());
        assert_eq!(a.records, b.records);
        let last_month = 1_800_000_000 - 30 * DAY;
        let count = |service: &str, from: i64, to: i64| {
            a.records
                .iter()
                .filter(|r| r.outcome.root_cause == service && (from..to).contains(&r.started_at))
                .count()
        };
        // The rising service fails more in the last month than in the first.
        let first_month = 1_800_000_000 - 90 * DAY;
        assert!(
            count("cartservice", last_month, 1_800_000_000)
                > 2 * count("cartservice", first_month, first_month + 30 * DAY)
        );
        let deploy_faults = |service: &str| {
            a.records
                .iter()
                .filter(|r| r.outcome.root_cause == service && r.outcome.fault_type == "bad_deploy")
                .count()
        };
        assert!(deploy_faults("checkoutservice") >= 4);
        assert!(
            a.records
                .iter()
                .all(|r| r.alerts.len() == 1 && r.outcome.worked.is_some())
        );
        assert!(a.changes.windows(2).all(|w| w[0].at <= w[1].at));
    }
}
