use std::collections::BTreeMap;
use std::time::Instant;

use rootcause_topology::ServiceKind;

use super::*;
use crate::case::CaseChange;
use crate::diagnosis::FaultType;
use crate::evidence::{CandidateEvidence, Detector, Evidence, GraphContext};

const IDS: [&str; 7] = [
    "restart",
    "scale_out",
    "rollback",
    "failover",
    "shed_load",
    "circuit_breaker",
    "free_disk",
];

fn target(service: &str, kind: ServiceKind, fault: FaultType, confidence: f64) -> Target<'_> {
    Target {
        service,
        kind: Some(kind),
        labels: None,
        criticality: None,
        callers: 1,
        fault_type: Some(fault),
        fault_type_confidence: Some(confidence),
        signals: &[],
        recent_change: None,
        incident_at: None,
        learned: &[],
        similar: None,
    }
}

fn ids(suggestions: &[Suggestion]) -> Vec<&str> {
    suggestions.iter().map(|s| s.action.as_str()).collect()
}

/// A CPU fault on `pricing`, a service five others call, with these alert signals firing.
fn busy_pricing(firing: &[String]) -> Target<'_> {
    Target {
        callers: 5,
        signals: firing,
        ..target("pricing", ServiceKind::Service, FaultType::Cpu, 0.9)
    }
}

fn signals(kinds: &[&str]) -> Vec<String> {
    kinds.iter().map(|s| s.to_string()).collect()
}

fn rank(target: &Target) -> Vec<Suggestion> {
    suggest(&Catalogue::bundled(), target, &Weights::default(), 10)
}

fn error_of(text: &str) -> CatalogueError {
    Catalogue::parse(text).expect_err("catalogue should be rejected")
}

/// A valid one-runbook catalogue with `extra` appended to the runbook's fields.
fn one(extra: &str) -> String {
    format!(
        "runbooks:\n  - id: restart\n    title: Restart\n    risk: low\n    steps: [do it]\n{extra}"
    )
}

// ---- catalogue ----

#[test]
fn bundled_catalogue_has_the_seven_runbooks_with_steps_and_no_automation() {
    let catalogue = Catalogue::bundled();
    let have: Vec<&str> = catalogue.runbooks.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(have, IDS);
    for runbook in &catalogue.runbooks {
        assert!((3..=6).contains(&runbook.steps.len()), "{}", runbook.id);
        assert!(!runbook.description.is_empty(), "{}", runbook.id);
        assert!(runbook.automation.is_none(), "{}", runbook.id);
    }
    let rollback = catalogue.get("rollback").expect("rollback");
    assert!(rollback.applies.requires_recent_change);
    assert_eq!(catalogue.get("failover").map(|r| r.risk), Some(Risk::High));
    assert!(catalogue.get("reboot_everything").is_none());
}

#[test]
fn to_yaml_round_trips() {
    let mut catalogue = Catalogue::bundled();
    catalogue.runbooks[0].automation = Some(Automation {
        url: "https://ops.example.com:8443/hooks/restart".into(),
        timeout_ms: 2000,
        retries: 0,
        headers: BTreeMap::from([("X-Api-Key".into(), "secret".into())]),
    });
    let back = Catalogue::parse(&catalogue.to_yaml()).expect("round trip");
    assert_eq!(back, catalogue);
    // JSON is YAML too.
    let json = serde_json::to_string(&catalogue).expect("json");
    assert_eq!(Catalogue::parse(&json).expect("json parses"), catalogue);
}

#[test]
fn automation_defaults_and_host() {
    let catalogue = Catalogue::parse(&one(
        "    automation:\n      url: https://ops.example.com:8443/hooks?x=1\n",
    ))
    .expect("valid");
    let automation = catalogue.runbooks[0]
        .automation
        .as_ref()
        .expect("automation");
    assert_eq!((automation.timeout_ms, automation.retries), (5000, 2));
    assert_eq!(automation.host(), "ops.example.com");
    let v6 = Automation {
        url: "http://[::1]:9000/x".into(),
        ..automation.clone()
    };
    assert_eq!(v6.host(), "::1");
}

#[test]
fn duplicate_id_names_both_paths() {
    let text = "runbooks:\n  - {id: restart, title: A, risk: low, steps: [a]}\n  - {id: other, title: B, risk: low, steps: [b]}\n  - {id: restart, title: C, risk: low, steps: [c]}\n";
    let error = error_of(text);
    assert_eq!(error.path, "runbooks[2].id");
    assert!(
        error
            .message
            .contains("duplicate id `restart` (also runbooks[0].id)"),
        "{error}"
    );
}

#[test]
fn bad_ids_are_rejected() {
    for id in ["Restart", "1restart", "re-start", "", &"a".repeat(65)] {
        let text = format!("runbooks:\n  - {{id: '{id}', title: A, risk: low, steps: [a]}}\n");
        let error = error_of(&text);
        assert_eq!(error.path, "runbooks[0].id", "{id}: {error}");
        assert!(error.message.contains("invalid id"), "{error}");
    }
    assert!(
        Catalogue::parse(&format!(
            "runbooks:\n  - {{id: {}, title: A, risk: low, steps: [a]}}\n",
            "a".repeat(64)
        ))
        .is_ok()
    );
}

#[test]
fn unknown_risk_names_the_path() {
    let error =
        error_of("runbooks:\n  - id: restart\n    title: A\n    risk: extreme\n    steps: [a]\n");
    assert_eq!(error.path, "runbooks[0].risk", "{error}");
    assert!(error.message.contains("extreme"), "{error}");
}

#[test]
fn unknown_field_is_rejected() {
    let error = error_of(&one("    riks: high\n"));
    assert!(error.path.starts_with("runbooks[0]"), "{error}");
    assert!(error.message.contains("unknown field `riks`"), "{error}");
    let error = error_of(&one(
        "    applies:\n      services:\n        kind: [database]\n",
    ));
    assert!(
        error.path.starts_with("runbooks[0].applies.services"),
        "{error}"
    );
    assert!(error.message.contains("unknown field `kind`"), "{error}");
}

#[test]
fn unknown_fault_type_and_kind_name_their_paths() {
    let error = error_of(&one(
        "    applies:\n      fault_types: [memory, gremlins]\n",
    ));
    assert_eq!(error.path, "runbooks[0].applies.fault_types[1]", "{error}");
    let error = error_of(&one("    applies:\n      services:\n        kinds: [db]\n"));
    assert_eq!(
        error.path, "runbooks[0].applies.services.kinds[0]",
        "{error}"
    );
}

#[test]
fn bad_signal_is_rejected() {
    let error = error_of(&one("    applies:\n      signals: [memory, vibes]\n"));
    assert_eq!(error.path, "runbooks[0].applies.signals[1]");
    assert!(error.message.contains("unknown signal `vibes`"), "{error}");
    assert!(error.message.contains("saturation"), "{error}");
}

#[test]
fn empty_title_steps_and_caller_bounds_are_rejected() {
    let error = error_of("runbooks:\n  - {id: a, title: ' ', risk: low, steps: [x]}\n");
    assert_eq!(error.path, "runbooks[0].title");
    let error = error_of("runbooks:\n  - {id: a, title: A, risk: low, steps: []}\n");
    assert_eq!(error.path, "runbooks[0].steps");
    let error = error_of("runbooks:\n  - {id: a, title: A, risk: low, steps: [x, '']}\n");
    assert_eq!(error.path, "runbooks[0].steps[1]");
    let error = error_of(&one(
        "    applies:\n      services: {min_callers: 3, max_callers: 2}\n",
    ));
    assert_eq!(error.path, "runbooks[0].applies.services.min_callers");
}

#[test]
fn bad_urls_are_rejected() {
    for url in [
        "ftp://ops.example.com/x",
        "ops.example.com/hook",
        "https://",
        "https:///path",
        "https://ops example.com/",
        "https://OPS.example.com/",
        "https://user:pw@ops.example.com/",
        "https://ops.example.com:99999/",
        "https://ops.example.com:/",
    ] {
        let error = error_of(&one(&format!("    automation:\n      url: '{url}'\n")));
        assert_eq!(error.path, "runbooks[0].automation.url", "{url}: {error}");
    }
    for url in [
        "http://localhost:8080/hook",
        "https://10.0.0.7/hook",
        "https://ops.example.com",
    ] {
        assert!(
            Catalogue::parse(&one(&format!("    automation:\n      url: '{url}'\n"))).is_ok(),
            "{url}"
        );
    }
}

#[test]
fn timeout_retries_and_headers_are_checked() {
    let url = "    automation:\n      url: https://ops.example.com/x\n";
    let error = error_of(&one(&format!("{url}      timeout_ms: 99\n")));
    assert_eq!(error.path, "runbooks[0].automation.timeout_ms");
    assert!(error.message.contains("100 to 60000"), "{error}");
    assert!(Catalogue::parse(&one(&format!("{url}      timeout_ms: 60000\n"))).is_ok());
    let error = error_of(&one(&format!("{url}      retries: 11\n")));
    assert_eq!(error.path, "runbooks[0].automation.retries");
    let error = error_of(&one(&format!("{url}      headers: {{'X Key': a}}\n")));
    assert_eq!(error.path, "runbooks[0].automation.headers");
    assert!(
        error.message.contains("invalid header name `X Key`"),
        "{error}"
    );
    let error = error_of(&one(&format!(
        "{url}      headers: {{X-Key: \"a\\r\\nEvil: 1\"}}\n"
    )));
    assert_eq!(error.path, "runbooks[0].automation.headers.X-Key");
    let error = error_of(&one(&format!("{url}      headers: {{X-Key: \"café\"}}\n")));
    assert_eq!(error.path, "runbooks[0].automation.headers.X-Key");
    for reserved in [
        "Host",
        "idempotency-key",
        "Content-Length",
        "Transfer-Encoding",
    ] {
        let error = error_of(&one(&format!("{url}      headers: {{{reserved}: x}}\n")));
        assert_eq!(
            error.path,
            format!("runbooks[0].automation.headers.{reserved}"),
            "{error}"
        );
        assert!(error.message.contains("cannot be overridden"), "{error}");
    }
}

#[test]
fn empty_catalogue_is_rejected() {
    for text in ["", "  \n# nothing\n", "runbooks: []\n"] {
        let error = error_of(text);
        assert_eq!(error.path, "runbooks", "{text:?}: {error}");
    }
    let error = error_of("{}");
    assert!(
        error.message.contains("missing field `runbooks`"),
        "{error}"
    );
}

#[test]
fn yaml_syntax_error_reports_its_line() {
    let error = error_of("runbooks:\n  - id: restart\n    title: [unclosed\n    risk: low\n");
    let text = error.to_string();
    assert!(text.contains("line "), "{text}");
}

#[test]
fn selector_conditions_all_hold() {
    let labels = BTreeMap::from([("tier".to_owned(), "payments".to_owned())]);
    let mut t = target("pay-gateway", ServiceKind::Gateway, FaultType::Cpu, 0.9);
    let selector = ServiceSelector {
        names: vec!["pay-*".into()],
        labels: BTreeMap::from([("tier".to_owned(), "payments".to_owned())]),
        ..ServiceSelector::default()
    };
    assert!(!selector.matches(&t), "unknown labels do not match");
    t.labels = Some(&labels);
    assert!(selector.matches(&t));
    t.service = "ledger";
    assert!(!selector.matches(&t));
    let by_criticality = ServiceSelector {
        criticality: vec![rootcause_topology::Criticality::Critical],
        ..ServiceSelector::default()
    };
    assert!(
        !by_criticality.matches(&t),
        "unknown criticality does not match"
    );
    t.kind = None;
    let by_kind = ServiceSelector {
        kinds: vec![ServiceKind::Service],
        ..ServiceSelector::default()
    };
    assert!(!by_kind.matches(&t), "unknown kind does not match");
    assert!(ServiceSelector::default().matches(&t));
}

// ---- suggestions ----

#[test]
fn memory_fault_restarts_first() {
    let firing = signals(&["memory"]);
    let mut t = target("cart", ServiceKind::Service, FaultType::Memory, 0.82);
    t.signals = &firing;
    let suggestions = rank(&t);
    assert_eq!(suggestions[0].action, "restart");
    assert_eq!(
        suggestions[0].reason,
        "Fits a memory fault (0.82) with memory alerts on cart; medium risk."
    );
    assert!(
        !ids(&suggestions).contains(&"rollback"),
        "no change, no rollback"
    );
    assert!(!ids(&suggestions).contains(&"failover"), "not a database");
}

#[test]
fn cpu_saturation_on_a_busy_service_scales_out_and_sheds_load() {
    let firing = signals(&["cpu", "saturation"]);
    let mut t = busy_pricing(&firing);
    let suggestions = rank(&t);
    let order = ids(&suggestions);
    assert_eq!(order[0], "scale_out", "{order:?}");
    assert!(order.contains(&"shed_load"), "{order:?}");
    t.callers = 1;
    let order = ids(&rank(&t)).join(",");
    assert!(!order.contains("shed_load"), "too few callers: {order}");
    t.callers = 0;
    let order = ids(&rank(&t)).join(",");
    assert!(
        !order.contains("circuit_breaker"),
        "no caller to break the circuit: {order}"
    );
}

#[test]
fn database_network_fault_suggests_failover_above_generic_actions() {
    let t = target("ledger-db", ServiceKind::Database, FaultType::Network, 0.9);
    let suggestions = rank(&t);
    let order = ids(&suggestions);
    let place = |id: &str| order.iter().position(|a| *a == id);
    // Both fit a network fault; the low-risk breaker may come first, the generic ones after.
    let failover = place("failover").expect("failover suggested");
    assert!(failover <= 1, "{order:?}");
    assert!(place("restart").is_none_or(|p| p > failover), "{order:?}");
    assert!(place("scale_out").is_none_or(|p| p > failover), "{order:?}");
    let service = Target {
        kind: Some(ServiceKind::Service),
        ..t
    };
    assert!(
        !ids(&rank(&service)).contains(&"failover"),
        "a stateless service has no standby"
    );
    let unknown = Target { kind: None, ..t };
    assert!(!ids(&rank(&unknown)).contains(&"failover"), "unknown kind");
}

#[test]
fn recent_change_with_code_fault_rolls_back_first() {
    let change = CaseChange {
        service: "cart".into(),
        kind: "deploy".into(),
        at: 1_000,
        description: "v2.3.1".into(),
    };
    let firing = signals(&["errors"]);
    let mut t = target("cart", ServiceKind::Service, FaultType::Code, 0.7);
    t.signals = &firing;
    t.recent_change = Some(&change);
    let suggestions = rank(&t);
    assert_eq!(suggestions[0].action, "rollback", "{:?}", ids(&suggestions));
    assert!(
        suggestions[0].reason.starts_with(
            "cart changed shortly before the incident (deploy v2.3.1): roll it back first; "
        ),
        "{}",
        suggestions[0].reason
    );
    t.incident_at = Some(1_250);
    let timed = rank(&t);
    assert!(
        timed[0]
            .reason
            .starts_with("cart changed 4 min before the incident (deploy v2.3.1)"),
        "{}",
        timed[0].reason
    );
    t.recent_change = None;
    assert!(!ids(&rank(&t)).contains(&"rollback"));
}

#[test]
fn confidences_are_shares_of_all_applicable_runbooks() {
    let firing = signals(&["cpu", "saturation"]);
    let t = busy_pricing(&firing);
    let all = rank(&t);
    let total: f64 = all.iter().map(|s| s.confidence).sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");
    let two = suggest(&Catalogue::bundled(), &t, &Weights::default(), 2);
    assert_eq!(two.len(), 2);
    assert_eq!(two[..], all[..2], "truncation keeps the confidences");
    for s in &all {
        assert!((0.0..=1.0).contains(&s.confidence), "{s:?}");
        assert!(!s.reason.contains("NaN"), "{}", s.reason);
    }
    assert!(all.windows(2).all(|w| w[0].confidence >= w[1].confidence));
    assert!(suggest(&Catalogue::bundled(), &t, &Weights::default(), 0).is_empty());
}

#[test]
fn similar_votes_can_move_the_order() {
    let firing = signals(&["cpu"]);
    let mut t = target("pricing", ServiceKind::Service, FaultType::Cpu, 0.8);
    t.signals = &firing;
    assert_eq!(rank(&t)[0].action, "scale_out");
    let votes = Votes {
        incidents: 7,
        actions: vec![ActionVote {
            action: "restart".into(),
            share: 0.9,
            count: 6,
        }],
    };
    t.similar = Some(&votes);
    let suggestions = rank(&t);
    assert_eq!(suggestions[0].action, "restart", "{:?}", ids(&suggestions));
    assert!(
        suggestions[0]
            .reason
            .contains("resolved 6 of 7 similar past incidents"),
        "{}",
        suggestions[0].reason
    );
    let scale_out = suggestions
        .iter()
        .find(|s| s.action == "scale_out")
        .expect("scale_out");
    assert!(
        scale_out.reason.contains("resolved none of 7"),
        "{}",
        scale_out.reason
    );
}

#[test]
fn learned_probabilities_can_move_the_order() {
    let firing = signals(&["cpu"]);
    let learned = vec![("restart".to_owned(), 0.95), ("scale_out".to_owned(), 0.05)];
    let mut t = target("pricing", ServiceKind::Service, FaultType::Cpu, 0.6);
    t.signals = &firing;
    t.learned = &learned;
    let suggestions = rank(&t);
    assert_eq!(suggestions[0].action, "restart", "{:?}", ids(&suggestions));
    assert!(
        suggestions[0]
            .reason
            .contains("the learned model gives 0.95")
    );
}

#[test]
fn absent_sources_are_not_evidence_against() {
    let firing = signals(&["memory"]);
    let mut t = target("cart", ServiceKind::Service, FaultType::Memory, 0.9);
    t.signals = &firing;
    let alone = rank(&t);
    let empty = Votes::default();
    t.similar = Some(&empty);
    assert_eq!(rank(&t), alone, "history without incidents is no history");
    // A model trained only on rollbacks has no opinion on the other runbooks.
    let learned = vec![("rollback".to_owned(), 1.0)];
    t.learned = &learned;
    assert_eq!(
        rank(&t),
        alone,
        "actions the model never saw are not penalised"
    );
}

#[test]
fn order_is_deterministic_with_ties_broken_by_risk_then_id() {
    let t = Target {
        fault_type: None,
        fault_type_confidence: None,
        ..target("thing", ServiceKind::Service, FaultType::Cpu, 0.0)
    };
    let first = rank(&t);
    for _ in 0..5 {
        assert_eq!(rank(&t), first);
    }
    // Nothing known: every applicable runbook is neutral, so low risk comes first, by id.
    assert_eq!(
        ids(&first),
        ["circuit_breaker", "free_disk", "scale_out", "restart"]
    );
    assert!(
        first[0]
            .reason
            .starts_with("No fault type is known for thing; low risk")
    );
}

#[test]
fn nan_inputs_give_finite_confidences() {
    let learned = vec![("restart".to_owned(), f64::NAN)];
    let mut t = target("cart", ServiceKind::Service, FaultType::Memory, f64::NAN);
    t.learned = &learned;
    let weights = Weights {
        similar: f64::NAN,
        ..Weights::default()
    };
    for s in suggest(&Catalogue::bundled(), &t, &weights, 10) {
        assert!(
            s.confidence.is_finite() && !s.reason.contains("NaN"),
            "{s:?}"
        );
    }
}

// ---- similar incidents ----

fn past(key: &str, action: Option<&str>, worked: Option<bool>) -> PastIncident {
    PastIncident {
        key: key.into(),
        system: "shop".into(),
        started_at: 0,
        root_cause: "cart".into(),
        fault_type: None,
        action: action.map(str::to_owned),
        worked,
        time_to_mitigate_s: None,
    }
}

/// A small index of vectors spread along the first two dimensions.
fn index() -> SimilarIndex {
    let mut index = SimilarIndex::new();
    for i in 0..20 {
        let mut v = vec![0.0; VECTOR_LEN];
        v[0] = i as f64;
        v[1] = (i % 3) as f64;
        index.insert(past(&format!("p{i:02}"), Some("restart"), None), v);
    }
    index
}

#[test]
fn identical_vector_is_first_with_similarity_one() {
    let index = index();
    let mut query = vec![0.0; VECTOR_LEN];
    query[0] = 7.0;
    query[1] = 1.0;
    let found = index.nearest(&query, 3, |_| false);
    assert_eq!(found.len(), 3);
    assert_eq!(found[0].past.key, "p07");
    assert!((found[0].similarity - 1.0).abs() < 1e-12);
    assert!(found.windows(2).all(|w| w[0].similarity >= w[1].similarity));
    assert!(
        found
            .iter()
            .all(|n| n.similarity > 0.0 && n.similarity <= 1.0)
    );
}

#[test]
fn skip_leaves_entries_out() {
    let index = index();
    let mut query = vec![0.0; VECTOR_LEN];
    query[0] = 7.0;
    query[1] = 1.0;
    let found = index.nearest(&query, 3, |key| key == "p07");
    assert!(found.iter().all(|n| n.past.key != "p07"));
    assert_eq!(found.len(), 3);
    assert!(index.nearest(&query, 5, |_| true).is_empty());
    assert!(index.nearest(&query, 0, |_| false).is_empty());
}

#[test]
fn insert_with_the_same_key_replaces() {
    let mut index = index();
    let mut v = vec![0.0; VECTOR_LEN];
    v[0] = 100.0;
    index.insert(past("p03", Some("rollback"), Some(true)), v.clone());
    assert_eq!(index.len(), 20);
    let found = index.nearest(&v, 1, |_| false);
    assert_eq!(found[0].past.key, "p03");
    assert_eq!(found[0].past.action.as_deref(), Some("rollback"));
    assert!((found[0].similarity - 1.0).abs() < 1e-12);
}

#[test]
fn votes_ignore_failed_actions_and_weigh_by_similarity() {
    let a = past("a", Some("restart"), Some(true));
    let b = past("b", Some("scale_out"), None);
    let c = past("c", Some("restart"), Some(false));
    let d = past("d", None, None);
    let neighbours = [
        Neighbour {
            past: &a,
            similarity: 0.9,
        },
        Neighbour {
            past: &b,
            similarity: 0.3,
        },
        Neighbour {
            past: &c,
            similarity: 0.6,
        },
        Neighbour {
            past: &d,
            similarity: 0.2,
        },
    ];
    let votes = SimilarIndex::votes(&neighbours);
    assert_eq!(votes.incidents, 4);
    let got: Vec<(&str, usize)> = votes
        .actions
        .iter()
        .map(|v| (v.action.as_str(), v.count))
        .collect();
    assert_eq!(got, [("restart", 1), ("scale_out", 1)]);
    assert!((votes.actions[0].share - 0.9 / 2.0).abs() < 1e-12);
    assert!((votes.actions[1].share - 0.3 / 2.0).abs() < 1e-12);
    assert_eq!(SimilarIndex::votes(&[]), Votes::default());
}

#[test]
fn incident_vector_summarises_detectors_without_names() {
    let mut scores = [0.0; Detector::COUNT];
    scores[Detector::CpuMetric as usize] = 9.0;
    let hot = CandidateEvidence {
        service: "a".into(),
        scores,
        graph: GraphContext {
            alerting: true,
            ..GraphContext::default()
        },
        findings: Vec::new(),
    };
    let mut quiet = hot.clone();
    quiet.service = "b".into();
    quiet.scores = [0.0; Detector::COUNT];
    quiet.scores[Detector::CpuMetric as usize] = f64::NAN;
    quiet.graph.alerting = false;
    let evidence = Evidence {
        candidates: vec![hot, quiet],
        graph: Default::default(),
    };
    let v = incident_vector(&evidence);
    assert_eq!(v.len(), VECTOR_LEN);
    let cpu = Detector::CpuMetric as usize;
    assert!((v[cpu] - 10f64.ln()).abs() < 1e-12);
    assert!((v[Detector::COUNT + cpu] - 0.5).abs() < 1e-12);
    assert!((v[VECTOR_LEN - 1] - 0.5).abs() < 1e-12);
    assert!(v.iter().all(|x| x.is_finite()));
    let empty = Evidence {
        candidates: Vec::new(),
        graph: Default::default(),
    };
    assert_eq!(incident_vector(&empty), vec![0.0; VECTOR_LEN]);
}

#[test]
fn nearest_over_ten_thousand_entries_is_fast() {
    let mut index = SimilarIndex::new();
    // A deterministic spread of values without a random number generator.
    let value = |i: usize, j: usize| {
        let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (j as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        (h.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f64 / (1u64 << 24) as f64 * 5.0
    };
    for i in 0..10_000 {
        let v: Vec<f64> = (0..VECTOR_LEN).map(|j| value(i, j)).collect();
        index.insert(past(&format!("k{i}"), Some("restart"), None), v);
    }
    let query: Vec<f64> = (0..VECTOR_LEN).map(|j| value(4242, j)).collect();
    let started = Instant::now();
    let found = index.nearest(&query, 10, |_| false);
    let elapsed = started.elapsed();
    assert_eq!(found.len(), 10);
    assert_eq!(found[0].past.key, "k4242");
    assert!((found[0].similarity - 1.0).abs() < 1e-12);
    assert!(found[1].similarity < 1.0);
    // Generous for an unoptimised test build on a shared machine (about 7 ms); a release
    // build takes about 0.2 ms.
    assert!(elapsed.as_millis() < 200, "{elapsed:?}");
}

#[test]
fn one_past_incident_is_not_identical_to_every_other() {
    let mut index = SimilarIndex::new();
    let mut vector = vec![0.0; VECTOR_LEN];
    vector[0] = 2.0;
    index.insert(past("only", Some("restart"), Some(true)), vector.clone());
    let same = index.nearest(&vector, 1, |_| false);
    assert!((same[0].similarity - 1.0).abs() < 1e-12);
    let other = vec![0.0; VECTOR_LEN];
    let far = index.nearest(&other, 1, |_| false);
    assert!(
        far[0].similarity < 0.5,
        "a different incident is not identical: {}",
        far[0].similarity
    );
}
