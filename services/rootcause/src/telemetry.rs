//! Logs (tracing) and metrics (Prometheus text format at `/metrics`).

use std::io::IsTerminal;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Metric names, in one place so that dashboards and code agree.
pub mod names {
    /// Counter: HTTP requests answered, by method, matched route and status.
    pub const HTTP_REQUESTS: &str = "rootcause_http_requests_total";
    /// Histogram: seconds to answer an HTTP request, by method and matched route.
    pub const HTTP_DURATION: &str = "rootcause_http_request_duration_seconds";
    /// Gauge: services in the current topology.
    pub const TOPOLOGY_SERVICES: &str = "rootcause_topology_services";
    /// Gauge: dependencies in the current topology.
    pub const TOPOLOGY_DEPENDENCIES: &str = "rootcause_topology_dependencies";
    /// Gauge: id of the current topology version.
    pub const TOPOLOGY_VERSION: &str = "rootcause_topology_version";
    /// Counter: topology versions made current after start-up (stored here or loaded from
    /// another replica), by the kind of source (`api`, `file`, `builtin`).
    pub const TOPOLOGY_CHANGES: &str = "rootcause_topology_changes_total";
    /// Counter: alerts received, by source endpoint and outcome (new, updated, duplicate, stale).
    pub const ALERTS_RECEIVED: &str = "rootcause_alerts_received_total";
    /// Gauge: requests waiting for the ingest writer.
    pub const INGEST_QUEUE_DEPTH: &str = "rootcause_ingest_queue_depth";
    /// Histogram: alerts per group commit.
    pub const INGEST_BATCH_ALERTS: &str = "rootcause_ingest_batch_alerts";
    /// Histogram: seconds the database took to commit one group (alerts and incident changes).
    pub const INGEST_COMMIT_SECONDS: &str = "rootcause_ingest_commit_seconds";
    /// Histogram: seconds the correlation engine took for one group.
    pub const CORRELATION_SECONDS: &str = "rootcause_correlation_seconds";
    /// Gauge: open incidents.
    pub const INCIDENTS_OPEN: &str = "rootcause_incidents_open";
    /// Gauge: firing alerts.
    pub const ALERTS_FIRING: &str = "rootcause_alerts_firing";
    /// Gauge: ended alerts the correlation engine remembers.
    pub const ALERTS_ENDED_REMEMBERED: &str = "rootcause_alerts_ended_remembered";
    /// Gauge: bytes in live heap allocations, as the allocator counts them (the `rootcause`
    /// binary sets it; Rust's allocations and SQLite's page caches).
    pub const HEAP_ALLOCATED: &str = "rootcause_heap_allocated_bytes";
    /// Gauge: bytes of physical memory the allocator holds (live allocations, free space of
    /// partly used pages, freed pages not yet returned, its metadata).
    pub const HEAP_RESIDENT: &str = "rootcause_heap_resident_bytes";
    /// Histogram: seconds to rank one incident (building its case and diagnosing it).
    pub const RANKING_SECONDS: &str = "rootcause_ranking_seconds";
    /// Gauge: incidents ranking holds in memory (open ones, and resolved ones for
    /// `ranking.hold_resolved_secs`).
    pub const RANKING_INCIDENTS_HELD: &str = "rootcause_ranking_incidents_held";
    /// Gauge: incidents waiting to be ranked.
    pub const RANKING_QUEUE_DEPTH: &str = "rootcause_ranking_queue_depth";
    /// Counter: alert occurrences not held for ranking because they are of a new kind and their
    /// incident holds `ranking.max_alert_kinds_per_incident` kinds already.
    pub const RANKING_ALERTS_NOT_HELD: &str = "rootcause_ranking_alerts_not_held_total";
    /// Counter: rankings computed.
    pub const RANKINGS_TOTAL: &str = "rootcause_rankings_total";
    /// Counter: requests refused by a limit, by the limit's configuration key.
    pub const REJECTED: &str = "rootcause_rejected_total";
    /// Gauge: always 1, labelled with the version of the binary.
    pub const BUILD_INFO: &str = "rootcause_build_info";
    /// Gauge: a service's risk score (0 to 1), for the `risk.metrics_services` highest.
    pub const SERVICE_RISK_SCORE: &str = "rootcause_service_risk_score";
    /// Counter: change events to a service whose changes are risky, flagged on arrival.
    pub const RISKY_CHANGES: &str = "rootcause_risky_changes_total";
}

/// Sets up logging to stderr. `filter` uses EnvFilter syntax (`info,sqlx=warn`).
pub fn init_tracing(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("invalid log_filter {filter:?}: {e}"))?;
    // Colour only on a terminal: escape codes in a log file or a journal are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("logging already set up: {e}"))
}

/// The process-wide Prometheus recorder, installed on first use. The `metrics` facade allows one
/// recorder per process, so tests that build several apps share it.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(names::HTTP_DURATION.to_owned()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0,
                    ],
                )
                .expect("bucket list is not empty")
                .set_buckets_for_metric(
                    Matcher::Full(names::INGEST_BATCH_ALERTS.to_owned()),
                    &[1.0, 10.0, 100.0, 1000.0, 5000.0, 10000.0, 20000.0, 50000.0],
                )
                .expect("bucket list is not empty")
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".to_owned()),
                    &[
                        0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                        1.0, 2.5, 5.0, 10.0,
                    ],
                )
                .expect("bucket list is not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            metrics::gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        names::HTTP_REQUESTS,
        "HTTP requests answered, by method, matched route and status"
    );
    describe_histogram!(
        names::HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by method and matched route"
    );
    describe_gauge!(names::TOPOLOGY_SERVICES, "Services in the current topology");
    describe_gauge!(
        names::TOPOLOGY_DEPENDENCIES,
        "Dependencies in the current topology"
    );
    describe_gauge!(
        names::TOPOLOGY_VERSION,
        "Id of the current topology version"
    );
    describe_counter!(
        names::TOPOLOGY_CHANGES,
        "Topology versions made current after start-up, by kind of source"
    );
    describe_gauge!(names::BUILD_INFO, "Always 1; the label carries the version");
    describe_counter!(
        names::ALERTS_RECEIVED,
        "Alerts received, by source endpoint and outcome"
    );
    describe_gauge!(
        names::INGEST_QUEUE_DEPTH,
        "Requests waiting for the ingest writer"
    );
    describe_histogram!(names::INGEST_BATCH_ALERTS, "Alerts per group commit");
    describe_histogram!(
        names::INGEST_COMMIT_SECONDS,
        Unit::Seconds,
        "Time the database took to commit one group of alerts and incident changes"
    );
    describe_histogram!(
        names::CORRELATION_SECONDS,
        Unit::Seconds,
        "Time the correlation engine took for one group of alerts"
    );
    describe_gauge!(names::INCIDENTS_OPEN, "Open incidents");
    describe_histogram!(
        names::RANKING_SECONDS,
        Unit::Seconds,
        "Time to rank one incident: building its case and diagnosing it"
    );
    describe_gauge!(names::RANKING_QUEUE_DEPTH, "Incidents waiting to be ranked");
    describe_gauge!(
        names::RANKING_INCIDENTS_HELD,
        "Incidents ranking holds in memory: open ones, and resolved ones for \
         ranking.hold_resolved_secs (refreshed every 15 s)"
    );
    describe_counter!(names::RANKINGS_TOTAL, "Rankings computed");
    describe_gauge!(names::ALERTS_FIRING, "Firing alerts");
    describe_gauge!(
        names::ALERTS_ENDED_REMEMBERED,
        "Ended alerts the correlation engine remembers, to recognise late deliveries and reopen \
         resolved incidents (correlation.max_remembered_ended, correlation.reopen_within_secs)"
    );
    describe_gauge!(
        names::HEAP_ALLOCATED,
        Unit::Bytes,
        "Bytes in live heap allocations (the allocator's count, refreshed every 5 s)"
    );
    describe_gauge!(
        names::HEAP_RESIDENT,
        Unit::Bytes,
        "Bytes of physical memory the allocator holds: live allocations, free space in partly \
         used pages, freed pages not yet returned, its metadata"
    );
    describe_gauge!(
        names::SERVICE_RISK_SCORE,
        "Risk score of a service (structure, fault trend, recurrence, change failure, failing \
         actions), 0 to 1"
    );
    describe_counter!(
        names::RISKY_CHANGES,
        "Change events to services whose change failure rate is flagged"
    );
}
