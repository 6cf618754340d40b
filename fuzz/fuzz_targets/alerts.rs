//! The three alert shapes (Alertmanager webhook, Alertmanager API v2, plain JSON): parsed as
//! the handlers parse them and validated against the default limits. Whatever the bytes, no
//! panic, and every alert accepted is one the store can hold within the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rootcause::config::IngestConfig;
use rootcause::error::parse_json;
use rootcause::ingest::payload::{self, PlainBatch, PostableAlert, WebhookPayload};

const NOW: i64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&shape, body)) = data.split_first() else {
        return;
    };
    let limits = IngestConfig::default();
    let accepted = match shape % 3 {
        0 => parse_json::<WebhookPayload>(body)
            .ok()
            .and_then(|p| payload::webhook(p, &limits, NOW).ok()),
        1 => parse_json::<Vec<PostableAlert>>(body)
            .ok()
            .and_then(|p| payload::alertmanager_api(p, &limits, NOW).ok()),
        _ => parse_json::<PlainBatch>(body)
            .ok()
            .and_then(|p| payload::plain(p, &limits, NOW).ok()),
    };
    for alert in accepted.into_iter().flatten() {
        assert!(!alert.labels.is_empty());
        assert!(alert.labels.len() <= limits.label_limit);
        for (name, value) in alert.labels.iter().chain(&alert.annotations) {
            assert!(!name.contains('\0') && !value.contains('\0'));
            assert!(name.len() <= limits.label_name_length_limit);
        }
        assert!(
            alert
                .generator_url
                .as_deref()
                .is_none_or(|u| !u.contains('\0'))
        );
        assert!(
            alert
                .ends_at
                .is_none_or(|e| e <= payload::LATEST_TIME + 300_000)
        );
    }
});
