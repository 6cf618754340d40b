//! Change events (`POST /api/v1/changes`: one object or an array), parsed and checked as the
//! handler does against the default limits and the bundled topology. Whatever the bytes, no
//! panic, and every event accepted is one either database can hold within the limits.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rootcause::config::IngestConfig;
use rootcause::ingest::payload::LATEST_TIME;
use rootcause_topology::{Topology, bundled};

/// Built once: parsing the example for every input would make the fuzzer 100 times slower.
static TOPOLOGY: LazyLock<Topology> = LazyLock::new(|| {
    bundled::find(bundled::DEFAULT)
        .expect("the default example")
        .topology()
});

const NOW: i64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let limits = IngestConfig::default();
    let topology = &*TOPOLOGY;
    let Ok(changes) = rootcause::fuzzing::changes(data, &limits, topology, NOW) else {
        return;
    };
    assert!(changes.len() <= limits.max_changes_per_request);
    for change in changes {
        assert!(!change.service.trim().is_empty());
        assert!(change.at <= LATEST_TIME);
        if let Some(mapped) = &change.mapped {
            assert!(topology.resolve(mapped).is_some(), "mapped to a service");
        }
        let texts = [
            Some(&change.service),
            Some(&change.version),
            change.author.as_ref(),
            change.link.as_ref(),
            change.description.as_ref(),
        ];
        for text in texts.into_iter().flatten() {
            assert!(!text.contains('\0'));
            assert!(text.len() <= limits.annotation_value_length_limit);
        }
    }
});
