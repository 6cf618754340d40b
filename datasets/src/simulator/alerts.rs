//! The alert storm: Alertmanager-shaped alerts for the root, its affected callers and unrelated
//! noise, with the imperfections real storms have (a silent root, missing symptoms, flapping).

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;
use rootcause_correlation::Signal;
use rootcause_topology::{Service, ServiceKind};

use super::metrics::{CPU, DISK, ERRORS, Effect, LATENCY, MEMORY, SPACE, TRAFFIC};
use super::random::{between, chance, fnv, uniform, unit};

/// Why an alert fired. Not written to `alerts.json` (it is the answer, not evidence); tests and
/// evaluations use it to tell fault-caused alerts from noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertCause {
    /// Raised by the root cause itself.
    Root,
    /// Raised by a caller the fault reached.
    Symptom,
    /// Unrelated to the fault.
    Noise,
}

/// One alert as Alertmanager's API v2 takes it (`POST /api/v2/alerts`), plus why it fired.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedAlert {
    /// Identifying labels: `alertname`, `service`, `severity`, `namespace`, `pod`, `instance`
    /// (and `team` when the topology gives one).
    pub labels: BTreeMap<String, String>,
    /// `summary` and `description`.
    pub annotations: BTreeMap<String, String>,
    /// Unix seconds when it began firing.
    pub starts_at: i64,
    /// Unix seconds when it resolved, if it did.
    pub ends_at: Option<i64>,
    /// Link back to the rule's expression, as Prometheus sets it.
    pub generator_url: String,
    /// Why it fired.
    pub cause: AlertCause,
}

impl SimulatedAlert {
    /// The `service` label.
    pub fn service(&self) -> &str {
        self.labels.get("service").map_or("", String::as_str)
    }

    /// The `alertname` label.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

/// The alert rules the simulator knows, each with the signal class the correlation engine
/// derives from its name and the metric whose movement it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Rule {
    HighCpuUsage,
    CpuThrottlingHigh,
    MemoryPressure,
    KubePodCrashLooping,
    DiskIoSaturation,
    FilesystemAlmostFull,
    HighLatency,
    HighErrorRate,
    PacketLoss,
    HighRequestRate,
    ConnectionPoolExhausted,
    CertificateExpiringSoon,
}

/// Rules that fire as noise, with weights: mostly the everyday ones.
const NOISE_RULES: [(Rule, f64); 12] = [
    (Rule::HighCpuUsage, 3.0),
    (Rule::CpuThrottlingHigh, 2.0),
    (Rule::MemoryPressure, 2.0),
    (Rule::KubePodCrashLooping, 1.0),
    (Rule::DiskIoSaturation, 1.0),
    (Rule::FilesystemAlmostFull, 1.0),
    (Rule::HighLatency, 3.0),
    (Rule::HighErrorRate, 2.0),
    (Rule::PacketLoss, 0.5),
    (Rule::HighRequestRate, 1.5),
    (Rule::ConnectionPoolExhausted, 1.0),
    (Rule::CertificateExpiringSoon, 1.0),
];

impl Rule {
    #[cfg(test)]
    const ALL: [Rule; 12] = [
        Rule::HighCpuUsage,
        Rule::CpuThrottlingHigh,
        Rule::MemoryPressure,
        Rule::KubePodCrashLooping,
        Rule::DiskIoSaturation,
        Rule::FilesystemAlmostFull,
        Rule::HighLatency,
        Rule::HighErrorRate,
        Rule::PacketLoss,
        Rule::HighRequestRate,
        Rule::ConnectionPoolExhausted,
        Rule::CertificateExpiringSoon,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::HighCpuUsage => "HighCpuUsage",
            Rule::CpuThrottlingHigh => "CpuThrottlingHigh",
            Rule::MemoryPressure => "MemoryPressure",
            Rule::KubePodCrashLooping => "KubePodCrashLooping",
            Rule::DiskIoSaturation => "DiskIOSaturation",
            Rule::FilesystemAlmostFull => "FilesystemAlmostFull",
            Rule::HighLatency => "HighLatency",
            Rule::HighErrorRate => "HighErrorRate",
            Rule::PacketLoss => "PacketLoss",
            Rule::HighRequestRate => "HighRequestRate",
            Rule::ConnectionPoolExhausted => "ConnectionPoolExhausted",
            Rule::CertificateExpiringSoon => "CertificateExpiringSoon",
        }
    }

    /// The signal class the rule is meant to raise; a test checks that the correlation engine's
    /// `Signal::classify` derives the same from the rule's name.
    #[cfg(test)]
    pub fn signal(self) -> &'static str {
        match self {
            Rule::HighCpuUsage | Rule::CpuThrottlingHigh => "cpu",
            Rule::MemoryPressure => "memory",
            Rule::KubePodCrashLooping => "availability",
            Rule::DiskIoSaturation | Rule::FilesystemAlmostFull => "disk",
            Rule::HighLatency => "latency",
            Rule::HighErrorRate => "errors",
            Rule::PacketLoss => "network",
            Rule::HighRequestRate => "traffic",
            Rule::ConnectionPoolExhausted => "saturation",
            Rule::CertificateExpiringSoon => "custom",
        }
    }

    /// What the rule's expression looks at, for `generatorURL`.
    fn expression(self, service: &str) -> String {
        let metric = match self {
            Rule::HighCpuUsage => "cpu_usage > 85",
            Rule::CpuThrottlingHigh => "cpu_throttled_ratio > 0.25",
            Rule::MemoryPressure => "memory_usage > 90",
            Rule::KubePodCrashLooping => "increase(restarts_total[10m]) > 2",
            Rule::DiskIoSaturation => "disk_io_utilisation > 0.9",
            Rule::FilesystemAlmostFull => "disk_usage > 95",
            Rule::HighLatency => "latency_p99_ms > 2 * latency_p99_ms offset 1d",
            Rule::HighErrorRate => "error_rate > 0.05",
            Rule::PacketLoss => "packet_loss_ratio > 0.02",
            Rule::HighRequestRate => "request_rate > 1.5 * request_rate offset 1w",
            Rule::ConnectionPoolExhausted => "pool_in_use / pool_size > 0.95",
            Rule::CertificateExpiringSoon => "cert_expiry_seconds < 7 * 86400",
        };
        // The service matcher goes on the first metric name of the expression.
        match metric.find([' ', '[', ')']) {
            Some(at) if !metric.starts_with("increase") => {
                format!(
                    "{}{{service=\"{service}\"}}{}",
                    &metric[..at],
                    &metric[at..]
                )
            }
            _ => format!("{metric} and on() ALERTS{{service=\"{service}\"}}"),
        }
    }

    fn summary(self, service: &str) -> String {
        match self {
            Rule::HighCpuUsage => format!("CPU usage of {service} is above 85%"),
            Rule::CpuThrottlingHigh => format!("{service} is being CPU-throttled"),
            Rule::MemoryPressure => format!("Memory usage of {service} is above 90%"),
            Rule::KubePodCrashLooping => format!("A pod of {service} is crash looping"),
            Rule::DiskIoSaturation => format!("Disk I/O of {service} is saturated"),
            Rule::FilesystemAlmostFull => format!("Filesystem of {service} is almost full"),
            Rule::HighLatency => format!("p99 latency of {service} is twice its usual level"),
            Rule::HighErrorRate => format!("More than 5% of requests to {service} fail"),
            Rule::PacketLoss => format!("{service} is losing packets"),
            Rule::HighRequestRate => format!("Request rate of {service} is unusually high"),
            Rule::ConnectionPoolExhausted => format!("Connection pool of {service} is exhausted"),
            Rule::CertificateExpiringSoon => {
                format!("TLS certificate of {service} expires within a week")
            }
        }
    }

    /// How a noise alert of this rule shows on the service's metrics, if at all: noise backed
    /// by a metric is harder to tell from a fault than noise with nothing behind it.
    fn noise_effect(self, rng: &mut ChaCha8Rng, from: i64, to: i64) -> Option<Effect> {
        let mut effect = Effect::between(from, to, 45.0);
        let metric = match self {
            Rule::HighCpuUsage | Rule::CpuThrottlingHigh => CPU,
            Rule::MemoryPressure => MEMORY,
            Rule::DiskIoSaturation => DISK,
            Rule::FilesystemAlmostFull => SPACE,
            Rule::HighLatency | Rule::ConnectionPoolExhausted => LATENCY,
            Rule::HighErrorRate | Rule::PacketLoss | Rule::KubePodCrashLooping => ERRORS,
            Rule::HighRequestRate => TRAFFIC,
            Rule::CertificateExpiringSoon => return None,
        };
        match metric {
            CPU => effect.cpu = uniform(rng, 0.4, 0.8),
            MEMORY => {
                effect.memory = uniform(rng, 0.5, 0.8);
                effect.leak = uniform(rng, 120.0, 600.0);
            }
            DISK => effect.disk = uniform(rng, 1.5, 4.0),
            SPACE => {
                effect.space = uniform(rng, 0.5, 0.9);
                effect.leak = uniform(rng, 300.0, 900.0);
            }
            LATENCY => effect.latency = uniform(rng, 0.8, 2.5),
            ERRORS => effect.errors = uniform(rng, 0.03, 0.12),
            _ => effect.traffic = uniform(rng, 0.5, 1.2),
        }
        Some(effect)
    }
}

/// The signal class of an alert, exactly as the correlation engine derives it from its labels
/// (the `signal` label, else keywords of `alertname`), so simulated cases carry the signals the
/// service would see.
pub(super) fn signal_of(labels: &BTreeMap<String, String>) -> &'static str {
    Signal::classify(labels).as_str()
}

/// Builds the labels that identify a service's pods, stable per (seed, service) so that the
/// same service keeps its pod names across the alerts of a case.
pub(super) struct Labeller<'a> {
    pub system: &'a str,
    pub seed: u64,
}

impl Labeller<'_> {
    /// An alert of `rule` on `service`, firing over `[start, end]`.
    pub fn alert(
        &self,
        service: &Service,
        rule: Rule,
        severity: &str,
        (start, end): (i64, Option<i64>),
        cause: AlertCause,
    ) -> SimulatedAlert {
        let name = service.name.as_str();
        let namespace = service
            .labels
            .get("namespace")
            .map_or(self.system, String::as_str);
        let hash = fnv(format!("{}/{name}", self.seed).as_bytes());
        let (pod, port) = match service.kind {
            // Datastores run as stateful sets, whose pods are numbered.
            ServiceKind::Database => (format!("{name}-{}", hash % 3), 5432),
            ServiceKind::Cache => (format!("{name}-{}", hash % 3), 6379),
            ServiceKind::Queue => (format!("{name}-{}", hash % 3), 5672),
            ServiceKind::External => (name.to_owned(), 443),
            ServiceKind::Host => (name.to_owned(), 9100),
            ServiceKind::Service | ServiceKind::Gateway => {
                (format!("{name}-{}", pod_suffix(hash)), 8080)
            }
        };
        let instance = format!(
            "10.{}.{}.{}:{port}",
            (hash >> 8) & 0xff,
            (hash >> 16) & 0xff,
            ((hash >> 24) & 0xfd) + 1
        );
        let mut labels = BTreeMap::from([
            ("alertname".to_owned(), rule.name().to_owned()),
            ("service".to_owned(), name.to_owned()),
            ("severity".to_owned(), severity.to_owned()),
            ("namespace".to_owned(), namespace.to_owned()),
            ("pod".to_owned(), pod),
            ("instance".to_owned(), instance),
        ]);
        if let Some(team) = &service.team {
            labels.insert("team".to_owned(), team.clone());
        }
        let summary = rule.summary(name);
        let annotations = BTreeMap::from([
            (
                "description".to_owned(),
                format!("{summary} (namespace {namespace}, severity {severity})."),
            ),
            ("summary".to_owned(), summary),
        ]);
        SimulatedAlert {
            labels,
            annotations,
            starts_at: start,
            ends_at: end,
            generator_url: format!(
                "http://prometheus.{}:9090/graph?g0.expr={}&g0.tab=1",
                percent_encode(namespace),
                percent_encode(&rule.expression(name))
            ),
            cause,
        }
    }
}

/// A Kubernetes-style pod suffix: a ten-character replica-set hash and five characters.
fn pod_suffix(hash: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut value = hash;
    let mut out = String::with_capacity(16);
    for i in 0..15 {
        if i == 10 {
            out.push('-');
        }
        out.push(ALPHABET[(value % ALPHABET.len() as u64) as usize] as char);
        value = (value / ALPHABET.len() as u64) ^ hash.rotate_left(i * 7 + 3);
    }
    out
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The firing episodes of one alert meant to fire over `[start, end]`: one, or with
/// probability `flapping` two or three separated by short resolved gaps (the alert resolving
/// and re-firing as its metric hovers at the threshold).
pub(super) fn episodes(
    rng: &mut ChaCha8Rng,
    start: i64,
    end: i64,
    flapping: f64,
) -> Vec<(i64, i64)> {
    let flaps = chance(rng, flapping);
    let count = between(rng, 2, 3);
    if !flaps || end - start < 600 {
        return vec![(start, end)];
    }
    let mut out = Vec::new();
    let mut from = start;
    for _ in 1..count {
        let to = from + between(rng, 60, 240);
        let again = to + between(rng, 30, 180);
        if again + 60 >= end {
            break;
        }
        out.push((from, to));
        from = again;
    }
    out.push((from, end));
    out
}

/// A severity for an alert. Every alert the fault causes follows one rule, whatever its cause
/// (root or symptom) and signal: `critical` with probability half the `strength` of the
/// disturbance on its service (1 on the root, less on callers, decaying with distance),
/// otherwise `warning`, except `info` with probability 0.1. So a root alert is as likely to be
/// `info` as a symptom's, and a severity says how hard a service is hit, not whether it is the
/// root (the root is hit hardest, so it is somewhat more often `critical`). Noise leans `info`.
pub(super) fn severity(rng: &mut ChaCha8Rng, cause: AlertCause, strength: f64) -> &'static str {
    let u = unit(rng);
    match cause {
        AlertCause::Root | AlertCause::Symptom => {
            if u < 0.5 * strength.clamp(0.0, 1.0) {
                "critical"
            } else if u < 0.9 {
                "warning"
            } else {
                "info"
            }
        }
        AlertCause::Noise => {
            if u < 0.4 {
                "info"
            } else if u < 0.85 {
                "warning"
            } else {
                "critical"
            }
        }
    }
}

/// A noise rule, drawn by weight.
pub(super) fn noise_rule(rng: &mut ChaCha8Rng) -> Rule {
    let total: f64 = NOISE_RULES.iter().map(|(_, w)| w).sum();
    let mut target = unit(rng) * total;
    for (rule, weight) in NOISE_RULES {
        if target < weight {
            return rule;
        }
        target -= weight;
    }
    NOISE_RULES[NOISE_RULES.len() - 1].0
}

/// The metric disturbance behind a noise alert of `rule` over `[from, to]`.
pub(super) fn noise_effect(rng: &mut ChaCha8Rng, rule: Rule, from: i64, to: i64) -> Option<Effect> {
    // The metric moves a little before the alert fires, as a `for:` clause makes it.
    rule.noise_effect(rng, from - 90, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_signals_agree_with_the_name_keywords() {
        let labels = |name: &str| BTreeMap::from([("alertname".to_string(), name.to_string())]);
        for rule in Rule::ALL {
            assert_eq!(
                signal_of(&labels(rule.name())),
                rule.signal(),
                "{}",
                rule.name()
            );
        }
        assert_eq!(signal_of(&labels("SomethingElse")), "custom");
    }

    #[test]
    fn generator_urls_are_percent_encoded() {
        let labeller = Labeller {
            system: "shop",
            seed: 1,
        };
        let service = Service::new("db-01", ServiceKind::Database);
        let alert = labeller.alert(
            &service,
            Rule::HighLatency,
            "warning",
            (10, Some(20)),
            AlertCause::Root,
        );
        assert!(
            alert
                .generator_url
                .starts_with("http://prometheus.shop:9090/graph?g0.expr=latency_p99_ms%7Bservice%3D%22db-01%22%7D"),
            "{}",
            alert.generator_url
        );
        assert!(!alert.generator_url.contains(' '));
        assert_eq!(alert.labels["pod"].rsplit_once('-').unwrap().0, "db-01");
    }
}
