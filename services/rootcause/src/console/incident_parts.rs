//! The lower half of the incident page: decisions and the audit trail, recent changes, similar
//! past incidents, the resolution form, the timeline and the alerts.

use maud::{Markup, html};
use rootcause_models::diagnosis::{FaultType, Hypothesis};

use super::shell;
use crate::advice::Similar;
use crate::store::{
    StoredAlert, StoredAudit, StoredChange, StoredDecision, StoredEvent, StoredFeedback,
    StoredIncident, StoredResolution, StoredRun,
};

/// Alerts listed.
pub(super) const ALERTS_SHOWN: i64 = 200;
/// Timeline entries shown (the newest).
const TIMELINE_SHOWN: usize = 200;

/// What the page reads from the store besides the ranking.
pub(super) struct Facts {
    pub(super) alerts: Vec<StoredAlert>,
    pub(super) timeline: Vec<StoredEvent>,
    pub(super) decisions: Vec<StoredDecision>,
    pub(super) runs: Vec<StoredRun>,
    pub(super) audit: Vec<StoredAudit>,
    pub(super) resolutions: Vec<StoredResolution>,
    pub(super) feedback: Vec<StoredFeedback>,
    pub(super) changes: Vec<StoredChange>,
    pub(super) similar: Vec<Similar>,
    /// The runbook catalogue: id and title.
    pub(super) runbooks: Vec<(String, String)>,
}

pub(super) fn rest(
    row: &StoredIncident,
    hypotheses: &[Hypothesis],
    facts: &Facts,
    now: i64,
) -> Markup {
    html! {
        (audit_trail(facts))
        (changes(row, facts))
        (similar(facts))
        (resolution(row, hypotheses, facts))
        (timeline(facts))
        (alerts(facts, now))
    }
}

fn audit_trail(facts: &Facts) -> Markup {
    html! {
        section #audit aria-labelledby="audit-title" {
            h2 #audit-title { "Actions and audit trail" }
            @if !facts.runs.is_empty() {
                table {
                    caption { "Automation runs" }
                    thead { tr { th scope="col" { "Action" } th scope="col" { "Status" } th scope="col" { "Attempts" } th scope="col" { "Last error" } } }
                    tbody { @for run in &facts.runs { tr {
                        td { (run.action) } td { (shell::badge(run.status.as_str())) }
                        td.number { (run.attempts) " / " (run.max_attempts) }
                        td { (run.last_error.as_deref().unwrap_or("")) }
                    } } }
                }
            }
            @if facts.audit.is_empty() {
                p.muted { "Nothing recorded yet." }
            } @else {
                table.audit {
                    caption.visually-hidden { "Audit log of this incident, oldest first" }
                    thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Action" } th scope="col" { "Service" } th scope="col" { "Comment" } } }
                    tbody { @for entry in &facts.audit {
                        @let r = &entry.record;
                        tr data-kind=(r.kind) {
                            td { (shell::time(r.at)) } td { (r.actor) } td { (r.kind) }
                            td { (r.action.as_deref().unwrap_or("")) } td { (r.service.as_deref().unwrap_or("")) }
                            td { (r.detail.get("comment").and_then(|c| c.as_str()).unwrap_or("")) }
                        }
                    } }
                }
            }
        }
    }
}

fn changes(row: &StoredIncident, facts: &Facts) -> Markup {
    let services = row.service_names();
    html! {
        section aria-labelledby="changes-title" {
            h2 #changes-title { "Recent changes" }
            @if facts.changes.is_empty() {
                p.muted { "No change events from two hours before the first alert on." }
            } @else {
                table {
                    caption.visually-hidden { "Change events, newest first" }
                    thead { tr { th scope="col" { "When" } th scope="col" { "Service" } th scope="col" { "Kind" } th scope="col" { "Version" } th scope="col" { "By" } th scope="col" { "Description" } } }
                    tbody { @for c in &facts.changes {
                        @let service = c.mapped.as_deref().unwrap_or(&c.service);
                        tr class=[services.iter().any(|s| s == service).then_some("involved")] {
                            td { (shell::time(c.at)) } td { (service) } td { (c.kind) } td { (c.version) }
                            td { (c.author.as_deref().unwrap_or("")) }
                            td { (c.description.as_deref().unwrap_or("")) }
                        }
                    } }
                }
            }
        }
    }
}

fn similar(facts: &Facts) -> Markup {
    html! {
        section aria-labelledby="similar-title" {
            h2 #similar-title { "Similar past incidents" }
            @if facts.similar.is_empty() {
                p.muted { "None in the fault history yet." }
            } @else {
                table {
                    thead { tr { th scope="col" { "Incident" } th scope="col" { "Similarity" } th scope="col" { "Cause" } th scope="col" { "Fault" } th scope="col" { "Resolved by" } th scope="col" { "Worked" } th scope="col" { "Time to mitigate" } } }
                    tbody { @for s in &facts.similar {
                        @let p = &s.past;
                        tr {
                            td { @match p.key.strip_prefix("incident:") {
                                Some(id) => a href={ "/incidents/" (id) } { "#" (id) },
                                None => (p.key),
                            } }
                            td { (shell::confidence(Some(s.similarity), "similarity")) }
                            td { (p.root_cause) } td { (p.fault_type.as_deref().unwrap_or("—")) }
                            td { (p.action.as_deref().unwrap_or("—")) }
                            td { @match p.worked { Some(true) => "yes", Some(false) => "no", None => "—" } }
                            td { @match p.time_to_mitigate_s { Some(s) => (format!("{:.0} min", s / 60.0)), None => "—" } }
                        }
                    } }
                }
            }
        }
    }
}

fn resolution(row: &StoredIncident, hypotheses: &[Hypothesis], facts: &Facts) -> Markup {
    let top = hypotheses.first();
    let faults: Vec<&str> = FaultType::ALL
        .iter()
        .map(|f| f.as_str())
        .chain(["other"])
        .collect();
    let top_fault = top.and_then(|h| h.fault_type).map(FaultType::as_str);
    html! {
        section #resolution aria-labelledby="resolution-title" {
            h2 #resolution-title { "Resolution" }
            @for r in &facts.resolutions {
                @let v = &r.resolution;
                p.resolved { "Recorded " (shell::time(r.recorded_at)) " by " (v.resolved_by) ": "
                    strong { (v.root_cause) } " (" (v.fault_type) ")"
                    @if let Some(a) = &v.action { ", action " (a) @match v.worked { Some(true) => " (worked)", Some(false) => " (did not work)", None => "" } }
                    @if !v.notes.is_empty() { " — " (v.notes) } }
            }
            @for f in &facts.feedback {
                p.feedback { (shell::time(f.recorded_at)) " " (f.by) ": " (f.service) " " (shell::badge(f.verdict.as_str())) }
            }
            form data-api={ "/api/v1/incidents/" (row.id) "/resolution" } {
                div.fields {
                    label { "Root cause "
                        select name="root_cause" required {
                            @for h in hypotheses.iter().take(20) { option value=(h.service) selected[Some(h) == top] { (h.service) } }
                            option value="external" { "external" }
                            option value="unknown" { "unknown" }
                        }
                    }
                    label { "Fault type "
                        select name="fault_type" required {
                            @for f in &faults { option value=(f) selected[top_fault == Some(*f)] { (f) } }
                        }
                    }
                    label { "Action taken "
                        select name="action" {
                            option value="" { "none" }
                            @for (id, title) in &facts.runbooks { option value=(id) { (title) } }
                        }
                    }
                    label { "Did it work? "
                        select name="worked" data-type="bool" {
                            option value="" { "not known" } option value="true" { "yes" } option value="false" { "no" }
                        }
                    }
                }
                label.wide { "Notes " textarea name="notes" rows="2" {} }
                button type="submit" { "Record resolution" }
            }
        }
    }
}

fn timeline(facts: &Facts) -> Markup {
    // (time, what, detail)
    let mut entries: Vec<(i64, String, String)> = Vec::new();
    for e in &facts.timeline {
        entries.push((e.at, e.kind.replace('_', " "), summary(&e.detail)));
    }
    for a in &facts.audit {
        let r = &a.record;
        let what = match r.kind.as_str() {
            "suggested" => "ranked".to_owned(),
            kind => kind.replace('_', " "),
        };
        let detail = [
            r.service.as_deref(),
            r.action.as_deref(),
            Some(r.actor.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
        entries.push((r.at, what, detail));
    }
    for c in &facts.changes {
        let service = c.mapped.as_deref().unwrap_or(&c.service);
        entries.push((
            c.at,
            format!("change ({})", c.kind),
            format!("{service} {}", c.version),
        ));
    }
    for r in &facts.resolutions {
        entries.push((
            r.recorded_at,
            "resolution recorded".to_owned(),
            r.resolution.root_cause.clone(),
        ));
    }
    entries.sort_by_key(|e| e.0);
    let skipped = entries.len().saturating_sub(TIMELINE_SHOWN);
    html! {
        section aria-labelledby="timeline-title" {
            h2 #timeline-title { "Timeline" }
            @if skipped > 0 { p.muted { (skipped) " earlier entries not shown." } }
            ol.timeline {
                @for (at, what, detail) in &entries[skipped..] {
                    li { span.when { (shell::time(*at)) } " " strong { (what) } " " span.detail { (detail) } }
                }
            }
        }
    }
}

/// A timeline event's JSON detail in a few words (`services: a, b`).
fn summary(detail: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(detail)
    else {
        return String::new();
    };
    map.iter()
        // The kind is the entry's title already; fingerprints are noise to a reader.
        .filter(|(key, _)| !matches!(key.as_str(), "kind" | "alert" | "fingerprints"))
        .map(|(key, value)| {
            let value = match value {
                serde_json::Value::Array(items) => items
                    .iter()
                    .take(8)
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{}: {value}", key.replace('_', " "))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

fn alerts(facts: &Facts, now: i64) -> Markup {
    let more = facts.alerts.len() as i64 > ALERTS_SHOWN;
    html! {
        section aria-labelledby="alerts-title" {
            h2 #alerts-title { "Alerts" }
            table.alerts {
                caption.visually-hidden { "Alerts of this incident, first received first" }
                thead { tr { th scope="col" { "Started" } th scope="col" { "Status" } th scope="col" { "Service" } th scope="col" { "Severity" } th scope="col" { "Labels" } } }
                tbody { @for a in facts.alerts.iter().take(ALERTS_SHOWN as usize) {
                    tr {
                        td { (shell::when(a.starts_at, now)) } td { (shell::badge(&a.status)) }
                        td { (a.service.as_deref().unwrap_or("—")) } td { (a.severity.as_deref().unwrap_or("")) }
                        td.labels { (labels(&a.labels)) }
                    }
                } }
            }
            @if more { p.muted { "The first " (ALERTS_SHOWN) " alerts are shown; the API lists all." } }
        }
    }
}

/// An alert's labels as `name=value` chips (escaped like everything else).
fn labels(json: &str) -> Markup {
    let pairs: Vec<(String, String)> =
        serde_json::from_str::<std::collections::BTreeMap<String, String>>(json)
            .map(|m| m.into_iter().collect())
            .unwrap_or_default();
    html! { @for (k, v) in pairs { code.label { (k) "=" (v) } " " } }
}
