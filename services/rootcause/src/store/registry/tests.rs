use super::*;
use crate::store::tests::on_both_engines;

fn model(version: &str) -> NewModel {
    NewModel {
        version: version.to_owned(),
        source: "bundled".to_owned(),
        feature_schema: 3,
        figures: "{\"ac1\":0.9}".to_owned(),
        reason: "initial".to_owned(),
        body: format!("{{\"version\":\"{version}\"}}"),
        job_id: None,
    }
}

fn statuses(models: &[StoredModel]) -> Vec<(&str, ModelStatus)> {
    models
        .iter()
        .map(|m| (m.version.as_str(), m.status))
        .collect()
}

#[tokio::test]
async fn an_active_insert_retires_the_previous_active_model() {
    on_both_engines(|store| async move {
        assert!(store.active_model().await.unwrap().is_none());
        let first = store.insert_model(&model("v1"), true, 1000).await.unwrap();
        assert_eq!(first.status, ModelStatus::Active);
        assert_eq!(first.activated_at, Some(1000));
        let candidate = store.insert_model(&model("v2"), false, 2000).await.unwrap();
        assert_eq!(candidate.status, ModelStatus::Candidate);
        assert_eq!(candidate.activated_at, None);
        let third = store
            .insert_model(
                &NewModel {
                    source: "job:4".to_owned(),
                    job_id: Some(4),
                    ..model("v3")
                },
                true,
                3000,
            )
            .await
            .unwrap();
        assert_eq!(third.job_id, Some(4));

        let models = store.list_models().await.unwrap();
        assert_eq!(
            statuses(&models),
            [
                ("v1", ModelStatus::Retired),
                ("v2", ModelStatus::Candidate),
                ("v3", ModelStatus::Active)
            ]
        );
        let (active, body) = store.active_model().await.unwrap().unwrap();
        assert_eq!(active, third);
        assert_eq!(body, "{\"version\":\"v3\"}");
        assert_eq!(store.model(first.id).await.unwrap().unwrap(), models[0]);
        assert_eq!(
            store.model_body(first.id).await.unwrap().as_deref(),
            Some("{\"version\":\"v1\"}")
        );
        assert!(store.model(99).await.unwrap().is_none());
        assert!(store.model_body(99).await.unwrap().is_none());

        // A version name is stored once; the refusal changes nothing.
        let again = store.insert_model(&model("v1"), true, 4000).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        assert_eq!(store.list_models().await.unwrap(), models);
    })
    .await;
}

#[tokio::test]
async fn activating_an_older_model_rolls_back_and_an_unknown_one_is_none() {
    on_both_engines(|store| async move {
        let v1 = store.insert_model(&model("v1"), true, 1000).await.unwrap();
        let v2 = store.insert_model(&model("v2"), true, 2000).await.unwrap();
        let rolled_back = store
            .activate_model(v1.id, "rollback: v2 ranks worse", 3000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rolled_back.status, ModelStatus::Active);
        assert_eq!(rolled_back.reason, "rollback: v2 ranks worse");
        assert_eq!(rolled_back.activated_at, Some(3000));
        assert_eq!(rolled_back.created_at, 1000);
        let models = store.list_models().await.unwrap();
        assert_eq!(
            statuses(&models),
            [("v1", ModelStatus::Active), ("v2", ModelStatus::Retired)]
        );
        assert_eq!(models[1].id, v2.id);
        assert_eq!(store.active_model().await.unwrap().unwrap().0.id, v1.id);

        // Activating the active model again keeps it the only active one.
        let same = store.activate_model(v1.id, "again", 4000).await.unwrap();
        assert_eq!(same.unwrap().status, ModelStatus::Active);
        assert_eq!(
            statuses(&store.list_models().await.unwrap()),
            [("v1", ModelStatus::Active), ("v2", ModelStatus::Retired)]
        );

        assert!(store.activate_model(99, "x", 5000).await.unwrap().is_none());
        assert_eq!(store.active_model().await.unwrap().unwrap().0.id, v1.id);
    })
    .await;
}

#[tokio::test]
async fn one_live_job_at_a_time() {
    on_both_engines(|store| async move {
        let first = store.create_job(false, "{\"a\":1}", 1000).await.unwrap();
        assert_eq!(first.status, JobStatus::Queued);
        assert!(!first.force);
        assert_eq!(first.params, "{\"a\":1}");
        assert_eq!(first.summary, "{}");
        assert_eq!(first.progress, 0.0);
        assert_eq!(first.started_at, None);

        let refused = store.create_job(true, "{}", 1100).await;
        match refused {
            Err(StoreError::Conflict(message)) => {
                assert!(message.contains(&format!("job {} ", first.id)), "{message}");
                assert!(message.contains("queued"), "{message}");
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        store.start_job(first.id, 1200).await.unwrap();
        assert!(matches!(
            store.start_job(first.id, 1200).await,
            Err(StoreError::Conflict(_))
        ));
        store.job_progress(first.id, "training", 0.5).await.unwrap();
        store.job_progress(first.id, "training", 7.0).await.unwrap();
        assert_eq!(store.job(first.id).await.unwrap().unwrap().progress, 1.0);
        store
            .job_progress(first.id, "evaluating", 0.75)
            .await
            .unwrap();
        let running = store.job(first.id).await.unwrap().unwrap();
        assert_eq!(running.status, JobStatus::Running);
        assert_eq!(running.stage, "evaluating");
        assert_eq!(running.progress, 0.75);
        assert_eq!(running.started_at, Some(1200));
        match store.create_job(false, "{}", 1300).await {
            Err(StoreError::Conflict(message)) => {
                assert!(message.contains(&first.id.to_string()), "{message}");
                assert!(message.contains("running"), "{message}");
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(
            store.list_jobs(10).await.unwrap().len(),
            1,
            "nothing stored"
        );

        let model = store.insert_model(&model("v1"), true, 1400).await.unwrap();
        assert!(matches!(
            store
                .finish_job(first.id, JobStatus::Running, None, None, "{}", 1500)
                .await,
            Err(StoreError::Conflict(_))
        ));
        store
            .finish_job(
                first.id,
                JobStatus::Succeeded,
                None,
                Some(model.id),
                "{\"cases\":10}",
                1500,
            )
            .await
            .unwrap();
        let done = store.job(first.id).await.unwrap().unwrap();
        assert_eq!(done.status, JobStatus::Succeeded);
        assert_eq!(done.progress, 1.0);
        assert_eq!(done.model_id, Some(model.id));
        assert_eq!(done.summary, "{\"cases\":10}");
        assert_eq!(done.finished_at, Some(1500));
        assert!(matches!(
            store
                .finish_job(first.id, JobStatus::Failed, Some("x"), None, "{}", 1600)
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store.job_progress(first.id, "late", 0.1).await,
            Err(StoreError::Conflict(_))
        ));

        let second = store.create_job(true, "{}", 1700).await.unwrap();
        assert!(second.force);
        store
            .finish_job(
                second.id,
                JobStatus::Failed,
                Some("no history"),
                None,
                "{}",
                1800,
            )
            .await
            .unwrap();
        let failed = store.job(second.id).await.unwrap().unwrap();
        assert_eq!(failed.error.as_deref(), Some("no history"));
        assert_eq!(failed.progress, 0.0);
        assert_eq!(
            store
                .list_jobs(10)
                .await
                .unwrap()
                .iter()
                .map(|j| j.id)
                .collect::<Vec<_>>(),
            [second.id, first.id],
            "newest first"
        );
        assert_eq!(store.list_jobs(1).await.unwrap().len(), 1);
        assert!(store.job(99).await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn the_live_job_index_refuses_a_second_live_job_even_past_the_check() {
    on_both_engines(|store| async move {
        store.create_job(false, "{}", 1000).await.unwrap();
        let second = with_pool!(store, pool => {
            sqlx::query(
                "INSERT INTO training_jobs (status, force, params, created_at) \
                 VALUES ('running', FALSE, '{}', 1)",
            )
            .execute(pool)
            .await
            .map(drop)
        });
        let error = second.unwrap_err();
        assert!(is_unique_violation(&error), "{error}");
    })
    .await;
}

#[tokio::test]
async fn jobs_a_restart_interrupted_are_failed() {
    on_both_engines(|store| async move {
        let done = store.create_job(false, "{}", 1000).await.unwrap();
        store
            .finish_job(done.id, JobStatus::Succeeded, None, None, "{}", 1100)
            .await
            .unwrap();
        let running = store.create_job(false, "{}", 1200).await.unwrap();
        store.start_job(running.id, 1300).await.unwrap();
        assert_eq!(store.fail_interrupted_jobs(2000).await.unwrap(), 1);
        let failed = store.job(running.id).await.unwrap().unwrap();
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(failed.error.as_deref(), Some("interrupted by a restart"));
        assert_eq!(failed.finished_at, Some(2000));
        assert_eq!(
            store.job(done.id).await.unwrap().unwrap().status,
            JobStatus::Succeeded
        );
        // A queued job is interrupted too, and a new one can then be queued.
        let queued = store.create_job(false, "{}", 2100).await.unwrap();
        assert_eq!(store.fail_interrupted_jobs(3000).await.unwrap(), 1);
        assert_eq!(
            store.job(queued.id).await.unwrap().unwrap().status,
            JobStatus::Failed
        );
        assert_eq!(store.fail_interrupted_jobs(3000).await.unwrap(), 0);
        store.create_job(false, "{}", 3100).await.unwrap();
    })
    .await;
}

#[test]
fn statuses_serialize_lowercase() {
    assert_eq!(
        serde_json::to_value(ModelStatus::Candidate).unwrap(),
        serde_json::json!("candidate")
    );
    assert_eq!(
        serde_json::to_value(JobStatus::Succeeded).unwrap(),
        serde_json::json!("succeeded")
    );
    for status in [
        ModelStatus::Active,
        ModelStatus::Candidate,
        ModelStatus::Retired,
    ] {
        assert_eq!(ModelStatus::parse(status.as_str()).unwrap(), status);
    }
    for status in [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
    ] {
        assert_eq!(JobStatus::parse(status.as_str()).unwrap(), status);
    }
    assert!(matches!(
        ModelStatus::parse("gone"),
        Err(StoreError::Corrupt(_))
    ));
}
