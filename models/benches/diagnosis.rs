//! The CPU of one ranking of an alert storm, without the server around it: evidence extracted
//! from the case, then the bundled model's diagnosis (scores, fault classes, explanations: of
//! every candidate, and of the 50 a server lists), on
//! a generated estate of 1,000 services where 200 services alert and their callees up to two
//! hops (967 services) are candidates, as in `rootcause bench ranking`.
//!
//! `bench ranking` measures time to hypothesis end to end (HTTP, commit, ranking, event
//! delivery) on a shared 2-core machine, where its figures move by tens of percent from run to
//! run; this bench isolates the ranking's own work, so a change to it can be judged.
//! Run: `cargo bench -p rootcause-models --bench diagnosis`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rootcause_datasets::synthetic::{self, Shape};
use rootcause_models::case::{Case, CaseAlert};
use rootcause_models::evidence;
use rootcause_models::rankers;
use rootcause_topology::{ServiceKind, Topology};

/// The server's allocator (see `tools/src/main.rs`): a ranking allocates thousands of small
/// vectors, and the C library's allocator would make them cost what they do not in the server.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Alerting services of the storm.
const ALERTING: usize = 200;

/// A storm the way `rootcause bench ranking` sends one: a datastore with a handful of direct
/// callers (at least three) and at least 200 services within three hops above it, then those
/// callers nearest first, one alert each.
fn storm_case(topology: Arc<Topology>) -> Case {
    let callers = |name: &str| {
        let mut reach: Vec<(usize, String)> = topology
            .callers(name, 3)
            .unwrap()
            .into_iter()
            .map(|r| (r.hops, r.service.to_owned()))
            .collect();
        reach.sort();
        reach
    };
    let (root, reach) = topology
        .services()
        .filter(|s| matches!(s.kind, ServiceKind::Database | ServiceKind::Cache))
        .map(|s| (s.name.clone(), callers(&s.name)))
        .filter(|(_, reach)| reach.len() + 1 >= ALERTING)
        .map(|(name, reach)| {
            let direct = reach.iter().filter(|(hops, _)| *hops == 1).count();
            (direct, name, reach)
        })
        .filter(|(direct, _, _)| *direct >= 3)
        .min_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)))
        .map(|(_, name, reach)| (name, reach))
        .expect("a datastore with enough callers");
    let mut alerting = vec![root];
    alerting.extend(reach.into_iter().map(|(_, s)| s).take(ALERTING - 1));
    let anchor = 1_700_000_000;
    let alerts = alerting
        .iter()
        .enumerate()
        .map(|(i, service)| CaseAlert {
            service: Some(service.clone()),
            name: ["DatabaseDown", "HighLatency", "HighErrorRate"][i.min(1) + i % 2].to_owned(),
            signal: ["availability", "latency", "errors"][i.min(1) + i % 2].to_owned(),
            severity: "critical".to_owned(),
            starts_at: anchor + i as i64,
            ends_at: None,
            labels: Default::default(),
            count: 1,
        })
        .collect();
    Case {
        id: "storm".to_owned(),
        system: "generated".to_owned(),
        anchor,
        candidates: evidence::candidates(&topology, &alerting, 2),
        alerts,
        topology: Some(topology),
        ..Case::default()
    }
}

fn diagnosis_benches(c: &mut Criterion) {
    let document = synthetic::generate(&Shape::with_services(1_000, 7));
    let topology = Arc::new(Topology::from_document(document).unwrap());
    let case = storm_case(topology);
    let ranker = rankers::default_ranker();
    let settings = ranker
        .evidence_settings()
        .expect("the bundled model reads evidence");
    let diagnosis = ranker.diagnose(&case);
    assert_eq!(diagnosis.hypotheses.len(), case.candidates.len());
    println!(
        "{} candidates, {} alerting; top hypothesis {}",
        case.candidates.len(),
        case.alerts.len(),
        diagnosis.hypotheses[0].service
    );

    let mut group = c.benchmark_group("storm over 1,000 services");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("evidence", |b| {
        b.iter(|| evidence::extract(black_box(&case), &settings))
    });
    let extracted = evidence::extract(&case, &settings);
    group.bench_function("diagnosis of the evidence", |b| {
        b.iter(|| ranker.diagnose_evidence(black_box(&extracted)))
    });
    group.bench_function("evidence and diagnosis", |b| {
        b.iter(|| ranker.diagnose(black_box(&case)))
    });
    // What the server does: its rankings list the 50 most likely (`ranking.hypotheses_listed`).
    group.bench_function("evidence and the 50 listed hypotheses", |b| {
        b.iter(|| {
            let extracted = evidence::extract(black_box(&case), &settings);
            ranker.diagnose_evidence_listing(&extracted, 50)
        })
    });
    group.finish();
}

criterion_group!(benches, diagnosis_benches);
criterion_main!(benches);
