//! The scope every route needs, in one table a responder or auditor can read at a glance. A
//! route missing here is refused (403) for everyone, and a test walks the API document and
//! fails on any route without an entry.

use axum::http::Method;

use super::Scope;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health, readiness, the service's own metrics and the API document.
    Public,
    /// A token with (or granting) this scope.
    Scoped(Scope),
}

/// Routes as axum matches them (`{id}` placeholders), by method.
const TABLE: &[(&str, &str, Access)] = {
    use Access::{Public, Scoped};
    use Scope::{Admin, Ingest, Read, Respond};
    &[
        ("GET", "/healthz", Public),
        ("GET", "/readyz", Public),
        ("GET", "/metrics", Public),
        ("GET", "/api/v1/openapi.json", Public),
        // Intake.
        ("POST", "/api/v2/alerts", Scoped(Ingest)),
        ("POST", "/api/v1/alerts", Scoped(Ingest)),
        ("POST", "/api/v1/alerts/alertmanager", Scoped(Ingest)),
        ("POST", "/api/v1/changes", Scoped(Ingest)),
        ("POST", "/api/v1/traces", Scoped(Ingest)),
        ("POST", "/api/v1/incidents/{id}/metrics", Scoped(Ingest)),
        // Reading.
        ("GET", "/api/v1/alerts", Scoped(Read)),
        ("GET", "/api/v1/audit", Scoped(Read)),
        ("GET", "/api/v1/changes", Scoped(Read)),
        ("GET", "/api/v1/history", Scoped(Read)),
        ("GET", "/api/v1/incidents", Scoped(Read)),
        ("GET", "/api/v1/incidents/{id}", Scoped(Read)),
        ("GET", "/api/v1/incidents/{id}/actions", Scoped(Read)),
        ("GET", "/api/v1/incidents/{id}/events", Scoped(Read)),
        ("GET", "/api/v1/incidents/{id}/hypotheses", Scoped(Read)),
        ("GET", "/api/v1/incidents/{id}/resolution", Scoped(Read)),
        ("GET", "/api/v1/incidents/{id}/similar", Scoped(Read)),
        ("GET", "/api/v1/models", Scoped(Read)),
        ("GET", "/api/v1/models/jobs", Scoped(Read)),
        ("GET", "/api/v1/models/jobs/{id}", Scoped(Read)),
        ("GET", "/api/v1/models/{id}", Scoped(Read)),
        ("GET", "/api/v1/reports/stability", Scoped(Read)),
        ("GET", "/api/v1/risks", Scoped(Read)),
        ("GET", "/api/v1/runbooks", Scoped(Read)),
        ("GET", "/api/v1/services", Scoped(Read)),
        ("GET", "/api/v1/services/{name}", Scoped(Read)),
        ("GET", "/api/v1/topology", Scoped(Read)),
        ("GET", "/api/v1/topology/diff", Scoped(Read)),
        ("GET", "/api/v1/topology/paths", Scoped(Read)),
        (
            "GET",
            "/api/v1/topology/single-points-of-failure",
            Scoped(Read),
        ),
        ("GET", "/api/v1/topology/versions", Scoped(Read)),
        ("GET", "/api/v1/topology/versions/{id}", Scoped(Read)),
        // Deciding.
        (
            "POST",
            "/api/v1/incidents/{id}/actions/{action}/approve",
            Scoped(Respond),
        ),
        (
            "POST",
            "/api/v1/incidents/{id}/actions/{action}/reject",
            Scoped(Respond),
        ),
        ("POST", "/api/v1/incidents/{id}/feedback", Scoped(Respond)),
        ("POST", "/api/v1/incidents/{id}/resolution", Scoped(Respond)),
        // Changing what the service believes and does.
        ("PUT", "/api/v1/topology", Scoped(Admin)),
        ("PUT", "/api/v1/services/{name}", Scoped(Admin)),
        ("DELETE", "/api/v1/services/{name}", Scoped(Admin)),
        ("PUT", "/api/v1/dependencies", Scoped(Admin)),
        ("DELETE", "/api/v1/dependencies", Scoped(Admin)),
        ("PUT", "/api/v1/runbooks", Scoped(Admin)),
        ("POST", "/api/v1/history", Scoped(Admin)),
        ("POST", "/api/v1/models/train", Scoped(Admin)),
        ("POST", "/api/v1/models/{id}/activate", Scoped(Admin)),
        ("GET", "/api/v1/tokens", Scoped(Admin)),
        ("POST", "/api/v1/tokens", Scoped(Admin)),
        ("DELETE", "/api/v1/tokens/{name}", Scoped(Admin)),
        // A browser session stands for a token that can at least read (see `auth::session`).
        ("POST", "/api/v1/session", Scoped(Read)),
        ("DELETE", "/api/v1/session", Public),
        // The console: its pages read (its buttons call the API routes above); the sign-in page
        // and the embedded script and style sheet hold no data.
        ("GET", "/", Scoped(Read)),
        ("GET", "/incidents/{id}", Scoped(Read)),
        ("GET", "/topology", Scoped(Read)),
        ("GET", "/models", Scoped(Read)),
        ("GET", "/risks", Scoped(Read)),
        ("GET", "/reports", Scoped(Read)),
        ("GET", "/console/events", Scoped(Read)),
        ("GET", "/login", Public),
        ("GET", "/console/assets/{file}", Public),
    ]
};

/// What the route `path` (as matched, with placeholders) needs for `method`; `None` for a
/// route not in the table. `HEAD` needs what `GET` needs.
pub fn required_access(method: &Method, path: &str) -> Option<Access> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    TABLE
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, access)| *access)
}
