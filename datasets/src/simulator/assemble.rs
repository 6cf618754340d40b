//! One simulated case assembled from its draws: the fault and how it spreads, the alert storm
//! and changes around it, which services are candidates, the realism traits, and the metric,
//! trace, log and edge series observed of them.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;
use rootcause_models::case::{CaseChange, Series};

use super::alerts::Labeller;
use super::faults::{self, RootPicker};
use super::graph::Graph;
use super::mesh;
use super::metrics::{self, Effect};
use super::observe::{self, Observation};
use super::random::{between, chance, derived, uniform};
use super::realism::late_generators;
use super::storm::{fault_alerts, noise_alerts, noise_changes};
use super::traces::{self, Mechanism};
use super::vocabulary::VOCABULARIES;
use super::{
    Affected, Fault, LATE_REALISM, Options, REALISM, RealismReport, SimulatedAlert, SimulatedCase,
    Trait,
};

/// Case `index` of the run (its id zero-padded to `width` digits), or `None` when the picker
/// finds no root to inject a fault into.
pub(super) fn simulate_case(
    graph: &Graph<'_>,
    picker: &RootPicker,
    system: &str,
    options: &Options,
    index: usize,
    width: usize,
) -> Option<SimulatedCase> {
    let rng = &mut derived(options.seed, &[index as u64]);
    // Everything realism decides comes from here, never from `rng`: with no trait drawn, the
    // case is exactly the clean simulator's.
    let realism_rng = &mut derived(options.seed, &[index as u64, REALISM]);
    let late = &mut late_generators(options.seed, index as u64, LATE_REALISM);
    let traits = options.realism.draw(realism_rng, late);
    let late_rng = &mut late[0];
    let has = |one: Trait| traits.contains(&one);
    let mut report = RealismReport {
        traits: traits.clone(),
        ..RealismReport::default()
    };
    let spacing = options.spacing.max(1);
    let before = options.before.max(0);
    let after = options.after.max(0);
    let anchor = options.start + before + index as i64 * spacing + between(rng, 0, spacing / 4);
    // Coarse monitoring keeps five-minute samples over a longer look-back.
    let (before, after, step) = if has(Trait::Coarse) {
        (2 * 3600, 15 * 60, 300)
    } else {
        (before, after, options.step)
    };
    let mut window = (anchor - before, anchor + after);
    if has(Trait::NoBaseline) {
        window.0 = anchor - between(realism_rng, 0, 120);
    }
    let (mut fault, mut root) = picker.pick(rng)?;
    if has(Trait::TracesLogs) && chance(realism_rng, options.realism.code_faults) {
        let code = Fault::CODE[between(realism_rng, 0, 1) as usize];
        if let Some(node) = picker.root_for(code, realism_rng) {
            (fault, root) = (code, node);
        }
    }
    // Paths of at most three hops, so that an alerting caller at the end of one still reaches
    // the root within the three hops candidates then span.
    let capped;
    let scenario_options = if has(Trait::SilentIntermediaries) {
        capped = Options {
            max_hops: options.max_hops.min(3),
            ..options.clone()
        };
        &capped
    } else {
        options
    };
    let scenario = faults::scenario(graph, fault, root, anchor, scenario_options, rng);
    let labeller = Labeller {
        system,
        seed: options.seed,
    };

    // Per service, the disturbances its metrics show: the fault's first, then noise.
    let mut effects: BTreeMap<usize, Vec<Effect>> = BTreeMap::new();
    for hit in &scenario.hits {
        effects.entry(hit.node).or_default().push(hit.effect);
    }
    // Affected services that passed the fault on: the intermediaries of its paths.
    let silenced: BTreeSet<usize> = if has(Trait::SilentIntermediaries) {
        scenario
            .hits
            .iter()
            .filter_map(|hit| hit.parent)
            .filter(|&parent| parent != 0)
            .map(|parent| scenario.hits[parent].node)
            .collect()
    } else {
        BTreeSet::new()
    };
    let (mut alerts, withheld) = fault_alerts(graph, &scenario, &labeller, options, rng, &silenced);
    alerts.extend(noise_alerts(
        graph,
        window,
        &labeller,
        options,
        rng,
        &mut effects,
    ));

    if has(Trait::WaitingCallers) {
        report.side_effects = waiting_side_effects(graph, &scenario.hits, &mut effects, late_rng);
    }

    let mut changes: Vec<CaseChange> = scenario.change.iter().cloned().collect();
    changes.extend(noise_changes(graph, window, options, rng));

    let hops = if has(Trait::SilentIntermediaries) {
        3
    } else {
        2
    };
    let alerting = |alerts: &[SimulatedAlert]| -> BTreeSet<usize> {
        alerts
            .iter()
            .filter_map(|a| graph.position(a.service()))
            .collect()
    };
    let mut candidates = graph.with_callees(&alerting(&alerts), hops);
    if !withheld.is_empty() && !candidates.contains(&root) {
        // Silencing hid the root: the intermediaries alert after all.
        alerts.extend(withheld);
        candidates = graph.with_callees(&alerting(&alerts), hops);
    } else {
        report.silenced = silenced.iter().map(|&n| graph.name(n).to_owned()).collect();
    }
    alerts.sort_by(|a, b| {
        (a.starts_at, a.service(), a.name(), a.ends_at).cmp(&(
            b.starts_at,
            b.service(),
            b.name(),
            b.ends_at,
        ))
    });
    if has(Trait::Releases) {
        changes.extend(releases(graph, root, &candidates, anchor, realism_rng));
    }
    changes.sort_by(|a, b| (a.at, &a.service, &a.kind).cmp(&(b.at, &b.service, &b.kind)));

    let times: Vec<i64> = if has(Trait::NoBaseline) {
        // A collector switched on just before the incident scrapes from when it started, not
        // on the round multiples of its step a long-running one has settled on.
        (0..)
            .map(|k| window.0 + k * step.max(1))
            .take_while(|&t| t <= window.1)
            .collect()
    } else {
        metrics::grid(window.0, window.1, step)
    };

    // How metrics are observed.
    let sparse: BTreeSet<usize> = if has(Trait::Sparse) {
        let others: Vec<usize> = candidates.iter().copied().filter(|&n| n != root).collect();
        let count = between(realism_rng, 1, 3) as usize;
        pick(realism_rng, &others, count)
    } else {
        BTreeSet::new()
    };
    let mut instances: BTreeMap<usize, usize> = BTreeMap::new();
    let mut faulty_instance = 0;
    if has(Trait::SubResources) {
        for &node in &candidates {
            let p = if node == root { 0.5 } else { 0.3 };
            if chance(realism_rng, p) {
                instances.insert(node, between(realism_rng, 2, 5) as usize);
            }
        }
        // At least one service per case reports per instance, or the trait would be a no-op.
        if instances.is_empty() && !candidates.is_empty() {
            let all: Vec<usize> = candidates.iter().copied().collect();
            let node = all[between(realism_rng, 0, all.len() as i64 - 1) as usize];
            instances.insert(node, between(realism_rng, 2, 5) as usize);
        }
        if let Some(&count) = instances.get(&root) {
            faulty_instance = between(realism_rng, 0, count as i64 - 1) as usize;
            report.faulty_instance =
                Some(observe::instance_name(graph.name(root), faulty_instance));
        }
    }
    let vocabulary = has(Trait::UnseenNames)
        .then(|| &VOCABULARIES[between(realism_rng, 0, VOCABULARIES.len() as i64 - 1) as usize]);
    let observation = Observation {
        seed: options.seed,
        case: index as u64,
        anchor,
        times: &times,
        step: step.max(1),
        root,
        sparse: &sparse,
        instances: &instances,
        faulty_instance,
        vocabulary,
        client_side: has(Trait::WaitingCallers),
    };
    let hit_nodes: BTreeSet<usize> = scenario.hits.iter().map(|h| h.node).collect();
    // With traces, a delay or loss sits at the root's interface rather than inside it half the
    // time (always for loss): its calls slow on the wire (see the edge series below) while the
    // latency it measures itself, server side, stays flat, as Train Ticket's and Bookinfo's
    // network-delay roots do; its callers' latency rises as ever.
    let network = has(Trait::TracesLogs)
        && (fault == Fault::Loss || (fault == Fault::Latency && chance(realism_rng, 0.5)));
    if network && let Some(own) = effects.get_mut(&root).and_then(|list| list.first_mut()) {
        own.latency = 0.0;
    }
    let mut series: Vec<Series> = candidates
        .iter()
        .flat_map(|&node| {
            let disturbances = effects.get(&node).map_or(&[][..], Vec::as_slice);
            observe::metric_series(
                graph,
                node,
                disturbances,
                hit_nodes.contains(&node),
                &observation,
            )
        })
        .collect();
    report.sparse = sparse.iter().map(|&n| graph.name(n).to_owned()).collect();
    report.instances = instances
        .iter()
        .map(|(&n, &count)| (graph.name(n).to_owned(), count))
        .collect();
    report.vocabulary = vocabulary.map(|v| v.name.to_owned());

    let mut edges = Vec::new();
    if has(Trait::TracesLogs) {
        let root_effect = scenario.hits[0].effect;
        let mechanism = if network {
            let p50 = metrics::Baseline::of(graph.services[root], options.seed).latency / 3.5;
            Mechanism::Network {
                delay_ms: (p50 * root_effect.latency).max(20.0),
                loss: if fault == Fault::Loss {
                    root_effect.errors
                } else {
                    0.0
                },
            }
        } else {
            Mechanism::Server
        };
        report.network_fault = network;
        // Statistics of whole minutes, over at most the twenty minutes before the anchor: trace
        // and log stores keep less history than metrics, and a case holds a lot of them.
        let mut minutes = metrics::grid(window.0.max(anchor - 1200), window.1, 60);
        minutes.retain(|&t| t >= window.0);
        let hits: BTreeMap<usize, Effect> =
            scenario.hits.iter().map(|h| (h.node, h.effect)).collect();
        let others: BTreeMap<usize, Vec<Effect>> = effects
            .iter()
            .map(|(&node, list)| {
                let skip = usize::from(hit_nodes.contains(&node));
                (node, list[skip..].to_vec())
            })
            .collect();
        let direct: Vec<usize> = scenario
            .hits
            .iter()
            .filter(|h| h.hops == 1)
            .map(|h| h.node)
            .collect();
        let candidate_list: Vec<usize> = candidates.iter().copied().collect();
        let out = traces::generate(&traces::Input {
            graph,
            seed: options.seed,
            case: index as u64,
            times: &minutes,
            candidates: &candidate_list,
            root,
            fault,
            mechanism,
            share: instances.get(&root).map_or(1.0, |&n| 1.0 / n as f64),
            span_errors: scenario.span_errors,
            hits: &hits,
            direct_callers: &direct,
            others: &others,
        });
        series.extend(out.traces);
        series.extend(out.logs);
        edges = out.edges;
        report.quiet_template = out.quiet_template;
        report.new_templates = out.new_templates;

        // Datastores that export nothing: their own series and alerts go, the calls into them
        // stay. The root goes dark only if its callers' alerts still reach it, so that it
        // stays a candidate as a live incident would derive them.
        let mut dark: BTreeSet<usize> = candidates
            .iter()
            .copied()
            .filter(|&n| graph.is_datastore(n) && chance(realism_rng, options.realism.unexported))
            .collect();
        let still_alerting = |dark: &BTreeSet<usize>| -> BTreeSet<usize> {
            alerting(&alerts)
                .into_iter()
                .filter(|n| !dark.contains(n))
                .collect()
        };
        if dark.contains(&root)
            && !graph
                .with_callees(&still_alerting(&dark), hops)
                .contains(&root)
        {
            dark.remove(&root);
        }
        if !dark.is_empty() {
            let names: BTreeSet<&str> = dark.iter().map(|&n| graph.name(n)).collect();
            series.retain(|s| !names.contains(s.service.as_str()));
            alerts.retain(|a| !names.contains(a.service()));
            report.unexported = names.iter().map(|&n| n.to_owned()).collect();
        }

        if has(Trait::ServiceMesh) {
            let share = instances.get(&root).map_or(1.0, |&n| 1.0 / n as f64);
            let delay = match mechanism {
                Mechanism::Network { delay_ms, .. } => Some(mesh::InterfaceDelay {
                    root: graph.name(root),
                    instance: report
                        .faulty_instance
                        .as_ref()
                        .map(|i| observe::instance_label(i)),
                    delay_ms: move |t: i64| delay_ms * root_effect.level(t) * share,
                }),
                Mechanism::Server => None,
            };
            report.mesh_edges = mesh::as_service_mesh(&mut series, &mut edges, delay);
        }
    }

    let mut candidate_names: Vec<String> = candidates
        .iter()
        .map(|&node| graph.name(node).to_owned())
        .collect();
    if has(Trait::NoTopology) {
        // Without a graph there is no "what they call": what has data is what can be ranked.
        let with_data: BTreeSet<String> = series
            .iter()
            .map(|s| s.service.clone())
            .chain(alerts.iter().map(|a| a.service().to_owned()))
            .chain(candidate_names)
            .collect();
        candidate_names = with_data.into_iter().collect();
    }
    let normal_windows = if has(Trait::NoBaseline) {
        Vec::new()
    } else {
        vec![(times.first().copied().unwrap_or(window.0), anchor)]
    };

    Some(SimulatedCase {
        id: format!("case-{:0width$}", index + 1),
        system: system.to_owned(),
        anchor,
        root_cause: graph.name(root).to_owned(),
        fault,
        action: scenario.action,
        resolved_at: scenario.resolved_at,
        affected: scenario
            .hits
            .iter()
            .map(|hit| Affected {
                service: graph.name(hit.node).to_owned(),
                hops: hit.hops,
                onset: hit.onset,
                strength: (hit.strength * 1000.0).round() / 1000.0,
            })
            .collect(),
        alerts,
        changes,
        candidates: candidate_names,
        series,
        edges,
        normal_windows,
        realism: report,
    })
}

/// [`Trait::WaitingCallers`]: half of the affected callers that wait on the fault (never the
/// root; a caller that only sees errors does not wait) show a side effect of waiting on their
/// fault echo, strong enough to stand out: retries burning CPU, or error logging and retry
/// queues writing to disk. Returns those callers' names, sorted.
fn waiting_side_effects(
    graph: &Graph<'_>,
    hits: &[faults::Hit],
    effects: &mut BTreeMap<usize, Vec<Effect>>,
    rng: &mut ChaCha8Rng,
) -> Vec<String> {
    let mut names = Vec::new();
    for hit in hits.iter().skip(1) {
        if !chance(rng, 0.5) {
            continue;
        }
        let Some(echo) = effects
            .get_mut(&hit.node)
            .and_then(|list| list.first_mut())
            .filter(|echo| echo.latency > 0.0)
        else {
            continue;
        };
        // As strong as the wait: a dependency twice as slow fills retry queues, one a fifth
        // slower barely does.
        let wait = echo.latency.min(2.0);
        if chance(rng, 0.5) {
            echo.cpu = echo.cpu.max(uniform(rng, 0.1, 0.25) * wait);
        } else {
            echo.disk = echo.disk.max(uniform(rng, 1.0, 3.0) * wait);
        }
        names.push(graph.name(hit.node).to_owned());
    }
    names.sort();
    names
}

/// Up to `count` distinct entries of `from`, drawn uniformly.
fn pick(rng: &mut ChaCha8Rng, from: &[usize], count: usize) -> BTreeSet<usize> {
    let mut pool = from.to_vec();
    let mut out = BTreeSet::new();
    while out.len() < count && !pool.is_empty() {
        let at = between(rng, 0, pool.len() as i64 - 1) as usize;
        out.insert(pool.swap_remove(at));
    }
    out
}

/// [`Trait::Releases`]: two to four rollouts of other candidates within half an hour either
/// side of the anchor (the last after it), and now and then one of the root an hour before.
/// All innocent: the only faulty release is a `deploy` fault's own.
fn releases(
    graph: &Graph<'_>,
    root: usize,
    candidates: &BTreeSet<usize>,
    anchor: i64,
    rng: &mut ChaCha8Rng,
) -> Vec<CaseChange> {
    let mut pool: Vec<usize> = candidates.iter().copied().filter(|&n| n != root).collect();
    if pool.is_empty() {
        pool = (0..graph.len()).filter(|&n| n != root).collect();
    }
    let mut out = Vec::new();
    let rollout = |node: usize, at: i64, rng: &mut ChaCha8Rng| {
        let name = graph.name(node);
        let (major, minor, patch) = (between(rng, 1, 4), between(rng, 0, 30), between(rng, 0, 20));
        CaseChange {
            service: name.to_owned(),
            kind: "deploy".to_owned(),
            at,
            description: format!(
                "rollout of {name} v{major}.{minor}.{patch} -> v{major}.{minor}.{}",
                patch + 1
            ),
        }
    };
    if pool.is_empty() {
        return out;
    }
    let count = between(rng, 2, 4);
    for k in 0..count {
        let node = pool[between(rng, 0, pool.len() as i64 - 1) as usize];
        let at = if k + 1 == count {
            anchor + between(rng, 60, 1800)
        } else {
            anchor + between(rng, -1800, 1800)
        };
        out.push(rollout(node, at, rng));
    }
    if chance(rng, 0.3) {
        let at = anchor - between(rng, 3000, 4200);
        out.push(rollout(root, at, rng));
    }
    out
}
