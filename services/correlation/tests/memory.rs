//! The engine's memory under churn at a steady size: alerts keep arriving and ending, the number
//! firing and the number remembered as ended stay the same, and so must the heap.
//!
//! A test binary of its own, because it counts every allocation of the process.

use std::alloc::System;

use cap::Cap;
use rootcause_correlation::engine::Graph;
use rootcause_correlation::{
    AlertEvent, AlertStatus, Engine, Fingerprint, Millis, Settings, Subject,
};
use rootcause_topology::{Service, ServiceKind, Topology};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

const T0: Millis = 1_800_000_000_000;
/// Alerts firing at any time, and ended alerts remembered (the cap).
const STEADY: u64 = 20_000;
/// Alerts fired (and as many ended) per delivery.
const BATCH: u64 = 100;

fn event(fingerprint: u64, status: AlertStatus, starts_at: Millis, now: Millis) -> AlertEvent {
    AlertEvent {
        fingerprint: Fingerprint(fingerprint),
        status,
        starts_at: Some(starts_at),
        ends_at: (status == AlertStatus::Resolved).then_some(now),
        subject: Subject::Service("db".to_owned()),
    }
}

/// Before: the firing and ended alerts were hash tables. Their erased entries leave tombstones;
/// once those had used up the free slots the tables doubled although their size was steady
/// (in the soak, a step of ~90 MB after 8.5 M alerts at 18,000/s).
#[test]
fn the_heap_stays_flat_while_alerts_churn_at_a_steady_count() {
    let mut topology = Topology::new();
    topology
        .add_service(Service::new("db", ServiceKind::Service))
        .unwrap();
    let graph = Graph {
        version: Some(1),
        topology: &topology,
    };
    let settings = Settings {
        max_remembered_ended: STEADY as usize,
        ..Settings::default()
    };
    let mut engine = Engine::new(settings, 1);
    // One delivery every 10 ms: new alerts fire, and those fired STEADY alerts ago end.
    let mut heap_after_warm_up = 0;
    let mut largest = 0;
    let rounds = 25 * STEADY / BATCH;
    for round in 0..rounds {
        let now = T0 + round as Millis * 10;
        let start = |n: u64| T0 + (n / BATCH) as Millis * 10;
        let mut events = Vec::with_capacity(2 * BATCH as usize);
        for n in round * BATCH..(round + 1) * BATCH {
            events.push(event(n, AlertStatus::Firing, now, now));
            if n >= STEADY {
                events.push(event(
                    n - STEADY,
                    AlertStatus::Resolved,
                    start(n - STEADY),
                    now,
                ));
            }
        }
        engine.observe(graph, &events, now);
        drop(engine.take_changes());
        drop(events);
        // Warm-up: the firing set fills, then the ended set reaches its cap.
        if round == 3 * STEADY / BATCH {
            heap_after_warm_up = ALLOCATOR.allocated();
        } else if round > 3 * STEADY / BATCH {
            largest = largest.max(ALLOCATOR.allocated());
        }
    }
    assert_eq!(engine.firing_alerts() as u64, STEADY);
    let growth = largest as f64 / heap_after_warm_up as f64 - 1.0;
    assert!(
        growth < 0.10,
        "the heap grew {:.0} % after warm-up ({} → {} bytes) while {STEADY} alerts fired and \
         {STEADY} ended alerts were remembered throughout",
        growth * 100.0,
        heap_after_warm_up,
        largest
    );
}
