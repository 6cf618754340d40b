//! What the stability report reads from the store: the incidents of a period with their first
//! human response, latest resolution and the hypotheses shown before it, and the change events;
//! the figures themselves are computed by the pure [`super::report`].

use super::{ChangeRecord, IncidentRecord, ResolutionRecord, StabilityReport};
use crate::state::AppState;
use crate::store::{AuditFilter, ChangeFilter, IncidentFilter, Page, StoreError};

/// Change events read for one report at most.
const MAX_CHANGES: i64 = 100_000;

/// The report over `[since, until]` (ms) of at most `limit` incidents (the newest), and whether
/// the period held more. What the route and the console's report page show.
pub async fn gather(
    state: &AppState,
    since: i64,
    until: i64,
    limit: usize,
) -> Result<(StabilityReport, bool), StoreError> {
    let (incidents, truncated) = incident_records(state, since, until, limit).await?;
    let changes: Vec<ChangeRecord> = state
        .store
        .list_changes(&ChangeFilter {
            service: None,
            since: Some(since),
            until: Some(until),
            limit: MAX_CHANGES,
        })
        .await?
        .into_iter()
        .map(|c| ChangeRecord {
            service: c.mapped.unwrap_or(c.service),
            at: c.at,
        })
        .collect();
    let current = state.topology.current();
    let report = super::report(since, until, &incidents, &changes, |service| {
        current
            .topology
            .service(service)
            .and_then(|s| s.team.clone())
    });
    Ok((report, truncated))
}

/// The incidents opened in the period (newest first, at most `limit`, merged ones left out),
/// each with its first human response, latest resolution and the hypotheses shown before it.
async fn incident_records(
    state: &AppState,
    since: i64,
    until: i64,
    limit: usize,
) -> Result<(Vec<IncidentRecord>, bool), StoreError> {
    let store = &state.store;
    let rows = store
        .list_incidents(&IncidentFilter {
            status: None,
            service: None,
            page: Page {
                since: Some(since),
                until: Some(until),
                before: None,
                limit: i64::try_from(limit + 1).unwrap_or(i64::MAX),
            },
        })
        .await?;
    let truncated = rows.len() > limit;
    let mut records = Vec::with_capacity(rows.len().min(limit));
    for row in rows.into_iter().take(limit) {
        if row.status == "merged" || !(since..=until).contains(&row.opened_at) {
            continue;
        }
        let id = row.id;
        let suggested = AuditFilter {
            incident: Some(id as u64),
            kind: Some("suggested".to_owned()),
            after: None,
            limit: 1_000,
        };
        let (decisions, feedback, resolutions, shown) = tokio::join!(
            store.decisions(id as u64),
            store.feedback(id),
            store.resolutions(id),
            store.audit(&suggested),
        );
        let (decisions, feedback, resolutions, shown) =
            (decisions?, feedback?, resolutions?, shown?);
        let first_response_at = decisions
            .iter()
            .map(|d| d.record.at)
            .chain(feedback.iter().map(|f| f.recorded_at))
            .chain(resolutions.iter().map(|r| r.recorded_at))
            .min();
        let resolution = resolutions.last().map(|r| {
            // What responders saw last before they recorded it.
            let seen = shown
                .iter()
                .rfind(|entry| entry.record.at <= r.recorded_at)
                .map(|entry| {
                    entry.record.detail["hypotheses"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|h| h["service"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            ResolutionRecord {
                root_cause: r.resolution.root_cause.clone(),
                action: r.resolution.action.clone(),
                worked: r.resolution.worked,
                time_to_mitigate_s: r.resolution.time_to_mitigate_s,
                shown: seen,
            }
        });
        records.push(IncidentRecord {
            id,
            opened_at: row.opened_at,
            first_activity: row.first_activity,
            resolved_at: row.resolved_at,
            services: row.service_names(),
            alert_count: row.alert_count,
            first_response_at,
            resolution,
        });
    }
    Ok((records, truncated))
}
