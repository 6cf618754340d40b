//! Tests of the RCAEval format on fixtures with its quirks (nested and flat layouts, unsorted
//! and malformed rows, labels from folders or `label.json`, unreadable cases), and of writing
//! cases into it and loading them back.

use super::*;

fn put(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create fixture dir");
    }
    fs::write(path, text).expect("write fixture");
}

/// The nested layout of RCAEval with the quirks a loader must absorb.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // Float times, a missing cell, rows out of order, a repeated time, a malformed number.
    put(
        root,
        "sys/svc-a_cpu/1/data.csv",
        "time,svc-a_cpu,svc-a_latency-90,svc-b_mem,svc-b_note\n\
         100.0,1.5,0.2,10,ok\n\
         102.0,3.5,,12,ok\n\
         101.0,2.5,0.3,abc,ok\n\
         102.0,9.9,9.9,99,dup\n\
         103.0,4.5,0.4,13,ok\n",
    );
    put(root, "sys/svc-a_cpu/1/inject_time.txt", "102\n");
    // label.json overrides the folder: the folder says svc-b/delay.
    put(
        root,
        "sys/svc-b_delay/2/data.csv",
        "time,svc-a_cpu,svc-b_cpu,carts-db_mem,svc-b_disk_io_read\n10,1,2,3,4\n20,1,2,3,5\n",
    );
    put(root, "sys/svc-b_delay/2/inject_time.txt", "15.7");
    put(
        root,
        "sys/svc-b_delay/2/label.json",
        r#"{"root_cause_service": "svc-a", "fault_type": "loss", "action": "restart"}"#,
    );
    // The labelled root cause has no column.
    put(
        root,
        "sys/ghost_mem/1/data.csv",
        "time,svc-a_cpu\n1,1\n2,2\n",
    );
    put(root, "sys/ghost_mem/1/inject_time.txt", "2");
    // Not a case: no inject_time.txt.
    put(root, "sys/other_cpu/1/data.csv", "time,x_cpu\n1,1\n");
    dir
}

fn find<'a>(cases: &'a [Case], id: &str) -> &'a Case {
    cases
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("case {id} not loaded"))
}

fn series<'a>(case: &'a Case, service: &str, name: &str) -> &'a Series {
    case.series
        .iter()
        .find(|s| s.service == service && s.name == name)
        .unwrap_or_else(|| panic!("no series {service}/{name} in {}", case.id))
}

fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

#[test]
fn rcaeval_nested_cases_are_found_sorted_with_ids_and_systems() {
    let dir = fixture();
    let cases = load(dir.path()).expect("load");
    let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        ["sys/ghost_mem/1", "sys/svc-a_cpu/1", "sys/svc-b_delay/2"]
    );
    assert!(cases.iter().all(|c| c.system == "sys"));
}

#[test]
fn rcaeval_rows_are_sorted_deduplicated_and_cells_read_as_nan() {
    let dir = fixture();
    let cases = load(dir.path()).expect("load");
    let case = find(&cases, "sys/svc-a_cpu/1");
    assert_eq!(case.anchor, 102);
    let cpu = series(case, "svc-a", "cpu");
    assert_eq!(cpu.times, [100, 101, 102, 103]);
    assert_eq!(
        cpu.values,
        [1.5, 2.5, 3.5, 4.5],
        "first row of time 102 kept"
    );
    assert_eq!(cpu.source, Source::Metric);
    assert_eq!(cpu.family, Family::Cpu);
    let latency = series(case, "svc-a", "latency-90");
    assert!(same(&latency.values, &[0.2, 0.3, f64::NAN, 0.4]));
    assert_eq!(latency.family, Family::Latency);
    let mem = series(case, "svc-b", "mem");
    assert!(same(&mem.values, &[10.0, f64::NAN, 12.0, 13.0]));
    assert_eq!(mem.family, Family::Memory);
    let notes = case.notes.join("\n");
    assert!(notes.contains("out of time order"), "{notes}");
    assert!(notes.contains("1 rows repeating"), "{notes}");
    assert!(notes.contains("\"svc-b_mem\": 1 malformed"), "{notes}");
    assert!(notes.contains("\"svc-b_note\" is not numeric"), "{notes}");
    assert!(case.series.iter().all(|s| s.name != "note"));
}

#[test]
fn rcaeval_label_comes_from_the_folder_split_at_the_last_underscore() {
    let dir = fixture();
    let cases = load(dir.path()).expect("load");
    let case = find(&cases, "sys/svc-a_cpu/1");
    let label = case.label.as_ref().expect("label");
    assert_eq!(label.root_cause, "svc-a");
    assert_eq!(label.fault_type, "cpu");
    assert_eq!(label.action, None);
    assert_eq!(case.candidates, ["svc-a", "svc-b"]);
    assert_eq!(
        parse_label_folder("ts-auth-service_cpu"),
        Some(("ts-auth-service".into(), "cpu".into()))
    );
    assert_eq!(
        parse_label_folder("a_b_f3"),
        Some(("a_b".into(), "f3".into()))
    );
    assert_eq!(parse_label_folder("nezha_2023-01-29"), None);
    assert_eq!(parse_label_folder("RE2-TT"), None);

    let dir = tempfile::tempdir().expect("tempdir");
    put(
        dir.path(),
        "ss/carts-db_mem/1/data.csv",
        "time,carts_cpu,carts-db_mem\n1,1,1\n",
    );
    put(dir.path(), "ss/carts-db_mem/1/inject_time.txt", "1");
    let cases = load(dir.path()).expect("load");
    assert_eq!(
        cases[0].label.as_ref().map(|l| l.root_cause.as_str()),
        Some("carts")
    );
    assert!(cases[0].notes.is_empty(), "{:?}", cases[0].notes);
}

#[test]
fn rcaeval_label_json_overrides_the_folder_and_db_columns_merge() {
    let dir = fixture();
    let cases = load(dir.path()).expect("load");
    let case = find(&cases, "sys/svc-b_delay/2");
    assert_eq!(
        case.label,
        Some(Label {
            root_cause: "svc-a".into(),
            fault_type: "loss".into(),
            action: Some("restart".into()),
        })
    );
    assert_eq!(case.anchor, 15, "float anchor floored");
    // RCAEval counts `carts-db` as `carts`.
    assert_eq!(case.candidates, ["carts", "svc-a", "svc-b"]);
    assert_eq!(series(case, "carts", "carts-db_mem").family, Family::Memory);
    // Split at the first `_`: RCAEval's services hold none, its metric names may.
    let io = series(case, "svc-b", "disk_io_read");
    assert_eq!(io.values, [4.0, 5.0]);
    assert_eq!(io.family, Family::Disk);
}

#[test]
fn rcaeval_root_cause_missing_from_columns_is_noted_not_added() {
    let dir = fixture();
    let cases = load(dir.path()).expect("load");
    let case = find(&cases, "sys/ghost_mem/1");
    assert_eq!(
        case.label.as_ref().map(|l| l.root_cause.as_str()),
        Some("ghost")
    );
    assert_eq!(case.candidates, ["svc-a"]);
    assert!(
        case.notes
            .iter()
            .any(|n| n.contains("\"ghost\" is not among")),
        "{:?}",
        case.notes
    );
}

#[test]
fn rcaeval_flat_root_uses_its_folder_name_as_system() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("online-boutique");
    put(
        &root,
        "adservice_cpu/1/data.csv",
        "time,adservice_cpu\n1,1\n",
    );
    put(&root, "adservice_cpu/1/inject_time.txt", "1");
    put(&root, "adservice_cpu/1/logs.csv", "x\n");
    let cases = load(&root).expect("load");
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].system, "online-boutique");
    assert!(
        cases[0]
            .notes
            .iter()
            .any(|n| n.contains("logs.csv not read"))
    );
}

#[test]
fn rcaeval_unreadable_cases_are_skipped_and_counted_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    put(dir.path(), "a_cpu/1/data.csv", "timestamp,a_cpu\n1,1\n");
    put(dir.path(), "a_cpu/1/inject_time.txt", "1");
    // The only case cannot be read: the dataset as a whole cannot.
    let err = load(dir.path()).expect_err("no time column");
    assert!(err.to_string().contains("no `time` column"), "{err}");
    assert!(err.to_string().contains("none of the 1 case"), "{err}");

    put(dir.path(), "a_cpu/2/data.csv", "time,a_cpu\n1,1\n2,2\n");
    put(dir.path(), "a_cpu/2/inject_time.txt", "not a time");
    put(dir.path(), "a_cpu/3/data.csv", "time,a_cpu\n1,1\n2,2\n");
    put(dir.path(), "a_cpu/3/inject_time.txt", "2");
    put(dir.path(), "a_cpu/4/data.csv", "time,a_cpu\n1,1\n");
    put(dir.path(), "a_cpu/4/inject_time.txt", "1");
    put(dir.path(), "a_cpu/4/label.json", "{not json");
    let loaded = load_all(dir.path()).expect("one case is readable");
    let ids: Vec<&str> = loaded.cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a_cpu/3"]);
    let skipped: Vec<&str> = loaded.skipped.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(skipped, ["a_cpu/1", "a_cpu/2", "a_cpu/4"]);
    assert!(loaded.skipped[0].1.to_string().contains("data.csv"));
    assert!(loaded.skipped[1].1.to_string().contains("inject_time.txt"));
    assert!(loaded.skipped[2].1.to_string().contains("label.json"));
    assert_eq!(load(dir.path()).expect("load").len(), 1);
}

#[test]
fn rcaeval_a_malformed_row_is_a_note_not_a_lost_dataset() {
    let dir = tempfile::tempdir().expect("tempdir");
    put(
        dir.path(),
        "a_cpu/1/data.csv",
        "time,a_cpu,b_cpu\n1,1,1\n2,2,2\n",
    );
    put(dir.path(), "a_cpu/1/inject_time.txt", "2");
    // Bytes that are not UTF-8, a short row and a long row.
    let bad = dir.path().join("a_cpu/2/data.csv");
    put(dir.path(), "a_cpu/2/inject_time.txt", "2");
    fs::write(
        &bad,
        b"time,a_cpu,b_cpu\n1,1,1\n2,\xff\xfe,2\n\xc3(,5,5\n3,3\n4,4,4,4\n",
    )
    .expect("write");
    let cases = load(dir.path()).expect("load");
    assert_eq!(cases.len(), 2);
    let case = find(&cases, "a_cpu/2");
    let a = series(case, "a", "cpu");
    assert_eq!(a.times, [1, 2, 3, 4]);
    assert!(same(&a.values, &[1.0, f64::NAN, 3.0, 4.0]));
    let b = series(case, "b", "cpu");
    assert!(same(&b.values, &[1.0, 2.0, f64::NAN, 4.0]));
    let notes = case.notes.join("\n");
    assert!(notes.contains("1 rows with a malformed time"), "{notes}");
    assert!(notes.contains("\"a_cpu\": 1 malformed"), "{notes}");
}

fn series_of(
    service: &str,
    source: Source,
    family: Family,
    name: &str,
    times: &[i64],
    values: &[f64],
) -> Series {
    Series {
        service: service.into(),
        source,
        family,
        name: name.into(),
        times: times.to_vec(),
        values: values.to_vec(),
    }
}

fn sample_cases() -> Vec<Case> {
    let a = Case {
        id: "2023-01-29#00".into(),
        system: "train-ticket".into(),
        anchor: 1_674_981_784,
        candidates: vec!["ts-auth".into(), "ts-order".into()],
        series: vec![
            series_of(
                "ts-auth",
                Source::Metric,
                Family::Cpu,
                "CpuUsageRate(%)",
                &[60, 120, 180],
                &[0.5, f64::NAN, 1e-9],
            ),
            series_of(
                "ts-order",
                Source::Metric,
                Family::Memory,
                "MemoryUsage(Mi)",
                &[60, 180],
                &[512.25, 1e20],
            ),
            series_of(
                "ts-order",
                Source::Trace,
                Family::Latency,
                "duration_p99",
                &[120, 180],
                &[3.0, -4.5],
            ),
            series_of(
                "ts-auth",
                Source::Log,
                Family::Errors,
                "log_error",
                &[60],
                &[7.0],
            ),
            series_of(
                "ts-auth",
                Source::Log,
                Family::Template,
                "template:INFO t.s.Auth#12",
                &[120],
                &[2.0],
            ),
            // Families the names do not reveal: `Family::classify` says Other for all three.
            series_of(
                "ts-order",
                Source::Trace,
                Family::Latency,
                "self_ms_mean",
                &[120],
                &[8.5],
            ),
            series_of(
                "ts-order",
                Source::Log,
                Family::Traffic,
                "log_lines",
                &[120],
                &[40.0],
            ),
            series_of(
                "ts-order",
                Source::Log,
                Family::Errors,
                "log_warn",
                &[120],
                &[3.0],
            ),
        ],
        normal_windows: vec![(0, 60)],
        edges: vec![rootcause_models::case::EdgeSeries {
            caller: "ts-order".into(),
            callee: "ts-auth".into(),
            name: "calls".into(),
            times: vec![60],
            values: vec![1.0],
        }],
        label: Some(Label {
            root_cause: "ts-auth".into(),
            fault_type: "cpu_contention".into(),
            action: Some("scale".into()),
        }),
        ..Case::default()
    };
    let b = Case {
        id: "2023-01-29#01".into(),
        system: "train-ticket".into(),
        anchor: 200,
        // A candidate without series survives through label.json.
        candidates: vec!["ts-auth".into(), "ts-idle".into()],
        series: vec![series_of(
            "ts-auth",
            Source::Metric,
            Family::Cpu,
            "cpu",
            &[100, 200],
            &[1.0, 2.0],
        )],
        label: Some(Label {
            root_cause: "ts-auth".into(),
            fault_type: "cpu_contention".into(),
            action: None,
        }),
        ..Case::default()
    };
    let c = Case {
        id: "sim/7".into(),
        system: "sim".into(),
        anchor: 5,
        candidates: vec!["my_svc".into()],
        series: vec![series_of(
            "my_svc",
            Source::Metric,
            Family::Other,
            "odd,\"name\"\n",
            &[1, 2],
            &[1.0, 2.0],
        )],
        ..Case::default()
    };
    vec![a, b, c]
}

/// (time, value) pairs actually observed: what RCAEval's grid can carry.
fn observed(s: &Series) -> Vec<(i64, f64)> {
    s.times
        .iter()
        .zip(&s.values)
        .filter(|(_, v)| !v.is_nan())
        .map(|(t, v)| (*t, *v))
        .collect()
}

#[test]
fn rcaeval_write_then_load_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let cases = sample_cases();
    let summary = write(&out, &cases).expect("write");
    assert_eq!(summary.cases, 3);
    assert_eq!(summary.unlabelled, 1);
    assert_eq!(summary.columns, 10);
    assert_eq!(summary.edges_skipped, 1);
    assert_eq!(
        summary.dirs,
        [
            (
                "2023-01-29#00".to_string(),
                "ts-auth_cpu-contention/1".to_string()
            ),
            (
                "2023-01-29#01".to_string(),
                "ts-auth_cpu-contention/2".to_string()
            ),
            ("sim/7".to_string(), "unlabelled/1".to_string()),
        ]
    );
    let loaded = load(&out).expect("load");
    assert_eq!(loaded.len(), 3);
    for (rel, original) in [
        ("ts-auth_cpu-contention/1", &cases[0]),
        ("ts-auth_cpu-contention/2", &cases[1]),
        ("unlabelled/1", &cases[2]),
    ] {
        let back = find(&loaded, rel);
        assert_eq!(back.label, original.label, "{rel}");
        assert_eq!(back.candidates, original.candidates, "{rel}");
        assert_eq!(back.anchor, original.anchor, "{rel}");
        assert_eq!(back.system, original.system, "{rel}");
        assert_eq!(back.normal_windows, original.normal_windows, "{rel}");
        assert_eq!(back.series.len(), original.series.len(), "{rel}");
        for s in &original.series {
            let name = if s.name.contains(',') {
                "odd;'name' "
            } else {
                s.name.as_str()
            };
            let b = back
                .series
                .iter()
                .find(|b| b.service == s.service && b.source == s.source && b.name == name)
                .unwrap_or_else(|| panic!("{rel}: lost {}/{}", s.service, s.name));
            assert_eq!(observed(b), observed(s), "{rel}: {}/{}", s.service, s.name);
            assert_eq!(b.family, s.family, "{rel}: {}/{}", s.service, s.name);
        }
    }
    let header = fs::read_to_string(out.join("ts-auth_cpu-contention/1/data.csv")).expect("read");
    assert_eq!(
        header.lines().next(),
        Some(
            "time,ts-auth_CpuUsageRate(%),ts-order_MemoryUsage(Mi),ts-order_trace.duration_p99,\
             ts-auth_log.log_error,ts-auth_template.INFO t.s.Auth#12,\
             ts-order_trace.self_ms_mean,ts-order_log.log_lines,ts-order_log.log_warn"
        )
    );
    assert!(header.contains("\n60,0.5,512.25,,7,,,,\n"), "{header}");
    assert!(header.contains("\n120,,,3,,2,8.5,40,3\n"), "{header}");
    assert!(header.contains("\n180,1e-9,1e20,-4.5,,,,,\n"), "{header}");
    // Without the recorded families, plain RCAEval naming classifies by name.
    let label_path = out.join("ts-auth_cpu-contention/1/label.json");
    let label = fs::read_to_string(&label_path).expect("read");
    let mut plain: serde_json::Value = serde_json::from_str(&label).expect("json");
    assert_eq!(
        plain["columns"]["ts-order_log.log_lines"],
        serde_json::json!({"source": "log", "family": "traffic"}),
        "{label}"
    );
    plain.as_object_mut().expect("object").remove("columns");
    fs::write(&label_path, plain.to_string()).expect("write");
    let reloaded = load(&out).expect("load");
    let case = find(&reloaded, "ts-auth_cpu-contention/1");
    let lines = series(case, "ts-order", "log_lines");
    assert_eq!((lines.source, lines.family), (Source::Log, Family::Other));
}

#[test]
fn rcaeval_underscore_services_are_mapped_and_restored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let mut case = sample_cases().remove(2);
    case.label = Some(Label {
        root_cause: "my_svc".into(),
        fault_type: "delay".into(),
        action: None,
    });
    // A candidate without series travels in label.json, mapped like the others.
    case.candidates = vec!["idle_svc".into(), "my_svc".into()];
    let summary = write(&out, std::slice::from_ref(&case)).expect("write");
    assert_eq!(summary.renamed_services, 1);
    assert_eq!(summary.dirs[0].1, "my-svc_delay/1");
    let data = fs::read_to_string(out.join("my-svc_delay/1/data.csv")).expect("read");
    assert!(data.starts_with("time,my-svc_odd;'name' \n"), "{data}");
    let label = fs::read_to_string(out.join("my-svc_delay/1/label.json")).expect("read");
    assert!(
        label.contains("\"root_cause_service\": \"my-svc\""),
        "{label}"
    );
    assert!(label.contains("\"my-svc\": \"my_svc\""), "{label}");
    let back = load(&out).expect("load");
    assert_eq!(back[0].candidates, ["idle_svc", "my_svc"]);
    assert_eq!(
        back[0].label.as_ref().map(|l| l.root_cause.as_str()),
        Some("my_svc")
    );

    // Two services that map to the same name cannot both be written.
    case.series.push(series_of(
        "my-svc",
        Source::Metric,
        Family::Cpu,
        "cpu",
        &[1],
        &[1.0],
    ));
    let err = write(&dir.path().join("out2"), &[case]).expect_err("collision");
    assert!(
        err.to_string().contains("\"my-svc\" and \"my_svc\""),
        "{err}"
    );
}

#[test]
fn rcaeval_db_services_written_by_us_stay_services() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let case = Case {
        id: "x".into(),
        candidates: vec!["orders".into(), "orders-db".into()],
        series: vec![
            series_of("orders", Source::Metric, Family::Cpu, "cpu", &[1], &[1.0]),
            series_of(
                "orders-db",
                Source::Metric,
                Family::Cpu,
                "cpu",
                &[1],
                &[2.0],
            ),
        ],
        label: Some(Label {
            root_cause: "orders-db".into(),
            fault_type: "cpu".into(),
            action: None,
        }),
        ..Case::default()
    };
    write(&out, &[case]).expect("write");
    let back = load(&out).expect("load");
    assert_eq!(back[0].candidates, ["orders", "orders-db"]);
    assert!(back[0].notes.is_empty(), "{:?}", back[0].notes);
}

#[test]
fn rcaeval_write_is_deterministic_and_refuses_a_used_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = sample_cases();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    write(&a, &cases).expect("write a");
    write(&b, &cases).expect("write b");
    let mut files = Vec::new();
    let mut stack = vec![a.clone()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert_eq!(files.len(), 9);
    for file in files {
        let rel = file.strip_prefix(&a).expect("under a");
        assert_eq!(
            fs::read(&file).expect("read a"),
            fs::read(b.join(rel)).expect("read b"),
            "{}",
            rel.display()
        );
    }
    let err = write(&a, &cases).expect_err("not empty");
    assert!(err.to_string().contains("not empty"), "{err}");
}
