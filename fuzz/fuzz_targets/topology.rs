//! Topology documents, YAML and JSON (`PUT /api/v1/topology`, `serve --topology`): no panic,
//! and a graph that is accepted survives its own document unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rootcause_topology::{Format, Topology, to_json};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Yaml, Format::Json] {
        if let Ok(topology) = Topology::parse(text, format) {
            let again = Topology::parse(&to_json(&topology.to_document()), Format::Json)
                .expect("an accepted topology's own document is accepted");
            assert_eq!(topology.digest(), again.digest());
        }
    }
});
