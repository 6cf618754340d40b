//! Runbook catalogues (`PUT /api/v1/runbooks`, `actions.runbooks`): no panic, and an accepted
//! catalogue is accepted again from its own YAML.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rootcause_models::actions::Catalogue;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(catalogue) = Catalogue::parse(text) {
        let again = Catalogue::parse(&catalogue.to_yaml())
            .expect("an accepted catalogue's own YAML is accepted");
        assert_eq!(catalogue, again);
    }
});
