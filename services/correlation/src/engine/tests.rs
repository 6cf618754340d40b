//! The engine's rules, one test each, and property tests of its invariants.

use std::collections::BTreeSet;

use proptest::prelude::*;
use rootcause_topology::{Dependency, Service, ServiceKind, Topology};

use super::types::secs_to_millis;
use super::*;
use crate::alert::labels;

const MINUTE: Millis = 60_000;
const T0: Millis = 1_800_000_000_000;

/// gateway → web → api → db, api → cache, plus a far chain web → a1 → a2 → a3 → a4 → a5.
fn topology() -> Topology {
    let mut topology = Topology::new();
    let edges = [
        ("gateway", "web"),
        ("web", "api"),
        ("api", "db"),
        ("api", "cache"),
        ("web", "a1"),
        ("a1", "a2"),
        ("a2", "a3"),
        ("a3", "a4"),
        ("a4", "a5"),
    ];
    for (caller, callee) in edges {
        for name in [caller, callee] {
            if topology.service(name).is_none() {
                topology
                    .add_service(Service::new(name, ServiceKind::Service))
                    .unwrap();
            }
        }
        topology
            .add_dependency(Dependency::new(caller, callee))
            .unwrap();
    }
    topology
}

fn graph(topology: &Topology) -> Graph<'_> {
    Graph {
        version: Some(1),
        topology,
    }
}

fn firing(fingerprint: u64, service: &str, starts_at: Millis) -> AlertEvent {
    AlertEvent {
        fingerprint: Fingerprint(fingerprint),
        status: AlertStatus::Firing,
        starts_at: Some(starts_at),
        ends_at: None,
        subject: Subject::Service(service.to_owned()),
    }
}

fn resolved(fingerprint: u64, service: &str, starts_at: Millis, ends_at: Millis) -> AlertEvent {
    AlertEvent {
        status: AlertStatus::Resolved,
        ends_at: Some(ends_at),
        ..firing(fingerprint, service, starts_at)
    }
}

/// Alert `fingerprint` on `service` fires at `from` and resolves at `to`, each delivered as it
/// happens.
fn fire_then_resolve(
    engine: &mut Engine,
    topology: &Topology,
    fingerprint: u64,
    service: &str,
    from: Millis,
    to: Millis,
) {
    engine.observe(graph(topology), &[firing(fingerprint, service, from)], from);
    engine.observe(
        graph(topology),
        &[resolved(fingerprint, service, from, to)],
        to,
    );
}

fn services(snapshot: &IncidentSnapshot) -> Vec<&str> {
    snapshot.services.iter().map(|(s, _)| s.as_str()).collect()
}

fn open(engine: &Engine) -> Vec<IncidentSnapshot> {
    engine
        .incidents()
        .into_iter()
        .filter(|i| i.status == IncidentStatus::Open)
        .collect()
}

#[test]
fn a_failing_database_and_its_callers_make_one_incident_and_a_far_service_another() {
    let topology = topology();
    let mut engine = Engine::new(Settings::default(), 1);
    let seen = engine.observe(
        graph(&topology),
        &[
            firing(1, "db", T0),
            firing(2, "api", T0 + 1000),
            firing(3, "web", T0 + 2000),
            firing(4, "a5", T0 + 3000),
        ],
        T0 + 3000,
    );
    assert!(seen.iter().all(|o| o.outcome == Outcome::Opened));
    let incidents = open(&engine);
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    assert_eq!(services(&incidents[0]), ["api", "db", "web"]);
    assert_eq!(services(&incidents[1]), ["a5"]);
    assert_eq!(seen[2].incident, seen[0].incident);
    engine.check_invariants().unwrap();
}

#[test]
fn silent_services_in_between_do_not_split_an_incident() {
    let topology = topology();
    let mut engine = Engine::new(Settings::default(), 1);
    // db and web are two hops apart through api, which raises nothing.
    let seen = engine.observe(
        graph(&topology),
        &[firing(1, "db", T0), firing(2, "web", T0)],
        T0,
    );
    assert_eq!(seen[0].incident, seen[1].incident);
    let changes = engine.take_changes();
    assert!(changes.timeline.iter().any(|entry| entry.event
        == TimelineEvent::ServiceJoined {
            service: "web".into(),
            alert: Fingerprint(2),
            via: Some("db".into()),
            hops: Some(2),
        }));
    // Three hops is too far with the default max_hops = 2 ...
    let seen = engine.observe(graph(&topology), &[firing(3, "a3", T0)], T0);
    assert_ne!(seen[0].incident, Some(1));
    // ... and near enough with max_hops = 3.
    let mut engine = Engine::new(
        Settings {
            max_hops: 3,
            ..Settings::default()
        },
        1,
    );
    let seen = engine.observe(
        graph(&topology),
        &[firing(1, "db", T0), firing(3, "a1", T0)],
        T0,
    );
    assert_eq!(seen[0].incident, seen[1].incident);
}

#[test]
fn an_alert_that_connects_two_incidents_merges_them_into_the_older() {
    let topology = topology();
    let mut engine = Engine::new(Settings::default(), 1);
    engine.observe(
        graph(&topology),
        &[firing(1, "db", T0), firing(2, "a3", T0)],
        T0,
    );
    assert_eq!(open(&engine).len(), 2);
    engine.take_changes();
    // a1 is two hops from db (via web? no: a1-web-api-db is 3) ... web is 2 from db and 2 from a2.
    let seen = engine.observe(
        graph(&topology),
        &[firing(3, "a1", T0 + 1000), firing(4, "web", T0 + 1000)],
        T0 + 1000,
    );
    assert_eq!(seen[1].incident, Some(1));
    let incidents = open(&engine);
    assert_eq!(incidents.len(), 1);
    assert_eq!(services(&incidents[0]), ["a1", "a3", "db", "web"]);
    assert_eq!(incidents[0].alert_count, 4);
    let changes = engine.take_changes();
    assert_eq!(changes.merges, [(2, 1)]);
    let merged = changes.incidents.iter().find(|i| i.id == 2).unwrap();
    assert_eq!(merged.status, IncidentStatus::Merged);
    assert_eq!(merged.merged_into, Some(1));
    assert!(
        changes
            .timeline
            .iter()
            .any(|e| e.incident == 1
                && matches!(&e.event, TimelineEvent::Merged { absorbed: 2, .. }))
    );
    assert!(
        changes
            .timeline
            .iter()
            .any(|e| e.incident == 2 && e.event == TimelineEvent::MergedInto { survivor: 1 })
    );
    assert_eq!(engine.incident_of(Fingerprint(2)), Some(1));
    engine.check_invariants().unwrap();
}

#[test]
fn the_same_fingerprint_is_one_alert() {
    let topology = topology();
    let mut engine = Engine::new(Settings::default(), 1);
    let first = engine.observe(graph(&topology), &[firing(1, "db", T0)], T0);
    let again = engine.observe(graph(&topology), &[firing(1, "db", T0)], T0 + 1000);
    assert_eq!(first[0].outcome, Outcome::Opened);
    assert_eq!(again[0].outcome, Outcome::Duplicate);
    // A delivery with another start (Alertmanager's merge of overlapping alerts) continues
    // the firing occurrence.
    let later = engine.observe(graph(&topology), &[firing(1, "db", T0 + 5000)], T0 + 5000);
    assert_eq!(later[0].outcome, Outcome::Duplicate);
    assert_eq!(later[0].key.starts_at, T0);
    assert_eq!(open(&engine)[0].alert_count, 1);
    let end = engine.observe(
        graph(&topology),
        &[resolved(1, "db", T0, T0 + 9000)],
        T0 + 9000,
    );
    assert_eq!(end[0].outcome, Outcome::Resolved);
    let end_again = engine.observe(
        graph(&topology),
        &[resolved(1, "db", T0, T0 + 9000)],
        T0 + 9500,
    );
    assert_eq!(end_again[0].outcome, Outcome::Duplicate);
    // An HA peer's late firing delivery of the ended occurrence changes nothing.
    let late = engine.observe(graph(&topology), &[firing(1, "db", T0)], T0 + 9800);
    assert_eq!(late[0].outcome, Outcome::Stale);
    assert_eq!(engine.firing_alerts(), 0);
}

#[test]
fn ended_alerts_are_remembered_up_to_the_cap_whatever_the_rate() {
    // Before: every distinct ended alert stayed for reopen_within_secs (30 min): a soak of
    // 18,000 new alerts a second grew memory by ~300 bytes per alert sent.
    let topology = topology();
    let settings = Settings {
        max_remembered_ended: 10,
        ..Settings::default()
    };
    let mut engine = Engine::new(settings, 1);
    for n in 0..50u64 {
        let at = T0 + n as Millis * 100;
        fire_then_resolve(&mut engine, &topology, 100 + n, "db", at, at + 50);
        assert!(
            engine.ended.len() <= 11,
            "{} ended remembered",
            engine.ended.len()
        );
    }
    engine.tick(T0 + 6000);
    assert!(engine.ended.len() <= 10, "{}", engine.ended.len());
    // The newest are the ones remembered: a late delivery of the last one is still stale.
    let last = T0 + 49 * 100;
    let late = engine.observe(graph(&topology), &[firing(149, "db", last)], last + 60);
    assert_eq!(late[0].outcome, Outcome::Stale);
}

#[test]
fn quiet_incidents_resolve_after_resolve_after_and_reopen_when_an_alert_fires_again() {
    let topology = topology();
    let settings = Settings::default();
    let resolve_after = secs_to_millis(settings.resolve_after_secs);
    let mut engine = Engine::new(settings, 1);
    fire_then_resolve(&mut engine, &topology, 1, "db", T0, T0 + MINUTE);
    engine.tick(T0 + MINUTE + resolve_after - 1);
    assert_eq!(engine.incident(1).unwrap().status, IncidentStatus::Open);
    engine.tick(T0 + MINUTE + resolve_after);
    assert_eq!(engine.incident(1).unwrap().status, IncidentStatus::Resolved);
    let changes = engine.take_changes();
    assert!(
        changes
            .timeline
            .iter()
            .any(|e| e.event == TimelineEvent::Resolved)
    );
    // A new occurrence of the same alert reopens the incident rather than opening another.
    let at = T0 + 20 * MINUTE;
    let seen = engine.observe(graph(&topology), &[firing(1, "db", at)], at);
    assert_eq!(seen[0].incident, Some(1));
    let incident = engine.incident(1).unwrap();
    assert_eq!(incident.status, IncidentStatus::Open);
    assert_eq!(incident.alert_count, 2);
    assert!(
        engine
            .take_changes()
            .timeline
            .iter()
            .any(|e| matches!(e.event, TimelineEvent::Reopened { .. }))
    );
    engine.check_invariants().unwrap();
}

#[test]
fn a_refire_before_resolve_after_keeps_the_incident_open() {
    let topology = topology();
    let mut engine = Engine::new(Settings::default(), 1);
    fire_then_resolve(&mut engine, &topology, 1, "db", T0, T0 + MINUTE);
    let seen = engine.observe(
        graph(&topology),
        &[firing(2, "api", T0 + 2 * MINUTE)],
        T0 + 2 * MINUTE,
    );
    assert_eq!(seen[0].incident, Some(1));
    engine.tick(T0 + 60 * MINUTE);
    assert_eq!(engine.incident(1).unwrap().status, IncidentStatus::Open);
    assert!(
        engine
            .take_changes()
            .timeline
            .iter()
            .any(|e| matches!(e.event, TimelineEvent::Refired { .. }))
    );
}

#[test]
fn alerts_outside_the_window_open_a_new_incident() {
    let topology = topology();
    // Quiet incidents stay open for an hour here, so only the window separates alerts.
    let settings = Settings {
        resolve_after_secs: 3600,
        ..Settings::default()
    };
    let mut engine = Engine::new(settings, 1);
    fire_then_resolve(&mut engine, &topology, 1, "db", T0, T0 + MINUTE);
    // Quiet since T0 + 1 min: an alert eleven minutes later is a new incident ...
    let at = T0 + 12 * MINUTE;
    let seen = engine.observe(graph(&topology), &[firing(2, "api", at)], at);
    assert_eq!(seen[0].incident, Some(2));
    // ... and one that started within the window of both connects them.
    let seen = engine.observe(graph(&topology), &[firing(3, "cache", T0 + 9 * MINUTE)], at);
    assert_eq!(seen[0].incident, Some(1));
    assert_eq!(open(&engine).len(), 1);
}

#[test]
fn an_incident_with_firing_alerts_takes_late_alerts_of_its_neighbours() {
    let topology = topology();
    let mut engine = Engine::new(Settings::default(), 1);
    engine.observe(graph(&topology), &[firing(1, "db", T0)], T0);
    // The database is still down an hour later when its caller starts alerting.
    let at = T0 + 60 * MINUTE;
    let seen = engine.observe(graph(&topology), &[firing(2, "api", at)], at);
    assert_eq!(seen[0].incident, Some(1));
}

#[test]
fn alerts_that_stop_being_repeated_expire() {
    let topology = topology();
    let mut engine = Engine::new(Settings::default(), 1);
    let mut event = firing(1, "db", T0);
    event.ends_at = Some(T0 + 4 * MINUTE);
    engine.observe(graph(&topology), &[event.clone()], T0);
    // A repeat moves the expiry.
    event.ends_at = Some(T0 + 5 * MINUTE);
    let seen = engine.observe(graph(&topology), &[event], T0 + MINUTE);
    assert_eq!(seen[0].outcome, Outcome::Refreshed);
    engine.tick(T0 + 4 * MINUTE + 1);
    assert_eq!(engine.firing_alerts(), 1);
    engine.tick(T0 + 5 * MINUTE);
    assert_eq!(engine.firing_alerts(), 0);
    let changes = engine.take_changes();
    assert_eq!(
        changes.expired,
        [(
            AlertKey {
                fingerprint: Fingerprint(1),
                starts_at: T0
            },
            T0 + 5 * MINUTE
        )]
    );
    assert_eq!(engine.incident(1).unwrap().firing_count, 0);
}

#[test]
fn unmapped_alerts_group_by_shared_labels_in_incidents_of_their_own() {
    let topology = topology();
    let settings = Settings::default();
    let label = |pairs: &[(&str, &str)]| settings.unmapped_subject(&labels(pairs));
    let unmapped = |fingerprint, subject: Subject| AlertEvent {
        subject,
        ..firing(fingerprint, "", T0)
    };
    let mut engine = Engine::new(settings.clone(), 1);
    let seen = engine.observe(
        graph(&topology),
        &[
            unmapped(1, label(&[("alertname", "A"), ("instance", "h1")])),
            unmapped(
                2,
                label(&[("alertname", "B"), ("instance", "h1"), ("job", "x")]),
            ),
            unmapped(3, label(&[("alertname", "C"), ("job", "x")])),
            unmapped(4, label(&[("alertname", "D"), ("instance", "h9")])),
            unmapped(5, label(&[("alertname", "D")])),
            firing(6, "db", T0),
        ],
        T0,
    );
    assert_eq!(seen[0].incident, seen[1].incident);
    assert_eq!(seen[0].incident, seen[2].incident);
    assert_ne!(seen[0].incident, seen[3].incident);
    assert_ne!(seen[3].incident, seen[4].incident, "no shared group label");
    assert_ne!(seen[5].incident, seen[0].incident);
    let kinds = open(&engine).iter().map(|i| i.kind).collect::<Vec<_>>();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == IncidentKind::Unmapped)
            .count(),
        3
    );
}

#[test]
fn an_unmapped_incident_keeps_at_most_its_cap_of_label_groups() {
    // Every alert of one unknown service with an `instance` of its own: one incident, which
    // used to take a label pair per alert (and a commit rewrote them all each time).
    let topology = topology();
    let settings = Settings {
        max_incident_label_groups: 8,
        ..Settings::default()
    };
    let mut engine = Engine::new(settings.clone(), 1);
    let events: Vec<AlertEvent> = (1..=200u64)
        .map(|n| AlertEvent {
            subject: settings.unmapped_subject(&labels(&[
                ("service", "unknown"),
                ("instance", &format!("pod-{n}")),
            ])),
            ..firing(n, "", T0)
        })
        .collect();
    let seen = engine.observe(graph(&topology), &events, T0);
    assert!(seen.iter().all(|s| s.incident == seen[0].incident));
    let incident = engine.incident(seen[0].incident.unwrap()).unwrap();
    assert_eq!(incident.groups.len(), 8);
    assert_eq!(incident.alert_count, 200);
    engine.check_invariants().unwrap();
}

#[test]
fn a_restored_engine_continues_where_the_old_one_stopped() {
    let topology = topology();
    let mut engine = Engine::new(Settings::default(), 1);
    engine.observe(
        graph(&topology),
        &[
            firing(1, "db", T0),
            firing(2, "a5", T0),
            firing(3, "api", T0),
        ],
        T0,
    );
    engine.observe(
        graph(&topology),
        &[resolved(3, "api", T0, T0 + 1000)],
        T0 + 1000,
    );
    // What a store would hold.
    let incidents = engine.incidents();
    let alerts = [
        (1, 1, AlertStatus::Firing),
        (2, 2, AlertStatus::Firing),
        (3, 1, AlertStatus::Resolved),
    ]
    .into_iter()
    .map(|(fp, incident, status)| RestoredAlert {
        key: AlertKey {
            fingerprint: Fingerprint(fp),
            starts_at: T0,
        },
        expires_at: None,
        incident,
        status,
        noted_at: (status == AlertStatus::Resolved).then_some(T0 + 1000),
    })
    .collect();
    let mut restored = Engine::restore(Settings::default(), incidents, alerts, 3);
    restored.check_invariants().unwrap();
    let next = [
        firing(4, "web", T0 + 2000),
        firing(5, "gateway", T0 + 2000),
        firing(3, "api", T0),
    ];
    let a = engine.observe(graph(&topology), &next, T0 + 2000);
    let b = restored.observe(graph(&topology), &next, T0 + 2000);
    assert_eq!(a, b);
    assert_eq!(b[2].outcome, Outcome::Stale);
    assert_eq!(engine.incidents(), restored.incidents());
}

// ---- properties ---------------------------------------------------------------------------

/// Fingerprints 0..16 are about service `s{fp % 10}`; 16..20 are unmapped, in two label groups.
fn subject_of(fingerprint: u64) -> Subject {
    if fingerprint < 16 {
        Subject::Service(format!("s{}", fingerprint % 10))
    } else {
        Subject::Unmapped(vec![("job".to_owned(), format!("j{}", fingerprint % 2))])
    }
}

/// Ten services: a chain s0 … s9 with two shortcuts.
fn chain() -> Topology {
    let mut topology = Topology::new();
    for i in 0..10 {
        topology
            .add_service(Service::new(format!("s{i}"), ServiceKind::Service))
            .unwrap();
    }
    for i in 0..9 {
        topology
            .add_dependency(Dependency::new(format!("s{i}"), format!("s{}", i + 1)))
            .unwrap();
    }
    topology
        .add_dependency(Dependency::new("s0", "s5"))
        .unwrap();
    topology
        .add_dependency(Dependency::new("s7", "s2"))
        .unwrap();
    topology
}

/// Groups of deliveries with one timestamp each; within a group fingerprints are distinct.
fn stream() -> impl Strategy<Value = Vec<(Millis, Vec<AlertEvent>)>> {
    let group = (
        0..(8 * MINUTE),
        proptest::collection::btree_map(0u64..20, (any::<bool>(), any::<bool>(), 0..3u8), 1..6),
    );
    proptest::collection::vec(group, 1..25).prop_map(|groups| {
        let mut now = T0;
        groups
            .into_iter()
            .map(|(step, alerts)| {
                now += step;
                let events = alerts
                    .into_iter()
                    .map(|(fingerprint, (fires, restart, expiry))| AlertEvent {
                        fingerprint: Fingerprint(fingerprint),
                        status: if fires || fingerprint % 3 == 0 {
                            AlertStatus::Firing
                        } else {
                            AlertStatus::Resolved
                        },
                        starts_at: if restart { Some(now) } else { None },
                        ends_at: match expiry {
                            0 => None,
                            n => Some(now + Millis::from(n) * 3 * MINUTE),
                        },
                        subject: subject_of(fingerprint),
                    })
                    .collect();
                (now, events)
            })
            .collect()
    })
}

type Membership = BTreeSet<(Vec<String>, Vec<(String, String)>, Vec<u64>, u64)>;

/// Which alerts are together, regardless of incident ids: each open incident's services,
/// firing alerts and alert count.
fn membership(engine: &Engine) -> Membership {
    engine
        .incidents()
        .into_iter()
        .filter(|i| i.status == IncidentStatus::Open)
        .map(|i| {
            let mut firing = engine
                .firing
                .iter()
                .filter(|(_, f)| f.incident == i.id)
                .map(|(fp, _)| fp.0)
                .collect::<Vec<_>>();
            firing.sort_unstable();
            (
                i.services.into_iter().map(|(s, _)| s).collect(),
                i.groups,
                firing,
                i.alert_count,
            )
        })
        .collect()
}

fn run(
    topology: &Topology,
    stream: &[(Millis, Vec<AlertEvent>)],
) -> (Engine, Vec<Observation>, Vec<Change>) {
    let mut engine = Engine::new(Settings::default(), 1);
    let mut observations = Vec::new();
    let mut changes = Vec::new();
    for (now, events) in stream {
        observations.extend(engine.observe(graph(topology), events, *now));
        changes.push(engine.take_changes());
    }
    (engine, observations, changes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_firing_alert_is_in_exactly_one_open_incident(stream in stream()) {
        let topology = chain();
        let mut engine = Engine::new(Settings::default(), 1);
        for (now, events) in &stream {
            engine.observe(graph(&topology), events, *now);
            engine.check_invariants().map_err(TestCaseError::fail)?;
            engine.take_changes();
            engine.check_invariants().map_err(TestCaseError::fail)?;
            let mut seen = BTreeSet::new();
            for incident in open(&engine) {
                for fp in engine.firing.iter().filter(|(_, f)| f.incident == incident.id).map(|(fp, _)| *fp) {
                    prop_assert!(seen.insert(fp), "{fp} in two open incidents");
                }
            }
            prop_assert_eq!(seen.len(), engine.firing_alerts());
        }
        // A day later every alert that had an expiry has expired.
        engine.tick(stream.last().unwrap().0 + 24 * 60 * MINUTE);
        prop_assert!(engine.expiries.is_empty());
        prop_assert!(engine.firing.values().all(|f| f.expires_at.is_none()));
        engine.check_invariants().map_err(TestCaseError::fail)?;
    }

    #[test]
    fn replaying_a_stream_gives_the_same_incidents(stream in stream()) {
        let topology = chain();
        let (first, seen_first, changes_first) = run(&topology, &stream);
        let (second, seen_second, changes_second) = run(&topology, &stream);
        prop_assert_eq!(seen_first, seen_second);
        prop_assert_eq!(changes_first, changes_second);
        prop_assert_eq!(first.incidents(), second.incidents());
    }

    #[test]
    fn the_order_of_simultaneous_alerts_does_not_change_membership(
        (stream, shuffled) in stream().prop_flat_map(|stream| {
            let shuffled = stream
                .iter()
                .map(|(now, events)| (Just(*now), Just(events.clone()).prop_shuffle()))
                .collect::<Vec<_>>();
            (Just(stream), shuffled)
        })
    ) {
        let topology = chain();
        let (first, _, _) = run(&topology, &stream);
        let (second, _, _) = run(&topology, &shuffled);
        prop_assert_eq!(membership(&first), membership(&second));
    }

    #[test]
    fn a_restart_between_any_two_deliveries_changes_nothing(
        stream in stream(),
        cut in any::<prop::sample::Index>(),
    ) {
        let topology = chain();
        let (whole, _, _) = run(&topology, &stream);
        let cut = cut.index(stream.len());
        let (mut before, _, _) = run(&topology, &stream[..cut]);
        // What a store holds: every incident the engine holds and its alerts.
        let incidents = before.incidents();
        let mut alerts = before
            .firing
            .iter()
            .map(|(fp, f)| RestoredAlert {
                key: AlertKey { fingerprint: *fp, starts_at: f.starts_at },
                expires_at: f.expires_at,
                incident: f.incident,
                status: AlertStatus::Firing,
                noted_at: None,
            })
            .collect::<Vec<_>>();
        alerts.extend(before.ended.iter().map(|(fp, e)| RestoredAlert {
            key: AlertKey { fingerprint: *fp, starts_at: e.starts_at },
            expires_at: None,
            incident: e.incident,
            status: AlertStatus::Resolved,
            noted_at: Some(e.noted_at),
        }));
        before.take_changes();
        let mut restored = Engine::restore(Settings::default(), incidents, alerts, before.next_id);
        restored.check_invariants().map_err(TestCaseError::fail)?;
        for (now, events) in &stream[cut..] {
            restored.observe(graph(&topology), events, *now);
            restored.take_changes();
        }
        prop_assert_eq!(membership(&whole), membership(&restored));
    }
}
