//! The runbook catalogue: the emergency actions a responder may take, when each applies, and
//! the webhook (if any) that carries one out once a person approves it.
//!
//! Catalogues are written by hand in YAML (JSON is YAML too), so every mistake is reported with
//! the path of the field it is in (`runbooks[2].risk`) and what would be allowed there.

use std::collections::{BTreeMap, HashMap};

use rootcause_topology::{Criticality, ServiceKind};
use serde::{Deserialize, Serialize};

use super::target::Target;
use crate::diagnosis::FaultType;

/// The catalogue shipped with rootcause, used until an operator installs their own.
pub const BUNDLED_RUNBOOKS: &str = include_str!("../../runbooks.yaml");

/// Alert signal kinds a runbook may name, as the correlation engine classifies alerts.
pub const SIGNALS: [&str; 10] = [
    "latency",
    "errors",
    "saturation",
    "traffic",
    "availability",
    "cpu",
    "memory",
    "disk",
    "network",
    "custom",
];

/// Longest runbook id: ids end up in URLs, audit rows and metric labels.
const MAX_ID_LEN: usize = 64;
/// Longest title: a title is one line in a suggestion list, not a description.
const MAX_TITLE_LEN: usize = 200;
/// Webhook timeouts allowed, in milliseconds: below 100 ms nothing real answers, and above a
/// minute a responder waiting for the outcome is better served by a retry.
const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=60_000;
/// Retries allowed: more would hammer a target that is down during an incident.
const MAX_RETRIES: u32 = 10;

/// Every runbook that can be suggested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// The runbooks, in the order they were written.
    pub runbooks: Vec<Runbook>,
}

/// One emergency action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    /// Stable identifier (`restart`): lower case letters, digits and `_`, starting with a
    /// letter, at most 64 characters, unique in the catalogue.
    pub id: String,
    /// What to do, in a few words.
    pub title: String,
    /// Why and when, for the responder.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// How much harm the action can do if the diagnosis is wrong.
    pub risk: Risk,
    /// When the action fits.
    #[serde(default)]
    pub applies: Applicability,
    /// What a responder does, in order.
    pub steps: Vec<String>,
    /// A webhook that carries the action out once approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automation: Option<Automation>,
}

/// How much harm an action can do if the diagnosis is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Reversible, no effect on users (adding replicas, freeing disk).
    Low,
    /// Brief user impact or some state lost (restarts, rollbacks).
    Medium,
    /// Moves traffic or data between sites, hard to undo (failovers).
    High,
}

impl Risk {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }

    /// How far an action of this risk is pushed down a suggestion list, in units of the
    /// risk weight: 0 for low, 1 for high, so a risky action needs clearly better evidence.
    pub fn penalty(self) -> f64 {
        match self {
            Risk::Low => 0.0,
            Risk::Medium => 0.5,
            Risk::High => 1.0,
        }
    }
}

/// When a runbook fits an incident.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applicability {
    /// Fault types it resolves; empty for any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fault_types: Vec<FaultType>,
    /// Alert signal kinds ([`SIGNALS`]) that point to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<String>,
    /// Services it may be applied to: a runbook is never suggested for any other.
    #[serde(default, skip_serializing_if = "ServiceSelector::is_any")]
    pub services: ServiceSelector,
    /// Suggested only when the service changed shortly before the incident (a rollback).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_recent_change: bool,
}

/// Which services a runbook may be applied to. Every condition given must hold; an empty
/// selector matches every service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSelector {
    /// Kinds of service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<ServiceKind>,
    /// Name patterns; `*` matches any run of characters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Labels the service must carry, with these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Criticalities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub criticality: Vec<Criticality>,
    /// Fewest services calling it (shedding load needs callers to shed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_callers: Option<usize>,
    /// Most services calling it (breaking many callers' circuits is an outage of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_callers: Option<usize>,
}

impl ServiceSelector {
    /// Whether the selector sets no condition.
    pub fn is_any(&self) -> bool {
        *self == ServiceSelector::default()
    }

    /// Whether `target` satisfies every condition. What is unknown about a target (no
    /// topology entry, no labels, no criticality) fails any condition that asks for it: an
    /// action for databases must not be suggested for something that may not be one.
    pub fn matches(&self, target: &Target) -> bool {
        let kind = self.kinds.is_empty() || target.kind.is_some_and(|k| self.kinds.contains(&k));
        let name = self.names.is_empty() || self.names.iter().any(|p| glob(p, target.service));
        let labels = self.labels.is_empty()
            || target.labels.is_some_and(|have| {
                self.labels
                    .iter()
                    .all(|(k, v)| have.get(k).is_some_and(|h| h == v))
            });
        let criticality = self.criticality.is_empty()
            || target
                .criticality
                .is_some_and(|c| self.criticality.contains(&c));
        let min = self.min_callers.is_none_or(|m| target.callers >= m);
        let max = self.max_callers.is_none_or(|m| target.callers <= m);
        kind && name && labels && criticality && min && max
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (none included).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and how much of the text it has swallowed so far: on a mismatch
    // the star takes one more character, which makes this linear-ish rather than exponential.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A webhook that carries a runbook out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Automation {
    /// Absolute `http://` URL, POSTed to (the service has no TLS client; `https://` passes
    /// this schema check and is refused by the service's allow-list check).
    pub url: String,
    /// Time allowed for one attempt, in milliseconds (100 to 60000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts after the first that fails (0 to 10).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Extra request headers (an API key, a tenant).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

fn default_timeout_ms() -> u64 {
    5000
}

fn default_retries() -> u32 {
    2
}

impl Automation {
    /// The URL's host, without port or brackets. [`Catalogue::validate`] requires it to be
    /// present and lower case, so allow-lists can compare it as it is; empty for a URL that
    /// does not validate.
    pub fn host(&self) -> &str {
        url_host(&self.url).map_or("", |(host, _)| host)
    }
}

/// The host and port of an absolute http(s) URL, if it has that shape.
fn url_host(url: &str) -> Option<(&str, Option<&str>)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return None;
    }
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        return Some((host, port));
    }
    match authority.split_once(':') {
        Some((host, port)) => Some((host, Some(port))),
        None => Some((authority, None)),
    }
}

/// A problem with a catalogue, at a path such as `runbooks[1].id`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CatalogueError {
    /// Where: `runbooks[0].automation.timeout_ms`, or `line 3 column 5` for a syntax error.
    pub path: String,
    /// What is wrong and what would be allowed.
    pub message: String,
    /// The text is not YAML (or JSON) at all, as opposed to a document of the wrong shape or
    /// one that breaks a rule.
    pub syntax: bool,
}

impl CatalogueError {
    /// A problem at `path` of a well-formed document.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> CatalogueError {
        CatalogueError {
            path: path.into(),
            message: message.into(),
            syntax: false,
        }
    }
}

impl Catalogue {
    /// Parses and validates a catalogue written in YAML (or JSON).
    pub fn parse(text: &str) -> Result<Catalogue, CatalogueError> {
        // An empty document is not a YAML error, and its serde error would not say what is
        // missing.
        if text.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#') || l == "---"
        }) {
            return Err(CatalogueError::new(
                "runbooks",
                "the catalogue is empty; write a `runbooks:` list with at least one runbook",
            ));
        }
        let deserializer = yaml_serde::Deserializer::from_str(text);
        let catalogue: Catalogue =
            serde_path_to_error::deserialize(deserializer).map_err(|error| CatalogueError {
                // Text that is valid YAML but the wrong shape is not a syntax error.
                syntax: yaml_serde::from_str::<yaml_serde::Value>(text).is_err(),
                ..parse_error(error)
            })?;
        // PostgreSQL's text cannot hold NUL: refuse it here rather than fail at the store.
        let value = serde_json::to_value(&catalogue).expect("a catalogue always serializes");
        if let Some(path) = rootcause_topology::nul_path(&value) {
            return Err(CatalogueError::new(path, "must not contain NUL characters"));
        }
        catalogue.validate()?;
        Ok(catalogue)
    }

    /// Checks what the types cannot: ids, titles, steps, signals, caller bounds, webhooks.
    pub fn validate(&self) -> Result<(), CatalogueError> {
        if self.runbooks.is_empty() {
            return Err(CatalogueError::new(
                "runbooks",
                "the catalogue has no runbooks; at least one is required",
            ));
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, runbook) in self.runbooks.iter().enumerate() {
            let at = format!("runbooks[{i}]");
            if let Some(first) = seen.insert(&runbook.id, i) {
                return Err(CatalogueError::new(
                    format!("{at}.id"),
                    format!(
                        "duplicate id `{}` (also runbooks[{first}].id); ids must be unique",
                        runbook.id
                    ),
                ));
            }
            runbook.validate(&at)?;
        }
        Ok(())
    }

    /// The catalogue shipped with rootcause ([`BUNDLED_RUNBOOKS`]).
    pub fn bundled() -> Catalogue {
        Catalogue::parse(BUNDLED_RUNBOOKS).expect("the bundled runbooks are valid (tested)")
    }

    /// The runbook with this id.
    pub fn get(&self, id: &str) -> Option<&Runbook> {
        self.runbooks.iter().find(|r| r.id == id)
    }

    /// The catalogue as YAML, which [`Catalogue::parse`] reads back unchanged.
    pub fn to_yaml(&self) -> String {
        yaml_serde::to_string(self).expect("a catalogue has only strings, numbers and maps")
    }
}

/// A serde error with its path, or the position of a syntax error when it has no path.
fn parse_error(error: serde_path_to_error::Error<yaml_serde::Error>) -> CatalogueError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    let mut message = inner.to_string();
    // The YAML library puts the path (or the part of it it knows) in front of its message;
    // the whole path is in `path` already.
    if let Some((head, rest)) = message.split_once(": ")
        && !head.contains(char::is_whitespace)
        && path.starts_with(head)
    {
        message = rest.to_owned();
    }
    let path = match (path.as_str(), inner.location()) {
        (".", Some(at)) => format!("line {} column {}", at.line(), at.column()),
        (".", None) => "(document)".to_owned(),
        _ => path,
    };
    CatalogueError::new(path, message)
}

impl Runbook {
    fn validate(&self, at: &str) -> Result<(), CatalogueError> {
        check_id(&self.id).map_err(|m| CatalogueError::new(format!("{at}.id"), m))?;
        let title = self.title.trim();
        if title.is_empty() {
            return Err(CatalogueError::new(
                format!("{at}.title"),
                "the title is empty; say what to do in a few words",
            ));
        }
        if self.title.chars().count() > MAX_TITLE_LEN {
            return Err(CatalogueError::new(
                format!("{at}.title"),
                format!(
                    "the title is longer than {MAX_TITLE_LEN} characters; put the detail in `description`"
                ),
            ));
        }
        if self.steps.is_empty() {
            return Err(CatalogueError::new(
                format!("{at}.steps"),
                "no steps; a runbook needs at least one step",
            ));
        }
        if let Some(j) = self.steps.iter().position(|s| s.trim().is_empty()) {
            return Err(CatalogueError::new(
                format!("{at}.steps[{j}]"),
                "the step is empty",
            ));
        }
        self.applies.validate(&format!("{at}.applies"))?;
        if let Some(automation) = &self.automation {
            automation.validate(&format!("{at}.automation"))?;
        }
        Ok(())
    }
}

fn check_id(id: &str) -> Result<(), String> {
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && id.len() <= MAX_ID_LEN {
        Ok(())
    } else {
        Err(format!(
            "invalid id `{id}`; use a lower case letter, then up to {} lower case letters, \
             digits or `_`",
            MAX_ID_LEN - 1
        ))
    }
}

impl Applicability {
    fn validate(&self, at: &str) -> Result<(), CatalogueError> {
        if let Some((j, signal)) = self
            .signals
            .iter()
            .enumerate()
            .find(|(_, s)| !SIGNALS.contains(&s.as_str()))
        {
            return Err(CatalogueError::new(
                format!("{at}.signals[{j}]"),
                format!(
                    "unknown signal `{signal}`; expected one of {}",
                    SIGNALS.join(", ")
                ),
            ));
        }
        self.services.validate(&format!("{at}.services"))
    }
}

impl ServiceSelector {
    fn validate(&self, at: &str) -> Result<(), CatalogueError> {
        if let Some(j) = self.names.iter().position(|n| n.trim().is_empty()) {
            return Err(CatalogueError::new(
                format!("{at}.names[{j}]"),
                "the name pattern is empty; use `*` to match any name",
            ));
        }
        if let Some(key) = self.labels.keys().find(|k| k.trim().is_empty()) {
            return Err(CatalogueError::new(
                format!("{at}.labels"),
                format!("empty label name (`{key}`)"),
            ));
        }
        if let (Some(min), Some(max)) = (self.min_callers, self.max_callers)
            && min > max
        {
            return Err(CatalogueError::new(
                format!("{at}.min_callers"),
                format!("min_callers ({min}) is above max_callers ({max}); no service would match"),
            ));
        }
        Ok(())
    }
}

impl Automation {
    fn validate(&self, at: &str) -> Result<(), CatalogueError> {
        check_url(&self.url).map_err(|m| CatalogueError::new(format!("{at}.url"), m))?;
        if !TIMEOUT_MS.contains(&self.timeout_ms) {
            return Err(CatalogueError::new(
                format!("{at}.timeout_ms"),
                format!(
                    "timeout_ms {} is out of range; allowed {} to {}",
                    self.timeout_ms,
                    TIMEOUT_MS.start(),
                    TIMEOUT_MS.end()
                ),
            ));
        }
        if self.retries > MAX_RETRIES {
            return Err(CatalogueError::new(
                format!("{at}.retries"),
                format!(
                    "retries {} is out of range; allowed 0 to {MAX_RETRIES}",
                    self.retries
                ),
            ));
        }
        for (name, value) in &self.headers {
            if RESERVED_HEADERS
                .iter()
                .any(|reserved| name.eq_ignore_ascii_case(reserved))
            {
                return Err(CatalogueError::new(
                    format!("{at}.headers.{name}"),
                    format!(
                        "`{name}` is set by the service or the HTTP client and cannot be \
                         overridden (reserved: {})",
                        RESERVED_HEADERS.join(", ")
                    ),
                ));
            }
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(CatalogueError::new(
                    format!("{at}.headers"),
                    format!(
                        "invalid header name `{name}`; use letters, digits and !#$%&'*+-.^_`|~"
                    ),
                ));
            }
            // CR or LF would let a value smuggle in headers of its own; other control or
            // non-ASCII bytes would only fail at the first call, and be retried as if the
            // network had failed.
            if !value
                .bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
            {
                return Err(CatalogueError::new(
                    format!("{at}.headers.{name}"),
                    "the header value must be one line of printable ASCII (no line break, \
                     control character or non-ASCII letter)",
                ));
            }
        }
        Ok(())
    }
}

/// Headers a runbook cannot set: framing and routing headers the HTTP client owns (a `Host`
/// override would reach other virtual hosts behind an allowed proxy), and the ones the service
/// sets on every call.
const RESERVED_HEADERS: [&str; 12] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "idempotency-key",
    "x-rootcause-attempt",
];

/// Whether a byte is a `tchar` of RFC 7230.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_url(url: &str) -> Result<(), String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "invalid URL `{url}`: it contains spaces or control characters"
        ));
    }
    if url.contains('@')
        && url
            .split(['/', '?', '#'])
            .nth(2)
            .is_some_and(|a| a.contains('@'))
    {
        return Err(format!(
            "invalid URL `{url}`: credentials in a URL end up in logs; send them in `headers`"
        ));
    }
    let Some((host, port)) = url_host(url) else {
        return Err(format!(
            "invalid URL `{url}`; expected an absolute http:// or https:// URL with a host"
        ));
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.:".contains(c));
    if !host_ok {
        return Err(format!(
            "invalid host `{host}` in `{url}`; write a host name or address in lower case"
        ));
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(format!(
            "invalid port `{port}` in `{url}`; expected 1 to 65535"
        ));
    }
    Ok(())
}
