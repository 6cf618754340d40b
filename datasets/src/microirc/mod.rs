//! MicroIRC's "dataset E" (Zhu et al., "MicroIRC: Instance-level Root Cause Localization for
//! Microservice Systems", JSS 2024): fault cases on Istio's Bookinfo sample, in the layout of the
//! `WHU-AISE/MicroIRC` repository's `data/data3/`:
//!
//! ```text
//! data/label.txt                 one label block per case, times in UTC+8
//! data/<case>/bookinfo/*.csv     the metric files of one 900 s window, 5 s steps
//! data/<case>/node/node.csv      per-node usage (not read)
//! ```
//!
//! [`load`] takes the dataset folder (holding `data/label.txt`) or the `data/` folder itself and
//! turns every folder `data/<case>/` named `<root>_<fault>_<n>` into a [`Case`] (other folders
//! are not cases and are ignored):
//!
//! - **id**: the folder name; cases come back sorted by id. **system**: `bookinfo`.
//! - **Folder names**: `<root>` is a lowercase name (letters, digits, `-`) optionally ending in
//!   `-v<digits>`, up to the first `_`; `<n>` is the digits after the last `_`; the fault is the
//!   rest (`cpu_load`, `mem_load`, `net_latency`, may hold `_`).
//! - **Label**: from the case's block in `data/label.txt`: a line that is the case's name, then
//!   lines such as `<YYYY-MM-DD HH:MM:SS> start create.` Its `root_cause` is the **workload**:
//!   the label token with `-v1` added when it has no `-v<digits>` (`details` → `details-v1`,
//!   `reviews-v2` stays), as the deployments and every column are named. Its `fault_type` is the
//!   fault part of the name. A block whose `deployment.apps/<w> scaled` lines name another
//!   deployment leaves a note; blocks without a case folder are ignored.
//! - **Anchor**: `start create` read as **UTC+8** (Asia/Shanghai, as upstream's `MicroIRC.py`
//!   reads it) and shifted to UTC: `start create − 8 h`, in unix seconds. All 19 characters of
//!   the time are used (upstream's `line[:18]` drops the last digit of the seconds).
//! - **Unlabelled cases**: a folder without a block (`reviews-v2_cpu_load_1` has none), or whose
//!   block has no readable `start create`, is loaded with no label and a note saying it is
//!   unlabelled and not scored. Its anchor is the **midpoint of the data window** (the first and
//!   last sample time of its files), and the note says so: an onset guessed from the label
//!   schedule of the other cases (window start + 360 s) would be an invented label.
//! - **Times**: every timestamp is `YYYY-MM-DD HH:MM:SS`, naive UTC. The `timestamp` column is
//!   first in some files and last in others: it is found by name. A sample's time is the end of
//!   the period it covers (see [`rootcause_models::case::Series`]): the Istio rates stamped `t`
//!   are `irate` over the minute before `t`, and keep `t`.
//! - **Rows**: sorted by time (`svc_metric.csv`, not read, is out of order in 13 cases); a row
//!   repeating an earlier time is dropped (the first in file order stays); a row whose field
//!   count differs from the header's is dropped (`reviews-v3_mem_load_1`'s `instance.csv` has 60
//!   rows of 22 fields under a 25-field header: the absent pod's `-1` cells are missing there, so
//!   its later columns are shifted and no cell can be trusted), and so is a row with a malformed
//!   timestamp. Each file keeps its own time grid and files are joined by timestamp, never by row
//!   index: rows are missing here and there (13 cases have holes of 10–190 s). Every such
//!   problem, and every gap in a file's 5 s grid, is a note on the case.
//! - **Cells**: empty cells are no data (no request in the step), `NaN`; so are malformed and
//!   infinite numbers, with a note.
//! - **Candidates**: the workloads named by the columns of `latency.csv` (`<w>&p50`) and
//!   `svc_qps.csv` (`<w>`), sorted, less `istio-ingressgateway`, `unknown` and any `*-edge*`
//!   deployment (idle, always 0). If the labelled root cause is not among them the case gets a
//!   note; it is not added.
//!
//! # Series
//!
//! Every series is a [`Source::Metric`](rootcause_models::case::Source::Metric) of a workload. Families are set here, never by
//! [`Family::classify`]: pod names hold random strings that could spell anything.
//!
//! - `latency.csv` `<w>&p50|p90|p99` (server side, reporter = destination, ms): `latency_p50_ms`,
//!   `latency_p90_ms`, `latency_p99_ms` ([`Family::Latency`]);
//! - `success_rate.csv` `<w>` (fraction of non-5xx responses): `success_rate` ([`Family::Errors`]);
//! - `svc_qps.csv` `<w>` (requests/s): `requests_per_s` ([`Family::Traffic`]);
//! - `instance.csv`, per pod, for the pods whose workload (the pod name without its last two `-`
//!   fields: `details-v1-b788479c5-grnsf` → `details-v1`) is a candidate: `<pod>_cpu` as
//!   `cpu_millicores{pod="<pod>"}` ([`Family::Cpu`]), `<pod>_memory` as `memory_mb{pod="<pod>"}`
//!   ([`Family::Memory`]) and `<pod>_network` as `transmit_packets_per_s{pod="<pod>"}`
//!   ([`Family::Network`]), the **square root** of the stored value, which the collector's query
//!   squared. A stored `-1` means the pod does not exist at that step: `NaN` (any other
//!   negative value, which none of the three can be, is `NaN` too, with a note).
//!
//! **Caveat**: the experiment scales the labelled deployment from 1 to 2 replicas 60 s after the
//! injection and back at 240 s, so the root cause's workload, and only it, gains a pod whose
//! series are `NaN` before the anchor and appear about a minute after (in all 184 labelled
//! cases the root cause is the one workload with a pod absent in the 5 minutes before the anchor
//! and present in the 200 s after; in 12 `mem_load` cases the original pod also vanishes at the
//! scale-down). A ranker that counts pods or reads the pattern of `NaN`s rather than the values
//! would read the answer, not the fault: so pods absent from a window's first sample are left
//! out (noted on the case), and the rankers draw no evidence from missing samples.
//!
//! **Edge series** from `call.csv` `<src>_<dst>&p50|p90|p99`: the duration of calls as the
//! caller's sidecar measures it, in ms (a delay injected at `details-v1` shows in `productpage-v1
//! → details-v1` p50, about 1 s, while `details-v1`'s own server-side latency stays at 0.3 ms).
//! The header is split at the `_` that separates two known names (candidates,
//! `istio-ingressgateway`, `unknown`): workload names hold `-`. Calls from `unknown` are skipped.
//! Per edge and quantile `q`, `callee_ms_<q>`: the call quantile.
//!
//! No `network_ms` (time between caller and callee) is derived: the call quantile minus the
//! callee's own server-side quantile would be it for one request, but quantiles of two histograms
//! scraped a moment apart do not subtract: when the latency distribution is bimodal (a fault's
//! slow requests beside normal ones) the difference swings by ±900 ms from one step to the next
//! on edges that carry no delay at all. The rankers compare the two series' rises instead (a call
//! that slowed while the callee's own latency did not).
//!
//! # Not read
//!
//! - `svc_metric.csv` and `instances_num.csv`: the scripted scale-up of the labelled deployment
//!   (1 → 2 → 1 replicas during every fault) doubles its replica count, and its usage and limits
//!   summed over replicas, whatever the fault: `svc_metric`'s `mem_usage` of the root cause
//!   doubles at +60 s even in `net_latency` cases. Those series name the answer rather than
//!   show the fault.
//! - `resource.csv`: namespace-wide totals, of no service.
//! - `node/node.csv`: per-node usage; hosts are not candidates and no fault is on a node.
//!
//! # Topology
//!
//! From `graph.csv`: the rows whose source and destination are both candidates or
//! `istio-ingressgateway`, over all its snapshots (the call edges come from cumulative counters
//! and are the same in every one). Pod → node placement rows and rows naming `unknown` are
//! skipped. Services: each candidate (kind `service`) and the gateway (kind `gateway`) when an
//! edge names it; edges have source `servicegraph` and no observed attributes. Cases whose
//! graphs are equal share one [`Topology`]. A case without a readable `graph.csv` has none.
//!
//! No alerts, changes or normal windows: the data has none, and the window before the anchor
//! (about 6 minutes) serves as the baseline.
//!
//! # Errors
//!
//! Loading fails when `label.txt` is missing or unreadable, when there is no case folder, or when
//! no case folder could be read. A case folder that cannot be read at all (neither `latency.csv`
//! nor `svc_qps.csv` names a candidate, or an unlabelled case without samples) is skipped with a
//! warning on stderr naming it. A file of a case that is missing or unreadable otherwise only
//! leaves a note: the case is loaded without its series.

mod graph;
mod labels;
mod names;
mod series;
mod table;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rootcause_models::case::{Case, EdgeSeries, Family, Label, Series};
use rootcause_topology::{Topology, TopologyDocument};

use self::labels::LabelEntry;
use self::names::CaseName;
use self::table::Table;
use crate::LoadError;

/// The system every case comes from.
const SYSTEM: &str = "bookinfo";
/// The label file, in the data folder.
const LABEL_FILE: &str = "label.txt";
/// The folder of a case that holds its service files.
const SERVICE_DIR: &str = "bookinfo";
/// Threads reading cases: the loader runs in CI on two cores.
const THREADS: usize = 2;

/// Loads every MicroIRC dataset E case under `root`, the dataset folder (holding
/// `data/label.txt`) or its `data/` folder (see the module documentation for the rules), sorted
/// by id. A case folder that cannot be read at all is skipped with a warning on stderr naming it.
///
/// Fails when `label.txt` is missing or unreadable, or when no case folder could be read.
pub fn load(root: &Path) -> Result<Vec<Case>, LoadError> {
    let loaded = load_all(root)?;
    crate::error::warn_skipped("MicroIRC", root, &loaded.skipped, loaded.cases.len());
    Ok(loaded.cases)
}

/// What [`load_all`] read.
#[derive(Debug, Default)]
struct Loaded {
    /// The cases read, sorted by id.
    cases: Vec<Case>,
    /// (case id, why) for every case folder that could not be read, sorted by id.
    skipped: Vec<(String, LoadError)>,
}

/// [`load`], returning the skipped case folders rather than printing them.
fn load_all(root: &Path) -> Result<Loaded, LoadError> {
    let data = data_dir(root)?;
    let label_path = data.join(LABEL_FILE);
    let text = fs::read_to_string(&label_path).map_err(|e| LoadError::io(&label_path, e))?;
    let labels = labels::parse(&text);
    let folders = case_folders(&data)?;
    if folders.is_empty() {
        return Err(LoadError::format(
            &data,
            "no case folder (`<root>_<fault>_<n>`) beside label.txt",
        ));
    }

    let read = read_in_parallel(&folders, &labels);
    let mut loaded = Loaded::default();
    let mut shared: Vec<(TopologyDocument, Result<Arc<Topology>, String>)> = Vec::new();
    for ((id, _, _), result) in folders.iter().zip(read) {
        match result {
            Ok((mut case, document)) => {
                if let Some(document) = document {
                    attach_topology(&mut case, document, &mut shared);
                }
                loaded.cases.push(case);
            }
            Err(error) => loaded.skipped.push((id.clone(), error)),
        }
    }
    if loaded.cases.is_empty()
        && let Some((id, error)) = loaded.skipped.first()
    {
        return Err(LoadError::format(
            &data,
            format!(
                "none of the {} case folders could be read (first, {id}: {error})",
                loaded.skipped.len()
            ),
        ));
    }
    // Folders are listed sorted by id already; both lists keep that order.
    Ok(loaded)
}

/// The folder holding `label.txt` and the case folders: `root/data` or `root` itself.
fn data_dir(root: &Path) -> Result<PathBuf, LoadError> {
    let nested = root.join("data");
    if nested.join(LABEL_FILE).exists() {
        return Ok(nested);
    }
    if root.join(LABEL_FILE).exists() {
        return Ok(root.to_path_buf());
    }
    fs::metadata(root).map_err(|e| LoadError::io(root, e))?;
    Err(LoadError::format(
        root,
        "no data/label.txt (nor label.txt): not a MicroIRC dataset folder or its data/ folder",
    ))
}

/// Every folder under `data` whose name is a case name, sorted by name: (id, path, name).
fn case_folders(data: &Path) -> Result<Vec<(String, PathBuf, CaseName)>, LoadError> {
    let mut folders = Vec::new();
    for entry in fs::read_dir(data).map_err(|e| LoadError::io(data, e))? {
        let entry = entry.map_err(|e| LoadError::io(data, e))?;
        let Ok(id) = entry.file_name().into_string() else {
            continue;
        };
        let Some(name) = CaseName::parse(&id) else {
            continue;
        };
        let is_dir = entry
            .file_type()
            .map_err(|e| LoadError::io(entry.path(), e))?
            .is_dir();
        if is_dir {
            folders.push((id, entry.path(), name));
        }
    }
    folders.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(folders)
}

/// A case and its topology document (when `graph.csv` was read).
type CaseRead = Result<(Case, Option<TopologyDocument>), LoadError>;

/// Reads every folder, on up to [`THREADS`] threads, in folder order.
fn read_in_parallel(
    folders: &[(String, PathBuf, CaseName)],
    labels: &HashMap<String, LabelEntry>,
) -> Vec<CaseRead> {
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, THREADS)
        .min(folders.len().max(1));
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some((id, path, name)) = folders.get(i) else {
                return done;
            };
            done.push((i, read_case(id, path, name, labels.get(id))));
        }
    };
    let mut results: Vec<(usize, CaseRead)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut all = work();
        for handle in handles {
            match handle.join() {
                Ok(done) => all.extend(done),
                // A panic in a reader is a bug, not bad data: let it surface.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Gives `case` the topology of `document`, shared with earlier cases of the same document.
fn attach_topology(
    case: &mut Case,
    document: TopologyDocument,
    shared: &mut Vec<(TopologyDocument, Result<Arc<Topology>, String>)>,
) {
    let index = match shared.iter().position(|(d, _)| *d == document) {
        Some(i) => i,
        None => {
            let built = Topology::from_document(document.clone())
                .map(Arc::new)
                .map_err(|e| e.to_string());
            shared.push((document, built));
            shared.len() - 1
        }
    };
    match &shared[index].1 {
        Ok(topology) => case.topology = Some(Arc::clone(topology)),
        Err(why) => case.notes.push(format!(
            "graph.csv: the call graph is not a valid topology: {why}"
        )),
    }
}

/// Reads `bookinfo/<file>` of a case, or notes why it could not be.
fn optional_table(
    dir: &Path,
    file: &str,
    notes: &mut Vec<String>,
    errors: &mut Vec<LoadError>,
) -> Option<Table> {
    match table::read(&dir.join(SERVICE_DIR).join(file), file, &|_| true, notes) {
        Ok(table) => Some(table),
        Err(error) => {
            notes.push(format!("{file} not read ({error}): no series from it"));
            errors.push(error);
            None
        }
    }
}

/// Reads one case folder.
fn read_case(id: &str, dir: &Path, name: &CaseName, entry: Option<&LabelEntry>) -> CaseRead {
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    let latency = optional_table(dir, "latency.csv", &mut notes, &mut errors);
    let qps = optional_table(dir, "svc_qps.csv", &mut notes, &mut errors);
    let candidates = series::candidates(latency.as_ref(), qps.as_ref());
    if candidates.is_empty() {
        return Err(errors.into_iter().next().unwrap_or_else(|| {
            LoadError::format(
                dir.join(SERVICE_DIR),
                "latency.csv and svc_qps.csv name no candidate workload",
            )
        }));
    }
    let success = optional_table(dir, "success_rate.csv", &mut notes, &mut errors);
    let instance = optional_table(dir, "instance.csv", &mut notes, &mut errors);
    let call = optional_table(dir, "call.csv", &mut notes, &mut errors);

    let mut all = Vec::new();
    if let Some(t) = &latency {
        all.extend(series::latency(t, &candidates, &mut notes));
    }
    if let Some(t) = &success {
        let kind = ("success_rate.csv", "success_rate", Family::Errors);
        all.extend(series::per_workload(t, &candidates, kind, &mut notes));
    }
    if let Some(t) = &qps {
        let kind = ("svc_qps.csv", "requests_per_s", Family::Traffic);
        all.extend(series::per_workload(t, &candidates, kind, &mut notes));
    }
    if let Some(t) = &instance {
        all.extend(series::per_pod(t, &candidates, &mut notes));
    }
    let mut edges = match &call {
        Some(t) => series::edges(t, &candidates, &mut notes),
        None => Vec::new(),
    };
    all.sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
    edges.sort_by(|a, b| (&a.caller, &a.callee, &a.name).cmp(&(&b.caller, &b.callee, &b.name)));

    let graph_path = dir.join(SERVICE_DIR).join("graph.csv");
    let document = match graph::read(&graph_path, &candidates, &mut notes) {
        Ok(edges) => Some(graph::document(&candidates, &edges)),
        Err(error) => {
            notes.push(format!("graph.csv not read ({error}): no topology"));
            None
        }
    };

    let (anchor, label) =
        label_and_anchor(name, entry, &all, &edges, &mut notes).ok_or_else(|| {
            LoadError::format(dir, "no label and no sample: nothing to anchor the case on")
        })?;
    if let Some(label) = &label
        && !series::is_candidate(&candidates, &label.root_cause)
    {
        notes.push(format!(
            "root cause {:?} is not among the {} candidate workloads",
            label.root_cause,
            candidates.len()
        ));
    }
    let case = Case {
        id: id.to_string(),
        system: SYSTEM.to_string(),
        anchor,
        candidates,
        series: all,
        edges,
        label,
        notes,
        ..Case::default()
    };
    Ok((case, document))
}

/// The case's anchor and label from its `label.txt` entry; for an unlabelled case, the midpoint
/// of its data window and no label (`None` when there are no samples either).
fn label_and_anchor(
    name: &CaseName,
    entry: Option<&LabelEntry>,
    series: &[Series],
    edges: &[EdgeSeries],
    notes: &mut Vec<String>,
) -> Option<(i64, Option<Label>)> {
    if let Some(entry) = entry {
        notes.extend(entry.problems.iter().cloned());
    }
    let workload = name.workload();
    if let Some(inject) = entry.and_then(|e| e.inject) {
        if let Some(other) = entry
            .into_iter()
            .flat_map(|e| &e.scaled)
            .find(|w| **w != workload)
        {
            notes.push(format!(
                "label.txt scales deployment {other:?}, not the labelled workload {workload:?}"
            ));
        }
        let label = Label {
            root_cause: workload,
            fault_type: name.fault.clone(),
            action: None,
        };
        return Some((inject, Some(label)));
    }
    let times = series
        .iter()
        .map(|s| &s.times)
        .chain(edges.iter().map(|e| &e.times));
    let first = times.clone().filter_map(|t| t.first()).min()?;
    let last = times.filter_map(|t| t.last()).max()?;
    let anchor = first + (last - first) / 2;
    let why = if entry.is_some() {
        "its label.txt block has no readable `start create`"
    } else {
        "it has no entry in label.txt"
    };
    notes.push(format!(
        "unlabelled, not scored: {why}; the anchor is the midpoint of the data window ({}), \
         not an injection time",
        table::format_time(anchor)
    ));
    Some((anchor, None))
}
