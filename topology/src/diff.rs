//! What changed between two versions of a topology.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::graph::Topology;
use crate::model::{Dependency, Service};

/// The `caller → callee` pair that identifies a dependency.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DependencyKey {
    /// The caller.
    pub caller: String,
    /// The callee.
    pub callee: String,
}

/// Differences from an old topology to a new one; every list is sorted.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TopologyDiff {
    /// Services only in the new topology.
    pub services_added: Vec<String>,
    /// Services only in the old topology.
    pub services_removed: Vec<String>,
    /// Services in both whose attributes differ (kind, team, aliases, ...).
    pub services_changed: Vec<String>,
    /// Dependencies only in the new topology.
    pub dependencies_added: Vec<DependencyKey>,
    /// Dependencies only in the old topology.
    pub dependencies_removed: Vec<DependencyKey>,
    /// Dependencies in both whose attributes differ.
    pub dependencies_changed: Vec<DependencyKey>,
}

impl TopologyDiff {
    /// Compares two topologies.
    pub fn between(old: &Topology, new: &Topology) -> TopologyDiff {
        let services = |t: &Topology| -> BTreeMap<String, Service> {
            t.services().map(|s| (s.name.clone(), s.clone())).collect()
        };
        let dependencies = |t: &Topology| -> BTreeMap<DependencyKey, Dependency> {
            t.dependencies()
                .map(|d| {
                    let key = DependencyKey {
                        caller: d.caller.clone(),
                        callee: d.callee.clone(),
                    };
                    (key, d.clone())
                })
                .collect()
        };
        let (services_added, services_removed, services_changed) =
            compare(&services(old), &services(new));
        let (dependencies_added, dependencies_removed, dependencies_changed) =
            compare(&dependencies(old), &dependencies(new));
        TopologyDiff {
            services_added,
            services_removed,
            services_changed,
            dependencies_added,
            dependencies_removed,
            dependencies_changed,
        }
    }

    /// True when the two topologies are the same graph.
    pub fn is_empty(&self) -> bool {
        self == &TopologyDiff::default()
    }
}

/// (added, removed, changed) keys between two sorted maps.
fn compare<K: Ord + Clone, V: PartialEq>(
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
) -> (Vec<K>, Vec<K>, Vec<K>) {
    let added = new
        .keys()
        .filter(|k| !old.contains_key(k))
        .cloned()
        .collect();
    let removed = old
        .keys()
        .filter(|k| !new.contains_key(k))
        .cloned()
        .collect();
    let changed = new
        .iter()
        .filter(|(k, v)| old.get(k).is_some_and(|old_v| old_v != *v))
        .map(|(k, _)| k.clone())
        .collect();
    (added, removed, changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Format;

    #[test]
    fn diff_lists_every_kind_of_change() {
        let old = Topology::parse(
            "services:\n- {name: a, kind: service}\n- {name: b, kind: service}\n- {name: c, kind: cache}\ndependencies:\n- {caller: a, callee: b}\n- {caller: a, callee: c}\n",
            Format::Yaml,
        )
        .unwrap();
        let new = Topology::parse(
            "services:\n- {name: a, kind: service, team: core}\n- {name: b, kind: service}\n- {name: d, kind: database}\ndependencies:\n- {caller: a, callee: b, protocol: grpc}\n- {caller: b, callee: d}\n",
            Format::Yaml,
        )
        .unwrap();
        let diff = TopologyDiff::between(&old, &new);
        let key = |a: &str, b: &str| DependencyKey {
            caller: a.into(),
            callee: b.into(),
        };
        assert_eq!(diff.services_added, ["d"]);
        assert_eq!(diff.services_removed, ["c"]);
        assert_eq!(diff.services_changed, ["a"]);
        assert_eq!(diff.dependencies_added, [key("b", "d")]);
        assert_eq!(diff.dependencies_removed, [key("a", "c")]);
        assert_eq!(diff.dependencies_changed, [key("a", "b")]);
        assert!(TopologyDiff::between(&new, &new).is_empty());
    }
}
