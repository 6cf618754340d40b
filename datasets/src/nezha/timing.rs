//! Time in Nezha's files: nanosecond stamps, and the range a minute file really covers.

/// Nanoseconds in a second.
pub(super) const NANOS: i64 = 1_000_000_000;

/// Width of the slots in which [`extent`] measures a file's density.
const SLOT_NS: i64 = 10 * NANOS;

/// A slot at the edge of a file counts as covered when it holds at least this share of a busy
/// slot (the 90th percentile) of the same file.
const EDGE_DENSITY: f64 = 0.2;

/// The time range a file covers, in ns: from its first to its last 10-second slot holding at
/// least a fifth of a busy slot's events. Files are cut by trace id, so a few spans of traces
/// that began earlier or ended later trail on either side (one reference file spans 170 s but
/// holds over 90 % of its spans in 70 s); counting those tails as covered would make the
/// minutes they touch look nearly idle. Slots inside the range count as covered however quiet
/// they are: a fault may well silence a service mid-file.
pub(super) fn extent(times: impl Iterator<Item = i64> + Clone) -> Option<(i64, i64)> {
    let first = times.clone().min()?;
    let last = times.clone().max()?;
    let slots = usize::try_from((last - first) / SLOT_NS + 1).ok()?;
    let mut counts = vec![0u32; slots];
    let mut bounds = vec![(i64::MAX, i64::MIN); slots];
    for time in times {
        // In range by construction: first <= time <= last.
        let slot = ((time - first) / SLOT_NS) as usize;
        counts[slot] += 1;
        bounds[slot] = (bounds[slot].0.min(time), bounds[slot].1.max(time));
    }
    let mut sorted = counts.clone();
    sorted.sort_unstable();
    let busy = f64::from(sorted[(sorted.len() - 1) * 9 / 10]);
    let dense = |count: &u32| f64::from(*count) >= EDGE_DENSITY * busy;
    let from = counts.iter().position(dense)?;
    let to = counts.iter().rposition(dense)?;
    Some((bounds[from].0, bounds[to].1))
}

/// Nanoseconds, written as an integer (or, from some exporters, a float).
pub(super) fn nanos(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && t.abs() < 9.2e18)
            .map(|t| t as i64)
    })
}
