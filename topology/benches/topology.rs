//! Topology load and query times on a generated estate of 10,000 services and 30,000 dependencies.
//!
//! Targets (DESIGN §11 / issue 2): load ≤ 200 ms, 2-hop query ≤ 1 ms, blast radius ≤ 5 ms.
//! Run: `cargo bench -p rootcause-topology --bench topology`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rootcause_datasets::synthetic::{self, Shape};
use rootcause_topology::{Format, ServiceKind, Topology, to_json, to_yaml};

const SHAPE: Shape = Shape {
    services: 10_000,
    dependencies: 30_000,
    seed: 42,
};

fn topology_benches(c: &mut Criterion) {
    let document = synthetic::generate(&SHAPE);
    let json = to_json(&document);
    let yaml = to_yaml(&document);
    let topology = Topology::from_document(document).unwrap();
    assert_eq!(topology.service_count(), SHAPE.services);
    assert_eq!(topology.dependency_count(), SHAPE.dependencies);

    // A fixed, spread-out sample of services to query, so no single lucky node sets the figure.
    let mut names: Vec<String> = topology.services().map(|s| s.name.clone()).collect();
    names.sort();
    let sample: Vec<&str> = names.iter().step_by(97).map(String::as_str).collect();
    // The datastore with the most callers: the widest blast radius in the estate.
    let busiest_store = topology
        .services()
        .filter(|s| s.kind != ServiceKind::Service && s.kind != ServiceKind::Gateway)
        .max_by_key(|s| topology.blast_radius(&s.name).unwrap().len())
        .unwrap()
        .name
        .clone();
    let gateway = topology.entry_points()[0].to_owned();

    let mut load = c.benchmark_group("load 10k services / 30k dependencies");
    load.sample_size(20)
        .measurement_time(Duration::from_secs(10));
    load.bench_function("json", |b| {
        b.iter(|| Topology::parse(black_box(&json), Format::Json).unwrap())
    });
    load.bench_function("yaml", |b| {
        b.iter(|| Topology::parse(black_box(&yaml), Format::Yaml).unwrap())
    });
    load.finish();

    let mut query = c.benchmark_group("query 10k services / 30k dependencies");
    let mut i = 0;
    let mut next = || {
        i = (i + 1) % sample.len();
        sample[i]
    };
    query.bench_function("callers within 2 hops", |b| {
        b.iter(|| topology.callers(black_box(next()), 2).unwrap())
    });
    query.bench_function("callees within 2 hops", |b| {
        b.iter(|| topology.callees(black_box(next()), 2).unwrap())
    });
    query.bench_function("neighbourhood within 2 hops", |b| {
        b.iter(|| topology.neighbourhood(black_box(next()), 2).unwrap())
    });
    query.bench_function("blast radius (sampled services)", |b| {
        b.iter(|| topology.blast_radius(black_box(next())).unwrap())
    });
    query.bench_function("blast radius (busiest datastore)", |b| {
        b.iter(|| topology.blast_radius(black_box(&busiest_store)).unwrap())
    });
    query.bench_function("hop distance", |b| {
        b.iter(|| {
            topology
                .hop_distance(black_box(next()), black_box(next()))
                .unwrap()
        })
    });
    query.bench_function(
        "propagation paths datastore→gateway (≤5 edges, 10 paths)",
        |b| {
            b.iter(|| {
                topology
                    .propagation_paths(black_box(&busiest_store), black_box(&gateway), 5, 10)
                    .unwrap()
            })
        },
    );
    query.finish();

    let mut whole = c.benchmark_group("whole graph 10k services / 30k dependencies");
    whole.sample_size(10);
    whole.bench_function("single points of failure", |b| {
        b.iter(|| topology.single_points_of_failure())
    });
    whole.bench_function("digest", |b| b.iter(|| topology.digest()));
    whole.finish();
}

criterion_group!(benches, topology_benches);
criterion_main!(benches);
