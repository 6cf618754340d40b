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

/// AWS CloudWatch-like: statistics appended to the metric name, response time in seconds,
/// counts per period, free space in bytes.
const CLOUDWATCH: &[Term] = &[
    Term {
        name: "CPUUtilization_Average",
        decimals: 2,
        value: |v, _| v[CPU],
    },
    Term {
        name: "MemoryUtilization_Maximum",
        decimals: 2,
        value: |v, _| v[MEMORY],
    },
    Term {
        name: "DiskQueueDepth",
        decimals: 3,
        value: |v, _| v[DISK] / 8.0,
    },
    Term {
        name: "FreeStorageSpace_Minimum",
        decimals: 0,
        value: |v, _| (100.0 - v[SPACE]) / 100.0 * 200.0 * GIB,
    },
    Term {
        name: "TargetResponseTime_p99",
        decimals: 5,
        value: |v, _| v[LATENCY] / 1000.0,
    },
    Term {
        name: "HTTPCode_Target_5XX_Count",
        decimals: 0,
        value: |v, step| v[ERRORS] * v[TRAFFIC] * step,
    },
    Term {
        name: "RequestCount_Sum",
        decimals: 0,
        value: |v, step| v[TRAFFIC] * step,
    },
    Term {
        name: "NetworkIn_Sum",
        decimals: 0,
        value: |v, step| v[TRAFFIC] * step * 1800.0,
    },
];

/// Azure Monitor-like: spaced names, available memory in bytes, average response time in
/// seconds, counts per period.
const AZURE: &[Term] = &[
    Term {
        name: "Percentage CPU",
        decimals: 2,
        value: |v, _| v[CPU],
    },
    Term {
        name: "Available Memory Bytes",
        decimals: 0,
        value: |v, _| (100.0 - v[MEMORY]) / 100.0 * 8.0 * GIB,
    },
    Term {
        name: "Disk Operations/Sec",
        decimals: 2,
        value: |v, _| v[DISK] * 30.0,
    },
    Term {
        name: "FreeSpacePercent",
        decimals: 2,
        value: |v, _| 100.0 - v[SPACE],
    },
    Term {
        name: "AverageResponseTime",
        decimals: 5,
        value: |v, _| v[LATENCY] / 1000.0 / 3.0,
    },
    Term {
        name: "Http5xx",
        decimals: 0,
        value: |v, step| v[ERRORS] * v[TRAFFIC] * step,
    },
    Term {
        name: "Requests",
        decimals: 0,
        value: |v, step| v[TRAFFIC] * step,
    },
    Term {
        name: "BytesReceived",
        decimals: 0,
        value: |v, step| v[TRAFFIC] * step * 1500.0,
    },
];

/// An APM vendor's: dotted names, CPU as a load ratio, heap in MB, a median latency, and
/// availability as the percent of successful requests.
const APM: &[Term] = &[
    Term {
        name: "process.cpu.load",
        decimals: 4,
        value: |v, _| v[CPU] / 100.0,
    },
    Term {
        name: "jvm.heap.used_mb",
        decimals: 1,
        value: |v, _| v[MEMORY] / 100.0 * 2048.0,
    },
    Term {
        name: "IOPS_Total",
        decimals: 1,
        value: |v, _| v[DISK] * 40.0,
    },
    Term {
        name: "volume.used_pct",
        decimals: 2,
        value: |v, _| v[SPACE],
    },
    Term {
        name: "Latency_p50",
        decimals: 2,
        value: |v, _| v[LATENCY] / 3.5,
    },
    Term {
        name: "availability",
        decimals: 4,
        value: |v, _| 100.0 * (1.0 - v[ERRORS]),
    },
    Term {
        name: "requests_Sum",
        decimals: 0,
        value: |v, step| v[TRAFFIC] * step,
    },
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
