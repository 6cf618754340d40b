//! Notifications: when an incident is first ranked, or its top hypothesis changes, the
//! suggestions shown for it are written to the audit log and the ranked hypotheses are sent to
//! every configured webhook (chat, ticketing, paging).
//!
//! Only a change of the top hypothesis notifies: an alert storm re-ranks an incident many
//! times a second, and a responder wants to hear when the answer changed, not that it was
//! computed again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::SYSTEM_ACTOR;
use crate::clock::Clock;
use crate::config::outgoing::origin;
use crate::config::{ActionsConfig, NotifyTarget};
use crate::outgoing::{Delivery, backoff, deliver};
use crate::ranking::Ranked;
use crate::store::{NewAudit, Store};
use crate::workers::Spawner;
use rootcause_correlation::Millis;

/// Incidents whose last notified top hypothesis is remembered in memory; beyond it the memory
/// is cleared and the audit log answers again.
const REMEMBERED: usize = 100_000;

/// Hypotheses named in a `suggested` audit entry: five, so that the stability report can score
/// what responders were shown by AC@5 and Avg@5.
const AUDITED_HYPOTHESES: usize = 5;

/// Follows every published ranking until the service stops.
pub(super) async fn run(
    store: Store,
    client: reqwest::Client,
    mut published: broadcast::Receiver<Arc<Ranked>>,
    config: ActionsConfig,
    clock: Clock,
    spawner: Spawner,
) {
    let targets = Arc::new(config.notify);
    // Incident → the top hypothesis last shown for it.
    let mut shown: HashMap<u64, String> = HashMap::new();
    loop {
        let received = tokio::select! {
            () = spawner.cancelled() => return,
            received = published.recv() => received,
        };
        let ranked = match received {
            Ok(ranked) => ranked,
            // Missed rankings are superseded by the next one of the same incident.
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "the notifier fell behind the rankings");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Some(top) = ranked.diagnosis.hypotheses.first() else {
            continue;
        };
        let previous = match shown.get(&ranked.incident) {
            Some(service) => Some(service.clone()),
            None => match store.last_audit(ranked.incident, "suggested").await {
                Ok(entry) => entry.and_then(|e| e.record.service),
                Err(error) => {
                    tracing::error!(%error, incident = ranked.incident, "cannot read the audit log");
                    continue;
                }
            },
        };
        if previous.as_deref() == Some(top.service.as_str()) {
            shown.insert(ranked.incident, top.service.clone());
            continue;
        }
        let event = if previous.is_none() {
            "opened"
        } else {
            "top_changed"
        };
        let entry = suggested(&ranked, event, previous.as_deref(), clock.now_millis());
        if let Err(error) = store.append_audit(&[entry]).await {
            tracing::error!(%error, incident = ranked.incident, "cannot write the audit log");
            continue;
        }
        if shown.len() >= REMEMBERED {
            shown.clear();
        }
        shown.insert(ranked.incident, top.service.clone());
        for target in targets.iter() {
            let body = notification(&ranked, event, previous.as_deref(), target.hypotheses);
            spawner.spawn(send(
                store.clone(),
                client.clone(),
                target.clone(),
                ranked.incident,
                event,
                body,
                clock.clone(),
                spawner.clone(),
            ));
        }
    }
}

/// The audit entry of the suggestions shown with a new top hypothesis.
fn suggested(ranked: &Ranked, event: &str, previous: Option<&str>, at: Millis) -> NewAudit {
    let hypotheses: Vec<serde_json::Value> = ranked
        .diagnosis
        .hypotheses
        .iter()
        .zip(ranked.actions.iter().chain(std::iter::repeat(&Vec::new())))
        .take(AUDITED_HYPOTHESES)
        .map(|(h, actions)| {
            serde_json::json!({
                "service": h.service,
                "confidence": h.confidence,
                "fault_type": h.fault_type,
                "actions": actions,
            })
        })
        .collect();
    NewAudit {
        at,
        actor: SYSTEM_ACTOR.to_owned(),
        kind: "suggested".to_owned(),
        incident: Some(ranked.incident),
        action: ranked
            .actions
            .first()
            .and_then(|a| a.first())
            .map(|s| s.action.clone()),
        service: ranked
            .diagnosis
            .hypotheses
            .first()
            .map(|h| h.service.clone()),
        detail: serde_json::json!({
            "event": event,
            "previous": previous,
            "revision": ranked.revision,
            "model": ranked.diagnosis.model,
            "hypotheses": hypotheses,
        }),
    }
}

/// The body a notification webhook receives: the ranking as the API shows it, cut to the
/// first `hypotheses`.
fn notification(ranked: &Ranked, event: &str, previous: Option<&str>, hypotheses: usize) -> String {
    let mut view: serde_json::Value =
        serde_json::from_str(&ranked.json).unwrap_or(serde_json::Value::Null);
    if let Some(list) = view
        .get_mut("hypotheses")
        .and_then(serde_json::Value::as_array_mut)
    {
        list.truncate(hypotheses);
    }
    serde_json::json!({
        "event": event,
        "incident": ranked.incident,
        "previous_top": previous,
        "link": format!("/api/v1/incidents/{}/hypotheses", ranked.incident),
        "ranking": view,
    })
    .to_string()
}

/// Delivers one notification with retries; the outcome goes to the audit log. Shutdown ends
/// the retries: the audit log then says the notification was not delivered.
#[allow(clippy::too_many_arguments)]
async fn send(
    store: Store,
    client: reqwest::Client,
    target: NotifyTarget,
    incident: u64,
    event: &'static str,
    body: String,
    clock: Clock,
    spawner: Spawner,
) {
    let attempts = target.retries + 1;
    let mut outcome = (None, None::<String>);
    for attempt in 1..=attempts {
        let attempt = async {
            if attempt > 1 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            deliver(
                &client,
                &target.url,
                body.clone(),
                &Default::default(),
                Duration::from_millis(target.timeout_ms),
            )
            .await
        };
        let delivery = tokio::select! {
            () = spawner.cancelled() => None,
            delivery = attempt => Some(delivery),
        };
        let Some(delivery) = delivery else {
            outcome.1 = Some("the service shut down before it was delivered".to_owned());
            break;
        };
        match delivery {
            Delivery::Delivered(status) => {
                outcome = (Some(status), None);
                break;
            }
            Delivery::Refused(status, why) => {
                outcome = (Some(status), Some(why));
                break;
            }
            Delivery::Retry(status, why) => outcome = (status, Some(why)),
        }
    }
    let (status, error) = outcome;
    if let Some(why) = &error {
        tracing::warn!(target = origin(&target.url), %why, incident, "notification not delivered");
    }
    let entry = NewAudit {
        at: clock.now_millis(),
        actor: SYSTEM_ACTOR.to_owned(),
        kind: if error.is_none() {
            "notified"
        } else {
            "notify_failed"
        }
        .to_owned(),
        incident: Some(incident),
        action: None,
        service: None,
        detail: serde_json::json!({
            "event": event,
            "target": origin(&target.url),
            "response_status": status,
            "error": error,
        }),
    };
    if let Err(error) = store.append_audit(&[entry]).await {
        tracing::error!(%error, incident, "cannot write the audit log");
    }
}
