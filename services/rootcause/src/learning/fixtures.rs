//! Labelled history for tests: incidents simulated on the bundled topology, each resolved by
//! its true root cause and action.

use std::sync::Arc;

use rootcause_datasets::simulator;
use rootcause_models::history::{HistoryRecord, Outcome};

/// `cases` simulated incidents of seed `seed` on the bundled topology, as history records.
pub(crate) fn simulated_history(cases: usize, seed: u64) -> Vec<HistoryRecord> {
    let topology = rootcause_topology::bundled::find(rootcause_topology::bundled::DEFAULT)
        .expect("the default topology is bundled")
        .topology();
    let shared = Arc::new(topology.clone());
    let options = simulator::Options {
        cases,
        seed,
        ..simulator::Options::default()
    };
    simulator::simulate(&topology, "test", &options)
        .into_iter()
        .map(|simulated| {
            let case = simulated.into_case(Some(shared.clone()));
            let label = case.label.clone().expect("simulated cases are labelled");
            let outcome = Outcome {
                root_cause: label.root_cause,
                fault_type: label.fault_type,
                action: label.action,
                worked: Some(true),
                time_to_mitigate_s: Some(600.0),
            };
            HistoryRecord::from_case(&case, outcome)
        })
        .collect()
}
