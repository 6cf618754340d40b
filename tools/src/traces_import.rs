//! `rootcause topology import-traces`: a topology learned from OpenTelemetry trace files.
//!
//! Each file holds OTLP/JSON `ExportTraceServiceRequest`s: one request, or one per line as a
//! Collector's `file` exporter writes them (`-` reads standard input). All spans of all files
//! are matched together, so a trace whose spans the Collector exported in several batches, or
//! that spread over several files, still gives its calls. The rules are those of
//! [`rootcause_topology::otlp`], the same as `POST /api/v1/traces`.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rootcause_topology::otlp::{self, TraceReader};
use rootcause_topology::{ObservedCalls, Topology, TopologyDocument};

use rootcause::live_topology::TopologySpec;

/// Learns a topology from OTLP/JSON trace files over `base` (a topology file, `builtin:NAME` or
/// a bundled example's name; none for a topology of the traces alone). The result is checked
/// like any topology document. A file that holds no request is an error: it is more likely the
/// wrong file than a quiet hour.
pub fn import_traces(files: &[PathBuf], base: Option<&str>) -> anyhow::Result<TopologyDocument> {
    let base = base
        .map(|spec| {
            let spec = TopologySpec::parse(spec)?;
            spec.load()
                .map(|topology| topology.to_document())
                .with_context(|| format!("base topology {}", spec.source()))
        })
        .transpose()?;
    let mut reader = TraceReader::new();
    for file in files {
        read_file(file, &mut reader)?;
    }
    let mut calls = ObservedCalls::new();
    let summary = reader.learn(&mut calls);
    let merged = calls.merge(base.as_ref());
    tracing::info!(
        spans = summary.spans,
        calls = summary.calls,
        orphans = summary.orphans,
        unnamed = summary.unnamed,
        services_added = merged.services_added.len(),
        dependencies_added = merged.dependencies_added.len(),
        dependencies_seen = merged.dependencies_seen,
        "learned a topology from traces"
    );
    Topology::from_document(merged.document.clone())
        .context("the learned topology is not valid")?;
    Ok(merged.document)
}

/// Adds every request of one file (`-`: standard input) to `reader`.
fn read_file(file: &Path, reader: &mut TraceReader) -> anyhow::Result<()> {
    let name = file.display();
    let text = if file == Path::new("-") {
        let mut text = Vec::new();
        std::io::stdin()
            .read_to_end(&mut text)
            .context("cannot read traces from standard input")?;
        text
    } else {
        std::fs::read(file).with_context(|| format!("cannot read trace file {name}"))?
    };
    let mut requests = 0;
    for request in otlp::parse_each(&text) {
        let request = request.with_context(|| format!("trace file {name}"))?;
        reader
            .add(&request)
            .with_context(|| format!("trace file {name}"))?;
        requests += 1;
    }
    anyhow::ensure!(requests > 0, "trace file {name} holds no OTLP/JSON request");
    Ok(())
}

#[cfg(test)]
mod tests {
    use rootcause_topology::{DependencySource, ServiceKind};
    use serde_json::{Value, json};

    use super::*;

    fn resource(service: &str, spans: Value) -> Value {
        let name = json!({"key": "service.name", "value": {"stringValue": service}});
        json!({"resource": {"attributes": [name]}, "scopeSpans": [{"spans": spans}]})
    }

    fn span(id: &str, parent: &str, kind: u8, attributes: Value) -> Value {
        json!({"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": id, "parentSpanId": parent,
               "kind": kind, "startTimeUnixNano": "1790000000000000000",
               "endTimeUnixNano": 1_790_000_000_003_000_000u64, "attributes": attributes})
    }

    #[test]
    fn json_lines_over_several_files_make_one_topology_over_a_base() {
        let dir = tempfile::tempdir().unwrap();
        // The Collector exported the frontend's spans and the cart's in separate batches.
        let front = json!({"resourceSpans": [resource("frontend", json!([
            span("00000000000000f1", "", 2, json!([])),
            span("00000000000000f2", "00000000000000f1", 3, json!([])),
        ]))]});
        let cart = json!({"resourceSpans": [resource("cart", json!([
            span("00000000000000c1", "00000000000000f2", 2, json!([])),
            span("00000000000000c2", "00000000000000c1", 3,
                 json!([{"key": "db.system", "value": {"stringValue": "postgresql"}},
                        {"key": "db.name", "value": {"stringValue": "carts"}}])),
        ]))]});
        let lines = dir.path().join("traces.jsonl");
        std::fs::write(&lines, format!("{front}\n{cart}\n")).unwrap();
        let document = import_traces(std::slice::from_ref(&lines), None).unwrap();
        let edges: Vec<(&str, &str, DependencySource)> = document
            .dependencies
            .iter()
            .map(|d| (d.caller.as_str(), d.callee.as_str(), d.source))
            .collect();
        assert_eq!(
            edges,
            [
                ("cart", "postgresql:carts", DependencySource::Traces),
                ("frontend", "cart", DependencySource::Traces)
            ]
        );
        let database = document
            .services
            .iter()
            .find(|s| s.name == "postgresql:carts");
        assert_eq!(database.unwrap().kind, ServiceKind::Database);

        // Over a bundled example: its services stay, the learned ones join.
        let single = dir.path().join("front.json");
        std::fs::write(&single, serde_json::to_string_pretty(&front).unwrap()).unwrap();
        let document = import_traces(&[single, lines], Some("online-boutique")).unwrap();
        assert!(document.services.iter().any(|s| s.name == "redis-cart"));
        assert!(
            document
                .dependencies
                .iter()
                .any(|d| d.caller == "frontend" && d.callee == "cart")
        );
    }

    #[test]
    fn errors_name_the_file_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("broken.jsonl");
        let server = span("00000000000000f1", "", 2, json!([]));
        let request = json!({"resourceSpans": [resource("a", json!([server]))]});
        let mut bad = request.clone();
        bad["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = json!("nope");
        std::fs::write(&broken, format!("{request}\n{bad}\n")).unwrap();
        let error = format!("{:#}", import_traces(&[broken], None).unwrap_err());
        assert!(error.contains("broken.jsonl"), "{error}");
        assert!(
            error.contains("resourceSpans[0].scopeSpans[0].spans[0].traceId"),
            "{error}"
        );
        assert!(error.contains("line 2"), "{error}");

        let empty = dir.path().join("empty.json");
        std::fs::write(&empty, "\n").unwrap();
        let error = format!("{:#}", import_traces(&[empty], None).unwrap_err());
        assert!(error.contains("no OTLP/JSON request"), "{error}");
        let missing = dir.path().join("missing.json");
        assert!(import_traces(&[missing], None).is_err());
        let good = dir.path().join("good.json");
        std::fs::write(&good, request.to_string()).unwrap();
        let error = format!(
            "{:#}",
            import_traces(&[good], Some("no-such-base")).unwrap_err()
        );
        assert!(error.contains("no-such-base"), "{error}");
    }
}
