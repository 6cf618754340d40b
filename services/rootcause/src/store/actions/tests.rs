use serde_json::json;

use super::*;
use crate::store::Engine;
use crate::store::tests::on_both_engines;

fn entry(at: i64, kind: &str, incident: Option<u64>) -> NewAudit {
    NewAudit {
        at,
        actor: "alice".to_owned(),
        kind: kind.to_owned(),
        incident,
        action: Some("restart".to_owned()),
        service: Some("cart".to_owned()),
        detail: json!({ "n": at }),
    }
}

fn approval(incident: u64, action: &str, actor: &str, at: i64) -> NewDecision {
    NewDecision {
        incident,
        action: action.to_owned(),
        service: Some("cart".to_owned()),
        decision: Decision::Approved,
        actor: actor.to_owned(),
        comment: "go".to_owned(),
        at,
    }
}

fn rejection(incident: u64, action: &str, actor: &str, at: i64) -> NewDecision {
    NewDecision {
        decision: Decision::Rejected,
        comment: "no".to_owned(),
        ..approval(incident, action, actor, at)
    }
}

fn new_run(max_attempts: u32) -> NewRun {
    NewRun {
        url: "http://hooks.local/restart".to_owned(),
        payload: "{\"service\":\"cart\"}".to_owned(),
        max_attempts,
        timeout_ms: 5000,
    }
}

async fn all_audit(store: &Store) -> Vec<StoredAudit> {
    store
        .audit(&AuditFilter {
            limit: MAX_AUDIT_LIMIT,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

fn ids(entries: &[StoredAudit]) -> Vec<i64> {
    entries.iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn audit_entries_come_back_in_order_with_filters() {
    on_both_engines(|store| async move {
        assert_eq!(store.append_audit(&[]).await.unwrap(), Vec::<i64>::new());
        let written = store
            .append_audit(&[
                entry(1, "decision", Some(7)),
                entry(2, "run.retry", Some(7)),
                entry(3, "decision", Some(8)),
                NewAudit {
                    action: None,
                    service: None,
                    ..entry(4, "catalogue", None)
                },
                entry(5, "decision", Some(7)),
                entry(6, "decision", Some(u64::MAX >> 1)),
            ])
            .await
            .unwrap();
        assert_eq!(written.len(), 6);
        assert!(written.windows(2).all(|w| w[0] < w[1]), "{written:?}");

        let all = all_audit(&store).await;
        assert_eq!(ids(&all), written);
        assert_eq!(all[0].record.detail, json!({ "n": 1 }));
        assert_eq!(all[0].record.actor, "alice");
        assert_eq!(all[3].record.incident, None);
        assert_eq!(all[3].record.action, None);
        assert_eq!(all[5].record.incident, Some(u64::MAX >> 1));

        let read = |incident: Option<u64>, kind: Option<&str>, after: Option<i64>, limit| {
            let store = store.clone();
            let filter = AuditFilter {
                incident,
                kind: kind.map(str::to_owned),
                after,
                limit,
            };
            async move { ids(&store.audit(&filter).await.unwrap()) }
        };
        let w = &written;
        assert_eq!(read(Some(7), None, None, 100).await, [w[0], w[1], w[4]]);
        assert_eq!(
            read(None, Some("decision"), None, 100).await,
            [w[0], w[2], w[4], w[5]]
        );
        assert_eq!(
            read(Some(7), Some("decision"), None, 100).await,
            [w[0], w[4]]
        );
        assert_eq!(
            read(Some(7), Some("decision"), Some(w[0]), 100).await,
            [w[4]]
        );
        assert_eq!(read(None, None, Some(w[1]), 2).await, [w[2], w[3]]);
        // Limits are clamped: 0 or less reads one, not none or all.
        assert_eq!(read(None, None, None, 0).await, [w[0]]);
        assert_eq!(read(None, None, None, -5).await, [w[0]]);
        assert_eq!(read(Some(9), None, None, 100).await, Vec::<i64>::new());

        let last = store.last_audit(7, "decision").await.unwrap().unwrap();
        assert_eq!(last.id, w[4]);
        assert_eq!(last.record.at, 5);
        assert_eq!(
            store.last_audit(7, "run.retry").await.unwrap().unwrap().id,
            w[1]
        );
        assert!(store.last_audit(8, "run.retry").await.unwrap().is_none());
        assert!(store.last_audit(9, "decision").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn the_database_refuses_to_update_or_delete_audit_entries() {
    on_both_engines(|store| async move {
        store
            .append_audit(&[entry(1, "decision", Some(7)), entry(2, "catalogue", None)])
            .await
            .unwrap();
        let before = all_audit(&store).await;
        let statements = [
            "UPDATE audit_log SET kind = 'x'",
            "UPDATE audit_log SET detail = '{}' WHERE incident = 7",
            "DELETE FROM audit_log",
            "DELETE FROM audit_log WHERE incident = 7",
        ];
        for statement in statements {
            let result =
                with_pool!(store, pool => sqlx::query(statement).execute(pool).await.map(drop));
            let error = result.expect_err(statement).to_string();
            assert!(error.contains("append-only"), "{statement}: {error}");
        }
        if store.engine() == Engine::Postgres {
            let result = with_pool!(store, pool => {
                sqlx::query("TRUNCATE audit_log").execute(pool).await.map(drop)
            });
            let error = result.expect_err("TRUNCATE").to_string();
            assert!(error.contains("append-only"), "{error}");
        }
        assert_eq!(all_audit(&store).await, before);
        // Appending still works.
        store
            .append_audit(&[entry(3, "decision", Some(7))])
            .await
            .unwrap();
        assert_eq!(all_audit(&store).await.len(), 3);
    })
    .await;
}

#[tokio::test]
async fn an_approval_stores_its_decision_run_and_audit_entry_together() {
    on_both_engines(|store| async move {
        let (decision, run) = store
            .decide(
                &approval(7, "restart", "alice", 1000),
                Some(&new_run(3)),
                &NewAudit {
                    detail: json!({ "decision": "approved" }),
                    ..entry(1000, "decision", Some(7))
                },
            )
            .await
            .unwrap();
        assert_eq!(decision.record.incident, 7);
        assert_eq!(decision.record.action, "restart");
        assert_eq!(decision.record.service.as_deref(), Some("cart"));
        assert_eq!(decision.record.decision, Decision::Approved);
        assert_eq!(decision.record.actor, "alice");
        assert_eq!(decision.record.comment, "go");
        assert_eq!(decision.record.at, 1000);
        let run = run.unwrap();
        assert_eq!(run.decision, decision.id);
        assert_eq!(run.incident, 7);
        assert_eq!(run.action, "restart");
        assert_eq!(run.url, "http://hooks.local/restart");
        assert_eq!(run.payload, "{\"service\":\"cart\"}");
        assert_eq!(run.status, RunStatus::Pending);
        assert_eq!((run.attempts, run.max_attempts), (0, 3));
        assert_eq!(run.timeout_ms, 5000);
        assert_eq!(
            (run.response_status, run.last_error.as_deref()),
            (None, None)
        );
        assert_eq!((run.created_at, run.updated_at), (1000, 1000));
        assert_eq!(run.finished_at, None);

        assert_eq!(
            store.decisions(7).await.unwrap(),
            std::slice::from_ref(&decision)
        );
        assert_eq!(store.runs(7).await.unwrap(), std::slice::from_ref(&run));
        assert_eq!(store.run(run.id).await.unwrap().as_ref(), Some(&run));
        assert!(store.run(run.id + 100).await.unwrap().is_none());
        assert_eq!(
            store.unfinished_runs().await.unwrap(),
            std::slice::from_ref(&run)
        );
        let audit = all_audit(&store).await;
        assert_eq!(audit.len(), 1);
        assert_eq!(
            audit[0].record.detail,
            json!({ "decision": "approved", "decision_id": decision.id, "run_id": run.id })
        );
        assert_eq!(audit[0].record.incident, Some(7));

        // A run the database refuses (no attempt allowed) takes its decision and audit
        // entry with it.
        let refused = store
            .decide(
                &approval(7, "scale-up", "alice", 1100),
                Some(&new_run(0)),
                &entry(1100, "decision", Some(7)),
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::Database(_))),
            "{refused:?}"
        );
        assert_eq!(store.decisions(7).await.unwrap().len(), 1);
        assert_eq!(all_audit(&store).await.len(), 1);
        // An approval without a run is fine, and other incidents are separate.
        let (other, none) = store
            .decide(
                &approval(8, "restart", "bob", 1200),
                None,
                &entry(1200, "decision", Some(8)),
            )
            .await
            .unwrap();
        assert!(none.is_none());
        assert_eq!(store.decisions(8).await.unwrap(), [other]);
        assert!(store.runs(8).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_second_approval_or_a_rejection_of_an_approved_action_is_a_conflict() {
    on_both_engines(|store| async move {
        let (first, _) = store
            .decide(
                &approval(7, "restart", "alice", 1000),
                Some(&new_run(3)),
                &entry(1000, "decision", Some(7)),
            )
            .await
            .unwrap();
        let decisions = store.decisions(7).await.unwrap();
        let runs = store.runs(7).await.unwrap();
        let audit = all_audit(&store).await;

        let again = store
            .decide(
                &approval(7, "restart", "bob", 2000),
                Some(&new_run(3)),
                &entry(2000, "decision", Some(7)),
            )
            .await;
        match again {
            Err(StoreError::Conflict(message)) => {
                assert!(
                    message.contains(&format!("decision {}", first.id)),
                    "{message}"
                );
                assert!(message.contains("alice"), "{message}");
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        let reject = store
            .decide(
                &rejection(7, "restart", "bob", 2100),
                None,
                &entry(2100, "decision", Some(7)),
            )
            .await;
        match reject {
            Err(StoreError::Conflict(message)) => {
                assert!(
                    message.contains(&format!("decision {}", first.id)),
                    "{message}"
                );
                assert!(message.contains("cannot be rejected"), "{message}");
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(store.decisions(7).await.unwrap(), decisions);
        assert_eq!(store.runs(7).await.unwrap(), runs);
        assert_eq!(all_audit(&store).await, audit);

        // The index refuses a second approval even past the method's check.
        let raw = with_pool!(store, pool => {
            sqlx::query(
                "INSERT INTO action_decisions (incident, action, decision, actor, at) \
                 VALUES (7, 'restart', 'approved', 'mallory', 1)",
            )
            .execute(pool)
            .await
            .map(drop)
        });
        assert!(is_unique_violation(&raw.unwrap_err()));
    })
    .await;
}

#[tokio::test]
async fn a_rejected_action_can_still_be_approved() {
    on_both_engines(|store| async move {
        let (no, run) = store
            .decide(
                &rejection(7, "restart", "bob", 1000),
                Some(&new_run(3)),
                &entry(1000, "decision", Some(7)),
            )
            .await
            .unwrap();
        assert_eq!(no.record.decision, Decision::Rejected);
        assert!(run.is_none(), "a rejection starts no run");
        let (again, _) = store
            .decide(
                &rejection(7, "restart", "carol", 1100),
                None,
                &entry(1100, "decision", Some(7)),
            )
            .await
            .unwrap();
        let (yes, run) = store
            .decide(
                &approval(7, "restart", "alice", 1200),
                Some(&new_run(3)),
                &entry(1200, "decision", Some(7)),
            )
            .await
            .unwrap();
        assert_eq!(run.unwrap().decision, yes.id);
        assert_eq!(store.decisions(7).await.unwrap(), [no, again, yes]);
        assert_eq!(store.runs(7).await.unwrap().len(), 1);
        assert_eq!(all_audit(&store).await.len(), 3);
    })
    .await;
}

#[tokio::test]
async fn a_run_goes_through_its_attempts_to_the_end() {
    on_both_engines(|store| async move {
        let decide = |incident: u64, max_attempts: u32| {
            let store = store.clone();
            async move {
                store
                    .decide(
                        &approval(incident, "restart", "alice", 1000),
                        Some(&new_run(max_attempts)),
                        &entry(1000, "decision", Some(incident)),
                    )
                    .await
                    .unwrap()
                    .1
                    .unwrap()
            }
        };
        let run = decide(7, 2).await;
        let other = decide(8, 1).await;
        let audit_count = all_audit(&store).await.len();

        let started = store.start_attempt(run.id, 2000).await.unwrap();
        assert_eq!(started.status, RunStatus::Running);
        assert_eq!((started.attempts, started.updated_at), (1, 2000));
        // Only a running run can be retried; a refusal writes no audit entry.
        assert!(matches!(
            store
                .retry_run(
                    other.id,
                    2050,
                    None,
                    "x",
                    &entry(2050, "run.retry", Some(8))
                )
                .await,
            Err(StoreError::Conflict(_))
        ));
        store
            .retry_run(
                run.id,
                2100,
                Some(503),
                "503 Service Unavailable",
                &entry(2100, "run.retry", Some(7)),
            )
            .await
            .unwrap();
        let retried = store.run(run.id).await.unwrap().unwrap();
        assert_eq!(retried.status, RunStatus::Pending);
        assert_eq!(retried.attempts, 1);
        assert_eq!(retried.response_status, Some(503));
        assert_eq!(
            retried.last_error.as_deref(),
            Some("503 Service Unavailable")
        );
        assert_eq!(retried.updated_at, 2100);
        assert_eq!(
            store.unfinished_runs().await.unwrap(),
            [retried, other.clone()]
        );

        let second = store.start_attempt(run.id, 3000).await.unwrap();
        assert_eq!((second.status, second.attempts), (RunStatus::Running, 2));
        assert_eq!(
            store.unfinished_runs().await.unwrap(),
            [second, other.clone()]
        );
        // Two attempts allowed: a third is refused, even after a restart.
        match store.start_attempt(run.id, 3050).await {
            Err(StoreError::Conflict(message)) => {
                assert!(message.contains("all its 2 attempts"), "{message}")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert!(matches!(
            store
                .finish_run(
                    run.id,
                    RunStatus::Running,
                    3100,
                    None,
                    None,
                    &entry(3100, "x", None)
                )
                .await,
            Err(StoreError::Conflict(_))
        ));
        store
            .finish_run(
                run.id,
                RunStatus::Succeeded,
                3100,
                Some(200),
                None,
                &entry(3100, "run.finish", Some(7)),
            )
            .await
            .unwrap();
        let done = store.run(run.id).await.unwrap().unwrap();
        assert_eq!(done.status, RunStatus::Succeeded);
        assert_eq!(done.attempts, 2);
        assert_eq!(done.response_status, Some(200));
        assert_eq!(done.last_error.as_deref(), Some("503 Service Unavailable"));
        assert_eq!((done.updated_at, done.finished_at), (3100, Some(3100)));
        assert_eq!(
            store.unfinished_runs().await.unwrap(),
            std::slice::from_ref(&other)
        );

        // A finished run stays finished, and the refusals wrote nothing.
        let audit = all_audit(&store).await;
        assert_eq!(audit.len(), audit_count + 2);
        assert!(matches!(
            store.start_attempt(run.id, 4000).await,
            Err(StoreError::Conflict(message)) if message.contains("already succeeded")
        ));
        assert!(matches!(
            store
                .finish_run(
                    run.id,
                    RunStatus::Failed,
                    4000,
                    None,
                    Some("x"),
                    &entry(4000, "x", None)
                )
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store
                .retry_run(run.id, 4000, None, "x", &entry(4000, "x", None))
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store.start_attempt(9999, 4000).await,
            Err(StoreError::Conflict(message)) if message.contains("no action run 9999")
        ));
        assert_eq!(all_audit(&store).await, audit);
        assert_eq!(store.run(run.id).await.unwrap().unwrap(), done);

        // A pending run can be given up; the error given replaces the last one.
        store
            .finish_run(
                other.id,
                RunStatus::Failed,
                5000,
                None,
                Some("cancelled"),
                &entry(5000, "run.finish", Some(8)),
            )
            .await
            .unwrap();
        let failed = store.run(other.id).await.unwrap().unwrap();
        assert_eq!(failed.status, RunStatus::Failed);
        assert_eq!(failed.attempts, 0);
        assert_eq!(failed.last_error.as_deref(), Some("cancelled"));
        assert!(store.unfinished_runs().await.unwrap().is_empty());
        let last = store.last_audit(8, "run.finish").await.unwrap().unwrap();
        assert_eq!(last.record.at, 5000);
    })
    .await;
}

#[tokio::test]
async fn the_newest_catalogue_is_the_current_one() {
    on_both_engines(|store| async move {
        assert!(store.current_catalogue().await.unwrap().is_none());
        let first = store
            .save_catalogue(
                "runbooks: []\n",
                "sha256:a",
                "alice",
                1000,
                &entry(1000, "catalogue", None),
            )
            .await
            .unwrap();
        assert_eq!(
            (
                first.yaml.as_str(),
                first.digest.as_str(),
                first.actor.as_str()
            ),
            ("runbooks: []\n", "sha256:a", "alice")
        );
        assert_eq!(first.created_at, 1000);
        assert_eq!(store.current_catalogue().await.unwrap().unwrap(), first);
        let second = store
            .save_catalogue(
                "runbooks: [x]\n",
                "sha256:b",
                "bob",
                2000,
                &entry(2000, "catalogue", None),
            )
            .await
            .unwrap();
        assert!(second.id > first.id);
        assert_eq!(store.current_catalogue().await.unwrap().unwrap(), second);
        let audit = store
            .audit(&AuditFilter {
                kind: Some("catalogue".to_owned()),
                limit: 10,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(audit.len(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_nul_character_never_panics_and_leaves_nothing_half_written() {
    on_both_engines(|store| async move {
        // Inside JSON a NUL is escaped, so both engines store it.
        let with_nul = NewAudit {
            detail: json!({ "note": "a\u{0}b" }),
            ..entry(1, "decision", Some(7))
        };
        store.append_audit(&[with_nul]).await.unwrap();
        assert_eq!(
            all_audit(&store).await[0].record.detail,
            json!({ "note": "a\u{0}b" })
        );

        // In a text column PostgreSQL refuses it (an error, not a panic) and SQLite stores it.
        let result = store
            .decide(
                &approval(7, "re\u{0}start", "alice", 1000),
                Some(&new_run(3)),
                &NewAudit {
                    actor: "al\u{0}ice".to_owned(),
                    ..entry(1000, "decision", Some(7))
                },
            )
            .await;
        match store.engine() {
            Engine::Postgres => {
                assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
                assert!(store.decisions(7).await.unwrap().is_empty());
                assert!(store.runs(7).await.unwrap().is_empty());
                assert_eq!(all_audit(&store).await.len(), 1);
            }
            Engine::Sqlite => {
                let (decision, _) = result.unwrap();
                assert_eq!(decision.record.action, "re\u{0}start");
            }
        }
    })
    .await;
}

#[test]
fn statuses_serialize_lowercase_and_the_payload_stays_private() {
    assert_eq!(
        serde_json::to_value(Decision::Approved).unwrap(),
        json!("approved")
    );
    assert_eq!(
        serde_json::to_value(RunStatus::Succeeded).unwrap(),
        json!("succeeded")
    );
    for decision in [Decision::Approved, Decision::Rejected] {
        assert_eq!(Decision::parse(decision.as_str()).unwrap(), decision);
    }
    for status in [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
    ] {
        assert_eq!(RunStatus::parse(status.as_str()).unwrap(), status);
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            json!(status.as_str())
        );
    }
    assert!(matches!(
        RunStatus::parse("done"),
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        Decision::parse("maybe"),
        Err(StoreError::Corrupt(_))
    ));

    let run = StoredRun {
        id: 1,
        decision: 1,
        incident: 7,
        action: "restart".to_owned(),
        url: "http://hooks.local".to_owned(),
        payload: "{\"token\":\"secret\"}".to_owned(),
        status: RunStatus::Pending,
        attempts: 0,
        max_attempts: 3,
        timeout_ms: 5000,
        response_status: None,
        last_error: None,
        created_at: 1,
        updated_at: 1,
        finished_at: None,
    };
    let text = serde_json::to_string(&run).unwrap();
    assert!(
        !text.contains("secret") && !text.contains("payload"),
        "{text}"
    );
}
