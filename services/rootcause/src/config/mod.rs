//! Configuration: defaults, then a TOML file, then `ROOTCAUSE_*` environment variables, then
//! command-line flags; each later source overrides the earlier ones key by key.
//!
//! Nested keys are reached from the environment with a double underscore:
//! `ROOTCAUSE_HTTP__BODY_LIMIT_BYTES=1048576` sets `[http] body_limit_bytes`. Unknown keys in the
//! file are errors, so a typo cannot silently fall back to a default.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod auth;
pub mod outgoing;
mod prometheus;
mod risk;
mod secrets;
mod store;

pub use auth::{AuthConfig, AuthMode};
pub use prometheus::{MAX_POINTS, PrometheusConfig, query_range_endpoint};
pub use risk::{CalendarConfig, LocalTime, RiskConfig, WindowConfig, WindowKind};
pub use secrets::redact_url;
pub use store::{SqliteDurability, StoreOptions};

/// Prefix of every environment variable the service reads.
pub const ENV_PREFIX: &str = "ROOTCAUSE_";

/// Top-level configuration keys; environment variables naming anything else are ignored (CI and
/// tests set other `ROOTCAUSE_*` variables for themselves).
const TOP_LEVEL_KEYS: [&str; 16] = [
    "listen",
    "data_dir",
    "database_url",
    "topology",
    "log_format",
    "log_filter",
    "http",
    "store",
    "ingest",
    "correlation",
    "ranking",
    "prometheus",
    "actions",
    "auth",
    "risk",
    "calendar",
];

/// Everything `serve` can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Directory for the SQLite database; created if missing.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`. Unset: SQLite file
    /// `rootcause.db` in `data_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<DatabaseUrl>,
    /// Topology to load at start-up: a YAML/JSON file, or the name of a bundled example
    /// (`online-boutique`, `sock-shop`, `train-ticket`, or `builtin:NAME`). Unset: the newest
    /// stored version, or the bundled `online-boutique` on an empty store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology: Option<String>,
    /// Log output: `pretty` (one line per event, coloured on a terminal) or `json`.
    pub log_format: LogFormat,
    /// Which events to log, in `tracing-subscriber` EnvFilter syntax.
    pub log_filter: String,
    /// HTTP server limits.
    pub http: HttpConfig,
    /// Database connections.
    pub store: StoreOptions,
    /// Alert intake: limits, mapping to services, batching.
    pub ingest: IngestConfig,
    /// How alerts are correlated into incidents.
    pub correlation: rootcause_correlation::Settings,
    /// How incidents are ranked: the model, how far candidates reach, how often to re-rank.
    pub ranking: RankingConfig,
    /// Metric windows pulled from a Prometheus server around each incident (off without a URL).
    pub prometheus: PrometheusConfig,
    /// Emergency actions: the runbook catalogue, suggestions, outgoing webhooks.
    pub actions: ActionsConfig,
    /// Who may call the API: bearer tokens with scopes.
    pub auth: AuthConfig,
    /// Risks from fault history: windows, thresholds, recomputation.
    pub risk: RiskConfig,
    /// The business calendar: critical windows that raise incidents' priority.
    pub calendar: CalendarConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("rootcause-data"),
            database_url: None,
            topology: None,
            log_format: LogFormat::Pretty,
            log_filter: "info".to_owned(),
            http: HttpConfig::default(),
            store: StoreOptions::default(),
            ingest: IngestConfig::default(),
            correlation: rootcause_correlation::Settings::default(),
            ranking: RankingConfig::default(),
            prometheus: PrometheusConfig::default(),
            actions: ActionsConfig::default(),
            auth: AuthConfig::default(),
            risk: RiskConfig::default(),
            calendar: CalendarConfig::default(),
        }
    }
}

impl Config {
    /// Whether requests need a bearer token: always off a loopback address, and on loopback
    /// when `auth.mode = "always"`.
    pub fn auth_required(&self) -> bool {
        self.auth.mode == AuthMode::Always || !self.listen.ip().is_loopback()
    }

    /// Loads the configuration: defaults, then `file` (which must exist when given), then the
    /// environment, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError(format!(
                    "configuration file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let env = Env::prefixed(ENV_PREFIX).split("__").filter(|key| {
            let top = key.as_str().split('.').next().unwrap_or_default();
            TOP_LEVEL_KEYS.iter().any(|k| k.eq_ignore_ascii_case(top))
        });
        let config: Config = figment
            .merge(env)
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work, so that `serve` refuses them at start-up rather
    /// than failing at the first incident: every problem, joined by `; `.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if let Err(why) = self.ranking.validate() {
            problems.push(why);
        }
        if let Err(why) = self.prometheus.validate() {
            problems.push(why);
        }
        if let Err(why) = self.actions.validate() {
            problems.push(why);
        }
        if let Err(why) = self.auth.validate() {
            problems.push(why);
        }
        if let Err(why) = self.risk.validate() {
            problems.push(why);
        }
        every_problem(problems).map_err(ConfigError)
    }

    /// The database URL to connect to.
    pub fn database_url(&self) -> DatabaseUrl {
        self.database_url.clone().unwrap_or_else(|| {
            DatabaseUrl(format!(
                "sqlite://{}",
                self.data_dir.join("rootcause.db").display()
            ))
        })
    }

    /// The file with the key that seals stored secrets (`actions.secret_key_file`, else
    /// `secret.key` in `data_dir`).
    pub fn secret_key_path(&self) -> PathBuf {
        self.actions
            .secret_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"))
    }

    /// The configuration as TOML, with any database password hidden.
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = Some(DatabaseUrl(self.database_url().to_string()));
        shown.prometheus.url = shown.prometheus.url.as_deref().map(redact_url);
        toml::to_string_pretty(&shown).expect("the configuration always serializes")
    }
}

/// Values given as command-line flags; `None` leaves the key to the other sources.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    /// `--listen`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--data-dir`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--database-url`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `--topology`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology: Option<String>,
    /// `--log-format`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// HTTP server limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body accepted; larger ones get 413.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered 503; also bounds the drain at shutdown.
    pub request_timeout_secs: u64,
    /// Largest list of alerts one response carries, in bytes of JSON (about): a page of
    /// `GET /api/v1/alerts` or an incident's alerts stop there, and say so.
    pub max_response_bytes: usize,
    /// Connections open at once; more are closed as they arrive (keep it below the process's
    /// file descriptor limit).
    pub max_connections: usize,
    /// Seconds a connection has to send a request's headers, and at most idle between
    /// requests; a slower one is closed.
    pub header_read_timeout_secs: u64,
    /// Milliseconds a closing connection keeps reading (and dropping) what its client still
    /// sends, so that an answer given before the whole body arrived (413) is not lost to the
    /// reset a close with unread bytes causes.
    pub linger_ms: u64,
    /// Host names requests may address (the `Host` header, without port): loopback names by
    /// default, plus the `listen` address itself; `"*"` allows any. Refuses DNS rebinding: a
    /// page whose domain re-points to 127.0.0.1 still says its own name.
    pub allowed_hosts: Vec<String>,
    /// Origins (`https://console.example.com`) whose pages may call the API besides the
    /// service's own.
    pub allowed_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit_bytes: 16 * 1024 * 1024,
            request_timeout_secs: 30,
            max_response_bytes: 8 * 1024 * 1024,
            max_connections: 4096,
            header_read_timeout_secs: 30,
            linger_ms: 2000,
            allowed_hosts: ["localhost", "127.0.0.1", "[::1]"]
                .map(str::to_owned)
                .to_vec(),
            allowed_origins: Vec::new(),
        }
    }
}

/// Alert intake.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Most alerts one request may carry; more is answered 413 and nothing is stored.
    pub max_alerts_per_request: usize,
    /// Label keys that name an alert's service, in priority order (see the mapping rules).
    pub service_label_keys: Vec<String>,
    /// For `POST /api/v2/alerts` alerts without `endsAt`: seconds until they end unless sent
    /// again, as Alertmanager's `resolve_timeout` does.
    pub resolve_timeout_secs: u64,
    /// Most alerts committed in one transaction (group commit).
    pub max_batch_alerts: usize,
    /// Requests waiting for the writer before new ones wait for room.
    pub queue_capacity: usize,
    /// How long a request waits for room in a full queue before it is answered 503 with
    /// `Retry-After`.
    pub queue_wait_ms: u64,
    /// Most change events one `POST /api/v1/changes` may carry; more is answered 413.
    pub max_changes_per_request: usize,
    /// Most labels one alert may carry (Prometheus's `label_limit`); more refuses the request.
    pub label_limit: usize,
    /// Longest label or annotation name, in bytes (Prometheus's `label_name_length_limit`).
    pub label_name_length_limit: usize,
    /// Longest label value, in bytes (Prometheus's `label_value_length_limit`).
    pub label_value_length_limit: usize,
    /// Longest annotation value, in bytes: descriptions and runbook links are longer than
    /// label values.
    pub annotation_value_length_limit: usize,
    /// Largest alert, in bytes of its label and annotation names and values and its
    /// `generatorURL`.
    pub max_alert_bytes: usize,
    /// How far in the future an alert's `startsAt` may lie (clock skew between senders);
    /// later starts are refused.
    pub max_future_start_secs: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_alerts_per_request: 10_000,
            service_label_keys: rootcause_correlation::mapping::DEFAULT_LABEL_KEYS
                .map(str::to_owned)
                .to_vec(),
            resolve_timeout_secs: 300,
            max_batch_alerts: 20_000,
            queue_capacity: 1024,
            queue_wait_ms: 1000,
            max_changes_per_request: 1000,
            label_limit: 64,
            label_name_length_limit: 256,
            label_value_length_limit: 2048,
            annotation_value_length_limit: 16 * 1024,
            max_alert_bytes: 64 * 1024,
            max_future_start_secs: 3600,
        }
    }
}

/// Most hops `ranking.hops` may reach: beyond a few hops almost every service of a large estate
/// becomes a candidate, which only slows ranking and dilutes it.
pub const MAX_RANKING_HOPS: usize = 10;

/// How incidents are ranked (`[ranking]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RankingConfig {
    /// The ranker: `default`, `cold-start`, or the path of a model file written by
    /// `rootcause train`.
    pub model: String,
    /// Candidates are an incident's alerting services plus their callees up to this many hops:
    /// the silent database behind alerting callers.
    pub hops: usize,
    /// Least time between two rankings of one incident. 0 ranks every change at once (changes
    /// that arrive while a ranking runs are still coalesced into the next one).
    pub min_interval_ms: u64,
    /// Kinds of alerts (service, alert name, signal, severity) of one incident held in memory
    /// for ranking, each with its number of occurrences: the first kinds received (occurrences
    /// of later kinds are stored, counted and listed, but not held), the same ones a restart
    /// loads. An alert storm of one kind costs one entry; this caps what a flood of distinct
    /// alert names can make a ranking hold and copy.
    pub max_alert_kinds_per_incident: usize,
    /// How long a resolved incident that nothing changed and nobody asked about stays in
    /// memory (its alert kinds, series and hypotheses); afterwards it is loaded from the store
    /// when someone asks or it reopens.
    pub hold_resolved_secs: u64,
    /// Hypotheses a ranking lists, most likely first (its `candidates` says how many services
    /// were ranked). A storm over a large estate has hundreds of candidates: listing every one
    /// with its evidence would make each live update hundreds of kilobytes that nobody reads
    /// past the first few, and slow every ranking down.
    pub hypotheses_listed: usize,
}

impl Default for RankingConfig {
    fn default() -> Self {
        RankingConfig {
            model: "default".to_owned(),
            hops: 2,
            min_interval_ms: 0,
            max_alert_kinds_per_incident: 10_000,
            hold_resolved_secs: 1800,
            hypotheses_listed: 50,
        }
    }
}

/// `Ok` without problems; otherwise every problem, joined by `; `.
fn every_problem(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

impl RankingConfig {
    /// Checks the values that parse but cannot work. Whether a model file loads is checked at
    /// start-up, where the ranker is loaded.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.model.trim().is_empty() {
            problems.push(
                "ranking.model must not be empty: use \"default\", \"cold-start\" or the path \
                 of a model file"
                    .to_owned(),
            );
        }
        if self.hops > MAX_RANKING_HOPS {
            problems.push(format!(
                "ranking.hops must be at most {MAX_RANKING_HOPS}, got {}",
                self.hops
            ));
        }
        if self.hypotheses_listed == 0 {
            problems.push("ranking.hypotheses_listed must be at least 1".to_owned());
        }
        every_problem(problems)
    }
}

/// Emergency actions (`[actions]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionsConfig {
    /// A runbook catalogue (YAML) to use from start-up on; stored as a new catalogue version
    /// when it differs from the stored one. Unset: the stored catalogue, or the bundled
    /// defaults on an empty store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runbooks: Option<PathBuf>,
    /// Hosts that automation and notification webhooks may call: exact names, or
    /// `*.example.com` for any subdomain of it. Empty: no outgoing call is allowed, so a
    /// catalogue or notification target naming any host is refused.
    pub allowed_hosts: Vec<String>,
    /// Most actions suggested per hypothesis.
    pub suggestions: usize,
    /// Hypotheses that get suggestions, most likely first (as many as get propagation paths);
    /// those below get none. Suggestions with their reasons for every one of a thousand
    /// candidates would multiply the size and latency of every ranking.
    pub hypotheses: usize,
    /// Similar past incidents whose resolutions vote on the suggestions.
    pub similar: usize,
    /// Where the ranked hypotheses are sent when an incident opens or its top hypothesis
    /// changes (chat, ticketing, paging).
    pub notify: Vec<NotifyTarget>,
    /// An approved automation not carried out within this many seconds of its approval (the
    /// service was down meanwhile) is failed as expired rather than run late: a failover
    /// approved for yesterday's incident must not fire today.
    pub run_expiry_secs: u64,
    /// The key that seals automation header values (tokens) in the database: 64 hex digits
    /// (`openssl rand -hex 32`). Unset: `secret.key` in `data_dir`, created (mode 0600) the first
    /// time a secret is stored. Replicas sharing a database need the same key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key_file: Option<PathBuf>,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        ActionsConfig {
            runbooks: None,
            allowed_hosts: Vec::new(),
            suggestions: 3,
            hypotheses: rootcause_models::explain::TRACED,
            similar: 10,
            notify: Vec::new(),
            run_expiry_secs: 3600,
            secret_key_file: None,
        }
    }
}

/// One outgoing notification webhook (`[[actions.notify]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyTarget {
    /// `http://` URL the JSON notification is POSTed to; its host must be allowed.
    pub url: String,
    /// Longest one attempt may take.
    #[serde(default = "NotifyTarget::default_timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts after the first when the target fails or answers 5xx.
    #[serde(default = "NotifyTarget::default_retries")]
    pub retries: u32,
    /// Hypotheses per notification, most likely first.
    #[serde(default = "NotifyTarget::default_hypotheses")]
    pub hypotheses: usize,
}

impl NotifyTarget {
    fn default_timeout_ms() -> u64 {
        5000
    }
    fn default_retries() -> u32 {
        2
    }
    fn default_hypotheses() -> usize {
        5
    }
}

/// Most suggestions per hypothesis and similar incidents a configuration may ask for.
const MAX_SUGGESTIONS: usize = 20;
const MAX_SIMILAR: usize = 100;

impl ActionsConfig {
    /// Checks the values that parse but cannot work: every notification target must be an
    /// allowed `http://` URL.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !(1..=MAX_SUGGESTIONS).contains(&self.suggestions) {
            problems.push(format!(
                "actions.suggestions must be 1..={MAX_SUGGESTIONS}, got {}",
                self.suggestions
            ));
        }
        if self.run_expiry_secs < 60 {
            problems.push(format!(
                "actions.run_expiry_secs must be at least 60, got {}",
                self.run_expiry_secs
            ));
        }
        if self.hypotheses == 0 {
            problems.push("actions.hypotheses must be at least 1".to_owned());
        }
        if self.similar > MAX_SIMILAR {
            problems.push(format!(
                "actions.similar must be at most {MAX_SIMILAR}, got {}",
                self.similar
            ));
        }
        for (i, host) in self.allowed_hosts.iter().enumerate() {
            if let Err(why) = outgoing::check_host_pattern(host) {
                problems.push(format!("actions.allowed_hosts[{i}]: {why}"));
            }
        }
        for (i, target) in self.notify.iter().enumerate() {
            if let Err(why) = outgoing::check_outgoing_url(&target.url, &self.allowed_hosts) {
                problems.push(format!("actions.notify[{i}].url: {why}"));
            }
            if !(100..=60_000).contains(&target.timeout_ms) {
                problems.push(format!(
                    "actions.notify[{i}].timeout_ms must be 100..=60000, got {}",
                    target.timeout_ms
                ));
            }
            if target.retries > 10 {
                problems.push(format!(
                    "actions.notify[{i}].retries must be at most 10, got {}",
                    target.retries
                ));
            }
        }
        every_problem(problems)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, one line per event.
    Pretty,
    /// One JSON object per event.
    Json,
}

/// A database URL; its password never appears in `Debug` or `Display` output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL itself, password included: only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// The configuration could not be loaded; the message names the key and where it came from.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

#[cfg(test)]
// figment's `Jail` closures must return `figment::Result`, whose error is large.
#[allow(clippy::result_large_err)]
mod tests {
    use figment::Jail;

    use super::*;

    fn load_in(
        jail: &Jail,
        file: Option<&str>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let path = file.map(|_| jail.directory().join("rootcause.toml"));
        if let (Some(text), Some(path)) = (file, &path) {
            std::fs::write(path, text).unwrap();
        }
        Config::load(path.as_deref(), overrides)
    }

    #[test]
    fn defaults_need_nothing() {
        Jail::expect_with(|jail| {
            let config = load_in(jail, None, &Overrides::default()).unwrap();
            assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
            assert_eq!(config.data_dir, PathBuf::from("rootcause-data"));
            assert_eq!(
                config.database_url().expose(),
                "sqlite://rootcause-data/rootcause.db"
            );
            assert_eq!(config.topology, None);
            assert_eq!(config.log_format, LogFormat::Pretty);
            assert_eq!(config.http.body_limit_bytes, 16 * 1024 * 1024);
            Ok(())
        });
    }

    #[test]
    fn flags_beat_environment_beats_file_beats_defaults() {
        Jail::expect_with(|jail| {
            let file = "listen = \"127.0.0.1:1111\"\ndata_dir = \"/from/file\"\ntopology = \"sock-shop\"\nlog_filter = \"debug\"\n[http]\nbody_limit_bytes = 1000\n";
            jail.set_env("ROOTCAUSE_LISTEN", "127.0.0.1:2222");
            jail.set_env("ROOTCAUSE_DATA_DIR", "/from/env");
            jail.set_env("ROOTCAUSE_HTTP__REQUEST_TIMEOUT_SECS", "7");
            // Variables that are not configuration keys are left alone.
            jail.set_env("ROOTCAUSE_REQUIRE_E2E", "1");
            jail.set_env("ROOTCAUSE_CONFIG", "/elsewhere.toml");
            let overrides = Overrides {
                listen: Some("127.0.0.1:3333".parse().unwrap()),
                ..Overrides::default()
            };
            let config = load_in(jail, Some(file), &overrides).unwrap();
            assert_eq!(config.listen, "127.0.0.1:3333".parse().unwrap()); // flag
            assert_eq!(config.data_dir, PathBuf::from("/from/env")); // env over file
            assert_eq!(config.topology.as_deref(), Some("sock-shop")); // file
            assert_eq!(config.log_filter, "debug"); // file
            assert_eq!(config.http.body_limit_bytes, 1000); // file, nested
            assert_eq!(config.http.request_timeout_secs, 7); // env, nested
            assert_eq!(config.store.max_connections, 8); // default inside a section
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_that_say_where() {
        Jail::expect_with(|jail| {
            let error = load_in(jail, Some("lisen = \"x\"\n"), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(error.contains("lisen"), "{error}");

            let error = load_in(
                jail,
                Some("[http]\nbody_limit = 5\n"),
                &Overrides::default(),
            )
            .unwrap_err()
            .to_string();
            assert!(error.contains("body_limit"), "{error}");

            jail.set_env("ROOTCAUSE_LISTEN", "not an address");
            let error = load_in(jail, None, &Overrides::default())
                .unwrap_err()
                .to_string()
                .to_lowercase();
            assert!(error.contains("\"listen\""), "{error}");
            assert!(error.contains("rootcause_"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn correlation_and_ingest_thresholds_are_configuration() {
        Jail::expect_with(|jail| {
            let file = "[correlation]\nmax_hops = 3\n[ingest]\nservice_label_keys = [\"app\"]\n";
            jail.set_env("ROOTCAUSE_CORRELATION__RESOLVE_AFTER_SECS", "2");
            let config = load_in(jail, Some(file), &Overrides::default()).unwrap();
            assert_eq!(config.correlation.max_hops, 3);
            assert_eq!(config.correlation.resolve_after_secs, 2);
            assert_eq!(config.correlation.window_secs, 600);
            assert_eq!(config.ingest.service_label_keys, ["app"]);
            assert_eq!(config.ingest.max_alerts_per_request, 10_000);
            let error = load_in(
                jail,
                Some("[correlation]\nmax_hop = 3\n"),
                &Overrides::default(),
            )
            .unwrap_err()
            .to_string();
            assert!(error.contains("max_hop"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn ranking_and_prometheus_are_configuration_and_checked_at_load() {
        Jail::expect_with(|jail| {
            let config = load_in(jail, None, &Overrides::default()).unwrap();
            assert_eq!(config.ranking, RankingConfig::default());
            assert_eq!(config.ranking.model, "default");
            assert_eq!(config.ranking.hops, 2);
            assert_eq!(config.ranking.min_interval_ms, 0);
            assert_eq!(config.prometheus.url, None);

            let file = "[ranking]\nmodel = \"cold-start\"\nhops = 3\n[prometheus]\nurl = \"http://u:secret@prom:9090\"\n";
            jail.set_env("ROOTCAUSE_RANKING__MIN_INTERVAL_MS", "250");
            let config = load_in(jail, Some(file), &Overrides::default()).unwrap();
            assert_eq!(config.ranking.model, "cold-start");
            assert_eq!(config.ranking.hops, 3);
            assert_eq!(config.ranking.min_interval_ms, 250);
            assert_eq!(
                config.prometheus.url.as_deref(),
                Some("http://u:secret@prom:9090")
            );
            assert!(!config.to_toml().contains("secret"), "{}", config.to_toml());

            for (file, wanted) in [
                ("[ranking]\nhops = 11\n", "ranking.hops must be at most 10"),
                (
                    "[ranking]\nmodel = \"\"\n",
                    "ranking.model must not be empty",
                ),
                ("[ranking]\nhop = 1\n", "hop"),
                ("[prometheus]\nstep_s = 0\n", "prometheus.step_s"),
            ] {
                let error = load_in(jail, Some(file), &Overrides::default())
                    .unwrap_err()
                    .to_string();
                assert!(error.contains(wanted), "{file}: {error}");
            }
            Ok(())
        });
    }

    #[test]
    fn a_named_config_file_must_exist() {
        let error = Config::load(
            Some(Path::new("/no/such/rootcause.toml")),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("/no/such/rootcause.toml"), "{error}");
    }

    #[test]
    fn passwords_stay_hidden() {
        Jail::expect_with(|jail| {
            jail.set_env("ROOTCAUSE_DATABASE_URL", "postgres://app:hunter2@db/rc");
            let config = load_in(jail, None, &Overrides::default()).unwrap();
            assert_eq!(
                config.database_url().expose(),
                "postgres://app:hunter2@db/rc"
            );
            assert!(!format!("{config:?}").contains("hunter2"));
            assert!(!config.to_toml().contains("hunter2"));
            assert!(config.to_toml().contains("postgres://app:***@db/rc"));
            Ok(())
        });
    }
}
