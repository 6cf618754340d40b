//! `GET /console/events`: one event stream for the incident list. It sends `changed` (with the
//! incident's id) when any incident gets a new ranking, at most once per [`COALESCE`], so a
//! storm of thousands of alerts costs each open list a refresh a second, not one per alert.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::state::AppState;

/// Changes that arrive this close together are sent as one event.
const COALESCE: Duration = Duration::from_secs(1);
/// How often an idle stream sends a comment, so proxies do not close it.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(super) async fn events(State(state): State<AppState>) -> Response {
    Sse::new(changes(state))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

fn changes(state: AppState) -> impl Stream<Item = Result<Event, Infallible>> {
    let published = state.ranking.published();
    let stopping = state.ranking.stopping();
    futures_util::stream::unfold(
        (published, stopping),
        |(mut published, stopping)| async move {
            let first = tokio::select! {
                _ = stopping.cancelled() => return None,
                received = published.recv() => match received {
                    Ok(ranked) => Some(ranked.incident),
                    Err(RecvError::Lagged(_)) => None,
                    Err(RecvError::Closed) => return None,
                },
            };
            tokio::select! {
                _ = stopping.cancelled() => return None,
                () = tokio::time::sleep(COALESCE) => {}
            }
            // Whatever else arrived meanwhile goes with this event.
            let mut many = first.is_none();
            loop {
                match published.try_recv() {
                    Ok(_) | Err(TryRecvError::Lagged(_)) => many = true,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => return None,
                }
            }
            let data = match (first, many) {
                (Some(id), false) => id.to_string(),
                _ => "*".to_owned(),
            };
            Some((
                Ok(Event::default().event("changed").data(data)),
                (published, stopping),
            ))
        },
    )
}
