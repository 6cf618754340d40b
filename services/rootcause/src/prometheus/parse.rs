//! Reading `query_range` answers: the envelope, the samples, and series merged per service and
//! metric.

use std::collections::{BTreeMap, BTreeSet};

use rootcause_models::case::{Family, Series, Source};
use serde::Deserialize;

use super::template::Job;
use super::{PrometheusError, QueryName};

/// Bodies quoted in error messages are cut here: a proxy's HTML error page says nothing useful
/// after its first lines, and a log line should stay a line.
pub(super) const MAX_BODY_IN_ERROR: usize = 300;

/// A series as Prometheus returned it: its labels and (time, value) samples.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RawSeries {
    pub(super) labels: BTreeMap<String, String>,
    pub(super) samples: Vec<(i64, f64)>,
}

/// Prometheus's response envelope (`/api/v1/*`).
#[derive(Deserialize)]
pub(super) struct Envelope {
    pub(super) status: String,
    #[serde(default)]
    pub(super) data: Option<Data>,
    #[serde(default, rename = "errorType")]
    pub(super) error_type: Option<String>,
    #[serde(default)]
    pub(super) error: Option<String>,
    #[serde(default)]
    pub(super) warnings: Vec<String>,
}

#[derive(Deserialize)]
pub(super) struct Data {
    #[serde(rename = "resultType")]
    pub(super) result_type: String,
    pub(super) result: serde_json::Value,
}

#[derive(Deserialize)]
pub(super) struct MatrixSeries {
    #[serde(default)]
    pub(super) metric: BTreeMap<String, String>,
    // Absent for native histograms (`histograms`), which carry no float samples to read.
    #[serde(default)]
    pub(super) values: Vec<(f64, String)>,
}

/// Reads a `query_range` answer. Prometheus puts its JSON error envelope on 4xx/5xx answers
/// too, so the envelope is tried before the HTTP status is.
pub(super) fn parse_response(
    name: &QueryName,
    status: u16,
    body: &str,
) -> Result<Vec<RawSeries>, PrometheusError> {
    let bad = |reason: String| PrometheusError::BadResponse {
        query: name.clone(),
        reason,
    };
    let envelope: Envelope = match serde_json::from_str(body) {
        Ok(envelope) => envelope,
        Err(error) => {
            return Err(if (200..300).contains(&status) {
                bad(format!(
                    "not Prometheus's JSON ({error}): {}",
                    excerpt(body)
                ))
            } else {
                PrometheusError::Http {
                    query: name.clone(),
                    status,
                    body: excerpt(body),
                }
            });
        }
    };
    if envelope.status != "success" {
        return Err(PrometheusError::Rejected {
            query: name.clone(),
            error_type: envelope.error_type.unwrap_or_else(|| "unknown".to_owned()),
            message: envelope
                .error
                .unwrap_or_else(|| format!("status {:?}, HTTP {status}", envelope.status)),
        });
    }
    if !envelope.warnings.is_empty() {
        tracing::debug!(query = %name, warnings = ?envelope.warnings, "Prometheus warned");
    }
    let data = envelope
        .data
        .ok_or_else(|| bad("status success without data".to_owned()))?;
    if data.result_type != "matrix" {
        return Err(bad(format!(
            "a {} instead of a matrix (a range query of a scalar or string expression?)",
            data.result_type
        )));
    }
    let matrix: Vec<MatrixSeries> =
        serde_json::from_value(data.result).map_err(|e| bad(format!("matrix: {e}")))?;
    matrix
        .into_iter()
        .map(|series| {
            let samples = series
                .values
                .iter()
                .map(|(time, value)| {
                    let sample = parse_sample(value)
                        .ok_or_else(|| bad(format!("sample value {value:?} is not a number")))?;
                    if !time.is_finite() {
                        return Err(bad(format!("sample time {time} is not a number")));
                    }
                    // Evaluation times are whole seconds for whole-second start and step.
                    Ok((time.round() as i64, sample))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RawSeries {
                labels: series.metric,
                samples,
            })
        })
        .collect()
}

/// A sample value as Prometheus writes it (Go's `FormatFloat`: `1.5`, `1e+06`, `NaN`, `+Inf`,
/// `-Inf`).
pub(super) fn parse_sample(value: &str) -> Option<f64> {
    match value {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// The start of a body for an error message, on one line.
pub(super) fn excerpt(body: &str) -> String {
    let line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(MAX_BODY_IN_ERROR) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// Per (service, name): per time, the sum and count of the non-NaN samples, and whether any
/// sample (NaN included) was seen, so a series of only NaN stays a series of NaN.
#[derive(Default)]
pub(super) struct Merger {
    pub(super) sums: BTreeMap<(String, String), BTreeMap<i64, (f64, u32)>>,
}

impl Merger {
    /// Attributes the series of one answer: to the job's service for a per-service template,
    /// otherwise to the requested service named by `service_label` (other series are dropped:
    /// a broad template may match services nobody asked about).
    pub(super) fn add(
        &mut self,
        job: &Job,
        series: Vec<RawSeries>,
        service_label: &str,
        requested: &BTreeSet<String>,
    ) {
        for raw in series {
            let service = match &job.name.service {
                Some(service) => service.clone(),
                None => match raw.labels.get(service_label) {
                    Some(service) if requested.contains(service) => service.clone(),
                    _ => continue,
                },
            };
            let points = self
                .sums
                .entry((service, job.name.name.clone()))
                .or_default();
            for (time, value) in raw.samples {
                let (sum, count) = points.entry(time).or_insert((0.0, 0));
                if !value.is_nan() {
                    *sum += value;
                    *count += 1;
                }
            }
        }
    }

    pub(super) fn finish(self) -> Vec<Series> {
        self.sums
            .into_iter()
            .filter(|(_, points)| !points.is_empty())
            .map(|((service, name), points)| {
                let (times, values) = points
                    .into_iter()
                    .map(|(time, (sum, count))| {
                        let mean = if count == 0 {
                            f64::NAN
                        } else {
                            sum / f64::from(count)
                        };
                        (time, mean)
                    })
                    .unzip();
                Series {
                    service,
                    source: Source::Metric,
                    family: Family::classify(&name),
                    name,
                    times,
                    values,
                }
            })
            .collect()
    }
}
