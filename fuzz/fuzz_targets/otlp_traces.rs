//! OTLP/JSON trace requests (`POST /api/v1/traces`, `topology import-traces`): no panic while
//! parsing, matching spans across requests, and learning calls from them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rootcause_topology::ObservedCalls;
use rootcause_topology::otlp::{TraceReader, parse_each};

fuzz_target!(|data: &[u8]| {
    let mut reader = TraceReader::new();
    for request in parse_each(data).flatten() {
        let _ = reader.add(&request);
    }
    let mut calls = ObservedCalls::default();
    reader.learn(&mut calls);
});
