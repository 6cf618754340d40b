//! The incident a request names (`/api/v1/incidents/{id}/...`), and the one way every incident
//! route answers for an incident that does not exist (404 `not_found`) or was merged into
//! another (404 `merged`, with a `Location` naming the same resource of the survivor).

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;

use crate::actions::DecideError;
use crate::error::ApiError;
use crate::learning::ResolveError;
use crate::ranking::{Found, Gone, PostError};

/// The `{id}` of an incident route and the resource asked for under it (`hypotheses`,
/// `actions/restart/approve`, ...).
#[derive(Debug, Clone)]
pub(super) struct IncidentPath {
    /// The incident.
    pub(super) id: u64,
    /// The path after `/incidents/{id}/`.
    resource: String,
}

impl IncidentPath {
    /// The id as the store keys it (it came from an `i64` path parameter, so it fits).
    pub(super) fn row(&self) -> i64 {
        self.id as i64
    }

    /// The value of a lookup, or the API's answer for a missing or merged incident.
    pub(super) fn held<T>(&self, found: Found<T>) -> Result<T, ApiError> {
        found
            .held(self.id)
            .map_err(|gone| gone_error(gone, &self.resource))
    }

    /// A domain error as the API answers it: a missing or merged incident as [`Self::held`]
    /// does, anything else by its `From` conversion.
    pub(super) fn error<E: IncidentError>(&self, error: E) -> ApiError {
        match error.gone() {
            Some(gone) => gone_error(gone, &self.resource),
            None => error.into(),
        }
    }
}

/// 404 `not_found` for an unknown incident; 404 `merged` for a merged one, with the `Location`
/// of the same `resource` of the survivor.
pub(super) fn gone_error(gone: Gone, resource: &str) -> ApiError {
    match gone {
        Gone::Unknown(id) => ApiError::not_found(format!("no incident {id}")),
        Gone::Merged { incident, survivor } => ApiError::merged(incident, survivor, resource),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IncidentPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|rejection| {
                ApiError::new(rejection.status(), "invalid_path", rejection.body_text())
            })?;
        let raw = params
            .iter()
            .find(|(name, _)| *name == "id")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| ApiError::internal("an incident route without an {id} parameter"))?;
        let id: i64 = raw.parse().map_err(|_| {
            ApiError::bad_request(
                "invalid_path",
                format!("Invalid URL: Cannot parse `{raw}` to a `i64`"),
            )
        })?;
        // Ids are positive: a negative one names no incident.
        let id = u64::try_from(id).map_err(|_| ApiError::not_found(format!("no incident {id}")))?;
        let path = parts.uri.path();
        let resource = path
            .split_once(&format!("/incidents/{raw}/"))
            .map_or("", |(_, rest)| rest)
            .to_owned();
        Ok(IncidentPath { id, resource })
    }
}

/// A domain error that may say the incident is missing or merged away.
pub(super) trait IncidentError: Into<ApiError> {
    /// The incident's absence, when the error is about the incident itself.
    fn gone(&self) -> Option<Gone>;
}

impl IncidentError for DecideError {
    fn gone(&self) -> Option<Gone> {
        match self {
            DecideError::Gone(gone) => Some(*gone),
            _ => None,
        }
    }
}

impl IncidentError for PostError {
    fn gone(&self) -> Option<Gone> {
        match self {
            PostError::Gone(gone) => Some(*gone),
            _ => None,
        }
    }
}

impl IncidentError for ResolveError {
    fn gone(&self) -> Option<Gone> {
        match self {
            ResolveError::Gone(gone) => Some(*gone),
            ResolveError::Store(_) => None,
        }
    }
}
