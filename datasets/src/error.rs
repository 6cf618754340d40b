//! The one error every loader returns.

use std::path::PathBuf;

/// Why a dataset could not be loaded. Problems confined to one case or one row (a missing
/// minute file, a malformed line) are not errors: they become notes on the case.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    // The cause is in the message and deliberately not a `source`: callers print the chain
    // (`{:#}`), which would say it twice.
    #[error("{}: {error}", path.display())]
    Io {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        error: std::io::Error,
    },
    /// A file is not in the expected format.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong and where (line, column).
        message: String,
    },
}

impl LoadError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> LoadError {
        LoadError::Io {
            path: path.into(),
            error: source,
        }
    }

    /// A format error in `path`.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> LoadError {
        LoadError::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Warns on stderr of each case of a `dataset` under `root` that could not be read, with why,
/// and of how many of all (`skipped` and `read`) that was: a loader that returns only the
/// cases must still say what it left out.
pub(crate) fn warn_skipped(
    dataset: &str,
    root: &std::path::Path,
    skipped: &[(String, LoadError)],
    read: usize,
) {
    if skipped.is_empty() {
        return;
    }
    for (id, error) in skipped {
        eprintln!("warning: {dataset} case {id} skipped: {error}");
    }
    eprintln!(
        "warning: {} of {} {dataset} cases under {} skipped (could not be read)",
        skipped.len(),
        skipped.len() + read,
        root.display()
    );
}
