//! Loading any supported dataset format by name.

use std::path::Path;

use rootcause_models::case::Case;

use crate::{LoadError, nezha, rcaeval, simulator};

/// The dataset formats rootcause reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetFormat {
    /// Nezha's layout (Yu et al., ESEC/FSE 2023): fault lists, metric, trace and log files.
    Nezha,
    /// RCAEval's layout (Pham et al., WWW 2025): `data.csv` and `inject_time.txt` per case.
    Rcaeval,
    /// The output of rootcause's fault simulator.
    Sim,
}

/// Loads every case of the dataset at `path`, with each format's default options.
pub fn load(format: DatasetFormat, path: &Path) -> Result<Vec<Case>, LoadError> {
    match format {
        DatasetFormat::Nezha => nezha::load(path, &nezha::Options::default()),
        DatasetFormat::Rcaeval => rcaeval::load(path),
        DatasetFormat::Sim => simulator::load(path),
    }
}
