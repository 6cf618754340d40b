//! The detectors of events: alerts on a candidate (and on the mechanism each watches), and
//! change events on it shortly before the anchor.

use std::collections::BTreeMap;

use super::{Detector, Settings};
use crate::case::Case;

/// Alerts on a candidate, and change events on it shortly before the anchor.
pub(super) fn alert_and_change_detectors(
    case: &Case,
    settings: &Settings,
    note: &mut impl FnMut(&str, Detector, f64, String),
) {
    let mut per_service: BTreeMap<&str, (f64, Vec<&str>)> = BTreeMap::new();
    for a in &case.alerts {
        let Some(service) = a.service.as_deref() else {
            continue;
        };
        let weight = if a.severity.eq_ignore_ascii_case("critical") {
            2.0
        } else {
            1.0
        };
        let slot = per_service.entry(service).or_default();
        slot.0 += weight * a.count as f64;
        slot.1.push(&a.name);
        // An alert is a threshold detector someone set on one signal: it is also evidence on
        // the mechanism it watches (a CPU alert on the CPU detector), so the fault type follows
        // the alerts when no metric window was sent.
        if let Some(detector) = signal_detector(&a.signal) {
            note(
                service,
                detector,
                weight * 1.5,
                if a.severity.is_empty() {
                    format!("alert {} ({} signal)", a.name, a.signal)
                } else {
                    format!("alert {} ({} signal, {})", a.name, a.signal, a.severity)
                },
            );
        }
    }
    for (service, (weight, mut names)) in per_service {
        names.sort_unstable();
        names.dedup();
        // A warning alert counts 1.5 z units and a critical one 3, so one critical alert (or
        // two warnings) reads as "clearly anomalous".
        note(
            service,
            Detector::Alerts,
            weight * 1.5,
            format!("alerting: {}", names.join(", ")),
        );
    }
    // A change can cause the incident only if it came first: one made after the incident
    // began (up to the lead allowed for clock lag) is more likely the response (a rollback, a
    // scale-out) and is no evidence against the service.
    let window = (
        case.anchor - settings.baseline_s,
        case.anchor + settings.lead_s,
    );
    for change in &case.changes {
        if change.at < window.0 || change.at >= window.1 {
            continue;
        }
        // A change just before the anchor is the classic bad deploy; older ones fade over the
        // baseline window.
        let age = (case.anchor - change.at).max(0) as f64;
        let z = 6.0 * (-age / (settings.baseline_s as f64 / 3.0)).exp();
        let minutes = (case.anchor - change.at) as f64 / 60.0;
        note(
            &change.service,
            Detector::RecentChange,
            z,
            format!(
                "{} {:.0} min {} the incident{}",
                change.kind,
                minutes.abs(),
                if minutes >= 0.0 { "before" } else { "after" },
                if change.description.is_empty() {
                    String::new()
                } else {
                    format!(": {}", change.description)
                }
            ),
        );
    }
}

/// The detector whose mechanism an alert's signal class (as the correlation engine names it)
/// watches; `None` for classes that name no mechanism (`saturation`, `availability`, `custom`).
fn signal_detector(signal: &str) -> Option<Detector> {
    Some(match signal {
        "cpu" => Detector::CpuMetric,
        "memory" => Detector::MemoryMetric,
        "disk" => Detector::DiskMetric,
        "network" => Detector::NetworkMetric,
        "latency" => Detector::LatencyMetric,
        "errors" => Detector::ErrorMetric,
        "traffic" => Detector::TrafficMetric,
        _ => return None,
    })
}
