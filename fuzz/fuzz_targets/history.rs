//! Fault history records (`POST /api/v1/history`, `history import`): no panic while parsing a
//! record or turning it into a case (its candidates, topology and series checked).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rootcause::error::parse_json;
use rootcause_models::history::HistoryRecord;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = parse_json::<HistoryRecord>(data) else {
        return;
    };
    let _ = record.into_case(None, 2);
});
