//! The three alert shapes rootcause accepts, and their validation into [`IncomingAlert`]s.
//!
//! - Alertmanager's webhook (payload version 4), `POST /api/v1/alerts/alertmanager`;
//! - Alertmanager's own alert API, `POST /api/v2/alerts` (what Prometheus and vmalert send);
//! - a plain JSON form for custom monitors, `POST /api/v1/alerts`.
//!
//! Unknown fields are ignored (senders add fields over time; Alertmanager 0.28 added
//! `notification_reason`). A batch is validated whole before anything is stored: if any alert is
//! invalid the request is refused with every problem listed by path (`alerts[3].startsAt`), and
//! no alert of it is stored.

use std::collections::BTreeMap;

use chrono::DateTime;
use rootcause_correlation::{AlertStatus, Fingerprint, Labels, Millis};
use rootcause_topology::Problem;
use serde::Deserialize;
use utoipa::ToSchema;

/// Most problems listed in one error answer.
const MAX_PROBLEMS: usize = 100;

/// Which endpoint an alert came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `POST /api/v1/alerts/alertmanager`.
    Webhook,
    /// `POST /api/v2/alerts`.
    AlertmanagerApi,
    /// `POST /api/v1/alerts`.
    Plain,
}

impl Source {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Webhook => "alertmanager-webhook",
            Source::AlertmanagerApi => "alertmanager-api",
            Source::Plain => "api",
        }
    }
}

/// A valid alert, whatever shape it arrived in.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingAlert {
    /// Given by the sender, or computed from the labels as Alertmanager does.
    pub fingerprint: Fingerprint,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// Start, if the sender gave one.
    pub starts_at: Option<Millis>,
    /// End (resolved) or expiry (firing), if any.
    pub ends_at: Option<Millis>,
    /// Identifying labels.
    pub labels: Labels,
    /// Descriptive annotations.
    pub annotations: Labels,
    /// Link back to the alert's source.
    pub generator_url: Option<String>,
    /// Endpoint.
    pub source: Source,
}

/// Alertmanager's webhook notification (payload version 4).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    /// Payload version; only `"4"` exists.
    #[serde(default)]
    pub version: Option<String>,
    /// Identifies the alert group.
    #[serde(default)]
    pub group_key: Option<String>,
    /// Alerts Alertmanager left out because of `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: Option<u64>,
    /// `firing` if any alert of the group fires.
    #[serde(default)]
    pub status: Option<String>,
    /// The receiver's name.
    #[serde(default)]
    pub receiver: Option<String>,
    /// The group's labels.
    #[serde(default)]
    pub group_labels: Option<BTreeMap<String, String>>,
    /// Labels all alerts share.
    #[serde(default)]
    pub common_labels: Option<BTreeMap<String, String>>,
    /// Annotations all alerts share.
    #[serde(default)]
    pub common_annotations: Option<BTreeMap<String, String>>,
    /// Alertmanager's URL.
    #[serde(default, rename = "externalURL")]
    pub external_url: Option<String>,
    /// The alerts.
    pub alerts: Vec<WebhookAlert>,
}

/// One alert of a webhook notification.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Identifying labels.
    pub labels: BTreeMap<String, String>,
    /// Descriptive annotations.
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    /// RFC 3339 start.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// RFC 3339 end; `0001-01-01T00:00:00Z` while firing.
    #[serde(default)]
    pub ends_at: Option<String>,
    /// Link to the rule.
    #[serde(default, rename = "generatorURL")]
    pub generator_url: Option<String>,
    /// Alertmanager's fingerprint of the labels (16 hex digits).
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// One alert of Alertmanager's `POST /api/v2/alerts` (a JSON array of these).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    /// Identifying labels.
    pub labels: BTreeMap<String, String>,
    /// Descriptive annotations.
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    /// RFC 3339 start; missing: now (or the start of the firing alert it repeats).
    #[serde(default)]
    pub starts_at: Option<String>,
    /// RFC 3339 end: in the past, the alert is resolved; in the future, it expires then unless
    /// sent again; missing, it expires after `ingest.resolve_timeout_secs`.
    #[serde(default)]
    pub ends_at: Option<String>,
    /// Link to the rule.
    #[serde(default, rename = "generatorURL")]
    pub generator_url: Option<String>,
}

/// The plain form: `{"alerts": [...]}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PlainBatch {
    /// The alerts.
    pub alerts: Vec<PlainAlert>,
}

/// An alert in the plain form. `service`, `alertname` and `severity` are shorthands for labels
/// of those names.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PlainAlert {
    /// Identifying labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Shorthand for the `service` label.
    #[serde(default)]
    pub service: Option<String>,
    /// Shorthand for the `alertname` label.
    #[serde(default, alias = "name")]
    pub alertname: Option<String>,
    /// Shorthand for the `severity` label.
    #[serde(default)]
    pub severity: Option<String>,
    /// Descriptive annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `firing` (default) or `resolved`.
    #[serde(default)]
    pub status: Option<String>,
    /// RFC 3339 start; missing: now (or the start of the firing alert it repeats).
    #[serde(default, alias = "startsAt")]
    pub starts_at: Option<String>,
    /// RFC 3339 end of a resolved alert (missing: now); for a firing alert, when it expires
    /// unless sent again (missing: never).
    #[serde(default, alias = "endsAt")]
    pub ends_at: Option<String>,
    /// Identity, 16 hex digits; missing: computed from the labels as Alertmanager does.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// Link back to the source.
    #[serde(default, alias = "generatorURL")]
    pub generator_url: Option<String>,
}

/// Collects problems with their paths.
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn new() -> Self {
        Checker {
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, path: String, message: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem::at(path, message));
        }
    }

    fn labels(&mut self, path: &str, labels: &Labels, what: &str, required: bool) {
        if required && labels.is_empty() {
            self.problem(
                path.to_owned(),
                format!("an alert needs at least one {what}"),
            );
        }
        for (name, value) in labels {
            if name.is_empty() {
                self.problem(path.to_owned(), format!("a {what} name is empty"));
            }
            if name.contains('\0') || value.contains('\0') {
                self.problem(
                    format!("{path}.{name}"),
                    format!("a {what} must not contain NUL characters"),
                );
            }
        }
    }

    /// An RFC 3339 time; Go's zero time (year 1) and anything before 1970 mean "none".
    fn time(&mut self, path: String, text: Option<&str>) -> Option<Millis> {
        let text = text.map(str::trim).filter(|t| !t.is_empty())?;
        match DateTime::parse_from_rfc3339(text) {
            Ok(time) => Some(time.timestamp_millis()).filter(|ms| *ms > 0),
            Err(error) => {
                self.problem(path, format!("{text:?} is not an RFC 3339 time ({error})"));
                None
            }
        }
    }

    fn fingerprint(&mut self, path: String, given: Option<&str>, labels: &Labels) -> Fingerprint {
        match given.map(str::trim).filter(|f| !f.is_empty()) {
            None => Fingerprint::of(labels),
            Some(text) => text.parse().unwrap_or_else(|message: String| {
                self.problem(path, message);
                Fingerprint::of(labels)
            }),
        }
    }

    fn status(&mut self, path: String, text: &str) -> AlertStatus {
        text.parse().unwrap_or_else(|message: String| {
            self.problem(path, message);
            AlertStatus::Firing
        })
    }

    fn order(&mut self, path: String, starts_at: Option<Millis>, ends_at: Option<Millis>) {
        if let (Some(start), Some(end)) = (starts_at, ends_at)
            && end < start
        {
            self.problem(path, "endsAt is before startsAt");
        }
    }

    fn finish(self, alerts: Vec<IncomingAlert>) -> Result<Vec<IncomingAlert>, Vec<Problem>> {
        if self.problems.is_empty() {
            Ok(alerts)
        } else {
            Err(self.problems)
        }
    }
}

/// Validates a webhook notification.
pub fn webhook(payload: WebhookPayload) -> Result<Vec<IncomingAlert>, Vec<Problem>> {
    let mut check = Checker::new();
    if let Some(version) = &payload.version
        && version != "4"
    {
        check.problem(
            "version".to_owned(),
            format!(
                "unsupported webhook payload version {version:?}; rootcause reads version \"4\""
            ),
        );
    }
    let mut alerts = Vec::with_capacity(payload.alerts.len());
    for (index, alert) in payload.alerts.into_iter().enumerate() {
        let at = format!("alerts[{index}]");
        let status = check.status(format!("{at}.status"), &alert.status);
        let labels: Labels = alert.labels;
        let annotations: Labels = alert.annotations.unwrap_or_default();
        check.labels(&format!("{at}.labels"), &labels, "label", true);
        check.labels(
            &format!("{at}.annotations"),
            &annotations,
            "annotation",
            false,
        );
        let starts_at = check.time(format!("{at}.startsAt"), alert.starts_at.as_deref());
        let ends_at = check.time(format!("{at}.endsAt"), alert.ends_at.as_deref());
        check.order(format!("{at}.endsAt"), starts_at, ends_at);
        let fingerprint = check.fingerprint(
            format!("{at}.fingerprint"),
            alert.fingerprint.as_deref(),
            &labels,
        );
        alerts.push(IncomingAlert {
            fingerprint,
            status,
            starts_at,
            // A firing alert from Alertmanager carries no expiry: Alertmanager sends its end.
            ends_at: ends_at.filter(|_| status == AlertStatus::Resolved),
            labels,
            annotations,
            generator_url: alert.generator_url.filter(|g| !g.is_empty()),
            source: Source::Webhook,
        });
    }
    check.finish(alerts)
}

/// Validates an Alertmanager API v2 alert list received at `now`.
pub fn alertmanager_api(
    payload: Vec<PostableAlert>,
    now: Millis,
    resolve_timeout: Millis,
) -> Result<Vec<IncomingAlert>, Vec<Problem>> {
    let mut check = Checker::new();
    let mut alerts = Vec::with_capacity(payload.len());
    for (index, alert) in payload.into_iter().enumerate() {
        let at = format!("[{index}]");
        let labels: Labels = alert.labels;
        let annotations: Labels = alert.annotations.unwrap_or_default();
        check.labels(&format!("{at}.labels"), &labels, "label", true);
        check.labels(
            &format!("{at}.annotations"),
            &annotations,
            "annotation",
            false,
        );
        let starts_at = check.time(format!("{at}.startsAt"), alert.starts_at.as_deref());
        let ends_at = check.time(format!("{at}.endsAt"), alert.ends_at.as_deref());
        check.order(format!("{at}.endsAt"), starts_at, ends_at);
        // Alertmanager's rule: an end in the past means resolved; otherwise the alert fires
        // until its end, which a missing endsAt puts at now + resolve_timeout.
        let (status, ends_at) = match ends_at {
            Some(end) if end <= now => (AlertStatus::Resolved, Some(end)),
            Some(end) => (AlertStatus::Firing, Some(end)),
            None => (AlertStatus::Firing, Some(now + resolve_timeout)),
        };
        alerts.push(IncomingAlert {
            fingerprint: Fingerprint::of(&labels),
            status,
            starts_at,
            ends_at,
            labels,
            annotations,
            generator_url: alert.generator_url.filter(|g| !g.is_empty()),
            source: Source::AlertmanagerApi,
        });
    }
    check.finish(alerts)
}

/// Validates the plain form.
pub fn plain(payload: PlainBatch) -> Result<Vec<IncomingAlert>, Vec<Problem>> {
    let mut check = Checker::new();
    let mut alerts = Vec::with_capacity(payload.alerts.len());
    for (index, alert) in payload.alerts.into_iter().enumerate() {
        let at = format!("alerts[{index}]");
        let mut labels: Labels = alert.labels;
        for (name, value) in [
            ("service", alert.service),
            ("alertname", alert.alertname),
            ("severity", alert.severity),
        ] {
            let Some(value) = value else { continue };
            match labels.get(name) {
                Some(existing) if *existing != value => check.problem(
                    format!("{at}.{name}"),
                    format!("{name} {value:?} contradicts labels.{name} {existing:?}"),
                ),
                _ => {
                    labels.insert(name.to_owned(), value);
                }
            }
        }
        check.labels(&format!("{at}.labels"), &labels, "label", true);
        check.labels(
            &format!("{at}.annotations"),
            &alert.annotations,
            "annotation",
            false,
        );
        let status = alert.status.as_deref().map_or(AlertStatus::Firing, |s| {
            check.status(format!("{at}.status"), s)
        });
        let starts_at = check.time(format!("{at}.starts_at"), alert.starts_at.as_deref());
        let ends_at = check.time(format!("{at}.ends_at"), alert.ends_at.as_deref());
        check.order(format!("{at}.ends_at"), starts_at, ends_at);
        let fingerprint = check.fingerprint(
            format!("{at}.fingerprint"),
            alert.fingerprint.as_deref(),
            &labels,
        );
        alerts.push(IncomingAlert {
            fingerprint,
            status,
            starts_at,
            ends_at,
            labels,
            annotations: alert.annotations,
            generator_url: alert.generator_url.filter(|g| !g.is_empty()),
            source: Source::Plain,
        });
    }
    check.finish(alerts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::parse_json;

    const NOW: Millis = 1_800_000_000_000;

    fn webhook_json(alerts: &str) -> Vec<u8> {
        format!(
            r#"{{"version":"4","groupKey":"{{}}:{{}}","truncatedAlerts":0,"status":"firing",
            "receiver":"rc","groupLabels":{{}},"commonLabels":{{}},"commonAnnotations":{{}},
            "externalURL":"http://am:9093","notification_reason":"new_alert","alerts":[{alerts}]}}"#
        )
        .into_bytes()
    }

    #[test]
    fn a_webhook_payload_is_read_with_its_fingerprints_and_times() {
        let body = webhook_json(
            r#"{"status":"firing","labels":{"alertname":"DBDown","service":"db"},
                "annotations":{"summary":"s"},"startsAt":"2026-11-24T10:00:00.123456789Z",
                "endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/graph",
                "fingerprint":"00000000deadbeef","someFutureField":1},
               {"status":"resolved","labels":{"alertname":"X"},"startsAt":"2026-11-24T10:00:00Z",
                "endsAt":"2026-11-24T10:05:00Z"}"#,
        );
        let payload: WebhookPayload = parse_json(&body).unwrap();
        let alerts = webhook(payload).unwrap();
        assert_eq!(alerts[0].fingerprint, Fingerprint(0xdead_beef));
        assert_eq!(alerts[0].starts_at, Some(1_795_514_400_123));
        assert_eq!(alerts[0].ends_at, None, "Go's zero time is no end");
        assert_eq!(alerts[1].status, AlertStatus::Resolved);
        assert_eq!(alerts[1].ends_at, Some(1_795_514_700_000));
        let labels: Labels = [("alertname".to_owned(), "X".to_owned())].into();
        assert_eq!(alerts[1].fingerprint, Fingerprint::of(&labels));
    }

    #[test]
    fn every_bad_alert_of_a_batch_is_named_by_its_index_and_field() {
        let body = webhook_json(
            r#"{"status":"firing","labels":{"a":"b"}},
               {"status":"burning","labels":{"a":"c"},"startsAt":"yesterday"},
               {"status":"firing","labels":{}, "fingerprint":"xyz"}"#,
        );
        let payload: WebhookPayload = parse_json(&body).unwrap();
        let problems = webhook(payload).unwrap_err();
        let paths = problems.iter().map(|p| p.path.as_str()).collect::<Vec<_>>();
        assert_eq!(
            paths,
            [
                "alerts[1].status",
                "alerts[1].startsAt",
                "alerts[2].labels",
                "alerts[2].fingerprint"
            ]
        );
    }

    #[test]
    fn a_wrongly_typed_field_is_named_by_its_path() {
        let error = parse_json::<Vec<PostableAlert>>(br#"[{"labels":{"a":"b"}},{"labels":"x"}]"#)
            .unwrap_err();
        assert!(format!("{error:?}").contains("[1].labels"), "{error:?}");
    }

    #[test]
    fn api_v2_alerts_resolve_by_their_end_time_as_in_alertmanager() {
        let payload: Vec<PostableAlert> = parse_json(
            br#"[{"labels":{"a":"1"},"endsAt":"2000-01-01T00:00:00Z","startsAt":"1999-01-01T00:00:00Z"},
                 {"labels":{"a":"2"}},
                 {"labels":{"a":"3"},"endsAt":"2099-01-01T00:00:00Z"}]"#,
        )
        .unwrap();
        let alerts = alertmanager_api(payload, NOW, 300_000).unwrap();
        assert_eq!(alerts[0].status, AlertStatus::Resolved);
        assert_eq!(alerts[1].status, AlertStatus::Firing);
        assert_eq!(alerts[1].ends_at, Some(NOW + 300_000));
        assert_eq!(alerts[2].status, AlertStatus::Firing);
        assert_eq!(alerts[2].ends_at, Some(4_070_908_800_000));
    }

    #[test]
    fn the_plain_form_takes_shorthands_and_refuses_contradictions() {
        let payload: PlainBatch = parse_json(
            br#"{"alerts":[{"service":"db","name":"Down","severity":"critical"},
                           {"service":"db","labels":{"service":"web"}}]}"#,
        )
        .unwrap();
        let problems = plain(payload).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "alerts[1].service");
        let payload: PlainBatch =
            parse_json(br#"{"alerts":[{"service":"db","name":"Down","status":"resolved"}]}"#)
                .unwrap();
        let alerts = plain(payload).unwrap();
        assert_eq!(alerts[0].labels.len(), 2);
        assert_eq!(alerts[0].status, AlertStatus::Resolved);
        // The same labels through any endpoint are the same alert.
        assert_eq!(alerts[0].fingerprint, Fingerprint::of(&alerts[0].labels));
    }
}
