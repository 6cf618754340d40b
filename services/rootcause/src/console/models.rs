//! The models page (`/models`): every version in the registry with its back-test figures, the
//! learning curve (cross-validated AC@1 against training cases, version by version), training
//! jobs, and the buttons to train, activate and roll back (calls of the JSON API, which needs
//! the admin scope for them).

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use super::shell::{self, Section};
use super::{failure, html};
use crate::state::AppState;
use crate::store::{ModelStatus, StoredModel};

/// Jobs listed.
const JOBS_SHOWN: u32 = 20;

pub(super) async fn page(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let (models, jobs) = tokio::join!(state.store.list_models(), state.store.list_jobs(JOBS_SHOWN));
    let (models, jobs) = match (models, jobs) {
        (Ok(models), Ok(jobs)) => (models, jobs),
        (Err(error), _) | (_, Err(error)) => return failure(error, started),
    };
    let figures: Vec<Value> = models
        .iter()
        .map(|m| serde_json::from_str(&m.figures).unwrap_or(Value::Null))
        .collect();
    // Roll back = activate the version that was active before the current one.
    let previous = models
        .iter()
        .filter(|m| m.status != ModelStatus::Active && m.activated_at.is_some())
        .max_by_key(|m| m.activated_at);
    let main = html! {
        h1 { "Models" }
        p { "The active model ranks every incident. A training job learns from confirmed resolutions and imported history, "
            "is scored by cross-validation by case and against the active model on held-out cases, and is promoted only if it is not worse." }
        div.toolbar {
            (shell::post_button("Train a new version", "/api/v1/models/train", &serde_json::json!({})))
            @if let Some(p) = previous {
                (shell::post_button(&format!("Roll back to version {}", p.id), &format!("/api/v1/models/{}/activate", p.id),
                    &serde_json::json!({"reason": "rolled back from the console"})))
            }
        }
        section aria-labelledby="curve-title" {
            h2 #curve-title { "Learning curve" }
            (curve(&models, &figures))
        }
        section aria-labelledby="versions-title" {
            h2 #versions-title { "Versions" }
            table.models {
                thead { tr {
                    th scope="col" { "Version" } th scope="col" { "Status" } th scope="col" { "Source" }
                    th scope="col" { "Created" } th scope="col" { "Training cases" }
                    th scope="col" { "AC@1 (chance)" } th scope="col" { "Avg@5" } th scope="col" { "Held out vs active" }
                    th scope="col" { "Why" } th scope="col" { span.visually-hidden { "Actions" } }
                } }
                tbody { @for (m, f) in models.iter().zip(&figures).rev() { (model_row(m, f)) } }
            }
        }
        section aria-labelledby="jobs-title" {
            h2 #jobs-title { "Training jobs" }
            @if jobs.is_empty() { p.muted { "None yet." } } @else {
                table {
                    thead { tr { th scope="col" { "Job" } th scope="col" { "Status" } th scope="col" { "Stage" } th scope="col" { "Progress" } th scope="col" { "Model" } th scope="col" { "Error" } } }
                    tbody { @for j in &jobs { tr {
                        td { "#" (j.id) } td { (shell::badge(j.status.as_str())) } td { (j.stage) }
                        td { progress max="1" value=(format!("{:.2}", j.progress)) aria-label="progress" {} }
                        td { @if let Some(m) = j.model_id { (m) } }
                        td { (j.error.as_deref().unwrap_or("")) }
                    } } }
                }
            }
        }
    };
    html(
        StatusCode::OK,
        shell::page("Models", Section::Models, None, main),
        started,
    )
}

fn model_row(m: &StoredModel, f: &Value) -> Markup {
    let ac1 = number(f, &["cross_validation", "overall", "ac1"])
        .or_else(|| number(f, &["provenance", "cv_ac1"]));
    let chance = number(f, &["cross_validation", "chance", "ac1"]);
    let avg5 = number(f, &["cross_validation", "overall", "avg5"])
        .or_else(|| number(f, &["provenance", "cv_avg5"]));
    let held = f.get("held_out").filter(|h| !h.is_null());
    html! {
        tr data-model=(m.id) {
            td { (m.id) " " code { (m.version.chars().take(12).collect::<String>()) } }
            td { (shell::badge(m.status.as_str())) }
            td { (m.source) }
            td { (shell::time(m.created_at)) }
            td.number { @if let Some(n) = number(f, &["training_cases"]) { (n) } }
            td.number { (fixed(ac1)) @if let Some(c) = chance { span.muted { " (" (format!("{c:.3}")) ")" } } }
            td.number { (fixed(avg5)) }
            td { @if let Some(h) = held { (held_out(h)) } }
            td { (m.reason) }
            td { @if m.status != ModelStatus::Active {
                (shell::post_button("Activate", &format!("/api/v1/models/{}/activate", m.id),
                    &serde_json::json!({"reason": "activated from the console"})))
            } }
        }
    }
}

/// The held-out comparison in one line: `0.750 vs 0.700 on 12 cases`.
fn held_out(h: &Value) -> String {
    let candidate = number(h, &["candidate", "ac1"]);
    let active = number(h, &["active", "ac1"]);
    let cases = number(h, &["cases"]);
    match (candidate, active) {
        (Some(c), Some(a)) => format!(
            "{c:.3} vs {a:.3}{}",
            cases.map_or(String::new(), |n| format!(" on {n} cases"))
        ),
        _ => String::new(),
    }
}

/// Cross-validated AC@1 of each version against its training cases, as a small SVG plot.
fn curve(models: &[StoredModel], figures: &[Value]) -> Markup {
    let points: Vec<(f64, f64, i64)> = models
        .iter()
        .zip(figures)
        .filter_map(|(m, f)| {
            let cases = number(f, &["training_cases"])?;
            let ac1 = number(f, &["cross_validation", "overall", "ac1"])
                .or_else(|| number(f, &["provenance", "cv_ac1"]))?;
            Some((cases, ac1, m.id))
        })
        .collect();
    if points.is_empty() {
        return html! { p.muted { "No version has back-test figures yet." } };
    }
    let (w, h, pad) = (480.0, 160.0, 28.0);
    let max_cases = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let x = |c: f64| pad + c / max_cases * (w - 2.0 * pad);
    let y = |a: f64| h - pad - a * (h - 2.0 * pad);
    let line: String = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
        .collect::<Vec<_>>()
        .join(" ");
    html! {
        figure.curve {
            svg viewBox={ "0 0 " (w) " " (h) } role="img" aria-label="Cross-validated AC@1 by training cases, one point per version" {
                line.axis x1=(pad) y1=(h - pad) x2=(w - pad) y2=(h - pad) {}
                line.axis x1=(pad) y1=(pad) x2=(pad) y2=(h - pad) {}
                text x=(pad - 4.0) y=(y(1.0) + 4.0) text-anchor="end" { "1" }
                text x=(pad - 4.0) y=(y(0.0) + 4.0) text-anchor="end" { "0" }
                text x=(w - pad) y=(h - 8.0) text-anchor="end" { (max_cases) " cases" }
                polyline.series points=(line) {}
                @for (cases, ac1, id) in &points {
                    circle.series cx=(format!("{:.1}", x(*cases))) cy=(format!("{:.1}", y(*ac1))) r="3" {
                        title { "version " (id) ": AC@1 " (format!("{ac1:.3}")) " on " (cases) " cases" }
                    }
                }
            }
            figcaption { "AC@1 under cross-validation by case, against the cases each version was trained on." }
        }
    }
}

fn number(value: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_f64()
}

fn fixed(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"))
}
