//! The engine's cache of graph neighbourhoods: the services within [`Settings::max_hops`] of a
//! service that alerted, and how far each is, under one topology version.
//!
//! Every alert on a service asks for its neighbourhood (to find the incidents it may join), so it
//! is computed once per service and version. In a large estate the cache holds hundreds of
//! neighbours for each of thousands of services, so it is compact: each service name is held once
//! (`names`), a neighbourhood lists positions in that table, and the distance is not stored per
//! neighbour but as where each hop count ends (the walk lists neighbours nearest first). With
//! owned names per neighbour it took ~75 MB at 10,000 services; positions take ~10 MB.
//!
//! It is also bounded ([`MEMBERS_BUDGET`]): in an estate too large for it (or a `max_hops` that
//! makes neighbourhoods span most of the graph), the neighbourhoods not asked for lately are
//! dropped, and computed again when asked for.
//!
//! [`Settings::max_hops`]: super::Settings::max_hops

use std::collections::HashMap;
use std::sync::Arc;

use rootcause_topology::Topology;

/// Most neighbours the cache lists in all, 4 bytes each: 32 MiB. It keeps whatever was asked for
/// since it last dropped anything, up to half that: the generated estate of 10,000 services
/// (about 230 services within two hops of each, 2.3 M in all) fits with room to spare.
const MEMBERS_BUDGET: usize = 1 << 23;

/// The services within `max_hops` of one service, as [`Topology::neighbourhood`] lists them:
/// nearest first, then by name.
#[derive(Debug)]
struct Neighbourhood {
    /// Positions in [`Neighbourhoods::names`].
    members: Box<[u32]>,
    /// `members[ends[h - 1]..ends[h]]` are `h + 1` hops away (`ends[-1]` being 0).
    ends: Box<[u32]>,
    /// The generation that last asked for it (see [`Neighbourhoods::generation`]).
    used: u32,
}

/// Neighbourhoods computed under one topology version.
#[derive(Debug)]
pub(super) struct Neighbourhoods {
    /// Most neighbours listed in all: [`MEMBERS_BUDGET`] (smaller in tests).
    budget: usize,
    /// The topology version they were computed under; `None` before the first.
    version: Option<Option<i64>>,
    /// Every service name met under `version`, once.
    names: Vec<Arc<str>>,
    /// Position of each name in `names`.
    ids: HashMap<Arc<str>, u32>,
    /// By position of the service's name; `None` until asked for (or once dropped).
    cached: Vec<Option<Neighbourhood>>,
    /// Neighbourhoods used since the generation began are kept when the cache is full; the
    /// others are dropped, and a new generation begins: what is used often stays.
    generation: u32,
    /// Neighbours listed by the neighbourhoods used in this generation.
    members_now: usize,
}

impl Default for Neighbourhoods {
    fn default() -> Self {
        Neighbourhoods::with_budget(MEMBERS_BUDGET)
    }
}

/// One service's neighbours, to walk in order.
#[derive(Debug, Clone, Copy)]
pub(super) struct Near<'a> {
    names: &'a [Arc<str>],
    neighbourhood: &'a Neighbourhood,
}

impl<'a> Near<'a> {
    /// Each neighbour's name and its hop distance, nearest first, then by name.
    pub(super) fn iter(self) -> impl Iterator<Item = (&'a str, usize)> {
        let Neighbourhood { members, ends, .. } = self.neighbourhood;
        let names = self.names;
        ends.iter().enumerate().flat_map(move |(level, &end)| {
            let start = level.checked_sub(1).map_or(0, |before| ends[before]);
            members[start as usize..end as usize]
                .iter()
                .map(move |&id| (&*names[id as usize], level + 1))
        })
    }
}

impl Neighbourhoods {
    fn with_budget(budget: usize) -> Neighbourhoods {
        Neighbourhoods {
            budget,
            version: None,
            names: Vec::new(),
            ids: HashMap::new(),
            cached: Vec::new(),
            generation: 0,
            members_now: 0,
        }
    }

    /// Forgets every neighbourhood if the topology version is not the one they were computed
    /// under.
    pub(super) fn use_version(&mut self, version: Option<i64>) {
        if self.version != Some(version) {
            *self = Neighbourhoods {
                version: Some(version),
                ..Neighbourhoods::with_budget(self.budget)
            };
        }
    }

    /// Forgets every neighbourhood and name, giving their memory back (several megabytes in a
    /// large estate); they are computed again when asked for. For an engine that holds no
    /// incident, whose next alerts may come from anywhere.
    pub(super) fn release(&mut self) {
        if !self.names.is_empty() {
            *self = Neighbourhoods {
                version: self.version,
                ..Neighbourhoods::with_budget(self.budget)
            };
        }
    }

    /// The services within `max_hops` of `service` in `topology` (none if it has no such
    /// service), computed on first use.
    pub(super) fn of(&mut self, topology: &Topology, service: &str, max_hops: usize) -> Near<'_> {
        let id = self.intern(service);
        let generation = self.generation;
        match &mut self.cached[id as usize] {
            Some(found) => {
                if found.used != generation {
                    found.used = generation;
                    self.members_now += found.members.len();
                }
            }
            None => {
                let reach = topology
                    .neighbourhood(service, max_hops)
                    .unwrap_or_default();
                let mut members = Vec::with_capacity(reach.len());
                let mut ends = Vec::new();
                for r in &reach {
                    // The walk lists neighbours by increasing hop count, from 1: each level
                    // before this one has ended.
                    while ends.len() + 1 < r.hops {
                        ends.push(members.len() as u32);
                    }
                    members.push(self.intern(r.service));
                }
                if !members.is_empty() {
                    ends.push(members.len() as u32);
                }
                self.members_now += members.len();
                self.cached[id as usize] = Some(Neighbourhood {
                    members: members.into_boxed_slice(),
                    ends: ends.into_boxed_slice(),
                    used: generation,
                });
            }
        }
        // Checked after a hit too: what one generation uses stays within half the budget, so
        // what is kept from the last one and what this one adds stay within all of it.
        if self.members_now > self.budget / 2 {
            self.next_generation();
        }
        Near {
            names: &self.names,
            neighbourhood: self.cached[id as usize].as_ref().expect("cached above"),
        }
    }

    /// Drops the neighbourhoods not used in this generation and begins the next. What is kept
    /// lists about half the budget (this generation's), and the next generation adds at most as
    /// much before it ends. A scan of one slot per service name, once per half a budget of
    /// neighbours asked for.
    fn next_generation(&mut self) {
        let generation = self.generation;
        for slot in &mut self.cached {
            if slot.as_ref().is_some_and(|n| n.used != generation) {
                *slot = None;
            }
        }
        self.members_now = 0;
        self.generation = generation.wrapping_add(1);
    }

    /// The position of `name` in `names`, adding it if new.
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 service names");
        let name: Arc<str> = Arc::from(name);
        self.names.push(name.clone());
        self.ids.insert(name, id);
        self.cached.push(None);
        id
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rootcause_topology::{Dependency, Service, ServiceKind};

    use super::*;

    /// Services s0..s29, each calling the next two (s0 → s1, s0 → s2, ...), and s29 → s0.
    fn ring() -> Topology {
        let mut topology = Topology::new();
        for i in 0..30 {
            topology
                .add_service(Service::new(format!("s{i}"), ServiceKind::Service))
                .unwrap();
        }
        for i in 0..28 {
            for j in [i + 1, i + 2] {
                topology
                    .add_dependency(Dependency::new(format!("s{i}"), format!("s{j}")))
                    .unwrap();
            }
        }
        topology
            .add_dependency(Dependency::new("s29", "s0"))
            .unwrap();
        topology
    }

    fn expected(topology: &Topology, service: &str, max_hops: usize) -> Vec<(String, usize)> {
        topology
            .neighbourhood(service, max_hops)
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.service.to_owned(), r.hops))
            .collect()
    }

    fn listed(near: Near<'_>) -> Vec<(String, usize)> {
        near.iter()
            .map(|(name, hops)| (name.to_owned(), hops))
            .collect()
    }

    #[test]
    fn a_neighbourhood_lists_what_the_topology_walk_does_in_its_order() {
        let topology = ring();
        let mut cache = Neighbourhoods::default();
        cache.use_version(Some(1));
        for max_hops in [0, 1, 2, 3, 20] {
            cache.use_version(Some(max_hops as i64));
            for service in ["s0", "s7", "s29", "nowhere"] {
                let want = expected(&topology, service, max_hops);
                assert_eq!(listed(cache.of(&topology, service, max_hops)), want);
                // Again, from the cache.
                assert_eq!(listed(cache.of(&topology, service, max_hops)), want);
            }
        }
        assert_eq!(
            listed(cache.of(&topology, "s0", 20)).last().map(|n| n.1),
            Some(8)
        );
    }

    #[test]
    fn a_new_topology_version_forgets_every_neighbourhood() {
        let mut topology = ring();
        let mut cache = Neighbourhoods::default();
        cache.use_version(Some(1));
        assert_eq!(cache.of(&topology, "s0", 1).iter().count(), 3);
        topology
            .add_service(Service::new("extra", ServiceKind::Service))
            .unwrap();
        topology
            .add_dependency(Dependency::new("extra", "s0"))
            .unwrap();
        cache.use_version(Some(1));
        assert_eq!(cache.of(&topology, "s0", 1).iter().count(), 3);
        cache.use_version(Some(2));
        assert_eq!(cache.of(&topology, "s0", 1).iter().count(), 4);
    }

    #[test]
    fn a_released_cache_holds_nothing_and_computes_the_same_again() {
        let topology = ring();
        let mut cache = Neighbourhoods::default();
        cache.use_version(Some(1));
        let before = listed(cache.of(&topology, "s3", 2));
        cache.release();
        assert!(cache.names.is_empty() && cache.ids.is_empty() && cache.cached.is_empty());
        assert_eq!(cache.members_now, 0);
        assert_eq!(cache.version, Some(Some(1)), "still the same version");
        assert_eq!(listed(cache.of(&topology, "s3", 2)), before);
    }

    proptest! {
        #[test]
        fn a_small_budget_drops_neighbourhoods_but_never_changes_one(
            budget in 1usize..40,
            asked in proptest::collection::vec(0usize..31, 1..200),
        ) {
            let topology = ring();
            let mut cache = Neighbourhoods::with_budget(budget);
            cache.use_version(None);
            let largest = 8;
            for i in asked {
                let service = format!("s{i}");
                prop_assert_eq!(
                    listed(cache.of(&topology, &service, 2)),
                    expected(&topology, &service, 2)
                );
                let held: usize = cache.cached.iter().flatten().map(|n| n.members.len()).sum();
                prop_assert!(held <= budget + 2 * largest, "{} listed, budget {}", held, budget);
            }
        }
    }
}
