//! `graph.csv`: `source,destination,timestamp` snapshots of the call graph (workload → workload,
//! from cumulative Istio counters) mixed with pod → node placement rows.

use std::path::Path;

use rootcause_topology::{Dependency, DependencySource, Service, ServiceKind, TopologyDocument};

use super::names::{GATEWAY, UNKNOWN, workload_of_pod};
use super::series::is_candidate;
use crate::LoadError;
use crate::csv_series::csv_error;

/// The workload call edges (caller, callee) of every snapshot, each once, sorted: rows whose
/// ends are both candidates or the gateway. Pod → node placement rows (the source's workload a
/// candidate) and rows naming `unknown` are skipped silently; any other row is skipped with a
/// note. Only a file that cannot be read, or lacks the two columns, is an error.
pub(super) fn read(
    path: &Path,
    candidates: &[String],
    notes: &mut Vec<String>,
) -> Result<Vec<(String, String)>, LoadError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| csv_error(path, e))?;
    let headers = reader.byte_headers().map_err(|e| csv_error(path, e))?;
    let position = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
    };
    let (Some(source), Some(destination)) = (position("source"), position("destination")) else {
        return Err(LoadError::format(
            path,
            "no `source` and `destination` columns",
        ));
    };
    let width = headers.len();
    let known = |name: &str| is_candidate(candidates, name) || name == GATEWAY;

    let mut edges: Vec<(String, String)> = Vec::new();
    let mut ragged = 0usize;
    let mut others = 0usize;
    let mut first_other = None;
    let mut record = csv::ByteRecord::new();
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        if record.len() != width {
            ragged += 1;
            continue;
        }
        let field = |i: usize| {
            std::str::from_utf8(record.get(i).unwrap_or_default())
                .unwrap_or_default()
                .trim()
        };
        let (from, to) = (field(source), field(destination));
        if known(from) && known(to) {
            // A handful of distinct edges, repeated in every snapshot: a scan beats allocating.
            if !edges.iter().any(|(a, b)| a == from && b == to) {
                edges.push((from.to_string(), to.to_string()));
            }
        } else if from == UNKNOWN || to == UNKNOWN {
            // Istio's unidentified callers: not a service of the system.
        } else if workload_of_pod(from).is_some_and(|w| is_candidate(candidates, w)) && !known(to) {
            // A pod's placement on a node: hosts are not candidates and no fault is on one.
        } else {
            others += 1;
            first_other.get_or_insert_with(|| format!("{from} → {to}"));
        }
    }
    if ragged > 0 {
        notes.push(format!(
            "graph.csv: {ragged} rows with a field count unlike the header's dropped"
        ));
    }
    if let Some(first) = first_other {
        notes.push(format!(
            "graph.csv: {others} rows naming neither two workloads nor a pod's node skipped \
             (first: {first})"
        ));
    }
    edges.sort();
    Ok(edges)
}

/// The topology of a case: every candidate (kind service), the gateway (kind gateway) when an
/// edge names it, and the edges, from Istio's service graph. Sorted, so equal graphs give equal
/// documents, which cases then share.
pub(super) fn document(candidates: &[String], edges: &[(String, String)]) -> TopologyDocument {
    let mut services: Vec<Service> = candidates
        .iter()
        .map(|c| Service::new(c.clone(), ServiceKind::Service))
        .collect();
    if edges.iter().any(|(a, b)| a == GATEWAY || b == GATEWAY) {
        services.push(Service::new(GATEWAY, ServiceKind::Gateway));
    }
    services.sort_by(|a, b| a.name.cmp(&b.name));
    let dependencies = edges
        .iter()
        .map(|(caller, callee)| Dependency {
            source: DependencySource::Servicegraph,
            ..Dependency::new(caller.clone(), callee.clone())
        })
        .collect();
    TopologyDocument {
        services,
        dependencies,
    }
}
