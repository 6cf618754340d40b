//! The command line outside `serve`: topology validation and display, configuration display.

use rootcause_e2e::{run_cli, workspace_root};

#[test]
fn validate_accepts_good_files_and_lists_every_problem_of_bad_ones() {
    let good = workspace_root().join("topology/bundled/train-ticket.yaml");
    let (status, stdout, _) = run_cli(&["topology", "validate", good.to_str().unwrap()]);
    assert!(status.success());
    assert!(stdout.contains("48 services"), "{stdout}");

    let stderr = refused(
        "bad.yaml",
        "services:\n  - {name: a, kind: service}\n  - {name: a, kind: cache}\ndependencies:\n  - {caller: a, callee: b}\n",
    );
    assert!(stderr.contains("2 problems"), "{stderr}");
    assert!(
        stderr.contains("services[1].name: duplicate service \"a\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("dependencies[0].callee: unknown service \"b\""),
        "{stderr}"
    );

    let stderr = refused(
        "kind.json",
        "{\"services\": [{\"name\": \"a\", \"kind\": \"vm\"}]}",
    );
    assert!(stderr.contains("services[0].kind"), "{stderr}");
    assert!(stderr.contains("line 1"), "{stderr}");
}

/// `topology validate` of a file named `name` holding `text`: it must exit 1; returns its
/// stderr.
fn refused(name: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let (status, _, stderr) = run_cli(&["topology", "validate", file.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn show_prints_a_table_with_blast_radius_and_single_points_of_failure() {
    let (status, stdout, stderr) = run_cli(&["topology", "show", "sock-shop"]);
    assert!(status.success(), "{stderr}");
    let carts_db = stdout
        .lines()
        .find(|line| line.starts_with("carts-db "))
        .expect("a row for carts-db");
    let columns: Vec<&str> = carts_db.split_whitespace().collect();
    // NAME KIND TEAM CRITICALITY CALLERS CALLEES BLAST
    assert_eq!(
        columns[..7],
        ["carts-db", "database", "-", "high", "1", "0", "4"]
    );
    assert!(
        stdout.contains("entry points: edge-router, queue-master"),
        "{stdout}"
    );
    assert!(stdout.contains("front-end: cuts off"), "{stdout}");

    let (status, stdout, _) = run_cli(&["topology", "show", "online-boutique", "--format", "json"]);
    assert!(status.success());
    let document: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(document["services"].as_array().unwrap().len(), 12);

    let (status, _, stderr) = run_cli(&["topology", "show", "no-such-system"]);
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("train-ticket"),
        "lists the examples: {stderr}"
    );

    let (status, stdout, _) = run_cli(&["topology", "examples"]);
    assert!(status.success());
    assert_eq!(stdout.lines().count(), 3);
}

#[test]
fn config_prints_the_effective_configuration_without_secrets() {
    let (status, stdout, stderr) = run_cli(&[
        "config",
        "--listen",
        "0.0.0.0:9000",
        "--database-url",
        "postgres://app:hunter2@db/rc",
    ]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("listen = \"0.0.0.0:9000\""), "{stdout}");
    assert!(stdout.contains("postgres://app:***@db/rc"), "{stdout}");
    assert!(!stdout.contains("hunter2"));
    assert!(
        stdout.contains("[http]") && stdout.contains("body_limit_bytes"),
        "{stdout}"
    );
}
