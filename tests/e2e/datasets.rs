//! The dataset commands against the real binary: `simulate`, `eval`, `datasets convert`.

use std::collections::BTreeMap;
use std::path::Path;

use rootcause_e2e::run_cli;

/// Every file under `dir` with its bytes, keyed by relative path.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let key = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(key, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Clean simulated cases (`--realism none`): one metric grid per case, so converting them to
/// RCAEval's single `data.csv` grid changes nothing a reference ranker reads (realistic cases mix
/// 5-minute metrics with per-minute trace statistics, which the conversion fills forward).
fn simulate(out: &Path, seed: &str) {
    let (status, stdout, stderr) = run_cli(&[
        "simulate",
        "--topology",
        "online-boutique",
        "--cases",
        "30",
        "--seed",
        seed,
        "--realism",
        "none",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("30 cases"), "{stdout}");
}

fn eval_json(format: &str, path: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["eval", "--format", format, path.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let (status, stdout, stderr) = run_cli(&args);
    assert!(status.success(), "{stdout}\n{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn simulate_is_deterministic_by_seed_and_eval_scores_its_cases() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    simulate(&a, "11");
    simulate(&b, "11");
    simulate(&c, "12");
    let (sa, sb, sc) = (snapshot(&a), snapshot(&b), snapshot(&c));
    let (status, _, stderr) = run_cli(&["simulate", "--out", a.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "a used directory is refused");
    assert!(stderr.contains("not empty"), "{stderr}");
    assert!(sa.len() > 30, "{} files", sa.len());
    assert!(sa == sb, "the same seed wrote different files");
    assert!(sa != sc, "another seed wrote the same files");

    let predictions = dir.path().join("predictions.jsonl");
    let report = eval_json(
        "sim",
        &a,
        &[
            "--ranker",
            "nsigma",
            "--predictions",
            predictions.to_str().unwrap(),
        ],
    );
    assert_eq!(report["cases"], 30);
    assert_eq!(report["ranker"], "nsigma");
    for key in ["ac1", "ac3", "ac5", "avg5"] {
        let value = report["overall"][key].as_f64().unwrap();
        let chance = report["chance"][key].as_f64().unwrap();
        assert!(
            (0.0..=1.0).contains(&value) && (0.0..=1.0).contains(&chance),
            "{report}"
        );
    }
    // The simulated root's own metrics move first and most: even a metric-only reference
    // method must be far above a random guess, or the simulator or the evaluation is broken.
    let (ac1, chance1) = (
        report["overall"]["ac1"].as_f64().unwrap(),
        report["chance"]["ac1"].as_f64().unwrap(),
    );
    assert!(ac1 > 3.0 * chance1 && ac1 >= 0.4, "{report}");
    let among = report["truth_among_candidates"].as_u64().unwrap();
    assert!((24..=30).contains(&among), "{report}");
    assert!(
        report["by_fault_type"].as_object().unwrap().len() >= 3,
        "{report}"
    );
    assert!(report["seconds_per_case"].as_f64().unwrap() >= 0.0);

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&predictions)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 30);
    assert!(
        lines
            .iter()
            .all(|l| l["case"].is_string() && !l["ranking"].as_array().unwrap().is_empty())
    );
}

#[test]
fn converted_cases_rank_the_same_in_rcaeval_format() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    simulate(&sim, "5");
    let converted = dir.path().join("rcaeval");
    let (status, stdout, stderr) = run_cli(&[
        "datasets",
        "convert",
        "--to",
        "rcaeval",
        "--format",
        "sim",
        sim.to_str().unwrap(),
        "--out",
        converted.to_str().unwrap(),
    ]);
    assert!(status.success(), "{stdout}\n{stderr}");
    let (status, graph, stderr) = run_cli(&[
        "datasets",
        "topology",
        "--format",
        "sim",
        sim.to_str().unwrap(),
    ]);
    assert!(status.success(), "{stderr}");
    assert!(graph.contains("- name: redis-cart"), "{graph}");
    let (status, _, stderr) = run_cli(&[
        "datasets",
        "topology",
        "--format",
        "rcaeval",
        converted.to_str().unwrap(),
    ]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("holds no topology"), "{stderr}");

    let original = eval_json("sim", &sim, &["--ranker", "baro"]);
    let roundtrip = eval_json("rcaeval", &converted, &["--ranker", "baro"]);
    assert_eq!(original["cases"], roundtrip["cases"]);
    assert_eq!(
        original["overall"], roundtrip["overall"],
        "{original}\n{roundtrip}"
    );
}

#[test]
fn eval_and_train_refuse_bad_arguments_and_a_missing_dataset_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (status, _, stderr) = run_cli(&[
        "eval",
        "--format",
        "sim",
        dir.path().to_str().unwrap(),
        "--ranker",
        "oracle",
    ]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("unknown ranker \"oracle\""), "{stderr}");
    assert!(stderr.contains("baro"), "{stderr}");

    let missing = dir.path().join("nowhere");
    let (status, _, stderr) = run_cli(&["eval", "--format", "nezha", missing.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("nowhere does not exist"), "{stderr}");
    // Said once, not once per layer of the error chain.
    assert_eq!(stderr.matches("nowhere").count(), 1, "{stderr}");

    let out = dir.path().join("model.json");
    let (status, _, stderr) = run_cli(&[
        "train",
        "--format",
        "sim",
        dir.path().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--prior-alpha=-1",
    ]);
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("--prior-alpha must be a number ≥ 0"),
        "{stderr}"
    );
    assert!(!out.exists());
}

/// The topology of the SLO-only archive: a web front end over two branches, each ending in a
/// database without an exporter of its own (seen only through the calls into it).
const SHOP: &str = "\
services:
  - {name: web, kind: gateway}
  - {name: checkout, kind: service}
  - {name: catalog, kind: service}
  - {name: orders-db, kind: database}
  - {name: catalog-db, kind: database}
dependencies:
  - {caller: web, callee: checkout}
  - {caller: web, callee: catalog}
  - {caller: checkout, callee: orders-db}
  - {caller: catalog, callee: catalog-db}
";

/// One history record whose only alert is the front end's SLO alert: `extra_ms` is the time a
/// service adds to each request after the anchor (its fault), `cpu` the service whose CPU
/// jumps, if any. Latencies add up along the calls, as they do: a service's latency is its own
/// time plus its callees', and a call's duration is the callee's latency. Noise is a fixed hash
/// of the index, so the archive is the same on every run.
fn slo_record(
    id: &str,
    cause: &str,
    extra_ms: (&str, f64),
    cpu: Option<&str>,
) -> serde_json::Value {
    const START: i64 = 1_760_000_000;
    const ANCHOR: i64 = START + 40 * 60;
    const CALLS: [(&str, &str); 4] = [
        ("web", "checkout"),
        ("web", "catalog"),
        ("checkout", "orders-db"),
        ("catalog", "catalog-db"),
    ];
    fn latency(service: &str, extra_ms: (&str, f64), after: bool) -> f64 {
        let own = if service == "web" { 10.0 } else { 15.0 };
        let fault = if after && service == extra_ms.0 {
            extra_ms.1
        } else {
            0.0
        };
        own + fault
            + CALLS
                .iter()
                .filter(|(caller, _)| *caller == service)
                .map(|(_, callee)| latency(callee, extra_ms, after))
                .sum::<f64>()
    }
    let wobble = |seed: usize, i: usize| ((seed * 7919 + i * 104_729) % 1000) as f64 / 1000.0 - 0.5;
    let points = |seed: usize, level: &dyn Fn(bool) -> f64| -> Vec<serde_json::Value> {
        (0..120)
            .map(|i| {
                let t = START + i as i64 * 30;
                serde_json::json!([t, level(t >= ANCHOR) * (1.0 + 0.06 * wobble(seed, i))])
            })
            .collect()
    };
    let mut metrics = Vec::new();
    for (seed, service) in ["web", "checkout", "catalog"].into_iter().enumerate() {
        let load = if cpu == Some(service) { 6.0 } else { 1.0 };
        metrics.push(
            serde_json::json!({"service": service, "name": "latency_p95_ms",
            "points": points(seed, &|after| latency(service, extra_ms, after))}),
        );
        metrics.push(
            serde_json::json!({"service": service, "name": "cpu_usage_cores",
            "points": points(seed + 10, &|after| if after { 0.2 * load } else { 0.2 })}),
        );
    }
    let edges: Vec<serde_json::Value> = CALLS
        .iter()
        .enumerate()
        .map(|(seed, (caller, callee))| {
            serde_json::json!({"caller": caller, "callee": callee, "name": "callee_ms",
                "points": points(seed + 20, &|after| latency(callee, extra_ms, after))})
        })
        .collect();
    serde_json::json!({
        "id": id,
        "started_at": ANCHOR,
        "alerts": [{"service": "web", "name": "SLOLatencyBudgetBurn", "signal": "latency",
            "severity": "critical", "starts_at": ANCHOR + 120, "ends_at": null,
            "labels": {"alertname": "SLOLatencyBudgetBurn", "service": "web"}}],
        "metrics": metrics,
        "edges": edges,
        "outcome": {"root_cause": cause, "fault_type": "latency"},
    })
}

#[test]
fn a_case_whose_only_alert_is_the_front_ends_slo_alert_is_ranked_by_walking_the_graph_down() {
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("shop.yaml");
    std::fs::write(&topology, SHOP).unwrap();
    let archive = dir.path().join("incidents.jsonl");
    let records = [
        slo_record("orders-db-slow", "orders-db", ("orders-db", 100.0), None),
        slo_record("catalog-db-slow", "catalog-db", ("catalog-db", 100.0), None),
        slo_record(
            "checkout-cpu",
            "checkout",
            ("checkout", 100.0),
            Some("checkout"),
        ),
    ];
    let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    std::fs::write(&archive, lines.join("\n") + "\n").unwrap();

    let graph = ["--topology", topology.to_str().unwrap()];
    let walked = eval_json(
        "jsonl",
        &archive,
        &[&graph[..], &["--ranker", "cold-start"]].concat(),
    );
    assert_eq!(walked["cases"], 3, "{walked}");
    assert_eq!(walked["truth_among_candidates"], 3, "{walked}");
    assert_eq!(walked["overall"]["ac1"], 1.0, "{walked}");
    // The bundled model the service serves by default, which keeps to the cold-start prior for
    // systems it never saw, finds them too: each caller's latency is inherited from the calls
    // into its database, answered worse than the calls into the caller.
    let bundled = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/default-model.json");
    let served = eval_json(
        "jsonl",
        &archive,
        &[&graph[..], &["--model", bundled]].concat(),
    );
    assert_eq!(served["truth_among_candidates"], 3, "{served}");
    assert_eq!(served["overall"]["ac1"], 1.0, "{served}");
    // Without the graph, the databases behind the front end are no candidates at all: the
    // walk down from the SLO alert is what finds them.
    let unwalked = eval_json("jsonl", &archive, &["--ranker", "cold-start"]);
    assert_eq!(unwalked["truth_among_candidates"], 1, "{unwalked}");
}
