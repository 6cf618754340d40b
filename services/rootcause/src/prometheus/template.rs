//! PromQL templates expanded for the services under suspicion: one request per shared
//! template, one per service for a per-service template.

use std::collections::BTreeMap;

use super::QueryName;

/// Replaced by one service's name, escaped for a double-quoted PromQL string; the template then
/// runs once per service.
pub const SERVICE_PLACEHOLDER: &str = "{{service}}";

/// Replaced by `a|b|c`, every requested service regex-escaped, for a `=~"..."` matcher (which
/// Prometheus anchors at both ends, so `cart` never matches `cart-db`).
pub const SERVICES_PLACEHOLDER: &str = "{{services}}";

/// One request to make: a template expanded for all services or for one.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Job {
    pub(super) name: QueryName,
    pub(super) query: String,
}

/// The requests for `services` (sorted, distinct): one per shared template, one per service for
/// each per-service template.
pub(super) fn jobs(queries: &BTreeMap<String, String>, services: &[String]) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (name, template) in queries {
        if template.contains(SERVICE_PLACEHOLDER) {
            for service in services {
                jobs.push(Job {
                    name: QueryName {
                        name: name.clone(),
                        service: Some(service.clone()),
                    },
                    query: expand(template, Some(service), std::slice::from_ref(service)),
                });
            }
        } else {
            jobs.push(Job {
                name: QueryName {
                    name: name.clone(),
                    service: None,
                },
                query: expand(template, None, services),
            });
        }
    }
    jobs
}

/// `template` with its placeholders replaced. In a per-service expansion `{{services}}` stands
/// for that one service, so a template may use either form of matcher.
pub(super) fn expand(template: &str, service: Option<&str>, services: &[String]) -> String {
    let mut query = template.to_owned();
    if let Some(service) = service {
        query = query.replace(SERVICE_PLACEHOLDER, &promql_string_escape(service));
    }
    if query.contains(SERVICES_PLACEHOLDER) {
        let alternation = services
            .iter()
            .map(|s| regex_escape(s))
            .collect::<Vec<_>>()
            .join("|");
        // The regex is itself written inside a PromQL string, so its backslashes are escaped a
        // second time: `a.b` → regex `a\.b` → PromQL source `a\\.b`.
        query = query.replace(SERVICES_PLACEHOLDER, &promql_string_escape(&alternation));
    }
    query
}

/// `text` as the inside of a double-quoted PromQL string. PromQL accepts only the escapes of the
/// enclosing quote, so `'` stays as it is; a raw newline would end the string.
pub(super) fn promql_string_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if c.is_ascii_control() => escaped.push_str(&format!("\\x{:02x}", c as u32)),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `text` matched literally by a Prometheus (RE2) regex: the characters Go's
/// `regexp.QuoteMeta` escapes.
pub(super) fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
