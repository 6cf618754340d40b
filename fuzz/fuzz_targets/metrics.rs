//! Metric posts (`POST /api/v1/incidents/{id}/metrics`, the plain shape and Prometheus's
//! `query_range` shape), parsed and checked as the handler does against the bundled topology.
//! Whatever the bytes, no panic, and every series accepted is well formed: a service of the
//! topology, a name, strictly increasing times with one value each.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rootcause_topology::{Topology, bundled};

/// Built once: parsing the example for every input would make the fuzzer 100 times slower.
static TOPOLOGY: LazyLock<Topology> = LazyLock::new(|| {
    bundled::find(bundled::DEFAULT)
        .expect("the default example")
        .topology()
});

fuzz_target!(|data: &[u8]| {
    let Some((&options, body)) = data.split_first() else {
        return;
    };
    // The first byte picks the query string: none, a service label, a default name, or both.
    let service_label = (options & 1 == 1).then(|| "job".to_owned());
    let name = (options & 2 == 2).then(|| "rate".to_owned());
    let topology = &*TOPOLOGY;
    let Ok(series) = rootcause::fuzzing::metrics(body, service_label, name, topology) else {
        return;
    };
    for one in series {
        assert!(topology.resolve(&one.service).is_some(), "{}", one.service);
        assert!(!one.name.trim().is_empty() && !one.name.contains('\0'));
        assert_eq!(one.times.len(), one.values.len());
        assert!(one.times.windows(2).all(|w| w[0] < w[1]), "{:?}", one.times);
    }
});
