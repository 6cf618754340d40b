//! `GET /api/v1/risks`: the risks of the estate before anything fails. For now the structural
//! ones, read from the current topology (`rootcause_topology::risks`).

use axum::Json;
use axum::extract::State;
use rootcause_topology::risks::StructuralRisk;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::blocking;
use crate::error::ApiError;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_risks))
}

/// The risks of the estate.
#[derive(Debug, Serialize, ToSchema)]
struct RiskList {
    /// The topology version they were read from.
    topology_version: i64,
    /// Highest score first.
    items: Vec<StructuralRisk>,
}

/// Structural risks of the current topology, highest first: single points of failure,
/// critical services and datastores with one replica and no fallback (labels `replicas` and
/// `fallback`), the largest criticality-weighted blast radii, dependency cycles and fan-in hot
/// spots, each with a score (0 to 1), a severity, the services concerned and why. Computed once
/// per topology version.
#[utoipa::path(get, path = "/risks", tag = "topology",
    responses((status = 200, description = "Highest first", body = RiskList)))]
async fn list_risks(State(state): State<AppState>) -> Result<Json<RiskList>, ApiError> {
    let current = state.topology.current();
    let list = blocking(move || RiskList {
        topology_version: current.version.id,
        items: current.structural_risks().to_vec(),
    })
    .await?;
    Ok(Json(list))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::super::tests::app;

    #[tokio::test]
    async fn the_bundled_topology_has_its_front_end_as_the_first_structural_risk() {
        let app = app().await;
        let answer = app.get("/api/v1/risks").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        let body = answer.json();
        assert_eq!(body["topology_version"], 1);
        let first = &body["items"][0];
        assert_eq!(first["kind"], "single_point_of_failure", "{body:#}");
        assert_eq!(first["services"][0], "frontend");
        assert_eq!(first["severity"], "critical");
        assert!(first["why"].as_str().unwrap().contains("only through it"));
        let kinds: Vec<&str> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"blast_radius"), "{kinds:?}");
    }
}
