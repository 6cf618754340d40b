//! Loading any supported dataset format by name.

use std::path::Path;
use std::sync::Arc;

use rootcause_models::case::Case;
use rootcause_topology::Topology;

use crate::{LoadError, jsonl, microirc, nezha, rcaeval, simulator};

/// The dataset formats rootcause reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetFormat {
    /// Nezha's layout (Yu et al., ESEC/FSE 2023): fault lists, metric, trace and log files.
    Nezha,
    /// RCAEval's layout (Pham et al., WWW 2025): `data.csv` and `inject_time.txt` per case.
    Rcaeval,
    /// The output of rootcause's fault simulator.
    Sim,
    /// rootcause's history format: JSON lines of past incidents with their outcome.
    Jsonl,
    /// MicroIRC's Bookinfo fault cases (Zhu et al., JSS 2024): Istio and pod metrics per case.
    Microirc,
}

/// What a load may add to the dataset's own content.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The dependency graph of cases that carry none (RCAEval cases, history records without
    /// one); cases with their own graph keep it.
    pub topology: Option<Arc<Topology>>,
    /// How far below the alerting services the candidates of a history record without a
    /// candidate list reach (the service's `ranking.hops`).
    pub hops: usize,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            topology: None,
            hops: 2,
        }
    }
}

/// Loads every case of the dataset at `path`, with each format's default options, and gives
/// `options.topology` to the cases that have no graph of their own.
pub fn load(
    format: DatasetFormat,
    path: &Path,
    options: &LoadOptions,
) -> Result<Vec<Case>, LoadError> {
    let mut cases = match format {
        DatasetFormat::Nezha => nezha::load(path, &nezha::Options::default())?,
        DatasetFormat::Rcaeval => rcaeval::load(path)?,
        DatasetFormat::Sim => simulator::load(path)?,
        DatasetFormat::Jsonl => jsonl::load(path, options.topology.clone(), options.hops)?,
        DatasetFormat::Microirc => microirc::load(path)?,
    };
    if let Some(topology) = &options.topology {
        for case in cases.iter_mut().filter(|c| c.topology.is_none()) {
            case.topology = Some(topology.clone());
        }
    }
    Ok(cases)
}
