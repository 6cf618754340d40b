//! How a case's metrics are observed: per service or per instance
//! ([`super::Trait::SubResources`]), densely or sparsely ([`super::Trait::Sparse`]), under the
//! simulator's names or another vocabulary's ([`super::Trait::UnseenNames`]). With none of these
//! traits a service's series are exactly those of the clean simulator.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;
use rootcause_models::case::{Family, Series, Source};

use super::graph::Graph;
use super::metrics::{
    self, Baseline, CPU, DECIMALS, DISK, ERRORS, Effect, Gauss, LATENCY, METRICS, TRAFFIC,
    rng_index, round,
};
use super::random::{chance, derived, fnv, uniform};
use super::vocabulary::Vocabulary;

/// The case-wide choices behind how metrics are observed.
pub(super) struct Observation<'a> {
    pub seed: u64,
    pub case: u64,
    pub anchor: i64,
    /// Sample times and the step between them.
    pub times: &'a [i64],
    pub step: i64,
    pub root: usize,
    /// Low-traffic services.
    pub sparse: &'a BTreeSet<usize>,
    /// Services reporting per instance, with their instance counts.
    pub instances: &'a BTreeMap<usize, usize>,
    /// The root instance the fault hits, when the root reports per instance.
    pub faulty_instance: usize,
    pub vocabulary: Option<&'static Vocabulary>,
    /// [`super::Trait::WaitingCallers`]: every service also reports its client-side latency.
    pub client_side: bool,
}

/// Name of the client-side latency series of [`super::Trait::WaitingCallers`].
pub(super) const CLIENT_LATENCY: &str = "client_wait_p99_ms";

/// The name of instance `i` of `service`.
pub(super) fn instance_name(service: &str, i: usize) -> String {
    format!("{service}-{i}")
}

/// The label a metric of instance `instance` carries after its name (`{instance="<name>"}`).
pub(super) fn instance_label(instance: &str) -> String {
    format!("{{instance=\"{instance}\"}}")
}

/// The metric series of `node`, disturbed by `effects`: the fault's first when `hit` (the root's
/// own or a caller's echo), then the causes of noise alerts.
pub(super) fn metric_series(
    graph: &Graph<'_>,
    node: usize,
    effects: &[Effect],
    hit: bool,
    o: &Observation<'_>,
) -> Vec<Series> {
    let service = graph.services[node];
    let name = service.name.as_str();
    let base = Baseline::of(service, o.seed);
    let client = o
        .client_side
        .then(|| client_latency(name, &base, node, &effects[..usize::from(hit)], o));
    // One source per instance, or the service itself: (key of its noise, baseline, effects,
    // label appended to the metric names).
    let mut sources: Vec<(u64, Baseline, Vec<Effect>, String)> = Vec::new();
    match o.instances.get(&node) {
        None => sources.push((fnv(name.as_bytes()), base, effects.to_vec(), String::new())),
        Some(&count) => {
            let (fault, noise) = effects.split_at(usize::from(hit));
            // A noise alert's cause is one pod's trouble, not the whole service's.
            let noisy = rng_index(
                &mut derived(o.seed, &[o.case, fnv(name.as_bytes()), 0x2015e]),
                count,
            );
            for i in 0..count {
                let instance = instance_name(name, i);
                let key = fnv(instance.as_bytes());
                let own = base.instance(count, &mut derived(o.seed, &[key, 0x1257]));
                let mut disturbed = Vec::new();
                for &effect in fault {
                    if node != o.root || i == o.faulty_instance {
                        // A caller's echo reaches every instance behind the load balancer.
                        disturbed.push(effect);
                    } else {
                        // The root's healthy instances feel at most a little of it (shared
                        // connections, a retry landing on them).
                        let rng = &mut derived(o.seed, &[o.case, key, 0xec0]);
                        let mut echo = Effect::between(effect.onset, effect.end, effect.ramp);
                        echo.latency = effect.latency * uniform(rng, 0.0, 0.15);
                        echo.errors = effect.errors * uniform(rng, 0.0, 0.15);
                        disturbed.push(echo);
                    }
                }
                if i == noisy {
                    disturbed.extend_from_slice(noise);
                }
                sources.push((key, own, disturbed, instance_label(&instance)));
            }
        }
    }
    let mut out = Vec::new();
    for (key, base, effects, label) in sources {
        let mut columns = metrics::columns(&base, key, o.seed, o.case, o.times, &effects);
        if o.sparse.contains(&node) {
            sparsify(
                &mut columns,
                o.times,
                o.anchor,
                &mut derived(o.seed, &[o.case, key, 0x5ba7]),
            );
        }
        let named: Vec<(&str, Vec<f64>)> = match o.vocabulary {
            Some(vocabulary) => vocabulary.translate(&columns, o.step),
            None => METRICS.iter().copied().zip(columns).collect(),
        };
        for (metric, values) in named {
            out.push(Series {
                service: name.to_owned(),
                source: Source::Metric,
                // What a loader of unlabelled metrics would say, from the name alone.
                family: Family::classify(metric),
                name: format!("{metric}{label}"),
                times: o.times.to_vec(),
                values,
            });
        }
    }
    out.extend(client);
    out
}

/// How long a service waits for what it calls, p99 in ms: most of its own latency at rest, and
/// as much more as the fault's echo on it (`echo`, empty for unaffected services) makes it
/// wait. The root's own fault is not something it waits for: its series stays at rest.
fn client_latency(
    service: &str,
    base: &Baseline,
    node: usize,
    echo: &[Effect],
    o: &Observation<'_>,
) -> Series {
    let key = fnv(service.as_bytes()) ^ fnv(CLIENT_LATENCY.as_bytes());
    let mut noise = Gauss::new(derived(o.seed, &[o.case, key, 0xc11e]));
    let values = o
        .times
        .iter()
        .map(|&t| {
            let waiting: f64 = if node == o.root {
                1.0
            } else {
                echo.iter().map(|e| 1.0 + e.latency * e.level(t)).product()
            };
            let value = 0.7 * base.latency * base.daily(t) * (0.08 * noise.next()).exp() * waiting;
            round(value, DECIMALS[LATENCY])
        })
        .collect();
    Series {
        service: service.to_owned(),
        source: Source::Metric,
        family: Family::classify(CLIENT_LATENCY),
        name: CLIENT_LATENCY.to_owned(),
        times: o.times.to_vec(),
        values,
    }
}

/// A low-traffic service: most scrapes find nothing (no requests in the step, a pod scaled to
/// zero), and what is found is heavy-tailed, one slow request being the whole p99. One sample in
/// the abnormal window is always present and jumps: the trap a ranker must not fall into.
fn sparsify(
    columns: &mut [Vec<f64>; METRICS.len()],
    times: &[i64],
    anchor: i64,
    rng: &mut ChaCha8Rng,
) {
    const JUMPY: [usize; 5] = [CPU, DISK, LATENCY, ERRORS, TRAFFIC];
    let missing = uniform(rng, 0.6, 0.85);
    let trap = times.iter().position(|&t| t >= anchor);
    let trap_metric = [LATENCY, ERRORS, TRAFFIC][rng_index(rng, 3)];
    for (i, _) in times.iter().enumerate() {
        let present = chance(rng, 1.0 - missing);
        let forced = Some(i) == trap;
        if !present && !forced {
            for column in columns.iter_mut() {
                column[i] = f64::NAN;
            }
            continue;
        }
        for m in JUMPY {
            let jump = chance(rng, 0.12);
            if jump || (forced && m == trap_metric) {
                let factor = uniform(rng, 5.0, 50.0);
                let value = columns[m][i] * factor;
                let value = match m {
                    CPU => value.min(100.0),
                    ERRORS => value.min(1.0),
                    _ => value,
                };
                columns[m][i] = round(value, DECIMALS[m]);
            }
        }
    }
}
