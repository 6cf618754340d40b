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

use crate::config::IngestConfig;

/// Most problems listed in one error answer.
const MAX_PROBLEMS: usize = 100;

/// Latest time an alert may carry (2100-01-01T00:00:00Z): later ones are typos or garbage, and
/// a firing alert that "ends" in the year 9999 would never expire.
pub const LATEST_TIME: Millis = 4_102_444_800_000;

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

/// Collects problems with their paths, checking against the intake's limits at `now`.
struct Checker<'a> {
    problems: Vec<Problem>,
    limits: &'a IngestConfig,
    now: Millis,
}

impl<'a> Checker<'a> {
    fn new(limits: &'a IngestConfig, now: Millis) -> Self {
        Checker {
            problems: Vec::new(),
            limits,
            now,
        }
    }

    fn problem(&mut self, path: String, message: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem::at(path, message));
        }
    }

    /// The strings of one alert: labels, annotations and link, each within its limit and
    /// storable by either database engine (PostgreSQL refuses NUL in text).
    fn strings(&mut self, at: &str, labels: &Labels, annotations: &Labels, url: Option<&str>) {
        let limits = self.limits;
        if labels.is_empty() {
            self.problem(format!("{at}.labels"), "an alert needs at least one label");
        }
        if labels.len() > limits.label_limit {
            rejected("ingest.label_limit");
            self.problem(
                format!("{at}.labels"),
                format!(
                    "{} labels; at most {} are accepted (ingest.label_limit)",
                    labels.len(),
                    limits.label_limit
                ),
            );
        }
        let value_limits = [
            (
                "label",
                labels,
                limits.label_value_length_limit,
                "label_value_length_limit",
            ),
            (
                "annotation",
                annotations,
                limits.annotation_value_length_limit,
                "annotation_value_length_limit",
            ),
        ];
        let mut bytes = url.map_or(0, str::len);
        for (what, map, value_limit, setting) in value_limits {
            let path = format!("{at}.{what}s");
            for (name, value) in map {
                bytes += name.len() + value.len();
                let shown = shorten(name);
                if name.is_empty() {
                    self.problem(path.clone(), format!("a {what} name is empty"));
                }
                if name.len() > limits.label_name_length_limit {
                    rejected("ingest.label_name_length_limit");
                    self.problem(
                        format!("{path}.{shown}"),
                        format!(
                            "the {what} name is {} bytes long; at most {} are accepted \
                             (ingest.label_name_length_limit)",
                            name.len(),
                            limits.label_name_length_limit
                        ),
                    );
                }
                if value.len() > value_limit {
                    rejected(setting);
                    self.problem(
                        format!("{path}.{shown}"),
                        format!(
                            "the {what} value is {} bytes long; at most {value_limit} are \
                             accepted ({setting})",
                            value.len()
                        ),
                    );
                }
                if name.contains('\0') || value.contains('\0') {
                    self.problem(
                        format!("{path}.{shown}"),
                        format!("a {what} must not contain NUL characters"),
                    );
                }
            }
        }
        if url.is_some_and(|u| u.contains('\0')) {
            self.problem(
                format!("{at}.generatorURL"),
                "generatorURL must not contain NUL characters",
            );
        }
        if bytes > limits.max_alert_bytes {
            rejected("ingest.max_alert_bytes");
            self.problem(
                at.to_owned(),
                format!(
                    "the alert's labels, annotations and generatorURL take {bytes} bytes; at \
                     most {} are accepted (ingest.max_alert_bytes)",
                    limits.max_alert_bytes
                ),
            );
        }
    }

    /// An RFC 3339 time; Go's zero time (year 1) and anything before 1970 mean "none".
    fn time(&mut self, path: String, text: Option<&str>) -> Option<Millis> {
        let text = text.map(str::trim).filter(|t| !t.is_empty())?;
        match DateTime::parse_from_rfc3339(text) {
            Ok(time) if time.timestamp_millis() > LATEST_TIME => {
                self.problem(path, format!("{text:?} is after 2100-01-01"));
                None
            }
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

    /// A start no later than the allowed clock skew, and an end not before the start.
    fn order(
        &mut self,
        at: &str,
        fields: [&str; 2],
        starts_at: Option<Millis>,
        ends_at: Option<Millis>,
    ) {
        let skew = self.limits.max_future_start_secs;
        let latest = self
            .now
            .saturating_add(i64::try_from(skew.saturating_mul(1000)).unwrap_or(i64::MAX));
        if starts_at.is_some_and(|start| start > latest) {
            rejected("ingest.max_future_start_secs");
            self.problem(
                format!("{at}.{}", fields[0]),
                format!(
                    "the start lies more than {skew} s in the future \
                     (ingest.max_future_start_secs); is the sender's clock right?"
                ),
            );
        }
        if let (Some(start), Some(end)) = (starts_at, ends_at)
            && end < start
        {
            self.problem(format!("{at}.{}", fields[1]), "the end is before the start");
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

/// Validates a webhook notification received at `now` against the intake's `limits`.
pub fn webhook(
    payload: WebhookPayload,
    limits: &IngestConfig,
    now: Millis,
) -> Result<Vec<IncomingAlert>, Vec<Problem>> {
    let mut check = Checker::new(limits, now);
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
        check.strings(&at, &labels, &annotations, alert.generator_url.as_deref());
        let starts_at = check.time(format!("{at}.startsAt"), alert.starts_at.as_deref());
        let ends_at = check.time(format!("{at}.endsAt"), alert.ends_at.as_deref());
        check.order(&at, ["startsAt", "endsAt"], starts_at, ends_at);
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

/// Validates an Alertmanager API v2 alert list received at `now` against the intake's
/// `limits`.
pub fn alertmanager_api(
    payload: Vec<PostableAlert>,
    limits: &IngestConfig,
    now: Millis,
) -> Result<Vec<IncomingAlert>, Vec<Problem>> {
    let resolve_timeout =
        i64::try_from(limits.resolve_timeout_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let mut check = Checker::new(limits, now);
    let mut alerts = Vec::with_capacity(payload.len());
    for (index, alert) in payload.into_iter().enumerate() {
        let at = format!("[{index}]");
        let labels: Labels = alert.labels;
        let annotations: Labels = alert.annotations.unwrap_or_default();
        check.strings(&at, &labels, &annotations, alert.generator_url.as_deref());
        let starts_at = check.time(format!("{at}.startsAt"), alert.starts_at.as_deref());
        let ends_at = check.time(format!("{at}.endsAt"), alert.ends_at.as_deref());
        check.order(&at, ["startsAt", "endsAt"], starts_at, ends_at);
        // Alertmanager's rule: an end in the past means resolved; otherwise the alert fires
        // until its end, which a missing endsAt puts at now + resolve_timeout.
        let (status, ends_at) = match ends_at {
            Some(end) if end <= now => (AlertStatus::Resolved, Some(end)),
            Some(end) => (AlertStatus::Firing, Some(end)),
            None => (
                AlertStatus::Firing,
                Some(now.saturating_add(resolve_timeout)),
            ),
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

/// Validates the plain form received at `now` against the intake's `limits`.
pub fn plain(
    payload: PlainBatch,
    limits: &IngestConfig,
    now: Millis,
) -> Result<Vec<IncomingAlert>, Vec<Problem>> {
    let mut check = Checker::new(limits, now);
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
        check.strings(
            &at,
            &labels,
            &alert.annotations,
            alert.generator_url.as_deref(),
        );
        let status = alert.status.as_deref().map_or(AlertStatus::Firing, |s| {
            check.status(format!("{at}.status"), s)
        });
        let starts_at = check.time(format!("{at}.starts_at"), alert.starts_at.as_deref());
        let ends_at = check.time(format!("{at}.ends_at"), alert.ends_at.as_deref());
        check.order(&at, ["starts_at", "ends_at"], starts_at, ends_at);
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

/// Counts a refusal by the limit configured at `key` (`rootcause_rejected_total`).
fn rejected(key: &'static str) {
    metrics::counter!(crate::telemetry::names::REJECTED, "limit" => key).increment(1);
}

/// A name as shown in a problem's path: at most 64 characters, so that a megabyte-long label
/// name does not come back in the error answer.
fn shorten(name: &str) -> String {
    match name.char_indices().nth(64) {
        Some((end, _)) => format!("{}…", &name[..end]),
        None => name.to_owned(),
    }
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
        let alerts = webhook(payload, &IngestConfig::default(), NOW).unwrap();
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
        let problems = webhook(payload, &IngestConfig::default(), NOW).unwrap_err();
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
        let alerts = alertmanager_api(payload, &IngestConfig::default(), NOW).unwrap();
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
        let problems = plain(payload, &IngestConfig::default(), NOW).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "alerts[1].service");
        let payload: PlainBatch =
            parse_json(br#"{"alerts":[{"service":"db","name":"Down","status":"resolved"}]}"#)
                .unwrap();
        let alerts = plain(payload, &IngestConfig::default(), NOW).unwrap();
        assert_eq!(alerts[0].labels.len(), 2);
        assert_eq!(alerts[0].status, AlertStatus::Resolved);
        // The same labels through any endpoint are the same alert.
        assert_eq!(alerts[0].fingerprint, Fingerprint::of(&alerts[0].labels));
    }

    #[test]
    fn an_alert_over_a_size_limit_or_unstorable_is_named_and_refused() {
        // Before these limits, a 1 MB label value, 100k labels, a NUL in generatorURL (a 500
        // from PostgreSQL that failed the whole group commit) and the year 9999 were accepted.
        let limits = IngestConfig::default();
        let big = "v".repeat(limits.label_value_length_limit + 1);
        let many: Labels = (0..=limits.label_limit)
            .map(|i| (format!("l{i}"), "x".to_owned()))
            .collect();
        let long_name = "n".repeat(limits.label_name_length_limit + 1);
        let alerts = vec![
            serde_json::json!({"labels": {"alertname": "A", "note": big}}),
            serde_json::json!({"labels": many}),
            serde_json::json!({"labels": {"alertname": "A", long_name: "x"}}),
            serde_json::json!({"labels": {"alertname": "A"}, "generatorURL": "http://x/\u{0}"}),
            serde_json::json!({"labels": {"alertname": "A"}, "endsAt": "9999-12-31T00:00:00Z"}),
            serde_json::json!({"labels": {"alertname": "A"}, "startsAt": "2030-01-01T00:00:00Z"}),
            serde_json::json!({"labels": {"alertname": "A"},
                "annotations": {"description": "d".repeat(limits.max_alert_bytes)}}),
            serde_json::json!({"labels": {"alertname": "fine"}}),
        ];
        let body = serde_json::to_vec(&alerts).unwrap();
        // (`parse_json` refuses the NUL already; the validator must too, for any other caller.)
        let payload: Vec<PostableAlert> = serde_json::from_slice(&body).unwrap();
        let problems = alertmanager_api(payload, &limits, NOW).unwrap_err();
        let refused = parse_json::<Vec<PostableAlert>>(&body).unwrap_err();
        assert!(
            format!("{refused:?}").contains("[3].generatorURL"),
            "{refused:?}"
        );
        let found: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.path.as_str(), p.message.as_str()))
            .collect();
        let has = |path: &str, words: &str| {
            assert!(
                found
                    .iter()
                    .any(|(p, m)| p.starts_with(path) && m.contains(words)),
                "no problem at {path} saying {words:?} in {found:#?}"
            )
        };
        has("[0].labels.note", "label_value_length_limit");
        has("[1].labels", "ingest.label_limit");
        has("[2].labels.nnnn", "label_name_length_limit");
        has("[3].generatorURL", "NUL");
        has("[4].endsAt", "after 2100");
        has("[5].startsAt", "max_future_start_secs");
        has(
            "[6].annotations.description",
            "annotation_value_length_limit",
        );
        has("[6]", "max_alert_bytes");
        assert!(
            found.iter().all(|(p, _)| !p.starts_with("[7]")),
            "{found:#?}"
        );
        // A path never echoes a huge name back.
        assert!(found.iter().all(|(p, _)| p.len() < 100), "{found:#?}");
    }
}
