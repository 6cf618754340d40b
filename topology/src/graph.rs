//! [`Topology`]: the service graph on petgraph, changed one validated step at a time.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use petgraph::Direction;
use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use sha2::{Digest, Sha256};

use crate::calls::CallIndex;
use crate::document::{self, Format};
use crate::error::{DocumentError, Problem, TopologyError};
use crate::model::{Dependency, MAX_NAME_LEN, Service, TopologyDocument};

/// A topology's canonical JSON document and its SHA-256 digest (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// Compact JSON of [`Topology::to_document`].
    pub json: String,
    /// SHA-256 of `json`, lowercase hex.
    pub digest: String,
}

/// The service-dependency graph.
///
/// Nodes are [`Service`]s and edges [`Dependency`]s (`caller → callee`). A `StableDiGraph` keeps
/// node indices valid across removals; the name and alias maps are the only way in from outside,
/// so no stale index ever leaks. Every successful change bumps [`revision`](Topology::revision);
/// a refused change leaves the graph exactly as it was.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub(crate) graph: StableDiGraph<Service, Dependency>,
    names: HashMap<String, NodeIndex>,
    aliases: HashMap<String, NodeIndex>,
    revision: u64,
    /// Derived from the graph on demand; emptied by every change.
    calls: OnceLock<CallIndex>,
}

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Topology::default()
    }

    /// Builds a topology from a document, checking every rule and reporting every broken one with
    /// its path (`services[2].name`, `dependencies[7].callee`, ...).
    pub fn from_document(document: TopologyDocument) -> Result<Topology, DocumentError> {
        let mut topology = Topology::new();
        let mut problems = Vec::new();
        let mut first_definition: HashMap<String, usize> = HashMap::new();
        let declared: HashSet<String> = document.services.iter().map(|s| s.name.clone()).collect();

        for (i, service) in document.services.into_iter().enumerate() {
            let name = service.name.clone();
            let aliases = service.aliases.clone();
            match topology.add_service(service) {
                Ok(()) => {
                    first_definition.insert(name, i);
                }
                Err(TopologyError::DuplicateService(name)) => {
                    let first = first_definition.get(&name).copied().unwrap_or(i);
                    problems.push(Problem::at(
                        format!("services[{i}].name"),
                        format!("duplicate service {name:?} (first defined at services[{first}])"),
                    ));
                }
                Err(error) => {
                    let path = service_problem_path(i, &name, &aliases, &error);
                    problems.push(Problem::at(path, error.to_string()));
                }
            }
        }

        for (i, dependency) in document.dependencies.into_iter().enumerate() {
            let mut endpoints_known = true;
            for (field, name) in [
                ("caller", &dependency.caller),
                ("callee", &dependency.callee),
            ] {
                if topology.names.contains_key(name.as_str()) {
                    continue;
                }
                endpoints_known = false;
                // A service that is listed but was refused has its own problem already; saying
                // "unknown service" at every edge that names it would only mislead.
                if !declared.contains(name.as_str()) {
                    problems.push(Problem::at(
                        format!("dependencies[{i}].{field}"),
                        TopologyError::UnknownService(name.clone()).to_string(),
                    ));
                }
            }
            if !endpoints_known {
                continue;
            }
            if let Err(error) = topology.add_dependency(dependency) {
                let path = match &error {
                    TopologyError::InvalidAttribute { field, .. } => {
                        format!("dependencies[{i}].{field}")
                    }
                    _ => format!("dependencies[{i}]"),
                };
                problems.push(Problem::at(path, error.to_string()));
            }
        }

        if problems.is_empty() {
            topology.revision = 0;
            Ok(topology)
        } else {
            Err(DocumentError::invalid(problems))
        }
    }

    /// Parses and checks a document in the given format.
    pub fn parse(text: &str, format: Format) -> Result<Topology, DocumentError> {
        Topology::from_document(document::parse(text, format)?)
    }

    /// The topology as a document: services sorted by name, dependencies by (caller, callee), so
    /// equal graphs give equal documents.
    pub fn to_document(&self) -> TopologyDocument {
        let mut services: Vec<Service> = self.graph.node_weights().cloned().collect();
        services.sort_by(|a, b| a.name.cmp(&b.name));
        let mut dependencies: Vec<Dependency> = self.graph.edge_weights().cloned().collect();
        dependencies.sort_by(|a, b| (&a.caller, &a.callee).cmp(&(&b.caller, &b.callee)));
        TopologyDocument {
            services,
            dependencies,
        }
    }

    /// The canonical JSON document (see [`to_document`](Topology::to_document)) and its digest,
    /// computed together so that a caller storing both serializes once.
    pub fn canonical(&self) -> Canonical {
        let json = serde_json::to_string(&self.to_document())
            .expect("a topology document always serializes");
        let digest = Sha256::digest(json.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Canonical { json, digest }
    }

    /// A content hash (SHA-256 of the canonical JSON document, hex): equal graphs, equal digests,
    /// whatever order their documents listed things in.
    pub fn digest(&self) -> String {
        self.canonical().digest
    }

    /// How many successful changes were made since this value was built or parsed.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Number of services.
    pub fn service_count(&self) -> usize {
        self.graph.node_count()
    }

    /// Number of dependencies.
    pub fn dependency_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// The service with this name.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.names.get(name).map(|&node| &self.graph[node])
    }

    /// The service with this name, or else the one with this alias.
    pub fn resolve(&self, name_or_alias: &str) -> Option<&Service> {
        self.names
            .get(name_or_alias)
            .or_else(|| self.aliases.get(name_or_alias))
            .map(|&node| &self.graph[node])
    }

    /// Every service, in no particular order.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.graph.node_weights()
    }

    /// Every dependency, in no particular order.
    pub fn dependencies(&self) -> impl Iterator<Item = &Dependency> {
        self.graph.edge_weights()
    }

    /// The `caller → callee` dependency, if there is one.
    pub fn dependency(&self, caller: &str, callee: &str) -> Option<&Dependency> {
        self.edge(caller, callee).map(|edge| &self.graph[edge])
    }

    /// Where service `name` sits in the arrays of [`calls`](Topology::calls) (and of any array
    /// indexed the same way); `None` for an unknown name. Valid until the topology changes.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.get(name).map(|node| node.index())
    }

    /// Every service's direct callees and number of callers as dense arrays, indexed by
    /// [`position`](Topology::position): built at the first call after a change, then shared.
    pub fn calls(&self) -> &CallIndex {
        self.calls.get_or_init(|| CallIndex::of(&self.graph))
    }

    /// Adds a service. Refused if the name is empty or taken, or an alias clashes.
    pub fn add_service(&mut self, service: Service) -> Result<(), TopologyError> {
        check_name(&service.name)?;
        if self.names.contains_key(&service.name) {
            return Err(TopologyError::DuplicateService(service.name));
        }
        if let Some(owner) = self.aliases.get(&service.name) {
            return Err(TopologyError::AliasConflict {
                alias: service.name,
                owner: self.graph[*owner].name.clone(),
            });
        }
        self.check_aliases(&service, None)?;
        let name = service.name.clone();
        let aliases = service.aliases.clone();
        let node = self.graph.add_node(service);
        self.names.insert(name, node);
        for alias in aliases {
            self.aliases.insert(alias, node);
        }
        self.changed();
        Ok(())
    }

    /// Replaces the attributes of an existing service (same name), keeping its dependencies.
    /// Returns the service as it was.
    pub fn replace_service(&mut self, service: Service) -> Result<Service, TopologyError> {
        let node = self.node(&service.name)?;
        self.check_aliases(&service, Some(node))?;
        for alias in &self.graph[node].aliases {
            self.aliases.remove(alias);
        }
        for alias in &service.aliases {
            self.aliases.insert(alias.clone(), node);
        }
        let old = std::mem::replace(&mut self.graph[node], service);
        self.changed();
        Ok(old)
    }

    /// Removes a service and every dependency that touches it. Returns the service and the
    /// dependencies removed with it.
    pub fn remove_service(
        &mut self,
        name: &str,
    ) -> Result<(Service, Vec<Dependency>), TopologyError> {
        let node = self.node(name)?;
        let touching: Vec<EdgeIndex> = self
            .graph
            .edges_directed(node, Direction::Outgoing)
            .chain(self.graph.edges_directed(node, Direction::Incoming))
            .map(|edge| edge.id())
            .collect();
        let removed_edges = touching
            .into_iter()
            .filter_map(|edge| self.graph.remove_edge(edge))
            .collect();
        let service = self
            .graph
            .remove_node(node)
            .expect("the name map only holds live nodes");
        self.names.remove(name);
        for alias in &service.aliases {
            self.aliases.remove(alias);
        }
        self.changed();
        Ok((service, removed_edges))
    }

    /// Adds a `caller → callee` dependency between existing services. Refused if it exists already.
    pub fn add_dependency(&mut self, dependency: Dependency) -> Result<(), TopologyError> {
        let (caller, callee) = self.endpoints(&dependency)?;
        if self.graph.find_edge(caller, callee).is_some() {
            return Err(TopologyError::DuplicateDependency {
                caller: dependency.caller,
                callee: dependency.callee,
            });
        }
        self.graph.add_edge(caller, callee, dependency);
        self.changed();
        Ok(())
    }

    /// Adds a dependency, or replaces the attributes of an existing one. Returns the old one.
    pub fn set_dependency(
        &mut self,
        dependency: Dependency,
    ) -> Result<Option<Dependency>, TopologyError> {
        let (caller, callee) = self.endpoints(&dependency)?;
        let old = match self.graph.find_edge(caller, callee) {
            Some(edge) => Some(std::mem::replace(&mut self.graph[edge], dependency)),
            None => {
                self.graph.add_edge(caller, callee, dependency);
                None
            }
        };
        self.changed();
        Ok(old)
    }

    /// Removes the `caller → callee` dependency and returns it.
    pub fn remove_dependency(
        &mut self,
        caller: &str,
        callee: &str,
    ) -> Result<Dependency, TopologyError> {
        self.node(caller)?;
        self.node(callee)?;
        let edge = self
            .edge(caller, callee)
            .ok_or_else(|| TopologyError::UnknownDependency {
                caller: caller.to_owned(),
                callee: callee.to_owned(),
            })?;
        let dependency = self
            .graph
            .remove_edge(edge)
            .expect("find_edge returned a live edge");
        self.changed();
        Ok(dependency)
    }

    /// Records a successful change: a new revision, and derived indexes built again.
    fn changed(&mut self) {
        self.revision += 1;
        self.calls = OnceLock::new();
    }

    /// The node of a service, or `UnknownService`.
    pub(crate) fn node(&self, name: &str) -> Result<NodeIndex, TopologyError> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| TopologyError::UnknownService(name.to_owned()))
    }

    pub(crate) fn name(&self, node: NodeIndex) -> &str {
        &self.graph[node].name
    }

    fn edge(&self, caller: &str, callee: &str) -> Option<EdgeIndex> {
        let caller = *self.names.get(caller)?;
        let callee = *self.names.get(callee)?;
        self.graph.find_edge(caller, callee)
    }

    fn endpoints(&self, dependency: &Dependency) -> Result<(NodeIndex, NodeIndex), TopologyError> {
        let caller = self.node(&dependency.caller)?;
        let callee = self.node(&dependency.callee)?;
        if caller == callee {
            return Err(TopologyError::SelfDependency(dependency.caller.clone()));
        }
        check_dependency_attributes(dependency)?;
        Ok((caller, callee))
    }

    /// Every alias must be a valid name, used once, and not be another service's name or alias.
    /// `own` is the node being replaced, whose current aliases do not count as clashes.
    fn check_aliases(
        &self,
        service: &Service,
        own: Option<NodeIndex>,
    ) -> Result<(), TopologyError> {
        let mut seen: HashSet<&str> = HashSet::new();
        for alias in &service.aliases {
            check_name(alias)?;
            let clash = if alias == &service.name || !seen.insert(alias) {
                Some(service.name.clone())
            } else if let Some(&node) = self.names.get(alias) {
                Some(self.graph[node].name.clone())
            } else {
                match self.aliases.get(alias) {
                    Some(&node) if Some(node) != own => Some(self.graph[node].name.clone()),
                    _ => None,
                }
            };
            if let Some(owner) = clash {
                return Err(TopologyError::AliasConflict {
                    alias: alias.clone(),
                    owner,
                });
            }
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), TopologyError> {
    if name.is_empty() {
        return Err(TopologyError::EmptyName);
    }
    if name.len() > MAX_NAME_LEN || name.trim() != name || name.chars().any(char::is_control) {
        return Err(TopologyError::InvalidName(name.to_owned()));
    }
    Ok(())
}

fn check_dependency_attributes(dependency: &Dependency) -> Result<(), TopologyError> {
    const NON_NEGATIVE: &str = "a finite number >= 0";
    check_attribute("call_rate", dependency.call_rate, NON_NEGATIVE, |v| {
        v >= 0.0
    })?;
    check_attribute(
        "error_rate",
        dependency.error_rate,
        "between 0 and 1",
        |v| (0.0..=1.0).contains(&v),
    )?;
    check_attribute("latency_ms", dependency.latency_ms, NON_NEGATIVE, |v| {
        v >= 0.0
    })
}

fn check_attribute(
    field: &'static str,
    value: Option<f64>,
    expected: &'static str,
    in_range: impl Fn(f64) -> bool,
) -> Result<(), TopologyError> {
    match value {
        Some(value) if !(value.is_finite() && in_range(value)) => {
            Err(TopologyError::InvalidAttribute {
                field,
                expected,
                value,
            })
        }
        _ => Ok(()),
    }
}

/// Where in `services[i]` a refused service went wrong: its name, or one of its aliases.
fn service_problem_path(i: usize, name: &str, aliases: &[String], error: &TopologyError) -> String {
    let alias_index = match error {
        // The last occurrence, so that an alias listed twice points at the second listing.
        TopologyError::AliasConflict { alias, .. } => aliases.iter().rposition(|a| a == alias),
        TopologyError::EmptyName | TopologyError::InvalidName(_) if check_name(name).is_ok() => {
            aliases.iter().position(|a| check_name(a).is_err())
        }
        _ => None,
    };
    match alias_index {
        Some(k) => format!("services[{i}].aliases[{k}]"),
        None => format!("services[{i}].name"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServiceKind;

    fn problems(text: &str) -> Vec<Problem> {
        Topology::parse(text, Format::Yaml)
            .expect_err("should be rejected")
            .problems
    }

    /// Where each problem is, in order.
    fn paths_of(found: &[Problem]) -> Vec<&str> {
        found.iter().map(|p| p.path.as_str()).collect()
    }

    fn names_at(topology: &Topology, positions: &[u32]) -> Vec<String> {
        let mut out: Vec<String> = positions
            .iter()
            .map(|&p| {
                topology
                    .services()
                    .find(|s| topology.position(&s.name) == Some(p as usize))
                    .expect("a position of a service")
                    .name
                    .clone()
            })
            .collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn direct_neighbours_are_one_hop_and_follow_every_change() {
        let mut topology = Topology::parse(
            "services:\n- {name: a, kind: service}\n- {name: b, kind: service}\n- {name: c, kind: database}\ndependencies:\n- {caller: a, callee: b}\n- {caller: a, callee: c}\n- {caller: b, callee: c}\n",
            Format::Yaml,
        )
        .unwrap();
        let at = |t: &Topology, name: &str| t.position(name).unwrap();
        let calls = topology.calls();
        assert_eq!(
            names_at(&topology, calls.callees(at(&topology, "a"))),
            ["b", "c"]
        );
        assert!(calls.callees(at(&topology, "c")).is_empty());
        assert_eq!(calls.caller_count(at(&topology, "c")), 2);
        assert_eq!(calls.caller_count(at(&topology, "a")), 0);
        assert!(calls.callees(calls.positions()).is_empty());
        assert_eq!(calls.caller_count(calls.positions()), 0);
        assert_eq!(topology.position("ghost"), None);

        // A change is seen at once: the index is built again, not read stale.
        topology.remove_dependency("a", "c").unwrap();
        let calls = topology.calls();
        assert_eq!(
            names_at(&topology, calls.callees(at(&topology, "a"))),
            ["b"]
        );
        assert_eq!(calls.caller_count(at(&topology, "c")), 1);
        topology.remove_service("b").unwrap();
        let calls = topology.calls();
        assert!(calls.callees(at(&topology, "a")).is_empty());
        assert_eq!(calls.caller_count(at(&topology, "c")), 0);
    }

    #[test]
    fn duplicate_service_points_at_both_definitions() {
        let found = problems(
            "services:\n- {name: a, kind: service}\n- {name: b, kind: service}\n- {name: a, kind: cache}\n",
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "services[2].name");
        assert!(found[0].message.contains("duplicate service \"a\""));
        assert!(found[0].message.contains("services[0]"));
    }

    #[test]
    fn every_unknown_endpoint_is_reported_at_once() {
        let found = problems(
            "services:\n- {name: a, kind: service}\ndependencies:\n- {caller: a, callee: nope}\n- {caller: ghost, callee: phantom}\n",
        );
        let paths = paths_of(&found);
        assert_eq!(
            paths,
            [
                "dependencies[0].callee",
                "dependencies[1].caller",
                "dependencies[1].callee"
            ]
        );
        assert!(found[0].message.contains("unknown service \"nope\""));
    }

    #[test]
    fn a_refused_service_does_not_make_its_edges_fail_too() {
        let found = problems(
            "services:\n- {name: a, kind: service, aliases: [x]}\n- {name: b, kind: service, aliases: [x]}\ndependencies:\n- {caller: a, callee: b}\n- {caller: b, callee: ghost}\n",
        );
        let paths = paths_of(&found);
        // b's alias clash, and the edge to a service nobody declared; not "unknown service b".
        assert_eq!(paths, ["services[1].aliases[0]", "dependencies[1].callee"]);
    }

    #[test]
    fn empty_and_padded_names_are_rejected() {
        let found =
            problems("services:\n- {name: '', kind: service}\n- {name: ' x', kind: service}\n");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].path, "services[0].name");
        assert_eq!(found[0].message, "name is empty");
        assert_eq!(found[1].path, "services[1].name");
    }

    #[test]
    fn alias_clashes_point_at_the_alias() {
        let found = problems(
            "services:\n- {name: a, kind: service, aliases: [a-pod]}\n- {name: b, kind: service, aliases: [b-pod, a-pod]}\n- {name: c, kind: service, aliases: [a]}\n",
        );
        let paths = paths_of(&found);
        assert_eq!(paths, ["services[1].aliases[1]", "services[2].aliases[0]"]);
        assert!(found[0].message.contains("used by service \"a\""));
        assert!(found[1].message.contains("used by service \"a\""));
    }

    #[test]
    fn self_and_duplicate_dependencies_and_bad_attributes_are_rejected() {
        let found = problems(
            "services:\n- {name: a, kind: service}\n- {name: b, kind: database}\ndependencies:\n- {caller: a, callee: a}\n- {caller: a, callee: b}\n- {caller: a, callee: b}\n- {caller: b, callee: a, error_rate: 1.5}\n",
        );
        let paths = paths_of(&found);
        assert_eq!(
            paths,
            [
                "dependencies[0]",
                "dependencies[2]",
                "dependencies[3].error_rate"
            ]
        );
        assert!(found[0].message.contains("itself"));
        assert!(found[1].message.contains("duplicate dependency"));
        assert!(found[2].message.contains("between 0 and 1"));
    }

    #[test]
    fn mutations_bump_the_revision_and_refusals_change_nothing() {
        let mut topology = Topology::new();
        topology
            .add_service(Service::new("api", ServiceKind::Gateway))
            .unwrap();
        topology
            .add_service(Service::new("db", ServiceKind::Database))
            .unwrap();
        topology
            .add_dependency(Dependency::new("api", "db"))
            .unwrap();
        assert_eq!(topology.revision(), 3);
        let before = topology.digest();

        assert_eq!(
            topology.add_dependency(Dependency::new("api", "db")),
            Err(TopologyError::DuplicateDependency {
                caller: "api".into(),
                callee: "db".into()
            })
        );
        assert_eq!(
            topology.add_service(Service::new("db", ServiceKind::Cache)),
            Err(TopologyError::DuplicateService("db".into()))
        );
        assert_eq!(topology.revision(), 3);
        assert_eq!(topology.digest(), before);

        let mut with_alias = Service::new("db", ServiceKind::Database);
        with_alias.aliases.push("db-primary".into());
        topology.replace_service(with_alias).unwrap();
        assert_eq!(topology.resolve("db-primary").unwrap().name, "db");
        assert_eq!(topology.dependency_count(), 1, "replace keeps edges");

        let (removed, edges) = topology.remove_service("db").unwrap();
        assert_eq!(removed.name, "db");
        assert_eq!(edges.len(), 1);
        assert_eq!(topology.dependency_count(), 0);
        assert!(topology.resolve("db-primary").is_none());
        assert_eq!(topology.revision(), 5);

        // A removed node's index is reused by the next node; names must still resolve correctly.
        topology
            .add_service(Service::new("cache", ServiceKind::Cache))
            .unwrap();
        topology
            .add_dependency(Dependency::new("api", "cache"))
            .unwrap();
        assert_eq!(topology.service("cache").unwrap().kind, ServiceKind::Cache);
        assert!(topology.service("db").is_none());
        assert_eq!(
            topology.remove_dependency("api", "db"),
            Err(TopologyError::UnknownService("db".into()))
        );
        assert!(topology.remove_dependency("api", "cache").is_ok());
    }

    #[test]
    fn set_dependency_updates_attributes_in_place() {
        let mut topology = Topology::parse(
            "services:\n- {name: a, kind: service}\n- {name: b, kind: service}\ndependencies:\n- {caller: a, callee: b}\n",
            Format::Yaml,
        )
        .unwrap();
        let mut observed = Dependency::new("a", "b");
        observed.call_rate = Some(12.5);
        let old = topology.set_dependency(observed).unwrap();
        assert_eq!(old.unwrap().call_rate, None);
        assert_eq!(topology.dependency("a", "b").unwrap().call_rate, Some(12.5));
        assert_eq!(topology.dependency_count(), 1);
        let mut negative = Dependency::new("a", "b");
        negative.latency_ms = Some(-1.0);
        assert!(matches!(
            topology.set_dependency(negative),
            Err(TopologyError::InvalidAttribute {
                field: "latency_ms",
                ..
            })
        ));
    }

    #[test]
    fn digest_ignores_document_order() {
        let one = Topology::parse(
            "services:\n- {name: a, kind: service}\n- {name: b, kind: service}\ndependencies:\n- {caller: a, callee: b}\n",
            Format::Yaml,
        )
        .unwrap();
        let two = Topology::parse(
            r#"{"dependencies":[{"caller":"a","callee":"b"}],"services":[{"name":"b","kind":"service"},{"name":"a","kind":"service"}]}"#,
            Format::Json,
        )
        .unwrap();
        assert_eq!(one.digest(), two.digest());
        assert_eq!(one.to_document(), two.to_document());
        assert_eq!(one.digest().len(), 64);
    }
}
