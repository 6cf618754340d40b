//! Generated topologies with the shape of real estates: a few gateways, tiers of services that
//! call deeper tiers, and shared databases, caches and queues that many services use (a few of
//! them very many). Deterministic: the same [`Shape`] always gives the same document.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rootcause_topology::{Dependency, Service, ServiceKind, Topology, TopologyDocument};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Number of services of every kind.
    pub services: usize,
    /// Number of dependencies wanted. At least enough to connect everything is always generated.
    pub dependencies: usize,
    /// Random seed.
    pub seed: u64,
}

impl Shape {
    /// `services` services with three dependencies each on average.
    pub fn with_services(services: usize, seed: u64) -> Shape {
        Shape {
            services,
            dependencies: services * 3,
            seed,
        }
    }
}

/// Share of edges added beyond the connecting ones that go to a datastore.
const DATASTORE_EDGE_SHARE: f64 = 0.35;

/// Generates a topology document of the given shape.
///
/// Roles: 0.5 % gateways, 5 % databases, 2 % caches, 0.5 % queues (each at least one), the rest
/// application services in 2–5 tiers. Every tier-1 service is called by a gateway, every deeper
/// service by the tier above, every datastore by some service; the remaining edges go from a
/// service to a deeper tier or to a datastore, datastores picked with a strong skew so that a few
/// are shared by hundreds of callers, as real shared databases are. The graph is acyclic.
pub fn generate(shape: &Shape) -> TopologyDocument {
    assert!(
        shape.services >= 8,
        "a synthetic topology needs at least 8 services"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(shape.seed);
    let n = shape.services;
    let gateways = (n / 200).max(1);
    let databases = (n / 20).max(1);
    let caches = (n / 50).max(1);
    let queues = (n / 200).max(1);
    let applications = n - gateways - databases - caches - queues;
    let tiers = ((applications as f64).log10().ceil() as usize).clamp(2, 5);
    let width = n.to_string().len();

    let mut services = Vec::with_capacity(n);
    let mut add = |prefix: &str, kind: ServiceKind, count: usize| -> Vec<usize> {
        let first = services.len();
        for i in 0..count {
            services.push(Service::new(format!("{prefix}-{i:0width$}"), kind));
        }
        (first..first + count).collect()
    };
    let gateway_ids = add("gateway", ServiceKind::Gateway, gateways);
    let app_ids = add("svc", ServiceKind::Service, applications);
    let mut datastore_ids = add("db", ServiceKind::Database, databases);
    datastore_ids.extend(add("cache", ServiceKind::Cache, caches));
    datastore_ids.extend(add("queue", ServiceKind::Queue, queues));
    // Interleave kinds so the heavily shared datastores are a mix of databases, caches and queues.
    shuffle(&mut datastore_ids, &mut rng);

    let tier_of = |app_index: usize| app_index * tiers / applications;
    let tier_members: Vec<Vec<usize>> = (0..tiers)
        .map(|t| {
            (0..applications)
                .filter(|&i| tier_of(i) == t)
                .map(|i| app_ids[i])
                .collect()
        })
        .collect();

    let mut edges: Vec<(usize, usize)> = Vec::with_capacity(shape.dependencies.max(n));
    let mut seen: HashSet<(usize, usize)> = HashSet::with_capacity(shape.dependencies.max(n));
    let mut connect = |caller: usize, callee: usize, edges: &mut Vec<(usize, usize)>| {
        if caller != callee && seen.insert((caller, callee)) {
            edges.push((caller, callee));
        }
    };

    // Everything reachable: gateways → tier 0 → tier 1 → ... and some service → each datastore.
    for (i, &service) in tier_members[0].iter().enumerate() {
        connect(gateway_ids[i % gateways], service, &mut edges);
    }
    for t in 1..tiers {
        for &service in &tier_members[t] {
            let above = &tier_members[t - 1];
            connect(above[rng.gen_range(0..above.len())], service, &mut edges);
        }
    }
    for &store in &datastore_ids {
        connect(app_ids[rng.gen_range(0..applications)], store, &mut edges);
    }

    let skewed_datastore = |rng: &mut ChaCha8Rng| {
        let u: f64 = rng.r#gen();
        datastore_ids[((u * u * u) * datastore_ids.len() as f64) as usize]
    };
    let mut attempts = 0;
    while edges.len() < shape.dependencies && attempts < shape.dependencies * 20 {
        attempts += 1;
        let caller_index = rng.gen_range(0..applications);
        let caller = app_ids[caller_index];
        let tier = tier_of(caller_index);
        let callee = if tier + 1 == tiers || rng.gen_bool(DATASTORE_EDGE_SHARE) {
            skewed_datastore(&mut rng)
        } else {
            let deeper = &tier_members[rng.gen_range(tier + 1..tiers)];
            deeper[rng.gen_range(0..deeper.len())]
        };
        connect(caller, callee, &mut edges);
    }

    let dependencies = edges
        .into_iter()
        .map(|(caller, callee)| {
            Dependency::new(services[caller].name.clone(), services[callee].name.clone())
        })
        .collect();
    TopologyDocument {
        services,
        dependencies,
    }
}

/// [`generate`], built into a [`Topology`].
pub fn topology(shape: &Shape) -> Topology {
    Topology::from_document(generate(shape)).expect("generated topologies are valid")
}

fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.gen_range(0..=i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_topology_other_seed_other_topology() {
        let shape = Shape::with_services(500, 7);
        assert_eq!(generate(&shape), generate(&shape));
        assert_ne!(generate(&shape), generate(&Shape { seed: 8, ..shape }));
    }

    #[test]
    fn shape_is_as_asked_and_everything_is_reachable_from_a_gateway() {
        let shape = Shape {
            services: 2_000,
            dependencies: 6_000,
            seed: 1,
        };
        let topology = topology(&shape);
        assert_eq!(topology.service_count(), 2_000);
        assert_eq!(topology.dependency_count(), 6_000);
        let gateways: Vec<&str> = topology
            .services()
            .filter(|s| s.kind == ServiceKind::Gateway)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(gateways.len(), 10);
        let mut reached: HashSet<&str> = gateways.iter().copied().collect();
        for gateway in &gateways {
            reached.extend(
                topology
                    .callees(gateway, usize::MAX)
                    .unwrap()
                    .iter()
                    .map(|r| r.service),
            );
        }
        assert_eq!(reached.len(), 2_000);
    }

    #[test]
    fn a_few_datastores_are_shared_widely() {
        let topology = topology(&Shape::with_services(2_000, 3));
        let mut fan_in: Vec<usize> = topology
            .services()
            .filter(|s| {
                matches!(
                    s.kind,
                    ServiceKind::Database | ServiceKind::Cache | ServiceKind::Queue
                )
            })
            .map(|s| topology.callers(&s.name, 1).unwrap().len())
            .collect();
        fan_in.sort_unstable();
        let busiest = *fan_in.last().unwrap();
        let median = fan_in[fan_in.len() / 2];
        assert!(
            busiest >= 10 * median.max(1),
            "busiest {busiest}, median {median}"
        );
    }
}
