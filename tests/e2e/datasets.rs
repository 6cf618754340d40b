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
fn eval_refuses_an_unknown_ranker_and_a_missing_dataset_clearly() {
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
    assert!(stderr.contains("nowhere"), "{stderr}");
}
