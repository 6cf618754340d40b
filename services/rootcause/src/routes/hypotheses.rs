//! `GET /api/v1/incidents/{id}/hypotheses` and `GET /api/v1/incidents/{id}/events`: the ranked
//! root-cause hypotheses of an incident, now and as a live stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use rootcause_correlation::IncidentSnapshot;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incident::IncidentPath;
use super::incidents::IncidentView;
use crate::clock::Clock;
use crate::error::{ApiError, ErrorBody};
use crate::live_risks::LiveRisks;
use crate::live_topology::LiveTopology;
use crate::ranking::{Found, HypothesesView, Notice, Ranked, Ranking};
use crate::state::AppState;

/// How often an idle event stream sends a comment, so that proxies and load balancers do not
/// close it for inactivity.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_hypotheses))
        .routes(routes!(incident_events))
}

/// The data of the `end` event.
#[derive(Debug, Serialize)]
struct EndView {
    incident: i64,
    merged_into: i64,
}

/// The ranked root-cause hypotheses of an incident: every candidate (its alerting services and
/// their callees up to `ranking.hops`), most likely first, with confidence, role, fault type,
/// evidence and propagation paths, and in front the incident's `priority` (as in the incident's
/// JSON: raised inside a critical window of the business calendar). An incident not ranked yet
/// is ranked for the request. A merged incident answers 404 with code `merged` and a `Location`
/// of the survivor's hypotheses.
#[utoipa::path(get, path = "/incidents/{id}/hypotheses", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")),
    responses((status = 200, description = "The latest ranking", body = HypothesesView),
              (status = 404, description = "No such incident, or merged (code `merged`, \
                                              `Location` of the survivor's hypotheses)",
               body = ErrorBody)))]
async fn get_hypotheses(
    State(state): State<AppState>,
    incident_path: IncidentPath,
) -> Result<Response, ApiError> {
    let id = incident_path.id;
    let ranked = incident_path.held(state.ranking.hypotheses(id).await?)?;
    // The ranking's JSON is shared by every reader; the priority depends on the time of asking,
    // so it is put in front of the ranking's fields here rather than parsed in. The incident
    // is read from memory where the ranking holds it (it just did), from the store otherwise.
    let now = state.clock.now_millis();
    let view = match state.ranking.latest(id) {
        Found::Held((snapshot, _)) => Some(IncidentView::of_snapshot(
            &snapshot,
            &state.risks,
            &state.topology.current().topology,
            now,
        )),
        Found::Merged(_) | Found::Unknown => {
            match state
                .store
                .incident(i64::try_from(id).unwrap_or(i64::MAX))
                .await?
            {
                Some(row) => Some(IncidentView::of(row, &state, now)?),
                None => None,
            }
        }
    };
    let priority = match view {
        Some(view) => serde_json::to_string(view.priority()).map_err(ApiError::internal)?,
        None => "null".to_owned(),
    };
    let json = match ranked.json.strip_prefix('{') {
        Some(rest) => format!("{{\"priority\":{priority},{rest}"),
        None => ranked.json.to_string(),
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// Live updates of an incident as server-sent events: first `hypotheses` with the current
/// ranking (the JSON of `GET /api/v1/incidents/{id}/hypotheses`), then a `hypotheses` event per
/// new ranking and an `incident` event (the JSON of the incident list) whenever the incident
/// changes; a comment every 15 s keeps the connection open. When the incident is merged into
/// another the stream sends `end` (`{"incident": id, "merged_into": survivor}`) and closes. A
/// client that falls behind is sent the latest state rather than every change it missed.
#[utoipa::path(get, path = "/incidents/{id}/events", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")),
    responses((status = 200, description = "An event stream (`hypotheses`, `incident`, `end`)",
               content_type = "text/event-stream", body = String),
              (status = 404, description = "No such incident, or merged (code `merged`)",
               body = ErrorBody)))]
async fn incident_events(
    State(state): State<AppState>,
    incident_path: IncidentPath,
) -> Result<Response, ApiError> {
    let id = incident_path.id;
    let subscription = incident_path.held(state.ranking.subscribe(id).await?)?;
    let mut live = Live {
        ranking: state.ranking.clone(),
        risks: state.risks.clone(),
        topology: state.topology.clone(),
        clock: state.clock.clone(),
        id,
        notices: subscription.notices,
        stopping: state.ranking.stopping(),
        pending: VecDeque::new(),
        revision: 0,
        ended: false,
    };
    live.hypotheses(&subscription.ranked);
    let stream = futures_util::stream::unfold(live, next_event);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// The state of one event stream.
struct Live {
    ranking: Ranking,
    /// For the incident's priority.
    risks: Arc<LiveRisks>,
    topology: Arc<LiveTopology>,
    clock: Clock,
    id: u64,
    notices: broadcast::Receiver<Arc<Notice>>,
    stopping: CancellationToken,
    /// Events ready to send.
    pending: VecDeque<Event>,
    /// The revision of the last `hypotheses` event sent: an older or repeated ranking is never
    /// sent again.
    revision: u64,
    ended: bool,
}

impl Live {
    fn hypotheses(&mut self, ranked: &Ranked) {
        if ranked.revision > self.revision {
            self.revision = ranked.revision;
            self.pending
                .push_back(Event::default().event("hypotheses").data(&*ranked.json));
        }
    }

    fn incident(&mut self, snapshot: &IncidentSnapshot) {
        self.pending.push_back(event(
            "incident",
            &IncidentView::of_snapshot(
                snapshot,
                &self.risks,
                &self.topology.current().topology,
                self.clock.now_millis(),
            ),
        ));
    }

    fn end(&mut self, survivor: u64) {
        let data = EndView {
            incident: i64::try_from(self.id).unwrap_or(i64::MAX),
            merged_into: i64::try_from(survivor).unwrap_or(i64::MAX),
        };
        self.pending.push_back(event("end", &data));
        self.ended = true;
    }

    /// After falling behind: the incident and its ranking as they are now, then only what
    /// comes next.
    fn catch_up(&mut self) {
        self.notices = self.notices.resubscribe();
        match self.ranking.latest(self.id) {
            Found::Held((snapshot, ranked)) => {
                self.incident(&snapshot);
                if let Some(ranked) = ranked {
                    self.hypotheses(&ranked);
                }
            }
            Found::Merged(survivor) => self.end(survivor),
            Found::Unknown => self.ended = true,
        }
    }
}

fn event(kind: &str, data: &impl Serialize) -> Event {
    Event::default()
        .event(kind)
        .data(serde_json::to_string(data).unwrap_or_else(|_| "null".to_owned()))
}

async fn next_event(mut live: Live) -> Option<(Result<Event, Infallible>, Live)> {
    loop {
        if let Some(event) = live.pending.pop_front() {
            return Some((Ok(event), live));
        }
        if live.ended {
            return None;
        }
        let notice = tokio::select! {
            biased;
            () = live.stopping.cancelled() => return None,
            notice = live.notices.recv() => notice,
        };
        match notice {
            Ok(notice) => match &*notice {
                Notice::Hypotheses(ranked) => live.hypotheses(ranked),
                Notice::Incident(snapshot) => live.incident(snapshot),
                Notice::End { survivor } => live.end(*survivor),
            },
            Err(RecvError::Lagged(_)) => live.catch_up(),
            Err(RecvError::Closed) => match live.ranking.latest(live.id) {
                Found::Merged(survivor) => live.end(survivor),
                _ => live.ended = true,
            },
        }
    }
}

#[cfg(test)]
mod tests;
