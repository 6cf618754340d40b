//! Trace, log and call-edge statistics per minute, under the names every loader gives them (see
//! `crate::nezha`): what [`super::Trait::TracesLogs`] adds to a case.
//!
//! Each candidate gets span statistics (`span_count`, `duration_p50_ms`, `duration_p90_ms`,
//! `duration_p99_ms`, `self_ms_mean`, `error_spans`) and log statistics (`log_lines`,
//! `log_error`, `log_warn`, `log_exception`, and `template:<LEVEL> <key>` per log statement);
//! each call between two candidates gets `calls`, `callee_ms`, `network_ms` and `errors`.
//! Counts are Poisson around their rate, durations log-normal around theirs.
//!
//! How a fault shows follows from where it sits, which is what makes traces worth having:
//! - inside the root (slow code, a starved CPU, failing requests): its own spans slow down, its
//!   self time with them; callers' spans include the root's time, so their durations rise but
//!   not their self time; failed calls show on the edges into the root and, weaker, as error
//!   spans of the callers;
//! - on the root's network path (a delay or loss at its interface): every call into and out of
//!   it spends longer between the two spans (`network_ms`), lost calls fail, while its own server
//!   spans, measured inside it, stay flat;
//! - code faults: an exception silences a log statement the root printed on every request of one
//!   operation while it is called as often as before; a wrong result adds a new ERROR or WARN
//!   statement, and some callers start warning about what they got back.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;
use rootcause_models::case::{EdgeSeries, Family, Series, Source};

use super::Fault;
use super::graph::Graph;
use super::metrics::{Baseline, Effect, Gauss, round};
use super::random::{between, chance, derived, fnv, uniform};

/// Share of requests traced: span counts are a sample, as with any production tracer.
const SAMPLING: f64 = 0.05;

/// Where the fault sits, as far as spans can tell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Mechanism {
    /// Inside the root: its own spans show the fault.
    Server,
    /// On the root's network path: calls into and out of it take up to `delay_ms` longer and
    /// a share `loss` of the calls into it fail, at full strength; its own spans stay flat.
    Network { delay_ms: f64, loss: f64 },
}

/// What the statistics are generated from.
pub(super) struct Input<'a> {
    pub graph: &'a Graph<'a>,
    pub seed: u64,
    pub case: u64,
    /// Sample times, one a minute: each the end of the minute it covers.
    pub times: &'a [i64],
    /// The candidates, ascending.
    pub candidates: &'a [usize],
    pub root: usize,
    pub fault: Fault,
    pub mechanism: Mechanism,
    /// Share of the root's requests the fault reaches (one instance of several takes `1/n`).
    pub share: f64,
    /// Share of the root's spans failing at full strength, when not its metric's error ratio.
    pub span_errors: Option<f64>,
    /// The fault's disturbance per affected service (the root's own and its callers' echoes).
    pub hits: &'a BTreeMap<usize, Effect>,
    /// Direct callers of the root the fault reached.
    pub direct_callers: &'a [usize],
    /// Other disturbances per service (the causes of noise alerts).
    pub others: &'a BTreeMap<usize, Vec<Effect>>,
}

/// The statistics of a case and what the fault did to its logs.
#[derive(Debug, Default)]
pub(super) struct Output {
    pub traces: Vec<Series>,
    pub logs: Vec<Series>,
    pub edges: Vec<EdgeSeries>,
    /// The root's log template that went quiet (exception).
    pub quiet_template: Option<String>,
    /// Series names of templates that appeared with the fault, by service.
    pub new_templates: BTreeMap<String, Vec<String>>,
}

/// Draws for one series: uniform, normal and Poisson, from one generator.
struct Draw(Gauss);

impl Draw {
    fn new(rng: ChaCha8Rng) -> Draw {
        Draw(Gauss::new(rng))
    }

    fn normal(&mut self) -> f64 {
        self.0.next()
    }

    /// A Poisson count with mean `mean`: Knuth's method for small means, the normal
    /// approximation above 30 (uncapped, unlike `random::poisson`: spans run to thousands).
    fn count(&mut self, mean: f64) -> f64 {
        if mean.is_nan() || mean <= 0.0 {
            return 0.0;
        }
        if mean > 30.0 {
            return (mean + mean.sqrt() * self.normal()).round().max(0.0);
        }
        let limit = (-mean).exp();
        let mut product = self.0.unit();
        let mut count = 0.0;
        while product > limit {
            product *= self.0.unit();
            count += 1.0;
        }
        count
    }

    /// `value` with log-normal noise of spread `sigma`.
    fn jitter(&mut self, value: f64, sigma: f64) -> f64 {
        value * (sigma * self.normal()).exp()
    }
}

/// The log statements of one service and how often each fires.
struct Logbook {
    /// INFO statements and the share of spans that print each: they track the traffic.
    info: Vec<(String, f64)>,
    /// WARN statements and their rate per minute: rare, independent of traffic.
    warn: Vec<(String, f64)>,
    /// ERROR statements and the share of failed spans that print each.
    error: Vec<(String, f64)>,
    /// Every key, so that a statement added by the fault is new.
    keys: BTreeSet<String>,
    /// Where new keys come from.
    namer: Namer,
}

/// Source locations in the style loggers print them (`INFO c.s.CartServiceImpl#372`), unique
/// per service.
struct Namer {
    package: &'static str,
    class: String,
    rng: ChaCha8Rng,
}

const PACKAGES: [&str; 6] = ["c.s", "o.a.s", "i.p.core", "com.acme", "n.b.api", "s.w.h"];
const SUFFIXES: [&str; 9] = [
    "Controller",
    "ServiceImpl",
    "Repository",
    "Handler",
    "Client",
    "Mapper",
    "Listener",
    "Validator",
    "Cache",
];

impl Namer {
    fn new(service: &str, mut rng: ChaCha8Rng) -> Namer {
        // CamelCase of the name's words: `cart-service` → `CartService`.
        let class: String = service
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut chars = w.chars();
                let first = chars.next().map(|c| c.to_ascii_uppercase());
                first.into_iter().chain(chars).collect::<String>()
            })
            .collect();
        let class = if class.is_empty() {
            "App".to_owned()
        } else {
            class
        };
        let package = PACKAGES[between(&mut rng, 0, PACKAGES.len() as i64 - 1) as usize];
        Namer {
            package,
            class,
            rng,
        }
    }

    /// A key at `level` not in `keys`, added to them.
    fn fresh(&mut self, level: &str, keys: &mut BTreeSet<String>) -> String {
        loop {
            let suffix = SUFFIXES[between(&mut self.rng, 0, SUFFIXES.len() as i64 - 1) as usize];
            let line = between(&mut self.rng, 12, 980);
            let key = format!("{level} {}.{}{suffix}#{line}", self.package, self.class);
            if keys.insert(key.clone()) {
                return key;
            }
        }
    }
}

impl Logbook {
    /// The statements of `service`, the same in every case of a run, as a service's code is.
    fn of(service: &str, seed: u64) -> Logbook {
        let hash = fnv(service.as_bytes());
        let rng = &mut derived(seed, &[hash, 0x10c5]);
        let mut namer = Namer::new(service, derived(seed, &[hash, 0x10c6]));
        let mut keys = BTreeSet::new();
        let info_count = between(rng, 5, 15) as usize;
        let info = (0..info_count)
            .map(|k| {
                // The first is printed on (nearly) every request of a busy operation: the
                // statement an exception on that operation silences.
                let share = if k == 0 {
                    uniform(rng, 0.4, 1.0)
                } else {
                    uniform(rng, 0.02, 0.8)
                };
                (namer.fresh("INFO", &mut keys), share)
            })
            .collect();
        let warn = (0..between(rng, 1, 3))
            .map(|_| (namer.fresh("WARN", &mut keys), uniform(rng, 0.02, 0.6)))
            .collect();
        let error = (0..between(rng, 1, 2))
            .map(|_| (namer.fresh("ERROR", &mut keys), uniform(rng, 0.3, 1.0)))
            .collect();
        Logbook {
            info,
            warn,
            error,
            keys,
            namer,
        }
    }
}

/// A template that appears with the fault.
struct NewTemplate {
    key: String,
    /// Lines per minute at full strength.
    rate: f64,
    /// Its timing: the disturbance it follows.
    effect: Effect,
    share: f64,
}

/// One service's state per minute, computed once and read by its series and its edges.
struct Minutes {
    /// Expected spans per minute.
    spans: Vec<f64>,
    /// Mean span duration (ms) of its server spans.
    mean: Vec<f64>,
    /// Share of its spans that fail.
    errors: Vec<f64>,
    /// Share of its spans that fail and log it (code faults fail silently or log their own).
    logged_errors: Vec<f64>,
}

/// Where one service's spans sit without the fault.
struct Profile {
    spans: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    self_ms: f64,
}

impl Profile {
    fn of(base: &Baseline, has_callees: bool, rng: &mut ChaCha8Rng) -> Profile {
        // The metric's p99 is the tail; the median span is a fraction of it.
        let p50 = base.latency / uniform(rng, 3.0, 4.5);
        let p90 = p50 * uniform(rng, 1.6, 2.2);
        let p99 = base.latency * uniform(rng, 0.9, 1.1);
        // A leaf spends its time in itself; a service that calls others mostly waits on them.
        let self_share = if has_callees {
            uniform(rng, 0.2, 0.6)
        } else {
            uniform(rng, 0.8, 0.95)
        };
        Profile {
            spans: base.traffic * 60.0 * SAMPLING,
            p50,
            p90,
            p99,
            self_ms: 1.2 * p50 * self_share,
        }
    }
}

/// How a fault reaching a share `share` of the spans with latency factor `factor` moves the
/// quantile `q` of all spans: fully once more than `1 − q` of them are slow, a little below.
fn quantile_factor(factor: f64, share: f64, q: f64) -> f64 {
    if share > 1.0 - q {
        factor
    } else {
        1.0 + 0.5 * share * (factor - 1.0)
    }
}

/// Generates the statistics of a case.
pub(super) fn generate(input: &Input<'_>) -> Output {
    let mut out = Output::default();
    let times = input.times;
    let code_rng = &mut derived(input.seed, &[input.case, 0xc0de]);
    let root_effect = input.hits.get(&input.root).copied();
    let network = matches!(input.mechanism, Mechanism::Network { .. });

    // What the fault adds to the logs.
    let mut quiet: Option<(usize, String)> = None;
    let mut added: BTreeMap<usize, Vec<NewTemplate>> = BTreeMap::new();
    let mut books: BTreeMap<usize, Logbook> = input
        .candidates
        .iter()
        .map(|&n| (n, Logbook::of(input.graph.name(n), input.seed)))
        .collect();
    if let (Some(effect), Some(book)) = (root_effect, books.get_mut(&input.root)) {
        match input.fault {
            Fault::Exception => {
                quiet = Some((input.root, book.info[0].0.clone()));
                // Now and then the exception is logged after all, under a new statement.
                if chance(code_rng, 0.2) {
                    let key = book.namer.fresh("ERROR", &mut book.keys);
                    added.entry(input.root).or_default().push(NewTemplate {
                        key,
                        rate: uniform(code_rng, 1.0, 8.0),
                        effect,
                        share: input.share,
                    });
                }
            }
            Fault::WrongReturn => {
                let level = if chance(code_rng, 0.6) {
                    "ERROR"
                } else {
                    "WARN"
                };
                let key = book.namer.fresh(level, &mut book.keys);
                added.entry(input.root).or_default().push(NewTemplate {
                    key,
                    rate: uniform(code_rng, 10.0, 60.0),
                    effect,
                    share: input.share,
                });
                // Callers that get the wrong answer sometimes complain: a symptom.
                for &caller in input.direct_callers {
                    let (Some(echo), Some(book)) =
                        (input.hits.get(&caller).copied(), books.get_mut(&caller))
                    else {
                        continue;
                    };
                    if chance(code_rng, 0.5) {
                        let key = book.namer.fresh("WARN", &mut book.keys);
                        added.entry(caller).or_default().push(NewTemplate {
                            key,
                            rate: uniform(code_rng, 2.0, 15.0),
                            effect: echo,
                            share: 1.0,
                        });
                    }
                }
            }
            _ => {}
        }
    }

    let mut minutes: BTreeMap<usize, Minutes> = BTreeMap::new();
    for &node in input.candidates {
        let service = input.graph.services[node];
        let hash = fnv(service.name.as_bytes());
        let base = Baseline::of(service, input.seed);
        let has_callees = !input.graph.callees[node].is_empty();
        let profile = Profile::of(&base, has_callees, &mut derived(input.seed, &[hash, 0x5a1]));
        let hit = input.hits.get(&node).copied();
        let others = input.others.get(&node).map_or(&[][..], Vec::as_slice);
        let is_root = node == input.root;
        // The fault on the root's own spans (unless it sits on the network) and the echo of a
        // callee's fault on a caller's.
        let own_fault = hit.filter(|_| is_root && !network);
        let echo = hit.filter(|_| !is_root);
        // Code faults fail without logging through the usual error statements.
        let silent_errors = is_root && Fault::CODE.contains(&input.fault);

        let key = |k: u64| derived(input.seed, &[input.case, hash, 0x7000 + k]);
        let (mut spans_d, mut p50_d, mut p90_d, mut p99_d) = (
            Draw::new(key(0)),
            Draw::new(key(1)),
            Draw::new(key(2)),
            Draw::new(key(3)),
        );
        let (mut self_d, mut err_d) = (Draw::new(key(4)), Draw::new(key(5)));
        let n = times.len();
        let mut state = Minutes {
            spans: Vec::with_capacity(n),
            mean: Vec::with_capacity(n),
            errors: Vec::with_capacity(n),
            logged_errors: Vec::with_capacity(n),
        };
        let mut columns: [Vec<f64>; 6] = std::array::from_fn(|_| Vec::with_capacity(n));
        for &t in times {
            let daily = base.daily(t);
            let (mut own, mut traffic, mut errors) = (1.0, 1.0, base.errors);
            for e in others {
                let level = e.level(t);
                own *= 1.0 + e.latency * level;
                traffic *= 1.0 + e.traffic * level;
                errors += e.errors * level;
            }
            if let Some(e) = hit {
                traffic *= 1.0 + e.traffic * e.level(t);
            }
            let mut logged = errors;
            let (mut fault_factor, mut fault_share) = (1.0, 0.0);
            if let Some(e) = own_fault {
                let level = e.level(t);
                fault_factor = 1.0 + e.latency * level;
                fault_share = input.share;
                let failing = input.share * input.span_errors.unwrap_or(e.errors) * level;
                errors += failing;
                if !silent_errors {
                    logged += failing;
                }
            }
            let mut echo_factor = 1.0;
            if let Some(e) = echo {
                let level = e.level(t);
                echo_factor = 1.0 + e.latency * level;
                errors += e.errors * level;
                logged += e.errors * level;
            }
            let errors = errors.clamp(0.0, 1.0);
            let spans = profile.spans * daily * traffic;
            let slow = 1.0 + 0.3 * (daily - 1.0);
            let mean_factor = 1.0 + fault_share * (fault_factor - 1.0);
            let q = |q: f64| own * quantile_factor(fault_factor, fault_share, q) * echo_factor;
            let count = spans_d.count(spans);
            let observed = count > 0.0;
            let timing = |d: &mut Draw, value: f64, sigma: f64| {
                let v = d.jitter(value, sigma);
                if observed { round(v, 3) } else { f64::NAN }
            };
            columns[0].push(count);
            columns[1].push(timing(&mut p50_d, profile.p50 * slow * q(0.5), 0.05));
            columns[2].push(timing(&mut p90_d, profile.p90 * slow * q(0.9), 0.07));
            columns[3].push(timing(&mut p99_d, profile.p99 * slow * q(0.99), 0.12));
            columns[4].push(timing(
                &mut self_d,
                profile.self_ms * slow * own * mean_factor,
                0.05,
            ));
            columns[5].push(err_d.count(spans * errors));
            state.spans.push(spans);
            state
                .mean
                .push(1.2 * profile.p50 * slow * own * mean_factor * echo_factor);
            state.errors.push(errors);
            state.logged_errors.push(logged.clamp(0.0, 1.0));
        }
        const TRACE: [(&str, Family); 6] = [
            ("span_count", Family::Traffic),
            ("duration_p50_ms", Family::Latency),
            ("duration_p90_ms", Family::Latency),
            ("duration_p99_ms", Family::Latency),
            ("self_ms_mean", Family::Latency),
            ("error_spans", Family::Errors),
        ];
        for ((name, family), values) in TRACE.into_iter().zip(columns) {
            out.traces.push(Series {
                service: service.name.clone(),
                source: Source::Trace,
                family,
                name: name.to_owned(),
                times: times.to_vec(),
                values,
            });
        }
        minutes.insert(node, state);
    }

    for &node in input.candidates {
        let name = input.graph.name(node);
        let book = &books[&node];
        let state = &minutes[&node];
        let silenced = quiet
            .as_ref()
            .filter(|(n, _)| *n == node)
            .zip(root_effect)
            .map(|((_, key), effect)| (key.as_str(), effect));
        let new = added.get(&node).map_or(&[][..], Vec::as_slice);
        logs(&mut out, input, name, book, state, silenced, new);
        if !new.is_empty() {
            out.new_templates.insert(
                name.to_owned(),
                new.iter().map(|t| format!("template:{}", t.key)).collect(),
            );
        }
    }
    out.quiet_template = quiet.map(|(_, key)| format!("template:{key}"));

    edges(&mut out, input, &minutes, root_effect);
    out
}

/// The log series of one service: counts per statement, and per level. `quiet` is the
/// statement an exception silences and the fault's timing, on the root.
fn logs(
    out: &mut Output,
    input: &Input<'_>,
    name: &str,
    book: &Logbook,
    state: &Minutes,
    quiet: Option<(&str, Effect)>,
    new: &[NewTemplate],
) {
    let times = input.times;
    let hash = fnv(name.as_bytes());
    let key = |k: u64| Draw::new(derived(input.seed, &[input.case, hash, 0x8000 + k]));
    let n = times.len();
    let (mut lines, mut error, mut warn) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut error_expected = vec![0.0; n];
    let mut templates: Vec<(String, Vec<f64>)> = Vec::new();
    let mut k = 10;
    for (template, share) in &book.info {
        let mut d = key(k);
        k += 1;
        let silenced = quiet.filter(|(key, _)| key == template);
        let values: Vec<f64> = (0..n)
            .map(|i| {
                let mut rate = state.spans[i] * share;
                if let Some((_, e)) = silenced {
                    rate *= 1.0 - 0.95 * e.level(times[i]) * input.share;
                }
                d.count(rate)
            })
            .collect();
        templates.push((template.clone(), values));
    }
    // Warnings come and go with load, around their own rate.
    let typical = state.spans.iter().sum::<f64>() / n.max(1) as f64;
    for (template, rate) in &book.warn {
        let mut d = key(k);
        k += 1;
        let values: Vec<f64> = (0..n)
            .map(|i| d.count(rate * state.spans[i] / typical.max(1e-9)))
            .collect();
        templates.push((template.clone(), values));
    }
    for (template, share) in &book.error {
        let mut d = key(k);
        k += 1;
        let values: Vec<f64> = (0..n)
            .map(|i| {
                let rate = state.spans[i] * state.logged_errors[i] * share;
                error_expected[i] += rate;
                d.count(rate)
            })
            .collect();
        templates.push((template.clone(), values));
    }
    for template in new {
        let mut d = key(k);
        k += 1;
        let values: Vec<f64> = (0..n)
            .map(|i| {
                let rate = template.rate * template.effect.level(times[i]) * template.share;
                if template.key.starts_with("ERROR") {
                    error_expected[i] += rate;
                }
                d.count(rate)
            })
            .collect();
        templates.push((template.key.clone(), values));
    }
    for (template, values) in &templates {
        let level = template.split(' ').next().unwrap_or("");
        for (i, v) in values.iter().enumerate() {
            lines[i] += v;
            match level {
                "ERROR" => error[i] += v,
                "WARN" => warn[i] += v,
                _ => {}
            }
        }
    }
    // About a third of error lines carry a stack trace.
    let mut d = key(9);
    let exception: Vec<f64> = error_expected.iter().map(|&e| d.count(0.35 * e)).collect();
    let series = |name: String, family: Family, values: Vec<f64>| Series {
        service: String::new(),
        source: Source::Log,
        family,
        name,
        times: times.to_vec(),
        values,
    };
    let mut all = vec![
        series("log_lines".into(), Family::Traffic, lines),
        series("log_error".into(), Family::Errors, error),
        series("log_warn".into(), Family::Errors, warn),
        series("log_exception".into(), Family::Errors, exception),
    ];
    all.extend(
        templates
            .into_iter()
            .map(|(key, values)| series(format!("template:{key}"), Family::Template, values)),
    );
    for mut s in all {
        s.service = name.to_owned();
        out.logs.push(s);
    }
}

/// The call-edge series between candidates.
fn edges(
    out: &mut Output,
    input: &Input<'_>,
    minutes: &BTreeMap<usize, Minutes>,
    root_effect: Option<Effect>,
) {
    let times = input.times;
    for &caller in input.candidates {
        let from = &minutes[&caller];
        for &callee in &input.graph.callees[caller] {
            let Some(to) = minutes.get(&callee) else {
                continue;
            };
            let (a, b) = (input.graph.name(caller), input.graph.name(callee));
            let hash = crate::hash::stable_hash(&[a.as_bytes(), b.as_bytes()]);
            let params = &mut derived(input.seed, &[hash, 0xed9e]);
            let fan = uniform(params, 0.3, 1.5);
            let wire = uniform(params, 0.3, 3.0);
            let key = |k: u64| Draw::new(derived(input.seed, &[input.case, hash, 0x9000 + k]));
            let (mut calls_d, mut callee_d, mut wire_d, mut err_d) =
                (key(0), key(1), key(2), key(3));
            // The root's network path is on this edge when the root is at either end.
            let on_path = caller == input.root || callee == input.root;
            let (delay, loss) = match (input.mechanism, root_effect) {
                (Mechanism::Network { delay_ms, loss }, Some(e)) if on_path => (
                    Some((delay_ms, e)),
                    (callee == input.root).then_some((loss, e)),
                ),
                _ => (None, None),
            };
            let n = times.len();
            let mut columns: [Vec<f64>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
            for (i, &t) in times.iter().enumerate() {
                let expected = from.spans[i] * fan;
                let calls = calls_d.count(expected);
                let observed = calls > 0.0;
                let callee_ms = callee_d.jitter(to.mean[i], 0.04);
                let mut network = wire_d.jitter(wire, 0.2);
                if let Some((delay_ms, e)) = delay {
                    network += delay_ms * e.level(t) * input.share;
                }
                let mut failing = to.errors[i];
                if let Some((loss, e)) = loss {
                    failing += loss * e.level(t) * input.share;
                }
                let errors = err_d.count(expected * failing.min(1.0));
                columns[0].push(calls);
                columns[1].push(if observed {
                    round(callee_ms, 3)
                } else {
                    f64::NAN
                });
                columns[2].push(if observed {
                    round(network, 3)
                } else {
                    f64::NAN
                });
                columns[3].push(errors);
            }
            for (name, values) in ["calls", "callee_ms", "network_ms", "errors"]
                .into_iter()
                .zip(columns)
            {
                out.edges.push(EdgeSeries {
                    caller: a.to_owned(),
                    callee: b.to_owned(),
                    name: name.to_owned(),
                    times: times.to_vec(),
                    values,
                });
            }
        }
    }
}
