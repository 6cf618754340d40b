//! Case building and the debounced worker, with a ranker that records what it is given.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rootcause_correlation::{Fingerprint, IncidentKind, IncidentStatus};
use rootcause_models::case::Case;
use rootcause_models::ranker::Ranking as Scores;

use super::*;
use crate::advice::Advice;
use crate::store::tests::sqlite_store;
use crate::workers::Workers;

/// Epoch ms of the incidents' first alert: ten minutes ago, on a whole second.
fn t0() -> i64 {
    static T0: std::sync::LazyLock<i64> =
        std::sync::LazyLock::new(|| (Clock::system().now_millis() / 1000 - 600) * 1000);
    *T0
}

/// Records every case it ranks; optionally slow, to let changes pile up meanwhile.
#[derive(Default)]
struct Recorder {
    calls: AtomicUsize,
    cases: Mutex<Vec<Case>>,
    delay: Duration,
    /// Woken after every case ranked, for tests that wait for one.
    ranked: tokio::sync::Notify,
}

impl Ranker for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    fn rank(&self, case: &Case) -> Scores {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        self.cases.lock().unwrap().push(case.clone());
        self.ranked.notify_waiters();
        Scores::from_scores(case.candidates.iter().map(|c| (c.clone(), 0.0)))
    }
}

impl Recorder {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn last(&self) -> Case {
        self.cases.lock().unwrap().last().cloned().expect("a case")
    }

    /// Waits (up to 10 s) until the last case ranked satisfies `done`, looking again after
    /// each case rather than polling in real time.
    async fn until(&self, what: &str, done: impl Fn(&Case) -> bool) -> Case {
        let wait = async {
            loop {
                // Registered before looking, so a case ranked in between is not missed.
                let next = self.ranked.notified();
                tokio::pin!(next);
                next.as_mut().enable();
                if let Some(case) = self.cases.lock().unwrap().last()
                    && done(case)
                {
                    return case.clone();
                }
                next.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("{what}"))
    }
}

/// The bundled topology: frontend → cartservice → redis-cart, among others.
async fn start(
    recorder: Arc<Recorder>,
    config: RankingConfig,
) -> (Ranking, Workers, tempfile::TempDir) {
    start_with(recorder, config, PrometheusConfig::default()).await
}

/// [`start`] with Prometheus settings too.
async fn start_with(
    recorder: Arc<Recorder>,
    config: RankingConfig,
    prometheus: PrometheusConfig,
) -> (Ranking, Workers, tempfile::TempDir) {
    let (store, dir) = sqlite_store().await;
    let topology = Arc::new(
        LiveTopology::start(store.clone(), None, Clock::system())
            .await
            .unwrap(),
    );
    let advice = Arc::new(Advice::new(&Default::default()));
    let workers = Workers::new();
    let ranking = Ranking::start(
        &config,
        &prometheus,
        store,
        topology,
        advice,
        Clock::system(),
        &workers.spawner(),
    )
    .unwrap();
    ranking.set_ranker(recorder);
    ranking.resync(Vec::new());
    (ranking, workers, dir)
}

fn snapshot(id: u64, services: &[&str], alert_count: u64) -> IncidentSnapshot {
    IncidentSnapshot {
        id,
        kind: IncidentKind::Topology,
        status: IncidentStatus::Open,
        opened_at: t0(),
        first_activity: t0(),
        last_activity: t0(),
        quiet_since: None,
        resolved_at: None,
        merged_into: None,
        services: services.iter().map(|s| ((*s).to_owned(), t0())).collect(),
        groups: Vec::new(),
        alert_count,
        firing_count: alert_count,
        topology_version: Some(1),
    }
}

/// Occurrence `n` of alert `name` on `service`; `opened` when the commit opened it.
fn alert(incident: u64, n: u64, service: &str, name: &str, opened: bool) -> CommittedAlert {
    CommittedAlert {
        incident,
        key: AlertKey {
            fingerprint: Fingerprint(n),
            starts_at: t0() + 1000 * n as i64,
        },
        opened,
        service: Some(service.to_owned()),
        signal: "latency",
        severity: Some("critical".to_owned()),
        name: name.to_owned(),
    }
}

/// Waits (up to 10 s) until incident `id`'s latest ranking covers `alerts` alerts, looking
/// again after each ranking published rather than polling in real time.
async fn ranked(ranking: &Ranking, id: u64, alerts: u64) -> Arc<Ranked> {
    let mut published = ranking.published();
    let wait = async {
        loop {
            if let Found::Held((_, Some(ranked))) = ranking.latest(id)
                && ranked.alert_count >= alerts
            {
                return ranked;
            }
            let _ = published.recv().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("incident {id} never covered {alerts} alerts"))
}

#[tokio::test]
async fn a_case_holds_alerts_candidates_posted_series_and_recent_changes() {
    let recorder = Arc::new(Recorder::default());
    let (ranking, _worker, _dir) = start(recorder.clone(), RankingConfig::default()).await;
    ranking.committed(Committed {
        alerts: vec![
            alert(1, 1, "cartservice", "HighLatency", true),
            alert(1, 2, "frontend", "Http5xx", true),
            alert(1, 3, "frontend", "Http5xx", true),
            // A later delivery of occurrence 2 (its end): not counted again.
            alert(1, 2, "frontend", "Http5xx", false),
        ],
        incidents: vec![snapshot(1, &["cartservice", "frontend"], 3)],
        ..Committed::default()
    });
    ranked(&ranking, 1, 3).await;

    let case = recorder.last();
    assert_eq!(case.anchor, t0() / 1000);
    assert!(case.label.is_none());
    // The alerting services and their callees up to two hops: redis-cart is silent.
    for service in ["cartservice", "frontend", "redis-cart"] {
        assert!(case.candidates.iter().any(|c| c == service), "{service}");
    }
    assert!(case.candidates.windows(2).all(|w| w[0] < w[1]), "sorted");
    assert!(case.topology.is_some());
    let mut alerts = case.alerts.clone();
    alerts.sort_by_key(|a| a.starts_at);
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].name, "HighLatency");
    assert_eq!(alerts[0].service.as_deref(), Some("cartservice"));
    assert_eq!(alerts[0].signal, "latency");
    assert_eq!(alerts[0].severity, "critical");
    assert_eq!(alerts[0].starts_at, t0() / 1000 + 1);
    assert_eq!(alerts[0].count, 1);
    // Two occurrences of one kind: one entry, counted twice, from the earlier start.
    assert_eq!(alerts[1].name, "Http5xx");
    assert_eq!(alerts[1].count, 2);
    assert_eq!(alerts[1].starts_at, t0() / 1000 + 2);
    assert_eq!(alerts[1].labels["alertname"], "Http5xx");

    // A change an hour before the anchor counts; one two hours before, or on a service that is
    // no candidate (the load generator calls the incident's services), does not.
    let change = |id: i64, service: &str, minutes_before: i64| ChangeRecord {
        id,
        service: service.to_owned(),
        kind: "deploy".to_owned(),
        at: t0() - minutes_before * 60_000,
        description: format!("version v{id}"),
    };
    ranking.changes_recorded(vec![
        change(1, "redis-cart", 30),
        change(2, "redis-cart", 120),
        change(3, "loadgenerator", 10),
    ]);
    let posted = MetricWrite {
        service: "redis-cart".to_owned(),
        name: "cpu_usage".to_owned(),
        times: vec![t0() / 1000 - 60, t0() / 1000],
        values: vec![0.1, f64::NAN],
    };
    let unrelated = MetricWrite {
        service: "loadgenerator".to_owned(),
        ..posted.clone()
    };
    ranking
        .post_metrics(1, vec![posted, unrelated])
        .await
        .unwrap();
    let case = recorder
        .until("the change and the metrics never reached a case", |case| {
            !case.series.is_empty() && !case.changes.is_empty()
        })
        .await;
    assert_eq!(case.changes.len(), 1, "{:?}", case.changes);
    assert_eq!(case.changes[0].service, "redis-cart");
    assert_eq!(case.changes[0].at, t0() / 1000 - 1800);
    assert_eq!(case.changes[0].description, "version v1");
    assert_eq!(case.series.len(), 1, "only candidates' series");
    let series = &case.series[0];
    assert_eq!(
        (series.service.as_str(), series.name.as_str()),
        ("redis-cart", "cpu_usage")
    );
    assert_eq!(series.family, rootcause_models::case::Family::Cpu);
    assert_eq!(series.times, [t0() / 1000 - 60, t0() / 1000]);
    assert!(series.values[1].is_nan());
}

#[test]
fn posted_samples_merge_in_time_order_and_later_posts_win() {
    let mut samples = Samples {
        times: vec![60, 120],
        values: vec![1.0, 2.0],
    };
    samples.merge(&Samples {
        times: vec![180],
        values: vec![3.0],
    });
    assert_eq!(samples.times, [60, 120, 180]);
    samples.merge(&Samples {
        times: vec![0, 120],
        values: vec![0.5, 9.0],
    });
    assert_eq!(samples.times, [0, 60, 120, 180]);
    assert_eq!(samples.values, [0.5, 1.0, 9.0, 3.0]);
}

#[tokio::test]
async fn rapid_changes_are_coalesced_and_the_last_ranking_covers_the_last_change() {
    let recorder = Arc::new(Recorder {
        delay: Duration::from_millis(30),
        ..Recorder::default()
    });
    let (ranking, _worker, _dir) = start(recorder.clone(), RankingConfig::default()).await;
    let changes: u64 = 50;
    for n in 1..=changes {
        ranking.committed(Committed {
            alerts: vec![alert(1, n, "cartservice", &format!("A{n}"), true)],
            incidents: vec![snapshot(1, &["cartservice"], n)],
            ..Committed::default()
        });
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let last = ranked(&ranking, 1, changes).await;
    // Let anything still queued finish, then count.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let calls = recorder.calls();
    assert!(
        calls < changes as usize / 3,
        "{calls} rankings for {changes} changes"
    );
    assert_eq!(recorder.last().alerts.len(), changes as usize);
    assert_eq!(last.alert_count, changes);
    assert!(last.revision as usize <= calls);
    // Leading edge: the first change was ranked at once, not after the burst.
    assert!(recorder.cases.lock().unwrap()[0].alerts.len() < changes as usize);
}

#[tokio::test]
async fn an_incident_holds_at_most_its_cap_of_alert_kinds_the_first_received() {
    // Before: an incident's every occurrence stayed in memory, with its labels, while a restart
    // loaded 100,000: 10 M alerts grew RSS to 13 GB where a restart needed 2.1. Then the first
    // 10,000 occurrences were held and copied by every ranking; now kinds are, with counts.
    let recorder = Arc::new(Recorder::default());
    let config = RankingConfig {
        max_alert_kinds_per_incident: 5,
        ..RankingConfig::default()
    };
    let (ranking, _worker, _dir) = start(recorder.clone(), config).await;
    let sent: u64 = 12;
    for n in 1..=sent {
        ranking.committed(Committed {
            alerts: vec![alert(1, n, "cartservice", &format!("A{n}"), true)],
            incidents: vec![snapshot(1, &["cartservice"], n)],
            ..Committed::default()
        });
    }
    ranked(&ranking, 1, sent).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let held: Vec<String> = recorder
        .last()
        .alerts
        .iter()
        .map(|a| a.name.clone())
        .collect();
    assert_eq!(held.len(), 5, "{held:?}");
    let mut expected: Vec<String> = (1..=5).map(|n| format!("A{n}")).collect();
    let mut held = held;
    held.sort();
    expected.sort();
    assert_eq!(held, expected, "the first received are held");
}

#[tokio::test]
async fn min_interval_spaces_the_rankings_of_an_incident() {
    let recorder = Arc::new(Recorder::default());
    let config = RankingConfig {
        min_interval_ms: 300,
        ..RankingConfig::default()
    };
    let (ranking, _worker, _dir) = start(recorder.clone(), config).await;
    let started = Instant::now();
    ranking.committed(Committed {
        alerts: vec![alert(1, 1, "cartservice", "A", true)],
        incidents: vec![snapshot(1, &["cartservice"], 1)],
        ..Committed::default()
    });
    ranked(&ranking, 1, 1).await;
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "the first at once"
    );
    for n in 2..=5 {
        ranking.committed(Committed {
            alerts: vec![alert(1, n, "cartservice", "A", true)],
            incidents: vec![snapshot(1, &["cartservice"], n)],
            ..Committed::default()
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ranked(&ranking, 1, 5).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        recorder.calls(),
        2,
        "one ranking, then one for the whole burst"
    );
}

#[tokio::test]
async fn a_merge_moves_alerts_to_the_survivor_and_ends_the_absorbed_stream() {
    let recorder = Arc::new(Recorder::default());
    let (ranking, _worker, _dir) = start(recorder.clone(), RankingConfig::default()).await;
    ranking.committed(Committed {
        alerts: vec![
            alert(1, 1, "cartservice", "A", true),
            alert(2, 2, "emailservice", "B", true),
        ],
        incidents: vec![
            snapshot(1, &["cartservice"], 1),
            snapshot(2, &["emailservice"], 1),
        ],
        ..Committed::default()
    });
    ranked(&ranking, 2, 1).await;
    let Found::Held(mut subscription) = ranking.subscribe(2).await.unwrap() else {
        panic!("incident 2 is held");
    };
    let mut absorbed = snapshot(2, &["emailservice"], 1);
    absorbed.status = IncidentStatus::Merged;
    absorbed.merged_into = Some(1);
    ranking.committed(Committed {
        alerts: vec![alert(1, 3, "checkoutservice", "C", true)],
        incidents: vec![
            snapshot(1, &["cartservice", "checkoutservice", "emailservice"], 3),
            absorbed,
        ],
        merges: vec![(2, 1)],
    });
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Notice::End { survivor } = &*subscription.notices.recv().await.unwrap() {
                return *survivor;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(end, 1);
    assert!(matches!(ranking.latest(2), Found::Merged(1)));
    assert!(matches!(
        ranking.hypotheses(2).await.unwrap(),
        Found::Merged(1)
    ));
    ranked(&ranking, 1, 3).await;
    let alerts = recorder.last().alerts;
    assert_eq!(alerts.len(), 3, "the absorbed incident's alert came along");
}

#[tokio::test]
async fn an_incident_not_in_memory_is_loaded_from_the_store_and_ranked_on_request() {
    let recorder = Arc::new(Recorder::default());
    let (ranking, _worker, _dir) = start(recorder.clone(), RankingConfig::default()).await;
    assert!(matches!(
        ranking.hypotheses(5).await.unwrap(),
        Found::Unknown
    ));
    crate::store::tests::insert_incident(&ranking.inner.store, 5, None).await;
    let Found::Held(ranked) = ranking.hypotheses(5).await.unwrap() else {
        panic!("incident 5 is in the store");
    };
    assert_eq!(ranked.revision, 1);
    assert!(
        ranked.diagnosis.hypotheses.is_empty(),
        "no services, no candidates"
    );
    assert!(ranked.diagnosis.unknown);
    crate::store::tests::insert_incident(&ranking.inner.store, 6, Some(5)).await;
    assert!(matches!(
        ranking.hypotheses(6).await.unwrap(),
        Found::Merged(5)
    ));
}

#[tokio::test]
async fn an_incident_read_back_from_the_store_does_not_count_the_commits_rows_twice() {
    // Incident 7 is not in memory; the commit that brings its third occurrence of one kind is
    // already in the store when ranking reads the incident back, so the commit's row must not
    // be counted again on top of what the store says.
    let recorder = Arc::new(Recorder::default());
    let (ranking, _worker, _dir) = start(recorder.clone(), RankingConfig::default()).await;
    let store = &ranking.inner.store;
    crate::store::tests::insert_incident(store, 7, None).await;
    for n in 1..=3i64 {
        crate::store::with_pool!(store, pool => {
            sqlx::query(
                "INSERT INTO alerts (fingerprint, starts_at, status, service, incident_id, \
                 source, severity, signal, labels, annotations, received_at, updated_at) \
                 VALUES ($1, $2, 'firing', 'cartservice', 7, 'api', 'critical', 'latency', \
                 $3, '{}', 0, 0)",
            )
            .bind(n)
            .bind(t0() + 1000 * n)
            .bind(format!(r#"{{"alertname":"A","n":"{n}"}}"#))
            .execute(pool)
            .await
            .unwrap();
        });
    }
    ranking.committed(Committed {
        alerts: vec![alert(7, 3, "cartservice", "A", true)],
        incidents: vec![snapshot(7, &["cartservice"], 3)],
        ..Committed::default()
    });
    ranked(&ranking, 7, 3).await;
    let alerts = recorder.last().alerts;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].count, 3, "{alerts:?}");
    assert_eq!(alerts[0].starts_at, t0() / 1000 + 1);
}

/// A stand-in Prometheus answering every `query_range` with redis-cart's CPU: flat, then high
/// from the anchor on, on the grid asked for.
async fn fake_prometheus() -> String {
    use axum::extract::Query;
    let app = axum::Router::new().route(
        "/api/v1/query_range",
        axum::routing::get(|Query(query): Query<HashMap<String, String>>| async move {
            let (start, end, step) = ["start", "end", "step"]
                .map(|k| query[k].parse::<i64>().unwrap())
                .into();
            let anchor = t0() / 1000;
            let values = (start..=end)
                .step_by(step as usize)
                .map(|t| serde_json::json!([t, if t < anchor { "0.2" } else { "0.95" }]))
                .collect::<Vec<_>>();
            axum::Json(serde_json::json!({"status": "success", "data": {
                "resultType": "matrix",
                "result": [{"metric": {"service": "redis-cart"}, "values": values}]}}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn start_with_prometheus(
    recorder: Arc<Recorder>,
    url: String,
) -> (Ranking, Workers, tempfile::TempDir) {
    let prometheus = PrometheusConfig {
        url: Some(url),
        timeout_ms: 2000,
        queries: [(
            "cpu_usage".to_owned(),
            "rate(cpu_seconds{service=~\"{{services}}\"}[1m])".to_owned(),
        )]
        .into(),
        ..PrometheusConfig::default()
    };
    start_with(recorder, RankingConfig::default(), prometheus).await
}

#[tokio::test]
async fn series_pulled_from_prometheus_reach_the_case_without_holding_up_the_first_ranking() {
    let recorder = Arc::new(Recorder::default());
    let url = fake_prometheus().await;
    let (ranking, _worker, _dir) = start_with_prometheus(recorder.clone(), url).await;
    ranking.committed(Committed {
        alerts: vec![alert(1, 1, "cartservice", "HighLatency", true)],
        incidents: vec![snapshot(1, &["cartservice"], 1)],
        ..Committed::default()
    });
    let case = recorder
        .until("no pulled series reached a case", |case| {
            !case.series.is_empty()
        })
        .await;
    let series = &case.series[0];
    assert_eq!(
        (series.service.as_str(), series.name.as_str()),
        ("redis-cart", "cpu_usage")
    );
    assert!(
        series.times.len() > 30,
        "the window before and after the anchor"
    );
    assert!(series.times.iter().all(|t| t % 60 == 0), "on the step grid");
}

#[tokio::test]
async fn an_unreachable_prometheus_never_delays_or_fails_ranking() {
    let recorder = Arc::new(Recorder::default());
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (ranking, _worker, _dir) = start_with_prometheus(recorder.clone(), url).await;
    let started = Instant::now();
    ranking.committed(Committed {
        alerts: vec![alert(1, 1, "cartservice", "HighLatency", true)],
        incidents: vec![snapshot(1, &["cartservice"], 1)],
        ..Committed::default()
    });
    ranked(&ranking, 1, 1).await;
    assert!(started.elapsed() < Duration::from_millis(1000));
    ranking.committed(Committed {
        alerts: vec![alert(1, 2, "frontend", "HighLatency", true)],
        incidents: vec![snapshot(1, &["cartservice", "frontend"], 2)],
        ..Committed::default()
    });
    ranked(&ranking, 1, 2).await;
    assert!(recorder.last().series.is_empty());
}

#[test]
fn candidates_are_extended_by_the_services_that_alerted_since_as_if_computed_anew() {
    use rootcause_datasets::synthetic::{self, Shape};
    let topology = Arc::new(synthetic::topology(&Shape::with_services(300, 3)));
    let names = topology
        .services()
        .map(|s| s.name.clone())
        .collect::<Vec<_>>();
    let job = |services: &[String], known: Option<(Vec<String>, Vec<String>)>| Job {
        incident: 1,
        generation: 1,
        alert_count: 1,
        anchor: 0,
        services: services.to_vec(),
        alerts: Vec::new(),
        series: Vec::new(),
        changes: Vec::new(),
        topology: topology.clone(),
        topology_version: 1,
        hops: 2,
        known,
    };
    let mut before = names.iter().step_by(37).cloned().collect::<Vec<_>>();
    before.sort();
    let mut now = names.iter().step_by(23).cloned().collect::<Vec<_>>();
    now.extend(before.iter().cloned());
    now.sort();
    now.dedup();
    let known = job(&before, None).candidates();
    let added = case::added_since(&before, &now).expect("now holds every earlier service");
    assert!(!added.is_empty());
    assert_eq!(
        job(&now, Some((known.clone(), added))).candidates(),
        job(&now, None).candidates()
    );
    assert_eq!(
        job(&before, Some((known.clone(), Vec::new()))).candidates(),
        known
    );
    assert_eq!(case::added_since(&now, &before), None, "a service left");
}

#[tokio::test]
async fn an_incident_waiting_out_its_interval_does_not_hold_up_another() {
    let recorder = Arc::new(Recorder::default());
    let config = RankingConfig {
        min_interval_ms: 2000,
        ..RankingConfig::default()
    };
    let (ranking, _worker, _dir) = start(recorder.clone(), config).await;
    ranking.committed(Committed {
        alerts: vec![alert(1, 1, "cartservice", "A", true)],
        incidents: vec![snapshot(1, &["cartservice"], 1)],
        ..Committed::default()
    });
    ranked(&ranking, 1, 1).await;
    // Incident 1 changes again and must wait two seconds; incident 2 is new and must not.
    ranking.committed(Committed {
        alerts: vec![alert(1, 2, "cartservice", "B", true)],
        incidents: vec![snapshot(1, &["cartservice"], 2)],
        ..Committed::default()
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    ranking.committed(Committed {
        alerts: vec![alert(2, 3, "emailservice", "C", true)],
        incidents: vec![snapshot(2, &["emailservice"], 1)],
        ..Committed::default()
    });
    ranked(&ranking, 2, 1).await;
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    ranked(&ranking, 1, 2).await;
}

#[tokio::test]
async fn a_resolved_incident_leaves_memory_after_hold_resolved_and_an_open_one_stays() {
    let recorder = Arc::new(Recorder::default());
    let config = RankingConfig {
        hold_resolved_secs: 0,
        ..RankingConfig::default()
    };
    let (ranking, _worker, _dir) = start(recorder.clone(), config).await;
    let resolved = IncidentSnapshot {
        status: IncidentStatus::Resolved,
        resolved_at: Some(t0() + 60_000),
        firing_count: 0,
        ..snapshot(1, &["cartservice"], 1)
    };
    ranking.committed(Committed {
        alerts: vec![
            alert(1, 1, "cartservice", "A", true),
            alert(2, 2, "frontend", "A", true),
        ],
        incidents: vec![resolved, snapshot(2, &["frontend"], 1)],
        ..Committed::default()
    });
    ranked(&ranking, 1, 1).await;
    ranked(&ranking, 2, 1).await;

    ranking.inner.housekeeping();
    assert!(
        matches!(ranking.latest(1), Found::Unknown),
        "the resolved incident is no longer held"
    );
    assert!(
        matches!(ranking.latest(2), Found::Held(_)),
        "the open incident is"
    );

    // With the default (30 minutes) a resolved incident stays.
    let (ranking, _worker, _dir) = start(recorder, RankingConfig::default()).await;
    ranking.committed(Committed {
        alerts: vec![alert(3, 3, "cartservice", "A", true)],
        incidents: vec![IncidentSnapshot {
            status: IncidentStatus::Resolved,
            firing_count: 0,
            ..snapshot(3, &["cartservice"], 1)
        }],
        ..Committed::default()
    });
    ranked(&ranking, 3, 1).await;
    ranking.inner.housekeeping();
    assert!(matches!(ranking.latest(3), Found::Held(_)));
}
