//! The allocator's own account of the heap, published as gauges, so that an operator (and
//! `rootcause bench memory`) can tell memory the server holds from memory the allocator keeps.
//!
//! The binary's global allocator is jemalloc (`src/main.rs`), also in place of the C library's
//! `malloc`: its statistics cover Rust's allocations and SQLite's page caches alike.

use std::time::Duration;

use rootcause::telemetry::names;
use tikv_jemalloc_ctl::{epoch, stats};

/// How often the gauges are refreshed.
const EVERY: Duration = Duration::from_secs(5);

/// The allocator's statistics at one moment, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes in live allocations.
    pub allocated: u64,
    /// Bytes of physical memory the allocator holds: live allocations, the free space of
    /// partly used pages, freed pages not yet given back, and its own metadata.
    pub resident: u64,
}

/// Reads the allocator's statistics (they are refreshed when its epoch advances).
pub fn read() -> anyhow::Result<HeapStats> {
    epoch::advance().map_err(|e| anyhow::anyhow!("jemalloc epoch: {e}"))?;
    let allocated = stats::allocated::read().map_err(|e| anyhow::anyhow!("jemalloc stats: {e}"))?;
    let resident = stats::resident::read().map_err(|e| anyhow::anyhow!("jemalloc stats: {e}"))?;
    Ok(HeapStats {
        allocated: allocated as u64,
        resident: resident as u64,
    })
}

/// Sets [`names::HEAP_ALLOCATED`] and [`names::HEAP_RESIDENT`] now and every few seconds, for
/// as long as the runtime runs.
pub async fn publish() {
    let mut ticks = tokio::time::interval(EVERY);
    loop {
        ticks.tick().await;
        match read() {
            Ok(heap) => {
                metrics::gauge!(names::HEAP_ALLOCATED).set(heap.allocated as f64);
                metrics::gauge!(names::HEAP_RESIDENT).set(heap.resident as f64);
            }
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "no allocator statistics");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Other tests allocate and free in parallel, so only what this one holds is certain.
    #[test]
    fn the_allocator_counts_a_live_allocation() {
        let block = vec![1u8; 64 << 20];
        let heap = read().unwrap();
        assert!(heap.allocated >= 64 << 20, "{heap:?}");
        assert!(heap.resident >= heap.allocated, "{heap:?}");
        drop(block);
    }
}
