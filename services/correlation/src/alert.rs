//! What an alert is made of: its label set, its fingerprint, its status and the kind of signal
//! it reports.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An alert's identifying labels, sorted by name (the order fingerprints are computed in).
pub type Labels = BTreeMap<String, String>;

/// Whether an alert is still firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The condition holds.
    Firing,
    /// The condition has ended.
    Resolved,
}

impl AlertStatus {
    /// `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

impl FromStr for AlertStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "firing" => Ok(AlertStatus::Firing),
            "resolved" => Ok(AlertStatus::Resolved),
            other => Err(format!(
                "unknown alert status {other:?}: expected \"firing\" or \"resolved\""
            )),
        }
    }
}

/// The identity of an alert: a 64-bit hash of its label set, computed exactly as Prometheus and
/// Alertmanager do (`model.LabelSet.Fingerprint`), so that an alert arriving through
/// Alertmanager's webhook and straight from Prometheus is recognised as the same alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

const FNV_OFFSET: u64 = 14_695_981_039_346_656_037;
const FNV_PRIME: u64 = 1_099_511_628_211;
/// Cannot occur in UTF-8, so `{a="bc"}` and `{ab="c"}` hash differently.
const SEPARATOR: u8 = 0xff;

fn fnv_add(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

impl Fingerprint {
    /// FNV-1a over each `name 0xff value 0xff`, names in byte order.
    pub fn of(labels: &Labels) -> Fingerprint {
        let mut hash = FNV_OFFSET;
        for (name, value) in labels {
            hash = fnv_add(hash, name.as_bytes());
            hash = fnv_add(hash, &[SEPARATOR]);
            hash = fnv_add(hash, value.as_bytes());
            hash = fnv_add(hash, &[SEPARATOR]);
        }
        Fingerprint(hash)
    }

    /// The stored form: the hash as an `i64` with the same bits (databases have no `u64`).
    pub fn to_i64(self) -> i64 {
        i64::from_ne_bytes(self.0.to_ne_bytes())
    }

    /// The inverse of [`Fingerprint::to_i64`].
    pub fn from_i64(value: i64) -> Fingerprint {
        Fingerprint(u64::from_ne_bytes(value.to_ne_bytes()))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Sixteen lower-case hex digits, as Alertmanager prints it.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for Fingerprint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() || text.len() > 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "fingerprint must be 1 to 16 hex digits (as Alertmanager writes it), got {text:?}"
            ));
        }
        u64::from_str_radix(text, 16)
            .map(Fingerprint)
            .map_err(|e| e.to_string())
    }
}

/// What an alert measures, guessed from its `signal` label or its name. Rankers weigh evidence
/// by it (a CPU alert on a service says more about that service than a latency alert does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// Response time.
    Latency,
    /// Failed requests.
    Errors,
    /// A full resource: queue, pool, threads, connections.
    Saturation,
    /// Request rate.
    Traffic,
    /// Up/down, health checks, probes.
    Availability,
    /// Processor use or throttling.
    Cpu,
    /// Memory use, OOM kills.
    Memory,
    /// Disk space or I/O.
    Disk,
    /// Packet loss, connection errors, DNS.
    Network,
    /// Anything else.
    Custom,
}

/// Keywords looked for in a lower-cased alert name, most specific resource first: "cpu" in
/// `HighCpuLatency` says more than "latency".
const SIGNAL_KEYWORDS: [(Signal, &[&str]); 9] = [
    (Signal::Cpu, &["cpu", "throttl"]),
    (
        Signal::Memory,
        &["memory", "oom", "heap", "mem_", "memusage"],
    ),
    (
        Signal::Disk,
        &["disk", "filesystem", "inode", "volume", "iops"],
    ),
    (
        Signal::Network,
        &[
            "network",
            "packet",
            "loss",
            "tcp",
            "dns",
            "connectionrefused",
        ],
    ),
    (
        Signal::Latency,
        &["latency", "slow", "duration", "responsetime", "p99", "p95"],
    ),
    (
        Signal::Errors,
        &["error", "5xx", "fail", "exception", "status500"],
    ),
    (
        Signal::Saturation,
        &[
            "saturat",
            "queue",
            "pool",
            "thread",
            "connections",
            "backlog",
        ],
    ),
    (
        Signal::Availability,
        &[
            "down",
            "unavailable",
            "unreachable",
            "health",
            "probe",
            "absent",
            "crash",
            "restart",
        ],
    ),
    (
        Signal::Traffic,
        &["traffic", "qps", "rps", "throughput", "requestrate"],
    ),
];

impl Signal {
    /// The signal an alert's labels name: the `signal` label when it holds a known kind, else
    /// keywords of `alertname`, else [`Signal::Custom`].
    pub fn classify(labels: &Labels) -> Signal {
        if let Some(signal) = labels.get("signal").and_then(|s| Signal::from_name(s)) {
            return signal;
        }
        let Some(name) = labels.get("alertname") else {
            return Signal::Custom;
        };
        let name = name.to_ascii_lowercase();
        SIGNAL_KEYWORDS
            .iter()
            .find(|(_, words)| words.iter().any(|word| name.contains(word)))
            .map_or(Signal::Custom, |(signal, _)| *signal)
    }

    /// The kind named `name` (lower case), if any.
    pub fn from_name(name: &str) -> Option<Signal> {
        Some(match name {
            "latency" => Signal::Latency,
            "errors" => Signal::Errors,
            "saturation" => Signal::Saturation,
            "traffic" => Signal::Traffic,
            "availability" => Signal::Availability,
            "cpu" => Signal::Cpu,
            "memory" => Signal::Memory,
            "disk" => Signal::Disk,
            "network" => Signal::Network,
            "custom" => Signal::Custom,
            _ => return None,
        })
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Latency => "latency",
            Signal::Errors => "errors",
            Signal::Saturation => "saturation",
            Signal::Traffic => "traffic",
            Signal::Availability => "availability",
            Signal::Cpu => "cpu",
            Signal::Memory => "memory",
            Signal::Disk => "disk",
            Signal::Network => "network",
            Signal::Custom => "custom",
        }
    }
}

/// Labels from `(name, value)` pairs: the tests' alerts and services.
#[cfg(test)]
pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_match_prometheus() {
        // Values from prometheus/common model/signature_test.go (TestLabelsToSignature and
        // TestMetricToFingerprint): the empty set hashes to the FNV offset basis.
        assert_eq!(
            Fingerprint::of(&Labels::new()).0,
            14_695_981_039_346_656_037
        );
        assert_eq!(
            Fingerprint::of(&labels(&[
                ("name", "garland, briggs"),
                ("fear", "love is not enough")
            ]))
            .0,
            5_799_056_148_416_392_346
        );
    }

    #[test]
    fn fingerprints_do_not_depend_on_where_names_end() {
        assert_ne!(
            Fingerprint::of(&labels(&[("a", "bc")])),
            Fingerprint::of(&labels(&[("ab", "c")]))
        );
    }

    #[test]
    fn fingerprints_print_and_parse_as_alertmanager_writes_them() {
        let fingerprint = Fingerprint(0xdead_beef);
        assert_eq!(fingerprint.to_string(), "00000000deadbeef");
        assert_eq!(
            "00000000deadbeef".parse::<Fingerprint>().unwrap(),
            fingerprint
        );
        assert_eq!("DEADBEEF".parse::<Fingerprint>().unwrap(), fingerprint);
        assert!("".parse::<Fingerprint>().is_err());
        assert!("xyz".parse::<Fingerprint>().is_err());
        assert!("00000000000000000".parse::<Fingerprint>().is_err());
        let high = Fingerprint(u64::MAX - 3);
        assert_eq!(Fingerprint::from_i64(high.to_i64()), high);
    }

    #[test]
    fn signals_come_from_the_signal_label_or_the_alert_name() {
        let of = |pairs: &[(&str, &str)]| Signal::classify(&labels(pairs));
        assert_eq!(of(&[("alertname", "HighCpuLatency")]), Signal::Cpu);
        assert_eq!(of(&[("alertname", "KubePodOOMKilled")]), Signal::Memory);
        assert_eq!(of(&[("alertname", "HighLatency")]), Signal::Latency);
        assert_eq!(of(&[("alertname", "Http5xxRate")]), Signal::Errors);
        assert_eq!(of(&[("alertname", "DBDown")]), Signal::Availability);
        assert_eq!(
            of(&[("alertname", "Whatever"), ("signal", "disk")]),
            Signal::Disk
        );
        assert_eq!(of(&[("alertname", "Whatever")]), Signal::Custom);
        assert_eq!(of(&[]), Signal::Custom);
    }
}
