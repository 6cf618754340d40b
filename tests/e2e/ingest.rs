//! Alert intake end to end: a real Alertmanager delivering to rootcause (one incident, then its
//! resolution), the double delivery of an HA pair stored once, and every acknowledged alert
//! surviving a SIGKILL mid-stream with its incident rebuilt, on SQLite and on PostgreSQL.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use rootcause_e2e::{Alertmanager, Server, ServerOptions, TestDatabase, json_of, metric_value};
use serde_json::{Value, json};

/// How long anything asynchronous (an Alertmanager notification, an engine tick) may take.
const PATIENCE: Duration = Duration::from_secs(20);

/// The alerting services of the incident of the first two tests: redis-cart and its callers.
const INCIDENT_SERVICES: [&str; 4] = ["redis-cart", "cartservice", "frontend", "checkoutservice"];

/// Now, as Alertmanager writes times.
fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn webhook_url(server: &Server) -> String {
    format!("{}/api/v1/alerts/alertmanager", server.url)
}

/// Calls `probe` every 200 ms until it answers `Ok`, for at most [`PATIENCE`]; fails the test
/// with `what` and the last `Err` (what was seen instead).
async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() > deadline => {
                panic!("{what}: not within {PATIENCE:?}; last seen:\n{seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Alerts rootcause received through the webhook so far, from its metrics: (all outcomes,
/// `outcome`, duplicates).
async fn webhook_deliveries(server: &Server, outcome: &str) -> (f64, f64, f64) {
    let metrics = server.get("/metrics").await.text().await.unwrap();
    let count = |outcome: Option<&str>| {
        let mut labels = vec![("source", "alertmanager-webhook")];
        labels.extend(outcome.map(|outcome| ("outcome", outcome)));
        metric_value(&metrics, "rootcause_alerts_received_total", &labels)
    };
    (count(None), count(Some(outcome)), count(Some("duplicate")))
}

/// Waits until the HA pair's members each notified `notified` times without a failure and the
/// server received at least `all` webhook alerts; returns the server's (all, `outcome`,
/// duplicate) counts.
async fn pair_delivered(
    server: &Server,
    pair: (&Alertmanager, &Alertmanager),
    outcome: &str,
    all: f64,
    notified: u64,
) -> (f64, f64, f64) {
    let what = format!("both members delivered {notified} notifications");
    eventually(&what, async || {
        let received = webhook_deliveries(server, outcome).await;
        let seen = (
            pair.0.webhook_notifications().await,
            pair.1.webhook_notifications().await,
        );
        if received.0 >= all && seen == ((notified, 0), (notified, 0)) {
            Ok(received)
        } else {
            Err(format!(
                "received (all, {outcome}, duplicate) {received:?}; notified (attempts, \
                 failures) {seen:?}"
            ))
        }
    })
    .await
}

async fn incidents(server: &Server, query: &str) -> Vec<Value> {
    let page = json_of(
        server
            .get(&format!("/api/v1/incidents?limit=1000{query}"))
            .await,
    )
    .await;
    page["items"].as_array().expect("items").clone()
}

async fn incident(server: &Server, id: i64) -> Value {
    let response = server.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(response.status(), 200, "incident {id}");
    json_of(response).await
}

/// Every stored alert, newest first, page after page (a page is capped in bytes by
/// `http.max_response_bytes`, so tens of thousands of alerts take several).
async fn all_alerts(server: &Server) -> Vec<Value> {
    let mut alerts = Vec::new();
    let mut path = "/api/v1/alerts?limit=100000".to_owned();
    loop {
        let response = server.get(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        let page = json_of(response).await;
        alerts.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_before"].as_i64() {
            Some(before) => path = format!("/api/v1/alerts?limit=100000&before={before}"),
            None => return alerts,
        }
    }
}

fn service_names(incident: &Value) -> BTreeSet<String> {
    incident["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| s["name"].as_str().expect("a name").to_owned())
        .collect()
}

fn set_of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// Hop distances between services of a served topology, ignoring call direction (as
/// correlation does); unreachable pairs are absent.
fn hop_distances(topology: &Value) -> HashMap<String, HashMap<String, usize>> {
    let mut neighbours: HashMap<&str, Vec<&str>> = HashMap::new();
    for service in topology["services"].as_array().expect("services") {
        neighbours
            .entry(service["name"].as_str().expect("a name"))
            .or_default();
    }
    for dependency in topology["dependencies"].as_array().expect("dependencies") {
        let caller = dependency["caller"].as_str().expect("a caller");
        let callee = dependency["callee"].as_str().expect("a callee");
        neighbours.entry(caller).or_default().push(callee);
        neighbours.entry(callee).or_default().push(caller);
    }
    neighbours
        .keys()
        .map(|&from| {
            let mut distance = HashMap::from([(from.to_owned(), 0)]);
            let mut queue = VecDeque::from([from]);
            while let Some(at) = queue.pop_front() {
                let next = distance[at] + 1;
                for &neighbour in &neighbours[at] {
                    if !distance.contains_key(neighbour) {
                        distance.insert(neighbour.to_owned(), next);
                        queue.push_back(neighbour);
                    }
                }
            }
            (from.to_owned(), distance)
        })
        .collect()
}

/// An alert in Alertmanager's API v2 shape.
fn postable(alertname: &str, service: &str, starts_at: &str) -> Value {
    json!({
        "labels": {"alertname": alertname, "service": service, "severity": "critical"},
        "annotations": {"summary": format!("{alertname} on {service}")},
        "startsAt": starts_at,
        "generatorURL": "http://prometheus.example:9090/graph",
    })
}

#[tokio::test]
async fn a_real_alertmanager_delivers_one_incident_and_its_resolution() {
    let server = Server::start(ServerOptions {
        env: vec![(
            "ROOTCAUSE_CORRELATION__RESOLVE_AFTER_SECS".into(),
            "2".into(),
        )],
        ..ServerOptions::default()
    })
    .await;
    let Some(alertmanager) = Alertmanager::start(&webhook_url(&server)).await else {
        return; // Alertmanager::start said so loudly, or failed under ROOTCAUSE_REQUIRE_E2E=1.
    };

    // Every service of the bundled Online Boutique is within one hop of frontend or of
    // checkoutservice, so none is 3 hops from all four incident services: hang a chain of two
    // services off loadgenerator to get one at exactly 3 hops (one more than max_hops).
    let mut topology = json_of(server.get("/api/v1/topology").await).await;
    let bundled = hop_distances(&topology);
    let far_from_all = |distances: &HashMap<String, HashMap<String, usize>>, service: &str| {
        INCIDENT_SERVICES
            .iter()
            .map(|s| distances[service].get(*s).copied().unwrap_or(usize::MAX))
            .min()
            .unwrap_or(0)
    };
    assert!(
        bundled.keys().all(|s| far_from_all(&bundled, s) <= 1),
        "the bundled topology changed: {bundled:?}"
    );
    topology["services"].as_array_mut().unwrap().extend([
        json!({"name": "loadtest-scheduler", "kind": "service"}),
        json!({"name": "ops-console", "kind": "service"}),
    ]);
    topology["dependencies"].as_array_mut().unwrap().extend([
        json!({"caller": "loadtest-scheduler", "callee": "loadgenerator"}),
        json!({"caller": "ops-console", "callee": "loadtest-scheduler"}),
    ]);
    let put = server
        .put(
            "/api/v1/topology?note=e2e-far-service",
            "application/json",
            topology.to_string(),
        )
        .await;
    assert_eq!(put.status(), 201, "{}", put.text().await.unwrap());

    // From what is served: the four services are pairwise within 2 hops (one incident), and
    // the nearest service 3 or more hops from all of them is the far one.
    let distances = hop_distances(&json_of(server.get("/api/v1/topology").await).await);
    for a in INCIDENT_SERVICES {
        for b in INCIDENT_SERVICES {
            assert!(
                distances[a][b] <= 2,
                "{a} and {b} are {} hops apart",
                distances[a][b]
            );
        }
    }
    let far = distances
        .keys()
        .filter(|s| far_from_all(&distances, s) >= 3)
        .min_by_key(|s| (far_from_all(&distances, s), (*s).clone()))
        .expect("a service 3 or more hops from the incident")
        .clone();
    assert_eq!(far_from_all(&distances, &far), 3, "{far}");

    let started = now();
    let alerts = vec![
        postable("DBDown", "redis-cart", &started),
        postable("HighLatency", "cartservice", &started),
        postable("HighLatency", "frontend", &started),
        postable("HighLatency", "checkoutservice", &started),
        postable("HighErrorRate", &far, &started),
    ];
    alertmanager.post_alerts(&Value::from(alerts.clone())).await;

    let wanted = set_of(&INCIDENT_SERVICES);
    let (id, far_id) = eventually(
        "one incident of the four services, the far one apart",
        async || {
            let open = incidents(&server, "&status=open").await;
            let seen = || serde_json::to_string_pretty(&open).unwrap();
            let touching: Vec<&Value> = open
                .iter()
                .filter(|i| !service_names(i).is_disjoint(&wanted))
                .collect();
            let [main] = touching.as_slice() else {
                return Err(seen());
            };
            if service_names(main) != wanted || main["firing_count"] != 4 {
                return Err(seen());
            }
            let far_incident = open
                .iter()
                .find(|i| service_names(i).contains(&far))
                .ok_or_else(seen)?;
            Ok((
                main["id"].as_i64().unwrap(),
                far_incident["id"].as_i64().unwrap(),
            ))
        },
    )
    .await;
    assert_ne!(id, far_id);
    let far_incident = incident(&server, far_id).await;
    assert_eq!(service_names(&far_incident), set_of(&[far.as_str()]));
    assert_eq!(far_incident["status"], "open");

    // The alerts as delivered: Alertmanager's fingerprints, each in its incident.
    let held = alertmanager.alerts().await;
    let am_fingerprints: BTreeSet<&str> = rootcause::testing::texts(&held, "fingerprint")
        .into_iter()
        .collect();
    let stored = all_alerts(&server).await;
    assert_eq!(stored.len(), 5, "{stored:#?}");
    let stored_fingerprints: BTreeSet<&str> = stored
        .iter()
        .map(|a| a["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(stored_fingerprints, am_fingerprints);
    for alert in &stored {
        assert_eq!(alert["source"], "alertmanager-webhook");
        assert_eq!(alert["status"], "firing");
        let expected = if alert["service"] == far.as_str() {
            far_id
        } else {
            id
        };
        assert_eq!(alert["incident_id"], expected, "{alert:#}");
    }
    let detail = incident(&server, id).await;
    assert_eq!(detail["alerts"].as_array().unwrap().len(), 4, "{detail:#}");
    assert_eq!(detail["timeline"][0]["kind"], "opened", "{detail:#}");

    // Resolved through Alertmanager: the same alerts, ending now.
    let ended = now();
    let resolved: Vec<Value> = alerts
        .iter()
        .map(|alert| {
            let mut alert = alert.clone();
            alert["endsAt"] = json!(ended);
            alert
        })
        .collect();
    alertmanager.post_alerts(&Value::from(resolved)).await;
    let detail = eventually("the incident and its alerts resolve", async || {
        let detail = incident(&server, id).await;
        let alerts_resolved = detail["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == "resolved" && a["ends_at"].is_string());
        if detail["status"] == "resolved" && alerts_resolved {
            Ok(detail)
        } else {
            Err(serde_json::to_string_pretty(&detail).unwrap())
        }
    })
    .await;
    assert_eq!(detail["firing_count"], 0);
    assert!(detail["resolved_at"].is_string(), "{detail:#}");
    let kinds = rootcause::testing::texts(&detail["timeline"], "kind");
    let ended_at = kinds.iter().position(|k| *k == "all_alerts_ended");
    let resolved_at = kinds.iter().position(|k| *k == "resolved");
    assert!(
        matches!((ended_at, resolved_at), (Some(e), Some(r)) if e < r),
        "{kinds:?}"
    );
    eventually("the far incident resolves too", async || {
        let far_incident = incident(&server, far_id).await;
        if far_incident["status"] == "resolved" {
            Ok(())
        } else {
            Err(far_incident.to_string())
        }
    })
    .await;
    assert_eq!(
        incidents(&server, "&status=open").await,
        Vec::<Value>::new()
    );
    let (_, failed) = alertmanager.webhook_notifications().await;
    assert_eq!(failed, 0, "Alertmanager's log:\n{}", alertmanager.log());
}

#[tokio::test]
async fn double_delivery_by_an_ha_pair_stores_one_alert_and_one_incident() {
    let server = Server::start(ServerOptions::default()).await;
    let Some(first) = Alertmanager::start(&webhook_url(&server)).await else {
        return;
    };
    let Some(second) = Alertmanager::start(&webhook_url(&server)).await else {
        return;
    };

    // Prometheus sends each alert to every member of the pair, with the same startsAt; the
    // members do not gossip here, so both notify.
    let started = now();
    let alerts = json!([
        postable("DBDown", "redis-cart", &started),
        postable("HighLatency", "cartservice", &started),
    ]);
    first.post_alerts(&alerts).await;
    second.post_alerts(&alerts).await;

    let received = pair_delivered(&server, (&first, &second), "new", 4.0, 2).await;
    assert_eq!(
        received,
        (4.0, 2.0, 2.0),
        "(all, new, duplicate): the second delivery of each alert is a duplicate"
    );

    let stored = all_alerts(&server).await;
    assert_eq!(stored.len(), 2, "one row per alert: {stored:#?}");
    let fingerprints = |alerts: &[Value]| -> BTreeSet<String> {
        alerts
            .iter()
            .map(|a| a["fingerprint"].as_str().unwrap().to_owned())
            .collect()
    };
    let am_fingerprints = fingerprints(first.alerts().await.as_array().unwrap());
    assert_eq!(
        am_fingerprints,
        fingerprints(second.alerts().await.as_array().unwrap())
    );
    assert_eq!(fingerprints(&stored), am_fingerprints);
    let all_incidents = incidents(&server, "").await;
    assert_eq!(all_incidents.len(), 1, "{all_incidents:#?}");
    let id = all_incidents[0]["id"].as_i64().unwrap();
    assert_eq!(all_incidents[0]["status"], "open");
    assert_eq!(all_incidents[0]["alert_count"], 2);
    assert_eq!(
        service_names(&all_incidents[0]),
        set_of(&["redis-cart", "cartservice"])
    );

    // A webhook notification delivered twice (a retry): one new alert, then a duplicate.
    let started_later = now();
    let labels =
        json!({"alertname": "HighErrorRate", "service": "checkoutservice", "severity": "critical"});
    let notification = json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"HighErrorRate\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "rc",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [{
            "status": "firing",
            "labels": labels,
            "annotations": {},
            "startsAt": started_later,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph",
        }],
    });
    let mut receipts = Vec::new();
    for _ in 0..2 {
        let response = server
            .post("/api/v1/alerts/alertmanager", &notification)
            .await;
        assert_eq!(response.status(), 202);
        receipts.push(json_of(response).await);
    }
    let counts = |r: &Value| {
        (
            r["received"].as_u64().unwrap(),
            r["new"].as_u64().unwrap(),
            r["updated"].as_u64().unwrap(),
            r["duplicates"].as_u64().unwrap(),
        )
    };
    assert_eq!(counts(&receipts[0]), (1, 1, 0, 0), "{receipts:#?}");
    assert_eq!(counts(&receipts[1]), (1, 0, 0, 1), "{receipts:#?}");
    assert_eq!(
        receipts[0]["incidents"],
        json!([id]),
        "checkoutservice joins"
    );
    let stored = all_alerts(&server).await;
    assert_eq!(stored.len(), 3, "{stored:#?}");

    // The same labels through Alertmanager's API path are the same alerts: same fingerprints,
    // no new rows.
    let again = json!([
        postable("DBDown", "redis-cart", &started),
        {"labels": labels, "startsAt": started_later},
    ]);
    let response = server.post("/api/v2/alerts", &again).await;
    assert_eq!(response.status(), 200);
    let receipt = json_of(response).await;
    let (received, new, updated, duplicates) = counts(&receipt);
    assert_eq!(
        (received, new, updated + duplicates),
        (2, 0, 2),
        "{receipt:#}"
    );
    assert_eq!(receipt["incidents"], json!([id]), "{receipt:#}");
    let after = all_alerts(&server).await;
    assert_eq!(after.len(), 3, "{after:#?}");
    assert_eq!(fingerprints(&after), fingerprints(&stored));
    let open = incidents(&server, "").await;
    assert_eq!(open.len(), 1, "{open:#?}");
    assert_eq!(open[0]["alert_count"], 3);

    // Both members notify the resolution too: the second is a duplicate, not a new row.
    let ended = now();
    let resolved: Vec<Value> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| {
            let mut alert = alert.clone();
            alert["endsAt"] = json!(ended);
            alert
        })
        .collect();
    first.post_alerts(&Value::from(resolved.clone())).await;
    second.post_alerts(&Value::from(resolved)).await;
    // Before: 4 from the pair, 2 posted directly.
    let received = pair_delivered(&server, (&first, &second), "updated", 10.0, 4).await;
    assert_eq!(
        received,
        (10.0, 2.0, 5.0),
        "(all, updated, duplicate): one resolution each, then duplicates"
    );
    let after = all_alerts(&server).await;
    assert_eq!(after.len(), 3, "{after:#?}");
    let statuses: BTreeSet<(String, String)> = after
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap().to_owned(),
                a["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("DBDown", "resolved"),
            ("HighErrorRate", "firing"),
            ("HighLatency", "resolved")
        ]
        .map(|(a, s)| (a.to_owned(), s.to_owned()))
        .into(),
    );
    let open = incidents(&server, "").await;
    assert_eq!(open.len(), 1, "{open:#?}");
    assert_eq!(open[0]["firing_count"], 1, "{open:#?}");
}

/// Alerts per request of the load.
const BATCH: usize = 100;
/// Requests in flight at once.
const WORKERS: usize = 4;

/// Batch `batch`: distinct alertnames (`L<batch>x<index>`); nine in ten on services of the
/// topology, the rest on services it does not have (unmapped).
fn load_batch(batch: usize, services: &[String]) -> Value {
    let alerts: Vec<Value> = (0..BATCH)
        .map(|index| {
            let service = if index % 10 == 9 {
                format!("ghost-{}", index % 3)
            } else {
                services[(batch * 7 + index) % services.len()].clone()
            };
            json!({
                "alertname": format!("L{batch:05}x{index:03}"),
                "service": service,
                "severity": "warning",
            })
        })
        .collect();
    json!({ "alerts": alerts })
}

/// Floods a server with batches from several workers, SIGKILLs it mid-stream, restarts it on
/// the same database and checks that every acknowledged alert is there, in an open incident.
async fn acknowledged_alerts_survive_kill_9(options: ServerOptions) {
    let server = Server::start(options.clone()).await;
    let topology = json_of(server.get("/api/v1/topology").await).await;
    let services: Arc<Vec<String>> = Arc::new(
        topology["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect(),
    );

    let next_batch = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let url = format!("{}/api/v1/alerts", server.url);
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (next_batch, acknowledged, refused) =
                (next_batch.clone(), acknowledged.clone(), refused.clone());
            let (http, url, services) = (server.http.clone(), url.clone(), services.clone());
            tokio::spawn(async move {
                loop {
                    let batch = next_batch.fetch_add(1, Ordering::SeqCst);
                    let body = load_batch(batch, &services);
                    match http.post(&url).json(&body).send().await {
                        Ok(response) if response.status().is_success() => {
                            let receipt: Value = match response.json().await {
                                Ok(receipt) => receipt,
                                Err(_) => break, // killed while answering: not acknowledged
                            };
                            acknowledged.lock().unwrap().push((batch, receipt));
                        }
                        Ok(response) => refused
                            .lock()
                            .unwrap()
                            .push((batch, response.status().as_u16())),
                        Err(_) => break, // the server is gone
                    }
                }
            })
        })
        .collect();

    // Let the load run, then kill the server in the middle of it.
    let load_started = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    while acknowledged.lock().unwrap().len() < 3 {
        assert!(
            load_started.elapsed() < PATIENCE,
            "fewer than 3 batches acknowledged in {PATIENCE:?}; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let killed = server.kill_9();
    assert_eq!(killed.status.signal(), Some(9), "{:?}", killed.status);
    for worker in workers {
        worker.await.expect("a load worker");
    }
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    let refused = std::mem::take(&mut *refused.lock().unwrap());
    let attempted = next_batch.load(Ordering::SeqCst);
    assert_eq!(
        refused,
        [],
        "refused batches (batch, status) before the kill"
    );
    eprintln!(
        "kill -9 after {:?}: {} of {attempted} batches of {BATCH} acknowledged",
        load_started.elapsed(),
        acknowledged.len()
    );

    let server = killed.restart(options).await;
    let stored = all_alerts(&server).await;
    let by_name: HashMap<&str, &Value> = stored
        .iter()
        .map(|a| (a["labels"]["alertname"].as_str().unwrap(), a))
        .collect();
    assert_eq!(by_name.len(), stored.len(), "one row per alertname");

    // Every acknowledged alert is there, firing, in an incident; a request is all or nothing.
    for (batch, receipt) in &acknowledged {
        assert_eq!(receipt["new"], BATCH, "batch {batch}: {receipt}");
        for alert in load_batch(*batch, &services)["alerts"].as_array().unwrap() {
            let name = alert["alertname"].as_str().unwrap();
            let Some(row) = by_name.get(name) else {
                panic!("acknowledged alert {name} (batch {batch}) is lost after kill -9");
            };
            assert_eq!(row["status"], "firing", "{row:#}");
            assert!(row["incident_id"].is_i64(), "in no incident: {row:#}");
        }
    }
    for batch in 0..attempted {
        let present = (0..BATCH)
            .filter(|index| by_name.contains_key(format!("L{batch:05}x{index:03}").as_str()))
            .count();
        assert!(
            present == 0 || present == BATCH,
            "batch {batch}: {present} of {BATCH} alerts stored; a request is all or nothing"
        );
    }

    // The incidents were rebuilt: each firing alert's incident is open and counts it.
    let mut firing_by_incident: HashMap<i64, i64> = HashMap::new();
    for row in stored.iter().filter(|a| a["status"] == "firing") {
        let id = row["incident_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("a firing alert in no incident: {row:#}"));
        *firing_by_incident.entry(id).or_default() += 1;
    }
    for (id, firing) in &firing_by_incident {
        let detail = incident(&server, *id).await;
        assert_eq!(detail["status"], "open", "incident {id}");
        assert_eq!(detail["firing_count"], *firing, "incident {id}");
    }
    let open = incidents(&server, "&status=open").await;
    let open_ids: BTreeSet<i64> = open.iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert_eq!(
        open_ids,
        firing_by_incident.keys().copied().collect(),
        "open incidents are those of the firing alerts"
    );

    // The engine knows them again: a repeat of an acknowledged batch is all duplicates.
    let (batch, _) = &acknowledged[0];
    let response = server
        .post("/api/v1/alerts", &load_batch(*batch, &services))
        .await;
    assert_eq!(response.status(), 202);
    let receipt = json_of(response).await;
    assert_eq!(receipt["new"], 0, "{receipt:#}");
    assert_eq!(receipt["duplicates"], BATCH, "{receipt:#}");
    for id in receipt["incidents"].as_array().unwrap() {
        assert!(open_ids.contains(&id.as_i64().unwrap()), "{receipt:#}");
    }
    let status = server.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn every_acknowledged_alert_survives_kill_9_and_incidents_are_rebuilt() {
    acknowledged_alerts_survive_kill_9(ServerOptions::default()).await;
}

#[tokio::test]
async fn every_acknowledged_alert_survives_kill_9_and_incidents_are_rebuilt_on_postgres() {
    let Some(database) = TestDatabase::create().await else {
        return; // TestDatabase::create said so loudly, or failed under ROOTCAUSE_REQUIRE_E2E=1.
    };
    acknowledged_alerts_survive_kill_9(ServerOptions {
        args: vec!["--database-url".into(), database.url.clone()],
        ..ServerOptions::default()
    })
    .await;
    database.drop().await;
}
