//! Helpers the loaders' tests share.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The shared copy of a real dataset (`shared/datasets/<folder>` beside this checkout or its
/// parent) if `present` holds for it; otherwise `None` with a loud message on stderr, or a
/// failure when `ROOTCAUSE_REQUIRE_E2E=1`. The data has no licence to be copied here, so a test
/// on it runs only where the shared copy sits.
pub(crate) fn real_data_or_skip(
    test: &str,
    dataset: &str,
    folder: &str,
    present: fn(&Path) -> bool,
) -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = [
        manifest.join("../../shared/datasets").join(folder),
        manifest.join("../shared/datasets").join(folder),
    ]
    .into_iter()
    .find(|p| present(p));
    if found.is_none() {
        let message = format!(
            "\n!!!! {test}: the {dataset} dataset is not at ../../shared/datasets/{folder} \
             (relative to {}): SKIPPED !!!!\n",
            env!("CARGO_MANIFEST_DIR")
        );
        // Straight to the stream, not through `eprintln!`, which the test harness captures.
        let _ = std::io::stderr().write_all(message.as_bytes());
        assert!(
            std::env::var("ROOTCAUSE_REQUIRE_E2E").as_deref() != Ok("1"),
            "ROOTCAUSE_REQUIRE_E2E=1 but the dataset is missing"
        );
    }
    found
}
