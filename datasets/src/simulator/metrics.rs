//! Metric windows: a baseline per service with daily variation and noise, and the shape each
//! disturbance (the fault on the root, its echo on affected callers, the cause of a noise alert,
//! a random blip) leaves on it.

use rand_chacha::ChaCha8Rng;
use rootcause_topology::{Service, ServiceKind};

use super::random::{chance, derived, fnv, uniform, unit};

/// The metrics simulated for every candidate service, as named in `metrics.csv` column suffixes
/// and in [`Series::name`](rootcause_models::case::Series::name): CPU, memory and disk space used in percent, disk I/O in MB/s, p99
/// latency in ms, the error ratio (0–1) and requests per second.
pub const METRICS: [&str; 7] = [
    "cpu_usage",
    "memory_usage",
    "disk_io",
    "disk_usage",
    "latency_p99_ms",
    "error_rate",
    "request_rate",
];

/// Decimals kept per metric. Values are rounded to them when generated, so that their shortest
/// exact text in `metrics.csv` stays short.
pub(super) const DECIMALS: [usize; 7] = [2, 2, 3, 2, 2, 5, 2];

pub(super) const CPU: usize = 0;
pub(super) const MEMORY: usize = 1;
pub(super) const DISK: usize = 2;
pub(super) const SPACE: usize = 3;
pub(super) const LATENCY: usize = 4;
pub(super) const ERRORS: usize = 5;
pub(super) const TRAFFIC: usize = 6;

/// One disturbance of a service's metrics between `onset` and `end`, rising with time constant
/// `ramp` and decaying the same way once over. Each field is how far its metric moves at full
/// strength.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Effect {
    pub onset: i64,
    pub end: i64,
    /// Seconds to reach about 63 % of full strength.
    pub ramp: f64,
    /// Share of the CPU headroom (up to 100 %) taken.
    pub cpu: f64,
    /// Share of the memory headroom taken, reached linearly over `leak` seconds: a leak climbs,
    /// it does not jump.
    pub memory: f64,
    pub leak: f64,
    /// Share of the free disk space filled, linearly over `leak` seconds like memory.
    pub space: f64,
    /// Relative increase of disk I/O (3.0 = four times the baseline).
    pub disk: f64,
    /// Relative increase of p99 latency.
    pub latency: f64,
    /// Error ratio added.
    pub errors: f64,
    /// Relative change of the request rate (retries raise it).
    pub traffic: f64,
}

impl Effect {
    /// An effect that moves nothing yet.
    pub fn between(onset: i64, end: i64, ramp: f64) -> Effect {
        Effect {
            onset,
            end,
            ramp: ramp.max(1.0),
            cpu: 0.0,
            memory: 0.0,
            leak: 1.0,
            space: 0.0,
            disk: 0.0,
            latency: 0.0,
            errors: 0.0,
            traffic: 0.0,
        }
    }

    /// Strength in `[0, 1]` at `t` for a metric that ramps up exponentially.
    pub fn level(&self, t: i64) -> f64 {
        if t < self.onset {
            return 0.0;
        }
        let since = (t - self.onset) as f64;
        let up = 1.0 - (-since / self.ramp).exp();
        if t <= self.end {
            up
        } else {
            up * (-((t - self.end) as f64) / self.ramp).exp()
        }
    }

    /// Strength in `[0, 1]` at `t` for memory and disk space: a linear climb, released at the
    /// end (a restart, a purge).
    pub fn leak_level(&self, t: i64) -> f64 {
        if t < self.onset || t > self.end {
            return 0.0;
        }
        ((t - self.onset) as f64 / self.leak.max(1.0)).min(1.0)
    }
}

/// Where a service's metrics sit when nothing is wrong.
#[derive(Debug, Clone)]
pub(super) struct Baseline {
    pub cpu: f64,
    pub memory: f64,
    pub disk: f64,
    pub space: f64,
    /// p99 latency in ms.
    pub latency: f64,
    pub errors: f64,
    /// Requests per second.
    pub traffic: f64,
    /// Phase of the daily cycle, so that not every service peaks at the same hour.
    phase: f64,
    /// Amplitude of the daily cycle.
    amplitude: f64,
}

impl Baseline {
    /// Drawn from the service's own generator: the same service has the same baseline in every
    /// case of a run, as a real service would.
    pub fn of(service: &Service, seed: u64) -> Baseline {
        let rng = &mut derived(seed, &[fnv(service.name.as_bytes()), 0xba5e]);
        let (traffic, latency, disk) = match service.kind {
            ServiceKind::Gateway => ((200.0, 2000.0), (50.0, 300.0), (0.1, 2.0)),
            ServiceKind::Database => ((50.0, 1000.0), (5.0, 40.0), (5.0, 50.0)),
            ServiceKind::Cache => ((100.0, 3000.0), (0.5, 3.0), (0.1, 3.0)),
            ServiceKind::Queue => ((20.0, 300.0), (2.0, 20.0), (2.0, 20.0)),
            ServiceKind::External => ((5.0, 200.0), (80.0, 600.0), (0.0, 0.1)),
            ServiceKind::Host => ((50.0, 500.0), (1.0, 10.0), (5.0, 40.0)),
            ServiceKind::Service => ((10.0, 500.0), (20.0, 250.0), (0.1, 3.0)),
        };
        Baseline {
            cpu: uniform(rng, 5.0, 45.0),
            memory: uniform(rng, 25.0, 65.0),
            disk: uniform(rng, disk.0, disk.1),
            space: uniform(rng, 20.0, 70.0),
            latency: uniform(rng, latency.0, latency.1),
            errors: uniform(rng, 0.0005, 0.01),
            traffic: uniform(rng, traffic.0, traffic.1),
            phase: unit(rng),
            amplitude: uniform(rng, 0.1, 0.35),
        }
    }

    /// The baseline of one of `count` instances (pods, shards) behind a load balancer: a share
    /// of the traffic, and resource levels that differ a little between instances (a replica
    /// is never exactly its neighbour). Drawn from `rng`, the instance's own generator.
    pub fn instance(&self, count: usize, rng: &mut ChaCha8Rng) -> Baseline {
        let mut out = self.clone();
        out.traffic = self.traffic / count.max(1) as f64 * uniform(rng, 0.85, 1.15);
        out.cpu = self.cpu * uniform(rng, 0.8, 1.2);
        out.memory = (self.memory + uniform(rng, -5.0, 5.0)).clamp(5.0, 90.0);
        out.disk = self.disk / count.max(1) as f64 * uniform(rng, 0.8, 1.2);
        out.latency = self.latency * uniform(rng, 0.9, 1.1);
        out
    }

    /// Daily traffic factor at `t`: peaks once a day.
    pub fn daily(&self, t: i64) -> f64 {
        let day = t.rem_euclid(86_400) as f64 / 86_400.0;
        1.0 + self.amplitude * (std::f64::consts::TAU * (day + self.phase)).sin()
    }
}

/// The sample times of a window: every `step` seconds from `from` (inclusive) to `to`
/// (inclusive), `from` aligned down to a multiple of `step` as scrapes are.
pub(super) fn grid(from: i64, to: i64, step: i64) -> Vec<i64> {
    let step = step.max(1);
    let first = from.div_euclid(step) * step;
    (0..)
        .map(|k| first + k * step)
        .take_while(|&t| t <= to)
        .collect()
}

/// A random blip on an unrelated metric: metric rankers must not take every bump for a fault.
fn blip(rng: &mut ChaCha8Rng, times: &[i64]) -> Option<Effect> {
    if times.len() < 3 || !chance(rng, 0.04) {
        return None;
    }
    let at = times[rng_index(rng, times.len())];
    let span = (times[1] - times[0]) * (1 + rng_index(rng, 3) as i64);
    let mut effect = Effect::between(at, at + span, 20.0);
    match rng_index(rng, 4) {
        0 => effect.cpu = uniform(rng, 0.3, 0.7),
        1 => effect.latency = uniform(rng, 0.5, 2.0),
        2 => effect.errors = uniform(rng, 0.01, 0.05),
        _ => effect.traffic = uniform(rng, 0.3, 0.8),
    }
    Some(effect)
}

/// Standard normal draws, both halves of each Box–Muller pair used: metric noise is most of the
/// simulator's work.
pub(super) struct Gauss {
    rng: ChaCha8Rng,
    spare: Option<f64>,
}

impl Gauss {
    pub fn new(rng: ChaCha8Rng) -> Gauss {
        Gauss { rng, spare: None }
    }

    pub fn next(&mut self) -> f64 {
        if let Some(spare) = self.spare.take() {
            return spare;
        }
        let radius = (-2.0 * (1.0 - unit(&mut self.rng)).ln()).sqrt();
        let angle = std::f64::consts::TAU * unit(&mut self.rng);
        self.spare = Some(radius * angle.sin());
        radius * angle.cos()
    }

    /// A uniform draw in `[0, 1)` from the same generator.
    pub fn unit(&mut self) -> f64 {
        unit(&mut self.rng)
    }
}

pub(super) fn rng_index(rng: &mut ChaCha8Rng, n: usize) -> usize {
    ((unit(rng) * n as f64) as usize).min(n - 1)
}

pub(super) fn round(value: f64, decimals: usize) -> f64 {
    let scale = 10f64.powi(decimals as i32);
    (value * scale).round() / scale
}

/// The samples of each of [`METRICS`] over `times` for a source with baseline `base`, its noise
/// drawn from generators keyed by `key` (the hash of the service's or instance's name).
pub(super) fn columns(
    base: &Baseline,
    key: u64,
    seed: u64,
    case: u64,
    times: &[i64],
    effects: &[Effect],
) -> [Vec<f64>; METRICS.len()] {
    let name_hash = key;
    let mut effects = effects.to_vec();
    if let Some(extra) = blip(&mut derived(seed, &[case, name_hash, 0xb1]), times) {
        effects.push(extra);
    }
    let mut memory_walk = 0.0;
    let mut columns: [Vec<f64>; METRICS.len()] =
        std::array::from_fn(|_| Vec::with_capacity(times.len()));
    let mut noise: Vec<Gauss> = (0..METRICS.len())
        .map(|m| Gauss::new(derived(seed, &[case, name_hash, m as u64])))
        .collect();
    for &t in times {
        let daily = base.daily(t);
        // Combined disturbance at t: shares of headroom combine like independent
        // probabilities, relative increases multiply, error ratios add.
        let (mut cpu, mut memory, mut space) = (1.0, 1.0, 1.0);
        let (mut disk, mut latency, mut traffic, mut errors) = (1.0, 1.0, 1.0, 0.0);
        for effect in &effects {
            let level = effect.level(t);
            cpu *= 1.0 - effect.cpu * level;
            memory *= 1.0 - effect.memory * effect.leak_level(t);
            space *= 1.0 - effect.space * effect.leak_level(t);
            disk *= 1.0 + effect.disk * level;
            latency *= 1.0 + effect.latency * level;
            traffic *= 1.0 + effect.traffic * level;
            errors += effect.errors * level;
        }
        let (cpu, memory, space) = (1.0 - cpu, 1.0 - memory, 1.0 - space);

        let n = &mut noise;
        let load = base.cpu * daily.sqrt() * (1.0 + 0.05 * n[CPU].next()) + 0.5 * n[CPU].next();
        let cpu_value = load + (98.0 - load) * cpu;
        memory_walk += 0.15 * n[MEMORY].next();
        let resident = base.memory + memory_walk;
        let memory_value = resident + (97.0 - resident) * memory;
        // Disk space barely moves in forty minutes unless something fills it.
        let used = base.space + 0.05 * n[SPACE].next();
        let space_value = used + (98.0 - used) * space;
        let disk_value = base.disk * daily * (1.0 + 0.1 * n[DISK].next()) * disk;
        let latency_value =
            base.latency * (1.0 + 0.3 * (daily - 1.0)) * (0.06 * n[LATENCY].next()).exp() * latency;
        let error_value = base.errors * (1.0 + 0.4 * n[ERRORS].next()).max(0.0) + errors;
        let traffic_value = base.traffic * daily * (1.0 + 0.04 * n[TRAFFIC].next()) * traffic;

        let values = [
            cpu_value.clamp(0.0, 100.0),
            memory_value.clamp(0.0, 100.0),
            disk_value.max(0.0),
            space_value.clamp(0.0, 100.0),
            latency_value.max(0.0),
            error_value.clamp(0.0, 1.0),
            traffic_value.max(0.0),
        ];
        for (m, value) in values.into_iter().enumerate() {
            columns[m].push(round(value, DECIMALS[m]));
        }
    }
    columns
}
