//! Which service of the topology an alert is about.
//!
//! Three rules, in order; the first that finds a service wins:
//! 1. **Names**: the value of the first configured label key (in priority order) that is a
//!    service's name or one of its aliases.
//! 2. **Matchers**: a service whose `labels` in the topology are all on the alert
//!    (`{namespace: pay, deployment: ledger}`); the most specific such service wins.
//! 3. **Prefixes**: a label value that *starts* with a service's name or alias at a `-`, `.` or
//!    `:` boundary (`checkout-7d9f8b-x2x7k` is a pod of `checkout`, `cart:7070` an instance of
//!    `cart`), the longest prefix first, label keys in priority order.
//!
//! An alert no rule maps stays *unmapped*: it is kept and correlated by its labels instead.

use std::collections::HashMap;

use rootcause_topology::Topology;

use crate::alert::Labels;

/// Label keys tried, in this order, when the configuration names none: the conventions of
/// Prometheus, Kubernetes and OpenTelemetry for "which service is this".
pub const DEFAULT_LABEL_KEYS: [&str; 10] = [
    "service",
    "service_name",
    "app",
    "app_kubernetes_io_name",
    "k8s_app",
    "deployment",
    "container",
    "job",
    "pod",
    "instance",
];

/// Maps alerts to services of one topology version. Build one per version: construction indexes
/// names, aliases and matchers so that mapping an alert is a few hash lookups.
#[derive(Debug, Clone)]
pub struct ServiceMapper {
    keys: Vec<String>,
    /// Name or alias → service name.
    names: HashMap<String, String>,
    /// Each service that declares labels: its name and its labels, most labels first.
    matchers: Vec<(String, Vec<(String, String)>)>,
    /// One (key, value) of each matcher → positions in `matchers` that require it.
    matcher_index: HashMap<(String, String), Vec<usize>>,
}

impl ServiceMapper {
    /// Indexes `topology` for mapping with `label_keys` in priority order.
    pub fn new(topology: &Topology, label_keys: &[String]) -> ServiceMapper {
        let mut names = HashMap::new();
        let mut matchers = Vec::new();
        for service in topology.services() {
            names.insert(service.name.clone(), service.name.clone());
            for alias in &service.aliases {
                names.insert(alias.clone(), service.name.clone());
            }
            if !service.labels.is_empty() {
                let pairs = service
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Vec<_>>();
                matchers.push((service.name.clone(), pairs));
            }
        }
        matchers.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
        let mut matcher_index: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (position, (_, pairs)) in matchers.iter().enumerate() {
            // Index by the first pair: every candidate must have it, so looking up each of the
            // alert's pairs finds every matcher that could apply.
            matcher_index
                .entry(pairs[0].clone())
                .or_default()
                .push(position);
        }
        ServiceMapper {
            keys: label_keys.to_vec(),
            names,
            matchers,
            matcher_index,
        }
    }

    /// The service `labels` are about, or `None` when no rule maps them.
    pub fn map(&self, labels: &Labels) -> Option<&str> {
        let values = || self.keys.iter().filter_map(|key| labels.get(key));
        if let Some(name) = values().find_map(|value| self.names.get(value.as_str())) {
            return Some(name);
        }
        if let Some(name) = self.by_matchers(labels) {
            return Some(name);
        }
        values().find_map(|value| self.by_prefix(value))
    }

    fn by_matchers(&self, labels: &Labels) -> Option<&str> {
        if self.matchers.is_empty() {
            return None;
        }
        let mut best: Option<usize> = None;
        for (key, value) in labels {
            let Some(candidates) = self.matcher_index.get(&(key.clone(), value.clone())) else {
                continue;
            };
            for &position in candidates {
                if best.is_some_and(|b| b <= position) {
                    continue;
                }
                let (_, pairs) = &self.matchers[position];
                if pairs.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                    best = Some(position);
                }
            }
        }
        best.map(|position| self.matchers[position].0.as_str())
    }

    fn by_prefix(&self, value: &str) -> Option<&str> {
        let boundaries = value
            .char_indices()
            .filter(|(_, c)| matches!(c, '-' | '.' | ':'))
            .map(|(i, _)| i)
            .collect::<Vec<_>>();
        boundaries
            .iter()
            .rev()
            .find_map(|&end| self.names.get(&value[..end]))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use rootcause_topology::{Service, ServiceKind};

    use super::*;
    use crate::alert::labels;

    fn keys() -> Vec<String> {
        DEFAULT_LABEL_KEYS.iter().map(|k| (*k).to_owned()).collect()
    }

    fn topology() -> Topology {
        let mut topology = Topology::new();
        let mut checkout = Service::new("checkout", ServiceKind::Service);
        checkout.aliases = vec!["checkoutservice".to_owned()];
        topology.add_service(checkout).unwrap();
        topology
            .add_service(Service::new("checkout-db", ServiceKind::Database))
            .unwrap();
        let mut ledger = Service::new("ledger", ServiceKind::Service);
        ledger.labels = labels(&[("namespace", "pay"), ("deployment", "ldg")]);
        topology.add_service(ledger).unwrap();
        let mut pay = Service::new("pay", ServiceKind::Service);
        pay.labels = labels(&[("namespace", "pay")]);
        topology.add_service(pay).unwrap();
        topology
    }

    #[test]
    fn names_and_aliases_map_by_key_priority() {
        let mapper = ServiceMapper::new(&topology(), &keys());
        assert_eq!(
            mapper.map(&labels(&[("service", "checkout")])),
            Some("checkout")
        );
        assert_eq!(
            mapper.map(&labels(&[("app", "checkoutservice")])),
            Some("checkout")
        );
        // `service` outranks `job`.
        assert_eq!(
            mapper.map(&labels(&[("job", "checkout"), ("service", "checkout-db")])),
            Some("checkout-db")
        );
        // A key that names nothing known gives way to a later key that does.
        assert_eq!(
            mapper.map(&labels(&[("service", "nope"), ("job", "checkout")])),
            Some("checkout")
        );
    }

    #[test]
    fn the_most_specific_matcher_wins() {
        let mapper = ServiceMapper::new(&topology(), &keys());
        assert_eq!(
            mapper.map(&labels(&[
                ("namespace", "pay"),
                ("deployment", "ldg"),
                ("x", "y")
            ])),
            Some("ledger")
        );
        assert_eq!(mapper.map(&labels(&[("namespace", "pay")])), Some("pay"));
        assert_eq!(mapper.map(&labels(&[("deployment", "ldg")])), None);
    }

    #[test]
    fn pod_names_and_instances_map_by_their_longest_known_prefix() {
        let mapper = ServiceMapper::new(&topology(), &keys());
        assert_eq!(
            mapper.map(&labels(&[("pod", "checkout-7d9f8b6c4-x2x7k")])),
            Some("checkout")
        );
        assert_eq!(
            mapper.map(&labels(&[("pod", "checkout-db-0")])),
            Some("checkout-db")
        );
        assert_eq!(
            mapper.map(&labels(&[("instance", "checkoutservice:8080")])),
            Some("checkout")
        );
        assert_eq!(
            mapper.map(&labels(&[("instance", "checkout.prod.svc:8080")])),
            Some("checkout")
        );
        assert_eq!(mapper.map(&labels(&[("pod", "checkoutx-1")])), None);
        assert_eq!(mapper.map(&labels(&[("alertname", "checkout")])), None);
    }
}
