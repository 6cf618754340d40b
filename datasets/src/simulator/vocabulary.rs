//! Other metric vocabularies, for [`super::Trait::UnseenNames`]: the same measurements under
//! the names and units other monitoring stacks give them. A loader of unlabelled metrics can only
//! guess what such a name measures, so every series gets `Family::classify` of its name, right
//! or wrong (`FreeStorageSpace_Minimum`, `AverageResponseTime` and `availability` come out as
//! `Other`); and some of them move the other way (free space and available memory fall as the
//! disk or memory fills, availability falls as errors rise).

use super::metrics::{CPU, DISK, ERRORS, LATENCY, MEMORY, METRICS, SPACE, TRAFFIC, round};

/// The samples of the simulator's own metrics at one time ([`METRICS`] order) and the step in
/// seconds, to one value of a vocabulary's series.
type Formula = fn(&[f64; METRICS.len()], f64) -> f64;

/// One series of a vocabulary.
pub(super) struct Term {
    /// The name as that stack gives it.
    pub name: &'static str,
    /// Decimals kept, so that the CSV stays short.
    decimals: usize,
    value: Formula,
}

/// A monitoring stack's names for what the simulator measures.
pub(super) struct Vocabulary {
    /// `cloudwatch`, `azure`, `apm`.
    pub name: &'static str,
    pub terms: &'static [Term],
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// A term, written as one row of its vocabulary's table.
const fn term(name: &'static str, decimals: usize, value: Formula) -> Term {
    Term {
        name,
        decimals,
        value,
    }
}

/// AWS CloudWatch-like: statistics appended to the metric name, response time in seconds,
/// counts per period, free space in bytes.
const CLOUDWATCH: &[Term] = &[
    term("CPUUtilization_Average", 2, |v, _| v[CPU]),
    term("MemoryUtilization_Maximum", 2, |v, _| v[MEMORY]),
    term("DiskQueueDepth", 3, |v, _| v[DISK] / 8.0),
    term("FreeStorageSpace_Minimum", 0, |v, _| {
        (100.0 - v[SPACE]) / 100.0 * 200.0 * GIB
    }),
    term("TargetResponseTime_p99", 5, |v, _| v[LATENCY] / 1000.0),
    term("HTTPCode_Target_5XX_Count", 0, |v, step| {
        v[ERRORS] * v[TRAFFIC] * step
    }),
    term("RequestCount_Sum", 0, |v, step| v[TRAFFIC] * step),
    term("NetworkIn_Sum", 0, |v, step| v[TRAFFIC] * step * 1800.0),
];

/// Azure Monitor-like: spaced names, available memory in bytes, average response time in
/// seconds, counts per period.
const AZURE: &[Term] = &[
    term("Percentage CPU", 2, |v, _| v[CPU]),
    term("Available Memory Bytes", 0, |v, _| {
        (100.0 - v[MEMORY]) / 100.0 * 8.0 * GIB
    }),
    term("Disk Operations/Sec", 2, |v, _| v[DISK] * 30.0),
    term("FreeSpacePercent", 2, |v, _| 100.0 - v[SPACE]),
    term("AverageResponseTime", 5, |v, _| v[LATENCY] / 1000.0 / 3.0),
    term("Http5xx", 0, |v, step| v[ERRORS] * v[TRAFFIC] * step),
    term("Requests", 0, |v, step| v[TRAFFIC] * step),
    term("BytesReceived", 0, |v, step| v[TRAFFIC] * step * 1500.0),
];

/// An APM vendor's: dotted names, CPU as a load ratio, heap in MB, a median latency, and
/// availability as the percent of successful requests.
const APM: &[Term] = &[
    term("process.cpu.load", 4, |v, _| v[CPU] / 100.0),
    term("jvm.heap.used_mb", 1, |v, _| v[MEMORY] / 100.0 * 2048.0),
    term("IOPS_Total", 1, |v, _| v[DISK] * 40.0),
    term("volume.used_pct", 2, |v, _| v[SPACE]),
    term("Latency_p50", 2, |v, _| v[LATENCY] / 3.5),
    term("availability", 4, |v, _| 100.0 * (1.0 - v[ERRORS])),
    term("requests_Sum", 0, |v, step| v[TRAFFIC] * step),
];

/// The vocabularies a case may use.
pub(super) const VOCABULARIES: [Vocabulary; 3] = [
    Vocabulary {
        name: "cloudwatch",
        terms: CLOUDWATCH,
    },
    Vocabulary {
        name: "azure",
        terms: AZURE,
    },
    Vocabulary {
        name: "apm",
        terms: APM,
    },
];

impl Vocabulary {
    /// The series of this vocabulary computed from the simulator's own (`columns`, in
    /// [`METRICS`] order, sampled every `step` seconds); `NaN` where any input is missing.
    pub fn translate(
        &self,
        columns: &[Vec<f64>; METRICS.len()],
        step: i64,
    ) -> Vec<(&'static str, Vec<f64>)> {
        let len = columns[0].len();
        self.terms
            .iter()
            .map(|term| {
                let values = (0..len)
                    .map(|i| {
                        let sample: [f64; METRICS.len()] = std::array::from_fn(|m| columns[m][i]);
                        let value = (term.value)(&sample, step as f64);
                        if value.is_finite() {
                            round(value, term.decimals)
                        } else {
                            f64::NAN
                        }
                    })
                    .collect();
                (term.name, values)
            })
            .collect()
    }
}
