//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the body parsers that live
//! beside their handlers, run exactly as the handlers run them.

use rootcause_correlation::Millis;
use rootcause_topology::Topology;

use super::incident_metrics::MetricsQuery;
use crate::config::IngestConfig;
use crate::error::{ApiError, parse_json};
use crate::store::{MetricWrite, NewChange};

/// `POST /api/v1/changes`: the events a body stores, or why it is refused.
pub fn changes(
    body: &[u8],
    limits: &IngestConfig,
    topology: &Topology,
    now: Millis,
) -> Result<Vec<NewChange>, ApiError> {
    super::changes::parse_changes(body, limits, topology, now)
}

/// `POST /api/v1/incidents/{id}/metrics`: the series a body stores, or why it is refused;
/// `service_label` and `name` as the query string gives them.
pub fn metrics(
    body: &[u8],
    service_label: Option<String>,
    name: Option<String>,
    topology: &Topology,
) -> Result<Vec<MetricWrite>, ApiError> {
    let value = parse_json(body)?;
    let query = MetricsQuery {
        service_label,
        name,
    };
    super::incident_metrics::validate(value, &query, topology)
}
