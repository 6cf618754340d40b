//! The topology document: services, dependencies and their attributes, exactly as they are
//! written in YAML or JSON and served by `GET /api/v1/topology`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest service name or alias accepted, in bytes (a DNS name's limit).
pub const MAX_NAME_LEN: usize = 253;

/// A whole topology as a document: the shape of the YAML/JSON files and of the HTTP API.
///
/// Unknown fields are rejected (a misspelt `criticallity` must not vanish silently).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyDocument {
    /// Every service, once.
    #[serde(default)]
    pub services: Vec<Service>,
    /// Caller → callee edges between services of `services`.
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
}

/// A node of the graph: something that can fail and can raise alerts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Unique name; alerts are mapped to it.
    pub name: String,
    /// What sort of component this is.
    pub kind: ServiceKind,
    /// Owning team, shown to responders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Business criticality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criticality: Option<Criticality>,
    /// Other names alerts use for this service (pod-name prefixes, job names, ...). Unique across
    /// the topology and distinct from every service name, so that mapping is unambiguous.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Free-form labels; also usable as label matchers when mapping alerts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Service {
    /// A service with only a name and a kind.
    pub fn new(name: impl Into<String>, kind: ServiceKind) -> Self {
        Service {
            name: name.into(),
            kind,
            team: None,
            criticality: None,
            aliases: Vec::new(),
            labels: BTreeMap::new(),
        }
    }
}

/// The kinds of component the model knows. The list is closed so that rankers and runbooks can
/// rely on it; an unknown kind is a document error.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// An application service.
    Service,
    /// A database (relational or not).
    Database,
    /// A cache (Redis, Memcached, ...).
    Cache,
    /// A message queue or broker.
    Queue,
    /// An entry point: API gateway, ingress, web front end.
    Gateway,
    /// Something outside the operator's control (a payment provider, a client).
    External,
    /// A machine or node that services run on.
    Host,
}

impl ServiceKind {
    /// The lowercase name used in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Service => "service",
            ServiceKind::Database => "database",
            ServiceKind::Cache => "cache",
            ServiceKind::Queue => "queue",
            ServiceKind::Gateway => "gateway",
            ServiceKind::External => "external",
            ServiceKind::Host => "host",
        }
    }
}

/// Business criticality of a service.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    /// Can be down for a while.
    Low,
    /// Degrades the product.
    Medium,
    /// Breaks an important flow.
    High,
    /// Stops trading or settlement.
    Critical,
}

impl Criticality {
    /// The lowercase name used in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Criticality::Low => "low",
            Criticality::Medium => "medium",
            Criticality::High => "high",
            Criticality::Critical => "critical",
        }
    }
}

/// An edge `caller → callee`. Faults propagate against it: a failing callee shows symptoms in its
/// callers.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// The service that makes the call.
    pub caller: String,
    /// The service that is called.
    pub callee: String,
    /// Where the edge is known from.
    #[serde(default, skip_serializing_if = "DependencySource::is_static")]
    pub source: DependencySource,
    /// Protocol of the calls (`http`, `grpc`, `sql`, `amqp`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Observed calls per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_rate: Option<f64>,
    /// Observed fraction of failed calls, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Observed typical latency of a call, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// When the edge was first observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<DateTime<Utc>>,
    /// When the edge was last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
}

impl Dependency {
    /// A static edge with no observed attributes.
    pub fn new(caller: impl Into<String>, callee: impl Into<String>) -> Self {
        Dependency {
            caller: caller.into(),
            callee: callee.into(),
            source: DependencySource::Static,
            protocol: None,
            call_rate: None,
            error_rate: None,
            latency_ms: None,
            first_seen: None,
            last_seen: None,
        }
    }
}

/// Where a dependency is known from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DependencySource {
    /// Written by an operator.
    #[default]
    Static,
    /// Learned from distributed traces.
    Traces,
    /// Taken from a service-graph metric (e.g. Tempo/Grafana `traces_service_graph_*`).
    Servicegraph,
}

impl DependencySource {
    fn is_static(&self) -> bool {
        *self == DependencySource::Static
    }
}
