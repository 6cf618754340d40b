//! Ranking the runbooks of a catalogue for one hypothesis: which action to take first if this
//! service is the cause.
//!
//! A runbook's score combines, as a weighted mean over the sources that are present:
//! - its **applicability** (does it resolve this fault type, do the firing alerts point to it),
//! - the **learned** action model's probability for it,
//! - the **similar** past incidents it resolved (similarity-weighted share);
//!
//! then adds [`Weights::change`] for a change-reverting runbook when the service changed just
//! before the incident, and subtracts [`Weights::risk`] × [`Risk::penalty`]. A source that is
//! absent (no model, no history) is left out of the mean rather than read as evidence against
//! every action.

use serde::{Deserialize, Serialize};

use super::catalogue::{Catalogue, Risk, Runbook};
use super::target::Target;
use crate::case::CaseChange;
use crate::diagnosis::FaultType;

/// One suggested action for a hypothesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    /// The runbook id.
    pub action: String,
    /// The runbook's title.
    pub title: String,
    /// The runbook's risk.
    pub risk: Risk,
    /// Share of the belief over every applicable runbook that goes to this one (0 to 1; the
    /// suggestions of one hypothesis sum to at most 1).
    pub confidence: f64,
    /// Why, in one sentence.
    pub reason: String,
    /// Whether approving it calls the runbook's automation.
    pub automated: bool,
}

/// How the sources of a suggestion are weighed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Fit of the runbook to the fault type and firing alerts.
    pub applicability: f64,
    /// The learned action model's probability.
    pub learned: f64,
    /// Share of similar past incidents the action resolved.
    pub similar: f64,
    /// Added to change-reverting runbooks when the service changed before the incident.
    pub change: f64,
    /// Multiplies [`Risk::penalty`].
    pub risk: f64,
}

impl Default for Weights {
    /// Applicability, learned model and similar incidents 1 each: the catalogue's hand-written
    /// fit, and two summaries of what actually worked on this site, count alike until a site
    /// measures otherwise. A recent change 0.5: changes cause most incidents, so reverting one
    /// goes to the top of an otherwise even list, yet a clear fit elsewhere with history behind
    /// it can still win. Risk 0.2: a high-risk action (penalty 1) loses 0.2, under half the gap
    /// between a neutral and a perfect fit, so it decides between comparable actions without
    /// hiding the only one that fits.
    fn default() -> Self {
        Weights {
            applicability: 1.0,
            learned: 1.0,
            similar: 1.0,
            change: 0.5,
            risk: 0.2,
        }
    }
}

/// Applicability of a runbook when nothing speaks for or against it.
const NEUTRAL: f64 = 0.5;
/// Share of applicability that comes from the fault type (the rest from the alerts): the fault
/// type says what broke, an alert only where it shows.
const FAULT_SHARE: f64 = 0.7;
/// Confidence assumed for a fault type given without one: as likely as not.
const UNKNOWN_CONFIDENCE: f64 = 0.5;

/// The runbooks of `catalogue` that apply to `target`, best first, at most `limit`.
pub fn suggest(
    catalogue: &Catalogue,
    target: &Target,
    weights: &Weights,
    limit: usize,
) -> Vec<Suggestion> {
    let mut scored: Vec<(f64, &Runbook, Parts)> = catalogue
        .runbooks
        .iter()
        .filter(|r| applies(r, target))
        .map(|r| {
            let parts = Parts::of(r, target);
            (parts.score(r, weights), r, parts)
        })
        .collect();
    scored.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1.risk.cmp(&b.1.risk))
            .then_with(|| a.1.id.cmp(&b.1.id))
    });
    // Normalised over every applicable runbook, before truncation, so a confidence keeps its
    // meaning whatever the limit.
    let total: f64 = scored.iter().map(|s| s.0.max(0.0)).sum();
    scored
        .into_iter()
        .take(limit)
        .map(|(score, runbook, parts)| Suggestion {
            action: runbook.id.clone(),
            title: runbook.title.clone(),
            risk: runbook.risk,
            confidence: if total > 0.0 {
                (score.max(0.0) / total).clamp(0.0, 1.0)
            } else {
                0.0
            },
            reason: parts.reason(runbook, target),
            automated: runbook.automation.is_some(),
        })
        .collect()
}

/// Whether a runbook may be suggested at all for `target`: its service selector matches and,
/// if it requires one, the service changed recently. Approving an automated runbook checks the
/// same, so a webhook is never called for a service its runbook excludes.
pub fn applies(runbook: &Runbook, target: &Target) -> bool {
    runbook.applies.services.matches(target)
        && (!runbook.applies.requires_recent_change || target.recent_change.is_some())
}

/// How a fault type bears on a runbook.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fit {
    /// The runbook resolves any fault.
    Any,
    /// No fault type is known.
    Unknown,
    /// It resolves this fault type (known with this confidence, if given).
    Matched(FaultType, Option<f64>),
    /// It is not meant for this fault type.
    Mismatched(FaultType, Option<f64>),
}

/// What a runbook's score is made of, kept for its reason.
#[derive(Debug, Clone)]
struct Parts {
    fit: Fit,
    /// Firing signal kinds the runbook lists.
    signals: Vec<String>,
    applicability: f64,
    /// The learned probability, when a model answered.
    learned: Option<f64>,
    /// (share, count, incidents) of similar past incidents, when history exists.
    similar: Option<(f64, usize, usize)>,
    /// Whether a recent change pushes this runbook up.
    change: bool,
}

impl Parts {
    fn of(runbook: &Runbook, target: &Target) -> Parts {
        let applies = &runbook.applies;
        let fit = match target.fault_type {
            _ if applies.fault_types.is_empty() => Fit::Any,
            None => Fit::Unknown,
            Some(f) => {
                let c = target.fault_type_confidence.filter(|c| c.is_finite());
                if applies.fault_types.contains(&f) {
                    Fit::Matched(f, c)
                } else {
                    Fit::Mismatched(f, c)
                }
            }
        };
        let signals: Vec<String> = target
            .signals
            .iter()
            .filter(|s| applies.signals.contains(s))
            .cloned()
            .collect();
        let fault_part = match fit {
            Fit::Any | Fit::Unknown => NEUTRAL,
            // A confident match is the strongest fit; an unsure one still beats neutral.
            Fit::Matched(_, c) => NEUTRAL + NEUTRAL * unit(c.unwrap_or(UNKNOWN_CONFIDENCE)),
            // A confident mismatch is low; an unsure one keeps some of neutral, since the
            // true fault type may be one the runbook does fit.
            Fit::Mismatched(_, c) => 0.1 + 0.3 * (1.0 - unit(c.unwrap_or(UNKNOWN_CONFIDENCE))),
        };
        // Alerts only raise applicability: a signal not listed is no sign against an action.
        let signal_part = if signals.is_empty() { NEUTRAL } else { 1.0 };
        // The model only knows actions it was trained on: one it never saw taken gets no
        // opinion from it, rather than a probability of 0.
        let learned = target
            .learned
            .iter()
            .find(|(a, _)| *a == runbook.id)
            .map(|(_, p)| unit(*p));
        let similar = target.similar.filter(|v| v.incidents > 0).map(|v| {
            v.actions
                .iter()
                .find(|a| a.action == runbook.id)
                .map_or((0.0, 0, v.incidents), |a| {
                    (unit(a.share), a.count, v.incidents)
                })
        });
        Parts {
            fit,
            signals,
            applicability: FAULT_SHARE * fault_part + (1.0 - FAULT_SHARE) * signal_part,
            learned,
            similar,
            change: applies.requires_recent_change && target.recent_change.is_some(),
        }
    }

    /// The runbook's score: weighted mean of the present sources, plus the change bonus,
    /// minus the risk penalty. Finite for finite weights.
    fn score(&self, runbook: &Runbook, weights: &Weights) -> f64 {
        let w_a = weight(weights.applicability);
        let mut sum = w_a * self.applicability;
        let mut total = w_a;
        if let Some(p) = self.learned {
            sum += weight(weights.learned) * p;
            total += weight(weights.learned);
        }
        if let Some((share, _, _)) = self.similar {
            sum += weight(weights.similar) * share;
            total += weight(weights.similar);
        }
        let evidence = if total > 0.0 { sum / total } else { 0.0 };
        let change = if self.change {
            weight(weights.change)
        } else {
            0.0
        };
        evidence + change - weight(weights.risk) * runbook.risk.penalty()
    }

    /// One sentence: the change, the fit, the history, the model, the risk.
    fn reason(&self, runbook: &Runbook, target: &Target) -> String {
        let mut clauses: Vec<String> = Vec::new();
        if let (true, Some(change)) = (self.change, target.recent_change) {
            let when = match target.incident_at {
                Some(at) if at >= change.at => {
                    format!("{} min before the incident", (at - change.at + 30) / 60)
                }
                Some(_) => "as the incident began".to_owned(),
                None => "shortly before the incident".to_owned(),
            };
            clauses.push(format!(
                "{} changed {when} ({}): roll it back first",
                target.service,
                change_text(change)
            ));
        }
        clauses.push(self.fit_clause(target.service));
        if let Some((_, count, incidents)) = self.similar {
            clauses.push(match count {
                0 => format!("resolved none of {incidents} similar past incidents"),
                _ => format!("resolved {count} of {incidents} similar past incidents"),
            });
        }
        if let Some(p) = self.learned {
            clauses.push(format!("the learned model gives {p:.2}"));
        }
        clauses.push(format!("{} risk", runbook.risk.as_str()));
        let mut sentence = clauses.join("; ");
        // A service name keeps its case, so only a sentence that starts with our words is
        // capitalised.
        if let (false, Some(first)) = (self.change, sentence.get(..1)) {
            let upper = first.to_ascii_uppercase();
            sentence.replace_range(..1, &upper);
        }
        sentence.push('.');
        sentence
    }

    fn fit_clause(&self, service: &str) -> String {
        let confidence =
            |c: Option<f64>| c.map(|c| format!(" ({:.2})", unit(c))).unwrap_or_default();
        let fault = match self.fit {
            Fit::Any => Some("suits any fault".to_owned()),
            Fit::Unknown => None,
            Fit::Matched(f, c) => Some(format!("fits a {} fault{}", f.as_str(), confidence(c))),
            Fit::Mismatched(f, c) => Some(format!(
                "is not meant for a {} fault{}",
                f.as_str(),
                confidence(c)
            )),
        };
        let alerts = (!self.signals.is_empty())
            .then(|| format!("{} alerts on {service}", and_list(&self.signals)));
        match (fault, alerts) {
            (Some(fault), Some(alerts)) if matches!(self.fit, Fit::Mismatched(..)) => {
                format!("{fault}, though {alerts} point to it")
            }
            (Some(fault), Some(alerts)) => format!("{fault} with {alerts}"),
            (Some(fault), None) => fault,
            (None, Some(alerts)) => format!("fits the {alerts}"),
            (None, None) => format!("no fault type is known for {service}"),
        }
    }
}

/// `deploy v2.3.1`, or just `deploy` without a description.
fn change_text(change: &CaseChange) -> String {
    let description = change.description.trim();
    match (change.kind.trim(), description) {
        ("", "") => "a change".to_owned(),
        (kind, "") => kind.to_owned(),
        ("", d) => d.to_owned(),
        (kind, d) => format!("{kind} {d}"),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A probability as given, clamped to [0, 1]; 0 for NaN.
fn unit(p: f64) -> f64 {
    if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) }
}

/// A weight as given, 0 when negative or not finite (an operator's typo must not flip signs).
fn weight(w: f64) -> f64 {
    if w.is_finite() { w.max(0.0) } else { 0.0 }
}
