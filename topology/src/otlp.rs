//! Calls learned from OpenTelemetry traces in OTLP/JSON: the body of an OTLP/HTTP
//! `ExportTraceServiceRequest` with `Content-Type: application/json`, as an OpenTelemetry
//! Collector's `otlphttp` exporter (`encoding: json`) sends it or its `file` exporter writes it.
//!
//! [`parse`] reads one request, [`parse_each`] a stream of them (JSON lines); a [`TraceReader`]
//! gathers their spans and [`TraceReader::learn`] turns them into [`ObservedCalls`]:
//!
//! - A span whose parent span (same trace, anywhere in what was read) belongs to another
//!   service is a call from the parent's service to the span's: its start is when, its duration
//!   the latency, and status code 2 (`ERROR`) a failed call. The service of a span is its
//!   resource's `service.name`.
//! - A `CLIENT` or `PRODUCER` span with no child in another service (the callee is not traced,
//!   or its spans were not read) is a call to the peer its attributes name, the first found of:
//!   `peer.service`; `db.system` (or `db.system.name`), followed by `:` and `db.name` (or
//!   `db.namespace`) when there is one (`redis`, `postgresql:orders`);
//!   `messaging.destination.name`, after `messaging.system` and `:` when there is one
//!   (`kafka:orders`); `server.address`;
//!   `net.peer.name`. This is how databases, queues and external services, which emit no spans,
//!   enter the graph. A peer named by a `db.*` attribute that emits no spans itself is a `cache`
//!   (Redis, Memcached, Valkey) or a `database`, one named by a `messaging.*` attribute a
//!   `queue`. Nested client spans of one service (an HTTP client inside an SDK call) are one
//!   call: the innermost that names a peer speaks for it. Set `peer.service` to tell two
//!   instances of one database apart, or give an existing service the learned name as an alias.
//! - A span whose parent is not among the spans read is an *orphan*: its service is still
//!   noted, and it is counted. Parent and child must be read together to make a call, so send
//!   whole traces (the Collector's `groupbytrace` or `tail_sampling` processor) or set
//!   `peer.service` on client spans.
//! - Spans of a resource without `service.name` are counted as *unnamed* and join no call.
//!
//! Following the OTLP/JSON rules, field names are lowerCamelCase, unknown fields are ignored,
//! `traceId`, `spanId` and `parentSpanId` are hex (not base64), the 64-bit `*TimeUnixNano` are
//! decimal strings or numbers, and enums (`kind`, `status.code`) are integers or their names
//! (`SPAN_KIND_CLIENT`). The older `instrumentationLibrarySpans` is read like `scopeSpans`.
//! Malformed input is an error naming its JSON path
//! (`resourceSpans[0].scopeSpans[0].spans[3].traceId`), never a panic.

use std::collections::HashMap;
use std::fmt;

use chrono::DateTime;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use thiserror::Error;

use crate::error::{Problem, TopologyError};
use crate::graph::Topology;
use crate::learned::{ObservedCall, ObservedCalls};
use crate::model::{Service, ServiceKind};

/// An OTLP `ExportTraceServiceRequest`, holding only what learning calls needs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportTraceServiceRequest {
    #[serde(default)]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans {
    #[serde(default)]
    resource: Resource,
    #[serde(default)]
    scope_spans: Vec<ScopeSpans>,
    /// The name of `scopeSpans` before OTLP 0.15; read so that old exporters' files still work.
    #[serde(default)]
    instrumentation_library_spans: Vec<ScopeSpans>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Resource {
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ScopeSpans {
    #[serde(default)]
    spans: Vec<Span>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Span {
    trace_id: TraceId,
    span_id: SpanId,
    #[serde(default)]
    parent_span_id: ParentSpanId,
    #[serde(default)]
    kind: SpanKind,
    // Proto3 JSON leaves out zero values, so a missing time is 0.
    #[serde(default)]
    start_time_unix_nano: Nanos,
    #[serde(default)]
    end_time_unix_nano: Nanos,
    #[serde(default)]
    attributes: Vec<KeyValue>,
    #[serde(default)]
    status: Status,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Status {
    #[serde(default)]
    code: StatusCode,
}

#[derive(Debug, Clone, Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: AnyValue,
}

/// An attribute value: only strings name services; other types are skipped unread.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyValue {
    string_value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TraceId(u128);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SpanId(u64);

/// A parent span id; empty (or all zeros) for a root span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ParentSpanId(Option<u64>);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Nanos(u64);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

const SPAN_KINDS: [&str; 6] = [
    "unspecified",
    "internal",
    "server",
    "client",
    "producer",
    "consumer",
];
const STATUS_CODES: [&str; 3] = ["unset", "ok", "error"];

/// Whether the status code is `ERROR` (2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct StatusCode {
    error: bool,
}

/// At most this much of a bad value is quoted in an error.
const QUOTED: usize = 40;

fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED) {
        Some((end, _)) => format!("{:?}...", &text[..end]),
        None => format!("{text:?}"),
    }
}

/// Reads a hex id of `digits` digits; `allow_empty` for a parent id, where empty means none.
struct HexVisitor {
    what: &'static str,
    digits: usize,
    allow_empty: bool,
}

impl Visitor<'_> for HexVisitor {
    type Value = Option<u128>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} of {} hex digits", self.what, self.digits)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        if text.is_empty() && self.allow_empty {
            return Ok(None);
        }
        if text.len() != self.digits || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(E::custom(format!(
                "{} must be {} hex digits (OTLP/JSON encodes ids in hex, not base64), got {}",
                self.what,
                self.digits,
                quoted(text)
            )));
        }
        u128::from_str_radix(text, 16)
            .map(Some)
            .map_err(|e| E::custom(format!("{}: {e}", self.what)))
    }
}

impl HexVisitor {
    /// The id `deserializer` holds; `None` only for an empty one where `allow_empty`.
    fn read<'de, D: Deserializer<'de>>(
        deserializer: D,
        what: &'static str,
        digits: usize,
        allow_empty: bool,
    ) -> Result<Option<u128>, D::Error> {
        deserializer.deserialize_str(HexVisitor {
            what,
            digits,
            allow_empty,
        })
    }
}

impl<'de> Deserialize<'de> for TraceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = HexVisitor::read(deserializer, "trace id", 32, false)?;
        Ok(TraceId(id.unwrap_or_default()))
    }
}

impl<'de> Deserialize<'de> for SpanId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = HexVisitor::read(deserializer, "span id", 16, false)?;
        // 16 hex digits always fit.
        Ok(SpanId(id.unwrap_or_default() as u64))
    }
}

impl<'de> Deserialize<'de> for ParentSpanId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = HexVisitor::read(deserializer, "parent span id", 16, true)?;
        Ok(ParentSpanId(id.map(|id| id as u64).filter(|&id| id != 0)))
    }
}

struct NanosVisitor;

impl NanosVisitor {
    fn checked<E: de::Error>(nanos: u64) -> Result<Nanos, E> {
        // chrono counts nanoseconds in an i64: up to the year 2262.
        if i64::try_from(nanos).is_err() {
            return Err(E::custom(format!(
                "{nanos} nanoseconds since 1970 is after the year 2262"
            )));
        }
        Ok(Nanos(nanos))
    }
}

impl Visitor<'_> for NanosVisitor {
    type Value = Nanos;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nanoseconds since 1970, as a decimal string or an integer")
    }

    fn visit_u64<E: de::Error>(self, nanos: u64) -> Result<Nanos, E> {
        NanosVisitor::checked(nanos)
    }

    fn visit_i64<E: de::Error>(self, nanos: i64) -> Result<Nanos, E> {
        u64::try_from(nanos)
            .map_err(|_| E::custom(format!("a time must not be negative, got {nanos}")))
            .and_then(NanosVisitor::checked)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Nanos, E> {
        match text.parse::<u64>() {
            Ok(nanos) if text.bytes().all(|b| b.is_ascii_digit()) => NanosVisitor::checked(nanos),
            _ => Err(E::custom(format!(
                "a time must be decimal nanoseconds since 1970, got {}",
                quoted(text)
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Nanos {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NanosVisitor)
    }
}

/// Reads a protobuf enum given as its number or its name (`SPAN_KIND_CLIENT`, or `CLIENT`, in
/// any case): the index into `names`.
struct EnumVisitor {
    what: &'static str,
    prefix: &'static str,
    names: &'static [&'static str],
}

impl EnumVisitor {
    /// The index into `names` of the enum value `deserializer` holds.
    fn read<'de, D: Deserializer<'de>>(
        deserializer: D,
        what: &'static str,
        prefix: &'static str,
        names: &'static [&'static str],
    ) -> Result<usize, D::Error> {
        deserializer.deserialize_any(EnumVisitor {
            what,
            prefix,
            names,
        })
    }

    fn unknown<E: de::Error>(&self, value: impl fmt::Display) -> E {
        E::custom(format!(
            "unknown {} {value}: expected 0 to {} or one of {}",
            self.what,
            self.names.len() - 1,
            self.names
                .iter()
                .map(|name| format!("{}{}", self.prefix, name.to_ascii_uppercase()))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

impl Visitor<'_> for EnumVisitor {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} as a number or a name", self.what)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<usize, E> {
        usize::try_from(value)
            .ok()
            .filter(|&i| i < self.names.len())
            .ok_or_else(|| self.unknown(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<usize, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(self.unknown(value)),
        }
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<usize, E> {
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix(self.prefix).unwrap_or(&upper);
        self.names
            .iter()
            .position(|known| known.eq_ignore_ascii_case(name))
            .ok_or_else(|| self.unknown(quoted(text)))
    }
}

impl<'de> Deserialize<'de> for SpanKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let index = EnumVisitor::read(deserializer, "span kind", "SPAN_KIND_", &SPAN_KINDS)?;
        Ok(match index {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        })
    }
}

impl<'de> Deserialize<'de> for StatusCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let index = EnumVisitor::read(deserializer, "status code", "STATUS_CODE_", &STATUS_CODES)?;
        Ok(StatusCode { error: index == 2 })
    }
}

/// OTLP/JSON that could not be read, or that names a service the topology would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid OTLP/JSON: {problem}")]
pub struct TraceError {
    /// What is wrong and where (`resourceSpans[0].scopeSpans[0].spans[3].traceId`).
    pub problem: Problem,
    /// True when the text is not JSON at all (as opposed to JSON of the wrong shape).
    pub syntax: bool,
}

/// Reads one OTLP/JSON `ExportTraceServiceRequest`.
pub fn parse(text: &[u8]) -> Result<ExportTraceServiceRequest, TraceError> {
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let request = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." { String::new() } else { path };
        json_error(path, error.into_inner())
    })?;
    deserializer.end().map_err(|inner| TraceError {
        problem: Problem {
            message: "trailing characters after the request".to_owned(),
            ..json_problem(String::new(), &inner)
        },
        syntax: true,
    })?;
    Ok(request)
}

/// Reads requests one after another, as a Collector's `file` exporter writes them (one per
/// line), or a single one. Line numbers in errors count from the start of `text`; the first
/// error ends the sequence.
pub fn parse_each(
    text: &[u8],
) -> impl Iterator<Item = Result<ExportTraceServiceRequest, TraceError>> + '_ {
    // Each value is found first, so that a broken one does not hide where the next begins.
    let mut values = serde_json::Deserializer::from_slice(text).into_iter::<IgnoredAny>();
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let start = values.byte_offset();
        let result = match values.next()? {
            Ok(IgnoredAny) => parse(&text[start..values.byte_offset()]).map_err(|mut error| {
                shift(&mut error.problem, &text[..start]);
                error
            }),
            Err(error) => Err(json_error(String::new(), error)),
        };
        failed = result.is_err();
        Some(result)
    })
}

/// Moves a problem's position, counted within a value, to count from the start of the text
/// that `before` begins.
fn shift(problem: &mut Problem, before: &[u8]) {
    let lines = before.iter().filter(|&&b| b == b'\n').count();
    if let Some(line) = &mut problem.line {
        if *line == 1
            && let Some(column) = &mut problem.column
        {
            let line_start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            *column += before.len() - line_start;
        }
        *line += lines;
    }
}

fn json_problem(path: String, error: &serde_json::Error) -> Problem {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    Problem {
        path,
        message: message
            .strip_suffix(&position)
            .unwrap_or(&message)
            .to_owned(),
        line: Some(error.line()),
        column: Some(error.column()),
    }
}

fn json_error(path: String, error: serde_json::Error) -> TraceError {
    TraceError {
        problem: json_problem(path, &error),
        syntax: !matches!(error.classify(), serde_json::error::Category::Data),
    }
}

/// What reading spans found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceSummary {
    /// Spans read.
    pub spans: u64,
    /// Calls between different services found among them.
    pub calls: u64,
    /// Spans whose parent span was not among those read.
    pub orphans: u64,
    /// Spans of resources without `service.name`.
    pub unnamed: u64,
}

/// A span reduced to what matching needs; names are indices into [`TraceReader::names`].
#[derive(Debug, Clone)]
struct SpanRecord {
    trace: u128,
    id: u64,
    parent: Option<u64>,
    service: Option<u32>,
    kind: SpanKind,
    peer: Option<u32>,
    start: u64,
    end: u64,
    error: bool,
}

impl SpanRecord {
    fn calls_out(&self) -> bool {
        matches!(self.kind, SpanKind::Client | SpanKind::Producer)
    }

    fn call(&self) -> ObservedCall {
        ObservedCall {
            at: DateTime::from_timestamp_nanos(self.start as i64),
            // A span that ends before it starts has no latency; `ObservedCalls` skips it.
            latency_ms: (i128::from(self.end) - i128::from(self.start)) as f64 / 1e6,
            error: self.error,
        }
    }
}

/// Spans gathered from one or more requests, matched parent to child by
/// [`learn`](TraceReader::learn): a trace split over several requests (a Collector batches by
/// time, not by trace) still gives its calls when all of them are read into one reader.
#[derive(Debug, Clone, Default)]
pub struct TraceReader {
    names: Vec<String>,
    ids: HashMap<String, u32>,
    /// Kinds guessed for peers from their callers' attributes, by name index.
    peer_kinds: HashMap<u32, ServiceKind>,
    spans: Vec<SpanRecord>,
}

impl TraceReader {
    /// Nothing read yet.
    pub fn new() -> Self {
        TraceReader::default()
    }

    /// Number of spans read so far.
    pub fn span_count(&self) -> usize {
        self.spans.len()
    }

    /// Adds the spans of a request. A service or peer name the topology would refuse (empty,
    /// surrounding whitespace, control characters, too long) is an error with its path, and then
    /// nothing of the request is added.
    pub fn add(&mut self, request: &ExportTraceServiceRequest) -> Result<(), TraceError> {
        let mut spans = Vec::new();
        let mut peer_kinds = Vec::new();
        for (r, resource_spans) in request.resource_spans.iter().enumerate() {
            let resource = format!("resourceSpans[{r}]");
            let service =
                match string_attribute(&resource_spans.resource.attributes, "service.name") {
                    Some((a, name)) => {
                        let path = format!("{resource}.resource.attributes[{a}].value.stringValue");
                        Some(self.intern(name, &path)?)
                    }
                    None => None,
                };
            let scopes = [
                ("scopeSpans", &resource_spans.scope_spans),
                (
                    "instrumentationLibrarySpans",
                    &resource_spans.instrumentation_library_spans,
                ),
            ];
            for (field, scopes) in scopes {
                for (s, scope) in scopes.iter().enumerate() {
                    for (k, span) in scope.spans.iter().enumerate() {
                        let mut record = SpanRecord {
                            trace: span.trace_id.0,
                            id: span.span_id.0,
                            parent: span.parent_span_id.0,
                            service,
                            kind: span.kind,
                            peer: None,
                            start: span.start_time_unix_nano.0,
                            end: span.end_time_unix_nano.0,
                            error: span.status.code.error,
                        };
                        if record.calls_out()
                            && let Some(peer) = peer_of(&span.attributes)
                        {
                            let attribute = peer.attribute;
                            let path = format!(
                                "{resource}.{field}[{s}].spans[{k}].attributes[{attribute}]\
                                 .value.stringValue"
                            );
                            let id = self.intern(&peer.name, &path)?;
                            record.peer = Some(id);
                            if let Some(kind) = peer.kind {
                                peer_kinds.push((id, kind));
                            }
                        }
                        spans.push(record);
                    }
                }
            }
        }
        for (id, kind) in peer_kinds {
            self.peer_kinds.entry(id).or_insert(kind);
        }
        self.spans.append(&mut spans);
        Ok(())
    }

    /// The index of `name`, checked against the graph's naming rule when first seen.
    fn intern(&mut self, name: &str, path: &str) -> Result<u32, TraceError> {
        if let Some(&id) = self.ids.get(name) {
            return Ok(id);
        }
        // The graph's own rule, so that no trace can name a service the topology would refuse.
        let check: Result<(), TopologyError> =
            Topology::new().add_service(Service::new(name, ServiceKind::Service));
        check.map_err(|error| TraceError {
            problem: Problem::at(path, error.to_string()),
            syntax: false,
        })?;
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 distinct names");
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        Ok(id)
    }

    /// Records every call among the spans read into `calls` (see the [module](self) for the
    /// rules) and says what was found.
    pub fn learn(&self, calls: &mut ObservedCalls) -> TraceSummary {
        let index: HashMap<(u128, u64), usize> = self
            .spans
            .iter()
            .enumerate()
            .map(|(i, span)| ((span.trace, span.id), i))
            .collect();
        let mut summary = TraceSummary {
            spans: self.spans.len() as u64,
            ..TraceSummary::default()
        };
        // Client spans whose call is already accounted for by a child.
        let mut answered = vec![false; self.spans.len()];
        let mut emitters = vec![false; self.names.len()];
        for span in &self.spans {
            match span.service {
                Some(service) => emitters[service as usize] = true,
                None => summary.unnamed += 1,
            }
        }
        for (name, _) in self.names.iter().zip(&emitters).filter(|(_, e)| **e) {
            calls.record_service(name);
        }
        for span in &self.spans {
            let Some(parent_id) = span.parent else {
                continue;
            };
            let Some(&p) = index.get(&(span.trace, parent_id)) else {
                summary.orphans += 1;
                continue;
            };
            let parent = &self.spans[p];
            match (parent.service, span.service) {
                (Some(caller), Some(callee)) if caller != callee => {
                    calls.record(
                        &self.names[caller as usize],
                        &self.names[callee as usize],
                        span.call(),
                    );
                    summary.calls += 1;
                    answered[p] = true;
                }
                _ if span.calls_out() && span.peer.is_some() => answered[p] = true,
                _ => {}
            }
        }
        for (i, span) in self.spans.iter().enumerate() {
            if answered[i] || !span.calls_out() {
                continue;
            }
            if let (Some(caller), Some(peer)) = (span.service, span.peer)
                && caller != peer
            {
                calls.record(
                    &self.names[caller as usize],
                    &self.names[peer as usize],
                    span.call(),
                );
                summary.calls += 1;
            }
        }
        for (&peer, &kind) in &self.peer_kinds {
            // A peer that emits spans of its own is a service, whatever its callers call it.
            if !emitters[peer as usize] {
                calls.record_service_kind(&self.names[peer as usize], kind);
            }
        }
        summary
    }
}

/// A peer named by a client span's attributes.
struct Peer {
    name: String,
    /// Index of the attribute the name was taken from (for `system:name`, that of the name).
    attribute: usize,
    kind: Option<ServiceKind>,
}

/// Database systems (`db.system` values) that are caches.
const CACHES: [&str; 4] = ["redis", "memcached", "valkey", "hazelcast"];

/// The peer a client or producer span calls, by the rule in the [module](self) documentation.
fn peer_of(attributes: &[KeyValue]) -> Option<Peer> {
    let first = |keys: &[&str]| {
        keys.iter()
            .find_map(|key| string_attribute(attributes, key))
    };
    let database = first(&["db.system", "db.system.name"]);
    let queue = first(&["messaging.destination.name"]);
    let kind = match (database, queue) {
        (Some((_, system)), _) if CACHES.contains(&system.to_ascii_lowercase().as_str()) => {
            Some(ServiceKind::Cache)
        }
        (Some(_), _) => Some(ServiceKind::Database),
        (None, Some(_)) => Some(ServiceKind::Queue),
        (None, None) => None,
    };
    let composed = |(system_at, system): (usize, &str), name: Option<(usize, &str)>| match name {
        Some((at, name)) => (format!("{system}:{name}"), at),
        None => (system.to_owned(), system_at),
    };
    let (name, attribute) = if let Some((at, name)) = first(&["peer.service"]) {
        (name.to_owned(), at)
    } else if let Some(system) = database {
        composed(system, first(&["db.name", "db.namespace"]))
    } else if let Some((at, destination)) = queue {
        match first(&["messaging.system"]) {
            Some((_, system)) => (format!("{system}:{destination}"), at),
            None => (destination.to_owned(), at),
        }
    } else {
        let (at, name) = first(&["server.address", "net.peer.name"])?;
        (name.to_owned(), at)
    };
    Some(Peer {
        name,
        attribute,
        kind,
    })
}

/// The non-empty string value of attribute `key`, with its index.
fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<(usize, &'a str)> {
    attributes.iter().enumerate().find_map(|(i, kv)| {
        (kv.key == key)
            .then_some(kv.value.string_value.as_deref())
            .flatten()
            .filter(|value| !value.is_empty())
            .map(|value| (i, value))
    })
}

#[cfg(test)]
mod tests;
